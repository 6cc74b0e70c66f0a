//! Where the keys due for a step are used, and the stalled migrations: for each key whose
//! disable or delete falls within PendingActionWarnPeriod (or is overdue), the top sources,
//! agents and services of its calls in the trail, and its successor's first use; and each
//! rotation whose old key was used in the last day while its successor never was (its disable is
//! held, `docs/usage.md`).

use chrono::{DateTime, Duration, Utc};
use keyguard_core::hold::IN_USE_WITHIN_HOURS;
use keyguard_core::usage::{short_agent, short_service, Tally, Usage};
use keyguard_core::{mask_key_id, plan, with_slot_ids, Action, Settings, UserRecord};

use crate::model::{AccountInput, KeyUsageRow, StalledRow};

fn top(t: &Tally, n: usize, short: fn(&str) -> String) -> String {
    t.top(n)
        .iter()
        .map(|(v, s)| format!("{} ({})", short(v), s.calls))
        .collect::<Vec<_>>()
        .join(", ")
}

fn same(s: &str) -> String {
    s.to_string()
}

/// The rows of both tables, in account and user order.
pub(super) fn key_usage(
    readable: &[(&AccountInput, &Vec<UserRecord>)],
    usage: &Usage,
    s: &Settings,
    now: DateTime<Utc>,
) -> (Vec<KeyUsageRow>, Vec<StalledRow>) {
    let horizon = now + Duration::days(s.pending_action_warn_period.into());
    let (mut rows, mut stalled) = (Vec::new(), Vec::new());
    for (a, inv) in readable {
        for r in inv.iter() {
            let (user, keys) = with_slot_ids(&r.user, &r.keys);
            let p = plan(&user, &keys, s, now);
            for step in p.actions.iter().filter(|x| {
                matches!(x.action, Action::Disable | Action::Delete)
                    && !x.projected
                    && x.due <= horizon
                    && keyguard_core::usage::is_long_term(&x.key_id)
            }) {
                let used = usage.of(&step.key_id);
                let successor = step.successor.as_deref();
                let successor_first = successor
                    .and_then(|id| usage.of(id))
                    .map(|u| u.first_seen.to_rfc3339());
                rows.push(KeyUsageRow {
                    account: a.account.id.clone(),
                    account_name: a.account.name.clone(),
                    user: r.user.name.clone(),
                    key: mask_key_id(&step.key_id),
                    step: step.action.name(),
                    due: step.due.max(now).format("%Y-%m-%d").to_string(),
                    calls: used.map_or(0, |u| u.calls),
                    last_seen: used.map(|u| u.last_seen.to_rfc3339()).unwrap_or_default(),
                    sources: used.map(|u| top(&u.sources, 3, same)).unwrap_or_default(),
                    agents: used
                        .map(|u| top(&u.user_agents, 2, short_agent))
                        .unwrap_or_default(),
                    services: used
                        .map(|u| top(&u.services, 3, short_service))
                        .unwrap_or_default(),
                    successor: successor.map(mask_key_id).unwrap_or_default(),
                    successor_first_use: match (successor, successor_first) {
                        (None, _) => String::new(),
                        (Some(_), Some(t)) => t,
                        (Some(_), None) => "never".into(),
                    },
                });
                if let Some(row) = stalled_row(a, r, &keys, step, usage, s, now) {
                    stalled.push(row);
                }
            }
        }
    }
    (rows, stalled)
}

/// The stalled migration of `step` (a due disable with a successor), if it is one: the old key
/// used within the last day, the successor never (IAM's last use, the credential report's).
fn stalled_row(
    a: &AccountInput,
    r: &UserRecord,
    keys: &[keyguard_core::AccessKey],
    step: &keyguard_core::PlannedAction,
    usage: &Usage,
    s: &Settings,
    now: DateTime<Utc>,
) -> Option<StalledRow> {
    let successor = step.successor.as_deref()?;
    if step.action != Action::Disable || step.due > now {
        return None;
    }
    let find = |id: &str| keys.iter().find(|k| k.id.as_deref() == Some(id));
    let old_used = find(&step.key_id)?.last_used?;
    if now - old_used >= Duration::hours(IN_USE_WITHIN_HOURS)
        || find(successor)?.last_used.is_some()
    {
        return None;
    }
    Some(StalledRow {
        account: a.account.id.clone(),
        account_name: a.account.name.clone(),
        user: r.user.name.clone(),
        key: mask_key_id(&step.key_id),
        successor: mask_key_id(successor),
        disable_due: step.due.format("%Y-%m-%d").to_string(),
        held_until: (step.due + Duration::days(s.max_disable_hold_days.into()))
            .format("%Y-%m-%d")
            .to_string(),
        last_used: old_used.to_rfc3339(),
        where_used: keyguard_core::usage::describe(usage.of(&step.key_id), Some(old_used), now),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ConfigState;
    use chrono::TimeZone;
    use keyguard_core::{AccessKey, Account, KeyStatus, User};

    fn key(id: &str, age: i64, used_hours_ago: Option<i64>, now: DateTime<Utc>) -> AccessKey {
        AccessKey {
            id: Some(id.into()),
            slot: 1,
            status: KeyStatus::Active,
            created: now - Duration::days(age),
            last_used: used_hours_ago.map(|h| now - Duration::hours(h)),
        }
    }

    #[test]
    fn a_rotation_whose_old_key_is_still_used_and_the_new_never_is_stalled() {
        let now = Utc.with_ymd_and_hms(2026, 11, 20, 9, 0, 0).unwrap();
        let account = AccountInput {
            account: Account {
                id: "111122223333".into(),
                name: "prod".into(),
                email: None,
            },
            inventory: Ok(vec![]),
            root_keys: vec![],
            secrets: None,
            config: ConfigState::NotCollected,
            pack: None,
        };
        let record = |successor_used: Option<i64>| UserRecord {
            user: User {
                name: "ci".into(),
                ..User::default()
            },
            keys: vec![
                key("AKIAOLDOLDOLDOLD0001", 120, Some(2), now),
                key("AKIANEWNEWNEWNEW0002", 12, successor_used, now),
            ],
        };
        let s = Settings::default();
        let stalled = vec![record(None)];
        let (rows, found) = key_usage(&[(&account, &stalled)], &Usage::default(), &s, now);
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0].successor_first_use, "never");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            (found[0].disable_due.as_str(), found[0].held_until.as_str()),
            ("2026-11-18", "2026-12-02")
        );
        let moved = vec![record(Some(1))];
        assert!(key_usage(&[(&account, &moved)], &Usage::default(), &s, now)
            .1
            .is_empty());
    }
}
