//! AWS Health's exposed-key events through the `remediator` bootstrap (the packaged Lambda)
//! under a local Lambda Runtime API, against the rig: the key disabled at once and its successor
//! stored for the configured readers even with DryRun on; a repeated delivery and an update of
//! the event act once; the `AWS_RISK_IAM_QUARANTINE` variant acts; a member forwarding an event
//! that names another account's key changes nothing there; `EXPOSED_KEY_RESPONSE=notify` writes
//! nothing. Prints the time from the event's arrival to the key Inactive and the calls it took
//! (docs/security.md carries the figure).

#[path = "../../tests/support/mod.rs"]
mod support;

use std::time::Instant;

use chrono::Utc;
use serde_json::Value;
use support::lambda::LocalLambda;
use support::{fixture, seed, Org, Rig, UserSpec};

/// AWS's sample Health event for `account`, naming `key`, of type `code`.
fn health(account: &str, key: &str, code: &str) -> Value {
    let text = fixture("remediator/fixtures/health-credentials-exposed.json")
        .replace("123456789012", account)
        .replace("AKIAIOSFODNN7EXAMPLE", key)
        .replace("AWS_RISK_CREDENTIALS_EXPOSED", code);
    serde_json::from_str(&text).unwrap()
}

async fn remediator_env(org: &Org, response: &str) -> Vec<(&'static str, String)> {
    let mut env = support::env_of(
        &Rig::get()
            .as_role(
                &org.management,
                "keyguard-remediator",
                "keyguard-remediator",
            )
            .await,
    )
    .await;
    env.push(("KEYGUARD_STATE_TABLE", "keyguard-state".into()));
    // DryRun is on: the exposed-key response acts anyway (AWS quarantined the key already).
    env.push(("DRY_RUN_FLAG", "true".into()));
    env.push(("KEYGUARD_EXECUTION_ROLE", "keyguard-remediator".into()));
    env.push(("KEYGUARD_MEMBER_ROLE", "keyguard-member-remediator".into()));
    env.push((
        "SECRET_READERS",
        "arn:aws:iam::{account}:role/ci-deployer".into(),
    ));
    env.push(("EXPOSED_KEY_RESPONSE", response.into()));
    env.push(("EVENT_BUS", "keyguard-events".into()));
    env.push(("NOTICE_SENDER", "keyguard@security.example.com".into()));
    env.push(("ADMIN_EMAILS", "cloud-admins@example.com".into()));
    env
}

fn writes(calls: &std::collections::BTreeMap<String, u64>) -> u64 {
    calls
        .iter()
        .filter(|(k, _)| k.contains("Create") || k.contains("Update") || k.contains("Delete"))
        .map(|(_, n)| n)
        .sum()
}

/// The keys of `user` as (id, status).
async fn keys_of(cfg: &aws_config::SdkConfig, user: &str) -> Vec<(String, String)> {
    aws_sdk_iam::Client::new(cfg)
        .list_access_keys()
        .user_name(user)
        .send()
        .await
        .unwrap()
        .access_key_metadata()
        .iter()
        .map(|k| {
            (
                k.access_key_id().unwrap().to_string(),
                k.status().unwrap().as_str().to_string(),
            )
        })
        .collect()
}

/// An organization of `members` accounts whose first has users `names` (one 20-day key each),
/// the central table and bus, and the remediator's bootstrap with `response`.
async fn deployed(
    members: usize,
    names: &[&str],
    response: &str,
) -> (
    Org,
    std::collections::HashMap<String, support::Seeded>,
    LocalLambda,
) {
    let org = Org::new(members).await;
    let cfg = org.member(0).await;
    let specs: Vec<UserSpec> = names
        .iter()
        .map(|n| UserSpec {
            name: (*n).into(),
            keys: vec![(20, Some(0), true)],
            ..UserSpec::default()
        })
        .collect();
    let users = seed(&cfg, &org.members[0], &specs, Utc::now()).await;
    support::create_table(&org.config, "keyguard-state").await;
    let _ = aws_sdk_sesv2::Client::new(&org.config)
        .create_email_identity()
        .email_identity("keyguard@security.example.com")
        .send()
        .await;
    aws_sdk_eventbridge::Client::new(&org.config)
        .create_event_bus()
        .name("keyguard-events")
        .send()
        .await
        .unwrap();
    let lambda = LocalLambda::start_as(
        env!("CARGO_BIN_EXE_remediator").as_ref(),
        &support::lambda::function_arn(&org.management, "keyguard-remediator"),
        remediator_env(&org, response).await,
    );
    (org, users, lambda)
}

#[tokio::test]
async fn an_exposed_key_is_disabled_at_once_with_its_successor_stored() {
    let (org, users, mut lambda) = deployed(1, &["ci-deploy"], "rotate-and-disable").await;
    let a = org.members[0].clone();
    let cfg = org.member(0).await;
    let rig = Rig::get();
    let exposed = users["ci-deploy"].keys[0].clone();
    rig.reset_calls(&a);
    rig.reset_calls(&org.management);
    let started = Instant::now();
    let answer = lambda
        .invoke(&health(&a, &exposed, "AWS_RISK_CREDENTIALS_EXPOSED"))
        .ok();
    let took = started.elapsed();
    let actions = answer["accounts"][0]["actions"].as_array().unwrap();
    let done: Vec<(&str, &str)> = actions
        .iter()
        .map(|a| {
            (
                a["action"].as_str().unwrap(),
                a["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(done, [("rotate", "done"), ("disable", "done")], "{answer}");
    assert!(
        actions[1]["why"]
            .as_str()
            .unwrap()
            .starts_with("AWS Health AWS_RISK_CREDENTIALS_EXPOSED: "),
        "{answer}"
    );
    assert!(
        !answer.to_string().contains(&exposed),
        "the key id is masked: {answer}"
    );
    let keys = keys_of(&cfg, "ci-deploy").await;
    assert_eq!(keys.len(), 2);
    assert!(
        keys.iter().any(|(id, s)| id == &exposed && s == "Inactive"),
        "{keys:?}"
    );
    assert!(
        keys.iter().any(|(id, s)| id != &exposed && s == "Active"),
        "{keys:?}"
    );
    // The successor is stored, readable by the configured reader and not by the user.
    let policy = aws_sdk_secretsmanager::Client::new(&cfg)
        .get_resource_policy()
        .secret_id(keyguard_aws::secrets::secret_name(&a, "ci-deploy"))
        .send()
        .await
        .unwrap();
    let policy = policy.resource_policy().unwrap();
    assert!(
        policy.contains("role/ci-deployer") && !policy.contains(":user/ci-deploy"),
        "{policy}"
    );
    let member_calls = rig.calls(&a);
    let central_calls = rig.calls(&org.management);
    assert_eq!(
        central_calls.get("events:PutEvents").copied(),
        Some(1),
        "{central_calls:?}"
    );
    // The owner (here the account's email: the user has no owner tag) and the admin are told,
    // with AWS's description, the key id masked.
    let mails = rig.emails(&org.management);
    let told: Vec<&str> = mails
        .iter()
        .filter(|m| {
            m["text"]
                .as_str()
                .unwrap_or_default()
                .contains("AWS Health AWS_RISK_CREDENTIALS_EXPOSED")
        })
        .flat_map(|m| {
            m["to"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap())
        })
        .collect();
    assert!(
        told.contains(&format!("member-0@{}.example.com", org.management).as_str())
            && told.contains(&"cloud-admins@example.com"),
        "{told:?}"
    );
    assert!(
        !serde_json::to_string(&mails).unwrap().contains(&exposed),
        "no full key id in mail"
    );
    println!(
        "exposed-key response: event → key Inactive in {} ms; {} calls in the member account, {} central ({} writes in the member)",
        took.as_millis(),
        member_calls.values().sum::<u64>(),
        central_calls.values().sum::<u64>(),
        writes(&member_calls)
    );
}

/// The same event delivered again, and an update of it (same ARN), act once; the quarantine
/// variant (region global) acts too.
#[tokio::test]
async fn a_repeated_or_updated_event_acts_once_and_the_quarantine_variant_acts() {
    let (org, users, mut lambda) = deployed(1, &["ci", "vendor"], "rotate-and-disable").await;
    let a = org.members[0].clone();
    let cfg = org.member(0).await;
    let rig = Rig::get();
    let exposed = users["ci"].keys[0].clone();
    lambda
        .invoke(&health(&a, &exposed, "AWS_RISK_CREDENTIALS_EXPOSED"))
        .ok();
    rig.reset_calls(&a);
    let again = lambda
        .invoke(&health(&a, &exposed, "AWS_RISK_CREDENTIALS_EXPOSED"))
        .ok();
    let mut update = health(&a, &exposed, "AWS_RISK_CREDENTIALS_EXPOSED");
    update["detail"]["communicationId"] = "01b0993207d81a09dcd552ebd1e633e36cf1f09a-2".into();
    update["detail"]["statusCode"] = "closed".into();
    let updated = lambda.invoke(&update).ok();
    for answer in [&again, &updated] {
        assert!(answer.to_string().contains("answered already"), "{answer}");
    }
    assert_eq!(writes(&rig.calls(&a)), 0, "{:?}", rig.calls(&a));
    let vendor_key = users["vendor"].keys[0].clone();
    let mut quarantine = health(&a, &vendor_key, "AWS_RISK_IAM_QUARANTINE");
    quarantine["region"] = "global".into();
    quarantine["detail"]["eventArn"] =
        "arn:aws:health:global::event/RISK/AWS_RISK_IAM_QUARANTINE/AWS_RISK_IAM_QUARANTINE_YYYY"
            .into();
    let answer = lambda.invoke(&quarantine).ok();
    assert!(
        keys_of(&cfg, "vendor")
            .await
            .iter()
            .any(|(id, s)| id == &vendor_key && s == "Inactive"),
        "{answer}"
    );
}

/// Member B forwards a Health event naming A's key: it is looked for in B and nothing happens
/// in A; claiming A in its detail is refused outright.
#[tokio::test]
async fn a_member_forwarding_another_accounts_key_changes_nothing_there() {
    let (org, users, mut lambda) = deployed(2, &["victim"], "rotate-and-disable").await;
    let (a, b) = (org.members[0].clone(), org.members[1].clone());
    let rig = Rig::get();
    let key = users["victim"].keys[0].clone();
    rig.reset_calls(&a);
    let answer = lambda
        .invoke(&health(&b, &key, "AWS_RISK_CREDENTIALS_COMPROMISED"))
        .ok();
    assert!(
        answer
            .to_string()
            .contains("which no user of this account holds"),
        "{answer}"
    );
    assert!(
        rig.calls(&a).is_empty(),
        "nothing called in A: {:?}",
        rig.calls(&a)
    );
    let mut claims = health(&b, &key, "AWS_RISK_CREDENTIALS_COMPROMISED");
    claims["detail"]["affectedAccount"] = a.clone().into();
    let (error_type, message) = lambda.invoke(&claims).err();
    assert_eq!(error_type, "MalformedEvent", "{message}");
    assert!(keys_of(&org.member(0).await, "victim")
        .await
        .iter()
        .all(|(_, s)| s == "Active"));
}

/// `EXPOSED_KEY_RESPONSE=notify`: previews of what the default would do, nothing written.
#[tokio::test]
async fn notify_tells_and_writes_nothing() {
    let (org, users, mut lambda) = deployed(1, &["ci"], "notify").await;
    let a = org.members[0].clone();
    let rig = Rig::get();
    rig.reset_calls(&a);
    let answer = lambda
        .invoke(&health(
            &a,
            &users["ci"].keys[0],
            "AWS_RISK_CREDENTIALS_EXPOSED",
        ))
        .ok();
    assert_eq!(answer["dry_run"], true, "{answer}");
    let outcomes: Vec<(&str, &str)> = answer["accounts"][0]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["action"].as_str().unwrap(),
                a["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [("rotate", "preview"), ("disable", "preview")],
        "{answer}"
    );
    assert_eq!(writes(&rig.calls(&a)), 0, "{:?}", rig.calls(&a));
}

/// Another run holds the user (a backup Region's delivery of the same event, a member's request)
/// when the event arrives: the invocation fails as `Busy` and nothing is remembered, so that
/// EventBridge's next delivery answers it once the user is free.
#[tokio::test]
async fn a_user_held_by_another_run_is_answered_on_the_next_delivery() {
    let (org, users, mut lambda) = deployed(1, &["ci"], "rotate-and-disable").await;
    let a = org.members[0].clone();
    let key = users["ci"].keys[0].clone();
    let mut r = remediator::Remediator::new(
        org.config.clone(),
        keyguard_aws::sdk::Caller {
            account: org.management.clone(),
            partition: "aws".into(),
            arn: String::new(),
        },
        keyguard_core::Settings::default(),
        keyguard_aws::sdk::RoleSpec {
            role_name: "keyguard-member-remediator".into(),
            session_name: "keyguard".into(),
            org_role_arn: None,
        },
    );
    let table = keyguard_aws::state::StateTable::new(&org.config, "keyguard-state");
    r.state = Some(table.clone());
    let remediator::lease::Taken::Held(lease) =
        remediator::lease::take(&r, &table, &a, "ci", "another-run")
            .await
            .unwrap()
    else {
        panic!("the lease is free")
    };
    let event = health(&a, &key, "AWS_RISK_CREDENTIALS_EXPOSED");
    let (error_type, message) = lambda.invoke(&event).err();
    assert!(
        message.contains("another keyguard run holds its user"),
        "{error_type}: {message}"
    );
    remediator::lease::release(&table, &lease).await.unwrap();
    let answer = lambda.invoke(&event).ok();
    assert!(!answer.to_string().contains("answered already"), "{answer}");
    assert!(
        keys_of(&org.member(0).await, "ci")
            .await
            .iter()
            .any(|(id, s)| id == &key && s == "Inactive"),
        "{answer}"
    );
}
