//! The administrators' digest: one per run, its totals and every account with something to
//! report (steps, failures, notes), rendered and sent through SESv2.

use std::collections::BTreeMap;

use keyguard_aws::email;

use crate::email_templates::{subject_prefix, Digest, DigestAccount, DigestUser, Templates};
use crate::error::Result;
use crate::function::Remediator;
use crate::notice_pieces::{AccountPiece, UserPiece};

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
        subject: format!(
            "{}{place}: {done} done, {failed} failed",
            subject_prefix(preview)
        ),
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
        requests: None,
    }
}

/// Whether the digest has anything to say (some account acted, failed or has a note, or member
/// requests were over a cap or named nobody).
pub(crate) fn worth_sending(d: &Digest) -> bool {
    !d.accounts.is_empty()
        || d.unfinished > 0
        || d.requests.as_ref().is_some_and(|t| t.is_notable())
}

/// Renders and sends the digest to the administrators.
pub(crate) async fn send_digest(r: &Remediator, d: &Digest) -> Result<()> {
    let Some(sender) = &r.notices.sender else {
        return Ok(());
    };
    let (html, text) = Templates::get()?.render("digest", d)?;
    let ses = aws_sdk_sesv2::Client::new(&r.sdk);
    email::send(&ses, sender, &r.notices.admins, &d.subject, &html, &text).await?;
    Ok(())
}
