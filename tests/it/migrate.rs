//! Migrating from the aws-samples solution: its stack's parameters mapped to keyguard's stacks
//! (`keyguard migrate`, checked against the templates' parameters), and its secrets, which carry
//! keyguard's names but not its tags, adopted by the sweep (`ADOPT_AWS_SAMPLES_SECRETS`) so that
//! retention and the report's count and cost include them, against the rig.
//!
//! `tests/fixtures/aws-samples-parameters.json` is `describe-stacks`' Parameters of an aws-samples
//! stack: every parameter of its
//! `CloudFormation/ASA-iam-key-auto-rotation-and-notifier-solution.yaml` (aws-samples/
//! aws-iam-access-key-auto-rotation) with its defaults and an organization's values.

use std::collections::BTreeSet;

use chrono::Utc;

use crate::deploy::yaml;
use crate::remediator::{member_account, remediator, scheduled_run};
use crate::report::keyguard;
use crate::support::{fixture, repo_root, seed, Org, UserSpec};

fn parameters_of(template: &str) -> BTreeSet<String> {
    yaml(template)["Parameters"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_aws_samples_parameters_map_to_keyguards_stacks() {
    let file = repo_root().join("tests/fixtures/aws-samples-parameters.json");
    let out = keyguard(
        &[
            "migrate",
            "--aws-samples-parameters",
            file.to_str().unwrap(),
        ],
        &[],
    );
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    let central: Vec<(&str, &str)> = lines[1]
        .split(' ')
        .map(|kv| kv.split_once('=').unwrap())
        .collect();
    let member: Vec<(&str, &str)> = lines[3]
        .split(' ')
        .map(|kv| {
            let (k, v) = kv.split_once(',').unwrap();
            (
                k.strip_prefix("ParameterKey=").unwrap(),
                v.strip_prefix("ParameterValue=").unwrap(),
            )
        })
        .collect();
    // Every override is a parameter of the stack it is for.
    let (central_params, member_params) = (
        parameters_of("deploy/central.yaml"),
        parameters_of("deploy/member-role.yaml"),
    );
    for (k, _) in &central {
        assert!(central_params.contains(*k), "central.yaml has no {k}");
    }
    for (k, _) in &member {
        assert!(member_params.contains(*k), "member-role.yaml has no {k}");
    }
    let c: std::collections::BTreeMap<&str, &str> = central.into_iter().collect();
    let m: std::collections::BTreeMap<&str, &str> = member.into_iter().collect();
    // InactiveBuffer is the installation grace; ResourceOwnerTag the owner tag.
    assert_eq!(m["InstallationGracePeriod"], "10");
    assert_eq!(m["OwnerEmailTag"], "owner");
    assert_eq!(c["OwnerEmailTag"], "owner");
    assert_eq!(c["DryRun"], "true");
    assert_eq!(c["NoticeSender"], "cloud-admins@example.com");
    assert_eq!(c["AdoptAwsSamplesSecrets"], "true");
    assert_eq!(
        c["OrgListRoleArn"],
        "arn:aws:iam::111111111111:role/asa-iam-key-rotation-list-accounts-role"
    );
    assert!(
        stdout.contains("# not needed: SMTPUserParamName"),
        "{stdout}"
    );
    // docs/migrating.md's table names every aws-samples parameter the file has.
    let doc = fixture("docs/migrating.md");
    let params: Vec<serde_json::Value> =
        serde_json::from_str(&fixture("tests/fixtures/aws-samples-parameters.json")).unwrap();
    for p in params {
        let name = p["ParameterKey"].as_str().unwrap();
        assert!(
            doc.contains(&format!("`{name}`")),
            "docs/migrating.md does not name {name}"
        );
    }
    // What keyguard cannot keep stops the migration, saying why.
    let dir = tempfile::tempdir().unwrap();
    let central_secrets = dir.path().join("p.json");
    std::fs::write(
        &central_secrets,
        r#"{"StoreSecretsInCentralAccount": "True", "RotationPeriod": "90"}"#,
    )
    .unwrap();
    let refused = keyguard(
        &[
            "migrate",
            "--aws-samples-parameters",
            central_secrets.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("StoreSecretsInCentralAccount"));
}

/// An account aws-samples rotated: its users' secrets (`Account_<account>_User_<user>_AccessKey`,
/// untagged). The sweep adopts the secret of an existing user created before it, and leaves a
/// secret of no user and one older than its user alone; the adopted secret is then keyguard's:
/// counted (the report's figure) and subject to retention.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeded_aws_samples_account_is_adopted() {
    let org = Org::new(1).await;
    let member = org.members[0].clone();
    let cfg = org.member(0).await;
    let now = Utc::now();
    let sm = aws_sdk_secretsmanager::Client::new(&cfg);
    let aws_samples_secret = |user: &str| {
        let sm = sm.clone();
        let name = keyguard_aws::secrets::secret_name(&member, user);
        async move {
            sm.create_secret()
                .name(name)
                .secret_string(r#"{"AccessKeyId": "AKIAEXAMPLEEXAMPLE01", "SecretAccessKey": "x"}"#)
                .send()
                .await
                .unwrap();
        }
    };
    // A secret older than its user: an earlier user's of the same name.
    aws_samples_secret("recreated").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let user = |name: &str| UserSpec {
        name: name.into(),
        keys: vec![(30, Some(1), true)],
        ..UserSpec::default()
    };
    seed(&cfg, &member, &[user("legacy-ci"), user("recreated")], now).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    aws_samples_secret("legacy-ci").await;
    aws_samples_secret("gone-user").await;
    assert_eq!(
        keyguard_aws::secrets::kept_in(&cfg)
            .await
            .unwrap()
            .unwrap()
            .len(),
        0,
        "none is keyguard's yet"
    );

    let mut r = remediator(&org, false).await;
    r.adopt_secrets = true;
    let report = scheduled_run(&r, member_account(&org, 0), Utc::now()).await;
    assert!(
        report.notes.iter().any(|n| n
            == "1 secret(s) of the aws-samples solution adopted as keyguard's; 2 left alone (no such user, or older than its user)"),
        "{:?}",
        report.notes
    );
    let kept = keyguard_aws::secrets::kept_in(&cfg).await.unwrap().unwrap();
    assert_eq!(
        kept.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(),
        [keyguard_aws::secrets::secret_name(&member, "legacy-ci")]
    );
    // Adopted once: the next sweep finds nothing to adopt.
    let again = scheduled_run(&r, member_account(&org, 0), Utc::now()).await;
    assert!(
        again.notes.iter().any(|n| n.starts_with("0 secret(s)")),
        "{:?}",
        again.notes
    );
}
