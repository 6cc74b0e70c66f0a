//! The evidence folder: what the AWS CLI exports, read offline or written by `keyguard collect`.
//!
//! ```text
//! accounts.json                                     aws organizations list-accounts
//! collected.json                                    when keyguard collect wrote the folder (optional)
//! <account-id>/credential-report.csv                aws iam get-credential-report (Content, decoded)
//! <account-id>/account-authorization-details.json   aws iam get-account-authorization-details --filter User
//! <account-id>/access-keys.json                     aws iam list-access-keys per user, merged (optional)
//! <account-id>/config-compliance.json               aws configservice get-compliance-details-by-config-rule
//! <account-id>/conformance-pack-compliance.json     aws configservice describe-conformance-pack-compliance (optional)
//! cloudtrail/AWSLogs/…/*.json.gz                    the trail's own log files
//! ```
//!
//! Only the fields keyguard needs are read; unknown fields are ignored, so real CLI output works
//! as is. Without `access-keys.json`, keys are named by slot (`key1`, `key2`).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use keyguard_core::{Account, Compliance, KeyStatus, User};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::inventory::{join, parse_credential_report, Inventory};
use keyguard_core::{ComplianceResult, UserRecord};

/// `aws organizations list-accounts` output.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct AccountsFile {
    /// The accounts.
    pub accounts: Vec<OrgAccount>,
}

/// One account of `list-accounts`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct OrgAccount {
    /// Account id.
    pub id: String,
    /// Account ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// Root email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Deprecated status (`ACTIVE`, `SUSPENDED`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// State (`ACTIVE`, `SUSPENDED`, `CLOSED`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// `aws iam get-account-authorization-details` output (users only are read).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct AuthorizationDetailsFile {
    /// The users.
    #[serde(default)]
    pub user_detail_list: Vec<UserDetail>,
}

/// One user of `get-account-authorization-details`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct UserDetail {
    /// IAM path.
    #[serde(default = "slash")]
    pub path: String,
    /// User name.
    pub user_name: String,
    /// UserId.
    pub user_id: String,
    /// ARN.
    pub arn: String,
    /// Creation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_date: Option<String>,
    /// Group names.
    #[serde(default)]
    pub group_list: Vec<String>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<Tag>,
}

fn slash() -> String {
    "/".into()
}

/// An IAM tag.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    /// Key.
    pub key: String,
    /// Value.
    pub value: String,
}

/// `aws iam list-access-keys` output (merged over users).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct AccessKeysFile {
    /// The keys.
    pub access_key_metadata: Vec<AccessKeyMetadata>,
}

/// One key of `list-access-keys`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct AccessKeyMetadata {
    /// Owner.
    pub user_name: String,
    /// Key id.
    pub access_key_id: String,
    /// `Active` or `Inactive`.
    pub status: String,
    /// Creation time.
    pub create_date: String,
}

/// An account's `conformance-pack-compliance.json`.
pub const PACK_FILE: &str = "conformance-pack-compliance.json";

/// `aws configservice describe-conformance-pack-compliance` output.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct PackFile {
    /// The pack's name.
    pub conformance_pack_name: String,
    /// Each rule's verdict.
    #[serde(default)]
    pub conformance_pack_rule_compliance_list: Vec<keyguard_core::pack::PackRule>,
}

/// `aws configservice get-compliance-details-by-config-rule` output.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ComplianceFile {
    /// The results.
    pub evaluation_results: Vec<EvaluationResult>,
}

/// One Config result, as the CLI prints it.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct EvaluationResult {
    /// Which rule and resource.
    pub evaluation_result_identifier: ResultIdentifier,
    /// `COMPLIANT`, `NON_COMPLIANT`, `NOT_APPLICABLE`, `INSUFFICIENT_DATA`.
    pub compliance_type: String,
    /// When Config recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_recorded_time: Option<String>,
    /// When the rule ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_rule_invoked_time: Option<String>,
    /// The annotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotation: Option<String>,
}

/// The identifier part of a result.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ResultIdentifier {
    /// Rule, type and id.
    pub evaluation_result_qualifier: Qualifier,
    /// Ordering timestamp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordering_timestamp: Option<String>,
}

/// Rule, resource type and resource id.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Qualifier {
    /// The rule.
    pub config_rule_name: String,
    /// The resource type.
    pub resource_type: String,
    /// The resource id.
    pub resource_id: String,
}

/// `collected.json`: when the folder was collected, so that an offline evaluation defaults to
/// that moment rather than to today.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Collected {
    /// When `keyguard collect` read the organization.
    pub collected_at: DateTime<Utc>,
    /// Which tool and version wrote the folder.
    pub tool: String,
    /// The account that collected it (the central account: keyguard's central roles count as
    /// keyguard there only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collector_account: Option<String>,
}

/// An opened evidence folder.
#[derive(Debug, Clone)]
pub struct Evidence {
    root: PathBuf,
    /// The ACTIVE accounts listed in `accounts.json` (or, without it, the account folders).
    pub accounts: Vec<Account>,
    /// `collected.json`, when present.
    pub collected: Option<Collected>,
    /// How the slices were checked against a manifest.
    pub verification: Verification,
    /// The accounts whose slice does not match the manifest, with why: not to be used.
    pub failed_slices: std::collections::BTreeMap<String, String>,
}

/// How an evidence folder's slices were checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// Against the folder's `manifest.json`.
    FolderManifest,
    /// Against a manifest kept elsewhere (a queued report's, in the state table).
    KeptManifest,
    /// Not at all: the folder has no manifest (collected by an earlier keyguard, or by hand).
    Unverified,
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = fs::read(path).map_err(|e| Error::Evidence {
        path: path.into(),
        message: e.to_string(),
        source: Some(Box::new(e)),
    })?;
    serde_json::from_slice(&text).map_err(|e| Error::Evidence {
        path: path.into(),
        message: format!("not the expected AWS CLI JSON: {e}"),
        source: Some(Box::new(e)),
    })
}

/// Parses the CLI's timestamps: ISO 8601 (CLI v2) or epoch seconds.
pub fn parse_cli_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s.trim()) {
        return Some(t.with_timezone(&Utc));
    }
    s.trim()
        .parse::<f64>()
        .ok()
        .and_then(|secs| DateTime::from_timestamp(secs as i64, 0))
}

impl Evidence {
    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Opens `dir` without checking its slices. Fails with a message naming the file when
    /// `accounts.json` is malformed or the folder holds no account at all.
    fn open_unchecked(dir: &Path) -> Result<Evidence> {
        if !dir.is_dir() {
            return Err(Error::Evidence {
                path: dir.into(),
                message: "not a folder".into(),
                source: None,
            });
        }
        let accounts_path = dir.join("accounts.json");
        let mut accounts: Vec<Account> = if accounts_path.exists() {
            let file: AccountsFile = read_json(&accounts_path)?;
            file.accounts
                .into_iter()
                .filter(|a| {
                    a.state
                        .as_deref()
                        .or(a.status.as_deref())
                        .is_none_or(|s| s == "ACTIVE")
                })
                .map(|a| Account {
                    id: a.id,
                    name: a.name,
                    email: a.email,
                })
                .collect()
        } else {
            let mut found = Vec::new();
            for entry in fs::read_dir(dir).map_err(|e| Error::Evidence {
                path: dir.into(),
                message: e.to_string(),
                source: Some(Box::new(e)),
            })? {
                let name = entry
                    .map_err(|e| Error::Evidence {
                        path: dir.into(),
                        message: e.to_string(),
                        source: Some(Box::new(e)),
                    })?
                    .file_name();
                let name = name.to_string_lossy();
                if Account::is_id(&name) {
                    found.push(Account {
                        id: name.to_string(),
                        name: String::new(),
                        email: None,
                    });
                }
            }
            found
        };
        accounts.sort_by(|a, b| a.id.cmp(&b.id));
        accounts.dedup_by(|a, b| a.id == b.id);
        if accounts.is_empty() {
            return Err(Error::Evidence {
                path: dir.into(),
                message: "no accounts.json and no account folders".into(),
                source: None,
            });
        }
        let collected_path = dir.join("collected.json");
        let collected = if collected_path.exists() {
            Some(read_json(&collected_path)?)
        } else {
            None
        };
        Ok(Evidence {
            root: dir.into(),
            accounts,
            collected,
            verification: Verification::Unverified,
            failed_slices: Default::default(),
        })
    }

    /// Opens `dir` and checks its slices against its `manifest.json` (when it has one; an
    /// unreadable manifest fails every slice).
    pub fn open(dir: &Path) -> Result<Evidence> {
        let mut e = Self::open_unchecked(dir)?;
        let manifest_path = dir.join(crate::manifest::MANIFEST);
        if manifest_path.exists() {
            e.verification = Verification::FolderManifest;
            e.failed_slices = match read_json::<crate::manifest::Manifest>(&manifest_path) {
                Ok(m) => m.check(dir),
                Err(err) => e
                    .accounts
                    .iter()
                    .map(|a| (a.id.clone(), format!("the manifest is unreadable: {err}")))
                    .collect(),
            };
        }
        Ok(e)
    }

    /// Opens `dir` and checks its slices against digests kept where the folder's writers cannot
    /// reach (a queued report's state table; account → [`crate::manifest::Manifest::slice_digest`]),
    /// whatever `manifest.json` the folder holds.
    pub fn open_with(
        dir: &Path,
        kept: &std::collections::BTreeMap<String, String>,
    ) -> Result<Evidence> {
        let mut e = Self::open_unchecked(dir)?;
        e.verification = Verification::KeptManifest;
        e.failed_slices = crate::manifest::Manifest::check_digests(dir, kept);
        Ok(e)
    }

    /// The folder of one account.
    pub fn account_dir(&self, account: &str) -> PathBuf {
        self.root.join(account)
    }

    /// The inventory of one account: credential report joined with authorization details, with
    /// key ids from `access-keys.json` when present.
    pub fn inventory(&self, account: &str) -> Result<Inventory> {
        let dir = self.account_dir(account);
        let report_path = dir.join("credential-report.csv");
        let csv = fs::read(&report_path).map_err(|e| match e.kind() {
            // Named inside the folder: the same message wherever the folder was copied to.
            std::io::ErrorKind::NotFound => Error::Evidence {
                path: Path::new(account).join("credential-report.csv"),
                message: "missing (the account's inventory was not collected)".into(),
                source: None,
            },
            _ => Error::Evidence {
                path: report_path.clone(),
                message: e.to_string(),
                source: Some(Box::new(e)),
            },
        })?;
        let rows = parse_credential_report(&csv).map_err(|e| Error::Evidence {
            path: report_path,
            message: e.to_string(),
            source: Some(Box::new(e)),
        })?;
        let root_keys = crate::inventory::root_keys(&rows);
        let details: AuthorizationDetailsFile =
            read_json(&dir.join("account-authorization-details.json"))?;
        let users = details.user_detail_list.into_iter().map(user_of).collect();
        let (mut records, missing) = join(users, rows);
        for user in missing {
            tracing::warn!(account, user = %user.name, "user missing from the credential report; its keys are unknown");
        }
        let keys_path = dir.join("access-keys.json");
        if keys_path.exists() {
            let file: AccessKeysFile = read_json(&keys_path)?;
            name_keys(&mut records, &file);
        }
        records.sort_by(|a, b| a.user.name.cmp(&b.user.name));
        Ok(Inventory {
            account: account.into(),
            users: records,
            report_generated: self.collected.as_ref().map(|c| c.collected_at),
            root_keys,
        })
    }

    /// How many secrets keyguard keeps in one account (`secrets.json`); `None` when the file is
    /// absent (not collected).
    pub fn secrets_kept(&self, account: &str) -> Result<Option<usize>> {
        let path = self.account_dir(account).join("secrets.json");
        if !path.exists() {
            return Ok(None);
        }
        let file: SecretsFile = read_json(&path)?;
        Ok(Some(file.secret_list.len()))
    }

    /// keyguard's conformance pack in one account (`conformance-pack-compliance.json`: each
    /// rule's verdict); `None` when the file is absent (not collected, or no pack).
    pub fn pack(&self, account: &str) -> Result<Option<Vec<keyguard_core::pack::PackRule>>> {
        let path = self.account_dir(account).join(PACK_FILE);
        if !path.exists() {
            return Ok(None);
        }
        let file: PackFile = read_json(&path)?;
        Ok(Some(file.conformance_pack_rule_compliance_list))
    }

    /// The Config results of one account; `None` when the file is absent.
    pub fn compliance(&self, account: &str) -> Result<Option<Vec<ComplianceResult>>> {
        let path = self.account_dir(account).join("config-compliance.json");
        if !path.exists() {
            return Ok(None);
        }
        let file: ComplianceFile = read_json(&path)?;
        Ok(Some(
            file.evaluation_results
                .into_iter()
                .map(|r| ComplianceResult {
                    resource_type: r
                        .evaluation_result_identifier
                        .evaluation_result_qualifier
                        .resource_type,
                    resource_id: r
                        .evaluation_result_identifier
                        .evaluation_result_qualifier
                        .resource_id,
                    compliance: Compliance::parse(&r.compliance_type),
                    annotation: r.annotation,
                    ordering: r
                        .evaluation_result_identifier
                        .ordering_timestamp
                        .as_deref()
                        .and_then(parse_cli_time),
                    recorded: r.result_recorded_time.as_deref().and_then(parse_cli_time),
                })
                .collect(),
        ))
    }
}

/// Converts a CLI user to keyguard's model.
pub fn user_of(u: UserDetail) -> User {
    User {
        name: u.user_name,
        user_id: u.user_id,
        arn: u.arn,
        path: u.path,
        groups: u.group_list,
        tags: u
            .tags
            .into_iter()
            .map(|t| (t.key, t.value))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// Converts keyguard's model to a CLI user.
pub fn user_detail(u: &User) -> UserDetail {
    UserDetail {
        path: u.path.clone(),
        user_name: u.name.clone(),
        user_id: u.user_id.clone(),
        arn: u.arn.clone(),
        create_date: None,
        group_list: u.groups.clone(),
        tags: u
            .tags
            .iter()
            .map(|(k, v)| Tag {
                key: k.clone(),
                value: v.clone(),
            })
            .collect(),
    }
}

/// Gives slot keys their ids from `list-access-keys` output, matching by creation second.
fn name_keys(records: &mut [UserRecord], file: &AccessKeysFile) {
    for r in records.iter_mut() {
        for m in file
            .access_key_metadata
            .iter()
            .filter(|m| m.user_name == r.user.name)
        {
            let Some(created) = parse_cli_time(&m.create_date) else {
                continue;
            };
            if let Some(k) = r
                .keys
                .iter_mut()
                .find(|k| k.id.is_none() && k.created.timestamp() == created.timestamp())
            {
                k.id = Some(m.access_key_id.clone());
                // The credential report can be up to 4 hours older than list-access-keys.
                k.status = if m.status == "Active" {
                    KeyStatus::Active
                } else {
                    KeyStatus::Inactive
                };
            }
        }
    }
}

/// Formats a time the way AWS CLI v2 prints it.
pub fn cli_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
}

/// `<account>/secrets.json`: keyguard's secrets as `aws secretsmanager list-secrets` prints them
/// (name and last change only).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecretsFile {
    /// The secrets.
    pub secret_list: Vec<crate::secrets::KeptSecret>,
}
