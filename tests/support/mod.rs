//! Test support: the AWS emulator rig (tests/emulator/rig.py, moto's server plus keyguard's
//! extensions), started once per test binary on a free loopback port, and isolated organizations
//! so that tests run in parallel.
//!
//! Nothing here fakes keyguard's AWS layer: tests call the real SDK clients against the rig over
//! HTTP, exactly as the binaries call AWS.

#![allow(dead_code)]

pub mod lambda;

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use aws_config::{BehaviorVersion, SdkConfig};
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

/// The running rig.
pub struct Rig {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    _child: Mutex<Child>,
}

/// The repository root: the nearest folder above the test's package holding the rig (this module
/// is shared by the root package's tests and rule-lambda's).
fn repo() -> PathBuf {
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    while !dir.join("tests/emulator/rig.py").exists() {
        dir = dir
            .parent()
            .expect("tests/emulator/rig.py above the package")
            .to_path_buf();
    }
    dir
}

/// The rig's Python, or a panic that says how to install it. Tests never skip silently.
pub fn rig_python() -> PathBuf {
    let python = repo().join("tests/emulator/.venv/bin/python");
    if !python.exists() {
        panic!(
            "the AWS emulator rig is not installed: {} is missing.\n\
             Run `tests/emulator/setup.sh` (needs python3; installs moto[server] into \
             tests/emulator/.venv), or run the README's test command `./test.sh`, which does it for you.",
            python.display()
        );
    }
    python
}

impl Rig {
    /// The rig of this test binary, started on first use.
    pub fn get() -> &'static Rig {
        static RIG: OnceLock<Rig> = OnceLock::new();
        RIG.get_or_init(|| {
            let mut child = Command::new(rig_python())
                .arg(repo().join("tests/emulator/rig.py"))
                .args(["--host", "127.0.0.1", "--port", "0", "--exit-with-stdin"])
                .env("RIG_CALL_LOG_DIR", call_log_dir())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("start the emulator rig");
            let stdout = child.stdout.take().unwrap();
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).expect("read the rig's first line");
            let port = line
                .trim()
                .strip_prefix("RIG_READY port=")
                .unwrap_or_else(|| panic!("the rig did not start: {line:?} (run tests/emulator/.venv/bin/python tests/emulator/rig.py to see why)"));
            Rig { endpoint: format!("http://127.0.0.1:{port}"), _child: Mutex::new(child) }
        })
    }

    /// SDK configuration for the rig's default account (123456789012) with test credentials.
    pub async fn base_config(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::new(
                "AKIDRIGTESTING000000",
                "rig-testing-secret",
                None,
                None,
                "rig",
            ))
            .retry_config(keyguard_aws::sdk::retry_config())
            .load()
            .await
    }

    /// An `SdkConfig` acting in `account` as the test's own role `keyguard-test` (through STS
    /// AssumeRole, as in AWS). The least-privilege test ignores this role: it sets things up.
    pub async fn account_config(&self, account: &str) -> SdkConfig {
        self.as_role(account, "keyguard-test", "keyguard-test")
            .await
    }

    /// An `SdkConfig` acting in `account` as `role` with `session` (through STS AssumeRole). The
    /// rig logs the calls made with it under `role`: give keyguard's code the role the templates
    /// give it (`keyguard-remediator`, `keyguard-member-rule`, ...) and the least-privilege test
    /// checks them.
    pub async fn as_role(&self, account: &str, role: &str, session: &str) -> SdkConfig {
        let base = self.base_config().await;
        let caller = keyguard_aws::sdk::Caller {
            account: "123456789012".into(),
            partition: "aws".into(),
            arn: "arn:aws:iam::123456789012:user/rig".into(),
        };
        let role = keyguard_aws::sdk::RoleSpec {
            role_name: role.into(),
            session_name: session.into(),
            org_role_arn: None,
        };
        keyguard_aws::sdk::for_account(&base, &caller, account, &role)
            .await
            .expect("assume role in the rig")
    }

    fn get_json(&self, path: &str) -> Value {
        ureq::get(format!("{}{path}", self.endpoint))
            .call()
            .expect("rig GET")
            .body_mut()
            .read_json()
            .expect("rig JSON")
    }

    fn post_json(&self, path: &str, body: Value) -> Value {
        ureq::post(format!("{}{path}", self.endpoint))
            .send_json(body)
            .expect("rig POST")
            .body_mut()
            .read_json()
            .expect("rig JSON")
    }

    /// Calls per `service:Action` made in `account`.
    pub fn calls(&self, account: &str) -> BTreeMap<String, u64> {
        serde_json::from_value(self.get_json(&format!("/_rig/calls?account={account}"))).unwrap()
    }

    /// Calls per `service:Action` made with each assumed role's credentials, in any account.
    pub fn calls_by_role(&self) -> BTreeMap<String, BTreeMap<String, u64>> {
        serde_json::from_value(self.get_json("/_rig/calls/by-role")).unwrap()
    }

    /// Forgets `account`'s call counts.
    pub fn reset_calls(&self, account: &str) {
        self.post_json(&format!("/_rig/calls/reset?account={account}"), json!({}));
    }

    /// Sets a key's creation time and last use.
    pub fn backdate(
        &self,
        account: &str,
        key_id: &str,
        created: DateTime<Utc>,
        last_used: Option<DateTime<Utc>>,
    ) {
        self.post_json(
            "/_rig/iam/access-key",
            json!({"account": account, "access_key_id": key_id, "created": created.to_rfc3339(), "last_used": last_used.map(|t| t.to_rfc3339())}),
        );
    }

    /// Sets only a key's last use (a pipeline used it at `at`).
    pub fn use_key(&self, account: &str, key_id: &str, at: DateTime<Utc>) {
        self.post_json(
            "/_rig/iam/access-key",
            json!({"account": account, "access_key_id": key_id, "last_used": at.to_rfc3339()}),
        );
    }

    /// Records `count` CloudTrail calls made with `key_id` (one every `step_s` seconds from
    /// `start`) from `source_ip` with `user_agent` to `service` in `region`, as CloudTrail would
    /// have recorded them: a window of calls without making them.
    pub fn key_calls(&self, account: &str, key_id: &str, calls: KeyCalls<'_>) {
        self.post_json(
            "/_rig/trail/calls",
            json!({"account": account, "access_key_id": key_id, "count": calls.count,
                   "start": calls.start.to_rfc3339(), "step_s": calls.step_s,
                   "source_ip": calls.source_ip, "user_agent": calls.user_agent,
                   "service": calls.service, "region": calls.region}),
        );
    }

    /// Writes `account`'s recorded CloudTrail events into `bucket` (in `bucket_account`) as an
    /// organization trail `org` delivers them; the object keys.
    pub fn deliver_trail(
        &self,
        account: &str,
        bucket: &str,
        bucket_account: &str,
        org: &str,
    ) -> Vec<String> {
        let out = self.post_json(
            "/_rig/trail/deliver",
            json!({"account": account, "bucket": bucket, "bucket_account": bucket_account, "org": org}),
        );
        serde_json::from_value(out["keys"].clone()).unwrap()
    }

    /// Makes the next `count` calls of `action` (in `account`, if given) fail with `error`.
    pub fn fault(&self, account: Option<&str>, action: &str, error: &str, count: u32) {
        self.post_json(
            "/_rig/faults",
            json!({"account": account, "action": action, "error": error, "count": count}),
        );
    }

    /// Gives the root user of `account` an active access key created at `created` (in its
    /// credential report: no API call can).
    pub fn root_key(
        &self,
        account: &str,
        created: DateTime<Utc>,
        last_used: Option<DateTime<Utc>>,
    ) {
        self.post_json(
            "/_rig/iam/root-key",
            json!({"account": account, "created": created.to_rfc3339(),
                   "last_used": last_used.map(|t| t.to_rfc3339())}),
        );
    }

    /// The CloudTrail events the rig recorded for `account`'s IAM writes.
    pub fn trail(&self, account: &str) -> Vec<Value> {
        serde_json::from_value(self.get_json(&format!("/_rig/trail?account={account}"))).unwrap()
    }

    /// A fault as the rig's `/_rig/faults` takes it (`skip`, `drop_response`, `hang`, …).
    pub fn fault_json(&self, fault: Value) {
        self.post_json("/_rig/faults", fault);
    }

    /// Makes the next `action` call in `account` wait, unexecuted, until [`Rig::release`]: the
    /// caller can be aborted there (a process killed at that point). `skip` matching calls are let
    /// through first.
    pub fn hang(&self, account: &str, action: &str, skip: u32) {
        self.fault_json(json!({
            "account": account, "action": action, "error": "InterruptedByRig",
            "hang": true, "skip": skip,
        }));
    }

    /// Like [`Rig::hang`], but the held call is carried out as usual once released: the caller
    /// was paused in the middle of the call, not killed.
    pub fn pause(&self, account: &str, action: &str, skip: u32) {
        self.fault_json(json!({
            "account": account, "action": action, "error": "InterruptedByRig",
            "hang": true, "resume": true, "skip": skip,
        }));
    }

    /// Waits until a call of `account` is held by a [`Rig::hang`] fault; its action.
    pub async fn held(&self, account: &str) -> String {
        for _ in 0..3000 {
            let held = self.get_json(&format!("/_rig/hung?account={account}"));
            if let Some(action) = held.get(0).and_then(|h| h["action"].as_str()) {
                return action.to_string();
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("no call of {account} was held within 30 s");
    }

    /// Lets the calls held for `account` answer (500, unexecuted; or carried out after a
    /// [`Rig::pause`]).
    pub fn release(&self, account: &str) {
        self.post_json(&format!("/_rig/hung/release?account={account}"), json!({}));
    }

    /// Drops the faults still pending for `account`.
    pub fn clear_faults(&self, account: &str) {
        self.post_json(&format!("/_rig/faults/clear?account={account}"), json!({}));
    }

    /// Turns the rig's latency model on (or off with zeros): every AWS call waits `per_call_ms`,
    /// and an account's credential report takes `report_ms` to generate; `forget_reports` makes
    /// every account generate its report again.
    pub fn latency(&self, per_call_ms: u64, report_ms: u64, forget_reports: bool) {
        self.post_json(
            "/_rig/latency",
            json!({"per_call_ms": per_call_ms, "report_ms": report_ms, "forget_reports": forget_reports}),
        );
    }

    /// Emails sent from `account`.
    pub fn emails(&self, account: &str) -> Vec<Value> {
        serde_json::from_value(self.get_json(&format!("/_rig/emails?account={account}"))).unwrap()
    }
}

/// Where every rig of this test run logs the (role, action) pairs it served (shared by all test
/// binaries; `./test.sh` empties it before the suite; tests/deploy.rs reads it).
pub fn call_log_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("rig-calls")
}

/// The environment a keyguard binary needs to act with `config`'s credentials against the rig
/// (rig credentials, never real ones).
pub async fn env_of(config: &SdkConfig) -> Vec<(&'static str, String)> {
    use aws_credential_types::provider::ProvideCredentials;
    let creds = config
        .credentials_provider()
        .unwrap()
        .provide_credentials()
        .await
        .unwrap();
    vec![
        ("AWS_ENDPOINT_URL", Rig::get().endpoint.clone()),
        ("AWS_REGION", "us-east-1".to_string()),
        ("AWS_ACCESS_KEY_ID", creds.access_key_id().to_string()),
        (
            "AWS_SECRET_ACCESS_KEY",
            creds.secret_access_key().to_string(),
        ),
        (
            "AWS_SESSION_TOKEN",
            creds.session_token().unwrap_or_default().to_string(),
        ),
    ]
}

static NEXT_ACCOUNT: AtomicU64 = AtomicU64::new(1);

/// A fresh 12-digit account id no other test of any test binary uses.
pub fn unique_account() -> String {
    let n = NEXT_ACCOUNT.fetch_add(1, Ordering::SeqCst);
    format!("9{:05}{:06}", std::process::id() % 100_000, n)
}

/// An organization of its own: a management account and member accounts.
pub struct Org {
    /// The management account.
    pub management: String,
    /// The management account's SDK configuration.
    pub config: SdkConfig,
    /// Member account ids (created with Organizations CreateAccount).
    pub members: Vec<String>,
}

impl Org {
    /// Creates an organization with `members` member accounts.
    pub async fn new(members: usize) -> Org {
        let rig = Rig::get();
        let management = unique_account();
        let config = rig.account_config(&management).await;
        let org = aws_sdk_organizations::Client::new(&config);
        org.create_organization()
            .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
            .send()
            .await
            .unwrap();
        let mut ids = Vec::new();
        for i in 0..members {
            let out = org
                .create_account()
                .account_name(format!("member-{i}"))
                .email(format!("member-{i}@{management}.example.com"))
                .send()
                .await
                .unwrap();
            ids.push(
                out.create_account_status()
                    .unwrap()
                    .account_id()
                    .unwrap()
                    .to_string(),
            );
        }
        Org {
            management,
            config,
            members: ids,
        }
    }

    /// The environment a keyguard binary needs to act as this organization's management account
    /// against the rig (rig credentials, never real ones).
    pub async fn env(&self) -> Vec<(&'static str, String)> {
        env_of(&self.config).await
    }

    /// The SDK configuration of a member account.
    pub async fn member(&self, i: usize) -> SdkConfig {
        Rig::get().account_config(&self.members[i]).await
    }
}

/// A user to create in the rig.
#[derive(Debug, Clone, Default)]
pub struct UserSpec {
    /// Name (may contain `+=,.@-`).
    pub name: String,
    /// Path (`/` when empty).
    pub path: String,
    /// Groups to join (created on demand).
    pub groups: Vec<String>,
    /// Tags.
    pub tags: Vec<(String, String)>,
    /// Keys as (age in days, days since last use or None for never, active).
    pub keys: Vec<(i64, Option<i64>, bool)>,
}

/// A window of calls made with one key ([`Rig::key_calls`]).
#[derive(Debug, Clone, Copy)]
pub struct KeyCalls<'a> {
    /// How many.
    pub count: u32,
    /// The first one's time.
    pub start: DateTime<Utc>,
    /// Seconds between two.
    pub step_s: u32,
    /// Where they came from.
    pub source_ip: &'a str,
    /// The caller's user agent.
    pub user_agent: &'a str,
    /// The service (`ec2`).
    pub service: &'a str,
    /// The Region.
    pub region: &'a str,
}

/// A user the rig created, with its key ids (never its secrets).
#[derive(Debug, Clone)]
pub struct Seeded {
    /// Name.
    pub name: String,
    /// UserId (Config's resource id).
    pub user_id: String,
    /// Access key ids, in the order of `UserSpec::keys`.
    pub keys: Vec<String>,
}

/// Creates the users of `specs` in the account of `config`, with backdated keys (relative to `now`).
pub async fn seed(
    config: &SdkConfig,
    account: &str,
    specs: &[UserSpec],
    now: DateTime<Utc>,
) -> HashMap<String, Seeded> {
    let iam = aws_sdk_iam::Client::new(config);
    let rig = Rig::get();
    let mut out = HashMap::new();
    for s in specs {
        let mut req = iam
            .create_user()
            .user_name(&s.name)
            .path(if s.path.is_empty() { "/" } else { &s.path });
        for (k, v) in &s.tags {
            req = req.tags(
                aws_sdk_iam::types::Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
                    .unwrap(),
            );
        }
        let user = req.send().await.unwrap().user.unwrap();
        for g in &s.groups {
            let _ = iam.create_group().group_name(g).send().await;
            iam.add_user_to_group()
                .group_name(g)
                .user_name(&s.name)
                .send()
                .await
                .unwrap();
        }
        let mut keys = Vec::new();
        for (age, used, active) in &s.keys {
            let key = iam
                .create_access_key()
                .user_name(&s.name)
                .send()
                .await
                .unwrap()
                .access_key
                .unwrap();
            let id = key.access_key_id().to_string();
            if !active {
                iam.update_access_key()
                    .user_name(&s.name)
                    .access_key_id(&id)
                    .status(aws_sdk_iam::types::StatusType::Inactive)
                    .send()
                    .await
                    .unwrap();
            }
            rig.backdate(
                account,
                &id,
                now - Duration::days(*age),
                used.map(|d| now - Duration::days(d)),
            );
            keys.push(id);
        }
        out.insert(
            s.name.clone(),
            Seeded {
                name: s.name.clone(),
                user_id: user.user_id().to_string(),
                keys,
            },
        );
    }
    out
}

/// A fixture file's text.
pub fn fixture(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The repository root.
pub fn repo_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(repo)
}

/// The state table's layout (deploy/central.yaml): `pk` and `sk` strings, TTL on `expires`.
pub async fn create_table(cfg: &aws_config::SdkConfig, name: &str) {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    let ddb = aws_sdk_dynamodb::Client::new(cfg);
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    let key = |n: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .unwrap()
    };
    let created = ddb
        .create_table()
        .table_name(name)
        .attribute_definitions(attr("pk"))
        .attribute_definitions(attr("sk"))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await;
    if let Err(e) = created {
        // Created already for this organization: the same table.
        assert!(
            matches!(
                e.as_service_error(),
                Some(aws_sdk_dynamodb::operation::create_table::CreateTableError::ResourceInUseException(_))
            ),
            "{e:?}"
        );
    }
}
