//! The owner's email: one per owner per run, listing every step of that owner's users of every
//! account of the run, grouped by account, rendered and sent through SESv2.

use std::collections::BTreeMap;

use keyguard_aws::email;

use crate::email_templates::{subject_prefix, OwnerAccount, OwnerNotice, Templates};
use crate::error::Result;
use crate::function::Remediator;
use crate::notice_pieces::UserPiece;

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
            subject_prefix(preview)
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
    let (html, text) = Templates::get()?.render("owner", notice)?;
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
