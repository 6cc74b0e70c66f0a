//! `keyguard report`: the weekly or monthly auditor report, from an evidence folder or live.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use reporter::deliver::{self, Delivery};
use reporter::evidence::Options;
use reporter::live::{self, ConfigSource, LiveOptions, TrailSource};
use reporter::PeriodKind;

use crate::source::{connect, parse_as_of, Source};
use crate::{EvidenceArg, Policy, Scope};

/// Arguments of `keyguard report`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("period").required(true).args(["weekly", "monthly"])))]
pub struct ReportArgs {
    #[command(flatten)]
    evidence: EvidenceArg,
    /// The 7 days ending on the report date, compared with the 7 days before.
    #[arg(long)]
    weekly: bool,
    /// The last calendar month ended by the report date, compared with the month before.
    #[arg(long)]
    monthly: bool,
    /// The report date (YYYY-MM-DD or RFC 3339). Default: now, or when the evidence was collected.
    #[arg(long, value_name = "DATE", value_parser = parse_as_of)]
    as_of: Option<DateTime<Utc>>,
    /// Write the report into DIR/<period>/ (earlier reports there give the comparison).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Upload the report to s3://bucket/prefix/<period>/ (earlier reports there give the
    /// comparison when --out is not given).
    #[arg(long, value_name = "S3_URI", env = "REPORT_S3_URI")]
    s3_uri: Option<String>,
    /// Email the report (HTML body, CSVs attached) to these auditors through SESv2 (repeatable).
    #[arg(
        long = "email-to",
        value_name = "ADDRESS",
        env = "REPORT_RECIPIENTS",
        value_delimiter = ','
    )]
    email_to: Vec<String>,
    /// The verified SES identity the report is sent from.
    #[arg(long, value_name = "ADDRESS", env = "NOTICE_SENDER")]
    sender: Option<String>,
    #[command(flatten)]
    security_lake: reporter::security_lake::Args,
    /// The Config rule whose results the report reads.
    #[arg(
        long,
        env = "KEYGUARD_RULE_NAME",
        default_value = "keyguard-access-keys"
    )]
    rule: String,
    /// The most rows each table of the HTML page shows (the worst first where the table has an
    /// order of badness); the CSVs hold every row, and the page says how many it left out.
    #[arg(long, env = "REPORT_PAGE_ROWS", default_value_t = reporter::render::PAGE_ROWS)]
    page_rows: usize,
    /// An evidence folder's accounts built at once: a larger folder is built a shard at a time,
    /// so memory does not grow with the organization (docs/performance.md).
    #[arg(long, env = "REPORT_SHARD_ACCOUNTS", default_value_t = reporter::sharded::SHARD_ACCOUNTS, value_parser = clap::value_parser!(usize))]
    shard_accounts: usize,
    /// Live: read Config results through this aggregator (from the delegated-admin account)
    /// instead of per account through the member role.
    #[arg(long, value_name = "NAME", env = "CONFIG_AGGREGATOR")]
    aggregator: Option<String>,
    /// Live: where CloudTrail events come from: `lookup` (LookupEvents per account, paced at 2
    /// calls/s), `s3://bucket/AWSLogs/o-xxxx` (the org trail's files), or a local folder.
    #[arg(
        long,
        value_name = "SOURCE",
        env = "TRAIL_SOURCE",
        default_value = "lookup"
    )]
    trail: String,
    /// Owner tags outside the organization's mail domains are listed in the report.
    #[command(flatten)]
    owners: keyguard_aws::settings_env::OwnerArgs,
    #[command(flatten)]
    scope: Scope,
    #[command(flatten)]
    policy: Policy,
}

/// Runs `keyguard report`.
pub async fn run(args: ReportArgs) -> Result<ExitCode> {
    let settings = args.policy.settings.settings().context("settings")?;
    let kind = if args.monthly {
        PeriodKind::Monthly
    } else {
        PeriodKind::Weekly
    };
    let lake = args.security_lake.destination()?;
    let lake_in_s3 = matches!(
        lake,
        Some(reporter::security_lake::Destination {
            target: reporter::security_lake::Target::S3 { .. },
            ..
        })
    );
    if args.out.is_none() && args.s3_uri.is_none() && args.email_to.is_empty() && lake.is_none() {
        bail!(
            "nowhere to deliver the report: give --out DIR, --s3-uri, --email-to or --security-lake"
        );
    }
    if !args.email_to.is_empty() && args.sender.is_none() {
        bail!("--email-to needs --sender (a verified SES identity)");
    }
    let opts = Options {
        kind,
        as_of: args.as_of,
        settings,
        rule_name: args.rule.clone(),
        keyguard_roles: args.scope.role.keyguard_roles(),
        owner_domains: args.owners.domains(),
        accounts: args.scope.accounts.clone(),
        page_rows: args.page_rows,
    };
    let source = Source::open(&args.evidence, &args.scope).await?;
    let now = source.as_of(args.as_of, "reporting");
    let opts = Options {
        as_of: Some(now),
        ..opts
    };
    // S3 and email need AWS even when the data comes from an evidence folder.
    let (delivery_sdk, caller) = match &source {
        Source::Live(org) => (Some(org.base.clone()), Some(org.caller.account.clone())),
        Source::Evidence(..)
            if args.s3_uri.is_some() || !args.email_to.is_empty() || lake_in_s3 =>
        {
            let org = connect(&args.scope).await?;
            (Some(org.base), Some(org.caller.account))
        }
        Source::Evidence(..) => (None, None),
    };
    let delivery = Delivery {
        out: args.out.clone(),
        s3_uri: args.s3_uri.clone(),
        email_to: args.email_to.clone(),
        sender: args.sender.clone(),
        bucket_owner: caller.and_then(|c| args.scope.buckets.report(&c)),
        security_lake: lake,
    };
    let (report, written) = match &source {
        Source::Evidence(evidence, _) => {
            deliver::produce_from_folder(
                evidence,
                &opts,
                now,
                None,
                &delivery,
                delivery_sdk.as_ref(),
                args.shard_accounts,
            )
            .await?
        }
        Source::Live(org) => {
            let inputs = {
                let trail = if args.trail == "lookup" {
                    TrailSource::LookupEvents
                } else if let Some(uri) = args.trail.strip_prefix("s3://") {
                    TrailSource::S3(uri.to_string())
                } else {
                    TrailSource::Folder(PathBuf::from(&args.trail))
                };
                let live = LiveOptions {
                    config: match &args.aggregator {
                        Some(name) => ConfigSource::Aggregator(name.clone()),
                        None => ConfigSource::PerAccount,
                    },
                    trail,
                    role: args.scope.role.spec(),
                    organization: org.caller.account.clone(),
                    trail_owner: args.scope.buckets.trail_bucket_owner.clone(),
                };
                live::inputs(
                    &org.base,
                    &org.caller,
                    org.accounts.clone(),
                    &opts,
                    &live,
                    now,
                )
                .await?
            };
            deliver::produce(inputs, &delivery, delivery_sdk.as_ref()).await?
        }
    };
    for p in &report.problems {
        eprintln!("keyguard: {p}");
    }
    for w in &written {
        println!("{w}");
    }
    Ok(ExitCode::SUCCESS)
}
