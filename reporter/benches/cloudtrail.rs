//! CloudTrail scanning throughput and memory, against `gzip -dc` on the same files.
//!
//! `cargo bench -p reporter --bench cloudtrail` generates org-trail files (`benches/support/trailgen.rs`,
//! deterministic; a third of the calls made with CI users' long-term keys), then measures:
//! `gzip -dc` over all files on one core (the reference), the scanner over all files (every core:
//! the followed IAM events and where each long-term key was used), and the scanner's peak RSS for
//! N and 10·N files (each in a fresh child process, so the peaks do not mix). Figures go to stdout; nothing is asserted here
//! (speed is measured, not asserted in timed tests).
//!
//! Environment: `TRAIL_FILES` (default 200), `TRAIL_RECORDS` (records per file, default 1000).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use reporter::cloudtrail::{scan, trail_files};
#[path = "support/trailgen.rs"]
mod trailgen;

use trailgen::write_org_trail;

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn generate(dir: &Path, files: usize, records: usize) -> Vec<PathBuf> {
    if !dir.join("done").exists() {
        let _ = std::fs::remove_dir_all(dir);
        write_org_trail(dir, files, records, 42).expect("generate");
        std::fs::write(dir.join("done"), b"").unwrap();
    }
    trail_files(dir).unwrap()
}

fn main() {
    // Child mode: scan a folder and report the peak RSS.
    if let Ok(dir) = std::env::var("KEYGUARD_SCAN_ONLY") {
        let files = trail_files(Path::new(&dir)).unwrap();
        let s = scan(&files);
        println!(
            "{} {} {} {}",
            s.events.len(),
            s.files,
            peak_rss_kib(),
            s.usage.keys.len()
        );
        return;
    }
    let files = env_or("TRAIL_FILES", 200);
    let records = env_or("TRAIL_RECORDS", 1000);
    let root = std::env::temp_dir().join(format!("keyguard-trail-bench-{files}x{records}"));
    let small = generate(&root.join("n"), files, records);
    let large = generate(&root.join("10n"), files * 10, records);
    let bytes: u64 = small
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    let raw: u64 = small
        .iter()
        .map(|p| {
            reporter::cloudtrail::gunzip(&std::fs::read(p).unwrap())
                .unwrap()
                .len() as u64
        })
        .sum();

    // Reference: gzip -dc on one core (warm cache: one run first).
    let gzip = || {
        let t = Instant::now();
        let ok = Command::new("gzip")
            .arg("-dc")
            .args(&small)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success());
        t.elapsed().as_secs_f64()
    };
    gzip();
    let g = (0..3).map(|_| gzip()).fold(f64::MAX, f64::min);

    let ours = || {
        let t = Instant::now();
        let s = scan(&small);
        assert!(s.problems.is_empty());
        let calls: u64 = s.usage.keys.values().map(|u| u.calls).sum();
        let pairs: usize = s
            .usage
            .keys
            .values()
            .map(|u| u.sources.values.len() + u.user_agents.values.len())
            .sum();
        (
            t.elapsed().as_secs_f64(),
            s.events.len(),
            (s.usage.keys.len(), calls, pairs),
        )
    };
    ours();
    let (k, events, usage) =
        (0..3).map(|_| ours()).fold(
            (f64::MAX, 0, (0, 0, 0)),
            |a, b| if b.0 < a.0 { b } else { a },
        );

    let child = |dir: &Path| -> (usize, u64) {
        let out = Command::new(std::env::current_exe().unwrap())
            .env("KEYGUARD_SCAN_ONLY", dir)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let f: Vec<u64> = text
            .split_whitespace()
            .map(|v| v.parse().unwrap())
            .collect();
        (f[1] as usize, f[2])
    };
    let (n_files, n_rss) = child(&root.join("n"));
    let (l_files, l_rss) = child(&root.join("10n"));
    assert_eq!((n_files, l_files), (small.len(), large.len()));

    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    println!("trail files: {files} x {records} records: {:.1} MiB gzip, {:.1} MiB JSON, {events} followed events", mib(bytes), mib(raw));
    println!(
        "usage: {} long-term keys, {} calls counted, {} (key, source or agent) pairs kept",
        usage.0, usage.1, usage.2
    );
    println!(
        "gzip -dc (1 core):     {:.3} s  {:.0} MiB/s of JSON",
        g,
        mib(raw) / g
    );
    println!(
        "keyguard scan (all):   {:.3} s  {:.0} MiB/s of JSON  ({:.2}x gzip -dc), {} threads",
        k,
        mib(raw) / k,
        g / k,
        rayon::current_num_threads()
    );
    println!(
        "peak RSS: {n_files} files {:.1} MiB, {l_files} files {:.1} MiB (+{:.1} MiB)",
        n_rss as f64 / 1024.0,
        l_rss as f64 / 1024.0,
        (l_rss as f64 - n_rss as f64) / 1024.0
    );
}
