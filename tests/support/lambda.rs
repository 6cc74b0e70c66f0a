//! A Lambda bootstrap binary under cargo-lambda's local runtime: `cargo lambda watch
//! --only-lambda-apis` serves the runtime API, the prebuilt binary polls it as it polls AWS
//! Lambda's, `cargo lambda invoke` sends an event. The function reaches the rig through
//! `AWS_ENDPOINT_URL`.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Kills the process when dropped.
pub struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A local Lambda runtime API with one function polling it.
pub struct LocalLambda {
    port: u16,
    path: String,
    _watch: Running,
    _function: Running,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `PATH` with the rig's venv first (cargo-lambda is installed there by tests/emulator/setup.sh).
fn path_with_venv() -> String {
    let python = super::rig_python();
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

impl LocalLambda {
    /// Starts the runtime API and `bootstrap` with `env` (plus the Lambda variables; nothing else
    /// from this process's environment, so no real credentials can leak in).
    pub fn start(bootstrap: &Path, env: Vec<(&'static str, String)>) -> LocalLambda {
        let path = path_with_venv();
        let port = free_port();
        let watch = Running(
            Command::new("cargo")
                .args([
                    "lambda",
                    "watch",
                    "--only-lambda-apis",
                    "--invoke-address",
                    "127.0.0.1",
                ])
                .args(["--invoke-port", &port.to_string()])
                .current_dir(super::repo_root())
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
        let function = Running(
            Command::new(bootstrap)
                .env_clear()
                .env(
                    "AWS_LAMBDA_RUNTIME_API",
                    format!("http://127.0.0.1:{port}/.rt"),
                )
                .env("AWS_LAMBDA_FUNCTION_NAME", "_")
                .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
                .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
                .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
                .env("AWS_EC2_METADATA_DISABLED", "true")
                .envs(env)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start the bootstrap"),
        );
        LocalLambda {
            port,
            path,
            _watch: watch,
            _function: function,
        }
    }

    /// Invokes the function with `event` (`cargo lambda invoke`), waiting at most two minutes.
    pub fn invoke(&self, event: &Value) -> Output {
        let file = std::env::temp_dir().join(format!(
            "keyguard-event-{}-{}.json",
            std::process::id(),
            self.port
        ));
        std::fs::write(&file, event.to_string()).unwrap();
        let child = Command::new("cargo")
            .args(["lambda", "invoke", "_", "--invoke-address", "127.0.0.1"])
            .args(["--invoke-port", &self.port.to_string(), "--data-file"])
            .arg(&file)
            .env("PATH", &self.path)
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
                panic!(
                    "cargo lambda invoke did not answer in 120 s: did the bootstrap die at start?"
                );
            }
        };
        std::fs::remove_file(&file).unwrap();
        out
    }
}
