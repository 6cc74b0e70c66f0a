//! The root user's access key (CIS 1.4, Security Hub IAM.4): a finding in `audit`, the report
//! and every run's admin digest, and never acted on.

use chrono::{Duration, SubsecRound, Utc};
use serde_json::Value;

use crate::remediator::{member_account, remediator, scheduled_run, spec};
use crate::report::{csv, keyguard, ok, tmp, weekly_example_report};
use crate::support::{seed, Org, Rig};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_root_access_key_is_a_finding_everywhere_and_never_touched() {
    let rig = Rig::get();
    let org = Org::new(1).await;
    let now = Utc::now().trunc_subsecs(0);
    let member = org.members[0].clone();
    let cfg = org.member(0).await;
    seed(&cfg, &member, &[spec("ci", vec![(95, Some(1), true)])], now).await;
    rig.root_key(
        &member,
        now - Duration::days(400),
        Some(now - Duration::days(2)),
    );

    // audit, live.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keyguard"))
        .args(["audit", "--format", "json", "--account", &member])
        .envs(org.env().await)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let root = rows
        .iter()
        .find(|r| r["user_name"] == "<root_account>")
        .unwrap_or_else(|| panic!("no root finding: {rows:#?}"));
    assert_eq!(root["compliance"], "NON_COMPLIANT");
    assert!(root["annotation"].as_str().unwrap().contains("CIS 1.4"));

    // The report of what `collect` reads from the rig has it in its table and controls.
    let dir = tmp("root-rig");
    let env = org.env().await;
    let (evidence, out) = (dir.join("evidence"), dir.join("out"));
    ok(&keyguard(
        &[
            "collect",
            "--account",
            &member,
            "--out",
            evidence.to_str().unwrap(),
        ],
        &env,
    ));
    ok(&keyguard(
        &[
            "report",
            "--weekly",
            "--evidence",
            evidence.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &env,
    ));
    let non = csv(&out
        .join(reporter::Period::weekly(now.date_naive()).id())
        .join("non-compliant-users.csv"));
    assert!(non.iter().any(|r| r["user"] == "<root_account>"), "{non:?}");

    // The sweep names it in the digest, and writes nothing for root.
    rig.reset_calls(&member);
    let r = remediator(&org, false).await;
    let report = scheduled_run(&r, member_account(&org, 0), now).await;
    assert!(
        report.notes.iter().any(|n| n.contains("ROOT ACCESS KEY")),
        "{report:#?}"
    );
    let digest = rig
        .emails(&org.management)
        .into_iter()
        .find(|e| e["to"].to_string().contains("cloud-admins@example.com"))
        .expect("the admin digest");
    assert!(
        digest["text"].as_str().unwrap().contains("ROOT ACCESS KEY"),
        "{digest}"
    );
    for event in rig.trail(&member) {
        let user = event["requestParameters"]["userName"].as_str();
        assert!(
            user.is_some_and(|u| u != "<root_account>"),
            "an IAM write without a user (root's own keys) or on root: {event}"
        );
    }
}

/// The bundled example has one account whose root user has an active key: it is in the report's
/// non-compliant table and fails CIS 1.4 / IAM.4 in the control mapping.
#[test]
fn the_example_reports_its_root_key() {
    let dir = weekly_example_report("root-report");
    let non = csv(&dir.join("non-compliant-users.csv"));
    assert!(
        non.iter()
            .any(|r| r["account"] == "410987654321" && r["user"] == "<root_account>"),
        "{non:?}"
    );
    let controls = csv(&dir.join("controls.csv"));
    for control in ["1.4", "IAM.4"] {
        let row = controls
            .iter()
            .find(|r| r["control"] == control && r["keyguard_check"].contains("root"))
            .unwrap_or_else(|| panic!("{control}: {controls:?}"));
        assert_eq!(row["failing_users"], "1", "{row:?}");
    }
}
