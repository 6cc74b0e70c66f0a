//! The run's notices for one account: one email per owner, the admin digest, and the
//! EventBridge events.

use chrono::{DateTime, Utc};
use keyguard_aws::{email, secrets};
use keyguard_core::{Account, User};

use crate::notices::{
    self, by_owner, day, Digest, DigestRow, DigestUser, Item, OwnerNotice, UserNotice,
};
use crate::user::Work;
use crate::{AccountReport, ActionKind, ActionRecord, Outcome, Remediator, Result};

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

/// Sends the run's notices for one account: one email per owner, one digest, and the events.
pub(crate) async fn notify(
    r: &Remediator,
    account: &Account,
    works: &[Work],
    report: &mut AccountReport,
    preview: bool,
    now: DateTime<Utc>,
) -> Result<()> {
    let run_at = now.format("%Y-%m-%d %H:%M UTC").to_string();
    let tag = if preview {
        "[keyguard preview] "
    } else {
        "[keyguard] "
    };
    let mut owned = Vec::new();
    let mut digest_users = Vec::new();
    for w in works {
        let region = r.sdk.region().map_or("us-east-1", |r| r.as_ref());
        let n = user_notice(w, region);
        let owner = owner_of(r, &w.user, account);
        if !w.records.is_empty() {
            digest_users.push(DigestUser {
                name: w.user.name.clone(),
                owner: owner.clone().unwrap_or_else(|e| format!("nobody: {e}")),
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
        if n.is_empty() {
            continue;
        }
        match owner {
            Ok(o) => owned.push((o, n)),
            Err(e) => report
                .notes
                .push(format!("{}: owner not notified: {e}", w.user.name)),
        }
    }

    if let (Some(bus), false) = (&r.notices.event_bus, report.actions.is_empty()) {
        let events = aws_sdk_eventbridge::Client::new(&r.sdk);
        let refused = notices::publish(&events, bus, &account.id, &report.actions, preview).await?;
        if refused > 0 {
            report
                .notes
                .push(format!("EventBridge refused {refused} event(s)"));
        }
    }

    let Some(sender) = &r.notices.sender else {
        if !owned.is_empty() {
            report
                .notes
                .push("no sender address configured (NOTICE_SENDER): no email sent".into());
        }
        return Ok(());
    };
    let templates = notices::Templates::get()?;
    let ses = aws_sdk_sesv2::Client::new(&r.sdk);
    for (owner, users) in by_owner(owned) {
        let steps: usize = users
            .iter()
            .map(|u| u.done.len() + u.failed.len() + u.warnings.len())
            .sum();
        let notice = OwnerNotice {
            subject: format!(
                "{tag}{steps} access key action(s) for your IAM users in {}",
                account.id
            ),
            preview,
            account: account.id.clone(),
            account_name: account.name.clone(),
            owner: owner.clone(),
            run_at: run_at.clone(),
            rotation_period: r.settings.rotation_period,
            installation_grace_period: r.settings.installation_grace_period,
            recovery_grace_period: r.settings.recovery_grace_period,
            users,
        };
        let (html, text) = templates.render("owner", &notice)?;
        match email::send(
            &ses,
            sender,
            std::slice::from_ref(&owner),
            &notice.subject,
            &html,
            &text,
        )
        .await
        {
            Ok(()) => report.emails += 1,
            Err(e) => report
                .notes
                .push(format!("notice to {owner} not sent: {e}")),
        }
    }
    if !r.notices.admins.is_empty()
        && (!digest_users.is_empty() || report.error.is_some() || !report.notes.is_empty())
    {
        let count = |o: Outcome| report.actions.iter().filter(|a| a.outcome == o).count();
        let digest = Digest {
            subject: format!(
                "{tag}account {}: {} done, {} failed",
                account.id,
                count(Outcome::Done) + count(Outcome::Preview),
                count(Outcome::Failed)
            ),
            preview,
            account: account.id.clone(),
            account_name: account.name.clone(),
            run_at,
            done: count(Outcome::Done) + count(Outcome::Preview),
            failed: count(Outcome::Failed),
            warned: count(Outcome::Warned),
            examined: report.examined,
            error: report.error.clone(),
            users: digest_users,
            notes: report.notes.clone(),
        };
        let (html, text) = templates.render("digest", &digest)?;
        email::send(
            &ses,
            sender,
            &r.notices.admins,
            &digest.subject,
            &html,
            &text,
        )
        .await?;
        report.emails += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NoticeConfig;

    fn remediator(admins: &[&str]) -> Remediator {
        Remediator {
            sdk: aws_config::SdkConfig::builder().build(),
            caller: keyguard_aws::sdk::Caller {
                account: "111122223333".into(),
                partition: "aws".into(),
                arn: "arn:aws:sts::111122223333:assumed-role/r/s".into(),
            },
            settings: keyguard_core::Settings::default(),
            role: keyguard_aws::sdk::RoleSpec {
                role_name: "keyguard-member".into(),
                session_name: "keyguard".into(),
                org_role_arn: None,
            },
            polling: Default::default(),
            notices: NoticeConfig {
                sender: Some("k@example.com".into()),
                admins: admins.iter().map(|a| a.to_string()).collect(),
                event_bus: None,
            },
            kms_key_id: None,
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

    #[test]
    fn the_keyguard_principal_is_the_member_role_or_the_callers_role() {
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
