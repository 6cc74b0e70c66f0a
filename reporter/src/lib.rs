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
//! - [`lambda`]: the `reporter` Lambda's entry: a report made in one invocation (the schedule
//!   → S3 and email), or handed out to the queue;
//! - [`queued_report`]: a report at organization scale: one invocation per account writes its
//!   slice of the evidence folder in S3, the last one's follow-up builds and delivers the report.
//! - [`security_lake`]: the findings as an Amazon Security Lake custom source writes them (OCSF
//!   1.3 Parquet, one object per account and event day).

pub mod build;
pub mod cloudtrail;
pub mod deliver;
mod error;
pub mod evidence;
mod function;
pub mod lambda;
pub mod live;
pub mod model;
mod page_tables;
pub mod period;
pub mod queued_report;
pub mod render;
mod scheduled;
pub mod security_lake;
pub mod sharded;
pub mod usage_input;

pub use build::build;
pub use error::{Error, Result};
pub use model::{AccountInput, ConfigState, Inputs, Kpis, Report, Snapshot, TrailInput};
pub use period::{Period, PeriodKind};
