//! The remediator's decisions around [`plan()`]: which users are worth a live look, what an
//! interrupted rotation left behind, when a manual rotation or a restore is allowed, and which
//! warnings were already sent. Pure, like the rest of the crate.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, SubsecRound, Utc};

use crate::model::{parse_date_or_time, AccessKey, User};
use crate::plan::Step;
use crate::plan::{plan, Action, Plan, PlannedAction};
use crate::records::RotationMark;
use crate::settings::{
    Settings, DISABLED_TAG_PREFIX, RESTORED_TAG_PREFIX, ROTATING_TAG, WARNED_TAG,
};

/// How far before the [`ROTATING_TAG`] mark a key's CreateDate may be and still count as created
/// by that rotation: IAM keeps whole seconds, and the clocks of the caller and of IAM may differ
/// by a little. A leftover must also be unused and not in the secret, so the allowance cannot
/// reach a key anybody has.
pub const MARK_SKEW: Duration = Duration::seconds(5);

/// How long after its mark a rotation can still create its key: the attempt runs under a lease of
/// at most 15 minutes (remediator::lease), so a key created later is not this attempt's, whatever
/// the mark says (a mark that could not be removed must not claim a person's later key).
pub const MARK_REACH: Duration = Duration::minutes(20);

/// True when `user` may need a write or a notice at `now`, judged from the credential report's
/// key slots (ids unknown) and the user's tags, without a single extra API call. False only when
/// nothing can be due: no finding, no open unsent warning, no interrupted rotation, and every
/// Inactive key has a recorded disable date whose recovery grace is still running.
///
/// Errs on the side of true (the live re-read then decides): inactive keys all take the earliest
/// recorded disable date, and restores are ignored, which only make steps earlier.
pub fn needs_attention(
    user: &User,
    keys: &[AccessKey],
    settings: &Settings,
    now: DateTime<Utc>,
) -> bool {
    if user.tag(ROTATING_TAG).is_some() {
        return true;
    }
    let inactive = keys.iter().filter(|k| !k.is_active()).count();
    if inactive > disabled_dates(user).len() {
        // Some Inactive key has no recorded disable date: RecordDisabled is due.
        return true;
    }
    let (synthetic_user, synthetic) = with_slot_ids(user, keys);
    let p = plan(&synthetic_user, &synthetic, settings, now);
    if p.due(now).next().is_some() {
        return true;
    }
    let sent = warned(user);
    warning_marks(&p, now).iter().any(|m| !sent.contains(m))
}

fn disabled_dates(user: &User) -> Vec<DateTime<Utc>> {
    let mut dates: Vec<DateTime<Utc>> = user
        .tags
        .iter()
        .filter(|(k, _)| k.starts_with(DISABLED_TAG_PREFIX))
        .filter_map(|(_, v)| parse_date_or_time(v, false))
        .collect();
    dates.sort();
    dates
}

/// Gives credential-report keys (ids unknown) the ids `key1` / `key2` (their slots) so that they
/// can be planned, and maps the user's recorded disable dates onto the Inactive ones: every
/// Inactive key takes the earliest recorded date (which can only make its delete earlier than
/// the real one). Keys that have ids keep them. For previews and triage; the remediator plans
/// from the real ids.
pub fn with_slot_ids(user: &User, keys: &[AccessKey]) -> (User, Vec<AccessKey>) {
    let earliest = disabled_dates(user).first().copied();
    let mut out_user = user.clone();
    if keys.iter().all(|k| k.id.is_some()) {
        return (out_user, keys.to_vec());
    }
    out_user
        .tags
        .retain(|k, _| !k.starts_with(DISABLED_TAG_PREFIX) && !k.starts_with(RESTORED_TAG_PREFIX));
    let out_keys = keys
        .iter()
        .map(|k| {
            let id = k.id.clone().unwrap_or_else(|| format!("key{}", k.slot));
            if let (false, Some(at)) = (k.is_active(), earliest) {
                out_user
                    .tags
                    .insert(format!("{DISABLED_TAG_PREFIX}{id}"), at.to_rfc3339());
            }
            AccessKey {
                id: Some(id),
                ..k.clone()
            }
        })
        .collect();
    (out_user, out_keys)
}

/// The open, firm warnings of `plan` at `now` as marks `step@YYYY-MM-DD` (the warned step and its
/// day), the form kept in the [`WARNED_TAG`] user tag. Projected steps are not warned: they are
/// announced in the notice of the step they follow.
pub fn warning_marks(plan: &Plan, now: DateTime<Utc>) -> BTreeSet<String> {
    plan.warnings(now)
        .filter(|a| !a.projected)
        .filter_map(|a| match a.action {
            Action::Warn { step, step_due } => Some(warning_mark(step, step_due)),
            _ => None,
        })
        .collect()
}

/// The mark of a warning of `step` due at `due`, as kept in the [`WARNED_TAG`] tag.
pub fn warning_mark(step: Step, due: DateTime<Utc>) -> String {
    format!("{}@{}", step.as_str(), due.format("%Y-%m-%d"))
}

/// The marks of the warnings already sent to `user` (the [`WARNED_TAG`] tag).
pub fn warned(user: &User) -> BTreeSet<String> {
    user.tag(WARNED_TAG)
        .map(|v| v.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// The keys an interrupted rotation left behind (`docs/invariants.md#invariant-6`): created at or after the
/// user's [`ROTATING_TAG`] mark (less [`MARK_SKEW`], and within [`MARK_REACH`] of it), **never used**, and not the key the user's
/// secret holds (`stored_key_id`, `None` when there is no secret). Nobody has ever seen such a
/// key's secret access key, so deleting it is safe. A used key is never a leftover, however it
/// came to be. `keys` must carry live last use. Empty when the user carries no (valid) mark.
pub fn leftovers(user: &User, keys: &[AccessKey], stored_key_id: Option<&str>) -> Vec<String> {
    let Some(mark) = RotationMark::of(user) else {
        return vec![];
    };
    let from = mark.at.trunc_subsecs(0) - MARK_SKEW;
    let until = mark.at + MARK_REACH;
    keys.iter()
        .filter(|k| k.created >= from && k.created <= until && k.last_used.is_none())
        .filter_map(|k| k.id.clone())
        .filter(|id| Some(id.as_str()) != stored_key_id)
        .collect()
}

/// A rotation the operator asked for (a leaked key, a departing colleague), due at `now`.
/// Allowed only when the user has exactly one key and it is Active: never a third key, never a
/// second active one next to a key keyguard would then have to choose between (invariants 3, 4).
/// The old key then follows the normal course: disabled after InstallationGracePeriod.
pub fn forced_rotation(keys: &[AccessKey], now: DateTime<Utc>) -> Result<PlannedAction, String> {
    match keys {
        [key] if key.is_active() => Ok(PlannedAction {
            key_id: key.id.clone().ok_or("the key's id is unknown")?,
            action: Action::Rotate,
            due: now,
            projected: false,
            why: "rotation forced by an operator".into(),
            successor: None,
        }),
        [] => Err("the user has no access key to rotate".into()),
        [key] => Err(format!(
            "the user's only key {} is Inactive: nothing to rotate",
            key.label()
        )),
        _ => Err(format!(
            "the user has {} keys and IAM allows two: delete one first (keyguard never creates a third)",
            keys.len()
        )),
    }
}

/// Whether `keyguard restore` may re-enable a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restorable {
    /// Inactive and inside its recovery grace (or with no recorded disable date, so its grace has
    /// not started): it may be re-enabled. `delete_due` is when it would otherwise be deleted.
    Yes {
        /// The planned delete, if a disable date is recorded.
        delete_due: Option<DateTime<Utc>>,
    },
    /// The key is not restorable, and why.
    No(String),
}

/// Decides whether `key_id` of `user` may be re-enabled at `now`: it must exist, be Inactive, and
/// be within its recovery grace.
pub fn restorable(
    user: &User,
    keys: &[AccessKey],
    key_id: &str,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Restorable {
    let Some(key) = keys.iter().find(|k| k.id.as_deref() == Some(key_id)) else {
        return Restorable::No(format!(
            "{} is not a key of {} (deleted keys cannot be restored)",
            crate::annotation::mask_key_id(key_id),
            user.name
        ));
    };
    if key.is_active() {
        return Restorable::No(format!("{} is already Active", key.label()));
    }
    match key.disabled_at(user) {
        None => Restorable::Yes { delete_due: None },
        Some(at) => {
            let due = at + Duration::days(settings.recovery_grace_period.into());
            if now < due {
                Restorable::Yes {
                    delete_due: Some(due),
                }
            } else {
                Restorable::No(format!(
                    "{}'s recovery grace ended {} (disabled {}); the next run deletes it",
                    key.label(),
                    due.format("%Y-%m-%d"),
                    at.format("%Y-%m-%d")
                ))
            }
        }
    }
}

/// keyguard's per-key records on `user` that no longer hold: a key the user no longer has (deleted
/// by a person, or by keyguard in a run that stopped before cleaning up), or a disable date of a
/// key that is Active again. To be removed.
pub fn stale_tags(user: &User, keys: &[AccessKey]) -> Vec<String> {
    let key = |id: &str| keys.iter().find(|k| k.id.as_deref() == Some(id));
    user.tags
        .keys()
        .filter_map(|k| {
            if let Some(id) = k.strip_prefix(DISABLED_TAG_PREFIX) {
                // Gone, or Active again (a person re-enabled it without `keyguard restore`): a
                // later disable must start a new recovery grace, not inherit this date.
                return key(id).is_none_or(|key| key.is_active()).then(|| k.clone());
            }
            let id = k
                .strip_prefix(RESTORED_TAG_PREFIX)
                .or_else(|| k.strip_prefix(crate::settings::FIRST_USED_TAG_PREFIX))
                .or_else(|| k.strip_prefix(crate::settings::LEAKED_TAG_PREFIX))?;
            key(id).is_none().then(|| k.clone())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyStatus;

    fn at(s: &str) -> DateTime<Utc> {
        parse_date_or_time(s, false).unwrap()
    }

    fn key(
        id: Option<&str>,
        slot: u8,
        active: bool,
        created: &str,
        used: Option<&str>,
    ) -> AccessKey {
        AccessKey {
            id: id.map(str::to_string),
            slot,
            status: if active {
                KeyStatus::Active
            } else {
                KeyStatus::Inactive
            },
            created: at(created),
            last_used: used.map(at),
        }
    }

    fn user(tags: &[(&str, &str)]) -> User {
        User {
            name: "ci+deploy@x".into(),
            user_id: "AIDA1".into(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..User::default()
        }
    }

    #[test]
    fn attention_only_when_something_can_happen() {
        let s = Settings::default();
        let now = at("2026-06-01");
        let fresh = [key(None, 1, true, "2026-05-01", Some("2026-05-31"))];
        assert!(!needs_attention(&user(&[]), &fresh, &s, now));
        // Inside the warning window of the rotation (90 - 14 = day 76): attention until warned.
        let warn = [key(None, 1, true, "2026-03-10", Some("2026-05-31"))];
        assert!(needs_attention(&user(&[]), &warn, &s, now));
        assert!(!needs_attention(
            &user(&[(WARNED_TAG, "rotate@2026-06-08")]),
            &warn,
            &s,
            now
        ));
        // An inactive key without a recorded disable date.
        let inactive = [key(None, 1, false, "2026-01-01", None)];
        assert!(needs_attention(&user(&[]), &inactive, &s, now));
        let recorded = user(&[("keyguard:disabled:AKIAX", "2026-05-30T00:00:00Z")]);
        assert!(
            needs_attention(&recorded, &inactive, &s, now),
            "delete warning open"
        );
        let recorded = user(&[
            ("keyguard:disabled:AKIAX", "2026-05-30T00:00:00Z"),
            (WARNED_TAG, "delete@2026-06-09"),
        ]);
        assert!(!needs_attention(&recorded, &inactive, &s, now));
        assert!(
            needs_attention(&recorded, &inactive, &s, at("2026-06-09")),
            "delete due"
        );
        // An interrupted rotation.
        assert!(needs_attention(
            &user(&[(ROTATING_TAG, "2026-05-31T00:00:00Z")]),
            &fresh,
            &s,
            now
        ));
    }

    #[test]
    fn leftovers_are_unused_keys_created_since_the_mark() {
        let u = user(&[(ROTATING_TAG, "2026-06-01T10:20:00.400Z kg-1")]);
        let old = key(
            Some("AKIAOLD0000000000001"),
            1,
            true,
            "2026-01-01T00:00:00Z",
            Some("2026-05-31"),
        );
        let new = key(
            Some("AKIANEW0000000000002"),
            2,
            true,
            "2026-06-01T10:20:00Z",
            None,
        );
        let keys = [old.clone(), new.clone()];
        assert_eq!(leftovers(&u, &keys, None), ["AKIANEW0000000000002"]);
        assert_eq!(
            leftovers(&u, &keys, Some("AKIAOLD0000000000001")),
            ["AKIANEW0000000000002"]
        );
        assert!(
            leftovers(&u, &keys, Some("AKIANEW0000000000002")).is_empty(),
            "stored: not a leftover"
        );
        // A create that IAM answered slowly (retries) within the attempt's lease is still found.
        let late = key(
            Some("AKIALATE000000000003"),
            2,
            true,
            "2026-06-01T10:30:00Z",
            None,
        );
        assert_eq!(
            leftovers(&u, &[old.clone(), late], None),
            ["AKIALATE000000000003"]
        );
        // A used key is never a leftover; nor a key from before the mark.
        let used = AccessKey {
            last_used: Some(at("2026-06-01T10:30:00Z")),
            ..new.clone()
        };
        assert!(leftovers(&u, &[old.clone(), used], None).is_empty());
        let before = key(
            Some("AKIABEFORE0000000004"),
            2,
            true,
            "2026-06-01T10:19:00Z",
            None,
        );
        assert!(leftovers(&u, &[old, before], None).is_empty());
        assert!(
            leftovers(&user(&[]), &keys, None).is_empty(),
            "no mark, no leftover"
        );
        // A mark that stayed (its removal failed) claims no key made after the attempt's lease.
        let next_day = key(
            Some("AKIAPERSON0000000005"),
            2,
            true,
            "2026-06-02T09:00:00Z",
            None,
        );
        assert!(leftovers(&u, &[next_day], None).is_empty());
    }

    #[test]
    fn forced_rotation_needs_exactly_one_active_key() {
        let now = at("2026-06-01");
        let one = [key(
            Some("AKIAONE0000000000001"),
            1,
            true,
            "2026-05-01",
            None,
        )];
        assert_eq!(forced_rotation(&one, now).unwrap().action, Action::Rotate);
        let two = [
            one[0].clone(),
            key(Some("AKIATWO0000000000002"), 2, false, "2026-05-02", None),
        ];
        assert!(forced_rotation(&two, now)
            .unwrap_err()
            .contains("never creates a third"));
        assert!(forced_rotation(&[], now).is_err());
        assert!(forced_rotation(&two[1..], now)
            .unwrap_err()
            .contains("Inactive"));
    }

    #[test]
    fn restore_only_within_the_recovery_grace() {
        let s = Settings::default();
        let id = "AKIAOLD0000000000001";
        let u = user(&[(
            "keyguard:disabled:AKIAOLD0000000000001",
            "2026-06-01T00:00:00Z",
        )]);
        let keys = [key(Some(id), 1, false, "2026-01-01", None)];
        assert!(matches!(
            restorable(&u, &keys, id, &s, at("2026-06-05")),
            Restorable::Yes {
                delete_due: Some(_)
            }
        ));
        assert!(matches!(
            restorable(&u, &keys, id, &s, at("2026-06-11")),
            Restorable::No(_)
        ));
        assert!(matches!(
            restorable(&user(&[]), &keys, id, &s, at("2026-09-01")),
            Restorable::Yes { delete_due: None }
        ));
        assert!(matches!(
            restorable(&u, &keys, "AKIAGONE000000000009", &s, at("2026-06-05")),
            Restorable::No(_)
        ));
    }

    #[test]
    fn a_restored_key_gets_a_fresh_installation_grace() {
        let s = Settings::default();
        let old = "AKIAOLD0000000000001";
        let keys = [
            key(Some(old), 1, true, "2026-01-01", Some("2026-06-05")),
            key(
                Some("AKIANEW0000000000002"),
                2,
                true,
                "2026-05-01",
                Some("2026-06-05"),
            ),
        ];
        let now = at("2026-06-06");
        let before = plan(&user(&[]), &keys, &s, now);
        assert!(before
            .due(now)
            .any(|a| a.action == Action::Disable && a.key_id == old));
        let restored = user(&[(
            "keyguard:restored:AKIAOLD0000000000001",
            "2026-06-05T00:00:00Z",
        )]);
        let after = plan(&restored, &keys, &s, now);
        assert!(
            !after.due(now).any(|a| a.action == Action::Disable),
            "{after:?}"
        );
        assert!(after
            .due(at("2026-06-15"))
            .any(|a| a.action == Action::Disable && a.key_id == old));
    }

    #[test]
    fn stale_tags_name_keys_that_are_gone() {
        let u = user(&[
            ("keyguard:disabled:AKIAGONE000000000009", "2026-01-01"),
            ("keyguard:disabled:AKIAOLD0000000000001", "2026-01-01"),
            ("owner-email", "a@b"),
        ]);
        let keys = [key(
            Some("AKIAOLD0000000000001"),
            1,
            false,
            "2025-01-01",
            None,
        )];
        assert_eq!(
            stale_tags(&u, &keys),
            ["keyguard:disabled:AKIAGONE000000000009"]
        );
        // Re-enabled by a person: its old disable date must not shorten a later grace.
        let active = [key(
            Some("AKIAOLD0000000000001"),
            1,
            true,
            "2025-01-01",
            Some("2026-05-01"),
        )];
        assert_eq!(
            stale_tags(&u, &active),
            [
                "keyguard:disabled:AKIAGONE000000000009",
                "keyguard:disabled:AKIAOLD0000000000001"
            ]
        );
    }
}
