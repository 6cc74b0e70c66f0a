//! Migrating from the aws-samples solution: its secrets already carry keyguard's names
//! (`Account_<account>_User_<user>_AccessKey`), not its tags. With `ADOPT_AWS_SAMPLES_SECRETS`,
//! an account's run tags each such secret of an existing user as keyguard's, so that retention
//! (`SECRET_DELETE_DAYS_AFTER_USE`) and the report's count and cost include it. A secret is
//! adopted only for a user created no later than the secret (whole seconds, as the rotation's
//! own adoption: `user/secret_owner.rs`): a secret older than its user was another user's of the
//! same name, and is left alone.

use std::collections::HashMap;

use keyguard_core::UserRecord;
use tracing::{info, warn};

use crate::function::Remediator;

/// Adopts the account's untagged secrets of `users`; returns the note for the run's report
/// (`None` when there was nothing to adopt). A failure costs the adoption, never the run.
pub(crate) async fn adopt(
    r: &Remediator,
    iam: &aws_sdk_iam::Client,
    sm: &aws_sdk_secretsmanager::Client,
    account: &str,
    users: &[UserRecord],
    dry_run: bool,
) -> Option<String> {
    if !r.adopt_secrets || account == r.caller.account {
        return None;
    }
    let found = match keyguard_aws::secrets::untagged(sm, account).await {
        Ok(found) => found,
        Err(e) => {
            warn!(error = %e, "secrets to adopt not listed");
            return Some(format!("the aws-samples secrets were not listed: {e}"));
        }
    };
    if found.is_empty() {
        return None;
    }
    let by_name: HashMap<&str, &UserRecord> =
        users.iter().map(|u| (u.user.name.as_str(), u)).collect();
    let (mut adopted, mut left) = (0, 0);
    for secret in &found {
        let Some(user) = keyguard_aws::secrets::user_of(account, &secret.name)
            .and_then(|name| by_name.get(name.as_str()).copied())
        else {
            left += 1;
            continue;
        };
        // One GetUser for the user's creation time (the credential report's is not kept).
        let created = keyguard_aws::iam::user_created(iam, &user.user.name).await;
        let younger = match (secret.created, created) {
            (Some(s), Ok(Some(c))) => s.timestamp() >= c.timestamp(),
            _ => false,
        };
        if !younger {
            left += 1;
            continue;
        }
        if dry_run {
            adopted += 1;
            continue;
        }
        match keyguard_aws::secrets::tag_as_keyguards(sm, &secret.name, &user.user.user_id).await {
            Ok(()) => {
                info!(secret = %secret.name, "adopted");
                adopted += 1;
            }
            Err(e) => {
                warn!(secret = %secret.name, error = %e, "not adopted");
                left += 1;
            }
        }
    }
    Some(format!(
        "{}{adopted} secret(s) of the aws-samples solution adopted as keyguard's{}",
        if dry_run { "DryRun: would have: " } else { "" },
        if left > 0 {
            format!("; {left} left alone (no such user, or older than its user)")
        } else {
            String::new()
        }
    ))
}
