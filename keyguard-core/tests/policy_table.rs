//! Table-driven tests of `evaluate()` and `plan()`: explicit verdicts around every threshold,
//! regression tests for the aws-samples tool's known failures, and an exhaustive enumeration of
//! 0–2 keys × status × age × last use × disable record × exemption that checks the safety
//! invariants (`docs/invariants.md`) on every combination.

// A test is a scenario read top to bottom: clippy.toml's function length is for the code.
#![allow(clippy::too_many_lines)]

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
    /// An expiry beyond `MaxExemptionDays` (a `9999-12-31` "exemption").
    Forever,
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
        Ex::Forever => {
            u.groups.push(GROUP.into());
            u.tags.insert(EXPIRY.into(), "9999-12-31".into());
        }
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
            Reason::ExemptionTooLong { .. } => "ex-too-long",
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
        (
            "exemption until 9999-12-31, overdue",
            Ex::Forever,
            vec![active(K1, 300, Some(1))],
            NonCompliant,
            vec!["ex-too-long", "rotation"],
        ),
        (
            "exemption until 9999-12-31, fine keys",
            Ex::Forever,
            vec![active(K1, 10, Some(1))],
            NonCompliant,
            vec!["ex-too-long"],
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
        (
            "exemption beyond the cap: policy applies",
            user(Ex::Forever),
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

#[path = "policy_table/exhaustive.rs"]
mod exhaustive;

/// The cap on an exemption's length: an expiry exactly `MaxExemptionDays` ahead (to the end of
/// that day) is an exemption; a day more is not, and says why.
#[test]
fn an_exemption_longer_than_the_cap_is_a_finding() {
    let s = Settings::default();
    let mut u = user(Ex::Valid);
    let at_cap = (now() + days(365)).format("%Y-%m-%d").to_string();
    u.tags.insert(EXPIRY.into(), at_cap);
    assert!(Exemption::of(&u, &s, now()).is_valid());
    let past_cap = (now() + days(366)).format("%Y-%m-%d").to_string();
    u.tags.insert(EXPIRY.into(), past_cap.clone());
    let f = evaluate(&u, &[active(K1, 10, Some(1))], &s, now());
    assert_eq!(f.compliance, Compliance::NonCompliant);
    assert!(
        f.annotation.contains(&format!(
            "in {GROUP} until {past_cap}, longer than the 365-day cap on exemptions"
        )),
        "{}",
        f.annotation
    );
    let longer = Settings {
        max_exemption_days: 400,
        ..Settings::default()
    };
    assert!(Exemption::of(&u, &longer, now()).is_valid());
    assert!(Settings {
        max_exemption_days: 0,
        ..Settings::default()
    }
    .validate()
    .is_err());
}
