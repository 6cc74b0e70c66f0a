//! The root package's integration tests, in one binary (as ripgrep and uv do), so that the AWS
//! SDK stack and polars are linked once for all of them, not once per file.
//!
//! Every module talks to the AWS emulator rig (`tests/emulator/`, started once for this binary by
//! [`support`]) over HTTP, exactly as the binaries talk to AWS.

// A test is a scenario read top to bottom: clippy.toml's function length is for the code.
#![allow(clippy::too_many_lines)]

#[path = "../support/mod.rs"]
mod support;

mod attacks;
mod attacks_member;
mod attacks_report;
mod bench;
mod cli;
mod cold_start;
mod crash_safety;
mod deploy;
mod deploy_guard;
mod deploy_limits;
mod deploy_pack;
mod house;
mod migrate;
mod ocsf;
mod operator;
mod owner_fallback;
mod pack_report;
mod patterns;
mod queued_report;
mod reenabled;
mod remediator;
mod remediator_paths;
mod report;
mod report_live;
mod report_scale;
mod root;
mod rule_lambda;
mod scale;
mod secret_retention;
mod security_lake;
mod usage_cli;
mod usage_hold;
