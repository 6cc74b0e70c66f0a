//! The one error type of the remediator, and the `errorType` a failed invocation reports.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// The one error type of the remediator. Messages never contain a secret.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The invocation's payload is not one of the entry points.
    #[error("malformed event: {0}")]
    MalformedEvent(String),
    /// The invocation's payload does not parse as the entry point it claims to be.
    #[error("malformed event: {what}: {} (at {})", .source.inner(), .source.path())]
    MalformedPayload {
        /// Which entry point.
        what: String,
        /// The parser's error, with where in the payload.
        #[source]
        source: serde_path_to_error::Error<serde_json::Error>,
    },
    /// The settings are invalid.
    #[error(transparent)]
    Settings(#[from] keyguard_core::Error),
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] keyguard_aws::Error),
    /// A notice could not be rendered.
    #[error("notice: {what}")]
    Notice {
        /// Which template, and what was done with it.
        what: String,
        /// handlebars' error.
        #[source]
        source: keyguard_aws::Source,
    },
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
    /// An item keyguard wrote to the state table cannot be read back.
    #[error("state table: unreadable {what}")]
    Unreadable {
        /// Which item.
        what: String,
        /// The JSON parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// The only account of a run could not be processed at all; its cause's `errorType` (an
    /// AssumeRole refusal is `AssumeRoleFailed`) is the invocation's.
    #[error("account {account} could not be processed: {message}")]
    AccountFailed {
        /// The account.
        account: String,
        /// The `errorType` of what made it fail.
        kind: &'static str,
        /// What made it fail, with its causes.
        message: String,
    },
    /// Some actions failed; the summary says which. The Lambda invocation fails with this, so that
    /// its caller (an operator, a member's request through EventBridge) sees the failure.
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
    /// The stable `errorType` of a failed invocation (what CloudWatch and the caller see).
    pub fn error_type(&self) -> &'static str {
        match self {
            Error::MalformedEvent(_) | Error::MalformedPayload { .. } => "MalformedEvent",
            Error::Settings(_) => "InvalidParameter",
            Error::Aws(e) => e.kind(),
            Error::Notice { .. } => "NoticeFailed",
            Error::Refused(_) => "Refused",
            Error::NotFound(_) => "NotFound",
            Error::SecretNotStored(_) => "SecretNotStored",
            Error::LeaseLost(_) => "LeaseLost",
            Error::Internal(_) | Error::Unreadable { .. } => "Internal",
            Error::AccountFailed { kind, .. } => kind,
            Error::ActionsFailed { .. } => "ActionsFailed",
        }
    }

    /// `v` read as a `T`, or a [`Error::MalformedPayload`] naming `what` and the path to what
    /// did not fit: how every payload the remediator takes is read.
    pub(crate) fn typed<T: for<'de> serde::Deserialize<'de>>(
        what: &str,
        v: serde_json::Value,
    ) -> Result<T> {
        serde_path_to_error::deserialize(v).map_err(|e| Error::MalformedPayload {
            what: what.to_string(),
            source: e,
        })
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
