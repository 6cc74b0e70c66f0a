//! keyguard's own records of a user (`docs/invariants.md#invariant-5`): what IAM does not keep and what decides
//! a disable or a delete: when keyguard disabled a key, a rotation in progress, which warnings went
//! out, which keys an operator restored.
//!
//! They are kept as a map from keyguard's tag keys ([`ROTATING_TAG`], [`WARNED_TAG`],
//! [`DISABLED_TAG_PREFIX`]`<id>`, [`RESTORED_TAG_PREFIX`]`<id>`) to their values, so the rest of the
//! policy reads them through [`User::tag`] unchanged. Where they come from is the caller's choice:
//! with the central state table they come from the table only ([`with_records`] replaces whatever
//! the user's tags say), because anyone allowed `iam:TagUser` can write a tag; the tags are then a
//! mirror for people. Without the table (`--no-lease`) they are read from the tags
//! ([`records_of_tags`]), which trusts whoever may tag users.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::model::{parse_date_or_time, User};
use crate::settings::{
    DISABLED_TAG_PREFIX, FIRST_USED_TAG_PREFIX, LEAKED_TAG_PREFIX, RESTORED_TAG_PREFIX,
    ROTATING_TAG, WARNED_TAG,
};

/// keyguard's records of one user: tag key → value.
pub type Records = BTreeMap<String, String>;

/// True for the tag keys that are keyguard's records (not the exemption expiry, which is a
/// person's input by design).
pub fn is_record_key(key: &str) -> bool {
    key == ROTATING_TAG
        || key == WARNED_TAG
        || key.starts_with(DISABLED_TAG_PREFIX)
        || key.starts_with(RESTORED_TAG_PREFIX)
        || key.starts_with(FIRST_USED_TAG_PREFIX)
        || key.starts_with(LEAKED_TAG_PREFIX)
}

/// The records a user's tags claim (trusting the tags: only without a state table).
pub fn records_of_tags(user: &User) -> Records {
    user.tags
        .iter()
        .filter(|(k, _)| is_record_key(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// `user` as keyguard's decisions see it: every record-like tag removed (whatever a person wrote
/// there) and `records` put in their place.
pub fn with_records(user: &User, records: &Records) -> User {
    let mut out = user.clone();
    out.tags.retain(|k, _| !is_record_key(k));
    out.tags
        .extend(records.iter().map(|(k, v)| (k.clone(), v.clone())));
    out
}

/// The mark of a rotation in progress ([`ROTATING_TAG`]): the instant immediately before
/// CreateAccessKey was called, and the id of that attempt (for the logs of the run that repairs
/// it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationMark {
    /// When CreateAccessKey was about to be called.
    pub at: DateTime<Utc>,
    /// Which attempt set it (the lease holder's id).
    pub attempt: String,
}

impl RotationMark {
    /// The record's value: `<RFC 3339 instant> <attempt>`.
    pub fn value(&self) -> String {
        format!(
            "{} {}",
            self.at.to_rfc3339_opts(SecondsFormat::Millis, true),
            self.attempt
        )
    }

    /// Parses a record's value (an instant alone, as earlier versions wrote it, is accepted).
    pub fn parse(value: &str) -> Option<Self> {
        let mut parts = value.split_whitespace();
        let at = parse_date_or_time(parts.next()?, false)?;
        Some(RotationMark {
            at,
            attempt: parts.next().unwrap_or_default().to_string(),
        })
    }

    /// The user's mark, if any (and valid).
    pub fn of(user: &User) -> Option<Self> {
        user.tag(ROTATING_TAG).and_then(Self::parse)
    }
}

/// Applies tag-style changes to `records`: `set` entries that are records are written, `unset`
/// keys removed.
pub fn apply_changes<'a>(
    records: &mut Records,
    set: impl IntoIterator<Item = (&'a String, &'a String)>,
    unset: impl IntoIterator<Item = &'a String>,
) {
    for k in unset {
        records.remove(k);
    }
    for (k, v) in set {
        if is_record_key(k) {
            records.insert(k.clone(), v.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(tags: &[(&str, &str)]) -> User {
        User {
            name: "ci".into(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..User::default()
        }
    }

    #[test]
    fn the_records_replace_every_record_like_tag() {
        let forged = user(&[
            (ROTATING_TAG, "2020-01-01T00:00:00Z"),
            ("keyguard:disabled:AKIAX", "2020-01-01T00:00:00Z"),
            ("keyguard:exemption-expires", "2027-01-01"),
            ("owner-email", "a@example.com"),
        ]);
        let records = Records::from([(
            "keyguard:disabled:AKIAY".to_string(),
            "2026-06-01T00:00:00Z".to_string(),
        )]);
        let seen = with_records(&forged, &records);
        assert_eq!(seen.tag(ROTATING_TAG), None);
        assert_eq!(seen.tag("keyguard:disabled:AKIAX"), None);
        assert_eq!(
            seen.tag("keyguard:disabled:AKIAY"),
            Some("2026-06-01T00:00:00Z")
        );
        assert_eq!(seen.tag("keyguard:exemption-expires"), Some("2027-01-01"));
        assert_eq!(seen.tag("owner-email"), Some("a@example.com"));
        assert_eq!(records_of_tags(&forged).len(), 2);
    }

    #[test]
    fn rotation_marks_round_trip_and_read_the_old_form() {
        let m = RotationMark {
            at: parse_date_or_time("2026-06-01T10:00:00.250Z", false).unwrap(),
            attempt: "kg-1a2b".into(),
        };
        assert_eq!(RotationMark::parse(&m.value()), Some(m));
        let old = RotationMark::parse("2026-06-01T10:00:00+00:00").unwrap();
        assert_eq!(old.attempt, "");
        assert_eq!(RotationMark::parse("soon"), None);
    }
}
