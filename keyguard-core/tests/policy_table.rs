//! Table-driven tests of `evaluate()` and `plan()`: explicit verdicts around every threshold,
//! regression tests for the aws-samples tool's known failures, and an exhaustive enumeration of
//! 0–2 keys × status × age × last use × disable record × exemption that checks the safety
//! invariants on every combination.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use keyguard_core::{
    evaluate, leftovers, plan, records::records_of_tags, with_records, AccessKey, Action,
    Compliance, Exemption, KeyStatus, Plan, PlanNote, Reason, Settings, Step, User,
    DISABLED_TAG_PREFIX, ROTATING_TAG,
};

const GROUP: &str = "IAMKeyRotationExemptionGroup";
const EXPIRY: &str = "keyguard:exemption-expires";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
}
fn days(n: i64) -> Duration {
    Duration::days(n)
}
fn key(id: &str, status: KeyStatus, age: i64, used_ago: Option<i64>) -> AccessKey {
    AccessKey {
        id: Some(id.into()),
        slot: 1,
        status,
        created: now() - days(age),
        last_used: used_ago.map(|d| now() - days(d)),
    }
}
fn active(id: &str, age: i64, used_ago: Option<i64>) -> AccessKey {
    key(id, KeyStatus::Active, age, used_ago)
}
fn inactive(id: &str, age: i64, used_ago: Option<i64>) -> AccessKey {
    key(id, KeyStatus::Inactive, age, used_ago)
}
const K1: &str = "AKIAAAAAAAAAAAAAONE1";
const K2: &str = "AKIAAAAAAAAAAAAATWO2";

#[derive(Clone, Copy, Debug)]
enum Ex {
    No,
    Valid,
    Expired,
    Missing,
    Garbage,
}

fn user(ex: Ex) -> User {
    let mut u = User {
        name: "ci+deploy@x".into(),
        user_id: "AIDAEXAMPLE".into(),
        arn: "arn:aws:iam::111111111111:user/ci/ci+deploy@x".into(),
        path: "/ci/".into(),
        groups: vec!["developers".into()],
        tags: BTreeMap::new(),
    };
    match ex {
        Ex::No => {}
        Ex::Valid => {
            u.groups.push(GROUP.into());
            u.tags.insert(
                EXPIRY.into(),
                (now() + days(30)).format("%Y-%m-%d").to_string(),
            );
        }
        Ex::Expired => {
            u.groups.push(GROUP.into());
            u.tags.insert(
                EXPIRY.into(),
                (now() - days(1)).format("%Y-%m-%d").to_string(),
            );
        }
        Ex::Missing => u.groups.push(GROUP.into()),
        Ex::Garbage => {
            u.groups.push(GROUP.into());
            u.tags.insert(EXPIRY.into(), "soon".into());
        }
    }
    u
}
fn disabled_days_ago(mut u: User, id: &str, d: i64) -> User {
    u.tags.insert(
        format!("{DISABLED_TAG_PREFIX}{id}"),
        (now() - days(d)).to_rfc3339(),
    );
    u
}

fn reason_kinds(r: &[Reason]) -> Vec<&'static str> {
    r.iter()
        .map(|r| match r {
            Reason::RotationDue { .. } => "rotation",
            Reason::Unused { .. } => "unused",
            Reason::TwoActiveKeys => "two",
            Reason::ExemptionMissingExpiry { .. } => "ex-missing",
            Reason::ExemptionInvalidExpiry { .. } => "ex-invalid",
            Reason::ExemptionExpired { .. } => "ex-expired",
            Reason::RootAccessKey { .. } => "root",
        })
        .collect()
}

#[test]
fn evaluate_table() {
    use Compliance::*;
    let s = Settings::default();
    // (case, exemption, keys, verdict, reasons)
    type Case = (
        &'static str,
        Ex,
        Vec<AccessKey>,
        Compliance,
        Vec<&'static str>,
    );
    let table: Vec<Case> = vec![
        ("no keys", Ex::No, vec![], Compliant, vec![]),
        (
            "fresh used",
            Ex::No,
            vec![active(K1, 10, Some(1))],
            Compliant,
            vec![],
        ),
        (
            "day 89",
            Ex::No,
            vec![active(K1, 89, Some(1))],
            Compliant,
            vec![],
        ),
        (
            "day 90",
            Ex::No,
            vec![active(K1, 90, Some(1))],
            NonCompliant,
            vec!["rotation"],
        ),
        (
            "day 91",
            Ex::No,
            vec![active(K1, 91, Some(1))],
            NonCompliant,
            vec!["rotation"],
        ),
        (
            "old inactive is fine",
            Ex::No,
            vec![inactive(K1, 400, None)],
            Compliant,
            vec![],
        ),
        (
            "never used day 44",
            Ex::No,
            vec![active(K1, 44, None)],
            Compliant,
            vec![],
        ),
        (
            "never used day 45",
            Ex::No,
            vec![active(K1, 45, None)],
            NonCompliant,
            vec!["unused"],
        ),
        (
            "used 44d ago",
            Ex::No,
            vec![active(K1, 60, Some(44))],
            Compliant,
            vec![],
        ),
        (
            "used 45d ago",
            Ex::No,
            vec![active(K1, 60, Some(45))],
            NonCompliant,
            vec!["unused"],
        ),
        (
            "used 46d ago",
            Ex::No,
            vec![active(K1, 60, Some(46))],
            NonCompliant,
            vec!["unused"],
        ),
        (
            "stale and old",
            Ex::No,
            vec![active(K1, 120, Some(100))],
            NonCompliant,
            vec!["rotation", "unused"],
        ),
        (
            "two active",
            Ex::No,
            vec![active(K1, 20, Some(1)), active(K2, 5, Some(1))],
            NonCompliant,
            vec!["two"],
        ),
        (
            "active + inactive",
            Ex::No,
            vec![active(K1, 20, Some(1)), inactive(K2, 50, Some(30))],
            Compliant,
            vec![],
        ),
        (
            "two expired active",
            Ex::No,
            vec![active(K1, 200, Some(1)), active(K2, 120, Some(2))],
            NonCompliant,
            vec!["rotation", "rotation", "two"],
        ),
        (
            "exempt overdue",
            Ex::Valid,
            vec![active(K1, 300, Some(1))],
            Compliant,
            vec!["rotation"],
        ),
        ("exempt no keys", Ex::Valid, vec![], Compliant, vec![]),
        (
            "expired exemption, fine keys",
            Ex::Expired,
            vec![active(K1, 10, Some(1))],
            NonCompliant,
            vec!["ex-expired"],
        ),
        (
            "expired exemption, overdue",
            Ex::Expired,
            vec![active(K1, 100, Some(1))],
            NonCompliant,
            vec!["ex-expired", "rotation"],
        ),
        (
            "exemption without expiry",
            Ex::Missing,
            vec![],
            NonCompliant,
            vec!["ex-missing"],
        ),
        (
            "exemption with garbage expiry",
            Ex::Garbage,
            vec![],
            NonCompliant,
            vec!["ex-invalid"],
        ),
    ];
    for (case, ex, keys, verdict, reasons) in table {
        let f = evaluate(&user(ex), &keys, &s, now());
        assert_eq!(f.compliance, verdict, "{case}: {}", f.annotation);
        assert_eq!(
            reason_kinds(&f.reasons),
            reasons,
            "{case}: {}",
            f.annotation
        );
        assert!(f.annotation.chars().count() <= 256, "{case}");
        assert!(
            !f.annotation.contains(K1) && !f.annotation.contains(K2),
            "{case}: unmasked id"
        );
    }
}

#[test]
fn unused_check_off_and_single_key_off() {
    let s = Settings {
        unused_key_period: 0,
        single_active_key: false,
        ..Settings::default()
    };
    let f = evaluate(
        &user(Ex::No),
        &[active(K1, 80, None), active(K2, 10, Some(100))],
        &s,
        now(),
    );
    assert_eq!(f.compliance, Compliance::Compliant, "{}", f.annotation);
}

#[test]
fn annotation_names_keys_masked_with_age_and_use() {
    let f = evaluate(
        &user(Ex::No),
        &[active(K1, 120, Some(3)), inactive(K2, 5, None)],
        &Settings::default(),
        now(),
    );
    assert_eq!(
        f.annotation,
        "AKIA…ONE1 is 120d old. Keys: AKIA…ONE1 active 120d used 3d ago; AKIA…TWO2 inactive 5d never used"
    );
    let f = evaluate(
        &user(Ex::Valid),
        &[active(K1, 120, Some(3))],
        &Settings::default(),
        now(),
    );
    assert!(f.annotation.starts_with("Exempt via IAMKeyRotationExemptionGroup until 2026-07-01. waived: AKIA…ONE1 is 120d old"), "{}", f.annotation);
    // Slot-named keys (credential report, no id) are named key1/key2.
    let mut k = active(K1, 10, Some(1));
    k.id = None;
    k.slot = 2;
    assert_eq!(
        evaluate(&user(Ex::No), &[k], &Settings::default(), now()).annotation,
        "Keys: key2 active 10d used 1d ago"
    );
}

#[test]
fn annotation_is_truncated_safely() {
    let mut u = user(Ex::Missing);
    u.groups = vec!["G".repeat(128)];
    let s = Settings {
        exemption_group: "G".repeat(128),
        ..Settings::default()
    };
    let f = evaluate(
        &u,
        &[active(K1, 500, None), active(K2, 400, None)],
        &s,
        now(),
    );
    assert_eq!(f.annotation.chars().count(), 256);
    assert!(f.annotation.ends_with('…'));
}

#[test]
fn boundary_second_is_deterministic() {
    let s = Settings::default();
    let mut k = active(K1, 0, Some(0));
    let due = k.created + days(90);
    for (at, expect_due) in [
        (due - Duration::seconds(1), false),
        (due, true),
        (due + Duration::seconds(1), true),
    ] {
        k.last_used = Some(at - days(1));
        let f = evaluate(&user(Ex::No), std::slice::from_ref(&k), &s, at);
        assert_eq!(
            f.compliance == Compliance::NonCompliant,
            expect_due,
            "at {at}"
        );
        let p = plan(&user(Ex::No), std::slice::from_ref(&k), &s, at);
        assert_eq!(
            p.due(at).any(|a| a.action == Action::Rotate),
            expect_due,
            "at {at}"
        );
        // The same inputs always give the same plan.
        assert_eq!(p, plan(&user(Ex::No), std::slice::from_ref(&k), &s, at));
    }
}

fn due_steps(p: &Plan) -> Vec<(String, &'static str)> {
    p.due(now())
        .filter_map(|a| match a.action {
            Action::Rotate | Action::Disable | Action::Delete | Action::RecordDisabled => Some((
                a.key_id[a.key_id.len() - 4..].to_string(),
                leak(a.action.name()),
            )),
            _ => None,
        })
        .collect()
}
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

#[test]
fn plan_table() {
    let s = Settings::default();
    let no = user(Ex::No);
    // (case, user, keys, due steps now)
    type Case = (
        &'static str,
        User,
        Vec<AccessKey>,
        Vec<(&'static str, &'static str)>,
    );
    let table: Vec<Case> = vec![
        ("fresh", no.clone(), vec![active(K1, 10, Some(1))], vec![]),
        ("day 89", no.clone(), vec![active(K1, 89, Some(1))], vec![]),
        (
            "day 90 used: rotate",
            no.clone(),
            vec![active(K1, 90, Some(1))],
            vec![("ONE1", "rotate")],
        ),
        (
            "day 90 never used: disable",
            no.clone(),
            vec![active(K1, 90, None)],
            vec![("ONE1", "disable")],
        ),
        (
            "stale used key: disable",
            no.clone(),
            vec![active(K1, 60, Some(50))],
            vec![("ONE1", "disable")],
        ),
        (
            "rotated 9 days ago: wait",
            no.clone(),
            vec![active(K1, 99, Some(1)), active(K2, 9, None)],
            vec![],
        ),
        (
            "rotated 10 days ago: disable old",
            no.clone(),
            vec![active(K1, 100, Some(1)), active(K2, 10, None)],
            vec![("ONE1", "disable")],
        ),
        (
            "disabled 9 days ago: wait",
            disabled_days_ago(no.clone(), K1, 9),
            vec![inactive(K1, 109, Some(10)), active(K2, 19, Some(1))],
            vec![],
        ),
        (
            "disabled 10 days ago: delete",
            disabled_days_ago(no.clone(), K1, 10),
            vec![inactive(K1, 110, Some(11)), active(K2, 20, Some(1))],
            vec![("ONE1", "delete")],
        ),
        (
            "untagged inactive: record",
            no.clone(),
            vec![inactive(K1, 300, Some(200))],
            vec![("ONE1", "record-disabled")],
        ),
        (
            "inactive past grace + due active: delete then rotate",
            disabled_days_ago(no.clone(), K1, 30),
            vec![inactive(K1, 300, Some(200)), active(K2, 95, Some(1))],
            vec![("ONE1", "delete"), ("TWO2", "rotate")],
        ),
        (
            "exempt: nothing",
            user(Ex::Valid),
            vec![active(K1, 400, Some(1)), active(K2, 300, None)],
            vec![],
        ),
        (
            "expired exemption: policy applies",
            user(Ex::Expired),
            vec![active(K1, 95, Some(1))],
            vec![("ONE1", "rotate")],
        ),
    ];
    for (case, u, keys, expect) in table {
        let p = plan(&u, &keys, &s, now());
        let got = due_steps(&p);
        let expect: Vec<(String, &str)> = expect
            .into_iter()
            .map(|(k, a)| (k.to_string(), a))
            .collect();
        assert_eq!(got, expect, "{case}: {p:#?}");
    }
}

// Regression tests for the aws-samples tool's known failures.

#[test]
fn never_used_expired_key_gets_no_new_key() {
    for s in [
        Settings::default(),
        Settings {
            unused_key_period: 0,
            ..Settings::default()
        },
    ] {
        let p = plan(&user(Ex::No), &[active(K1, 120, None)], &s, now());
        assert!(
            !p.actions.iter().any(|a| a.action == Action::Rotate),
            "{p:#?}"
        );
        assert!(p
            .due(now())
            .any(|a| a.action == Action::Disable && a.key_id == K1));
    }
}

#[test]
fn two_expired_active_keys_never_delete_an_active_one() {
    let keys = [active(K1, 200, Some(1)), active(K2, 120, Some(2))];
    let p = plan(&user(Ex::No), &keys, &Settings::default(), now());
    assert!(!p.due(now()).any(|a| a.action == Action::Delete), "{p:#?}");
    // The older is disabled (its sibling has existed far longer than the installation grace);
    // the newer waits for the slot.
    assert_eq!(due_steps(&p), vec![("ONE1".to_string(), "disable")]);
    assert!(p
        .notes
        .iter()
        .any(|n| matches!(n, PlanNote::RotationBlocked { key_id, .. } if key_id == K2)));
}

#[test]
fn one_used_one_unused_expired_never_attempts_a_third_key() {
    let keys = [active(K1, 200, Some(1)), active(K2, 120, None)];
    let p = plan(&user(Ex::No), &keys, &Settings::default(), now());
    assert!(!p.due(now()).any(|a| a.action == Action::Rotate), "{p:#?}");
    assert_eq!(
        due_steps(&p),
        vec![("TWO2".to_string(), "disable")],
        "only the unused key is acted on"
    );
    let rotate = p
        .actions
        .iter()
        .find(|a| a.action == Action::Rotate)
        .expect("rotation is planned after the slot frees");
    assert!(rotate.projected && rotate.due >= now() + days(10));
}

#[test]
fn lone_inactive_key_is_deleted_only_after_recovery_grace() {
    let s = Settings::default();
    for (ago, deleted) in [(0, false), (9, false), (10, true), (11, true)] {
        let u = disabled_days_ago(user(Ex::No), K1, ago);
        let p = plan(&u, &[inactive(K1, 200, Some(150))], &s, now());
        assert_eq!(
            p.due(now()).any(|a| a.action == Action::Delete),
            deleted,
            "disabled {ago}d ago"
        );
    }
    // Never deleted on first sight when keyguard does not know when it was disabled.
    let p = plan(&user(Ex::No), &[inactive(K1, 900, None)], &s, now());
    assert!(!p.due(now()).any(|a| a.action == Action::Delete));
    let del = p
        .actions
        .iter()
        .find(|a| a.action == Action::Delete)
        .unwrap();
    assert_eq!(del.due, now() + days(10));
}

#[test]
fn late_switch_on_does_not_disable_on_day_one() {
    // A 400-day-old key whose successor was created yesterday (by a person or a first run):
    // invariant 2 keeps the old key active for the whole installation grace.
    let p = plan(
        &user(Ex::No),
        &[active(K1, 400, Some(1)), active(K2, 1, None)],
        &Settings::default(),
        now(),
    );
    let disable = p
        .actions
        .iter()
        .find(|a| a.action == Action::Disable && a.key_id == K1)
        .unwrap();
    assert_eq!(disable.due, now() - days(1) + days(10));
    assert!(!p
        .due(now())
        .any(|a| matches!(a.action, Action::Disable | Action::Delete)));
}

#[test]
fn warnings_come_pending_action_warn_period_before() {
    let s = Settings::default();
    let p = plan(&user(Ex::No), &[active(K1, 80, Some(1))], &s, now());
    let warn = p
        .actions
        .iter()
        .find(|a| {
            matches!(
                a.action,
                Action::Warn {
                    step: Step::Rotate,
                    ..
                }
            )
        })
        .unwrap();
    assert_eq!(warn.due, now() + days(10) - days(14));
    assert_eq!(p.warnings(now()).count(), 1);
    assert_eq!(p.warnings(now() - days(5)).count(), 0);
    // No warning when the step is already due.
    let p = plan(&user(Ex::No), &[active(K1, 95, Some(1))], &s, now());
    assert!(!p.actions.iter().any(|a| matches!(
        a.action,
        Action::Warn {
            step: Step::Rotate,
            ..
        }
    )));
}

// ---- Exhaustive enumeration with invariant checks and a simulated executor ----

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

/// Applies the actions due at `now` the way the remediator does, re-checking IAM's own rules.
fn execute(
    u: &mut User,
    keys: &mut Vec<AccessKey>,
    p: &Plan,
    now: DateTime<Utc>,
    next_id: &mut u32,
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

#[test]
fn exhaustive_invariants_and_idempotence() {
    let s = Settings::default();
    let mut cases = 0usize;
    for ex in [Ex::No, Ex::Valid, Ex::Expired, Ex::Missing] {
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
