//! A user's steps, in order: the live re-read, the repair of an interrupted rotation, the plan,
//! the steps due now (the policy's, a forced rotation's or a leaked key's), the warnings, the
//! secret's retention, and what comes next for the owner.

use std::collections::BTreeSet;

use keyguard_core::{
    forced_rotation, mask_key_id, stale_tags, warned, warning_marks, AccessKey, Action, Plan,
    PlanNote, PlannedAction, Step,
};

use crate::email_templates::{day, Item};
use crate::error::{Error, Result};
use crate::requests::Forced;
use crate::summary::{ActionKind, Outcome};
use crate::user::run::{Ctx, TagChanges, UserRun};
use crate::user::step::Due;

impl Ctx<'_> {
    /// The user's steps (see the module's doc). An error ends them; what was done stays recorded.
    pub(super) async fn steps(
        &self,
        w: &mut UserRun,
        tags: &mut TagChanges,
        slots: Option<Vec<AccessKey>>,
        forced: &Forced,
    ) -> Result<()> {
        let from_report = slots.is_some();
        let Some(mut keys) = self.read_keys(w, slots).await? else {
            w.notes
                .push(format!("{}: the user no longer exists", w.user.name));
            return Ok(());
        };
        if let Forced::ReEnabled { key, by } = forced {
            self.reenabled(w, tags, &mut keys, key, by).await;
            return Ok(());
        }
        if !self.repair(w, tags, &mut keys).await? {
            return Ok(());
        }
        let p = self.plan_live(w, &mut keys, from_report).await?;
        self.note_blocked(w, &p);
        let due = self.due_now(w, &keys, &p, forced)?;
        let sent = warned(&w.user);
        let mut open = warning_marks(&p, self.now);
        for a in &due {
            let ok = self
                .step(
                    w,
                    tags,
                    &mut keys,
                    Due {
                        plan: &p,
                        action: a,
                    },
                    &mut open,
                )
                .await;
            // Later steps of this user depend on this one; a leaked key is disabled anyway.
            let leak_goes_on = w.leaked && a.action == Action::Rotate && !w.writer.is_lost();
            if !(ok || leak_goes_on) {
                break;
            }
        }
        if w.writer.is_lost() {
            self.lost_leak(w, &due);
            return Ok(());
        }
        // A leak's run does the leak's steps only (it may be an exposure response acting
        // whatever DryRun says): the warnings and the secret's retention are the sweep's.
        let leak = matches!(forced, Forced::Leaked { .. });
        if !leak {
            self.warn(w, tags, &p, sent, &open);
        }
        // Not in the central account (its role keeps its secrets); never fatal to the user's run.
        if let Some(days) = self
            .r
            .secret_delete_after_use_days
            .filter(|_| self.account.id != self.r.caller.account && !leak)
        {
            if let Err(e) = self.secret_retention(w, tags, &keys, days).await {
                let now = self.now;
                w.record(
                    "",
                    ActionKind::DeleteSecret,
                    Outcome::Failed,
                    now,
                    e.to_string(),
                );
            }
        }
        w.coming = self.coming(w, &p);
        // The owner's notice (sent when it has anything to say) lists the coming steps with
        // their dates: each is then told.
        let notice = w.records.iter().any(|r| {
            matches!(
                r.outcome,
                Outcome::Done
                    | Outcome::Preview
                    | Outcome::Failed
                    | Outcome::Warned
                    | Outcome::Held
            ) && r.action != ActionKind::RecordDisabled
        });
        if notice {
            for a in self.coming_actions(w, &p) {
                if let Some(step) = a.action.step() {
                    w.told_now.insert((a.key_id.clone(), step));
                }
            }
        }
        for stale in stale_tags(&w.user, &keys) {
            tags.unset.insert(stale);
        }
        Ok(())
    }

    /// Notes a rotation the plan says is blocked, with its date.
    fn note_blocked(&self, w: &mut UserRun, p: &Plan) {
        for note in &p.notes {
            if let PlanNote::RotationBlocked { key_id, until, why } = note {
                w.notes.push(format!(
                    "{}: rotation of {} blocked until {}: {why}",
                    w.user.name,
                    mask_key_id(key_id),
                    day(*until)
                ));
            }
        }
    }

    /// The steps due now, in the plan's order (a slot is freed before it is filled): the
    /// policy's, or what an operator forced.
    fn due_now(
        &self,
        w: &mut UserRun,
        keys: &[AccessKey],
        p: &Plan,
        forced: &Forced,
    ) -> Result<Vec<PlannedAction>> {
        Ok(match forced {
            Forced::Rotate => match forced_rotation(keys, self.now) {
                Ok(a) => vec![a],
                Err(why) => {
                    return Err(Error::Refused(format!(
                        "forced rotation of {}: {why}",
                        w.user.name
                    )))
                }
            },
            Forced::Leaked {
                key,
                rotate,
                because,
            } => {
                w.leaked = true;
                self.leaked_steps(w, keys, key.as_deref(), *rotate, because.as_deref())?
            }
            Forced::ReEnabled { .. } => vec![], // answered before the plan
            Forced::No => p
                .due(self.now)
                .filter(|a| !matches!(a.action, Action::Notify { .. }))
                .cloned()
                .collect(),
        })
    }

    /// The user is the other run's now. A leaked key's disable is not this run's to do any
    /// more (one writer per user): say plainly that the key is still Active.
    fn lost_leak(&self, w: &mut UserRun, due: &[PlannedAction]) {
        if !w.leaked {
            return;
        }
        for a in due.iter().filter(|a| a.action == Action::Disable) {
            w.record(
                &a.key_id,
                ActionKind::Disable,
                Outcome::Failed,
                self.now,
                "the leaked key is still Active: this run lost the user's lease to another \
                 run before disabling it; send the leaked-key request again",
            );
        }
    }

    /// The plan's steps not due yet (or projected) that this run did not do.
    fn coming_actions<'p>(&self, w: &UserRun, p: &'p Plan) -> Vec<&'p PlannedAction> {
        let done: BTreeSet<(String, Step)> = w
            .records
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Done | Outcome::Preview))
            .filter_map(|r| r.action.step().map(|s| (r.key.clone(), s)))
            .collect();
        p.actions
            .iter()
            .filter(|a| matches!(a.action, Action::Rotate | Action::Disable | Action::Delete))
            .filter(|a| a.due > self.now || a.projected)
            .filter(|a| {
                let step = a.action.step().expect("a step");
                !done.contains(&(mask_key_id(&a.key_id), step))
            })
            .collect()
    }

    /// What comes later, for the owner: [`Ctx::coming_actions`], dated.
    fn coming(&self, w: &UserRun, p: &Plan) -> Vec<Item> {
        self.coming_actions(w, p)
            .into_iter()
            .map(|a| Item {
                key: mask_key_id(&a.key_id),
                action: a.action.name(),
                date: day(a.due.max(self.now)),
                why: a.why.clone(),
                usage: None,
            })
            .collect()
    }
}
