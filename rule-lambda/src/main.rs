//! The `rule-lambda` bootstrap: settings from the environment, SDK clients once, then the handler.

use clap::Parser;
use keyguard_aws::inventory::ReportPolling;
use keyguard_aws::settings_env::{RoleArgs, SettingsArgs};
use lambda_runtime::{service_fn, Diagnostic, Error, LambdaEvent};
use rule_lambda::{handle_payload, RuleContext};

#[derive(Parser)]
#[command(about = "keyguard's AWS Config custom rule (a Lambda bootstrap)")]
struct Env {
    #[command(flatten)]
    settings: SettingsArgs,
    #[command(flatten)]
    role: RoleArgs,
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let env = Env::parse();
    let settings = env.settings.settings()?;
    let sdk = keyguard_aws::sdk::load().await;
    let caller = keyguard_aws::sdk::caller(&aws_sdk_sts::Client::new(&sdk)).await?;
    let ctx = RuleContext {
        sdk,
        caller,
        settings,
        role: env.role.spec(),
        polling: ReportPolling::default(),
    };
    let ctx = &ctx;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            handle_payload(ctx, event.payload, chrono::Utc::now())
                .await
                .map_err(Diagnostic::from)
        },
    ))
    .await
}
