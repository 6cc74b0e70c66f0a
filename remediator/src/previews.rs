//! The DryRun previews owners were already sent, in the central state table at
//! `preview#<account>#<user>` / `<key>#<step>` (the body the step's date): a planned step is
//! previewed to its owner once, and again only when the step or its date changes. DryRun is not
//! spam.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use keyguard_aws::state::StateTable;

use crate::email_templates::{Item, UserNotice};
use crate::error::Result;

/// How long a preview record is kept (a step previewed once is not previewed again meanwhile
/// unless its date changes).
const PREVIEW_DAYS: i64 = 90;

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("plain data serializes")
}

/// The previews sent, in one state table.
pub struct Previews<'a>(pub &'a StateTable);

impl Previews<'_> {
    /// `notice` without the preview items (steps done in preview, warnings) the owner was
    /// already sent for the same key, step and date; `None` when nothing new is left.
    pub async fn fresh(&self, account: &str, notice: &UserNotice) -> Result<Option<UserNotice>> {
        let sent: BTreeMap<String, String> = self
            .0
            .query(&format!("preview#{account}#{}", notice.name), "")
            .await?
            .into_iter()
            .map(|i| (i.sk, i.body.unwrap_or_default()))
            .collect();
        let new = |items: &[Item]| -> Vec<Item> {
            items
                .iter()
                .filter(|i| {
                    sent.get(&format!("{}#{}", i.key, i.action))
                        .is_none_or(|d| d != &json(&i.date))
                })
                .cloned()
                .collect()
        };
        let fresh = UserNotice {
            done: new(&notice.done),
            warnings: new(&notice.warnings),
            ..notice.clone()
        };
        Ok(
            (!fresh.done.is_empty() || !fresh.warnings.is_empty() || !fresh.failed.is_empty())
                .then_some(fresh),
        )
    }

    /// Records the preview items of `notice` as sent.
    pub async fn remember(
        &self,
        account: &str,
        notice: &UserNotice,
        now: DateTime<Utc>,
    ) -> Result<()> {
        for i in notice.done.iter().chain(&notice.warnings) {
            self.0
                .put(
                    &format!("preview#{account}#{}", notice.name),
                    &format!("{}#{}", i.key, i.action),
                    &json(&i.date),
                    now + Duration::days(PREVIEW_DAYS),
                )
                .await?;
        }
        Ok(())
    }
}
