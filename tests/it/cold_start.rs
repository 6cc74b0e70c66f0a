//! Cold starts of the three bootstraps, measured (not asserted): each release binary is started
//! against the local Lambda Runtime API stub (tests/support/lambda.rs) as Lambda starts it, and
//! the time from the process's start to its first `GET /runtime/invocation/next` (its init) and
//! its peak resident memory then are taken, 20 times each. No AWS endpoint is reachable: a
//! bootstrap that called AWS during init would fail or stall here.
//!
//! `cargo build --release --bins --workspace && cargo test --test it cold_start -- --ignored --nocapture`

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::lambda::{function_arn, RuntimeApi};

fn release_binary(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::support::repo_root().join("target"));
    let path = target.join("release").join(name);
    assert!(
        path.exists(),
        "{} is missing: cargo build --release --bins --workspace",
        path.display()
    );
    path
}

/// Peak resident set size of `pid` (VmHWM), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
#[ignore = "a benchmark: cargo build --release --bins --workspace && cargo test --test it cold_start -- --ignored --nocapture"]
fn cold_start_of_each_bootstrap() {
    for (bin, role) in [
        ("rule-lambda", "keyguard-member-rule"),
        ("remediator", "keyguard-remediator"),
        ("reporter", "keyguard-reporter"),
    ] {
        let path = release_binary(bin);
        let mut inits = Vec::new();
        let mut rss = Vec::new();
        for _ in 0..20 {
            let api = RuntimeApi::start(&function_arn("111122223333", bin));
            let started = Instant::now();
            let mut child = Command::new(&path)
                .env_clear()
                .env("AWS_LAMBDA_RUNTIME_API", &api.address)
                .env("AWS_LAMBDA_FUNCTION_NAME", bin)
                .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
                .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
                .env("AWS_REGION", "us-east-1")
                .env("AWS_ACCESS_KEY_ID", "AKIDCOLDSTART0000000")
                .env("AWS_SECRET_ACCESS_KEY", "cold-start-not-a-secret")
                .env("AWS_SESSION_TOKEN", "cold-start")
                // Nothing may be reached during init: an endpoint that refuses at once.
                .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
                .env("AWS_EC2_METADATA_DISABLED", "true")
                .env("KEYGUARD_EXECUTION_ROLE", role)
                .env("WORK_QUEUE_URL", "http://127.0.0.1:9/q")
                .env("KEYGUARD_STATE_TABLE", "keyguard-state")
                .env("REPORT_S3_URI", "s3://reports/keyguard")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let polled = api
                .first_poll(Duration::from_secs(10))
                .unwrap_or_else(|| panic!("{bin} never polled the Runtime API"));
            inits.push(polled.duration_since(started));
            rss.push(peak_rss_kib(child.id()));
            let _ = child.kill();
            let _ = child.wait();
        }
        inits.sort();
        rss.sort();
        println!(
            "{bin}: init median {:.1} ms (max {:.1} ms), peak RSS median {:.1} MiB (max {:.1} MiB), {:.1} MiB on disk",
            inits[inits.len() / 2].as_secs_f64() * 1000.0,
            inits[inits.len() - 1].as_secs_f64() * 1000.0,
            rss[rss.len() / 2] as f64 / 1024.0,
            rss[rss.len() - 1] as f64 / 1024.0,
            std::fs::metadata(&path).unwrap().len() as f64 / 1048576.0
        );
    }
}
