//! A queued run in the central state table: its progress, each account's and user's notice
//! pieces, and the previews owners were already sent. The layout (all under the table's `pk` /
//! `sk`, bodies JSON):
//!
//! | pk | sk | what |
//! | --- | --- | --- |
//! | `runs` | `<run>` | the index of runs (for the next dispatch's safety net) |
//! | `run#<run>` | `#run` | [`RunMeta`]; counters `done`, `failed`; flags `digest`, `owners`, `finalized` |
//! | `run#<run>` | `acct#<account>` | the account's [`AccountPiece`], written once when it finishes |
//! | `run#<run>` | `owner#<hex owner>#<account>#<user>` | a user's [`UserPiece`] (the latest attempt's) |
//! | `run#<run>` | `sent#<hex owner>` | the owner's email went out |
//! | `preview#<account>#<user>` | `<key>#<step>` | a DryRun preview of that step and date was sent |

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use keyguard_aws::state::StateTable;
use serde::{Deserialize, Serialize};

use crate::notices::{Item, UserNotice};
use crate::notify::{AccountPiece, UserPiece};
use crate::{Error, Mode, Result};

/// How long a run's items are kept.
const RUN_DAYS: i64 = 30;
/// How long a preview record is kept (a step previewed once is not previewed again meanwhile
/// unless its date changes).
const PREVIEW_DAYS: i64 = 90;

/// What a run is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunMeta {
    /// When it was dispatched.
    pub started: DateTime<Utc>,
    /// Accounts handed out.
    pub total: usize,
    /// Preview or not (DryRun or `mode: preview`).
    pub preview: bool,
    /// The request's mode.
    pub mode: Mode,
}

/// The state of one run as read back.
#[derive(Debug, Clone)]
pub struct RunState {
    /// What the run is.
    pub meta: RunMeta,
    /// Accounts finished (done or failed for good).
    pub done: i64,
    /// Of those, failed.
    pub failed: i64,
    /// Flags set by [`Runs::claim`].
    pub flags: Vec<String>,
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("plain data serializes")
}

fn parse<T: for<'de> Deserialize<'de>>(what: &str, body: Option<&str>) -> Result<T> {
    serde_json::from_str(body.unwrap_or_default())
        .map_err(|e| Error::Internal(format!("state table: unreadable {what}: {e}")))
}

/// The runs, in one state table.
pub struct Runs<'a>(pub &'a StateTable);

impl Runs<'_> {
    /// Records a new run; `false` when a run of that id exists (a schedule delivered twice).
    pub async fn create(&self, run: &str, meta: &RunMeta) -> Result<bool> {
        let expires = meta.started + Duration::days(RUN_DAYS);
        if !self
            .0
            .put_new(&format!("run#{run}"), "#run", &json(meta), expires)
            .await?
        {
            return Ok(false);
        }
        self.0
            .put("runs", run, &json(&meta.started), expires)
            .await?;
        Ok(true)
    }

    /// The run's state, `None` when there is no such run.
    pub async fn state(&self, run: &str) -> Result<Option<RunState>> {
        let Some(item) = self.0.get(&format!("run#{run}"), "#run").await? else {
            return Ok(None);
        };
        let meta: RunMeta = parse("run", item.body.as_deref())?;
        Ok(Some(RunState {
            meta,
            done: item.numbers.get("done").copied().unwrap_or(0),
            failed: item.numbers.get("failed").copied().unwrap_or(0),
            flags: item
                .numbers
                .iter()
                .filter(|(k, v)| **v == 1 && !["done", "failed"].contains(&k.as_str()))
                .map(|(k, _)| k.clone())
                .collect(),
        }))
    }

    /// Stores a user's piece (replacing an earlier attempt's for the same user and owner).
    pub async fn put_user(&self, run: &str, piece: &UserPiece, now: DateTime<Utc>) -> Result<()> {
        let owner = match &piece.owner {
            Ok(o) => hex(o),
            Err(_) => "!nobody".to_string(),
        };
        let sk = format!("owner#{owner}#{}#{}", piece.account, piece.user);
        self.0
            .put(
                &format!("run#{run}"),
                &sk,
                &json(piece),
                now + Duration::days(RUN_DAYS),
            )
            .await?;
        Ok(())
    }

    /// Records that an account finished (`failed`: for good, after its last attempt) and counts
    /// it, once: a second report of the same account (a message delivered twice) counts nothing
    /// and returns `None`. Otherwise the run's `(done, total)` after counting it.
    pub async fn finish_account(
        &self,
        run: &str,
        piece: &AccountPiece,
        failed: bool,
        now: DateTime<Utc>,
    ) -> Result<Option<(i64, i64)>> {
        let pk = format!("run#{run}");
        let first = self
            .0
            .put_new(
                &pk,
                &format!("acct#{}", piece.account),
                &json(piece),
                now + Duration::days(RUN_DAYS),
            )
            .await?;
        if !first {
            return Ok(None);
        }
        let counters = self
            .0
            .add(&pk, "#run", &[("done", 1), ("failed", i64::from(failed))])
            .await?;
        let total = match self.state(run).await? {
            Some(s) => s.meta.total as i64,
            None => 0,
        };
        Ok(Some((counters.get("done").copied().unwrap_or(0), total)))
    }

    /// Every account and user piece of the run.
    pub async fn pieces(&self, run: &str) -> Result<(Vec<AccountPiece>, Vec<UserPiece>)> {
        let pk = format!("run#{run}");
        let mut accounts = Vec::new();
        for i in self.0.query(&pk, "acct#").await? {
            accounts.push(parse("account piece", i.body.as_deref())?);
        }
        let mut users = Vec::new();
        for i in self.0.query(&pk, "owner#").await? {
            users.push(parse("user piece", i.body.as_deref())?);
        }
        Ok((accounts, users))
    }

    /// The pieces addressed to `owner`.
    pub async fn owner_pieces(&self, run: &str, owner: &str) -> Result<Vec<UserPiece>> {
        let mut out = Vec::new();
        for i in self
            .0
            .query(&format!("run#{run}"), &format!("owner#{}#", hex(owner)))
            .await?
        {
            out.push(parse("user piece", i.body.as_deref())?);
        }
        Ok(out)
    }

    /// Sets `flag` on the run once: `true` for the caller that set it.
    pub async fn claim(&self, run: &str, flag: &str) -> Result<bool> {
        Ok(self.0.claim(&format!("run#{run}"), "#run", flag).await?)
    }

    /// Whether `owner`'s email of the run went out.
    pub async fn owner_sent(&self, run: &str, owner: &str) -> Result<bool> {
        Ok(self
            .0
            .get(&format!("run#{run}"), &format!("sent#{}", hex(owner)))
            .await?
            .is_some())
    }

    /// Records that `owner`'s email of the run went out.
    pub async fn mark_owner_sent(&self, run: &str, owner: &str, now: DateTime<Utc>) -> Result<()> {
        self.0
            .put(
                &format!("run#{run}"),
                &format!("sent#{}", hex(owner)),
                &json(&now),
                now + Duration::days(RUN_DAYS),
            )
            .await?;
        Ok(())
    }

    /// Runs before `run` (by id: ids are dated) that were never finalized.
    pub async fn unfinished_before(&self, run: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for i in self.0.query("runs", "").await? {
            if i.sk.as_str() >= run {
                continue;
            }
            if let Some(s) = self.state(&i.sk).await? {
                if !s.flags.iter().any(|f| f == "finalized") {
                    out.push(i.sk);
                }
            }
        }
        Ok(out)
    }

    /// `notice` without the preview items (steps done in preview, warnings) the owner was
    /// already sent for the same key, step and date; `None` when nothing new is left.
    pub async fn fresh_previews(
        &self,
        account: &str,
        notice: &UserNotice,
    ) -> Result<Option<UserNotice>> {
        let sent: BTreeMap<String, String> = self
            .0
            .query(&format!("preview#{account}#{}", notice.name), "")
            .await?
            .into_iter()
            .map(|i| (i.sk, i.body.unwrap_or_default()))
            .collect();
        let new = |items: &[Item]| -> Vec<Item> {
            items
                .iter()
                .filter(|i| {
                    sent.get(&format!("{}#{}", i.key, i.action))
                        .is_none_or(|d| d != &json(&i.date))
                })
                .cloned()
                .collect()
        };
        let fresh = UserNotice {
            done: new(&notice.done),
            warnings: new(&notice.warnings),
            ..notice.clone()
        };
        Ok(
            (!fresh.done.is_empty() || !fresh.warnings.is_empty() || !fresh.failed.is_empty())
                .then_some(fresh),
        )
    }

    /// Records the preview items of `notice` as sent.
    pub async fn remember_previews(
        &self,
        account: &str,
        notice: &UserNotice,
        now: DateTime<Utc>,
    ) -> Result<()> {
        for i in notice.done.iter().chain(&notice.warnings) {
            self.0
                .put(
                    &format!("preview#{account}#{}", notice.name),
                    &format!("{}#{}", i.key, i.action),
                    &json(&i.date),
                    now + Duration::days(PREVIEW_DAYS),
                )
                .await?;
        }
        Ok(())
    }
}
