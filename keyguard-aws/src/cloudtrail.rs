//! CloudTrail `LookupEvents`: the IAM events of one account, in us-east-1 (where CloudTrail
//! records IAM, a global service), one `EventName` per call, paced below the API's 2 calls per
//! second per account and Region.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::time::to_smithy;

/// CloudTrail records IAM (a global service) in us-east-1.
pub const IAM_EVENTS_REGION: &str = "us-east-1";
/// `LookupEvents` allows 2 calls per second per account and Region; keyguard spaces its calls.
pub const LOOKUP_INTERVAL: Duration = Duration::from_millis(500);

/// A CloudTrail client in [`IAM_EVENTS_REGION`] with `cfg`'s credentials.
pub fn client(cfg: &SdkConfig) -> aws_sdk_cloudtrail::Client {
    let conf = aws_sdk_cloudtrail::config::Builder::from(cfg)
        .region(aws_sdk_cloudtrail::config::Region::new(IAM_EVENTS_REGION))
        .build();
    aws_sdk_cloudtrail::Client::from_conf(conf)
}

/// The raw CloudTrail records (JSON text) of every event named `event_name` between `start` and
/// `end`: 50 a page, every page, each call waiting for `pace`'s next tick. Returns the records
/// and the calls made.
pub async fn lookup_events(
    client: &aws_sdk_cloudtrail::Client,
    event_name: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    pace: &mut tokio::time::Interval,
) -> Result<(Vec<String>, usize)> {
    let attr = LookupAttribute::builder()
        .attribute_key(LookupAttributeKey::EventName)
        .attribute_value(event_name)
        .build()
        .map_err(|e| Error::Build {
            what: "the LookupEvents attribute".into(),
            source: Box::new(e),
        })?;
    let mut records = Vec::new();
    let mut calls = 0;
    let mut token: Option<String> = None;
    loop {
        pace.tick().await;
        calls += 1;
        let page = client
            .lookup_events()
            .lookup_attributes(attr.clone())
            .start_time(to_smithy(start))
            .end_time(to_smithy(end))
            .max_results(50)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| Error::sdk("LookupEvents", e))?;
        records.extend(
            page.events()
                .iter()
                .filter_map(|e| e.cloud_trail_event())
                .map(str::to_string),
        );
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    Ok((records, calls))
}
