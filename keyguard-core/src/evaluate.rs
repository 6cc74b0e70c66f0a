//! The AWS Config verdict for one user.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::annotation::{truncate_annotation, ANNOTATION_MAX_CHARS};
use crate::model::days_between;
use crate::model::{parse_date_or_time, AccessKey, Compliance, User};
use crate::settings::Settings;

impl fmt::Display for Compliance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The user's standing with respect to the exemption group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Exemption {
    /// Not a member of the exemption group.
    None,
    /// A member with a future expiry date: the user is COMPLIANT until then.
    Valid {
        /// The exemption group.
        group: String,
        /// The last moment of the exemption.
        until: DateTime<Utc>,
    },
    /// A member without the expiry tag: not exempt (an exemption must end).
    MissingExpiry {
        /// The exemption group.
        group: String,
    },
    /// A member whose expiry tag is not a date.
    InvalidExpiry {
        /// The exemption group.
        group: String,
        /// The tag's value as found.
        value: String,
    },
    /// A member whose expiry date has passed.
    Expired {
        /// The exemption group.
        group: String,
        /// The last moment of the exemption.
        until: DateTime<Utc>,
    },
    /// A member whose expiry lies further ahead than `MaxExemptionDays`: not exempt (an
    /// exemption of `9999-12-31` is no exemption but a way around the policy).
    TooLong {
        /// The exemption group.
        group: String,
        /// The expiry the tag asks for.
        until: DateTime<Utc>,
        /// The cap, `MaxExemptionDays`.
        max_days: u32,
    },
}

impl Exemption {
    /// Reads the user's exemption at `now`: group membership plus the expiry tag. A `YYYY-MM-DD`
    /// expiry includes that whole day (UTC). An expiry more than `MaxExemptionDays` after `now`
    /// is [`Exemption::TooLong`]: the change that granted it was no later than `now`, so it
    /// granted more than the cap. (One granted within the cap and re-tagged later is caught at
    /// each re-tag; the report's exemption ledger checks every grant against its own time.)
    pub fn of(user: &User, settings: &Settings, now: DateTime<Utc>) -> Self {
        let group = &settings.exemption_group;
        if !user.groups.iter().any(|g| g == group) {
            return Exemption::None;
        }
        let group = group.clone();
        let Some(raw) = user.tag(&settings.exemption_expiry_tag) else {
            return Exemption::MissingExpiry { group };
        };
        match parse_date_or_time(raw, true) {
            None => Exemption::InvalidExpiry {
                group,
                value: raw.to_string(),
            },
            Some(until) if until > exemption_cap(settings, now) => Exemption::TooLong {
                group,
                until,
                max_days: settings.max_exemption_days,
            },
            Some(until) if now <= until => Exemption::Valid { group, until },
            Some(until) => Exemption::Expired { group, until },
        }
    }

    /// True only for [`Exemption::Valid`].
    pub fn is_valid(&self) -> bool {
        matches!(self, Exemption::Valid { .. })
    }
}

/// The last moment an exemption granted at `at` may run to: `MaxExemptionDays` later, to the end
/// of that day (UTC), as a `YYYY-MM-DD` expiry would.
pub fn exemption_cap(settings: &Settings, at: DateTime<Utc>) -> DateTime<Utc> {
    let last_day = (at + Duration::days(settings.max_exemption_days.into())).date_naive();
    last_day.and_hms_opt(23, 59, 59).map_or(at, |t| t.and_utc())
}

/// Why a user is out of policy. Keys are named by their masked label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Reason {
    /// An active key is `RotationPeriod` days old or older.
    RotationDue {
        /// Masked key.
        key: String,
        /// Whole days since creation.
        age_days: i64,
    },
    /// An active key was not used for `UnusedKeyPeriod` days (never-used keys count from
    /// creation).
    Unused {
        /// Masked key.
        key: String,
        /// Whole days since last use (or creation).
        idle_days: i64,
        /// The key never authenticated a request.
        never_used: bool,
    },
    /// Two active keys while `SingleActiveKey` is on.
    TwoActiveKeys,
    /// In the exemption group, but no expiry tag.
    ExemptionMissingExpiry {
        /// The exemption group.
        group: String,
    },
    /// In the exemption group, but the expiry tag is not a date.
    ExemptionInvalidExpiry {
        /// The exemption group.
        group: String,
    },
    /// In the exemption group, but the expiry date has passed.
    ExemptionExpired {
        /// The exemption group.
        group: String,
        /// The exemption's last day.
        until: DateTime<Utc>,
    },
    /// In the exemption group, with an expiry further ahead than `MaxExemptionDays`.
    ExemptionTooLong {
        /// The exemption group.
        group: String,
        /// The expiry the tag asks for.
        until: DateTime<Utc>,
        /// The cap.
        max_days: u32,
    },
    /// The account's root user has an active access key (CIS 1.4 in v1.4.0–v4.0.1, Security Hub
    /// IAM.4). Never remediated: keyguard cannot and must not touch root.
    RootAccessKey {
        /// The key's credential-report slot label (`key1`, `key2`).
        key: String,
        /// Whole days since creation.
        age_days: i64,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::RotationDue { key, age_days } => write!(f, "{key} is {age_days}d old"),
            Reason::Unused {
                key,
                idle_days,
                never_used: true,
            } => {
                write!(f, "{key} never used in {idle_days}d")
            }
            Reason::Unused {
                key,
                idle_days,
                never_used: false,
            } => {
                write!(f, "{key} unused for {idle_days}d")
            }
            Reason::TwoActiveKeys => f.write_str("2 active keys"),
            Reason::ExemptionMissingExpiry { group } => {
                write!(f, "in {group} without an expiry tag")
            }
            Reason::ExemptionInvalidExpiry { group } => {
                write!(f, "in {group} with an expiry tag that is not a date")
            }
            Reason::ExemptionTooLong {
                group,
                until,
                max_days,
            } => write!(
                f,
                "in {group} until {}, longer than the {max_days}-day cap on exemptions",
                until.format("%Y-%m-%d")
            ),
            Reason::RootAccessKey { key, age_days } => {
                write!(f, "root user's access {key} is active ({age_days}d old)")
            }
            Reason::ExemptionExpired { group, until } => {
                write!(
                    f,
                    "exemption via {group} expired {}",
                    until.format("%Y-%m-%d")
                )
            }
        }
    }
}

/// The name the root user has in the credential report, and in keyguard's findings of it.
pub const ROOT_USER: &str = "<root_account>";

/// The root user's finding, from its credential-report key slots: NON_COMPLIANT while any of its
/// access keys is Active (it must be deleted by a person signed in as root; keyguard never acts
/// on it), `None` when root has no active key.
pub fn evaluate_root(keys: &[AccessKey], now: DateTime<Utc>) -> Option<Finding> {
    let reasons: Vec<Reason> = keys
        .iter()
        .filter(|k| k.is_active())
        .map(|k| Reason::RootAccessKey {
            key: k.label(),
            age_days: crate::model::days_between(k.created, now),
        })
        .collect();
    if reasons.is_empty() {
        return None;
    }
    let used = keys
        .iter()
        .filter(|k| k.is_active())
        .map(|k| match k.last_used {
            Some(t) => format!("{} last used {}", k.label(), t.format("%Y-%m-%d")),
            None => format!("{} never used", k.label()),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let why = reasons
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    Some(Finding {
        user_name: ROOT_USER.into(),
        user_id: ROOT_USER.into(),
        compliance: Compliance::NonCompliant,
        reasons,
        exemption: Exemption::None,
        annotation: truncate_annotation(
            &format!(
                "{why} ({used}). Delete it signed in as root (CIS 1.4, Security Hub IAM.4); keyguard never acts on root."
            ),
            ANNOTATION_MAX_CHARS,
        ),
    })
}

/// The verdict on one user, ready to become a Config evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The user name.
    pub user_name: String,
    /// The IAM UserId: Config's resource id for `AWS::IAM::User`.
    pub user_id: String,
    /// The verdict.
    pub compliance: Compliance,
    /// Every policy violation found, including those a valid exemption waives.
    pub reasons: Vec<Reason>,
    /// The exemption standing.
    pub exemption: Exemption,
    /// At most [`ANNOTATION_MAX_CHARS`] characters: why, and each key's age and last use.
    pub annotation: String,
}

impl Finding {
    /// A NOT_APPLICABLE verdict for a user that was deleted or left the rule's scope.
    pub fn not_applicable(user_name: &str, user_id: &str, why: &str) -> Self {
        Finding {
            user_name: user_name.into(),
            user_id: user_id.into(),
            compliance: Compliance::NotApplicable,
            reasons: vec![],
            exemption: Exemption::None,
            annotation: truncate_annotation(why, ANNOTATION_MAX_CHARS),
        }
    }

    /// True when the annotation should name the keys by id: every NON_COMPLIANT verdict (the
    /// remediator and the reader of the finding need them). Compliant users keep slot names
    /// (`key1`), which saves one ListAccessKeys per compliant user.
    pub fn needs_key_ids(&self) -> bool {
        self.compliance == Compliance::NonCompliant
    }
}

/// Evaluates one user's keys at `now`. `keys` may come from a credential report (ids unknown) or
/// from ListAccessKeys; inactive keys never make a user non-compliant.
///
/// Thresholds are inclusive: a key exactly `RotationPeriod` days old is due, so the verdict
/// at the boundary second is deterministic and agrees with [`crate::plan()`].
pub fn evaluate(
    user: &User,
    keys: &[AccessKey],
    settings: &Settings,
    now: DateTime<Utc>,
) -> Finding {
    let exemption = Exemption::of(user, settings, now);
    let mut reasons = key_reasons(keys, settings, now);
    match &exemption {
        Exemption::None | Exemption::Valid { .. } => {}
        Exemption::MissingExpiry { group } => reasons.insert(
            0,
            Reason::ExemptionMissingExpiry {
                group: group.clone(),
            },
        ),
        Exemption::InvalidExpiry { group, .. } => reasons.insert(
            0,
            Reason::ExemptionInvalidExpiry {
                group: group.clone(),
            },
        ),
        Exemption::Expired { group, until } => reasons.insert(
            0,
            Reason::ExemptionExpired {
                group: group.clone(),
                until: *until,
            },
        ),
        Exemption::TooLong {
            group,
            until,
            max_days,
        } => reasons.insert(
            0,
            Reason::ExemptionTooLong {
                group: group.clone(),
                until: *until,
                max_days: *max_days,
            },
        ),
    }
    let compliance = if exemption.is_valid() || reasons.is_empty() {
        Compliance::Compliant
    } else {
        Compliance::NonCompliant
    };
    let annotation = annotate(&exemption, &reasons, keys, now);
    Finding {
        user_name: user.name.clone(),
        user_id: user.user_id.clone(),
        compliance,
        reasons,
        exemption,
        annotation,
    }
}

/// The key-policy violations, in key order.
fn key_reasons(keys: &[AccessKey], settings: &Settings, now: DateTime<Utc>) -> Vec<Reason> {
    let mut reasons = Vec::new();
    for key in keys.iter().filter(|k| k.is_active()) {
        if now >= settings.rotation_due(key.created) {
            reasons.push(Reason::RotationDue {
                key: key.label(),
                age_days: days_between(key.created, now),
            });
        }
        if unused_from(key, settings).is_some_and(|at| now >= at) {
            reasons.push(Reason::Unused {
                key: key.label(),
                idle_days: days_between(key.last_used.unwrap_or(key.created), now),
                never_used: key.last_used.is_none(),
            });
        }
    }
    if settings.single_active_key && keys.iter().filter(|k| k.is_active()).count() >= 2 {
        reasons.push(Reason::TwoActiveKeys);
    }
    reasons
}

/// The moment an active `key` becomes (or became) unused if it is not used again: its last use,
/// or its creation when never used, plus UnusedKeyPeriod. `None` for an inactive key or with the
/// check off (UnusedKeyPeriod 0).
pub(crate) fn unused_from(key: &AccessKey, settings: &Settings) -> Option<DateTime<Utc>> {
    (settings.unused_key_period > 0 && key.is_active()).then(|| {
        key.last_used.unwrap_or(key.created) + Duration::days(settings.unused_key_period.into())
    })
}

fn annotate(
    exemption: &Exemption,
    reasons: &[Reason],
    keys: &[AccessKey],
    now: DateTime<Utc>,
) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Exemption::Valid { group, until } = exemption {
        parts.push(format!(
            "Exempt via {group} until {}",
            until.format("%Y-%m-%d")
        ));
    }
    if !reasons.is_empty() {
        let list = reasons
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        parts.push(if exemption.is_valid() {
            format!("waived: {list}")
        } else {
            list
        });
    }
    if keys.is_empty() {
        parts.push("no access keys".into());
    } else {
        let summary = keys
            .iter()
            .map(|k| {
                let state = if k.is_active() { "active" } else { "inactive" };
                let used = match k.last_used {
                    Some(t) => format!("used {}d ago", days_between(t, now).max(0)),
                    None => "never used".into(),
                };
                format!(
                    "{} {state} {}d {used}",
                    k.label(),
                    days_between(k.created, now).max(0)
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        parts.push(format!("Keys: {summary}"));
    }
    truncate_annotation(&parts.join(". "), ANNOTATION_MAX_CHARS)
}

#[cfg(test)]
mod root_tests {
    use super::*;
    use crate::model::parse_date_or_time;
    use crate::model::KeyStatus;

    #[test]
    fn an_active_root_key_is_a_finding_an_inactive_one_is_not() {
        let now = parse_date_or_time("2026-06-01", false).unwrap();
        let key = |slot, status| AccessKey {
            id: None,
            slot,
            status,
            created: parse_date_or_time("2025-06-01", false).unwrap(),
            last_used: None,
        };
        assert!(evaluate_root(&[key(1, KeyStatus::Inactive)], now).is_none());
        assert!(evaluate_root(&[], now).is_none());
        let f = evaluate_root(
            &[key(1, KeyStatus::Inactive), key(2, KeyStatus::Active)],
            now,
        )
        .unwrap();
        assert_eq!(f.compliance, Compliance::NonCompliant);
        assert_eq!(f.user_name, ROOT_USER);
        assert_eq!(
            f.reasons,
            [Reason::RootAccessKey {
                key: "key2".into(),
                age_days: 365
            }]
        );
        assert!(f.annotation.contains("CIS 1.4") && f.annotation.chars().count() <= 256);
    }
}
