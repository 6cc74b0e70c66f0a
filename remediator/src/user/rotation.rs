//! A rotation and its repair: the successor key created and stored under keyguard's rotation
//! mark (the mark first, then CreateAccessKey, then the secret; a failed store deletes the key
//! at once), and the repair of a rotation that was interrupted (its leftovers deleted by the next
//! run). `docs/invariants.md#invariant-6`.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{SubsecRound, Utc};
use keyguard_aws::iam;
use keyguard_aws::inventory::{last_used, list_keys};
use keyguard_aws::secrets::{self, SecretTarget};
use keyguard_core::{
    leftovers, mask_key_id, warned, AccessKey, PlannedAction, RotationMark, ROTATING_TAG,
    WARNED_TAG,
};
use tracing::warn;

use crate::error::{Error, Result};
use crate::summary::{ActionKind, Outcome};
use crate::user::run::{Ctx, TagChanges, UserRun};
use crate::user::warnings::{announce_follow_ups, join};

impl Ctx<'_> {
    /// Repairs an interrupted rotation before anything else: its leftovers are the keys created
    /// since keyguard's mark that are not in the secret and were never used (checked live: the
    /// report's last use can be hours old). False when a leftover could not be deleted (the
    /// user's run stops; the mark stays for the next run).
    pub(super) async fn repair(
        &self,
        w: &mut UserRun,
        tags: &mut TagChanges,
        keys: &mut Vec<AccessKey>,
    ) -> Result<bool> {
        let Some(mark) = RotationMark::of(&w.user) else {
            return Ok(true);
        };
        let name = w.user.name.clone();
        let stored = secrets::stored_key_id(&self.sm, &self.account.id, &name).await?;
        for k in keys.iter_mut() {
            if let Some(id) = k.id.clone() {
                if leftovers(&w.user, std::slice::from_ref(k), stored.as_deref()).is_empty() {
                    continue;
                }
                k.last_used = last_used(&self.iam, &id).await?;
            }
        }
        let why = format!(
            "created by an interrupted rotation (attempt {} at {}), never used, secret never stored",
            if mark.attempt.is_empty() { "?" } else { &mark.attempt },
            mark.at.format("%Y-%m-%d %H:%M:%S UTC")
        );
        for id in leftovers(&w.user, keys, stored.as_deref()) {
            if self.dry_run {
                w.record(
                    &id,
                    ActionKind::DeleteOrphan,
                    Outcome::Preview,
                    self.now,
                    &why,
                );
            } else if let Err(e) = iam::delete_access_key(&self.iam, &name, &id).await {
                w.record(
                    &id,
                    ActionKind::DeleteOrphan,
                    Outcome::Failed,
                    self.now,
                    e.to_string(),
                );
                return Ok(false);
            } else {
                w.record(&id, ActionKind::DeleteOrphan, Outcome::Done, self.now, &why);
            }
            keys.retain(|k| k.id.as_deref() != Some(id.as_str()));
        }
        tags.unset.insert(ROTATING_TAG.to_string());
        w.user.tags.remove(ROTATING_TAG);
        Ok(true)
    }

    /// The plan's rotation of `a.key_id`, against the live read (invariant 3 of
    /// `docs/invariants.md`: an Active key, and a free slot); false when it was not done.
    pub(super) async fn rotate_step(
        &self,
        w: &mut UserRun,
        tags: &mut TagChanges,
        keys: &[AccessKey],
        p: &keyguard_core::Plan,
        a: &PlannedAction,
        open: &mut BTreeSet<String>,
    ) -> bool {
        let (now, id) = (self.now, a.key_id.as_str());
        let key = keys.iter().find(|k| k.id.as_deref() == Some(id));
        if !key.is_some_and(|k| k.is_active()) || keys.len() >= 2 {
            w.record(
                id,
                ActionKind::Rotate,
                Outcome::Skipped,
                now,
                "the user's keys changed since the plan (no free slot or the key is not Active)",
            );
            return false;
        }
        if !self.dry_run && self.past_margin() {
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
        // The secret must be this user's before anything is written (a renamed user's old
        // secret is not inherited by the next user of the name).
        match self.foreign_secret(w).await {
            Ok(None) => {}
            Ok(Some(why)) => {
                w.notes.push(format!("{}: {why}", w.user.name));
                w.record(id, ActionKind::Rotate, Outcome::Failed, now, why);
                return false;
            }
            Err(e) => {
                w.record(id, ActionKind::Rotate, Outcome::Failed, now, e.to_string());
                return false;
            }
        }
        announce_follow_ups(p, id, open);
        if self.dry_run {
            w.record(
                id,
                ActionKind::Rotate,
                Outcome::Preview,
                a.due,
                a.why.clone(),
            );
            w.secret_name = Some(secrets::secret_name(&self.account.id, &w.user.name));
            return true;
        }
        match self.rotate(w, keys, open).await {
            Ok((new_id, secret_name)) => {
                tags.unset.insert(ROTATING_TAG.to_string());
                // The mark call wrote the announced steps already.
                let marks: BTreeSet<String> = warned(&w.user).union(open).cloned().collect();
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

    /// Writes the rotation mark (the table's record first, then its mirror tag) with the instant
    /// immediately before CreateAccessKey is called and this run's attempt id.
    async fn mark(&self, w: &mut UserRun, announced: &BTreeSet<String>) -> Result<RotationMark> {
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
        w: &mut UserRun,
        keys: &[AccessKey],
        announced: &BTreeSet<String>,
    ) -> std::result::Result<(String, String), (Error, bool)> {
        let name = w.user.name.clone();
        let mark = self.mark(w, announced).await.map_err(|e| (e, false))?;
        let created = match iam::create_access_key(&self.iam, &name, self.now).await {
            Ok(c) => c,
            Err(e) => return Err(self.after_failed_create(w, keys, &mark, e).await),
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
            user_id: &w.user.user_id,
            readers: &readers,
            keyguard_arn: &self.principal,
            kms_key_id: self.r.kms_key_id.as_deref(),
        };
        // A run paused since the mark may have lost the user meanwhile, and the run that took
        // over deletes this key as a leftover: the secret must not be overwritten with it.
        let stored = match w.writer.confirm(self.r.state.as_ref()).await {
            Ok(()) => secrets::store(&self.sm, &target, &new_id, &created.secret, created.created)
                .await
                .map_err(Error::from),
            Err(e) => Err(e),
        };
        drop(created);
        if w.writer.is_lost() {
            return Err((self.never_stored(&name, &new_id).await, false));
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

    /// A new key this run lost the user before storing: it goes (the run that took over may
    /// have deleted it already as a leftover; only this run ever saw its secret).
    async fn never_stored(&self, name: &str, new_id: &str) -> Error {
        let deleted = match iam::delete_access_key(&self.iam, name, new_id).await {
            Ok(()) => "deleted again".to_string(),
            Err(keyguard_aws::Error::Api { code: Some(c), .. }) if c == "NoSuchEntity" => {
                "deleted by the run that took over".to_string()
            }
            Err(e) => format!("not deleted ({e}); the run that holds the user deletes it"),
        };
        Error::LeaseLost(format!(
            "{name}: this run's lease lapsed or was taken over before the new key {} was \
             stored; the key was {deleted}",
            mask_key_id(new_id)
        ))
    }

    /// After CreateAccessKey failed with `e`: cleans up ([`Ctx::found_after_failed_create`])
    /// and says whether the mark can go. Only a refusal that no attempt can have got past
    /// (access denied, the user gone) proves nothing was created; any other failure (a lost
    /// answer whose retry met the two-key limit, a timeout, a 5xx) keeps the mark, and the next
    /// run repairs from a fresh list, which also sees a key IAM listed late.
    async fn after_failed_create(
        &self,
        w: &mut UserRun,
        keys: &[AccessKey],
        mark: &RotationMark,
        e: keyguard_aws::Error,
    ) -> (Error, bool) {
        let found_none = self.found_after_failed_create(w, keys, mark).await;
        if w.writer.is_lost() {
            let name = &w.user.name;
            return (
                Error::LeaseLost(format!(
                    "{name}: CreateAccessKey failed ({e}), and this run's lease lapsed or was \
                     taken over meanwhile; it leaves the user to that run"
                )),
                false,
            );
        }
        let refused = matches!(&e, keyguard_aws::Error::AccessDenied { .. })
            || matches!(&e, keyguard_aws::Error::Api { code: Some(c), .. } if c == "NoSuchEntity");
        (Error::Aws(e), found_none && refused)
    }

    /// Lists the keys again and deletes a key that is new since `before`, created since the
    /// mark and never used (its answer was lost, so nobody has its secret). True when nothing is
    /// left behind.
    ///
    /// It deletes only while the lease is still this run's: a run paused inside CreateAccessKey
    /// past its lease would otherwise take the key of the run that took over (stored, not used
    /// yet) for its own lost one.
    async fn found_after_failed_create(
        &self,
        w: &mut UserRun,
        before: &[AccessKey],
        mark: &RotationMark,
    ) -> bool {
        let name = w.user.name.clone();
        let name = name.as_str();
        let Ok(Some(listed)) = list_keys(&self.iam, name).await else {
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
            if w.writer.confirm(self.r.state.as_ref()).await.is_err() {
                return false;
            }
            let unused = matches!(last_used(&self.iam, &k.id).await, Ok(None));
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
}

#[cfg(test)]
mod tests {
    //! The executor against mocked clients (aws-smithy-mocks): the order of writes and what a
    //! failure at each leaves behind, without the rig. The rig tests (tests/it/remediator.rs)
    //! cover the same paths against IAM's real behaviour.

    use super::*;
    use crate::function::Remediator;
    use crate::requests::Forced;
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
    use keyguard_core::{Account, User};

    fn remediator() -> Remediator {
        let mut r = Remediator::for_tests();
        r.settings.dry_run = false;
        r.no_lease = true;
        r.role.role_name = "keyguard-member-remediator".into();
        r
    }

    /// DescribeSecret: no secret of the user's name yet.
    fn no_secret_yet() -> aws_smithy_mocks::Rule {
        use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretError;
        use aws_sdk_secretsmanager::types::error::ResourceNotFoundException;
        mock!(aws_sdk_secretsmanager::Client::describe_secret).then_error(|| {
            DescribeSecretError::ResourceNotFoundException(
                ResourceNotFoundException::builder().build(),
            )
        })
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
        let described = no_secret_yet();
        let sm = mock_client!(
            aws_sdk_secretsmanager,
            RuleMode::MatchAny,
            [&described, &created, &policy, &put]
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
            cfg: aws_config::SdkConfig::builder().build(),
            trail_pace: keyguard_aws::usage::pacer(),
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
