//! What goes into a report ([`Inputs`]) and what comes out ([`Report`]): plain data, no I/O.
//!
//! Every table row is already formatted for people (masked key ids, dates as `YYYY-MM-DD`), so
//! the HTML template and the CSV writer print the same values.

use chrono::{DateTime, Utc};
use keyguard_aws::settings_env::KeyguardRoles;
use keyguard_core::{Account, Settings};
use keyguard_core::{ComplianceResult, UserRecord};
use serde::{Deserialize, Serialize};

use crate::cloudtrail::TrailEvent;
use crate::period::Period;

/// What Config said about one account.
#[derive(Debug, Clone)]
pub enum ConfigState {
    /// The rule's results (every compliance type the source returned).
    Results(Vec<ComplianceResult>),
    /// The rule does not exist in the account (`NoSuchConfigRuleException`): nothing is evaluated.
    RuleMissing,
    /// The evidence folder has no `config-compliance.json` for the account.
    NotCollected,
    /// The results could not be read (the error, without secrets).
    Unreadable(String),
}

/// One account's inputs.
#[derive(Debug, Clone)]
pub struct AccountInput {
    /// The account.
    pub account: Account,
    /// Its users and keys on the report date, or why they could not be read.
    pub inventory: Result<Vec<UserRecord>, String>,
    /// The root user's access keys (credential-report slots), from the same read.
    pub root_keys: Vec<keyguard_core::AccessKey>,
    /// How many secrets keyguard keeps in the account; `None` when not read.
    pub secrets: Option<usize>,
    /// Its Config results.
    pub config: ConfigState,
    /// keyguard's conformance pack there: each rule's verdict; `None` when not read or not
    /// deployed (a loose rule).
    pub pack: Option<Vec<keyguard_core::pack::PackRule>>,
}

/// Where the CloudTrail events came from and what could not be read.
#[derive(Debug, Clone, Default)]
pub struct TrailInput {
    /// A description of the source (`LookupEvents`, `s3://…`, a folder).
    pub source: String,
    /// The followed events, any time range (the report picks its period), each `eventID` once.
    pub events: Vec<TrailEvent>,
    /// Log files or calls read.
    pub files: usize,
    /// What could not be read, each naming the file or account and why.
    pub problems: Vec<String>,
    /// Where each long-term key was used, over the calls the source holds (org-trail files:
    /// every call; `LookupEvents`: the keys due for a step).
    pub usage: keyguard_core::usage::Usage,
}

/// Everything a report is built from.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The organization's name for the title (an org id, or the evidence folder's name).
    pub organization: String,
    /// The moment the state figures describe (the inventory's time).
    pub as_of: DateTime<Utc>,
    /// The period reported on.
    pub period: Period,
    /// The policy (thresholds, exemption group and tag).
    pub settings: Settings,
    /// The Config rule's name.
    pub rule_name: String,
    /// The roles keyguard acts through (member roles in their own account, central roles in the
    /// central account): actions by them are keyguard's, any other principal is a person or
    /// another tool.
    pub keyguard_roles: KeyguardRoles,
    /// The organization's mail domains owner tags must be at (`None`: not checked).
    pub owner_domains: Option<keyguard_core::owner::OwnerDomains>,
    /// The most rows each table of the HTML page shows.
    pub page_rows: usize,
    /// Every account in scope.
    pub accounts: Vec<AccountInput>,
    /// CloudTrail.
    pub trail: TrailInput,
    /// Earlier reports of the same kind (their `summary.json`), in any order: the previous
    /// period's gives the changes, all of them the trend.
    pub history: Vec<Snapshot>,
}

/// The headline figures of one report, kept as `summary.json` so the next report can compare.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Kpis {
    /// Accounts in scope.
    pub accounts: u64,
    /// Accounts whose inventory could be read.
    pub accounts_read: u64,
    /// IAM users in the accounts read.
    pub users: u64,
    /// Access keys (Active and Inactive).
    pub keys: u64,
    /// Active access keys.
    pub active_keys: u64,
    /// Users Config found COMPLIANT.
    pub users_compliant: u64,
    /// Users Config found NON_COMPLIANT.
    pub users_non_compliant: u64,
    /// Users with no Config result (rule missing, not collected, not yet evaluated).
    pub users_not_evaluated: u64,
    /// COMPLIANT users as a percentage of users in scope (NOT_APPLICABLE users excluded; users
    /// not evaluated count against it). `None` with no users.
    pub compliant_pct: Option<f64>,
    /// Mean age in days of the Active keys.
    pub mean_key_age: Option<f64>,
    /// 90th percentile (linear interpolation) of the Active keys' ages, in days.
    pub p90_key_age: Option<f64>,
    /// Active keys at or over the rotation period.
    pub keys_over_rotation: u64,
    /// Users with a valid exemption on the report date.
    pub exemptions_active: u64,
    /// Secrets keyguard keeps (one per rotated user), in the accounts whose secrets were read;
    /// `None` when none were.
    #[serde(default)]
    pub secrets_kept: Option<u64>,
    /// Their cost a month in USD ($0.40 a secret).
    #[serde(default)]
    pub secrets_monthly_usd: Option<f64>,
}

/// One point of the compliance trend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendPoint {
    /// The period's id (`weekly-2026-11-20`).
    pub period: String,
    /// Its last day.
    pub last_day: chrono::NaiveDate,
    /// `compliant_pct` of that report.
    pub compliant_pct: Option<f64>,
}

/// What a report keeps for the next one (`summary.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Format version of this file.
    pub version: u32,
    /// The period reported.
    pub period: Period,
    /// When the state figures were taken.
    pub as_of: DateTime<Utc>,
    /// The figures.
    pub kpis: Kpis,
}

/// One line of the summary table.
#[derive(Debug, Clone, Serialize)]
pub struct SummaryRow {
    /// Stable machine name (`users`, `compliant_pct`…).
    pub metric: &'static str,
    /// What it is, for people.
    pub label: &'static str,
    /// This period's value, formatted.
    pub value: String,
    /// The previous period's value, formatted, or empty when there is no previous report.
    pub previous: String,
    /// The signed change, formatted (`+3`, `−2.5`), or empty.
    pub change: String,
    /// `better`, `worse` or `same` (empty without a previous value), for colouring.
    pub trend: &'static str,
    /// This period's value as a number (for the CSV).
    pub value_raw: Option<f64>,
    /// The previous period's value as a number.
    pub previous_raw: Option<f64>,
    /// The change as a number.
    pub change_raw: Option<f64>,
}

/// A bar of the key-age chart.
#[derive(Debug, Clone, Serialize)]
pub struct AgeBucket {
    /// `0–60` … `≥110` (days).
    pub label: &'static str,
    /// Active keys in it.
    pub keys: u64,
    /// True for the buckets at or over the rotation period.
    pub overdue: bool,
}

/// A NON_COMPLIANT user.
#[derive(Debug, Clone, Serialize)]
pub struct NonCompliantRow {
    /// Account id.
    pub account: String,
    /// Account name.
    pub account_name: String,
    /// User name (or the UserId when the user is gone from the inventory).
    pub user: String,
    /// Why, from keyguard's evaluation on the report date (Config's annotation otherwise).
    pub reason: String,
    /// The key concerned, masked.
    pub key: String,
    /// Its age in days.
    pub age_days: Option<i64>,
    /// Whole days since the user fell out of policy, when it can be told.
    pub days_out_of_policy: Option<i64>,
    /// The remediator's next step (`rotate`, `disable`, `delete`) or a note.
    pub next_action: String,
    /// Its date (`YYYY-MM-DD`).
    pub next_action_date: String,
}

/// Where one key due for a step (a disable or delete within the warning period, or overdue) is
/// used: what its owner must find before the step.
#[derive(Debug, Clone, Serialize)]
pub struct KeyUsageRow {
    /// Account id.
    pub account: String,
    /// Account name.
    pub account_name: String,
    /// User name.
    pub user: String,
    /// The key, masked.
    pub key: String,
    /// Its next step (`disable`, `delete`).
    pub step: String,
    /// The step's date (`YYYY-MM-DD`).
    pub due: String,
    /// Calls the trail holds.
    pub calls: u64,
    /// The last of them (RFC 3339), if any.
    pub last_seen: String,
    /// The top source addresses, `address (calls)`.
    pub sources: String,
    /// The top user agents (their first token), `agent (calls)`.
    pub agents: String,
    /// The top services.
    pub services: String,
    /// The key that replaced it, masked, when there is one.
    pub successor: String,
    /// When the trail first saw the successor used (`never`, or RFC 3339).
    pub successor_first_use: String,
}

/// A rotation whose old key is still used while its successor never was: the disable is held
/// (at most `MaxDisableHoldDays`) and someone must move the pipeline.
#[derive(Debug, Clone, Serialize)]
pub struct StalledRow {
    /// Account id.
    pub account: String,
    /// Account name.
    pub account_name: String,
    /// User name.
    pub user: String,
    /// The old key, masked.
    pub key: String,
    /// Its successor, masked.
    pub successor: String,
    /// When the old key's disable was due (`YYYY-MM-DD`).
    pub disable_due: String,
    /// The latest it waits to (`YYYY-MM-DD`).
    pub held_until: String,
    /// The old key's last use (RFC 3339).
    pub last_used: String,
    /// Where it is used, as its owner is told.
    pub where_used: String,
}

/// A key action in the period.
#[derive(Debug, Clone, Serialize)]
pub struct ActionRow {
    /// When (RFC 3339).
    pub time: String,
    /// Account id.
    pub account: String,
    /// User name.
    pub user: String,
    /// `rotation`/`created`, `disable`, `restore` (keyguard's), `re-enabled` (a person's, against
    /// the policy), `delete`.
    pub action: String,
    /// The key, masked.
    pub key: String,
    /// `keyguard` or `person`.
    pub by_kind: &'static str,
    /// Who: the role session or IAM user.
    pub by: String,
}

/// One change of the exemption group or of a user's expiry tag.
#[derive(Debug, Clone, Serialize)]
pub struct LedgerRow {
    /// When (RFC 3339).
    pub time: String,
    /// Account id.
    pub account: String,
    /// The user (empty for a group creation or deletion).
    pub user: String,
    /// What changed.
    pub change: String,
    /// Who made it.
    pub by: String,
    /// The expiry tag's value right after the change (`none` when unset, `unknown` when the
    /// trail does not reach back far enough to tell).
    pub expiry_at_change: String,
    /// True when the change granted or extended an exemption while an Active key of the user
    /// was already at or over the rotation period.
    pub granted_while_overdue: bool,
    /// True when the expiry right after the change lies further from the change than
    /// `MaxExemptionDays` (an exemption beyond the cap, granted or extended by this change).
    pub beyond_cap: bool,
}

/// A user Config calls COMPLIANT (or NOT_APPLICABLE) whom keyguard's evaluation of what IAM
/// returns finds NON_COMPLIANT at the moment of Config's verdict: the rule in that account may
/// have been changed.
#[derive(Debug, Clone, Serialize)]
pub struct DisagreementRow {
    /// Account id.
    pub account: String,
    /// Account name.
    pub account_name: String,
    /// The user name.
    pub user: String,
    /// Config's verdict.
    pub config: String,
    /// When Config recorded it (the moment keyguard evaluated at).
    pub config_recorded: String,
    /// keyguard's verdict at that moment.
    pub keyguard: String,
    /// The finding, in words.
    pub finding: String,
}

/// keyguard's conformance pack in one account beside keyguard's own evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct PackRow {
    /// Account id.
    pub account: String,
    /// Account name.
    pub account_name: String,
    /// The pack's verdict (Config's console's).
    pub pack: String,
    /// keyguard's rule in the pack.
    pub keyguard_rule: String,
    /// `access-keys-rotated`.
    pub access_keys_rotated: String,
    /// `iam-user-unused-credentials-check`.
    pub unused_credentials: String,
    /// `iam-root-access-key-check`.
    pub root_access_key: String,
    /// keyguard's evaluation of what IAM returns, now.
    pub keyguard_own: String,
    /// Where the pack and IAM disagree, in words (empty: they agree).
    pub finding: String,
}

/// An owner tag naming an address outside the organization's mail domains.
#[derive(Debug, Clone, Serialize)]
pub struct OutsideOwnerRow {
    /// Account id.
    pub account: String,
    /// Account name.
    pub account_name: String,
    /// The user name.
    pub user: String,
    /// The address the tag names.
    pub address: String,
    /// Who keyguard tells instead (the account's email, or the administrators).
    pub told_instead: String,
}

/// An exemption that ends within 30 days of the report date.
#[derive(Debug, Clone, Serialize)]
pub struct ExpiringRow {
    /// Account id.
    pub account: String,
    /// User name.
    pub user: String,
    /// The exemption's last day.
    pub expires: String,
    /// Whole days from the report date.
    pub days_left: i64,
    /// The user's oldest Active key's age, in days.
    pub oldest_key_age: Option<i64>,
}

/// How current one account's data is.
#[derive(Debug, Clone, Serialize)]
pub struct FreshnessRow {
    /// Account id.
    pub account: String,
    /// Account name.
    pub account_name: String,
    /// `read` or the reason the inventory could not be read.
    pub inventory: String,
    /// IAM users.
    pub users: u64,
    /// `evaluated`, `rule missing`, `not collected`, `unreadable: …`.
    pub config: String,
    /// Users with a Config result.
    pub users_evaluated: u64,
    /// When Config last recorded a result for the account (RFC 3339), empty if never.
    pub last_evaluated: String,
    /// True when that is more than 2 days before the report date (a periodic rule runs daily).
    pub stale: bool,
    /// Followed CloudTrail events of the account in the period.
    pub trail_events: u64,
}

/// One control the report gives evidence for.
#[derive(Debug, Clone, Serialize)]
pub struct ControlRow {
    /// `CIS AWS Foundations v1.4.0–v4.0.1`, `CIS AWS Foundations v5.0.0/v6.0.0`, `AWS Security Hub`.
    pub framework: &'static str,
    /// The control id (`1.14`, `IAM.3`).
    pub control: &'static str,
    /// Its title.
    pub title: &'static str,
    /// The keyguard check that covers it.
    pub keyguard_check: &'static str,
    /// Users failing it on the report date (keyguard's evaluation of the inventory).
    pub failing_users: u64,
}

/// The kinds of problems, in the order the report lists them: the trail's (and the earlier
/// reports'), each account's inputs, no events in the period, Config's disagreements per
/// account, owner tags outside the organization, the conformance pack's (its missing-pack count
/// last).
pub const PROBLEM_KINDS: usize = 6;

/// A finished report: every section, ready to render.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Organization name.
    pub organization: String,
    /// The period.
    pub period: Period,
    /// Its label for people.
    pub period_label: String,
    /// The previous period's label.
    pub previous_label: String,
    /// True when the previous period's report was found.
    pub has_previous: bool,
    /// The report date's state moment (RFC 3339).
    pub as_of: String,
    /// The policy's rotation period, in days.
    pub rotation_period: u32,
    /// The Config rule.
    pub rule_name: String,
    /// 1. Summary.
    pub summary: Vec<SummaryRow>,
    /// 2. Key-age distribution of Active keys.
    pub age_buckets: Vec<AgeBucket>,
    /// 2. Compliance trend, oldest first, this period last.
    pub trend: Vec<TrendPoint>,
    /// 3. NON_COMPLIANT users.
    ///
    /// On the page through `render`'s bounded tables.
    #[serde(skip)]
    pub non_compliant: Vec<NonCompliantRow>,
    /// 3a. Users Config calls compliant whom the policy, applied to IAM, finds NON_COMPLIANT.
    ///
    /// On the page through `render`'s bounded tables.
    #[serde(skip)]
    pub disagreements: Vec<DisagreementRow>,
    /// keyguard's conformance pack per account, beside keyguard's own figures.
    ///
    /// On the page through `render`'s bounded tables.
    #[serde(skip)]
    pub pack: Vec<PackRow>,
    /// 3a. Owner tags naming an address outside the organization's mail domains.
    ///
    /// On the page through `render`'s bounded tables.
    #[serde(skip)]
    pub outside_owners: Vec<OutsideOwnerRow>,
    /// Whether owner tags were checked (the domains were configured).
    pub owners_checked: bool,
    /// The most rows each table of the HTML page shows (the CSVs hold every row).
    #[serde(skip)]
    pub page_rows: usize,
    /// 3b. Where the keys due for a step are used.
    ///
    /// On the page through `render`'s bounded tables.
    #[serde(skip)]
    pub key_usage: Vec<KeyUsageRow>,
    /// 3c. Rotations stalled on their old key.
    ///
    /// On the page through `render`'s bounded tables.
    #[serde(skip)]
    pub stalled: Vec<StalledRow>,
    /// 4. Key actions in the period.
    ///
    /// On the page through `render`'s bounded tables.
    #[serde(skip)]
    pub actions: Vec<ActionRow>,
    /// 4. Counts of actions by kind: `(action, by keyguard, by people)`.
    pub action_counts: Vec<(String, u64, u64)>,
    /// 5. Exemption ledger.
    ///
    /// On the page through `render`'s bounded tables.
    #[serde(skip)]
    pub ledger: Vec<LedgerRow>,
    /// 5. Exemptions ending within 30 days.
    ///
    /// On the page through `render`'s bounded tables.
    #[serde(skip)]
    pub expiring: Vec<ExpiringRow>,
    /// 6. Data freshness.
    ///
    /// On the page through `render`'s bounded tables.
    #[serde(skip)]
    pub freshness: Vec<FreshnessRow>,
    /// 7. Control mapping.
    pub controls: Vec<ControlRow>,
    /// Where CloudTrail came from.
    pub trail_source: String,
    /// Inputs that could not be used, each a sentence (also printed on stderr by the CLI).
    ///
    /// On the page through `render`'s bounded tables.
    #[serde(skip)]
    pub problems: Vec<String>,
    /// What the next report compares against.
    pub snapshot: Snapshot,
    /// Every evaluated user (and root user with an active key) as an OCSF Compliance Finding
    /// (`findings.ocsf.json`).
    /// Each kept as its compact JSON text, not a JSON tree: a tenth of the memory, the same bytes.
    #[serde(skip)]
    pub ocsf: Vec<Box<serde_json::value::RawValue>>,
    /// The Active keys' ages: days → keys (what a report built in shards merges its mean and
    /// 90th percentile from).
    #[serde(skip)]
    pub key_age_days: std::collections::BTreeMap<i64, u64>,
    /// A table's row count when the report holds only some of its rows (a report built in
    /// shards keeps the page's rows; the CSV holds all): by CSV name.
    #[serde(skip)]
    pub totals: std::collections::BTreeMap<&'static str, usize>,
    /// Where each kind of problem ends in `problems` ([`PROBLEM_KINDS`]): how a
    /// report built in shards lists them in one build's order.
    #[serde(skip)]
    pub problem_ends: [usize; PROBLEM_KINDS],
}

impl Report {
    /// The rows `table` (a CSV name) has in all, whether or not the report holds them all.
    pub fn total(&self, table: &'static str, held: usize) -> usize {
        self.totals.get(table).copied().unwrap_or(held)
    }
}
