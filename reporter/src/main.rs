//! The `reporter` bootstrap: settings from the environment, SDK configuration once, then the
//! handler for each scheduled invocation.

use clap::Parser;
use keyguard_aws::settings_env::{RoleArgs, SettingsArgs};
use lambda_runtime::{service_fn, Diagnostic, Error, LambdaEvent};
use reporter::deliver::Delivery;
use reporter::evidence::Options;
use reporter::lambda::{handle, Reporter};
use reporter::live::{ConfigSource, LiveOptions, TrailSource};
use reporter::PeriodKind;

#[derive(Parser)]
#[command(about = "keyguard's reporter (a Lambda bootstrap)")]
struct Env {
    #[command(flatten)]
    settings: SettingsArgs,
    #[command(flatten)]
    role: RoleArgs,
    /// The Config rule.
    #[arg(
        long,
        env = "KEYGUARD_RULE_NAME",
        default_value = "keyguard-access-keys"
    )]
    rule: String,
    /// Read Config results through this aggregator instead of per account.
    #[arg(long, env = "CONFIG_AGGREGATOR")]
    aggregator: Option<String>,
    /// `lookup` or `s3://bucket/AWSLogs/o-xxxx`.
    #[arg(long, env = "TRAIL_SOURCE", default_value = "lookup")]
    trail: String,
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
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let env = Env::parse();
    let settings = env.settings.settings()?;
    let sdk = keyguard_aws::sdk::load().await;
    let caller = keyguard_aws::sdk::caller(&aws_sdk_sts::Client::new(&sdk)).await?;
    let r = Reporter {
        options: Options {
            kind: PeriodKind::Weekly,
            as_of: None,
            settings,
            rule_name: env.rule,
            keyguard_roles: env.role.keyguard_roles(),
            accounts: Vec::new(),
        },
        live: LiveOptions {
            config: env
                .aggregator
                .map_or(ConfigSource::PerAccount, ConfigSource::Aggregator),
            trail: match env.trail.strip_prefix("s3://") {
                Some(uri) => TrailSource::S3(uri.to_string()),
                None => TrailSource::LookupEvents,
            },
            role: env.role.spec(),
            organization: caller.account.clone(),
        },
        filter: keyguard_aws::org::AccountFilter {
            include: Vec::new(),
            exclude: env.exclude,
        },
        delivery: Delivery {
            out: None,
            s3_uri: env.s3_uri,
            email_to: env.recipients,
            sender: env.sender,
        },
        sdk,
        caller,
    };
    let r = &r;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            handle(r, event.payload, chrono::Utc::now())
                .await
                .map_err(Diagnostic::from)
        },
    ))
    .await
}
