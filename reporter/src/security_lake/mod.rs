//! Amazon Security Lake: keyguard's findings as a custom source writes them, with no conversion
//! step (docs/security-lake.md; "Collecting data from custom sources in Security Lake",
//! <https://docs.aws.amazon.com/security-lake/latest/userguide/custom-sources.html>).
//!
//! One OCSF 1.3 Compliance Finding per evaluated user ([`keyguard_core::ocsf::security_lake_finding`]),
//! one Parquet object per account and event day ([`parquet_file`]), under the custom source's
//! location as Security Lake partitions it:
//! `<location>/region=<region>/accountId=<account>/eventDay=<YYYYMMDD>/keyguard-<YYYYMMDD>.parquet`.
//! The location is what `CreateCustomLogSource` returned as `provider.location`
//! (`s3://aws-security-data-lake-<region>-<id>/ext/keyguard/`), or a folder standing for it. The
//! object's name is the day's, so a second run on the same day replaces the day's findings
//! rather than doubling them.

pub mod parquet_file;

use std::collections::BTreeMap;
use std::path::PathBuf;

use aws_config::SdkConfig;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use keyguard_aws::s3;
use serde_json::Value;

use crate::error::{Error, Result};

/// The media type of the objects.
pub const CONTENT_TYPE: &str = "application/vnd.apache.parquet";

/// Where the objects go: the custom source's location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A local folder standing for the location.
    Folder(PathBuf),
    /// `s3://bucket/prefix` (the prefix ends in `ext/<source>/`, perhaps with a version).
    S3 {
        /// The Security Lake bucket.
        bucket: String,
        /// The source's prefix, without a trailing `/`.
        prefix: String,
    },
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Folder(dir) => write!(f, "{}", dir.display()),
            Target::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

impl Target {
    /// `s3://bucket/ext/<source>/…` (a custom source's location: under `ext/`, no empty or `..`
    /// segment) or a folder.
    pub fn parse(s: &str) -> Result<Target> {
        let s = s.trim();
        if s.len() >= 5 && s[..5].eq_ignore_ascii_case("s3://") {
            let (bucket, prefix) = s3::split_uri(&format!("s3://{}", &s[5..]));
            let prefix = prefix.trim_end_matches('/').to_string();
            let segments: Vec<&str> = prefix.split('/').collect();
            if bucket.is_empty()
                || segments.len() < 2
                || segments[0] != "ext"
                || segments
                    .iter()
                    .any(|p| p.is_empty() || *p == "." || *p == "..")
            {
                return Err(Error::InvalidParameter(format!(
                    "{s:?} is not a custom source's location: expected \
                     s3://aws-security-data-lake-<region>-<id>/ext/<source>/ (CreateCustomLogSource's \
                     provider.location)"
                )));
            }
            return Ok(Target::S3 { bucket, prefix });
        }
        if s.is_empty() {
            return Err(Error::InvalidParameter(
                "the Security Lake location is empty".into(),
            ));
        }
        Ok(Target::Folder(PathBuf::from(s)))
    }

    /// The Region of a Security Lake bucket, from its name (`aws-security-data-lake-<region>-<id>`);
    /// `None` for another name.
    pub fn region(&self) -> Option<String> {
        let Target::S3 { bucket, .. } = self else {
            return None;
        };
        let rest = bucket.strip_prefix("aws-security-data-lake-")?;
        let (region, id) = rest.rsplit_once('-')?;
        (!id.is_empty() && region.split('-').count() >= 3).then(|| region.to_string())
    }
}

/// Where and as whom a run writes to Security Lake (the CLI's `--security-lake…` options, the
/// reporter's `SECURITY_LAKE_…` settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// The custom source's location.
    pub target: Target,
    /// The role Security Lake made for the source to write through
    /// (`AmazonSecurityLake-Provider-keyguard-<region>`); `None`: the caller's own credentials.
    pub role_arn: Option<String>,
    /// The external id the provider role's trust policy asks for.
    pub external_id: Option<String>,
    /// The account that must own the bucket (S3's ExpectedBucketOwner).
    pub bucket_owner: Option<String>,
}

/// What a delivery wrote, and what it left out (findings that could not be partitioned, objects
/// that could not be written: each costs itself, never the rest).
#[derive(Debug, Clone, Default)]
pub struct Written {
    /// One line per object written.
    pub objects: Vec<String>,
    /// The findings written.
    pub rows: usize,
    /// The findings left out.
    pub left_out: usize,
    /// Why: each finding that could not be partitioned, each object that could not be written.
    pub problems: Vec<String>,
}

impl Destination {
    /// Writes `findings` (OCSF 1.5) to the location, through the provider role when one is set.
    pub async fn deliver(
        &self,
        findings: impl IntoIterator<Item = Value>,
        sdk: Option<&SdkConfig>,
    ) -> Result<Written> {
        let assumed = match (&self.target, &self.role_arn, sdk) {
            (Target::S3 { bucket, prefix }, Some(arn), Some(base)) => Some(
                keyguard_aws::sdk::as_role(
                    base,
                    arn,
                    self.external_id.as_deref(),
                    "keyguard-security-lake",
                    &session_policy(arn, bucket, prefix),
                )
                .await?,
            ),
            _ => None,
        };
        let sdk = assumed.as_ref().or(sdk);
        let mut done = Written::default();
        // Runs of findings of one account (callers give them grouped by account), written
        // CONCURRENCY accounts at a time: a batch's memory is a few accounts' findings, whatever
        // the organization's size. An account seen again after its run was written is left out,
        // never written over its own object.
        let mut batch: Vec<Value> = Vec::new();
        let mut accounts_in_batch = 0;
        let mut written: std::collections::HashSet<Option<String>> = Default::default();
        let mut findings = findings.into_iter().peekable();
        while let Some(f) = findings.next() {
            let account = account_of(&f).map(str::to_string);
            if written.contains(&account) {
                done.left_out += 1;
                done.problems.push(format!(
                    "finding {}: its account's findings came apart; left out rather than \
                     written over the account's object",
                    f["metadata"]["uid"]
                ));
                continue;
            }
            batch.push(f);
            if findings
                .peek()
                .is_some_and(|next| account_of(next) == account.as_deref())
            {
                continue;
            }
            written.insert(account);
            accounts_in_batch += 1;
            if accounts_in_batch == keyguard_aws::CONCURRENCY || findings.peek().is_none() {
                self.write_run(std::mem::take(&mut batch), sdk, &mut done)
                    .await?;
                accounts_in_batch = 0;
            }
        }
        Ok(done)
    }

    /// Findings of a few whole accounts partitioned, encoded and written, the outcome added to
    /// `done`.
    async fn write_run(
        &self,
        run: Vec<Value>,
        sdk: Option<&SdkConfig>,
        done: &mut Written,
    ) -> Result<()> {
        let (parts, problems) = parts(run);
        done.left_out += problems.len();
        done.problems.extend(problems);
        for (n, outcome) in write(&self.target, parts, sdk, self.bucket_owner.as_deref()).await? {
            match outcome {
                Ok(place) => {
                    done.objects.push(place);
                    done.rows += n;
                }
                Err(e) => {
                    done.left_out += n;
                    done.problems.push(format!(
                        "{n} findings not written: {}",
                        keyguard_aws::chain(&e)
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Where a run also writes its findings for Amazon Security Lake: `keyguard audit`'s and
/// `keyguard report`'s options, the reporter function's `SECURITY_LAKE_…` settings.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Also write the findings as an Amazon Security Lake custom source: OCSF 1.3 Compliance
    /// Findings in Parquet, one object per account and event day, under the source's location
    /// (`s3://aws-security-data-lake-<region>-<id>/ext/keyguard/`, as CreateCustomLogSource
    /// returned it) or a folder standing for it.
    #[arg(long, value_name = "DIR|S3_URI", env = "SECURITY_LAKE_LOCATION")]
    pub security_lake: Option<String>,
    /// The role Security Lake made for the source to write through
    /// (`AmazonSecurityLake-Provider-keyguard-<region>`); default: the caller's credentials.
    #[arg(long, value_name = "ROLE_ARN", env = "SECURITY_LAKE_ROLE_ARN")]
    pub security_lake_role: Option<String>,
    /// The external id the provider role's trust policy asks for.
    #[arg(long, value_name = "ID", env = "SECURITY_LAKE_EXTERNAL_ID")]
    pub security_lake_external_id: Option<String>,
    /// The account that must own the lake's bucket (S3's ExpectedBucketOwner): the Security
    /// Lake delegated administrator's.
    #[arg(long, value_name = "ACCOUNT", env = "SECURITY_LAKE_BUCKET_OWNER")]
    pub security_lake_bucket_owner: Option<String>,
}

impl Args {
    /// The destination, when `--security-lake` is given: the location switches the rest on
    /// (blank counts as not given: a template parameter left empty).
    pub fn destination(&self) -> Result<Option<Destination>> {
        let blank = |s: &Option<String>| s.clone().filter(|v| !v.trim().is_empty());
        let Some(location) = blank(&self.security_lake) else {
            return Ok(None);
        };
        Ok(Some(Destination {
            target: Target::parse(&location)?,
            role_arn: blank(&self.security_lake_role),
            external_id: blank(&self.security_lake_external_id),
            bucket_owner: blank(&self.security_lake_bucket_owner),
        }))
    }
}

/// The provider role's session narrowed to what keyguard does with it: PutObject under the
/// source's own prefix, and the data key of an object S3 encrypts with the lake's KMS key
/// (whatever else Security Lake's policy on the role allows).
fn session_policy(role_arn: &str, bucket: &str, prefix: &str) -> String {
    let partition = role_arn.split(':').nth(1).unwrap_or("aws");
    let under = if prefix.is_empty() {
        "*".to_string()
    } else {
        format!("{prefix}/*")
    };
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "s3:PutObject",
                "Resource": format!("arn:{partition}:s3:::{bucket}/{under}"),
            },
            // A lake encrypted with a customer managed key: S3 asks KMS for the object's data key
            // on the writer's behalf.
            {
                "Effect": "Allow",
                "Action": "kms:GenerateDataKey",
                "Resource": "*",
                "Condition": {"StringLike": {"kms:ViaService": "s3.*.amazonaws.com"}},
            },
        ],
    })
    .to_string()
}

/// One object to be: an account's findings of one event day, encoded as the object is written
/// (a run holds a few accounts' findings and the objects in flight, never every object's bytes).
#[derive(Debug, Clone)]
pub struct Part {
    /// Its path under the location (`region=…/accountId=…/eventDay=…/keyguard-….parquet`).
    pub path: String,
    /// Its findings (OCSF 1.3).
    pub findings: Vec<Value>,
}

impl Part {
    /// The Parquet bytes ([`parquet_file::encode`]).
    pub fn encode(self) -> Result<Vec<u8>> {
        parquet_file::encode(self.findings)
    }
}

/// The account a finding (OCSF 1.5) is of (findings go to [`Destination::deliver`] grouped by
/// it).
pub fn account_of(f: &Value) -> Option<&str> {
    f["resources"][0]["owner"]["account"]["uid"].as_str()
}

/// The account a finding's JSON text is of (to group findings by account before
/// [`Destination::deliver`]).
pub fn account_of_text(f: &str) -> Option<String> {
    serde_json::from_str::<Value>(f)
        .ok()
        .and_then(|v| account_of(&v).map(str::to_string))
}

/// The partition of a Security Lake finding: Region, account, event day (UTC), each checked
/// to be what it should (they become path segments).
fn partition(f: &Value) -> std::result::Result<(String, String, String), String> {
    let region = f["cloud"]["region"].as_str().unwrap_or_default();
    let account = f["cloud"]["account"]["uid"].as_str().unwrap_or_default();
    let time = f["time"]
        .as_i64()
        .and_then(DateTime::<Utc>::from_timestamp_millis);
    let region_ok = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    match (region_ok, keyguard_core::Account::is_id(account), time) {
        (true, true, Some(t)) => Ok((
            region.to_string(),
            account.to_string(),
            t.format("%Y%m%d").to_string(),
        )),
        _ => Err(format!(
            "finding {}: no Region, 12-digit account or time to partition it by",
            f["metadata"]["uid"]
        )),
    }
}

/// `findings` (OCSF 1.5, as [`keyguard_core::ocsf::compliance_finding`] makes them) as Security
/// Lake findings, one part per account and event day, in path order. A finding that cannot be
/// partitioned is named in the problems and left out; the others are written.
pub fn parts(findings: impl IntoIterator<Item = Value>) -> (Vec<Part>, Vec<String>) {
    let mut groups: BTreeMap<(String, String, String), Vec<Value>> = BTreeMap::new();
    let mut problems = Vec::new();
    for f in findings {
        let f = keyguard_core::ocsf::security_lake_finding(f);
        match partition(&f) {
            Ok(key) => groups.entry(key).or_default().push(f),
            Err(why) => problems.push(why),
        }
    }
    let parts = groups
        .into_iter()
        .map(|((region, account, day), findings)| Part {
            path: format!(
                "region={region}/accountId={account}/eventDay={day}/keyguard-{day}.parquet"
            ),
            findings,
        })
        .collect();
    (parts, problems)
}

/// What writing one object came to: its findings, and the place written or the error.
pub type ObjectOutcome = (usize, Result<String>);

/// Encodes and writes `parts` to `target` (S3 with `sdk`, in the lake bucket's Region when its
/// name says it, `bucket_owner` as S3's ExpectedBucketOwner), a bounded number at a time. Each
/// object succeeds or fails on its own.
pub async fn write(
    target: &Target,
    parts: Vec<Part>,
    sdk: Option<&SdkConfig>,
    bucket_owner: Option<&str>,
) -> Result<Vec<ObjectOutcome>> {
    match target {
        Target::Folder(dir) => Ok(parts
            .into_iter()
            .map(|p| {
                let n = p.findings.len();
                let path = dir.join(&p.path);
                let written = (|| {
                    if let Some(parent) = path.parent() {
                        std::fs::create_dir_all(parent).map_err(|e| Error::Io(parent.into(), e))?;
                    }
                    std::fs::write(&path, p.encode()?).map_err(|e| Error::Io(path.clone(), e))?;
                    Ok(path.display().to_string())
                })();
                (n, written)
            })
            .collect()),
        Target::S3 { bucket, prefix } => {
            let cfg = sdk.ok_or_else(|| {
                Error::InvalidParameter("writing to Security Lake needs AWS credentials".into())
            })?;
            let cfg = match target.region() {
                Some(r) => cfg.to_builder().region(aws_config::Region::new(r)).build(),
                None => cfg.clone(),
            };
            let client = s3::client(&cfg);
            let b = s3::Bucket::new(bucket, bucket_owner);
            Ok(futures::stream::iter(parts)
                .map(|p| {
                    let client = &client;
                    let key = format!("{prefix}/{}", p.path);
                    async move {
                        let n = p.findings.len();
                        let written = async {
                            let bytes = p.encode()?;
                            s3::put(client, b, &key, CONTENT_TYPE, bytes)
                                .await
                                .map_err(|source| Error::Deliver {
                                    to: format!("s3://{bucket}/{key}"),
                                    source,
                                })?;
                            Ok(format!("s3://{bucket}/{key}"))
                        }
                        .await;
                        (n, written)
                    }
                })
                .buffer_unordered(keyguard_aws::CONCURRENCY)
                .collect()
                .await)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_a_location_in_s3_or_a_folder() {
        assert_eq!(
            Target::parse("s3://lake/ext/keyguard/").unwrap(),
            Target::S3 {
                bucket: "lake".into(),
                prefix: "ext/keyguard".into()
            }
        );
        assert_eq!(
            Target::parse("out/lake").unwrap(),
            Target::Folder("out/lake".into())
        );
        assert!(Target::parse("s3://").is_err());
        assert!(Target::parse(" ").is_err());
        // Only a custom source's prefix: never the bucket's root, another tree, or a way out.
        for bad in [
            "s3://lake",
            "s3://lake/",
            "s3://lake/ext/",
            "s3://lake/aws/ROUTE53/",
            "s3://lake/ext/../aws/x/",
            "s3://lake/ext//x/",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Target::parse(" S3://lake/ext/keyguard/1.0/").unwrap(),
            Target::S3 {
                bucket: "lake".into(),
                prefix: "ext/keyguard/1.0".into()
            }
        );
        let lake =
            Target::parse("s3://aws-security-data-lake-eu-west-1-abc123/ext/keyguard/").unwrap();
        assert_eq!(lake.region().as_deref(), Some("eu-west-1"));
        assert_eq!(Target::parse("s3://lake/ext/k/").unwrap().region(), None);
    }

    #[test]
    fn the_provider_session_may_only_put_under_the_sources_prefix() {
        let p: Value = serde_json::from_str(&session_policy(
            "arn:aws-us-gov:iam::111122223333:role/AmazonSecurityLake-Provider-keyguard-us-gov-west-1",
            "lake",
            "ext/keyguard",
        ))
        .unwrap();
        assert_eq!(p["Statement"][0]["Action"], "s3:PutObject");
        assert_eq!(
            p["Statement"][0]["Resource"],
            "arn:aws-us-gov:s3:::lake/ext/keyguard/*"
        );
    }

    #[test]
    fn a_finding_without_a_12_digit_account_is_named_not_written() {
        let bad = serde_json::json!({
            "time": 0, "metadata": {"uid": "x"},
            "resources": [{"region": "us-east-1", "owner": {"account": {"uid": "../../etc"}}}],
        });
        let (parts, problems) = parts([bad]);
        assert!(parts.is_empty());
        assert!(problems[0].contains("12-digit account"), "{problems:?}");
    }
}
