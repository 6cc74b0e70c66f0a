//! A key set Active in a member account ([`crate::reenable_event`]): the user's run answers it
//! under the user's lease (`user/reenabled.rs`), and the run's notices tell the owner and the
//! admin at once.

use keyguard_aws::inventory::key_holder;
use keyguard_aws::sdk::for_account;

use crate::account::{named_account, AccountJob, Invocation, Limits, Selection};
use crate::error::Result;
use crate::function::Remediator;
use crate::reenable_event::ReEnabled;
use crate::requests::{Forced, Mode};
use crate::summary::{AccountReport, Summary};
use crate::sweep::run_account_until;

/// Keys set Active an account gets answered a day; the rest are the daily sweep's (which drops
/// their disable records and disables them again as the policy says).
pub const REENABLED_PER_ACCOUNT_PER_DAY: i64 = 50;

/// Answers one key set Active.
pub(crate) async fn reenabled(r: &Remediator, e: ReEnabled, inv: &Invocation) -> Result<Summary> {
    let mut summary = Summary {
        dry_run: r.settings.dry_run,
        at: inv.now,
        accounts: vec![],
        notes: vec![],
    };
    if !r.filter.admits(&e.account) {
        return Ok(summary);
    }
    // A member can set its keys Active and Inactive in a loop: at most this many answers an
    // account a day, counted before any call, so a loop costs a bounded amount of work and mail.
    if let Some(table) = &r.state {
        let day = inv.now.format("%Y-%m-%d");
        let n = table
            .add(
                &format!("asked#{}", e.account),
                &format!("#reenabled-{day}"),
                &[("count", 1)],
                Some(inv.now + chrono::Duration::days(2)),
            )
            .await?;
        if n.get("count").copied().unwrap_or(0) > REENABLED_PER_ACCOUNT_PER_DAY {
            tracing::warn!(account = %e.account, "over the day's cap of re-enabled keys: left to the sweep");
            return Ok(summary);
        }
    }
    let user = match e.user.clone() {
        Some(u) => Some(u),
        None => {
            // A user setting its own key names none: the key's holder in this account.
            let cfg = for_account(&r.sdk, &r.caller, &e.account, &r.role).await?;
            key_holder(&aws_sdk_iam::Client::new(&cfg), &e.key).await?
        }
    };
    let Some(user) = user else {
        summary.accounts.push(AccountReport {
            account: e.account.clone(),
            notes: vec!["a key set Active that no user of the account holds now".into()],
            ..AccountReport::default()
        });
        return Ok(summary);
    };
    let job = AccountJob {
        account: named_account(r, e.account.clone()).await,
        selection: Selection::Name(user),
        forced: Forced::ReEnabled {
            key: e.key,
            by: e.by,
        },
        mode: Mode::Auto,
        now: inv.now,
        limits: Limits {
            deadline: inv.deadline,
            after: None,
        },
    };
    summary.accounts.push(run_account_until(r, &job).await);
    Ok(summary)
}
