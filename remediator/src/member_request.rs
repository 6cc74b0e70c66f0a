//! A member account's request for one of its users (its rule's NON_COMPLIANT finding on the
//! central request bus): the normal policy only, the function's DryRun, at most once per user
//! per day and [`REQUESTS_PER_ACCOUNT_PER_DAY`] requests per account, answered with counts only.
//! A request that names no user of the account mails nobody; every request is counted in the
//! day's tally, which the next daily digest shows.

use crate::account::{account_run, named_account, AccountJob, Invocation, Limits, Selection};
use crate::error::Result;
use crate::function::Remediator;
use crate::request_tally::{count, Answered, REQUESTS_PER_ACCOUNT_PER_DAY};
use crate::requests::{Forced, Mode};
use crate::summary::{Requested, Summary};
use crate::sweep::send_account;

/// A member account's request for one of its users: the normal policy (no forced rotation, the
/// function's DryRun), at most once per user per day (recorded in the state table), and an
/// answer with counts only.
pub(crate) async fn requested(
    r: &Remediator,
    account: String,
    user_id: String,
    inv: &Invocation,
) -> Result<(Requested, Summary)> {
    let none = |account: String| {
        let none = Requested {
            account,
            ..Requested::default()
        };
        Ok((none, Summary::default()))
    };
    if !r.filter.admits(&account) {
        tracing::info!(account, "a request from an excluded account: nothing to do");
        return none(account);
    }
    if let Some(table) = &r.state {
        let day = inv.now.format("%Y-%m-%d");
        let first = table
            .put_new(
                &format!("asked#{account}"),
                &format!("{user_id}#{day}"),
                "",
                &[],
                inv.now + chrono::Duration::days(2),
            )
            .await?;
        if !first {
            tracing::info!(account, "asked for this user already today: nothing to do");
            count(table, &account, inv.now, Answered::Repeat).await?;
            return none(account);
        }
        // A member account can name any UserId: its distinct requests are capped per day (a repeat
        // was answered above and does not count), so that a flood of made-up ids costs the
        // central functions a bounded amount of work.
        let asked = table
            .add(
                &format!("asked#{account}"),
                &format!("#day-{day}"),
                &[("count", 1)],
                Some(inv.now + chrono::Duration::days(2)),
            )
            .await?;
        if asked.get("count").copied().unwrap_or(0) > REQUESTS_PER_ACCOUNT_PER_DAY {
            tracing::warn!(
                account,
                "over the day's request cap: left to the daily sweep"
            );
            count(table, &account, inv.now, Answered::OverCap).await?;
            return none(account);
        }
    }
    let job = AccountJob {
        // The event names only the id: the name and email (the owners' fallback) are the
        // organization's.
        account: named_account(r, account.clone()).await,
        selection: Selection::UserId(user_id),
        forced: Forced::No,
        mode: Mode::Auto,
        now: inv.now,
        limits: Limits {
            deadline: inv.deadline,
            after: None,
        },
    };
    let run = account_run(r, &job).await;
    if run.report.error_type == Some("NotFound") {
        // Made up, or deleted since Config saw it: nothing to do, nobody to mail (a flood of
        // made-up ids would otherwise send the administrators one digest each).
        tracing::info!(account, "no user with this UserId: nothing to do");
        if let Some(table) = &r.state {
            count(table, &account, inv.now, Answered::NoSuchUser).await?;
        }
        let nothing = Requested {
            account,
            acted: true,
            ..Requested::default()
        };
        return Ok((nothing, Summary::default()));
    }
    if let Some(table) = &r.state {
        count(table, &account, inv.now, Answered::Run).await?;
    }
    let report = send_account(r, &job, run).await;
    let summary = Summary {
        dry_run: r.dry_run(job.mode),
        at: inv.now,
        accounts: vec![report],
        notes: vec![],
    };
    Ok((Requested::of(&summary), summary))
}
