//! [`build()`]: inputs → every section of the report. Pure: no clock, no I/O.
//!
//! The tables are joined and aggregated with polars (lazy frames over columns built from the
//! typed inputs): users ⟕ Config results for the compliance figures and the per-account freshness,
//! the Active keys for the age statistics and the distribution. The per-row logic that needs the
//! policy (reasons, next action, the exemption ledger) runs on the typed records.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};
use keyguard_core::UserRecord;
use keyguard_core::{
    evaluate, mask_key_id, plan, with_slot_ids, Action, Compliance, Exemption, PlanNote, Reason,
    Settings,
};
use polars::prelude::*;

use crate::cloudtrail::TrailEvent;
use crate::model::*;
use crate::Result;

/// The version of `summary.json`.
pub const SNAPSHOT_VERSION: u32 = 1;
/// How many earlier periods the trend shows.
pub const TREND_POINTS: usize = 12;
/// Exemptions ending within this many days are listed.
pub const EXPIRING_WITHIN_DAYS: i64 = 30;
/// A Config evaluation older than this before the report date is flagged stale.
pub const STALE_AFTER_DAYS: i64 = 2;

/// The key-age buckets of the distribution chart: label and lowest age (days) in the bucket.
pub const AGE_BUCKETS: [(&str, i64); 5] = [
    ("0–60", 0),
    ("61–89", 61),
    ("90–99", 90),
    ("100–109", 100),
    ("≥110", 110),
];

/// Builds the report. Never fails on bad data: what cannot be used is listed in
/// [`Report::problems`]; an error is returned only if polars itself fails.
pub fn build(inputs: &Inputs) -> Result<Report> {
    let now = inputs.as_of;
    let settings = &inputs.settings;
    let mut problems: Vec<String> = inputs.trail.problems.clone();

    let readable: Vec<(&AccountInput, &Vec<UserRecord>)> = inputs
        .accounts
        .iter()
        .filter_map(|a| a.inventory.as_ref().ok().map(|inv| (a, inv)))
        .collect();
    for a in &inputs.accounts {
        if let Err(e) = &a.inventory {
            problems.push(format!(
                "account {} ({}): the inventory could not be read: {e}",
                a.account.id, a.account.name
            ));
        }
        match &a.config {
            ConfigState::RuleMissing => problems.push(format!(
                "account {}: Config rule {} does not exist; its users are not evaluated",
                a.account.id, inputs.rule_name
            )),
            ConfigState::NotCollected => problems.push(format!(
                "account {}: no Config results (config-compliance.json is missing); its users are not evaluated",
                a.account.id
            )),
            ConfigState::Unreadable(e) => problems.push(format!(
                "account {}: Config results could not be read: {e}",
                a.account.id
            )),
            ConfigState::Results(r) if r.is_empty() => problems.push(format!(
                "account {}: Config rule {} has no results yet; its users are not evaluated",
                a.account.id, inputs.rule_name
            )),
            ConfigState::Results(_) => {}
        }
    }

    let compliance = compliance_frame(inputs, &readable)?;
    let keys = key_stats(&readable, settings, now)?;
    let findings: Vec<(&AccountInput, &UserRecord, keyguard_core::Finding)> = readable
        .iter()
        .flat_map(|(a, inv)| {
            inv.iter()
                .map(move |r| (*a, r, evaluate(&r.user, &r.keys, settings, now)))
        })
        .collect();
    let exemptions_active = findings
        .iter()
        .filter(|(_, _, f)| f.exemption.is_valid())
        .count() as u64;

    let kpis = Kpis {
        accounts: inputs.accounts.len() as u64,
        accounts_read: readable.len() as u64,
        users: compliance.users,
        keys: keys.keys,
        active_keys: keys.active,
        users_compliant: compliance.compliant,
        users_non_compliant: compliance.non_compliant,
        users_not_evaluated: compliance.not_evaluated,
        compliant_pct: compliance.pct(),
        mean_key_age: keys.mean.map(round1),
        p90_key_age: keys.p90.map(round1),
        keys_over_rotation: keys.over,
        exemptions_active,
    };
    let previous_period = inputs.period.previous();
    let previous = inputs
        .history
        .iter()
        .find(|s| s.period == previous_period)
        .map(|s| &s.kpis);
    let snapshot = Snapshot {
        version: SNAPSHOT_VERSION,
        period: inputs.period,
        as_of: now,
        kpis: kpis.clone(),
    };

    let events_in_period: Vec<&TrailEvent> = inputs
        .trail
        .events
        .iter()
        .filter(|e| inputs.period.contains(e.time) && e.error_code.is_none())
        .collect();
    let (actions, action_counts) = actions(&events_in_period, &inputs.keyguard_roles);
    let users_by_name: HashMap<(&str, &str), &UserRecord> = readable
        .iter()
        .flat_map(|(a, inv)| {
            inv.iter()
                .map(move |r| ((a.account.id.as_str(), r.user.name.as_str()), r))
        })
        .collect();
    let ledger = ledger(inputs, &events_in_period, &users_by_name);
    if events_in_period.is_empty() {
        problems.push(format!(
            "no followed CloudTrail events in {} (source: {}): the actions and the exemption ledger are empty",
            inputs.period.label(),
            if inputs.trail.source.is_empty() { "none" } else { &inputs.trail.source }
        ));
    }

    Ok(Report {
        organization: inputs.organization.clone(),
        period: inputs.period,
        period_label: inputs.period.label(),
        previous_label: previous_period.label(),
        has_previous: previous.is_some(),
        as_of: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        rotation_period: settings.rotation_period,
        rule_name: inputs.rule_name.clone(),
        summary: summary_rows(&kpis, previous),
        age_buckets: AGE_BUCKETS
            .iter()
            .zip(keys.buckets)
            .map(|((label, low), n)| AgeBucket {
                label,
                keys: n,
                overdue: *low >= i64::from(settings.rotation_period),
            })
            .collect(),
        trend: trend(inputs, &kpis),
        non_compliant: non_compliant(inputs, &readable, settings, now),
        actions,
        action_counts,
        ledger,
        expiring: expiring(&findings, now),
        freshness: freshness(inputs, &compliance, &events_in_period),
        controls: controls(&findings),
        trail_source: inputs.trail.source.clone(),
        problems,
        snapshot,
    })
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

// ------------------------------------------------------------------ compliance (polars join)

/// Per-user Config verdicts joined onto the inventory, aggregated.
#[derive(Debug, Default)]
struct ComplianceFigures {
    users: u64,
    compliant: u64,
    non_compliant: u64,
    not_applicable: u64,
    not_evaluated: u64,
    /// account → (users, users evaluated, last recorded ms)
    per_account: HashMap<String, (u64, u64, Option<i64>)>,
}

impl ComplianceFigures {
    fn pct(&self) -> Option<f64> {
        let scope = self.compliant + self.non_compliant + self.not_evaluated;
        (scope > 0).then(|| round1(100.0 * self.compliant as f64 / scope as f64))
    }
}

fn compliance_frame(
    inputs: &Inputs,
    readable: &[(&AccountInput, &Vec<UserRecord>)],
) -> Result<ComplianceFigures> {
    let (mut u_acct, mut u_id) = (Vec::new(), Vec::new());
    for (a, inv) in readable {
        for r in inv.iter() {
            u_acct.push(a.account.id.clone());
            u_id.push(r.user.user_id.clone());
        }
    }
    let (mut c_acct, mut c_id, mut c_type, mut c_time) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for a in &inputs.accounts {
        if let ConfigState::Results(results) = &a.config {
            for r in results {
                let Some(c) = r.compliance else { continue };
                c_acct.push(a.account.id.clone());
                c_id.push(r.resource_id.clone());
                c_type.push(c.as_str().to_string());
                c_time.push(r.recorded.or(r.ordering).map(|t| t.timestamp_millis()));
            }
        }
    }
    let users = df!("account" => u_acct, "user_id" => u_id)?;
    let config =
        df!("account" => c_acct, "user_id" => c_id, "compliance" => c_type, "recorded" => c_time)?;
    let joined = users
        .lazy()
        .join(
            config.clone().lazy(),
            [col("account"), col("user_id")],
            [col("account"), col("user_id")],
            JoinArgs::new(JoinType::Left),
        )
        .with_column(col("compliance").fill_null(lit("NOT_EVALUATED")));
    let by_type = joined
        .clone()
        .group_by([col("compliance")])
        .agg([len().cast(DataType::Int64).alias("users")])
        .collect()?;
    let mut fig = ComplianceFigures::default();
    let types = by_type.column("compliance")?.str()?;
    let counts = by_type.column("users")?.i64()?;
    for (t, n) in types.iter().zip(counts.iter()) {
        let n = n.unwrap_or(0) as u64;
        fig.users += n;
        match t.unwrap_or("") {
            "COMPLIANT" => fig.compliant += n,
            "NON_COMPLIANT" => fig.non_compliant += n,
            "NOT_APPLICABLE" => fig.not_applicable += n,
            _ => fig.not_evaluated += n,
        }
    }
    let per_account = joined
        .group_by([col("account")])
        .agg([
            len().cast(DataType::Int64).alias("users"),
            col("compliance")
                .neq(lit("NOT_EVALUATED"))
                .cast(DataType::Int64)
                .sum()
                .alias("evaluated"),
        ])
        .join(
            config
                .lazy()
                .group_by([col("account")])
                .agg([col("recorded").max().alias("last")]),
            [col("account")],
            [col("account")],
            JoinArgs::new(JoinType::Left),
        )
        .collect()?;
    let accts = per_account.column("account")?.str()?;
    let users = per_account.column("users")?.i64()?;
    let evaluated = per_account.column("evaluated")?.i64()?;
    let last = per_account.column("last")?.i64()?;
    for (((a, u), e), l) in accts
        .iter()
        .zip(users.iter())
        .zip(evaluated.iter())
        .zip(last.iter())
    {
        if let Some(a) = a {
            fig.per_account.insert(
                a.to_string(),
                (u.unwrap_or(0) as u64, e.unwrap_or(0) as u64, l),
            );
        }
    }
    // Accounts with results but no readable inventory still have a last evaluation time.
    for a in &inputs.accounts {
        if let ConfigState::Results(results) = &a.config {
            let last = results
                .iter()
                .filter_map(|r| r.recorded.or(r.ordering))
                .map(|t| t.timestamp_millis())
                .max();
            fig.per_account
                .entry(a.account.id.clone())
                .or_insert((0, 0, last));
        }
    }
    Ok(fig)
}

// ------------------------------------------------------------------ key ages (polars aggregation)

#[derive(Debug, Default)]
struct KeyFigures {
    keys: u64,
    active: u64,
    mean: Option<f64>,
    p90: Option<f64>,
    over: u64,
    buckets: [u64; 5],
}

fn key_stats(
    readable: &[(&AccountInput, &Vec<UserRecord>)],
    settings: &Settings,
    now: DateTime<Utc>,
) -> Result<KeyFigures> {
    let mut fig = KeyFigures::default();
    let mut ages: Vec<i64> = Vec::new();
    for (_, inv) in readable {
        for r in inv.iter() {
            for k in &r.keys {
                fig.keys += 1;
                if k.is_active() {
                    ages.push(keyguard_core::days_between(k.created, now).max(0));
                }
            }
        }
    }
    fig.active = ages.len() as u64;
    if ages.is_empty() {
        return Ok(fig);
    }
    let frame = df!("age" => ages)?;
    let stats = frame
        .clone()
        .lazy()
        .select([
            col("age").cast(DataType::Float64).mean().alias("mean"),
            col("age")
                .cast(DataType::Float64)
                .quantile(lit(0.9), QuantileMethod::Linear)
                .alias("p90"),
            col("age")
                .gt_eq(lit(i64::from(settings.rotation_period)))
                .cast(DataType::Int64)
                .sum()
                .alias("over"),
        ])
        .collect()?;
    fig.mean = stats.column("mean")?.f64()?.get(0);
    fig.p90 = stats.column("p90")?.f64()?.get(0);
    fig.over = stats.column("over")?.i64()?.get(0).unwrap_or(0) as u64;
    let mut bucket = lit(0i32);
    for (i, (_, low)) in AGE_BUCKETS.iter().enumerate().skip(1) {
        bucket = when(col("age").gt_eq(lit(*low)))
            .then(lit(i as i32))
            .otherwise(bucket);
    }
    let buckets = frame
        .lazy()
        .group_by([bucket.alias("bucket")])
        .agg([len().cast(DataType::Int64).alias("keys")])
        .collect()?;
    let b = buckets.column("bucket")?.i32()?;
    let n = buckets.column("keys")?.i64()?;
    for (b, n) in b.iter().zip(n.iter()) {
        if let (Some(b), Some(n)) = (b, n) {
            fig.buckets[b as usize] = n as u64;
        }
    }
    Ok(fig)
}

// ------------------------------------------------------------------ summary and trend

fn fmt_opt(v: Option<f64>, unit: &str) -> String {
    v.map(|v| format!("{v:.1}{unit}"))
        .unwrap_or_else(|| "—".into())
}

/// Signed change with a real minus sign; `lower_is_better` decides the colour.
fn change(
    cur: Option<f64>,
    prev: Option<f64>,
    lower_is_better: Option<bool>,
    unit: &str,
    decimals: usize,
) -> (String, &'static str) {
    let (Some(c), Some(p)) = (cur, prev) else {
        return (String::new(), "");
    };
    let d = c - p;
    let text = if d.abs() < 1e-9 {
        format!("±0{unit}")
    } else if d > 0.0 {
        format!("+{d:.decimals$}{unit}")
    } else {
        format!("−{:.decimals$}{unit}", -d)
    };
    let trend = match lower_is_better {
        _ if d.abs() < 1e-9 => "same",
        Some(true) if d < 0.0 => "better",
        Some(true) => "worse",
        Some(false) if d > 0.0 => "better",
        Some(false) => "worse",
        None => "same",
    };
    (text, trend)
}

fn summary_rows(k: &Kpis, prev: Option<&Kpis>) -> Vec<SummaryRow> {
    type Get = fn(&Kpis) -> Option<f64>;
    /// metric, label, getter, lower is better (None: neutral), unit, decimals
    type MetricSpec = (
        &'static str,
        &'static str,
        Get,
        Option<bool>,
        &'static str,
        usize,
    );
    let rows: [MetricSpec; 9] = [
        (
            "accounts",
            "Accounts in scope",
            |k| Some(k.accounts as f64),
            None,
            "",
            0,
        ),
        (
            "users",
            "IAM users (fewer is better)",
            |k| Some(k.users as f64),
            Some(true),
            "",
            0,
        ),
        (
            "keys",
            "Access keys (Active and Inactive)",
            |k| Some(k.keys as f64),
            Some(true),
            "",
            0,
        ),
        (
            "compliant_pct",
            "Users compliant",
            |k| k.compliant_pct,
            Some(false),
            "%",
            1,
        ),
        (
            "users_not_evaluated",
            "Users not evaluated by Config",
            |k| Some(k.users_not_evaluated as f64),
            Some(true),
            "",
            0,
        ),
        (
            "mean_key_age",
            "Mean age of Active keys (days)",
            |k| k.mean_key_age,
            Some(true),
            "",
            1,
        ),
        (
            "p90_key_age",
            "p90 age of Active keys (days)",
            |k| k.p90_key_age,
            Some(true),
            "",
            1,
        ),
        (
            "keys_over_rotation",
            "Active keys at or over the rotation period",
            |k| Some(k.keys_over_rotation as f64),
            Some(true),
            "",
            0,
        ),
        (
            "exemptions_active",
            "Exemptions in force",
            |k| Some(k.exemptions_active as f64),
            Some(true),
            "",
            0,
        ),
    ];
    rows.iter()
        .map(|(metric, label, get, lower, unit, dec)| {
            let cur = get(k);
            let p = prev.and_then(get);
            let fmt = |v: Option<f64>| match (v, dec) {
                (None, _) => "—".to_string(),
                (Some(v), 0) => format!("{v:.0}{unit}"),
                (Some(v), _) => fmt_opt(Some(v), unit),
            };
            let (change, trend) = change(cur, p, *lower, unit, *dec);
            SummaryRow {
                metric,
                label,
                value: fmt(cur),
                previous: if prev.is_some() {
                    fmt(p)
                } else {
                    String::new()
                },
                change,
                trend,
                value_raw: cur,
                previous_raw: p,
                change_raw: cur.zip(p).map(|(c, p)| c - p),
            }
        })
        .collect()
}

fn trend(inputs: &Inputs, kpis: &Kpis) -> Vec<TrendPoint> {
    let mut by_period: BTreeMap<chrono::NaiveDate, TrendPoint> = BTreeMap::new();
    for s in &inputs.history {
        if s.period.kind == inputs.period.kind && s.period.last_day < inputs.period.first_day {
            by_period.insert(
                s.period.last_day,
                TrendPoint {
                    period: s.period.id(),
                    last_day: s.period.last_day,
                    compliant_pct: s.kpis.compliant_pct,
                },
            );
        }
    }
    let mut out: Vec<TrendPoint> = by_period.into_values().collect();
    let skip = out.len().saturating_sub(TREND_POINTS - 1);
    out.drain(..skip);
    out.push(TrendPoint {
        period: inputs.period.id(),
        last_day: inputs.period.last_day,
        compliant_pct: kpis.compliant_pct,
    });
    out
}

// ------------------------------------------------------------------ non-compliant users

fn reason_key_age(r: &Reason, rec: &UserRecord, now: DateTime<Utc>) -> Option<(String, i64)> {
    let label = match r {
        Reason::RotationDue { key, .. } | Reason::Unused { key, .. } => key.clone(),
        _ => return None,
    };
    rec.keys
        .iter()
        .find(|k| k.label() == label)
        .map(|k| (label, keyguard_core::days_between(k.created, now)))
}

fn days_out(r: &Reason, rec: &UserRecord, s: &Settings, now: DateTime<Utc>) -> Option<i64> {
    match r {
        Reason::RotationDue { age_days, .. } => Some(age_days - i64::from(s.rotation_period)),
        Reason::Unused { idle_days, .. } => Some(idle_days - i64::from(s.unused_key_period)),
        Reason::TwoActiveKeys => rec
            .keys
            .iter()
            .filter(|k| k.is_active())
            .map(|k| k.created)
            .max()
            .map(|t| keyguard_core::days_between(t, now)),
        Reason::ExemptionExpired { until, .. } => Some(keyguard_core::days_between(*until, now)),
        Reason::ExemptionMissingExpiry { .. } | Reason::ExemptionInvalidExpiry { .. } => None,
    }
}

fn non_compliant(
    inputs: &Inputs,
    readable: &[(&AccountInput, &Vec<UserRecord>)],
    s: &Settings,
    now: DateTime<Utc>,
) -> Vec<NonCompliantRow> {
    let by_id: HashMap<(&str, &str), &UserRecord> = readable
        .iter()
        .flat_map(|(a, inv)| {
            inv.iter()
                .map(move |r| ((a.account.id.as_str(), r.user.user_id.as_str()), r))
        })
        .collect();
    let mut out = Vec::new();
    for a in &inputs.accounts {
        let ConfigState::Results(results) = &a.config else {
            continue;
        };
        for res in results
            .iter()
            .filter(|r| r.compliance == Some(Compliance::NonCompliant))
        {
            let Some(rec) = by_id.get(&(a.account.id.as_str(), res.resource_id.as_str())) else {
                out.push(NonCompliantRow {
                    account: a.account.id.clone(),
                    account_name: a.account.name.clone(),
                    user: res.resource_id.clone(),
                    reason: format!(
                        "not in the inventory (deleted since?); Config: {}",
                        res.annotation.as_deref().unwrap_or("no annotation")
                    ),
                    key: String::new(),
                    age_days: None,
                    days_out_of_policy: None,
                    next_action: String::new(),
                    next_action_date: String::new(),
                });
                continue;
            };
            let finding = evaluate(&rec.user, &rec.keys, s, now);
            let reason = if finding.compliance == Compliance::NonCompliant {
                finding
                    .reasons
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            } else {
                format!(
                    "compliant on the report date; Config (stale) said: {}",
                    res.annotation.as_deref().unwrap_or("no annotation")
                )
            };
            let key_age = finding
                .reasons
                .iter()
                .find_map(|r| reason_key_age(r, rec, now));
            let oldest_active = rec
                .keys
                .iter()
                .filter(|k| k.is_active())
                .min_by_key(|k| k.created)
                .map(|k| (k.label(), keyguard_core::days_between(k.created, now)));
            let (key, age) = key_age
                .or(oldest_active)
                .map_or((String::new(), None), |(k, a)| (k, Some(a)));
            let days = finding
                .reasons
                .iter()
                .filter_map(|r| days_out(r, rec, s, now))
                .max();
            let (user, keys) = with_slot_ids(&rec.user, &rec.keys);
            let p = plan(&user, &keys, s, now);
            let next = p
                .actions
                .iter()
                .filter(|a| matches!(a.action, Action::Rotate | Action::Disable | Action::Delete))
                .min_by_key(|a| a.due);
            let (next_action, next_action_date) = match next {
                Some(a) => (
                    a.action.name(),
                    if a.due <= now {
                        format!("due now (since {})", a.due.format("%Y-%m-%d"))
                    } else {
                        a.due.format("%Y-%m-%d").to_string()
                    },
                ),
                None => match p.notes.iter().find_map(|n| match n {
                    PlanNote::RotationBlocked { until, why, .. } => Some((
                        format!("blocked: {why}"),
                        until.format("%Y-%m-%d").to_string(),
                    )),
                    _ => None,
                }) {
                    Some(n) => n,
                    None => ("none planned".into(), String::new()),
                },
            };
            out.push(NonCompliantRow {
                account: a.account.id.clone(),
                account_name: a.account.name.clone(),
                user: rec.user.name.clone(),
                reason,
                key,
                age_days: age,
                days_out_of_policy: days,
                next_action,
                next_action_date,
            });
        }
    }
    out.sort_by(|a, b| {
        b.days_out_of_policy
            .cmp(&a.days_out_of_policy)
            .then_with(|| a.account.cmp(&b.account))
            .then_with(|| a.user.cmp(&b.user))
    });
    out
}

// ------------------------------------------------------------------ actions

/// `keyguard` when `actor` is an assumed-role session of one of keyguard's roles.
fn by_kind(actor: &str, roles: &[String]) -> &'static str {
    let role = actor
        .split_once(":assumed-role/")
        .map(|(_, rest)| rest.split('/').next().unwrap_or(""));
    match role {
        Some(r) if roles.iter().any(|k| k == r) => "keyguard",
        _ => "person",
    }
}

/// The principal, shortly: `role/session` for assumed roles, the user for IAM users.
fn who(actor: &str) -> String {
    if let Some((_, rest)) = actor.split_once(":assumed-role/") {
        return rest.to_string();
    }
    if let Some((_, rest)) = actor.split_once(":user/") {
        return format!("user/{rest}");
    }
    if actor.ends_with(":root") {
        return "root".into();
    }
    if actor.is_empty() {
        "unknown".into()
    } else {
        actor.to_string()
    }
}

fn masked(id: Option<&str>) -> String {
    id.map(mask_key_id).unwrap_or_default()
}

fn actions(events: &[&TrailEvent], roles: &[String]) -> (Vec<ActionRow>, Vec<(String, u64, u64)>) {
    let mut rows = Vec::new();
    for e in events {
        let kind = by_kind(&e.actor, roles);
        let action = match (e.name.as_str(), e.status.as_deref()) {
            ("CreateAccessKey", _) if kind == "keyguard" => "rotation",
            ("CreateAccessKey", _) => "created",
            ("UpdateAccessKey", Some("Inactive")) => "disable",
            ("UpdateAccessKey", Some("Active")) => "restore",
            ("DeleteAccessKey", _) => "delete",
            _ => continue,
        };
        rows.push(ActionRow {
            time: e.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            account: e.account.clone(),
            user: e.user_name.clone().unwrap_or_default(),
            action: action.into(),
            key: masked(e.access_key_id.as_deref()),
            by_kind: kind,
            by: who(&e.actor),
        });
    }
    rows.sort_by(|a, b| (&a.time, &a.account, &a.user).cmp(&(&b.time, &b.account, &b.user)));
    let mut counts: Vec<(String, u64, u64)> =
        ["rotation", "created", "disable", "restore", "delete"]
            .iter()
            .map(|a| {
                let n = |k: &str| {
                    rows.iter()
                        .filter(|r| r.action == *a && r.by_kind == k)
                        .count() as u64
                };
                (a.to_string(), n("keyguard"), n("person"))
            })
            .collect();
    counts.retain(|c| c.0 != "created" || c.2 > 0 || c.1 > 0);
    (rows, counts)
}

// ------------------------------------------------------------------ exemption ledger

/// A user's expiry-tag values over time (`None`: removed).
type TagHistory = Vec<(DateTime<Utc>, Option<String>)>;

fn ledger(
    inputs: &Inputs,
    events: &[&TrailEvent],
    users: &HashMap<(&str, &str), &UserRecord>,
) -> Vec<LedgerRow> {
    let s = &inputs.settings;
    let group = s.exemption_group.as_str();
    let tag = s.exemption_expiry_tag.as_str();
    let expiry_change = |e: &TrailEvent| -> Option<Option<String>> {
        match e.name.as_str() {
            "TagUser" => e
                .tags
                .iter()
                .find(|(k, _)| k == tag)
                .map(|(_, v)| Some(v.clone())),
            "UntagUser" => e.tag_keys.iter().any(|k| k == tag).then_some(None),
            _ => None,
        }
    };
    // Every expiry-tag change known (all of the trail, not only the period), per user, in order.
    let mut tag_changes: HashMap<(&str, &str), TagHistory> = HashMap::new();
    for e in inputs
        .trail
        .events
        .iter()
        .filter(|e| e.error_code.is_none())
    {
        if let (Some(v), Some(u)) = (expiry_change(e), e.user_name.as_deref()) {
            tag_changes
                .entry((e.account.as_str(), u))
                .or_default()
                .push((e.time, v));
        }
    }
    for v in tag_changes.values_mut() {
        v.sort_by_key(|c| c.0);
    }
    let expiry_at = |account: &str, user: &str, t: DateTime<Utc>| -> String {
        let changes = tag_changes
            .get(&(account, user))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        if let Some((_, v)) = changes.iter().rev().find(|(ct, _)| *ct <= t) {
            return v.clone().unwrap_or_else(|| "none".into());
        }
        if changes.iter().any(|(ct, _)| *ct > t) {
            return "unknown".into(); // changed later; the value before that is not in the trail
        }
        match users.get(&(account, user)).map(|r| r.user.tag(tag)) {
            Some(Some(v)) => v.to_string(),
            Some(None) => "none".into(),
            None => "unknown".into(),
        }
    };
    let overdue_at = |account: &str, user: &str, t: DateTime<Utc>| -> bool {
        users.get(&(account, user)).is_some_and(|r| {
            r.keys.iter().any(|k| {
                k.is_active()
                    && k.created <= t
                    && keyguard_core::days_between(k.created, t) >= i64::from(s.rotation_period)
            })
        })
    };
    let in_group_now = |account: &str, user: &str| -> bool {
        users
            .get(&(account, user))
            .is_some_and(|r| r.user.groups.iter().any(|g| g == group))
    };
    let mut out = Vec::new();
    for e in events {
        let user = e.user_name.clone().unwrap_or_default();
        let (change, grant) = match e.name.as_str() {
            "AddUserToGroup" if e.group_name.as_deref() == Some(group) => {
                ("added to the exemption group".to_string(), true)
            }
            "RemoveUserFromGroup" if e.group_name.as_deref() == Some(group) => {
                ("removed from the exemption group".to_string(), false)
            }
            "CreateGroup" if e.group_name.as_deref() == Some(group) => {
                ("exemption group created".to_string(), false)
            }
            "DeleteGroup" if e.group_name.as_deref() == Some(group) => {
                ("exemption group deleted".to_string(), false)
            }
            "TagUser" | "UntagUser" => match expiry_change(e) {
                Some(Some(v)) => (
                    format!("expiry tag set to {v}"),
                    in_group_now(&e.account, &user),
                ),
                Some(None) => ("expiry tag removed".to_string(), false),
                None => continue,
            },
            _ => continue,
        };
        let is_user_change = !user.is_empty();
        out.push(LedgerRow {
            time: e.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            account: e.account.clone(),
            user: user.clone(),
            change,
            by: who(&e.actor),
            expiry_at_change: if is_user_change {
                expiry_at(&e.account, &user, e.time)
            } else {
                String::new()
            },
            granted_while_overdue: grant && overdue_at(&e.account, &user, e.time),
        });
    }
    out.sort_by(|a, b| (&a.time, &a.account, &a.user).cmp(&(&b.time, &b.account, &b.user)));
    out
}

fn expiring(
    findings: &[(&AccountInput, &UserRecord, keyguard_core::Finding)],
    now: DateTime<Utc>,
) -> Vec<ExpiringRow> {
    let horizon = now + Duration::days(EXPIRING_WITHIN_DAYS);
    let mut out: Vec<ExpiringRow> = findings
        .iter()
        .filter_map(|(a, r, f)| match f.exemption {
            Exemption::Valid { until, .. } if until <= horizon => Some(ExpiringRow {
                account: a.account.id.clone(),
                user: r.user.name.clone(),
                expires: until.format("%Y-%m-%d").to_string(),
                days_left: keyguard_core::days_between(now, until),
                oldest_key_age: r
                    .keys
                    .iter()
                    .filter(|k| k.is_active())
                    .map(|k| keyguard_core::days_between(k.created, now))
                    .max(),
            }),
            _ => None,
        })
        .collect();
    out.sort_by(|a, b| {
        a.days_left
            .cmp(&b.days_left)
            .then_with(|| a.user.cmp(&b.user))
    });
    out
}

// ------------------------------------------------------------------ freshness and controls

fn freshness(
    inputs: &Inputs,
    fig: &ComplianceFigures,
    events: &[&TrailEvent],
) -> Vec<FreshnessRow> {
    inputs
        .accounts
        .iter()
        .map(|a| {
            let (users, evaluated, last) = fig
                .per_account
                .get(&a.account.id)
                .copied()
                .unwrap_or((0, 0, None));
            let last = last.and_then(DateTime::<Utc>::from_timestamp_millis);
            FreshnessRow {
                account: a.account.id.clone(),
                account_name: a.account.name.clone(),
                inventory: match &a.inventory {
                    Ok(_) => "read".into(),
                    Err(e) => format!("could not be read: {e}"),
                },
                users: if a.inventory.is_ok() { users } else { 0 },
                config: match &a.config {
                    ConfigState::Results(r) if r.is_empty() => "no results yet".into(),
                    ConfigState::Results(_) => "evaluated".into(),
                    ConfigState::RuleMissing => format!("rule {} missing", inputs.rule_name),
                    ConfigState::NotCollected => "no results collected".into(),
                    ConfigState::Unreadable(e) => format!("could not be read: {e}"),
                },
                users_evaluated: if a.inventory.is_ok() { evaluated } else { 0 },
                last_evaluated: last
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .unwrap_or_default(),
                stale: last.is_some_and(|t| inputs.as_of - t > Duration::days(STALE_AFTER_DAYS)),
                trail_events: events.iter().filter(|e| e.account == a.account.id).count() as u64,
            }
        })
        .collect()
}

/// Which reasons fail which check.
#[derive(Clone, Copy)]
enum Check {
    Unused,
    OneActive,
    Rotated,
}

/// True when `f` is NON_COMPLIANT for a reason of `check` (a valid exemption is a documented
/// exception, not a failure).
fn fails(f: &keyguard_core::Finding, check: Check) -> bool {
    f.compliance == Compliance::NonCompliant
        && f.reasons.iter().any(|r| {
            matches!(
                (check, r),
                (Check::Unused, Reason::Unused { .. })
                    | (Check::OneActive, Reason::TwoActiveKeys)
                    | (Check::Rotated, Reason::RotationDue { .. })
            )
        })
}

/// The control catalogue: CIS numbering changed in v5.0.0 (one IAM recommendation fewer before
/// these), and Security Hub's own ids.
pub const CONTROLS: [(&str, &str, &str, &str, u8); 8] = [
    (
        "CIS AWS Foundations v1.4.0–v4.0.1",
        "1.12",
        "Ensure credentials unused for 45 days or greater are disabled",
        "UnusedKeyPeriod (Reason: unused)",
        0,
    ),
    (
        "CIS AWS Foundations v1.4.0–v4.0.1",
        "1.13",
        "Ensure there is only one active access key for any single IAM user",
        "SingleActiveKey (Reason: two active keys)",
        1,
    ),
    (
        "CIS AWS Foundations v1.4.0–v4.0.1",
        "1.14",
        "Ensure access keys are rotated every 90 days or less",
        "RotationPeriod (Reason: rotation due)",
        2,
    ),
    (
        "CIS AWS Foundations v5.0.0, v6.0.0",
        "1.11",
        "Ensure credentials unused for 45 days or more are disabled",
        "UnusedKeyPeriod (Reason: unused)",
        0,
    ),
    (
        "CIS AWS Foundations v5.0.0, v6.0.0",
        "1.12",
        "Ensure there is only one active access key for any single IAM user",
        "SingleActiveKey (Reason: two active keys)",
        1,
    ),
    (
        "CIS AWS Foundations v5.0.0, v6.0.0",
        "1.13",
        "Ensure access keys are rotated every 90 days or less",
        "RotationPeriod (Reason: rotation due)",
        2,
    ),
    (
        "AWS Security Hub",
        "IAM.3",
        "IAM users' access keys should be rotated every 90 days or less",
        "RotationPeriod (Reason: rotation due)",
        2,
    ),
    (
        "AWS Security Hub",
        "IAM.22",
        "IAM user credentials unused for 45 days should be removed",
        "UnusedKeyPeriod (Reason: unused)",
        0,
    ),
];

fn controls(findings: &[(&AccountInput, &UserRecord, keyguard_core::Finding)]) -> Vec<ControlRow> {
    CONTROLS
        .iter()
        .map(|(framework, control, title, keyguard_check, check)| {
            let check = [Check::Unused, Check::OneActive, Check::Rotated][*check as usize];
            ControlRow {
                framework,
                control,
                title,
                keyguard_check,
                failing_users: findings.iter().filter(|(_, _, f)| fails(f, check)).count() as u64,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_are_told_apart() {
        let roles = vec!["keyguard-member".to_string()];
        let kg = "arn:aws:sts::111122223333:assumed-role/keyguard-member/keyguard";
        assert_eq!(by_kind(kg, &roles), "keyguard");
        assert_eq!(who(kg), "keyguard-member/keyguard");
        let sso =
            "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Admin_0123/alice@example.com";
        assert_eq!(by_kind(sso, &roles), "person");
        assert_eq!(who("arn:aws:iam::111122223333:user/ci/bob"), "user/ci/bob");
        assert_eq!(who("arn:aws:iam::111122223333:root"), "root");
        assert_eq!(who(""), "unknown");
    }

    #[test]
    fn changes_are_signed_and_coloured() {
        assert_eq!(
            change(Some(90.0), Some(80.5), Some(false), "%", 1),
            ("+9.5%".into(), "better")
        );
        assert_eq!(
            change(Some(3.0), Some(5.0), Some(true), "", 0),
            ("−2".into(), "better")
        );
        assert_eq!(
            change(Some(5.0), Some(5.0), Some(true), "", 0),
            ("±0".into(), "same")
        );
        assert_eq!(
            change(Some(5.0), None, Some(true), "", 0),
            (String::new(), "")
        );
    }
}
