//! `keyguard usage` against the rig: where a key is used, from LookupEvents (paced, by
//! AccessKeyId) and from the organization trail's files in S3 (a 1,000-call window aggregated
//! exactly), masked key ids, and a hostile user agent neutralized in the CSV.

use chrono::{Duration, Utc};
use serde_json::Value;

use crate::report::keyguard;
use crate::support::{seed, KeyCalls, Org, Rig, UserSpec};

/// A member account with one user, `ci`, and its key: (account, key id).
async fn ci_key(org: &Org) -> (String, String) {
    let member = org.members[0].clone();
    let ci = UserSpec {
        name: "ci".into(),
        keys: vec![(30, Some(0), true)],
        ..UserSpec::default()
    };
    let seeded = seed(&org.member(0).await, &member, &[ci], Utc::now()).await;
    let key = seeded["ci"].keys[0].clone();
    (member, key)
}

/// `keyguard usage --account <member> --user ci <more>`.
async fn usage_of_ci(org: &Org, member: &str, more: &[&str]) -> std::process::Output {
    let env = org.env().await;
    let mut args = vec!["usage", "--account", member, "--user", "ci"];
    args.extend_from_slice(more);
    keyguard(&args, &env)
}

fn calls<'a>(count: u32, ip: &'a str, agent: &'a str, hours_ago: i64) -> KeyCalls<'a> {
    KeyCalls {
        count,
        start: Utc::now() - Duration::hours(hours_ago),
        step_s: 10,
        source_ip: ip,
        user_agent: agent,
        service: "ec2",
        region: "us-east-1",
    }
}

fn json_of(out: &std::process::Output) -> Vec<Value> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_from_lookup_events_names_sources_and_masks_the_key() {
    let org = Org::new(1).await;
    let (member, key) = ci_key(&org).await;
    let key = &key;
    let rig = Rig::get();
    rig.key_calls(
        &member,
        key,
        calls(90, "203.0.113.7", "aws-cli/2.15.0 Python/3.11", 3),
    );
    rig.key_calls(
        &member,
        key,
        calls(30, "198.51.100.2", "terraform/1.9.0", 2),
    );
    let out = usage_of_ci(&org, &member, &["--format", "json"]).await;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let rows = json_of(&out);
    assert_eq!(rows.len(), 1);
    let u = &rows[0]["usage"];
    assert_eq!(u["calls"], 120);
    assert_eq!(u["sources"]["values"]["203.0.113.7"]["calls"], 90);
    assert_eq!(u["sources"]["values"]["198.51.100.2"]["calls"], 30);
    assert_eq!(u["user_agents"]["values"]["terraform/1.9.0"]["calls"], 30);
    assert!(
        rows[0]["summary"]
            .as_str()
            .unwrap()
            .contains("from 203.0.113.7"),
        "{}",
        rows[0]
    );
    assert!(!text.contains(key.as_str()), "the key id is masked: {text}");
    // The table says the same for people.
    let table = keyguard(
        &["usage", "--account", &member, "--key", key],
        &org.env().await,
    );
    let table = String::from_utf8_lossy(&table.stdout).to_string();
    assert!(
        table.contains("203.0.113.7 (90)") && !table.contains(key.as_str()),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_call_window_in_the_org_trail_aggregates_exactly() {
    let org = Org::new(1).await;
    let (member, key) = ci_key(&org).await;
    let key = &key;
    let rig = Rig::get();
    for (i, ip) in ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"]
        .iter()
        .enumerate()
    {
        rig.key_calls(&member, key, calls(250, ip, "Boto3/1.34.0", 5 - i as i64));
    }
    let s3 = keyguard_aws::s3::client(&org.config);
    let bucket = format!("org-trail-{}", org.management);
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let delivered = rig.deliver_trail(&member, &bucket, &org.management, "o-usage");
    assert!(!delivered.is_empty());
    let trail = format!("s3://{bucket}/AWSLogs/o-usage");
    let out = usage_of_ci(&org, &member, &["--trail", &trail, "--format", "json"]).await;
    let rows = json_of(&out);
    let u = &rows[0]["usage"];
    assert_eq!(u["calls"], 1000, "{u}");
    for ip in ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"] {
        assert_eq!(u["sources"]["values"][ip]["calls"], 250, "{ip}");
    }
    assert_eq!(u["user_agents"]["values"]["Boto3/1.34.0"]["calls"], 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_formula_in_a_user_agent_does_not_open_as_one() {
    let org = Org::new(1).await;
    let (member, key) = ci_key(&org).await;
    let key = &key;
    Rig::get().key_calls(
        &member,
        key,
        calls(2, "203.0.113.9", "=HYPERLINK(\"http://x\")", 1),
    );
    let out = usage_of_ci(&org, &member, &["--format", "csv"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = String::from_utf8_lossy(&out.stdout).to_string();
    let mut rows = csv::Reader::from_reader(csv.as_bytes());
    let agents: Vec<String> = rows
        .records()
        .map(|r| r.unwrap())
        .filter(|r| &r[3] == "user_agent")
        .map(|r| r[4].to_string())
        .collect();
    assert_eq!(
        agents,
        vec!["'=HYPERLINK(\"http://x\")".to_string()],
        "{csv}"
    );
}
