//! The reporter end to end: `keyguard report` on the bundled example (every section's numbers,
//! CSV headers snapshot, the comparison with the previous week), the page in a real headless
//! Chromium (screenshot and PDF), bad inputs, and the full live path against the emulator rig
//! (evaluations from the rule handler, group changes and key actions made through IAM and read
//! back through LookupEvents, org-trail files in the rig's S3, delivery to a folder, S3 and SES).

use crate::support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub(crate) const GROUP: &str = "IAMKeyRotationExemptionGroup";
pub(crate) const EXPIRY: &str = "keyguard:exemption-expires";

pub(crate) fn keyguard(args: &[&str], env: &[(&str, String)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keyguard"));
    cmd.args(args).current_dir(support::repo_root());
    for var in [
        "AWS_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run keyguard")
}

pub(crate) fn tmp(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A CSV as rows of header → value.
pub(crate) fn csv(path: &Path) -> Vec<BTreeMap<String, String>> {
    let mut r =
        ::csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let headers = r.headers().unwrap().clone();
    r.records()
        .map(|rec| {
            headers
                .iter()
                .zip(rec.unwrap().iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

pub(crate) fn metric(dir: &Path, name: &str) -> (String, String, String) {
    let rows = csv(&dir.join("summary.csv"));
    let r = rows
        .iter()
        .find(|r| r["metric"] == name)
        .unwrap_or_else(|| panic!("metric {name}"));
    (
        r["value"].clone(),
        r["previous"].clone(),
        r["change"].clone(),
    )
}

pub(crate) fn count(rows: &[BTreeMap<String, String>], pairs: &[(&str, &str)]) -> usize {
    rows.iter()
        .filter(|r| pairs.iter().all(|(k, v)| r[*k] == *v))
        .count()
}

/// Gzips `data` as CloudTrail delivers its files.
pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("in memory");
    e.finish().expect("in memory")
}

pub(crate) fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `keyguard report --weekly` of the bundled example into a fresh folder named after `name`:
/// the report's folder (`weekly-2026-11-20`).
pub(crate) fn weekly_example_report(name: &str) -> PathBuf {
    let out_dir = tmp(name);
    ok(&keyguard(
        &[
            "report",
            "--evidence",
            "examples/acme",
            "--weekly",
            "--out",
            out_dir.to_str().unwrap(),
        ],
        &[],
    ));
    out_dir.join("weekly-2026-11-20")
}

#[test]
fn weekly_report_of_the_bundled_example() {
    let out_dir = tmp("example-report");
    let out = keyguard(
        &[
            "report",
            "--evidence",
            "examples/acme",
            "--weekly",
            "--out",
            out_dir.to_str().unwrap(),
        ],
        &[],
    );
    let stderr = ok(&out);
    let dir = out_dir.join("weekly-2026-11-20");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        dir.display().to_string()
    );
    assert!(
        stderr.contains("account 510987654321: no Config results"),
        "{stderr}"
    );

    // The CSV schema is stable: headers are snapshot-tested.
    let mut headers = String::new();
    for (name, _) in reporter::render::CSV_TABLES {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        headers.push_str(&format!("{name}: {}\n", text.lines().next().unwrap()));
    }
    insta::assert_snapshot!("csv_headers", headers);

    // 1. Summary (4 accounts × 14 users; the sandbox account has no Config results).
    assert_eq!(metric(&dir, "accounts").0, "4");
    assert_eq!(metric(&dir, "users").0, "56");
    assert_eq!(metric(&dir, "keys").0, "68");
    assert_eq!(metric(&dir, "users_not_evaluated").0, "14");
    assert_eq!(metric(&dir, "keys_over_rotation").0, "28");
    assert_eq!(metric(&dir, "exemptions_active").0, "8");
    let (pct, prev, change) = metric(&dir, "compliant_pct");
    // 21 of the 42 evaluated users are COMPLIANT; the 14 not evaluated count against it.
    assert_eq!(
        (pct.as_str(), prev.as_str(), change.as_str()),
        ("37.5", "", "")
    );
    // 2. Key ages of the 60 Active keys.
    let ages: Vec<(String, String)> = csv(&dir.join("key-ages.csv"))
        .iter()
        .map(|r| (r["age_days"].clone(), r["active_keys"].clone()))
        .collect();
    let want: Vec<(String, String)> = [
        ("0–60", "24"),
        ("61–89", "8"),
        ("90–99", "12"),
        ("100–109", "4"),
        ("≥110", "12"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(ages, want);
    // 3. Non-compliant users: Config's 21 in the three evaluated accounts, each with a next step,
    //    and the root user with an active access key of 410987654321.
    let nc = csv(&dir.join("non-compliant-users.csv"));
    assert_eq!(nc.len(), 22);
    assert!(nc
        .iter()
        .any(|r| r["user"] == "<root_account>" && r["account"] == "410987654321"));
    assert!(nc.iter().all(|r| !r["next_action"].is_empty()), "{nc:?}");
    let backup = nc.iter().find(|r| r["user"] == "payments-backup").unwrap();
    assert_eq!(
        (
            backup["age_days"].as_str(),
            backup["days_out_of_policy"].as_str(),
            backup["next_action"].as_str()
        ),
        ("97", "7", "rotate")
    );
    assert!(
        backup["key"].starts_with("AKIA…") && backup["key"].len() < 14,
        "masked: {}",
        backup["key"]
    );
    // 3b. Where the keys due for a step are used, from the trail's calls with each key: the old
    // key of -sync (its disable in 4 days) from its runner, its successor already in use.
    let usage = csv(&dir.join("key-usage.csv"));
    let sync = usage
        .iter()
        .find(|r| r["user"] == "platform-sync")
        .expect("-sync's old key is due for its disable");
    assert_eq!(
        (
            sync["step"].as_str(),
            sync["due"].as_str(),
            sync["calls"].as_str()
        ),
        ("disable", "2026-11-24", "20")
    );
    assert_eq!(sync["sources"], "203.0.113.12 (20)");
    assert_eq!(sync["agents"], "aws-cli/2.15.0 (20)");
    assert!(
        sync["successor_first_use"].starts_with("2026-11-19"),
        "{sync:?}"
    );
    let metrics = usage
        .iter()
        .find(|r| r["user"] == "payments-metrics")
        .unwrap();
    assert_eq!(metrics["calls"], "0", "an unused key has no calls");
    assert!(
        csv(&dir.join("stalled-migrations.csv")).is_empty(),
        "every successor is in use"
    );
    // 4. Actions in the week (the trail also holds the week before, noise and denied calls).
    let actions = csv(&dir.join("actions.csv"));
    assert_eq!(
        count(&actions, &[("action", "rotation"), ("by_kind", "keyguard")]),
        4
    );
    assert_eq!(
        count(&actions, &[("action", "disable"), ("by_kind", "keyguard")]),
        5
    );
    // A person setting a key Active is a re-enable against the policy, not keyguard's restore.
    assert_eq!(
        count(&actions, &[("action", "re-enabled"), ("by_kind", "person")]),
        1
    );
    assert_eq!(count(&actions, &[("action", "restore")]), 0);
    assert_eq!(
        count(&actions, &[("action", "delete"), ("by_kind", "keyguard")]),
        4
    );
    assert_eq!(actions.len(), 14, "{actions:?}");
    // 5. Ledger: each vendor added (file delivered twice, counted once) and tagged, one removal.
    let ledger = csv(&dir.join("exemption-ledger.csv"));
    assert_eq!(ledger.len(), 9, "{ledger:?}");
    assert_eq!(count(&ledger, &[("granted_while_overdue", "true")]), 8);
    let added = ledger
        .iter()
        .find(|r| r["user"] == "payments-vendor" && r["change"] == "added to the exemption group")
        .unwrap();
    assert!(added["by"].ends_with("/alice@acme.example"), "{added:?}");
    assert_eq!(
        added["expiry_at_change"], "unknown",
        "the tag changed later; before that is not in the trail"
    );
    let tagged = ledger
        .iter()
        .find(|r| r["user"] == "payments-vendor" && r["change"].starts_with("expiry tag set"))
        .unwrap();
    assert_eq!(tagged["expiry_at_change"], "2027-01-04");
    assert_eq!(
        count(&ledger, &[("change", "removed from the exemption group")]),
        1
    );
    let expiring = csv(&dir.join("exemptions-expiring.csv"));
    assert_eq!(expiring.len(), 4);
    assert!(expiring
        .iter()
        .all(|r| r["days_left"] == "20" && r["user"].ends_with("-audit-tool")));
    // 6. Freshness.
    let fresh = csv(&dir.join("freshness.csv"));
    let acct = |id: &str| fresh.iter().find(|r| r["account"] == id).unwrap().clone();
    assert_eq!(acct("510987654321")["config"], "no results collected");
    assert_eq!(acct("510987654321")["users_evaluated"], "0");
    assert_eq!(acct("410987654321")["stale"], "true");
    assert_eq!(acct("310987654321")["stale"], "false");
    assert_eq!(acct("310987654321")["users_evaluated"], "14");
    assert_eq!(
        acct("310987654321")["trail_events"],
        "8",
        "followed, in the week, not denied"
    );
    // 7. Controls.
    let controls = csv(&dir.join("controls.csv"));
    assert_eq!(controls.len(), 11);
    let iam4 = controls.iter().find(|r| r["control"] == "IAM.4").unwrap();
    assert_eq!(iam4["failing_users"], "1", "the root user of 410987654321");
    let iam3 = controls.iter().find(|r| r["control"] == "IAM.3").unwrap();
    assert_eq!(iam3["failing_users"], "20", "NON_COMPLIANT for age: backup, reporting, sync, etl, vendor-old × 4 (exempt users are not failing)");

    // The page: every section, self-contained.
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    for id in [
        "summary",
        "charts",
        "non-compliant",
        "actions",
        "ledger",
        "freshness",
        "controls",
    ] {
        assert!(html.contains(&format!("id=\"{id}\"")), "section {id}");
    }
    assert_self_contained(&html);

    // A week later, the same folder: the previous report is found and compared.
    let out = keyguard(
        &[
            "report",
            "--evidence",
            "examples/acme",
            "--weekly",
            "--as-of",
            "2026-11-27",
            "--out",
            out_dir.to_str().unwrap(),
        ],
        &[],
    );
    ok(&out);
    let next = out_dir.join("weekly-2026-11-27");
    assert_eq!(
        metric(&next, "users"),
        ("56".into(), "56".into(), "0".into())
    );
    let trend = csv(&next.join("trend.csv"));
    assert_eq!(
        trend
            .iter()
            .map(|r| r["period"].as_str())
            .collect::<Vec<_>>(),
        ["weekly-2026-11-20", "weekly-2026-11-27"]
    );
    assert!(std::fs::read_to_string(next.join("report.html"))
        .unwrap()
        .contains("compared with 2026-11-14 – 2026-11-20"));
}

/// No script, no external stylesheet, image or font: the page fetches nothing.
pub(crate) fn assert_self_contained(html: &str) {
    for bad in ["<script", "src=", "<link", "@import", "url("] {
        assert!(
            !html.contains(bad),
            "the report must be self-contained, found {bad:?}"
        );
    }
    let without_svg_ns = html.replace("http://www.w3.org/2000/svg", "");
    assert!(
        !without_svg_ns.contains("http://") && !without_svg_ns.contains("https://"),
        "no external address"
    );
}

pub(crate) fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in ["/usr/bin", "/usr/local/bin"] {
            let p = Path::new(dir).join(name);
            if p.exists() {
                return p;
            }
        }
    }
    panic!("headless Chromium is needed (Debian: apt-get install chromium); test.sh installs it");
}

pub(crate) fn headless(args: &[String]) -> Output {
    let profile = tmp("chromium-profile");
    Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("run chromium")
}

#[test]
fn the_page_renders_in_headless_chromium() {
    let report = weekly_example_report("chromium-report");
    let html = report.join("report.html");
    let url = format!("file://{}", html.display());
    // Kept next to the test binaries so a person can look at it.
    let png = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-screenshot.png");
    let _ = std::fs::remove_file(&png);
    let shot = headless(&[
        format!("--screenshot={}", png.display()),
        "--window-size=1280,4200".into(),
        url.clone(),
    ]);
    let bytes = std::fs::read(&png).unwrap_or_else(|e| {
        panic!(
            "no screenshot ({e}): {}",
            String::from_utf8_lossy(&shot.stderr)
        )
    });
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), (1280, 4200));
    // A blank page compresses to a few KB; tables, cards and two charts do not.
    assert!(
        bytes.len() > 60_000,
        "screenshot looks empty ({} bytes)",
        bytes.len()
    );
    eprintln!("screenshot: {}", png.display());

    // It prints: a PDF of several pages.
    let pdf = report.join("report.pdf");
    let printed = headless(&[
        format!("--print-to-pdf={}", pdf.display()),
        "--no-pdf-header-footer".into(),
        url,
    ]);
    let bytes = std::fs::read(&pdf)
        .unwrap_or_else(|e| panic!("no PDF ({e}): {}", String::from_utf8_lossy(&printed.stderr)));
    assert!(bytes.starts_with(b"%PDF"));
    let pages = bytes
        .windows(10)
        .filter(|w| w == b"/Type /Pag" || w == b"/Type/Page")
        .count();
    assert!(pages >= 2, "expected several pages, found {pages}");
}

#[test]
fn bad_inputs_are_named_and_the_rest_is_reported() {
    let evidence = tmp("bad-evidence");
    copy_dir(&support::repo_root().join("examples/acme"), &evidence);
    // A folder put together by hand (no manifest): its bad files cost only themselves. (With the
    // manifest they would cost their account's slice: tests/it/attacks_member.rs.)
    std::fs::remove_file(evidence.join("manifest.json")).unwrap();
    let trail = evidence
        .join("cloudtrail/AWSLogs/o-acme0example/310987654321/CloudTrail/us-east-1/2026/11/18");
    std::fs::create_dir_all(&trail).unwrap();
    let good = std::fs::read_dir(
        evidence
            .join("cloudtrail/AWSLogs/o-acme0example/210987654321/CloudTrail/us-east-1/2026/11/16"),
    )
    .unwrap()
    .next()
    .unwrap()
    .unwrap()
    .path();
    let bytes = std::fs::read(good).unwrap();
    std::fs::write(trail.join("truncated.json.gz"), &bytes[..bytes.len() / 2]).unwrap();
    std::fs::write(
        trail.join("not-a-trail.json.gz"),
        gzip(br#"{"items": [1, 2]}"#),
    )
    .unwrap();
    std::fs::write(
        evidence.join("410987654321/config-compliance.json"),
        "{ not json",
    )
    .unwrap();
    let out_dir = tmp("bad-report");
    let out = keyguard(
        &[
            "report",
            "--evidence",
            evidence.to_str().unwrap(),
            "--weekly",
            "--out",
            out_dir.to_str().unwrap(),
        ],
        &[],
    );
    let stderr = ok(&out);
    for want in [
        "truncated.json.gz: gzip",
        "not-a-trail.json.gz: not a CloudTrail log file",
        "account 410987654321: Config results could not be read",
        "account 510987654321: no Config results",
        "the evidence folder has no manifest.json: its slices are not checked",
    ] {
        assert!(stderr.contains(want), "stderr lacks {want:?}: {stderr}");
    }
    assert!(!stderr.contains("panicked"));
    let dir = out_dir.join("weekly-2026-11-20");
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("Inputs that could not be used") && html.contains("truncated.json.gz"));
    assert_eq!(
        csv(&dir.join("actions.csv")).len(),
        14,
        "the readable files still count"
    );
    assert_eq!(metric(&dir, "users_not_evaluated").0, "28");

    // An empty period: said so, and still a complete report.
    let out = keyguard(
        &[
            "report",
            "--evidence",
            "examples/acme",
            "--weekly",
            "--as-of",
            "2027-06-01",
            "--out",
            out_dir.to_str().unwrap(),
        ],
        &[],
    );
    let stderr = ok(&out);
    assert!(
        stderr.contains("no followed CloudTrail events in 2027-05-26 – 2027-06-01"),
        "{stderr}"
    );
    let empty = out_dir.join("weekly-2027-06-01");
    assert_eq!(csv(&empty.join("actions.csv")).len(), 0);
    assert_eq!(
        std::fs::read_to_string(empty.join("actions.csv"))
            .unwrap()
            .lines()
            .count(),
        1,
        "the header is still written"
    );

    // Nowhere to deliver: refused before any work.
    let out = keyguard(&["report", "--evidence", "examples/acme", "--weekly"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nowhere to deliver"));
}

pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

// ------------------------------------------------------------------ against the rig
