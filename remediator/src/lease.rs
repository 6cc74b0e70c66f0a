//! One writer per user (`docs/invariants.md#invariant-7`): a lease in the central state table, taken before any
//! write to a user and released after. A lease is a conditional PutItem at
//! `lease#<account>` / `<user>` that succeeds when no lease is there or the one there has expired;
//! its body is the holder's id, and only that holder's release deletes it.
//!
//! The lease lasts [`Remediator::lease_ttl`] (15 minutes by default: the longest a Lambda
//! invocation can run, so a holder killed at its deadline never outlives its lease while alive),
//! and its holder starts no step within a tenth of that of the expiry ([`Lease::writable`]). A lease
//! whose holder died lapses and is taken over; the taker repairs what the holder left (the
//! rotation mark in keyguard's records says what) before anything else. Times are the callers'
//! wall clocks (NTP-synchronised on Lambda); the allowance covers a little skew.
//!
//! keyguard's records of the user are written only through [`Lease::put`], a write fenced by the
//! lease in one DynamoDB transaction: a holder that overran its lease (a paused process, a clock
//! off by more than the allowance) cannot overwrite what the run that took over wrote, and it
//! stops at that write with [`Error::LeaseLost`].

use chrono::{DateTime, Utc};
use keyguard_aws::state::{Guard, StateTable};

use crate::error::{Error, Result};
use crate::function::Remediator;

fn pk(account: &str) -> String {
    format!("lease#{account}")
}

/// A lease held on one user.
#[derive(Debug, Clone)]
pub struct Lease {
    account: String,
    user: String,
    holder: String,
    /// When it lapses.
    pub expires: DateTime<Utc>,
    margin: chrono::Duration,
}

/// The answer to taking a lease.
#[derive(Debug)]
pub enum Taken {
    /// Ours until it is released or lapses.
    Held(Lease),
    /// Somebody else holds it.
    Busy {
        /// The other holder's id.
        holder: String,
        /// When their lease lapses.
        until: Option<DateTime<Utc>>,
    },
}

impl Lease {
    /// True while a step may still start under this lease (its expiry is more than a tenth of
    /// the lease's length away).
    pub fn writable(&self) -> bool {
        Utc::now() + self.margin < self.expires
    }

    /// The holder's id (the attempt id of a rotation mark it sets).
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// The account of the leased user.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The leased user.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Checks with the table that this lease is still ours with at least its last tenth to run
    /// (one conditional write); [`Error::LeaseLost`] when not. For a step that cannot be fenced
    /// itself (storing a new key's secret): it narrows a paused run's window to this call.
    pub async fn confirm(&self, table: &StateTable) -> Result<()> {
        if table
            .still_held(
                &pk(&self.account),
                &self.user,
                &self.holder,
                Utc::now() + self.margin,
            )
            .await?
        {
            Ok(())
        } else {
            Err(self.lost())
        }
    }

    /// The error of a run that lost this lease.
    pub(crate) fn lost(&self) -> Error {
        Error::LeaseLost(format!(
            "{}: this run's lease lapsed or was taken over by another run; it writes nothing more to the user",
            self.user
        ))
    }

    /// Writes `body` at `(pk, sk)` only while this lease is still ours (see
    /// [`StateTable::put_guarded`]); [`Error::LeaseLost`] when it was taken over or lapsed, and
    /// then nothing is written.
    pub async fn put(
        &self,
        table: &StateTable,
        (pk_, sk): (&str, &str),
        body: &str,
        expires: DateTime<Utc>,
    ) -> Result<()> {
        let lease_pk = pk(&self.account);
        let guard = Guard {
            pk: &lease_pk,
            sk: &self.user,
            holder: &self.holder,
        };
        if table
            .put_guarded(pk_, sk, body, expires, &guard, Utc::now())
            .await?
        {
            Ok(())
        } else {
            Err(self.lost())
        }
    }
}

/// Takes the lease of `user` in `account` for `holder`.
pub async fn take(
    r: &Remediator,
    table: &StateTable,
    account: &str,
    user: &str,
    holder: &str,
) -> Result<Taken> {
    let ttl = chrono::Duration::from_std(r.lease_ttl).unwrap_or(chrono::Duration::minutes(15));
    let now = Utc::now();
    let expires = now + ttl;
    if table
        .put_unless_live(&pk(account), user, holder, now, expires)
        .await?
    {
        return Ok(Taken::Held(Lease {
            account: account.into(),
            user: user.into(),
            holder: holder.into(),
            expires,
            margin: ttl / 10,
        }));
    }
    let other = table.get(&pk(account), user).await?;
    Ok(Taken::Busy {
        holder: other
            .as_ref()
            .and_then(|i| i.body.clone())
            .unwrap_or_default(),
        until: other.and_then(|i| i.expires()),
    })
}

/// Releases `lease` (only if it is still ours: a lapsed lease taken over stays the taker's).
pub async fn release(table: &StateTable, lease: &Lease) -> Result<()> {
    table
        .delete_if(&pk(&lease.account), &lease.user, &lease.holder)
        .await?;
    Ok(())
}

/// A new holder id: random, so two invocations (or an invocation and a CLI run) never share one.
pub fn holder_id() -> String {
    format!("kg-{:016x}", fastrand::u64(..))
}
