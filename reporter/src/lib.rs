//! The reporter: Config results, CloudTrail events and the key inventory in; weekly and monthly
//! auditor reports out (in progress: the CloudTrail reader is here, the report is not yet).
//!
//! - [`cloudtrail`]: org-trail `.json.gz` files → the followed IAM events (exemption-group changes,
//!   key actions), in parallel, de-duplicated, with unreadable files listed rather than fatal.
//! - [`trailgen`]: a deterministic generator of trail files for the benchmark and tests.

pub mod cloudtrail;
pub mod trailgen;

use std::path::PathBuf;

/// The one error type of the reporter.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A trail file is not gzip, is truncated, or is not a CloudTrail log.
    #[error("{0}")]
    Trail(String),
    /// A file could not be read.
    #[error("{path}: {source}", path = .0.display(), source = .1)]
    Io(PathBuf, #[source] std::io::Error),
}

/// `Result` with the reporter's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
