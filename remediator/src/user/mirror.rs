//! keyguard's records of the user written at the end of its run (fenced by the lease), and the
//! user's tags rewritten as their mirror for people (`docs/invariants.md#invariant-5`: the tags
//! are never read while the state table is deployed).

use std::collections::BTreeMap;

use keyguard_aws::iam;
use keyguard_aws::state::StateTable;
use keyguard_core::Records;

use crate::error::Result;
use crate::user::run::{Ctx, TagChanges, UserRun};

impl Ctx<'_> {
    /// Replaces keyguard's records of the user with `next`, fenced by the lease (a refusal makes
    /// the run lost: [`crate::user::Writer`]).
    pub(super) async fn put_records(
        &self,
        table: &StateTable,
        w: &mut UserRun,
        next: Records,
    ) -> Result<()> {
        w.writer.put_records(table, &next, self.now).await?;
        w.kept = Some(next);
        Ok(())
    }

    /// Writes keyguard's records (the table) with `tags` applied, when they changed.
    pub(super) async fn write_records(&self, w: &mut UserRun, tags: &TagChanges) -> Result<()> {
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

    /// Writes the user's tags: with the state table, the mirror of keyguard's records (what a
    /// person or a forger wrote under keyguard's tag names is replaced); without it, the changes,
    /// which are then the records themselves. At most two calls.
    pub(super) async fn write_mirror(&self, w: &UserRun, tags: &TagChanges) -> Result<()> {
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
