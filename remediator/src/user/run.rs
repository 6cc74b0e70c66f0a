//! The state of one user's run: the account's clients and facts it runs with ([`Ctx`]), and
//! what the run did and has to tell the owner ([`UserRun`]).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use keyguard_core::{mask_key_id, Account, Records, Step, User};
use tracing::{info, warn};

use crate::email_templates::Item;
use crate::function::Remediator;
use crate::summary::{ActionKind, ActionRecord, Outcome};
use crate::user::writer::Writer;

/// The clients and facts of one account's run.
pub(crate) struct Ctx<'a> {
    pub(crate) r: &'a Remediator,
    pub(crate) account: &'a Account,
    /// The account's SDK configuration (CloudTrail is read with it, per Region).
    pub(crate) cfg: aws_config::SdkConfig,
    /// The account's `LookupEvents` calls wait their turn here (2 a second per account).
    pub(crate) trail_pace: tokio::sync::Mutex<tokio::time::Interval>,
    pub(crate) iam: aws_sdk_iam::Client,
    pub(crate) sm: aws_sdk_secretsmanager::Client,
    /// keyguard's principal in the account (a reader of every secret it stores).
    pub(crate) principal: String,
    /// A preview: nothing is written.
    pub(crate) dry_run: bool,
    pub(crate) now: DateTime<Utc>,
    /// The invocation's deadline: no user and no rotation starts within the margin of it.
    pub(crate) deadline: Option<std::time::Instant>,
    /// This run's lease holder id (also the attempt id of its rotation marks).
    pub(crate) holder: String,
}

impl Ctx<'_> {
    /// True when the invocation's deadline is nearer than [`Remediator::deadline_margin`].
    pub(crate) fn past_margin(&self) -> bool {
        self.deadline
            .is_some_and(|d| std::time::Instant::now() + self.r.deadline_margin >= d)
    }
}

/// One user's run: what was done and what to tell the owner.
pub(crate) struct UserRun {
    pub(crate) user: User,
    pub(crate) records: Vec<ActionRecord>,
    pub(crate) coming: Vec<Item>,
    pub(crate) notes: Vec<String>,
    pub(crate) secret_name: Option<String>,
    /// A step of this user was not started because the deadline was near.
    pub(crate) deferred: bool,
    /// Whether, and under what, this run may still write to the user.
    pub(crate) writer: Writer,
    /// keyguard's records as last read from or written to the state table (`None` without one).
    pub(crate) kept: Option<Records>,
    /// The record-like tags the user carries (the mirror, or whatever a person wrote there).
    pub(crate) mirrored: Option<Records>,
    /// The run handles a leaked key: its successor is never readable by the user.
    pub(crate) leaked: bool,
    /// When each step of the user was first told to its owner (read before the first disable
    /// or delete that needs it; `None` until then).
    pub(crate) told: Option<crate::first_notices::Told>,
    /// The (key, step) this run tells the owner of: recorded as first notices at its end.
    pub(crate) told_now: BTreeSet<(String, Step)>,
    /// The keys (full ids) whose use the owner is told of: a disable, delete, hold or warning.
    pub(crate) described: BTreeSet<String>,
}

impl UserRun {
    /// A run of `user` that has done nothing yet and writes as `writer` says.
    pub(crate) fn new(user: User, writer: Writer) -> Self {
        UserRun {
            user,
            records: vec![],
            coming: vec![],
            notes: vec![],
            secret_name: None,
            deferred: false,
            writer,
            kept: None,
            mirrored: None,
            leaked: false,
            told: None,
            told_now: BTreeSet::new(),
            described: BTreeSet::new(),
        }
    }

    /// Records what happened to one step (logged; the key masked).
    pub(crate) fn record(
        &mut self,
        key: &str,
        action: ActionKind,
        outcome: Outcome,
        date: DateTime<Utc>,
        why: impl Into<String>,
    ) {
        let why = why.into();
        let masked = if key.is_empty() {
            String::new()
        } else {
            mask_key_id(key)
        };
        match outcome {
            Outcome::Failed => warn!(key = %masked, %action, why = %why, "failed"),
            _ => info!(key = %masked, %action, outcome = ?outcome, why = %why, "step"),
        }
        self.records.push(ActionRecord {
            user: self.user.name.clone(),
            key: masked,
            action,
            outcome,
            date,
            why,
            secret_name: None,
            usage: None,
        });
    }
}

/// Tag changes of one user, written in at most two calls at the end.
#[derive(Default)]
pub(crate) struct TagChanges {
    pub(crate) set: BTreeMap<String, String>,
    pub(crate) unset: BTreeSet<String>,
}
