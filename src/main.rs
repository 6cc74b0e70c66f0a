//! `keyguard`: keeps every IAM access key of an AWS Organization in policy, and proves it.
//!
//! The CLI runs locally what the Lambdas run in AWS, through the same libraries: `audit`
//! evaluates an organization (live, or from an evidence folder) exactly as the Config rule does;
//! `collect` writes an evidence folder from a live organization; `plan`, `remediate` and `restore`
//! run the remediator's library; `report` runs the reporter's; `usage` says where each key is
//! used, from CloudTrail; `migrate` maps an aws-samples solution's stack parameters to keyguard's.

mod audit;
mod collect;
mod format;
mod migrate;
mod progress;
mod remediate;
mod report;
mod source;
mod usage;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use keyguard_aws::settings_env::{RoleArgs, SettingsArgs};

#[derive(Parser)]
#[command(
    name = "keyguard",
    version,
    about = "Keeps every IAM access key of an AWS Organization in policy, and proves it."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Evaluate every IAM user's keys (the Config rule's verdicts) and print the findings.
    Audit(audit::AuditArgs),
    /// Write an evidence folder (AWS CLI exports) from a live organization.
    Collect(collect::CollectArgs),
    /// Print what the remediator will do to every key, and when (live or from evidence).
    Plan(remediate::PlanArgs),
    /// Run the remediator: rotate, disable, delete due keys (DryRun unless --dry-run false).
    Remediate(remediate::RemediateArgs),
    /// Re-enable a disabled key that is still within its recovery grace.
    Restore(remediate::RestoreArgs),
    /// Write the weekly or monthly auditor report (HTML + CSV) to a folder, S3 or email.
    Report(report::ReportArgs),
    /// Where each access key is used: sources, agents, services, Regions (from CloudTrail).
    Usage(usage::UsageArgs),
    /// Print keyguard's stack parameters for an aws-samples solution's (migrating from it).
    Migrate(migrate::MigrateArgs),
    /// Print a shell completion script (e.g. `keyguard completions bash > /etc/bash_completion.d/keyguard`).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Which accounts of a live organization to read.
#[derive(Debug, Clone, Args)]
pub struct Scope {
    /// Only these accounts (repeatable). Without it, every ACTIVE account of the organization
    /// (Organizations ListAccounts, from the management or delegated-admin account).
    #[arg(long = "account", value_name = "ID")]
    pub accounts: Vec<String>,
    /// Never these accounts (repeatable).
    #[arg(long = "exclude", value_name = "ID")]
    pub exclude: Vec<String>,
    /// The member role and session name.
    #[command(flatten)]
    pub role: RoleArgs,
    /// Who must own the report and trail buckets.
    #[command(flatten)]
    pub buckets: keyguard_aws::settings_env::BucketOwnerArgs,
}

impl Scope {
    /// `--account` / `--exclude` as a filter.
    pub fn filter(&self) -> keyguard_aws::org::AccountFilter {
        keyguard_aws::org::AccountFilter {
            include: self.accounts.clone(),
            exclude: self.exclude.clone(),
        }
    }
}

/// Policy settings, shared by the commands that evaluate.
#[derive(Debug, Clone, Args)]
pub struct Policy {
    /// The policy settings.
    #[command(flatten)]
    pub settings: SettingsArgs,
}

/// An evidence folder.
#[derive(Debug, Clone, Args)]
pub struct EvidenceArg {
    /// Read this evidence folder instead of AWS (see README: the evidence folder): a folder, or
    /// `s3://bucket/prefix` (what the reporter's workers write).
    #[arg(long, value_name = "DIR")]
    pub evidence: Option<PathBuf>,
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_env("KEYGUARD_LOG").unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_target(false)
        .init();
}

/// Writes the completion script of `shell` to stdout (a closed pipe, as with `| head`, is fine).
fn completions(shell: clap_complete::Shell) -> anyhow::Result<ExitCode> {
    use clap::CommandFactory;
    use std::io::Write;
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "keyguard", &mut script);
    match std::io::stdout().write_all(&script) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    progress::install_when_interactive();
    let result = match cli.command {
        Command::Audit(args) => audit::run(args).await,
        Command::Collect(args) => collect::run(args).await,
        Command::Plan(args) => remediate::run_plan(args).await,
        Command::Remediate(args) => remediate::run_remediate(args).await,
        Command::Restore(args) => remediate::run_restore(args).await,
        Command::Report(args) => report::run(args).await,
        Command::Usage(args) => usage::run(args).await,
        Command::Migrate(args) => migrate::run(args),
        Command::Completions { shell } => completions(shell),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("keyguard: {err:#}");
            ExitCode::from(2)
        }
    }
}
