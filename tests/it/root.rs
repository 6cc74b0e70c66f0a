//! The root user's access key (CIS 1.4, Security Hub IAM.4): a finding in `audit`, the report
//! and every run's admin digest, and never acted on.

use chrono::{Duration, SubsecRound, Utc};
use remediator::{run_account, Forced, Mode, Selection};
use serde_json::Value;

use crate::remediator::{member_account, remediator, spec};
use crate::support::{repo_root, seed, Org, Rig};

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
    let dir = std::env::temp_dir().join(format!("keyguard-root-rig-{}", std::process::id()));
    let env = org.env().await;
    for args in [
        vec![
            "collect",
            "--account",
            member.as_str(),
            "--out",
            dir.to_str().unwrap(),
        ],
        vec![
            "report",
            "--weekly",
            "--evidence",
            dir.to_str().unwrap(),
            "--out",
            dir.join("out").to_str().unwrap(),
        ],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_keyguard"))
            .args(&args)
            .envs(env.clone())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let non = walk(&dir.join("out"))
        .into_iter()
        .find(|p| p.ends_with("non-compliant-users.csv"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .unwrap();
    assert!(non.contains("<root_account>"), "{non}");
    std::fs::remove_dir_all(&dir).unwrap();

    // The sweep names it in the digest, and writes nothing for root.
    rig.reset_calls(&member);
    let r = remediator(&org, false).await;
    let report = run_account(
        &r,
        member_account(&org, 0),
        &Selection::All,
        &Forced::No,
        Mode::Auto,
        now,
    )
    .await;
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
    let dir = std::env::temp_dir().join(format!("keyguard-root-report-{}", std::process::id()));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keyguard"))
        .args(["report", "--weekly", "--evidence"])
        .arg(repo_root().join("examples/acme"))
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let find = |name: &str| {
        walk(&dir)
            .into_iter()
            .find(|p| p.file_name().is_some_and(|f| f == name))
            .map(|p| std::fs::read_to_string(p).unwrap())
            .unwrap_or_else(|| panic!("{name} not written"))
    };
    let non = find("non-compliant-users.csv");
    assert!(
        non.lines()
            .any(|l| l.starts_with("410987654321") && l.contains("<root_account>")),
        "{non}"
    );
    let controls = find("controls.csv");
    for control in [",1.4,", ",IAM.4,"] {
        let row = controls
            .lines()
            .find(|l| l.contains(control) && l.contains("root"))
            .unwrap_or_else(|| panic!("{control}: {controls}"));
        assert!(row.ends_with(",1"), "{row}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
