//! The `reporter` bootstrap: settings from the environment, SDK configuration once, then the
//! handler for each scheduled invocation.

use clap::Parser;
use keyguard_aws::settings_env::{RoleArgs, SettingsArgs};
use keyguard_aws::state::StateTable;
use lambda_runtime::{service_fn, Diagnostic, Error, LambdaEvent};
use reporter::deliver::Delivery;
use reporter::evidence::Options;
use reporter::lambda::{handle_invocation, Reporter};
use reporter::live::{ConfigSource, LiveOptions, TrailSource};
use reporter::PeriodKind;
use tokio::sync::OnceCell;

#[derive(Parser)]
#[command(about = "keyguard's reporter (a Lambda bootstrap)")]
struct Env {
    #[command(flatten)]
    settings: SettingsArgs,
    #[command(flatten)]
    role: RoleArgs,
    #[command(flatten)]
    owners: keyguard_aws::settings_env::OwnerArgs,
    #[command(flatten)]
    buckets: keyguard_aws::settings_env::BucketOwnerArgs,
    /// The Config rule.
    #[arg(
        long,
        env = "KEYGUARD_RULE_NAME",
        default_value = "keyguard-access-keys"
    )]
    rule: String,
    /// The most rows each table of the HTML page shows (the worst first where the table has an
    /// order of badness); the CSVs hold every row, and the page says how many it left out.
    #[arg(long, env = "REPORT_PAGE_ROWS", default_value_t = reporter::render::PAGE_ROWS)]
    page_rows: usize,
    /// Read Config results through this aggregator instead of per account.
    #[arg(long, env = "CONFIG_AGGREGATOR")]
    aggregator: Option<String>,
    /// `lookup` or `s3://bucket/AWSLogs/o-xxxx`.
    #[arg(long, env = "TRAIL_SOURCE", default_value = "lookup")]
    trail: String,
    #[command(flatten)]
    security_lake: reporter::security_lake::Args,
    /// Where reports are uploaded.
    #[arg(long, env = "REPORT_S3_URI")]
    s3_uri: Option<String>,
    /// Auditors (comma-separated).
    #[arg(long, env = "REPORT_RECIPIENTS", value_delimiter = ',')]
    recipients: Vec<String>,
    /// The verified SES identity reports are sent from.
    #[arg(long, env = "NOTICE_SENDER")]
    sender: Option<String>,
    /// Accounts never reported (comma-separated).
    #[arg(long, env = "EXCLUDED_ACCOUNTS", value_delimiter = ',')]
    exclude: Vec<String>,
    /// The central state table (run progress of a queued report).
    #[arg(long, env = "KEYGUARD_STATE_TABLE")]
    state_table: Option<String>,
    /// The report queue: a report is spread over one invocation per account.
    #[arg(long, env = "REPORT_QUEUE_URL")]
    queue_url: Option<String>,
    /// The report queue's maxReceiveCount.
    #[arg(long, env = "MAX_RECEIVE_COUNT", default_value_t = 3)]
    max_receive_count: u32,
    /// The function's execution role name (so that no STS call is needed to know it).
    #[arg(long, env = "KEYGUARD_EXECUTION_ROLE")]
    execution_role: Option<String>,
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let env = Env::parse();
    let settings = env.settings.settings()?;
    let sdk = keyguard_aws::sdk::load().await;
    let caller = OnceCell::new();
    let (env, sdk, caller, settings) = (&env, &sdk, &caller, &settings);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let me = keyguard_aws::lambda::caller(
                caller,
                sdk,
                &event.context.invoked_function_arn,
                env.execution_role.as_deref(),
            )
            .await
            .map_err(|e| Diagnostic::from(reporter::Error::from(e)))?;
            let blank = |s: &Option<String>| s.clone().filter(|v| !v.trim().is_empty());
            let r = Reporter {
                options: Options {
                    kind: PeriodKind::Weekly,
                    as_of: None,
                    settings: settings.clone(),
                    rule_name: env.rule.clone(),
                    keyguard_roles: env.role.keyguard_roles(),
                    owner_domains: env.owners.domains(),
                    accounts: Vec::new(),
                    page_rows: env.page_rows,
                },
                live: LiveOptions {
                    config: env
                        .aggregator
                        .clone()
                        .map_or(ConfigSource::PerAccount, ConfigSource::Aggregator),
                    trail: match env.trail.strip_prefix("s3://") {
                        Some(uri) => TrailSource::S3(uri.to_string()),
                        None => TrailSource::LookupEvents,
                    },
                    role: env.role.spec(),
                    organization: me.account.clone(),
                    trail_owner: env.buckets.trail_bucket_owner.clone(),
                },
                filter: keyguard_aws::org::AccountFilter {
                    include: Vec::new(),
                    exclude: env.exclude.clone(),
                },
                delivery: Delivery {
                    out: None,
                    s3_uri: env.s3_uri.clone(),
                    email_to: env.recipients.clone(),
                    sender: env.sender.clone(),
                    bucket_owner: env.buckets.report(&me.account),
                    security_lake: lambda_lake(&env.security_lake).map_err(Diagnostic::from)?,
                },
                state: blank(&env.state_table).map(|t| StateTable::new(sdk, t)),
                queue: blank(&env.queue_url),
                max_receives: env.max_receive_count.max(1),
                sdk: sdk.clone(),
                caller: me.clone(),
            };
            handle_invocation(&r, event.payload, chrono::Utc::now())
                .await
                .map_err(Diagnostic::from)
        },
    ))
    .await
}

/// The function's Security Lake destination: only S3 (a folder would be the function's own disk).
fn lambda_lake(
    args: &reporter::security_lake::Args,
) -> Result<Option<reporter::security_lake::Destination>, reporter::Error> {
    let lake = args.destination()?;
    if let Some(reporter::security_lake::Destination {
        target: reporter::security_lake::Target::Folder(dir),
        ..
    }) = &lake
    {
        return Err(reporter::Error::InvalidParameter(format!(
            "SECURITY_LAKE_LOCATION {} is not s3://…: the function writes only to Security Lake's bucket",
            dir.display()
        )));
    }
    Ok(lake)
}
