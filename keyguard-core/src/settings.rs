//! The policy settings and their validation.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The user-tag prefix under which keyguard records when it disabled a key
/// (`keyguard:disabled:<AccessKeyId>` = RFC 3339 time). IAM keeps no such timestamp.
pub const DISABLED_TAG_PREFIX: &str = "keyguard:disabled:";

/// The user-tag prefix under which `keyguard restore` records when it re-enabled a key
/// (`keyguard:restored:<AccessKeyId>` = RFC 3339 time): the key is then not disabled again before
/// InstallationGracePeriod has passed, so the pipeline that broke has time to move to the new key.
pub const RESTORED_TAG_PREFIX: &str = "keyguard:restored:";

/// The user-tag prefix under which keyguard records that it disabled a key because it leaked
/// (`keyguard:leaked:<AccessKeyId>` = RFC 3339 time): a leaked key set Active again by anyone but
/// `keyguard restore` is disabled again at once.
pub const LEAKED_TAG_PREFIX: &str = "keyguard:leaked:";

/// The user tag set just before the remediator creates a key and removed once its secret is
/// stored (RFC 3339 time). A run that finds it repairs an interrupted rotation
/// (`docs/invariants.md#invariant-6`).
pub const ROTATING_TAG: &str = "keyguard:rotating";

/// The user tag listing the warnings already sent (`rotate@2026-12-01 disable@2026-12-11`), so
/// that each coming step is announced once, not on every daily run.
pub const WARNED_TAG: &str = "keyguard:warned";

/// keyguard's record (mirrored in this user tag, suffixed with the key id) of the day it first
/// saw a rotated key used: its secret may be deleted a set number of days later.
pub const FIRST_USED_TAG_PREFIX: &str = "keyguard:first-used:";

/// keyguard's policy. Build it with [`Settings::default`] and change fields, then call
/// [`Settings::validate`] once at start: every function of this crate assumes valid settings.
///
/// Periods are whole days. Names follow the aws-samples parameters so that a migration keeps its
/// values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields, default)]
pub struct Settings {
    /// An active key this many days old is due for rotation (IAM.3 / CIS 1.14). Default 90.
    pub rotation_period: u32,
    /// Days from a rotation (the successor's creation) to disabling the old key. Default 10.
    pub installation_grace_period: u32,
    /// Days from disabling a key to deleting it; the key can be re-enabled meanwhile. Default 10.
    pub recovery_grace_period: u32,
    /// An active key unused (or, if never used, existing) this many days is disabled, never rotated
    /// (CIS 1.12). 0 switches the check off. Default 45.
    pub unused_key_period: u32,
    /// Owners are warned this many days before each action. Default 14.
    pub pending_action_warn_period: u32,
    /// Two active keys on one user is a finding (CIS 1.13), and the older is disabled
    /// `installation_grace_period` days after the newer was created. Default true.
    pub single_active_key: bool,
    /// Members of this IAM group are exempt until the date in `exemption_expiry_tag`.
    pub exemption_group: String,
    /// The user tag holding the exemption's expiry (`YYYY-MM-DD`, inclusive, or RFC 3339).
    pub exemption_expiry_tag: String,
    /// The longest an exemption may run: an expiry further than this many days ahead is no
    /// exemption, and a finding. Default 365.
    pub max_exemption_days: u32,
    /// The user tag holding the owner's email address for notices.
    pub owner_email_tag: String,
    /// When true (the default), nothing is written to IAM or Secrets Manager.
    pub dry_run: bool,
    /// The old key's disable after a rotation while the old key is still used and its successor
    /// never was: held (the default; the owner is told each day) or done on time.
    pub disable_while_in_use: DisableWhileInUse,
    /// The longest a held disable waits, in days after it was due. Default 14; at most 90.
    pub max_disable_hold_days: u32,
    /// A disable or delete happens no earlier than this many days after its owner was first
    /// told of it (a warning, a preview, or the notice of the step before). Default 3; 0 = off.
    pub minimum_notice_days: u32,
}

/// What happens to a rotation's old key when its disable is due while the old key is still used
/// and the new one never was (`Settings::disable_while_in_use`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DisableWhileInUse {
    /// The disable waits (at most `MaxDisableHoldDays`) and the owner is told each day.
    #[default]
    Hold,
    /// The disable happens on time, whatever the use.
    Proceed,
}

impl DisableWhileInUse {
    /// Parses `hold` or `proceed`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "hold" => Some(DisableWhileInUse::Hold),
            "proceed" => Some(DisableWhileInUse::Proceed),
            _ => None,
        }
    }
}

/// The longest `MaxDisableHoldDays` may be: a hold delays compliance by a bounded amount.
pub const MAX_HOLD_DAYS: u32 = 90;
/// The longest `MinimumNoticeDays` may be.
pub const MAX_NOTICE_DAYS: u32 = 30;

impl Default for Settings {
    fn default() -> Self {
        Self {
            rotation_period: 90,
            installation_grace_period: 10,
            recovery_grace_period: 10,
            unused_key_period: 45,
            pending_action_warn_period: 14,
            single_active_key: true,
            exemption_group: "IAMKeyRotationExemptionGroup".into(),
            exemption_expiry_tag: "keyguard:exemption-expires".into(),
            max_exemption_days: 365,
            owner_email_tag: "owner-email".into(),
            dry_run: true,
            disable_while_in_use: DisableWhileInUse::Hold,
            max_disable_hold_days: 14,
            minimum_notice_days: 3,
        }
    }
}

/// IAM allows at most this many days in any of our periods before the numbers stop meaning
/// anything (ten years); larger values are almost certainly a unit mistake (seconds, hours).
const MAX_DAYS: u32 = 3650;

impl Settings {
    /// Checks every value and their combination; the error names the first offending setting.
    ///
    /// Rules: every period in 1..=3650 days (UnusedKeyPeriod may be 0 = off; the warn period may
    /// be 0 = no warnings but must be shorter than RotationPeriod), and the group and tag names
    /// must be valid IAM names.
    pub fn validate(&self) -> Result<()> {
        let days = |setting: &'static str, v: u32, min: u32| -> Result<()> {
            if v < min || v > MAX_DAYS {
                return Err(Error::InvalidSetting {
                    setting,
                    reason: format!("{v} days is outside {min}..={MAX_DAYS}"),
                });
            }
            Ok(())
        };
        days("RotationPeriod", self.rotation_period, 1)?;
        days("InstallationGracePeriod", self.installation_grace_period, 1)?;
        days("RecoveryGracePeriod", self.recovery_grace_period, 1)?;
        days("UnusedKeyPeriod", self.unused_key_period, 0)?;
        days("MaxExemptionDays", self.max_exemption_days, 1)?;
        days(
            "PendingActionWarnPeriod",
            self.pending_action_warn_period,
            0,
        )?;
        for (setting, v, max) in [
            (
                "MaxDisableHoldDays",
                self.max_disable_hold_days,
                MAX_HOLD_DAYS,
            ),
            (
                "MinimumNoticeDays",
                self.minimum_notice_days,
                MAX_NOTICE_DAYS,
            ),
        ] {
            if v > max {
                return Err(Error::InvalidSetting {
                    setting,
                    reason: format!("{v} days is outside 0..={max}"),
                });
            }
        }
        if self.pending_action_warn_period >= self.rotation_period {
            return Err(Error::InvalidSetting {
                setting: "PendingActionWarnPeriod",
                reason: format!(
                    "{} days must be shorter than RotationPeriod ({} days), or every new key would be warned about at once",
                    self.pending_action_warn_period, self.rotation_period
                ),
            });
        }
        valid_iam_name("ExemptionGroup", &self.exemption_group, 128, |c| {
            c.is_ascii_alphanumeric() || "+=,.@_-".contains(c)
        })?;
        // IAM tag keys: letters, digits, spaces and _.:/=+-@, up to 128 characters, not `aws:`.
        let tag_char = |c: char| c.is_alphanumeric() || " _.:/=+-@".contains(c);
        valid_iam_name(
            "ExemptionExpiryTag",
            &self.exemption_expiry_tag,
            128,
            tag_char,
        )?;
        valid_iam_name("OwnerEmailTag", &self.owner_email_tag, 128, tag_char)?;
        for (setting, tag) in [
            ("ExemptionExpiryTag", &self.exemption_expiry_tag),
            ("OwnerEmailTag", &self.owner_email_tag),
        ] {
            if tag.to_ascii_lowercase().starts_with("aws:") {
                return Err(Error::InvalidSetting {
                    setting,
                    reason: "tag keys starting with aws: are reserved by AWS".into(),
                });
            }
        }
        if self.exemption_expiry_tag == self.owner_email_tag {
            return Err(Error::InvalidSetting {
                setting: "OwnerEmailTag",
                reason: "must differ from ExemptionExpiryTag".into(),
            });
        }
        Ok(())
    }

    /// Day on which an active key created at `created` is due for rotation.
    pub fn rotation_due(
        &self,
        created: chrono::DateTime<chrono::Utc>,
    ) -> chrono::DateTime<chrono::Utc> {
        created + chrono::Duration::days(self.rotation_period.into())
    }
}

fn valid_iam_name(
    setting: &'static str,
    value: &str,
    max: usize,
    allowed: impl Fn(char) -> bool,
) -> Result<()> {
    if value.is_empty() || value.chars().count() > max {
        return Err(Error::InvalidSetting {
            setting,
            reason: format!(
                "must be 1 to {max} characters, got {}",
                value.chars().count()
            ),
        });
    }
    if let Some(bad) = value.chars().find(|c| !allowed(*c)) {
        return Err(Error::InvalidSetting {
            setting,
            reason: format!("character {bad:?} is not allowed in {value:?}"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: Settings) -> &'static str {
        match s.validate() {
            Err(Error::InvalidSetting { setting, .. }) => setting,
            Ok(()) => "ok",
        }
    }

    #[test]
    fn defaults_match_design() {
        let s = Settings::default();
        assert_eq!(s.validate(), Ok(()));
        assert_eq!(
            (
                s.rotation_period,
                s.installation_grace_period,
                s.recovery_grace_period
            ),
            (90, 10, 10)
        );
        assert_eq!(
            (s.unused_key_period, s.pending_action_warn_period),
            (45, 14)
        );
        assert!(s.single_active_key && s.dry_run);
        assert_eq!(s.exemption_group, "IAMKeyRotationExemptionGroup");
        assert_eq!(s.exemption_expiry_tag, "keyguard:exemption-expires");
        assert_eq!(s.owner_email_tag, "owner-email");
    }

    #[test]
    fn each_bad_value_names_its_setting() {
        let d = Settings::default;
        assert_eq!(
            err(Settings {
                rotation_period: 0,
                ..d()
            }),
            "RotationPeriod"
        );
        assert_eq!(
            err(Settings {
                rotation_period: 99_999,
                ..d()
            }),
            "RotationPeriod"
        );
        assert_eq!(
            err(Settings {
                installation_grace_period: 0,
                ..d()
            }),
            "InstallationGracePeriod"
        );
        assert_eq!(
            err(Settings {
                recovery_grace_period: 0,
                ..d()
            }),
            "RecoveryGracePeriod"
        );
        assert_eq!(
            err(Settings {
                unused_key_period: 4000,
                ..d()
            }),
            "UnusedKeyPeriod"
        );
        assert_eq!(
            err(Settings {
                unused_key_period: 0,
                ..d()
            }),
            "ok"
        );
        assert_eq!(
            err(Settings {
                pending_action_warn_period: 90,
                ..d()
            }),
            "PendingActionWarnPeriod"
        );
        assert_eq!(
            err(Settings {
                pending_action_warn_period: 0,
                ..d()
            }),
            "ok"
        );
        assert_eq!(
            err(Settings {
                exemption_group: String::new(),
                ..d()
            }),
            "ExemptionGroup"
        );
        assert_eq!(
            err(Settings {
                exemption_group: "a/b".into(),
                ..d()
            }),
            "ExemptionGroup"
        );
        assert_eq!(
            err(Settings {
                exemption_group: "x".repeat(129),
                ..d()
            }),
            "ExemptionGroup"
        );
        assert_eq!(
            err(Settings {
                exemption_expiry_tag: "aws:x".into(),
                ..d()
            }),
            "ExemptionExpiryTag"
        );
        assert_eq!(
            err(Settings {
                owner_email_tag: "a\"b".into(),
                ..d()
            }),
            "OwnerEmailTag"
        );
        assert_eq!(
            err(Settings {
                owner_email_tag: "keyguard:exemption-expires".into(),
                ..d()
            }),
            "OwnerEmailTag"
        );
    }

    #[test]
    fn message_names_the_setting() {
        let e = Settings {
            recovery_grace_period: 0,
            ..Settings::default()
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("RecoveryGracePeriod"), "{e}");
    }
}
