//! The one error type of keyguard-core.

/// What can go wrong in the policy core: only bad settings, everything else is data.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// A setting has a value keyguard refuses; `setting` is the aws-samples-style name
    /// (`RotationPeriod`, …) so the message points at the parameter to fix.
    #[error("invalid setting {setting}: {reason}")]
    InvalidSetting {
        /// The setting's name, as in `docs/policy.md` and the Config rule parameters.
        setting: &'static str,
        /// Why the value was refused.
        reason: String,
    },
}

/// `Result` with keyguard-core's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
