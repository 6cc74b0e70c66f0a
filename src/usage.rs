//! `keyguard usage`: where each access key is used — for one account, one user or one key, the
//! distinct source addresses (with counts), user agents, services, Regions and VPC endpoints of
//! the calls CloudTrail recorded, and when the key was first and last seen — from
//! `LookupEvents` (live, paced), the organization trail's files (`--trail`), or an evidence
//! folder's `cloudtrail/`. Key ids are masked in every format; every text cell of the CSV is
//! neutralized for a spreadsheet.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Duration, Utc};
use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};
use keyguard_aws::settings_env::RoleArgs;
use keyguard_aws::usage::{key_usage, last_use, pacer};
use keyguard_core::usage::{describe, KeyUsage, Tally, Usage};
use keyguard_core::{mask_key_id, Account};
use serde::Serialize;

use crate::format::{self, cell, Format, FormatArg};
use crate::source::{parse_as_of, Source};
use crate::{EvidenceArg, Scope};

/// Arguments of `keyguard usage`.
#[derive(Debug, clap::Args)]
pub struct UsageArgs {
    /// The account (live: the one account read; evidence: only this one).
    #[arg(long, value_name = "ID")]
    account: Option<String>,
    /// Only this user's keys.
    #[arg(long, conflicts_with = "key")]
    user: Option<String>,
    /// Only this key (its user is the one IAM names).
    #[arg(long, value_name = "AKIA…")]
    key: Option<String>,
    /// From this moment on (YYYY-MM-DD, start of the day UTC, or RFC 3339). Default: 7 days back;
    /// LookupEvents keeps 90 days.
    #[arg(long, value_name = "DATE", value_parser = parse_as_of)]
    since: Option<DateTime<Utc>>,
    /// The organization trail's files instead of LookupEvents: a folder, or
    /// `s3://bucket/AWSLogs/o-xxxx` (each Region's folders of the window's days are read).
    #[arg(long, value_name = "DIR|S3_URI")]
    trail: Option<String>,
    /// With LookupEvents: at most this many pages of 50 calls per key and Region (2 calls a
    /// second: 20 pages are 1,000 calls in 10 s).
    #[arg(long, default_value_t = 20)]
    max_pages: usize,
    /// The member role for another account than the caller's.
    #[command(flatten)]
    role: RoleArgs,
    /// Who must own the trail's bucket.
    #[command(flatten)]
    buckets: keyguard_aws::settings_env::BucketOwnerArgs,
    #[command(flatten)]
    evidence: EvidenceArg,
    #[command(flatten)]
    format: FormatArg,
}

/// One key of the output.
#[derive(Debug, Clone, Serialize)]
struct KeyRow {
    account: String,
    user: String,
    key: String,
    /// IAM's last use (the credential report's in an evidence folder).
    last_used: Option<DateTime<Utc>>,
    /// "used 3 h ago from …".
    summary: String,
    /// CloudTrail's calls in the window (`None`: CloudTrail saw none).
    usage: Option<KeyUsage>,
    /// The page limit ended a lookup: older calls exist.
    truncated: bool,
}

/// A key to look at: account, user, full id, IAM's last use and its Region.
struct Wanted {
    account: String,
    user: String,
    key_id: String,
    last_used: Option<DateTime<Utc>>,
    region: Option<String>,
}

pub async fn run(args: UsageArgs) -> Result<ExitCode> {
    if args.format.get() == Format::Ocsf {
        bail!("--format ocsf is for findings (audit, plan); usage prints table, json or csv");
    }
    let now = Utc::now();
    let since = args.since.unwrap_or(now - Duration::days(7));
    let scope = Scope {
        accounts: args.account.iter().cloned().collect(),
        exclude: vec![],
        role: args.role.clone(),
        buckets: args.buckets.clone(),
    };
    let source = Source::open(&args.evidence, &scope).await?;
    let (wanted, usage, truncated) = match &source {
        Source::Evidence(evidence, _) => {
            let wanted = evidence_keys(evidence, &args)?;
            let dir = evidence.root().join("cloudtrail");
            let usage = if dir.is_dir() {
                scan_folder(&dir, since)?
            } else {
                Usage::default()
            };
            (wanted, usage, BTreeMap::new())
        }
        Source::Live(live) => {
            let account = live_account(&args, &live.accounts)?;
            let cfg = keyguard_aws::sdk::for_account(
                &live.base,
                &live.caller,
                &account.id,
                &args.role.spec(),
            )
            .await
            .with_context(|| format!("reaching account {}", account.id))?;
            let wanted = live_keys(&cfg, &account.id, &args).await?;
            match &args.trail {
                Some(trail) => {
                    let owner = args.buckets.trail_bucket_owner.as_deref();
                    let usage =
                        scan_trail(&live.base, trail, owner, &account.id, since, now).await?;
                    (wanted, usage, BTreeMap::new())
                }
                None => {
                    let (usage, truncated) =
                        lookup(&cfg, &wanted, (since, now), args.max_pages).await?;
                    (wanted, usage, truncated)
                }
            }
        }
    };
    let rows: Vec<KeyRow> = wanted
        .into_iter()
        .map(|w| KeyRow {
            summary: describe(usage.of(&w.key_id), w.last_used, now),
            usage: usage.of(&w.key_id).cloned(),
            truncated: truncated.get(&w.key_id).copied().unwrap_or(false),
            key: mask_key_id(&w.key_id),
            account: w.account,
            user: w.user,
            last_used: w.last_used,
        })
        .collect();
    print(&rows, args.format.get())?;
    Ok(ExitCode::SUCCESS)
}

fn wanted_user(args: &UsageArgs, user: &str, key: &str) -> bool {
    args.user.as_deref().is_none_or(|u| u == user) && args.key.as_deref().is_none_or(|k| k == key)
}

/// The keys of an evidence folder's accounts (their ids from `access-keys.json`).
fn evidence_keys(
    evidence: &keyguard_aws::evidence::Evidence,
    args: &UsageArgs,
) -> Result<Vec<Wanted>> {
    let mut out = Vec::new();
    for account in &evidence.accounts {
        if args.account.as_deref().is_some_and(|a| a != account.id) {
            continue;
        }
        let Ok(inv) = evidence.inventory(&account.id) else {
            continue;
        };
        for r in inv.users {
            for k in r.keys.iter().filter(|k| k.id.is_some()) {
                let id = k.id.clone().unwrap_or_default();
                if wanted_user(args, &r.user.name, &id) {
                    out.push(Wanted {
                        account: account.id.clone(),
                        user: r.user.name.clone(),
                        key_id: id,
                        last_used: k.last_used,
                        region: None,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// The one account of a live run.
fn live_account(args: &UsageArgs, accounts: &[Account]) -> Result<Account> {
    match (&args.account, accounts) {
        (Some(_), [one]) => Ok(one.clone()),
        _ => bail!("a live run reads one account: give --account ID"),
    }
}

/// The keys of one live account: `--key`, `--user`'s, or every user's (ListAccessKeys each).
async fn live_keys(
    cfg: &aws_config::SdkConfig,
    account: &str,
    args: &UsageArgs,
) -> Result<Vec<Wanted>> {
    let iam = aws_sdk_iam::Client::new(cfg);
    let mut ids: Vec<(String, String)> = Vec::new();
    if let Some(key) = &args.key {
        let user = last_use(&iam, key)
            .await?
            .user
            .context("IAM names no user for that key")?;
        ids.push((user, key.clone()));
    } else {
        let users: Vec<String> = match &args.user {
            Some(u) => vec![u.clone()],
            None => keyguard_aws::inventory::users(&iam)
                .await?
                .into_iter()
                .map(|u| u.name)
                .collect(),
        };
        for user in users {
            let keys = keyguard_aws::inventory::list_keys(&iam, &user)
                .await?
                .with_context(|| format!("no user {user:?} in {account}"))?;
            ids.extend(keys.into_iter().map(|k| (user.clone(), k.id)));
        }
    }
    let mut out = Vec::new();
    for (user, key_id) in ids {
        let last = last_use(&iam, &key_id).await?;
        out.push(Wanted {
            account: account.to_string(),
            user,
            key_id,
            last_used: last.at,
            region: last.region,
        });
    }
    Ok(out)
}

/// LookupEvents for each key (us-east-1 and the Region IAM last saw it in), paced.
async fn lookup(
    cfg: &aws_config::SdkConfig,
    wanted: &[Wanted],
    window: (DateTime<Utc>, DateTime<Utc>),
    max_pages: usize,
) -> Result<(Usage, BTreeMap<String, bool>)> {
    let pace = pacer();
    let mut usage = Usage::default();
    let mut truncated = BTreeMap::new();
    for w in wanted {
        let found = key_usage(
            cfg,
            &w.key_id,
            w.region.as_deref(),
            window,
            &pace,
            max_pages,
        )
        .await
        .with_context(|| format!("CloudTrail LookupEvents for {}", mask_key_id(&w.key_id)))?;
        usage.merge(&found.usage);
        truncated.insert(w.key_id.clone(), found.truncated);
    }
    Ok((usage, truncated))
}

/// The usage in a folder of trail files, from `since` on (files dated before it by their
/// `YYYY/MM/DD` folders are not read).
fn scan_folder(dir: &Path, since: DateTime<Utc>) -> Result<Usage> {
    let since_day = since.format("%Y/%m/%d").to_string();
    let files: Vec<_> = reporter::cloudtrail::trail_files(dir)?
        .into_iter()
        .filter(|p| day_of(&p.to_string_lossy()).is_none_or(|d| d >= since_day))
        .collect();
    let scan = reporter::cloudtrail::scan(&files);
    for (path, why) in &scan.problems {
        eprintln!("keyguard: {} not read: {why}", path.display());
    }
    Ok(scan.usage)
}

/// `YYYY/MM/DD` of a trail file's path, if it has one.
fn day_of(path: &str) -> Option<String> {
    let parts: Vec<&str> = path.split('/').collect();
    parts.windows(3).rev().find_map(|w| {
        let ok = w[0].len() == 4 && w[1].len() == 2 && w[2].len() == 2;
        (ok && w.iter().all(|p| p.bytes().all(|b| b.is_ascii_digit()))).then(|| w.join("/"))
    })
}

/// The usage in an organization trail's files of `account` in S3, every Region, the window's
/// days (downloaded into a temporary folder, then scanned).
async fn scan_trail(
    base: &aws_config::SdkConfig,
    trail: &str,
    owner: Option<&str>,
    account: &str,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Usage> {
    let Some(uri) = trail.strip_prefix("s3://") else {
        return scan_folder(Path::new(trail), since);
    };
    let s3 = keyguard_aws::s3::client(base);
    let (bucket, prefix) = keyguard_aws::s3::split_uri(uri);
    let bucket = keyguard_aws::s3::Bucket::new(&bucket, owner);
    let root = if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    };
    let tmp = tempfile::tempdir()?;
    let regions =
        keyguard_aws::s3::list_prefixes(&s3, bucket, &format!("{root}{account}/CloudTrail/"))
            .await?;
    let mut day = since;
    while day.date_naive() <= now.date_naive() {
        for region in &regions {
            let day_prefix = format!("{region}{}/", day.format("%Y/%m/%d"));
            for key in keyguard_aws::s3::list_keys(&s3, bucket, &day_prefix).await? {
                let bytes = keyguard_aws::s3::get(&s3, bucket, &key).await?;
                let path = tmp.path().join(key.replace('/', "_"));
                std::fs::write(&path, bytes)?;
            }
        }
        day += Duration::days(1);
    }
    let files = reporter::cloudtrail::trail_files(tmp.path())?;
    Ok(reporter::cloudtrail::scan(&files).usage)
}

/// The top values of a tally, `value (calls)`, joined.
fn top(t: &Tally, n: usize) -> String {
    let mut parts: Vec<String> = t
        .top(n)
        .iter()
        .map(|(v, s)| format!("{v} ({})", s.calls))
        .collect();
    let shown: u64 = t.top(n).iter().map(|(_, s)| s.calls).sum();
    let rest = t.values.values().map(|s| s.calls).sum::<u64>() + t.other - shown;
    if rest > 0 {
        parts.push(format!("+{rest} more"));
    }
    parts.join(", ")
}

/// One CSV row: one value of one kind seen with one key.
#[derive(Serialize)]
struct CsvRow<'a> {
    #[serde(serialize_with = "cell")]
    account: &'a str,
    #[serde(serialize_with = "cell")]
    user: &'a str,
    #[serde(serialize_with = "cell")]
    key: &'a str,
    #[serde(serialize_with = "cell")]
    kind: &'static str,
    #[serde(serialize_with = "cell")]
    value: &'a str,
    calls: u64,
    last_seen: String,
}

fn print(rows: &[KeyRow], format: Format) -> Result<()> {
    match format {
        Format::Json | Format::Ocsf => format::print_json(rows),
        Format::Csv => {
            let mut out = Vec::new();
            for r in rows {
                let Some(u) = &r.usage else { continue };
                for (kind, tally) in [
                    ("source_ip", &u.sources),
                    ("user_agent", &u.user_agents),
                    ("service", &u.services),
                    ("region", &u.regions),
                    ("vpc_endpoint", &u.vpc_endpoints),
                ] {
                    for (value, seen) in tally.top(usize::MAX) {
                        out.push(CsvRow {
                            account: &r.account,
                            user: &r.user,
                            key: &r.key,
                            kind,
                            value,
                            calls: seen.calls,
                            last_seen: seen.last.to_rfc3339(),
                        });
                    }
                }
            }
            format::print_csv(
                &out,
                &[
                    "account",
                    "user",
                    "key",
                    "kind",
                    "value",
                    "calls",
                    "last_seen",
                ],
            )
        }
        Format::Table => {
            let mut t = Table::new();
            t.load_preset(UTF8_FULL_CONDENSED)
                .set_content_arrangement(ContentArrangement::Dynamic)
                .set_header([
                    "account",
                    "user",
                    "key",
                    "where it is used",
                    "sources",
                    "agents",
                    "services",
                ]);
            for r in rows {
                let (sources, agents, services) =
                    r.usage.as_ref().map_or_else(Default::default, |u| {
                        (
                            top(&u.sources, 3),
                            top(&u.user_agents, 2),
                            top(&u.services, 3),
                        )
                    });
                t.add_row([
                    &r.account, &r.user, &r.key, &r.summary, &sources, &agents, &services,
                ]);
            }
            println!("{t}");
            Ok(())
        }
    }
}
