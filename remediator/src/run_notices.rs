//! The notices of a run made in this process, sent at its end: one email per owner across every
//! account of the run, and one admin digest (a queued run sends them from its finalize step).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::admin_digest::{digest, send_digest, worth_sending};
use crate::function::Remediator;
use crate::notice_pieces::{by_owner, AccountPiece, UserPiece};
use crate::owner_email::{owner_notice, send_owner};
use crate::previews::Previews;
use crate::request_tally::RequestTally;

/// Sends an in-process run's notices at its end: one email per owner, one digest. Returns the
/// emails sent per account id and notes about what could not be sent. A sweep's digest also
/// shows the previous day's member `requests`.
pub(crate) async fn send_run(
    r: &Remediator,
    run: &str,
    now: DateTime<Utc>,
    preview: bool,
    accounts: &[AccountPiece],
    users: &[UserPiece],
    requests: Option<RequestTally>,
) -> (BTreeMap<String, usize>, Vec<String>) {
    let run_at = now.format("%Y-%m-%d %H:%M UTC").to_string();
    let mut emails: BTreeMap<String, usize> = BTreeMap::new();
    let mut notes = Vec::new();
    // With the state table, a preview goes to an owner once per step and date.
    let runs = r.state.as_ref().filter(|_| preview).map(Previews);
    let mut fresh: Vec<UserPiece> = users.to_vec();
    if let Some(runs) = &runs {
        for p in &mut fresh {
            if let Some(n) = &p.notice {
                match runs.fresh(&p.account, n).await {
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
                            if let Err(e) = runs.remember(&p.account, n, now).await {
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
        let mut d = digest(run, &run_at, preview, accounts, users, 0);
        d.requests = requests;
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
