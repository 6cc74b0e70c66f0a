//! The guard of `deploy/member-guard-scp.yaml` against the member stack: every keyguard resource
//! of `deploy/member-role.yaml` a member administrator could change to silence keyguard is
//! denied to everyone but the StackSet's execution role (and the central account), the SCP
//! denies none of the actions keyguard's own member roles are given, and it fits in an SCP.

use std::collections::BTreeMap;

use serde_json::{json, Value as Json};
use serde_norway::Value;

use crate::deploy::{defaults, glob, granted, tag_name, yaml};

const ACCOUNT: &str = "111122223333";
const REGION: &str = "us-east-1";

/// `v` as JSON with the template's intrinsic functions resolved from `params` (a
/// CommaDelimitedList parameter becomes a list) and its conditions; `None` for `AWS::NoValue`.
fn resolve(
    v: &Value,
    params: &BTreeMap<String, String>,
    conditions: &BTreeMap<String, bool>,
) -> Option<Json> {
    let param = |name: &str| -> Option<Json> {
        if name == "AWS::NoValue" {
            return None;
        }
        let text = params
            .get(name)
            .unwrap_or_else(|| panic!("!Ref {name}: no default"));
        Some(
            if text.contains(',') || name.ends_with("Arns") || name.ends_with("Ids") {
                Json::Array(text.split(',').map(|s| json!(s)).collect())
            } else {
                json!(text)
            },
        )
    };
    match v {
        Value::Tagged(t) => match tag_name(t).as_str() {
            "Ref" => param(t.value.as_str().unwrap()),
            "Sub" => {
                let mut text = t.value.as_str().expect("a plain !Sub").to_string();
                text = text.replace("${AWS::Partition}", "aws");
                for (k, v) in params {
                    text = text.replace(&format!("${{{k}}}"), v);
                }
                assert!(!text.contains("${"), "unresolved: {text}");
                Some(json!(text))
            }
            "If" => {
                let args = t.value.as_sequence().unwrap();
                let cond = conditions[args[0].as_str().unwrap()];
                resolve(&args[if cond { 1 } else { 2 }], params, conditions)
            }
            other => panic!("!{other} is not resolved here"),
        },
        Value::Mapping(m) => Some(Json::Object(
            m.iter()
                .filter_map(|(k, v)| {
                    Some((k.as_str()?.to_string(), resolve(v, params, conditions)?))
                })
                .collect(),
        )),
        Value::Sequence(s) => Some(Json::Array(
            s.iter()
                .filter_map(|v| resolve(v, params, conditions))
                .collect(),
        )),
        Value::String(s) => Some(json!(s)),
        Value::Bool(b) => Some(json!(b)),
        Value::Number(n) => Some(json!(n.as_f64())),
        Value::Null => Some(Json::Null),
    }
}

/// The SCP as deployed with the defaults (and `GuardAllConfigRules` as given).
fn guard(guard_rules: bool) -> Json {
    let t = yaml("deploy/member-guard-scp.yaml");
    let mut params = defaults(&t);
    params.insert("CentralAccountId".into(), "999999999999".into());
    params.insert("TargetIds".into(), "r-abcd".into());
    params.insert("GuardAllConfigRules".into(), guard_rules.to_string());
    let conditions = BTreeMap::from([("GuardRules".to_string(), guard_rules)]);
    resolve(
        &t["Resources"]["MemberGuard"]["Properties"]["Content"],
        &params,
        &conditions,
    )
    .unwrap()
}

fn strings(v: &Json) -> Vec<String> {
    match v {
        Json::String(s) => vec![s.clone()],
        Json::Array(a) => a.iter().map(|s| s.as_str().unwrap().to_string()).collect(),
        other => panic!("{other:?}"),
    }
}

/// Whether the SCP denies `action` on `resource` to `principal` (an ARN in `account`).
fn denied(scp: &Json, action: &str, resource: &str, principal: &str, account: &str) -> bool {
    scp["Statement"].as_array().unwrap().iter().any(|s| {
        assert_eq!(s["Effect"], "Deny");
        let c = &s["Condition"];
        strings(&s["Action"]).iter().any(|a| a == action)
            && strings(&s["Resource"]).iter().any(|r| glob(r, resource))
            && !strings(&c["ArnNotLike"]["aws:PrincipalArn"])
                .iter()
                .any(|p| glob(p, principal))
            && strings(&c["StringNotEquals"]["aws:PrincipalAccount"])
                .iter()
                .all(|a| a != account)
    })
}

/// The member resources keyguard depends on, as (ARN, the changes that would silence it).
fn member_resources() -> Vec<(String, &'static [&'static str])> {
    let t = yaml("deploy/member-role.yaml");
    let mut out = Vec::new();
    for (logical, r) in t["Resources"].as_mapping().unwrap() {
        let p = &r["Properties"];
        let name = |key: &str| {
            p[key]
                .as_str()
                .unwrap_or_else(|| panic!("{logical:?}: {key} is a fixed name"))
                .to_string()
        };
        let (arn, changes): (String, &'static [&'static str]) = match r["Type"].as_str().unwrap() {
            "AWS::Lambda::Function" => (
                format!(
                    "arn:aws:lambda:{REGION}:{ACCOUNT}:function:{}",
                    name("FunctionName")
                ),
                &[
                    "lambda:UpdateFunctionCode",
                    "lambda:UpdateFunctionConfiguration",
                    "lambda:DeleteFunction",
                    "lambda:PutFunctionConcurrency",
                    "lambda:RemovePermission",
                    "lambda:AddPermission",
                ],
            ),
            "AWS::IAM::Role" => (
                format!("arn:aws:iam::{ACCOUNT}:role/{}", name("RoleName")),
                &[
                    "iam:CreateRole",
                    "iam:DeleteRole",
                    "iam:PutRolePolicy",
                    "iam:DeleteRolePolicy",
                    "iam:AttachRolePolicy",
                    "iam:UpdateAssumeRolePolicy",
                    "iam:PutRolePermissionsBoundary",
                ],
            ),
            "AWS::Events::Rule" => (
                format!("arn:aws:events:{REGION}:{ACCOUNT}:rule/{}", name("Name")),
                &[
                    "events:DeleteRule",
                    "events:DisableRule",
                    "events:PutRule",
                    "events:PutTargets",
                    "events:RemoveTargets",
                ],
            ),
            "AWS::CloudWatch::Alarm" => (
                format!(
                    "arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{}",
                    name("AlarmName")
                ),
                &["cloudwatch:DeleteAlarms", "cloudwatch:DisableAlarmActions"],
            ),
            "AWS::Config::ConformancePack" => (
                format!(
                    "arn:aws:config:{REGION}:{ACCOUNT}:conformance-pack/{}/conformance-pack-0a1b2c3d4",
                    name("ConformancePackName")
                ),
                &["config:DeleteConformancePack", "config:PutConformancePack"],
            ),
            "AWS::SSM::Document" => (
                format!("arn:aws:ssm:{REGION}:{ACCOUNT}:document/{}", name("Name")),
                &["ssm:UpdateDocument", "ssm:DeleteDocument", "ssm:UpdateDocumentDefaultVersion"],
            ),
            "AWS::KMS::Alias" => (
                format!("arn:aws:kms:{REGION}:{ACCOUNT}:{}", name("AliasName")),
                &["kms:DeleteAlias", "kms:UpdateAlias"],
            ),
            // Guarded only with GuardAllConfigRules (the rule's ARN holds its id), and caught by
            // the report's "Config and IAM disagree" whatever the SCP; the permission and the
            // log group go with the function; a key has no name to guard by.
            "AWS::Config::ConfigRule"
            | "AWS::Lambda::Permission"
            | "AWS::Logs::LogGroup"
            | "AWS::KMS::Key" => continue,
            other => {
                panic!("{logical:?}: {other} is new: guard it in deploy/member-guard-scp.yaml")
            }
        };
        out.push((arn, changes));
    }
    out
}

#[test]
fn the_guard_denies_every_change_to_keyguards_member_resources_but_the_stacksets() {
    let scp = guard(false);
    let admin = format!("arn:aws:iam::{ACCOUNT}:role/AWSReservedSSO_AdministratorAccess_0123");
    let stackset = format!("arn:aws:iam::{ACCOUNT}:role/stacksets-exec-4f2b1c9e0d");
    let resources = member_resources();
    assert!(resources.len() >= 10, "{resources:?}");
    for (arn, changes) in &resources {
        for action in *changes {
            assert!(
                denied(&scp, action, arn, &admin, ACCOUNT),
                "{action} on {arn} is open to a member administrator"
            );
            assert!(
                !denied(&scp, action, arn, &stackset, ACCOUNT),
                "{action} on {arn} is closed to the StackSet"
            );
            assert!(
                !denied(
                    &scp,
                    action,
                    arn,
                    "arn:aws:iam::999999999999:role/deployer",
                    "999999999999"
                ),
                "{action} on {arn} is closed in the central account"
            );
        }
    }
    // The pack's remediation (what Config's "Remediate" runs) is the StackSet's too.
    let remediation = format!(
        "arn:aws:config:{REGION}:{ACCOUNT}:remediation-configuration/keyguard-access-keys-conformance-pack-0a1b2c3d/5e6f"
    );
    for action in [
        "config:PutRemediationConfigurations",
        "config:DeleteRemediationConfiguration",
    ] {
        assert!(
            denied(&scp, action, &remediation, &admin, ACCOUNT),
            "{action}"
        );
        assert!(
            !denied(&scp, action, &remediation, &stackset, ACCOUNT),
            "{action}"
        );
    }
    // A member administrator's own role named after keyguard's (passed off as keyguard in the
    // report once) cannot even be created.
    let own = format!("arn:aws:iam::{ACCOUNT}:role/keyguard-remediator");
    assert!(denied(&scp, "iam:CreateRole", &own, &admin, ACCOUNT));
    // The account's other functions, roles and rules stay the administrator's.
    for (action, arn) in [
        (
            "lambda:UpdateFunctionCode",
            format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:payments"),
        ),
        (
            "iam:DeleteRole",
            format!("arn:aws:iam::{ACCOUNT}:role/ci-deployer"),
        ),
        (
            "events:DeleteRule",
            format!("arn:aws:events:{REGION}:{ACCOUNT}:rule/nightly"),
        ),
        (
            "config:PutConfigRule",
            format!("arn:aws:config:{REGION}:{ACCOUNT}:config-rule/config-rule-ab12cd"),
        ),
    ] {
        assert!(
            !denied(&scp, action, &arn, &admin, ACCOUNT),
            "{action} on {arn}"
        );
    }
    // With GuardAllConfigRules, every Config rule (keyguard's among them) is the StackSet's.
    let all = guard(true);
    let rule = format!("arn:aws:config:{REGION}:{ACCOUNT}:config-rule/config-rule-ab12cd");
    for action in [
        "config:PutConfigRule",
        "config:DeleteConfigRule",
        "config:DeleteEvaluationResults",
    ] {
        assert!(denied(&all, action, &rule, &admin, ACCOUNT), "{action}");
        assert!(!denied(&all, action, &rule, &stackset, ACCOUNT), "{action}");
    }
    let pack = format!("arn:aws:config:{REGION}:{ACCOUNT}:conformance-pack/OrgConformsPack-keyguard-a1b2c3/conformance-pack-x");
    assert!(denied(
        &scp,
        "config:DeleteConformancePack",
        &pack,
        &admin,
        ACCOUNT
    ));
}

#[test]
fn the_guard_denies_nothing_keyguards_member_roles_do_and_fits_in_an_scp() {
    let scp = guard(true);
    let denied_actions: Vec<String> = scp["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| strings(&s["Action"]))
        .collect();
    for (role, actions) in granted(&["deploy/member-role.yaml"]) {
        for a in actions {
            assert!(
                !denied_actions.contains(&a),
                "{role} needs {a}, which the guard denies"
            );
        }
    }
    // Organizations' limit: 5,120 characters, white space outside quotes not counted when
    // removed (AWS::Organizations::Policy's Content, "Quotas for AWS Organizations").
    let text = serde_json::to_string(&scp).unwrap();
    assert!(text.len() <= 5120, "{} characters", text.len());
    assert!(glob(
        "arn:aws:iam::*:role/stacksets-exec-*",
        "arn:aws:iam::1:role/stacksets-exec-x"
    ));
    assert!(!glob(
        "arn:aws:iam::*:role/stacksets-exec-*",
        "arn:aws:iam::1:role/other"
    ));
}
