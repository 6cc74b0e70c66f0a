//! Benchmarks against the rig's latency model (not timed tests: `#[ignore]`d, run by hand, their
//! figures in `docs/performance.md`): the sweep through the queue, and the dispatch of 10,000
//! accounts.

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::{Duration, SubsecRound, Utc};
use futures::StreamExt;
use keyguard_aws::inventory::ReportPolling;

use crate::scale::*;
use crate::support::{seed, Org, Rig, UserSpec};

// ------------------------------------------------------------------ benchmarks (not timed tests)

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Calls made in the member accounts and, of the central account's, those the remediator made
/// (not the player's: receiving and deleting is Lambda's event source mapping).
fn calls_of(org: &Org) -> (u64, u64) {
    let rig = Rig::get();
    let member: u64 = org
        .members
        .iter()
        .map(|a| rig.calls(a).values().sum::<u64>())
        .sum();
    let central: u64 = rig
        .calls(&org.management)
        .iter()
        .filter(|(k, _)| {
            !k.starts_with("sqs:ReceiveMessage")
                && !k.starts_with("sqs:DeleteMessage")
                && !k.starts_with("sqs:ChangeMessageVisibility")
        })
        .map(|(_, v)| v)
        .sum();
    (member, central)
}

/// The sweep through the fan-out path with the rig's latency model: `BENCH_ACCOUNTS` accounts
/// (500) of 10 users each (one due for rotation), `BENCH_WORKERS` concurrent invocations (20,
/// the deployed `SweepConcurrency`), `BENCH_CALL_MS` per call (80) and `BENCH_REPORT_MS` to
/// generate a credential report (2000). Prints accounts per minute, calls per account, the longest
/// invocation and the projection for 1,000 / 5,000 / 10,000 accounts. Run:
/// `cargo test --test it bench_sweep -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a benchmark: cargo test --test it bench_sweep -- --ignored --nocapture"]
async fn bench_sweep_through_the_queue() {
    let rig = Rig::get();
    let n = env_or("BENCH_ACCOUNTS", 500);
    let workers = env_or("BENCH_WORKERS", 20);
    let call_ms = env_or("BENCH_CALL_MS", 80) as u64;
    let report_ms = env_or("BENCH_REPORT_MS", 2000) as u64;
    let setup = Instant::now();
    let org = Org::new(n).await;
    let d = Deployment::new(&org).await;
    let now = Utc::now().trunc_subsecs(0);
    let specs: Vec<UserSpec> = (0..10)
        .map(|u| UserSpec {
            name: format!("user-{u}"),
            tags: vec![("owner-email".into(), format!("team-{}@example.com", u % 3))],
            keys: vec![(if u == 0 { 120 } else { 30 }, Some(1), true)],
            ..UserSpec::default()
        })
        .collect();
    let accounts: Vec<(usize, String)> = org.members.iter().cloned().enumerate().collect();
    futures::stream::iter(accounts)
        .for_each_concurrent(16, |(i, a)| {
            let (org, specs) = (&org, &specs);
            async move {
                seed(&org.member(i).await, &a, specs, now).await;
            }
        })
        .await;
    let mut r = d.remediator(&org, false).await;
    r.polling = ReportPolling::default(); // production: a poll every 2 s
    eprintln!("setup of {n} accounts: {:.0?}", setup.elapsed());

    for (label, day, forget) in [
        ("reports to generate, one rotation per account", 0, true),
        ("the next day: reports fresh, nothing due", 1, false),
    ] {
        for a in org.members.iter().chain([&org.management]) {
            rig.reset_calls(a);
        }
        rig.latency(call_ms, report_ms, forget);
        let at = now + Duration::days(day);
        let started = Instant::now();
        let dispatched = dispatch(&r, at).await;
        let dispatch_took = started.elapsed();
        let played = play(&r, &d, at, workers, |_| None).await;
        let took = started.elapsed();
        rig.latency(0, 0, false);
        let (member, central) = calls_of(&org);
        let per_minute = n as f64 / took.as_secs_f64() * 60.0;
        println!(
            "sweep ({label}): {n} accounts, {workers} workers, {call_ms} ms a call, {report_ms} ms a report:"
        );
        println!(
            "  dispatch {:.1} s ({} SendMessageBatch), all {:.1} s: {per_minute:.0} accounts/min; {} invocations, the longest {:.1} s; {} failed",
            dispatch_took.as_secs_f64(),
            dispatched["calls"],
            took.as_secs_f64(),
            played.invocations,
            played.longest.as_secs_f64(),
            played.failures
        );
        println!(
            "  calls per account: {:.1} in the account, {:.1} central",
            member as f64 / n as f64,
            central as f64 / n as f64
        );
        let per_action = |calls: BTreeMap<String, u64>| {
            calls
                .into_iter()
                .map(|(k, v)| format!("{k} {:.1}", v as f64 / n as f64))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!("    central: {}", per_action(rig.calls(&org.management)));
        println!(
            "    in the first account: {}",
            per_action(
                rig.calls(&org.members[0])
                    .into_iter()
                    .map(|(k, v)| (k, v * n as u64))
                    .collect()
            )
        );
        for total in [1_000, 5_000, 10_000] {
            println!(
                "  projection at {workers} concurrent: {total} accounts in {:.0} min",
                total as f64 / per_minute
            );
        }
    }
}

/// Dispatching 10,000 accounts (`BENCH_DISPATCH_ACCOUNTS`, over `BENCH_OUS` OUs) with the latency
/// model: the per-parent listing (20 a page, 8 parents at once), beside the paged ListAccounts for
/// comparison, and SendMessageBatch (10 a call, 16 at once). Run:
/// `cargo test --test it bench_dispatch -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a benchmark: cargo test --test it bench_dispatch -- --ignored --nocapture"]
async fn bench_dispatch_of_ten_thousand_accounts() {
    let rig = Rig::get();
    let n = env_or("BENCH_DISPATCH_ACCOUNTS", 10_000);
    let call_ms = env_or("BENCH_CALL_MS", 80) as u64;
    let setup = Instant::now();
    let org = Org::new(0).await;
    let orgs = aws_sdk_organizations::Client::new(&org.config);
    // Laid out as large organizations are: the accounts spread over OUs (BENCH_OUS, 0 = all
    // under the root).
    let ous_wanted = env_or("BENCH_OUS", 25);
    let root = orgs.list_roots().send().await.unwrap().roots()[0]
        .id()
        .unwrap()
        .to_string();
    let mut ous = Vec::new();
    for i in 0..ous_wanted {
        ous.push(
            orgs.create_organizational_unit()
                .parent_id(&root)
                .name(format!("ou-{i}"))
                .send()
                .await
                .unwrap()
                .organizational_unit
                .unwrap()
                .id
                .unwrap(),
        );
    }
    futures::stream::iter(0..n)
        .for_each_concurrent(16, |i| {
            let (orgs, ous, root) = (&orgs, &ous, &root);
            let management = &org.management;
            async move {
                let created = orgs
                    .create_account()
                    .account_name(format!("member-{i}"))
                    .email(format!("member-{i}@{management}.example.com"))
                    .send()
                    .await
                    .unwrap();
                if !ous.is_empty() {
                    let id = created
                        .create_account_status()
                        .and_then(|s| s.account_id())
                        .unwrap()
                        .to_string();
                    orgs.move_account()
                        .account_id(id)
                        .source_parent_id(root)
                        .destination_parent_id(&ous[i % ous.len()])
                        .send()
                        .await
                        .unwrap();
                }
            }
        })
        .await;
    let d = Deployment::new(&org).await;
    let r = d.remediator(&org, true).await;
    eprintln!("setup of {n} accounts: {:.0?}", setup.elapsed());
    // The floor: the listing alone (pages one after the other) at the same latency.
    rig.latency(call_ms, 0, false);
    let listing = Instant::now();
    let listed = keyguard_aws::org::organization_accounts(&r.sdk, &r.role, &r.filter)
        .await
        .unwrap();
    let listing = listing.elapsed();
    let by_parent = Instant::now();
    let pages: Vec<_> = keyguard_aws::org::organization_account_pages(&r.sdk, &r.role, &r.filter)
        .await
        .unwrap()
        .collect()
        .await;
    let by_parent = by_parent.elapsed();
    let listed_by_parent: usize = pages.into_iter().map(|p| p.unwrap().len()).sum();
    assert_eq!(listed_by_parent, listed.len(), "each account once");
    rig.reset_calls(&org.management);
    let started = Instant::now();
    let dispatched = dispatch(&r, Utc::now()).await;
    let took = started.elapsed();
    rig.latency(0, 0, false);
    println!(
        "listing {} accounts alone at {call_ms} ms a call: ListAccounts {:.1} s, per parent ({} OUs) {:.1} s",
        listed.len(),
        listing.as_secs_f64(),
        ous.len(),
        by_parent.as_secs_f64()
    );
    let calls = rig.calls(&org.management);
    println!(
        "dispatch of {} accounts at {call_ms} ms a call: {:.1} s ({} ListAccounts, {} SendMessageBatch)",
        dispatched["accounts"],
        took.as_secs_f64(),
        calls.get("organizations:ListAccounts").copied().unwrap_or(0),
        dispatched["calls"]
    );
    d.sqs
        .purge_queue()
        .queue_url(&d.queue)
        .send()
        .await
        .unwrap();
}
