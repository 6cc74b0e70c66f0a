//! The entry points: an invocation's payload → the request it makes ([`crate::requests`]) →
//! the run that serves it: a queued batch, a sweep (handed out to the queue, or run here), a
//! member account's request, or one account or user.

use chrono::{DateTime, Utc};
use keyguard_aws::org::organization_accounts;
use serde::Serialize;
use serde_json::Value;

use crate::account::Invocation;
use crate::error::Result;
use crate::exposure::exposed;
use crate::function::Remediator;
use crate::member_request::requested;
use crate::queued_sweep::{self, Dispatched};
use crate::reenabled::reenabled;
use crate::requests::Request;
use crate::restore::restore_request;
use crate::summary::{Requested, Summary};
use crate::sweep::{single, sweep, sweep_accounts_until};

/// What an invocation answers.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Answer {
    /// A run done in this invocation.
    Summary(Summary),
    /// An SQS batch: the messages to deliver again (`batchItemFailures`).
    Batch(aws_lambda_events::event::sqs::SqsBatchResponse),
    /// A sweep handed out to the work queue.
    Dispatched(Dispatched),
    /// A member account's request, answered with counts only.
    Requested(Requested),
}

/// Handles one invocation payload at `now` in this process (no queue, no deadline): the CLI's
/// and the tests' entry. The summary comes back even when steps failed; the Lambda turns failures
/// into an invocation error with [`Summary::into_result`].
pub async fn handle(r: &Remediator, event: Value, now: DateTime<Utc>) -> Result<Summary> {
    let inv = Invocation {
        now,
        deadline: None,
    };
    match Request::parse(event)? {
        Request::Sweep { mode } => sweep(r, &r.filter, mode, now).await,
        Request::ComplianceChange { account, user_id } => {
            requested(r, account, user_id, &inv).await.map(|(_, s)| s)
        }
        Request::Restore {
            account,
            user,
            key,
            mode,
        } => restore_request(r, account, user, key, mode, now).await,
        Request::Exposure(e) => exposed(r, e, &inv).await,
        Request::KeyReEnabled(e) => reenabled(r, e, &inv).await,
        request => single(r, request, &inv).await,
    }
}

/// Handles one Lambda invocation: an SQS batch of work, the scheduled sweep (handed out to the
/// queue when one is configured, else run here), or a request for one account or user.
pub async fn handle_invocation(r: &Remediator, event: Value, inv: Invocation) -> Result<Answer> {
    if keyguard_aws::queue::is_sqs_event(&event) {
        return Ok(Answer::Batch(
            queued_sweep::handle_batch(r, event, &inv).await?,
        ));
    }
    match Request::parse(event)? {
        Request::Sweep { mode } if r.queue.is_some() => Ok(Answer::Dispatched(
            queued_sweep::dispatch(r, mode, inv.now).await?,
        )),
        Request::Sweep { mode } => Ok(Answer::Summary(
            sweep_accounts_until(
                r,
                organization_accounts(&r.sdk, &r.role, &r.filter).await?,
                mode,
                inv.now,
                inv.deadline,
            )
            .await?,
        )),
        Request::ComplianceChange { account, user_id } => Ok(Answer::Requested(
            requested(r, account, user_id, &inv).await?.0,
        )),
        Request::Restore {
            account,
            user,
            key,
            mode,
        } => Ok(Answer::Summary(
            restore_request(r, account, user, key, mode, inv.now).await?,
        )),
        Request::Exposure(e) => Ok(Answer::Summary(exposed(r, e, &inv).await?)),
        Request::KeyReEnabled(e) => Ok(Answer::Summary(reenabled(r, e, &inv).await?)),
        request => Ok(Answer::Summary(single(r, request, &inv).await?)),
    }
}
