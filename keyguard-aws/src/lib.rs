//! keyguard's thin AWS adapters, shared by every binary.
//!
//! In: an [`aws_config::SdkConfig`] (from the environment, so `AWS_ENDPOINT_URL` points the whole
//! tool at an emulator) and keyguard-core's [`Settings`](keyguard_core::Settings).
//! Out: keyguard-core's model ([`keyguard_core::Account`], [`keyguard_core::User`],
//! [`keyguard_core::AccessKey`]) and typed [`Error`]s.
//!
//! Every AWS call keyguard makes is in one of these modules, named for what it touches:
//!
//! - [`sdk`]: one `SdkConfig` with keyguard's retry policy; STS (AssumeRole into member
//!   accounts, who am I).
//! - [`org`]: the organization's ACTIVE accounts, paged, with include/exclude lists, and the one
//!   bounded per-account fan-out ([`org::per_account`]).
//! - [`inventory`]: IAM reads: users and key slots of one account in 3 + ⌈U/1000⌉ calls, key ids
//!   only for users whose finding needs them, and the live re-read of one user's keys.
//! - [`iam`]: IAM writes: create, disable, delete keys; keyguard's user tags.
//! - [`secrets`]: Secrets Manager: the user's secret, its resource policy and value.
//! - [`config`]: AWS Config: `PutEvaluations` in batches with retries, the compliance queries.
//! - [`email`]: SESv2 `SendEmail`; [`events`]: EventBridge `PutEvents`.
//! - [`s3`]: S3 objects (org trail files, reports); [`cloudtrail`]: paced `LookupEvents`;
//!   [`usage`]: where one key is used, read live (IAM's last use, CloudTrail's calls).
//! - [`state`]: the central state table (DynamoDB); [`queue`]: SQS, handing out work.
//! - [`lambda`]: what a bootstrap learns from its invocation (who it is, its deadline).
//! - [`collect`]: an account's part of an evidence folder, read live, written to a folder or S3.
//! - [`evidence`]: the evidence folder (AWS CLI exports), read and written (files, no AWS).
//!
//! Every list is paged, every fan-out is bounded ([`CONCURRENCY`]), and throttling is retried by
//! the SDK's standard retry strategy with jittered exponential backoff ([`sdk::retry_config`]).

pub mod cloudtrail;
pub mod collect;
pub mod config;
pub mod conformance_pack;
pub mod credential_report;
pub mod email;
mod error;
pub mod events;
pub mod evidence;
pub mod iam;
pub mod inventory;
pub mod lambda;
mod limits;
pub mod manifest;
pub mod org;
pub mod progress;
pub mod queue;
pub mod s3;
pub mod sdk;
pub mod secret_owner;
pub mod secrets;
pub mod settings_env;
pub mod state;
mod time;
pub mod usage;

pub use error::{chain, Error, Result, Source};
pub use limits::CONCURRENCY;
pub use time::{to_chrono, to_smithy};
