//! Where a command's data comes from, chosen once for `audit`, `plan` and `report`: an evidence
//! folder, or the live organization (the SDK configuration from the environment, who keyguard
//! acts as, the accounts in scope); and the moment the data is evaluated at.

use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDate, Utc};
use keyguard_aws::evidence::Evidence;
use keyguard_aws::org::organization_accounts;
use keyguard_aws::sdk::{self, Caller};
use keyguard_core::Account;

use crate::{EvidenceArg, Scope};

/// A live organization, connected.
#[derive(Debug, Clone)]
pub struct Live {
    /// The SDK configuration of the caller's credentials.
    pub base: aws_config::SdkConfig,
    /// Who keyguard acts as.
    pub caller: Caller,
    /// The accounts in scope, sorted by id.
    pub accounts: Vec<Account>,
}

/// An evidence folder or the live organization.
pub enum Source {
    /// `--evidence DIR` (or `--evidence s3://bucket/prefix`, copied into a temporary folder that
    /// lives as long as this).
    Evidence(Evidence, #[allow(dead_code)] Option<tempfile::TempDir>),
    /// AWS, through the credential chain (boxed: an `SdkConfig` is large).
    Live(Box<Live>),
}

impl Source {
    /// Opens `--evidence` when given, else connects to the organization of `scope`.
    pub async fn open(evidence: &EvidenceArg, scope: &Scope) -> Result<Source> {
        match &evidence.evidence {
            Some(dir) if dir.to_string_lossy().starts_with("s3://") => {
                let uri = dir.to_string_lossy().to_string();
                let base = sdk::load().await;
                let tmp = tempfile::tempdir().context("a temporary folder for the evidence")?;
                // The bucket must be the report bucket's owner's (the caller's, unless given).
                let owner = match &scope.buckets.report_bucket_owner {
                    Some(o) => Some(o.clone()),
                    None => Some(sdk::caller(&aws_sdk_sts::Client::new(&base)).await?.account),
                };
                let n = keyguard_aws::collect::download(&base, &uri, tmp.path(), owner.as_deref())
                    .await
                    .with_context(|| format!("reading the evidence folder {uri}"))?;
                eprintln!("keyguard: {n} evidence files read from {uri}");
                Ok(Source::Evidence(Evidence::open(tmp.path())?, Some(tmp)))
            }
            Some(dir) => Ok(Source::Evidence(Evidence::open(dir)?, None)),
            None => Ok(Source::Live(Box::new(connect(scope).await?))),
        }
    }

    /// The moment to evaluate at: `--as-of` when given, else for an evidence folder the moment
    /// it was collected (said on stderr, with `verb`: "evaluating", "reporting"), else now.
    pub fn as_of(&self, given: Option<DateTime<Utc>>, verb: &str) -> DateTime<Utc> {
        if let Some(t) = given {
            return t;
        }
        match self {
            Source::Evidence(e, _) => match &e.collected {
                Some(c) => {
                    eprintln!(
                        "keyguard: {verb} as of {} (when the evidence was collected; --as-of to change)",
                        c.collected_at.format("%Y-%m-%d %H:%M UTC")
                    );
                    c.collected_at
                }
                None => Utc::now(),
            },
            Source::Live(_) => Utc::now(),
        }
    }
}

/// A live run's start: the SDK configuration from the environment, who it acts as (STS
/// GetCallerIdentity), and the accounts in scope.
pub async fn connect(scope: &Scope) -> Result<Live> {
    let base = sdk::load().await;
    let caller = sdk::caller(&aws_sdk_sts::Client::new(&base))
        .await
        .context("who am I (sts:GetCallerIdentity)")?;
    let accounts = accounts(&base, scope).await?;
    Ok(Live {
        base,
        caller,
        accounts,
    })
}

/// The accounts of a live run: `--account` as given, or the organization's ACTIVE accounts.
async fn accounts(base: &aws_config::SdkConfig, scope: &Scope) -> Result<Vec<Account>> {
    let filter = scope.filter();
    if !scope.accounts.is_empty() {
        return Ok(scope
            .accounts
            .iter()
            .filter(|a| filter.admits(a))
            .map(|id| Account {
                id: id.clone(),
                name: String::new(),
                email: None,
            })
            .collect());
    }
    organization_accounts(base, &scope.role.spec(), &filter)
        .await
        .context("listing the organization's accounts (run from the management or delegated-admin account, or name accounts with --account)")
}

/// `--as-of`'s parser: `YYYY-MM-DD` (the start of that day, UTC) or an RFC 3339 time.
pub fn parse_as_of(s: &str) -> std::result::Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc())
        .map_err(|_| format!("{s:?} is not a date (YYYY-MM-DD) or an RFC 3339 time"))
}
