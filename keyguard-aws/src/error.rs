//! The one error type of keyguard-aws.

use std::path::PathBuf;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// What can go wrong talking to AWS or reading evidence. Messages never contain a secret:
/// no call in this crate handles one.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller lacks a permission. Separate from [`Error::Api`] so that an org-wide run can
    /// report "account X: role missing or not allowed" and go on.
    #[error("{operation}: access denied: {message}")]
    AccessDenied {
        /// The API operation.
        operation: &'static str,
        /// AWS's message.
        message: String,
    },
    /// An API call failed after the SDK's retries (throttling included).
    #[error("{operation} failed{}: {message}", code.as_ref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Api {
        /// The API operation.
        operation: &'static str,
        /// AWS's error code, when it sent one.
        code: Option<String>,
        /// The full error chain.
        message: String,
    },
    /// AssumeRole into a member account failed.
    #[error("cannot assume {role_arn}: {message}")]
    AssumeRole {
        /// The role keyguard tried to assume.
        role_arn: String,
        /// Why.
        message: String,
    },
    /// IAM did not finish the credential report in time.
    #[error("the IAM credential report was not ready after {0} attempts")]
    CredentialReportTimeout(u32),
    /// The credential report could not be parsed.
    #[error("credential report: {0}")]
    CredentialReport(String),
    /// An evidence file is missing or malformed.
    #[error("evidence {}: {message}", path.display())]
    Evidence {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A bad input that is not AWS's fault (a filter, a parameter).
    #[error("{0}")]
    Invalid(String),
}

/// `err` and every error it was caused by, joined with `: ` (what an invocation's `errorMessage`
/// and a report's problem list show).
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut next = err.source();
    while let Some(e) = next {
        let s = e.to_string();
        if !out.ends_with(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        next = e.source();
    }
    out
}

/// `Result` with keyguard-aws's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wraps an SDK error of `operation`, separating access denials from other failures.
    pub fn sdk<E, R>(operation: &'static str, err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        let code = err.code().map(str::to_string);
        let message = match &err {
            SdkError::ServiceError(e) => match e.err().message() {
                Some(m) => m.to_string(),
                // Modeled errors built without metadata (mocks) still display their message.
                None => e.err().to_string(),
            },
            _ => DisplayErrorContext(&err).to_string(),
        };
        // IAM, STS and Organizations do not model AccessDenied as a typed error; the code is all
        // there is.
        match code.as_deref() {
            Some("AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation") => {
                Error::AccessDenied { operation, message }
            }
            _ => Error::Api {
                operation,
                code,
                message,
            },
        }
    }

    /// A stable name for the kind of failure, for a Lambda invocation's `errorType` (what Config
    /// and CloudWatch show): `AccessDenied`, `Throttled`, `AwsError`, `AssumeRoleFailed`,
    /// `CredentialReportTimeout`, `MalformedCredentialReport`, `MalformedEvidence`,
    /// `InvalidParameter`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::AccessDenied { .. } => "AccessDenied",
            Error::Api { .. } if self.is_throttling() => "Throttled",
            Error::Api { .. } => "AwsError",
            Error::AssumeRole { .. } => "AssumeRoleFailed",
            Error::CredentialReportTimeout(_) => "CredentialReportTimeout",
            Error::CredentialReport(_) => "MalformedCredentialReport",
            Error::Evidence { .. } => "MalformedEvidence",
            Error::Invalid(_) => "InvalidParameter",
        }
    }

    /// True when AWS answered with a throttling error even after the SDK's retries.
    pub fn is_throttling(&self) -> bool {
        matches!(self, Error::Api { code: Some(c), .. } if matches!(c.as_str(),
            "Throttling" | "ThrottlingException" | "TooManyRequestsException" | "RequestLimitExceeded"))
    }
}
