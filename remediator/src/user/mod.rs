//! One user's run, in the order it happens: take the user's lease and read keyguard's records
//! under it (here), re-read the keys live ([`live`]), repair an interrupted rotation
//! ([`rotation`]), plan and run the due steps ([`steps`], each one by [`step`]; a leaked key's by
//! [`leaked`]; a rotation only into the user's own secret, [`secret_owner`]), send the warnings
//! whose window opened ([`warnings`]), delete a secret whose key is installed ([`retention`]),
//! tell the owner where each key with a step is used ([`usage`]), record what the owner was told
//! ([`told`]: the minimum notice counts from it), then write keyguard's records and their mirror
//! tags ([`mirror`]) and release the lease. Whether the run may still write is its [`Writer`].

mod leaked;
mod live;
mod mirror;
mod reenabled;
mod retention;
mod rotation;
mod run;
mod secret_owner;
mod step;
mod steps;
mod told;
mod usage;
mod warnings;
mod writer;

use keyguard_core::{with_records, AccessKey, User};

use crate::error::Error;
use crate::lease::{self, Taken};
use crate::requests::Forced;
use crate::summary::{ActionKind, Outcome};
use crate::user_records;

pub(crate) use run::{Ctx, UserRun};
pub(crate) use writer::Writer;

impl Ctx<'_> {
    /// One user's run. With writes: under the user's lease, with keyguard's records read after
    /// the lease was taken (never from the account-wide read), and released at the end.
    pub(crate) async fn user(
        &self,
        user: User,
        slots: Option<Vec<AccessKey>>,
        forced: &Forced,
    ) -> UserRun {
        let now = self.now;
        let mut w = match self.open(user.clone()).await {
            Ok(w) => w,
            Err((w, e)) => {
                let mut w = w.unwrap_or_else(|| UserRun::new(user, Writer::Busy));
                w.record("", ActionKind::Examine, Outcome::Failed, now, e.to_string());
                let writer = std::mem::replace(&mut w.writer, Writer::Busy);
                let _ = writer.release(self.r.state.as_ref()).await; // it lapses on its own otherwise
                return w;
            }
        };
        if matches!(w.writer, Writer::Busy) {
            return w; // another run holds the user: open() said so
        }
        let mut tags = run::TagChanges::default();
        if let Err(e) = self.steps(&mut w, &mut tags, slots, forced).await {
            w.record("", ActionKind::Examine, Outcome::Failed, now, e.to_string());
        }
        self.describe_usage(&mut w).await;
        self.record_told(&mut w).await;
        // A lost lease's records are not written, and neither is their mirror.
        if !w.writer.is_lost() {
            if let Err(e) = self.write_records(&mut w, &tags).await {
                w.record("", ActionKind::Tag, Outcome::Failed, now, e.to_string());
            }
        }
        if !w.writer.is_lost() {
            if let Err(e) = self.write_mirror(&w, &tags).await {
                w.record("", ActionKind::Tag, Outcome::Failed, now, e.to_string());
            }
        }
        let writer = std::mem::replace(&mut w.writer, Writer::Busy);
        if let Err((lease, e)) = writer.release(self.r.state.as_ref()).await {
            // It lapses on its own; the next run waits for that.
            w.notes.push(format!(
                "{}: the lease could not be released ({e}); it lapses {}",
                w.user.name,
                lease.expires.format("%H:%M UTC")
            ));
        }
        w
    }

    /// Starts the user's run: takes its lease (for writes) and puts keyguard's records in place
    /// of the tags. A user another run holds comes back [`Writer::Busy`], with a `skipped`
    /// record. On failure, the run so far (with the lease, if one was taken) and the error.
    async fn open(&self, user: User) -> std::result::Result<UserRun, (Option<UserRun>, Error)> {
        let Some(table) = &self.r.state else {
            if !self.dry_run && !self.r.no_lease {
                return Err((
                    None,
                    Error::Refused(
                        "no state table: keyguard writes to a user only under its lease \
                         (configure KEYGUARD_STATE_TABLE / --state-table, or --no-lease when \
                         nothing else runs)"
                            .into(),
                    ),
                ));
            }
            // --no-lease or a preview: the tags are the records.
            let writer = if self.dry_run {
                Writer::Preview
            } else {
                Writer::Unleased
            };
            return Ok(UserRun::new(user, writer));
        };
        let name = user.name.clone();
        let writer = if self.dry_run {
            Writer::Preview
        } else {
            match lease::take(self.r, table, &self.account.id, &name, &self.holder).await {
                Ok(Taken::Held(l)) => Writer::Leased(l),
                Ok(Taken::Busy { holder, until }) => {
                    let until =
                        until.map_or("soon".into(), |u| u.format("%H:%M:%S UTC").to_string());
                    let mut w = UserRun::new(user, Writer::Busy);
                    w.record(
                        "",
                        ActionKind::Examine,
                        Outcome::Skipped,
                        self.now,
                        format!(
                            "another keyguard run ({holder}) holds this user until {until}; it \
                             is left to that run"
                        ),
                    );
                    w.notes.push(format!(
                        "{name}: skipped, another keyguard run is working on it"
                    ));
                    return Ok(w);
                }
                Err(e) => return Err((None, e)),
            }
        };
        let mut w = UserRun::new(user, writer);
        let kept = match user_records::read(table, &self.account.id, &name).await {
            Ok(kept) => kept,
            Err(e) => return Err((Some(w), e)),
        };
        w.mirrored = Some(keyguard_core::records::records_of_tags(&w.user));
        w.user = with_records(&w.user, &kept);
        w.kept = Some(kept);
        Ok(w)
    }
}
