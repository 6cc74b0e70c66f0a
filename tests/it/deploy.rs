//! The deployment files against the code (the conformance pack's in `deploy_pack.rs`): only
//! keyguard's rules and the operator may invoke
//! the remediator, every keyguard role allows exactly the AWS actions its code calls (least
//! privilege, from the emulator rig's call log of the integration tests), and the reporter writes
//! only its own state-table items (`dynamodb:LeadingKeys`, against the keys the suite used).
//!
//! The least-privilege tests read what the other test binaries' rigs logged, so they are
//! `#[ignore]`d and `./test.sh` runs them after the whole suite:
//! `cargo test --workspace --test it deploy:: -- --ignored`.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};

use serde_norway::Value;

pub(crate) fn yaml(path: &str) -> Value {
    serde_norway::from_str(&support::fixture(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The name of a YAML tag without its `!` (`!Ref` → `Ref`).
pub(crate) fn tag_name(t: &serde_norway::value::TaggedValue) -> String {
    t.tag.to_string().trim_start_matches('!').to_string()
}

/// `v` with every `!Ref` to a parameter replaced by that parameter's value.
pub(crate) fn resolve_refs(v: &Value, params: &BTreeMap<String, String>) -> Value {
    match v {
        Value::Tagged(t) if tag_name(t) == "Ref" => {
            let name = t.value.as_str().expect("!Ref names a parameter");
            Value::String(
                params
                    .get(name)
                    .unwrap_or_else(|| panic!("!Ref {name}: no such parameter with a default"))
                    .clone(),
            )
        }
        Value::Mapping(m) => Value::Mapping(
            m.iter()
                .map(|(k, v)| (k.clone(), resolve_refs(v, params)))
                .collect(),
        ),
        Value::Sequence(s) => Value::Sequence(s.iter().map(|v| resolve_refs(v, params)).collect()),
        other => other.clone(),
    }
}

/// A template's parameters with their defaults, as strings.
pub(crate) fn defaults(template: &Value) -> BTreeMap<String, String> {
    template["Parameters"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter_map(|(k, p)| {
            let d = &p["Default"];
            let text = match d {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return None,
            };
            Some((k.as_str().unwrap().to_string(), text))
        })
        .collect()
}

/// IAM's wildcard match (`*` any run, `?` one character), case-sensitive as ARNs are
/// (`ArnLike`, `StringLike`).
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Who may make the remediator act (issue 14): nothing from outside the central account but its
/// own EventBridge rules (the schedule, the request bus's NON_COMPLIANT rule) and the operator
/// role named at deployment; the request bus takes events only from the member accounts'
/// forwarding role, inside the organization.
#[test]
fn only_keyguards_rules_and_the_operator_may_invoke_the_remediator() {
    let central = yaml("deploy/central.yaml");
    let resources = central["Resources"].as_mapping().unwrap();
    let mut permitted = BTreeMap::new();
    for (name, r) in resources {
        if r["Type"] != "AWS::Lambda::Permission" {
            continue;
        }
        let p = &r["Properties"];
        let function = match &p["FunctionName"] {
            Value::Tagged(t) => t.value.as_str().unwrap_or_default().to_string(),
            other => other.as_str().unwrap_or_default().to_string(),
        };
        assert_ne!(p["Principal"], "*", "{name:?}: no permission for everybody");
        assert!(
            p["PrincipalOrgID"].is_null(),
            "{name:?}: not the whole organization"
        );
        if p["Principal"] == "events.amazonaws.com" {
            assert!(
                !p["SourceArn"].is_null(),
                "{name:?}: an EventBridge permission names its rule"
            );
        }
        if function.starts_with("Remediator") {
            permitted.insert(name.as_str().unwrap().to_string(), p.clone());
        }
    }
    assert_eq!(
        permitted.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "ExposedKeyInvokesRemediator",
            "KeyReEnabledInvokesRemediator",
            "NonCompliantUserInvokesRemediator",
            "OperatorInvokesRemediator",
            "RemediationRequestInvokesRemediator",
            "SweepInvokesRemediator"
        ]
    );
    let Value::Tagged(operator) = &permitted["OperatorInvokesRemediator"]["Principal"] else {
        panic!("the operator permission names the OperatorRoleArn parameter")
    };
    assert_eq!(operator.value.as_str(), Some("OperatorRoleArn"));
    assert_eq!(
        resources[&Value::from("OperatorInvokesRemediator")]["Condition"],
        "HasOperatorRole"
    );
    // The request bus: PutEvents only by keyguard's forwarding roles inside the organization.
    let policy = &central["Resources"]["RequestBusPolicy"]["Properties"]["Statement"];
    assert_eq!(policy["Action"], "events:PutEvents");
    assert!(!policy["Condition"]["StringEquals"]["aws:PrincipalOrgID"].is_null());
    let Value::Tagged(arn) = &policy["Condition"]["ArnLike"]["aws:PrincipalArn"] else {
        panic!("the bus policy names the forwarding role")
    };
    assert!(
        arn.value
            .as_str()
            .unwrap()
            .ends_with(":role/keyguard-alarm-forwarder"),
        "{arn:?}"
    );
    // Its rules act on Config's own events (no PutEvents caller can send source aws.*), and on
    // the remediation document's requests, which only keyguard's remediation role of a member
    // account may put, of one source and detail-type (deploy_pack.rs follows them through).
    let rule = &central["Resources"]["NonCompliantUserRule"]["Properties"];
    assert_eq!(rule["EventPattern"]["source"][0], "aws.config");
    assert_eq!(rule["Targets"].as_sequence().unwrap().len(), 1);
    let policy = &central["Resources"]["RequestBusRemediationPolicy"]["Properties"]["Statement"];
    assert_eq!(policy["Action"], "events:PutEvents");
    assert!(!policy["Condition"]["StringEquals"]["aws:PrincipalOrgID"].is_null());
    assert_eq!(
        policy["Condition"]["StringEquals"]["events:detail-type"],
        remediator::REMEDIATION_REQUEST
    );
    assert_eq!(
        policy["Condition"]["ForAllValues:StringEquals"]["events:source"][0],
        remediator::REMEDIATION_SOURCE
    );
    let Value::Tagged(arn) = &policy["Condition"]["ArnLike"]["aws:PrincipalArn"] else {
        panic!("the bus policy names the remediation role")
    };
    assert!(arn
        .value
        .as_str()
        .unwrap()
        .ends_with(":role/keyguard-member-remediation-request"));
}

// ------------------------------------------------------------------ least privilege

/// The roles keyguard's code runs as, and the templates that define them.
const CODE_ROLES: &[(&str, &str)] = &[
    ("keyguard-remediator", "deploy/central.yaml"),
    ("keyguard-reporter", "deploy/central.yaml"),
    ("keyguard-member-rule", "deploy/member-role.yaml"),
    ("keyguard-member-remediator", "deploy/member-role.yaml"),
    ("keyguard-member-reporter", "deploy/member-role.yaml"),
    ("keyguard-org-list", "deploy/org-list-role.yaml"),
    // The operator's CLI (audit, plan, collect, report, usage, restore: tests/it/operator.rs).
    ("keyguard-member", "deploy/member-role.yaml"),
];

/// Actions a code role is granted that no API call of the code makes, each with its reason: AWS
/// services use them on the function's behalf. Everything else a role allows must be called.
const ON_BEHALF: &[(&str, &str, &str)] = &[
    (
        "*",
        "logs:CreateLogStream",
        "the Lambda runtime writes the function's logs",
    ),
    (
        "*",
        "logs:PutLogEvents",
        "the Lambda runtime writes the function's logs",
    ),
    (
        "keyguard-remediator",
        "sns:Publish",
        "Lambda delivers failed asynchronous invocations to the dead-letter topic",
    ),
    (
        "keyguard-reporter",
        "sns:Publish",
        "Lambda delivers failed asynchronous invocations to the dead-letter topic",
    ),
    (
        "keyguard-remediator",
        "kms:GenerateDataKey",
        "the dead-letter topic and, with SecretKmsKeyArn, Secrets Manager encrypt for the role",
    ),
    (
        "keyguard-remediator",
        "kms:Decrypt",
        "the dead-letter topic and, with SecretKmsKeyArn, Secrets Manager decrypt for the role",
    ),
    (
        "keyguard-reporter",
        "kms:GenerateDataKey",
        "the dead-letter topic is encrypted",
    ),
    (
        "keyguard-reporter",
        "kms:Decrypt",
        "the dead-letter topic is encrypted",
    ),
    (
        "keyguard-reporter",
        "sqs:ReceiveMessage",
        "Lambda's event source mapping works the report queue with the function's role",
    ),
    (
        "keyguard-remediator",
        "sqs:ReceiveMessage",
        "Lambda's event source mapping takes the work queue's messages with the function's role",
    ),
    (
        "keyguard-reporter",
        "sqs:DeleteMessage",
        "Lambda's event source mapping works the report queue with the function's role",
    ),
    (
        "keyguard-remediator",
        "sqs:DeleteMessage",
        "Lambda's event source mapping deletes the messages the function did not report failed",
    ),
    (
        "keyguard-reporter",
        "sqs:GetQueueAttributes",
        "Lambda's event source mapping works the report queue with the function's role",
    ),
    (
        "keyguard-remediator",
        "sqs:GetQueueAttributes",
        "Lambda's event source mapping reads the work queue's attributes",
    ),
    (
        "keyguard-reporter",
        "sqs:ChangeMessageVisibility",
        "Lambda's event source mapping works the report queue with the function's role",
    ),
    (
        "keyguard-remediator",
        "sqs:ChangeMessageVisibility",
        "Lambda's event source mapping returns failed messages to the queue",
    ),
    (
        "*",
        "secretsmanager:TagResource",
        "CreateSecret with tags needs it; the rig sees one CreateSecret call",
    ),
];

/// Calls that need no permission.
const NEEDS_NO_PERMISSION: &[&str] = &["sts:GetCallerIdentity"];

/// The IAM action of a call the rig logged (`service:Action` by the request's signing name).
fn iam_actions(call: &str) -> Vec<String> {
    match call {
        // S3's ListObjectsV2 is authorized as s3:ListBucket; SESv2's SendEmail as ses:SendEmail.
        "s3:ListObjectsV2" => vec!["s3:ListBucket".into()],
        // Batch calls are authorized as their single-message action.
        "sqs:SendMessageBatch" => vec!["sqs:SendMessage".into()],
        // A transaction is authorized per item (docs.aws.amazon.com/amazondynamodb/latest/
        // developerguide/transaction-apis-iam.html); keyguard's one transaction is a lease's
        // ConditionCheck and a Put of the records (keyguard_aws::state::StateTable::put_guarded).
        "dynamodb:TransactWriteItems" => vec![
            "dynamodb:ConditionCheckItem".into(),
            "dynamodb:PutItem".into(),
        ],
        other => vec![other.to_string()],
    }
}

/// The Allow actions of every role in `files`, by role name.
pub(crate) fn granted(files: &[&str]) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let t = yaml(file);
        let resources = t["Resources"].as_mapping().unwrap();
        let role_name = |logical: &str| -> Option<String> {
            resources
                .get(logical)
                .and_then(|r| r["Properties"]["RoleName"].as_str())
                .map(str::to_string)
        };
        for (logical, r) in resources {
            let props = &r["Properties"];
            let (name, docs): (Option<String>, Vec<&Value>) = match r["Type"].as_str() {
                Some("AWS::IAM::Role") => (
                    props["RoleName"].as_str().map(str::to_string),
                    props["Policies"]
                        .as_sequence()
                        .map(|p| p.iter().map(|p| &p["PolicyDocument"]).collect())
                        .unwrap_or_default(),
                ),
                Some("AWS::IAM::RolePolicy") => {
                    let Value::Tagged(t) = &props["RoleName"] else {
                        panic!("{logical:?}: RoleName is a !Ref to the role")
                    };
                    (
                        role_name(t.value.as_str().unwrap()),
                        vec![&props["PolicyDocument"]],
                    )
                }
                _ => continue,
            };
            let name =
                name.unwrap_or_else(|| panic!("{file} {logical:?}: a role needs a fixed RoleName"));
            let set = out.entry(name).or_default();
            for doc in docs {
                for s in doc["Statement"].as_sequence().unwrap() {
                    assert_eq!(s["Effect"], "Allow", "{file} {logical:?}");
                    match &s["Action"] {
                        Value::String(a) => {
                            set.insert(a.clone());
                        }
                        Value::Sequence(list) => {
                            set.extend(list.iter().map(|a| a.as_str().unwrap().to_string()))
                        }
                        other => panic!("{file} {logical:?}: Action {other:?}"),
                    }
                }
            }
        }
    }
    out
}

fn code_role_grants() -> BTreeMap<String, BTreeSet<String>> {
    let files: BTreeSet<&str> = CODE_ROLES.iter().map(|(_, f)| *f).collect();
    let all = granted(&files.into_iter().collect::<Vec<_>>());
    CODE_ROLES
        .iter()
        .map(|(role, file)| {
            let actions = all
                .get(*role)
                .unwrap_or_else(|| panic!("{file} defines no role {role}"))
                .clone();
            (role.to_string(), actions)
        })
        .collect()
}

fn on_behalf(role: &str, action: &str) -> bool {
    ON_BEHALF
        .iter()
        .any(|(r, a, _)| (*r == "*" || *r == role) && *a == action)
}

/// Every problem: a call its role does not allow, or an allowed action nobody calls.
fn least_privilege(
    grants: &BTreeMap<String, BTreeSet<String>>,
    observed: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for (role, allowed) in grants {
        let called = observed.get(role).cloned().unwrap_or_default();
        for action in &called {
            if !allowed.contains(action) {
                problems.push(format!(
                    "{role} calls {action}, which its role does not allow"
                ));
            }
        }
        for action in allowed {
            if !called.contains(action) && !on_behalf(role, action) {
                problems.push(format!(
                    "{role} allows {action}, which the code never called in the integration tests"
                ));
            }
        }
    }
    problems
}

#[test]
fn no_role_allows_wildcards_passrole_or_policy_writes() {
    // The rule function's role is its own account's: only Lambda may assume it, and only for
    // this account's functions.
    let member = yaml("deploy/member-role.yaml");
    let trust = &member["Resources"]["RuleMemberRole"]["Properties"]["AssumeRolePolicyDocument"]
        ["Statement"][0];
    assert_eq!(trust["Principal"]["Service"], "lambda.amazonaws.com");
    assert!(!trust["Condition"]["StringEquals"]["aws:SourceAccount"].is_null());
    let grants = granted(&[
        "deploy/central.yaml",
        "deploy/member-role.yaml",
        "deploy/org-list-role.yaml",
        "deploy/exemption-alarm.yaml",
    ]);
    for (role, actions) in &grants {
        for a in actions {
            assert!(!a.contains('*'), "{role} allows {a}: no wildcard actions");
            assert!(
                ![
                    "iam:PassRole",
                    "iam:PutUserPolicy",
                    "iam:AttachUserPolicy",
                    "iam:CreateUser"
                ]
                .contains(&a.as_str()),
                "{role} allows {a}"
            );
        }
    }
    // Member roles trust only their central role, and only from inside the organization.
    let member = yaml("deploy/member-role.yaml");
    for (logical, central) in [
        ("RemediatorMemberRole", "keyguard-remediator"),
        ("ReporterMemberRole", "keyguard-reporter"),
    ] {
        let trust =
            &member["Resources"][logical]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0];
        let Value::Tagged(principal) = &trust["Principal"]["AWS"] else {
            panic!("{logical}: one principal")
        };
        assert!(
            principal
                .value
                .as_str()
                .unwrap()
                .ends_with(&format!(":role/{central}")),
            "{logical} trusts {principal:?}"
        );
        assert!(
            !trust["Condition"]["StringEquals"]["aws:PrincipalOrgID"].is_null(),
            "{logical}: aws:PrincipalOrgID"
        );
    }
}

#[test]
fn the_check_fails_when_a_role_loses_or_gains_an_action() {
    let grants = code_role_grants();
    // Calls exactly as granted (less what services do on the roles' behalf) pass...
    let observed: BTreeMap<String, BTreeSet<String>> = grants
        .iter()
        .map(|(r, a)| {
            (
                r.clone(),
                a.iter().filter(|a| !on_behalf(r, a)).cloned().collect(),
            )
        })
        .collect();
    assert_eq!(least_privilege(&grants, &observed), Vec::<String>::new());
    // ...a role without an action the code calls fails...
    let mut fewer = grants.clone();
    fewer
        .get_mut("keyguard-member-remediator")
        .unwrap()
        .remove("iam:CreateAccessKey");
    assert_eq!(
        least_privilege(&fewer, &observed),
        ["keyguard-member-remediator calls iam:CreateAccessKey, which its role does not allow"]
    );
    // ...and so does a role that allows more than the code calls.
    let mut more = grants.clone();
    more.get_mut("keyguard-member-rule")
        .unwrap()
        .insert("iam:DeleteAccessKey".into());
    assert_eq!(
        least_privilege(&more, &observed),
        ["keyguard-member-rule allows iam:DeleteAccessKey, which the code never called in the integration tests"]
    );
}

/// What the code did under each keyguard role, from every rig of this test run.
fn observed_calls() -> BTreeMap<String, BTreeSet<String>> {
    let dir = support::call_log_dir();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "{}: {e}. Run the integration tests first (./test.sh does, then runs this test).",
            dir.display()
        )
    });
    for entry in entries {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("jsonl") {
            continue;
        }
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let action = v["action"].as_str().unwrap();
            if NEEDS_NO_PERMISSION.contains(&action) {
                continue;
            }
            out.entry(v["role"].as_str().unwrap().to_string())
                .or_default()
                .extend(iam_actions(action));
        }
    }
    out
}

#[test]
#[ignore = "reads the call log of the whole suite: ./test.sh runs it last"]
fn roles_allow_exactly_what_the_integration_tests_called() {
    let grants = code_role_grants();
    let observed = observed_calls();
    let summary: Vec<String> = grants
        .keys()
        .map(|r| {
            format!(
                "{r}: {}",
                observed
                    .get(r)
                    .map(|a| a.iter().cloned().collect::<Vec<_>>().join(" "))
                    .unwrap_or_default()
            )
        })
        .collect();
    let problems = least_privilege(&grants, &observed);
    assert!(
        problems.is_empty(),
        "least privilege:\n  {}\n\nobserved:\n  {}",
        problems.join("\n  "),
        summary.join("\n  ")
    );
    // Removing any one observed action from its role makes the check fail.
    for (role, actions) in &observed {
        let Some(allowed) = grants.get(role) else {
            continue;
        };
        for action in actions {
            let mut fewer = grants.clone();
            fewer.get_mut(role).unwrap().remove(action);
            assert!(
                allowed.contains(action)
                    && least_privilege(&fewer, &observed).contains(&format!(
                        "{role} calls {action}, which its role does not allow"
                    )),
                "{role} {action}"
            );
        }
    }
    println!("least privilege holds:\n  {}", summary.join("\n  "));
}

// ------------------------------------------------------------------ the reporter's state items

/// The partition keys the reporter's role may reach in the state table (its `State`
/// statement's `dynamodb:LeadingKeys`).
fn reporter_leading_keys() -> Vec<String> {
    let t = yaml("deploy/central.yaml");
    let statements = t["Resources"]["ReporterRole"]["Properties"]["Policies"][0]["PolicyDocument"]
        ["Statement"]
        .as_sequence()
        .unwrap();
    let state = statements
        .iter()
        .find(|s| s["Sid"] == "State")
        .expect("the reporter's State statement");
    state["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
        .as_sequence()
        .expect("the reporter is limited to its own items (dynamodb:LeadingKeys)")
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect()
}

/// The reporter once could write any item of the state table, leases and the records that
/// decide a delete among them: its role reaches its own runs only.
#[test]
fn the_reporter_may_write_only_its_own_state_items() {
    let keys = reporter_leading_keys();
    let allowed = |pk: &str| keys.iter().any(|k| glob(k, pk));
    let run = "report-weekly-2026-11-30";
    for own in [format!("run#{run}"), keyguard_aws::state::index_of(run)] {
        assert!(allowed(&own), "{own}: {keys:?}");
    }
    let sweep = "sweep-2026-12-01";
    for other in [
        "lease#111122223333".to_string(),
        "user#111122223333".to_string(),
        "notice#111122223333".to_string(),
        "asked#111122223333".to_string(),
        "asked#all".to_string(),
        "previews#111122223333".to_string(),
        format!("run#{sweep}"),
        keyguard_aws::state::index_of(sweep),
        "runs".to_string(),
    ] {
        assert!(!allowed(&other), "the reporter may reach {other}: {keys:?}");
    }
}

/// Every partition key the reporter's role reached in the suite is within its limit (the rig
/// logs each one), and the suite reached some.
#[test]
#[ignore = "reads the call log of the whole suite: ./test.sh runs it last"]
fn the_state_keys_the_reporter_used_are_within_its_limit() {
    let keys = reporter_leading_keys();
    let mut seen = BTreeSet::new();
    for entry in std::fs::read_dir(support::call_log_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("jsonl") {
            continue;
        }
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            if v["role"] == "keyguard-reporter" {
                if let Some(pk) = v["leading_key"].as_str() {
                    seen.insert(pk.to_string());
                }
            }
        }
    }
    assert!(
        !seen.is_empty(),
        "no state item reached by keyguard-reporter in the suite"
    );
    for pk in &seen {
        assert!(
            keys.iter().any(|k| glob(k, pk)),
            "keyguard-reporter reached {pk}, outside {keys:?}"
        );
    }
    println!("keyguard-reporter's state items: {seen:?}");
}
