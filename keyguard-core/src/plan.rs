//! The dated lifecycle of one user's keys: what keyguard will do, and when.
//!
//! A plan is recomputed from IAM on every run (`docs/invariants.md#invariant-5`), so it only ever
//! needs the keys as they are now plus keyguard's records of the user (when each key was
//! disabled or restored, which warnings went out), which the executor puts on the user it plans
//! for ([`crate::with_records`]). Steps that can happen only after another
//! step (the old key's disable after a rotation that has not happened yet) are marked
//! `projected`: executors act only on actions that are due and not projected.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::evaluate::{unused_from, Exemption};
use crate::model::{AccessKey, User};
use crate::settings::Settings;

/// A step of the lifecycle that changes IAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Create the successor key (and store its secret).
    Rotate,
    /// Set the key Inactive; it can still be re-enabled.
    Disable,
    /// Delete an Inactive key.
    Delete,
}

impl Step {
    /// Lower-case name for tables and notices.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Rotate => "rotate",
            Step::Disable => "disable",
            Step::Delete => "delete",
        }
    }
}

/// One thing to do about one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Tell the owner that `step` will happen at `step_due`.
    Warn {
        /// The coming step.
        step: Step,
        /// When it will happen.
        step_due: DateTime<Utc>,
    },
    /// Create a successor for this key.
    Rotate,
    /// Disable this key, and record when in the user tag `keyguard:disabled:<id>`.
    Disable,
    /// Delete this Inactive key.
    Delete,
    /// This key is Inactive but keyguard has no record of when it was disabled: record `now`, so
    /// its recovery grace starts today rather than at an unknown moment.
    RecordDisabled,
    /// Tell the owner that `step` happened.
    Notify {
        /// The step that was done.
        step: Step,
    },
}

impl Action {
    /// The IAM step this action performs or announces.
    pub fn step(&self) -> Option<Step> {
        match self {
            Action::Warn { step, .. } | Action::Notify { step } => Some(*step),
            Action::Rotate => Some(Step::Rotate),
            Action::Disable => Some(Step::Disable),
            Action::Delete => Some(Step::Delete),
            Action::RecordDisabled => None,
        }
    }

    /// Short name for tables: `warn:rotate`, `rotate`, `record-disabled`, `notify:delete`…
    pub fn name(&self) -> String {
        match self {
            Action::Warn { step, .. } => format!("warn:{}", step.as_str()),
            Action::Notify { step } => format!("notify:{}", step.as_str()),
            Action::RecordDisabled => "record-disabled".into(),
            other => other.step().map(Step::as_str).unwrap_or_default().into(),
        }
    }

    /// Order of actions falling on the same instant: free a slot before filling it.
    fn rank(&self) -> u8 {
        match self {
            Action::Warn { .. } => 0,
            Action::RecordDisabled => 1,
            Action::Delete => 2,
            Action::Disable => 3,
            Action::Rotate => 4,
            Action::Notify { .. } => 5,
        }
    }
}

/// An action on a key, with its date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedAction {
    /// The full access key id the action is about (mask it before display).
    pub key_id: String,
    /// What to do.
    pub action: Action,
    /// When. An action is due at a run whose `now >= due`.
    pub due: DateTime<Utc>,
    /// True when the action can only happen after an earlier step of this plan has been done
    /// (a later run will recompute it from IAM); executors never act on projected actions.
    pub projected: bool,
    /// Why, in a few words (for tables, notices and logs; never contains a secret).
    pub why: String,
    /// For the disable of a rotation's old key: the successor whose installation grace it
    /// waited for (its disable may be held while the successor was never used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successor: Option<String>,
}

impl PlannedAction {
    /// True when an executor running at `now` should perform this action.
    pub fn is_due(&self, now: DateTime<Utc>) -> bool {
        !self.projected && self.due <= now
    }
}

/// Something the owner or the auditor should know that is not an action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "note", rename_all = "snake_case")]
pub enum PlanNote {
    /// A key is due for rotation but the user already has two keys: the other must be deleted
    /// first (invariant 3), no earlier than `until`.
    RotationBlocked {
        /// The key awaiting rotation.
        key_id: String,
        /// When the slot frees at the earliest.
        until: DateTime<Utc>,
        /// Which key holds the slot and why it stays.
        why: String,
    },
    /// The user is validly exempt: no action until `until`.
    Exempt {
        /// The exemption's last moment.
        until: DateTime<Utc>,
    },
    /// A key whose id is unknown cannot be planned for (read the keys with ListAccessKeys).
    KeyIdUnknown {
        /// The credential-report slot.
        slot: u8,
    },
}

/// Every planned action of one user, sorted by date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The user name.
    pub user_name: String,
    /// The IAM UserId.
    pub user_id: String,
    /// Sorted by `due`, then slot-freeing order (delete before disable before rotate).
    pub actions: Vec<PlannedAction>,
    /// What is not an action.
    pub notes: Vec<PlanNote>,
}

impl Plan {
    /// The actions an executor running at `now` performs, in order.
    pub fn due(&self, now: DateTime<Utc>) -> impl Iterator<Item = &PlannedAction> {
        self.actions
            .iter()
            .filter(move |a| a.is_due(now) && !matches!(a.action, Action::Warn { .. }))
    }

    /// The warnings whose window is open at `now` (the warned step is still in the future).
    pub fn warnings(&self, now: DateTime<Utc>) -> impl Iterator<Item = &PlannedAction> {
        self.actions.iter().filter(move |a| {
            matches!(a.action, Action::Warn { step_due, .. } if a.due <= now && now < step_due)
        })
    }

    /// The first non-warning action still to come for `key_id` (for reports: "next action").
    pub fn next_step(&self, key_id: &str) -> Option<&PlannedAction> {
        self.actions.iter().find(|a| {
            a.key_id == key_id
                && matches!(a.action, Action::Rotate | Action::Disable | Action::Delete)
        })
    }
}

/// What happens next to a key, before expansion into warn/notify and follow-up steps.
#[derive(Debug, Clone)]
enum Fate {
    /// `successor`: the key whose installation grace this disable waited for, if any.
    Disable {
        due: DateTime<Utc>,
        why: String,
        successor: Option<String>,
    },
    Rotate {
        due: DateTime<Utc>,
        why: String,
    },
    None,
}

/// Plans the lifecycle of `user`'s keys at `now`.
///
/// `keys` must be read live (ListAccessKeys + last use): keys without an id are skipped with a
/// [`PlanNote::KeyIdUnknown`]. A validly exempt user gets no actions. The plan honours the
/// safety invariants of `docs/invariants.md`; each is a test in
/// `keyguard-core/tests/policy_table.rs`.
pub fn plan(user: &User, keys: &[AccessKey], settings: &Settings, now: DateTime<Utc>) -> Plan {
    let mut out = Plan {
        user_name: user.name.clone(),
        user_id: user.user_id.clone(),
        actions: vec![],
        notes: vec![],
    };
    if let Exemption::Valid { until, .. } = Exemption::of(user, settings, now) {
        out.notes.push(PlanNote::Exempt { until });
        return out;
    }
    let mut known: Vec<&AccessKey> = Vec::new();
    for key in keys {
        match key.id {
            Some(_) => known.push(key),
            None => out.notes.push(PlanNote::KeyIdUnknown { slot: key.slot }),
        }
    }
    // (created, id): a total order, so "the newer key" is defined even for keys made in one second.
    known.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
    let days = |n: u32| Duration::days(n.into());
    let (install, recovery) = (
        days(settings.installation_grace_period),
        days(settings.recovery_grace_period),
    );
    let mut b = Builder {
        out: &mut out,
        now,
        warn: days(settings.pending_action_warn_period),
    };

    // When each key leaves its slot (its delete), and whether that date is firm; a rotation of its
    // sibling waits for it (invariant 3: never a third key).
    let mut frees: Vec<(String, DateTime<Utc>, bool, String)> = Vec::new();

    // Inactive keys: deleted once their recovery grace has passed (invariant 1: only these).
    for key in known.iter().filter(|k| !k.is_active()) {
        let id = key.id.clone().unwrap_or_default();
        let disabled = match key.disabled_at(user) {
            Some(at) => at,
            None => {
                b.push(
                    &id,
                    Action::RecordDisabled,
                    now,
                    false,
                    "inactive with no recorded disable date",
                );
                now
            }
        };
        let due = disabled + recovery;
        b.step(&id, Step::Delete, due, false, "recovery grace over");
        frees.push((id, due, false, "in its recovery grace".into()));
    }

    // Active keys: each one's next step.
    let active: Vec<&AccessKey> = known.iter().copied().filter(|k| k.is_active()).collect();
    let fates: Vec<(&AccessKey, Fate)> = active
        .iter()
        .enumerate()
        .map(|(i, key)| (*key, fate_of(user, key, &active[i + 1..], settings, now)))
        .collect();

    // Slots freed by disabling active keys (their delete follows the recovery grace).
    for (key, fate) in &fates {
        if let Fate::Disable { due, .. } = fate {
            let freed = (*due).max(now) + recovery;
            frees.push((
                key.id.clone().unwrap_or_default(),
                freed,
                true,
                "being disabled".into(),
            ));
        }
    }

    for (key, fate) in fates {
        let id = key.id.clone().unwrap_or_default();
        match fate {
            Fate::None => {}
            Fate::Disable {
                due,
                why,
                successor,
            } => {
                b.step(&id, Step::Disable, due, false, &why);
                if let Some(d) = b
                    .out
                    .actions
                    .iter_mut()
                    .rev()
                    .find(|a| a.action == Action::Disable && a.key_id == id)
                {
                    d.successor = successor;
                }
                // Follow-ups count from when the step really happens: an overdue step happens now.
                b.step(
                    &id,
                    Step::Delete,
                    due.max(now) + recovery,
                    true,
                    "recovery grace over",
                );
            }
            Fate::Rotate { due, why } => {
                schedule_rotation(&mut b, &id, due, &why, &known, &frees, (install, recovery));
            }
        }
    }
    out.actions.sort_by(|a, b| {
        (a.due, a.action.rank(), &a.key_id).cmp(&(b.due, b.action.rank(), &b.key_id))
    });
    out
}

/// The next step of an Active `key`, given the Active keys created after it (`later`): disabled
/// after its successor's installation grace, disabled for non-use, rotated, or nothing yet.
fn fate_of(
    user: &User,
    key: &AccessKey,
    later: &[&AccessKey],
    settings: &Settings,
    now: DateTime<Utc>,
) -> Fate {
    let install = Duration::days(settings.installation_grace_period.into());
    let stale = |k: &AccessKey| stale_from(k, settings).filter(|at| *at <= now);
    let successor = later.iter().find(|s| stale(s).is_none());
    let fate = if let Some(s) = successor {
        // Invariant 2: never disabled earlier than the installation grace after the successor.
        let trigger = if settings.single_active_key {
            Some(s.created)
        } else {
            [Some(settings.rotation_due(key.created)), stale(key)]
                .into_iter()
                .flatten()
                .min()
        };
        match trigger {
            Some(t) => Fate::Disable {
                successor: s.id.clone(),
                due: t.max(s.created + install),
                why: format!(
                    "successor {} created {}",
                    crate::annotation::mask_key_id(s.id.as_deref().unwrap_or("")),
                    s.created.format("%Y-%m-%d")
                ),
            },
            None => Fate::None,
        }
    } else if let Some(since) = stale(key) {
        // Invariant 3: an unused key is disabled, never rotated.
        Fate::Disable {
            due: since,
            why: unused_why(key),
            successor: None,
        }
    } else {
        next_fate(key, settings)
    };
    // A key re-enabled by `keyguard restore` gets a fresh installation grace.
    match (fate, key.restored_at(user)) {
        (
            Fate::Disable {
                due,
                why,
                successor,
            },
            Some(restored),
        ) if restored + install > due => Fate::Disable {
            due: restored + install,
            why: format!("{why}; restored {}", restored.format("%Y-%m-%d")),
            successor,
        },
        (fate, _) => fate,
    }
}

/// The rotation of `id` due at `due`, and its follow-ups: it waits for the other slot to be
/// freed (`frees`: when each key leaves its slot; invariant 3, never a third key).
fn schedule_rotation(
    b: &mut Builder<'_>,
    id: &str,
    due: DateTime<Utc>,
    why: &str,
    known: &[&AccessKey],
    frees: &[(String, DateTime<Utc>, bool, String)],
    (install, recovery): (Duration, Duration),
) {
    let now = b.now;
    let holder = known.iter().find(|k| k.id.as_deref() != Some(id));
    let blocker = frees.iter().find(|(other, ..)| *other != id);
    let (due, projected) = match blocker {
        None if holder.is_some() => {
            // Defensive: a second key that no step of this plan removes.
            b.out.notes.push(PlanNote::RotationBlocked {
                key_id: id.to_string(),
                until: due,
                why: "the user's second key stays".into(),
            });
            return;
        }
        None => (due, false),
        Some((other, free_at, free_projected, state)) => {
            let at = due.max(*free_at);
            if due <= now && *free_at > now {
                b.out.notes.push(PlanNote::RotationBlocked {
                    key_id: id.to_string(),
                    until: *free_at,
                    why: format!("{} is {state}", crate::annotation::mask_key_id(other)),
                });
            }
            (at, *free_projected || *free_at > now)
        }
    };
    b.step(id, Step::Rotate, due, projected, why);
    let done = due.max(now);
    b.step(
        id,
        Step::Disable,
        done + install,
        true,
        "installation grace over",
    );
    b.step(
        id,
        Step::Delete,
        done + install + recovery,
        true,
        "recovery grace over",
    );
}

/// The moment `key` is (or will be, if it stays unused) stale: unused for UnusedKeyPeriod, or
/// never used by its rotation date. `None` for an inactive key or a used key with the unused
/// check off.
fn stale_from(key: &AccessKey, settings: &Settings) -> Option<DateTime<Utc>> {
    if !key.is_active() {
        return None;
    }
    let never_used = key
        .last_used
        .is_none()
        .then(|| settings.rotation_due(key.created));
    unused_from(key, settings)
        .into_iter()
        .chain(never_used)
        .min()
}

/// A lone, not-yet-stale active key: rotated when due if it has been used, disabled if it becomes
/// unused first.
fn next_fate(key: &AccessKey, settings: &Settings) -> Fate {
    let rotation = settings.rotation_due(key.created);
    let stale = stale_from(key, settings);
    match (key.last_used, stale) {
        (Some(_), Some(at)) if at < rotation => Fate::Disable {
            successor: None,
            due: at,
            why: "unused for UnusedKeyPeriod, if not used again".into(),
        },
        (Some(_), _) => Fate::Rotate {
            due: rotation,
            why: "RotationPeriod reached".into(),
        },
        (None, Some(at)) => Fate::Disable {
            successor: None,
            due: at,
            why: "never used, if still unused then".into(),
        },
        (None, None) => Fate::None,
    }
}

fn unused_why(key: &AccessKey) -> String {
    match key.last_used {
        None => "never used".into(),
        Some(t) => format!("unused since {}", t.format("%Y-%m-%d")),
    }
}

struct Builder<'a> {
    out: &'a mut Plan,
    now: DateTime<Utc>,
    warn: Duration,
}

impl Builder<'_> {
    fn push(
        &mut self,
        key_id: &str,
        action: Action,
        due: DateTime<Utc>,
        projected: bool,
        why: &str,
    ) {
        self.out.actions.push(PlannedAction {
            key_id: key_id.into(),
            action,
            due,
            projected,
            why: why.into(),
            successor: None,
        });
    }

    /// A step with its warning (while still ahead, and if warnings are on) and its notice.
    fn step(&mut self, key_id: &str, step: Step, due: DateTime<Utc>, projected: bool, why: &str) {
        if self.warn > Duration::zero() && due > self.now {
            self.push(
                key_id,
                Action::Warn {
                    step,
                    step_due: due,
                },
                due - self.warn,
                projected,
                why,
            );
        }
        let action = match step {
            Step::Rotate => Action::Rotate,
            Step::Disable => Action::Disable,
            Step::Delete => Action::Delete,
        };
        self.push(key_id, action, due, projected, why);
        self.push(key_id, Action::Notify { step }, due, projected, why);
    }
}
