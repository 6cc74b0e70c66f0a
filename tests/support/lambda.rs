//! A Lambda bootstrap binary under a local Lambda Runtime API: [`RuntimeApi`] serves the
//! Runtime API's HTTP interface on loopback (`/2018-06-01/runtime/invocation/next`, `…/response`,
//! `…/error`, `/init/error`) exactly as AWS Lambda documents it, the prebuilt binary polls it as
//! it polls Lambda's, and [`LocalLambda::invoke`] hands it one event and returns what it answered:
//! the JSON response, or the `errorType` and `errorMessage` it reported. The function reaches the
//! rig through `AWS_ENDPOINT_URL`.
//!
//! The interface: <https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html>.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// What an invocation answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The handler's response.
    Ok(Value),
    /// The error the runtime reported (`POST …/error`).
    Err {
        /// `errorType`.
        error_type: String,
        /// `errorMessage`.
        error_message: String,
    },
}

impl Answer {
    /// The response, or a panic showing the error.
    pub fn ok(self) -> Value {
        match self {
            Answer::Ok(v) => v,
            Answer::Err {
                error_type,
                error_message,
            } => panic!("the invocation failed: {error_type}: {error_message}"),
        }
    }

    /// The error's `(errorType, errorMessage)`, or a panic showing the response.
    pub fn err(self) -> (String, String) {
        match self {
            Answer::Err {
                error_type,
                error_message,
            } => (error_type, error_message),
            Answer::Ok(v) => panic!("the invocation succeeded: {v}"),
        }
    }
}

#[derive(Default)]
struct State {
    /// Events waiting for `next`: (request id, body, deadline in ms since the epoch).
    pending: VecDeque<(String, String, u64)>,
    answers: HashMap<String, Answer>,
    init_error: Option<String>,
    /// When the runtime first asked for an event (its init is over).
    first_next: Option<Instant>,
}

/// The Runtime API on a free loopback port.
pub struct RuntimeApi {
    /// `127.0.0.1:<port>`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub address: String,
    /// The ARN the invocations carry (`Lambda-Runtime-Invoked-Function-Arn`).
    pub function_arn: String,
    state: Arc<(Mutex<State>, Condvar)>,
    next_id: Mutex<u64>,
}

impl RuntimeApi {
    /// Starts serving; connections are served on their own threads until the process ends.
    pub fn start(function_arn: &str) -> RuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let state: Arc<(Mutex<State>, Condvar)> = Arc::default();
        let shared = state.clone();
        let arn = function_arn.to_string();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (state, arn) = (shared.clone(), arn.clone());
                std::thread::spawn(move || serve(conn, &state, &arn));
            }
        });
        RuntimeApi {
            address,
            function_arn: function_arn.to_string(),
            state,
            next_id: Mutex::new(0),
        }
    }

    /// Queues `event` with `timeout` until its deadline and waits at most `wait` for the answer.
    pub fn invoke(&self, event: &Value, timeout: Duration, wait: Duration) -> Option<Answer> {
        let id = {
            let mut n = self.next_id.lock().unwrap();
            *n += 1;
            format!("req-{n}")
        };
        let deadline = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
            + timeout.as_millis() as u64;
        let (lock, cv) = &*self.state;
        let mut s = lock.lock().unwrap();
        s.pending
            .push_back((id.clone(), event.to_string(), deadline));
        cv.notify_all();
        let started = Instant::now();
        loop {
            if let Some(a) = s.answers.remove(&id) {
                return Some(a);
            }
            if let Some(e) = &s.init_error {
                return Some(Answer::Err {
                    error_type: "Runtime.InitError".into(),
                    error_message: e.clone(),
                });
            }
            let left = wait.checked_sub(started.elapsed())?;
            s = cv.wait_timeout(s, left).unwrap().0;
        }
    }

    /// When the runtime first polled for an event, waiting at most `wait`.
    pub fn first_poll(&self, wait: Duration) -> Option<Instant> {
        let (lock, cv) = &*self.state;
        let s = lock.lock().unwrap();
        let (s, _) = cv
            .wait_timeout_while(s, wait, |s| s.first_next.is_none())
            .unwrap();
        s.first_next
    }
}

/// One request: method, path, body.
fn read_request(r: &mut BufReader<TcpStream>) -> Option<(String, String, Vec<u8>)> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let (mut length, mut chunked) = (0usize, false);
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (name, value) = h.split_once(':')?;
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().ok()?,
            "transfer-encoding" => chunked = value.trim().eq_ignore_ascii_case("chunked"),
            _ => {}
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else {
        body.resize(length, 0);
        r.read_exact(&mut body).ok()?;
    }
    Some((method, path, body))
}

fn respond(w: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) -> bool {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes()).is_ok() && w.write_all(body).is_ok() && w.flush().is_ok()
}

fn serve(conn: TcpStream, state: &(Mutex<State>, Condvar), arn: &str) {
    let mut writer = conn.try_clone().unwrap();
    let mut reader = BufReader::new(conn);
    while let Some((method, path, body)) = read_request(&mut reader) {
        let (lock, cv) = state;
        let ok = if method == "GET" && path.ends_with("/runtime/invocation/next") {
            let mut s = lock.lock().unwrap();
            s.first_next.get_or_insert_with(Instant::now);
            cv.notify_all();
            let (id, event, deadline) = loop {
                if let Some(e) = s.pending.pop_front() {
                    break e;
                }
                s = cv.wait(s).unwrap();
            };
            drop(s);
            respond(
                &mut writer,
                "200 OK",
                &[
                    ("Lambda-Runtime-Aws-Request-Id", id),
                    ("Lambda-Runtime-Deadline-Ms", deadline.to_string()),
                    ("Lambda-Runtime-Invoked-Function-Arn", arn.to_string()),
                    (
                        "Lambda-Runtime-Trace-Id",
                        "Root=1-00000000-000000000000000000000000;Sampled=0".into(),
                    ),
                ],
                event.as_bytes(),
            )
        } else if method == "POST" && path.contains("/runtime/invocation/") {
            let id = path.split('/').rev().nth(1).unwrap_or_default().to_string();
            let answer = if path.ends_with("/response") {
                Answer::Ok(serde_json::from_slice(&body).unwrap_or(Value::Null))
            } else {
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                Answer::Err {
                    error_type: v["errorType"].as_str().unwrap_or_default().to_string(),
                    error_message: v["errorMessage"].as_str().unwrap_or_default().to_string(),
                }
            };
            lock.lock().unwrap().answers.insert(id, answer);
            cv.notify_all();
            respond(&mut writer, "202 Accepted", &[], b"{\"status\":\"OK\"}")
        } else if method == "POST" && path.ends_with("/runtime/init/error") {
            lock.lock().unwrap().init_error = Some(String::from_utf8_lossy(&body).into_owned());
            cv.notify_all();
            respond(&mut writer, "202 Accepted", &[], b"{\"status\":\"OK\"}")
        } else {
            respond(&mut writer, "404 Not Found", &[], b"{}")
        };
        if !ok {
            return;
        }
    }
}

/// Kills the process when dropped.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A Runtime API with one function polling it.
pub struct LocalLambda {
    /// The Runtime API the function polls.
    pub api: RuntimeApi,
    /// The function's process.
    pub function: Running,
}

/// The function ARN the invocations of [`LocalLambda::start`] carry.
pub fn function_arn(account: &str, name: &str) -> String {
    format!("arn:aws:lambda:us-east-1:{account}:function:{name}")
}

impl LocalLambda {
    /// Starts the Runtime API and `bootstrap` with `env` (plus the Lambda variables; nothing else
    /// from this process's environment, so no real credentials can leak in). Invocations carry
    /// `function_arn`.
    pub fn start_as(
        bootstrap: &Path,
        function_arn: &str,
        env: Vec<(&'static str, String)>,
    ) -> LocalLambda {
        let api = RuntimeApi::start(function_arn);
        let name = function_arn.rsplit(':').next().unwrap_or("_").to_string();
        let function = Running(
            Command::new(bootstrap)
                .env_clear()
                .env("AWS_LAMBDA_RUNTIME_API", &api.address)
                .env("AWS_LAMBDA_FUNCTION_NAME", name)
                .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
                .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
                .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
                .env("AWS_EC2_METADATA_DISABLED", "true")
                .envs(env)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start the bootstrap"),
        );
        LocalLambda { api, function }
    }

    /// [`LocalLambda::start_as`] a function named `_` in the central account `123456789012`.
    pub fn start(bootstrap: &Path, env: Vec<(&'static str, String)>) -> LocalLambda {
        Self::start_as(bootstrap, &function_arn("123456789012", "_"), env)
    }

    /// Invokes the function with `event` (a 900 s deadline, as deployed), waiting at most two
    /// minutes for the answer.
    pub fn invoke(&mut self, event: &Value) -> Answer {
        self.invoke_with_deadline(event, Duration::from_secs(900))
    }

    /// Invokes the function with `event` and an invocation deadline `timeout` from now.
    pub fn invoke_with_deadline(&mut self, event: &Value, timeout: Duration) -> Answer {
        match self.api.invoke(event, timeout, Duration::from_secs(120)) {
            Some(a) => a,
            None => match self.function.0.try_wait() {
                Ok(Some(status)) => panic!("the bootstrap exited ({status}) without answering"),
                _ => panic!("the bootstrap did not answer in 120 s"),
            },
        }
    }
}
