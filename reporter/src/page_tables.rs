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
fn top<'a, T>(
    all: &'a [T],
    rows: usize,
    csv: &'static str,
    badness: Option<fn(&T) -> i64>,
) -> (Vec<&'a T>, Omitted) {
    let mut shown: Vec<&T> = all.iter().collect();
    if all.len() > rows {
        if let Some(bad) = badness {
            shown.sort_by_key(|r| std::cmp::Reverse(bad(r)));
        }
        shown.truncate(rows);
    }
    let omitted = Omitted {
        more: all.len() > rows,
        shown: shown.len(),
        total: all.len(),
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
                let (shown, o) = top(&r.$field, rows, $csv, $bad);
                take(stringify!($field), o);
                shown
            }};
        }
        Tables {
            problems: table!(problems, "", None),
            non_compliant: table!(
                non_compliant,
                "non-compliant-users.csv",
                Some(|x: &NonCompliantRow| x.days_out_of_policy.unwrap_or(i64::MIN))
            ),
            disagreements: table!(disagreements, "disagreements.csv", None),
            pack: table!(
                pack,
                "conformance-pack.csv",
                Some(|x: &PackRow| i64::from(!x.finding.is_empty()))
            ),
            outside_owners: table!(outside_owners, "outside-owners.csv", None),
            key_usage: table!(
                key_usage,
                "key-usage.csv",
                Some(|x: &KeyUsageRow| i64::try_from(x.calls).unwrap_or(i64::MAX))
            ),
            stalled: table!(stalled, "stalled-migrations.csv", None),
            actions: table!(actions, "actions.csv", None),
            ledger: table!(ledger, "exemption-ledger.csv", None),
            expiring: table!(expiring, "exemptions-expiring.csv", None),
            freshness: table!(
                freshness,
                "freshness.csv",
                Some(|x: &FreshnessRow| i64::from(x.stale || x.inventory != "read"))
            ),
            omitted,
        }
    }
}
