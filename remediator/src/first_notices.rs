//! When each step's owner was first told of it: the record `MinimumNoticeDays` counts from. One
//! item per user in the central state table, `notice#<account>` / `<user>`, with one number per
//! (key, step), `<key>#<step>` = the epoch second of the first notice; the run that told the
//! owner (its warning, its preview, or the notice of the step before listing it) sets each once
//! (`if_not_exists`: the earliest stays), in one UpdateItem, and a run reads the item (one
//! GetItem) before a disable or delete. Only keyguard's roles write the table, so a record is
//! keyguard's word; a missing one can only delay a step.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use keyguard_aws::state::StateTable;
use keyguard_core::Step;

use crate::error::Result;

/// How long the item is kept after its last write.
const NOTICE_DAYS: i64 = 400;

/// When each (key, step) of one user was first told.
pub(crate) type Told = BTreeMap<(String, Step), DateTime<Utc>>;

fn pk(account: &str) -> String {
    format!("notice#{account}")
}

fn step_of(name: &str) -> Option<Step> {
    [Step::Rotate, Step::Disable, Step::Delete]
        .into_iter()
        .find(|s| s.as_str() == name)
}

/// The first notices of one user's steps in one state table.
pub(crate) struct FirstNotices<'a>(pub &'a StateTable);

impl FirstNotices<'_> {
    /// Every (key, step) of `user` its owner was told of, and when first.
    pub(crate) async fn of(&self, account: &str, user: &str) -> Result<Told> {
        let mut out = Told::new();
        let Some(item) = self.0.get(&pk(account), user).await? else {
            return Ok(out);
        };
        for (name, secs) in item.numbers {
            let Some((key, step)) = name.rsplit_once('#') else {
                continue;
            };
            if let (Some(step), Some(at)) = (step_of(step), DateTime::from_timestamp(secs, 0)) {
                out.insert((key.to_string(), step), at);
            }
        }
        Ok(out)
    }

    /// Records that `user`'s owner was told of each of `steps` at `at`, unless an earlier notice
    /// of it is recorded (that one stays).
    pub(crate) async fn record(
        &self,
        account: &str,
        user: &str,
        steps: &[(String, Step)],
        at: DateTime<Utc>,
    ) -> Result<()> {
        let names: Vec<String> = steps
            .iter()
            .map(|(key, step)| format!("{key}#{}", step.as_str()))
            .collect();
        let numbers: Vec<(&str, i64)> =
            names.iter().map(|n| (n.as_str(), at.timestamp())).collect();
        self.0
            .set_numbers_once(
                &pk(account),
                user,
                &numbers,
                at.max(Utc::now()) + Duration::days(NOTICE_DAYS),
            )
            .await?;
        Ok(())
    }
}
