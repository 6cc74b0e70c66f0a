//! The live re-read: a user's keys as IAM has them now, read right before the plan and again
//! right before each disable and delete, so that a stale report, a person's change or another
//! run's write since is never acted on.

use keyguard_aws::inventory::{last_used, list_keys, read_keys_live, with_key_ids};
use keyguard_core::{plan, AccessKey, Action, KeyStatus, Plan, UserRecord};

use crate::error::Result;
use crate::user::run::{Ctx, UserRun};

impl Ctx<'_> {
    /// The user's keys now: the report's slots with their ids (when the user came from the
    /// credential report), else ListAccessKeys. `None` when the user no longer exists.
    pub(super) async fn read_keys(
        &self,
        w: &UserRun,
        slots: Option<Vec<AccessKey>>,
    ) -> Result<Option<Vec<AccessKey>>> {
        Ok(match slots {
            Some(keys) => {
                let record = UserRecord {
                    user: w.user.clone(),
                    keys,
                };
                with_key_ids(&self.iam, &record).await?
            }
            None => read_keys_live(&self.iam, &w.user.name).await?,
        })
    }

    /// The plan from `keys`. A disable of an active key decided on the report's last use (when
    /// `from_report`) is planned again on IAM's live last use (the report can be four hours old).
    pub(super) async fn plan_live(
        &self,
        w: &UserRun,
        keys: &mut [AccessKey],
        from_report: bool,
    ) -> Result<Plan> {
        let settings = &self.r.settings;
        let p = plan(&w.user, keys, settings, self.now);
        let active = |keys: &[AccessKey], id: &str| {
            keys.iter()
                .any(|k| k.id.as_deref() == Some(id) && k.is_active())
        };
        if !(from_report
            && p.due(self.now)
                .any(|a| a.action == Action::Disable && active(keys, &a.key_id)))
        {
            return Ok(p);
        }
        for k in keys.iter_mut().filter(|k| k.is_active()) {
            if let Some(id) = k.id.clone() {
                k.last_used = last_used(&self.iam, &id).await?;
            }
        }
        Ok(plan(&w.user, keys, settings, self.now))
    }

    /// The key's status now (one ListAccessKeys); `None` when it (or the user) is gone.
    pub(super) async fn status_now(&self, user: &str, id: &str) -> Result<Option<KeyStatus>> {
        Ok(list_keys(&self.iam, user)
            .await?
            .and_then(|ks| ks.into_iter().find(|k| k.id == id))
            .map(|k| k.status))
    }

    /// Reads the key's status and last use again and plans again with them: `Some(why)` when the
    /// disable is no longer due (re-enabled, deleted, or used since the plan).
    pub(super) async fn still_due_disable(
        &self,
        w: &UserRun,
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
        let used = last_used(&self.iam, id).await?;
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
}
