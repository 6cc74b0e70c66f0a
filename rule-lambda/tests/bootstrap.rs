//! The `rule-lambda` bootstrap binary (the one packaged for Lambda) answers a Config event under
//! cargo-lambda's local Lambda runtime (see tests/support/lambda.rs).

#[path = "../../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;

use chrono::{SubsecRound, Utc};
use serde_json::Value;
use support::lambda::LocalLambda;
use support::{fixture, seed, Org, Rig, UserSpec};

/// The bootstrap binary, built by this same `cargo test` (same profile, same target dir).
fn bootstrap() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rule-lambda"))
}

#[tokio::test]
async fn release_bootstrap_answers_a_config_event_under_cargo_lambda() {
    let org = Org::new(1).await;
    let member = org.members[0].clone();
    let t = Utc::now().trunc_subsecs(0);
    let spec = UserSpec {
        name: "ci".into(),
        keys: vec![(120, Some(1), true)],
        ..UserSpec::default()
    };
    let users = seed(&org.member(0).await, &member, &[spec], t).await;
    // The function runs as the central account, as it would in AWS.
    let mut env = org.env().await;
    env.push(("KEYGUARD_MEMBER_ROLE", "keyguard-member".into()));
    let lambda = LocalLambda::start(&bootstrap(), env);

    let text = fixture("rule-lambda/fixtures/scheduled.json")
        .replace("\"{{parameters}}\"", "\"\"")
        .replace("{{account}}", &member)
        .replace("{{time}}", &t.to_rfc3339())
        .replace("{{token}}", "keyguard-access-keys/bootstrap");
    let event: Value = serde_json::from_str(&text).unwrap();
    let out = lambda.invoke(&event);
    assert!(
        out.status.success(),
        "invoke failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).expect("the handler's JSON summary");
    assert_eq!(summary["account"], member.as_str());
    assert_eq!(summary["non_compliant"], 1);
    assert_eq!(summary["message_type"], "ScheduledNotification");

    let stored = Rig::get().calls(&member);
    assert_eq!(stored.get("config:PutEvaluations"), Some(&1));
    let config = aws_sdk_config::Client::new(&org.member(0).await);
    let results = config
        .get_compliance_details_by_config_rule()
        .config_rule_name("keyguard-access-keys")
        .send()
        .await
        .unwrap();
    let r = &results.evaluation_results()[0];
    assert_eq!(
        r.evaluation_result_identifier()
            .unwrap()
            .evaluation_result_qualifier()
            .unwrap()
            .resource_id(),
        Some(users["ci"].user_id.as_str())
    );
    assert_eq!(r.compliance_type().unwrap().as_str(), "NON_COMPLIANT");

    // A bad event is an invocation error with the handler's message.
    let mut bad = event.clone();
    bad["ruleParameters"] = Value::String(r#"{"RotationPeriod":"soon"}"#.into());
    let out = lambda.invoke(&bad);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success() && all.contains("RotationPeriod"),
        "{all}"
    );
}
