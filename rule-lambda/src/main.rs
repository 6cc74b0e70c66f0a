//! The `rule-lambda` bootstrap, deployed in every account (deploy/member-role.yaml): settings from
//! the environment and the SDK configuration once (no network call at start-up), then the
//! handler. Who the function runs as comes from its first invocation's function ARN.

use clap::Parser;
use keyguard_aws::inventory::ReportPolling;
use keyguard_aws::settings_env::{RoleArgs, SettingsArgs};
use lambda_runtime::{service_fn, Diagnostic, Error, LambdaEvent};
use rule_lambda::{handle_payload, RuleContext};
use tokio::sync::OnceCell;

#[derive(Parser)]
#[command(about = "keyguard's AWS Config custom rule (a Lambda bootstrap)")]
struct Env {
    #[command(flatten)]
    settings: SettingsArgs,
    #[command(flatten)]
    role: RoleArgs,
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
            .map_err(|e| Diagnostic::from(rule_lambda::Error::from(e)))?;
            let ctx = RuleContext {
                sdk: sdk.clone(),
                caller: me.clone(),
                settings: settings.clone(),
                role: env.role.spec(),
                polling: ReportPolling::default(),
            };
            handle_payload(&ctx, event.payload, chrono::Utc::now())
                .await
                .map_err(Diagnostic::from)
        },
    ))
    .await
}
