//! The rule's `ruleParameters`.

use keyguard_core::Settings;
use serde::{Deserialize, Deserializer};

use crate::error::{Error, Result};

/// The Config rule parameters, named as the settings of `docs/policy.md`. Config sends every value as a
/// string (`"90"`, `"true"`); numbers and booleans are accepted too, and an empty string means
/// "not set" (what a conformance pack sends for an empty parameter). Unknown names are refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct RuleParameters {
    /// Overrides `RotationPeriod`.
    #[serde(default, deserialize_with = "days")]
    pub rotation_period: Option<u32>,
    /// Overrides `InstallationGracePeriod`.
    #[serde(default, deserialize_with = "days")]
    pub installation_grace_period: Option<u32>,
    /// Overrides `RecoveryGracePeriod`.
    #[serde(default, deserialize_with = "days")]
    pub recovery_grace_period: Option<u32>,
    /// Overrides `UnusedKeyPeriod`.
    #[serde(default, deserialize_with = "days")]
    pub unused_key_period: Option<u32>,
    /// Overrides `PendingActionWarnPeriod`.
    #[serde(default, deserialize_with = "days")]
    pub pending_action_warn_period: Option<u32>,
    /// Overrides `SingleActiveKey`.
    #[serde(default, deserialize_with = "flag")]
    pub single_active_key: Option<bool>,
    /// Overrides `ExemptionGroup`.
    #[serde(default, deserialize_with = "text")]
    pub exemption_group: Option<String>,
    /// Overrides `ExemptionExpiryTag`.
    #[serde(default, deserialize_with = "text")]
    pub exemption_expiry_tag: Option<String>,
    /// Overrides `OwnerEmailTag`.
    #[serde(default, deserialize_with = "text")]
    pub owner_email_tag: Option<String>,
    /// Overrides `MaxExemptionDays`.
    #[serde(default, deserialize_with = "days")]
    pub max_exemption_days: Option<u32>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Raw {
    Number(u64),
    Bool(bool),
    Text(String),
}

fn days<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<u32>, D::Error> {
    use serde::de::Error as _;
    match Raw::deserialize(d)? {
        Raw::Number(n) => u32::try_from(n)
            .map(Some)
            .map_err(|_| D::Error::custom(format!("{n} days is too large"))),
        Raw::Text(t) if t.trim().is_empty() => Ok(None),
        Raw::Text(t) => {
            t.trim().parse().map(Some).map_err(|_| {
                D::Error::custom(format!("expected a whole number of days, got {t:?}"))
            })
        }
        Raw::Bool(b) => Err(D::Error::custom(format!(
            "expected a whole number of days, got {b}"
        ))),
    }
}

fn flag<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<bool>, D::Error> {
    use serde::de::Error as _;
    match Raw::deserialize(d)? {
        Raw::Bool(b) => Ok(Some(b)),
        Raw::Text(t) if t.trim().is_empty() => Ok(None),
        Raw::Text(t) => match t.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(Some(true)),
            "false" => Ok(Some(false)),
            _ => Err(D::Error::custom(format!(
                "expected true or false, got {t:?}"
            ))),
        },
        Raw::Number(n) => Err(D::Error::custom(format!("expected true or false, got {n}"))),
    }
}

fn text<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<String>, D::Error> {
    use serde::de::Error as _;
    match Raw::deserialize(d)? {
        Raw::Text(t) if t.trim().is_empty() => Ok(None),
        Raw::Text(t) => Ok(Some(t)),
        other => Err(D::Error::custom(format!(
            "expected a string, got {}",
            match other {
                Raw::Number(n) => n.to_string(),
                Raw::Bool(b) => b.to_string(),
                Raw::Text(_) => unreachable!(),
            }
        ))),
    }
}

impl RuleParameters {
    /// Parses `ruleParameters` (a JSON object in a string; absent or empty means none). The error
    /// names the parameter.
    pub fn parse(raw: Option<&str>) -> Result<Self> {
        let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
            return Ok(Self::default());
        };
        let de = &mut serde_json::Deserializer::from_str(raw);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            if path == "." {
                Error::InvalidParameters(e.inner().to_string())
            } else {
                Error::InvalidParameters(format!("{path}: {}", e.inner()))
            }
        })
    }

    /// `base` with these overrides, validated (the error names the setting).
    pub fn apply(&self, base: &Settings) -> Result<Settings> {
        let mut s = base.clone();
        let set = |slot: &mut u32, v: Option<u32>| {
            if let Some(v) = v {
                *slot = v
            }
        };
        set(&mut s.rotation_period, self.rotation_period);
        set(
            &mut s.installation_grace_period,
            self.installation_grace_period,
        );
        set(&mut s.recovery_grace_period, self.recovery_grace_period);
        set(&mut s.max_exemption_days, self.max_exemption_days);
        set(&mut s.unused_key_period, self.unused_key_period);
        set(
            &mut s.pending_action_warn_period,
            self.pending_action_warn_period,
        );
        if let Some(v) = self.single_active_key {
            s.single_active_key = v;
        }
        for (slot, v) in [
            (&mut s.exemption_group, &self.exemption_group),
            (&mut s.exemption_expiry_tag, &self.exemption_expiry_tag),
            (&mut s.owner_email_tag, &self.owner_email_tag),
        ] {
            if let Some(v) = v {
                *slot = v.clone();
            }
        }
        s.validate()?;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_numbers_and_empties() {
        let p = RuleParameters::parse(Some(r#"{"RotationPeriod":"80","UnusedKeyPeriod":0,"SingleActiveKey":"false","ExemptionGroup":"","OwnerEmailTag":"owner"}"#)).unwrap();
        assert_eq!(p.rotation_period, Some(80));
        assert_eq!(p.unused_key_period, Some(0));
        assert_eq!(p.single_active_key, Some(false));
        assert_eq!(p.exemption_group, None);
        let s = p.apply(&Settings::default()).unwrap();
        assert_eq!(
            (s.rotation_period, s.unused_key_period, s.single_active_key),
            (80, 0, false)
        );
        assert_eq!(s.exemption_group, "IAMKeyRotationExemptionGroup");
        assert_eq!(
            RuleParameters::parse(None).unwrap(),
            RuleParameters::default()
        );
        assert_eq!(
            RuleParameters::parse(Some("  ")).unwrap(),
            RuleParameters::default()
        );
    }

    #[test]
    fn bad_parameters_are_named() {
        let msg = |raw: &str| RuleParameters::parse(Some(raw)).unwrap_err().to_string();
        assert!(
            msg(r#"{"RotationPeriod":"ninety"}"#).contains("RotationPeriod"),
            "{}",
            msg(r#"{"RotationPeriod":"ninety"}"#)
        );
        assert!(msg(r#"{"MaxAccessKeyAge":"90"}"#).contains("MaxAccessKeyAge"));
        assert!(msg(r#"{"SingleActiveKey":"yes"}"#).contains("SingleActiveKey"));
        assert!(msg("not json").starts_with("invalid ruleParameters"));
        let e = RuleParameters::parse(Some(r#"{"RecoveryGracePeriod":"0"}"#))
            .unwrap()
            .apply(&Settings::default())
            .unwrap_err();
        assert!(e.to_string().contains("RecoveryGracePeriod"), "{e}");
    }
}
