//! The entry points: an invocation's request → the accounts and users it covers → one
//! [`AccountReport`] per account. The per-user work is [`crate::user`]; notices are
//! [`crate::notify`].

use chrono::{DateTime, Utc};
use futures::StreamExt;
use keyguard_aws::inventory::{read_inventory, user_by_name, users};
use keyguard_aws::org::{organization_accounts, per_account, AccountFilter};
use keyguard_aws::sdk::for_account;
use keyguard_core::{needs_attention, AccessKey, Account, User};
use serde_json::Value;
use tracing::{warn, Instrument};

use crate::notify::notify;
use crate::user::{Ctx, Work};
use crate::{AccountReport, Error, Mode, Remediator, Request, Result, Summary};

/// Which users of an account a run looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Every user (from the credential report; only those that may need something are read live).
    All,
    /// One user by name.
    Name(String),
    /// One user by IAM UserId (Config's resource id).
    UserId(String),
}

/// Handles one invocation payload at `now`: the whole Lambda. The summary comes back even when
/// steps failed; the Lambda turns failures into an invocation error with
/// [`Summary::into_result`].
pub async fn handle(r: &Remediator, event: Value, now: DateTime<Utc>) -> Result<Summary> {
    let (account, selection, force_rotate, mode) = match Request::parse(event)? {
        Request::Sweep { mode } => return sweep(r, &AccountFilter::default(), mode, now).await,
        Request::Remediation {
            user_id,
            account,
            mode,
        } => (account, Selection::UserId(user_id), false, mode),
        Request::Manual {
            account,
            user,
            force_rotate,
            mode,
        } => (
            account,
            user.map_or(Selection::All, Selection::Name),
            force_rotate,
            mode,
        ),
    };
    // The event names only the id; the account's name and email are not needed to act.
    let account = Account {
        id: account,
        name: String::new(),
        email: None,
    };
    let report = run_account(r, account, &selection, force_rotate, mode, now).await;
    Ok(Summary {
        dry_run: dry_run(r, mode),
        at: now,
        accounts: vec![report],
    })
}

fn dry_run(r: &Remediator, mode: Mode) -> bool {
    r.settings.dry_run || mode == Mode::Preview
}

/// The org-wide sweep: every ACTIVE account the filter admits, [`keyguard_aws::CONCURRENCY`] at
/// a time, each isolated (its failure is its report's `error`).
pub async fn sweep(
    r: &Remediator,
    filter: &AccountFilter,
    mode: Mode,
    now: DateTime<Utc>,
) -> Result<Summary> {
    let accounts = organization_accounts(&r.sdk, &r.role, filter).await?;
    sweep_accounts(r, accounts, mode, now).await
}

/// The sweep over a given list of accounts.
pub async fn sweep_accounts(
    r: &Remediator,
    accounts: Vec<Account>,
    mode: Mode,
    now: DateTime<Utc>,
) -> Result<Summary> {
    let reports = per_account(accounts, |a| {
        account_run(r, a, &Selection::All, false, mode, now)
    })
    .await;
    Ok(Summary {
        dry_run: dry_run(r, mode),
        at: now,
        accounts: reports.into_iter().map(|(_, report)| report).collect(),
    })
}

/// Runs one account: reads, plans, acts on every selected user, then sends its notices. Never
/// fails: what went wrong is in the report.
pub async fn run_account(
    r: &Remediator,
    account: Account,
    selection: &Selection,
    force_rotate: bool,
    mode: Mode,
    now: DateTime<Utc>,
) -> AccountReport {
    let span = tracing::info_span!("account", account = %account.id);
    account_run(r, account, selection, force_rotate, mode, now)
        .instrument(span)
        .await
}

/// [`run_account`] without its span (the fan-out gives one).
async fn account_run(
    r: &Remediator,
    account: Account,
    selection: &Selection,
    force_rotate: bool,
    mode: Mode,
    now: DateTime<Utc>,
) -> AccountReport {
    let mut report = AccountReport {
        account: account.id.clone(),
        ..AccountReport::default()
    };
    let works = match act(
        r,
        &account,
        selection,
        force_rotate,
        dry_run(r, mode),
        now,
        &mut report,
    )
    .await
    {
        Ok(works) => works,
        Err(e) => {
            warn!(error = %e, "account not processed");
            report.error = Some(e.to_string());
            vec![]
        }
    };
    for w in &works {
        report.actions.extend(w.records.iter().cloned());
        report.notes.extend(w.notes.iter().cloned());
    }
    if let Err(e) = notify(r, &account, &works, &mut report, dry_run(r, mode), now).await {
        warn!(error = %e, "notices not sent");
        report.notes.push(format!("notices not sent: {e}"));
    }
    report
}

async fn act(
    r: &Remediator,
    account: &Account,
    selection: &Selection,
    force_rotate: bool,
    dry_run: bool,
    now: DateTime<Utc>,
    report: &mut AccountReport,
) -> Result<Vec<Work>> {
    let cfg = for_account(&r.sdk, &r.caller, &account.id, &r.role).await?;
    let ctx = Ctx {
        r,
        account,
        iam: aws_sdk_iam::Client::new(&cfg),
        sm: aws_sdk_secretsmanager::Client::new(&cfg),
        principal: r.caller.principal_in(&account.id, &r.role),
        dry_run,
        now,
    };
    // (user, the report's key slots when the user came from the credential report)
    let todo: Vec<(User, Option<Vec<AccessKey>>)> = match selection {
        Selection::All => {
            let inv = read_inventory(&ctx.iam, &account.id, r.polling).await?;
            report.users = inv.users.len();
            inv.users
                .into_iter()
                .filter(|u| needs_attention(&u.user, &u.keys, &r.settings, now))
                .map(|u| (u.user, Some(u.keys)))
                .collect()
        }
        Selection::Name(name) => match user_by_name(&ctx.iam, name).await? {
            Some(u) => vec![(u, None)],
            None => return Err(Error::NotFound(format!("user {name:?} in {}", account.id))),
        },
        Selection::UserId(id) => {
            // Config's resource id is the UserId; IAM has no lookup by id, so page the users
            // (one call per 1000). Names with paths and `+=,.@-` come back exactly as IAM has them.
            match users(&ctx.iam)
                .await?
                .into_iter()
                .find(|u| &u.user_id == id)
            {
                Some(u) => vec![(u, None)],
                None => {
                    return Err(Error::NotFound(format!(
                        "no user with UserId {id} in {}",
                        account.id
                    )))
                }
            }
        }
    };
    report.examined = todo.len();
    let ctx = &ctx;
    let works = futures::stream::iter(todo)
        .map(|(user, slots)| {
            let span = tracing::info_span!("user", user = %user.name);
            async move { ctx.user(user, slots, force_rotate).await }.instrument(span)
        })
        .buffer_unordered(keyguard_aws::CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    Ok(works)
}
