//! The owner's warnings: each step is announced once, by its warning when its
//! PendingActionWarnPeriod window opens, or by the notice of the step before it; what was
//! announced is one of keyguard's records (mirrored in the `keyguard:warned` tag).

use std::collections::BTreeSet;

use keyguard_core::{warned, warning_mark, Action, Plan, WARNED_TAG};

use crate::email_templates::day;
use crate::summary::{ActionKind, Outcome};
use crate::user::run::{Ctx, TagChanges, UserRun};

impl Ctx<'_> {
    /// Records the warnings whose window opened and that were not sent yet (`sent`: the marks
    /// before this run's steps), and writes the warned record when something new was announced
    /// (a quiet day writes nothing; marks of past days are dropped then).
    pub(super) fn warn(
        &self,
        w: &mut UserRun,
        tags: &mut TagChanges,
        p: &Plan,
        mut sent: BTreeSet<String>,
        open: &BTreeSet<String>,
    ) {
        for a in p.warnings(self.now).filter(|a| !a.projected) {
            if let Action::Warn { step, step_due } = a.action {
                let mark = warning_mark(step, step_due);
                if sent.contains(&mark) {
                    continue;
                }
                w.record(
                    &a.key_id,
                    ActionKind::Warn(step),
                    Outcome::Warned,
                    step_due,
                    a.why.clone(),
                );
                w.told_now.insert((a.key_id.clone(), step));
                if step != keyguard_core::Step::Rotate {
                    w.described.insert(a.key_id.clone());
                }
                sent.insert(mark);
            }
        }
        let before = warned(&w.user);
        if !open.is_subset(&before) && !tags.set.contains_key(WARNED_TAG) {
            let today = day(self.now);
            let keep: BTreeSet<String> = before
                .union(open)
                .filter(|m| m.rsplit('@').next().is_some_and(|d| d >= today.as_str()))
                .cloned()
                .collect();
            tags.set.insert(WARNED_TAG.to_string(), join(&keep));
        }
    }
}

/// The steps that follow a step done on `key_id` in this run are announced by its notice (which
/// lists them with their dates): mark them as warned.
pub(super) fn announce_follow_ups(p: &Plan, key_id: &str, open: &mut BTreeSet<String>) {
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

/// The warned record's value: the marks, space-separated.
pub(super) fn join(marks: &BTreeSet<String>) -> String {
    marks.iter().cloned().collect::<Vec<_>>().join(" ")
}
