//! The trust boundary (issue 14), one test per attack, against the rig: what a member account's
//! administrator can make keyguard do. The templates' side (who may invoke, the request bus's
//! policy and pattern) is asserted in `deploy.rs`.

use chrono::{SubsecRound, Utc};
use remediator::{handle_invocation, Answer, Invocation};
use serde_json::Value;

use crate::remediator::{keys_of, remediator, spec};
use crate::support::{repo_root, seed, Org, Rig};

/// Config's compliance-change event as the central request bus receives it from `account`.
fn compliance_change(account: &str, user_id: &str) -> Value {
    let text = std::fs::read_to_string(
        repo_root().join("remediator/fixtures/config-compliance-change.json"),
    )
    .unwrap()
    .replace("{{account}}", account)
    .replace("{{user_id}}", user_id);
    serde_json::from_str(&text).unwrap()
}

/// What keyguard's SSM document puts on the central request bus when Config remediates a user
/// of `account` (the fixture `deploy_pack.rs` checks against the document).
fn remediation_request(account: &str, user_id: &str) -> Value {
    let text = std::fs::read_to_string(
        repo_root().join("remediator/fixtures/keyguard-remediation-request.json"),
    )
    .unwrap()
    .replace("{{account}}", account)
    .replace("{{user_id}}", user_id);
    serde_json::from_str(&text).unwrap()
}

/// Two member accounts, A with a user `victim` whose only key is due for rotation, and the
/// remediator; A's call counts reset.
struct Two {
    org: Org,
    a: String,
    b: String,
    cfg_a: aws_config::SdkConfig,
    victim: String,
    r: remediator::Remediator,
}

async fn two_accounts() -> Two {
    let org = Org::new(2).await;
    let now = Utc::now().trunc_subsecs(0);
    let (a, b) = (org.members[0].clone(), org.members[1].clone());
    let cfg_a = org.member(0).await;
    let seeded = seed(
        &cfg_a,
        &a,
        &[spec("victim", vec![(95, Some(1), true)])],
        now,
    )
    .await;
    let victim = seeded["victim"].user_id.clone();
    let r = remediator(&org, false).await;
    Rig::get().reset_calls(&a);
    Two {
        org,
        a,
        b,
        cfg_a,
        victim,
        r,
    }
}

fn now_inv() -> Invocation {
    Invocation {
        now: Utc::now().trunc_subsecs(0),
        deadline: None,
    }
}

/// The attacker controls account B and wants a key of account A rotated: the event's account is
/// B (EventBridge sets it), so naming A's user, or A in the detail, does nothing to A.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_cannot_make_keyguard_act_in_another_account() {
    let Two {
        org: _org,
        a,
        b,
        cfg_a,
        victim,
        r,
    } = two_accounts().await;
    let rig = Rig::get();
    // B's bus forwards an event about A's user: the remediator looks for it in B.
    let from_b = handle_invocation(&r, compliance_change(&b, &victim), now_inv()).await;
    let answered = format!("{from_b:?}");
    assert!(
        !answered.contains("victim"),
        "no name in the answer: {answered}"
    );
    // B's event claiming A in its detail is refused outright.
    let mut claims_a = compliance_change(&b, &victim);
    claims_a["detail"]["awsAccountId"] = a.clone().into();
    let refused = handle_invocation(&r, claims_a, now_inv()).await;
    assert!(refused.is_err_and(|e| e
        .to_string()
        .contains("not the account the event came from")));
    assert_eq!(
        keys_of(&cfg_a).await["victim"].len(),
        1,
        "A's user untouched"
    );
    let writes: u64 = rig
        .calls(&a)
        .iter()
        .filter(|(k, _)| {
            k.contains("Create")
                || k.contains("Update")
                || k.contains("Delete")
                || k.contains("Tag")
        })
        .map(|(_, n)| n)
        .sum();
    assert_eq!(writes, 0, "{:?}", rig.calls(&a));
}

/// The attacker controls account B's Config and its remediation document, and "remediates" a
/// user of account A: the request's account is B (EventBridge sets it), so A's user is looked
/// for in B and nothing happens to A; a request claiming A in its detail is refused outright;
/// A's own remediation of its user is served with the normal policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_config_remediation_for_another_accounts_user_is_refused() {
    let Two {
        org: _org,
        a,
        b,
        cfg_a,
        victim,
        r,
    } = two_accounts().await;
    let rig = Rig::get();
    let from_b = handle_invocation(&r, remediation_request(&b, &victim), now_inv())
        .await
        .unwrap();
    let Answer::Requested(q) = &from_b else {
        panic!("{from_b:?}")
    };
    assert!(q.account == b && q.done == 0, "{q:?}");
    let mut claims_a = remediation_request(&b, &victim);
    claims_a["detail"]["accountId"] = a.clone().into();
    let refused = handle_invocation(&r, claims_a, now_inv()).await;
    assert!(refused.is_err_and(|e| e
        .to_string()
        .contains("not the account the event came from")),);
    assert!(
        rig.calls(&a).is_empty(),
        "nothing called in A: {:?}",
        rig.calls(&a)
    );
    assert_eq!(
        keys_of(&cfg_a).await["victim"].len(),
        1,
        "A's user untouched"
    );
    // A's own remediation: the normal policy (its key is 95 days old: rotated).
    let own = handle_invocation(&r, remediation_request(&a, &victim), now_inv())
        .await
        .unwrap();
    let Answer::Requested(q) = &own else {
        panic!("{own:?}")
    };
    assert!(q.acted && q.done == 1, "{q:?}");
    assert_eq!(keys_of(&cfg_a).await["victim"].len(), 2, "rotated");
}

/// A member floods the request bus with its own users' findings: each user is acted on once a
/// day, with the normal policy, and the answer names nobody.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_request_runs_once_per_user_per_day_and_names_nobody() {
    let org = Org::new(1).await;
    let now = Utc::now().trunc_subsecs(0);
    let a = org.members[0].clone();
    let cfg = org.member(0).await;
    let seeded = seed(
        &cfg,
        &a,
        &[spec("ci+deploy@x", vec![(95, Some(1), true)])],
        now,
    )
    .await;
    let id = seeded["ci+deploy@x"].user_id.clone();
    let r = remediator(&org, false).await;
    let first = handle_invocation(&r, compliance_change(&a, &id), now_inv())
        .await
        .unwrap();
    let Answer::Requested(q) = &first else {
        panic!("{first:?}")
    };
    assert!(q.acted && q.done == 1 && q.failed == 0, "{q:?}");
    let text = serde_json::to_string(&first).unwrap();
    for secret_of_the_run in ["ci+deploy", "example.com", "Account_", "AKIA"] {
        assert!(!text.contains(secret_of_the_run), "{text}");
    }
    assert_eq!(keys_of(&cfg).await["ci+deploy@x"].len(), 2, "rotated");
    for _ in 0..3 {
        let again = handle_invocation(&r, compliance_change(&a, &id), now_inv())
            .await
            .unwrap();
        let Answer::Requested(q) = again else {
            panic!("{again:?}")
        };
        assert!(!q.acted && q.examined == 0, "{q:?}");
    }
}

/// The attacker holds a copy of a key keyguard is about to rotate. `--leaked` (the manual event's
/// `leaked`) disables it at once and gives its successor only to the configured readers: the
/// secret's policy does not name the user, whose leaked key could otherwise read the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leaked_key_cannot_read_its_successor() {
    let org = Org::new(1).await;
    let now = Utc::now().trunc_subsecs(0);
    let a = org.members[0].clone();
    let cfg = org.member(0).await;
    seed(&cfg, &a, &[spec("ci", vec![(30, Some(1), true)])], now).await;
    let leaked = keys_of(&cfg).await["ci"][0].0.clone();
    let mut r = remediator(&org, false).await;
    r.secret_readers = vec!["arn:aws:iam::{account}:role/ci-deployer".into()];
    let summary = remediator::handle(
        &r,
        serde_json::json!({"kind": "manual", "account": a, "user": "ci", "leaked": true}),
        now,
    )
    .await
    .unwrap();
    assert_eq!(summary.failures(), 0, "{summary:#?}");
    let keys = keys_of(&cfg).await["ci"].clone();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(
        keys.iter().any(|k| k.0 == leaked && !k.1),
        "leaked key Inactive at once"
    );
    let sm = aws_sdk_secretsmanager::Client::new(&cfg);
    let name = keyguard_aws::secrets::secret_name(&a, "ci");
    let policy = sm
        .get_resource_policy()
        .secret_id(&name)
        .send()
        .await
        .unwrap()
        .resource_policy
        .unwrap();
    assert!(
        !policy.contains(":user/ci"),
        "the user is no reader: {policy}"
    );
    assert!(
        policy.contains(&format!("arn:aws:iam::{a}:role/ci-deployer")),
        "{policy}"
    );
    let (stored, works) = crate::remediator::stored_key(&cfg, &a, "ci").await.unwrap();
    assert!(stored != leaked && works);

    // With the default readers (the user itself) there is no reader to give it to: the leaked
    // key is still disabled at once, and no successor is made.
    let org = Org::new(1).await;
    let b = org.members[0].clone();
    let cfg = org.member(0).await;
    seed(&cfg, &b, &[spec("ci", vec![(30, Some(1), true)])], now).await;
    let r = remediator(&org, false).await;
    let summary = remediator::handle(
        &r,
        serde_json::json!({"kind": "manual", "account": b, "user": "ci", "leaked": true}),
        now,
    )
    .await
    .unwrap();
    let keys = keys_of(&cfg).await["ci"].clone();
    assert_eq!(keys.len(), 1);
    assert!(!keys[0].1, "disabled at once");
    assert!(
        summary.accounts[0]
            .notes
            .iter()
            .any(|n| n.contains("no successor")),
        "{summary:#?}"
    );
}

/// Each member account's secrets are encrypted with that account's own key (the member stack's
/// `alias/keyguard-secrets`): a rotation in a member account stores its secret under it, so no
/// key of the central account (and no grant to another account) is involved.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn secrets_use_the_member_accounts_own_key() {
    let org = Org::new(1).await;
    let now = Utc::now().trunc_subsecs(0);
    let a = org.members[0].clone();
    let cfg = org.member(0).await;
    seed(&cfg, &a, &[spec("ci", vec![(95, Some(1), true)])], now).await;
    // The member stack's key and alias, made in the member account (with boto3 from the rig's
    // venv: keyguard's code never calls KMS, so the Rust crates do not carry its SDK).
    let env = crate::support::env_of(&cfg).await;
    let made = std::process::Command::new(crate::support::rig_python())
        .args([
            "-c",
            "import boto3\nk = boto3.client('kms')\nkey = k.create_key(Description='keyguard secrets')['KeyMetadata']['KeyId']\nk.create_alias(AliasName='alias/keyguard-secrets', TargetKeyId=key)\nprint(key)",
        ])
        .envs(env)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let key = String::from_utf8(made.stdout).unwrap().trim().to_string();
    let mut r = remediator(&org, false).await;
    r.kms_key_id = Some("alias/keyguard-secrets".into());
    let summary = remediator::handle(
        &r,
        serde_json::json!({"kind": "manual", "account": a, "user": "ci"}),
        now,
    )
    .await
    .unwrap();
    assert_eq!(summary.failures(), 0, "{summary:#?}");
    let sm = aws_sdk_secretsmanager::Client::new(&cfg);
    let described = sm
        .describe_secret()
        .secret_id(keyguard_aws::secrets::secret_name(&a, "ci"))
        .send()
        .await
        .unwrap();
    let used = described.kms_key_id().unwrap_or_default();
    assert!(
        used == "alias/keyguard-secrets" || used.ends_with(&key),
        "{used}"
    );
    let (_, works) = crate::remediator::stored_key(&cfg, &a, "ci").await.unwrap();
    assert!(works, "the stored key reads back and authenticates");
}

/// A member floods the request bus with made-up UserIds: past the day's cap its requests cost
/// nothing (its users wait for the daily sweep), and an excluded account's requests are ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_member_requests_is_capped_and_excluded_accounts_are_ignored() {
    let org = Org::new(1).await;
    let now = Utc::now().trunc_subsecs(0);
    let a = org.members[0].clone();
    let cfg = org.member(0).await;
    let seeded = seed(&cfg, &a, &[spec("ci", vec![(95, Some(1), true)])], now).await;
    let id = seeded["ci"].user_id.clone();
    let mut r = remediator(&org, false).await;
    // The day's requests so far: at the cap.
    let table = r.state.clone().unwrap();
    let day = now_inv().now.format("%Y-%m-%d").to_string();
    table
        .add(
            &format!("asked#{a}"),
            &format!("#day-{day}"),
            &[("count", remediator::REQUESTS_PER_ACCOUNT_PER_DAY)],
            None,
        )
        .await
        .unwrap();
    let rig = Rig::get();
    rig.reset_calls(&a);
    let capped = handle_invocation(&r, compliance_change(&a, &id), now_inv())
        .await
        .unwrap();
    let Answer::Requested(q) = capped else {
        panic!("{capped:?}")
    };
    assert!(!q.acted, "{q:?}");
    assert!(rig.calls(&a).is_empty(), "{:?}", rig.calls(&a));
    // An excluded account asks: nothing, whatever the cap.
    r.filter.exclude = vec![a.clone()];
    let excluded = handle_invocation(&r, compliance_change(&a, &id), now_inv())
        .await
        .unwrap();
    assert!(matches!(excluded, Answer::Requested(q) if !q.acted));
    assert_eq!(keys_of(&cfg).await["ci"].len(), 1, "nothing rotated");
}

/// A member floods the request bus with made-up UserIds: no request mails anyone (each used to
/// send the administrators a digest), and the next daily sweep's digest counts them, with the
/// account that went over its cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_made_up_user_ids_mails_nobody_and_the_daily_digest_counts_it() {
    let org = Org::new(1).await;
    let a = org.members[0].clone();
    let r = remediator(&org, false).await;
    let rig = Rig::get();
    let before = rig.emails(&org.management).len();
    for i in 0..4 {
        let asked = handle_invocation(
            &r,
            compliance_change(&a, &format!("AIDAMADEUP{i}")),
            now_inv(),
        )
        .await
        .unwrap();
        assert!(matches!(asked, Answer::Requested(q) if q.failed == 0 && q.done == 0));
    }
    assert_eq!(
        rig.emails(&org.management).len(),
        before,
        "no digest per made-up id"
    );
    // The rest of the day's flood is over the cap.
    let table = r.state.clone().unwrap();
    let day = now_inv().now.format("%Y-%m-%d").to_string();
    table
        .add(
            &format!("asked#{a}"),
            &format!("#day-{day}"),
            &[("count", remediator::REQUESTS_PER_ACCOUNT_PER_DAY)],
            None,
        )
        .await
        .unwrap();
    for i in 0..3 {
        handle_invocation(
            &r,
            compliance_change(&a, &format!("AIDAOVER{i}")),
            now_inv(),
        )
        .await
        .unwrap();
    }
    assert_eq!(rig.emails(&org.management).len(), before);
    // The next day's sweep: nothing to do in the account, but the digest tells of the flood.
    let accounts = vec![keyguard_core::Account {
        id: a.clone(),
        name: "flooded".into(),
        email: None,
    }];
    let tomorrow = now_inv().now + chrono::Duration::days(1);
    remediator::sweep_accounts(&r, accounts, remediator::Mode::Auto, tomorrow)
        .await
        .unwrap();
    let mails = rig.emails(&org.management);
    let digest = mails[before..]
        .iter()
        .find(|m| {
            m["to"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t == crate::remediator::ADMIN)
        })
        .expect("the daily digest");
    let text = digest["text"].as_str().unwrap();
    let expected = format!(
        "Member requests on {day}: 7 (0 run, 0 asked again, 4 named no user of their account, \
         3 over the cap of 200 per account); {a} was 3 over."
    );
    assert!(text.contains(&expected), "{text}");
}
