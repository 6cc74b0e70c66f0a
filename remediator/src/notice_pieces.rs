//! A run's notice pieces: each examined user becomes a [`UserPiece`] (what its owner hears, and
//! its rows of the admin digest) and each account an [`AccountPiece`]. Who the owner is (the
//! owner tag, the account's email, an administrator) is decided here. A queued run stores the
//! pieces in the state table until every account is in.

use std::collections::BTreeMap;

use keyguard_aws::secrets;
use keyguard_core::{Account, User};
use serde::{Deserialize, Serialize};

use crate::email_templates::{day, valid_address, DigestRow, Item, UserNotice};
use crate::function::Remediator;
use crate::summary::{AccountReport, ActionKind, ActionRecord, Outcome};
use crate::user::UserRun;

/// One user's part of a run's notices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserPiece {
    /// The account id.
    pub account: String,
    /// The account's name.
    pub account_name: String,
    /// The IAM user name.
    pub user: String,
    /// Who is told: the owner's address, or why nobody can be.
    pub owner: std::result::Result<String, String>,
    /// What the owner hears (`None`: nothing, only digest rows).
    pub notice: Option<UserNotice>,
    /// The digest's rows for this user.
    pub rows: Vec<DigestRow>,
}

/// One account's part of the digest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountPiece {
    /// The account id.
    pub account: String,
    /// The account's name.
    pub account_name: String,
    /// Users read live.
    pub examined: usize,
    /// Steps done or previewed.
    pub done: usize,
    /// Steps failed.
    pub failed: usize,
    /// Warnings.
    pub warned: usize,
    /// Why the account could not be processed.
    pub error: Option<String>,
    /// Notes for the administrators.
    pub notes: Vec<String>,
}

/// Who hears about `user`: the owner tag when it is an address in the organization's domains,
/// else the account's email, else the first administrator. The second value is the finding
/// when the tag names an address outside those domains (the attempt to have notices mailed
/// elsewhere).
fn owner_of(
    r: &Remediator,
    user: &User,
    account: &Account,
) -> (std::result::Result<String, String>, Option<String>) {
    let tag = user.tag(&r.settings.owner_email_tag);
    let domains = &r.notices.owner_domains;
    let mut outside = None;
    if let Some(t) = tag.filter(|t| valid_address(t)) {
        if domains.admits(t, account.email.as_deref()) {
            return (Ok(t.trim().to_string()), None);
        }
        outside = Some(t.trim().to_string());
    }
    let fallback = account
        .email
        .clone()
        .filter(|e| valid_address(e))
        .or_else(|| r.notices.admins.first().cloned());
    let note = outside.map(|t| {
        format!(
            "{}: the {} tag names {t:?}, outside the organization's mail domains ({}): not \
             told there; {}",
            user.name,
            r.settings.owner_email_tag,
            domains.list().join(", "),
            fallback
                .as_deref()
                .map_or("nobody else to tell".to_string(), |f| format!(
                    "told {f} instead"
                ))
        )
    });
    let owner = match (tag, fallback) {
        (_, Some(f)) => Ok(f),
        (Some(bad), None) => Err(format!(
            "the {} tag {bad:?} is not an address and there is no fallback",
            r.settings.owner_email_tag
        )),
        (None, None) => Err(format!(
            "no {} tag, no account email, no admin address",
            r.settings.owner_email_tag
        )),
    };
    (owner, note)
}

fn user_notice(w: &UserRun, region: &str) -> UserNotice {
    let item = |r: &ActionRecord| Item {
        key: r.key.clone(),
        action: r.action.step_name().into_owned(),
        date: day(r.date),
        why: r.why.clone(),
        usage: r.usage.clone(),
    };
    let quiet = |r: &&ActionRecord| r.action != ActionKind::RecordDisabled;
    UserNotice {
        name: w.user.name.clone(),
        done: w
            .records
            .iter()
            .filter(quiet)
            .filter(|r| matches!(r.outcome, Outcome::Done | Outcome::Preview))
            .map(item)
            .collect(),
        failed: w
            .records
            .iter()
            .filter(|r| r.outcome == Outcome::Failed)
            .map(item)
            .collect(),
        warnings: w
            .records
            .iter()
            .filter(|r| r.outcome == Outcome::Warned)
            .map(item)
            .collect(),
        held: w
            .records
            .iter()
            .filter(|r| r.outcome == Outcome::Held)
            .map(item)
            .collect(),
        coming: w.coming.clone(),
        read_command: w
            .secret_name
            .as_ref()
            .map(|n| secrets::read_command(n, region)),
        secret_name: w.secret_name.clone(),
    }
}

/// The account's pieces: one per user with something to tell or report, and the account's
/// digest part. Users nobody can be told about get a note in `report`.
pub(crate) fn pieces_of(
    r: &Remediator,
    account: &Account,
    works: &[UserRun],
    report: &mut AccountReport,
) -> (AccountPiece, Vec<UserPiece>) {
    let region = r.sdk.region().map_or("us-east-1", |r| r.as_ref());
    let mut users = Vec::new();
    for w in works {
        if w.records.is_empty() {
            continue;
        }
        let notice = user_notice(w, region);
        let (owner, outside) = owner_of(r, &w.user, account);
        report.notes.extend(outside);
        if let Err(e) = &owner {
            if !notice.is_empty() {
                report
                    .notes
                    .push(format!("{}: owner not notified: {e}", w.user.name));
            }
        }
        users.push(UserPiece {
            account: account.id.clone(),
            account_name: account.name.clone(),
            user: w.user.name.clone(),
            owner,
            notice: (!notice.is_empty()).then_some(notice),
            rows: w
                .records
                .iter()
                .map(|x| DigestRow {
                    key: x.key.clone(),
                    action: x.action.to_string(),
                    outcome: x.outcome.as_str().to_string(),
                    date: day(x.date),
                    why: x.why.clone(),
                    usage: x.usage.clone(),
                })
                .collect(),
        });
    }
    let count = |o: Outcome| report.actions.iter().filter(|a| a.outcome == o).count();
    let piece = AccountPiece {
        account: account.id.clone(),
        account_name: account.name.clone(),
        examined: report.examined,
        done: count(Outcome::Done) + count(Outcome::Preview),
        failed: count(Outcome::Failed),
        warned: count(Outcome::Warned),
        error: report.error.clone(),
        notes: report.notes.clone(),
    };
    (piece, users)
}

/// Groups `users` by owner address (pieces nobody can be told about are left out).
pub(crate) fn by_owner(users: &[UserPiece]) -> BTreeMap<&str, Vec<&UserPiece>> {
    let mut out: BTreeMap<&str, Vec<&UserPiece>> = BTreeMap::new();
    for p in users.iter().filter(|p| p.notice.is_some()) {
        if let Ok(o) = &p.owner {
            out.entry(o.as_str()).or_default().push(p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::email_templates::Templates;
    use crate::function::NoticeConfig;
    use crate::owner_email::owner_notice;

    fn remediator(admins: &[&str]) -> Remediator {
        Remediator {
            notices: NoticeConfig {
                sender: Some("k@example.com".into()),
                admins: admins.iter().map(|a| a.to_string()).collect(),
                owner_domains: keyguard_core::owner::OwnerDomains::new(
                    &[],
                    &["a@example.com".into()],
                ),
                event_bus: None,
            },
            ..Remediator::for_tests()
        }
    }

    #[test]
    fn owners_fall_back_from_tag_to_account_to_admin() {
        let mut user = User {
            name: "u".into(),
            ..User::default()
        };
        let mut account = Account {
            id: "111122223333".into(),
            name: "prod".into(),
            email: Some("aws-prod@example.com".into()),
        };
        let r = remediator(&["admins@example.com"]);
        user.tags
            .insert("owner-email".into(), " dev@example.com ".into());
        assert_eq!(owner_of(&r, &user, &account).0.unwrap(), "dev@example.com");
        user.tags
            .insert("owner-email".into(), "the dev team".into());
        assert_eq!(
            owner_of(&r, &user, &account).0.unwrap(),
            "aws-prod@example.com"
        );
        account.email = None;
        assert_eq!(
            owner_of(&r, &user, &account).0.unwrap(),
            "admins@example.com"
        );
        let err = owner_of(&remediator(&[]), &user, &account).0.unwrap_err();
        assert!(err.contains("\"the dev team\" is not an address"), "{err}");
        user.tags.clear();
        let err = owner_of(&remediator(&[]), &user, &account).0.unwrap_err();
        assert!(err.contains("no owner-email tag"), "{err}");
    }

    #[test]
    fn an_owner_outside_the_organizations_domains_is_a_finding_and_not_told() {
        let user = User {
            name: "ci".into(),
            tags: [("owner-email".to_string(), "x@attacker.example".to_string())].into(),
            ..User::default()
        };
        let account = Account {
            id: "111122223333".into(),
            name: "prod".into(),
            email: Some("aws-prod@example.com".into()),
        };
        let (owner, note) = owner_of(&remediator(&["admins@example.com"]), &user, &account);
        assert_eq!(owner.unwrap(), "aws-prod@example.com");
        let note = note.unwrap();
        assert!(
            note.contains(
                "\"x@attacker.example\", outside the organization's mail domains \
                           (example.com)"
            ) && note.ends_with("told aws-prod@example.com instead"),
            "{note}"
        );
    }

    fn piece(account: &str, user: &str, owner: &str) -> UserPiece {
        UserPiece {
            account: account.into(),
            account_name: format!("name-{account}"),
            user: user.into(),
            owner: Ok(owner.into()),
            notice: Some(UserNotice {
                name: user.into(),
                done: vec![Item {
                    key: "AKIA…WXYZ".into(),
                    action: "rotate".into(),
                    date: "2026-12-01".into(),
                    why: "due".into(),
                    usage: None,
                }],
                failed: vec![],
                warnings: vec![],
                held: vec![],
                coming: vec![],
                secret_name: None,
                read_command: None,
            }),
            rows: vec![],
        }
    }

    #[test]
    fn one_owner_one_email_grouped_by_account() {
        let r = remediator(&["a@example.com"]);
        let users = vec![
            piece("333333333333", "ci", "team@example.com"),
            piece("111111111111", "deploy", "team@example.com"),
            piece("111111111111", "build", "team@example.com"),
            piece("222222222222", "other", "other@example.com"),
        ];
        let owners = by_owner(&users);
        assert_eq!(owners.len(), 2);
        let n = owner_notice(
            &r,
            "team@example.com",
            &owners["team@example.com"],
            false,
            "t",
        )
        .unwrap();
        assert_eq!(n.account_count, 2);
        assert_eq!(n.accounts[0].account, "111111111111");
        assert_eq!(n.accounts[0].users.len(), 2);
        assert!(n.subject.contains("in 2 accounts"), "{}", n.subject);
        let (_, text) = Templates::new().unwrap().render("owner", &n).unwrap();
        assert!(
            text.find("Account 111111111111").unwrap() < text.find("Account 333333333333").unwrap(),
            "{text}"
        );
    }

    #[test]
    fn the_principal_is_the_member_role_or_the_callers_role() {
        let r = remediator(&[]);
        assert_eq!(
            r.caller.principal_in("444455556666", &r.role),
            "arn:aws:iam::444455556666:role/keyguard-member"
        );
        assert_eq!(
            r.caller.principal_in("111122223333", &r.role),
            "arn:aws:iam::111122223333:role/r"
        );
    }
}
