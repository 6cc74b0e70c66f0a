//! The day's member requests, counted in one state-table item (`asked#all` / `#day-<day>`): how
//! many were answered, how many were over an account's cap, asked again, or named no user, and
//! which accounts were over the cap. The daily sweep's digest shows the previous day's.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use keyguard_aws::state::StateTable;
use serde::Serialize;

use crate::error::Result;

/// Requests one member account may make a day; beyond them its users wait for the daily sweep.
pub const REQUESTS_PER_ACCOUNT_PER_DAY: i64 = 200;

/// What became of one member request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answered {
    /// Run for its user.
    Run,
    /// The account was over the day's cap: left to the daily sweep.
    OverCap,
    /// The user was asked for already today.
    Repeat,
    /// No user with that UserId in the account (made up, or deleted since).
    NoSuchUser,
}

impl Answered {
    fn counter(self) -> &'static str {
        match self {
            Answered::Run => "run",
            Answered::OverCap => "over-cap",
            Answered::Repeat => "repeat",
            Answered::NoSuchUser => "no-such-user",
        }
    }
}

/// Prefix of the per-account attribute counting an account's requests over the cap.
const OVER: &str = "over#";

fn key(day: &str) -> (&'static str, String) {
    ("asked#all", format!("#day-{day}"))
}

/// Counts one request of `account` on `now`'s day (and, over the cap, the account).
pub(crate) async fn count(
    table: &StateTable,
    account: &str,
    now: DateTime<Utc>,
    answered: Answered,
) -> Result<()> {
    let (pk, sk) = key(&now.format("%Y-%m-%d").to_string());
    let over = format!("{OVER}{account}");
    let mut counters = vec![("requests", 1), (answered.counter(), 1)];
    if answered == Answered::OverCap {
        counters.push((over.as_str(), 1));
    }
    table
        .add(pk, &sk, &counters, Some(now + Duration::days(3)))
        .await?;
    Ok(())
}

/// One day's member requests, as the digest shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RequestTally {
    /// The day (UTC).
    pub day: String,
    /// Requests received.
    pub requests: i64,
    /// Run for their user.
    pub run: i64,
    /// Over their account's cap.
    pub over_cap: i64,
    /// Asked again the same day.
    pub repeat: i64,
    /// Naming no user of the account.
    pub no_such_user: i64,
    /// The cap per account and day.
    pub cap: i64,
    /// Accounts over the cap, with their requests past it.
    pub accounts_over_cap: Vec<OverCap>,
}

/// An account over the day's cap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OverCap {
    /// The account id.
    pub account: String,
    /// Its requests past the cap (left to the daily sweep).
    pub past: i64,
}

impl RequestTally {
    /// Whether the administrators should hear of the day even when nothing else happened.
    pub fn is_notable(&self) -> bool {
        self.over_cap > 0 || self.no_such_user > 0
    }
}

/// The day before `now`: what the daily digest shows (that day is complete).
pub(crate) async fn previous_day(
    table: &StateTable,
    now: DateTime<Utc>,
) -> Result<Option<RequestTally>> {
    let day = (now - Duration::days(1)).format("%Y-%m-%d").to_string();
    let (pk, sk) = key(&day);
    let Some(item) = table.get(pk, &sk).await? else {
        return Ok(None);
    };
    Ok(Some(tally_of(day, &item.numbers)))
}

fn tally_of(day: String, n: &BTreeMap<String, i64>) -> RequestTally {
    let get = |k: &str| n.get(k).copied().unwrap_or(0);
    RequestTally {
        requests: get("requests"),
        run: get(Answered::Run.counter()),
        over_cap: get(Answered::OverCap.counter()),
        repeat: get(Answered::Repeat.counter()),
        no_such_user: get(Answered::NoSuchUser.counter()),
        cap: REQUESTS_PER_ACCOUNT_PER_DAY,
        accounts_over_cap: n
            .iter()
            .filter_map(|(k, v)| {
                Some(OverCap {
                    account: k.strip_prefix(OVER)?.to_string(),
                    past: *v,
                })
            })
            .collect(),
        day,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tally_reads_its_counters_and_the_accounts_over_the_cap() {
        let n: BTreeMap<String, i64> = [
            ("requests", 260),
            ("run", 190),
            ("over-cap", 50),
            ("repeat", 10),
            ("no-such-user", 10),
            ("over#111111111111", 50),
            ("ttl", 1_800_000_000),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let t = tally_of("2026-12-01".into(), &n);
        assert_eq!((t.requests, t.run, t.over_cap), (260, 190, 50));
        assert_eq!(
            t.accounts_over_cap,
            vec![OverCap {
                account: "111111111111".into(),
                past: 50
            }]
        );
        assert!(t.is_notable());
        assert!(!RequestTally::default().is_notable());
    }
}
