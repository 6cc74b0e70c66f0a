//! The steps for a key known to have leaked, due now: its successor (only when a reader other
//! than the user is configured and a slot is free: whoever holds the leaked key must not read the
//! new one), then the leaked key disabled at once, without the installation grace
//! (`docs/invariants.md#invariant-2` gives way: a leaked key is not left working for ten days).

use keyguard_aws::secrets;
use keyguard_core::{mask_key_id, AccessKey, Action, PlannedAction};

use crate::error::{Error, Result};
use crate::user::run::{Ctx, UserRun};

impl Ctx<'_> {
    /// The steps for a leaked key, due now: its successor (only when a reader other than the
    /// user is configured and a slot is free: whoever holds the leaked key must not read the new
    /// one), then the leaked key disabled at once, without the installation grace.
    pub(super) fn leaked_steps(
        &self,
        w: &mut UserRun,
        keys: &[AccessKey],
        named: Option<&str>,
        rotate: bool,
        because: Option<&str>,
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
            why: match because {
                Some(b) => format!("{b}: {}", why.trim_start_matches("the key leaked: ")),
                None => why.into(),
            },
            successor: None,
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
        if !rotate {
            // EXPOSED_KEY_RESPONSE=disable: the key is disabled, no successor is made.
        } else if readers.is_empty() {
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
}
