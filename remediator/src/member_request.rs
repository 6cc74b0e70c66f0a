//! A member account's request for one of its users (its rule's NON_COMPLIANT finding on the
//! central request bus): the normal policy only, the function's DryRun, at most once per user
//! per day and [`REQUESTS_PER_ACCOUNT_PER_DAY`] requests per account, answered with counts only.

use crate::account::Invocation;
use crate::error::Result;
use crate::function::Remediator;
use crate::requests::{Mode, Request};
use crate::summary::{Requested, Summary};
use crate::sweep::single;

/// Requests one member account may make a day; beyond them its users wait for the daily sweep.
pub const REQUESTS_PER_ACCOUNT_PER_DAY: i64 = 200;

/// A member account's request for one of its users: the normal policy (no forced rotation, the
/// function's DryRun), at most once per user per day (recorded in the state table), and an
/// answer with counts only.
pub(crate) async fn requested(
    r: &Remediator,
    account: String,
    user_id: String,
    inv: &Invocation,
) -> Result<(Requested, Summary)> {
    if !r.filter.admits(&account) {
        tracing::info!(account, "a request from an excluded account: nothing to do");
        let none = Requested {
            account,
            ..Requested::default()
        };
        return Ok((none, Summary::default()));
    }
    if let Some(table) = &r.state {
        let day = inv.now.format("%Y-%m-%d");
        // A member account can name any UserId: its requests are capped per day, so that a flood
        // of made-up ids costs the central functions a bounded amount of work.
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
            let none = Requested {
                account,
                ..Requested::default()
            };
            return Ok((none, Summary::default()));
        }
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
            let none = Requested {
                account,
                ..Requested::default()
            };
            return Ok((none, Summary::default()));
        }
    }
    let request = Request::Remediation {
        user_id,
        account,
        mode: Mode::Auto,
    };
    let summary = single(r, request, inv).await?;
    Ok((Requested::of(&summary), summary))
}
