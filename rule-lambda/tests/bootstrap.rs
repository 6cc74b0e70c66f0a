//! The `rule-lambda` bootstrap binary (the one packaged for Lambda) answers Config events through
//! a local Lambda Runtime API (tests/support/lambda.rs), and a failed invocation names its error
//! with a stable `errorType`.

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
async fn the_bootstrap_answers_config_events_and_names_its_errors() {
    let org = Org::new(1).await;
    let member = org.members[0].clone();
    let t = Utc::now().trunc_subsecs(0);
    let spec = UserSpec {
        name: "ci".into(),
        keys: vec![(120, Some(1), true)],
        ..UserSpec::default()
    };
    let users = seed(&org.member(0).await, &member, &[spec], t).await;
    // The function runs in the member account, as its own role, as deployed: it learns its
    // account from the function ARN (no STS call at start-up).
    let mut env = support::env_of(
        &Rig::get()
            .as_role(&member, "keyguard-member-rule", "keyguard-rule-lambda")
            .await,
    )
    .await;
    env.push(("KEYGUARD_EXECUTION_ROLE", "keyguard-member-rule".into()));
    let mut lambda = LocalLambda::start_as(
        &bootstrap(),
        &support::lambda::function_arn(&member, "keyguard-rule-lambda"),
        env,
    );

    let text = fixture("rule-lambda/fixtures/scheduled.json")
        .replace("\"{{parameters}}\"", "\"\"")
        .replace("{{account}}", &member)
        .replace("{{time}}", &t.to_rfc3339())
        .replace("{{token}}", "keyguard-access-keys/bootstrap");
    let event: Value = serde_json::from_str(&text).unwrap();
    let summary = lambda.invoke(&event).ok();
    assert_eq!(summary["account"], member.as_str());
    assert_eq!(summary["non_compliant"], 1);
    assert_eq!(summary["message_type"], "ScheduledNotification");

    let stored = Rig::get().calls(&member);
    assert_eq!(stored.get("config:PutEvaluations"), Some(&1));
    assert!(
        !stored.contains_key("sts:GetCallerIdentity") && !stored.contains_key("sts:AssumeRole"),
        "the function knows who it is without STS: {stored:?}"
    );
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

    // A bad parameter is an invocation error naming it, with a stable errorType.
    let mut bad = event.clone();
    bad["ruleParameters"] = Value::String(r#"{"RotationPeriod":"soon"}"#.into());
    let (error_type, message) = lambda.invoke(&bad).err();
    assert_eq!(error_type, "InvalidParameter", "{message}");
    assert!(message.contains("RotationPeriod"), "{message}");

    // AWS's own sample Config event (aws_lambda_events' fixture: a snapshot-delivery message
    // with an unknown parameter) is a malformed event, not a Rust type name.
    let sample: Value = serde_json::from_str(&fixture(
        "rule-lambda/fixtures/aws-sample-config-event.json",
    ))
    .unwrap();
    let (error_type, message) = lambda.invoke(&sample).err();
    assert!(
        matches!(error_type.as_str(), "MalformedEvent" | "InvalidParameter"),
        "{error_type}: {message}"
    );
    assert!(!error_type.contains("::"), "{error_type}");

    // A payload that is not a Config event at all.
    let (error_type, message) = lambda.invoke(&serde_json::json!([1, 2])).err();
    assert_eq!(error_type, "MalformedEvent", "{message}");

    // Config refusing the evaluations: the AWS failure's kind.
    Rig::get().fault(Some(&member), "PutEvaluations", "AccessDenied", 1);
    let (error_type, message) = lambda.invoke(&event).err();
    assert_eq!(error_type, "AccessDenied", "{message}");
}
