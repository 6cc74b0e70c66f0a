//! The summary table (each figure with its change against the previous period) and the trend.

use std::collections::BTreeMap;

use super::thresholds::TREND_POINTS;
use crate::model::*;

pub(super) fn fmt_opt(v: Option<f64>, unit: &str) -> String {
    v.map(|v| format!("{v:.1}{unit}"))
        .unwrap_or_else(|| "—".into())
}

/// Signed change with a real minus sign; `lower_is_better` decides the colour.
pub(super) fn change(
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
/// The summary's metrics, in the order of the table.
const METRICS: [MetricSpec; 11] = [
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
    (
        "secrets_kept",
        "Secrets keyguard keeps (one per rotated user)",
        |k| k.secrets_kept.map(|n| n as f64),
        None,
        "",
        0,
    ),
    (
        "secrets_monthly_usd",
        "Their cost a month (USD, $0.40 a secret)",
        |k| k.secrets_monthly_usd,
        None,
        "",
        2,
    ),
];

pub(super) fn summary_rows(k: &Kpis, prev: Option<&Kpis>) -> Vec<SummaryRow> {
    METRICS
        .iter()
        .map(|(metric, label, get, lower, unit, dec)| {
            let cur = get(k);
            let p = prev.and_then(get);
            let fmt = |v: Option<f64>| match (v, dec) {
                (None, _) => "—".to_string(),
                (Some(v), 0) => format!("{v:.0}{unit}"),
                (Some(v), 2) => format!("{v:.2}{unit}"),
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

pub(super) fn trend(inputs: &Inputs, kpis: &Kpis) -> Vec<TrendPoint> {
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
