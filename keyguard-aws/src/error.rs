//! The one error type of keyguard-aws.

use std::path::PathBuf;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// An error a keyguard error was caused by (the SDK's error, an I/O or parse error), kept for
/// [`std::error::Error::source`].
pub type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What can go wrong talking to AWS or reading evidence. Messages never contain a secret:
/// no call in this crate handles one. Each variant keeps the error it was caused by.
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
        /// The SDK's error.
        #[source]
        source: Source,
    },
    /// An API call failed after the SDK's retries (throttling included).
    #[error("{operation} failed{}: {message}", code.as_ref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Api {
        /// The API operation.
        operation: &'static str,
        /// AWS's error code, when it sent one.
        code: Option<String>,
        /// AWS's message, or what went wrong.
        message: String,
        /// The SDK's error (none when the answer itself was incomplete).
        #[source]
        source: Option<Source>,
    },
    /// AssumeRole into a member account failed.
    #[error("cannot assume {role_arn}: {message}")]
    AssumeRole {
        /// The role keyguard tried to assume.
        role_arn: String,
        /// Why.
        message: String,
        /// STS's error (none when STS answered without credentials).
        #[source]
        source: Option<Box<Error>>,
    },
    /// IAM did not finish the credential report in time.
    #[error("the IAM credential report was not ready after {0} attempts")]
    CredentialReportTimeout(u32),
    /// The credential report could not be parsed.
    #[error("credential report: {message}")]
    CredentialReport {
        /// What is wrong, and where.
        message: String,
        /// The CSV reader's error.
        #[source]
        source: Option<csv::Error>,
    },
    /// An evidence file is missing or malformed.
    #[error("evidence {}: {message}", path.display())]
    Evidence {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
        /// The I/O or parse error.
        #[source]
        source: Option<Source>,
    },
    /// A bad input that is not AWS's fault (a filter, a parameter).
    #[error("{0}")]
    Invalid(String),
    /// A request could not be built from keyguard's input (a field AWS requires is missing).
    #[error("{what}: {source}")]
    Build {
        /// Which request.
        what: String,
        /// The SDK's builder error.
        #[source]
        source: Source,
    },
}

/// `err` and every error it was caused by, joined with `: ` (what an invocation's `errorMessage`
/// and a report's problem list show). A cause whose text the message already holds (keyguard's
/// messages quote AWS's) is not repeated.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut next = err.source();
    while let Some(e) = next {
        let s = e.to_string();
        // The SDK's modeled errors read `Name [Code]: message`, its unmodeled ones
        // `unhandled error (Code)`: the message, or the code, is already in `out`.
        let said = out.contains(&s)
            || s.rsplit(": ").next().is_some_and(|tail| out.contains(tail))
            || s.starts_with("unhandled error")
            || s == "service error";
        if !said {
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
        // A service's answer: its modeled error is the cause; otherwise (a timeout, a dropped
        // connection) the SDK's error with its own chain.
        let source: Source = match err {
            SdkError::ServiceError(e) => Box::new(e.into_err()),
            other => Box::new(other),
        };
        // IAM, STS and Organizations do not model AccessDenied as a typed error; the code is all
        // there is.
        match code.as_deref() {
            Some("AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation") => {
                Error::AccessDenied {
                    operation,
                    message,
                    source,
                }
            }
            _ => Error::Api {
                operation,
                code,
                message,
                source: Some(source),
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
            Error::CredentialReport { .. } => "MalformedCredentialReport",
            Error::Evidence { .. } => "MalformedEvidence",
            Error::Invalid(_) | Error::Build { .. } => "InvalidParameter",
        }
    }

    /// True when AWS answered with a throttling error even after the SDK's retries.
    pub fn is_throttling(&self) -> bool {
        matches!(self, Error::Api { code: Some(c), .. } if matches!(c.as_str(),
            "Throttling" | "ThrottlingException" | "TooManyRequestsException" | "RequestLimitExceeded"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_iam::operation::get_user::GetUserError;
    use aws_sdk_iam::types::error::NoSuchEntityException;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    #[tokio::test]
    async fn an_aws_error_keeps_the_sdks_error_as_its_source_and_says_it_once() {
        let gone = mock!(aws_sdk_iam::Client::get_user).then_error(|| {
            GetUserError::NoSuchEntityException(
                NoSuchEntityException::builder()
                    .message("The user with name ci cannot be found.")
                    .build(),
            )
        });
        let iam = mock_client!(aws_sdk_iam, RuleMode::MatchAny, [&gone]);
        let err = Error::sdk(
            "GetUser",
            iam.get_user().user_name("ci").send().await.unwrap_err(),
        );
        let source = std::error::Error::source(&err).expect("a source");
        assert!(
            source.downcast_ref::<GetUserError>().is_some(),
            "the modeled error: {source:?}"
        );
        let text = chain(&err);
        assert_eq!(text.matches("cannot be found").count(), 1, "{text}");

        let assumed = Error::AssumeRole {
            role_arn: "arn:aws:iam::111122223333:role/r".into(),
            message: err.to_string(),
            source: Some(Box::new(err)),
        };
        assert_eq!(assumed.kind(), "AssumeRoleFailed");
        let below = std::error::Error::source(&assumed).and_then(|e| e.source());
        assert!(below.is_some_and(|e| e.downcast_ref::<GetUserError>().is_some()));
        assert_eq!(chain(&assumed).matches("cannot be found").count(), 1);
    }
}
