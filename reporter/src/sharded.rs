//! The report of an evidence folder of any size in bounded memory (docs/performance.md, "The
//! report at scale"): the accounts are built a shard at a time ([`SHARD_ACCOUNTS`]) by the one
//! [`crate::build()`]; each shard's per-user rows are written to files as it is done and its
//! figures added up ([`crate::build::merge`]); only the page's rows of each table (the worst
//! first, chosen as the page chooses them) stay in memory. The CSVs come out as one build writes
//! them: tables ordered across accounts are merged from the shards' files by their order,
//! tables in account order are the shards' rows one after the other; `findings.ocsf.json` is the
//! shards' findings in order. A folder of at most one shard is one build, as before.

use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use keyguard_aws::evidence::Evidence;

use crate::build::merge::{add_figures, finish_figures};
use crate::build::{missing_pack_problem, no_events_problem, outside_owners_problem};
use crate::error::{Error, Result};
use crate::evidence::{account_input, in_scope, inputs_of, trail, Options};
use crate::model::*;
use crate::page_tables::badness;
use crate::render::{csvs, html, rows, Body, Rendered, CSV_TABLES, HTML_NAME, OCSF_NAME};
use crate::render::{BEYOND_CAP_GRANTS, OVERDUE_GRANTS, PACK_FINDINGS, SNAPSHOT_NAME};

/// Accounts built at once: at ~6 KB a user, 200 accounts of 100 users hold ~120 MB.
pub const SHARD_ACCOUNTS: usize = 200;
/// The most shards of one report (more accounts make larger shards): the merge holds one open
/// file per shard, and Lambda allows 1,024.
pub const MAX_SHARDS: usize = 500;

/// The tables ordered across accounts, merged from the shards by each row's order key.
const MERGED: [&str; 4] = [
    "non-compliant-users.csv",
    "actions.csv",
    "exemption-ledger.csv",
    "exemptions-expiring.csv",
];
/// The tables in account order: the shards' rows one after the other.
const CONCATENATED: [&str; 6] = [
    "outside-owners.csv",
    "disagreements.csv",
    "conformance-pack.csv",
    "key-usage.csv",
    "stalled-migrations.csv",
    "freshness.csv",
];

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::Io(path.to_path_buf(), e)
}
fn csv_err(path: &Path) -> impl FnOnce(csv::Error) -> Error + '_ {
    move |e| Error::Render {
        message: format!("{}: {e}", path.display()),
        source: Some(Box::new(e)),
    }
}

/// An integer as a key that sorts as the integer does.
fn ordered(n: i64) -> String {
    format!("{:020}", i128::from(n) - i128::from(i64::MIN))
}

/// Each row's place in `table`'s order across accounts, exactly as [`crate::build()`] sorts it
/// (the root users' rows after every user's, in account order).
fn order_keys(r: &Report, table: &str) -> Vec<String> {
    match table {
        "non-compliant-users.csv" => r
            .non_compliant
            .iter()
            .map(|x| {
                if x.user == keyguard_core::ROOT_USER {
                    format!("1{}", x.account)
                } else {
                    let days = x
                        .days_out_of_policy
                        .map_or("1".to_string(), |d| format!("0{}", ordered(i64::MAX - d)));
                    format!("0{days}\0{}\0{}", x.account, x.user)
                }
            })
            .collect(),
        "actions.csv" => r
            .actions
            .iter()
            .map(|x| format!("{}\0{}\0{}", x.time, x.account, x.user))
            .collect(),
        "exemption-ledger.csv" => r
            .ledger
            .iter()
            .map(|x| format!("{}\0{}\0{}", x.time, x.account, x.user))
            .collect(),
        _ => r
            .expiring
            .iter()
            .map(|x| format!("{}\0{}", ordered(x.days_left), x.user))
            .collect(),
    }
}

/// The page's rows of one table across shards: at most `n`, the worst first by `bad` (ties and
/// tables without badness in the table's order).
struct Kept<T> {
    rows: Vec<((std::cmp::Reverse<i64>, String), T)>,
    bad: Option<fn(&T) -> i64>,
    n: usize,
    total: usize,
}

impl<T> Kept<T> {
    fn new(n: usize, bad: Option<fn(&T) -> i64>) -> Self {
        Kept {
            rows: Vec::new(),
            bad,
            n,
            total: 0,
        }
    }

    fn add(&mut self, rows: Vec<T>, order: impl Fn(usize) -> String) {
        self.total += rows.len();
        let bad = self.bad;
        self.rows.extend(rows.into_iter().enumerate().map(|(i, r)| {
            let b = std::cmp::Reverse(bad.map_or(0, |f| f(&r)));
            ((b, order(i)), r)
        }));
        self.rows.sort_by(|a, b| a.0.cmp(&b.0));
        self.rows.truncate(self.n);
    }

    /// The rows as the page shows them: all in the table's order when they are all there.
    fn finish(mut self) -> Vec<T> {
        if self.total <= self.n {
            self.rows.sort_by(|a, b| a.0 .1.cmp(&b.0 .1));
        }
        self.rows.into_iter().map(|(_, r)| r).collect()
    }
}

/// Every per-user table's rows kept for the page.
struct Page {
    non_compliant: Kept<NonCompliantRow>,
    disagreements: Kept<DisagreementRow>,
    pack: Kept<PackRow>,
    outside_owners: Kept<OutsideOwnerRow>,
    key_usage: Kept<KeyUsageRow>,
    stalled: Kept<StalledRow>,
    actions: Kept<ActionRow>,
    ledger: Kept<LedgerRow>,
    expiring: Kept<ExpiringRow>,
    freshness: Kept<FreshnessRow>,
    counts: BTreeMap<&'static str, usize>,
}

/// What a shard leaves on disk: each table's rows, the findings.
struct Spill {
    dir: PathBuf,
    shards: usize,
    concatenated: BTreeMap<&'static str, csv::Writer<File>>,
    ocsf: BufWriter<File>,
    /// The same findings one a line, for Security Lake (read back a line at a time).
    lines: BufWriter<File>,
    /// The root users' findings, written at the end of the array.
    roots: Vec<String>,
    findings: usize,
}

/// The findings one a line (not a report file: what Security Lake is written from).
pub const FINDING_LINES: &str = "findings.jsonl";

impl Spill {
    fn new(dir: &Path) -> Result<Spill> {
        let mut concatenated = BTreeMap::new();
        for name in CONCATENATED {
            let path = dir.join(name);
            let mut w = csv::Writer::from_path(&path).map_err(csv_err(&path))?;
            w.write_record(header(name)).map_err(csv_err(&path))?;
            concatenated.insert(name, w);
        }
        let path = dir.join(OCSF_NAME);
        let mut ocsf = BufWriter::new(File::create(&path).map_err(io(&path))?);
        ocsf.write_all(b"[").map_err(io(&path))?;
        let path = dir.join(FINDING_LINES);
        let lines = BufWriter::new(File::create(&path).map_err(io(&path))?);
        Ok(Spill {
            dir: dir.to_path_buf(),
            shards: 0,
            concatenated,
            ocsf,
            lines,
            roots: Vec::new(),
            findings: 0,
        })
    }

    fn shard_file(&self, table: &str, shard: usize) -> PathBuf {
        self.dir.join(format!("{table}.{shard:06}"))
    }

    /// One finding into the array.
    fn finding(&mut self, text: &str) -> Result<()> {
        if self.findings > 0 {
            self.ocsf.write_all(b",").map_err(io(&self.dir))?;
        }
        self.ocsf
            .write_all(text.as_bytes())
            .map_err(io(&self.dir))?;
        self.findings += 1;
        Ok(())
    }

    /// One shard's rows and findings, written.
    fn add(&mut self, r: &Report) -> Result<()> {
        for name in MERGED {
            let path = self.shard_file(name, self.shards);
            let mut w = csv::Writer::from_path(&path).map_err(csv_err(&path))?;
            let keys = order_keys(r, name);
            let rows = rows(r, name);
            debug_assert_eq!(keys.len(), rows.len(), "{name}");
            for (key, row) in keys.into_iter().zip(rows) {
                w.write_record(std::iter::once(key).chain(row))
                    .map_err(csv_err(&path))?;
            }
            w.flush().map_err(io(&path))?;
        }
        for (name, w) in &mut self.concatenated {
            for row in rows(r, name) {
                w.write_record(&row).map_err(csv_err(&self.dir))?;
            }
        }
        // The array as one build orders it: every user's finding, the root users' last (kept
        // aside until the end); the lines grouped by account, as Security Lake is written.
        for f in &r.ocsf {
            let text = f.get();
            if is_root(text) {
                self.roots.push(text.to_string());
            } else {
                self.finding(text)?;
            }
        }
        let mut by_account: Vec<&str> = r.ocsf.iter().map(|f| f.get()).collect();
        by_account.sort_by_cached_key(|f| crate::security_lake::account_of_text(f));
        for text in by_account {
            self.lines
                .write_all(text.as_bytes())
                .and_then(|()| self.lines.write_all(b"\n"))
                .map_err(io(&self.dir))?;
        }
        self.shards += 1;
        Ok(())
    }

    /// Every table's CSV and the findings, finished: the merged tables merged by their order
    /// (equal keys in shard order).
    fn finish(mut self) -> Result<BTreeMap<&'static str, PathBuf>> {
        let mut out = BTreeMap::new();
        for name in MERGED {
            let path = self.dir.join(name);
            let mut w = csv::Writer::from_path(&path).map_err(csv_err(&path))?;
            w.write_record(header(name)).map_err(csv_err(&path))?;
            let mut readers = (0..self.shards)
                .map(|s| {
                    let p = self.shard_file(name, s);
                    csv::ReaderBuilder::new()
                        .has_headers(false)
                        .from_path(&p)
                        .map_err(csv_err(&p))
                        .map(|r| r.into_records())
                })
                .collect::<Result<Vec<_>>>()?;
            let mut heap = BinaryHeap::new();
            let next = |s: usize, readers: &mut Vec<_>| -> Result<Option<Vec<String>>> {
                let r: &mut csv::StringRecordsIntoIter<File> = &mut readers[s];
                Ok(r.next()
                    .transpose()
                    .map_err(csv_err(&path))?
                    .map(|rec| rec.iter().map(String::from).collect()))
            };
            for s in 0..self.shards {
                if let Some(rec) = next(s, &mut readers)? {
                    heap.push(std::cmp::Reverse((rec[0].to_string(), s, rec)));
                }
            }
            while let Some(std::cmp::Reverse((_, s, rec))) = heap.pop() {
                w.write_record(rec.iter().skip(1)).map_err(csv_err(&path))?;
                if let Some(rec) = next(s, &mut readers)? {
                    heap.push(std::cmp::Reverse((rec[0].to_string(), s, rec)));
                }
            }
            w.flush().map_err(io(&path))?;
            for s in 0..self.shards {
                let _ = std::fs::remove_file(self.shard_file(name, s));
            }
            out.insert(name, path);
        }
        for (name, mut w) in std::mem::take(&mut self.concatenated) {
            w.flush().map_err(io(&self.dir))?;
            out.insert(name, self.dir.join(name));
        }
        for text in std::mem::take(&mut self.roots) {
            self.finding(&text)?;
        }
        self.ocsf.write_all(b"]").map_err(io(&self.dir))?;
        self.ocsf.flush().map_err(io(&self.dir))?;
        self.lines.flush().map_err(io(&self.dir))?;
        out.insert(OCSF_NAME, self.dir.join(OCSF_NAME));
        out.insert(FINDING_LINES, self.dir.join(FINDING_LINES));
        Ok(out)
    }
}

/// Whether a finding's JSON text is a root user's.
fn is_root(text: &str) -> bool {
    text.contains(r#""type":"AWS::::Account""#)
}

fn header(table: &str) -> &'static [&'static str] {
    CSV_TABLES
        .iter()
        .find(|(n, _)| *n == table)
        .map(|(_, h)| *h)
        .expect("a known table")
}

/// The report of `evidence` built in shards of `shard` accounts, and its files (the per-user
/// CSVs and the findings in `work`, the rest in memory), at `now`, of `organization` when given
/// (else the folder's name). `history` is the earlier reports, `problems` what reading them said
/// (first among the problems, as in one build).
pub fn report(
    evidence: &Evidence,
    opts: &Options,
    (now, organization): (chrono::DateTime<chrono::Utc>, Option<String>),
    (history, problems): (Vec<Snapshot>, Vec<String>),
    shard: usize,
    work: &Path,
) -> Result<(Report, Vec<Rendered>)> {
    let accounts: Vec<&keyguard_core::Account> = in_scope(evidence, opts).collect();
    let mut all_trail = trail(evidence);
    all_trail.problems.extend(problems);
    let mut spill = Spill::new(work)?;
    let n = if opts.page_rows == 0 {
        crate::render::PAGE_ROWS
    } else {
        opts.page_rows
    };
    let mut page = Page {
        non_compliant: Kept::new(n, Some(badness::non_compliant)),
        disagreements: Kept::new(n, None),
        pack: Kept::new(n, Some(badness::pack)),
        outside_owners: Kept::new(n, None),
        key_usage: Kept::new(n, Some(badness::key_usage)),
        stalled: Kept::new(n, None),
        actions: Kept::new(n, None),
        ledger: Kept::new(n, None),
        expiring: Kept::new(n, None),
        freshness: Kept::new(n, Some(badness::freshness)),
        counts: BTreeMap::new(),
    };
    let in_any: BTreeSet<&str> = accounts.iter().map(|a| a.id.as_str()).collect();
    // The trail's events by account, once (events of no account in scope: the first shard's).
    let mut events: std::collections::HashMap<String, Vec<crate::cloudtrail::TrailEvent>> =
        std::collections::HashMap::new();
    for e in std::mem::take(&mut all_trail.events) {
        let key = if in_any.contains(e.account.as_str()) {
            e.account.clone()
        } else {
            String::new()
        };
        events.entry(key).or_default().push(e);
    }
    let mut merged: Option<Report> = None;
    let mut no_events = (0, String::new());
    // Accounts with keyguard's pack, and read without it.
    let mut packs = (0usize, 0usize);
    // The shards' problems by kind (PROBLEM_KINDS), listed in one build's order.
    let mut kinds: [Vec<String>; PROBLEM_KINDS] = Default::default();
    // At most MAX_SHARDS shards (each is one open file while the tables are merged).
    let shard = shard.max(1).max(accounts.len().div_ceil(MAX_SHARDS));
    let chunks: Vec<&[&keyguard_core::Account]> = accounts.chunks(shard).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let shard_accounts: Vec<AccountInput> =
            chunk.iter().map(|a| account_input(evidence, a)).collect();
        let shard_trail = shard_trail(&mut all_trail, &mut events, chunk, &shard_accounts, i);
        let mut inputs = inputs_of(evidence, opts, now, shard_accounts, shard_trail);
        inputs.history = history.clone();
        if let Some(o) = &organization {
            inputs.organization.clone_from(o);
        }
        let mut r = crate::build(&inputs)?;
        let read = usize::try_from(r.snapshot.kpis.accounts_read).unwrap_or(usize::MAX);
        let no_pack = missing_pack_problem(read.saturating_sub(r.pack.len()));
        packs.0 += r.pack.len();
        packs.1 += read.saturating_sub(r.pack.len());
        let mut start = 0;
        for (kind, end) in r.problem_ends.iter().enumerate() {
            let section = r.problems.get(start..*end).unwrap_or_default();
            start = *end;
            match kind {
                // Said once for the organization, below.
                2 => no_events.0 += usize::from(!section.is_empty()),
                4 => {}
                5 => kinds[5].extend(section.iter().filter(|p| **p != no_pack).cloned()),
                _ => kinds[kind].extend(section.iter().cloned()),
            }
        }
        if no_events.1.is_empty() {
            no_events.1 = no_events_problem(&inputs);
        }
        spill.add(&r)?;
        keep(&mut page, &mut r, i);
        match &mut merged {
            None => merged = Some(r),
            Some(m) => add_figures(m, &r),
        }
    }
    let Some(mut merged) = merged else {
        // No account in scope: one build says so.
        let mut inputs = inputs_of(evidence, opts, now, Vec::new(), all_trail);
        inputs.organization = organization.unwrap_or(inputs.organization);
        let r = crate::build(&Inputs { history, ..inputs })?;
        let files = crate::render::render(&r)?;
        return Ok((r, files));
    };
    if no_events.0 == chunks.len() {
        kinds[2].push(no_events.1);
    }
    let outside = page.outside_owners.total;
    if outside > 0 {
        kinds[4].push(outside_owners_problem(outside));
    }
    if packs.0 > 0 && packs.1 > 0 {
        kinds[5].push(missing_pack_problem(packs.1));
    }
    merged.problems = kinds.concat();
    let previous_period = merged.period.previous();
    let previous = history
        .iter()
        .find(|s| s.period == previous_period)
        .map(|s| &s.kpis);
    finish_figures(&mut merged, previous);
    finish_page(&mut merged, page);
    let files = rendered(&merged, &spill.finish()?)?;
    Ok((merged, files))
}

/// A shard's trail: its accounts' events (the first shard's also those of no account in scope),
/// its users' key usage (moved out of the organization's: held once), the trail's problems once.
fn shard_trail(
    all: &mut TrailInput,
    events: &mut std::collections::HashMap<String, Vec<crate::cloudtrail::TrailEvent>>,
    chunk: &[&keyguard_core::Account],
    accounts: &[AccountInput],
    i: usize,
) -> TrailInput {
    let mut shard_events = Vec::new();
    if i == 0 {
        shard_events.extend(events.remove("").unwrap_or_default());
    }
    // Each account's events in the trail's order (every order the build makes across events
    // breaks its ties within one account).
    for a in chunk {
        shard_events.extend(events.remove(&a.id).unwrap_or_default());
    }
    let mut usage = keyguard_core::usage::Usage::default();
    for a in accounts {
        for k in a
            .inventory
            .iter()
            .flatten()
            .flat_map(|r| &r.keys)
            .chain(&a.root_keys)
            .filter_map(|k| k.id.as_deref())
        {
            if let Some(u) = all.usage.keys.remove(k) {
                usage.keys.insert(k.to_string(), u);
            }
        }
    }
    TrailInput {
        source: all.source.clone(),
        events: shard_events,
        files: all.files,
        problems: if i == 0 {
            std::mem::take(&mut all.problems)
        } else {
            Vec::new()
        },
        usage,
    }
}

/// A shard's rows of every table into the page's, counted.
fn keep(page: &mut Page, r: &mut Report, shard: usize) {
    let at = |i: usize| format!("{shard:08}{i:012}");
    let keys = |t: &str| order_keys(r, t);
    let (nc, ac, le, ex) = (
        keys("non-compliant-users.csv"),
        keys("actions.csv"),
        keys("exemption-ledger.csv"),
        keys("exemptions-expiring.csv"),
    );
    let count = |page: &mut Page, name: &'static str, n: usize| {
        *page.counts.entry(name).or_default() += n;
    };
    count(
        page,
        PACK_FINDINGS,
        r.pack.iter().filter(|p| !p.finding.is_empty()).count(),
    );
    count(
        page,
        OVERDUE_GRANTS,
        r.ledger.iter().filter(|l| l.granted_while_overdue).count(),
    );
    count(
        page,
        BEYOND_CAP_GRANTS,
        r.ledger.iter().filter(|l| l.beyond_cap).count(),
    );
    page.non_compliant
        .add(std::mem::take(&mut r.non_compliant), |i| nc[i].clone());
    page.actions
        .add(std::mem::take(&mut r.actions), |i| ac[i].clone());
    page.ledger
        .add(std::mem::take(&mut r.ledger), |i| le[i].clone());
    page.expiring
        .add(std::mem::take(&mut r.expiring), |i| ex[i].clone());
    page.disagreements
        .add(std::mem::take(&mut r.disagreements), at);
    page.pack.add(std::mem::take(&mut r.pack), at);
    page.outside_owners
        .add(std::mem::take(&mut r.outside_owners), at);
    page.key_usage.add(std::mem::take(&mut r.key_usage), at);
    page.stalled.add(std::mem::take(&mut r.stalled), at);
    page.freshness.add(std::mem::take(&mut r.freshness), at);
    r.ocsf = Vec::new();
}

/// The merged report's tables: the page's rows, and every table's count.
fn finish_page(r: &mut Report, page: Page) {
    let mut totals = page.counts;
    macro_rules! finish {
        ($field:ident, $csv:expr) => {
            totals.insert($csv, page.$field.total);
            r.$field = page.$field.finish();
        };
    }
    finish!(non_compliant, "non-compliant-users.csv");
    finish!(disagreements, "disagreements.csv");
    finish!(pack, "conformance-pack.csv");
    finish!(outside_owners, "outside-owners.csv");
    finish!(key_usage, "key-usage.csv");
    finish!(stalled, "stalled-migrations.csv");
    finish!(actions, "actions.csv");
    finish!(ledger, "exemption-ledger.csv");
    finish!(expiring, "exemptions-expiring.csv");
    finish!(freshness, "freshness.csv");
    r.totals = totals;
}

/// Every file of the report, as [`crate::render::render`] makes them: the per-user tables and
/// the findings from the files the shards wrote.
fn rendered(r: &Report, files: &BTreeMap<&'static str, PathBuf>) -> Result<Vec<Rendered>> {
    let mut out = vec![Rendered {
        name: HTML_NAME.into(),
        content_type: "text/html; charset=utf-8",
        body: Body::Bytes(html(r)?.into_bytes()),
    }];
    for (name, bytes) in csvs(r)? {
        let body = match files.get(name.as_str()) {
            Some(path) => Body::File(path.clone()),
            None => Body::Bytes(bytes),
        };
        out.push(Rendered {
            name,
            content_type: "text/csv; charset=utf-8",
            body,
        });
    }
    out.push(Rendered {
        name: OCSF_NAME.into(),
        content_type: "application/json",
        body: Body::File(files[OCSF_NAME].clone()),
    });
    out.push(Rendered {
        name: SNAPSHOT_NAME.into(),
        content_type: "application/json",
        body: Body::Bytes(
            serde_json::to_vec_pretty(&r.snapshot).map_err(|e| Error::Render {
                message: format!("summary.json: {e}"),
                source: Some(Box::new(e)),
            })?,
        ),
    });
    Ok(out)
}
