//! A report made in one invocation: the schedule's request (`{"report": "weekly"}` or
//! `{"report": "monthly"}`, optionally `"asOf": "YYYY-MM-DD"`) parsed, the organization read live,
//! the report built and delivered to S3 and/or email.

use chrono::{DateTime, NaiveDate, Utc};
use keyguard_aws::org::organization_accounts;
use serde::{Deserialize, Serialize};

use crate::deliver::produce;
use crate::error::{Error, Result};
use crate::evidence::Options;
use crate::function::Reporter;
use crate::live;
use crate::period::PeriodKind;

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
    if r.delivery.s3_uri.is_none()
        && r.delivery.email_to.is_empty()
        && r.delivery.security_lake.is_none()
    {
        return Err(Error::InvalidParameter(
            "nowhere to deliver: set REPORT_S3_URI, REPORT_RECIPIENTS and/or SECURITY_LAKE_LOCATION"
                .into(),
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
