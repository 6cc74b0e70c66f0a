//! The exhaustive enumeration: every combination of 0–2 keys × status × age × last use × disable
//! record × exemption, each planned and executed by a simulated executor, with the safety
//! invariants of `docs/invariants.md` checked on each, and idempotence (running the plan again
//! at the same moment does nothing more).

use super::*;
use keyguard_core::hold::disable_hold;

const AGES: [i64; 12] = [0, 9, 10, 44, 45, 89, 90, 91, 99, 100, 110, 400];
const USES: [Option<i64>; 4] = [None, Some(0), Some(44), Some(45)];
const DISABLED: [Option<i64>; 3] = [None, Some(9), Some(10)];

fn key_variants(id: &str) -> Vec<(AccessKey, Option<i64>)> {
    let mut v = Vec::new();
    for age in AGES {
        for used in USES {
            let used = used.map(|u| u.min(age));
            v.push((active(id, age, used), None));
            for d in DISABLED {
                v.push((inactive(id, age, used), d));
            }
        }
    }
    v
}

/// Applies the actions due at `now` the way the remediator does, re-checking IAM's own rules;
/// with `s`, a disable is held as the remediator holds it (the keys' last use standing in for the
/// live re-check).
fn execute(
    u: &mut User,
    keys: &mut Vec<AccessKey>,
    p: &Plan,
    now: DateTime<Utc>,
    next_id: &mut u32,
) {
    execute_holding(u, keys, p, now, next_id, None)
}

fn execute_holding(
    u: &mut User,
    keys: &mut Vec<AccessKey>,
    p: &Plan,
    now: DateTime<Utc>,
    next_id: &mut u32,
    s: Option<&Settings>,
) {
    for a in p.due(now) {
        let Some(pos) = keys.iter().position(|k| k.id.as_deref() == Some(&a.key_id)) else {
            continue;
        };
        match a.action {
            Action::Delete => {
                assert_eq!(
                    keys[pos].status,
                    KeyStatus::Inactive,
                    "invariant 1: deleting an active key"
                );
                keys.remove(pos);
            }
            Action::Disable => {
                if let Some(s) = s {
                    let successor = a
                        .successor
                        .as_deref()
                        .and_then(|id| keys.iter().find(|k| k.id.as_deref() == Some(id)));
                    let used = successor.and_then(|k| k.last_used);
                    if disable_hold(a, keys[pos].last_used, used, s, now).is_some() {
                        continue;
                    }
                }
                keys[pos].status = KeyStatus::Inactive;
                u.tags.insert(
                    format!("{DISABLED_TAG_PREFIX}{}", a.key_id),
                    now.to_rfc3339(),
                );
            }
            Action::RecordDisabled => {
                u.tags.insert(
                    format!("{DISABLED_TAG_PREFIX}{}", a.key_id),
                    now.to_rfc3339(),
                );
            }
            Action::Rotate => {
                assert!(
                    keys.len() < 2,
                    "invariant 3: a third key was attempted: {p:#?}"
                );
                *next_id += 1;
                keys.push(AccessKey {
                    id: Some(format!("AKIANEWKEY{:010}", *next_id)),
                    slot: 2,
                    status: KeyStatus::Active,
                    created: now,
                    last_used: None,
                });
            }
            _ => {}
        }
    }
}

fn check_invariants(
    case: &str,
    u: &User,
    keys: &[AccessKey],
    p: &Plan,
    s: &Settings,
    at: DateTime<Utc>,
) {
    let find = |id: &str| keys.iter().find(|k| k.id.as_deref() == Some(id));
    let exempt = Exemption::of(u, s, at).is_valid();
    for a in &p.actions {
        let k = find(&a.key_id).unwrap_or_else(|| panic!("{case}: action on unknown key {a:?}"));
        match a.action {
            // 1: an Active key is never deleted: a Delete of an active key is always projected
            // after that key's own Disable.
            Action::Delete if k.is_active() => {
                assert!(
                    a.projected,
                    "{case}: unprojected delete of an active key {p:#?}"
                );
                assert!(
                    p.actions.iter().any(|d| d.key_id == a.key_id
                        && d.action == Action::Disable
                        && d.due < a.due),
                    "{case}: delete of an active key without a disable first"
                );
            }
            // 2: disable no earlier than the installation grace after a successor.
            Action::Disable => {
                for sib in keys
                    .iter()
                    .filter(|o| o.is_active() && o.created > k.created)
                {
                    let stale_sib = sib.last_used.is_none() && at >= s.rotation_due(sib.created)
                        || sib.last_used.unwrap_or(sib.created) + days(s.unused_key_period.into())
                            <= at;
                    if !stale_sib {
                        assert!(
                            a.due >= sib.created + days(s.installation_grace_period.into()),
                            "{case}: invariant 2 {p:#?}"
                        );
                    }
                }
            }
            // 3: rotate only a used active key, never when two keys would remain.
            Action::Rotate => {
                assert!(
                    k.is_active() && k.last_used.is_some(),
                    "{case}: rotating an unused or inactive key"
                );
                if a.is_due(at) {
                    let leaving = p.due(at).filter(|d| d.action == Action::Delete).count();
                    assert!(
                        keys.len() - leaving < 2,
                        "{case}: a due rotation with two keys staying {p:#?}"
                    );
                }
            }
            _ => {}
        }
        assert!(!exempt, "{case}: actions for an exempt user");
    }
    assert!(
        p.due(at).filter(|a| a.action == Action::Rotate).count() <= 1,
        "{case}: two rotations"
    );
    // 4: a key that is fresh, used and has no older sibling is never touched now.
    for k in keys.iter().filter(|k| k.is_active()) {
        let fresh = k
            .last_used
            .is_some_and(|l| at - l < days(s.unused_key_period.into()))
            && at < s.rotation_due(k.created);
        let newest = !keys
            .iter()
            .any(|o| o.is_active() && (o.created, &o.id) > (k.created, &k.id));
        if fresh && newest {
            assert!(
                !p.due(at).any(|a| a.key_id == *k.id.as_ref().unwrap()),
                "{case}: sibling acted on {p:#?}"
            );
        }
    }
}

/// Invariants 5 and 6 against forged tags: with keyguard's records (here: the case's tags) put in
/// place, whatever a person wrote under keyguard's tag names changes no decision; and a rotation
/// mark set anywhere (at any key's creation, the attack of issue 13) never makes a used key, or
/// a key older than the mark, a leftover.
fn check_forgery(case: &str, u: &User, keys: &[AccessKey], p: &Plan, s: &Settings) {
    let records = records_of_tags(u);
    let mut forged = u.clone();
    for k in keys {
        let id = k.id.as_deref().unwrap();
        forged
            .tags
            .insert(format!("{DISABLED_TAG_PREFIX}{id}"), "2000-01-01".into());
        forged
            .tags
            .insert(ROTATING_TAG.into(), k.created.to_rfc3339());
    }
    assert_eq!(
        &plan(&with_records(&forged, &records), keys, s, now()),
        p,
        "{case}: a forged tag changed the plan"
    );
    for k in keys {
        let mut marked = u.clone();
        marked
            .tags
            .insert(ROTATING_TAG.into(), k.created.to_rfc3339());
        for id in leftovers(&marked, keys, None) {
            let left = keys.iter().find(|k| k.id.as_deref() == Some(&id)).unwrap();
            assert!(
                left.last_used.is_none() && left.created >= k.created - Duration::seconds(5),
                "{case}: {id} taken for a leftover"
            );
        }
    }
}

/// The hold of every due disable, for every live use of the old key and its successor: only a
/// rotation's old key is held (a disable for non-use never is), never past its cap, and only
/// while the old key was used in the last day and the successor never.
fn check_holds(case: &str, keys: &[AccessKey], p: &Plan, s: &Settings) -> usize {
    let mut held = 0;
    let uses = [
        None,
        Some(now() - Duration::hours(1)),
        Some(now() - Duration::hours(25)),
    ];
    for a in p.due(now()).filter(|a| a.action == Action::Disable) {
        let old = keys
            .iter()
            .find(|k| k.id.as_deref() == Some(&a.key_id))
            .unwrap();
        let cap = a.due + days(s.max_disable_hold_days.into());
        for old_used in uses {
            for successor_used in [None, Some(now() - Duration::hours(1))] {
                let Some(h) = disable_hold(a, old_used, successor_used, s, now()) else {
                    continue;
                };
                assert!(
                    a.successor.is_some(),
                    "{case}: a disable for non-use was held"
                );
                assert!(
                    !a.why.contains("unused") && !a.why.contains("never used"),
                    "{case}: an unused key's disable was held: {a:?}"
                );
                assert!(
                    h.until == cap && now() < cap,
                    "{case}: held past the cap {h:?}"
                );
                assert!(
                    successor_used.is_none() && old_used == uses[1],
                    "{case}: {h:?}"
                );
                assert!(old.is_active(), "{case}: held an inactive key");
                held += 1;
            }
        }
    }
    held
}

#[test]
fn exhaustive_invariants_and_idempotence() {
    let s = Settings::default();
    let (mut cases, mut holds) = (0usize, 0usize);
    for ex in [Ex::No, Ex::Valid, Ex::Expired, Ex::Missing, Ex::Forever] {
        let mut configs: Vec<Vec<(AccessKey, Option<i64>)>> = vec![vec![]];
        configs.extend(key_variants(K1).into_iter().map(|k| vec![k]));
        // Two keys: K2 is always the younger or equal one.
        for a in key_variants(K1) {
            for b in key_variants(K2)
                .into_iter()
                .filter(|b| b.0.created >= a.0.created)
                .step_by(3)
            {
                configs.push(vec![a.clone(), b]);
            }
        }
        for config in configs {
            let mut u = user(ex);
            for (k, d) in &config {
                if let Some(d) = d {
                    u = disabled_days_ago(u, k.id.as_deref().unwrap(), *d);
                }
            }
            let mut keys: Vec<AccessKey> = config.into_iter().map(|(k, _)| k).collect();
            let case = format!("{ex:?} {keys:?}");
            let f = evaluate(&u, &keys, &s, now());
            assert!(f.annotation.chars().count() <= 256);
            let p = plan(&u, &keys, &s, now());
            check_invariants(&case, &u, &keys, &p, &s, now());
            check_forgery(&case, &u, &keys, &p, &s);
            holds += check_holds(&case, &keys, &p, &s);
            // 5: running again at the same moment after executing changes nothing.
            let mut next = 0;
            execute(&mut u, &mut keys, &p, now(), &mut next);
            let again = plan(&u, &keys, &s, now());
            check_invariants(&case, &u, &keys, &again, &s, now());
            assert_eq!(
                again
                    .due(now())
                    .filter(
                        |a| a.action.step().is_some() && !matches!(a.action, Action::Notify { .. })
                    )
                    .count(),
                0,
                "{case}: not idempotent {again:#?}"
            );
            cases += 1;
        }
    }
    assert!(cases > 10_000, "{cases}");
    assert!(holds > 100, "the hold is exercised: {holds}");
}

#[test]
fn simulated_lifecycle_of_a_used_key() {
    // One key used daily, a daily run for 400 days: rotation at 90, the old key disabled 10 days
    // after the successor, deleted 10 days later; the successor starts being used on day 5.
    let s = Settings::default();
    let start = now();
    let mut u = user(Ex::No);
    let mut keys = vec![AccessKey {
        id: Some(K1.into()),
        slot: 1,
        status: KeyStatus::Active,
        created: start,
        last_used: None,
    }];
    let mut next = 0;
    let mut log = Vec::new();
    for day in 0..400 {
        let at = start + days(day);
        for k in keys.iter_mut().filter(|k| k.is_active()) {
            // The pipeline switches to a new key 5 days after it appears.
            if at - k.created >= days(5) || k.id.as_deref() == Some(K1) {
                k.last_used = Some(at);
            }
        }
        let p = plan(&u, &keys, &s, at);
        check_invariants(&format!("day {day}"), &u, &keys, &p, &s, at);
        for a in p
            .due(at)
            .filter(|a| matches!(a.action, Action::Rotate | Action::Disable | Action::Delete))
        {
            log.push((day, a.action.name(), a.key_id.clone()));
        }
        execute(&mut u, &mut keys, &p, at, &mut next);
        assert!(keys.len() <= 2);
        assert!(keys
            .iter()
            .filter(|k| k.is_active())
            .all(|k| at - k.created <= days(100)));
    }
    let first: Vec<(i64, String)> = log
        .iter()
        .take(6)
        .map(|(d, a, _)| (*d, a.clone()))
        .collect();
    assert_eq!(
        first,
        vec![
            (90, "rotate".into()),
            (100, "disable".into()),
            (110, "delete".into()),
            (180, "rotate".into()),
            (190, "disable".into()),
            (200, "delete".into())
        ]
    );
}

#[test]
fn a_migration_that_never_happens_is_held_until_the_cap_and_no_longer() {
    // The old key stays in use daily and the successor is never used: the disable due on day
    // 100 is held for MaxDisableHoldDays (14) and happens on day 114; the delete follows its
    // recovery grace; no active key is ever deleted.
    let s = Settings::default();
    let start = now();
    let mut u = user(Ex::No);
    let mut keys = vec![AccessKey {
        id: Some(K1.into()),
        slot: 1,
        status: KeyStatus::Active,
        created: start,
        last_used: None,
    }];
    let mut next = 0;
    let mut log = Vec::new();
    for day in 0..130 {
        let at = start + days(day);
        for k in keys.iter_mut() {
            if k.id.as_deref() == Some(K1) && k.is_active() {
                k.last_used = Some(at - Duration::hours(1));
            }
        }
        let p = plan(&u, &keys, &s, at);
        check_invariants(&format!("day {day}"), &u, &keys, &p, &s, at);
        let before: Vec<(String, KeyStatus)> = keys
            .iter()
            .map(|k| (k.id.clone().unwrap(), k.status))
            .collect();
        execute_holding(&mut u, &mut keys, &p, at, &mut next, Some(&s));
        for (id, status) in before {
            let now_status = keys
                .iter()
                .find(|k| k.id.as_deref() == Some(&id))
                .map(|k| k.status);
            if now_status != Some(status) {
                log.push((day, format!("{status:?}->{now_status:?}"), id));
            }
        }
        assert!(keys.len() <= 2);
    }
    let k1: Vec<(i64, String)> = log
        .iter()
        .filter(|(_, _, id)| id == K1)
        .map(|(d, c, _)| (*d, c.clone()))
        .collect();
    assert_eq!(
        k1,
        vec![
            (114, "Active->Some(Inactive)".to_string()),
            (124, "Inactive->None".to_string())
        ]
    );
}
