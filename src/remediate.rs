//! `keyguard plan`, `keyguard remediate` and `keyguard restore`: the remediator run locally.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};
use keyguard_aws::inventory::{read_inventory, with_key_ids, ReportPolling};
use keyguard_core::{
    mask_key_id, needs_attention, plan, with_slot_ids, Action, Plan, PlanNote, Settings,
};
use remediator::{
    restore, run_account, sweep_accounts_until, Forced, Mode, NoticeArgs, Outcome, Remediator,
    ScaleArgs, Selection, Summary,
};
use serde::Serialize;

use crate::format::{self, Format, FormatArg};
use crate::source::{connect, parse_as_of, Source};
use crate::{EvidenceArg, Policy, Scope};
use keyguard_aws::org::per_account;

/// Arguments of `keyguard plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    #[command(flatten)]
    evidence: EvidenceArg,
    #[command(flatten)]
    scope: Scope,
    #[command(flatten)]
    policy: Policy,
    /// Plan as of this date (YYYY-MM-DD or RFC 3339). Default: now, or when the evidence was
    /// collected.
    #[arg(long, value_name = "DATE", value_parser = parse_as_of)]
    as_of: Option<DateTime<Utc>>,
    /// Also list users with nothing planned in the next RotationPeriod.
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    format: FormatArg,
}

#[derive(Serialize)]
struct PlanRow<'a> {
    account: &'a str,
    #[serde(flatten)]
    plan: &'a Plan,
}

/// One planned step of one key, flat (`--format csv`).
#[derive(Serialize)]
struct PlanCsvRow<'a> {
    #[serde(serialize_with = "format::cell")]
    account: &'a str,
    #[serde(serialize_with = "format::cell")]
    user_name: &'a str,
    #[serde(serialize_with = "format::cell")]
    user_id: &'a str,
    #[serde(serialize_with = "format::cell")]
    key: String,
    #[serde(serialize_with = "format::cell")]
    action: String,
    #[serde(serialize_with = "format::cell")]
    due: String,
    due_now: bool,
    projected: bool,
    #[serde(serialize_with = "format::cell")]
    why: &'a str,
}

/// `v` with every access key id in it masked (`AKIA…WXYZ`): machine formats show no key id in
/// full, whatever field carries it.
fn masked(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::String(s) if keyguard_core::text::is_access_key_id(&s) => {
            Value::String(mask_key_id(&s))
        }
        Value::String(s) => Value::String(s),
        Value::Array(a) => Value::Array(a.into_iter().map(masked).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, masked(v))).collect()),
        other => other,
    }
}

/// A key id for display: masked when it is a real id, as-is for a slot name (`key1`).
fn shown(id: &str) -> String {
    if id.len() > 8 {
        mask_key_id(id)
    } else {
        id.to_string()
    }
}

/// Runs `keyguard plan`.
pub async fn run_plan(args: PlanArgs) -> Result<ExitCode> {
    let settings = args.policy.settings.settings().context("settings")?;
    let mut failed = Vec::new();
    let source = Source::open(&args.evidence, &args.scope).await?;
    let now = source.as_of(args.as_of, "planning");
    let mut plans = Vec::new();
    // The verdicts the plans start from, as OCSF Compliance Findings (`--format ocsf`).
    let mut findings = Vec::new();
    let ocsf = |account: &keyguard_core::Account, r: &keyguard_core::UserRecord| {
        let f = keyguard_core::evaluate(&r.user, &r.keys, &settings, now);
        keyguard_core::ocsf::compliance_finding(account, r, &f, now, env!("CARGO_PKG_VERSION"))
    };
    match &source {
        Source::Evidence(evidence, _) => {
            let filter = args.scope.filter();
            for account in evidence.accounts.iter().filter(|a| filter.admits(&a.id)) {
                match evidence.inventory(&account.id) {
                    Ok(inv) => {
                        findings.extend(inv.users.iter().map(|r| ocsf(account, r)));
                        plans.extend(inv.users.iter().map(|r| {
                            let (user, keys) = with_slot_ids(&r.user, &r.keys);
                            (account.id.clone(), plan(&user, &keys, &settings, now))
                        }))
                    }
                    Err(e) => failed.push((account.id.clone(), e.to_string())),
                }
            }
        }
        Source::Live(org) => {
            let role = args.scope.role.spec();
            let settings = &settings;
            let results = per_account(org.accounts.clone(), |account| {
                let role = &role;
                async move {
                    let cfg =
                        keyguard_aws::sdk::for_account(&org.base, &org.caller, &account.id, role)
                            .await
                            .map_err(|e| e.to_string())?;
                    let iam = aws_sdk_iam::Client::new(&cfg);
                    let inv = read_inventory(&iam, &account.id, ReportPolling::default())
                        .await
                        .map_err(|e| e.to_string())?;
                    let mut plans = Vec::new();
                    let mut records = Vec::new();
                    for r in inv.users {
                        // Real key ids (one read call) only where something may be due.
                        let keys = if needs_attention(&r.user, &r.keys, settings, now) {
                            with_key_ids(&iam, &r).await.map_err(|e| e.to_string())?
                        } else {
                            None
                        };
                        let (user, keys) =
                            with_slot_ids(&r.user, keys.as_deref().unwrap_or(&r.keys));
                        plans.push(plan(&user, &keys, settings, now));
                        records.push(r);
                    }
                    Ok((plans, records))
                }
            })
            .await;
            for (account, result) in results {
                match result {
                    Ok((p, records)) => {
                        findings.extend(records.iter().map(|r| ocsf(&account, r)));
                        plans.extend(p.into_iter().map(|p| (account.id.clone(), p)))
                    }
                    Err(e) => failed.push((account.id.clone(), e)),
                }
            }
        }
    }
    print_plan_as(
        args.format.get(),
        &plans,
        &findings,
        &settings,
        now,
        args.all,
    )?;
    for (account, e) in &failed {
        eprintln!("keyguard: account {account} could not be read: {e}");
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Prints the plans in `format` (`--format ocsf`: the verdicts they start from).
fn print_plan_as(
    format: Format,
    plans: &[(String, Plan)],
    findings: &[serde_json::Value],
    settings: &Settings,
    now: DateTime<Utc>,
    all: bool,
) -> Result<()> {
    match format {
        Format::Table => print_plans(plans, settings, now, all),
        Format::Json => {
            let rows: Vec<serde_json::Value> = plans
                .iter()
                .map(|(a, p)| {
                    serde_json::to_value(PlanRow {
                        account: a,
                        plan: p,
                    })
                    .map(masked)
                })
                .collect::<serde_json::Result<_>>()?;
            format::print_json(&rows)?;
        }
        Format::Csv => {
            let rows: Vec<PlanCsvRow> = plans
                .iter()
                .flat_map(|(account, p)| {
                    p.actions.iter().map(move |a| PlanCsvRow {
                        account,
                        user_name: &p.user_name,
                        user_id: &p.user_id,
                        key: shown(&a.key_id),
                        action: a.action.name(),
                        due: a.due.to_rfc3339(),
                        due_now: a.is_due(now),
                        projected: a.projected,
                        why: &a.why,
                    })
                })
                .collect();
            format::print_csv(
                &rows,
                &[
                    "account",
                    "user_name",
                    "user_id",
                    "key",
                    "action",
                    "due",
                    "due_now",
                    "projected",
                    "why",
                ],
            )?;
        }
        Format::Ocsf => format::print_json(findings)?,
    }
    Ok(())
}

fn print_plans(plans: &[(String, Plan)], settings: &Settings, now: DateTime<Utc>, all: bool) {
    let horizon = now + chrono::Duration::days(settings.rotation_period.into());
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    table.set_header(["account", "user", "key", "action", "when", "why"]);
    let mut due_now = 0;
    for (account, p) in plans {
        let mut rows = 0;
        for a in &p.actions {
            if matches!(a.action, Action::Notify { .. } | Action::Warn { .. }) || a.due > horizon {
                continue;
            }
            let when = if a.is_due(now) {
                due_now += 1;
                "due now".to_string()
            } else if a.projected {
                format!("~{} (after the step before)", a.due.format("%Y-%m-%d"))
            } else {
                a.due.format("%Y-%m-%d").to_string()
            };
            table.add_row([
                account.clone(),
                p.user_name.clone(),
                shown(&a.key_id),
                a.action.name(),
                when,
                a.why.clone(),
            ]);
            rows += 1;
        }
        for n in &p.notes {
            let (key, text) = match n {
                PlanNote::RotationBlocked { key_id, until, why } => (
                    shown(key_id),
                    format!("rotation blocked until {}: {why}", until.format("%Y-%m-%d")),
                ),
                PlanNote::Exempt { until } => (
                    String::new(),
                    format!("exempt until {}", until.format("%Y-%m-%d")),
                ),
                PlanNote::KeyIdUnknown { slot } => (format!("key{slot}"), "key id unknown".into()),
            };
            table.add_row([
                account.clone(),
                p.user_name.clone(),
                key,
                "note".into(),
                String::new(),
                text,
            ]);
            rows += 1;
        }
        if rows == 0 && all {
            table.add_row([
                account.clone(),
                p.user_name.clone(),
                String::new(),
                "nothing".into(),
                String::new(),
                String::new(),
            ]);
        }
    }
    println!("{table}");
    println!(
        "{due_now} step(s) due now for {} user(s), as of {}",
        plans.len(),
        now.format("%Y-%m-%d %H:%M UTC")
    );
}

/// Arguments of `keyguard remediate`.
#[derive(Debug, clap::Args)]
pub struct RemediateArgs {
    #[command(flatten)]
    scope: Scope,
    #[command(flatten)]
    policy: Policy,
    #[command(flatten)]
    notices: NoticeArgs,
    /// Only this user (by name; needs exactly one --account).
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
    /// Rotate the user's only key now, due or not (a departing colleague, a key to retire early);
    /// the old key then follows the policy. Not for a leak: see --leaked. Needs --user.
    #[arg(long, requires = "user", conflicts_with = "leaked")]
    force_rotate: bool,
    /// The user's key leaked: rotate it at once with the successor readable only by the
    /// configured readers (--secret-readers; never the user), and disable the leaked key at once.
    /// Needs --user.
    #[arg(long, requires = "user")]
    leaked: bool,
    /// The leaked key, when the user has two active keys (with --leaked).
    #[arg(long, value_name = "AKIA…", requires = "leaked")]
    key: Option<String>,
    /// Run as of this date. Only with DryRun: a preview of what a later run would do.
    #[arg(long, value_name = "DATE", value_parser = parse_as_of)]
    as_of: Option<DateTime<Utc>>,
    /// Stop taking users this long after the start (e.g. `10m`, `900s`, `1h`), less the deadline
    /// margin: never start a rotation the run may not finish. Accounts it stopped in say so.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    max_duration: Option<std::time::Duration>,
    #[command(flatten)]
    scale: ScaleArgs,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// `90s`, `15m`, `2h` or plain seconds.
fn parse_duration(s: &str) -> std::result::Result<std::time::Duration, String> {
    let s = s.trim();
    let (n, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (90s, 15m, 2h)"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("{s:?} is not a duration (90s, 15m, 2h)")),
    };
    Ok(std::time::Duration::from_secs(secs))
}

/// Runs `keyguard remediate`.
pub async fn run_remediate(args: RemediateArgs) -> Result<ExitCode> {
    let settings = args.policy.settings.settings().context("settings")?;
    if args.as_of.is_some() && !settings.dry_run {
        bail!("--as-of previews a later run and works only with DryRun on (--dry-run true)");
    }
    if args.user.is_some() && args.scope.accounts.len() != 1 {
        bail!("--user needs exactly one --account");
    }
    if !settings.dry_run {
        args.scale.lease_or_bail()?;
    }
    let notices = args.notices.config()?;
    let now = args.as_of.unwrap_or_else(Utc::now);
    let org = connect(&args.scope).await?;
    let accounts = if args.scope.accounts.is_empty() {
        org.accounts // listed by the organization, names and emails with them
    } else {
        named_accounts(&org.base, &args.scope.role.spec(), org.accounts).await
    };
    let started = std::time::Instant::now();
    let mut r = Remediator::new(org.base, org.caller, settings, args.scope.role.spec());
    r.notices = notices;
    r.kms_key_id = args.notices.secret_kms_key_id.clone();
    r.secret_readers = args.notices.secret_readers.clone();
    r.secret_delete_after_use_days = args.notices.secret_delete_days_after_use;
    r.adopt_secrets = args.notices.adopt_aws_samples_secrets;
    r.key_usage = args.notices.key_usage;
    args.scale.apply(&mut r);
    let deadline = args.max_duration.map(|d| started + d);
    let summary = match &args.user {
        Some(user) => {
            let account = accounts.into_iter().next().expect("one account");
            let report = run_account(
                &r,
                account,
                &Selection::Name(user.clone()),
                &if args.leaked {
                    Forced::Leaked {
                        key: args.key.clone(),
                        rotate: true,
                        because: None,
                    }
                } else if args.force_rotate {
                    Forced::Rotate
                } else {
                    Forced::No
                },
                Mode::Auto,
                now,
            )
            .await;
            Summary {
                dry_run: r.settings.dry_run,
                at: now,
                accounts: vec![report],
                notes: vec![],
            }
        }
        None => sweep_accounts_until(&r, accounts, Mode::Auto, now, deadline).await?,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&summary);
    }
    let deferred = summary
        .accounts
        .iter()
        .filter(|a| a.deferred.is_some())
        .count();
    if deferred > 0 {
        eprintln!(
            "keyguard: stopped taking users before --max-duration in {deferred} account(s); run again to finish them"
        );
    }
    Ok(if summary.failures() > 0 || deferred > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The accounts named with `--account`, with their names and emails from the organization (one
/// `DescribeAccount` each, through `--org-role-arn` when given), so that an owner without an
/// address of its own is told at the account's email as in an organization-wide run; an account
/// the organization cannot describe keeps its id alone (the admin is told).
async fn named_accounts(
    base: &aws_config::SdkConfig,
    role: &keyguard_aws::sdk::RoleSpec,
    accounts: Vec<keyguard_core::Account>,
) -> Vec<keyguard_core::Account> {
    keyguard_aws::org::per_account(accounts, |a| async move {
        Ok::<_, std::convert::Infallible>(keyguard_aws::org::named(base, role, a).await)
    })
    .await
    .into_iter()
    .map(|(_, named)| match named {
        Ok(account) => account,
        Err(never) => match never {},
    })
    .collect()
}

fn print_summary(s: &Summary) {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    table.set_header(["account", "user", "key", "action", "outcome", "date", "why"]);
    for a in &s.accounts {
        for r in &a.actions {
            table.add_row([
                a.account.clone(),
                r.user.clone(),
                r.key.clone(),
                r.action.to_string(),
                r.outcome.as_str().to_string(),
                r.date.format("%Y-%m-%d").to_string(),
                r.why.clone(),
            ]);
        }
    }
    println!("{table}");
    for a in &s.accounts {
        for n in &a.notes {
            println!("note: {}: {n}", a.account);
        }
        if let Some(e) = &a.error {
            eprintln!(
                "keyguard: account {} could not be processed: {e}",
                a.account
            );
        }
    }
    println!(
        "{}{} done, {} previewed, {} warned, {} skipped, {} failed in {} account(s)",
        if s.dry_run {
            "DryRun (nothing written): "
        } else {
            ""
        },
        s.count(Outcome::Done),
        s.count(Outcome::Preview),
        s.count(Outcome::Warned),
        s.count(Outcome::Skipped),
        s.failures(),
        s.accounts.len()
    );
}

/// Arguments of `keyguard restore`.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The account.
    #[arg(long, value_name = "ID")]
    account: String,
    /// The IAM user name.
    #[arg(long, value_name = "NAME")]
    user: String,
    /// The access key id to re-enable.
    #[arg(long, value_name = "AKIA…")]
    key: String,
    /// Only check that the key can be restored.
    #[arg(long)]
    check: bool,
    #[command(flatten)]
    policy: Policy,
    #[command(flatten)]
    role: keyguard_aws::settings_env::RoleArgs,
    /// The state table holding the users' leases and keyguard's records (or --no-lease).
    #[command(flatten)]
    scale: ScaleArgs,
    /// The central stack's event bus (`EventBusName`): the restore is published as a `keyguard
    /// key action` event, like the remediator's steps.
    #[arg(long, env = "EVENT_BUS", value_name = "BUS")]
    event_bus: Option<String>,
}

/// Runs `keyguard restore`.
pub async fn run_restore(args: RestoreArgs) -> Result<ExitCode> {
    let settings = args.policy.settings.settings().context("settings")?;
    if !args.check {
        args.scale.lease_or_bail()?;
    }
    let scope = Scope {
        accounts: vec![args.account.clone()],
        exclude: vec![],
        role: args.role.clone(),
        buckets: Default::default(),
    };
    let org = connect(&scope).await?;
    let mut r = Remediator::new(org.base, org.caller, settings, args.role.spec());
    args.scale.apply(&mut r);
    r.notices.event_bus = args.event_bus.clone().filter(|b| !b.is_empty());
    let record = restore(
        &r,
        &args.account,
        &args.user,
        &args.key,
        args.check,
        Utc::now(),
    )
    .await
    .with_context(|| format!("restore {} of {}", mask_key_id(&args.key), args.user))?;
    println!(
        "{} {} of {}: {}",
        if args.check {
            "can restore"
        } else {
            "restored"
        },
        record.key,
        record.user,
        record.why
    );
    Ok(ExitCode::SUCCESS)
}
