//! An evidence folder written from a live organization, one account at a time: what `keyguard
//! collect` writes to a folder and the reporter's workers write to S3 (the folder layout of
//! [`crate::evidence`]). The reads go through [`crate::inventory`] and [`crate::config`]; the
//! writes through [`crate::s3`] or the file system.

use std::io::Write;
use std::path::{Path, PathBuf};

use aws_config::SdkConfig;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use keyguard_core::{Account, Compliance, ComplianceResult, KeyStatus};
use serde::Serialize;

use crate::config::compliance_results;
use crate::conformance_pack::{pack_compliance, PACK_NAME};
use crate::error::{Error, Result};
use crate::evidence::{
    cli_time, user_detail, AccessKeyMetadata, AccessKeysFile, AccountsFile,
    AuthorizationDetailsFile, Collected, ComplianceFile, EvaluationResult, OrgAccount, PackFile,
    Qualifier, ResultIdentifier, SecretsFile, PACK_FILE,
};
use crate::inventory::{
    credential_report, list_keys, parse_credential_report, users, ReportPolling,
};
use crate::s3;

/// One file of an evidence folder: its path inside the folder and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceFile {
    /// The path relative to the folder (`123456789012/credential-report.csv`).
    pub path: String,
    /// The content.
    pub bytes: Vec<u8>,
}

fn json_file<T: Serialize>(path: String, value: &T) -> EvidenceFile {
    let mut bytes = serde_json::to_vec_pretty(value).expect("plain data serializes");
    bytes.push(b'\n');
    EvidenceFile { path, bytes }
}

/// `accounts.json`: the accounts of the folder, as `aws organizations list-accounts` lists them.
pub fn accounts_file(accounts: &[Account]) -> EvidenceFile {
    json_file(
        "accounts.json".into(),
        &AccountsFile {
            accounts: accounts
                .iter()
                .map(|a| OrgAccount {
                    id: a.id.clone(),
                    arn: None,
                    email: a.email.clone(),
                    name: a.name.clone(),
                    status: Some("ACTIVE".into()),
                    state: Some("ACTIVE".into()),
                })
                .collect(),
        },
    )
}

/// `manifest.json`: the digests of every slice's files.
pub fn manifest_file(manifest: &crate::manifest::Manifest) -> EvidenceFile {
    EvidenceFile {
        path: crate::manifest::MANIFEST.into(),
        bytes: manifest.to_json(),
    }
}

/// `collected.json`: when the folder was written, and by what.
pub fn collected_file(at: DateTime<Utc>, tool: &str, collector: &str) -> EvidenceFile {
    json_file(
        "collected.json".into(),
        &Collected {
            collected_at: at,
            tool: tool.into(),
            collector_account: Some(collector.into()),
        },
    )
}

/// One account's files, read with `cfg` (credentials in that account): the credential report,
/// the users, the key ids of users that have keys (one ListAccessKeys each), and the results of
/// the Config rule `rule` (no file when the rule does not exist there). Returns the files and the
/// number of users.
pub async fn account_files(
    cfg: &SdkConfig,
    account: &str,
    rule: &str,
    polling: ReportPolling,
) -> Result<(Vec<EvidenceFile>, usize)> {
    let iam = aws_sdk_iam::Client::new(cfg);
    let (report, _) = credential_report(&iam, polling).await?;
    let rows = parse_credential_report(&report)?;
    let mut files = vec![EvidenceFile {
        path: format!("{account}/credential-report.csv"),
        bytes: report,
    }];
    let users = users(&iam).await?;
    files.push(json_file(
        format!("{account}/account-authorization-details.json"),
        &AuthorizationDetailsFile {
            user_detail_list: users.iter().map(user_detail).collect(),
        },
    ));
    let with_keys: Vec<String> = rows
        .iter()
        .filter(|r| !r.keys.is_empty() && r.user != keyguard_core::ROOT_USER)
        .map(|r| r.user.clone())
        .collect();
    let listed: Vec<Vec<AccessKeyMetadata>> = futures::stream::iter(with_keys)
        .map(|user| {
            let iam = &iam;
            async move {
                Ok::<_, Error>(
                    list_keys(iam, &user)
                        .await?
                        .unwrap_or_default()
                        .into_iter()
                        .map(|k| AccessKeyMetadata {
                            user_name: user.clone(),
                            access_key_id: k.id,
                            status: if k.status == KeyStatus::Active {
                                "Active"
                            } else {
                                "Inactive"
                            }
                            .into(),
                            create_date: cli_time(k.created),
                        })
                        .collect(),
                )
            }
        })
        .buffered(crate::limits::CONCURRENCY)
        .try_collect()
        .await?;
    files.push(json_file(
        format!("{account}/access-keys.json"),
        &AccessKeysFile {
            access_key_metadata: listed.into_iter().flatten().collect(),
        },
    ));
    // The secrets keyguard keeps (`aws secretsmanager list-secrets --filters …`), for the
    // report's count and cost; not written when the role may not list them.
    let sm = aws_sdk_secretsmanager::Client::new(cfg);
    match crate::secrets::kept(&sm).await? {
        Some(kept) => files.push(json_file(
            format!("{account}/secrets.json"),
            &SecretsFile { secret_list: kept },
        )),
        None => tracing::warn!(
            account,
            "secrets not listed (no secretsmanager:ListSecrets)"
        ),
    }
    let config = aws_sdk_config::Client::new(cfg);
    let all = [
        Compliance::Compliant,
        Compliance::NonCompliant,
        Compliance::NotApplicable,
    ];
    // keyguard's conformance pack (`aws configservice describe-conformance-pack-compliance`):
    // each rule's verdict, and keyguard's rule by the name Config gave the pack's copy. An
    // account without the pack (a loose rule) or a role without the permission costs nothing.
    let mut rule = rule.to_string();
    match pack_compliance(&config, PACK_NAME).await {
        Ok(Some(rules)) => {
            if let Some(name) = keyguard_core::pack::deployed_name(&rules, &rule) {
                rule = name.to_string();
            }
            files.push(pack_file(account, rules));
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(account, "conformance pack not read: {e}"),
    }
    let rule = rule.as_str();
    match compliance_results(&config, rule, &all).await? {
        Some(results) => files.push(compliance_file(account, rule, results)),
        None => tracing::warn!(
            account,
            rule,
            "no such Config rule in this account; config-compliance.json not written"
        ),
    }
    Ok((files, users.len()))
}

/// `<account>/conformance-pack-compliance.json`: keyguard's pack's rules and their verdicts as
/// `aws configservice describe-conformance-pack-compliance` prints them.
pub fn pack_file(account: &str, rules: Vec<keyguard_core::pack::PackRule>) -> EvidenceFile {
    json_file(
        format!("{account}/{PACK_FILE}"),
        &PackFile {
            conformance_pack_name: PACK_NAME.into(),
            conformance_pack_rule_compliance_list: rules,
        },
    )
}

/// `<account>/config-compliance.json`: the rule's results as
/// `aws configservice get-compliance-details-by-config-rule` prints them.
pub fn compliance_file(account: &str, rule: &str, results: Vec<ComplianceResult>) -> EvidenceFile {
    json_file(
        format!("{account}/config-compliance.json"),
        &ComplianceFile {
            evaluation_results: results
                .into_iter()
                .map(|r| EvaluationResult {
                    evaluation_result_identifier: ResultIdentifier {
                        evaluation_result_qualifier: Qualifier {
                            config_rule_name: rule.into(),
                            resource_type: r.resource_type,
                            resource_id: r.resource_id,
                        },
                        ordering_timestamp: r.ordering.map(cli_time),
                    },
                    compliance_type: r
                        .compliance
                        .map_or("INSUFFICIENT_DATA", |c| c.as_str())
                        .into(),
                    result_recorded_time: r.recorded.map(cli_time),
                    config_rule_invoked_time: r.recorded.map(cli_time),
                    annotation: r.annotation,
                })
                .collect(),
        },
    )
}

/// A CloudTrail log file (`{"Records": [...]}`, gzipped as CloudTrail delivers) of `records`
/// (raw CloudTrail records, JSON text), at `cloudtrail/AWSLogs/<account>/<name>.json.gz`.
pub fn trail_file(account: &str, name: &str, records: &[String]) -> EvidenceFile {
    let mut json = String::from("{\"Records\":[");
    json.push_str(&records.join(","));
    json.push_str("]}");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(json.as_bytes()).expect("in memory");
    EvidenceFile {
        path: format!("cloudtrail/AWSLogs/{account}/{name}.json.gz"),
        bytes: gz.finish().expect("in memory"),
    }
}

/// Where an evidence folder is written: a local folder, or an S3 prefix (`s3://bucket/prefix`).
#[derive(Debug, Clone)]
pub enum Sink {
    /// A folder.
    Folder(PathBuf),
    /// A bucket and a prefix.
    S3 {
        /// The client.
        client: aws_sdk_s3::Client,
        /// The bucket.
        bucket: String,
        /// The prefix (no slash at its ends).
        prefix: String,
        /// The account that must own the bucket.
        owner: Option<String>,
    },
}

impl Sink {
    /// `s3://bucket/prefix` (with `cfg`'s credentials; the bucket owned by `owner`) or a folder.
    pub fn new(to: &str, cfg: Option<&SdkConfig>, owner: Option<&str>) -> Result<Sink> {
        if to.starts_with("s3://") {
            let cfg = cfg.ok_or_else(|| {
                Error::Invalid(format!("{to}: writing to S3 needs AWS credentials"))
            })?;
            let (bucket, prefix) = s3::split_uri(to);
            Ok(Sink::S3 {
                client: s3::client(cfg),
                bucket,
                prefix,
                owner: owner.map(str::to_string),
            })
        } else {
            Ok(Sink::Folder(PathBuf::from(to)))
        }
    }

    /// Writes `file` (creating folders).
    pub async fn put(&self, file: &EvidenceFile) -> Result<()> {
        match self {
            Sink::Folder(dir) => {
                let path = dir.join(&file.path);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| Error::Evidence {
                        path: parent.into(),
                        message: e.to_string(),
                        source: Some(Box::new(e)),
                    })?;
                }
                std::fs::write(&path, &file.bytes).map_err(|e| Error::Evidence {
                    path,
                    message: e.to_string(),
                    source: Some(Box::new(e)),
                })
            }
            Sink::S3 {
                client,
                bucket,
                prefix,
                owner,
            } => {
                let key = if prefix.is_empty() {
                    file.path.clone()
                } else {
                    format!("{prefix}/{}", file.path)
                };
                let kind = if file.path.ends_with(".json") {
                    "application/json"
                } else if file.path.ends_with(".gz") {
                    "application/gzip"
                } else {
                    "text/csv"
                };
                let bucket = s3::Bucket::new(bucket, owner.as_deref());
                s3::put(client, bucket, &key, kind, file.bytes.clone()).await
            }
        }
    }
}

/// Copies the evidence folder at `s3://bucket/prefix` into `into` (every object under the
/// prefix, eight at a time; the bucket owned by `owner`). Returns the files copied.
pub async fn download(
    cfg: &SdkConfig,
    uri: &str,
    into: &Path,
    owner: Option<&str>,
) -> Result<usize> {
    let client = s3::client(cfg);
    let (name, prefix) = s3::split_uri(uri);
    let bucket = s3::Bucket::new(&name, owner);
    let list_prefix = if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    };
    let keys = s3::list_keys(&client, bucket, &list_prefix).await?;
    let n = keys.len();
    futures::stream::iter(keys)
        .map(|key| {
            let (client, list_prefix) = (&client, &list_prefix);
            async move {
                let rel = key.strip_prefix(list_prefix.as_str()).unwrap_or(&key);
                if rel.split('/').any(|part| part == ".." || part.is_empty()) {
                    return Err(Error::Invalid(format!(
                        "s3://{name}/{key}: not a path inside the evidence folder",
                        name = bucket.name
                    )));
                }
                let bytes = s3::get(client, bucket, &key).await?;
                Sink::Folder(into.to_path_buf())
                    .put(&EvidenceFile {
                        path: rel.to_string(),
                        bytes,
                    })
                    .await
            }
        })
        .buffer_unordered(crate::limits::CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(n)
}
