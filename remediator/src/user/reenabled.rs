//! A key keyguard disabled that someone set Active again without `keyguard restore` (CloudTrail's
//! `UpdateAccessKey` through EventBridge): against the policy, so its owner and the admin are told
//! at once (a `re-enabled` record, `warned`, in the owner's notice, the digest and the events).
//! keyguard's records follow it: the disable record goes, so the policy disables the key again
//! when it says (the recovery grace then starts again) — no grace is given, or a person could keep
//! a key alive by re-enabling it. A key that was disabled because it leaked is disabled again at
//! once. A key keyguard had not disabled (no disable record: a restore, or a key a person disabled
//! and re-enabled before keyguard saw it) is left alone; so is one gone or Inactive again since.

use keyguard_aws::iam;
use keyguard_core::{mask_key_id, AccessKey, KeyStatus, DISABLED_TAG_PREFIX, LEAKED_TAG_PREFIX};
use tracing::info;

use crate::summary::{ActionKind, Outcome};
use crate::user::run::{Ctx, TagChanges, UserRun};

impl Ctx<'_> {
    /// Answers a key set Active by `by` (see the module's doc), on the keys read live.
    pub(super) async fn reenabled(
        &self,
        w: &mut UserRun,
        tags: &mut TagChanges,
        keys: &mut [AccessKey],
        key: &str,
        by: &str,
    ) {
        let shown = mask_key_id(key);
        let Some(live) = keys.iter_mut().find(|k| k.id.as_deref() == Some(key)) else {
            info!(key = %shown, "set Active, and gone since");
            return;
        };
        if !live.is_active() {
            info!(key = %shown, "set Active, and Inactive again since");
            return;
        }
        let disabled_key = format!("{DISABLED_TAG_PREFIX}{key}");
        let Some(disabled) = w.user.tags.get(&disabled_key).cloned() else {
            info!(key = %shown, "set Active, but keyguard had not disabled it");
            return;
        };
        let since = disabled.get(..10).unwrap_or(&disabled).to_string();
        let now = self.now;
        let leaked = w
            .user
            .tags
            .contains_key(&format!("{LEAKED_TAG_PREFIX}{key}"));
        if !leaked {
            tags.unset.insert(disabled_key);
            w.record(
                key,
                ActionKind::ReEnabled,
                Outcome::Warned,
                now,
                format!(
                    "set Active again by {by}, not by keyguard restore (keyguard had it disabled \
                     since {since}): against the policy; keyguard disables it again when the \
                     policy says, and its recovery grace starts again then"
                ),
            );
            return;
        }
        w.record(
            key,
            ActionKind::ReEnabled,
            Outcome::Warned,
            now,
            format!(
                "set Active again by {by}, not by keyguard restore: the key leaked and was \
                 disabled {since}"
            ),
        );
        if !self.dry_run {
            if let Err(e) =
                iam::set_key_status(&self.iam, &w.user.name, key, KeyStatus::Inactive).await
            {
                w.record(
                    key,
                    ActionKind::Disable,
                    Outcome::Failed,
                    now,
                    e.to_string(),
                );
                return;
            }
            live.status = KeyStatus::Inactive;
        }
        tags.set.insert(disabled_key, now.to_rfc3339());
        w.record(
            key,
            ActionKind::Disable,
            if self.dry_run {
                Outcome::Preview
            } else {
                Outcome::Done
            },
            now,
            "the key leaked and was set Active again: disabled again at once",
        );
    }
}
