//! One due step of the plan, done (or previewed): record a disable, delete an Inactive key,
//! disable an Active one, or rotate ([`crate::user::rotation`]). Each write is re-checked against
//! IAM immediately before it, and none starts once the run may no longer write.

use std::collections::BTreeSet;

use keyguard_aws::iam;
use keyguard_core::hold::disable_hold;
use keyguard_core::{
    mask_key_id, AccessKey, Action, KeyStatus, Plan, PlannedAction, Step, DISABLED_TAG_PREFIX,
    LEAKED_TAG_PREFIX, RESTORED_TAG_PREFIX,
};

use crate::summary::{ActionKind, Outcome};
use crate::user::run::{Ctx, TagChanges, UserRun};
use crate::user::warnings::announce_follow_ups;

/// What one step needs besides the run: the plan it is part of and the step.
pub(super) struct Due<'p> {
    pub(super) plan: &'p Plan,
    pub(super) action: &'p PlannedAction,
}

impl Ctx<'_> {
    /// Performs one due step; false when it failed (the user's later steps are skipped).
    pub(super) async fn step(
        &self,
        w: &mut UserRun,
        tags: &mut TagChanges,
        keys: &mut Vec<AccessKey>,
        due: Due<'_>,
        open: &mut BTreeSet<String>,
    ) -> bool {
        let a = due.action;
        if matches!(a.action, Action::Rotate | Action::Disable | Action::Delete)
            && !w.writer.may_start()
        {
            w.record(
                &a.key_id,
                ActionKind::from_action(&a.action),
                Outcome::Skipped,
                self.now,
                "not started: this run's lease on the user is about to lapse; the next run does it",
            );
            w.deferred = true;
            return false;
        }
        match a.action {
            Action::RecordDisabled => {
                tags.set.insert(
                    format!("{DISABLED_TAG_PREFIX}{}", a.key_id),
                    self.now.to_rfc3339(),
                );
                let (outcome, at) = self.outcome(a);
                w.record(
                    &a.key_id,
                    ActionKind::RecordDisabled,
                    outcome,
                    at,
                    a.why.clone(),
                );
                true
            }
            Action::Delete | Action::Disable => {
                // A deleted key's use is of no help to anyone; a disabled key's says what broke.
                if a.action == Action::Disable {
                    w.described.insert(a.key_id.clone());
                }
                match self.notice_wait(w, a).await {
                    Ok(Some(until)) => {
                        self.wait_for_notice(w, a, until, open);
                        return true;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        let why =
                            format!("not done: its owner's first notice could not be read: {e}");
                        w.record(
                            &a.key_id,
                            ActionKind::from_action(&a.action),
                            Outcome::Failed,
                            self.now,
                            why,
                        );
                        return false;
                    }
                }
                if self.dry_run {
                    // A preview is a notice of the step.
                    w.told_now
                        .insert((a.key_id.clone(), a.action.step().unwrap_or(Step::Disable)));
                }
                if a.action == Action::Delete {
                    self.delete(w, tags, keys, a).await
                } else {
                    self.disable(w, tags, keys, due, open).await
                }
            }
            Action::Rotate => self.rotate_step(w, tags, keys, due.plan, a, open).await,
            Action::Warn { .. } | Action::Notify { .. } => true,
        }
    }

    /// How a step that went through is recorded: previewed (dated when it is due, what a
    /// DryRun preview is about) or done (dated now).
    fn outcome(&self, a: &PlannedAction) -> (Outcome, chrono::DateTime<chrono::Utc>) {
        if self.dry_run {
            (Outcome::Preview, a.due)
        } else {
            (Outcome::Done, self.now)
        }
    }

    /// Deletes an Inactive key past its recovery grace (`docs/invariants.md#invariant-1`: only an
    /// Inactive key, checked against the live read and again immediately before the write).
    async fn delete(
        &self,
        w: &mut UserRun,
        tags: &mut TagChanges,
        keys: &mut Vec<AccessKey>,
        a: &PlannedAction,
    ) -> bool {
        let (now, id, name) = (self.now, a.key_id.as_str(), w.user.name.clone());
        let key = keys.iter().find(|k| k.id.as_deref() == Some(id));
        if key.is_none_or(|k| k.is_active()) {
            w.record(
                id,
                ActionKind::Delete,
                Outcome::Skipped,
                now,
                "the key is Active or gone since the plan",
            );
            return true;
        }
        if !self.dry_run {
            // Re-checked immediately before the write: a person may have re-enabled it.
            match self.status_now(&name, id).await {
                Ok(Some(KeyStatus::Inactive)) => {}
                Ok(now_status) => {
                    let state = match now_status {
                        Some(KeyStatus::Active) => "Active",
                        Some(KeyStatus::Inactive) => "Inactive",
                        None => "gone",
                    };
                    w.record(
                        id,
                        ActionKind::Delete,
                        Outcome::Skipped,
                        now,
                        format!("not deleted: the key is {state} since the plan"),
                    );
                    return true;
                }
                Err(e) => {
                    w.record(id, ActionKind::Delete, Outcome::Failed, now, e.to_string());
                    return false;
                }
            }
            if let Err(e) = iam::delete_access_key(&self.iam, &name, id).await {
                w.record(id, ActionKind::Delete, Outcome::Failed, now, e.to_string());
                return false;
            }
        }
        keys.retain(|k| k.id.as_deref() != Some(id));
        for prefix in [DISABLED_TAG_PREFIX, RESTORED_TAG_PREFIX] {
            let k = format!("{prefix}{id}");
            if w.user.tags.contains_key(&k) {
                tags.unset.insert(k.clone());
            }
            tags.set.remove(&k);
        }
        let (outcome, at) = self.outcome(a);
        w.record(id, ActionKind::Delete, outcome, at, a.why.clone());
        true
    }

    /// Whether the disable `a` of a rotation's old key is held (and recorded so): the old key
    /// still used in the last day and its successor never (`docs/usage.md`), read live right
    /// before the write (a preview reads what the plan was made from). Never a disable for
    /// non-use, never past `MaxDisableHoldDays`.
    async fn held(
        &self,
        w: &mut UserRun,
        keys: &[AccessKey],
        a: &PlannedAction,
    ) -> crate::error::Result<bool> {
        let Some(successor) = a.successor.as_deref().filter(|_| !w.leaked) else {
            return Ok(false);
        };
        let known = |id: &str| keys.iter().find(|k| k.id.as_deref() == Some(id));
        let old_used = known(&a.key_id).and_then(|k| k.last_used);
        let successor_used = if self.dry_run {
            known(successor).and_then(|k| k.last_used)
        } else {
            keyguard_aws::inventory::last_used(&self.iam, successor).await?
        };
        let settings = &self.r.settings;
        let Some(hold) = disable_hold(a, old_used, successor_used, settings, self.now) else {
            return Ok(false);
        };
        let why = format!(
            "migration stalled: the old key was used {}, the new key {} never; the disable \
             waits until {} at the latest (MaxDisableHoldDays {})",
            keyguard_core::usage::ago(self.now, hold.old_last_used),
            mask_key_id(successor),
            crate::email_templates::day(hold.until),
            settings.max_disable_hold_days
        );
        w.told_now.insert((a.key_id.clone(), Step::Disable));
        w.record(&a.key_id, ActionKind::Disable, Outcome::Held, self.now, why);
        Ok(true)
    }

    /// Disables an Active key. Re-checked immediately before the write: still Active, and (for a
    /// disable for non-use) still unused; a change since the plan cancels the step.
    async fn disable(
        &self,
        w: &mut UserRun,
        tags: &mut TagChanges,
        keys: &mut [AccessKey],
        due: Due<'_>,
        open: &mut BTreeSet<String>,
    ) -> bool {
        let a = due.action;
        let (now, id, name) = (self.now, a.key_id.as_str(), w.user.name.clone());
        if !keys
            .iter()
            .any(|k| k.id.as_deref() == Some(id) && k.is_active())
        {
            w.record(
                id,
                ActionKind::Disable,
                Outcome::Skipped,
                now,
                "the key is Inactive or gone since the plan",
            );
            return true;
        }
        if !self.dry_run {
            let check = if w.leaked {
                self.status_now(&name, id).await.map(|s| {
                    (s != Some(KeyStatus::Active))
                        .then(|| "not disabled: the key is no longer Active".to_string())
                })
            } else {
                self.still_due_disable(w, keys, id).await
            };
            match check {
                Ok(None) => {}
                Ok(Some(why)) => {
                    w.record(id, ActionKind::Disable, Outcome::Skipped, now, why);
                    return true;
                }
                Err(e) => {
                    w.record(id, ActionKind::Disable, Outcome::Failed, now, e.to_string());
                    return false;
                }
            }
        }
        match self.held(w, keys, a).await {
            Ok(false) => {}
            Ok(true) => return true,
            Err(e) => {
                w.record(id, ActionKind::Disable, Outcome::Failed, now, e.to_string());
                return false;
            }
        }
        if !self.dry_run {
            if let Err(e) = iam::set_key_status(&self.iam, &name, id, KeyStatus::Inactive).await {
                w.record(id, ActionKind::Disable, Outcome::Failed, now, e.to_string());
                return false;
            }
        }
        if let Some(k) = keys.iter_mut().find(|k| k.id.as_deref() == Some(id)) {
            k.status = KeyStatus::Inactive;
        }
        tags.set
            .insert(format!("{DISABLED_TAG_PREFIX}{id}"), now.to_rfc3339());
        if w.leaked {
            // Set Active again by anyone but keyguard restore, a leaked key is disabled again
            // at once (user/reenabled.rs).
            tags.set
                .insert(format!("{LEAKED_TAG_PREFIX}{id}"), now.to_rfc3339());
        }
        let restored = format!("{RESTORED_TAG_PREFIX}{id}");
        if w.user.tags.contains_key(&restored) {
            tags.unset.insert(restored);
        }
        announce_follow_ups(due.plan, id, open);
        let (outcome, at) = self.outcome(a);
        w.record(id, ActionKind::Disable, outcome, at, a.why.clone());
        true
    }
}
