//! What one member account's administrator, or an IAM user allowed to change only itself, tries
//! against keyguard, one test per attack, against the rig: make the account unreadable, have a
//! spreadsheet run a formula. Each fails if its fix is undone.

use chrono::{SubsecRound, Utc};
use serde_json::Value;

use crate::remediator::{member_account, remediator, scheduled_run, spec};
use crate::report::keyguard;
use crate::support::{seed, Org, UserSpec};

/// An IAM path may hold any printable ASCII, commas included: a user under `/a,b/` once made
/// the credential report fail to parse, and the account's evaluation, sweep and report with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_under_a_comma_path_cannot_make_the_account_unreadable() {
    let org = Org::new(1).await;
    let member = org.members[0].clone();
    let cfg = org.member(0).await;
    let now = Utc::now().trunc_subsecs(0);
    let hostile = UserSpec {
        path: "/a,b/c,,d/".into(),
        ..spec("pathed,user", vec![(100, Some(1), true)])
    };
    seed(
        &cfg,
        &member,
        &[hostile, spec("victim", vec![(100, Some(1), true)])],
        now,
    )
    .await;

    // The attack is real: IAM's (the rig's) report leaves the commas of the path unquoted.
    let iam = aws_sdk_iam::Client::new(&cfg);
    while iam
        .generate_credential_report()
        .send()
        .await
        .unwrap()
        .state()
        != Some(&aws_sdk_iam::types::ReportStateType::Complete)
    {}
    let report = iam.get_credential_report().send().await.unwrap();
    let text = String::from_utf8(report.content().unwrap().as_ref().to_vec()).unwrap();
    let width = |l: &str| l.split(',').count();
    let header = width(text.lines().next().unwrap());
    assert!(text.lines().any(|l| width(l) > header + 2), "{text}");

    // The Config rule's reading (audit): every user evaluated, the comma'd one too.
    let env = org.env().await;
    let out = keyguard(&["audit", "--account", &member, "--json"], &env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let verdict = |user: &str| {
        rows.iter()
            .find(|r| r["user_name"] == user)
            .map(|r| r["compliance"].as_str().unwrap().to_string())
    };
    assert_eq!(
        verdict("victim").as_deref(),
        Some("NON_COMPLIANT"),
        "{rows:?}"
    );
    assert_eq!(
        verdict("pathed,user").as_deref(),
        Some("NON_COMPLIANT"),
        "{rows:?}"
    );

    // The sweep remediates both.
    let r = remediator(&org, true).await;
    let report = scheduled_run(&r, member_account(&org, 0), now).await;
    assert!(report.error.is_none(), "{report:#?}");
    for user in ["victim", "pathed,user"] {
        assert!(
            report
                .actions
                .iter()
                .any(|a| a.user == user && a.action == remediator::ActionKind::Rotate),
            "{user}: {report:#?}"
        );
    }
}

/// A user named `=1+1` (or `+1+1`, `-2+3`, `@SUM(1)`) in the CLI's CSV: a spreadsheet must see
/// text, as in the report's CSVs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clis_csv_does_not_open_as_formulas() {
    let org = Org::new(1).await;
    let member = org.members[0].clone();
    let cfg = org.member(0).await;
    let now = Utc::now().trunc_subsecs(0);
    let names = ["=1+1", "+1+1", "-2+3", "@SUM(1)"];
    let specs: Vec<UserSpec> = names
        .iter()
        .map(|n| spec(n, vec![(100, Some(1), true)]))
        .collect();
    seed(&cfg, &member, &specs, now).await;
    let env = org.env().await;
    for command in ["audit", "plan"] {
        let out = keyguard(&[command, "--account", &member, "--format", "csv"], &env);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let column = reader
            .headers()
            .unwrap()
            .iter()
            .position(|h| h == "user_name")
            .unwrap();
        let cells: Vec<String> = reader
            .records()
            .map(|r| r.unwrap()[column].to_string())
            .collect();
        for n in names {
            assert!(
                cells.contains(&format!("'{n}")),
                "{command}: {n} not neutralized: {text}"
            );
            assert!(
                !cells.contains(&n.to_string()),
                "{command}: {n} raw: {text}"
            );
        }
    }
}

/// Secrets are named after the user name. `V` is rotated (its secret holds its key), renamed
/// `V2`, and a new user `V` is made: its rotation must not reuse V2's secret (its policy, its
/// AWSPREVIOUS key). A secret from before keyguard tagged secrets with their user's id is
/// adopted only when it is younger than the user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_users_secret_is_not_inherited_by_the_next_user_of_its_name() {
    use crate::remediator::keys_of;
    use keyguard_aws::secrets::secret_name;
    let org = Org::new(1).await;
    let member = org.members[0].clone();
    let cfg = org.member(0).await;
    let now = Utc::now().trunc_subsecs(0);
    seed(&cfg, &member, &[spec("V", vec![(95, Some(1), true)])], now).await;
    let r = remediator(&org, false).await;
    let first = scheduled_run(&r, member_account(&org, 0), now).await;
    assert_eq!(first.failures(), 0, "{first:#?}");
    let sm = aws_sdk_secretsmanager::Client::new(&cfg);
    let v_key = stored_key(&sm, &member, "V").await;

    // The rename, and a new user of the old name whose key is due.
    let iam = aws_sdk_iam::Client::new(&cfg);
    iam.update_user()
        .user_name("V")
        .new_user_name("V2")
        .send()
        .await
        .unwrap();
    // An old secret made before its user existed (the aws-samples solution's, say, of an earlier
    // "late"), and one made after (an earlier keyguard's, of "early"): neither has the id tag.
    sm.create_secret()
        .name(secret_name(&member, "late"))
        .secret_string("{}")
        .send()
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    seed(
        &cfg,
        &member,
        &[
            spec("V", vec![(95, Some(1), true)]),
            spec("late", vec![(95, Some(1), true)]),
            spec("early", vec![(95, Some(1), true)]),
        ],
        now,
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    sm.create_secret()
        .name(secret_name(&member, "early"))
        .secret_string("{}")
        .send()
        .await
        .unwrap();

    let second = scheduled_run(&r, member_account(&org, 0), now).await;
    let rotate = |user: &str| {
        second
            .actions
            .iter()
            .find(|a| a.user == user && a.action == remediator::ActionKind::Rotate)
            .unwrap_or_else(|| panic!("{user}: {second:#?}"))
            .clone()
    };
    for user in ["V", "late"] {
        let a = rotate(user);
        assert_eq!(a.outcome, remediator::Outcome::Failed, "{a:#?}");
        assert!(a.why.contains("is not this user's"), "{a:#?}");
        assert!(
            second
                .notes
                .iter()
                .any(|n| n.starts_with(&format!("{user}: not rotated"))),
            "{second:#?}"
        );
    }
    assert!(
        rotate("V").why.contains("belongs to user id"),
        "{second:#?}"
    );
    let keys = keys_of(&cfg).await;
    assert_eq!(keys["V"].len(), 1, "no key made for V");
    assert_eq!(keys["late"].len(), 1, "no key made for late");
    assert_eq!(
        stored_key(&sm, &member, "V").await,
        v_key,
        "V2's secret untouched"
    );
    // The younger untagged secret is adopted (tagged with its user's id) and used.
    assert_eq!(rotate("early").outcome, remediator::Outcome::Done);
    let tags = sm
        .describe_secret()
        .secret_id(secret_name(&member, "early"))
        .send()
        .await
        .unwrap();
    assert!(tags
        .tags()
        .iter()
        .any(|t| t.key() == Some(keyguard_aws::secret_owner::USER_ID_TAG)));
}

/// The access key id the secret named after `user` holds.
async fn stored_key(sm: &aws_sdk_secretsmanager::Client, account: &str, user: &str) -> String {
    let v = sm
        .get_secret_value()
        .secret_id(keyguard_aws::secrets::secret_name(account, user))
        .send()
        .await
        .unwrap();
    let json: Value = serde_json::from_str(v.secret_string().unwrap()).unwrap();
    json["AccessKeyId"].as_str().unwrap().to_string()
}

/// A collected evidence folder whose account slice is edited afterwards (an account made to look
/// clean): the slice no longer matches the folder's manifest, so the report names the account
/// and does not use it, and uses the others.
#[test]
fn a_changed_evidence_file_is_named_and_not_used() {
    let src = crate::support::repo_root().join("examples/acme");
    let dir = crate::report::tmp("tampered-evidence");
    let folder = dir.join("acme");
    crate::report::copy_dir(&src, &folder);
    let forged = folder.join("310987654321/config-compliance.json");
    let text = std::fs::read_to_string(&forged)
        .unwrap()
        .replace("NON_COMPLIANT", "COMPLIANT");
    std::fs::write(&forged, text).unwrap();
    let out = crate::report::keyguard(
        &[
            "report",
            "--weekly",
            "--evidence",
            folder.to_str().unwrap(),
            "--out",
            dir.join("out").to_str().unwrap(),
        ],
        &[],
    );
    let stderr = crate::report::ok(&out);
    assert!(
        stderr.contains(
            "account 310987654321: its evidence slice failed the manifest's digest check \
             (310987654321/config-compliance.json changed since it was collected); it is not used"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("has no manifest.json"), "{stderr}");
    let non_compliant = std::fs::read_dir(dir.join("out"))
        .unwrap()
        .map(|e| e.unwrap().path().join("non-compliant-users.csv"))
        .find(|p| p.exists())
        .unwrap();
    let rows = crate::report::csv(&non_compliant);
    assert!(
        rows.iter().all(|r| r["account"] != "310987654321"),
        "{rows:?}"
    );
    assert!(
        rows.iter().any(|r| r["account"] == "210987654321"),
        "{rows:?}"
    );
}
