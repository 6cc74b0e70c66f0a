//! The one error type of rule-lambda, and the `errorType` a failed invocation reports.

/// The one error type of rule-lambda. Its message is what Config shows on a failed evaluation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The event is not a Config rule event keyguard understands.
    #[error("malformed Config event: {0}")]
    MalformedEvent(String),
    /// `ruleParameters` has an unknown or invalid parameter.
    #[error("invalid ruleParameters: {0}")]
    InvalidParameters(String),
    /// The parameters combine into invalid settings.
    #[error(transparent)]
    Settings(#[from] keyguard_core::Error),
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] keyguard_aws::Error),
    /// Config kept refusing some evaluations.
    #[error("Config rejected {} evaluation(s) after retries: {}", .0.len(), .0.join(", "))]
    EvaluationsFailed(Vec<String>),
}

impl Error {
    /// The stable `errorType` of a failed invocation (what Config and CloudWatch show).
    pub fn error_type(&self) -> &'static str {
        match self {
            Error::MalformedEvent(_) => "MalformedEvent",
            Error::InvalidParameters(_) | Error::Settings(_) => "InvalidParameter",
            Error::Aws(e) => e.kind(),
            Error::EvaluationsFailed(_) => "EvaluationsFailed",
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

/// `Result` with rule-lambda's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
