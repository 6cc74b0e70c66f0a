//! `keyguard collect`: an evidence folder from a live organization, in the AWS CLI's formats.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use chrono::{DateTime, Utc};
use keyguard_aws::collect::{account_files, accounts_file, collected_file, manifest_file, Sink};
use keyguard_aws::inventory::ReportPolling;
use keyguard_aws::manifest::Manifest;
use keyguard_aws::sdk;

use crate::source::{connect, parse_as_of};
use crate::Scope;
use keyguard_aws::org::per_account;

/// Arguments of `keyguard collect`.
#[derive(Debug, clap::Args)]
pub struct CollectArgs {
    /// The folder to write (created if needed; files of the same name are replaced).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    #[command(flatten)]
    scope: Scope,
    /// The Config rule whose results go into config-compliance.json.
    #[arg(
        long,
        env = "KEYGUARD_RULE_NAME",
        default_value = "keyguard-access-keys"
    )]
    rule: String,
    /// Also write each account's followed IAM CloudTrail events from this date on (LookupEvents,
    /// paced at 2 calls a second, 90 days at most), so that `report --evidence` of the folder
    /// has the actions and the exemption ledger, and where the keys due for a step are used
    /// (`<account>/key-usage.json`).
    #[arg(long, value_name = "DATE", value_parser = parse_as_of)]
    since: Option<DateTime<Utc>>,
    /// The policy that says which keys are due for a step.
    #[command(flatten)]
    policy: crate::Policy,
}

pub async fn run(args: CollectArgs) -> Result<ExitCode> {
    let settings = args.policy.settings.settings()?;
    let org = connect(&args.scope).await?;
    let (base, caller, accounts) = (org.base, org.caller, org.accounts);
    let collected_at = Utc::now();
    let sink = Sink::Folder(args.out.clone());
    sink.put(&accounts_file(&accounts)).await?;
    let role = args.scope.role.spec();
    let results = per_account(accounts, |account| {
        let (base, caller, role, rule, sink) = (&base, &caller, &role, &args.rule, &sink);
        let settings = &settings;
        async move {
            let cfg = sdk::for_account(base, caller, &account.id, role)
                .await
                .map_err(|e| e.to_string())?;
            let (mut files, users) =
                account_files(&cfg, &account.id, rule, ReportPolling::default())
                    .await
                    .map_err(|e| e.to_string())?;
            if let Some(since) = args.since {
                let name = format!(
                    "keyguard-lookup-{}-{}",
                    since.format("%Y%m%dT%H%M%SZ"),
                    collected_at.format("%Y%m%dT%H%M%SZ")
                );
                let trail = reporter::live::lookup_trail_file(
                    &cfg,
                    &account.id,
                    since,
                    collected_at,
                    &name,
                )
                .await
                .map_err(|e| format!("CloudTrail: {e}"))?;
                files.push(trail);
                // Where the keys due for a step are used (the report's section, offline).
                let (usage, _) = reporter::usage_input::looked_up(&cfg, settings, collected_at)
                    .await
                    .map_err(|e| format!("where keys are used: {e}"))?;
                files.push(reporter::usage_input::evidence_file(&account.id, &usage));
            }
            // The slice's digests go into the folder's manifest (a report uses only slices
            // that match it).
            let mut manifest = Manifest::default();
            for f in &files {
                sink.put(f).await.map_err(|e| e.to_string())?;
                manifest.add(&f.path, &f.bytes);
            }
            Ok::<_, String>((users, manifest))
        }
    })
    .await;
    let mut manifest = Manifest::default();
    for (_, result) in &results {
        if let Ok((_, m)) = result {
            manifest.merge(m.clone());
        }
    }
    sink.put(&manifest_file(&manifest)).await?;
    sink.put(&collected_file(
        collected_at,
        &format!("keyguard {}", env!("CARGO_PKG_VERSION")),
        &caller.account,
    ))
    .await?;
    let mut failed = 0;
    for (account, result) in &results {
        match result {
            Ok((users, _)) => eprintln!("keyguard: {}: {users} users", account.id),
            Err(e) => {
                failed += 1;
                eprintln!(
                    "keyguard: account {} could not be collected: {e}",
                    account.id
                );
            }
        }
    }
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
