//! Where keys are used, as the report's input (`docs/usage.md`): from the organization trail,
//! every Region's files of an account's days (the IAM events are read from us-east-1's alone),
//! or, without an org trail, from `LookupEvents` for the keys due for a step. An account's
//! worker writes it as `<account>/key-usage.json` into its evidence slice; the build merges.

use chrono::{DateTime, Utc};
use futures::StreamExt;
use keyguard_aws::cloudtrail::IAM_EVENTS_REGION;
use keyguard_aws::s3;
use keyguard_core::usage::Usage;

use crate::cloudtrail;
use crate::period::Period;

/// The evidence file of an account's usage (keyguard's own, not an AWS CLI export).
pub const KEY_USAGE_FILE: &str = "key-usage.json";

/// Trail files fetched at once from S3.
const FETCHES: usize = 8;

/// The usage in `account`'s org-trail files of `period`'s days in every Region but us-east-1
/// (whose files the caller reads for the IAM events, and their usage with them). The usage,
/// the files read and the problems (each costs its file only).
pub async fn other_regions(
    base: &aws_config::SdkConfig,
    uri: &str,
    owner: Option<&str>,
    account: &str,
    period: &Period,
) -> (Usage, usize, Vec<String>) {
    let client = s3::client(base);
    let s3_client = &client;
    let (bucket, prefix) = s3::split_uri(uri);
    let b = s3::Bucket::new(&bucket, owner);
    let root = if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    };
    let mut problems = Vec::new();
    let regions =
        match s3::list_prefixes(s3_client, b, &format!("{root}{account}/CloudTrail/")).await {
            Ok(r) => r,
            Err(e) => {
                problems.push(format!("s3://{bucket}/{root}{account}/CloudTrail/: {e}"));
                return (Usage::default(), 0, problems);
            }
        };
    let mut keys = Vec::new();
    for region in regions
        .iter()
        .filter(|r| !r.ends_with(&format!("/{IAM_EVENTS_REGION}/")))
    {
        for day in period.days() {
            let day_prefix = format!("{region}{}/", day.format("%Y/%m/%d"));
            match s3::list_keys(s3_client, b, &day_prefix).await {
                Ok(found) => keys.extend(found.into_iter().filter(|k| k.ends_with(".json.gz"))),
                Err(e) => problems.push(format!("s3://{bucket}/{day_prefix}: {e}")),
            }
        }
    }
    let files = keys.len();
    let parsed: Vec<(String, std::result::Result<Usage, String>)> = futures::stream::iter(keys)
        .map(|key| async move {
            let result = match s3::get(s3_client, b, &key).await {
                Ok(bytes) => tokio::task::spawn_blocking(move || {
                    cloudtrail::gunzip(&bytes).and_then(|j| cloudtrail::parse_all(&j))
                })
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map(|p| p.usage).map_err(|e| e.to_string())),
                Err(e) => Err(e.to_string()),
            };
            (key, result)
        })
        .buffer_unordered(FETCHES)
        .collect()
        .await;
    let mut usage = Usage::default();
    for (key, r) in parsed {
        match r {
            Ok(u) => usage.merge(&u),
            Err(why) => problems.push(format!("s3://{bucket}/{key}: {why}; the file was skipped")),
        }
    }
    (usage, files, problems)
}

/// Without an org trail: where the keys due for a step of the account of `cfg` are used, from
/// `LookupEvents` (the week before `now`). The usage and the calls made.
pub async fn looked_up(
    cfg: &aws_config::SdkConfig,
    settings: &keyguard_core::Settings,
    now: DateTime<Utc>,
) -> keyguard_aws::Result<(Usage, usize)> {
    let iam = aws_sdk_iam::Client::new(cfg);
    let inv = keyguard_aws::inventory::read_inventory(
        &iam,
        "",
        keyguard_aws::inventory::ReportPolling::default(),
    )
    .await?;
    keyguard_aws::usage::due_key_usage(
        cfg,
        &inv.users,
        settings,
        (now - chrono::Duration::days(7), now),
    )
    .await
}

/// `usage` as the account's evidence file.
pub fn evidence_file(account: &str, usage: &Usage) -> keyguard_aws::collect::EvidenceFile {
    keyguard_aws::collect::EvidenceFile {
        path: format!("{account}/{KEY_USAGE_FILE}"),
        bytes: serde_json::to_vec(usage).expect("plain data serializes"),
    }
}
