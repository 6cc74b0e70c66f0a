//! CloudTrail `LookupEvents`, paced below the API's 2 calls per second per account and Region:
//! the IAM events of one account in us-east-1 (where CloudTrail records IAM, a global service),
//! one `EventName` per call; and the calls made with one access key, in each Region asked
//! (event history is kept per Region), turned into where the key is used
//! ([`keyguard_core::usage`]).
//!
//! What CloudTrail cannot show (`docs/usage.md`): data events (S3 object reads, Lambda invokes)
//! unless a trail logs them, and calls made with session credentials derived from the key, which
//! carry the session's `ASIA…` id, not the key's.

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

/// `LookupEvents` looks back at most this many days (event history's retention).
pub const LOOKBACK_DAYS: i64 = 90;

/// A CloudTrail client in [`IAM_EVENTS_REGION`] with `cfg`'s credentials.
pub fn client(cfg: &SdkConfig) -> aws_sdk_cloudtrail::Client {
    client_in(cfg, IAM_EVENTS_REGION)
}

/// A CloudTrail client in `region` with `cfg`'s credentials.
pub fn client_in(cfg: &SdkConfig, region: &str) -> aws_sdk_cloudtrail::Client {
    let conf = aws_sdk_cloudtrail::config::Builder::from(cfg)
        .region(aws_sdk_cloudtrail::config::Region::new(region.to_string()))
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
    let (records, calls, _) = lookup(
        client,
        (LookupAttributeKey::EventName, event_name),
        (start, end),
        pace,
        usize::MAX,
    )
    .await?;
    Ok((records, calls))
}

/// What [`key_calls`] found of one key in one Region.
#[derive(Debug, Default)]
pub struct KeyCalls {
    /// The raw CloudTrail records, newest first.
    pub records: Vec<String>,
    /// `LookupEvents` calls made.
    pub calls: usize,
    /// True when `max_pages` ended the lookup before the window's start: older calls exist.
    pub truncated: bool,
}

/// The calls made with access key `key_id` between `start` and `end` that `client`'s Region
/// recorded, newest first, at most `max_pages` pages of 50.
pub async fn key_calls(
    client: &aws_sdk_cloudtrail::Client,
    key_id: &str,
    (start, end): (DateTime<Utc>, DateTime<Utc>),
    pace: &mut tokio::time::Interval,
    max_pages: usize,
) -> Result<KeyCalls> {
    let start = start.max(end - chrono::Duration::days(LOOKBACK_DAYS));
    let (records, calls, truncated) = lookup(
        client,
        (LookupAttributeKey::AccessKeyId, key_id),
        (start, end),
        pace,
        max_pages,
    )
    .await?;
    Ok(KeyCalls {
        records,
        calls,
        truncated,
    })
}

/// The usage of one key in the records of its calls (LookupEvents' `CloudTrailEvent`s, or a
/// trail file's): a record that is not CloudTrail's costs itself only.
pub fn usage_of(records: &[String]) -> keyguard_core::usage::Usage {
    let mut usage = keyguard_core::usage::Usage::default();
    for r in records {
        if let Ok(rec) = serde_json::from_str::<KeyCallRecord<'_>>(r) {
            if let Some(call) = rec.call() {
                usage.add(&call);
            }
        }
    }
    usage
}

/// The fields of a CloudTrail record that say where a key was used (borrowed, the rest skipped).
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyCallRecord<'a> {
    #[serde(borrow)]
    event_time: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    event_source: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    aws_region: std::borrow::Cow<'a, str>,
    #[serde(rename = "sourceIPAddress", default, borrow)]
    source_ip_address: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    user_agent: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    vpc_endpoint_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    user_identity: Option<KeyIdentity<'a>>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyIdentity<'a> {
    #[serde(default, borrow)]
    access_key_id: Option<std::borrow::Cow<'a, str>>,
}

impl KeyCallRecord<'_> {
    /// The call, when it was made with a long-term key (`AKIA…`) at a readable time.
    pub fn call(&self) -> Option<keyguard_core::usage::Call<'_>> {
        key_call(KeyCallFields {
            key_id: self.user_identity.as_ref()?.access_key_id.as_deref()?,
            event_time: &self.event_time,
            source_ip: &self.source_ip_address,
            user_agent: &self.user_agent,
            service: &self.event_source,
            region: &self.aws_region,
            vpc_endpoint: self.vpc_endpoint_id.as_deref(),
        })
    }
}

/// The fields of a CloudTrail record that say where a key was used, as read.
pub struct KeyCallFields<'a> {
    /// `userIdentity.accessKeyId`.
    pub key_id: &'a str,
    /// `eventTime` (RFC 3339).
    pub event_time: &'a str,
    /// `sourceIPAddress`.
    pub source_ip: &'a str,
    /// `userAgent`.
    pub user_agent: &'a str,
    /// `eventSource`.
    pub service: &'a str,
    /// `awsRegion`.
    pub region: &'a str,
    /// `vpcEndpointId`.
    pub vpc_endpoint: Option<&'a str>,
}

/// The call of a record's fields, when it was made with a long-term key (`AKIA…`: a session's
/// `ASIA…` is not the key's) at a readable time.
#[inline]
pub fn key_call(f: KeyCallFields<'_>) -> Option<keyguard_core::usage::Call<'_>> {
    if !keyguard_core::usage::is_long_term(f.key_id) {
        return None;
    }
    let time = DateTime::parse_from_rfc3339(f.event_time)
        .ok()?
        .with_timezone(&Utc);
    Some(keyguard_core::usage::Call {
        key_id: f.key_id,
        time,
        source_ip: f.source_ip,
        user_agent: f.user_agent,
        service: f.service,
        region: f.region,
        vpc_endpoint: f.vpc_endpoint,
    })
}

/// Every page (up to `max_pages`) of `LookupEvents` for one attribute in `window`: the records,
/// the calls made, and whether pages were left.
async fn lookup(
    client: &aws_sdk_cloudtrail::Client,
    (key, value): (LookupAttributeKey, &str),
    (start, end): (DateTime<Utc>, DateTime<Utc>),
    pace: &mut tokio::time::Interval,
    max_pages: usize,
) -> Result<(Vec<String>, usize, bool)> {
    let attr = LookupAttribute::builder()
        .attribute_key(key)
        .attribute_value(value)
        .build()
        .map_err(|e| Error::Build {
            what: "the LookupEvents attribute".into(),
            source: Box::new(e),
        })?;
    let mut records = Vec::new();
    let mut calls = 0;
    let mut token: Option<String> = None;
    loop {
        if calls >= max_pages {
            return Ok((records, calls, true));
        }
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
    Ok((records, calls, false))
}
