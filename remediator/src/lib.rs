//! The remediator: runs the key lifecycle of [`keyguard_core::plan()`] against live IAM.
//!
//! In: a request ([`Request`]: a Config remediation for one user, the scheduled org-wide sweep, or
//! a person's request for one account or user), the settings and `now`. Out: IAM writes (create,
//! disable, delete keys; keyguard's user tags), the new key in Secrets Manager, owner notices and an
//! admin digest through SESv2, optional EventBridge events, and a [`Summary`] per account of what
//! was done, previewed, skipped or failed.
//!
//! Safety, in the order the code applies it:
//! - every user is re-read live (ListAccessKeys) right before its writes; the plan is made from
//!   that read, never from the credential report or Config's snapshot;
//! - an interrupted rotation (the [`ROTATING_TAG`](keyguard_core::ROTATING_TAG) mark is still
//!   there) is repaired first: a key created by it whose id is not in the secret is deleted;
//! - a new key's secret is stored before anything else happens; if that fails the key is deleted
//!   at once (invariant 6);
//! - DryRun (the default) and `mode: preview` make no write at all (IAM, Secrets Manager), and send
//!   the same notices marked as a preview;
//! - one account's failure never stops the others; a failed step stops only the later steps of
//!   that user.
//!
//! The secret access key exists only inside [`run`]'s rotation, as a `SecretString`, on its way to
//! Secrets Manager. It is never logged, returned, put in an error or an email.

mod notices;
mod request;
mod run;
pub mod secrets;

use aws_config::SdkConfig;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use chrono::{DateTime, Utc};
use keyguard_aws::inventory::ReportPolling;
use keyguard_aws::sdk::{Caller, RoleSpec};
use keyguard_core::Settings;
use serde::Serialize;

pub use notices::{valid_address, NoticeConfig, Templates};
pub use request::{Mode, Request};
pub use run::{handle, restore, run_account, sweep, sweep_accounts, Selection};

/// The one error type of the remediator. Messages never contain a secret.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The invocation's payload is not one of the entry points.
    #[error("malformed event: {0}")]
    MalformedEvent(String),
    /// The settings are invalid.
    #[error(transparent)]
    Settings(#[from] keyguard_core::Error),
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] keyguard_aws::Error),
    /// A notice could not be rendered or sent.
    #[error("notice: {0}")]
    Notice(String),
    /// keyguard refuses an operator's request (a forced rotation, a restore) and says why.
    #[error("refused: {0}")]
    Refused(String),
    /// The user or key asked for does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A new key's secret could not be stored (what happened to the key is in the message).
    #[error("secret not stored: {0}")]
    SecretNotStored(String),
    /// A bug: something that cannot fail did.
    #[error("internal error: {0}")]
    Internal(String),
    /// Some actions failed; the summary says which. The Lambda invocation fails with this, so the
    /// SSM Automation and Config see the failure.
    #[error("{failed} action(s) or account(s) failed: {summary}")]
    ActionsFailed {
        /// How many.
        failed: usize,
        /// The run's summary as JSON.
        summary: String,
    },
}

/// `Result` with the remediator's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wraps an SDK error of `operation` (access denials kept apart by keyguard-aws).
    pub fn aws<E, R>(operation: &'static str, err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        Error::Aws(keyguard_aws::Error::sdk(operation, err))
    }
}

/// Everything a run needs that does not change between invocations; built once in `main`.
#[derive(Debug, Clone)]
pub struct Remediator {
    /// The function's own SDK configuration (SES and EventBridge are called with it).
    pub sdk: SdkConfig,
    /// Who the function runs as.
    pub caller: Caller,
    /// The policy; its `dry_run` is the switch that allows writes.
    pub settings: Settings,
    /// The member role.
    pub role: RoleSpec,
    /// Credential-report polling.
    pub polling: ReportPolling,
    /// Where notices go.
    pub notices: NoticeConfig,
    /// A customer-managed KMS key for new secrets (the account's default key otherwise).
    pub kms_key_id: Option<String>,
}

/// The remediator's own settings, as flags and environment variables (with the policy's
/// [`keyguard_aws::settings_env::SettingsArgs`] and [`keyguard_aws::settings_env::RoleArgs`]).
#[derive(Debug, Clone, clap::Args)]
pub struct NoticeArgs {
    /// The SES identity notices are sent from; without it no email is sent.
    #[arg(long, env = "NOTICE_SENDER")]
    pub notice_sender: Option<String>,
    /// Administrators (comma-separated): the digest's recipients and the last owner fallback.
    #[arg(long, env = "ADMIN_EMAILS", value_delimiter = ',')]
    pub admin_emails: Vec<String>,
    /// An EventBridge bus for one `keyguard key action` event per action.
    #[arg(long, env = "EVENT_BUS")]
    pub event_bus: Option<String>,
    /// A customer-managed KMS key id or ARN for new secrets.
    #[arg(long, env = "SECRET_KMS_KEY_ID")]
    pub secret_kms_key_id: Option<String>,
}

impl NoticeArgs {
    /// The notice configuration; a malformed address is an error naming the variable.
    pub fn config(&self) -> Result<NoticeConfig> {
        let admins: Vec<String> = self
            .admin_emails
            .iter()
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty())
            .collect();
        for a in self.notice_sender.iter().chain(&admins) {
            if !valid_address(a) {
                return Err(Error::MalformedEvent(format!(
                    "NOTICE_SENDER / ADMIN_EMAILS: {a:?} is not an email address"
                )));
            }
        }
        Ok(NoticeConfig {
            sender: self.notice_sender.clone(),
            admins,
            event_bus: self.event_bus.clone().filter(|b| !b.is_empty()),
        })
    }
}

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
        }
    }
}

/// One step of one key, as the summary, the notices and the events report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionRecord {
    /// The IAM user name.
    pub user: String,
    /// The key, masked (`AKIA…WXYZ`).
    pub key: String,
    /// `rotate`, `disable`, `delete`, `record-disabled`, `delete-orphan`, `warn:rotate`,
    /// `restore`…
    pub action: String,
    /// What happened.
    pub outcome: Outcome,
    /// When it was done, or for a warning the day of the warned step.
    pub date: DateTime<Utc>,
    /// Why (the plan's reason, or the failure).
    pub why: String,
    /// The new key's secret name, for a rotation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
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
    pub fn into_result(self) -> Result<Summary> {
        match self.failures() {
            0 => Ok(self),
            failed => Err(Error::ActionsFailed {
                failed,
                summary: serde_json::to_string(&self).unwrap_or_default(),
            }),
        }
    }
}
