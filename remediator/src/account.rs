//! One account's run: the account read once (the credential report and authorization details,
//! keyguard's records of its users), the users something can be due for chosen without a
//! further call, each run on its own ([`crate::user`]), the account's EventBridge events
//! published and its notice pieces made.

use std::collections::BTreeSet;
use std::time::Instant;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use keyguard_aws::inventory::{read_inventory, user_by_name, users};
use keyguard_aws::sdk::for_account;
use keyguard_core::records::records_of_tags;
use keyguard_core::{needs_attention, with_records, AccessKey, Account, Records, User};
use tracing::{warn, Instrument};

use crate::error::{Error, Result};
use crate::function::Remediator;
use crate::key_events::publish_events;
use crate::notice_pieces::{pieces_of, AccountPiece, UserPiece};
use crate::requests::{Forced, Mode};
use crate::summary::AccountReport;
use crate::user::{Ctx, UserRun};

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

/// Where a run stops: the invocation's deadline (minus [`Remediator::deadline_margin`]), and for
/// a continuation the first user (by name) still to examine.
#[derive(Debug, Clone, Default)]
pub(crate) struct Limits {
    /// The invocation's deadline.
    pub deadline: Option<Instant>,
    /// Examine only users whose name is this or later.
    pub after: Option<String>,
}

/// What the invocation is given besides its payload.
#[derive(Debug, Clone, Copy)]
pub struct Invocation {
    /// The policy's "now" (the wall clock, or a preview's date).
    pub now: DateTime<Utc>,
    /// When the invocation is killed (Lambda's deadline), on this process's monotonic clock.
    pub deadline: Option<Instant>,
}

/// One account's job: which account, which of its users, what is forced, in which mode, at
/// which "now", and where the run stops.
#[derive(Debug, Clone)]
pub(crate) struct AccountJob {
    /// The account.
    pub account: Account,
    /// Which of its users.
    pub selection: Selection,
    /// What is forced beyond the policy.
    pub forced: Forced,
    /// Write or preview.
    pub mode: Mode,
    /// The policy's "now".
    pub now: DateTime<Utc>,
    /// Where the run stops.
    pub limits: Limits,
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

/// The account a request names only by its id, with its name and email from the organization
/// (one `DescribeAccount` for the run: [`keyguard_aws::org::describe_account`]), so that an
/// owner without an address of its own is told at the account's email, as in a sweep. When the
/// organization cannot say (no permission, not a member), the id alone: the admin is told.
pub(crate) async fn named_account(r: &Remediator, id: String) -> Account {
    let account = Account {
        id,
        name: String::new(),
        email: None,
    };
    keyguard_aws::org::named(&r.sdk, &r.role, account).await
}

/// Runs one account (no span: the caller gives one) and makes its notice pieces; publishes its
/// EventBridge events. Never fails: what went wrong is in the report.
pub(crate) async fn account_run(r: &Remediator, job: &AccountJob) -> AccountRun {
    let preview = r.dry_run(job.mode);
    let mut report = AccountReport {
        account: job.account.id.clone(),
        ..AccountReport::default()
    };
    let runs = match act(r, job, preview, &mut report).await {
        Ok(runs) => runs,
        Err(e) => {
            warn!(error = %e, "account not processed");
            report.error = Some(keyguard_aws::chain(&e));
            report.error_type = Some(e.error_type());
            vec![]
        }
    };
    for w in &runs {
        report.actions.extend(w.records.iter().cloned());
        report.notes.extend(w.notes.iter().cloned());
    }
    let notes = publish_events(r, &job.account, &report.actions, preview).await;
    report.notes.extend(notes);
    let (piece, users) = pieces_of(r, &job.account, &runs, &mut report);
    AccountRun {
        report,
        piece,
        users,
    }
}

/// A user to run, with the report's key slots when it came from the credential report.
type Todo = (User, Option<Vec<AccessKey>>);

/// Reads the account, chooses its users and runs each.
async fn act(
    r: &Remediator,
    job: &AccountJob,
    dry_run: bool,
    report: &mut AccountReport,
) -> Result<Vec<UserRun>> {
    if !dry_run && r.state.is_none() && !r.no_lease {
        return Err(Error::Refused(
            "no state table: keyguard writes to a user only under its lease (configure \
             KEYGUARD_STATE_TABLE / --state-table, or --no-lease when nothing else runs)"
                .into(),
        ));
    }
    let account = &job.account;
    let cfg = for_account(&r.sdk, &r.caller, &account.id, &r.role).await?;
    let ctx = Ctx {
        r,
        account,
        trail_pace: keyguard_aws::usage::pacer(),
        iam: aws_sdk_iam::Client::new(&cfg),
        sm: aws_sdk_secretsmanager::Client::new(&cfg),
        principal: r.caller.principal_in(&account.id, &r.role),
        cfg,
        dry_run,
        now: job.now,
        deadline: job.limits.deadline,
        holder: crate::lease::holder_id(),
    };
    let todo = match &job.selection {
        Selection::All => chosen_users(&ctx, job, report).await?,
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
    Ok(run_users(&ctx, todo, &job.forced, report).await)
}

/// Every user of the account (from the credential report) that something can be due for,
/// decided without a further call: a finding, an open warning, an Inactive key without a
/// recorded disable date or past its grace, an interrupted rotation, a mirror that differs from
/// keyguard's records, or a secret whose retention is due.
async fn chosen_users(
    ctx: &Ctx<'_>,
    job: &AccountJob,
    report: &mut AccountReport,
) -> Result<Vec<Todo>> {
    let (r, account, now, dry_run) = (ctx.r, &job.account, job.now, ctx.dry_run);
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
    // Migrating from aws-samples: its secrets become keyguard's before retention is decided.
    if let Some(note) =
        crate::secret_adoption::adopt(r, &ctx.iam, &ctx.sm, &account.id, &inv.users, dry_run).await
    {
        report.notes.push(note);
    }
    // Triage on keyguard's records (one Query), not on what the tags claim.
    let kept = match &r.state {
        Some(table) => Some(crate::user_records::read_account(table, &account.id).await?),
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
            && kept
                .as_ref()
                .is_some_and(|kept| records_of_tags(u) != *kept.get(&u.name).unwrap_or(&none))
    };
    let with_secret = users_with_secrets(ctx).await;
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
    Ok(inv
        .users
        .into_iter()
        .filter(|u| job.limits.after.as_ref().is_none_or(|a| &u.user.name >= a))
        .filter(|u| {
            stale_mirror(&u.user)
                || retention_due(&u.user)
                || needs_attention(&seen(&u.user), &u.keys, &r.settings, now)
        })
        .map(|u| (u.user, Some(u.keys)))
        .collect())
}

/// With SECRET_DELETE_DAYS_AFTER_USE (and not in the central account): the users with a keyguard
/// secret (one ListSecrets). A failure leaves the deletions to a later sweep, never the policy's
/// steps.
async fn users_with_secrets(ctx: &Ctx<'_>) -> BTreeSet<String> {
    let (r, account) = (ctx.r, ctx.account);
    if r.secret_delete_after_use_days.is_none() || account.id == r.caller.account {
        return BTreeSet::new();
    }
    match keyguard_aws::secrets::kept(&ctx.sm).await {
        Ok(kept) => kept
            .unwrap_or_default()
            .iter()
            .filter_map(|s| keyguard_aws::secrets::user_of(&account.id, &s.name))
            .collect(),
        Err(e) => {
            warn!(error = %e, "secrets not listed");
            BTreeSet::new()
        }
    }
}

/// Runs each user, [`keyguard_aws::CONCURRENCY`] at a time, starting none within the deadline's
/// margin; says in `report` from which user on the account was not examined.
async fn run_users(
    ctx: &Ctx<'_>,
    todo: Vec<Todo>,
    forced: &Forced,
    report: &mut AccountReport,
) -> Vec<UserRun> {
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
    works
}
