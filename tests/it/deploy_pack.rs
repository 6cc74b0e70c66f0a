//! The conformance pack (`conformance-packs/keyguard-access-keys.yaml`) against the code and the
//! member stack that deploys it: its parameters are the rule's own type with the defaults of
//! `docs/policy.md` and every one is passed by the member stack; it holds keyguard's rule on the
//! account's own function and the AWS managed companions; its remediation can only ask the
//! central remediator, through the request bus, for the normal policy on the account's user.

use std::collections::{BTreeMap, BTreeSet};

use keyguard_core::Settings;
use rule_lambda::RuleParameters;
use serde_norway::Value;

use crate::deploy::{defaults, resolve_refs, tag_name, yaml};

const PACK: &str = "conformance-packs/keyguard-access-keys.yaml";

/// The member stack's `AccessKeysPack` input parameters, as (name, value): a `!Ref` resolved to
/// the member stack's default, anything else (`!GetAtt`, `!Sub`, `!If`) as the YAML it is.
fn pack_inputs(member: &Value) -> BTreeMap<String, Value> {
    let params = defaults(member);
    member["Resources"]["AccessKeysPack"]["Properties"]["ConformancePackInputParameters"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|p| {
            let v = &p["ParameterValue"];
            let value = match v {
                Value::Tagged(t)
                    if tag_name(t) == "Ref" && params.contains_key(t.value.as_str().unwrap()) =>
                {
                    resolve_refs(v, &params)
                }
                other => other.clone(),
            };
            (p["ParameterName"].as_str().unwrap().to_string(), value)
        })
        .collect()
}

#[test]
fn the_packs_parameters_are_the_rules_with_the_member_stacks_defaults() {
    let member = yaml("deploy/member-role.yaml");
    let pack = yaml(PACK);
    let inputs = pack_inputs(&member);
    // Every parameter of the pack is passed by the member stack, and nothing else is.
    let declared: BTreeSet<String> = pack["Parameters"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        inputs.keys().cloned().collect::<BTreeSet<_>>(),
        declared,
        "the member stack passes exactly the pack's parameters"
    );
    // The pack's defaults are the member stack's (a pack deployed by hand behaves the same).
    let pack_defaults = defaults(&pack);
    for (name, value) in &inputs {
        if let (Value::String(text), Some(d)) = (value, pack_defaults.get(name)) {
            assert_eq!(text, d, "{name}: the pack's default is the member stack's");
        }
    }
    let mut params = pack_defaults.clone();
    params.insert(
        "RuleFunctionArn".into(),
        "arn:aws:lambda:us-east-1:111122223333:function:keyguard-rule-lambda".into(),
    );
    params.insert(
        "RemediationRoleArn".into(),
        "arn:aws:iam::111122223333:role/keyguard-member-remediation-request".into(),
    );
    let rule = &pack["Resources"]["KeyguardAccessKeys"]["Properties"];
    let input = resolve_refs(&rule["InputParameters"], &params);
    // Config hands the rule its parameters as one JSON object of strings.
    let json = serde_json::to_string(&input).unwrap();
    let parsed = RuleParameters::parse(Some(&json)).unwrap_or_else(|e| panic!("{e}: {json}"));
    let d = Settings::default();
    assert_eq!(
        parsed,
        RuleParameters {
            rotation_period: Some(d.rotation_period),
            installation_grace_period: Some(d.installation_grace_period),
            recovery_grace_period: Some(d.recovery_grace_period),
            unused_key_period: Some(d.unused_key_period),
            pending_action_warn_period: Some(d.pending_action_warn_period),
            single_active_key: Some(d.single_active_key),
            exemption_group: Some(d.exemption_group.clone()),
            exemption_expiry_tag: Some(d.exemption_expiry_tag.clone()),
            owner_email_tag: Some(d.owner_email_tag.clone()),
            max_exemption_days: Some(d.max_exemption_days),
        },
        "every setting of the rule is a pack parameter with the default of docs/policy.md"
    );
    assert_eq!(parsed.apply(&d).unwrap(), d);
    // A renamed parameter would be refused by the rule, so this test would fail on drift.
    let drifted = json.replace("RotationPeriod", "RotationDays");
    let err = RuleParameters::parse(Some(&drifted))
        .unwrap_err()
        .to_string();
    assert!(err.contains("RotationDays"), "{err}");
    // The function is this account's (the member stack's !GetAtt), never a central one.
    let Value::Tagged(function) = &inputs["RuleFunctionArn"] else {
        panic!("RuleFunctionArn is the member stack's !GetAtt")
    };
    assert_eq!(tag_name(function), "GetAtt");
    assert_eq!(function.value.as_str(), Some("RuleFunction.Arn"));
}

#[test]
fn the_pack_holds_keyguards_rule_and_the_managed_companions() {
    let pack = yaml(PACK);
    let resources = pack["Resources"].as_mapping().unwrap();
    let types: BTreeSet<&str> = resources
        .values()
        .map(|r| r["Type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        BTreeSet::from([
            "AWS::Config::ConfigRule",
            "AWS::Config::RemediationConfiguration"
        ]),
        "a conformance pack holds rules and remediations only"
    );
    let rule = &pack["Resources"]["KeyguardAccessKeys"]["Properties"];
    assert_eq!(rule["Source"]["Owner"], "CUSTOM_LAMBDA");
    let Value::Tagged(source) = &rule["Source"]["SourceIdentifier"] else {
        panic!("the rule's function is a parameter")
    };
    assert_eq!(source.value.as_str(), Some("RuleFunctionArn"));
    assert_eq!(
        rule["Scope"]["ComplianceResourceTypes"],
        serde_norway::from_str::<Value>("[AWS::IAM::User]").unwrap()
    );
    let kinds: BTreeSet<&str> = rule["Source"]["SourceDetails"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|d| d["MessageType"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "ConfigurationItemChangeNotification",
            "OversizedConfigurationItemChangeNotification",
            "ScheduledNotification"
        ])
    );
    // The managed companions, with keyguard's own settings where they take one.
    let managed: BTreeMap<&str, &Value> = resources
        .values()
        .filter(|r| r["Properties"]["Source"]["Owner"] == "AWS")
        .map(|r| {
            (
                r["Properties"]["Source"]["SourceIdentifier"]
                    .as_str()
                    .unwrap(),
                &r["Properties"]["InputParameters"],
            )
        })
        .collect();
    assert_eq!(
        managed.keys().copied().collect::<Vec<_>>(),
        [
            "ACCESS_KEYS_ROTATED",
            "IAM_ROOT_ACCESS_KEY_CHECK",
            "IAM_USER_UNUSED_CREDENTIALS_CHECK"
        ]
    );
    let refers =
        |v: &Value, param: &str| matches!(v, Value::Tagged(t) if t.value.as_str() == Some(param));
    assert!(refers(
        &managed["ACCESS_KEYS_ROTATED"]["maxAccessKeyAge"],
        "RotationPeriod"
    ));
    assert!(refers(
        &managed["IAM_USER_UNUSED_CREDENTIALS_CHECK"]["maxCredentialUsageAge"],
        "UnusedCredentialsAge"
    ));
    // The member stack's UnusedKeyPeriod 0 (off) still gives the managed rule an age.
    let member = yaml("deploy/member-role.yaml");
    let Value::Tagged(age) = &pack_inputs(&member)["UnusedCredentialsAge"] else {
        panic!("UnusedCredentialsAge is an !If")
    };
    assert_eq!(tag_name(age), "If");
    assert_eq!(
        member["Conditions"]["UnusedCheckOff"],
        serde_norway::from_str::<Value>("!Equals [!Ref UnusedKeyPeriod, \"0\"]").unwrap()
    );
}

/// Config's "Remediate" runs keyguard's document with the user's id; the document puts one event
/// on the central request bus (failing when the bus refused it), as a role that may do nothing else; the central
/// rule for it sends it to the remediator, which takes the account from the envelope
/// (`attacks.rs` runs such an event naming another account's user).
#[test]
fn config_remediation_only_asks_the_central_remediator_for_the_accounts_own_user() {
    let pack = yaml(PACK);
    let remediation = &pack["Resources"]["KeyguardRemediation"]["Properties"];
    assert_eq!(remediation["TargetType"], "SSM_DOCUMENT");
    assert_eq!(remediation["ResourceType"], "AWS::IAM::User");
    assert_eq!(
        remediation["Parameters"]["UserId"]["ResourceValue"]["Value"],
        "RESOURCE_ID"
    );
    let refers =
        |v: &Value, param: &str| matches!(v, Value::Tagged(t) if t.value.as_str() == Some(param));
    assert!(refers(&remediation["ConfigRuleName"], "RuleName"));
    assert!(refers(&remediation["TargetId"], "RemediationDocument"));
    assert!(refers(&remediation["Automatic"], "AutomaticRemediation"));

    let member = yaml("deploy/member-role.yaml");
    assert_eq!(defaults(&member)["AutomaticRemediation"], "false");
    let inputs = pack_inputs(&member);
    let Value::Tagged(doc) = &inputs["RemediationDocument"] else {
        panic!("RemediationDocument is the member stack's document")
    };
    assert_eq!(doc.value.as_str(), Some("RemediationRequestDocument"));
    let document = &member["Resources"]["RemediationRequestDocument"]["Properties"];
    assert_eq!(document["DocumentType"], "Automation");
    let steps = document["Content"]["mainSteps"].as_sequence().unwrap();
    // The request, then a branch that fails the remediation when the bus refused the entry.
    let actions: Vec<&str> = steps
        .iter()
        .map(|s| s["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "aws:executeAwsApi",
            "aws:branch",
            "aws:executeScript",
            "aws:sleep"
        ]
    );
    let choice = &steps[1]["inputs"]["Choices"][0];
    assert_eq!(choice["Variable"], "{{ AskKeyguard.FailedEntryCount }}");
    assert_eq!(
        (
            choice["NumericEquals"].as_u64(),
            choice["NextStep"].as_str()
        ),
        (Some(0), Some("Done"))
    );
    assert_eq!(steps[1]["inputs"]["Default"], "Refused");
    assert!(steps[2]["inputs"]["Script"]
        .as_str()
        .unwrap()
        .contains("raise"));
    let inputs = &steps[0]["inputs"];
    assert_eq!(steps[0]["action"], "aws:executeAwsApi");
    assert_eq!(
        (inputs["Service"].as_str(), inputs["Api"].as_str()),
        (Some("events"), Some("PutEvents"))
    );
    let entries = inputs["Entries"].as_sequence().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["Source"], remediator::REMEDIATION_SOURCE);
    assert_eq!(entries[0]["DetailType"], remediator::REMEDIATION_REQUEST);
    let detail: serde_json::Value = serde_json::from_str(
        &entries[0]["Detail"]
            .as_str()
            .unwrap()
            .replace("{{ UserId }}", "AIDAUSER0000000001"),
    )
    .unwrap();
    // The fixture the remediator's unit tests parse is this document's event.
    let fixture: serde_json::Value = serde_json::from_str(&crate::support::fixture(
        "remediator/fixtures/keyguard-remediation-request.json",
    ))
    .unwrap();
    assert_eq!(
        detail.as_object().unwrap().keys().collect::<Vec<_>>(),
        fixture["detail"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>()
    );
    assert_eq!(fixture["source"], remediator::REMEDIATION_SOURCE);
    // The document runs as a role that may only put events on the central request bus.
    let role = &member["Resources"]["RemediationRequestRole"]["Properties"];
    assert_eq!(role["RoleName"], "keyguard-member-remediation-request");
    assert_eq!(
        role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"],
        "ssm.amazonaws.com"
    );
    let statements = role["Policies"][0]["PolicyDocument"]["Statement"]
        .as_sequence()
        .unwrap();
    assert_eq!(statements.len(), 1);
    assert_eq!(statements[0]["Action"], "events:PutEvents");
    let Value::Tagged(bus) = &statements[0]["Resource"] else {
        panic!("the request bus's ARN")
    };
    assert!(bus
        .value
        .as_str()
        .unwrap()
        .ends_with(":event-bus/${RequestBusName}"));
    // The forwarding of Config's own findings matches the pack's copy of the rule by prefix.
    let forward = &member["Resources"]["ComplianceChangeForward"]["Properties"]["EventPattern"];
    assert_eq!(forward["source"][0], "aws.config");
    assert!(!forward["detail"]["configRuleName"][0]["prefix"].is_null());
}
