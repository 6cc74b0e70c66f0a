//! The figures of reports built on shards of the accounts, merged into the organization's: sums
//! of the counts, the key-age statistics from the merged distribution (exactly what one build
//! computes: the same mean and linear-interpolated 90th percentile), the summary and the trend
//! recomputed from them. Pure; the per-user tables are the caller's (`crate::sharded`).

use std::collections::BTreeMap;

use super::figures::round1;
use super::summary::summary_rows;
use super::trail::ACTIONS;
use crate::model::*;

/// `into` (the first shard's report, or the merge so far) with `shard`'s figures added.
pub fn add_figures(into: &mut Report, shard: &Report) {
    let (a, b) = (&mut into.snapshot.kpis, &shard.snapshot.kpis);
    a.accounts += b.accounts;
    a.accounts_read += b.accounts_read;
    a.users += b.users;
    a.keys += b.keys;
    a.active_keys += b.active_keys;
    a.users_compliant += b.users_compliant;
    a.users_non_compliant += b.users_non_compliant;
    a.users_not_evaluated += b.users_not_evaluated;
    a.keys_over_rotation += b.keys_over_rotation;
    a.exemptions_active += b.exemptions_active;
    a.secrets_kept = match (a.secrets_kept, b.secrets_kept) {
        (None, None) => None,
        (x, y) => Some(x.unwrap_or(0) + y.unwrap_or(0)),
    };
    for (days, n) in &shard.key_age_days {
        *into.key_age_days.entry(*days).or_default() += n;
    }
    for (x, y) in into.age_buckets.iter_mut().zip(&shard.age_buckets) {
        x.keys += y.keys;
    }
    for (x, y) in into.controls.iter_mut().zip(&shard.controls) {
        x.failing_users += y.failing_users;
    }
    let mut counts: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (name, k, p) in into.action_counts.iter().chain(&shard.action_counts) {
        let c = counts.entry(name.clone()).or_default();
        c.0 += k;
        c.1 += p;
    }
    into.action_counts = ACTIONS
        .iter()
        .filter_map(|a| counts.get(*a).map(|(k, p)| (a.to_string(), *k, *p)))
        .collect();
}

/// The mean and the 90th percentile (linear interpolation between the closest ranks, as
/// polars' `quantile(0.9, Linear)`) of a distribution of days.
fn mean_p90(days: &BTreeMap<i64, u64>) -> (Option<f64>, Option<f64>) {
    let n: u64 = days.values().sum();
    if n == 0 {
        return (None, None);
    }
    let sum: i128 = days
        .iter()
        .map(|(d, c)| i128::from(*d) * i128::from(*c))
        .sum();
    let mean = sum as f64 / n as f64;
    let rank = 0.9 * (n - 1) as f64;
    let (lo, hi) = (rank.floor() as u64, rank.ceil() as u64);
    let nth = |k: u64| {
        let mut seen = 0;
        for (d, c) in days {
            seen += c;
            if k < seen {
                return *d as f64;
            }
        }
        unreachable!("k < n")
    };
    let (vlo, vhi) = (nth(lo), nth(hi));
    (Some(mean), Some(vlo + (rank - lo as f64) * (vhi - vlo)))
}

/// The merged report's derived figures: the percentages, the key-age statistics, the summary
/// against `previous` and this period's trend point.
pub fn finish_figures(r: &mut Report, previous: Option<&Kpis>) {
    let k = &mut r.snapshot.kpis;
    let scope = k.users_compliant + k.users_non_compliant + k.users_not_evaluated;
    k.compliant_pct = (scope > 0).then(|| round1(100.0 * k.users_compliant as f64 / scope as f64));
    let (mean, p90) = mean_p90(&r.key_age_days);
    k.mean_key_age = mean.map(round1);
    k.p90_key_age = p90.map(round1);
    k.secrets_monthly_usd = k.secrets_kept.map(|n| {
        (n as f64 * keyguard_aws::secrets::MONTHLY_USD_PER_SECRET * 100.0).round() / 100.0
    });
    r.summary = summary_rows(&r.snapshot.kpis, previous);
    if let Some(last) = r.trend.last_mut() {
        last.compliant_pct = r.snapshot.kpis.compliant_pct;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_90th_percentile_interpolates_as_polars_does() {
        // 1..=10: rank 8.1 → 9 + 0.1 × (10 − 9)
        let days: BTreeMap<i64, u64> = (1..=10).map(|d| (d, 1)).collect();
        let (mean, p90) = mean_p90(&days);
        assert_eq!(mean, Some(5.5));
        assert!((p90.unwrap() - 9.1).abs() < 1e-9);
        let one: BTreeMap<i64, u64> = [(97, 3)].into();
        assert_eq!(mean_p90(&one), (Some(97.0), Some(97.0)));
        assert_eq!(mean_p90(&BTreeMap::new()), (None, None));
    }
}
