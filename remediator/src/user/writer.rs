//! Whether one user's run may still write, in its type: the lease rules of
//! `docs/invariants.md#invariant-7` applied to a run. A run is a preview, unleased (`--no-lease`),
//! leased, or it found the user busy or lost its lease; only the fenced operations here move it
//! from leased to lost, so no caller has to remember to.

use chrono::{DateTime, Utc};
use keyguard_aws::state::StateTable;
use keyguard_core::Records;

use crate::error::{Error, Result};
use crate::lease::{self, Lease};
use crate::user_records;

/// Whether, and under what, a run writes to its user.
#[derive(Debug)]
pub(crate) enum Writer {
    /// A preview (DryRun or `mode: preview`): nothing is written.
    Preview,
    /// `--no-lease` and no state table: writes without a lease; the user's tags are the records.
    Unleased,
    /// This run holds the user's lease: it writes while the lease is [`Lease::writable`].
    Leased(Lease),
    /// Another run holds the user: this run writes nothing to it.
    Busy,
    /// The lease lapsed or was taken over at a fenced write: this run writes nothing more to the
    /// user (no step, record or mirror tag). The lease is kept only to release it if still ours.
    Lost(Lease),
}

impl Writer {
    /// True while a step that writes may start.
    pub(crate) fn may_start(&self) -> bool {
        match self {
            Writer::Preview | Writer::Unleased => true,
            Writer::Leased(l) => l.writable(),
            Writer::Busy | Writer::Lost(_) => false,
        }
    }

    /// True when the lease was lost during the run.
    pub(crate) fn is_lost(&self) -> bool {
        matches!(self, Writer::Lost(_))
    }

    /// Replaces keyguard's records of the user with `records`, fenced by the lease; a refusal
    /// ([`Error::LeaseLost`]) makes the run lost.
    pub(crate) async fn put_records(
        &mut self,
        table: &StateTable,
        records: &Records,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let Writer::Leased(lease) = self else {
            return Err(Error::Internal(
                "keyguard's records are written only under the user's lease".into(),
            ));
        };
        let written = user_records::write(table, lease, records, now).await;
        self.lost_on(written)
    }

    /// Before a write that cannot be fenced itself (IAM, Secrets Manager): confirms with the
    /// table that the lease is still this run's with its last tenth in hand ([`Lease::confirm`]);
    /// a refusal makes the run lost. Nothing to confirm without a lease.
    pub(crate) async fn confirm(&mut self, table: Option<&StateTable>) -> Result<()> {
        let (lease, table) = match (&*self, table) {
            (Writer::Lost(lease), _) => return Err(lease.lost()),
            (Writer::Leased(lease), Some(table)) => (lease, table),
            _ => return Ok(()),
        };
        let confirmed = lease.confirm(table).await;
        self.lost_on(confirmed)
    }

    /// `result`, the run made lost when it is [`Error::LeaseLost`].
    fn lost_on<T>(&mut self, result: Result<T>) -> Result<T> {
        if matches!(result, Err(Error::LeaseLost(_))) {
            if let Writer::Leased(lease) = std::mem::replace(self, Writer::Busy) {
                *self = Writer::Lost(lease);
            }
        }
        result
    }

    /// Releases the lease, if this run took one (only while it is still ours: a lapsed lease
    /// taken over stays the taker's). The lease, when the release failed, for the caller's note.
    pub(crate) async fn release(
        self,
        table: Option<&StateTable>,
    ) -> std::result::Result<(), (Lease, Error)> {
        let (Writer::Leased(lease) | Writer::Lost(lease), Some(table)) = (self, table) else {
            return Ok(());
        };
        lease::release(table, &lease).await.map_err(|e| (lease, e))
    }
}
