//! Every EventBridge pattern of the templates against real-shaped events, with a faithful
//! implementation of EventBridge's pattern language from crates.io (`quamina`, the Rust port of
//! Tim Bray's matcher from the author of AWS's event-ruler): which rules an event matches, for
//! the events they are for and for near misses. moto has no faithful matcher, so the templates'
//! patterns are never exercised by the rig.
//!
//! quamina has no `$or`; a pattern with `$or` is expanded into one pattern per branch under the
//! same name, which is how event-ruler implements it.

use std::collections::{BTreeMap, BTreeSet};

use quamina::Quamina;
use serde_json::{json, Value as Json};
use serde_norway::Value;

use crate::support;

const TEMPLATES: [&str; 4] = [
    "deploy/member-role.yaml",
    "deploy/central.yaml",
    "deploy/exemption-alarm.yaml",
    "deploy/notifications.yaml",
];

/// `v` as JSON with `!Ref`s to parameters replaced by their defaults.
fn resolved(v: &Value, params: &BTreeMap<String, String>) -> Json {
    match v {
        Value::Tagged(t) if t.tag.to_string().trim_start_matches('!') == "Ref" => {
            let name = t.value.as_str().unwrap();
            Json::String(
                params
                    .get(name)
                    .unwrap_or_else(|| panic!("!Ref {name}"))
                    .clone(),
            )
        }
        Value::Mapping(m) => Json::Object(
            m.iter()
                .map(|(k, v)| (k.as_str().unwrap().to_string(), resolved(v, params)))
                .collect(),
        ),
        Value::Sequence(s) => Json::Array(s.iter().map(|v| resolved(v, params)).collect()),
        Value::String(s) => Json::String(s.clone()),
        Value::Number(n) => serde_json::to_value(n.as_f64()).unwrap(),
        Value::Bool(b) => Json::Bool(*b),
        other => panic!("unexpected YAML in a pattern: {other:?}"),
    }
}

/// The `$or`-free patterns equivalent to `p`.
fn expand(p: &Json) -> Vec<Json> {
    let Json::Object(map) = p else {
        return vec![p.clone()];
    };
    let mut out = vec![serde_json::Map::new()];
    for (k, v) in map {
        if k == "$or" {
            let branches: Vec<Json> = v.as_array().unwrap().iter().flat_map(expand).collect();
            out = out
                .into_iter()
                .flat_map(|base| {
                    branches.iter().map(move |b| {
                        let mut m = base.clone();
                        m.extend(b.as_object().unwrap().clone());
                        m
                    })
                })
                .collect();
        } else if v.is_object() {
            let subs = expand(v);
            out = out
                .into_iter()
                .flat_map(|base| {
                    subs.iter().map(move |s| {
                        let mut m = base.clone();
                        m.insert(k.clone(), s.clone());
                        m
                    })
                })
                .collect();
        } else {
            for m in &mut out {
                m.insert(k.clone(), v.clone());
            }
        }
    }
    out.into_iter().map(Json::Object).collect()
}

/// Every rule with an event pattern in the templates, by `file:Resource`.
fn matcher() -> (Quamina<String>, usize) {
    let mut q = Quamina::new();
    let mut n = 0;
    for file in TEMPLATES {
        let t: Value = serde_norway::from_str(&support::fixture(file)).unwrap();
        let params: BTreeMap<String, String> = t["Parameters"]
            .as_mapping()
            .unwrap()
            .iter()
            .filter_map(|(k, p)| {
                Some((k.as_str()?.to_string(), p["Default"].as_str()?.to_string()))
            })
            .collect();
        for (name, r) in t["Resources"].as_mapping().unwrap() {
            let pattern = &r["Properties"]["EventPattern"];
            if r["Type"] != "AWS::Events::Rule" || pattern.is_null() {
                continue;
            }
            let id = format!(
                "{}:{}",
                file.trim_start_matches("deploy/"),
                name.as_str().unwrap()
            );
            for p in expand(&resolved(pattern, &params)) {
                q.add_pattern(id.clone(), &p.to_string())
                    .unwrap_or_else(|e| panic!("{id}: {e:?}: {p}"));
            }
            n += 1;
        }
    }
    (q, n)
}

/// A CloudTrail record of an IAM call, as EventBridge delivers it.
fn iam_call(name: &str, params: Json) -> Json {
    json!({
        "version": "0", "id": "6f3b", "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.iam", "account": "444455556666", "time": "2026-11-30T10:00:00Z",
        "region": "us-east-1", "resources": [],
        "detail": {
            "eventVersion": "1.08",
            "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::444455556666:assumed-role/admin/eve"},
            "eventTime": "2026-11-30T10:00:00Z", "eventSource": "iam.amazonaws.com",
            "eventName": name, "awsRegion": "us-east-1", "requestParameters": params,
            "responseElements": null, "eventType": "AwsApiCall",
        }
    })
}

/// A CloudTrail record of a Config call.
fn config_call(name: &str, params: Json) -> Json {
    let mut e = iam_call(name, params);
    e["source"] = "aws.config".into();
    e["detail"]["eventSource"] = "config.amazonaws.com".into();
    e
}

/// A CloudTrail record of an EventBridge call (a rule changed).
fn events_call(name: &str, params: Json) -> Json {
    let mut e = iam_call(name, params);
    e["source"] = "aws.events".into();
    e["detail"]["eventSource"] = "events.amazonaws.com".into();
    e
}

fn tags(keys: &[&str]) -> Json {
    Json::Array(
        keys.iter()
            .map(|k| json!({"key": k, "value": "2027-01-31"}))
            .collect(),
    )
}

fn compliance(rule: &str, compliance: &str) -> Json {
    let mut e: Json = serde_json::from_str(
        &support::fixture("remediator/fixtures/config-compliance-change.json")
            .replace("{{account}}", "444455556666")
            .replace("{{user_id}}", "AIDAEXAMPLEUSER00001"),
    )
    .unwrap();
    e["detail"]["configRuleName"] = rule.into();
    e["detail"]["newEvaluationResult"]["complianceType"] = compliance.into();
    e
}

/// The event keyguard's SSM document puts on the request bus (deploy_pack.rs checks the fixture
/// against the document).
fn remediation_request() -> Json {
    serde_json::from_str(
        &support::fixture("remediator/fixtures/keyguard-remediation-request.json")
            .replace("{{account}}", "444455556666")
            .replace("{{user_id}}", "AIDAEXAMPLEUSER00001"),
    )
    .unwrap()
}

/// CloudTrail's UpdateAccessKey to Active through EventBridge (remediator/fixtures), changed by
/// `edit`.
fn reenable(edit: impl FnOnce(&mut Json)) -> Json {
    let mut e: Json = serde_json::from_str(&support::fixture(
        "remediator/fixtures/cloudtrail-update-access-key.json",
    ))
    .unwrap();
    edit(&mut e);
    e
}

/// AWS's sample Health event of an exposed key (remediator/fixtures), of type `code`, changed by
/// `edit`.
fn health(code: &str, edit: impl FnOnce(&mut Json)) -> Json {
    let mut e: Json = serde_json::from_str(
        &support::fixture("remediator/fixtures/health-credentials-exposed.json")
            .replace("AWS_RISK_CREDENTIALS_EXPOSED", code),
    )
    .unwrap();
    edit(&mut e);
    e
}

fn alarm(name: &str, state: &str) -> Json {
    json!({
        "version": "0", "id": "c4c1", "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch", "account": "444455556666", "time": "2026-11-30T10:00:00Z",
        "region": "us-east-1", "resources": [format!("arn:aws:cloudwatch:us-east-1:444455556666:alarm:{name}")],
        "detail": {"alarmName": name, "state": {"value": state, "reason": "Threshold Crossed"},
                   "previousState": {"value": "OK"}}
    })
}

/// The remediator's `keyguard key action` event (remediator/src/notices.rs `publish`).
fn key_action(action: &str, outcome: &str, dry_run: bool) -> Json {
    json!({
        "version": "0", "id": "9e1f", "detail-type": "keyguard key action", "source": "keyguard",
        "account": "111122223333", "time": "2026-11-30T06:00:00Z", "region": "us-east-1",
        "resources": ["arn:aws:iam::444455556666:user/ci"],
        "detail": {"account": "444455556666", "user": "ci", "key": "AKIA…WXYZ", "action": action,
                   "outcome": outcome, "date": "2026-11-30T06:00:00Z", "why": "RotationPeriod reached",
                   "dry_run": dry_run}
    })
}

#[test]
fn every_pattern_matches_the_events_it_is_for_and_no_near_miss() {
    let (q, rules) = matcher();
    assert!(rules >= 6, "{rules} rules with patterns");
    let exemption = "member-role.yaml:ExemptionChangeForward";
    let config = "member-role.yaml:ConfigChangeForward";
    let forwarding = "member-role.yaml:ForwardingChangeForward";
    let alarm_bus = "exemption-alarm.yaml:ForwardedChangesToTopic";
    let alarms = "exemption-alarm.yaml:ForwardedAlarmsToTopic";
    let member_alarms = "member-role.yaml:RuleFunctionAlarmForward";
    let requests = "member-role.yaml:ComplianceChangeForward";
    let central = "central.yaml:NonCompliantUserRule";
    let remediation = "central.yaml:RemediationRequestRule";
    let exposed_member = "member-role.yaml:ExposedKeyForward";
    let exposed_central = "central.yaml:ExposedKeyRule";
    let reenabled_member = "member-role.yaml:KeyReEnabledForward";
    let reenabled_central = "central.yaml:KeyReEnabledRule";
    let chat = "notifications.yaml:KeyActionsToChat";
    let tickets = "notifications.yaml:KeyActionsToTickets";
    let group = |name: &str, g: &str| iam_call(name, json!({"groupName": g, "userName": "ci"}));
    let cases: Vec<(&str, Json, Vec<&str>)> = vec![
        (
            "AddUserToGroup exemption",
            group("AddUserToGroup", "IAMKeyRotationExemptionGroup"),
            vec![exemption, alarm_bus],
        ),
        (
            "RemoveUserFromGroup exemption",
            group("RemoveUserFromGroup", "IAMKeyRotationExemptionGroup"),
            vec![exemption, alarm_bus],
        ),
        (
            "AddUserToGroup other group",
            group("AddUserToGroup", "developers"),
            vec![alarm_bus],
        ),
        (
            "AttachGroupPolicy exemption",
            group("AttachGroupPolicy", "IAMKeyRotationExemptionGroup"),
            vec![exemption, alarm_bus],
        ),
        (
            "UpdateGroup renaming a group to the exemption group",
            iam_call(
                "UpdateGroup",
                json!({"groupName": "contractors", "newGroupName": "IAMKeyRotationExemptionGroup"}),
            ),
            vec![exemption, alarm_bus],
        ),
        (
            "UpdateGroup renaming the exemption group",
            iam_call(
                "UpdateGroup",
                json!({"groupName": "IAMKeyRotationExemptionGroup", "newGroupName": "x"}),
            ),
            vec![exemption, alarm_bus],
        ),
        (
            "UpdateGroup to a lookalike name",
            iam_call(
                "UpdateGroup",
                json!({"groupName": "contractors", "newGroupName": "IAMKeyRotationExemptionGroup2"}),
            ),
            vec![alarm_bus],
        ),
        (
            "UpdateGroup of other groups",
            iam_call(
                "UpdateGroup",
                json!({"groupName": "developers", "newGroupName": "devs"}),
            ),
            vec![alarm_bus],
        ),
        (
            "DisableRule of the exemption forwarding",
            events_call("DisableRule", json!({"name": "keyguard-exemption-changes"})),
            vec![config, forwarding, alarm_bus],
        ),
        (
            "DeleteRule of the config forwarding",
            events_call(
                "DeleteRule",
                json!({"name": "keyguard-config-changes", "force": false}),
            ),
            vec![config, forwarding, alarm_bus],
        ),
        (
            "DisableRule of the forwarding watcher",
            events_call(
                "DisableRule",
                json!({"name": "keyguard-forwarding-changes"}),
            ),
            vec![config, forwarding, alarm_bus],
        ),
        (
            "RemoveTargets of the request forwarding",
            events_call(
                "RemoveTargets",
                json!({"rule": "keyguard-noncompliant-users", "ids": ["central-request-bus"]}),
            ),
            vec![config, forwarding, alarm_bus],
        ),
        (
            "PutTargets retargeting the alarm forwarding",
            events_call(
                "PutTargets",
                json!({"rule": "keyguard-alarm-changes", "targets": [{"id": "x", "arn": "arn:aws:sns:us-east-1:444455556666:mine"}]}),
            ),
            vec![config, forwarding, alarm_bus],
        ),
        (
            "DisableRule of another rule",
            events_call("DisableRule", json!({"name": "nightly-batch"})),
            vec![alarm_bus],
        ),
        (
            "EnableRule of keyguard's rule",
            events_call("EnableRule", json!({"name": "keyguard-config-changes"})),
            vec![alarm_bus],
        ),
        (
            "TagUser expiry first",
            iam_call(
                "TagUser",
                json!({"userName": "ci", "tags": tags(&["keyguard:exemption-expires"])}),
            ),
            vec![exemption, alarm_bus],
        ),
        (
            "TagUser expiry fifth of seven",
            iam_call(
                "TagUser",
                json!({"userName": "ci", "tags": tags(&["a", "b", "c", "d", "keyguard:exemption-expires", "f", "g"])}),
            ),
            vec![exemption, alarm_bus],
        ),
        (
            "TagUser other tags",
            iam_call(
                "TagUser",
                json!({"userName": "ci", "tags": tags(&["owner-email", "team"])}),
            ),
            vec![alarm_bus],
        ),
        (
            "TagUser lookalike key",
            iam_call(
                "TagUser",
                json!({"userName": "ci", "tags": tags(&["keyguard:exemption-expires-not"])}),
            ),
            vec![alarm_bus],
        ),
        (
            "UntagUser expiry fourth",
            iam_call(
                "UntagUser",
                json!({"userName": "ci", "tagKeys": ["a", "b", "c", "keyguard:exemption-expires"]}),
            ),
            vec![exemption, alarm_bus],
        ),
        (
            "UntagUser other",
            iam_call(
                "UntagUser",
                json!({"userName": "ci", "tagKeys": ["owner-email"]}),
            ),
            vec![alarm_bus],
        ),
        (
            "CreateAccessKey",
            iam_call("CreateAccessKey", json!({"userName": "ci"})),
            vec![alarm_bus],
        ),
        (
            "PutConfigRule keyguard",
            config_call(
                "PutConfigRule",
                json!({"configRule": {"configRuleName": "keyguard-access-keys"}}),
            ),
            vec![config, alarm_bus],
        ),
        (
            "PutConfigRule other",
            config_call(
                "PutConfigRule",
                json!({"configRule": {"configRuleName": "s3-bucket-logging"}}),
            ),
            vec![alarm_bus],
        ),
        (
            "DeleteConfigRule keyguard",
            config_call(
                "DeleteConfigRule",
                json!({"configRuleName": "keyguard-access-keys"}),
            ),
            vec![config, alarm_bus],
        ),
        (
            "DeleteEvaluationResults keyguard",
            config_call(
                "DeleteEvaluationResults",
                json!({"configRuleName": "keyguard-access-keys"}),
            ),
            vec![config, alarm_bus],
        ),
        (
            "StopConfigurationRecorder",
            config_call(
                "StopConfigurationRecorder",
                json!({"configurationRecorderName": "default"}),
            ),
            vec![config, alarm_bus],
        ),
        (
            "PutConformancePack keyguard",
            config_call(
                "PutConformancePack",
                json!({"conformancePackName": "keyguard-access-keys"}),
            ),
            vec![config, alarm_bus],
        ),
        (
            "NON_COMPLIANT keyguard user",
            compliance("keyguard-access-keys", "NON_COMPLIANT"),
            vec![requests, central],
        ),
        (
            "NON_COMPLIANT user of the pack's copy of keyguard's rule",
            compliance(
                "keyguard-access-keys-conformance-pack-0a1b2c3d",
                "NON_COMPLIANT",
            ),
            vec![requests, central],
        ),
        (
            "NON_COMPLIANT user of the managed companion",
            compliance(
                "access-keys-rotated-conformance-pack-0a1b2c3d",
                "NON_COMPLIANT",
            ),
            vec![],
        ),
        (
            "UpdateAccessKey to Active",
            reenable(|_| {}),
            vec![reenabled_member, reenabled_central, alarm_bus],
        ),
        (
            "UpdateAccessKey to Inactive",
            reenable(|e| e["detail"]["requestParameters"]["status"] = "Inactive".into()),
            vec![alarm_bus],
        ),
        (
            "UpdateAccessKey to Active that failed",
            reenable(|e| e["detail"]["errorCode"] = "AccessDenied".into()),
            vec![alarm_bus],
        ),
        (
            "AWS Health: a key exposed (AWS's sample)",
            health("AWS_RISK_CREDENTIALS_EXPOSED", |_| {}),
            vec![exposed_member, exposed_central],
        ),
        (
            "AWS Health: the quarantine variant, region global",
            health("AWS_RISK_IAM_QUARANTINE", |e| e["region"] = "global".into()),
            vec![exposed_member, exposed_central],
        ),
        (
            "AWS Health: an update of the event (closed)",
            health("AWS_RISK_CREDENTIALS_COMPROMISED", |e| {
                e["detail"]["statusCode"] = "closed".into()
            }),
            vec![exposed_member, exposed_central],
        ),
        (
            "AWS Health: suspected exposure and compromise",
            health("AWS_RISK_CREDENTIALS_EXPOSURE_SUSPECTED", |_| {}),
            vec![exposed_member, exposed_central],
        ),
        (
            "AWS Health: another RISK code",
            health("AWS_RISK_OTHER_THING", |_| {}),
            vec![],
        ),
        (
            "AWS Health: an EC2 scheduled change",
            health("AWS_RISK_CREDENTIALS_EXPOSED", |e| {
                e["detail"]["service"] = "EC2".into();
                e["detail"]["eventTypeCategory"] = "scheduledChange".into();
            }),
            vec![],
        ),
        (
            "Config's remediation through keyguard's document",
            remediation_request(),
            vec![remediation],
        ),
        (
            "COMPLIANT keyguard user",
            compliance("keyguard-access-keys", "COMPLIANT"),
            vec![],
        ),
        (
            "NON_COMPLIANT other rule",
            compliance("s3-bucket-logging", "NON_COMPLIANT"),
            vec![],
        ),
        (
            "keyguard alarm to ALARM",
            alarm("keyguard-rule-lambda-errors", "ALARM"),
            vec![member_alarms, alarms],
        ),
        (
            "keyguard alarm back to OK",
            alarm("keyguard-rule-lambda-errors", "OK"),
            vec![member_alarms],
        ),
        ("another alarm", alarm("billing", "ALARM"), vec![]),
        (
            "rotation done",
            key_action("rotate", "done", false),
            vec![chat],
        ),
        (
            "rotation failed",
            key_action("rotate", "failed", false),
            vec![chat, tickets],
        ),
        (
            "disable warned",
            key_action("warn:disable", "warned", false),
            vec![chat, tickets],
        ),
        ("a preview", key_action("rotate", "preview", true), vec![]),
        (
            "a DryRun warning",
            key_action("warn:rotate", "warned", true),
            vec![],
        ),
        ("skipped", key_action("delete", "skipped", false), vec![]),
    ];
    for (case, event, expected) in cases {
        let got: BTreeSet<String> = q
            .matches_for_event(event.to_string().as_bytes())
            .unwrap()
            .into_iter()
            .collect();
        let expected: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
        assert_eq!(got, expected, "{case}");
    }
}

/// What a member account's administrator can put on a central bus with PutEvents is a custom
/// event: its source cannot start with `aws.` (PutEvents refuses it). Dressed as Config's
/// compliance change or a CloudTrail record, it matches none of the central rules.
#[test]
fn custom_events_dressed_as_aws_events_match_no_central_rule() {
    let (q, _) = matcher();
    let mut forged_request = compliance("keyguard-access-keys", "NON_COMPLIANT");
    forged_request["source"] = "keyguard.config".into();
    let mut forged_alarm = iam_call(
        "AddUserToGroup",
        json!({"groupName": "IAMKeyRotationExemptionGroup", "userName": "ci"}),
    );
    forged_alarm["source"] = "custom.iam".into();
    let forged_health = health("AWS_RISK_CREDENTIALS_EXPOSED", |e| {
        e["source"] = "keyguard.health".into()
    });
    for forged in [forged_request, forged_alarm, forged_health] {
        let got = q.matches_for_event(forged.to_string().as_bytes()).unwrap();
        assert!(got.is_empty(), "{got:?}");
    }
}

/// Both central buses take PutEvents only from the member accounts' forwarding role, inside the
/// organization, and only through keyguard's forwarding rules.
#[test]
fn the_central_buses_take_events_only_from_the_forwarding_role() {
    for (file, policy) in [
        ("deploy/exemption-alarm.yaml", "AlarmBusPolicy"),
        ("deploy/central.yaml", "RequestBusPolicy"),
    ] {
        let t: Value = serde_norway::from_str(&support::fixture(file)).unwrap();
        let s = &t["Resources"][policy]["Properties"]["Statement"];
        assert_eq!(s["Action"], "events:PutEvents", "{file}");
        assert!(
            !s["Condition"]["StringEquals"]["aws:PrincipalOrgID"].is_null(),
            "{file}"
        );
        let Value::Tagged(arn) = &s["Condition"]["ArnLike"]["aws:PrincipalArn"] else {
            panic!("{file}: the policy names the forwarding role")
        };
        assert!(
            arn.value
                .as_str()
                .unwrap()
                .ends_with(":role/keyguard-alarm-forwarder"),
            "{file}"
        );
        // ... through keyguard's own forwarding rules only (the guard SCP keeps keyguard-* rules
        // the StackSet's).
        let Value::Tagged(rules) = &s["Condition"]["ArnLike"]["aws:SourceArn"] else {
            panic!("{file}: the policy names keyguard's forwarding rules")
        };
        assert!(
            rules.value.as_str().unwrap().ends_with(":rule/keyguard-*"),
            "{file}"
        );
    }
}

/// The chat rule's input transformer makes Amazon Q Developer's custom notification (version 1.0,
/// source custom) out of a key action: valid JSON once EventBridge fills the placeholders.
#[test]
fn the_chat_notification_is_a_custom_notification() {
    let t: Value = serde_norway::from_str(&support::fixture("deploy/notifications.yaml")).unwrap();
    let target = &t["Resources"]["KeyActionsToChat"]["Properties"]["Targets"][0];
    let transformer = &target["InputTransformer"];
    let mut text = transformer["InputTemplate"].as_str().unwrap().to_string();
    let event = key_action("rotate", "done", false);
    for (name, path) in transformer["InputPathsMap"].as_mapping().unwrap() {
        let path = path.as_str().unwrap().trim_start_matches("$.");
        let value = path
            .split('.')
            .fold(&event, |v, k| &v[k])
            .as_str()
            .unwrap()
            .to_string();
        text = text.replace(&format!("<{}>", name.as_str().unwrap()), &value);
    }
    let n: Json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(
        (n["version"].as_str(), n["source"].as_str()),
        (Some("1.0"), Some("custom"))
    );
    assert_eq!(n["content"]["textType"], "client-markdown");
    assert!(n["content"]["title"]
        .as_str()
        .unwrap()
        .contains("rotate (done): ci in 444455556666"));
}

/// The rule name is the member stack's parameter, not a literal; the CloudWatch Logs metric
/// filters (for an organization trail in CloudWatch Logs) cover what the EventBridge rules cover:
/// a group renamed to the exemption group and keyguard's forwarding rules changed.
#[test]
fn the_rule_name_is_a_parameter_and_the_metric_filters_cover_the_same_changes() {
    let member: Value =
        serde_norway::from_str(&support::fixture("deploy/member-role.yaml")).unwrap();
    let pattern = serde_norway::to_string(
        &member["Resources"]["ConfigChangeForward"]["Properties"]["EventPattern"],
    )
    .unwrap();
    assert!(!pattern.contains("keyguard-access-keys"), "{pattern}");
    assert!(pattern.contains("RuleName"), "{pattern}");
    let alarm: Value =
        serde_norway::from_str(&support::fixture("deploy/exemption-alarm.yaml")).unwrap();
    let filter = |name: &str| {
        let Value::Tagged(t) = &alarm["Resources"][name]["Properties"]["FilterPattern"] else {
            return alarm["Resources"][name]["Properties"]["FilterPattern"]
                .as_str()
                .unwrap_or_else(|| panic!("{name}"))
                .to_string();
        };
        t.value.as_str().unwrap().to_string()
    };
    let renamed = filter("GroupRenamedToExemptionMetricFilter");
    assert!(
        renamed.contains(r#"($.eventName = "UpdateGroup")"#)
            && renamed.contains(r#"($.requestParameters.newGroupName = "${ExemptionGroup}")"#),
        "{renamed}"
    );
    let forwarding = filter("ForwardingChangeMetricFilter");
    for needle in [
        "events.amazonaws.com",
        r#"($.eventName = "DisableRule")"#,
        r#"($.eventName = "DeleteRule")"#,
        r#"($.eventName = "RemoveTargets")"#,
        r#"($.requestParameters.name = "keyguard-*")"#,
        r#"($.requestParameters.rule = "keyguard-*")"#,
    ] {
        assert!(forwarding.contains(needle), "{needle}: {forwarding}");
    }
    let config = filter("ConfigChangeMetricFilter");
    assert!(
        config.contains("${RuleName}*") && !config.contains("keyguard-access-keys"),
        "{config}"
    );
}
