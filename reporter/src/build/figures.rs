//! The compliance figures and key-age statistics, joined and aggregated with polars.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use keyguard_core::Settings;
use keyguard_core::UserRecord;
use polars::prelude::*;

use super::thresholds::AGE_BUCKETS;
use crate::error::Result;
use crate::model::*;

pub(super) fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Per-user Config verdicts joined onto the inventory, aggregated.
#[derive(Debug, Default)]
pub(super) struct ComplianceFigures {
    pub(super) users: u64,
    pub(super) compliant: u64,
    pub(super) non_compliant: u64,
    pub(super) not_applicable: u64,
    pub(super) not_evaluated: u64,
    /// account → (users, users evaluated, last recorded ms)
    pub(super) per_account: HashMap<String, (u64, u64, Option<i64>)>,
}

impl ComplianceFigures {
    pub(super) fn pct(&self) -> Option<f64> {
        let scope = self.compliant + self.non_compliant + self.not_evaluated;
        (scope > 0).then(|| round1(100.0 * self.compliant as f64 / scope as f64))
    }
}

pub(super) fn compliance_frame(
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

#[derive(Debug, Default)]
pub(super) struct KeyFigures {
    pub(super) keys: u64,
    pub(super) active: u64,
    pub(super) mean: Option<f64>,
    pub(super) p90: Option<f64>,
    pub(super) over: u64,
    pub(super) buckets: [u64; 5],
    /// Active keys by age in days.
    pub(super) ages: std::collections::BTreeMap<i64, u64>,
}

pub(super) fn key_stats(
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
    for a in &ages {
        *fig.ages.entry(*a).or_default() += 1;
    }
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
