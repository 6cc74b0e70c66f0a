//! keyguard's policy, with no I/O: plain data and `now` go in, findings and plans come out.
//!
//! - [`Settings`]: the policy knobs (names follow the aws-samples solution), validated once.
//! - [`model`]: accounts, IAM users and their access keys as keyguard sees them.
//! - [`evaluate()`]: the AWS Config verdict for one user ([`Finding`]), with a ≤ 256-character
//!   annotation that names each key masked.
//! - [`plan()`]: the dated lifecycle of every key of one user ([`Plan`]): warn, rotate, disable,
//!   delete, notify, honouring the safety invariants of `docs/invariants.md`.
//! - [`hold`]: when a due step waits (a migration still on the old key; minimum notice);
//!   [`usage`]: where each key is used, from CloudTrail's calls; [`text`]: hostile text made safe.
//! - [`needs_attention()`], [`leftovers()`], [`forced_rotation()`], [`restorable()`]: the
//!   remediator's decisions around the plan (which users to read live, what an interrupted
//!   rotation left behind, when a manual rotation or restore is allowed).
//!
//! Nothing here reads the clock: `now` is always an argument, so `--as-of` previews are exact and
//! every threshold is testable to the second.

mod annotation;
mod error;
mod evaluate;
pub mod hold;
pub mod migration;
pub mod model;
pub mod ocsf;
pub mod owner;
pub mod pack;
mod plan;
pub mod records;
mod settings;
pub mod text;
mod triage;
pub mod usage;

pub use annotation::{mask_key_id, truncate_annotation, ANNOTATION_MAX_CHARS};
pub use error::{Error, Result};
pub use evaluate::{evaluate, evaluate_root, exemption_cap, Exemption, Finding, Reason, ROOT_USER};
pub use model::{
    days_between, parse_date_or_time, AccessKey, Account, Compliance, ComplianceResult, KeyStatus,
    User, UserRecord,
};
pub use plan::{plan, Action, Plan, PlanNote, PlannedAction, Step};
pub use records::{with_records, Records, RotationMark};
pub use settings::{
    DisableWhileInUse, Settings, DISABLED_TAG_PREFIX, FIRST_USED_TAG_PREFIX, LEAKED_TAG_PREFIX,
    RESTORED_TAG_PREFIX, ROTATING_TAG, WARNED_TAG,
};
pub use triage::{
    forced_rotation, leftovers, needs_attention, restorable, stale_tags, warned, warning_mark,
    warning_marks, with_slot_ids, Restorable, MARK_REACH, MARK_SKEW,
};
