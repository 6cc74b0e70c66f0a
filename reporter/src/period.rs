//! Report periods: the 7 days ending on the report date, or a calendar month, each with the
//! previous period of the same kind to compare against.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// Weekly or monthly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeriodKind {
    /// The 7 days ending on the report date (inclusive).
    Weekly,
    /// One calendar month.
    Monthly,
}

impl PeriodKind {
    /// `weekly` or `monthly`.
    pub fn as_str(self) -> &'static str {
        match self {
            PeriodKind::Weekly => "weekly",
            PeriodKind::Monthly => "monthly",
        }
    }

    /// Parses `weekly` or `monthly`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "weekly" | "week" => Some(PeriodKind::Weekly),
            "monthly" | "month" => Some(PeriodKind::Monthly),
            _ => None,
        }
    }
}

/// A half-open span of whole UTC days, `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    /// Weekly or monthly.
    pub kind: PeriodKind,
    /// The first day (00:00 UTC).
    pub first_day: NaiveDate,
    /// The last day (inclusive).
    pub last_day: NaiveDate,
}

impl Period {
    /// The 7 days ending on `report_date` (inclusive).
    pub fn weekly(report_date: NaiveDate) -> Self {
        Period {
            kind: PeriodKind::Weekly,
            first_day: report_date - Duration::days(6),
            last_day: report_date,
        }
    }

    /// The calendar month of `day`.
    pub fn month_of(day: NaiveDate) -> Self {
        let first_day = day.with_day(1).expect("day 1 exists");
        let next = if first_day.month() == 12 {
            NaiveDate::from_ymd_opt(first_day.year() + 1, 1, 1)
        } else {
            NaiveDate::from_ymd_opt(first_day.year(), first_day.month() + 1, 1)
        }
        .expect("the first of a month exists");
        Period {
            kind: PeriodKind::Monthly,
            first_day,
            last_day: next - Duration::days(1),
        }
    }

    /// The monthly report of `report_date`: the last calendar month that has ended by the end of
    /// that day (the month itself on its last day, otherwise the month before). A report run on
    /// the 1st therefore covers the whole previous month.
    pub fn monthly(report_date: NaiveDate) -> Self {
        let this = Period::month_of(report_date);
        if report_date == this.last_day {
            this
        } else {
            Period::month_of(this.first_day - Duration::days(1))
        }
    }

    /// The period of `kind` for `report_date`.
    pub fn of(kind: PeriodKind, report_date: NaiveDate) -> Self {
        match kind {
            PeriodKind::Weekly => Period::weekly(report_date),
            PeriodKind::Monthly => Period::monthly(report_date),
        }
    }

    /// The period of the same kind just before this one.
    pub fn previous(&self) -> Self {
        match self.kind {
            PeriodKind::Weekly => Period::weekly(self.first_day - Duration::days(1)),
            PeriodKind::Monthly => Period::month_of(self.first_day - Duration::days(1)),
        }
    }

    /// 00:00 UTC of the first day.
    pub fn start(&self) -> DateTime<Utc> {
        self.first_day
            .and_hms_opt(0, 0, 0)
            .expect("midnight")
            .and_utc()
    }

    /// 00:00 UTC of the day after the last day (exclusive).
    pub fn end(&self) -> DateTime<Utc> {
        (self.last_day + Duration::days(1))
            .and_hms_opt(0, 0, 0)
            .expect("midnight")
            .and_utc()
    }

    /// True when `t` falls in the period.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start() <= t && t < self.end()
    }

    /// The period's stable name, used for folders and file names: `weekly-2026-11-20` (by its
    /// last day) or `monthly-2026-10`.
    pub fn id(&self) -> String {
        match self.kind {
            PeriodKind::Weekly => format!("weekly-{}", self.last_day.format("%Y-%m-%d")),
            PeriodKind::Monthly => format!("monthly-{}", self.first_day.format("%Y-%m")),
        }
    }

    /// A human label: `14–20 Nov 2026` or `October 2026`.
    pub fn label(&self) -> String {
        match self.kind {
            PeriodKind::Weekly => format!(
                "{} – {}",
                self.first_day.format("%Y-%m-%d"),
                self.last_day.format("%Y-%m-%d")
            ),
            PeriodKind::Monthly => self.first_day.format("%B %Y").to_string(),
        }
    }

    /// Every day of the period, in order.
    pub fn days(&self) -> impl Iterator<Item = NaiveDate> {
        let first = self.first_day;
        let n = (self.last_day - self.first_day).num_days() + 1;
        (0..n).map(move |i| first + Duration::days(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn weekly_is_the_seven_days_ending_on_the_report_date() {
        let p = Period::weekly(d("2026-11-20"));
        assert_eq!(
            (p.first_day, p.last_day),
            (d("2026-11-14"), d("2026-11-20"))
        );
        assert_eq!(p.days().count(), 7);
        assert_eq!(p.id(), "weekly-2026-11-20");
        let prev = p.previous();
        assert_eq!(
            (prev.first_day, prev.last_day),
            (d("2026-11-07"), d("2026-11-13"))
        );
        assert!(p.contains(d("2026-11-20").and_hms_opt(23, 59, 59).unwrap().and_utc()));
        assert!(!p.contains(d("2026-11-21").and_hms_opt(0, 0, 0).unwrap().and_utc()));
        assert!(!p.contains(d("2026-11-13").and_hms_opt(23, 59, 59).unwrap().and_utc()));
    }

    #[test]
    fn monthly_is_the_last_ended_calendar_month() {
        let p = Period::monthly(d("2026-11-20"));
        assert_eq!(
            (p.first_day, p.last_day),
            (d("2026-10-01"), d("2026-10-31"))
        );
        assert_eq!(p.id(), "monthly-2026-10");
        assert_eq!(p.label(), "October 2026");
        assert_eq!(Period::monthly(d("2026-10-31")).id(), "monthly-2026-10");
        assert_eq!(Period::monthly(d("2026-12-01")).id(), "monthly-2026-11");
        let jan = Period::monthly(d("2027-02-01"));
        assert_eq!(jan.id(), "monthly-2027-01");
        assert_eq!(jan.previous().id(), "monthly-2026-12");
        assert_eq!(jan.previous().days().count(), 31);
        assert_eq!(Period::month_of(d("2028-02-10")).days().count(), 29);
    }
}
