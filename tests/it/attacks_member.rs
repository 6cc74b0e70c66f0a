//! What one member account's administrator, or an IAM user allowed to change only itself, tries
//! against keyguard, one test per attack, against the rig: make the account unreadable, have a
//! spreadsheet run a formula. Each fails if its fix is undone.

use chrono::{SubsecRound, Utc};
use serde_json::Value;

use crate::remediator::{member_account, remediator, scheduled_run, spec};
use crate::report::keyguard;
use crate::support::{seed, Org, UserSpec};

/// An IAM path may hold any printable ASCII, commas included: a user under `/a,b/` once made
/// the credential report fail to parse, and the account's evaluation, sweep and report with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_under_a_comma_path_cannot_make_the_account_unreadable() {
    let org = Org::new(1).await;
    let member = org.members[0].clone();
    let cfg = org.member(0).await;
    let now = Utc::now().trunc_subsecs(0);
    let hostile = UserSpec {
        path: "/a,b/c,,d/".into(),
        ..spec("pathed,user", vec![(100, Some(1), true)])
    };
    seed(
        &cfg,
        &member,
        &[hostile, spec("victim", vec![(100, Some(1), true)])],
        now,
    )
    .await;

    // The attack is real: IAM's (the rig's) report leaves the commas of the path unquoted.
    let iam = aws_sdk_iam::Client::new(&cfg);
    while iam
        .generate_credential_report()
        .send()
        .await
        .unwrap()
        .state()
        != Some(&aws_sdk_iam::types::ReportStateType::Complete)
    {}
    let report = iam.get_credential_report().send().await.unwrap();
    let text = String::from_utf8(report.content().unwrap().as_ref().to_vec()).unwrap();
    let width = |l: &str| l.split(',').count();
    let header = width(text.lines().next().unwrap());
    assert!(text.lines().any(|l| width(l) > header + 2), "{text}");

    // The Config rule's reading (audit): every user evaluated, the comma'd one too.
    let env = org.env().await;
    let out = keyguard(&["audit", "--account", &member, "--json"], &env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let verdict = |user: &str| {
        rows.iter()
            .find(|r| r["user_name"] == user)
            .map(|r| r["compliance"].as_str().unwrap().to_string())
    };
    assert_eq!(
        verdict("victim").as_deref(),
        Some("NON_COMPLIANT"),
        "{rows:?}"
    );
    assert_eq!(
        verdict("pathed,user").as_deref(),
        Some("NON_COMPLIANT"),
        "{rows:?}"
    );

    // The sweep remediates both.
    let r = remediator(&org, true).await;
    let report = scheduled_run(&r, member_account(&org, 0), now).await;
    assert!(report.error.is_none(), "{report:#?}");
    for user in ["victim", "pathed,user"] {
        assert!(
            report
                .actions
                .iter()
                .any(|a| a.user == user && a.action == remediator::ActionKind::Rotate),
            "{user}: {report:#?}"
        );
    }
}

/// A user named `=1+1` (or `+1+1`, `-2+3`, `@SUM(1)`) in the CLI's CSV: a spreadsheet must see
/// text, as in the report's CSVs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clis_csv_does_not_open_as_formulas() {
    let org = Org::new(1).await;
    let member = org.members[0].clone();
    let cfg = org.member(0).await;
    let now = Utc::now().trunc_subsecs(0);
    let names = ["=1+1", "+1+1", "-2+3", "@SUM(1)"];
    let specs: Vec<UserSpec> = names
        .iter()
        .map(|n| spec(n, vec![(100, Some(1), true)]))
        .collect();
    seed(&cfg, &member, &specs, now).await;
    let env = org.env().await;
    for command in ["audit", "plan"] {
        let out = keyguard(&[command, "--account", &member, "--format", "csv"], &env);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let column = reader
            .headers()
            .unwrap()
            .iter()
            .position(|h| h == "user_name")
            .unwrap();
        let cells: Vec<String> = reader
            .records()
            .map(|r| r.unwrap()[column].to_string())
            .collect();
        for n in names {
            assert!(
                cells.contains(&format!("'{n}")),
                "{command}: {n} not neutralized: {text}"
            );
            assert!(
                !cells.contains(&n.to_string()),
                "{command}: {n} raw: {text}"
            );
        }
    }
}
