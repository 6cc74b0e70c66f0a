//! The reporter: Config results, CloudTrail events and the key inventory in; weekly and monthly
//! auditor reports out (one self-contained HTML page and one CSV per table).
//!
//! - [`period`]: the 7 days ending on the report date, or a calendar month, and the period before.
//! - [`model`]: [`Inputs`] (per account: inventory and Config state; CloudTrail events; earlier
//!   reports' `summary.json`) and [`Report`] (the seven sections, formatted).
//! - [`build()`]: inputs → report, pure (polars joins the users with Config's verdicts and
//!   aggregates key ages; the policy gives reasons and next actions).
//! - [`render`]: report → `report.html` (handlebars, inline CSS and SVG charts drawn with
//!   plotters), the CSVs, `summary.json`.
//! - [`evidence`]: inputs from an evidence folder; [`live`]: from AWS (Config per account or
//!   through an aggregator; CloudTrail from paced `LookupEvents`, the org trail in S3, or a folder).
//! - [`deliver`]: to a folder, S3, and SESv2 email; earlier reports read back for the comparison.
//! - [`cloudtrail`]: org-trail `.json.gz` files → the followed IAM events, in parallel,
//!   de-duplicated, with unreadable files listed rather than fatal.
//! - [`lambda`]: the `reporter` Lambda's handler (EventBridge schedule → S3 and email).

pub mod build;
pub mod cloudtrail;
pub mod deliver;
pub mod evidence;
pub mod lambda;
pub mod live;
pub mod model;
pub mod period;
pub mod render;

use std::path::PathBuf;

pub use build::build;
pub use model::{AccountInput, ConfigState, Inputs, Kpis, Report, Snapshot, TrailInput};
pub use period::{Period, PeriodKind};

/// The one error type of the reporter.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A trail file is not gzip, is truncated, or is not a CloudTrail log.
    #[error("{0}")]
    Trail(String),
    /// A file could not be read or written.
    #[error("{path}: {source}", path = .0.display(), source = .1)]
    Io(PathBuf, #[source] std::io::Error),
    /// An input (evidence folder, earlier report) is not what it should be.
    #[error("{0}")]
    Input(String),
    /// The report could not be rendered (template, chart, CSV).
    #[error("rendering the report: {0}")]
    Render(String),
    /// polars failed while joining or aggregating.
    #[error("aggregating the report data: {0}")]
    Frame(#[from] polars::error::PolarsError),
}

/// `Result` with the reporter's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
