//! What a run reports: one [`ActionRecord`] per step, an [`AccountReport`] per account, the
//! run's [`Summary`].

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, Utc};
use keyguard_core::Step;
use serde::{Serialize, Serializer};

use crate::error::{Error, Result};

/// What happened to one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Done.
    Done,
    /// Would have been done (DryRun).
    Preview,
    /// Tried and failed; the record's `why` says why.
    Failed,
    /// Not done because IAM changed since the plan (a person acted meanwhile).
    Skipped,
    /// A warning of a coming step was sent (or would be, in DryRun).
    Warned,
    /// Due, but held: a rotation's old key still in use while its successor never was
    /// (`DisableWhileInUse`), told to the owner each day until the cap.
    Held,
}

impl Outcome {
    /// The outcome as the summary's JSON spells it: `done`, `preview`, `failed`, `skipped`,
    /// `warned`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Preview => "preview",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
            Outcome::Warned => "warned",
            Outcome::Held => "held",
        }
    }
}

/// What a record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionKind {
    /// A new key created and stored; the old one is the record's key.
    Rotate,
    /// The key set Inactive.
    Disable,
    /// The key deleted.
    Delete,
    /// keyguard recorded when it first saw a key Inactive (a person disabled it).
    RecordDisabled,
    /// A key an interrupted rotation left behind, deleted.
    DeleteOrphan,
    /// A rotation's secret deleted (restorable for 7 days) once its key was installed.
    DeleteSecret,
    /// A warning of a coming step.
    Warn(Step),
    /// A disabled key re-enabled by an operator.
    Restore,
    /// A key keyguard disabled, set Active by someone other than `keyguard restore`.
    ReEnabled,
    /// The user could not be examined (its live read failed).
    Examine,
    /// keyguard's user tags could not be written.
    Tag,
}

impl ActionKind {
    /// The record kind of a lifecycle step of the plan (a warning or notice is not one).
    pub fn from_action(a: &keyguard_core::Action) -> Self {
        match a {
            keyguard_core::Action::Rotate => ActionKind::Rotate,
            keyguard_core::Action::Disable => ActionKind::Disable,
            keyguard_core::Action::Delete => ActionKind::Delete,
            keyguard_core::Action::RecordDisabled => ActionKind::RecordDisabled,
            keyguard_core::Action::Warn { step, .. } => ActionKind::Warn(*step),
            keyguard_core::Action::Notify { .. } => ActionKind::Examine,
        }
    }

    /// The name the summary, the notices and the events use.
    pub fn as_str(self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            ActionKind::Rotate => "rotate",
            ActionKind::Disable => "disable",
            ActionKind::Delete => "delete",
            ActionKind::RecordDisabled => "record-disabled",
            ActionKind::DeleteOrphan => "delete-orphan",
            ActionKind::DeleteSecret => "delete-secret",
            ActionKind::Warn(step) => return Cow::Owned(format!("warn:{}", step.as_str())),
            ActionKind::Restore => "restore",
            ActionKind::ReEnabled => "re-enabled",
            ActionKind::Examine => "examine",
            ActionKind::Tag => "tag",
        })
    }

    /// The lifecycle step this record did (rotate, disable, delete), if it is one.
    pub fn step(self) -> Option<Step> {
        match self {
            ActionKind::Rotate => Some(Step::Rotate),
            ActionKind::Disable => Some(Step::Disable),
            ActionKind::Delete => Some(Step::Delete),
            _ => None,
        }
    }

    /// The step's name without the `warn:` of a warning (what an owner notice lists).
    pub fn step_name(self) -> Cow<'static, str> {
        match self {
            ActionKind::Warn(step) => Cow::Borrowed(step.as_str()),
            other => other.as_str(),
        }
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str())
    }
}

impl Serialize for ActionKind {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.as_str())
    }
}

/// One step of one key, as the summary, the notices and the events report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionRecord {
    /// The IAM user name.
    pub user: String,
    /// The key, masked (`AKIA…WXYZ`).
    pub key: String,
    /// What was done (serialized `rotate`, `disable`, `delete`, `record-disabled`,
    /// `delete-orphan`, `warn:rotate`, `restore`…).
    pub action: ActionKind,
    /// What happened.
    pub outcome: Outcome,
    /// When it was done, or for a warning the day of the warned step.
    pub date: DateTime<Utc>,
    /// Why (the plan's reason, or the failure).
    pub why: String,
    /// The new key's secret name, for a rotation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    /// Where the key is used, for its owner ("used 3 h ago from 203.0.113.7, aws-cli/2.15 via
    /// ec2, 41 calls since …"): for a key with a disable, delete, hold or warning in this run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<String>,
}

/// One account's part of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AccountReport {
    /// The account id.
    pub account: String,
    /// Users in the account (0 when only one user was asked for).
    pub users: usize,
    /// Users read live because something could be due.
    pub examined: usize,
    /// Every step done, previewed, skipped, failed or warned.
    pub actions: Vec<ActionRecord>,
    /// Things worth knowing that are not steps (rotation blocked, no owner address…).
    pub notes: Vec<String>,
    /// Emails sent.
    pub emails: usize,
    /// Why the account as a whole could not be processed (AccessDenied, throttling…).
    pub error: Option<String>,
    /// The `errorType` of that failure (`AssumeRoleFailed`, `AccessDenied`…).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_type: Option<&'static str>,
    /// The run stopped taking users near its deadline: the first user (by name) not examined.
    /// The rest of the account is handed to the next invocation (or the next CLI run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deferred: Option<String>,
}

impl AccountReport {
    /// Failed steps, plus one if the account could not be processed.
    pub fn failures(&self) -> usize {
        self.actions
            .iter()
            .filter(|a| a.outcome == Outcome::Failed)
            .count()
            + usize::from(self.error.is_some())
    }
}

/// What a run did, per account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// True when nothing was written.
    pub dry_run: bool,
    /// When the run happened.
    pub at: DateTime<Utc>,
    /// Per account, sorted by id.
    pub accounts: Vec<AccountReport>,
    /// What the run as a whole could not do (an email not sent).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Summary {
    /// Failed steps and accounts.
    pub fn failures(&self) -> usize {
        self.accounts.iter().map(AccountReport::failures).sum()
    }

    /// Steps with `outcome`, over every account.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.accounts
            .iter()
            .flat_map(|a| &a.actions)
            .filter(|r| r.outcome == outcome)
            .count()
    }

    /// `Ok(self)` when nothing failed, else [`Error::ActionsFailed`] carrying the summary: what
    /// the Lambda returns, so that a failure fails the invocation.
    /// A run of one account that could not be processed at all fails with that failure's
    /// `errorType` ([`Error::AccountFailed`]).
    pub fn into_result(self) -> Result<Summary> {
        let failed = self.failures();
        if failed == 0 {
            return Ok(self);
        }
        if let [only] = self.accounts.as_slice() {
            let steps_failed = only.actions.iter().any(|a| a.outcome == Outcome::Failed);
            if let (Some(kind), Some(message), false) = (only.error_type, &only.error, steps_failed)
            {
                return Err(Error::AccountFailed {
                    account: only.account.clone(),
                    kind,
                    message: message.clone(),
                });
            }
        }
        Err(Error::ActionsFailed {
            failed,
            summary: serde_json::to_string(&self).unwrap_or_default(),
        })
    }
}

/// What a member account's request (a compliance change) gets back: counts only, never a user's
/// name, an owner's address or a secret's name (the run's own records and notices have those).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Requested {
    /// The account, as EventBridge named it.
    pub account: String,
    /// False when the user was asked for already today (nothing was run).
    pub acted: bool,
    /// Users examined.
    pub examined: usize,
    /// Steps done (or previewed, in DryRun).
    pub done: usize,
    /// Steps or reads that failed.
    pub failed: usize,
}

impl Requested {
    /// The counts of `summary`.
    pub fn of(summary: &Summary) -> Self {
        Requested {
            account: summary
                .accounts
                .first()
                .map(|a| a.account.clone())
                .unwrap_or_default(),
            acted: true,
            examined: summary.accounts.iter().map(|a| a.examined).sum(),
            done: summary.count(Outcome::Done) + summary.count(Outcome::Preview),
            failed: summary.failures(),
        }
    }

    /// An error (with these counts only) when something failed, so that the invocation fails.
    pub fn into_result(self) -> Result<Requested> {
        match self.failed {
            0 => Ok(self),
            failed => Err(Error::ActionsFailed {
                failed,
                summary: serde_json::to_string(&self).unwrap_or_default(),
            }),
        }
    }
}
