//! The templates and the conformance pack stay within AWS's limits for 10,000 accounts: template
//! body, parameter values,
//! resources per template, and the remediator's resource policy, whatever the organization's
//! size.

use std::collections::BTreeMap;

use serde_norway::Value;

use crate::deploy::yaml;
use crate::support;

// ------------------------------------------------------------------ limits at 10,000 accounts

/// CloudFormation's and Lambda's limits (docs.aws.amazon.com: AWSCloudFormation cloudformation-limits,
/// lambda gettingstarted-limits).
const TEMPLATE_BODY_BYTES: usize = 51_200;
const PARAMETER_VALUE_BYTES: usize = 4_096;
const RESOURCES_PER_TEMPLATE: usize = 500;
const FUNCTION_POLICY_BYTES: usize = 20 * 1024;
/// One `AddPermission` statement, generously (a service principal, a source ARN or account).
const PERMISSION_STATEMENT_BYTES: usize = 400;
/// PutConformancePack's ConformancePackInputParameters (at most 60).
const PACK_INPUT_PARAMETERS: usize = 60;

/// Resources after `Fn::ForEach` is expanded; a loop over a parameter (a list that grows with the
/// organization) is refused outright.
fn expanded_resources(t: &Value) -> usize {
    let mut n = 0;
    for (k, v) in t["Resources"].as_mapping().unwrap() {
        let k = k.as_str().unwrap();
        if k.starts_with("Fn::ForEach::") {
            let items = &v[1];
            assert!(
                items.as_sequence().is_some(),
                "{k} loops over {items:?}: a loop over a parameter grows with what it lists"
            );
            let per_item = v[2].as_mapping().unwrap().len();
            n += items.as_sequence().unwrap().len() * per_item;
        } else {
            n += 1;
        }
    }
    n
}

/// Every template an operator deploys for an organization of 10,000 accounts, with the parameter
/// values the README's deployment guide passes, stays within AWS's limits, and nothing in them
/// depends on the number of accounts: no parameter lists accounts (but the optional exclusion
/// list), no resource is repeated per account, each function's resource policy holds a fixed
/// number of statements.
#[test]
fn the_templates_stay_within_aws_limits_for_ten_thousand_accounts() {
    let accounts: Vec<String> = (0..10_000)
        .map(|i| format!("{:012}", 100_000_000_000u64 + i))
        .collect();
    // What the operator passes (README, "Deploying to an organization"); none of it is per account.
    let deployed: &[(&str, &[(&str, String)])] = &[
        (
            "deploy/central.yaml",
            &[
                ("ArtifactBucket", "my-artifacts".into()),
                ("OrganizationId", "o-abcdefghij".into()),
                ("NoticeSender", "keyguard@example.com".into()),
                ("AdminEmails", "secops@example.com".into()),
                ("ReportBucket", "my-audit-evidence".into()),
                ("ReportRecipients", "auditors@example.com".into()),
                ("AlarmEmail", "secops@example.com".into()),
                // The most a parameter takes: the exclusion list is optional and bounded.
                ("ExcludedAccounts", accounts[..300].join(",")),
            ],
        ),
        (
            "deploy/member-role.yaml",
            &[
                ("CentralAccountId", "222222222222".into()),
                ("OrganizationId", "o-abcdefghij".into()),
                ("ArtifactBucket", "my-artifacts".into()),
            ],
        ),
        (
            "deploy/exemption-alarm.yaml",
            &[
                ("OrganizationId", "o-abcdefghij".into()),
                ("AlarmEmail", "secops@example.com".into()),
            ],
        ),
        ("deploy/org-list-role.yaml", &[]),
        (
            "deploy/notifications.yaml",
            &[("EventBusName", "keyguard-events".into())],
        ),
        // Deployed by each account's member stack (PutConformancePack: a template body of at
        // most 51,200 bytes, at most 60 input parameters, ConformancePackInputParameter values
        // of at most 4,096 characters); its parameters are the member stack's, per account.
        (
            "conformance-packs/keyguard-access-keys.yaml",
            &[
                (
                    "RuleFunctionArn",
                    "arn:aws:lambda:us-east-1:100000009999:function:keyguard-rule-lambda".into(),
                ),
                (
                    "RemediationRoleArn",
                    "arn:aws:iam::100000009999:role/keyguard-member-remediation-request".into(),
                ),
            ],
        ),
    ];
    for (file, params) in deployed {
        let body = support::fixture(file);
        assert!(
            body.len() <= TEMPLATE_BODY_BYTES,
            "{file}: {} bytes, over the {TEMPLATE_BODY_BYTES} of an inline template body",
            body.len()
        );
        let t = yaml(file);
        assert!(
            t["Parameters"].as_mapping().unwrap().len() <= PACK_INPUT_PARAMETERS
                || !file.starts_with("conformance-packs/"),
            "{file}: over the {PACK_INPUT_PARAMETERS} input parameters of a conformance pack"
        );
        let resources = expanded_resources(&t);
        assert!(
            resources <= RESOURCES_PER_TEMPLATE,
            "{file}: {resources} resources"
        );
        // No parameter lists accounts, but ExcludedAccounts; every value fits.
        for (name, p) in t["Parameters"].as_mapping().unwrap() {
            let name = name.as_str().unwrap();
            let ty = p["Type"].as_str().unwrap();
            assert!(
                !ty.starts_with("List") && ty != "CommaDelimitedList" || name == "ExcludedAccounts",
                "{file}: parameter {name} is a list ({ty}): does it grow with the organization?"
            );
        }
        for (name, value) in params.iter() {
            assert!(
                !t["Parameters"][*name].is_null(),
                "{file} has no parameter {name}"
            );
            assert!(
                value.len() <= PARAMETER_VALUE_BYTES,
                "{file}: {name} is {} bytes",
                value.len()
            );
        }
        // Each function's resource policy: its permissions, a fixed number whatever the
        // organization's size.
        let mut statements: BTreeMap<String, usize> = BTreeMap::new();
        for (_, r) in t["Resources"].as_mapping().unwrap() {
            if r["Type"] == "AWS::Lambda::Permission" {
                let f = serde_json::to_string(&r["Properties"]["FunctionName"]).unwrap();
                *statements.entry(f).or_default() += 1;
            }
        }
        for (f, n) in statements {
            assert!(
                n * PERMISSION_STATEMENT_BYTES <= FUNCTION_POLICY_BYTES,
                "{file}: {f} has {n} permissions"
            );
        }
    }
    // The design this replaces: one permission per Config source account would have needed a
    // 10,000-account list parameter and 10,000 statements.
    assert!(accounts.join(",").len() > PARAMETER_VALUE_BYTES);
    assert!(accounts.len() * PERMISSION_STATEMENT_BYTES > FUNCTION_POLICY_BYTES);
}
