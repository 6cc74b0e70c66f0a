//! `keyguard audit`: the Config rule's verdicts for an organization, as a table, JSON or CSV.

use std::process::ExitCode;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};
use keyguard_aws::evidence::Evidence;
use keyguard_aws::inventory::{
    evaluate_inventory, read_inventory, root_evaluated, Evaluated, ReportPolling,
};
use keyguard_aws::org::per_account;
use keyguard_aws::sdk;
use keyguard_core::{Account, Compliance, Settings};
use serde::Serialize;

use crate::format::{self, Format, FormatArg};
use crate::source::{parse_as_of, Live, Source};
use crate::{EvidenceArg, Policy, Scope};

/// Arguments of `keyguard audit`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    #[command(flatten)]
    evidence: EvidenceArg,
    #[command(flatten)]
    scope: Scope,
    #[command(flatten)]
    policy: Policy,
    /// Evaluate as of this date (YYYY-MM-DD, start of the day UTC, or RFC 3339). Default: now, or
    /// for an evidence folder the moment it was collected.
    #[arg(long, value_name = "DATE", value_parser = parse_as_of)]
    as_of: Option<DateTime<Utc>>,
    #[command(flatten)]
    format: FormatArg,
    #[command(flatten)]
    security_lake: reporter::security_lake::Args,
}

/// One account's outcome: its findings, or why it could not be read.
pub struct AccountOutcome {
    /// The account.
    pub account: Account,
    /// Findings, or the error that stopped this account (the others go on).
    pub result: std::result::Result<Vec<Evaluated>, String>,
}

/// One line of `--format json` output.
#[derive(Serialize)]
struct Row<'a> {
    account: &'a str,
    account_name: &'a str,
    #[serde(flatten)]
    finding: &'a keyguard_core::Finding,
}

/// One line of `--format csv` output (flat: the reasons joined by `; `).
#[derive(Serialize)]
struct CsvRow<'a> {
    #[serde(serialize_with = "format::cell")]
    account: &'a str,
    #[serde(serialize_with = "format::cell")]
    account_name: &'a str,
    #[serde(serialize_with = "format::cell")]
    user_name: &'a str,
    #[serde(serialize_with = "format::cell")]
    user_path: &'a str,
    #[serde(serialize_with = "format::cell")]
    user_id: &'a str,
    #[serde(serialize_with = "format::cell")]
    compliance: String,
    #[serde(serialize_with = "format::cell")]
    reasons: String,
    #[serde(serialize_with = "format::cell")]
    exemption: &'static str,
    #[serde(serialize_with = "format::cell")]
    annotation: &'a str,
}

pub async fn run(args: AuditArgs) -> Result<ExitCode> {
    let settings = args.policy.settings.settings().context("settings")?;
    let lake = args.security_lake.destination()?;
    let source = Source::open(&args.evidence, &args.scope).await?;
    let now = source.as_of(args.as_of, "evaluating");
    let outcomes = match &source {
        Source::Evidence(evidence, _) => from_evidence(evidence, &args.scope, &settings, now),
        Source::Live(org) => live(org, &args.scope, &settings, now).await,
    };
    let failed = outcomes.iter().filter(|o| o.result.is_err()).count();
    match args.format.get() {
        Format::Table => print_table(&outcomes, now),
        Format::Json => format::print_json(&rows(&outcomes))?,
        Format::Csv => format::print_csv(
            &csv_rows(&outcomes),
            &[
                "account",
                "account_name",
                "user_name",
                "user_path",
                "user_id",
                "compliance",
                "reasons",
                "exemption",
                "annotation",
            ],
        )?,
        Format::Ocsf => format::print_json(&ocsf(&outcomes, now))?,
    }
    let mut lake_failed = false;
    if let Some(lake) = lake {
        let sdk = match (&source, &lake.target) {
            (Source::Live(org), _) => Some(org.base.clone()),
            (_, reporter::security_lake::Target::S3 { .. }) => Some(sdk::load().await),
            _ => None,
        };
        match lake.deliver(ocsf_each(&outcomes, now), sdk.as_ref()).await {
            Ok(written) => {
                for p in &written.problems {
                    eprintln!("keyguard: Security Lake: {p}; left out");
                }
                lake_failed = !written.problems.is_empty();
                eprintln!(
                    "keyguard: {} findings written to Security Lake in {} object(s) (one per account and event day)",
                    written.rows,
                    written.objects.len()
                );
            }
            Err(e) => {
                lake_failed = true;
                eprintln!(
                    "keyguard: Security Lake not written: {}",
                    keyguard_aws::chain(&e)
                );
            }
        }
    }
    for o in outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().err().map(|e| (o, e)))
    {
        eprintln!(
            "keyguard: account {} could not be read: {}",
            o.0.account.id, o.1
        );
    }
    Ok(if failed > 0 || lake_failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn from_evidence(
    evidence: &Evidence,
    scope: &Scope,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Vec<AccountOutcome> {
    let filter = scope.filter();
    evidence
        .accounts
        .iter()
        .filter(|a| filter.admits(&a.id))
        .map(|account| AccountOutcome {
            account: account.clone(),
            result: evidence
                .inventory(&account.id)
                .map(|inv| {
                    let root = root_evaluated(&inv, now);
                    inv.users
                        .into_iter()
                        .map(|record| Evaluated::of(record, settings, now))
                        .chain(root)
                        .collect()
                })
                .map_err(|e| e.to_string()),
        })
        .collect()
}

async fn live(
    org: &Live,
    scope: &Scope,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Vec<AccountOutcome> {
    let role = scope.role.spec();
    let results = per_account(org.accounts.clone(), |account| {
        let role = &role;
        async move {
            let cfg = sdk::for_account(&org.base, &org.caller, &account.id, role)
                .await
                .map_err(|e| e.to_string())?;
            let iam = aws_sdk_iam::Client::new(&cfg);
            let inv = read_inventory(&iam, &account.id, ReportPolling::default())
                .await
                .map_err(|e| e.to_string())?;
            let root = root_evaluated(&inv, now);
            let mut found = evaluate_inventory(&iam, inv, settings, now)
                .await
                .map_err(|e| e.to_string())?;
            found.extend(root);
            Ok(found)
        }
    })
    .await;
    results
        .into_iter()
        .map(|(account, result)| AccountOutcome { account, result })
        .collect()
}

fn order(c: Compliance) -> u8 {
    match c {
        Compliance::NonCompliant => 0,
        Compliance::Compliant => 1,
        Compliance::NotApplicable => 2,
    }
}

fn print_table(outcomes: &[AccountOutcome], now: DateTime<Utc>) {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    table.set_header(["account", "user", "verdict", "why"]);
    let (mut compliant, mut non, mut roots) = (0, 0, 0);
    for o in outcomes {
        let Ok(found) = &o.result else { continue };
        let mut found: Vec<&Evaluated> = found.iter().collect();
        found.sort_by_key(|e| (order(e.finding.compliance), e.finding.user_name.clone()));
        for e in found {
            match e.finding.compliance {
                _ if e.finding.user_name == keyguard_core::ROOT_USER => roots += 1,
                Compliance::Compliant => compliant += 1,
                Compliance::NonCompliant => non += 1,
                Compliance::NotApplicable => {}
            }
            let user = if e.record.user.path == "/" {
                e.record.user.name.clone()
            } else {
                format!("{}{}", e.record.user.path, e.record.user.name)
            };
            table.add_row([
                o.account.id.clone(),
                user,
                e.finding.compliance.to_string(),
                e.finding.annotation.clone(),
            ]);
        }
    }
    println!("{table}");
    let read = outcomes.iter().filter(|o| o.result.is_ok()).count();
    let roots = match roots {
        0 => String::new(),
        n => format!(" ({n} with an active ROOT access key: CIS 1.4)"),
    };
    println!(
        "{non} NON_COMPLIANT, {compliant} COMPLIANT users in {read} account(s){roots}, as of {}",
        now.format("%Y-%m-%d %H:%M UTC")
    );
}

/// One OCSF Compliance Finding per evaluated user (the root user's included).
pub fn ocsf(outcomes: &[AccountOutcome], now: DateTime<Utc>) -> Vec<serde_json::Value> {
    ocsf_each(outcomes, now).collect()
}

/// [`ocsf`], one finding at a time.
fn ocsf_each(
    outcomes: &[AccountOutcome],
    now: DateTime<Utc>,
) -> impl Iterator<Item = serde_json::Value> + '_ {
    outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().ok().map(|found| (o, found)))
        .flat_map(move |(o, found)| {
            found.iter().map(move |e| {
                keyguard_core::ocsf::compliance_finding(
                    &o.account,
                    &e.record,
                    &e.finding,
                    now,
                    env!("CARGO_PKG_VERSION"),
                )
            })
        })
}

fn rows(outcomes: &[AccountOutcome]) -> Vec<Row<'_>> {
    let mut rows = Vec::new();
    for o in outcomes {
        if let Ok(found) = &o.result {
            rows.extend(found.iter().map(|e| Row {
                account: &o.account.id,
                account_name: &o.account.name,
                finding: &e.finding,
            }));
        }
    }
    rows
}

fn csv_rows(outcomes: &[AccountOutcome]) -> Vec<CsvRow<'_>> {
    let mut rows = Vec::new();
    for o in outcomes {
        if let Ok(found) = &o.result {
            rows.extend(found.iter().map(|e| {
                CsvRow {
                    account: &o.account.id,
                    account_name: &o.account.name,
                    user_name: &e.finding.user_name,
                    user_path: &e.record.user.path,
                    user_id: &e.finding.user_id,
                    compliance: e.finding.compliance.to_string(),
                    reasons: e
                        .finding
                        .reasons
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; "),
                    exemption: match &e.finding.exemption {
                        keyguard_core::Exemption::None => "none",
                        keyguard_core::Exemption::Valid { .. } => "valid",
                        keyguard_core::Exemption::MissingExpiry { .. } => "missing_expiry",
                        keyguard_core::Exemption::InvalidExpiry { .. } => "invalid_expiry",
                        keyguard_core::Exemption::Expired { .. } => "expired",
                        keyguard_core::Exemption::TooLong { .. } => "too_long",
                    },
                    annotation: &e.finding.annotation,
                }
            }));
        }
    }
    rows
}
