//! keyguard's records of each user (`docs/invariants.md#invariant-5`) in the central state table, at
//! `records#<account>` / `<user>`, the body the JSON map of [`Records`]. Only keyguard's central
//! roles can write the table, so a record (a disable date, a rotation mark, the warnings sent, a
//! restore) is keyguard's own word; the user tags of the same names are a mirror for people and
//! are never read when the table is deployed.
//!
//! A record is kept for [`RECORD_DAYS`] after its last write (longer than any grace it times).
//! Users keyguard has no record of start with none: an Inactive key's recovery grace then starts
//! at the run that first sees it, which can only delay a delete (the upgrade from tag records
//! costs at most one grace period and a repeated warning).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use keyguard_aws::state::StateTable;
use keyguard_core::Records;

use crate::error::{Error, Result};
use crate::lease::Lease;

/// How long a record outlives its last write.
pub const RECORD_DAYS: i64 = 400;

fn pk(account: &str) -> String {
    format!("records#{account}")
}

fn parse(user: &str, body: Option<&str>) -> Result<Records> {
    match body {
        None => Ok(Records::new()),
        Some(b) => serde_json::from_str(b).map_err(|e| Error::Unreadable {
            what: format!("records of {user:?}"),
            source: e,
        }),
    }
}

/// The records of one user (a strongly consistent read).
pub async fn read(table: &StateTable, account: &str, user: &str) -> Result<Records> {
    let item = table.get(&pk(account), user).await?;
    parse(user, item.as_ref().and_then(|i| i.body.as_deref()))
}

/// The records of every user of `account` that has any (one Query, every page).
pub async fn read_account(table: &StateTable, account: &str) -> Result<BTreeMap<String, Records>> {
    let mut out = BTreeMap::new();
    for item in table.query(&pk(account), "").await? {
        let records = parse(&item.sk, item.body.as_deref())?;
        out.insert(item.sk, records);
    }
    Ok(out)
}

/// Replaces the records of the user `lease` holds, only while it holds it ([`Lease::put`]).
pub async fn write(
    table: &StateTable,
    lease: &Lease,
    records: &Records,
    now: DateTime<Utc>,
) -> Result<()> {
    let body = serde_json::to_string(records).expect("a map of strings serializes");
    let expires = now.max(Utc::now()) + Duration::days(RECORD_DAYS);
    lease
        .put(table, (&pk(lease.account()), lease.user()), &body, expires)
        .await
}
