//! The page's tables, bounded: each shows at most the report's `page_rows` rows, the worst first
//! when it cannot show all, and says what it left out and which CSV holds every row. Only these
//! rows become the template's data, so the page's size and memory do not grow with the
//! organization.

use serde::Serialize;

use crate::model::{
    ActionRow, DisagreementRow, ExpiringRow, FreshnessRow, KeyUsageRow, LedgerRow, NonCompliantRow,
    OutsideOwnerRow, PackRow, Report, StalledRow,
};

/// What a page table left out: shown / total and the CSV holding every row.
#[derive(Serialize)]
pub(crate) struct Omitted {
    more: bool,
    shown: usize,
    total: usize,
    csv: &'static str,
}

/// The at most `rows` rows of a table the page shows: the worst first (by `badness`, higher
/// first; equal rows in the report's order) when it cannot show all, else the report's order.
///
/// `total` is the table's row count, `all.len()` unless the report holds only some rows (a
/// report built in shards holds the page's worst rows already, chosen the same way:
/// [`crate::sharded`]).
fn top<'a, T>(
    all: &'a [T],
    total: usize,
    rows: usize,
    csv: &'static str,
    badness: Option<fn(&T) -> i64>,
) -> (Vec<&'a T>, Omitted) {
    let mut shown: Vec<&T> = all.iter().collect();
    if total > rows {
        if let Some(bad) = badness {
            shown.sort_by_key(|r| std::cmp::Reverse(bad(r)));
        }
        shown.truncate(rows);
    }
    let omitted = Omitted {
        more: total > rows,
        shown: shown.len(),
        total,
        csv,
    };
    (shown, omitted)
}

/// The page's tables, each at most [`Report::page_rows`] rows (the CSVs hold every row), and
/// what each left out. Only these rows are turned into the template's data: a page's memory does
/// not grow with the organization.
#[derive(Serialize)]
pub(crate) struct Tables<'a> {
    problems: Vec<&'a String>,
    non_compliant: Vec<&'a NonCompliantRow>,
    disagreements: Vec<&'a DisagreementRow>,
    pack: Vec<&'a PackRow>,
    outside_owners: Vec<&'a OutsideOwnerRow>,
    key_usage: Vec<&'a KeyUsageRow>,
    stalled: Vec<&'a StalledRow>,
    actions: Vec<&'a ActionRow>,
    ledger: Vec<&'a LedgerRow>,
    expiring: Vec<&'a ExpiringRow>,
    freshness: Vec<&'a FreshnessRow>,
    omitted: std::collections::BTreeMap<&'static str, Omitted>,
}

impl<'a> Tables<'a> {
    pub(crate) fn of(r: &'a Report, rows: usize) -> Self {
        let mut omitted = std::collections::BTreeMap::new();
        let mut take = |name: &'static str, o: Omitted| {
            omitted.insert(name, o);
        };
        macro_rules! table {
            ($field:ident, $csv:expr, $bad:expr) => {{
                let (shown, o) = top(&r.$field, r.total($csv, r.$field.len()), rows, $csv, $bad);
                take(stringify!($field), o);
                shown
            }};
        }
        Tables {
            problems: table!(problems, "", None),
            non_compliant: table!(
                non_compliant,
                "non-compliant-users.csv",
                Some(badness::non_compliant)
            ),
            disagreements: table!(disagreements, "disagreements.csv", None),
            pack: table!(pack, "conformance-pack.csv", Some(badness::pack)),
            outside_owners: table!(outside_owners, "outside-owners.csv", None),
            key_usage: table!(key_usage, "key-usage.csv", Some(badness::key_usage)),
            stalled: table!(stalled, "stalled-migrations.csv", None),
            actions: table!(actions, "actions.csv", None),
            ledger: table!(ledger, "exemption-ledger.csv", None),
            expiring: table!(expiring, "exemptions-expiring.csv", None),
            freshness: table!(freshness, "freshness.csv", Some(badness::freshness)),
            omitted,
        }
    }
}

/// How bad a row is, for the tables the page shows the worst of (higher first).
pub(crate) mod badness {
    use crate::model::{FreshnessRow, KeyUsageRow, NonCompliantRow, PackRow};

    /// The longest out of policy first.
    pub(crate) fn non_compliant(x: &NonCompliantRow) -> i64 {
        x.days_out_of_policy.unwrap_or(i64::MIN)
    }
    /// Accounts whose pack disagrees with keyguard first.
    pub(crate) fn pack(x: &PackRow) -> i64 {
        i64::from(!x.finding.is_empty())
    }
    /// The most used keys first.
    pub(crate) fn key_usage(x: &KeyUsageRow) -> i64 {
        i64::try_from(x.calls).unwrap_or(i64::MAX)
    }
    /// Stale or unreadable accounts first.
    pub(crate) fn freshness(x: &FreshnessRow) -> i64 {
        i64::from(x.stale || x.inventory != "read")
    }
}
