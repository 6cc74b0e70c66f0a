//! The evidence folder's manifest: the SHA-256 of every file of each account's slice (its
//! folder `<account>/` and its trail files under `cloudtrail/`), written by whoever collected
//! the slice. A report is built only from slices that match it: a file changed, added or
//! missing since costs that account's slice, which the report names and does not use. A queued
//! report keeps each slice's digest ([`Manifest::slice_digest`]) in the central state table (the
//! account's finish record), out of reach of whoever can write to the evidence prefix.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The manifest's file name at the folder's root.
pub const MANIFEST: &str = "manifest.json";

/// Each account's files (relative path → SHA-256, hex).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The format's version.
    pub version: u32,
    /// Account id → its files.
    pub accounts: BTreeMap<String, BTreeMap<String, String>>,
}

/// The SHA-256 of `bytes`, hex.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The account whose slice `path` (relative, `/`-separated) belongs to: `<account>/…`, or a
/// trail file whose path names the account (`cloudtrail/AWSLogs/[o-…/]<account>/…`). `None` for
/// the folder's own files (`accounts.json`, `collected.json`, the manifest).
pub fn slice_of(path: &str) -> Option<&str> {
    let is_account = |p: &&str| keyguard_core::Account::is_id(p);
    let mut parts = path.split('/');
    let first = parts.next()?;
    if is_account(&first) {
        return Some(first);
    }
    if first == "cloudtrail" {
        return parts.find(is_account);
    }
    None
}

impl Manifest {
    /// Records the file at `path` (relative) with content `bytes` in its account's slice (files
    /// of no slice are not recorded).
    pub fn add(&mut self, path: &str, bytes: &[u8]) {
        self.version = 1;
        if let Some(account) = slice_of(path) {
            self.accounts
                .entry(account.to_string())
                .or_default()
                .insert(path.to_string(), digest(bytes));
        }
    }

    /// Adds every file of `other` (another account's slice, say).
    pub fn merge(&mut self, other: Manifest) {
        self.version = 1;
        for (account, files) in other.accounts {
            self.accounts.entry(account).or_default().extend(files);
        }
    }

    /// One digest of an account's whole slice: the SHA-256 of its files' paths and digests, in
    /// path order (what a queued report keeps in its state table).
    pub fn slice_digest(&self, account: &str) -> Option<String> {
        let files = self.accounts.get(account)?;
        let mut h = Sha256::new();
        for (path, d) in files {
            h.update(path.as_bytes());
            h.update(b"\t");
            h.update(d.as_bytes());
            h.update(b"\n");
        }
        Some(hex::encode(h.finalize()))
    }

    /// The manifest of the folder at `root` as it is, and the files that could not be read.
    pub fn of_folder(root: &Path) -> (Manifest, BTreeMap<String, String>) {
        let mut m = Manifest::default();
        let mut unreadable = BTreeMap::new();
        for path in files_under(root) {
            let Some(rel) = path
                .strip_prefix(root)
                .ok()
                .map(|p| p.to_string_lossy().replace('\\', "/"))
            else {
                continue;
            };
            let Some(account) = slice_of(&rel).map(str::to_string) else {
                continue;
            };
            match std::fs::read(&path) {
                Ok(bytes) => m.add(&rel, &bytes),
                Err(e) => {
                    unreadable.entry(account).or_insert(format!("{rel}: {e}"));
                }
            }
        }
        (m, unreadable)
    }

    /// Checks the slices of the folder at `root` against slice digests kept elsewhere
    /// ([`Manifest::slice_digest`]): for each account whose files differ, or that has files but
    /// no kept digest, why.
    pub fn check_digests(root: &Path, kept: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let (found, mut out) = Self::of_folder(root);
        let accounts: BTreeSet<&String> = found.accounts.keys().chain(kept.keys()).collect();
        for account in accounts {
            if out.contains_key(account) {
                continue;
            }
            let why = match (kept.get(account), found.slice_digest(account)) {
                (Some(k), Some(f)) if *k == f => continue,
                (Some(_), Some(_)) => "its files differ from what was collected".to_string(),
                (Some(_), None) => "its files are missing".to_string(),
                (None, _) => "it was not collected by this run".to_string(),
            };
            out.insert(account.clone(), why);
        }
        out
    }

    /// The manifest as JSON, for [`MANIFEST`].
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a manifest serializes")
    }

    /// Checks the slices of the folder at `root` against the manifest: for each account with a
    /// file in the folder or in the manifest that does not match, why (the first difference).
    pub fn check(&self, root: &Path) -> BTreeMap<String, String> {
        let (found, unreadable) = Self::of_folder(root);
        let found = found.accounts;
        let accounts: BTreeSet<&String> = found.keys().chain(self.accounts.keys()).collect();
        let mut out = unreadable;
        for account in accounts {
            if out.contains_key(account) {
                continue;
            }
            let empty = BTreeMap::new();
            let want = self.accounts.get(account).unwrap_or(&empty);
            let have = found.get(account).unwrap_or(&empty);
            let why = have
                .iter()
                .find_map(|(p, d)| match want.get(p) {
                    None => Some(format!("{p} is not in the manifest")),
                    Some(w) if w != d => Some(format!("{p} changed since it was collected")),
                    Some(_) => None,
                })
                .or_else(|| {
                    want.keys()
                        .find(|p| !have.contains_key(*p))
                        .map(|p| format!("{p} is missing"))
                });
            if let Some(why) = why {
                out.insert(account.clone(), why);
            }
        }
        out
    }
}

/// Every file under `dir`, recursively (unreadable folders skipped: their files are then
/// missing, which the check reports).
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, text: &str) -> (String, Vec<u8>) {
        (path.into(), text.as_bytes().to_vec())
    }

    #[test]
    fn slices_are_the_account_folder_and_its_trail_files() {
        assert_eq!(
            slice_of("111122223333/credential-report.csv"),
            Some("111122223333")
        );
        assert_eq!(
            slice_of("cloudtrail/AWSLogs/o-abcdefghij/111122223333/CloudTrail/us-east-1/x.json.gz"),
            Some("111122223333")
        );
        assert_eq!(
            slice_of("cloudtrail/AWSLogs/111122223333/x.json.gz"),
            Some("111122223333")
        );
        assert_eq!(slice_of("accounts.json"), None);
        assert_eq!(slice_of("manifest.json"), None);
    }

    #[test]
    fn a_changed_added_or_missing_file_fails_its_slice_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Manifest::default();
        for f in [
            file("111122223333/credential-report.csv", "a"),
            file("111122223333/config-compliance.json", "b"),
            file("444455556666/credential-report.csv", "c"),
            file("777788889999/credential-report.csv", "d"),
        ] {
            m.add(&f.0, &f.1);
            let p = dir.path().join(&f.0);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, &f.1).unwrap();
        }
        assert!(m.check(dir.path()).is_empty());
        std::fs::write(
            dir.path().join("111122223333/config-compliance.json"),
            "forged",
        )
        .unwrap();
        std::fs::write(dir.path().join("444455556666/extra.json"), "x").unwrap();
        std::fs::remove_file(dir.path().join("777788889999/credential-report.csv")).unwrap();
        std::fs::create_dir_all(dir.path().join("999999999999")).unwrap();
        std::fs::write(dir.path().join("999999999999/credential-report.csv"), "e").unwrap();
        let failed = m.check(dir.path());
        assert_eq!(
            failed.get("111122223333").map(String::as_str),
            Some("111122223333/config-compliance.json changed since it was collected")
        );
        assert_eq!(
            failed.get("444455556666").map(String::as_str),
            Some("444455556666/extra.json is not in the manifest")
        );
        assert_eq!(
            failed.get("777788889999").map(String::as_str),
            Some("777788889999/credential-report.csv is missing")
        );
        assert!(
            failed.contains_key("999999999999"),
            "an account not in the manifest"
        );
    }

    #[test]
    fn kept_slice_digests_catch_a_consistent_forgery() {
        let dir = tempfile::tempdir().unwrap();
        let write = |p: &str, t: &str| {
            let p = dir.path().join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, t).unwrap();
        };
        write("111122223333/config-compliance.json", "real");
        write("444455556666/config-compliance.json", "real");
        let (m, _) = Manifest::of_folder(dir.path());
        let kept: BTreeMap<String, String> = ["111122223333", "444455556666"]
            .iter()
            .map(|a| (a.to_string(), m.slice_digest(a).unwrap()))
            .collect();
        assert!(Manifest::check_digests(dir.path(), &kept).is_empty());
        // Rewritten (a manifest.json of the folder's own would match it): the kept digest differs.
        write("111122223333/config-compliance.json", "forged");
        write("999999999999/credential-report.csv", "planted");
        let failed = Manifest::check_digests(dir.path(), &kept);
        assert_eq!(
            failed.get("111122223333").map(String::as_str),
            Some("its files differ from what was collected")
        );
        assert_eq!(
            failed.get("999999999999").map(String::as_str),
            Some("it was not collected by this run")
        );
        assert!(!failed.contains_key("444455556666"));
    }
}
