//! Findings for Amazon Security Lake as a custom source writes them: `keyguard audit
//! --security-lake` to a folder and to S3 in the rig (through the provider role), every object
//! read back by readers of its own (`tests/emulator/lake_check.py`: pyarrow, OCSF 1.3's schema
//! export, jsonschema): partitions, zstd, order by time, page and row-group limits, the Arrow
//! schema against OCSF 1.3's Compliance Finding and every record against its JSON Schema.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::report::{keyguard, ok, tmp};
use crate::support::{self, env_of, repo_root, rig_python, Org};

/// lake_check.py's verdict on a location folder.
pub(crate) fn check(location: &Path) -> Value {
    let out = Command::new(rig_python())
        .arg(repo_root().join("tests/emulator/lake_check.py"))
        .arg(location)
        .output()
        .unwrap();
    ok(&out);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `keyguard audit --format json` of the example, also to the Security Lake `location`.
fn audit_to_lake(location: &str, more: &[&str], env: &[(&str, String)]) -> std::process::Output {
    let mut args = vec![
        "audit",
        "--format",
        "json",
        "--evidence",
        "examples/acme",
        "--security-lake",
        location,
    ];
    args.extend_from_slice(more);
    keyguard(&args, env)
}

fn no_problems(verdict: &Value) {
    assert_eq!(
        verdict["problems"].as_array().unwrap().len(),
        0,
        "{}",
        verdict["problems"]
    );
}

/// The users lake_check.py read, each once.
fn users_in(verdict: &Value) -> BTreeSet<String> {
    verdict["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap().to_string())
        .collect()
}

/// The example's users as `audit --format ocsf` names them (the root user's included).
fn example_users() -> BTreeSet<String> {
    let out = keyguard(
        &["audit", "--format", "ocsf", "--evidence", "examples/acme"],
        &[],
    );
    let findings: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    findings
        .iter()
        .map(|f| f["resources"][0]["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn every_user_of_the_example_lands_in_one_object_per_account_and_day() {
    let lake = tmp("lake-folder");
    let location = lake.join("ext/keyguard");
    let out = audit_to_lake(location.to_str().unwrap(), &[], &[]);
    let stderr = ok(&out);
    assert!(
        stderr.contains("57 findings written to Security Lake in 4 object(s)"),
        "{stderr}"
    );
    // stdout keeps its format: only the JSON rows.
    serde_json::from_slice::<Value>(&out.stdout).expect("only JSON on stdout");
    let verdict = check(&location);
    no_problems(&verdict);
    assert_eq!(verdict["objects"], 4, "one per account (one event day)");
    assert_eq!(verdict["rows"], 57);
    assert_eq!(users_in(&verdict), example_users(), "every user, each once");
    assert!(location
        .join("region=us-east-1/accountId=310987654321/eventDay=20261120/keyguard-20261120.parquet")
        .is_file());
    // A second run on the same day replaces the day's objects: no finding twice.
    ok(&audit_to_lake(location.to_str().unwrap(), &[], &[]));
    assert_eq!(check(&location)["rows"], 57);
    // No key id in full in any record: lake_check.py names one as a problem.
}

/// An account of 20,000 users over two event days: each day's object holds many pages and
/// still keeps every page under 1 MB, in order, every record valid.
#[test]
fn a_large_account_keeps_the_page_and_row_group_limits() {
    let account = keyguard_core::Account {
        id: "123456789012".into(),
        name: "big".into(),
        email: None,
    };
    let settings = keyguard_core::Settings::default();
    let days = [
        "2026-11-19T23:59:59Z"
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap(),
        "2026-11-20T00:00:00Z".parse().unwrap(),
    ];
    let findings: Vec<Value> = (0..20_000)
        .map(|i| {
            let record = keyguard_core::UserRecord {
                user: keyguard_core::User {
                    name: format!("svc+{i:05}=a,b.c@d-e"),
                    user_id: format!("AIDA{i:016}"),
                    path: "/ci/<b>,x/".into(),
                    ..keyguard_core::User::default()
                },
                keys: vec![keyguard_core::AccessKey {
                    id: Some(format!("AKIA{i:016}")),
                    slot: 1,
                    status: keyguard_core::KeyStatus::Active,
                    created: "2026-06-01T00:00:00Z".parse().unwrap(),
                    last_used: None,
                }],
            };
            let now = days[i % 2];
            let f = keyguard_core::evaluate(&record.user, &record.keys, &settings, now);
            keyguard_core::ocsf::compliance_finding(&account, &record, &f, now, "test")
        })
        .collect();
    let (parts, problems) = reporter::security_lake::parts(findings);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(parts.len(), 2, "one per event day");
    let location = tmp("lake-large");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let written = rt
        .block_on(reporter::security_lake::write(
            &reporter::security_lake::Target::Folder(location.clone()),
            parts,
            None,
            None,
        ))
        .unwrap();
    assert!(written.iter().all(|(_, w)| w.is_ok()));
    let verdict = check(&location);
    no_problems(&verdict);
    assert_eq!(verdict["rows"], 20_000);
    assert_eq!(verdict["objects"], 2);
}

/// To S3 through Security Lake's provider role (assumed with its external id): the objects land
/// under the source's prefix only, and read back the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn to_s3_through_the_provider_role_under_the_sources_prefix() {
    let org = Org::new(1).await;
    let lake_account = org.members[0].clone();
    let lake = support::Rig::get().account_config(&lake_account).await;
    let bucket = format!("aws-security-data-lake-us-east-1-{lake_account}");
    let s3 = keyguard_aws::s3::client(&lake);
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let iam = aws_sdk_iam::Client::new(&lake);
    let role = iam
        .create_role()
        .role_name("AmazonSecurityLake-Provider-keyguard-us-east-1")
        .assume_role_policy_document(
            serde_json::json!({
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Principal": {"AWS": format!("arn:aws:iam::{}:root", org.management)},
                    "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"sts:ExternalId": "keyguard-lake"}},
                }],
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let role_arn = role.role().unwrap().arn().to_string();
    let out = audit_to_lake(
        &format!("s3://{bucket}/ext/keyguard/"),
        &[
            "--security-lake-role",
            &role_arn,
            "--security-lake-external-id",
            "keyguard-lake",
        ],
        &env_of(&org.config).await,
    );
    let stderr = ok(&out);
    assert!(stderr.contains("in 4 object(s)"), "{stderr}");
    let keys = keyguard_aws::s3::list_keys(&s3, keyguard_aws::s3::Bucket::new(&bucket, None), "")
        .await
        .unwrap();
    assert_eq!(keys.len(), 4, "{keys:?}");
    assert!(
        keys.iter()
            .all(|k| k.starts_with("ext/keyguard/region=us-east-1/accountId=")),
        "{keys:?}"
    );
    let location = download(&lake, &bucket, "ext/keyguard/").await;
    let verdict = check(&location);
    no_problems(&verdict);
    assert_eq!(verdict["rows"], 57);
}

/// Every object under `prefix` of `bucket`, into a fresh folder standing for the location.
pub(crate) async fn download(
    config: &aws_config::SdkConfig,
    bucket: &str,
    prefix: &str,
) -> std::path::PathBuf {
    let s3 = &keyguard_aws::s3::client(config);
    let b = keyguard_aws::s3::Bucket::new(bucket, None);
    let location = tmp(&format!("lake-{bucket}"));
    for key in keyguard_aws::s3::list_keys(s3, b, prefix).await.unwrap() {
        let bytes = keyguard_aws::s3::get(s3, b, &key).await.unwrap();
        let path = location.join(key.strip_prefix(prefix).unwrap());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    location
}

/// A lake that cannot be written (here: no such bucket) costs only the lake: `audit` prints
/// every finding and says which objects were not written (exit 1), and `report` still delivers
/// the report, its line saying what was left out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lake_that_refuses_costs_the_lake_not_the_run() {
    let org = Org::new(0).await;
    let env = env_of(&org.config).await;
    let location = format!("s3://no-such-lake-{}/ext/keyguard/", org.management);
    let out = audit_to_lake(&location, &[], &env);
    assert_eq!(out.status.code(), Some(1));
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.len(), 57, "every finding printed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("findings not written").count(),
        4,
        "one line per object: {stderr}"
    );
    let dir = tmp("lake-refused-report");
    let out = keyguard(
        &[
            "report",
            "--weekly",
            "--evidence",
            "examples/acme",
            "--out",
            dir.to_str().unwrap(),
            "--security-lake",
            &location,
        ],
        &env,
    );
    ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Security Lake: 0 findings in 0 object(s)")
            && stdout.contains("57 findings left out"),
        "{stdout}"
    );
    assert!(dir.join("weekly-2026-11-20/report.html").is_file());
}

/// `report --security-lake`, built at once and one account at a time: the same objects, every
/// user once (the report lists the root users last; each account's findings still make one
/// object, never one written over another).
#[test]
fn the_report_writes_every_user_once_built_at_once_or_in_shards() {
    for shard in ["1000", "1"] {
        let lake = tmp(&format!("lake-report-{shard}"));
        let out = tmp(&format!("lake-report-out-{shard}"));
        let run = keyguard(
            &[
                "report",
                "--weekly",
                "--evidence",
                "examples/acme",
                "--out",
                out.to_str().unwrap(),
                "--security-lake",
                lake.to_str().unwrap(),
            ],
            &[("REPORT_SHARD_ACCOUNTS", shard.to_string())],
        );
        ok(&run);
        let stdout = String::from_utf8_lossy(&run.stdout);
        assert!(
            stdout.contains("Security Lake: 57 findings in 4 object(s)")
                && !stdout.contains("left out"),
            "{stdout}"
        );
        let verdict = check(&lake);
        no_problems(&verdict);
        assert_eq!(verdict["rows"], 57);
        assert_eq!(users_in(&verdict), example_users());
    }
}
