//! keyguard's AWS Config custom rule for `AWS::IAM::User`.
//!
//! In: a Config rule invocation ([`ConfigEvent`]) and the time of the call. Out: one Config
//! evaluation per IAM user, written with PutEvaluations, and a [`Summary`] of what was written.
//!
//! - `ConfigurationItemChangeNotification`: the user in the item (groups and tags from the
//!   item, keys read live); a deleted item or `eventLeftScope` gives NOT_APPLICABLE.
//! - `OversizedConfigurationItemChangeNotification`: the item is fetched with
//!   GetResourceConfigHistory (IAM's GetUser when Config has no history).
//! - `ScheduledNotification`: every user of the account from the credential report, and
//!   NOT_APPLICABLE for users Config still holds results for that no longer exist.
//!
//! `ruleParameters` override the function's settings ([`RuleParameters`]); an unknown or bad
//! parameter fails the invocation with a message naming it, which Config shows on the rule.
//! When the event's account is not the function's, everything (IAM reads and PutEvaluations)
//! happens through the member role of that account.

mod error;
mod event;
mod handler;
mod params;

pub use error::{Error, Result};
pub use event::{ConfigurationItem, InvokingEvent};
pub use handler::{handle, handle_payload, ConfigEvent, RuleContext, Summary};
pub use params::RuleParameters;
