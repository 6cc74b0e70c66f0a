//! Report inputs from an evidence folder (see README "The evidence folder"), and earlier reports
//! from an output folder.
//!
//! Nothing missing is fatal except the folder itself: an account without `config-compliance.json`
//! is "not evaluated", an unreadable inventory is listed, unreadable trail files are listed and
//! the rest is read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use keyguard_aws::evidence::{Evidence, Verification};
use keyguard_aws::settings_env::KeyguardRoles;
use keyguard_core::Settings;

use crate::cloudtrail;
use crate::error::Result;
use crate::model::{AccountInput, ConfigState, Inputs, Snapshot, TrailInput};
use crate::period::{Period, PeriodKind};
use crate::render::SNAPSHOT_NAME;

/// The trail files of an evidence folder live here.
pub const TRAIL_DIR: &str = "cloudtrail";

/// What a report run needs besides the data.
#[derive(Debug, Clone)]
pub struct Options {
    /// Weekly or monthly.
    pub kind: PeriodKind,
    /// The report date; `None`: when the evidence was collected (or now).
    pub as_of: Option<DateTime<Utc>>,
    /// The policy.
    pub settings: Settings,
    /// The Config rule's name.
    pub rule_name: String,
    /// keyguard's roles (actions by them are keyguard's).
    pub keyguard_roles: KeyguardRoles,
    /// The organization's mail domains owner tags must be at (`None`: not checked).
    pub owner_domains: Option<keyguard_core::owner::OwnerDomains>,
    /// Only these accounts (empty: all).
    pub accounts: Vec<String>,
    /// The most rows each table of the HTML page shows ([`crate::render::PAGE_ROWS`]).
    pub page_rows: usize,
}

/// Reads every input of a report from an opened evidence folder. `now` is used only when
/// neither `as_of` nor the folder's `collected.json` gives the report date.
pub fn inputs(evidence: &Evidence, opts: &Options, now: DateTime<Utc>) -> Result<Inputs> {
    let accounts = in_scope(evidence, opts)
        .map(|a| account_input(evidence, a))
        .collect();
    Ok(inputs_of(evidence, opts, now, accounts, trail(evidence)))
}

/// The folder's accounts in scope of `opts`, in the folder's order (by id).
pub fn in_scope<'a>(
    evidence: &'a Evidence,
    opts: &'a Options,
) -> impl Iterator<Item = &'a keyguard_core::Account> + 'a {
    evidence
        .accounts
        .iter()
        .filter(|a| opts.accounts.is_empty() || opts.accounts.contains(&a.id))
}

/// One account's inputs from its slice.
pub fn account_input(evidence: &Evidence, account: &keyguard_core::Account) -> AccountInput {
    if let Some(why) = evidence.failed_slices.get(&account.id) {
        return failed_slice(account, why);
    }
    let inv = evidence.inventory(&account.id);
    AccountInput {
        account: account.clone(),
        root_keys: inv
            .as_ref()
            .map(|i| i.root_keys.clone())
            .unwrap_or_default(),
        inventory: inv.map(|inv| inv.users).map_err(|e| e.to_string()),
        secrets: evidence.secrets_kept(&account.id).ok().flatten(),
        config: match evidence.compliance(&account.id) {
            Ok(Some(results)) => ConfigState::Results(results),
            Ok(None) => ConfigState::NotCollected,
            Err(e) => ConfigState::Unreadable(e.to_string()),
        },
        pack: evidence.pack(&account.id).ok().flatten(),
    }
}

/// The folder's CloudTrail: its trail files (but those of slices that failed the manifest), what
/// of the folder's integrity the report says, and the accounts' own aggregates of key usage.
pub fn trail(evidence: &Evidence) -> TrailInput {
    let dir = evidence.root();
    let mut trail = trail_folder_except(&dir.join(TRAIL_DIR), &evidence.failed_slices);
    trail.problems.extend(slice_problems(evidence));
    // The accounts' own aggregates of where keys are used (queued report slices, collect).
    for account in evidence
        .accounts
        .iter()
        .filter(|a| !evidence.failed_slices.contains_key(&a.id))
    {
        let path = evidence
            .account_dir(&account.id)
            .join(crate::usage_input::KEY_USAGE_FILE);
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        match serde_json::from_slice::<keyguard_core::usage::Usage>(&bytes) {
            Ok(u) => trail.usage.merge(&u),
            Err(e) => trail
                .problems
                .push(format!("{}: {e}; the file was skipped", path.display())),
        }
    }
    trail
}

/// The report's inputs of `accounts` (some or all of the folder's) and `trail`.
pub fn inputs_of(
    evidence: &Evidence,
    opts: &Options,
    now: DateTime<Utc>,
    accounts: Vec<AccountInput>,
    trail: TrailInput,
) -> Inputs {
    let dir = evidence.root();
    let as_of = opts
        .as_of
        .or(evidence.collected.as_ref().map(|c| c.collected_at))
        .unwrap_or(now);
    let organization = dir
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| dir.display().to_string());
    Inputs {
        organization,
        as_of,
        period: Period::of(opts.kind, as_of.date_naive()),
        settings: opts.settings.clone(),
        rule_name: opts.rule_name.clone(),
        // The central roles count in the account that collected the evidence.
        keyguard_roles: opts.keyguard_roles.clone().in_central(
            evidence
                .collected
                .as_ref()
                .and_then(|c| c.collector_account.clone()),
        ),
        owner_domains: opts.owner_domains.clone(),
        page_rows: opts.page_rows,
        accounts,
        trail,
        history: Vec::new(),
    }
}

/// An account whose slice does not match the manifest: named, not used.
fn failed_slice(account: &keyguard_core::Account, why: &str) -> AccountInput {
    let why = format!("its evidence slice failed the manifest's digest check ({why}): not used");
    AccountInput {
        account: account.clone(),
        inventory: Err(why.clone()),
        root_keys: Vec::new(),
        secrets: None,
        config: ConfigState::Unreadable(why),
        pack: None,
    }
}

/// What the report says of the folder's integrity: no manifest, and each slice that failed it.
fn slice_problems(evidence: &Evidence) -> Vec<String> {
    let mut out: Vec<String> = evidence
        .failed_slices
        .iter()
        .map(|(account, why)| {
            format!(
                "account {account}: its evidence slice failed the manifest's digest check \
                 ({why}); it is not used"
            )
        })
        .collect();
    if evidence.verification == Verification::Unverified {
        out.push(
            "the evidence folder has no manifest.json: its slices are not checked (collected by \
             an earlier keyguard, or by hand)"
                .into(),
        );
    }
    out
}

/// [`trail_folder`] without the trail files of the accounts in `failed` (their slice did not
/// match the manifest).
fn trail_folder_except(dir: &Path, failed: &BTreeMap<String, String>) -> TrailInput {
    if failed.is_empty() {
        return trail_folder(dir);
    }
    let source = format!("trail files in {}", dir.display());
    match cloudtrail::trail_files(dir) {
        Ok(files) => {
            let kept: Vec<PathBuf> = files
                .into_iter()
                .filter(|p| {
                    let rel = p
                        .strip_prefix(dir)
                        .unwrap_or(p)
                        .to_string_lossy()
                        .replace('\\', "/");
                    keyguard_aws::manifest::slice_of(&format!("cloudtrail/{rel}"))
                        .is_none_or(|a| !failed.contains_key(a))
                })
                .collect();
            scanned(source, &kept)
        }
        Err(_) => trail_folder(dir),
    }
}

/// Every trail file under `dir`, scanned; a missing folder is a listed problem, not an error.
pub fn trail_folder(dir: &Path) -> TrailInput {
    let source = format!("trail files in {}", dir.display());
    if !dir.is_dir() {
        return TrailInput {
            problems: vec![format!(
                "{}: no CloudTrail folder; no events were read",
                dir.display()
            )],
            source,
            ..TrailInput::default()
        };
    }
    match cloudtrail::trail_files(dir) {
        Ok(files) => scanned(source, &files),
        Err(e) => TrailInput {
            problems: vec![e.to_string()],
            source,
            ..TrailInput::default()
        },
    }
}

/// `files` scanned into the report's trail input.
fn scanned(source: String, files: &[PathBuf]) -> TrailInput {
    let scan = cloudtrail::scan(files);
    TrailInput {
        source: format!("{} ({} files)", source, scan.files),
        events: scan.events,
        files: scan.files,
        problems: scan
            .problems
            .into_iter()
            .map(|(p, why)| format!("{}: {why}; the file was skipped", p.display()))
            .collect(),
        usage: scan.usage,
    }
}

/// The folder a report of `period` is written to under an output folder.
pub fn report_dir(out: &Path, period: &Period) -> PathBuf {
    out.join(period.id())
}

/// The `summary.json` files of earlier reports of `kind` under `out` (`<out>/<kind>-…/`).
/// Unreadable ones are returned as problems.
pub fn history(out: &Path, kind: PeriodKind) -> (Vec<Snapshot>, Vec<String>) {
    let mut found = Vec::new();
    let mut problems = Vec::new();
    let Ok(entries) = std::fs::read_dir(out) else {
        return (found, problems);
    };
    let prefix = format!("{}-", kind.as_str());
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path().join(SNAPSHOT_NAME);
        if !name.starts_with(&prefix) || !path.is_file() {
            continue;
        }
        match std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<Snapshot>(&b).map_err(|e| e.to_string()))
        {
            Ok(s) => found.push(s),
            Err(e) => problems.push(format!(
                "{}: earlier report unreadable ({e}); not compared",
                path.display()
            )),
        }
    }
    (found, problems)
}
