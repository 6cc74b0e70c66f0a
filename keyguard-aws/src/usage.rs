//! Where a key is used, read live in its account: IAM's last use (GetAccessKeyLastUsed: when,
//! which service, which Region) and CloudTrail's calls made with it (`LookupEvents` by
//! `AccessKeyId`, in us-east-1, where IAM and the global services are recorded, and in the Region
//! IAM last saw the key used in: event history is kept per Region), paced below LookupEvents'
//! 2 calls a second, at most 90 days back.

use aws_config::SdkConfig;
use chrono::{DateTime, Utc};
use keyguard_core::usage::Usage;

use crate::cloudtrail::{client_in, key_calls, usage_of, IAM_EVENTS_REGION};
use crate::error::{Error, Result};
use crate::time::to_chrono;

/// IAM's last use of a key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LastUse {
    /// When; `None` when never used.
    pub at: Option<DateTime<Utc>>,
    /// The service (`s3`), when IAM knows it.
    pub service: Option<String>,
    /// The Region, when IAM knows it.
    pub region: Option<String>,
    /// The key's user, as IAM names it.
    pub user: Option<String>,
}

/// GetAccessKeyLastUsed of `key_id`.
pub async fn last_use(iam: &aws_sdk_iam::Client, key_id: &str) -> Result<LastUse> {
    let out = iam
        .get_access_key_last_used()
        .access_key_id(key_id)
        .send()
        .await
        .map_err(|e| Error::sdk("GetAccessKeyLastUsed", e))?;
    let user = out.user_name().map(str::to_string);
    let Some(u) = out.access_key_last_used() else {
        return Ok(LastUse {
            user,
            ..LastUse::default()
        });
    };
    // IAM answers "N/A" for a key never used.
    let known = |s: &str| (!s.is_empty() && s != "N/A").then(|| s.to_string());
    Ok(LastUse {
        at: u.last_used_date().map(to_chrono),
        service: known(u.service_name()),
        region: known(u.region()),
        user,
    })
}

/// What CloudTrail showed of one key.
#[derive(Debug, Default)]
pub struct Looked {
    /// Its usage in the window.
    pub usage: Usage,
    /// `LookupEvents` calls made.
    pub calls: usize,
    /// True when the page limit ended a Region's lookup: older calls exist.
    pub truncated: bool,
}

/// CloudTrail's calls made with `key_id` in `window`, in us-east-1 and `last_region` (where IAM
/// last saw it used), at most `max_pages` pages of 50 per Region, each call waiting its turn on
/// `pace` (one per account: LookupEvents allows 2 a second per account and Region).
pub async fn key_usage(
    cfg: &SdkConfig,
    key_id: &str,
    last_region: Option<&str>,
    window: (DateTime<Utc>, DateTime<Utc>),
    pace: &tokio::sync::Mutex<tokio::time::Interval>,
    max_pages: usize,
) -> Result<Looked> {
    let mut regions = vec![IAM_EVENTS_REGION.to_string()];
    if let Some(r) = last_region.filter(|r| *r != IAM_EVENTS_REGION) {
        regions.push(r.to_string());
    }
    let mut out = Looked::default();
    for region in regions {
        let client = client_in(cfg, &region);
        let found = {
            let mut pace = pace.lock().await;
            key_calls(&client, key_id, window, &mut pace, max_pages).await?
        };
        out.calls += found.calls;
        out.truncated |= found.truncated;
        out.usage.merge(&usage_of(&found.records));
    }
    Ok(out)
}

/// A pacer for one account's `LookupEvents` calls. Its first call waits an interval too, so
/// that it keeps the pace after whatever `LookupEvents` calls came before it.
pub fn pacer() -> tokio::sync::Mutex<tokio::time::Interval> {
    let every = crate::cloudtrail::LOOKUP_INTERVAL;
    let mut pace = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::sync::Mutex::new(pace)
}

/// The keys of `users` whose disable or delete is due within PendingActionWarnPeriod (or
/// overdue): what an owner must find before the step. Their ids are read live (ListAccessKeys)
/// for users whose report slots carry none.
pub async fn due_keys(
    iam: &aws_sdk_iam::Client,
    users: &[keyguard_core::UserRecord],
    settings: &keyguard_core::Settings,
    now: DateTime<Utc>,
) -> Result<Vec<(String, String)>> {
    let horizon = now + chrono::Duration::days(settings.pending_action_warn_period.into());
    let mut out = Vec::new();
    for r in users {
        let (user, keys) = keyguard_core::with_slot_ids(&r.user, &r.keys);
        let due = keyguard_core::plan(&user, &keys, settings, now)
            .actions
            .iter()
            .any(|a| {
                matches!(
                    a.action,
                    keyguard_core::Action::Disable | keyguard_core::Action::Delete
                ) && !a.projected
                    && a.due <= horizon
            });
        if !due {
            continue;
        }
        let Some(keys) = crate::inventory::with_key_ids(iam, r).await? else {
            continue;
        };
        let p = keyguard_core::plan(&r.user, &keys, settings, now);
        for a in p.actions.iter().filter(|a| {
            matches!(
                a.action,
                keyguard_core::Action::Disable | keyguard_core::Action::Delete
            ) && !a.projected
                && a.due <= horizon
        }) {
            out.push((r.user.name.clone(), a.key_id.clone()));
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Where the keys due for a step of one account are used, from LookupEvents (for a source
/// without the organization trail): IAM's last use of each, then one page of its newest calls in
/// us-east-1 and its last Region, within `window`. The usage and the calls made.
pub async fn due_key_usage(
    cfg: &SdkConfig,
    users: &[keyguard_core::UserRecord],
    settings: &keyguard_core::Settings,
    window: (DateTime<Utc>, DateTime<Utc>),
) -> Result<(Usage, usize)> {
    let iam = aws_sdk_iam::Client::new(cfg);
    let pace = pacer();
    let mut usage = Usage::default();
    let mut calls = 0;
    for (_, key) in due_keys(&iam, users, settings, window.1).await? {
        let last = last_use(&iam, &key).await?;
        let found = key_usage(cfg, &key, last.region.as_deref(), window, &pace, 1).await?;
        calls += found.calls;
        usage.merge(&found.usage);
    }
    Ok((usage, calls))
}
