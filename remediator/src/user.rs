//! One user's run: the live re-read, the repair of an interrupted rotation, the plan's due
//! steps (each IAM and Secrets Manager write through [`keyguard_aws::iam`] and
//! [`keyguard_aws::secrets`]), the warnings, and what comes next for the owner.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, SubsecRound, Utc};
use keyguard_aws::iam;
use keyguard_aws::inventory::{read_keys_live, with_key_ids};
use keyguard_aws::secrets::{self, SecretTarget};
use keyguard_aws::state::StateTable;
use keyguard_core::{
    forced_rotation, leftovers, mask_key_id, plan, stale_tags, warned, warning_mark, warning_marks,
    with_records, AccessKey, Account, Action, KeyStatus, Plan, PlannedAction, Records,
    RotationMark, Step, User, UserRecord, DISABLED_TAG_PREFIX, FIRST_USED_TAG_PREFIX,
    RESTORED_TAG_PREFIX, ROTATING_TAG, WARNED_TAG,
};
use tracing::{info, warn};

use crate::lease::{self, Lease, Taken};
use crate::notices::{day, Item};
use crate::records;
use crate::{ActionKind, ActionRecord, Error, Forced, Outcome, Remediator, Result};

/// The clients and facts of one account's run.
pub(crate) struct Ctx<'a> {
    pub(crate) r: &'a Remediator,
    pub(crate) account: &'a Account,
    pub(crate) iam: aws_sdk_iam::Client,
    pub(crate) sm: aws_sdk_secretsmanager::Client,
    pub(crate) principal: String,
    pub(crate) dry_run: bool,
    pub(crate) now: DateTime<Utc>,
    /// The invocation's deadline: no user and no rotation starts within the margin of it.
    pub(crate) deadline: Option<std::time::Instant>,
    /// This run's lease holder id (also the attempt id of its rotation marks).
    pub(crate) holder: String,
}

impl Ctx<'_> {
    /// True when the invocation's deadline is nearer than [`Remediator::deadline_margin`].
    pub(crate) fn past_margin(&self) -> bool {
        self.deadline
            .is_some_and(|d| std::time::Instant::now() + self.r.deadline_margin >= d)
    }
}

/// One user's run: what was done and what to tell the owner.
pub(crate) struct Work {
    pub(crate) user: User,
    pub(crate) records: Vec<ActionRecord>,
    pub(crate) coming: Vec<Item>,
    pub(crate) notes: Vec<String>,
    pub(crate) secret_name: Option<String>,
    /// A step of this user was not started because the deadline was near.
    pub(crate) deferred: bool,
    /// The user's lease while this run holds it.
    pub(crate) lease: Option<Lease>,
    /// The lease was found lapsed or taken over at a fenced write: the run writes nothing more
    /// to the user (no step, no record, no mirror tag).
    pub(crate) lost: bool,
    /// keyguard's records as last read from or written to the state table (`None` without one).
    pub(crate) kept: Option<Records>,
    /// The record-like tags the user carries (the mirror, or whatever a person wrote there).
    pub(crate) mirrored: Option<Records>,
    /// The run handles a leaked key: its successor is never readable by the user.
    pub(crate) leaked: bool,
}

impl Work {
    fn record(
        &mut self,
        key: &str,
        action: ActionKind,
        outcome: Outcome,
        date: DateTime<Utc>,
        why: impl Into<String>,
    ) {
        let why = why.into();
        let masked = if key.is_empty() {
            String::new()
        } else {
            mask_key_id(key)
        };
        match outcome {
            Outcome::Failed => warn!(key = %masked, %action, why = %why, "failed"),
            _ => info!(key = %masked, %action, outcome = ?outcome, why = %why, "step"),
        }
        self.records.push(ActionRecord {
            user: self.user.name.clone(),
            key: masked,
            action,
            outcome,
            date,
            why,
            secret_name: None,
        });
    }
}

/// Tag changes of one user, written in at most two calls at the end.
#[derive(Default)]
struct TagChanges {
    set: BTreeMap<String, String>,
    unset: BTreeSet<String>,
}

impl Ctx<'_> {
    /// One user's run. With writes: under the user's lease, with keyguard's records read after
    /// the lease was taken (never from the account-wide read), and released at the end.
    pub(crate) async fn user(
        &self,
        user: User,
        slots: Option<Vec<AccessKey>>,
        forced: &Forced,
    ) -> Work {
        let mut w = Work {
            user,
            records: vec![],
            coming: vec![],
            notes: vec![],
            secret_name: None,
            deferred: false,
            lease: None,
            lost: false,
            kept: None,
            mirrored: None,
            leaked: false,
        };
        let now = self.now;
        if let Err(e) = self.open(&mut w).await {
            w.record("", ActionKind::Examine, Outcome::Failed, now, e.to_string());
            if let (Some(table), Some(lease)) = (&self.r.state, w.lease.take()) {
                let _ = lease::release(table, &lease).await; // it lapses on its own otherwise
            }
            return w;
        }
        if !self.dry_run && w.lease.is_none() && self.r.state.is_some() {
            return w; // another run holds the user: it said so in open()
        }
        let mut tags = TagChanges::default();
        if let Err(e) = self.user_steps(&mut w, &mut tags, slots, forced).await {
            w.record("", ActionKind::Examine, Outcome::Failed, now, e.to_string());
        }
        if !w.lost {
            if let Err(e) = self.write_records(&mut w, &tags).await {
                w.record("", ActionKind::Tag, Outcome::Failed, now, e.to_string());
            }
        }
        // A lost lease's records were not written: neither is their mirror.
        if !w.lost {
            if let Err(e) = self.write_mirror(&w, &tags).await {
                w.record("", ActionKind::Tag, Outcome::Failed, now, e.to_string());
            }
        }
        if let (Some(table), Some(lease)) = (&self.r.state, w.lease.take()) {
            if let Err(e) = lease::release(table, &lease).await {
                // It lapses on its own; the next run waits for that.
                w.notes.push(format!(
                    "{}: the lease could not be released ({e}); it lapses {}",
                    w.user.name,
                    lease.expires.format("%H:%M UTC")
                ));
            }
        }
        w
    }

    /// Takes the user's lease (for writes) and puts keyguard's records in place of the tags.
    async fn open(&self, w: &mut Work) -> Result<()> {
        let Some(table) = &self.r.state else {
            if !self.dry_run && !self.r.no_lease {
                return Err(Error::Refused(
                    "no state table: keyguard writes to a user only under its lease (configure \
                     KEYGUARD_STATE_TABLE / --state-table, or --no-lease when nothing else runs)"
                        .into(),
                ));
            }
            return Ok(()); // --no-lease or a preview: the tags are the records
        };
        let name = w.user.name.clone();
        if !self.dry_run {
            match lease::take(self.r, table, &self.account.id, &name, &self.holder).await? {
                Taken::Held(l) => w.lease = Some(l),
                Taken::Busy { holder, until } => {
                    let until =
                        until.map_or("soon".into(), |u| u.format("%H:%M:%S UTC").to_string());
                    w.record(
                        "",
                        ActionKind::Examine,
                        Outcome::Skipped,
                        self.now,
                        format!("another keyguard run ({holder}) holds this user until {until}; it is left to that run"),
                    );
                    w.notes.push(format!(
                        "{name}: skipped, another keyguard run is working on it"
                    ));
                    return Ok(());
                }
            }
        }
        let kept = records::read(table, &self.account.id, &name).await?;
        w.mirrored = Some(keyguard_core::records::records_of_tags(&w.user));
        w.user = with_records(&w.user, &kept);
        w.kept = Some(kept);
        Ok(())
    }

    /// True while the user's lease (if one is needed) lets a step start.
    fn may_write(&self, w: &Work) -> bool {
        self.dry_run || (!w.lost && w.lease.as_ref().is_none_or(|l| l.writable()))
    }

    /// Replaces keyguard's records of the user with `next`, fenced by the lease; a refusal
    /// ([`Error::LeaseLost`]) marks the work lost.
    async fn put_records(&self, table: &StateTable, w: &mut Work, next: Records) -> Result<()> {
        let written = records::write(table, held(w)?, &next, self.now).await;
        lost_on(w, written)?;
        w.kept = Some(next);
        Ok(())
    }

    /// Writes keyguard's records (the table) with `tags` applied, when they changed.
    async fn write_records(&self, w: &mut Work, tags: &TagChanges) -> Result<()> {
        let (Some(table), Some(kept)) = (&self.r.state, &w.kept) else {
            return Ok(());
        };
        if self.dry_run {
            return Ok(());
        }
        let mut next = kept.clone();
        keyguard_core::records::apply_changes(&mut next, &tags.set, &tags.unset);
        if &next != kept {
            self.put_records(table, w, next).await?;
        }
        Ok(())
    }

    async fn user_steps(
        &self,
        w: &mut Work,
        tags: &mut TagChanges,
        slots: Option<Vec<AccessKey>>,
        forced: &Forced,
    ) -> Result<()> {
        let settings = &self.r.settings;
        let name = w.user.name.clone();
        // The live re-read: the plan is made from IAM as it is now.
        let from_report = slots.is_some();
        let keys = match slots {
            Some(keys) => {
                let record = UserRecord {
                    user: w.user.clone(),
                    keys,
                };
                with_key_ids(&self.iam, &record).await?
            }
            None => read_keys_live(&self.iam, &name).await?,
        };
        let Some(mut keys) = keys else {
            w.notes.push(format!("{name}: the user no longer exists"));
            return Ok(());
        };

        // 1. Repair an interrupted rotation before anything else: its leftovers are the keys
        //    created since the mark that are not in the secret and were never used (checked
        //    live: the report's last use can be hours old).
        if let Some(mark) = RotationMark::of(&w.user) {
            let stored = secrets::stored_key_id(&self.sm, &self.account.id, &name).await?;
            for k in keys.iter_mut() {
                if let Some(id) = k.id.clone() {
                    if leftovers(&w.user, std::slice::from_ref(k), stored.as_deref()).is_empty() {
                        continue;
                    }
                    k.last_used = keyguard_aws::inventory::last_used(&self.iam, &id).await?;
                }
            }
            let why = format!(
                "created by an interrupted rotation (attempt {} at {}), never used, secret never stored",
                if mark.attempt.is_empty() { "?" } else { &mark.attempt },
                mark.at.format("%Y-%m-%d %H:%M:%S UTC")
            );
            for id in leftovers(&w.user, &keys, stored.as_deref()) {
                if self.dry_run {
                    w.record(
                        &id,
                        ActionKind::DeleteOrphan,
                        Outcome::Preview,
                        self.now,
                        &why,
                    );
                } else {
                    match iam::delete_access_key(&self.iam, &name, &id).await {
                        Ok(()) => {
                            w.record(&id, ActionKind::DeleteOrphan, Outcome::Done, self.now, &why)
                        }
                        Err(e) => {
                            w.record(
                                &id,
                                ActionKind::DeleteOrphan,
                                Outcome::Failed,
                                self.now,
                                e.to_string(),
                            );
                            return Ok(());
                        }
                    }
                }
                keys.retain(|k| k.id.as_deref() != Some(id.as_str()));
            }
            tags.unset.insert(ROTATING_TAG.to_string());
            w.user.tags.remove(ROTATING_TAG);
        }

        // 2. Plan; a disable of an active key decided on the report's last use is checked
        //    against IAM's live last use first (the report can be four hours old).
        let mut p = plan(&w.user, &keys, settings, self.now);
        let active = |keys: &[AccessKey], id: &str| {
            keys.iter()
                .any(|k| k.id.as_deref() == Some(id) && k.is_active())
        };
        if from_report
            && p.due(self.now)
                .any(|a| a.action == Action::Disable && active(&keys, &a.key_id))
        {
            for k in keys.iter_mut().filter(|k| k.is_active()) {
                if let Some(id) = k.id.clone() {
                    k.last_used = keyguard_aws::inventory::last_used(&self.iam, &id).await?;
                }
            }
            p = plan(&w.user, &keys, settings, self.now);
        }
        for note in &p.notes {
            if let keyguard_core::PlanNote::RotationBlocked { key_id, until, why } = note {
                w.notes.push(format!(
                    "{name}: rotation of {} blocked until {}: {why}",
                    mask_key_id(key_id),
                    day(*until)
                ));
            }
        }

        // 3. The steps due now, in the plan's order (a slot is freed before it is filled).
        let due: Vec<PlannedAction> = match forced {
            Forced::Rotate => match forced_rotation(&keys, self.now) {
                Ok(a) => vec![a],
                Err(why) => {
                    return Err(Error::Refused(format!("forced rotation of {name}: {why}")))
                }
            },
            Forced::Leaked { key } => {
                w.leaked = true;
                self.leaked_steps(w, &keys, key.as_deref())?
            }
            Forced::No => p
                .due(self.now)
                .filter(|a| !matches!(a.action, Action::Notify { .. }))
                .cloned()
                .collect(),
        };
        let mut sent = warned(&w.user);
        let mut open = warning_marks(&p, self.now);
        for a in &due {
            let ok = self.step(w, tags, &mut keys, &p, a, &mut open).await;
            // Later steps of this user depend on this one; a leaked key is disabled anyway.
            let leak_goes_on = w.leaked && a.action == Action::Rotate && !w.lost;
            if !(ok || leak_goes_on) {
                break;
            }
        }
        if w.lost {
            // The user is the other run's now. A leaked key's disable is not this run's to do
            // any more (one writer per user): say plainly that the key is still Active.
            if w.leaked {
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
            return Ok(());
        }

        // 4. Warnings whose window opened and that were not sent yet.
        for a in p.warnings(self.now).filter(|a| !a.projected) {
            if let Action::Warn { step, step_due } = a.action {
                let mark = warning_mark(step, step_due);
                if sent.contains(&mark) {
                    continue;
                }
                let outcome = Outcome::Warned;
                w.record(
                    &a.key_id,
                    ActionKind::Warn(step),
                    outcome,
                    step_due,
                    a.why.clone(),
                );
                sent.insert(mark);
            }
        }
        // Each step is announced once: by its warning, or by the notice of the step before it.
        // The tag is written only when something new was announced (a quiet day writes nothing);
        // marks of past days are dropped then.
        let before = warned(&w.user);
        if !open.is_subset(&before) && !tags.set.contains_key(WARNED_TAG) {
            let today = day(self.now);
            let keep: BTreeSet<String> = before
                .union(&open)
                .filter(|m| m.rsplit('@').next().is_some_and(|d| d >= today.as_str()))
                .cloned()
                .collect();
            tags.set.insert(WARNED_TAG.to_string(), join(&keep));
        }

        // 5. A rotation's secret, once its key is installed: deleted a set number of days after
        //    keyguard first saw the key used.
        // Not in the central account (its role keeps its secrets); never fatal to the user's run.
        if let Some(days) = self
            .r
            .secret_delete_after_use_days
            .filter(|_| self.account.id != self.r.caller.account)
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

        // 6. What comes later, for the owner.
        let done: BTreeSet<(String, Step)> = w
            .records
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Done | Outcome::Preview))
            .filter_map(|r| r.action.step().map(|s| (r.key.clone(), s)))
            .collect();
        w.coming = p
            .actions
            .iter()
            .filter(|a| matches!(a.action, Action::Rotate | Action::Disable | Action::Delete))
            .filter(|a| a.due > self.now || a.projected)
            .filter(|a| {
                let step = a.action.step().expect("a step");
                !done.contains(&(mask_key_id(&a.key_id), step))
            })
            .map(|a| Item {
                key: mask_key_id(&a.key_id),
                action: a.action.name(),
                date: day(a.due.max(self.now)),
                why: a.why.clone(),
            })
            .collect();
        for stale in stale_tags(&w.user, &keys) {
            tags.unset.insert(stale);
        }
        Ok(())
    }

    /// Performs one due step; false when it failed (the user's later steps are skipped).
    async fn step(
        &self,
        w: &mut Work,
        tags: &mut TagChanges,
        keys: &mut Vec<AccessKey>,
        p: &Plan,
        a: &PlannedAction,
        open: &mut BTreeSet<String>,
    ) -> bool {
        let name = w.user.name.clone();
        let now = self.now;
        let id = a.key_id.as_str();
        let key = keys.iter().find(|k| k.id.as_deref() == Some(id)).cloned();
        let preview = self.dry_run;
        let outcome = if preview {
            Outcome::Preview
        } else {
            Outcome::Done
        };
        // A preview is dated when the step is due (what a DryRun preview is about), a step done
        // when it was done.
        let at = if preview { a.due } else { now };
        if matches!(a.action, Action::Rotate | Action::Disable | Action::Delete)
            && !self.may_write(w)
        {
            w.record(
                id,
                ActionKind::from_action(&a.action),
                Outcome::Skipped,
                now,
                "not started: this run's lease on the user is about to lapse; the next run does it",
            );
            w.deferred = true;
            return false;
        }
        match a.action {
            Action::RecordDisabled => {
                tags.set
                    .insert(format!("{DISABLED_TAG_PREFIX}{id}"), now.to_rfc3339());
                w.record(id, ActionKind::RecordDisabled, outcome, at, a.why.clone());
                true
            }
            Action::Delete => {
                // Invariant 1: only an Inactive key, checked against the live read.
                if key.as_ref().is_none_or(|k| k.is_active()) {
                    w.record(
                        id,
                        ActionKind::Delete,
                        Outcome::Skipped,
                        now,
                        "the key is Active or gone since the plan",
                    );
                    return true;
                }
                if !preview {
                    // Re-checked immediately before the write: a person may have re-enabled it.
                    match self.status_now(&name, id).await {
                        Ok(Some(KeyStatus::Inactive)) => {}
                        Ok(now_status) => {
                            w.record(
                                id,
                                ActionKind::Delete,
                                Outcome::Skipped,
                                now,
                                format!(
                                    "not deleted: the key is {} since the plan",
                                    now_status.map_or("gone", |s| if s == KeyStatus::Active {
                                        "Active"
                                    } else {
                                        "Inactive"
                                    })
                                ),
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
                w.record(id, ActionKind::Delete, outcome, at, a.why.clone());
                true
            }
            Action::Disable => {
                if !key.as_ref().is_some_and(|k| k.is_active()) {
                    w.record(
                        id,
                        ActionKind::Disable,
                        Outcome::Skipped,
                        now,
                        "the key is Inactive or gone since the plan",
                    );
                    return true;
                }
                if !preview {
                    // Re-checked immediately before the write: still Active, and (for a disable
                    // for non-use) still unused; a change since the plan cancels the step.
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
                    if let Err(e) =
                        iam::set_key_status(&self.iam, &name, id, KeyStatus::Inactive).await
                    {
                        w.record(id, ActionKind::Disable, Outcome::Failed, now, e.to_string());
                        return false;
                    }
                }
                if let Some(k) = keys.iter_mut().find(|k| k.id.as_deref() == Some(id)) {
                    k.status = keyguard_core::KeyStatus::Inactive;
                }
                tags.set
                    .insert(format!("{DISABLED_TAG_PREFIX}{id}"), now.to_rfc3339());
                let restored = format!("{RESTORED_TAG_PREFIX}{id}");
                if w.user.tags.contains_key(&restored) {
                    tags.unset.insert(restored);
                }
                announce_follow_ups(p, id, open);
                w.record(id, ActionKind::Disable, outcome, at, a.why.clone());
                true
            }
            Action::Rotate => {
                // Invariant 3, against the live read: an Active key, and a free slot.
                if !key.as_ref().is_some_and(|k| k.is_active()) || keys.len() >= 2 {
                    w.record(id, ActionKind::Rotate, Outcome::Skipped, now, "the user's keys changed since the plan (no free slot or the key is not Active)");
                    return false;
                }
                if !preview && self.past_margin() {
                    // Never start a rotation that the invocation may not live to store.
                    w.record(
                        id,
                        ActionKind::Rotate,
                        Outcome::Skipped,
                        now,
                        "not started: the invocation's deadline is near; the next invocation rotates",
                    );
                    w.deferred = true;
                    return false;
                }
                announce_follow_ups(p, id, open);
                if preview {
                    w.record(id, ActionKind::Rotate, outcome, at, a.why.clone());
                    w.secret_name = Some(secrets::secret_name(&self.account.id, &name));
                    return true;
                }
                match self.rotate(w, keys, open).await {
                    Ok((new_id, secret_name)) => {
                        tags.unset.insert(ROTATING_TAG.to_string());
                        // The mark call wrote the announced steps already.
                        let marks: BTreeSet<String> =
                            warned(&w.user).union(open).cloned().collect();
                        w.user.tags.insert(WARNED_TAG.to_string(), join(&marks));
                        w.record(
                            id,
                            ActionKind::Rotate,
                            Outcome::Done,
                            now,
                            format!("{}; new key {}", a.why, mask_key_id(&new_id)),
                        );
                        if let Some(r) = w.records.last_mut() {
                            r.secret_name = Some(secret_name.clone());
                        }
                        w.secret_name = Some(secret_name);
                        true
                    }
                    Err((e, clean)) => {
                        if clean {
                            // Nothing was left behind: the mark can go.
                            tags.unset.insert(ROTATING_TAG.to_string());
                        }
                        w.record(id, ActionKind::Rotate, Outcome::Failed, now, e.to_string());
                        false
                    }
                }
            }
            Action::Warn { .. } | Action::Notify { .. } => true,
        }
    }

    /// The steps for a leaked key, due now: its successor (only when a reader other than the
    /// user is configured and a slot is free: whoever holds the leaked key must not read the new
    /// one), then the leaked key disabled at once, without the installation grace.
    fn leaked_steps(
        &self,
        w: &mut Work,
        keys: &[AccessKey],
        named: Option<&str>,
    ) -> Result<Vec<PlannedAction>> {
        let name = &w.user.name;
        let active: Vec<&AccessKey> = keys.iter().filter(|k| k.is_active()).collect();
        let leaked = match named {
            Some(id) => keys
                .iter()
                .find(|k| k.id.as_deref() == Some(id))
                .ok_or_else(|| {
                    Error::Refused(format!("{} is not a key of {name}", mask_key_id(id)))
                })?,
            None => match active.as_slice() {
                [k] => k,
                [] => return Err(Error::Refused(format!("{name} has no active key"))),
                _ => {
                    return Err(Error::Refused(format!(
                        "{name} has two active keys: name the leaked one (--key / \"key\")"
                    )))
                }
            },
        };
        let id = leaked
            .id
            .clone()
            .ok_or_else(|| Error::Refused("the key's id is unknown".into()))?;
        let step = |action: Action, why: &str| PlannedAction {
            key_id: id.clone(),
            action,
            due: self.now,
            projected: false,
            why: why.into(),
        };
        let mut steps = Vec::new();
        let readers = secrets::readers(&self.r.secret_readers, &self.account.id, &w.user.arn, true);
        if !leaked.is_active() {
            w.notes.push(format!(
                "{name}: the leaked key {} is already Inactive",
                leaked.label()
            ));
            return Ok(steps);
        }
        if readers.is_empty() {
            w.notes.push(format!(
                "{name}: no successor for the leaked key {}: SECRET_READERS names no reader but the \
                 user, who must not read it; configure the reader that installs it and rotate with \
                 --force-rotate once the key is replaced",
                leaked.label()
            ));
        } else if keys.len() >= 2 {
            w.notes.push(format!(
                "{name}: no successor for the leaked key {}: the user has two keys (IAM allows two)",
                leaked.label()
            ));
        } else {
            steps.push(step(
                Action::Rotate,
                "the key leaked: rotated at once, readable by the configured readers only",
            ));
        }
        steps.push(step(
            Action::Disable,
            "the key leaked: disabled at once, without the installation grace",
        ));
        Ok(steps)
    }

    /// Deletes the user's secret `days` after keyguard first saw the key it holds used (the
    /// first sighting is recorded; the deletion is restorable for 7 days, and the next rotation
    /// restores the secret). Nothing while the key is unused or the secret holds no current key.
    async fn secret_retention(
        &self,
        w: &mut Work,
        tags: &mut TagChanges,
        keys: &[AccessKey],
        days: u32,
    ) -> Result<()> {
        let name = w.user.name.clone();
        let Some(stored) = secrets::stored_key_id(&self.sm, &self.account.id, &name).await? else {
            return Ok(());
        };
        let Some(key) = keys
            .iter()
            .find(|k| k.id.as_deref() == Some(stored.as_str()))
        else {
            return Ok(());
        };
        // IAM keeps last use to the second at best: used in the second it was created counts.
        if key
            .last_used
            .is_none_or(|u| u < key.created.trunc_subsecs(0))
        {
            return Ok(()); // not installed yet
        }
        let record = format!("{FIRST_USED_TAG_PREFIX}{stored}");
        let first = w
            .user
            .tag(&record)
            .and_then(|v| keyguard_core::model::parse_date_or_time(v, false));
        let Some(first) = first else {
            tags.set.insert(record, self.now.to_rfc3339());
            return Ok(());
        };
        if self.now - first < chrono::Duration::days(days.into()) {
            return Ok(());
        }
        if keys
            .iter()
            .any(|k| k.is_active() && k.id.as_deref() != Some(stored.as_str()))
        {
            return Ok(()); // the old key still works: the new one may only have been tried
        }
        let why = format!(
            "{} in use since {} (first seen used): the secret is deleted after {days} days, restorable for {} days",
            mask_key_id(&stored),
            day(first),
            secrets::DELETE_RECOVERY_DAYS
        );
        if self.dry_run {
            w.record(
                &stored,
                ActionKind::DeleteSecret,
                Outcome::Preview,
                self.now,
                why,
            );
            return Ok(());
        }
        if !self.may_write(w) {
            return Ok(());
        }
        secrets::delete(&self.sm, &self.account.id, &name).await?;
        tags.unset.insert(record);
        w.record(
            &stored,
            ActionKind::DeleteSecret,
            Outcome::Done,
            self.now,
            why,
        );
        Ok(())
    }

    /// The key's status now (one ListAccessKeys); `None` when it (or the user) is gone.
    async fn status_now(&self, user: &str, id: &str) -> Result<Option<KeyStatus>> {
        Ok(keyguard_aws::inventory::list_keys(&self.iam, user)
            .await?
            .and_then(|ks| ks.into_iter().find(|k| k.id == id))
            .map(|k| k.status))
    }

    /// Reads the key's status and last use again and plans again with them: `Some(why)` when the
    /// disable is no longer due (re-enabled, deleted, or used since the plan).
    async fn still_due_disable(
        &self,
        w: &Work,
        keys: &mut [AccessKey],
        id: &str,
    ) -> Result<Option<String>> {
        match self.status_now(&w.user.name, id).await? {
            Some(KeyStatus::Active) => {}
            other => {
                return Ok(Some(format!(
                    "not disabled: the key is {} since the plan",
                    if other.is_some() { "Inactive" } else { "gone" }
                )))
            }
        }
        let used = keyguard_aws::inventory::last_used(&self.iam, id).await?;
        let Some(k) = keys.iter_mut().find(|k| k.id.as_deref() == Some(id)) else {
            return Ok(Some("not disabled: the key is gone since the plan".into()));
        };
        if used == k.last_used {
            return Ok(None);
        }
        k.last_used = used;
        let again = plan(&w.user, keys, &self.r.settings, self.now);
        if again
            .due(self.now)
            .any(|a| a.action == Action::Disable && a.key_id == id)
        {
            return Ok(None);
        }
        Ok(Some(format!(
            "not disabled: the key was used since the plan ({})",
            used.map_or("now".into(), |t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        )))
    }

    /// Writes the rotation mark (the table's record first, then its mirror tag) with the instant
    /// immediately before CreateAccessKey is called and this run's attempt id.
    async fn mark(&self, w: &mut Work, announced: &BTreeSet<String>) -> Result<RotationMark> {
        let mark = RotationMark {
            at: Utc::now(),
            attempt: self.holder.clone(),
        };
        let mut set = BTreeMap::from([(ROTATING_TAG.to_string(), mark.value())]);
        let marks: BTreeSet<String> = warned(&w.user).union(announced).cloned().collect();
        if !marks.is_empty() {
            set.insert(WARNED_TAG.to_string(), join(&marks));
        }
        if let (Some(table), Some(kept)) = (&self.r.state, &w.kept) {
            let mut next = kept.clone();
            keyguard_core::records::apply_changes(&mut next, &set, []);
            self.put_records(table, w, next).await?;
        }
        match iam::tag_user(&self.iam, &w.user.name, &set).await {
            Ok(()) => {
                if let Some(m) = &mut w.mirrored {
                    m.extend(set);
                }
            }
            // With the table the mirror is for people: its failure (a user at IAM's 50 tags)
            // must not stop the rotation. Without the table the tag is the mark itself.
            Err(e) if w.kept.is_some() => {
                w.notes.push(format!(
                    "{}: the rotation mark's mirror tag was not written: {e}",
                    w.user.name
                ));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(mark)
    }

    /// Creates the successor key and stores it. Returns the new key's id and the secret's name.
    /// Order: mark the user (crash safety), create, store; a failed store deletes the key at once,
    /// and a failed create re-lists the keys first (IAM may have created one whose answer was
    /// lost). On failure, the error and whether nothing is left behind (so the mark can go).
    async fn rotate(
        &self,
        w: &mut Work,
        keys: &[AccessKey],
        announced: &BTreeSet<String>,
    ) -> std::result::Result<(String, String), (Error, bool)> {
        let name = w.user.name.clone();
        let mark = self.mark(w, announced).await.map_err(|e| (e, false))?;
        let created = match iam::create_access_key(&self.iam, &name, self.now).await {
            Ok(c) => c,
            Err(e) => {
                let found_none = self.after_failed_create(w, keys, &mark).await;
                if w.lost {
                    return Err((
                        Error::LeaseLost(format!(
                            "{name}: CreateAccessKey failed ({e}), and this run's lease lapsed or \
                             was taken over meanwhile; it leaves the user to that run"
                        )),
                        false,
                    ));
                }
                // Only a refusal that no attempt can have got past (access denied, the user gone)
                // proves nothing was created; any other failure (a lost answer whose retry met the
                // two-key limit, a timeout, a 5xx) keeps the mark, and the next run repairs from a
                // fresh list, which also sees a key IAM listed late.
                let refused = matches!(&e, keyguard_aws::Error::AccessDenied { .. })
                    || matches!(&e, keyguard_aws::Error::Api { code: Some(c), .. } if c == "NoSuchEntity");
                return Err((Error::Aws(e), found_none && refused));
            }
        };
        let new_id = created.id.clone();
        let readers = secrets::readers(
            &self.r.secret_readers,
            &self.account.id,
            &w.user.arn,
            w.leaked,
        );
        let target = SecretTarget {
            account: &self.account.id,
            user_name: &name,
            readers: &readers,
            keyguard_arn: &self.principal,
            kms_key_id: self.r.kms_key_id.as_deref(),
        };
        // A run paused since the mark may have lost the user meanwhile, and the run that took
        // over deletes this key as a leftover: the secret must not be overwritten with it.
        let confirmed = match (&self.r.state, &w.lease) {
            (Some(table), Some(lease)) if !self.dry_run => lease.confirm(table).await,
            _ => Ok(()),
        };
        let stored = match lost_on(w, confirmed) {
            Ok(()) => secrets::store(&self.sm, &target, &new_id, &created.secret, created.created)
                .await
                .map_err(Error::from),
            Err(e) => Err(e),
        };
        drop(created);
        if w.lost {
            // Never stored: the key goes (the run that took over may have deleted it already as
            // a leftover; only this run ever saw its secret).
            let deleted = match iam::delete_access_key(&self.iam, &name, &new_id).await {
                Ok(()) => "deleted again".to_string(),
                Err(keyguard_aws::Error::Api { code: Some(c), .. }) if c == "NoSuchEntity" => {
                    "deleted by the run that took over".to_string()
                }
                Err(e) => format!("not deleted ({e}); the run that holds the user deletes it"),
            };
            return Err((
                Error::LeaseLost(format!(
                    "{name}: this run's lease lapsed or was taken over before the new key {} was \
                     stored; the key was {deleted}",
                    mask_key_id(&new_id)
                )),
                false,
            ));
        }
        match stored {
            Ok(secret_name) => Ok((new_id, secret_name)),
            // Invariant 6: IAM showed the secret once and it is lost now; the key must go.
            Err(store_err) => match iam::delete_access_key(&self.iam, &name, &new_id).await {
                Ok(()) => Err((
                    Error::SecretNotStored(format!(
                        "the new key {} was deleted again: {store_err}",
                        mask_key_id(&new_id)
                    )),
                    true,
                )),
                Err(del_err) => Err((
                    Error::SecretNotStored(format!(
                        "the new key {} could not be stored ({store_err}) nor deleted ({del_err}); \
                         the next run deletes it (the user is marked {ROTATING_TAG})",
                        mask_key_id(&new_id)
                    )),
                    false,
                )),
            },
        }
    }

    /// After CreateAccessKey failed: lists the keys again, and deletes a key that is new since
    /// `before`, created since the mark and never used (its answer was lost, so nobody has its
    /// secret). True when nothing is left behind.
    ///
    /// It deletes only while the lease is still this run's: a run paused inside CreateAccessKey
    /// past its lease would otherwise take the key of the run that took over (stored, not used
    /// yet) for its own lost one.
    async fn after_failed_create(
        &self,
        w: &mut Work,
        before: &[AccessKey],
        mark: &RotationMark,
    ) -> bool {
        let name = w.user.name.clone();
        let name = name.as_str();
        let Ok(Some(listed)) = keyguard_aws::inventory::list_keys(&self.iam, name).await else {
            return false; // unknown: the mark stays and the next run repairs
        };
        let mut clean = true;
        for k in listed {
            let known = before
                .iter()
                .any(|b| b.id.as_deref() == Some(k.id.as_str()));
            // No skew allowance here: a key a person made in the second before the mark is
            // theirs; the answer keyguard lost was for a key made after it.
            if known || k.created < mark.at.trunc_subsecs(0) {
                continue;
            }
            // Before each candidate's check and delete: still this run's user?
            let held = match (&self.r.state, &w.lease) {
                (Some(table), Some(lease)) => lease.confirm(table).await,
                _ => Ok(()),
            };
            if lost_on(w, held).is_err() {
                return false;
            }
            let unused = matches!(
                keyguard_aws::inventory::last_used(&self.iam, &k.id).await,
                Ok(None)
            );
            if !unused
                || iam::delete_access_key(&self.iam, name, &k.id)
                    .await
                    .is_err()
            {
                clean = false;
            } else {
                warn!(key = %mask_key_id(&k.id), "deleted the key of a CreateAccessKey whose answer was lost");
            }
        }
        clean
    }

    /// Writes the user's tags: with the state table, the mirror of keyguard's records (what a
    /// person or a forger wrote under keyguard's tag names is replaced); without it, the changes,
    /// which are then the records themselves. At most two calls.
    async fn write_mirror(&self, w: &Work, tags: &TagChanges) -> Result<()> {
        if self.dry_run {
            return Ok(());
        }
        let (set, unset): (BTreeMap<String, String>, Vec<String>) = match (&w.kept, &w.mirrored) {
            (Some(kept), Some(mirrored)) => (
                kept.iter()
                    .filter(|(k, v)| mirrored.get(*k) != Some(*v))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                mirrored
                    .keys()
                    .filter(|k| !kept.contains_key(*k))
                    .cloned()
                    .collect(),
            ),
            _ => (
                tags.set.clone(),
                tags.unset
                    .iter()
                    .filter(|k| !tags.set.contains_key(*k))
                    .cloned()
                    .collect(),
            ),
        };
        iam::tag_user(&self.iam, &w.user.name, &set).await?;
        iam::untag_user(&self.iam, &w.user.name, &unset).await?;
        Ok(())
    }
}

/// The steps that follow a step done on `key_id` in this run are announced by its notice (which
/// lists them with their dates): mark them as warned.
fn announce_follow_ups(p: &Plan, key_id: &str, open: &mut BTreeSet<String>) {
    for a in p
        .actions
        .iter()
        .filter(|a| a.key_id == key_id && a.projected)
    {
        if let Some(step) = a
            .action
            .step()
            .filter(|_| !matches!(a.action, Action::Warn { .. } | Action::Notify { .. }))
        {
            open.insert(warning_mark(step, a.due));
        }
    }
}

/// `result`, with the work marked lost when it is [`Error::LeaseLost`].
fn lost_on<T>(w: &mut Work, result: Result<T>) -> Result<T> {
    if matches!(result, Err(Error::LeaseLost(_))) {
        w.lost = true;
    }
    result
}

/// The lease a write to `w`'s records goes under (taken by `open` whenever the table is used
/// for writes).
fn held(w: &Work) -> Result<&Lease> {
    w.lease.as_ref().ok_or_else(|| {
        Error::Internal("keyguard's records are written only under the user's lease".into())
    })
}

fn join(marks: &BTreeSet<String>) -> String {
    marks.iter().cloned().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    //! The executor against mocked clients (aws-smithy-mocks): the order of writes and what a
    //! failure at each leaves behind, without the rig. The rig tests (tests/it/remediator.rs)
    //! cover the same paths against IAM's real behaviour.

    use super::*;
    use aws_sdk_iam::operation::create_access_key::CreateAccessKeyOutput;
    use aws_sdk_iam::operation::delete_access_key::DeleteAccessKeyOutput;
    use aws_sdk_iam::operation::get_access_key_last_used::GetAccessKeyLastUsedOutput;
    use aws_sdk_iam::operation::list_access_keys::ListAccessKeysOutput;
    use aws_sdk_iam::operation::tag_user::TagUserOutput;
    use aws_sdk_iam::operation::untag_user::UntagUserOutput;
    use aws_sdk_iam::types::{
        AccessKey as SdkKey, AccessKeyLastUsed, AccessKeyMetadata, StatusType,
    };
    use aws_sdk_secretsmanager::operation::create_secret::CreateSecretOutput;
    use aws_sdk_secretsmanager::operation::put_resource_policy::PutResourcePolicyOutput;
    use aws_sdk_secretsmanager::operation::put_secret_value::PutSecretValueError;
    use aws_sdk_secretsmanager::types::error::EncryptionFailure;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use keyguard_aws::to_smithy;

    fn remediator() -> Remediator {
        let mut r = Remediator::for_tests();
        r.settings.dry_run = false;
        r.no_lease = true;
        r.role.role_name = "keyguard-member-remediator".into();
        r
    }

    #[tokio::test]
    async fn a_failed_store_deletes_the_new_key_and_clears_the_mark() {
        let now = Utc::now();
        let old = "AKIAOLDOLDOLDOLD0001";
        let new = "AKIANEWNEWNEWNEW0002";
        let list = mock!(aws_sdk_iam::Client::list_access_keys).then_output(move || {
            ListAccessKeysOutput::builder()
                .access_key_metadata(
                    AccessKeyMetadata::builder()
                        .access_key_id(old)
                        .status(StatusType::Active)
                        .create_date(to_smithy(now - chrono::Duration::days(120)))
                        .build(),
                )
                .build()
                .unwrap()
        });
        let used = mock!(aws_sdk_iam::Client::get_access_key_last_used).then_output(move || {
            GetAccessKeyLastUsedOutput::builder()
                .access_key_last_used(
                    AccessKeyLastUsed::builder()
                        .last_used_date(to_smithy(now - chrono::Duration::days(1)))
                        .service_name("s3")
                        .region("us-east-1")
                        .build()
                        .unwrap(),
                )
                .build()
        });
        let mark = mock!(aws_sdk_iam::Client::tag_user)
            .match_requests(|r| r.tags().iter().any(|t| t.key() == ROTATING_TAG))
            .then_output(|| TagUserOutput::builder().build());
        let create = mock!(aws_sdk_iam::Client::create_access_key).then_output(move || {
            CreateAccessKeyOutput::builder()
                .access_key(
                    SdkKey::builder()
                        .user_name("ci")
                        .access_key_id(new)
                        .status(StatusType::Active)
                        .secret_access_key("never-logged-secret")
                        .build()
                        .unwrap(),
                )
                .build()
        });
        let delete = mock!(aws_sdk_iam::Client::delete_access_key)
            .match_requests(move |r| r.access_key_id() == Some(new))
            .then_output(|| DeleteAccessKeyOutput::builder().build());
        let warned = mock!(aws_sdk_iam::Client::tag_user)
            .match_requests(|r| r.tags().iter().all(|t| t.key() == WARNED_TAG))
            .then_output(|| TagUserOutput::builder().build());
        let unmark = mock!(aws_sdk_iam::Client::untag_user)
            .match_requests(|r| r.tag_keys().iter().any(|k| k == ROTATING_TAG))
            .then_output(|| UntagUserOutput::builder().build());
        let iam = mock_client!(
            aws_sdk_iam,
            RuleMode::MatchAny,
            [&list, &used, &mark, &create, &delete, &warned, &unmark]
        );
        let created = mock!(aws_sdk_secretsmanager::Client::create_secret)
            .then_output(|| CreateSecretOutput::builder().build());
        let policy = mock!(aws_sdk_secretsmanager::Client::put_resource_policy)
            .then_output(|| PutResourcePolicyOutput::builder().build());
        let put = mock!(aws_sdk_secretsmanager::Client::put_secret_value).then_error(|| {
            PutSecretValueError::EncryptionFailure(
                EncryptionFailure::builder()
                    .message("KMS key disabled")
                    .build(),
            )
        });
        let sm = mock_client!(
            aws_sdk_secretsmanager,
            RuleMode::MatchAny,
            [&created, &policy, &put]
        );
        let r = remediator();
        let account = Account {
            id: "444455556666".into(),
            name: String::new(),
            email: None,
        };
        let ctx = Ctx {
            r: &r,
            account: &account,
            iam,
            sm,
            principal: "arn:aws:iam::444455556666:role/keyguard-member-remediator".into(),
            dry_run: false,
            now,
            deadline: None,
            holder: "kg-test".into(),
        };
        let user = User {
            name: "ci".into(),
            user_id: "AIDACI".into(),
            arn: "arn:aws:iam::444455556666:user/ci".into(),
            path: "/".into(),
            ..User::default()
        };
        let w = ctx.user(user, None, &Forced::No).await;
        let rotate = w
            .records
            .iter()
            .find(|r| r.action == ActionKind::Rotate)
            .expect("a rotation record");
        assert_eq!(rotate.outcome, Outcome::Failed, "{:?}", w.records);
        assert!(rotate.why.contains("deleted again"), "{}", rotate.why);
        assert!(!format!("{:?}", w.records).contains("never-logged-secret"));
        // Mark, create, store (fails), delete the new key, remove the mark: in that order.
        assert_eq!(
            (mark.num_calls(), create.num_calls(), put.num_calls()),
            (1, 1, 1)
        );
        assert_eq!(delete.num_calls(), 1, "the unstored key is deleted at once");
        assert_eq!(
            unmark.num_calls(),
            1,
            "nothing is left behind: the mark goes"
        );
    }
}
