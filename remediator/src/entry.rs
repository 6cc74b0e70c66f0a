//! The entry points: an invocation's request → the accounts and users it covers → one
//! [`AccountReport`] per account. The per-user work is [`crate::user`]; notices are
//! [`crate::notify`]; the queued (organization-scale) path is [`crate::work`].

use std::time::Instant;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use keyguard_aws::inventory::{read_inventory, user_by_name, users};
use keyguard_aws::org::{organization_accounts, per_account, AccountFilter};
use keyguard_aws::sdk::for_account;
use keyguard_core::records::records_of_tags;
use keyguard_core::{needs_attention, with_records, AccessKey, Account, Records, User};
use serde::Serialize;
use serde_json::Value;
use tracing::{warn, Instrument};

use crate::notify::{pieces_of, publish_events, send_run, AccountPiece, UserPiece};
use crate::user::{Ctx, Work};
use crate::work::{self, Dispatched};
use crate::{AccountReport, Error, Forced, Mode, Remediator, Request, Requested, Result, Summary};

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

/// What the invocation is given besides its payload.
#[derive(Debug, Clone, Copy)]
pub struct Invocation {
    /// The policy's "now" (the wall clock, or a preview's date).
    pub now: DateTime<Utc>,
    /// When the invocation is killed (Lambda's deadline), on this process's monotonic clock.
    pub deadline: Option<Instant>,
}

/// What an invocation answers.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Answer {
    /// A run done in this invocation.
    Summary(Summary),
    /// An SQS batch: the messages to deliver again (`batchItemFailures`).
    Batch(aws_lambda_events::event::sqs::SqsBatchResponse),
    /// A sweep handed out to the work queue.
    Dispatched(Dispatched),
    /// A member account's request, answered with counts only.
    Requested(Requested),
}

/// Handles one invocation payload at `now` in this process (no queue, no deadline): the CLI's
/// and the tests' entry. The summary comes back even when steps failed; the Lambda turns failures
/// into an invocation error with [`Summary::into_result`].
pub async fn handle(r: &Remediator, event: Value, now: DateTime<Utc>) -> Result<Summary> {
    let inv = Invocation {
        now,
        deadline: None,
    };
    match Request::parse(event)? {
        Request::Sweep { mode } => sweep(r, &r.filter, mode, now).await,
        Request::ComplianceChange { account, user_id } => {
            requested(r, account, user_id, &inv).await.map(|(_, s)| s)
        }
        request => single(r, request, &inv).await,
    }
}

/// Requests one member account may make a day; beyond them its users wait for the daily sweep.
pub const REQUESTS_PER_ACCOUNT_PER_DAY: i64 = 200;

/// A member account's request for one of its users: the normal policy (no forced rotation, the
/// function's DryRun), at most once per user per day (recorded in the state table), and an
/// answer with counts only.
async fn requested(
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

/// Handles one Lambda invocation: an SQS batch of work, the scheduled sweep (handed out to the
/// queue when one is configured, else run here), or a request for one account or user.
pub async fn handle_invocation(r: &Remediator, event: Value, inv: Invocation) -> Result<Answer> {
    if work::is_sqs_event(&event) {
        return Ok(Answer::Batch(work::handle_batch(r, event, &inv).await?));
    }
    match Request::parse(event)? {
        Request::Sweep { mode } if r.queue.is_some() => {
            Ok(Answer::Dispatched(work::dispatch(r, mode, inv.now).await?))
        }
        Request::Sweep { mode } => Ok(Answer::Summary(
            sweep_accounts_until(
                r,
                organization_accounts(&r.sdk, &r.role, &r.filter).await?,
                mode,
                inv.now,
                inv.deadline,
            )
            .await?,
        )),
        Request::ComplianceChange { account, user_id } => Ok(Answer::Requested(
            requested(r, account, user_id, &inv).await?.0,
        )),
        request => Ok(Answer::Summary(single(r, request, &inv).await?)),
    }
}

/// A request for one account or one user.
async fn single(r: &Remediator, request: Request, inv: &Invocation) -> Result<Summary> {
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
        Request::Sweep { .. } | Request::ComplianceChange { .. } => {
            unreachable!("sweeps and member requests are handled by the caller")
        }
    };
    // The event names only the id; the account's name and email are not needed to act.
    let account = Account {
        id: account,
        name: String::new(),
        email: None,
    };
    let limits = Limits {
        deadline: inv.deadline,
        after: None,
    };
    let report = run_account_until(r, account, &selection, &forced, mode, inv.now, &limits).await;
    Ok(Summary {
        dry_run: dry_run(r, mode),
        at: inv.now,
        accounts: vec![report],
        notes: vec![],
    })
}

pub(crate) fn dry_run(r: &Remediator, mode: Mode) -> bool {
    r.settings.dry_run || mode == Mode::Preview
}

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
    let limits = Limits {
        deadline,
        after: None,
    };
    let runs = per_account(accounts, |a| {
        account_run(r, a, &Selection::All, &Forced::No, mode, now, &limits)
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
    let (emails, notes) = send_run(r, &run_id, now, dry_run(r, mode), &accounts, &users).await;
    for report in &mut reports {
        report.emails = emails.get(&report.account).copied().unwrap_or(0);
    }
    Ok(Summary {
        dry_run: dry_run(r, mode),
        at: now,
        accounts: reports,
        notes,
    })
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
    let limits = Limits {
        deadline: None,
        after: None,
    };
    run_account_until(r, account, selection, forced, mode, now, &limits).await
}

async fn run_account_until(
    r: &Remediator,
    account: Account,
    selection: &Selection,
    forced: &Forced,
    mode: Mode,
    now: DateTime<Utc>,
    limits: &Limits,
) -> AccountReport {
    let span = tracing::info_span!("account", account = %account.id);
    async {
        let id = account.id.clone();
        let run = account_run(r, account, selection, forced, mode, now, limits).await;
        let mut report = run.report;
        let (emails, notes) = send_run(
            r,
            &format!("{id}-{}", now.format("%Y-%m-%d")),
            now,
            dry_run(r, mode),
            &[run.piece],
            &run.users,
        )
        .await;
        report.emails = emails.get(&id).copied().unwrap_or(0);
        report.notes.extend(notes);
        report
    }
    .instrument(span)
    .await
}

/// Where a run stops: the invocation's deadline (minus [`Remediator::deadline_margin`]), and for
/// a continuation the first user (by name) still to examine.
#[derive(Debug, Clone, Default)]
pub(crate) struct Limits {
    /// The invocation's deadline.
    pub deadline: Option<Instant>,
    /// Examine only users whose name is this or later.
    pub after: Option<String>,
}

/// One account's run without its notices: the report and the notice pieces.
pub(crate) struct AccountRun {
    pub report: AccountReport,
    pub piece: AccountPiece,
    pub users: Vec<UserPiece>,
}

impl keyguard_aws::progress::Outcome for AccountRun {
    fn failed(&self) -> bool {
        self.report.failures() > 0
    }
}

/// Runs one account (no span: the caller gives one) and makes its notice pieces; publishes its
/// EventBridge events. Never fails: what went wrong is in the report.
pub(crate) async fn account_run(
    r: &Remediator,
    account: Account,
    selection: &Selection,
    forced: &Forced,
    mode: Mode,
    now: DateTime<Utc>,
    limits: &Limits,
) -> AccountRun {
    let preview = dry_run(r, mode);
    let mut report = AccountReport {
        account: account.id.clone(),
        ..AccountReport::default()
    };
    let works = match act(
        r,
        &account,
        selection,
        forced,
        preview,
        now,
        limits,
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
    let notes = publish_events(r, &account, &report.actions, preview).await;
    report.notes.extend(notes);
    let (piece, users) = pieces_of(r, &account, &works, &mut report);
    AccountRun {
        report,
        piece,
        users,
    }
}

#[allow(clippy::too_many_arguments)]
async fn act(
    r: &Remediator,
    account: &Account,
    selection: &Selection,
    forced: &Forced,
    dry_run: bool,
    now: DateTime<Utc>,
    limits: &Limits,
    report: &mut AccountReport,
) -> Result<Vec<Work>> {
    if !dry_run && r.state.is_none() && !r.no_lease {
        return Err(Error::Refused(
            "no state table: keyguard writes to a user only under its lease (configure \
             KEYGUARD_STATE_TABLE / --state-table, or --no-lease when nothing else runs)"
                .into(),
        ));
    }
    let cfg = for_account(&r.sdk, &r.caller, &account.id, &r.role).await?;
    let ctx = Ctx {
        r,
        account,
        iam: aws_sdk_iam::Client::new(&cfg),
        sm: aws_sdk_secretsmanager::Client::new(&cfg),
        principal: r.caller.principal_in(&account.id, &r.role),
        dry_run,
        now,
        deadline: limits.deadline,
        holder: crate::lease::holder_id(),
    };
    // (user, the report's key slots when the user came from the credential report)
    let todo: Vec<(User, Option<Vec<AccessKey>>)> = match selection {
        Selection::All => {
            let inv = read_inventory(&ctx.iam, &account.id, r.polling).await?;
            report.users = inv.users.len();
            // The root user's access key: named in every run's digest until a person deletes it
            // (keyguard never acts on root).
            if let Some(root) = keyguard_core::evaluate_root(&inv.root_keys, now) {
                report.notes.push(format!(
                    "ROOT ACCESS KEY: {} (not remediated: keyguard never acts on root)",
                    root.annotation
                ));
            }
            // Triage on keyguard's records (one Query), not on what the tags claim.
            let kept = match &r.state {
                Some(table) => Some(crate::records::read_account(table, &account.id).await?),
                None => None,
            };
            let none = Records::new();
            let seen = |u: &User| match &kept {
                Some(kept) => with_records(u, kept.get(&u.name).unwrap_or(&none)),
                None => u.clone(),
            };
            // A mirror that says something else than the records (a run killed before it wrote
            // the tags, or a person's edit) is rewritten: the user is examined.
            let stale_mirror = |u: &User| {
                !dry_run
                    && kept.as_ref().is_some_and(|kept| {
                        records_of_tags(u) != *kept.get(&u.name).unwrap_or(&none)
                    })
            };
            // With SECRET_DELETE_DAYS_AFTER_USE: the users with a keyguard secret whose first use
            // is not recorded yet, or whose deletion is due (one ListSecrets).
            let with_secret: std::collections::BTreeSet<String> = match r
                .secret_delete_after_use_days
            {
                Some(_) if account.id != r.caller.account => {
                    match keyguard_aws::secrets::kept(&ctx.sm).await {
                        Ok(kept) => kept
                            .unwrap_or_default()
                            .iter()
                            .filter_map(|s| keyguard_aws::secrets::user_of(&account.id, &s.name))
                            .collect(),
                        // The deletions wait for a later sweep; the policy's steps do not.
                        Err(e) => {
                            warn!(error = %e, "secrets not listed");
                            Default::default()
                        }
                    }
                }
                _ => Default::default(),
            };
            let retention_due = |u: &User| {
                let Some(days) = r.secret_delete_after_use_days else {
                    return false;
                };
                if !with_secret.contains(&u.name) {
                    return false;
                }
                let first: Vec<DateTime<Utc>> = seen(u)
                    .tags
                    .iter()
                    .filter(|(k, _)| k.starts_with(keyguard_core::FIRST_USED_TAG_PREFIX))
                    .filter_map(|(_, v)| keyguard_core::model::parse_date_or_time(v, false))
                    .collect();
                first.is_empty()
                    || first
                        .iter()
                        .any(|t| now - *t >= chrono::Duration::days(days.into()))
            };
            inv.users
                .into_iter()
                .filter(|u| limits.after.as_ref().is_none_or(|a| &u.user.name >= a))
                .filter(|u| {
                    stale_mirror(&u.user)
                        || retention_due(&u.user)
                        || needs_attention(&seen(&u.user), &u.keys, &r.settings, now)
                })
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
    let ctx = &ctx;
    // Users start in name order; a user is started only while the deadline is far enough, so
    // the users not started are a suffix in name order, and the first of them is where the next
    // invocation resumes.
    let outcomes = futures::stream::iter(todo)
        .map(|(user, slots)| {
            let span = tracing::info_span!("user", user = %user.name);
            async move {
                if ctx.past_margin() {
                    return Err(user.name);
                }
                Ok(ctx.user(user, slots, forced).await)
            }
            .instrument(span)
        })
        .buffer_unordered(keyguard_aws::CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    let mut works = Vec::new();
    let mut deferred: Option<String> = None;
    for o in outcomes {
        match o {
            Ok(w) => {
                if w.deferred {
                    deferred =
                        Some(deferred.map_or(w.user.name.clone(), |d| d.min(w.user.name.clone())));
                }
                works.push(w);
            }
            Err(name) => deferred = Some(deferred.map_or(name.clone(), |d| d.min(name))),
        }
    }
    report.examined = works.iter().filter(|w| !w.deferred).count();
    if let Some(from) = &deferred {
        report.notes.push(format!(
            "stopped taking users near the invocation's deadline: users from {from:?} on are \
             examined by the next invocation"
        ));
    }
    report.deferred = deferred;
    Ok(works)
}
