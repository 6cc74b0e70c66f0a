//! A queued sweep's run in the central state table, beside the progress that
//! [`keyguard_aws::state::Runs`] keeps: each user's notice piece and the owners whose email went
//! out. The layout (bodies JSON):
//!
//! | pk | sk | what |
//! | --- | --- | --- |
//! | `run#<run>` | `acct#<account>` | the account's [`AccountPiece`] (the progress record) |
//! | `run#<run>` | `owner#<hex owner>#<account>#<user>` | a user's [`UserPiece`] (the latest attempt's) |
//! | `run#<run>` | `sent#<hex owner>` | the owner's email went out |

use chrono::{DateTime, Duration, Utc};
use keyguard_aws::state::{self, StateTable, RUN_DAYS};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::notice_pieces::{AccountPiece, UserPiece};
use crate::requests::Mode;

/// What a sweep run is (the run's description in the state table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunMeta {
    /// When it was dispatched.
    pub started: DateTime<Utc>,
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
    /// Progress and flags.
    pub run: state::Run,
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("plain data serializes")
}

fn parse<T: for<'de> Deserialize<'de>>(what: &str, body: &str) -> Result<T> {
    serde_json::from_str(body).map_err(|e| Error::Unreadable {
        what: what.to_string(),
        source: e,
    })
}

/// The sweep runs, in one state table.
pub struct Runs<'a>(pub &'a StateTable);

impl Runs<'_> {
    fn progress(&self) -> state::Runs<'_> {
        state::Runs(self.0)
    }

    /// Records a new run whose number of accounts is set once they are handed out
    /// ([`Runs::set_total`]); `false` when a run of that id exists.
    pub async fn create(&self, run: &str, meta: &RunMeta) -> Result<bool> {
        Ok(self
            .progress()
            .create(run, &json(meta), None, meta.started)
            .await?)
    }

    /// Sets the run's number of accounts; `(done, total)` after it.
    pub async fn set_total(&self, run: &str, total: usize) -> Result<(i64, i64)> {
        Ok(self.progress().set_total(run, total).await?)
    }

    /// The run's state, `None` when there is no such run.
    pub async fn state(&self, run: &str) -> Result<Option<RunState>> {
        let Some(r) = self.progress().get(run).await? else {
            return Ok(None);
        };
        Ok(Some(RunState {
            meta: parse("run", &r.meta)?,
            run: r,
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

    /// Records that an account finished (see [`state::Runs::finish_account`]).
    pub async fn finish_account(
        &self,
        run: &str,
        piece: &AccountPiece,
        failed: bool,
        now: DateTime<Utc>,
    ) -> Result<Option<(i64, i64)>> {
        Ok(self
            .progress()
            .finish_account(run, &piece.account, &json(piece), failed, now)
            .await?)
    }

    /// Every account and user piece of the run.
    pub async fn pieces(&self, run: &str) -> Result<(Vec<AccountPiece>, Vec<UserPiece>)> {
        let mut accounts = Vec::new();
        for (_, body, _) in self.progress().accounts(run).await? {
            accounts.push(parse("account piece", &body)?);
        }
        let mut users = Vec::new();
        for i in self.0.query(&format!("run#{run}"), "owner#").await? {
            users.push(parse("user piece", i.body.as_deref().unwrap_or_default())?);
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
            out.push(parse("user piece", i.body.as_deref().unwrap_or_default())?);
        }
        Ok(out)
    }

    /// Sets `flag` on the run once: `true` for the caller that set it.
    pub async fn claim(&self, run: &str, flag: &str) -> Result<bool> {
        Ok(self.progress().claim(run, flag).await?)
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

    /// Sweep runs before `run` that were never finalized.
    pub async fn unfinished_before(&self, run: &str) -> Result<Vec<String>> {
        Ok(self.progress().unfinished_before("sweep-", run).await?)
    }
}
