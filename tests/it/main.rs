//! The root package's integration tests, in one binary (as ripgrep and uv do), so that the AWS
//! SDK stack and polars are linked once for all of them, not once per file.
//!
//! Every module talks to the AWS emulator rig (`tests/emulator/`, started once for this binary by
//! [`support`]) over HTTP, exactly as the binaries talk to AWS.

#[path = "../support/mod.rs"]
mod support;

mod attacks;
mod cli;
mod cold_start;
mod crash_safety;
mod deploy;
mod ocsf;
mod patterns;
mod remediator;
mod report;
mod root;
mod rule_lambda;
mod scale;
mod secret_retention;
