//! The `reporter` Lambda's handler: an EventBridge schedule invokes it with a constant input
//! naming the report (`{"report": "weekly"}` or `{"report": "monthly"}`, optionally
//! `"asOf": "YYYY-MM-DD"`); it reads the organization live and delivers to S3 and/or email.

use aws_config::SdkConfig;
use chrono::{DateTime, NaiveDate, Utc};
use keyguard_aws::org::{organization_accounts, AccountFilter};
use keyguard_aws::sdk::Caller;
use serde::{Deserialize, Serialize};

use crate::deliver::{produce, Delivery};
use crate::evidence::Options;
use crate::live::{self, LiveOptions};
use crate::period::PeriodKind;
use crate::{Error, Result};

/// What the function needs besides the event, built once at start-up.
#[derive(Debug, Clone)]
pub struct Reporter {
    /// The SDK configuration of the function's own account.
    pub sdk: SdkConfig,
    /// Who the function runs as.
    pub caller: Caller,
    /// Policy, rule name, keyguard's roles (`kind` and `as_of` are replaced per event).
    pub options: Options,
    /// Config and CloudTrail sources, member role.
    pub live: LiveOptions,
    /// Which accounts (include / exclude lists).
    pub filter: AccountFilter,
    /// Where reports go (S3 and/or email; a folder makes no sense in Lambda).
    pub delivery: Delivery,
    /// The central state table (with the queue: run progress).
    pub state: Option<keyguard_aws::state::StateTable>,
    /// The report queue's URL: a report is then spread over one invocation per account.
    pub queue: Option<String>,
    /// The report queue's maxReceiveCount.
    pub max_receives: u32,
}

/// What an invocation answers.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Answer {
    /// A report made in this invocation.
    Report(Outcome),
    /// A report handed out to the queue.
    Dispatched(crate::work::Dispatched),
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
    if crate::work::is_sqs_event(&event) {
        return Ok(Answer::Batch(
            crate::work::handle_batch(r, event, now).await?,
        ));
    }
    if r.queue.is_some() {
        let (kind, as_of) = parse(&event)?;
        let as_of = as_of.map_or(now, |d| {
            d.and_hms_opt(23, 59, 59).expect("a valid time").and_utc()
        });
        return Ok(Answer::Dispatched(
            crate::work::dispatch(r, kind, as_of).await?,
        ));
    }
    Ok(Answer::Report(handle(r, event, now).await?))
}

/// The accepted event.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Request {
    /// `weekly` or `monthly`.
    pub report: String,
    /// The report date (default: the invocation time).
    #[serde(default)]
    pub as_of: Option<NaiveDate>,
}

/// What an invocation returns.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// The period's id (`weekly-2026-11-20`).
    pub period: String,
    /// Where the report went.
    pub delivered: Vec<String>,
    /// Inputs that could not be used (also in the report).
    pub problems: Vec<String>,
}

/// Parses an event; the error names the accepted shape.
pub fn parse(event: &serde_json::Value) -> Result<(PeriodKind, Option<NaiveDate>)> {
    const SHAPE: &str = r#"expected {"report": "weekly" | "monthly", "asOf"?: "YYYY-MM-DD"} (the EventBridge rule's constant input)"#;
    let req: Request = serde_json::from_value(event.clone())
        .map_err(|e| Error::MalformedEvent(format!("{e}; {SHAPE}")))?;
    let kind = PeriodKind::parse(&req.report).ok_or_else(|| {
        Error::MalformedEvent(format!("unknown report {:?}; {SHAPE}", req.report))
    })?;
    Ok((kind, req.as_of))
}

/// Handles one invocation at `now`.
pub async fn handle(r: &Reporter, event: serde_json::Value, now: DateTime<Utc>) -> Result<Outcome> {
    let (kind, as_of) = parse(&event)?;
    if r.delivery.s3_uri.is_none() && r.delivery.email_to.is_empty() {
        return Err(Error::InvalidParameter(
            "nowhere to deliver: set REPORT_S3_URI and/or REPORT_RECIPIENTS".into(),
        ));
    }
    let accounts = organization_accounts(&r.sdk, &r.live.role, &r.filter).await?;
    let options = Options {
        kind,
        as_of: as_of.map(|d| d.and_hms_opt(23, 59, 59).expect("a valid time").and_utc()),
        ..r.options.clone()
    };
    let inputs = live::inputs(&r.sdk, &r.caller, accounts, &options, &r.live, now).await?;
    let (report, delivered) = produce(inputs, &r.delivery, Some(&r.sdk)).await?;
    for p in &report.problems {
        tracing::warn!(problem = %p, "report input");
    }
    Ok(Outcome {
        period: report.period.id(),
        delivered,
        problems: report.problems,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_name_their_report() {
        let weekly: serde_json::Value =
            serde_json::from_str(include_str!("../fixtures/weekly.json")).unwrap();
        assert_eq!(parse(&weekly).unwrap(), (PeriodKind::Weekly, None));
        let monthly = serde_json::json!({"report": "monthly", "asOf": "2026-12-01"});
        assert_eq!(
            parse(&monthly).unwrap(),
            (PeriodKind::Monthly, NaiveDate::from_ymd_opt(2026, 12, 1))
        );
        let scheduled = serde_json::json!({"version": "0", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}});
        let e = parse(&scheduled).unwrap_err().to_string();
        assert!(e.contains("constant input"), "{e}");
        let e = parse(&serde_json::json!({"report": "daily"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown report \"daily\""), "{e}");
    }
}
