//! The sweep in this process: every account of the organization (or a given list), a bounded
//! number at a time, each isolated; the notices go out once at its end. Also one account's run
//! with its own notices ([`run_account`]).

use std::time::Instant;

use chrono::{DateTime, Utc};
use keyguard_aws::org::{organization_accounts, per_account, AccountFilter};
use keyguard_core::Account;
use tracing::Instrument;

use crate::account::{
    account_run, named_account, AccountJob, AccountRun, Invocation, Limits, Selection,
};
use crate::error::Result;
use crate::function::Remediator;
use crate::request_tally::RequestTally;
use crate::requests::{Forced, Mode, Request};
use crate::run_notices::send_run;
use crate::summary::{AccountReport, Summary};

/// The org-wide sweep in this process: every ACTIVE account the filter admits,
/// [`keyguard_aws::CONCURRENCY`] at a time, each isolated (its failure is its report's `error`).
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
    sweep_accounts_until(r, accounts, mode, now, None).await
}

/// The sweep over `accounts`, starting no user after `deadline` minus the margin: the accounts
/// it stopped in say from which user on they were not examined ([`AccountReport::deferred`]).
/// The notices go out once at the end: one email per owner across every account, one digest.
pub async fn sweep_accounts_until(
    r: &Remediator,
    accounts: Vec<Account>,
    mode: Mode,
    now: DateTime<Utc>,
    deadline: Option<Instant>,
) -> Result<Summary> {
    let runs = per_account(accounts, |account| async move {
        let job = AccountJob {
            account,
            selection: Selection::All,
            forced: Forced::No,
            mode,
            now,
            limits: Limits {
                deadline,
                after: None,
            },
        };
        account_run(r, &job).await
    })
    .await;
    let mut reports = Vec::new();
    let (mut accounts, mut users) = (Vec::new(), Vec::new());
    for (_, run) in runs {
        reports.push(run.report);
        accounts.push(run.piece);
        users.extend(run.users);
    }
    let run_id = format!("sweep-{}", now.format("%Y-%m-%d"));
    let (requests, mut notes) = previous_requests(r, now).await;
    let (emails, sent) = send_run(
        r,
        &run_id,
        now,
        r.dry_run(mode),
        &accounts,
        &users,
        requests,
    )
    .await;
    notes.extend(sent);
    for report in &mut reports {
        report.emails = emails.get(&report.account).copied().unwrap_or(0);
    }
    Ok(Summary {
        dry_run: r.dry_run(mode),
        at: now,
        accounts: reports,
        notes,
    })
}

/// The previous day's member requests, for a sweep's digest (none without a state table).
pub(crate) async fn previous_requests(
    r: &Remediator,
    now: DateTime<Utc>,
) -> (Option<RequestTally>, Vec<String>) {
    let Some(table) = &r.state else {
        return (None, vec![]);
    };
    match crate::request_tally::previous_day(table, now).await {
        Ok(t) => (t, vec![]),
        Err(e) => (
            None,
            vec![format!("the member requests' tally not read: {e}")],
        ),
    }
}

/// Runs one account: reads, plans, acts on every selected user, then sends its notices. Never
/// fails: what went wrong is in the report.
pub async fn run_account(
    r: &Remediator,
    account: Account,
    selection: &Selection,
    forced: &Forced,
    mode: Mode,
    now: DateTime<Utc>,
) -> AccountReport {
    let job = AccountJob {
        account,
        selection: selection.clone(),
        forced: forced.clone(),
        mode,
        now,
        limits: Limits::default(),
    };
    run_account_until(r, &job).await
}

/// One account's run and its own notices, stopping at the job's limits.
pub(crate) async fn run_account_until(r: &Remediator, job: &AccountJob) -> AccountReport {
    let span = tracing::info_span!("account", account = %job.account.id);
    async {
        let run = account_run(r, job).await;
        send_account(r, job, run).await
    }
    .instrument(span)
    .await
}

/// Sends one account run's notices (its owners' emails, its digest) and returns its report.
pub(crate) async fn send_account(
    r: &Remediator,
    job: &AccountJob,
    run: AccountRun,
) -> AccountReport {
    let id = &job.account.id;
    let mut report = run.report;
    let (emails, notes) = send_run(
        r,
        &format!("{id}-{}", job.now.format("%Y-%m-%d")),
        job.now,
        r.dry_run(job.mode),
        &[run.piece],
        &run.users,
        None,
    )
    .await;
    report.emails = emails.get(id).copied().unwrap_or(0);
    report.notes.extend(notes);
    report
}

/// A request for one account or one user.
pub(crate) async fn single(r: &Remediator, request: Request, inv: &Invocation) -> Result<Summary> {
    let (account, selection, forced, mode) = match request {
        Request::Remediation {
            user_id,
            account,
            mode,
        } => (account, Selection::UserId(user_id), Forced::No, mode),
        Request::Manual {
            account,
            user,
            forced,
            mode,
        } => (
            account,
            user.map_or(Selection::All, Selection::Name),
            forced,
            mode,
        ),
        Request::Sweep { .. }
        | Request::ComplianceChange { .. }
        | Request::Restore { .. }
        | Request::Exposure(_)
        | Request::KeyReEnabled(_) => {
            unreachable!("sweeps, member requests and restores are handled by the caller")
        }
    };
    let job = AccountJob {
        // The event names only the id: the name and email (the owners' fallback) are the
        // organization's.
        account: named_account(r, account).await,
        selection,
        forced,
        mode,
        now: inv.now,
        limits: Limits {
            deadline: inv.deadline,
            after: None,
        },
    };
    let report = run_account_until(r, &job).await;
    Ok(Summary {
        dry_run: r.dry_run(mode),
        at: inv.now,
        accounts: vec![report],
        notes: vec![],
    })
}
