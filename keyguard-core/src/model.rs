//! The data keyguard decides on: accounts, IAM users and their access keys.
//!
//! Built by `keyguard-aws` from IAM (credential report, account authorization details,
//! ListAccessKeys) or from an evidence folder; nothing here knows where it came from.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// An AWS account of the organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The 12-digit account id.
    pub id: String,
    /// The account's name in Organizations (may be empty outside an organization).
    pub name: String,
    /// The account's root email, the owner-notice fallback.
    pub email: Option<String>,
}

impl Account {
    /// Whether `s` has the shape of an AWS account id: 12 digits.
    pub fn is_id(s: &str) -> bool {
        s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
    }
}

/// An IAM user as far as the policy cares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct User {
    /// The user name (may contain `+=,.@-`); unique in the account.
    pub name: String,
    /// IAM's stable UserId (`AIDA…` in AWS): the Config resource id.
    pub user_id: String,
    /// The user's ARN.
    pub arn: String,
    /// The IAM path (`/` or `/ci/…/`).
    pub path: String,
    /// Names of the groups the user belongs to.
    pub groups: Vec<String>,
    /// The user's tags.
    pub tags: BTreeMap<String, String>,
}

impl User {
    /// The value of tag `key`, if set and not blank.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .get(key)
            .map(String::as_str)
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }
}

/// Whether IAM accepts the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
pub enum KeyStatus {
    /// The key authenticates requests.
    Active,
    /// The key is disabled; it can be re-enabled until it is deleted.
    Inactive,
}

/// One access key of a user. The secret is never part of the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKey {
    /// The access key id (`AKIA…`). `None` when the key came from a credential report slot and
    /// the user had no finding, so keyguard did not spend a call on ListAccessKeys.
    pub id: Option<String>,
    /// The credential-report slot (1 or 2), used to name the key when its id is unknown.
    pub slot: u8,
    /// Active or Inactive.
    pub status: KeyStatus,
    /// When IAM created the key.
    pub created: DateTime<Utc>,
    /// When the key last authenticated a request; `None` when never used.
    pub last_used: Option<DateTime<Utc>>,
}

impl AccessKey {
    /// True when the key is Active.
    pub fn is_active(&self) -> bool {
        self.status == KeyStatus::Active
    }

    /// The key as it may appear in logs, annotations, reports and email: `AKIA…WXYZ`, or
    /// `key1` / `key2` when the id is unknown.
    pub fn label(&self) -> String {
        match &self.id {
            Some(id) => crate::annotation::mask_key_id(id),
            None => format!("key{}", self.slot),
        }
    }

    /// When keyguard recorded disabling this key, from the user's
    /// `keyguard:disabled:<AccessKeyId>` tag. `None` when the id is unknown, the tag is absent or
    /// its value is not a date.
    pub fn disabled_at(&self, user: &User) -> Option<DateTime<Utc>> {
        let id = self.id.as_deref()?;
        let raw = user.tag(&format!("{}{id}", crate::settings::DISABLED_TAG_PREFIX))?;
        parse_date_or_time(raw, false)
    }

    /// When `keyguard restore` re-enabled this key, from the user's
    /// `keyguard:restored:<AccessKeyId>` tag.
    pub fn restored_at(&self, user: &User) -> Option<DateTime<Utc>> {
        let id = self.id.as_deref()?;
        let raw = user.tag(&format!("{}{id}", crate::settings::RESTORED_TAG_PREFIX))?;
        parse_date_or_time(raw, false)
    }
}

/// One user with the keys keyguard knows of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The user.
    pub user: User,
    /// The user's keys; ids are `None` when they came from the credential report only.
    pub keys: Vec<AccessKey>,
}

/// One stored AWS Config result of keyguard's rule, as Config (or an evidence folder) gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplianceResult {
    /// The resource type.
    pub resource_type: String,
    /// The resource id (IAM UserId for keyguard's rule).
    pub resource_id: String,
    /// The verdict (`None` for INSUFFICIENT_DATA).
    pub compliance: Option<Compliance>,
    /// The annotation.
    pub annotation: Option<String>,
    /// When the evaluated event happened.
    pub ordering: Option<DateTime<Utc>>,
    /// When Config recorded the result.
    pub recorded: Option<DateTime<Utc>>,
}

/// Parses `YYYY-MM-DD` (as the start of that day, or its last second when `end_of_day`) or an
/// RFC 3339 time.
pub fn parse_date_or_time(raw: &str, end_of_day: bool) -> Option<DateTime<Utc>> {
    let raw = raw.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Some(t.with_timezone(&Utc));
    }
    let day = chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok()?;
    let t = if end_of_day {
        day.and_hms_opt(23, 59, 59)?
    } else {
        day.and_hms_opt(0, 0, 0)?
    };
    Some(t.and_utc())
}

/// A Config compliance type, spelled as Config spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Compliance {
    /// The user's keys are within policy, or the user is validly exempt.
    Compliant,
    /// At least one [`Reason`](crate::Reason) applies.
    NonCompliant,
    /// The user no longer exists or left the rule's scope.
    NotApplicable,
}

impl Compliance {
    /// Config's spelling: `COMPLIANT`, `NON_COMPLIANT`, `NOT_APPLICABLE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Compliance::Compliant => "COMPLIANT",
            Compliance::NonCompliant => "NON_COMPLIANT",
            Compliance::NotApplicable => "NOT_APPLICABLE",
        }
    }

    /// Parses Config's spelling; `None` for `INSUFFICIENT_DATA` and anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "COMPLIANT" => Some(Compliance::Compliant),
            "NON_COMPLIANT" => Some(Compliance::NonCompliant),
            "NOT_APPLICABLE" => Some(Compliance::NotApplicable),
            _ => None,
        }
    }
}

/// Whole days from `from` to `to`, rounded down; negative when `to` is earlier.
pub fn days_between(from: chrono::DateTime<chrono::Utc>, to: chrono::DateTime<chrono::Utc>) -> i64 {
    (to - from).num_days()
}
