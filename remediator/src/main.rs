//! The `remediator` bootstrap: settings from the environment, SDK clients once, then the handler.

use clap::Parser;
use keyguard_aws::inventory::ReportPolling;
use keyguard_aws::settings_env::{RoleArgs, SettingsArgs};
use lambda_runtime::{service_fn, Diagnostic, Error, LambdaEvent};
use remediator::{handle, NoticeArgs, Remediator};

#[derive(Parser)]
#[command(about = "keyguard's remediator (a Lambda bootstrap)")]
struct Env {
    #[command(flatten)]
    settings: SettingsArgs,
    #[command(flatten)]
    role: RoleArgs,
    #[command(flatten)]
    notices: NoticeArgs,
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let env = Env::parse();
    let settings = env.settings.settings()?;
    let sdk = keyguard_aws::sdk::load().await;
    let caller = keyguard_aws::sdk::caller(&aws_sdk_sts::Client::new(&sdk)).await?;
    let r = Remediator {
        sdk,
        caller,
        settings,
        role: env.role.spec(),
        polling: ReportPolling::default(),
        notices: env.notices.config()?,
        kms_key_id: env.notices.secret_kms_key_id.clone(),
    };
    let r = &r;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            handle(r, event.payload, chrono::Utc::now())
                .await
                .and_then(remediator::Summary::into_result)
                .map_err(Diagnostic::from)
        },
    ))
    .await
}
