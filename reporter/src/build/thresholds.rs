//! The report's fixed figures: the snapshot's version, the trend's length, the windows for
//! expiring exemptions and stale evaluations, and the key-age buckets.

/// The version of `summary.json`.
pub const SNAPSHOT_VERSION: u32 = 1;
/// How many earlier periods the trend shows.
pub const TREND_POINTS: usize = 12;
/// Exemptions ending within this many days are listed.
pub const EXPIRING_WITHIN_DAYS: i64 = 30;
/// A Config evaluation older than this before the report date is flagged stale.
pub const STALE_AFTER_DAYS: i64 = 2;

/// The key-age buckets of the distribution chart: label and lowest age (days) in the bucket.
pub const AGE_BUCKETS: [(&str, i64); 5] = [
    ("0–60", 0),
    ("61–89", 61),
    ("90–99", 90),
    ("100–109", 100),
    ("≥110", 110),
];
