//! Report inputs read live from AWS: inventories and Config results per account (through the
//! member role, or Config results through an aggregator), CloudTrail events from `LookupEvents`
//! (paced), the org trail's files in S3, or a local folder.
//!
//! Every account is read on its own (at most [`keyguard_aws::CONCURRENCY`] at a time); what one
//! account cannot give is recorded in its [`AccountInput`] or as a trail problem, and the report
//! still gets the others.

use std::collections::HashSet;
use std::path::PathBuf;

use aws_config::SdkConfig;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use keyguard_aws::cloudtrail as cloudtrail_api;
use keyguard_aws::config::{self, compliance_results};
use keyguard_aws::conformance_pack::{aggregate_rules, pack_compliance, PACK_NAME};
use keyguard_aws::inventory::{read_inventory, ReportPolling};
use keyguard_aws::org::per_account;
use keyguard_aws::s3;
use keyguard_aws::sdk::{self, Caller, RoleSpec};
use keyguard_core::pack::PackRule;
use keyguard_core::{Account, Compliance};

use crate::cloudtrail::{self, TrailEvent, FOLLOWED};
use crate::error::{Error, Result};
use crate::evidence::{trail_folder, Options};
use crate::model::{AccountInput, ConfigState, Inputs, TrailInput};
use crate::period::Period;

pub use keyguard_aws::cloudtrail::{IAM_EVENTS_REGION, LOOKUP_INTERVAL};
/// S3 trail objects fetched at once per account.
pub const S3_FETCHES: usize = 8;

/// Where Config results come from.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    /// `GetComplianceDetailsByConfigRule` in each account, through the member role.
    PerAccount,
    /// `GetAggregateComplianceDetailsByConfigRule` on this aggregator, from the caller's account
    /// (the delegated administrator).
    Aggregator(String),
}

/// Where CloudTrail events come from.
#[derive(Debug, Clone)]
pub enum TrailSource {
    /// `LookupEvents` in each account (us-east-1, one attribute per call, 50 a page, paced).
    LookupEvents,
    /// The org trail's bucket and prefix (`bucket/AWSLogs/o-xxxx`): only each account's
    /// us-east-1 folders of the period's days are listed.
    S3(String),
    /// A local folder of trail files.
    Folder(PathBuf),
}

/// Live-only options.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// Config results source.
    pub config: ConfigSource,
    /// CloudTrail source.
    pub trail: TrailSource,
    /// The member role.
    pub role: RoleSpec,
    /// The report title's organization name.
    pub organization: String,
    /// The account that must own the org trail's bucket (S3's ExpectedBucketOwner); `None`:
    /// not checked (`TRAIL_BUCKET_OWNER` unset).
    pub trail_owner: Option<String>,
}

struct AccountRead {
    input: AccountInput,
    events: Vec<TrailEvent>,
    calls: usize,
    problems: Vec<String>,
    usage: keyguard_core::usage::Usage,
}

impl keyguard_aws::progress::Outcome for AccountRead {
    fn failed(&self) -> bool {
        self.input.inventory.is_err()
    }
}

/// Reads every input for `accounts`. `now` is the report date unless `opts.as_of` is given.
pub async fn inputs(
    base: &SdkConfig,
    caller: &Caller,
    accounts: Vec<Account>,
    opts: &Options,
    live: &LiveOptions,
    now: DateTime<Utc>,
) -> Result<Inputs> {
    let as_of = opts.as_of.unwrap_or(now);
    let period = Period::of(opts.kind, as_of.date_naive());
    let accounts: Vec<Account> = accounts
        .into_iter()
        .filter(|a| opts.accounts.is_empty() || opts.accounts.contains(&a.id))
        .collect();
    let reads = per_account(accounts, |account| {
        read_account(base, caller, account, opts, live, period)
    })
    .await;
    let mut trail = match &live.trail {
        TrailSource::Folder(dir) => trail_folder(dir),
        TrailSource::LookupEvents => TrailInput {
            source: "CloudTrail LookupEvents (us-east-1)".into(),
            ..TrailInput::default()
        },
        TrailSource::S3(uri) => TrailInput {
            source: format!("org trail s3://{uri}"),
            ..TrailInput::default()
        },
    };
    let mut seen: HashSet<String> = trail.events.iter().map(|e| e.id.clone()).collect();
    let mut accounts = Vec::new();
    for (_, r) in reads {
        trail.files += r.calls;
        trail.problems.extend(r.problems);
        trail.usage.merge(&r.usage);
        trail
            .events
            .extend(r.events.into_iter().filter(|e| seen.insert(e.id.clone())));
        accounts.push(r.input);
    }
    trail
        .events
        .sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.id.cmp(&b.id)));
    Ok(Inputs {
        organization: live.organization.clone(),
        as_of,
        period,
        settings: opts.settings.clone(),
        rule_name: opts.rule_name.clone(),
        keyguard_roles: opts
            .keyguard_roles
            .clone()
            .in_central(Some(caller.account.clone())),
        owner_domains: opts.owner_domains.clone(),
        page_rows: opts.page_rows,
        accounts,
        trail,
        history: Vec::new(),
    })
}

async fn read_account(
    base: &SdkConfig,
    caller: &Caller,
    account: Account,
    opts: &Options,
    live: &LiveOptions,
    period: Period,
) -> AccountRead {
    let id = account.id.clone();
    let mut read = AccountRead {
        input: AccountInput {
            account,
            inventory: Err("not read".into()),
            root_keys: vec![],
            secrets: None,
            config: ConfigState::Unreadable("not read".into()),
            pack: None,
        },
        events: Vec::new(),
        calls: 0,
        problems: Vec::new(),
        usage: Default::default(),
    };
    let cfg = match sdk::for_account(base, caller, &id, &live.role).await {
        Ok(cfg) => cfg,
        Err(e) => {
            let why = format!("assuming the member role: {e}");
            read.input.inventory = Err(why.clone());
            read.input.config = match &live.config {
                ConfigSource::Aggregator(name) => {
                    aggregate_results(base, name, &opts.rule_name, &id).await.0
                }
                ConfigSource::PerAccount => ConfigState::Unreadable(why.clone()),
            };
            read.problems
                .push(format!("account {id}: CloudTrail not read ({why})"));
            return read;
        }
    };
    let iam = aws_sdk_iam::Client::new(&cfg);
    let inv = read_inventory(&iam, &id, ReportPolling::default()).await;
    read.input.root_keys = inv
        .as_ref()
        .map(|i| i.root_keys.clone())
        .unwrap_or_default();
    read.input.inventory = inv.map(|inv| inv.users).map_err(|e| e.to_string());
    match keyguard_aws::secrets::kept_in(&cfg).await {
        Ok(kept) => read.input.secrets = kept.map(|k| k.len()),
        Err(e) => read
            .problems
            .push(format!("account {id}: secrets not listed: {e}")),
    }
    let (config, pack) = config_of(base, &cfg, &id, &opts.rule_name, &live.config).await;
    read.input.config = config;
    read.input.pack = pack;
    match &live.trail {
        TrailSource::LookupEvents => {
            match lookup_events(&cfg, period).await {
                Ok((events, calls)) => {
                    read.events = events;
                    read.calls = calls;
                }
                Err(e) => read
                    .problems
                    .push(format!("account {id}: LookupEvents: {e}")),
            }
            match crate::usage_input::looked_up(&cfg, &opts.settings, period.end()).await {
                Ok((usage, calls)) => {
                    read.usage = usage;
                    read.calls += calls;
                }
                Err(e) => read.problems.push(format!(
                    "account {id}: where keys are used (LookupEvents): {e}"
                )),
            }
        }
        TrailSource::S3(uri) => {
            let (events, usage, files, problems) =
                s3_trail(base, uri, live.trail_owner.as_deref(), &id, period).await;
            read.events = events;
            read.usage = usage;
            read.calls = files;
            read.problems.extend(problems);
        }
        TrailSource::Folder(_) => {}
    }
    read
}

const ALL_TYPES: [Compliance; 3] = [
    Compliance::Compliant,
    Compliance::NonCompliant,
    Compliance::NotApplicable,
];

/// One account's Config results and keyguard's conformance pack there. keyguard's rule is
/// read by the name Config gave the pack's copy of it (the pack's rules may carry a suffix);
/// an account without the pack (a loose rule) is read by `rule` as it is.
async fn config_of(
    base: &SdkConfig,
    cfg: &SdkConfig,
    account: &str,
    rule: &str,
    source: &ConfigSource,
) -> (ConfigState, Option<Vec<PackRule>>) {
    match source {
        ConfigSource::PerAccount => {
            let client = aws_sdk_config::Client::new(cfg);
            let pack = match pack_compliance(&client, PACK_NAME).await {
                Ok(pack) => pack,
                Err(e) => {
                    tracing::warn!(account, "conformance pack not read: {e}");
                    None
                }
            };
            let name = match pack
                .as_deref()
                .map(|p| keyguard_core::pack::keyguard_rule(p, rule))
            {
                Some(Err(why)) => return (ConfigState::Unreadable(why), pack),
                Some(Ok(name)) => name,
                None => rule,
            };
            let state = match compliance_results(&client, name, &ALL_TYPES).await {
                Ok(Some(r)) => ConfigState::Results(r),
                Ok(None) => ConfigState::RuleMissing,
                Err(e) => ConfigState::Unreadable(e.to_string()),
            };
            (state, pack)
        }
        ConfigSource::Aggregator(name) => aggregate_results(base, name, rule, account).await,
    }
}

/// One account's results through an aggregator, and its pack's rules (every rule of the
/// account through the aggregator, keyguard's pack's among them). An aggregator cannot tell "no
/// such rule in that account" from "no results yet": both read as not evaluated (the report
/// says "no results yet").
async fn aggregate_results(
    base: &SdkConfig,
    aggregator: &str,
    rule: &str,
    account: &str,
) -> (ConfigState, Option<Vec<PackRule>>) {
    let client = aws_sdk_config::Client::new(base);
    let region = base
        .region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| IAM_EVENTS_REGION.into());
    let pack = match aggregate_rules(&client, aggregator, account, &region).await {
        Ok(rules) => keyguard_core::pack::of_pack(rules, rule),
        Err(e) => {
            tracing::warn!(
                account,
                "the account's rules not read through the aggregator: {e}"
            );
            None
        }
    };
    let name = match pack
        .as_deref()
        .map(|p| keyguard_core::pack::keyguard_rule(p, rule))
    {
        Some(Err(why)) => return (ConfigState::Unreadable(why), pack),
        Some(Ok(name)) => name.to_string(),
        None => rule.to_string(),
    };
    let state = match config::aggregate_results(&client, aggregator, &name, account, &region).await
    {
        Ok(results) => ConfigState::Results(results),
        Err(e) => ConfigState::Unreadable(e.to_string()),
    };
    (state, pack)
}

/// One account's followed IAM events between `start` and `end` (LookupEvents, one `EventName`
/// per call, paced), as a CloudTrail log file of an evidence folder
/// (`cloudtrail/AWSLogs/<account>/<name>.json.gz`): what `keyguard collect --since` and the
/// queued report's account slices write, and what `report --evidence` reads.
pub async fn lookup_trail_file(
    cfg: &SdkConfig,
    account: &str,
    start: chrono::DateTime<chrono::Utc>,
    end: chrono::DateTime<chrono::Utc>,
    name: &str,
) -> Result<keyguard_aws::collect::EvidenceFile> {
    let (found, _) = followed_records(cfg, start, end).await?;
    let records: Vec<String> = found.into_iter().flat_map(|(_, r)| r).collect();
    Ok(keyguard_aws::collect::trail_file(account, name, &records))
}

/// The followed IAM events of one account in `period` (LookupEvents, one `EventName` per call,
/// paced). Returns the events and the calls made.
pub async fn lookup_events(cfg: &SdkConfig, period: Period) -> Result<(Vec<TrailEvent>, usize)> {
    let (found, calls) = followed_records(cfg, period.start(), period.end()).await?;
    let mut events = Vec::new();
    for (name, records) in found {
        let records: Vec<&str> = records.iter().map(String::as_str).collect();
        events.extend(
            cloudtrail::parse_records(&records).map_err(|e| Error::Input {
                message: format!("LookupEvents {name}: {e}"),
                source: Some(Box::new(e)),
            })?,
        );
    }
    Ok((events, calls))
}

/// The raw CloudTrail records of each followed IAM event name of one account between `start`
/// and `end` (LookupEvents, one `EventName` per call, paced below its 2 calls a second), and the
/// calls made.
async fn followed_records(
    cfg: &SdkConfig,
    start: chrono::DateTime<chrono::Utc>,
    end: chrono::DateTime<chrono::Utc>,
) -> Result<(Vec<(&'static str, Vec<String>)>, usize)> {
    let client = cloudtrail_api::client(cfg);
    let mut pace = tokio::time::interval(LOOKUP_INTERVAL);
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut found = Vec::new();
    let mut calls = 0;
    for name in FOLLOWED {
        let (records, made) =
            cloudtrail_api::lookup_events(&client, name, start, end, &mut pace).await?;
        calls += made;
        found.push((*name, records));
    }
    Ok((found, calls))
}

/// Where an organization trail keeps `account`'s us-east-1 log files of `day` under `prefix`
/// (`AWSLogs/o-…`): `<prefix>/<account>/CloudTrail/us-east-1/YYYY/MM/DD/`.
pub(crate) fn trail_day_prefix(prefix: &str, account: &str, day: chrono::NaiveDate) -> String {
    let root = if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    };
    format!(
        "{root}{account}/CloudTrail/{IAM_EVENTS_REGION}/{}/",
        day.format("%Y/%m/%d")
    )
}

/// One account's org-trail files of the period's days, read from the caller's account (the log
/// archive bucket policy must allow it): the IAM events from us-east-1's, where keys are used
/// from every Region's. Returns events, usage, files read and problems.
async fn s3_trail(
    base: &SdkConfig,
    uri: &str,
    owner: Option<&str>,
    account: &str,
    period: Period,
) -> (
    Vec<TrailEvent>,
    keyguard_core::usage::Usage,
    usize,
    Vec<String>,
) {
    let s3 = s3::client(base);
    let (bucket, prefix) = s3::split_uri(uri);
    let b = s3::Bucket::new(&bucket, owner);
    let mut keys = Vec::new();
    let mut problems = Vec::new();
    for day in period.days() {
        let day_prefix = crate::live::trail_day_prefix(&prefix, account, day);
        match s3::list_keys(&s3, b, &day_prefix).await {
            Ok(found) => keys.extend(found.into_iter().filter(|k| k.ends_with(".json.gz"))),
            Err(e) => problems.push(format!("s3://{bucket}/{day_prefix}: {e}")),
        }
    }
    let files = keys.len();
    let results: Vec<(String, std::result::Result<cloudtrail::Parsed, String>)> =
        futures::stream::iter(keys)
            .map(|key| {
                let s3 = &s3;
                async move {
                    let result = match s3::get(s3, b, &key).await {
                        Ok(bytes) => tokio::task::spawn_blocking(move || {
                            let bytes: Vec<u8> = bytes;
                            cloudtrail::gunzip(&bytes).and_then(|j| cloudtrail::parse_all(&j))
                        })
                        .await
                        .map_err(|e| e.to_string())
                        .and_then(|r| r.map_err(|e| e.to_string())),
                        Err(e) => Err(e.to_string()),
                    };
                    (key, result)
                }
            })
            .buffer_unordered(S3_FETCHES)
            .collect()
            .await;
    let mut events = Vec::new();
    let mut usage = keyguard_core::usage::Usage::default();
    for (key, r) in results {
        match r {
            Ok(p) => {
                events.extend(p.events);
                usage.merge(&p.usage);
            }
            Err(why) => problems.push(format!("s3://{bucket}/{key}: {why}; the file was skipped")),
        }
    }
    let (more, more_files, more_problems) =
        crate::usage_input::other_regions(base, uri, owner, account, &period).await;
    usage.merge(&more);
    problems.extend(more_problems);
    (events, usage, files + more_files, problems)
}
