//! The auditors' page at any size: an evidence folder of many accounts (`examples/scale.py`)
//! reported with a small `REPORT_PAGE_ROWS`: each table of the page shows at most that many rows,
//! the worst first, and says how many it left out and which CSV holds them; the CSVs and the
//! OCSF findings are the same whatever the page shows. (The figures at 10,000 accounts are a
//! benchmark: docs/performance.md.)

use std::process::Command;

use crate::report::{csv, keyguard, ok, tmp};
use crate::support::repo_root;

fn weekly(dir: &std::path::Path) -> std::path::PathBuf {
    dir.join("weekly-2026-11-20")
}

/// Every file of two report folders is the same, byte for byte.
fn same_files(a: &std::path::Path, b: &std::path::Path) {
    let names = |d: &std::path::Path| {
        let mut n: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        n.sort();
        n
    };
    assert_eq!(names(a), names(b));
    for name in names(a) {
        assert!(
            std::fs::read(a.join(&name)).unwrap() == std::fs::read(b.join(&name)).unwrap(),
            "{name:?} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
}

/// The example built one account at a time writes exactly what one build writes: the CSVs, the
/// OCSF findings, the page, the snapshot (the ordered tables merged from the shards, the root
/// users' findings last, the figures from the merged key ages).
#[test]
fn the_example_built_in_shards_is_the_example_built_at_once() {
    let one = tmp("shards-one");
    let shards = tmp("shards-each");
    for (out, shard) in [(&one, "1000"), (&shards, "1")] {
        ok(&keyguard(
            &[
                "report",
                "--weekly",
                "--evidence",
                "examples/acme",
                "--out",
                out.to_str().unwrap(),
            ],
            &[("REPORT_SHARD_ACCOUNTS", shard.to_string())],
        ));
    }
    same_files(&weekly(&one), &weekly(&shards));
}

#[test]
fn the_page_shows_the_worst_rows_and_the_csvs_keep_every_row() {
    let evidence = tmp("scale-evidence");
    let made = Command::new("python3")
        .arg(repo_root().join("examples/scale.py"))
        .arg("40")
        .arg(&evidence)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    // Problems of every kind, in shards other than the first: an account without Config
    // results, one without its conformance pack (the report lists them in one build's order).
    std::fs::remove_file(evidence.join("600000000010/config-compliance.json")).unwrap();
    std::fs::remove_file(evidence.join("600000000020/conformance-pack-compliance.json")).unwrap();
    let report = |name: &str, rows: &str, shard: &str| {
        let out = tmp(name);
        ok(&keyguard(
            &[
                "report",
                "--weekly",
                "--evidence",
                evidence.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ],
            &[
                ("REPORT_PAGE_ROWS", rows.to_string()),
                ("REPORT_SHARD_ACCOUNTS", shard.to_string()),
            ],
        ));
        weekly(&out)
    };
    let full = report("scale-full", "100000", "1000");
    let small = report("scale-small", "25", "1000");
    // Built 7 accounts at a time (six shards), in bounded memory: every file the same as one
    // build's, the page included.
    for (one, shards) in [
        (&full, report("scale-full-sharded", "100000", "7")),
        (&small, report("scale-small-sharded", "25", "7")),
    ] {
        same_files(one, &shards);
    }
    // Every file but the page is the same.
    for entry in std::fs::read_dir(&full).unwrap() {
        let name = entry.unwrap().file_name();
        if name == "report.html" {
            continue;
        }
        assert_eq!(
            std::fs::read(full.join(&name)).unwrap(),
            std::fs::read(small.join(&name)).unwrap(),
            "{name:?} differs with a smaller page"
        );
    }
    let rows = csv(&small.join("non-compliant-users.csv"));
    assert!(rows.len() > 25, "{} rows", rows.len());
    let page = std::fs::read_to_string(small.join("report.html")).unwrap();
    assert!(
        page.contains(&format!(
            "This page shows the worst 25 of {}; every one is in <a href=\"non-compliant-users.csv\">",
            rows.len()
        )),
        "the page says what it left out"
    );
    // The worst are the ones shown: the largest days out of policy.
    let mut days: Vec<i64> = rows
        .iter()
        .filter_map(|r| r["days_out_of_policy"].parse().ok())
        .collect();
    days.sort_unstable_by(|a, b| b.cmp(a));
    let shown_rows = page.matches("<tr><td>6000000000").count();
    assert!(
        shown_rows <= 25 * 10,
        "{shown_rows} account rows across the ten bounded tables"
    );
    // The per-account tables are bounded too (40 accounts, 39 with the pack, 25 shown).
    for (csv, n) in [("freshness.csv", 40), ("conformance-pack.csv", 39)] {
        assert!(
            page.contains(&format!(
                "This page shows the first 25 of {n}; every one is in <a href=\"{csv}\">"
            )),
            "{csv}"
        );
    }
    assert!(page.contains("1 account(s) have no keyguard-access-keys conformance pack"));
    let worst = days[0];
    assert!(
        page.contains(&format!("<td class=\"num\">{worst}</td>")),
        "the worst row is shown"
    );
    let full_page = std::fs::read_to_string(full.join("report.html")).unwrap();
    assert!(
        page.len() < full_page.len() / 2,
        "{} vs {}",
        page.len(),
        full_page.len()
    );
    assert!(
        !full_page.contains("This page shows"),
        "a page that fits says nothing"
    );
}
