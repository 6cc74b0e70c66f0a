//! keyguard's conformance pack beside keyguard's own figures: per account, the pack's verdict,
//! each of its rules' (keyguard's and the AWS managed companions'), keyguard's evaluation of
//! what IAM returns, and where they disagree. The managed rules judge the same keys by simpler
//! rules (no exemptions, no grace), so a disagreement names what IAM shows.

use chrono::{DateTime, Duration, Utc};
use keyguard_core::pack::{overall, verdict, COMPANIONS};
use keyguard_core::{evaluate, Compliance, KeyStatus, Settings, UserRecord};

use crate::model::{AccountInput, PackRow};

/// One row per account whose pack was read, and one problem per account where the pack and IAM
/// disagree (and one for the accounts without the pack, when others have it).
pub(super) fn pack_rows(
    readable: &[(&AccountInput, &Vec<UserRecord>)],
    rule_name: &str,
    settings: &Settings,
    now: DateTime<Utc>,
) -> (Vec<PackRow>, Vec<String>) {
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    let mut without = 0;
    for (a, inventory) in readable {
        let Some(rules) = &a.pack else {
            without += 1;
            continue;
        };
        let ours = inventory
            .iter()
            .filter(|r| {
                evaluate(&r.user, &r.keys, settings, now).compliance == Compliance::NonCompliant
            })
            .count();
        let cutoff = now - Duration::days(settings.rotation_period.into());
        let overdue = inventory
            .iter()
            .filter(|r| {
                r.keys
                    .iter()
                    .any(|k| k.status == KeyStatus::Active && k.created <= cutoff)
            })
            .count();
        let root_active = a.root_keys.iter().any(|k| k.status == KeyStatus::Active);
        let shown = |name: &str| {
            verdict(rules, name)
                .unwrap_or("not in the pack")
                .to_string()
        };
        let mut findings = Vec::new();
        match verdict(rules, rule_name) {
            Some("COMPLIANT") if ours > 0 => findings.push(format!(
                "keyguard's rule says COMPLIANT; keyguard's evaluation of IAM finds {ours} user(s) NON_COMPLIANT"
            )),
            Some("NON_COMPLIANT") if ours == 0 => findings.push(
                "keyguard's rule says NON_COMPLIANT; keyguard's evaluation of IAM finds every user in policy".into(),
            ),
            _ => {}
        }
        match verdict(rules, COMPANIONS[0]) {
            Some("COMPLIANT") if overdue > 0 => findings.push(format!(
                "access-keys-rotated says COMPLIANT; IAM shows {overdue} user(s) with an active key over {} days old",
                settings.rotation_period
            )),
            Some("NON_COMPLIANT") if overdue == 0 => findings.push(format!(
                "access-keys-rotated says NON_COMPLIANT; IAM shows no active key over {} days old (is its maxAccessKeyAge RotationPeriod?)",
                settings.rotation_period
            )),
            _ => {}
        }
        match verdict(rules, COMPANIONS[2]) {
            Some("COMPLIANT") if root_active => findings.push(
                "iam-root-access-key-check says COMPLIANT; the root user has an active access key".into(),
            ),
            Some("NON_COMPLIANT") if !root_active => findings.push(
                "iam-root-access-key-check says NON_COMPLIANT; the credential report shows no active root key".into(),
            ),
            _ => {}
        }
        if !findings.is_empty() {
            problems.push(format!(
                "account {}: its conformance pack and IAM disagree (see \"Conformance pack\")",
                a.account.id
            ));
        }
        rows.push(PackRow {
            account: a.account.id.clone(),
            account_name: a.account.name.clone(),
            pack: overall(rules).to_string(),
            keyguard_rule: shown(rule_name),
            access_keys_rotated: shown(COMPANIONS[0]),
            unused_credentials: shown(COMPANIONS[1]),
            root_access_key: shown(COMPANIONS[2]),
            keyguard_own: format!("{ours} NON_COMPLIANT"),
            finding: findings.join("; "),
        });
    }
    if !rows.is_empty() && without > 0 {
        problems.push(missing_pack_problem(without));
    }
    (rows, problems)
}

/// What the report says of `n` accounts read without keyguard's conformance pack.
pub(crate) fn missing_pack_problem(n: usize) -> String {
    format!(
        "{n} account(s) have no keyguard-access-keys conformance pack (or it could not be read)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use keyguard_core::pack::PackRule;
    use keyguard_core::{AccessKey, Account, User};

    fn pack(keyguard: &str, rotated: &str) -> Vec<PackRule> {
        [
            ("keyguard-access-keys-conformance-pack-0a1b2c3d", keyguard),
            ("access-keys-rotated-conformance-pack-0a1b2c3d", rotated),
            (
                "iam-user-unused-credentials-check-conformance-pack-0a1b2c3d",
                "COMPLIANT",
            ),
            (
                "iam-root-access-key-check-conformance-pack-0a1b2c3d",
                "COMPLIANT",
            ),
        ]
        .into_iter()
        .map(|(rule, c)| PackRule {
            rule: rule.into(),
            compliance: c.into(),
        })
        .collect()
    }

    #[test]
    fn a_pack_that_says_compliant_over_an_overdue_key_disagrees() {
        let now = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
        let account = |id: &str, p: Option<Vec<PackRule>>| AccountInput {
            account: Account {
                id: id.into(),
                name: "prod".into(),
                email: None,
            },
            inventory: Ok(vec![]),
            root_keys: vec![],
            secrets: None,
            config: crate::model::ConfigState::NotCollected,
            pack: p,
        };
        let overdue = vec![UserRecord {
            user: User {
                name: "ci".into(),
                user_id: "AIDA1".into(),
                ..User::default()
            },
            keys: vec![AccessKey {
                id: None,
                slot: 1,
                status: KeyStatus::Active,
                created: now - Duration::days(140),
                last_used: Some(now - Duration::days(1)),
            }],
        }];
        let silenced = account("111122223333", Some(pack("COMPLIANT", "COMPLIANT")));
        let honest = account("444455556666", Some(pack("NON_COMPLIANT", "NON_COMPLIANT")));
        let loose = account("777788889999", None);
        let (rows, problems) = pack_rows(
            &[
                (&silenced, &overdue),
                (&honest, &overdue),
                (&loose, &overdue),
            ],
            "keyguard-access-keys",
            &Settings::default(),
            now,
        );
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].pack, "COMPLIANT");
        assert_eq!(
            rows[0].finding,
            "keyguard's rule says COMPLIANT; keyguard's evaluation of IAM finds 1 user(s) \
             NON_COMPLIANT; access-keys-rotated says COMPLIANT; IAM shows 1 user(s) with an \
             active key over 90 days old"
        );
        assert_eq!(
            (rows[1].pack.as_str(), rows[1].finding.as_str()),
            ("NON_COMPLIANT", "")
        );
        assert_eq!(rows[1].keyguard_own, "1 NON_COMPLIANT");
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("111122223333"));
        assert!(problems[1].starts_with("1 account(s) have no keyguard-access-keys"));
    }
}
