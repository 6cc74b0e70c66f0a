//! A run's notices: each account's users become [`UserPiece`]s (what the owner hears and the
//! digest's rows) and an [`AccountPiece`]; then one email per owner, listing that owner's users
//! of every account of the run grouped by account, and one admin digest per run. An in-process run
//! sends at its end; a queued run stores the pieces in the state table and sends them once every
//! account is in (see [`crate::work`]). EventBridge events go out per account, as it finishes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use keyguard_aws::{email, secrets};
use keyguard_core::{Account, User};
use serde::{Deserialize, Serialize};

use crate::notices::{
    self, day, Digest, DigestAccount, DigestRow, DigestUser, Item, OwnerAccount, OwnerNotice,
    UserNotice,
};
use crate::runs::Runs;
use crate::user::Work;
use crate::{AccountReport, ActionKind, ActionRecord, Outcome, Remediator, Result};

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

/// Who hears about `user`: the owner tag when it is an address, else the account's email, else
/// the first administrator.
fn owner_of(r: &Remediator, user: &User, account: &Account) -> std::result::Result<String, String> {
    let tag = user.tag(&r.settings.owner_email_tag);
    if let Some(t) = tag.filter(|t| notices::valid_address(t)) {
        return Ok(t.trim().to_string());
    }
    let fallback = account
        .email
        .clone()
        .filter(|e| notices::valid_address(e))
        .or_else(|| r.notices.admins.first().cloned());
    match (tag, fallback) {
        (_, Some(f)) => Ok(f),
        (Some(bad), None) => Err(format!(
            "the {} tag {bad:?} is not an address and there is no fallback",
            r.settings.owner_email_tag
        )),
        (None, None) => Err(format!(
            "no {} tag, no account email, no admin address",
            r.settings.owner_email_tag
        )),
    }
}

fn user_notice(w: &Work, region: &str) -> UserNotice {
    let item = |r: &ActionRecord| Item {
        key: r.key.clone(),
        action: r.action.step_name().into_owned(),
        date: day(r.date),
        why: r.why.clone(),
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
    works: &[Work],
    report: &mut AccountReport,
) -> (AccountPiece, Vec<UserPiece>) {
    let region = r.sdk.region().map_or("us-east-1", |r| r.as_ref());
    let mut users = Vec::new();
    for w in works {
        if w.records.is_empty() {
            continue;
        }
        let notice = user_notice(w, region);
        let owner = owner_of(r, &w.user, account);
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

/// One `keyguard key action` event per record of the account (with `EVENT_BUS` set). Returns
/// notes for the report.
pub(crate) async fn publish_events(
    r: &Remediator,
    account: &Account,
    actions: &[ActionRecord],
    preview: bool,
) -> Vec<String> {
    let Some(bus) = &r.notices.event_bus else {
        return vec![];
    };
    if actions.is_empty() {
        return vec![];
    }
    let events = aws_sdk_eventbridge::Client::new(&r.sdk);
    match notices::publish(&events, bus, &account.id, actions, preview).await {
        Ok(0) => vec![],
        Ok(refused) => vec![format!("EventBridge refused {refused} event(s)")],
        Err(e) => vec![format!("events not published: {e}")],
    }
}

fn tag(preview: bool) -> &'static str {
    if preview {
        "[keyguard preview] "
    } else {
        "[keyguard] "
    }
}

/// The owner's email: every piece of `users` (all addressed to `owner`) grouped by account.
/// `None` when no piece has anything to tell.
pub(crate) fn owner_notice(
    r: &Remediator,
    owner: &str,
    users: &[&UserPiece],
    preview: bool,
    run_at: &str,
) -> Option<OwnerNotice> {
    let mut by_account: BTreeMap<&str, OwnerAccount> = BTreeMap::new();
    let mut steps = 0;
    for p in users {
        let Some(n) = &p.notice else { continue };
        steps += n.done.len() + n.failed.len() + n.warnings.len();
        by_account
            .entry(&p.account)
            .or_insert_with(|| OwnerAccount {
                account: p.account.clone(),
                account_name: p.account_name.clone(),
                users: vec![],
            })
            .users
            .push(n.clone());
    }
    if by_account.is_empty() {
        return None;
    }
    let accounts: Vec<OwnerAccount> = by_account.into_values().collect();
    let place = match accounts.as_slice() {
        [one] => one.account.clone(),
        many => format!("{} accounts", many.len()),
    };
    Some(OwnerNotice {
        subject: format!(
            "{}{steps} access key action(s) for your IAM users in {place}",
            tag(preview)
        ),
        preview,
        owner: owner.to_string(),
        run_at: run_at.to_string(),
        rotation_period: r.settings.rotation_period,
        installation_grace_period: r.settings.installation_grace_period,
        recovery_grace_period: r.settings.recovery_grace_period,
        many_accounts: accounts.len() > 1,
        account_count: accounts.len(),
        accounts,
    })
}

/// Renders and sends one owner email.
pub(crate) async fn send_owner(r: &Remediator, notice: &OwnerNotice) -> Result<()> {
    let Some(sender) = &r.notices.sender else {
        return Ok(());
    };
    let (html, text) = notices::Templates::get()?.render("owner", notice)?;
    let ses = aws_sdk_sesv2::Client::new(&r.sdk);
    email::send(
        &ses,
        sender,
        std::slice::from_ref(&notice.owner),
        &notice.subject,
        &html,
        &text,
    )
    .await?;
    Ok(())
}

/// The run's digest: totals and every account with something to report.
pub(crate) fn digest(
    run: &str,
    run_at: &str,
    preview: bool,
    accounts: &[AccountPiece],
    users: &[UserPiece],
    unfinished: usize,
) -> Digest {
    let mut rows: BTreeMap<&str, Vec<DigestUser>> = BTreeMap::new();
    for p in users.iter().filter(|p| !p.rows.is_empty()) {
        rows.entry(&p.account).or_default().push(DigestUser {
            name: p.user.clone(),
            owner: p.owner.clone().unwrap_or_else(|e| format!("nobody: {e}")),
            rows: p.rows.clone(),
        });
    }
    let sum = |f: fn(&AccountPiece) -> usize| accounts.iter().map(f).sum::<usize>();
    let (done, failed) = (sum(|a| a.done), sum(|a| a.failed));
    let mut listed: Vec<DigestAccount> = Vec::new();
    for a in accounts {
        let users = rows.remove(a.account.as_str()).unwrap_or_default();
        if a.error.is_none() && a.notes.is_empty() && users.is_empty() {
            continue;
        }
        listed.push(DigestAccount {
            account: a.account.clone(),
            account_name: a.account_name.clone(),
            done: a.done,
            failed: a.failed,
            warned: a.warned,
            examined: a.examined,
            error: a.error.clone(),
            users,
            notes: a.notes.clone(),
        });
    }
    let place = match accounts {
        [one] => format!("account {}", one.account),
        many => format!("{} accounts", many.len()),
    };
    Digest {
        subject: format!("{}{place}: {done} done, {failed} failed", tag(preview)),
        preview,
        run: run.to_string(),
        run_at: run_at.to_string(),
        accounts_total: accounts.len(),
        done,
        failed,
        warned: sum(|a| a.warned),
        examined: sum(|a| a.examined),
        unfinished,
        accounts: listed,
    }
}

/// Whether the digest has anything to say (some account acted, failed or has a note).
pub(crate) fn worth_sending(d: &Digest) -> bool {
    !d.accounts.is_empty() || d.unfinished > 0
}

/// Renders and sends the digest to the administrators.
pub(crate) async fn send_digest(r: &Remediator, d: &Digest) -> Result<()> {
    let Some(sender) = &r.notices.sender else {
        return Ok(());
    };
    let (html, text) = notices::Templates::get()?.render("digest", d)?;
    let ses = aws_sdk_sesv2::Client::new(&r.sdk);
    email::send(&ses, sender, &r.notices.admins, &d.subject, &html, &text).await?;
    Ok(())
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

/// Sends an in-process run's notices at its end: one email per owner, one digest. Returns the
/// emails sent per account id and notes about what could not be sent.
pub(crate) async fn send_run(
    r: &Remediator,
    run: &str,
    now: DateTime<Utc>,
    preview: bool,
    accounts: &[AccountPiece],
    users: &[UserPiece],
) -> (BTreeMap<String, usize>, Vec<String>) {
    let run_at = now.format("%Y-%m-%d %H:%M UTC").to_string();
    let mut emails: BTreeMap<String, usize> = BTreeMap::new();
    let mut notes = Vec::new();
    // With the state table, a preview goes to an owner once per step and date.
    let runs = r.state.as_ref().filter(|_| preview).map(Runs);
    let mut fresh: Vec<UserPiece> = users.to_vec();
    if let Some(runs) = &runs {
        for p in &mut fresh {
            if let Some(n) = &p.notice {
                match runs.fresh_previews(&p.account, n).await {
                    Ok(f) => p.notice = f,
                    Err(e) => notes.push(format!("previews already sent not read: {e}")),
                }
            }
        }
    }
    let owners = by_owner(&fresh);
    if r.notices.sender.is_none() {
        if !owners.is_empty() {
            notes.push("no sender address configured (NOTICE_SENDER): no email sent".into());
        }
        return (emails, notes);
    }
    for (owner, pieces) in &owners {
        let Some(notice) = owner_notice(r, owner, pieces, preview, &run_at) else {
            continue;
        };
        match send_owner(r, &notice).await {
            Ok(()) => {
                for a in &notice.accounts {
                    *emails.entry(a.account.clone()).or_default() += 1;
                }
                if let Some(runs) = &runs {
                    for p in pieces {
                        if let Some(n) = &p.notice {
                            if let Err(e) = runs.remember_previews(&p.account, n, now).await {
                                notes.push(format!("previews sent not recorded: {e}"));
                            }
                        }
                    }
                }
            }
            Err(e) => notes.push(format!("notice to {owner} not sent: {e}")),
        }
    }
    if !r.notices.admins.is_empty() {
        let d = digest(run, &run_at, preview, accounts, users, 0);
        if worth_sending(&d) {
            match send_digest(r, &d).await {
                Ok(()) => {
                    for a in &d.accounts {
                        *emails.entry(a.account.clone()).or_default() += 1;
                    }
                }
                Err(e) => notes.push(format!("digest not sent: {e}")),
            }
        }
    }
    (emails, notes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NoticeConfig;

    fn remediator(admins: &[&str]) -> Remediator {
        Remediator {
            notices: NoticeConfig {
                sender: Some("k@example.com".into()),
                admins: admins.iter().map(|a| a.to_string()).collect(),
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
        assert_eq!(owner_of(&r, &user, &account).unwrap(), "dev@example.com");
        user.tags
            .insert("owner-email".into(), "the dev team".into());
        assert_eq!(
            owner_of(&r, &user, &account).unwrap(),
            "aws-prod@example.com"
        );
        account.email = None;
        assert_eq!(owner_of(&r, &user, &account).unwrap(), "admins@example.com");
        let err = owner_of(&remediator(&[]), &user, &account).unwrap_err();
        assert!(err.contains("\"the dev team\" is not an address"), "{err}");
        user.tags.clear();
        let err = owner_of(&remediator(&[]), &user, &account).unwrap_err();
        assert!(err.contains("no owner-email tag"), "{err}");
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
                }],
                failed: vec![],
                warnings: vec![],
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
        let (_, text) = notices::Templates::new()
            .unwrap()
            .render("owner", &n)
            .unwrap();
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
