//! The `keyguard` binary: `audit` on the bundled example, and `collect` + `audit` against a live
//! organization in the emulator rig (the binary reaches it through `AWS_ENDPOINT_URL`, exactly as
//! it reaches AWS).

use crate::support;

use std::collections::BTreeMap;
use std::process::{Command, Output};

use chrono::{SubsecRound, Utc};
use serde_json::Value;
use support::{seed, Org, UserSpec};

fn keyguard(args: &[&str], env: &[(&str, String)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keyguard"));
    cmd.args(args).current_dir(support::repo_root());
    // Never let a developer's real AWS configuration leak into a test.
    for var in [
        "AWS_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run keyguard")
}

/// `audit --json` as (account, user) → (verdict, annotation).
fn verdicts(out: &Output) -> BTreeMap<(String, String), (String, String)> {
    assert!(
        out.status.success(),
        "keyguard failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    rows.iter()
        .map(|r| {
            (
                (
                    r["account"].as_str().unwrap().to_string(),
                    r["user_name"].as_str().unwrap().to_string(),
                ),
                (
                    r["compliance"].as_str().unwrap().to_string(),
                    r["annotation"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect()
}

#[test]
fn audit_of_the_bundled_example() {
    let out = keyguard(&["audit", "--evidence", "examples/acme"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(
        text.contains(
            "28 NON_COMPLIANT, 28 COMPLIANT users in 4 account(s) (1 with an active ROOT access key: CIS 1.4), as of 2026-11-20 09:00 UTC"
        ),
        "{text}"
    );

    let v = verdicts(&keyguard(
        &["audit", "--evidence", "examples/acme", "--json"],
        &[],
    ));
    assert_eq!(v.len(), 57, "56 users and one root user with an active key");
    assert_eq!(
        v[&("410987654321".to_string(), "<root_account>".to_string())].0,
        "NON_COMPLIANT"
    );
    assert!(
        !v.keys().any(|(a, _)| a == "610987654321"),
        "the SUSPENDED account is skipped"
    );
    let p = |u: &str| v[&("310987654321".to_string(), u.to_string())].clone();
    assert_eq!(p("payments-deploy").0, "COMPLIANT");
    assert_eq!(
        p("payments-terraform").0,
        "COMPLIANT",
        "80 days: warned, not yet due"
    );
    assert_eq!(
        p("payments-backup"),
        (
            "NON_COMPLIANT".into(),
            "AKIA…U1S6 is 97d old. Keys: AKIA…U1S6 active 97d used 1d ago".into()
        )
    );
    assert!(p("payments-reporting").1.contains("never used in 120d"));
    assert!(p("payments-metrics")
        .1
        .starts_with("AKIA…YUZH unused for 52d"));
    assert!(p("payments-sync").1.contains("2 active keys"));
    assert!(p("payments-vendor")
        .1
        .starts_with("Exempt via IAMKeyRotationExemptionGroup until 2027-01-04"));
    assert!(p("payments-vendor-old")
        .1
        .starts_with("exemption via IAMKeyRotationExemptionGroup expired 2026-10-31"));
    assert!(p("payments-scanner")
        .1
        .starts_with("in IAMKeyRotationExemptionGroup without an expiry tag"));
    assert_eq!(
        p("payments+ops@acme.example"),
        ("COMPLIANT".into(), "no access keys".into())
    );
    assert_eq!(
        p("payments-old-batch").0,
        "COMPLIANT",
        "an inactive key is not a finding"
    );

    // --as-of moves the evaluation: eleven days later the 80-day key is due.
    let later = verdicts(&keyguard(
        &[
            "audit",
            "--evidence",
            "examples/acme",
            "--json",
            "--as-of",
            "2026-12-01",
        ],
        &[],
    ));
    assert_eq!(
        later[&("310987654321".to_string(), "payments-terraform".to_string())].0,
        "NON_COMPLIANT"
    );
    // --account narrows, settings flags apply.
    let one = verdicts(&keyguard(
        &[
            "audit",
            "--evidence",
            "examples/acme",
            "--json",
            "--account",
            "410987654321",
            "--rotation-period",
            "75",
        ],
        &[],
    ));
    assert_eq!(one.len(), 14 + 1, "its 14 users and its root user");
    assert_eq!(
        one[&("410987654321".to_string(), "data-terraform".to_string())].0,
        "NON_COMPLIANT"
    );
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("keyguard-bad-evidence-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("accounts.json"), "{ not json").unwrap();
    let out = keyguard(&["audit", "--evidence", dir.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("accounts.json") && err.contains("not the expected AWS CLI JSON"),
        "{err}"
    );

    // A readable org with one broken account: the others are still printed, the exit code says so.
    std::fs::write(
        dir.join("accounts.json"),
        r#"{"Accounts":[{"Id":"111111111111","Name":"a"},{"Id":"210987654321","Name":"b"}]}"#,
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("210987654321")).unwrap();
    for f in [
        "credential-report.csv",
        "account-authorization-details.json",
    ] {
        std::fs::copy(
            support::repo_root()
                .join("examples/acme/210987654321")
                .join(f),
            dir.join("210987654321").join(f),
        )
        .unwrap();
    }
    let out = keyguard(
        &["audit", "--evidence", dir.to_str().unwrap(), "--json"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("account 111111111111 could not be read"));
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.len(), 14);

    let out = keyguard(
        &[
            "audit",
            "--evidence",
            "examples/acme",
            "--recovery-grace-period",
            "0",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("RecoveryGracePeriod"));
    let out = keyguard(
        &[
            "audit",
            "--evidence",
            "examples/acme",
            "--as-of",
            "next week",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a date"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn live_audit_and_collect_round_trip() {
    let org = Org::new(2).await;
    let t = Utc::now().trunc_subsecs(0);
    let spec = |name: &str, keys: &[(i64, Option<i64>, bool)]| UserSpec {
        name: name.into(),
        keys: keys.to_vec(),
        ..UserSpec::default()
    };
    seed(
        &org.member(0).await,
        &org.members[0],
        &[
            spec("ci", &[(100, Some(1), true)]),
            spec("ok", &[(5, Some(1), true)]),
        ],
        t,
    )
    .await;
    seed(
        &org.member(1).await,
        &org.members[1],
        &[UserSpec {
            path: "/ci/".into(),
            ..spec("deploy+bot@x", &[(50, None, true), (10, Some(1), true)])
        }],
        t,
    )
    .await;
    let env = org.env().await;
    let as_of = t.to_rfc3339();
    let live = verdicts(&keyguard(&["audit", "--json", "--as-of", &as_of], &env));
    // The management account (no users) and both members.
    let (m0, m1) = (&org.members[0], &org.members[1]);
    assert_eq!(live[&(m0.clone(), "ci".into())].0, "NON_COMPLIANT");
    assert_eq!(live[&(m0.clone(), "ok".into())].0, "COMPLIANT");
    let bot = &live[&(m1.clone(), "deploy+bot@x".into())];
    assert!(
        bot.1.contains("never used in 50d") && bot.1.contains("2 active keys"),
        "{bot:?}"
    );
    assert_eq!(live.len(), 3);

    // collect writes an evidence folder that audits to exactly the same verdicts.
    let dir = std::env::temp_dir().join(format!(
        "keyguard-collect-{}-{}",
        std::process::id(),
        org.management
    ));
    let out = keyguard(&["collect", "--out", dir.to_str().unwrap()], &env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in [
        "credential-report.csv",
        "account-authorization-details.json",
        "access-keys.json",
    ] {
        assert!(dir.join(m1).join(f).exists(), "{f}");
    }
    let offline = verdicts(&keyguard(
        &[
            "audit",
            "--json",
            "--evidence",
            dir.to_str().unwrap(),
            "--as-of",
            &as_of,
        ],
        &env,
    ));
    assert_eq!(
        offline.keys().collect::<Vec<_>>(),
        live.keys().collect::<Vec<_>>()
    );
    for (who, (verdict, why)) in &live {
        assert_eq!(&offline[who].0, verdict, "{who:?}");
        // Compliant users are named by slot live (no ListAccessKeys spent); evidence has ids.
        if verdict == "NON_COMPLIANT" {
            assert_eq!(&offline[who].1, why, "{who:?}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();

    // An account whose role cannot be assumed is reported; the others are audited.
    let out = keyguard(
        &["audit", "--json", "--account", m0, "--account", "12345"],
        &env,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("account 12345 could not be read"));
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.len(), 2);
}

/// `keyguard completions <shell>` prints a script that names every subcommand and a
/// subcommand's flags, for bash, zsh and fish; an unknown shell is a usage error.
#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = keyguard(&["completions", shell], &[]);
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        for word in [
            "audit",
            "collect",
            "plan",
            "remediate",
            "restore",
            "report",
            "leaked",
            "state-table",
        ] {
            assert!(script.contains(word), "{shell}: {word} missing");
        }
    }
    let bad = keyguard(&["completions", "cmd.exe"], &[]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("possible values"));
}

/// `--format table|json|csv` on `audit` and `plan` (`--json` an alias): machine formats print
/// only their rows on stdout, the same rows in JSON and CSV, and no key id in full anywhere.
#[test]
fn audit_and_plan_formats() {
    let example = ["--evidence", "examples/acme", "--as-of", "2026-11-30"];
    let run = |cmd: &str, extra: &[&str]| {
        let mut args = vec![cmd];
        args.extend(example);
        args.extend(extra);
        let out = keyguard(&args, &[]);
        assert!(
            out.status.success(),
            "{cmd} {extra:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let full_id = regex_lite_full_key_id;
    for cmd in ["audit", "plan"] {
        let json = run(cmd, &["--format", "json"]);
        assert_eq!(
            json,
            run(cmd, &["--json"]),
            "{cmd}: --json is --format json"
        );
        let rows: Vec<Value> = serde_json::from_str(&json).expect("only JSON on stdout");
        let csv = run(cmd, &["--format", "csv"]);
        let mut reader = csv::Reader::from_reader(csv.as_bytes());
        let records = reader
            .records()
            .collect::<Result<Vec<_>, _>>()
            .expect("valid CSV");
        if cmd == "audit" {
            assert_eq!(records.len(), rows.len(), "one CSV row per finding");
        }
        let ocsf = run(cmd, &["--format", "ocsf"]);
        let findings: Vec<Value> = serde_json::from_str(&ocsf).expect("only OCSF JSON on stdout");
        assert!(findings.iter().all(|f| f["class_uid"] == 2003));
        for text in [&json, &csv, &ocsf, &run(cmd, &[])] {
            assert!(!full_id(text), "{cmd}: a key id in full");
        }
        insta::assert_snapshot!(format!("{cmd}_csv"), csv);
    }
}

/// True when `text` holds an access key id in full (AKIA/ASIA and 16 more characters).
fn regex_lite_full_key_id(text: &str) -> bool {
    text.match_indices("AKIA")
        .chain(text.match_indices("ASIA"))
        .any(|(i, _)| {
            text[i + 4..]
                .bytes()
                .take(16)
                .filter(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
                .count()
                == 16
        })
}

/// A live run shows accounts done / total and failures on stderr when stderr is a terminal (run
/// under `script`, which gives the process a pseudo-terminal), and nothing when it is a pipe.
#[tokio::test]
async fn progress_on_a_terminal_and_nothing_on_a_pipe() {
    let org = Org::new(2).await;
    let env = org.env().await;
    let piped = keyguard(&["audit", "--format", "csv"], &env);
    assert!(piped.status.success());
    let stderr = String::from_utf8_lossy(&piped.stderr);
    assert!(
        !stderr.contains("accounts"),
        "no progress on a pipe: {stderr}"
    );
    let command = format!("{} audit --format csv", env!("CARGO_BIN_EXE_keyguard"));
    let tty = Command::new("script")
        .args(["-qefc", &command, "/dev/null"])
        .envs(env.iter().map(|(k, v)| (k, v.as_str())))
        .output()
        .expect("script (util-linux) runs the CLI on a pseudo-terminal");
    assert!(tty.status.success());
    let shown = String::from_utf8_lossy(&tty.stdout);
    assert!(
        shown.contains("accounts") && shown.contains("failed"),
        "progress on a terminal: {shown}"
    );
}
