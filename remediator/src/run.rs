//! The executor: accounts → users → steps, with the safety checks of the crate docs.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_iam::types::{StatusType, Tag};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use keyguard_aws::inventory::{
    read_inventory, read_keys_live, user_by_name, users, with_key_ids, UserRecord,
};
use keyguard_aws::org::{organization_accounts, AccountFilter};
use keyguard_aws::sdk::for_account;
use keyguard_core::{
    forced_rotation, mask_key_id, needs_attention, orphans, plan, restorable, stale_tags, warned,
    warning_mark, warning_marks, AccessKey, Account, Action, Plan, PlannedAction, Restorable, Step,
    User, DISABLED_TAG_PREFIX, RESTORED_TAG_PREFIX, ROTATING_TAG, WARNED_TAG,
};
use secrecy::SecretString;
use serde_json::Value;
use tracing::{info, warn, Instrument};

use crate::notices::{
    self, by_owner, day, Digest, DigestRow, DigestUser, Item, OwnerNotice, UserNotice,
};
use crate::secrets::{self, SecretTarget};
use crate::{
    AccountReport, ActionRecord, Error, Mode, Outcome, Remediator, Request, Result, Summary,
};

/// Which users of an account a run looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Every user (from the credential report; only those that may need something are read live).
    All,
    /// One user by name.
    Name(String),
    /// One user by IAM UserId (Config's resource id).
    UserId(String),
}

/// Handles one invocation payload at `now`: the whole Lambda. The summary comes back even when
/// steps failed; the Lambda turns failures into an invocation error with
/// [`Summary::into_result`].
pub async fn handle(r: &Remediator, event: Value, now: DateTime<Utc>) -> Result<Summary> {
    let (account, selection, force_rotate, mode) = match Request::parse(event)? {
        Request::Sweep { mode } => return sweep(r, &AccountFilter::default(), mode, now).await,
        Request::Remediation {
            user_id,
            account,
            mode,
        } => (account, Selection::UserId(user_id), false, mode),
        Request::Manual {
            account,
            user,
            force_rotate,
            mode,
        } => (
            account,
            user.map_or(Selection::All, Selection::Name),
            force_rotate,
            mode,
        ),
    };
    // The event names only the id; the account's name and email are not needed to act.
    let account = Account {
        id: account,
        name: String::new(),
        email: None,
    };
    let report = run_account(r, account, &selection, force_rotate, mode, now).await;
    Ok(Summary {
        dry_run: dry_run(r, mode),
        at: now,
        accounts: vec![report],
    })
}

fn dry_run(r: &Remediator, mode: Mode) -> bool {
    r.settings.dry_run || mode == Mode::Preview
}

/// The org-wide sweep: every ACTIVE account the filter admits, [`keyguard_aws::CONCURRENCY`] at
/// a time, each isolated (its failure is its report's `error`).
pub async fn sweep(
    r: &Remediator,
    filter: &AccountFilter,
    mode: Mode,
    now: DateTime<Utc>,
) -> Result<Summary> {
    let accounts = organization_accounts(&r.sdk, &r.role, filter).await?;
    sweep_accounts(r, accounts, mode, now).await
}

/// The sweep over a given list of accounts.
pub async fn sweep_accounts(
    r: &Remediator,
    accounts: Vec<Account>,
    mode: Mode,
    now: DateTime<Utc>,
) -> Result<Summary> {
    let mut reports: Vec<AccountReport> = futures::stream::iter(accounts)
        .map(|a| run_account(r, a, &Selection::All, false, mode, now))
        .buffer_unordered(keyguard_aws::CONCURRENCY)
        .collect()
        .await;
    reports.sort_by(|a, b| a.account.cmp(&b.account));
    Ok(Summary {
        dry_run: dry_run(r, mode),
        at: now,
        accounts: reports,
    })
}

/// Runs one account: reads, plans, acts on every selected user, then sends its notices. Never
/// fails: what went wrong is in the report.
pub async fn run_account(
    r: &Remediator,
    account: Account,
    selection: &Selection,
    force_rotate: bool,
    mode: Mode,
    now: DateTime<Utc>,
) -> AccountReport {
    let span = tracing::info_span!("account", account = %account.id);
    async {
        let mut report = AccountReport {
            account: account.id.clone(),
            ..AccountReport::default()
        };
        let works = match act(
            r,
            &account,
            selection,
            force_rotate,
            dry_run(r, mode),
            now,
            &mut report,
        )
        .await
        {
            Ok(works) => works,
            Err(e) => {
                warn!(error = %e, "account not processed");
                report.error = Some(e.to_string());
                vec![]
            }
        };
        for w in &works {
            report.actions.extend(w.records.iter().cloned());
            report.notes.extend(w.notes.iter().cloned());
        }
        if let Err(e) = notify(r, &account, &works, &mut report, dry_run(r, mode), now).await {
            warn!(error = %e, "notices not sent");
            report.notes.push(format!("notices not sent: {e}"));
        }
        report
    }
    .instrument(span)
    .await
}

/// The clients and facts of one account's run.
struct Ctx<'a> {
    r: &'a Remediator,
    account: &'a Account,
    iam: aws_sdk_iam::Client,
    sm: aws_sdk_secretsmanager::Client,
    principal: String,
    dry_run: bool,
    now: DateTime<Utc>,
}

async fn act(
    r: &Remediator,
    account: &Account,
    selection: &Selection,
    force_rotate: bool,
    dry_run: bool,
    now: DateTime<Utc>,
    report: &mut AccountReport,
) -> Result<Vec<Work>> {
    let cfg = for_account(&r.sdk, &r.caller, &account.id, &r.role).await?;
    let ctx = Ctx {
        r,
        account,
        iam: aws_sdk_iam::Client::new(&cfg),
        sm: aws_sdk_secretsmanager::Client::new(&cfg),
        principal: r.caller.principal_in(&account.id, &r.role),
        dry_run,
        now,
    };
    // (user, the report's key slots when the user came from the credential report)
    let todo: Vec<(User, Option<Vec<AccessKey>>)> = match selection {
        Selection::All => {
            let inv = read_inventory(&ctx.iam, &account.id, r.polling).await?;
            report.users = inv.users.len();
            inv.users
                .into_iter()
                .filter(|u| needs_attention(&u.user, &u.keys, &r.settings, now))
                .map(|u| (u.user, Some(u.keys)))
                .collect()
        }
        Selection::Name(name) => match user_by_name(&ctx.iam, name).await? {
            Some(u) => vec![(u, None)],
            None => return Err(Error::NotFound(format!("user {name:?} in {}", account.id))),
        },
        Selection::UserId(id) => {
            // Config's resource id is the UserId; IAM has no lookup by id, so page the users
            // (one call per 1000). Names with paths and `+=,.@-` come back exactly as IAM has them.
            match users(&ctx.iam)
                .await?
                .into_iter()
                .find(|u| &u.user_id == id)
            {
                Some(u) => vec![(u, None)],
                None => {
                    return Err(Error::NotFound(format!(
                        "no user with UserId {id} in {}",
                        account.id
                    )))
                }
            }
        }
    };
    report.examined = todo.len();
    let ctx = &ctx;
    let works = futures::stream::iter(todo)
        .map(|(user, slots)| {
            let span = tracing::info_span!("user", user = %user.name);
            async move { ctx.user(user, slots, force_rotate).await }.instrument(span)
        })
        .buffer_unordered(keyguard_aws::CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    Ok(works)
}

/// One user's run: what was done and what to tell the owner.
struct Work {
    user: User,
    records: Vec<ActionRecord>,
    coming: Vec<Item>,
    notes: Vec<String>,
    secret_name: Option<String>,
}

impl Work {
    fn record(
        &mut self,
        key: &str,
        action: &str,
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
            Outcome::Failed => warn!(key = %masked, action, why = %why, "failed"),
            _ => info!(key = %masked, action, outcome = ?outcome, why = %why, "step"),
        }
        self.records.push(ActionRecord {
            user: self.user.name.clone(),
            key: masked,
            action: action.to_string(),
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
    async fn user(&self, user: User, slots: Option<Vec<AccessKey>>, force_rotate: bool) -> Work {
        let mut w = Work {
            user,
            records: vec![],
            coming: vec![],
            notes: vec![],
            secret_name: None,
        };
        let mut tags = TagChanges::default();
        if let Err(e) = self
            .user_steps(&mut w, &mut tags, slots, force_rotate)
            .await
        {
            let now = self.now;
            w.record("", "examine", Outcome::Failed, now, e.to_string());
        }
        if let Err(e) = self.write_tags(&w.user.name, &tags).await {
            let now = self.now;
            w.record("", "tag", Outcome::Failed, now, e.to_string());
        }
        w
    }

    async fn user_steps(
        &self,
        w: &mut Work,
        tags: &mut TagChanges,
        slots: Option<Vec<AccessKey>>,
        force_rotate: bool,
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

        // 1. Repair an interrupted rotation before anything else.
        if w.user.tag(ROTATING_TAG).is_some() {
            let stored = secrets::stored_key_id(&self.sm, &self.account.id, &name).await?;
            for id in orphans(&w.user, &keys, stored.as_deref()) {
                let why = "created by an interrupted rotation, secret never stored";
                if self.dry_run {
                    w.record(&id, "delete-orphan", Outcome::Preview, self.now, why);
                } else {
                    match self.delete_key(&name, &id).await {
                        Ok(()) => w.record(&id, "delete-orphan", Outcome::Done, self.now, why),
                        Err(e) => {
                            w.record(
                                &id,
                                "delete-orphan",
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
        let due: Vec<PlannedAction> = if force_rotate {
            match forced_rotation(&keys, self.now) {
                Ok(a) => vec![a],
                Err(why) => {
                    return Err(Error::Refused(format!("forced rotation of {name}: {why}")))
                }
            }
        } else {
            p.due(self.now)
                .filter(|a| !matches!(a.action, Action::Notify { .. }))
                .cloned()
                .collect()
        };
        let mut sent = warned(&w.user);
        let mut open = warning_marks(&p, self.now);
        for a in &due {
            let ok = self.step(w, tags, &mut keys, &p, a, &mut open).await;
            if !ok {
                break; // later steps of this user depend on this one
            }
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
                    &format!("warn:{}", step.as_str()),
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

        // 5. What comes later, for the owner.
        let done: BTreeSet<(String, Step)> = w
            .records
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Done | Outcome::Preview))
            .filter_map(|r| step_of(&r.action).map(|s| (r.key.clone(), s)))
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
        match a.action {
            Action::RecordDisabled => {
                tags.set
                    .insert(format!("{DISABLED_TAG_PREFIX}{id}"), now.to_rfc3339());
                w.record(id, "record-disabled", outcome, now, a.why.clone());
                true
            }
            Action::Delete => {
                // Invariant 1: only an Inactive key, checked against the live read.
                if key.as_ref().is_none_or(|k| k.is_active()) {
                    w.record(
                        id,
                        "delete",
                        Outcome::Skipped,
                        now,
                        "the key is Active or gone since the plan",
                    );
                    return true;
                }
                if !preview {
                    if let Err(e) = self.delete_key(&name, id).await {
                        w.record(id, "delete", Outcome::Failed, now, e.to_string());
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
                w.record(id, "delete", outcome, now, a.why.clone());
                true
            }
            Action::Disable => {
                if !key.as_ref().is_some_and(|k| k.is_active()) {
                    w.record(
                        id,
                        "disable",
                        Outcome::Skipped,
                        now,
                        "the key is Inactive or gone since the plan",
                    );
                    return true;
                }
                if !preview {
                    let res = self
                        .iam
                        .update_access_key()
                        .user_name(&name)
                        .access_key_id(id)
                        .status(StatusType::Inactive)
                        .send()
                        .await;
                    if let Err(e) = res {
                        w.record(
                            id,
                            "disable",
                            Outcome::Failed,
                            now,
                            Error::aws("UpdateAccessKey", e).to_string(),
                        );
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
                w.record(id, "disable", outcome, now, a.why.clone());
                true
            }
            Action::Rotate => {
                // Invariant 3, against the live read: an Active key, and a free slot.
                if !key.as_ref().is_some_and(|k| k.is_active()) || keys.len() >= 2 {
                    w.record(id, "rotate", Outcome::Skipped, now, "the user's keys changed since the plan (no free slot or the key is not Active)");
                    return false;
                }
                announce_follow_ups(p, id, open);
                if preview {
                    w.record(id, "rotate", outcome, now, a.why.clone());
                    w.secret_name = Some(secrets::secret_name(&self.account.id, &name));
                    return true;
                }
                match self.rotate(&w.user, open).await {
                    Ok((new_id, secret_name)) => {
                        tags.unset.insert(ROTATING_TAG.to_string());
                        // The mark call wrote the announced steps already.
                        let marks: BTreeSet<String> =
                            warned(&w.user).union(open).cloned().collect();
                        w.user.tags.insert(WARNED_TAG.to_string(), join(&marks));
                        w.record(
                            id,
                            "rotate",
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
                        w.record(id, "rotate", Outcome::Failed, now, e.to_string());
                        false
                    }
                }
            }
            Action::Warn { .. } | Action::Notify { .. } => true,
        }
    }

    /// Creates the successor key and stores it. Returns the new key's id and the secret's name.
    /// Order: mark the user (crash safety), create, store; a failed store deletes the key at once.
    /// On failure, the error and whether nothing is left behind (so the mark can be removed).
    async fn rotate(
        &self,
        user: &User,
        announced: &BTreeSet<String>,
    ) -> std::result::Result<(String, String), (Error, bool)> {
        let name = &user.name;
        let mut mark = vec![tag(ROTATING_TAG, &self.now.to_rfc3339())];
        let marks: BTreeSet<String> = warned(user).union(announced).cloned().collect();
        if !marks.is_empty() {
            mark.push(tag(WARNED_TAG, &join(&marks)));
        }
        self.iam
            .tag_user()
            .user_name(name)
            .set_tags(Some(mark))
            .send()
            .await
            .map_err(|e| (Error::aws("TagUser", e), false))?;
        let out = self
            .iam
            .create_access_key()
            .user_name(name)
            .send()
            .await
            .map_err(|e| (Error::aws("CreateAccessKey", e), true))?;
        let Some(created) = out.access_key else {
            return Err((
                Error::Internal("CreateAccessKey returned no key".into()),
                true,
            ));
        };
        let new_id = created.access_key_id().to_string();
        let secret = SecretString::from(created.secret_access_key().to_string());
        let create_date = created
            .create_date()
            .map(keyguard_aws::to_chrono)
            .unwrap_or(self.now);
        drop(created);
        let target = SecretTarget {
            account: &self.account.id,
            user_name: name,
            user_arn: &user.arn,
            keyguard_arn: &self.principal,
            kms_key_id: self.r.kms_key_id.as_deref(),
        };
        let stored = secrets::store(&self.sm, &target, &new_id, &secret, create_date).await;
        drop(secret);
        match stored {
            Ok(secret_name) => Ok((new_id, secret_name)),
            // Invariant 6: IAM showed the secret once and it is lost now; the key must go.
            Err(store_err) => match self.delete_key(name, &new_id).await {
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

    async fn delete_key(&self, user: &str, id: &str) -> Result<()> {
        self.iam
            .delete_access_key()
            .user_name(user)
            .access_key_id(id)
            .send()
            .await
            .map_err(|e| Error::aws("DeleteAccessKey", e))?;
        Ok(())
    }

    async fn write_tags(&self, user: &str, tags: &TagChanges) -> Result<()> {
        if self.dry_run {
            return Ok(());
        }
        if !tags.set.is_empty() {
            self.iam
                .tag_user()
                .user_name(user)
                .set_tags(Some(tags.set.iter().map(|(k, v)| tag(k, v)).collect()))
                .send()
                .await
                .map_err(|e| Error::aws("TagUser", e))?;
        }
        let unset: Vec<String> = tags
            .unset
            .iter()
            .filter(|k| !tags.set.contains_key(*k))
            .cloned()
            .collect();
        if !unset.is_empty() {
            self.iam
                .untag_user()
                .user_name(user)
                .set_tag_keys(Some(unset))
                .send()
                .await
                .map_err(|e| Error::aws("UntagUser", e))?;
        }
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

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder()
        .key(k)
        .value(v)
        .build()
        .expect("key and value are set")
}

fn join(marks: &BTreeSet<String>) -> String {
    marks.iter().cloned().collect::<Vec<_>>().join(" ")
}

fn step_of(action: &str) -> Option<Step> {
    match action {
        "rotate" => Some(Step::Rotate),
        "disable" => Some(Step::Disable),
        "delete" => Some(Step::Delete),
        _ => None,
    }
}

/// Who hears about `user`: the owner tag when it is an address, else the account's email, else
/// the first administrator.
fn owner_of(r: &Remediator, user: &User, account: &Account) -> std::result::Result<String, String> {
    let tag = user.tag(&r.settings.owner_email_tag);
    if let Some(t) = tag.filter(|t| notices::valid_address(t)) {
        return Ok(t.trim().to_string());
    }
    let fallback = account
        .email
        .clone()
        .filter(|e| notices::valid_address(e))
        .or_else(|| r.notices.admins.first().cloned());
    match (tag, fallback) {
        (_, Some(f)) => Ok(f),
        (Some(bad), None) => Err(format!(
            "the {} tag {bad:?} is not an address and there is no fallback",
            r.settings.owner_email_tag
        )),
        (None, None) => Err(format!(
            "no {} tag, no account email, no admin address",
            r.settings.owner_email_tag
        )),
    }
}

fn user_notice(w: &Work, region: &str) -> UserNotice {
    let item = |r: &ActionRecord| Item {
        key: r.key.clone(),
        action: r.action.trim_start_matches("warn:").to_string(),
        date: day(r.date),
        why: r.why.clone(),
    };
    let quiet = |r: &&ActionRecord| r.action != "record-disabled";
    UserNotice {
        name: w.user.name.clone(),
        done: w
            .records
            .iter()
            .filter(quiet)
            .filter(|r| matches!(r.outcome, Outcome::Done | Outcome::Preview))
            .map(item)
            .collect(),
        failed: w
            .records
            .iter()
            .filter(|r| r.outcome == Outcome::Failed)
            .map(item)
            .collect(),
        warnings: w
            .records
            .iter()
            .filter(|r| r.outcome == Outcome::Warned)
            .map(item)
            .collect(),
        coming: w.coming.clone(),
        read_command: w
            .secret_name
            .as_ref()
            .map(|n| secrets::read_command(n, region)),
        secret_name: w.secret_name.clone(),
    }
}

/// Sends the run's notices for one account: one email per owner, one digest, and the events.
async fn notify(
    r: &Remediator,
    account: &Account,
    works: &[Work],
    report: &mut AccountReport,
    preview: bool,
    now: DateTime<Utc>,
) -> Result<()> {
    let run_at = now.format("%Y-%m-%d %H:%M UTC").to_string();
    let tag = if preview {
        "[keyguard preview] "
    } else {
        "[keyguard] "
    };
    let mut owned = Vec::new();
    let mut digest_users = Vec::new();
    for w in works {
        let region = r.sdk.region().map_or("us-east-1", |r| r.as_ref());
        let n = user_notice(w, region);
        let owner = owner_of(r, &w.user, account);
        if !w.records.is_empty() {
            digest_users.push(DigestUser {
                name: w.user.name.clone(),
                owner: owner.clone().unwrap_or_else(|e| format!("nobody: {e}")),
                rows: w
                    .records
                    .iter()
                    .map(|x| DigestRow {
                        key: x.key.clone(),
                        action: x.action.clone(),
                        outcome: x.outcome.as_str().to_string(),
                        date: day(x.date),
                        why: x.why.clone(),
                    })
                    .collect(),
            });
        }
        if n.is_empty() {
            continue;
        }
        match owner {
            Ok(o) => owned.push((o, n)),
            Err(e) => report
                .notes
                .push(format!("{}: owner not notified: {e}", w.user.name)),
        }
    }

    if let (Some(bus), false) = (&r.notices.event_bus, report.actions.is_empty()) {
        let events = aws_sdk_eventbridge::Client::new(&r.sdk);
        let refused = notices::publish(&events, bus, &account.id, &report.actions, preview).await?;
        if refused > 0 {
            report
                .notes
                .push(format!("EventBridge refused {refused} event(s)"));
        }
    }

    let Some(sender) = &r.notices.sender else {
        if !owned.is_empty() {
            report
                .notes
                .push("no sender address configured (NOTICE_SENDER): no email sent".into());
        }
        return Ok(());
    };
    let templates = notices::Templates::get()?;
    let ses = aws_sdk_sesv2::Client::new(&r.sdk);
    for (owner, users) in by_owner(owned) {
        let steps: usize = users
            .iter()
            .map(|u| u.done.len() + u.failed.len() + u.warnings.len())
            .sum();
        let notice = OwnerNotice {
            subject: format!(
                "{tag}{steps} access key action(s) for your IAM users in {}",
                account.id
            ),
            preview,
            account: account.id.clone(),
            account_name: account.name.clone(),
            owner: owner.clone(),
            run_at: run_at.clone(),
            rotation_period: r.settings.rotation_period,
            installation_grace_period: r.settings.installation_grace_period,
            recovery_grace_period: r.settings.recovery_grace_period,
            users,
        };
        let (html, text) = templates.render("owner", &notice)?;
        match notices::send(
            &ses,
            sender,
            std::slice::from_ref(&owner),
            &notice.subject,
            &html,
            &text,
        )
        .await
        {
            Ok(()) => report.emails += 1,
            Err(e) => report
                .notes
                .push(format!("notice to {owner} not sent: {e}")),
        }
    }
    if !r.notices.admins.is_empty()
        && (!digest_users.is_empty() || report.error.is_some() || !report.notes.is_empty())
    {
        let count = |o: Outcome| report.actions.iter().filter(|a| a.outcome == o).count();
        let digest = Digest {
            subject: format!(
                "{tag}account {}: {} done, {} failed",
                account.id,
                count(Outcome::Done) + count(Outcome::Preview),
                count(Outcome::Failed)
            ),
            preview,
            account: account.id.clone(),
            account_name: account.name.clone(),
            run_at,
            done: count(Outcome::Done) + count(Outcome::Preview),
            failed: count(Outcome::Failed),
            warned: count(Outcome::Warned),
            examined: report.examined,
            error: report.error.clone(),
            users: digest_users,
            notes: report.notes.clone(),
        };
        let (html, text) = templates.render("digest", &digest)?;
        notices::send(
            &ses,
            sender,
            &r.notices.admins,
            &digest.subject,
            &html,
            &text,
        )
        .await?;
        report.emails += 1;
    }
    Ok(())
}

/// Re-enables a disabled key still inside its recovery grace (the incident runbook: "pipeline X
/// broke after the key was disabled"), and records the restore so that the key gets a fresh
/// installation grace before keyguard disables it again. `dry_run` only checks.
pub async fn restore(
    r: &Remediator,
    account: &str,
    user_name: &str,
    key_id: &str,
    dry_run: bool,
    now: DateTime<Utc>,
) -> Result<ActionRecord> {
    let cfg = for_account(&r.sdk, &r.caller, account, &r.role).await?;
    let iam = aws_sdk_iam::Client::new(&cfg);
    let user = user_by_name(&iam, user_name)
        .await?
        .ok_or_else(|| Error::NotFound(format!("user {user_name:?} in {account}")))?;
    let keys = read_keys_live(&iam, user_name)
        .await?
        .ok_or_else(|| Error::NotFound(format!("user {user_name:?} in {account}")))?;
    let delete_due = match restorable(&user, &keys, key_id, &r.settings, now) {
        Restorable::Yes { delete_due } => delete_due,
        Restorable::No(why) => return Err(Error::Refused(why)),
    };
    let until = now + chrono::Duration::days(r.settings.installation_grace_period.into());
    let why = format!(
        "re-enabled by an operator{}; keyguard will not disable it before {}",
        delete_due
            .map(|d| format!(" (it was to be deleted {})", day(d)))
            .unwrap_or_default(),
        day(until)
    );
    if !dry_run {
        iam.update_access_key()
            .user_name(user_name)
            .access_key_id(key_id)
            .status(StatusType::Active)
            .send()
            .await
            .map_err(|e| Error::aws("UpdateAccessKey", e))?;
        iam.tag_user()
            .user_name(user_name)
            .tags(tag(
                &format!("{RESTORED_TAG_PREFIX}{key_id}"),
                &now.to_rfc3339(),
            ))
            .send()
            .await
            .map_err(|e| Error::aws("TagUser", e))?;
        iam.untag_user()
            .user_name(user_name)
            .tag_keys(format!("{DISABLED_TAG_PREFIX}{key_id}"))
            .send()
            .await
            .map_err(|e| Error::aws("UntagUser", e))?;
    }
    info!(account, user = user_name, key = %mask_key_id(key_id), dry_run, "restore");
    Ok(ActionRecord {
        user: user_name.to_string(),
        key: mask_key_id(key_id),
        action: "restore".into(),
        outcome: if dry_run {
            Outcome::Preview
        } else {
            Outcome::Done
        },
        date: now,
        why,
        secret_name: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NoticeConfig;

    fn remediator(admins: &[&str]) -> Remediator {
        Remediator {
            sdk: aws_config::SdkConfig::builder().build(),
            caller: keyguard_aws::sdk::Caller {
                account: "111122223333".into(),
                partition: "aws".into(),
                arn: "arn:aws:sts::111122223333:assumed-role/r/s".into(),
            },
            settings: keyguard_core::Settings::default(),
            role: keyguard_aws::sdk::RoleSpec {
                role_name: "keyguard-member".into(),
                session_name: "keyguard".into(),
                org_role_arn: None,
            },
            polling: Default::default(),
            notices: NoticeConfig {
                sender: Some("k@example.com".into()),
                admins: admins.iter().map(|a| a.to_string()).collect(),
                event_bus: None,
            },
            kms_key_id: None,
        }
    }

    #[test]
    fn owners_fall_back_from_tag_to_account_to_admin() {
        let mut user = User {
            name: "u".into(),
            ..User::default()
        };
        let mut account = Account {
            id: "111122223333".into(),
            name: "prod".into(),
            email: Some("aws-prod@example.com".into()),
        };
        let r = remediator(&["admins@example.com"]);
        user.tags
            .insert("owner-email".into(), " dev@example.com ".into());
        assert_eq!(owner_of(&r, &user, &account).unwrap(), "dev@example.com");
        user.tags
            .insert("owner-email".into(), "the dev team".into());
        assert_eq!(
            owner_of(&r, &user, &account).unwrap(),
            "aws-prod@example.com"
        );
        account.email = None;
        assert_eq!(owner_of(&r, &user, &account).unwrap(), "admins@example.com");
        let err = owner_of(&remediator(&[]), &user, &account).unwrap_err();
        assert!(err.contains("\"the dev team\" is not an address"), "{err}");
        user.tags.clear();
        let err = owner_of(&remediator(&[]), &user, &account).unwrap_err();
        assert!(err.contains("no owner-email tag"), "{err}");
    }

    #[test]
    fn the_keyguard_principal_is_the_member_role_or_the_callers_role() {
        let r = remediator(&[]);
        assert_eq!(
            r.caller.principal_in("444455556666", &r.role),
            "arn:aws:iam::444455556666:role/keyguard-member"
        );
        assert_eq!(
            r.caller.principal_in("111122223333", &r.role),
            "arn:aws:iam::111122223333:role/r"
        );
    }
}
