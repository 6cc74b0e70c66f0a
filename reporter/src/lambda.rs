//! The `reporter` Lambda's entry: an SQS batch of the report queue goes to the queued report
//! ([`crate::queued_report`]); the schedule's request is handed out to the queue when one is
//! configured, else the report is made in this invocation (`scheduled`).

use chrono::{DateTime, Utc};
use keyguard_aws::queue::is_sqs_event;
use serde::Serialize;

use crate::error::Result;
use crate::queued_report::{self, Dispatched};
use crate::scheduled::parse;

pub use crate::function::Reporter;
pub use crate::scheduled::{handle, Outcome, Request};

/// What an invocation answers.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Answer {
    /// A report made in this invocation.
    Report(Outcome),
    /// A report handed out to the queue.
    Dispatched(Dispatched),
    /// An SQS batch.
    Batch(aws_lambda_events::event::sqs::SqsBatchResponse),
}

/// Handles one Lambda invocation: an SQS batch of the report queue, or the schedule's request
/// (handed out to the queue when one is configured, else made here).
pub async fn handle_invocation(
    r: &Reporter,
    event: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<Answer> {
    if is_sqs_event(&event) {
        return Ok(Answer::Batch(
            queued_report::handle_batch(r, event, now).await?,
        ));
    }
    if r.queue.is_some() {
        let (kind, as_of) = parse(&event)?;
        let as_of = as_of.map_or(now, |d| {
            d.and_hms_opt(23, 59, 59).expect("a valid time").and_utc()
        });
        return Ok(Answer::Dispatched(
            queued_report::dispatch(r, kind, as_of).await?,
        ));
    }
    Ok(Answer::Report(handle(r, event, now).await?))
}
