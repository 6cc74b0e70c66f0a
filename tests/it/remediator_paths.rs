//! The remediator's other entry points and guarantees against the rig: remediation events, a
//! forced rotation and a restore, the central account, one account failing in a sweep, the API
//! budget, no secret in the CLI's log, and `plan` from evidence.

use crate::support;

use std::collections::HashMap;

use crate::remediator::*;
use chrono::{Duration, SubsecRound, Utc};
use keyguard_aws::org::AccountFilter;
use keyguard_aws::secrets::secret_name;
use keyguard_core::ROTATING_TAG;
use remediator::{run_account, sweep, ActionKind, Forced, Mode, Outcome, Selection};
use serde_json::Value;
use support::{seed, Org, Rig, UserSpec};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn remediation_events_forced_rotation_and_restore() {
    let rig = Rig::get();
    let org = Org::new(1).await;
    let member = org.members[0].clone();
    let cfg = org.member(0).await;
    let now = Utc::now();
    let seeded = seed(
        &cfg,
        &member,
        &[
            UserSpec {
                path: "/ci/".into(),
                ..spec("deploy+bot@x", vec![(95, Some(1), true)])
            },
            spec("leaked", vec![(20, Some(1), true)]),
            spec("broke", vec![(120, Some(1), false), (20, Some(1), true)]),
        ],
        now,
    )
    .await;
    let r = remediator(&org, false).await;

    // A remediation payload from a central caller: one user by UserId, path and all.
    let event = serde_json::json!({"resourceId": seeded["deploy+bot@x"].user_id, "accountId": member, "resourceType": "AWS::IAM::User"});
    let s = remediator::handle(&r, event, now).await.unwrap();
    assert!(done(&s, "deploy+bot@x", "rotate"), "{s:#?}");
    assert_eq!(s.accounts[0].examined, 1);
    let unknown = serde_json::json!({"resourceId": "AIDANOSUCHUSER", "accountId": member});
    let s = remediator::handle(&r, unknown, now).await.unwrap();
    assert!(s.accounts[0].error.is_some(), "{s:#?}");
    assert!(s.accounts[0]
        .error
        .as_deref()
        .unwrap()
        .contains("AIDANOSUCHUSER"));
    assert!(
        s.into_result().is_err(),
        "an unknown user fails the invocation"
    );
    let bad = remediator::handle(
        &r,
        serde_json::json!({"messageType": "ScheduledNotification"}),
        now,
    )
    .await;
    assert!(bad.unwrap_err().to_string().contains("unknown event"));

    // A forced rotation of a key that is not due.
    let event = serde_json::json!({"kind": "manual", "account": member, "user": "leaked", "forceRotate": true});
    let s = remediator::handle(&r, event, now).await.unwrap();
    assert!(done(&s, "leaked", "rotate"), "{s:#?}");
    assert_eq!(keys_of(&cfg).await["leaked"].len(), 2);
    let again = serde_json::json!({"kind": "manual", "account": member, "user": "leaked", "forceRotate": true});
    let s = remediator::handle(&r, again, now).await.unwrap();
    let refused = s.accounts[0]
        .actions
        .iter()
        .find(|a| a.outcome == Outcome::Failed);
    assert!(
        refused.is_some_and(|a| a.why.contains("never creates a third")),
        "{s:#?}"
    );
    assert_eq!(keys_of(&cfg).await["leaked"].len(), 2);

    // Restore: the disabled key of "broke" was disabled 3 days ago.
    let disabled = seeded["broke"].keys[0].clone();
    record_disabled(
        &org,
        &cfg,
        &member,
        "broke",
        &disabled,
        now - Duration::days(3),
    )
    .await;
    let record = remediator::restore(&r, &member, "broke", &disabled, false, now)
        .await
        .unwrap();
    assert_eq!(record.outcome, Outcome::Done);
    let keys = &keys_of(&cfg).await["broke"];
    assert!(keys.iter().all(|k| k.1), "re-enabled");
    let tags = user_tags(&cfg, "broke").await;
    assert!(
        tags.contains_key(&format!("keyguard:restored:{disabled}"))
            && !tags.contains_key(&format!("keyguard:disabled:{disabled}"))
    );
    // The next sweep leaves it alone for the installation grace, then disables it again.
    let report = run_account(
        &r,
        member_account(&org, 0),
        &Selection::Name("broke".into()),
        &Forced::No,
        Mode::Auto,
        now + Duration::days(1),
    )
    .await;
    assert!(
        !report
            .actions
            .iter()
            .any(|a| a.action == ActionKind::Disable),
        "{report:#?}"
    );
    let later = now + Duration::days(11);
    rig.use_key(&member, &seeded["broke"].keys[1], later - Duration::days(1));
    rig.use_key(&member, &disabled, later - Duration::days(1));
    let report = run_account(
        &r,
        member_account(&org, 0),
        &Selection::Name("broke".into()),
        &Forced::No,
        Mode::Auto,
        later,
    )
    .await;
    assert!(
        report
            .actions
            .iter()
            .any(|a| a.action == ActionKind::Disable && a.outcome == Outcome::Done),
        "{report:#?}"
    );
    // A key past its recovery grace is not restorable.
    let err = remediator::restore(
        &r,
        &member,
        "broke",
        &disabled,
        false,
        later + Duration::days(11),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("recovery grace ended"), "{err}");
}

/// The central account itself is reached without AssumeRole: keyguard works there with the
/// remediator's own execution role (deploy/central.yaml grants it the member role's actions for
/// that account only), exactly as in a member account.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_central_account_is_remediated_with_the_functions_own_role() {
    let org = Org::new(0).await;
    let central = org.management.clone();
    let t0 = Utc::now().trunc_subsecs(0);
    let seeded = seed(&org.config, &central, &stages(t0), t0).await;
    record_disabled(
        &org,
        &org.config,
        &central,
        "disabled-past-recovery",
        &seeded["disabled-past-recovery"].keys[0],
        t0 - Duration::days(15),
    )
    .await;
    // A rotation of `fresh` was interrupted an hour ago (before it created a key).
    let mark = keyguard_core::RotationMark {
        at: t0 - Duration::hours(1),
        attempt: "kg-interrupted".into(),
    };
    record(
        &org,
        &org.config,
        &central,
        "fresh",
        ROTATING_TAG,
        &mark.value(),
    )
    .await;
    let r = remediator(&org, false).await;
    let filter = AccountFilter {
        include: vec![central.clone()],
        exclude: vec![],
    };
    let summary = sweep(&r, &filter, Mode::Auto, t0).await.unwrap();
    assert_eq!(summary.failures(), 0, "{summary:#?}");
    for (user, action) in [
        ("due-used", "rotate"),
        ("due-never", "disable"),
        ("rotated-past-grace", "disable"),
        ("disabled-past-recovery", "delete"),
    ] {
        assert!(
            done(&summary, user, action),
            "{user} {action}: {summary:#?}"
        );
    }
    let (stored, _) = stored_key(&org.config, &central, "due-used")
        .await
        .expect("the new key's secret, in the central account");
    let keys = keys_of(&org.config).await;
    assert!(keys["due-used"].iter().any(|k| k.0 == stored && k.1));
    // The interrupted rotation was checked against the secret and its mark cleared.
    assert!(!user_tags(&org.config, "fresh")
        .await
        .contains_key(ROTATING_TAG));
    // A person's request for one user, by name.
    let manual = remediator::handle(
        &r,
        serde_json::json!({"kind": "manual", "account": central, "user": "at-warn"}),
        t0,
    )
    .await
    .unwrap();
    assert_eq!(manual.failures(), 0, "{manual:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_account_failing_does_not_stop_the_sweep() {
    let rig = Rig::get();
    let org = Org::new(2).await;
    let now = Utc::now();
    for i in 0..2 {
        let cfg = org.member(i).await;
        seed(
            &cfg,
            &org.members[i],
            &[spec("due", vec![(95, Some(1), true)])],
            now,
        )
        .await;
    }
    let mut r = remediator(&org, false).await;
    // The accounts come through the org-list role (deploy/org-list-role.yaml), as when the central
    // account is neither the management account nor a delegated admin.
    r.role.org_role_arn = Some(format!(
        "arn:aws:iam::{}:role/keyguard-org-list",
        org.management
    ));
    // The first member throttles its inventory beyond the retries.
    rig.fault(
        Some(&org.members[0]),
        "GetAccountAuthorizationDetails",
        "Throttling",
        20,
    );
    let filter = AccountFilter {
        include: org.members.clone(),
        exclude: vec![],
    };
    let s = sweep(&r, &filter, Mode::Auto, now).await.unwrap();
    rig.clear_faults(&org.members[0]);
    let listed_by = rig.calls_by_role();
    assert!(
        listed_by["keyguard-org-list"]["organizations:ListAccounts"] >= 1,
        "{listed_by:?}"
    );
    let by_id: HashMap<&str, &remediator::AccountReport> =
        s.accounts.iter().map(|a| (a.account.as_str(), a)).collect();
    assert!(
        by_id[org.members[0].as_str()]
            .error
            .as_deref()
            .unwrap()
            .contains("GetAccountAuthorizationDetails"),
        "{s:#?}"
    );
    assert!(by_id[org.members[1].as_str()]
        .actions
        .iter()
        .any(|a| a.action == ActionKind::Rotate && a.outcome == Outcome::Done));
    assert_eq!(s.failures(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn api_calls_stay_within_the_budget() {
    let rig = Rig::get();
    let org = Org::new(1).await;
    let member = org.members[0].clone();
    let cfg = org.member(0).await;
    let now = Utc::now();
    let mut specs: Vec<UserSpec> = (0..48)
        .map(|i| spec(&format!("fresh-{i}"), vec![(20, Some(1), true)]))
        .collect();
    for i in 0..4 {
        specs.push(spec(&format!("rotate-{i}"), vec![(95, Some(1), true)]));
    }
    for i in 0..2 {
        specs.push(spec(
            &format!("rotate-again-{i}"),
            vec![(95, Some(1), true)],
        ));
    }
    for i in 0..3 {
        specs.push(spec(&format!("disable-{i}"), vec![(95, None, true)]));
    }
    for i in 0..3 {
        specs.push(spec(
            &format!("delete-{i}"),
            vec![(130, None, false), (40, Some(1), true)],
        ));
    }
    let seeded = seed(&cfg, &member, &specs, now).await;
    let sm = aws_sdk_secretsmanager::Client::new(&cfg);
    for i in 0..3 {
        let user = format!("delete-{i}");
        let id = &seeded[&user].keys[0];
        record_disabled(&org, &cfg, &member, &user, id, now - Duration::days(15)).await;
    }
    for i in 0..2 {
        // A secret from an earlier rotation (or from the aws-samples solution) exists.
        sm.create_secret()
            .name(secret_name(&member, &format!("rotate-again-{i}")))
            .secret_string("{}")
            .send()
            .await
            .unwrap();
    }
    let (u, f) = (specs.len(), 12);
    let r = remediator(&org, false).await;
    rig.reset_calls(&member);
    rig.reset_calls(&org.management);
    let report = scheduled_run(&r, member_account(&org, 0), now).await;
    assert_eq!(report.failures(), 0, "{report:#?}");
    assert_eq!(
        report.examined, f,
        "only users needing action are read live"
    );
    let member_calls: u64 = rig.calls(&member).values().sum();
    let central = rig.calls(&org.management);
    let central_calls: u64 = central.values().sum();
    let total = member_calls + central_calls;
    // 6 to read the account (AssumeRole, report, authorization details), 1 Query of keyguard's
    // records; per user acted on at most 14: the lease (PutItem, DeleteItem), its records
    // (GetItem, PutItem; a rotation's mark one more), the live read, the re-check before a
    // disable or delete, the writes, the owner's email, and the first notices (GetItem before
    // a disable or delete, UpdateItem of what the owner was told); per key whose use the owner
    // is told of (a disable, a hold, a warning) at most 3: GetAccessKeyLastUsed and a page of
    // LookupEvents in us-east-1 and in the Region IAM last saw it used in.
    // Per rotation 1 more: whose the secret of the user's name is (DescribeSecret); per secret
    // from before keyguard's user-id tag 2 more, once (GetUser, TagResource): here the two
    // rotate-again secrets.
    let (described, rotations, adopted) = (3, 6, 2);
    let bound =
        7 + u.div_ceil(1000) as u64 + 14 * f as u64 + 3 * described + rotations + 2 * adopted;
    println!("remediator API calls: U={u} F={f}: {total} (member {member_calls}, central {central_calls}: {central:?}); bound {bound}");
    println!("member calls: {:?}", rig.calls(&member));
    assert!(total <= bound, "{total} calls > {bound}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cli_log_of_an_enforcing_run_holds_no_secret() {
    let org = Org::new(1).await;
    let member = org.members[0].clone();
    let cfg = org.member(0).await;
    let now = Utc::now();
    seed(&cfg, &member, &stages(now), now).await;
    let ses = aws_sdk_sesv2::Client::new(&org.config);
    let _ = ses
        .create_email_identity()
        .email_identity(SENDER)
        .send()
        .await;
    crate::scale::create_table(&org.config, TABLE).await;
    // Without the table's lease (or --no-lease) the CLI refuses to write.
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_keyguard"))
        .args(["remediate", "--account", &member, "--dry-run", "false"])
        .args(["--member-role", "keyguard-member-remediator"])
        .envs(org.env().await)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--no-lease"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(all_secrets(&cfg).await.is_empty(), "nothing written");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keyguard"))
        .args(["remediate", "--account", &member, "--dry-run", "false"])
        .args(["--member-role", "keyguard-member-remediator"])
        .args(["--state-table", TABLE])
        .args(["--notice-sender", SENDER, "--admin-emails", ADMIN])
        .envs(org.env().await)
        .env("KEYGUARD_LOG", "trace")
        .output()
        .unwrap();
    let log = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "keyguard remediate failed");
    let rotated = ["due-used", "exempt-expired", "deploy+bot@x"];
    for user in rotated {
        assert!(log.contains(user), "the log names {user}");
    }
    assert!(
        log.contains("CreateAccessKey") || log.contains("rotate"),
        "the log shows the run"
    );
    let secrets = all_secrets(&cfg).await;
    assert_eq!(secrets.len(), rotated.len(), "one stored key per rotation");
    for s in &secrets {
        // Never print the secret or the log on failure: that would leak it into test output.
        assert!(
            !log.contains(s.as_str()),
            "the log contains a secret access key"
        );
    }
}

#[test]
fn plan_from_evidence_prints_dated_steps() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keyguard"))
        .args(["plan", "--evidence"])
        .arg(support::repo_root().join("examples/acme"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("due now") && stdout.contains("rotate") && stdout.contains("disable"),
        "{stdout}"
    );
    let json = std::process::Command::new(env!("CARGO_BIN_EXE_keyguard"))
        .args(["plan", "--json", "--as-of", "2026-12-01", "--evidence"])
        .arg(support::repo_root().join("examples/acme"))
        .output()
        .unwrap();
    let plans: Vec<Value> = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(plans.len(), 56, "one plan per user of the example");
    assert!(plans.iter().any(|p| p["notes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["note"] == "exempt")));
    // Enforcing with --as-of is refused: the future cannot be enforced.
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_keyguard"))
        .args([
            "remediate",
            "--account",
            "111122223333",
            "--dry-run",
            "false",
            "--as-of",
            "2027-01-01",
        ])
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("only with DryRun"));
}
