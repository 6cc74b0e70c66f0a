//! The remediator: runs the key lifecycle of [`keyguard_core::plan()`] against live IAM.
//!
//! In: a request ([`Request`]: the scheduled org-wide sweep, a member account's request for one
//! of its users, or a central caller's for one account or user), the settings and `now`. Out:
//! IAM writes (create, disable, delete keys; the mirror tags), the new key in Secrets Manager,
//! keyguard's records in the central state table, owner notices and an admin digest through
//! SESv2, optional EventBridge events, and a [`Summary`] per account of what was done,
//! previewed, skipped or failed.
//!
//! A request's path through the modules:
//! - `requests`: who may ask for what (the payloads, parsed); `invocation`: the entry points;
//! - `member_request`: a member account's request, capped and counted (`request_tally`); `sweep`: a sweep or one account in
//!   this process; [`queued_sweep`] and `queued_run`: the sweep on the work queue, one account
//!   per invocation, its pieces in the state table;
//! - `account`: one account read once and its users chosen; `user`: one user's run under its
//!   lease ([`lease`]), with keyguard's records ([`user_records`]);
//! - `notice_pieces`, `owner_email`, `admin_digest`, `run_notices`, `previews`,
//!   `email_templates`, `key_events`: what owners, administrators and EventBridge are told;
//! - `restore`: re-enabling a disabled key; `summary`: what a run reports; `error`.
//!
//! Safety, in the order the code applies it (`docs/invariants.md`):
//! - one writer per user: the user's lease is taken before any write, and a run that loses it
//!   writes nothing more;
//! - every user is re-read live (ListAccessKeys) right before its writes; the plan is made from
//!   that read, never from the credential report or Config's snapshot;
//! - an interrupted rotation (keyguard's rotation mark is still in its records) is repaired
//!   first: a key created by it, never used and not in the secret, is deleted;
//! - a new key's secret is stored before anything else happens; if that fails the key is deleted
//!   at once (`docs/invariants.md#invariant-6`);
//! - DryRun (the default) and `mode: preview` make no write at all (IAM, Secrets Manager), and send
//!   the same notices marked as a preview;
//! - one account's failure never stops the others; a failed step stops only the later steps of
//!   that user.
//!
//! Every invocation knows its deadline and starts no user (and no rotation) it cannot finish.
//! The secret access key exists only inside a rotation, as a `SecretString`, on its way to
//! Secrets Manager. It is never logged, returned, put in an error or an email.

mod account;
mod admin_digest;
mod email_templates;
mod error;
mod exposure;
mod exposure_event;
mod first_notices;
mod function;
mod invocation;
mod key_events;
pub mod lease;
mod member_request;
mod notice_pieces;
mod owner_email;
mod previews;
mod queued_run;
pub mod queued_sweep;
mod reenable_event;
mod reenabled;
mod request_tally;
mod requests;
mod restore;
mod run_notices;
mod secret_adoption;
mod settings;
mod summary;
mod sweep;
mod user;
pub mod user_records;

pub use account::{Invocation, Selection};
pub use email_templates::{valid_address, Templates};
pub use error::{Error, Result};
pub use exposure_event::ExposedKeyResponse;
pub use function::{NoticeConfig, Remediator};
pub use invocation::{handle, handle_invocation, Answer};
pub use notice_pieces::{AccountPiece, UserPiece};
pub use request_tally::{RequestTally, REQUESTS_PER_ACCOUNT_PER_DAY};
pub use requests::{Forced, Mode, Request, REMEDIATION_REQUEST, REMEDIATION_SOURCE};
pub use restore::restore;
pub use settings::{NoticeArgs, ScaleArgs};
pub use summary::{AccountReport, ActionKind, ActionRecord, Outcome, Requested, Summary};
pub use sweep::{run_account, sweep, sweep_accounts, sweep_accounts_until};
