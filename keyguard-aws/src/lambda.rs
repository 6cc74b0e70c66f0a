//! What a Lambda bootstrap learns from its invocation instead of asking AWS at start-up: who it
//! runs as (the invoked function ARN names the account) and when it will be stopped (the
//! invocation's deadline). Cold starts make no network call.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_config::SdkConfig;
use tokio::sync::OnceCell;

use crate::error::Result;
use crate::sdk::Caller;

/// The deadline of an invocation (`Lambda-Runtime-Deadline-Ms`, milliseconds since the epoch) on
/// this process's monotonic clock.
pub fn deadline(deadline_ms: u64) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now_ms))
}

/// Who the function runs as, worked out once per process on its first invocation: from the
/// invoked function ARN and `execution_role` (`KEYGUARD_EXECUTION_ROLE`) when the deployment sets
/// it, which needs no call; otherwise from STS GetCallerIdentity, once.
pub async fn caller<'a>(
    cell: &'a OnceCell<Caller>,
    sdk: &SdkConfig,
    function_arn: &str,
    execution_role: Option<&str>,
) -> Result<&'a Caller> {
    cell.get_or_try_init(|| async {
        match execution_role.filter(|r| !r.trim().is_empty()) {
            Some(role) => Caller::of_lambda(function_arn, role),
            None => crate::sdk::caller(&aws_sdk_sts::Client::new(sdk)).await,
        }
    })
    .await
}
