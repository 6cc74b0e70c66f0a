//! Data freshness per account, and the control mapping (CIS, Security Hub).

use chrono::{DateTime, Duration, Utc};
use keyguard_core::UserRecord;
use keyguard_core::{Compliance, Reason};

use super::figures::ComplianceFigures;
use super::thresholds::STALE_AFTER_DAYS;
use crate::cloudtrail::TrailEvent;
use crate::model::*;

pub(super) fn freshness(
    inputs: &Inputs,
    fig: &ComplianceFigures,
    events: &[&TrailEvent],
) -> Vec<FreshnessRow> {
    inputs
        .accounts
        .iter()
        .map(|a| {
            let (users, evaluated, last) = fig
                .per_account
                .get(&a.account.id)
                .copied()
                .unwrap_or((0, 0, None));
            let last = last.and_then(DateTime::<Utc>::from_timestamp_millis);
            FreshnessRow {
                account: a.account.id.clone(),
                account_name: a.account.name.clone(),
                inventory: match &a.inventory {
                    Ok(_) => "read".into(),
                    Err(e) => format!("could not be read: {e}"),
                },
                users: if a.inventory.is_ok() { users } else { 0 },
                config: match &a.config {
                    ConfigState::Results(r) if r.is_empty() => "no results yet".into(),
                    ConfigState::Results(_) => "evaluated".into(),
                    ConfigState::RuleMissing => format!("rule {} missing", inputs.rule_name),
                    ConfigState::NotCollected => "no results collected".into(),
                    ConfigState::Unreadable(e) => format!("could not be read: {e}"),
                },
                users_evaluated: if a.inventory.is_ok() { evaluated } else { 0 },
                last_evaluated: last
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .unwrap_or_default(),
                stale: last.is_some_and(|t| inputs.as_of - t > Duration::days(STALE_AFTER_DAYS)),
                trail_events: events.iter().filter(|e| e.account == a.account.id).count() as u64,
            }
        })
        .collect()
}

/// Which reasons fail which check.
#[derive(Clone, Copy)]
pub(super) enum Check {
    Unused,
    OneActive,
    Rotated,
    RootKey,
}

/// True when `f` is NON_COMPLIANT for a reason of `check` (a valid exemption is a documented
/// exception, not a failure).
pub(super) fn fails(f: &keyguard_core::Finding, check: Check) -> bool {
    f.compliance == Compliance::NonCompliant
        && f.reasons.iter().any(|r| {
            matches!(
                (check, r),
                (Check::Unused, Reason::Unused { .. })
                    | (Check::OneActive, Reason::TwoActiveKeys)
                    | (Check::Rotated, Reason::RotationDue { .. })
                    | (Check::RootKey, Reason::RootAccessKey { .. })
            )
        })
}

/// The control catalogue: CIS numbering changed in v5.0.0 (one IAM recommendation fewer before
/// these), and Security Hub's own ids.
pub const CONTROLS: [(&str, &str, &str, &str, u8); 11] = [
    (
        "CIS AWS Foundations v1.4.0–v4.0.1",
        "1.4",
        "Ensure no 'root' user account access key exists",
        "the root user's credential-report row (never remediated: a person deletes it as root)",
        3,
    ),
    (
        "CIS AWS Foundations v1.4.0–v4.0.1",
        "1.12",
        "Ensure credentials unused for 45 days or greater are disabled",
        "UnusedKeyPeriod (Reason: unused)",
        0,
    ),
    (
        "CIS AWS Foundations v1.4.0–v4.0.1",
        "1.13",
        "Ensure there is only one active access key for any single IAM user",
        "SingleActiveKey (Reason: two active keys)",
        1,
    ),
    (
        "CIS AWS Foundations v1.4.0–v4.0.1",
        "1.14",
        "Ensure access keys are rotated every 90 days or less",
        "RotationPeriod (Reason: rotation due)",
        2,
    ),
    (
        "CIS AWS Foundations v5.0.0, v6.0.0",
        "1.3",
        "Ensure no 'root' user account access key exists",
        "the root user's credential-report row (never remediated: a person deletes it as root)",
        3,
    ),
    (
        "CIS AWS Foundations v5.0.0, v6.0.0",
        "1.11",
        "Ensure credentials unused for 45 days or more are disabled",
        "UnusedKeyPeriod (Reason: unused)",
        0,
    ),
    (
        "CIS AWS Foundations v5.0.0, v6.0.0",
        "1.12",
        "Ensure there is only one active access key for any single IAM user",
        "SingleActiveKey (Reason: two active keys)",
        1,
    ),
    (
        "CIS AWS Foundations v5.0.0, v6.0.0",
        "1.13",
        "Ensure access keys are rotated every 90 days or less",
        "RotationPeriod (Reason: rotation due)",
        2,
    ),
    (
        "AWS Security Hub",
        "IAM.3",
        "IAM users' access keys should be rotated every 90 days or less",
        "RotationPeriod (Reason: rotation due)",
        2,
    ),
    (
        "AWS Security Hub",
        "IAM.4",
        "IAM root user access key should not exist",
        "the root user's credential-report row (never remediated: a person deletes it as root)",
        3,
    ),
    (
        "AWS Security Hub",
        "IAM.22",
        "IAM user credentials unused for 45 days should be removed",
        "UnusedKeyPeriod (Reason: unused)",
        0,
    ),
];

pub(super) fn controls(
    findings: &[(&AccountInput, &UserRecord, keyguard_core::Finding)],
) -> Vec<ControlRow> {
    CONTROLS
        .iter()
        .map(|(framework, control, title, keyguard_check, check)| {
            let check = [
                Check::Unused,
                Check::OneActive,
                Check::Rotated,
                Check::RootKey,
            ][*check as usize];
            ControlRow {
                framework,
                control,
                title,
                keyguard_check,
                failing_users: findings.iter().filter(|(_, _, f)| fails(f, check)).count() as u64,
            }
        })
        .collect()
}
