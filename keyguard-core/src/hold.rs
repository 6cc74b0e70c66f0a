//! When a due step waits: a rotation's old key whose disable is held while it is still used and
//! its successor never was (bounded by `MaxDisableHoldDays`), and a disable or delete that waits
//! for its minimum notice (`MinimumNoticeDays` after its owner was first told of it).
//!
//! Both can only delay a step, never bring one forward, and neither applies to an unused key's
//! disable beyond its notice (CIS 1.12: an unused key is never held).

use chrono::{DateTime, Duration, Utc};

use crate::plan::{Action, PlannedAction};
use crate::settings::{DisableWhileInUse, Settings};

/// A use of the old key this recent (before the live re-check) holds its disable.
pub const IN_USE_WITHIN_HOURS: i64 = 24;

/// A held disable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// The disable happens at the first run from then on, whatever the use (its due date plus
    /// `MaxDisableHoldDays`).
    pub until: DateTime<Utc>,
    /// The old key's last use, which holds it.
    pub old_last_used: DateTime<Utc>,
}

/// The hold of `a`, a due disable, given the old key's last use and its successor's (both read
/// live right before the write): `Some` when the settings say hold, `a` is the disable of a
/// rotation's old key (it has a successor), the old key was used within the last
/// [`IN_USE_WITHIN_HOURS`], the successor has never been used, and the cap (`a.due` plus
/// `MaxDisableHoldDays`) is still ahead. A disable for non-use is never held.
pub fn disable_hold(
    a: &PlannedAction,
    old_last_used: Option<DateTime<Utc>>,
    successor_last_used: Option<DateTime<Utc>>,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Option<Hold> {
    if settings.disable_while_in_use != DisableWhileInUse::Hold
        || a.action != Action::Disable
        || a.successor.is_none()
        || successor_last_used.is_some()
    {
        return None;
    }
    let used = old_last_used.filter(|t| now - *t < Duration::hours(IN_USE_WITHIN_HOURS))?;
    let until = a.due + Duration::days(settings.max_disable_hold_days.into());
    (now < until).then_some(Hold {
        until,
        old_last_used: used,
    })
}

/// When a due disable or delete may happen, given when its owner was first told of it (a
/// warning, a preview, the notice of the step before): `None` now, `Some(t)` not before `t`
/// (`MinimumNoticeDays` after the first notice; a step nobody was told of waits that long from
/// now, and its owner is told now).
pub fn not_before(
    first_told: Option<DateTime<Utc>>,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if settings.minimum_notice_days == 0 {
        return None;
    }
    let notice = Duration::days(settings.minimum_notice_days.into());
    match first_told {
        None => Some(now + notice),
        Some(t) if now < t + notice => Some(t + notice),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(d: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 6, 0, 0).unwrap() + Duration::days(d)
    }

    fn disable(successor: Option<&str>) -> PlannedAction {
        PlannedAction {
            key_id: "AKIAOLD".into(),
            action: Action::Disable,
            due: at(0),
            projected: false,
            why: "successor created".into(),
            successor: successor.map(str::to_string),
        }
    }

    #[test]
    fn a_migration_still_on_the_old_key_is_held_until_the_cap() {
        let s = Settings::default();
        let a = disable(Some("AKIANEW"));
        let used = |d: i64| Some(at(d) - Duration::hours(2));
        let held = disable_hold(&a, used(1), None, &s, at(1)).unwrap();
        assert_eq!(held.until, at(14));
        // Not held: the successor was used, the old key not lately, the cap passed, proceed.
        assert_eq!(disable_hold(&a, used(1), Some(at(1)), &s, at(1)), None);
        assert_eq!(disable_hold(&a, Some(at(-2)), None, &s, at(1)), None);
        assert_eq!(disable_hold(&a, used(14), None, &s, at(14)), None);
        let proceed = Settings {
            disable_while_in_use: DisableWhileInUse::Proceed,
            ..Settings::default()
        };
        assert_eq!(disable_hold(&a, used(1), None, &proceed, at(1)), None);
        // A disable for non-use has no successor: never held.
        assert_eq!(disable_hold(&disable(None), used(1), None, &s, at(1)), None);
    }

    #[test]
    fn a_step_nobody_was_told_of_waits_its_minimum_notice() {
        let s = Settings::default();
        assert_eq!(not_before(None, &s, at(0)), Some(at(3)));
        assert_eq!(not_before(Some(at(0)), &s, at(2)), Some(at(3)));
        assert_eq!(not_before(Some(at(0)), &s, at(3)), None);
        let off = Settings {
            minimum_notice_days: 0,
            ..Settings::default()
        };
        assert_eq!(not_before(None, &off, at(0)), None);
    }
}
