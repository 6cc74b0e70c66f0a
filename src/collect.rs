//! `keyguard collect`: an evidence folder from a live organization, in the AWS CLI's formats.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use chrono::Utc;
use keyguard_aws::config::compliance_results;
use keyguard_aws::evidence::{
    cli_time, user_detail, write_json, AccessKeyMetadata, AccessKeysFile, AccountsFile,
    AuthorizationDetailsFile, Collected, ComplianceFile, EvaluationResult, OrgAccount, Qualifier,
    ResultIdentifier,
};
use keyguard_aws::inventory::{
    credential_report, list_keys, parse_credential_report, users, ReportPolling,
};
use keyguard_aws::sdk;
use keyguard_core::{Compliance, KeyStatus};

use crate::source::connect;
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
}

pub async fn run(args: CollectArgs) -> Result<ExitCode> {
    let org = connect(&args.scope).await?;
    let (base, caller, accounts) = (org.base, org.caller, org.accounts);
    let collected_at = Utc::now();
    let file = AccountsFile {
        accounts: accounts
            .iter()
            .map(|a| OrgAccount {
                id: a.id.clone(),
                arn: None,
                email: a.email.clone(),
                name: a.name.clone(),
                status: Some("ACTIVE".into()),
                state: Some("ACTIVE".into()),
            })
            .collect(),
    };
    write_json(&args.out.join("accounts.json"), &file)?;
    let role = args.scope.role.spec();
    let out = &args.out;
    let results = per_account(accounts, |account| {
        let (base, caller, role, rule) = (&base, &caller, &role, &args.rule);
        async move {
            let cfg = sdk::for_account(base, caller, &account.id, role)
                .await
                .map_err(|e| e.to_string())?;
            collect_account(&cfg, &out.join(&account.id), rule)
                .await
                .map_err(|e| format!("{e:#}"))
        }
    })
    .await;
    write_json(
        &args.out.join("collected.json"),
        &Collected {
            collected_at,
            tool: format!("keyguard {}", env!("CARGO_PKG_VERSION")),
        },
    )?;
    let mut failed = 0;
    for (account, result) in &results {
        match result {
            Ok(users) => eprintln!("keyguard: {}: {users} users", account.id),
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

async fn collect_account(cfg: &aws_config::SdkConfig, dir: &Path, rule: &str) -> Result<usize> {
    let iam = aws_sdk_iam::Client::new(cfg);
    let (report, _) = credential_report(&iam, ReportPolling::default()).await?;
    let rows = parse_credential_report(&report)?;
    std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    std::fs::write(dir.join("credential-report.csv"), &report)?;
    let users = users(&iam).await?;
    write_json(
        &dir.join("account-authorization-details.json"),
        &AuthorizationDetailsFile {
            user_detail_list: users.iter().map(user_detail).collect(),
        },
    )?;
    // Key ids, for users that have keys (one ListAccessKeys each).
    let mut keys = Vec::new();
    for row in rows.iter().filter(|r| !r.keys.is_empty()) {
        for k in list_keys(&iam, &row.user).await?.unwrap_or_default() {
            keys.push(AccessKeyMetadata {
                user_name: row.user.clone(),
                access_key_id: k.id,
                status: if k.status == KeyStatus::Active {
                    "Active"
                } else {
                    "Inactive"
                }
                .into(),
                create_date: cli_time(k.created),
            });
        }
    }
    write_json(
        &dir.join("access-keys.json"),
        &AccessKeysFile {
            access_key_metadata: keys,
        },
    )?;
    let config = aws_sdk_config::Client::new(cfg);
    let all = [
        Compliance::Compliant,
        Compliance::NonCompliant,
        Compliance::NotApplicable,
    ];
    match compliance_results(&config, rule, &all).await? {
        Some(results) => {
            let file = ComplianceFile {
                evaluation_results: results
                    .into_iter()
                    .map(|r| EvaluationResult {
                        evaluation_result_identifier: ResultIdentifier {
                            evaluation_result_qualifier: Qualifier {
                                config_rule_name: rule.into(),
                                resource_type: r.resource_type,
                                resource_id: r.resource_id,
                            },
                            ordering_timestamp: r.ordering.map(cli_time),
                        },
                        compliance_type: r
                            .compliance
                            .map_or("INSUFFICIENT_DATA", |c| c.as_str())
                            .into(),
                        result_recorded_time: r.recorded.map(cli_time),
                        config_rule_invoked_time: r.recorded.map(cli_time),
                        annotation: r.annotation,
                    })
                    .collect(),
            };
            write_json(&dir.join("config-compliance.json"), &file)?;
        }
        None => tracing::warn!(
            rule,
            "no such Config rule in this account; config-compliance.json not written"
        ),
    }
    Ok(users.len())
}
