//! The organization-scale sweep against the rig, through the engine's own event shapes: the
//! scheduled event dispatches one SQS message per account, and a player stands in for Lambda's
//! event source mapping (receive a batch, call the real handler with the SQS event, delete what
//! the handler did not report in `batchItemFailures`), with the queue, its dead-letter queue and
//! the state table served by moto.

use std::time::{Duration as StdDuration, Instant};

use aws_config::SdkConfig;
use aws_sdk_sqs::types::QueueAttributeName;
use chrono::{DateTime, Duration, SubsecRound, Utc};
use keyguard_aws::inventory::ReportPolling;
use keyguard_aws::sdk::{Caller, RoleSpec};
use keyguard_aws::state::StateTable;
use keyguard_core::Settings;
use remediator::{handle_invocation, Answer, Invocation, NoticeConfig, Remediator};
use serde_json::{json, Value};

use crate::support::{seed, Org, Rig, UserSpec};

pub const SENDER: &str = "keyguard@security.example.com";
pub const ADMIN: &str = "cloud-admins@example.com";
/// The queue's `maxReceiveCount` in the rig (deploy/central.yaml's default is the same).
pub const MAX_RECEIVES: i32 = 3;

/// The central account's queue, dead-letter queue and state table.
pub struct Deployment {
    pub queue: String,
    pub dlq: String,
    pub table: String,
    pub sqs: aws_sdk_sqs::Client,
}

impl Deployment {
    /// Creates the work queue (with its dead-letter queue after [`MAX_RECEIVES`]) and the state
    /// table in the central (management) account, as deploy/central.yaml does.
    pub async fn new(org: &Org) -> Deployment {
        Self::named(org, "keyguard-work").await
    }

    /// A queue named `name` (and `name`-dlq) with the state table, in the central account.
    pub async fn named(org: &Org, name: &str) -> Deployment {
        let cfg = &org.config;
        let sqs = aws_sdk_sqs::Client::new(cfg);
        let dlq = sqs
            .create_queue()
            .queue_name(format!("{name}-dlq"))
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let dlq_arn = sqs
            .get_queue_attributes()
            .queue_url(&dlq)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes()
            .unwrap()[&QueueAttributeName::QueueArn]
            .clone();
        let queue = sqs
            .create_queue()
            .queue_name(name)
            .attributes(QueueAttributeName::VisibilityTimeout, "1800")
            .attributes(
                QueueAttributeName::RedrivePolicy,
                json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVES})
                    .to_string(),
            )
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let table = "keyguard-state".to_string();
        create_table(cfg, &table).await;
        let ses = aws_sdk_sesv2::Client::new(cfg);
        let _ = ses
            .create_email_identity()
            .email_identity(SENDER)
            .send()
            .await;
        Deployment {
            queue,
            dlq,
            table,
            sqs,
        }
    }

    /// The remediator as deploy/central.yaml runs it: its execution role, the member role, the
    /// queue and the table.
    pub async fn remediator(&self, org: &Org, dry_run: bool) -> Remediator {
        let sdk = Rig::get()
            .as_role(&org.management, "keyguard-remediator", "run")
            .await;
        let mut r = Remediator::new(
            sdk.clone(),
            Caller {
                account: org.management.clone(),
                partition: "aws".into(),
                arn: format!(
                    "arn:aws:sts::{}:assumed-role/keyguard-remediator/run",
                    org.management
                ),
            },
            Settings {
                dry_run,
                ..Settings::default()
            },
            RoleSpec {
                role_name: "keyguard-member-remediator".into(),
                session_name: "keyguard".into(),
                org_role_arn: None,
            },
        );
        r.polling = ReportPolling {
            interval: StdDuration::from_millis(20),
            attempts: 50,
        };
        r.notices = NoticeConfig {
            sender: Some(SENDER.into()),
            admins: vec![ADMIN.into()],
            owner_domains: keyguard_core::owner::OwnerDomains::new(&[], &[ADMIN.into()]),
            event_bus: None,
        };
        r.state = Some(StateTable::new(&sdk, &self.table));
        r.queue = Some(self.queue.clone());
        r.max_receives = MAX_RECEIVES as u32;
        r
    }

    /// Messages waiting in the dead-letter queue.
    pub async fn dead_letters(&self) -> Vec<Value> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.dlq)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .send()
            .await
            .unwrap();
        out.messages()
            .iter()
            .map(|m| serde_json::from_str(m.body().unwrap()).unwrap())
            .collect()
    }
}

pub use crate::support::create_table;

/// What the player saw.
#[derive(Debug, Default)]
pub struct Played {
    /// Invocations made.
    pub invocations: usize,
    /// Messages the handler reported failed.
    pub failures: usize,
    /// The longest invocation.
    pub longest: StdDuration,
    /// Messages settled with a receipt handle SQS no longer honoured (delivered twice).
    pub stale_handles: usize,
}

/// Plays Lambda's SQS event source mapping for the remediator (see [`play_queue`]).
pub async fn play(
    r: &Remediator,
    d: &Deployment,
    now: DateTime<Utc>,
    workers: usize,
    deadline: impl Fn(usize) -> Option<Instant> + Sync,
) -> Played {
    play_queue(&d.sqs, &d.queue, workers, |event, i| {
        let inv = Invocation {
            now,
            deadline: deadline(i),
        };
        async move {
            let answer = handle_invocation(r, event, inv)
                .await
                .expect("an SQS batch always gets an answer");
            let Answer::Batch(batch) = answer else {
                panic!("an SQS batch answered {answer:?}")
            };
            serde_json::to_value(batch).unwrap()
        }
    })
    .await
}

/// Plays Lambda's SQS event source mapping: up to `workers` invocations of `handler` at once,
/// each with a batch of one message (the SQS event's shape), until the queue is empty; the
/// handler answers `{"batchItemFailures": [...]}`. A failed message is made visible again at once
/// (the rig's clock for the visibility timeout) so that its retries come in this run; SQS moves
/// it to the dead-letter queue after `maxReceiveCount` receives.
pub async fn play_queue<F, Fut>(
    sqs: &aws_sdk_sqs::Client,
    queue: &str,
    workers: usize,
    handler: F,
) -> Played
where
    F: Fn(Value, usize) -> Fut + Sync,
    Fut: std::future::Future<Output = Value>,
{
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    let played = Mutex::new(Played::default());
    let idle = AtomicUsize::new(0);
    let n = AtomicUsize::new(0);
    let worker = || async {
        loop {
            let got = sqs
                .receive_message()
                .queue_url(queue)
                .max_number_of_messages(1)
                .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
                .send()
                .await
                .unwrap();
            let Some(m) = got.messages().first().cloned() else {
                // Nothing visible: done once every worker saw the queue empty in a row.
                if idle.fetch_add(1, Ordering::SeqCst) >= workers * 3 {
                    return;
                }
                tokio::time::sleep(StdDuration::from_millis(30)).await;
                continue;
            };
            idle.store(0, Ordering::SeqCst);
            let receives = m
                .attributes()
                .and_then(|a| {
                    a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
                })
                .cloned()
                .unwrap_or_else(|| "1".into());
            let event = json!({"Records": [{
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body(),
                "attributes": {"ApproximateReceiveCount": receives, "SentTimestamp": "0",
                    "SenderId": "x", "ApproximateFirstReceiveTimestamp": "0"},
                "messageAttributes": {},
                "md5OfBody": m.md5_of_body(),
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:keyguard-work",
                "awsRegion": "us-east-1"
            }]});
            let i = n.fetch_add(1, Ordering::SeqCst);
            let started = Instant::now();
            let answer = handler(event, i).await;
            let took = started.elapsed();
            let failed = answer["batchItemFailures"]
                .as_array()
                .is_some_and(|f| !f.is_empty());
            {
                let mut p = played.lock().unwrap();
                p.invocations += 1;
                p.longest = p.longest.max(took);
                p.failures += usize::from(failed);
            }
            // SQS delivers at least once: moto, like SQS, can hand a message to two receivers,
            // and the second's receipt handle is then the valid one. The handlers are idempotent;
            // the player ignores a stale handle as Lambda's poller does.
            let settled = if failed {
                sqs.change_message_visibility()
                    .queue_url(queue)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .visibility_timeout(0)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| e.into_service_error().to_string())
            } else {
                sqs.delete_message()
                    .queue_url(queue)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| e.into_service_error().to_string())
            };
            if let Err(e) = settled {
                assert!(e.contains("receipt handle"), "{e}");
                played.lock().unwrap().stale_handles += 1;
            }
        }
    };
    futures::future::join_all((0..workers).map(|_| worker())).await;
    played.into_inner().unwrap()
}

/// The scheduled event, as EventBridge delivers it.
pub fn scheduled(now: DateTime<Utc>) -> Value {
    json!({"version": "0", "id": "sched", "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "000000000000", "time": now.to_rfc3339(), "region": "us-east-1",
        "resources": [], "detail": {}})
}

pub async fn dispatch(r: &Remediator, now: DateTime<Utc>) -> Value {
    let answer = handle_invocation(
        r,
        scheduled(now),
        Invocation {
            now,
            deadline: None,
        },
    )
    .await
    .unwrap();
    match answer {
        Answer::Dispatched(d) => serde_json::to_value(d).unwrap(),
        other => panic!("the schedule answered {other:?}"),
    }
}

pub(crate) fn due(name: &str, owner: &str) -> UserSpec {
    UserSpec {
        name: name.into(),
        tags: vec![("owner-email".into(), owner.into())],
        keys: vec![(120, Some(1), true)],
        ..UserSpec::default()
    }
}

pub(crate) fn emails_to<'a>(emails: &'a [Value], addr: &str) -> Vec<&'a Value> {
    emails
        .iter()
        .filter(|e| e["to"].as_array().unwrap().iter().any(|t| t == addr))
        .collect()
}

pub(crate) async fn key_count(cfg: &SdkConfig, user: &str) -> usize {
    aws_sdk_iam::Client::new(cfg)
        .list_access_keys()
        .user_name(user)
        .send()
        .await
        .unwrap()
        .access_key_metadata()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sweep_on_the_queue_isolates_a_failing_account_and_tells_each_owner_once() {
    let rig = Rig::get();
    let org = Org::new(4).await;
    let d = Deployment::new(&org).await;
    let now = Utc::now().trunc_subsecs(0);
    // One owner with a due user in three accounts; the fourth account's IAM keeps failing.
    for i in 0..4 {
        let cfg = org.member(i).await;
        seed(
            &cfg,
            &org.members[i],
            &[
                due(&format!("ci-{i}"), "platform@example.com"),
                due(&format!("app-{i}"), &format!("team-{i}@example.com")),
            ],
            now,
        )
        .await;
    }
    let broken = org.members[3].clone();
    rig.fault(
        Some(&broken),
        "GenerateCredentialReport",
        "ServiceUnavailable",
        100,
    );
    let r = d.remediator(&org, false).await;

    let dispatched = dispatch(&r, now).await;
    // The four members and the management account.
    assert_eq!(dispatched["accounts"], 5, "{dispatched}");
    assert!(dispatched["calls"].as_u64().unwrap() >= 1);
    // The schedule delivered twice hands out nothing more.
    assert_eq!(dispatch(&r, now).await["accounts"], 0);

    let played = play(&r, &d, now, 3, |_| None).await;
    rig.clear_faults(&broken);

    // The healthy accounts are done, each once.
    for i in 0..3 {
        let cfg = org.member(i).await;
        assert_eq!(key_count(&cfg, &format!("ci-{i}")).await, 2, "account {i}");
    }
    // The broken one was delivered MAX_RECEIVES times, then dead-lettered alone.
    assert_eq!(played.failures, MAX_RECEIVES as usize, "{played:?}");
    let dead = d.dead_letters().await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["account"]["id"], broken.as_str());
    assert_eq!(dead[0]["kind"], "account");

    // One email per owner for the run, across accounts; one digest for the run.
    let emails = rig.emails(&org.management);
    let platform = emails_to(&emails, "platform@example.com");
    assert_eq!(platform.len(), 1, "{platform:#?}");
    let text = platform[0]["text"].as_str().unwrap();
    for i in 0..3 {
        assert!(
            text.contains(&format!("Account {}", org.members[i])),
            "{text}"
        );
        assert!(text.contains(&format!("ci-{i}")), "{text}");
    }
    assert!(text.contains("in 3 accounts"), "{text}");
    for i in 0..3 {
        assert_eq!(
            emails_to(&emails, &format!("team-{i}@example.com")).len(),
            1
        );
    }
    let digests = emails_to(&emails, ADMIN);
    assert_eq!(digests.len(), 1, "{digests:#?}");
    let digest = digests[0]["text"].as_str().unwrap();
    assert!(digest.contains("5 account(s)"), "{digest}");
    assert!(
        digest.contains(&format!("Account {broken}")) && digest.contains("could not be processed"),
        "the failed account is named: {digest}"
    );

    // A finalize delivered again sends nothing more.
    let run = dispatched["run"].as_str().unwrap();
    let again = json!({"Records": [{"messageId": "dup", "receiptHandle": "dup",
        "body": json!({"kind": "finalize", "run": run}).to_string(),
        "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
        "eventSource": "aws:sqs", "eventSourceARN": "arn", "awsRegion": "us-east-1"}]});
    handle_invocation(
        &r,
        again,
        Invocation {
            now,
            deadline: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(rig.emails(&org.management).len(), emails.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_account_deferred_at_the_deadline_finishes_on_the_next_delivery() {
    let rig = Rig::get();
    let org = Org::new(1).await;
    let d = Deployment::new(&org).await;
    let now = Utc::now().trunc_subsecs(0);
    let cfg = org.member(0).await;
    let member = org.members[0].clone();
    seed(
        &cfg,
        &member,
        &[
            due("a-first", "owner@example.com"),
            due("b-second", "owner@example.com"),
            due("c-third", "owner@example.com"),
        ],
        now,
    )
    .await;
    let r = d.remediator(&org, false).await;
    dispatch(&r, now).await;
    // The first invocation is already inside its deadline margin: it starts nobody and hands the
    // account on; the next one (a far deadline) does the work.
    let played = play(&r, &d, now, 1, |i| {
        (i == 0).then(|| Instant::now() + StdDuration::from_secs(1))
    })
    .await;
    assert_eq!(played.failures, 0, "a deferral is not a failed delivery");
    for u in ["a-first", "b-second", "c-third"] {
        assert_eq!(
            key_count(&cfg, u).await,
            2,
            "{u} rotated on the next delivery"
        );
    }
    assert!(d.dead_letters().await.is_empty());
    let emails = rig.emails(&org.management);
    assert_eq!(emails_to(&emails, "owner@example.com").len(), 1);
    assert_eq!(emails_to(&emails, ADMIN).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dry_run_sweeps_on_consecutive_days_preview_each_step_once() {
    let rig = Rig::get();
    let org = Org::new(2).await;
    let d = Deployment::new(&org).await;
    let day1 = Utc::now().trunc_subsecs(0);
    for i in 0..2 {
        let cfg = org.member(i).await;
        seed(
            &cfg,
            &org.members[i],
            &[
                due(&format!("ci-{i}"), "owner@example.com"),
                UserSpec {
                    name: format!("idle-{i}"),
                    tags: vec![("owner-email".into(), "owner@example.com".into())],
                    keys: vec![(60, None, true)],
                    ..UserSpec::default()
                },
            ],
            day1,
        )
        .await;
    }
    let r = d.remediator(&org, true).await;
    let owner_mail = |emails: &[Value]| emails_to(emails, "owner@example.com").len();

    dispatch(&r, day1).await;
    play(&r, &d, day1, 2, |_| None).await;
    let emails = rig.emails(&org.management);
    assert_eq!(owner_mail(&emails), 1, "the first preview goes out");
    let first = emails_to(&emails, "owner@example.com")[0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(first.starts_with("PREVIEW") && first.contains("ci-0") && first.contains("ci-1"));

    // The next day: the same steps, the same dates; nothing new to preview.
    let day2 = day1 + Duration::days(1);
    let dispatched = dispatch(&r, day2).await;
    assert_eq!(
        dispatched["accounts"], 3,
        "two members and the management account"
    );
    play(&r, &d, day2, 2, |_| None).await;
    let emails = rig.emails(&org.management);
    assert_eq!(owner_mail(&emails), 1, "no repeated preview");
    // The administrators still get each run's digest.
    assert_eq!(emails_to(&emails, ADMIN).len(), 2);
    // Nothing was written in DryRun.
    for i in 0..2 {
        let cfg = org.member(i).await;
        assert_eq!(key_count(&cfg, &format!("ci-{i}")).await, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sweep_leaves_excluded_accounts_alone() {
    let org = Org::new(3).await;
    let d = Deployment::new(&org).await;
    let now = Utc::now().trunc_subsecs(0);
    for i in 0..3 {
        let cfg = org.member(i).await;
        seed(&cfg, &org.members[i], &[due("ci", "o@example.com")], now).await;
    }
    let mut r = d.remediator(&org, false).await;
    r.filter.exclude = vec![org.members[1].clone(), org.management.clone()];
    // In process (no queue) and through the queue alike.
    let mut local = r.clone();
    local.queue = None;
    let summary = remediator::handle(&local, scheduled(now), now)
        .await
        .unwrap();
    let seen: Vec<&str> = summary
        .accounts
        .iter()
        .map(|a| a.account.as_str())
        .collect();
    let mut expected = [org.members[0].as_str(), org.members[2].as_str()];
    expected.sort();
    assert_eq!(seen, expected);
    assert_eq!(key_count(&org.member(1).await, "ci").await, 1);

    let later = now + Duration::days(1);
    let dispatched = dispatch(&r, later).await;
    assert_eq!(dispatched["accounts"], 2, "{dispatched}");
    let played = play(&r, &d, later, 2, |_| None).await;
    assert_eq!(played.failures, 0);
    assert_eq!(key_count(&org.member(1).await, "ci").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_continuation_examines_only_the_users_from_its_cursor_on() {
    let org = Org::new(1).await;
    let d = Deployment::new(&org).await;
    let now = Utc::now().trunc_subsecs(0);
    let cfg = org.member(0).await;
    let member = org.members[0].clone();
    seed(
        &cfg,
        &member,
        &[
            due("a-first", "o@example.com"),
            due("b-second", "o@example.com"),
            due("c-third", "o@example.com"),
        ],
        now,
    )
    .await;
    let mut r = d.remediator(&org, false).await;
    r.filter.include = vec![member.clone()];
    let run = dispatch(&r, now).await["run"].as_str().unwrap().to_string();
    d.sqs
        .purge_queue()
        .queue_url(&d.queue)
        .send()
        .await
        .unwrap();
    // What an invocation that stopped before "b-second" hands on.
    let body = json!({"kind": "account", "run": run, "mode": "auto", "after": "b-second",
        "account": {"id": member, "name": "member-0", "email": null}});
    let event = json!({"Records": [{"messageId": "m1", "receiptHandle": "h1",
        "body": body.to_string(), "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {}, "eventSource": "aws:sqs", "eventSourceARN": "arn",
        "awsRegion": "us-east-1"}]});
    let answer = handle_invocation(
        &r,
        event,
        Invocation {
            now,
            deadline: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(
        serde_json::to_value(&answer).unwrap(),
        json!({"batchItemFailures": []})
    );
    assert_eq!(
        key_count(&cfg, "a-first").await,
        1,
        "before the cursor: untouched"
    );
    assert_eq!(key_count(&cfg, "b-second").await, 2);
    assert_eq!(key_count(&cfg, "c-third").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cli_stops_taking_users_at_max_duration() {
    let org = Org::new(1).await;
    let now = Utc::now().trunc_subsecs(0);
    let cfg = org.member(0).await;
    let member = org.members[0].clone();
    seed(&cfg, &member, &[due("ci", "o@example.com")], now).await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keyguard"))
        .args(["remediate", "--account", &member, "--dry-run", "false"])
        .args(["--max-duration", "0s", "--json", "--no-lease"])
        .envs(org.env().await)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--max-duration"), "{stderr}");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["accounts"][0]["deferred"], "ci", "{summary}");
    assert_eq!(key_count(&cfg, "ci").await, 1, "nothing started");
}

/// The dispatcher hands out each page of accounts while it lists the next, and sets the run's
/// count only at the end: accounts that all finish before it is set leave the run to the
/// dispatcher to finalize, which it does once (one digest, one email per owner).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_whose_accounts_finish_before_the_dispatch_ends_is_finalized_once() {
    let rig = Rig::get();
    let org = Org::new(2).await;
    let d = Deployment::new(&org).await;
    let now = Utc::now().trunc_subsecs(0);
    for i in 0..2 {
        let cfg = org.member(i).await;
        seed(
            &cfg,
            &org.members[i],
            &[due(&format!("ci-{i}"), "platform@example.com")],
            now,
        )
        .await;
    }
    let r = d.remediator(&org, false).await;
    // The dispatcher is held at the count (its first UpdateItem) after every message is out.
    rig.hang(&org.management, "UpdateItem", 0);
    let dispatcher = {
        let r = r.clone();
        tokio::spawn(async move { dispatch(&r, now).await })
    };
    assert_eq!(rig.held(&org.management).await, "UpdateItem");
    let played = play(&r, &d, now, 2, |_| None).await;
    assert_eq!(played.failures, 0, "{played:?}");
    assert!(
        emails_to(&rig.emails(&org.management), ADMIN).is_empty(),
        "no digest before the run's count is known"
    );
    rig.release(&org.management); // the SDK retries the count; every account is in
    let dispatched = dispatcher.await.unwrap();
    assert_eq!(dispatched["accounts"], 3, "{dispatched}");
    play(&r, &d, now, 2, |_| None).await;
    let emails = rig.emails(&org.management);
    assert_eq!(emails_to(&emails, ADMIN).len(), 1, "one digest");
    assert_eq!(
        emails_to(&emails, "platform@example.com").len(),
        1,
        "one email per owner"
    );
}

/// The dispatcher lists accounts per parent (the root and every OU, nested too): each account
/// of the organization is handed out once, wherever it sits.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_dispatch_finds_accounts_in_nested_ous_once_each() {
    let org = Org::new(3).await;
    let d = Deployment::new(&org).await;
    let orgs = aws_sdk_organizations::Client::new(&org.config);
    let root = orgs.list_roots().send().await.unwrap().roots()[0]
        .id()
        .unwrap()
        .to_string();
    let ou = |parent: String, name: &'static str| {
        let orgs = orgs.clone();
        async move {
            orgs.create_organizational_unit()
                .parent_id(parent)
                .name(name)
                .send()
                .await
                .unwrap()
                .organizational_unit
                .unwrap()
                .id
                .unwrap()
        }
    };
    let workloads = ou(root.clone(), "workloads").await;
    let prod = ou(workloads.clone(), "prod").await;
    for (member, to) in [(&org.members[0], &workloads), (&org.members[1], &prod)] {
        orgs.move_account()
            .account_id(member)
            .source_parent_id(&root)
            .destination_parent_id(to)
            .send()
            .await
            .unwrap();
    }
    let mut r = d.remediator(&org, true).await;
    // Through the org-list role (deploy/org-list-role.yaml), as from a central account that is
    // neither the management account nor a delegated admin.
    r.role.org_role_arn = Some(format!(
        "arn:aws:iam::{}:role/keyguard-org-list",
        org.management
    ));
    let dispatched = dispatch(&r, Utc::now()).await;
    assert_eq!(
        dispatched["accounts"], 4,
        "three members and the management account: {dispatched}"
    );
    let by_role = Rig::get().calls_by_role();
    assert!(
        by_role["keyguard-org-list"]["organizations:ListAccountsForParent"] >= 3,
        "the root and both OUs: {by_role:?}"
    );
    d.sqs
        .purge_queue()
        .queue_url(&d.queue)
        .send()
        .await
        .unwrap();
}
