//! The `rule-lambda` bootstrap binary (the one packaged for Lambda) answers a Config event under
//! cargo-lambda's local Lambda runtime: `cargo lambda watch --only-lambda-apis` serves the runtime
//! API, the prebuilt binary polls it as it polls AWS Lambda's, `cargo lambda invoke` sends the
//! event. The function reaches the emulator rig through `AWS_ENDPOINT_URL`.

#[path = "../../tests/support/mod.rs"]
mod support;

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{SubsecRound, Utc};
use serde_json::Value;
use support::{fixture, seed, Org, Rig, UserSpec};

/// Kills the process when dropped.
struct Running(Child);
impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The bootstrap binary, built by this same `cargo test` (same profile, same target dir).
fn bootstrap() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rule-lambda"))
}

/// `PATH` with the rig's venv first (cargo-lambda is installed there by tests/emulator/setup.sh).
fn path_with_venv() -> String {
    let python = support::rig_python();
    let bin = python.parent().unwrap();
    assert!(
        bin.join("cargo-lambda").exists(),
        "cargo-lambda is missing from {}: run tests/emulator/setup.sh",
        bin.display()
    );
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn invoke(port: u16, event: &Value, path: &str) -> std::process::Output {
    let file =
        std::env::temp_dir().join(format!("keyguard-event-{}-{port}.json", std::process::id()));
    std::fs::write(&file, event.to_string()).unwrap();
    let child = Command::new("cargo")
        .args([
            "lambda",
            "invoke",
            "_",
            "--invoke-address",
            "127.0.0.1",
            "--invoke-port",
            &port.to_string(),
            "--data-file",
        ])
        .arg(&file)
        .env("PATH", path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cargo lambda invoke");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    let out = match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(out) => out.expect("cargo lambda invoke"),
        Err(_) => {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            panic!("cargo lambda invoke did not answer in 120 s: did the bootstrap die at start?");
        }
    };
    std::fs::remove_file(&file).unwrap();
    out
}

#[tokio::test]
async fn release_bootstrap_answers_a_config_event_under_cargo_lambda() {
    let org = Org::new(1).await;
    let member = org.members[0].clone();
    let t = Utc::now().trunc_subsecs(0);
    let spec = UserSpec {
        name: "ci".into(),
        keys: vec![(120, Some(1), true)],
        ..UserSpec::default()
    };
    let users = seed(&org.member(0).await, &member, &[spec], t).await;
    let path = path_with_venv();
    let port = free_port();

    let _watch = Running(
        Command::new("cargo")
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
                &port.to_string(),
            ])
            .current_dir(support::repo_root())
            .env("PATH", &path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cargo lambda watch"),
    );
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "cargo lambda watch did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // The function runs as the central account, as it would in AWS.
    let env = org.env().await;
    let _function = Running(
        Command::new(bootstrap())
            .env_clear()
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt"),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", "_")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .envs(env)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("KEYGUARD_MEMBER_ROLE", "keyguard-member")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the rule-lambda bootstrap"),
    );

    let text = fixture("rule-lambda/fixtures/scheduled.json")
        .replace("\"{{parameters}}\"", "\"\"")
        .replace("{{account}}", &member)
        .replace("{{time}}", &t.to_rfc3339())
        .replace("{{token}}", "keyguard-access-keys/bootstrap");
    let event: Value = serde_json::from_str(&text).unwrap();
    let out = invoke(port, &event, &path);
    assert!(
        out.status.success(),
        "invoke failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).expect("the handler's JSON summary");
    assert_eq!(summary["account"], member.as_str());
    assert_eq!(summary["non_compliant"], 1);
    assert_eq!(summary["message_type"], "ScheduledNotification");

    let stored = Rig::get().calls(&member);
    assert_eq!(stored.get("config:PutEvaluations"), Some(&1));
    let config = aws_sdk_config::Client::new(&org.member(0).await);
    let results = config
        .get_compliance_details_by_config_rule()
        .config_rule_name("keyguard-access-keys")
        .send()
        .await
        .unwrap();
    let r = &results.evaluation_results()[0];
    assert_eq!(
        r.evaluation_result_identifier()
            .unwrap()
            .evaluation_result_qualifier()
            .unwrap()
            .resource_id(),
        Some(users["ci"].user_id.as_str())
    );
    assert_eq!(r.compliance_type().unwrap().as_str(), "NON_COMPLIANT");

    // A bad event is an invocation error with the handler's message.
    let mut bad = event.clone();
    bad["ruleParameters"] = Value::String(r#"{"RotationPeriod":"soon"}"#.into());
    let out = invoke(port, &bad, &path);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success() && all.contains("RotationPeriod"),
        "{all}"
    );
}
