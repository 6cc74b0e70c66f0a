//! The `remediator` bootstrap binary (the one packaged for Lambda) under a local Lambda Runtime
//! API (tests/support/lambda.rs): a remediation payload rotates a due key, and a failed step or
//! an account that cannot be reached fails the invocation with a stable `errorType` that names
//! the cause, so that its caller and CloudWatch see it.

#[path = "../../tests/support/mod.rs"]
mod support;

use chrono::Utc;
use serde_json::Value;
use support::lambda::LocalLambda;
use support::{fixture, seed, Org, Rig, UserSpec};

#[tokio::test]
async fn the_bootstrap_remediates_a_user_and_names_its_errors() {
    let org = Org::new(1).await;
    let member = org.members[0].clone();
    let cfg = org.member(0).await;
    let spec = |name: &str| UserSpec {
        name: name.into(),
        path: "/ci/".into(),
        keys: vec![(120, Some(1), true)],
        ..UserSpec::default()
    };
    let users = seed(
        &cfg,
        &member,
        &[spec("deploy+bot@x"), spec("second")],
        Utc::now(),
    )
    .await;
    // As deployed: the central account's execution role, its member roles elsewhere; the
    // function learns its account from its ARN (no STS call at start-up).
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
    support::create_table(&org.config, "keyguard-state").await;
    env.push(("KEYGUARD_STATE_TABLE", "keyguard-state".into()));
    env.push(("DRY_RUN_FLAG", "false".into()));
    env.push(("KEYGUARD_EXECUTION_ROLE", "keyguard-remediator".into()));
    env.push(("KEYGUARD_MEMBER_ROLE", "keyguard-member-remediator".into()));
    let mut lambda = LocalLambda::start_as(
        env!("CARGO_BIN_EXE_remediator").as_ref(),
        &support::lambda::function_arn(&org.management, "keyguard-remediator"),
        env,
    );
    let event = |user: &str| -> Value {
        let text = fixture("remediator/fixtures/remediation.json")
            .replace("{{user_id}}", &users[user].user_id)
            .replace("{{account}}", &member);
        serde_json::from_str(&text).unwrap()
    };

    let summary = lambda.invoke(&event("deploy+bot@x")).ok();
    let actions = summary["accounts"][0]["actions"].as_array().unwrap();
    assert_eq!(actions[0]["action"], "rotate", "{summary}");
    assert_eq!(actions[0]["outcome"], "done");
    assert_eq!(summary["dry_run"], false);
    let iam = aws_sdk_iam::Client::new(&cfg);
    let keys = iam
        .list_access_keys()
        .user_name("deploy+bot@x")
        .send()
        .await
        .unwrap();
    assert_eq!(keys.access_key_metadata().len(), 2);
    assert!(
        !Rig::get()
            .calls(&org.management)
            .contains_key("sts:GetCallerIdentity"),
        "the function knows who it is without STS"
    );

    // A step that fails makes the invocation fail, with the summary in the error.
    Rig::get().fault(Some(&member), "CreateAccessKey", "ServiceFailure", 1);
    let (error_type, message) = lambda.invoke(&event("second")).err();
    assert_eq!(error_type, "ActionsFailed", "{message}");
    assert!(
        message.contains("1 action(s) or account(s) failed") && message.contains("CreateAccessKey"),
        "{message}"
    );

    // A member role that cannot be assumed fails the invocation as that, not as a failed step.
    Rig::get().fault(Some(&org.management), "AssumeRole", "AccessDenied", 1);
    let (error_type, message) = lambda.invoke(&event("second")).err();
    assert_eq!(error_type, "AssumeRoleFailed", "{message}");
    assert!(
        message.contains("keyguard-member-remediator") && message.contains("access denied"),
        "{message}"
    );

    // An unknown event is an invocation error naming what was expected.
    let (error_type, message) = lambda.invoke(&serde_json::json!({"hello": "world"})).err();
    assert_eq!(error_type, "MalformedEvent", "{message}");
    assert!(message.contains("unknown event"), "{message}");

    // The scheduled event parses as the sweep (its handling is covered in tests/remediator.rs).
    let scheduled: Value =
        serde_json::from_str(&fixture("remediator/fixtures/scheduled.json")).unwrap();
    assert_eq!(
        remediator::Request::parse(scheduled).unwrap(),
        remediator::Request::Sweep {
            mode: remediator::Mode::Auto
        }
    );
    let manual: Value = serde_json::from_str(
        &fixture("remediator/fixtures/manual.json")
            .replace("{{account}}", &member)
            .replace("{{mode}}", "preview"),
    )
    .unwrap();
    assert!(matches!(
        remediator::Request::parse(manual).unwrap(),
        remediator::Request::Manual {
            mode: remediator::Mode::Preview,
            ..
        }
    ));
}
