//! The owner's first notice of each step, and the minimum notice it buys
//! (`MinimumNoticeDays`): a disable or delete keyguard finds due without its owner having been
//! told (a new account, DryRun just switched off) waits that long after the first warning or
//! preview, which this run sends now. What this run told the owner is recorded at its end
//! ([`crate::first_notices`]).

use chrono::{DateTime, Utc};
use keyguard_core::hold::not_before;
use keyguard_core::{warning_mark, Action, PlannedAction, Step};

use crate::email_templates::day;
use crate::error::Result;
use crate::first_notices::FirstNotices;
use crate::summary::{ActionKind, Outcome};
use crate::user::run::{Ctx, UserRun};

impl Ctx<'_> {
    /// For a due disable or delete of an enforcing run: the moment it may happen, when that is
    /// not now. Nothing waits in a preview (a preview is a notice) or without the state table
    /// (`--no-lease`: no record to count from).
    pub(super) async fn notice_wait(
        &self,
        w: &mut UserRun,
        a: &PlannedAction,
    ) -> Result<Option<DateTime<Utc>>> {
        let (Some(table), false, Some(step)) = (&self.r.state, self.dry_run, a.action.step())
        else {
            return Ok(None);
        };
        if w.leaked || !matches!(a.action, Action::Disable | Action::Delete) {
            return Ok(None);
        }
        if w.told.is_none() {
            w.told = Some(
                FirstNotices(table)
                    .of(&self.account.id, &w.user.name)
                    .await?,
            );
        }
        let first = w
            .told
            .as_ref()
            .and_then(|t| t.get(&(a.key_id.clone(), step)))
            .copied();
        Ok(not_before(first, &self.r.settings, self.now))
    }

    /// Records the wait: a warning when the owner has not been told of this date yet (it is
    /// sent with this run's notices), else a skipped step saying until when.
    pub(super) fn wait_for_notice(
        &self,
        w: &mut UserRun,
        a: &PlannedAction,
        until: DateTime<Utc>,
        open: &mut std::collections::BTreeSet<String>,
    ) {
        let step = a.action.step().unwrap_or(Step::Disable);
        let mark = warning_mark(step, until);
        let first_time = !keyguard_core::warned(&w.user).contains(&mark) && !open.contains(&mark);
        let why = format!(
            "{}; it happens no earlier than {} ({} days after its owner was first told: \
             MinimumNoticeDays)",
            a.why,
            day(until),
            self.r.settings.minimum_notice_days
        );
        w.described.insert(a.key_id.clone());
        if first_time {
            open.insert(mark);
            w.told_now.insert((a.key_id.clone(), step));
            w.record(
                &a.key_id,
                ActionKind::Warn(step),
                Outcome::Warned,
                until,
                why,
            );
        } else {
            w.record(
                &a.key_id,
                ActionKind::from_action(&a.action),
                Outcome::Skipped,
                self.now,
                why,
            );
        }
    }

    /// Records this run's notices of disables and deletes as the first of their steps where
    /// none is known to be (one write; none when the run read them and all are there). Never
    /// fatal: a step whose notice was not recorded only waits longer.
    pub(super) async fn record_told(&self, w: &mut UserRun) {
        let Some(table) = &self.r.state else {
            return;
        };
        // A rotation waits for no notice: only what can break a pipeline is recorded.
        let new: Vec<(String, Step)> = w
            .told_now
            .iter()
            .filter(|(_, step)| *step != Step::Rotate)
            .filter(|k| !w.told.as_ref().is_some_and(|t| t.contains_key(*k)))
            .cloned()
            .collect();
        if new.is_empty() {
            return;
        }
        if let Err(e) = FirstNotices(table)
            .record(&self.account.id, &w.user.name, &new, self.now)
            .await
        {
            w.notes
                .push(format!("{}: first notices not recorded: {e}", w.user.name));
        }
    }
}
