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
//! At organization scale ([`work`]): with a queue and the central state table deployed, the
//! scheduled sweep only hands out one message per account; each account runs in its own
//! invocation (an SQS batch), retried alone, and its notice pieces go to the state table; the run's
//! notices go out once every account is in: one email per owner across all accounts, one digest.
//! Every invocation knows its deadline and starts no user (and no rotation) it cannot finish.
//!
//! The secret access key exists only inside a rotation, as a `SecretString`, on its way to
//! Secrets Manager. It is never logged, returned, put in an error or an email.

mod entry;
pub mod lease;
mod notices;
mod notify;
pub mod records;
mod request;
mod restore;
mod runs;
mod summary;
mod user;
pub mod work;

use aws_config::SdkConfig;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use keyguard_aws::inventory::ReportPolling;
use keyguard_aws::org::AccountFilter;
use keyguard_aws::sdk::{Caller, RoleSpec};
use keyguard_aws::state::StateTable;
use keyguard_core::Settings;

pub use entry::{
    handle, handle_invocation, run_account, sweep, sweep_accounts, sweep_accounts_until, Answer,
    Invocation, Selection, REQUESTS_PER_ACCOUNT_PER_DAY,
};
pub use notices::{valid_address, NoticeConfig, Templates};
pub use notify::{AccountPiece, UserPiece};
pub use request::{Forced, Mode, Request};
pub use restore::restore;
pub use summary::{AccountReport, ActionKind, ActionRecord, Outcome, Requested, Summary};

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
    /// The run's lease on a user lapsed or was taken over before a write to keyguard's records;
    /// nothing was written, and the run leaves the user to the lease's holder.
    #[error("lease lost: {0}")]
    LeaseLost(String),
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
    /// The stable `errorType` of a failed invocation (what SSM, Config and CloudWatch show).
    pub fn error_type(&self) -> &'static str {
        match self {
            Error::MalformedEvent(_) => "MalformedEvent",
            Error::Settings(_) => "InvalidParameter",
            Error::Aws(e) => e.kind(),
            Error::Notice(_) => "NoticeFailed",
            Error::Refused(_) => "Refused",
            Error::NotFound(_) => "NotFound",
            Error::SecretNotStored(_) => "SecretNotStored",
            Error::LeaseLost(_) => "LeaseLost",
            Error::Internal(_) => "Internal",
            Error::ActionsFailed { .. } => "ActionsFailed",
        }
    }

    /// Wraps an SDK error of `operation` (access denials kept apart by keyguard-aws).
    pub fn aws<E, R>(operation: &'static str, err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        Error::Aws(keyguard_aws::Error::sdk(operation, err))
    }
}

impl From<Error> for lambda_runtime::Diagnostic {
    fn from(e: Error) -> Self {
        lambda_runtime::Diagnostic {
            error_type: e.error_type().into(),
            error_message: keyguard_aws::chain(&e),
        }
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
    /// Who may read a new key besides keyguard (`SECRET_READERS`): `self` (the user) and/or
    /// principal ARNs with `{account}`; see [`keyguard_aws::secrets::readers`].
    pub secret_readers: Vec<String>,
    /// Delete a rotation's secret this many days after keyguard first saw its key used
    /// (`SECRET_DELETE_DAYS_AFTER_USE`); `None` keeps secrets.
    pub secret_delete_after_use_days: Option<u32>,
    /// Which accounts a sweep covers (`EXCLUDED_ACCOUNTS`).
    pub filter: AccountFilter,
    /// The central state table, when deployed (`KEYGUARD_STATE_TABLE`).
    pub state: Option<StateTable>,
    /// The work queue's URL, when deployed (`WORK_QUEUE_URL`): the sweep then hands out one
    /// message per account instead of running them.
    pub queue: Option<String>,
    /// How close to an invocation's deadline no user and no rotation is started.
    pub deadline_margin: std::time::Duration,
    /// Deliveries of a queued message before SQS dead-letters it (the queue's `maxReceiveCount`):
    /// the last one records the account as failed so that its run can finish.
    pub max_receives: u32,
    /// How long a user's lease lasts ([`lease`]).
    pub lease_ttl: std::time::Duration,
    /// Write without a lease, and with keyguard's records read from user tags, when no state
    /// table is configured (`--no-lease`: one operator, no deployed keyguard, tags trusted).
    pub no_lease: bool,
}

impl Remediator {
    /// A remediator with keyguard's defaults for everything but who it is and its policy: no
    /// notices, no queue or state table, a 60-second deadline margin, 3 receives.
    pub fn new(sdk: SdkConfig, caller: Caller, settings: Settings, role: RoleSpec) -> Self {
        Remediator {
            sdk,
            caller,
            settings,
            role,
            polling: ReportPolling::default(),
            notices: NoticeConfig::default(),
            kms_key_id: None,
            secret_readers: vec!["self".into()],
            secret_delete_after_use_days: None,
            filter: AccountFilter::default(),
            state: None,
            queue: None,
            deadline_margin: std::time::Duration::from_secs(60),
            max_receives: 3,
            lease_ttl: std::time::Duration::from_secs(15 * 60),
            no_lease: false,
        }
    }

    /// A remediator for unit tests (no AWS is called).
    #[cfg(test)]
    pub(crate) fn for_tests() -> Self {
        Self::new(
            aws_config::SdkConfig::builder().build(),
            Caller {
                account: "111122223333".into(),
                partition: "aws".into(),
                arn: "arn:aws:sts::111122223333:assumed-role/r/s".into(),
            },
            Settings::default(),
            RoleSpec {
                role_name: "keyguard-member".into(),
                session_name: "keyguard".into(),
                org_role_arn: None,
            },
        )
    }
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
    /// Who may read a new key besides keyguard (comma-separated): `self` (the user itself, as
    /// aws-samples does: whoever holds the old key can read the new one) and/or principal ARNs,
    /// `{account}` standing for the user's account (e.g. a CI role). After a leak never the user.
    #[arg(
        long,
        env = "SECRET_READERS",
        value_delimiter = ',',
        default_value = "self"
    )]
    pub secret_readers: Vec<String>,
    /// Delete a rotation's secret this many days after keyguard first saw its new key used (the
    /// owner installed it), restorable for 7 days; a secret costs $0.40 a month. Unset: kept.
    #[arg(long, env = "SECRET_DELETE_DAYS_AFTER_USE", value_name = "DAYS")]
    pub secret_delete_days_after_use: Option<u32>,
}

/// How the remediator is deployed, as flags and environment variables: the central state
/// table, the work queue, and its deadline guard.
#[derive(Debug, Clone, clap::Args)]
pub struct ScaleArgs {
    /// The central state table (DynamoDB): previews already sent, and with the queue, run
    /// progress and notice pieces.
    #[arg(long, env = "KEYGUARD_STATE_TABLE")]
    pub state_table: Option<String>,
    /// The work queue (SQS URL): the scheduled sweep hands out one message per account.
    #[arg(long, env = "WORK_QUEUE_URL", hide = true)]
    pub work_queue_url: Option<String>,
    /// No user and no rotation is started this close to the invocation's deadline (seconds).
    #[arg(long, env = "DEADLINE_MARGIN_SECONDS", default_value_t = 60)]
    pub deadline_margin_seconds: u64,
    /// The work queue's maxReceiveCount: the last delivery records an account as failed.
    #[arg(long, env = "MAX_RECEIVE_COUNT", default_value_t = 3, hide = true)]
    pub max_receive_count: u32,
    /// Write without the state table's per-user lease, reading keyguard's records from user tags
    /// (which anyone allowed iam:TagUser can set). Only when no keyguard is deployed and nobody
    /// else runs it: without a lease two runs can work on one user at once.
    #[arg(long, conflicts_with = "state_table")]
    pub no_lease: bool,
}

impl ScaleArgs {
    /// Writes need the state table's lease, or an explicit `--no-lease`: an error saying so.
    pub fn lease_or_bail(&self) -> Result<()> {
        if self.no_lease
            || self
                .state_table
                .as_deref()
                .is_some_and(|t| !t.trim().is_empty())
        {
            return Ok(());
        }
        Err(Error::Refused(
            "writes take each user's lease in the central state table: give --state-table TABLE \
             (KEYGUARD_STATE_TABLE), or --no-lease if no deployed keyguard and no other operator \
             can work on these users now (keyguard's records are then read from user tags)"
                .into(),
        ))
    }

    /// Applies these settings to `r`; the state table is reached with `r.sdk`.
    pub fn apply(&self, r: &mut Remediator) {
        let blank = |s: &Option<String>| s.clone().filter(|v| !v.trim().is_empty());
        r.state = blank(&self.state_table).map(|t| StateTable::new(&r.sdk, t));
        r.queue = blank(&self.work_queue_url);
        r.deadline_margin = std::time::Duration::from_secs(self.deadline_margin_seconds);
        r.max_receives = self.max_receive_count.max(1);
        r.no_lease = self.no_lease;
    }
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
