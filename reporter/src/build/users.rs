//! The non-compliant users: reason, key, age, days out of policy, and the next step.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use keyguard_core::UserRecord;
use keyguard_core::{
    evaluate, plan, with_slot_ids, Action, Compliance, PlanNote, Reason, Settings,
};

use crate::model::*;

pub(super) fn reason_key_age(
    r: &Reason,
    rec: &UserRecord,
    now: DateTime<Utc>,
) -> Option<(String, i64)> {
    let label = match r {
        Reason::RotationDue { key, .. } | Reason::Unused { key, .. } => key.clone(),
        _ => return None,
    };
    rec.keys
        .iter()
        .find(|k| k.label() == label)
        .map(|k| (label, keyguard_core::days_between(k.created, now)))
}

pub(super) fn days_out(
    r: &Reason,
    rec: &UserRecord,
    s: &Settings,
    now: DateTime<Utc>,
) -> Option<i64> {
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
        Reason::ExemptionMissingExpiry { .. }
        | Reason::ExemptionInvalidExpiry { .. }
        | Reason::ExemptionTooLong { .. } => None,
        // A root access key is out of policy from the day it exists.
        Reason::RootAccessKey { age_days, .. } => Some(*age_days),
    }
}

pub(super) fn non_compliant(
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
