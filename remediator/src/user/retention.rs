//! A rotation's secret, once its key is installed: deleted a set number of days after keyguard
//! first saw the key used (`SECRET_DELETE_DAYS_AFTER_USE`), restorable for 7 days; the next
//! rotation restores it. Secrets cost $0.40 a month each.

use chrono::SubsecRound;
use keyguard_aws::secrets;
use keyguard_core::{mask_key_id, AccessKey, FIRST_USED_TAG_PREFIX};

use crate::email_templates::day;
use crate::error::Result;
use crate::summary::{ActionKind, Outcome};
use crate::user::run::{Ctx, TagChanges, UserRun};

impl Ctx<'_> {
    /// Deletes the user's secret `days` after keyguard first saw the key it holds used (the
    /// first sighting is recorded; the deletion is restorable for 7 days, and the next rotation
    /// restores the secret). Nothing while the key is unused or the secret holds no current key.
    pub(super) async fn secret_retention(
        &self,
        w: &mut UserRun,
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
        if !w.writer.may_start() {
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
}
