//! The Config rule handler against the emulator rig: an organization of three member accounts
//! with backdated keys and an exemption group, scheduled and change-triggered events, verdicts
//! and annotations read back through Config's compliance API, and the IAM call economy.

use crate::support;

use std::collections::BTreeMap;

use aws_sdk_config::types::ComplianceType;
use chrono::{DateTime, Duration, SubsecRound, Utc};
use keyguard_aws::inventory::ReportPolling;
use keyguard_aws::sdk::{Caller, RoleSpec};
use keyguard_core::{mask_key_id as m, Settings};
use rule_lambda::{handle, ConfigEvent, RuleContext};
use serde_json::Value;
use support::{fixture, seed, Org, Rig, Seeded, UserSpec};

const RULE: &str = "keyguard-access-keys";
const GROUP: &str = "IAMKeyRotationExemptionGroup";
const EXPIRY: &str = "keyguard:exemption-expires";

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

/// The rule as deployed (deploy/member-role.yaml): a function in each account, running as that
/// account's `keyguard-member-rule` role, so that Config never invokes across accounts.
async fn deployed(account: &str) -> RuleContext {
    RuleContext {
        sdk: Rig::get()
            .as_role(account, "keyguard-member-rule", "keyguard-rule-lambda")
            .await,
        caller: Caller {
            account: account.to_string(),
            partition: "aws".into(),
            arn: format!(
                "arn:aws:sts::{account}:assumed-role/keyguard-member-rule/keyguard-rule-lambda"
            ),
        },
        settings: Settings::default(),
        role: RoleSpec {
            role_name: "keyguard-member-rule".into(),
            session_name: "keyguard-rule".into(),
            org_role_arn: None,
        },
        polling: ReportPolling {
            interval: std::time::Duration::from_millis(10),
            attempts: 20,
        },
    }
}

/// Config invoking the rule function of the event's account with `event`.
async fn run(event: ConfigEvent, at: DateTime<Utc>) -> rule_lambda::Result<rule_lambda::Summary> {
    let account = event.account_id.clone().expect("the event's account");
    handle(&deployed(&account).await, event, at).await
}

/// A Config event from a fixture: `outer` placeholders are replaced in the file's text, `inner`
/// ones (JSON fragments) inside the invokingEvent string.
fn event(
    file: &str,
    outer: &[(&str, String)],
    inner: &[(&str, String)],
    parameters: &str,
) -> ConfigEvent {
    let mut text = fixture(&format!("rule-lambda/fixtures/{file}"));
    text = text.replace(
        "\"{{parameters}}\"",
        &serde_json::to_string(parameters).unwrap(),
    );
    for (k, v) in outer {
        text = text.replace(&format!("{{{{{k}}}}}"), v);
    }
    let mut v: Value = serde_json::from_str(&text).unwrap();
    let mut inv = v["invokingEvent"].as_str().unwrap().to_string();
    for (k, val) in inner {
        inv = inv.replace(&format!("{{{{{k}}}}}"), val);
    }
    v["invokingEvent"] = Value::String(inv);
    serde_json::from_value(v).unwrap()
}

fn scheduled(account: &str, at: DateTime<Utc>) -> ConfigEvent {
    event(
        "scheduled.json",
        &[
            ("account", account.into()),
            ("time", at.to_rfc3339()),
            ("token", format!("{RULE}/scheduled")),
        ],
        &[],
        "",
    )
}

/// An oversized change notification for `user_name` (UserId `user_id`) in `account`.
fn oversized(account: &str, user_id: &str, user_name: &str, at: DateTime<Utc>) -> ConfigEvent {
    event(
        "oversized.json",
        &[
            ("account", account.into()),
            ("time", at.to_rfc3339()),
            ("token", format!("{RULE}/oversized")),
            ("user_id", user_id.into()),
            ("user_name", user_name.into()),
        ],
        &[],
        "",
    )
}

/// What a change notification's configuration item says of the user.
struct Item<'a> {
    path: &'a str,
    groups: &'a [&'a str],
    tags: &'a [(&'a str, &'a str)],
    /// The item's status (`OK`, `ResourceDeleted`).
    status: &'a str,
    left_scope: bool,
}

impl Default for Item<'_> {
    fn default() -> Self {
        Item {
            path: "/",
            groups: &[],
            tags: &[],
            status: "OK",
            left_scope: false,
        }
    }
}

fn change(account: &str, user: &Seeded, item: &Item, at: DateTime<Utc>) -> ConfigEvent {
    let Item {
        path,
        groups,
        tags,
        status,
        left_scope,
    } = item;
    let tags: BTreeMap<&str, &str> = tags.iter().copied().collect();
    event(
        "change.json",
        &[
            ("account", account.into()),
            ("time", at.to_rfc3339()),
            ("token", format!("{RULE}/change")),
            ("left_scope", left_scope.to_string()),
            ("user_id", user.user_id.clone()),
            ("user_name", user.name.clone()),
            ("path", path.to_string()),
            ("status", status.to_string()),
        ],
        &[
            ("groups", serde_json::to_string(groups).unwrap()),
            ("tags", serde_json::to_string(&tags).unwrap()),
        ],
        "",
    )
}

/// Config's stored verdicts of the rule in `account`: UserId → (compliance, annotation).
async fn verdicts(org: &Org, i: usize) -> BTreeMap<String, (String, String)> {
    let config = aws_sdk_config::Client::new(&org.member(i).await);
    let out = config
        .get_compliance_details_by_config_rule()
        .config_rule_name(RULE)
        .compliance_types(ComplianceType::Compliant)
        .compliance_types(ComplianceType::NonCompliant)
        .compliance_types(ComplianceType::NotApplicable)
        .send()
        .await
        .unwrap();
    out.evaluation_results()
        .iter()
        .map(|r| {
            let id = r
                .evaluation_result_identifier()
                .unwrap()
                .evaluation_result_qualifier()
                .unwrap()
                .resource_id()
                .unwrap()
                .to_string();
            (
                id,
                (
                    r.compliance_type().unwrap().as_str().to_string(),
                    r.annotation().unwrap_or_default().to_string(),
                ),
            )
        })
        .collect()
}

fn spec(name: &str, keys: &[(i64, Option<i64>, bool)]) -> UserSpec {
    UserSpec {
        name: name.into(),
        keys: keys.to_vec(),
        ..UserSpec::default()
    }
}

#[tokio::test]
async fn scheduled_and_change_triggered_verdicts_across_three_member_accounts() {
    let org = Org::new(3).await;
    let t = now();
    let until = (t + Duration::days(30)).format("%Y-%m-%d").to_string();
    let expired = (t - Duration::days(2)).format("%Y-%m-%d").to_string();
    let a0 = org.members[0].clone();
    let s0 = seed(
        &org.member(0).await,
        &a0,
        &[
            spec("fresh", &[(10, Some(1), true)]),
            spec("overdue", &[(100, Some(1), true)]),
            spec("never-used", &[(50, None, true)]),
            spec("no-keys", &[]),
            UserSpec {
                groups: vec![GROUP.into()],
                tags: vec![(EXPIRY.into(), until.clone())],
                ..spec("exempt", &[(200, Some(1), true)])
            },
            UserSpec {
                groups: vec![GROUP.into()],
                tags: vec![(EXPIRY.into(), expired.clone())],
                ..spec("exempt-expired", &[(10, Some(1), true)])
            },
            UserSpec {
                path: "/ci/".into(),
                ..spec("deploy+bot@x", &[(20, Some(1), true), (5, Some(1), true)])
            },
            spec("leaver", &[(30, Some(2), true)]),
        ],
        t,
    )
    .await;
    let s1 = seed(
        &org.member(1).await,
        &org.members[1],
        &[
            spec("m1-overdue", &[(95, Some(3), true)]),
            spec("m1-ok", &[(1, Some(0), true)]),
        ],
        t,
    )
    .await;
    let s2 = seed(
        &org.member(2).await,
        &org.members[2],
        &[spec("m2-inactive", &[(200, Some(150), false)])],
        t,
    )
    .await;

    for (i, account) in org.members.iter().enumerate() {
        let summary = run(scheduled(account, t), t)
            .await
            .unwrap_or_else(|e| panic!("member {i}: {e}"));
        assert_eq!(summary.account, *account);
    }

    let k = |s: &std::collections::HashMap<String, Seeded>, u: &str, i: usize| m(&s[u].keys[i]);
    let id = |s: &std::collections::HashMap<String, Seeded>, u: &str| s[u].user_id.clone();
    let c = |a: &str, b: String| (a.to_string(), b);
    let expect0: BTreeMap<String, (String, String)> = [
        (id(&s0, "fresh"), c("COMPLIANT", "Keys: key1 active 10d used 1d ago".into())),
        (id(&s0, "overdue"), c("NON_COMPLIANT", format!("{0} is 100d old. Keys: {0} active 100d used 1d ago", k(&s0, "overdue", 0)))),
        (id(&s0, "never-used"), c("NON_COMPLIANT", format!("{0} never used in 50d. Keys: {0} active 50d never used", k(&s0, "never-used", 0)))),
        (id(&s0, "no-keys"), c("COMPLIANT", "no access keys".into())),
        (
            id(&s0, "exempt"),
            c("COMPLIANT", format!("Exempt via {GROUP} until {until}. waived: key1 is 200d old. Keys: key1 active 200d used 1d ago")),
        ),
        (
            id(&s0, "exempt-expired"),
            c("NON_COMPLIANT", format!("exemption via {GROUP} expired {expired}. Keys: {} active 10d used 1d ago", k(&s0, "exempt-expired", 0))),
        ),
        (
            id(&s0, "deploy+bot@x"),
            c("NON_COMPLIANT", format!("2 active keys. Keys: {} active 20d used 1d ago; {} active 5d used 1d ago", k(&s0, "deploy+bot@x", 0), k(&s0, "deploy+bot@x", 1))),
        ),
        (id(&s0, "leaver"), c("COMPLIANT", "Keys: key1 active 30d used 2d ago".into())),
    ]
    .into_iter()
    .collect();
    assert_eq!(verdicts(&org, 0).await, expect0);
    let expect1: BTreeMap<_, _> = [
        (
            id(&s1, "m1-overdue"),
            c(
                "NON_COMPLIANT",
                format!(
                    "{0} is 95d old. Keys: {0} active 95d used 3d ago",
                    k(&s1, "m1-overdue", 0)
                ),
            ),
        ),
        (
            id(&s1, "m1-ok"),
            c("COMPLIANT", "Keys: key1 active 1d used 0d ago".into()),
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(verdicts(&org, 1).await, expect1);
    // A compliant user's keys are named by slot: no ListAccessKeys was spent on it.
    assert_eq!(
        verdicts(&org, 2).await,
        [(
            id(&s2, "m2-inactive"),
            c("COMPLIANT", "Keys: key1 inactive 200d used 150d ago".into())
        )]
        .into_iter()
        .collect()
    );

    // Each account's own function evaluated it: nothing ran in the central account, no role
    // was assumed across accounts.
    let central = Rig::get().calls(&org.management);
    assert!(
        !central
            .keys()
            .any(|k| k.starts_with("iam:") || k.starts_with("config:") || k == "sts:AssumeRole"),
        "the central account took part: {central:?}"
    );

    // A deleted user becomes NOT_APPLICABLE at the next scheduled run.
    let iam0 = aws_sdk_iam::Client::new(&org.member(0).await);
    iam0.delete_access_key()
        .user_name("leaver")
        .access_key_id(&s0["leaver"].keys[0])
        .send()
        .await
        .unwrap();
    iam0.delete_user().user_name("leaver").send().await.unwrap();
    let t2 = t + Duration::seconds(60);
    let summary = run(scheduled(&a0, t2), t2).await.unwrap();
    assert_eq!(summary.not_applicable, 1);
    let after = verdicts(&org, 0).await;
    assert_eq!(
        after[&id(&s0, "leaver")],
        c("NOT_APPLICABLE", "The IAM user no longer exists.".into())
    );
    assert_eq!(after.len(), 8);

    // Change-triggered: the item's groupList and tags decide the exemption; keys are read live.
    let t3 = t2 + Duration::seconds(60);
    let exempt = Item {
        groups: &[GROUP],
        tags: &[(EXPIRY, &until)],
        ..Item::default()
    };
    let ev = change(&a0, &s0["overdue"], &exempt, t3);
    let summary = run(ev, t3).await.unwrap();
    assert_eq!(
        (summary.compliant, summary.message_type.as_str()),
        (1, "ConfigurationItemChangeNotification")
    );
    assert_eq!(
        verdicts(&org, 0).await[&id(&s0, "overdue")],
        c("COMPLIANT", format!("Exempt via {GROUP} until {until}. waived: {0} is 100d old. Keys: {0} active 100d used 1d ago", k(&s0, "overdue", 0)))
    );
    // …and the path user with +=,.@- in its name is evaluated by its item too.
    let ci = Item {
        path: "/ci/",
        ..Item::default()
    };
    let ev = change(&a0, &s0["deploy+bot@x"], &ci, t3);
    run(ev, t3).await.unwrap();
    assert_eq!(
        verdicts(&org, 0).await[&id(&s0, "deploy+bot@x")].0,
        "NON_COMPLIANT"
    );

    // A deleted item and an item that left the rule's scope are NOT_APPLICABLE.
    let deleted = Item {
        status: "ResourceDeleted",
        ..Item::default()
    };
    let ev = change(&org.members[1], &s1["m1-overdue"], &deleted, t3);
    run(ev, t3).await.unwrap();
    assert_eq!(
        verdicts(&org, 1).await[&id(&s1, "m1-overdue")],
        c("NOT_APPLICABLE", "The IAM user was deleted.".into())
    );
    let left = Item {
        left_scope: true,
        ..Item::default()
    };
    let ev = change(&org.members[1], &s1["m1-ok"], &left, t3);
    run(ev, t3).await.unwrap();
    assert_eq!(
        verdicts(&org, 1).await[&id(&s1, "m1-ok")],
        c(
            "NOT_APPLICABLE",
            "The IAM user left the rule's scope.".into()
        )
    );

    // Oversized: Config's history is fetched (the rig has none), then IAM is asked.
    let ev = oversized(&a0, &id(&s0, "never-used"), "never-used", t3);
    let summary = run(ev, t3).await.unwrap();
    assert_eq!(summary.non_compliant, 1);
    let calls = Rig::get().calls(&a0);
    assert!(
        calls.contains_key("config:GetResourceConfigHistory"),
        "{calls:?}"
    );
}

/// The central (management) account's users are evaluated by its own function like any other
/// account's, by scheduled and oversized events alike.
#[tokio::test]
async fn the_central_account_is_evaluated_with_the_functions_own_role() {
    let org = Org::new(0).await;
    let t = now();
    let a = org.management.clone();
    let s = seed(
        &org.config,
        &a,
        &[
            spec("central-ci", &[(120, Some(1), true)]),
            spec("central-ok", &[(10, Some(1), true)]),
        ],
        t,
    )
    .await;
    let summary = run(scheduled(&a, t), t).await.unwrap();
    assert_eq!(summary.non_compliant, 1);
    let ev = oversized(&a, &s["central-ci"].user_id, "central-ci", t);
    let summary = run(ev, t).await.unwrap();
    assert_eq!(summary.non_compliant, 1);
    let calls = Rig::get().calls(&a);
    assert!(
        calls.contains_key("config:PutEvaluations")
            && calls.contains_key("config:GetResourceConfigHistory"),
        "{calls:?}"
    );
}

#[tokio::test]
async fn rule_parameters_override_and_bad_input_is_a_clear_error_that_writes_nothing() {
    let org = Org::new(1).await;
    let t = now();
    let a = org.members[0].clone();
    let s = seed(
        &org.member(0).await,
        &a,
        &[spec("ci", &[(85, Some(1), true)])],
        t,
    )
    .await;
    let with = |params: &str| {
        event(
            "scheduled.json",
            &[
                ("account", a.clone()),
                ("time", t.to_rfc3339()),
                ("token", format!("{RULE}/p")),
            ],
            &[],
            params,
        )
    };
    // RotationPeriod 80 from the rule's parameters makes the 85-day key non-compliant.
    run(with(r#"{"RotationPeriod":"80"}"#), t).await.unwrap();
    assert_eq!(verdicts(&org, 0).await[&s["ci"].user_id].0, "NON_COMPLIANT");

    let before = Rig::get().calls(&a).get("config:PutEvaluations").copied();
    for (params, needle) in [
        (r#"{"RotationPeriod":"ninety"}"#, "RotationPeriod"),
        (r#"{"MaxAccessKeyAge":"90"}"#, "MaxAccessKeyAge"),
        (r#"{"RecoveryGracePeriod":"0"}"#, "RecoveryGracePeriod"),
    ] {
        let err = run(with(params), t).await.unwrap_err().to_string();
        assert!(err.contains(needle), "{params}: {err}");
    }
    let mut bad = with("");
    bad.invoking_event = Some(
        r#"{"messageType":"SomethingNew","notificationCreationTime":"2026-01-01T00:00:00Z"}"#
            .into(),
    );
    let err = run(bad, t).await.unwrap_err().to_string();
    assert!(
        err.contains("SomethingNew") && err.starts_with("malformed Config event"),
        "{err}"
    );
    let mut bad = with("");
    bad.result_token = None;
    assert!(run(bad, t)
        .await
        .unwrap_err()
        .to_string()
        .contains("resultToken"));
    let mut bad = with("");
    bad.invoking_event = Some("{not json".into());
    assert!(run(bad, t)
        .await
        .unwrap_err()
        .to_string()
        .contains("invokingEvent"));
    assert_eq!(
        Rig::get().calls(&a).get("config:PutEvaluations").copied(),
        before,
        "bad input wrote evaluations"
    );
}

#[tokio::test]
async fn failed_evaluations_are_retried_then_reported() {
    let org = Org::new(1).await;
    let t = now();
    let a = org.members[0].clone();
    seed(
        &org.member(0).await,
        &a,
        &[
            spec("a", &[(10, Some(1), true)]),
            spec("b", &[(10, Some(1), true)]),
        ],
        t,
    )
    .await;
    let rig = Rig::get();
    // Config fails the batch once: the handler sends the failed evaluations again and succeeds.
    rig.fault(Some(&a), "PutEvaluations", "FailedEvaluations", 1);
    let summary = run(scheduled(&a, t), t)
        .await
        .unwrap_or_else(|e| panic!("{e}: {:?}", rig.calls(&a)));
    assert_eq!(summary.put_calls, 2);
    assert_eq!(verdicts(&org, 0).await.len(), 2);
    // Config keeps failing: the invocation fails and names what was not written.
    rig.fault(Some(&a), "PutEvaluations", "FailedEvaluations", 10);
    let err = run(scheduled(&a, t + Duration::seconds(1)), t)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("Config rejected 2 evaluation(s)"), "{err}");
    rig.clear_faults(&a);
    // Throttled IAM calls are retried by the SDK.
    rig.fault(Some(&a), "GetAccountAuthorizationDetails", "Throttling", 2);
    run(scheduled(&a, t + Duration::seconds(2)), t)
        .await
        .unwrap();
}

/// IAM read calls of one scheduled evaluation of an account with `users` users, `findings` of
/// them out of policy. Returns the count.
async fn scheduled_iam_calls(users: usize, findings: usize) -> u64 {
    let org = Org::new(1).await;
    let t = now();
    let a = org.members[0].clone();
    let specs: Vec<UserSpec> = (0..users)
        .map(|i| {
            spec(
                &format!("user-{i:04}"),
                &[if i < findings {
                    (120, Some(1), true)
                } else {
                    (10, Some(1), true)
                }],
            )
        })
        .collect();
    seed(&org.member(0).await, &a, &specs, t).await;
    let rig = Rig::get();
    rig.reset_calls(&a);
    let summary = run(scheduled(&a, t), t).await.unwrap();
    assert_eq!(summary.non_compliant, findings);
    let calls = rig.calls(&a);
    let iam: u64 = calls
        .iter()
        .filter(|(k, _)| k.starts_with("iam:"))
        .map(|(_, v)| v)
        .sum();
    println!("API economy: U={users} F={findings}: {iam} IAM calls {calls:?}");
    iam
}

#[tokio::test]
async fn api_economy_of_a_scheduled_evaluation() {
    for (u, f) in [(20usize, 5usize), (500, 50)] {
        let iam = scheduled_iam_calls(u, f).await;
        let bound = 6 + u.div_ceil(1000) as u64 + 2 * f as u64;
        assert!(iam <= bound, "U={u} F={f}: {iam} IAM calls > {bound}");
        // The aws-samples tool makes 2 + U + K calls for the same account.
        assert!(iam < 2 + 2 * u as u64);
    }
}
