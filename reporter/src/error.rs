//! The one error type of the reporter, and the `errorType` a failed invocation reports.

use std::path::PathBuf;

/// The one error type of the reporter.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A trail file is not gzip, is truncated, or is not a CloudTrail log.
    #[error("{message}")]
    Trail {
        /// What is wrong, and where.
        message: String,
        /// The decompressor's or parser's error.
        #[source]
        source: Option<keyguard_aws::Source>,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}", path = .0.display(), source = .1)]
    Io(PathBuf, #[source] std::io::Error),
    /// An input (evidence folder, earlier report) is not what it should be.
    #[error("{message}")]
    Input {
        /// What is wrong, and where.
        message: String,
        /// The error that says so.
        #[source]
        source: Option<keyguard_aws::Source>,
    },
    /// The invocation's payload is not a report request.
    #[error("malformed event: {0}")]
    MalformedEvent(String),
    /// A setting makes the run impossible (nowhere to deliver, no sender).
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    /// The report could not be rendered (template, chart, CSV).
    #[error("rendering the report: {message}")]
    Render {
        /// What was being rendered, and what went wrong.
        message: String,
        /// The template's, serializer's or CSV writer's error (none for a chart's).
        #[source]
        source: Option<keyguard_aws::Source>,
    },
    /// An AWS call failed (the error keeps AWS's operation, code and message).
    #[error(transparent)]
    Aws(#[from] keyguard_aws::Error),
    /// The report could not be delivered to `to` (an S3 object, an email).
    #[error("delivering the report to {to}")]
    Deliver {
        /// Where to.
        to: String,
        /// The AWS error.
        #[source]
        source: keyguard_aws::Error,
    },
    /// polars failed while joining or aggregating.
    #[error("aggregating the report data: {0}")]
    Frame(#[from] polars::error::PolarsError),
}

impl Error {
    /// The stable `errorType` of a failed invocation (what CloudWatch shows).
    pub fn error_type(&self) -> &'static str {
        match self {
            Error::Trail { .. } => "MalformedTrail",
            Error::Io(..) => "IoError",
            Error::Input { .. } => "MalformedInput",
            Error::MalformedEvent(_) => "MalformedEvent",
            Error::InvalidParameter(_) => "InvalidParameter",
            Error::Aws(e) => e.kind(),
            Error::Deliver { .. } => "DeliveryFailed",
            Error::Render { .. } => "RenderFailed",
            Error::Frame(_) => "Internal",
        }
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

/// `Result` with the reporter's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
