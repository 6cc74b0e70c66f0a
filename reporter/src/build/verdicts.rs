//! Config's verdicts checked against keyguard's own evaluation of what IAM returns: the rule,
//! its function and its forwarding live in the member account, whose administrator can make it
//! answer COMPLIANT (or NOT_APPLICABLE) for everyone. For every user Config calls compliant or
//! out of scope, the policy is applied to the user's keys and tags as IAM has them, at the moment
//! Config recorded its verdict (so a key that crossed the rotation period since is no
//! disagreement); a NON_COMPLIANT result of keyguard's then is a disagreement, shown as a finding.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use keyguard_core::{evaluate, AccessKey, Compliance, Settings, UserRecord};

use crate::model::{AccountInput, ConfigState, DisagreementRow};

/// Every user Config calls COMPLIANT or NOT_APPLICABLE while the policy, applied to what IAM
/// returns, finds it NON_COMPLIANT at the time of Config's verdict.
pub(super) fn disagreements(
    readable: &[(&AccountInput, &Vec<UserRecord>)],
    settings: &Settings,
    now: DateTime<Utc>,
) -> Vec<DisagreementRow> {
    let mut out = Vec::new();
    for (a, inventory) in readable {
        let ConfigState::Results(results) = &a.config else {
            continue;
        };
        let by_id: HashMap<&str, &UserRecord> = inventory
            .iter()
            .map(|r| (r.user.user_id.as_str(), r))
            .collect();
        for res in results.iter().filter(|r| {
            matches!(
                r.compliance,
                Some(Compliance::Compliant | Compliance::NotApplicable)
            )
        }) {
            let Some(rec) = by_id.get(res.resource_id.as_str()) else {
                continue; // NOT_APPLICABLE for a user that is gone: what it is for
            };
            // Config's moment, never later than the report's.
            let at = res.recorded.or(res.ordering).unwrap_or(now).min(now);
            let keys: Vec<AccessKey> = rec
                .keys
                .iter()
                .filter(|k| k.created <= at)
                .cloned()
                .collect();
            let ours = evaluate(&rec.user, &keys, settings, at);
            if ours.compliance != Compliance::NonCompliant {
                continue;
            }
            let config = res.compliance.map_or("none", Compliance::as_str);
            let iam_shows = ours
                .reasons
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            out.push(DisagreementRow {
                account: a.account.id.clone(),
                account_name: a.account.name.clone(),
                user: rec.user.name.clone(),
                config: config.to_string(),
                config_recorded: at.format("%Y-%m-%d %H:%M UTC").to_string(),
                keyguard: Compliance::NonCompliant.as_str().to_string(),
                finding: format!(
                    "Config says {config}; IAM shows {iam_shows} — the rule in account {} may \
                     have been changed",
                    a.account.id
                ),
            });
        }
    }
    out.sort_by(|x, y| (&x.account, &x.user).cmp(&(&y.account, &y.user)));
    out
}

/// One problem per account with disagreements (the CLI prints the problems; the report's box
/// at its top lists them).
pub(super) fn per_account(rows: &[DisagreementRow]) -> Vec<String> {
    let mut by: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for r in rows {
        *by.entry(r.account.as_str()).or_default() += 1;
    }
    by.into_iter()
        .map(|(account, n)| {
            format!(
                "account {account}: Config calls {n} user(s) compliant whom IAM shows out of \
                 policy; the rule there may have been changed (see \"Config and IAM disagree\")"
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};
    use keyguard_core::{Account, ComplianceResult, KeyStatus, User};

    fn record(id: &str, age: i64, now: DateTime<Utc>) -> UserRecord {
        UserRecord {
            user: User {
                name: format!("user-{id}"),
                user_id: id.into(),
                ..User::default()
            },
            keys: vec![AccessKey {
                id: None,
                slot: 1,
                status: KeyStatus::Active,
                created: now - Duration::days(age),
                last_used: Some(now - Duration::days(1)),
            }],
        }
    }

    fn result(id: &str, c: Compliance, recorded: DateTime<Utc>) -> ComplianceResult {
        ComplianceResult {
            resource_type: "AWS::IAM::User".into(),
            resource_id: id.into(),
            compliance: Some(c),
            annotation: None,
            ordering: None,
            recorded: Some(recorded),
        }
    }

    #[test]
    fn a_compliant_verdict_on_an_overdue_key_is_a_disagreement_and_a_fresh_crossing_is_not() {
        let now = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
        let day_ago = now - Duration::days(1);
        let account = AccountInput {
            account: Account {
                id: "111122223333".into(),
                name: "prod".into(),
                email: None,
            },
            inventory: Ok(vec![]),
            root_keys: vec![],
            secrets: None,
            config: ConfigState::Results(vec![
                result("A140", Compliance::Compliant, day_ago),
                // 90 days old today, 89 when Config looked yesterday: no disagreement.
                result("A90", Compliance::Compliant, day_ago),
                result("ANA", Compliance::NotApplicable, day_ago),
                result("AOK", Compliance::Compliant, day_ago),
            ]),
            pack: None,
        };
        let inv = vec![
            record("A140", 140, now),
            record("A90", 90, now),
            record("ANA", 120, now),
            record("AOK", 10, now),
        ];
        let rows = disagreements(&[(&account, &inv)], &Settings::default(), now);
        let users: Vec<&str> = rows.iter().map(|r| r.user.as_str()).collect();
        assert_eq!(users, ["user-A140", "user-ANA"]);
        assert_eq!(
            rows[0].finding,
            "Config says COMPLIANT; IAM shows key1 is 139d old — the rule in account \
             111122223333 may have been changed"
        );
        assert_eq!(rows[1].config, "NOT_APPLICABLE");
    }
}
