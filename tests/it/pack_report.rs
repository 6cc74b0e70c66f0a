//! keyguard's conformance pack in the auditors' report, against the rig: the pack deployed in a
//! member account (PutConformancePack of `conformance-packs/keyguard-access-keys.yaml`, whose
//! rules Config names with a suffix), its rules' verdicts beside keyguard's own evaluation of
//! what IAM returns, and the disagreements, live and from a collected evidence folder.

use aws_sdk_config::types::{ComplianceType, ConformancePackInputParameter, Evaluation};
use chrono::{DateTime, Utc};

use crate::attacks_report::{live_report, member_with};
use crate::report::{csv, keyguard, ok, tmp};
use crate::support::{fixture, Org};

/// Deploys keyguard's pack in the member (as its StackSet would) and returns the deployed names
/// of the template's rules, by template name.
async fn deploy_pack(
    admin: &aws_config::SdkConfig,
    member: &str,
) -> std::collections::HashMap<String, String> {
    let config = aws_sdk_config::Client::new(admin);
    let param = |k: &str, v: String| {
        ConformancePackInputParameter::builder()
            .parameter_name(k)
            .parameter_value(v)
            .build()
            .unwrap()
    };
    config
        .put_conformance_pack()
        .conformance_pack_name("keyguard-access-keys")
        .template_body(fixture("conformance-packs/keyguard-access-keys.yaml"))
        .conformance_pack_input_parameters(param(
            "RuleFunctionArn",
            format!("arn:aws:lambda:us-east-1:{member}:function:keyguard-rule-lambda"),
        ))
        .conformance_pack_input_parameters(param(
            "RemediationRoleArn",
            format!("arn:aws:iam::{member}:role/keyguard-member-remediation-request"),
        ))
        .send()
        .await
        .unwrap();
    let listed = config
        .describe_conformance_pack_compliance()
        .conformance_pack_name("keyguard-access-keys")
        .send()
        .await
        .unwrap();
    listed
        .conformance_pack_rule_compliance_list()
        .iter()
        .map(|r| {
            let deployed = r.config_rule_name().unwrap().to_string();
            let template = deployed
                .split("-conformance-pack-")
                .next()
                .unwrap()
                .to_string();
            (template, deployed)
        })
        .collect()
}

/// Config's verdicts on `users` under the deployed rule `rule`.
async fn verdicts(
    admin: &aws_config::SdkConfig,
    rule: &str,
    users: &[&str],
    ids: &std::collections::HashMap<String, crate::support::Seeded>,
    now: DateTime<Utc>,
) {
    let evaluations: Vec<Evaluation> = users
        .iter()
        .map(|u| {
            Evaluation::builder()
                .compliance_resource_type("AWS::IAM::User")
                .compliance_resource_id(&ids[*u].user_id)
                .compliance_type(ComplianceType::Compliant)
                .ordering_timestamp(aws_sdk_config::primitives::DateTime::from_secs(
                    now.timestamp(),
                ))
                .build()
                .unwrap()
        })
        .collect();
    aws_sdk_config::Client::new(admin)
        .put_evaluations()
        .result_token(format!("{rule}/t"))
        .set_evaluations(Some(evaluations))
        .send()
        .await
        .unwrap();
}

/// The member's pack says COMPLIANT everywhere (its function answers so, and the managed rule
/// too in this test): the report shows the pack beside keyguard's own figures and names both
/// disagreements; keyguard's verdicts are read by the pack's own name of the rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_shows_the_pack_beside_keyguards_figures_and_where_they_disagree() {
    let (org, member, now, admin, users) = member_with(&[("hidden", 140), ("fine", 10)]).await;
    let rules = deploy_pack(&admin, &member).await;
    assert!(
        rules["keyguard-access-keys"].contains("-conformance-pack-"),
        "{rules:?}"
    );
    verdicts(
        &admin,
        &rules["keyguard-access-keys"],
        &["hidden", "fine"],
        &users,
        now,
    )
    .await;
    verdicts(
        &admin,
        &rules["access-keys-rotated"],
        &["hidden", "fine"],
        &users,
        now,
    )
    .await;

    let (dir, stderr) = live_report(&org, "pack-live", now).await;
    let rows = csv(&dir.join("conformance-pack.csv"));
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(row["account"], member);
    assert_eq!(
        (
            row["pack"].as_str(),
            row["keyguard_rule"].as_str(),
            row["access_keys_rotated"].as_str()
        ),
        ("INSUFFICIENT_DATA", "COMPLIANT", "COMPLIANT"),
        "{row:?}"
    );
    assert_eq!(row["iam_root_access_key"], "INSUFFICIENT_DATA");
    assert_eq!(row["keyguard_own"], "1 NON_COMPLIANT");
    assert!(
        row["finding"].contains("keyguard's rule says COMPLIANT; keyguard's evaluation of IAM finds 1 user(s) NON_COMPLIANT")
            && row["finding"].contains("access-keys-rotated says COMPLIANT; IAM shows 1 user(s) with an active key over 90 days old"),
        "{row:?}"
    );
    assert!(
        stderr.contains(&format!(
            "account {member}: its conformance pack and IAM disagree"
        )),
        "{stderr}"
    );
    // Config's verdicts came from the pack's copy of the rule (its suffixed name).
    assert_eq!(csv(&dir.join("disagreements.csv")).len(), 1);
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(
        html.contains("Conformance pack (1 disagree)"),
        "the section"
    );

    // The same from a collected evidence folder.
    let env = org.env().await;
    let evidence = tmp("pack-evidence");
    ok(&keyguard(
        &["collect", "--out", evidence.to_str().unwrap()],
        &env,
    ));
    assert!(evidence
        .join(&member)
        .join("conformance-pack-compliance.json")
        .exists());
    let out = tmp("pack-evidence-report");
    ok(&keyguard(
        &[
            "report",
            "--weekly",
            "--evidence",
            evidence.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    ));
    let from_evidence = csv(&out
        .join(reporter::Period::weekly(now.date_naive()).id())
        .join("conformance-pack.csv"));
    assert_eq!(
        from_evidence, rows,
        "the evidence folder's pack is the live one"
    );
}

/// An organization that deploys keyguard as a loose rule (no pack anywhere) gets no pack rows
/// and no problem about it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_pack_the_report_says_nothing_of_it() {
    let org = Org::new(1).await;
    let now = Utc::now();
    let (dir, stderr) = live_report(&org, "pack-none", now).await;
    assert!(csv(&dir.join("conformance-pack.csv")).is_empty());
    assert!(!stderr.contains("conformance pack"), "{stderr}");
}

/// The member's administrator makes a loose rule named like keyguard's beside the pack's copy and
/// answers COMPLIANT through it. Through an aggregator (which lists every rule of the account)
/// the report cannot tell which is keyguard's: it reads the verdicts of neither and says so,
/// rather than taking the decoy's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decoy_rule_named_like_keyguards_is_not_read_through_the_aggregator() {
    let (org, member, now, admin, users) = member_with(&[("hidden", 140)]).await;
    let rules = deploy_pack(&admin, &member).await;
    verdicts(
        &admin,
        &rules["keyguard-access-keys"],
        &["hidden"],
        &users,
        now,
    )
    .await;
    verdicts(&admin, "keyguard-access-keys", &["hidden"], &users, now).await;
    let (_, stderr) = crate::attacks_report::live_report_with(
        &org,
        "pack-decoy",
        now,
        &[("CONFIG_AGGREGATOR", "org")],
    )
    .await;
    assert!(
        stderr.contains("2 rules are named like keyguard's"),
        "{stderr}"
    );
}
