//! The `remediator` bootstrap: settings from the environment and the SDK configuration once (no
//! network call at start-up), then the handler. Who the function runs as comes from its first
//! invocation's function ARN; each invocation's deadline bounds its work.

use clap::Parser;
use keyguard_aws::sdk::Caller;
use keyguard_aws::settings_env::{RoleArgs, SettingsArgs};
use lambda_runtime::{service_fn, Diagnostic, Error, LambdaEvent};
use remediator::{handle_invocation, Answer, Invocation, NoticeArgs, Remediator, ScaleArgs};
use tokio::sync::OnceCell;

#[derive(Parser)]
#[command(about = "keyguard's remediator (a Lambda bootstrap)")]
struct Env {
    #[command(flatten)]
    settings: SettingsArgs,
    #[command(flatten)]
    role: RoleArgs,
    #[command(flatten)]
    notices: NoticeArgs,
    #[command(flatten)]
    scale: ScaleArgs,
    /// Accounts the sweep never touches (comma-separated).
    #[arg(long, env = "EXCLUDED_ACCOUNTS", value_delimiter = ',')]
    excluded_accounts: Vec<String>,
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
    let notices = env.notices.config()?;
    let caller = OnceCell::new();
    let (env, sdk, caller, settings, notices) = (&env, &sdk, &caller, &settings, &notices);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let me: &Caller = keyguard_aws::lambda::caller(
                caller,
                sdk,
                &event.context.invoked_function_arn,
                env.execution_role.as_deref(),
            )
            .await
            .map_err(|e| Diagnostic::from(remediator::Error::from(e)))?;
            let mut r = Remediator::new(sdk.clone(), me.clone(), settings.clone(), env.role.spec());
            r.notices = notices.clone();
            r.kms_key_id = env.notices.secret_kms_key_id.clone();
            r.secret_readers = env.notices.secret_readers.clone();
            r.secret_delete_after_use_days = env.notices.secret_delete_days_after_use;
            r.adopt_secrets = env.notices.adopt_aws_samples_secrets;
            r.exposed_response = env.notices.exposed_key_response;
            r.key_usage = env.notices.key_usage;
            env.scale.apply(&mut r);
            r.filter.exclude = env
                .excluded_accounts
                .iter()
                .map(|a| a.trim().to_string())
                .filter(|a| !a.is_empty())
                .collect();
            let inv = Invocation {
                now: chrono::Utc::now(),
                deadline: Some(keyguard_aws::lambda::deadline(event.context.deadline)),
            };
            match handle_invocation(&r, event.payload, inv).await {
                Ok(Answer::Summary(s)) => s.into_result().map(Answer::Summary),
                Ok(Answer::Requested(q)) => q.into_result().map(Answer::Requested),
                other => other,
            }
            .map_err(Diagnostic::from)
        },
    ))
    .await
}
