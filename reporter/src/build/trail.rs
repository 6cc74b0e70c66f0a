//! From CloudTrail: the key actions of the period (by keyguard or a person), the exemption
//! ledger, and the exemptions that end soon.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use keyguard_aws::settings_env::KeyguardRoles;
use keyguard_core::UserRecord;
use keyguard_core::{mask_key_id, Exemption};

use super::thresholds::EXPIRING_WITHIN_DAYS;
use crate::cloudtrail::TrailEvent;
use crate::model::*;

/// `keyguard` when `actor`, acting in `account`, is a session of one of keyguard's roles there.
pub(super) fn by_kind(actor: &str, account: &str, roles: &KeyguardRoles) -> &'static str {
    if roles.acted(actor, account) {
        "keyguard"
    } else {
        "person"
    }
}

/// The principal, shortly: `role/session` for assumed roles, the user for IAM users.
pub(super) fn who(actor: &str) -> String {
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

pub(super) fn masked(id: Option<&str>) -> String {
    id.map(mask_key_id).unwrap_or_default()
}

/// The kinds of key actions, in the order the report counts them.
pub(super) const ACTIONS: [&str; 6] = [
    "rotation",
    "created",
    "disable",
    "restore",
    "re-enabled",
    "delete",
];

pub(super) fn actions(
    events: &[&TrailEvent],
    roles: &KeyguardRoles,
) -> (Vec<ActionRow>, Vec<(String, u64, u64)>) {
    let mut rows = Vec::new();
    for e in events {
        let kind = by_kind(&e.actor, &e.account, roles);
        let action = match (e.name.as_str(), e.status.as_deref()) {
            ("CreateAccessKey", _) if kind == "keyguard" => "rotation",
            ("CreateAccessKey", _) => "created",
            ("UpdateAccessKey", Some("Inactive")) => "disable",
            // A person setting a key Active is against the policy (keyguard's restore is the
            // runbook's way back, and it is keyguard's role).
            ("UpdateAccessKey", Some("Active")) if kind == "person" => "re-enabled",
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
    let mut counts: Vec<(String, u64, u64)> = ACTIONS
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
    counts.retain(|c| !matches!(c.0.as_str(), "created" | "re-enabled") || c.2 > 0 || c.1 > 0);
    (rows, counts)
}

/// A user's expiry-tag values over time (`None`: removed).
pub(super) type TagHistory = Vec<(DateTime<Utc>, Option<String>)>;

pub(super) fn ledger(
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
        let Some((change, grant)) = change_of(e, group, &expiry_change, &in_group_now) else {
            continue;
        };
        let is_user_change = !user.is_empty();
        let expiry = if is_user_change {
            expiry_at(&e.account, &user, e.time)
        } else {
            String::new()
        };
        // Measured from the change itself: an exemption granted for longer than the cap is a
        // finding even once the days left have fallen under it.
        let beyond_cap = (grant || e.name == "TagUser")
            && keyguard_core::parse_date_or_time(&expiry, true)
                .is_some_and(|until| until > keyguard_core::exemption_cap(s, e.time));
        out.push(LedgerRow {
            time: e.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            account: e.account.clone(),
            user: user.clone(),
            change,
            by: who(&e.actor),
            expiry_at_change: expiry,
            granted_while_overdue: grant && overdue_at(&e.account, &user, e.time),
            beyond_cap,
        });
    }
    out.sort_by(|a, b| (&a.time, &a.account, &a.user).cmp(&(&b.time, &b.account, &b.user)));
    out
}

/// What `e` changed of the exemptions, and whether it grants one; `None` for anything else.
fn change_of(
    e: &TrailEvent,
    group: &str,
    expiry_change: &dyn Fn(&TrailEvent) -> Option<Option<String>>,
    in_group_now: &dyn Fn(&str, &str) -> bool,
) -> Option<(String, bool)> {
    let user = e.user_name.as_deref().unwrap_or_default();
    Some(match e.name.as_str() {
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
        // A group renamed *to* the exemption group's name: its members become exempt.
        "UpdateGroup" if e.new_group_name.as_deref() == Some(group) => (
            format!(
                "group {} renamed to the exemption group",
                e.group_name.as_deref().unwrap_or("?")
            ),
            false,
        ),
        "UpdateGroup" if e.group_name.as_deref() == Some(group) => (
            match e.new_group_name.as_deref() {
                Some(new) => format!("exemption group renamed to {new}"),
                None => "exemption group's path changed".to_string(),
            },
            false,
        ),
        "TagUser" | "UntagUser" => match expiry_change(e) {
            Some(Some(v)) => (
                format!("expiry tag set to {v}"),
                in_group_now(&e.account, user),
            ),
            Some(None) => ("expiry tag removed".to_string(), false),
            None => return None,
        },
        _ => return None,
    })
}

pub(super) fn expiring(
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
