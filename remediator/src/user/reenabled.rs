//! A key keyguard disabled that someone set Active again without `keyguard restore` (CloudTrail's
//! `UpdateAccessKey` through EventBridge): against the policy, so its owner and the admin are told
//! at once (a `re-enabled` record, `warned`, in the owner's notice, the digest and the events), and
//! keyguard's records follow it as they follow a restore: the disable record goes, a restore
//! record gives the key a fresh installation grace before keyguard disables it again. A key
//! keyguard had not disabled (no disable record: a restore, or a key a person disabled and
//! re-enabled before keyguard saw it) is left alone.

use keyguard_core::{mask_key_id, AccessKey, DISABLED_TAG_PREFIX, RESTORED_TAG_PREFIX};

use crate::email_templates::day;
use crate::summary::{ActionKind, Outcome};
use crate::user::run::{Ctx, TagChanges, UserRun};

impl Ctx<'_> {
    /// Answers a key set Active by `by` (see the module's doc), on the keys read live.
    pub(super) fn reenabled(
        &self,
        w: &mut UserRun,
        tags: &mut TagChanges,
        keys: &[AccessKey],
        key: &str,
        by: &str,
    ) {
        let name = w.user.name.clone();
        let shown = mask_key_id(key);
        let Some(live) = keys.iter().find(|k| k.id.as_deref() == Some(key)) else {
            w.notes
                .push(format!("{name}: {shown} set Active by {by} is gone since"));
            return;
        };
        if !live.is_active() {
            w.notes.push(format!(
                "{name}: {shown} set Active by {by} is Inactive again"
            ));
            return;
        }
        let disabled_key = format!("{DISABLED_TAG_PREFIX}{key}");
        let Some(disabled) = w.user.tags.get(&disabled_key).cloned() else {
            tracing::info!(key = %shown, "set Active, but keyguard had not disabled it");
            return;
        };
        let until =
            self.now + chrono::Duration::days(self.r.settings.installation_grace_period.into());
        tags.unset.insert(disabled_key);
        tags.set
            .insert(format!("{RESTORED_TAG_PREFIX}{key}"), self.now.to_rfc3339());
        w.record(
            key,
            ActionKind::ReEnabled,
            Outcome::Warned,
            self.now,
            format!(
                "set Active again by {by}, not by keyguard restore (keyguard has it disabled since {}): \
                 against the policy; keyguard leaves it active until {} and then disables it again",
                disabled.get(..10).unwrap_or(&disabled),
                day(until)
            ),
        );
    }
}
