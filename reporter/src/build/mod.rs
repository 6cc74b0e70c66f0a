//! [`build()`]: inputs → every section of the report. Pure: no clock, no I/O.
//!
//! The tables are joined and aggregated with polars (lazy frames over columns built from the
//! typed inputs): users ⟕ Config results for the compliance figures and the per-account freshness,
//! the Active keys for the age statistics and the distribution. The per-row logic that needs the
//! policy (reasons, next action, the exemption ledger) runs on the typed records.

mod controls;
mod figures;
mod key_usage;
pub mod merge;
mod owners;
mod pack;
pub(crate) use pack::missing_pack_problem;
mod summary;
mod thresholds;
mod trail;
mod users;
mod verdicts;

use std::collections::HashMap;

use keyguard_core::evaluate;
use keyguard_core::UserRecord;

use crate::cloudtrail::TrailEvent;
use crate::error::Result;
use crate::model::*;

use controls::{controls, freshness};
use figures::{compliance_frame, key_stats, round1};
use summary::{summary_rows, trend};
use trail::{actions, expiring, ledger};
use users::non_compliant;

pub use thresholds::{
    AGE_BUCKETS, EXPIRING_WITHIN_DAYS, SNAPSHOT_VERSION, STALE_AFTER_DAYS, TREND_POINTS,
};

/// Builds the report. Never fails on bad data: what cannot be used is listed in
/// [`Report::problems`]; an error is returned only if polars itself fails.
pub fn build(inputs: &Inputs) -> Result<Report> {
    let now = inputs.as_of;
    let settings = &inputs.settings;
    // Where each kind of problem ends in `problems` (Report::problem_ends).
    let mut ends = [0usize; PROBLEM_KINDS];
    let mut problems = first_problems(inputs, &mut ends);
    let readable: Vec<(&AccountInput, &Vec<UserRecord>)> = inputs
        .accounts
        .iter()
        .filter_map(|a| a.inventory.as_ref().ok().map(|inv| (a, inv)))
        .collect();

    let compliance = compliance_frame(inputs, &readable)?;
    let keys = key_stats(&readable, settings, now)?;
    // The root users with an active access key: findings of their own (never planned).
    let roots: Vec<(&AccountInput, UserRecord, keyguard_core::Finding)> = readable
        .iter()
        .filter_map(|(a, _)| {
            let f = keyguard_core::evaluate_root(&a.root_keys, now)?;
            Some((*a, root_record(a), f))
        })
        .collect();
    let findings: Vec<(&AccountInput, &UserRecord, keyguard_core::Finding)> = readable
        .iter()
        .flat_map(|(a, inv)| {
            inv.iter()
                .map(move |r| (*a, r, evaluate(&r.user, &r.keys, settings, now)))
        })
        .chain(roots.iter().map(|(a, r, f)| (*a, r, f.clone())))
        .collect();
    let exemptions_active = findings
        .iter()
        .filter(|(_, _, f)| f.exemption.is_valid())
        .count() as u64;

    let kpis = kpis_of(
        inputs,
        readable.len(),
        &compliance,
        &keys,
        exemptions_active,
    );
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
    problems.extend(
        events_in_period
            .is_empty()
            .then(|| no_events_problem(inputs)),
    );
    ends[2] = problems.len();

    let (key_usage, stalled) = key_usage::key_usage(&readable, &inputs.trail.usage, settings, now);
    let (disagreements, outside_owners) = trust(inputs, &readable, &mut problems, &mut ends);
    let (pack, pack_problems) = pack::pack_rows(&readable, &inputs.rule_name, settings, now);
    problems.extend(pack_problems);
    ends[5] = problems.len();
    Ok(Report {
        key_usage,
        stalled,
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
        non_compliant: non_compliant(inputs, &readable, settings, now)
            .into_iter()
            .chain(roots.iter().map(|(a, _, f)| root_row(a, f, now)))
            .collect(),
        disagreements,
        pack,
        outside_owners,
        owners_checked: inputs.owner_domains.is_some(),
        page_rows: inputs.page_rows,
        actions,
        action_counts,
        ledger,
        expiring: expiring(&findings, now),
        freshness: freshness(inputs, &compliance, &events_in_period),
        controls: controls(&findings),
        trail_source: inputs.trail.source.clone(),
        problems,
        snapshot,
        ocsf: ocsf_of(&findings, now),
        key_age_days: keys.ages.clone(),
        problem_ends: ends,
        totals: std::collections::BTreeMap::new(),
    })
}

/// Every finding as an OCSF Compliance Finding, each as its JSON text (a finding's JSON tree
/// holds ten times the memory of its text: docs/performance.md).
fn ocsf_of(
    findings: &[(&AccountInput, &UserRecord, keyguard_core::Finding)],
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<Box<serde_json::value::RawValue>> {
    findings
        .iter()
        .map(|(a, r, f)| {
            let finding = keyguard_core::ocsf::compliance_finding(
                &a.account,
                r,
                f,
                now,
                env!("CARGO_PKG_VERSION"),
            );
            serde_json::value::to_raw_value(&finding).expect("a JSON value serializes")
        })
        .collect()
}

/// What an account's own administrator or users may have bent: Config's verdicts that disagree
/// with IAM, owner tags outside the organization's mail domains; each account's a problem too.
fn trust(
    inputs: &Inputs,
    readable: &[(&AccountInput, &Vec<UserRecord>)],
    problems: &mut Vec<String>,
    ends: &mut [usize; PROBLEM_KINDS],
) -> (Vec<DisagreementRow>, Vec<OutsideOwnerRow>) {
    let settings = &inputs.settings;
    let disagreements = verdicts::disagreements(readable, settings, inputs.as_of);
    problems.extend(verdicts::per_account(&disagreements));
    ends[3] = problems.len();
    let outside_owners = inputs
        .owner_domains
        .as_ref()
        .map(|d| owners::outside_owners(readable, settings, d))
        .unwrap_or_default();
    if !outside_owners.is_empty() {
        problems.push(outside_owners_problem(outside_owners.len()));
    }
    ends[4] = problems.len();
    (disagreements, outside_owners)
}

/// The trail's problems and each account's inputs', `ends` marking where each kind ends.
fn first_problems(inputs: &Inputs, ends: &mut [usize; PROBLEM_KINDS]) -> Vec<String> {
    let mut problems = inputs.trail.problems.clone();
    ends[0] = problems.len();
    problems.extend(input_problems(inputs));
    ends[1] = problems.len();
    problems
}

/// What the report says when the period has no followed CloudTrail event.
pub(crate) fn no_events_problem(inputs: &Inputs) -> String {
    format!(
        "no followed CloudTrail events in {} (source: {}): the actions and the exemption ledger are empty",
        inputs.period.label(),
        if inputs.trail.source.is_empty() { "none" } else { &inputs.trail.source }
    )
}

/// What the report says of `n` owner tags outside the organization's mail domains.
pub(crate) fn outside_owners_problem(n: usize) -> String {
    format!(
        "{n} owner tag(s) name an address outside the organization's mail domains; keyguard \
         does not mail there (see \"Owner addresses outside the organization\")"
    )
}

/// What the report says of each account's inputs that cannot be used as they are.
fn input_problems(inputs: &Inputs) -> Vec<String> {
    let mut problems = Vec::new();
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

    problems
}

/// The summary's figures.
fn kpis_of(
    inputs: &Inputs,
    accounts_read: usize,
    compliance: &figures::ComplianceFigures,
    keys: &figures::KeyFigures,
    exemptions_active: u64,
) -> Kpis {
    Kpis {
        accounts: inputs.accounts.len() as u64,
        accounts_read: accounts_read as u64,
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
        secrets_kept: secrets_kept(inputs),
        secrets_monthly_usd: secrets_kept(inputs).map(|n| {
            (n as f64 * keyguard_aws::secrets::MONTHLY_USD_PER_SECRET * 100.0).round() / 100.0
        }),
    }
}

/// The secrets keyguard keeps in the accounts whose secrets were read; `None` when none were.
fn secrets_kept(inputs: &Inputs) -> Option<u64> {
    let read: Vec<usize> = inputs.accounts.iter().filter_map(|a| a.secrets).collect();
    (!read.is_empty()).then(|| read.iter().sum::<usize>() as u64)
}

/// The root user as a record: name and UserId `<root_account>`, its key slots.
fn root_record(a: &AccountInput) -> UserRecord {
    UserRecord {
        user: keyguard_core::User {
            name: keyguard_core::ROOT_USER.into(),
            user_id: keyguard_core::ROOT_USER.into(),
            arn: format!("arn:aws:iam::{}:root", a.account.id),
            path: "/".into(),
            ..keyguard_core::User::default()
        },
        keys: a.root_keys.clone(),
    }
}

/// The non-compliant table's row of a root user with an active access key.
fn root_row(
    a: &AccountInput,
    f: &keyguard_core::Finding,
    now: chrono::DateTime<chrono::Utc>,
) -> NonCompliantRow {
    let oldest = a
        .root_keys
        .iter()
        .filter(|k| k.is_active())
        .min_by_key(|k| k.created);
    NonCompliantRow {
        account: a.account.id.clone(),
        account_name: a.account.name.clone(),
        user: keyguard_core::ROOT_USER.into(),
        reason: f
            .reasons
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "),
        key: oldest.map(|k| k.label()).unwrap_or_default(),
        age_days: oldest.map(|k| keyguard_core::days_between(k.created, now)),
        days_out_of_policy: oldest.map(|k| keyguard_core::days_between(k.created, now)),
        next_action: "delete it, signed in as root (keyguard never acts on root)".into(),
        next_action_date: "now".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::summary::change;
    use super::trail::{by_kind, who};

    #[test]
    fn principals_are_told_apart() {
        let roles = keyguard_aws::settings_env::KeyguardRoles {
            member: vec!["keyguard-member".to_string()],
            ..Default::default()
        };
        let kg = "arn:aws:sts::111122223333:assumed-role/keyguard-member/keyguard";
        assert_eq!(by_kind(kg, "111122223333", &roles), "keyguard");
        let sso =
            "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Admin_0123/alice@example.com";
        assert_eq!(by_kind(sso, "111122223333", &roles), "person");
        assert_eq!(who(kg), "keyguard-member/keyguard");
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
