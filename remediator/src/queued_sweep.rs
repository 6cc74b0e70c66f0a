//! The organization-scale sweep on AWS's own engine: SQS feeding the remediator.
//!
//! - [`dispatch`] (the scheduled event): lists the organization's accounts once, records the run
//!   in the state table, and sends one [`WorkItem::Account`] per account (`SendMessageBatch`, ten a
//!   call). It is the only invocation whose work grows with the organization.
//! - [`handle_batch`] (the queue's event source mapping, `ReportBatchItemFailures`): each account
//!   runs in its own invocation. Its notice pieces go to the state table. A failure is reported for
//!   that message alone, so SQS delivers it again (up to the queue's `maxReceiveCount`, then to the
//!   dead-letter queue and its alarm); on its last delivery the account is recorded as failed so
//!   that the run still finishes. An account that reached the invocation's deadline hands the rest
//!   of its users to a new message ([`WorkItem::Account`] with `after`).
//! - When the last account is in, a [`WorkItem::Finalize`] sends the run's digest and hands out
//!   one [`WorkItem::Owner`] per owner: one email per owner per run, across every account.
//! - A run that never finished (messages lost, a bug) is finalized by the next day's dispatch,
//!   with its missing accounts named: nothing needs a person to re-run it by hand.

use std::time::Instant;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use keyguard_aws::org::organization_account_pages;
use keyguard_aws::queue;
use keyguard_core::Account;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{info, warn, Instrument};

use crate::account::{account_run, AccountJob, Invocation, Limits, Selection};
use crate::admin_digest::{digest, send_digest, worth_sending};
use crate::error::{Error, Result};
use crate::function::Remediator;
use crate::notice_pieces::by_owner;
use crate::owner_email::{owner_notice, send_owner};
use crate::previews::Previews;
use crate::queued_run::{RunMeta, Runs};
use crate::requests::{Forced, Mode};

/// One message of the work queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum WorkItem {
    /// One account of a run.
    Account {
        /// The run's id.
        run: String,
        /// The account.
        account: Account,
        /// The run's mode.
        mode: Mode,
        /// A continuation: only users whose name is this or later.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<String>,
    },
    /// Every account of the run is in: send the digest, hand out the owners' emails.
    Finalize {
        /// The run's id.
        run: String,
    },
    /// One owner's email of a run.
    Owner {
        /// The run's id.
        run: String,
        /// The owner's address.
        owner: String,
    },
}

/// What the dispatch did.
#[derive(Debug, Clone, Serialize)]
pub struct Dispatched {
    /// The run's id (`sweep-YYYY-MM-DD`).
    pub run: String,
    /// Accounts handed out (0 when the run was dispatched already).
    pub accounts: usize,
    /// `SendMessageBatch` calls made.
    pub calls: usize,
    /// Earlier runs that never finished and are finalized now.
    pub finalizing: Vec<String>,
}

fn queue_of(r: &Remediator) -> Result<(aws_sdk_sqs::Client, &str)> {
    let url = r.queue.as_deref().ok_or_else(|| {
        Error::MalformedEvent("an SQS batch, but no WORK_QUEUE_URL is configured".into())
    })?;
    Ok((aws_sdk_sqs::Client::new(&r.sdk), url))
}

fn runs_of(r: &Remediator) -> Result<Runs<'_>> {
    r.state.as_ref().map(Runs).ok_or_else(|| {
        Error::Internal("the work queue needs the state table (KEYGUARD_STATE_TABLE)".into())
    })
}

async fn enqueue(r: &Remediator, items: &[WorkItem]) -> Result<usize> {
    let (sqs, url) = queue_of(r)?;
    let bodies: Vec<String> = items
        .iter()
        .map(|i| serde_json::to_string(i).expect("plain data serializes"))
        .collect();
    Ok(queue::send_all(&sqs, url, &bodies).await?)
}

/// The scheduled sweep, handed out: one message per account the filter admits. Dispatching the
/// same day twice (a schedule delivered twice) hands out nothing the second time.
pub async fn dispatch(r: &Remediator, mode: Mode, now: DateTime<Utc>) -> Result<Dispatched> {
    let runs = runs_of(r)?;
    let run = format!("sweep-{}", now.format("%Y-%m-%d"));
    let finalizing = runs.unfinished_before(&run).await?;
    if !finalizing.is_empty() {
        warn!(runs = ?finalizing, "earlier runs never finished: finalizing them");
        let items: Vec<WorkItem> = finalizing
            .iter()
            .map(|run| WorkItem::Finalize { run: run.clone() })
            .collect();
        enqueue(r, &items).await?;
    }
    let meta = RunMeta {
        started: now,
        preview: r.dry_run(mode),
        mode,
    };
    if !runs.create(&run, &meta).await? {
        info!(run, "dispatched already");
        return Ok(Dispatched {
            run,
            accounts: 0,
            calls: 0,
            finalizing,
        });
    }
    // Each page of accounts is handed out while the next one is fetched: the listing (one page
    // after the other) is the dispatch's floor, the sends overlap it.
    let pages = organization_account_pages(&r.sdk, &r.role, &r.filter).await?;
    let sent: Vec<(usize, usize)> = pages
        .map_err(Error::from)
        .map_ok(|page| {
            let items: Vec<WorkItem> = page
                .into_iter()
                .map(|account| WorkItem::Account {
                    run: run.clone(),
                    account,
                    mode,
                    after: None,
                })
                .collect();
            async move {
                let calls = if items.is_empty() {
                    0
                } else {
                    enqueue(r, &items).await?
                };
                Ok::<_, Error>((items.len(), calls))
            }
        })
        .try_buffer_unordered(keyguard_aws::queue::SEND_CONCURRENCY)
        .try_collect()
        .await?;
    let accounts: usize = sent.iter().map(|s| s.0).sum();
    let mut calls: usize = sent.iter().map(|s| s.1).sum();
    // Every account is out: the run gets its count, and is finalized now if all are in already
    // (a worker that finishes the last account later finalizes it itself; finalizing is once).
    let (done, total) = runs.set_total(&run, accounts).await?;
    if done >= total {
        calls += enqueue(r, &[WorkItem::Finalize { run: run.clone() }]).await?;
    }
    info!(run, accounts, calls, "dispatched");
    Ok(Dispatched {
        run,
        accounts,
        calls,
        finalizing,
    })
}

/// Handles one SQS batch: each message on its own; the ones to deliver again are returned. A
/// message not started because the deadline is near is sent again as a new message (a delay,
/// not a failed delivery).
pub async fn handle_batch(
    r: &Remediator,
    event: Value,
    inv: &Invocation,
) -> Result<SqsBatchResponse> {
    let event: SqsEvent = Error::typed("SQS event", event)?;
    let mut failures = SqsBatchResponse::default();
    for queue::Delivery { id, receives, body } in queue::deliveries(event) {
        let item: WorkItem = match serde_json::from_str(&body) {
            Ok(i) => i,
            Err(e) => {
                // Never valid: to the dead-letter queue (and its alarm) after the retries.
                warn!(message = %id, error = %e, "not a work item");
                failures.add_failure(id);
                continue;
            }
        };
        if past_margin(r, inv.deadline) {
            match enqueue(r, std::slice::from_ref(&item)).await {
                Ok(_) => continue,
                Err(e) => {
                    warn!(message = %id, error = %e, "could not hand the message on");
                    failures.add_failure(id);
                    continue;
                }
            }
        }
        if let Err(e) = handle_item(r, item, inv, receives).await {
            warn!(message = %id, receives, error = %e, "work item failed");
            failures.add_failure(id);
        }
    }
    Ok(failures)
}

fn past_margin(r: &Remediator, deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() + r.deadline_margin >= d)
}

async fn handle_item(
    r: &Remediator,
    item: WorkItem,
    inv: &Invocation,
    receives: u32,
) -> Result<()> {
    match item {
        WorkItem::Account {
            run,
            account,
            mode,
            after,
        } => {
            let span = tracing::info_span!("account", run = %run, account = %account.id);
            account_item(r, &run, account, mode, after, inv, receives)
                .instrument(span)
                .await
        }
        WorkItem::Finalize { run } => {
            let span = tracing::info_span!("finalize", run = %run);
            finalize(r, &run, inv.now).instrument(span).await
        }
        WorkItem::Owner { run, owner } => {
            let span = tracing::info_span!("owner", run = %run);
            owner_item(r, &run, &owner, inv.now).instrument(span).await
        }
    }
}

async fn account_item(
    r: &Remediator,
    run: &str,
    account: Account,
    mode: Mode,
    after: Option<String>,
    inv: &Invocation,
    receives: u32,
) -> Result<()> {
    let runs = runs_of(r)?;
    let limits = Limits {
        deadline: inv.deadline,
        after,
    };
    let job = AccountJob {
        account: account.clone(),
        selection: Selection::All,
        forced: Forced::No,
        mode,
        now: inv.now,
        limits,
    };
    let done = account_run(r, &job).await;
    for u in &done.users {
        runs.put_user(run, u, inv.now).await?;
    }
    if let Some(from) = &done.report.deferred {
        info!(
            from,
            "deferred: the rest of the account goes to a new message"
        );
        enqueue(
            r,
            &[WorkItem::Account {
                run: run.to_string(),
                account,
                mode,
                after: Some(from.clone()),
            }],
        )
        .await?;
        return Ok(());
    }
    let failures = done.report.failures();
    let last = receives >= r.max_receives;
    if failures > 0 && !last {
        return Err(Error::ActionsFailed {
            failed: failures,
            summary: done.report.error.clone().unwrap_or_else(|| {
                format!(
                    "{failures} step(s) failed; delivery {receives} of {}",
                    r.max_receives
                )
            }),
        });
    }
    if let Some((finished, total)) = runs
        .finish_account(run, &done.piece, failures > 0, inv.now)
        .await?
    {
        info!(finished, total, "account finished");
        if finished >= total {
            enqueue(
                r,
                &[WorkItem::Finalize {
                    run: run.to_string(),
                }],
            )
            .await?;
        }
    }
    if failures > 0 {
        // The last delivery: counted as failed so that the run finishes, and the message goes
        // to the dead-letter queue, whose alarm tells the operators.
        return Err(Error::ActionsFailed {
            failed: failures,
            summary: format!("given up after {receives} deliveries"),
        });
    }
    Ok(())
}

/// Sends the run's digest once and hands out one message per owner. Safe to repeat: each part
/// is flagged in the run when it is done.
pub async fn finalize(r: &Remediator, run: &str, now: DateTime<Utc>) -> Result<()> {
    let runs = runs_of(r)?;
    let Some(state) = runs.state(run).await? else {
        warn!("no such run");
        return Ok(());
    };
    if state.run.has("finalized") {
        return Ok(());
    }
    let (accounts, users) = runs.pieces(run).await?;
    let unfinished = if state.run.total == keyguard_aws::state::TOTAL_UNKNOWN {
        // The dispatcher died while handing out accounts: those it never sent are not counted.
        warn!("the run's dispatch never finished: accounts it did not hand out are not in it");
        0
    } else {
        (state.run.total as usize).saturating_sub(accounts.len())
    };
    let run_at = state.meta.started.format("%Y-%m-%d %H:%M UTC").to_string();
    if !state.run.has("digest") {
        if !r.notices.admins.is_empty() {
            let mut d = digest(
                run,
                &run_at,
                state.meta.preview,
                &accounts,
                &users,
                unfinished,
            );
            let (requests, unread) = crate::sweep::previous_requests(r, state.meta.started).await;
            for note in unread {
                warn!(note, "digest");
            }
            d.requests = requests;
            if worth_sending(&d) {
                send_digest(r, &d).await?;
            }
        }
        runs.claim(run, "digest").await?;
    }
    if !state.run.has("owners") {
        let owners: Vec<WorkItem> = by_owner(&users)
            .into_keys()
            .map(|owner| WorkItem::Owner {
                run: run.to_string(),
                owner: owner.to_string(),
            })
            .collect();
        if !owners.is_empty() {
            enqueue(r, &owners).await?;
        }
        runs.claim(run, "owners").await?;
    }
    runs.claim(run, "finalized").await?;
    info!(
        accounts = accounts.len(),
        finished = state.run.done,
        failed = state.run.failed,
        unfinished,
        owners = by_owner(&users).len(),
        at = %now,
        "run finalized"
    );
    Ok(())
}

/// One owner's email of the run: every piece addressed to them, grouped by account; in a preview
/// run, only the steps (and dates) not previewed to them before.
async fn owner_item(r: &Remediator, run: &str, owner: &str, now: DateTime<Utc>) -> Result<()> {
    let runs = runs_of(r)?;
    if runs.owner_sent(run, owner).await? {
        return Ok(());
    }
    let Some(state) = runs.state(run).await? else {
        return Ok(());
    };
    let mut pieces = runs.owner_pieces(run, owner).await?;
    let previews = Previews(runs.0);
    if state.meta.preview {
        for p in &mut pieces {
            if let Some(n) = &p.notice {
                p.notice = previews.fresh(&p.account, n).await?;
            }
        }
    }
    let refs: Vec<_> = pieces.iter().collect();
    let run_at = state.meta.started.format("%Y-%m-%d %H:%M UTC").to_string();
    if let Some(notice) = owner_notice(r, owner, &refs, state.meta.preview, &run_at) {
        send_owner(r, &notice).await?;
        if state.meta.preview {
            for p in &pieces {
                if let Some(n) = &p.notice {
                    previews.remember(&p.account, n, now).await?;
                }
            }
        }
    }
    runs.mark_owner_sent(run, owner, now).await?;
    Ok(())
}
