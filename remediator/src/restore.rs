//! `restore`: the incident runbook's "pipeline X broke after its old key was disabled".

use chrono::{DateTime, Utc};
use keyguard_aws::iam;
use keyguard_aws::inventory::{read_keys_live, user_by_name};
use keyguard_aws::sdk::for_account;
use keyguard_core::{
    mask_key_id, restorable, KeyStatus, Restorable, DISABLED_TAG_PREFIX, RESTORED_TAG_PREFIX,
};
use tracing::info;

use crate::notices::day;
use crate::{ActionKind, ActionRecord, Error, Outcome, Remediator, Result};

/// Re-enables a disabled key still inside its recovery grace (the incident runbook: "pipeline X
/// broke after the key was disabled"), and records the restore so that the key gets a fresh
/// installation grace before keyguard disables it again. `dry_run` only checks.
pub async fn restore(
    r: &Remediator,
    account: &str,
    user_name: &str,
    key_id: &str,
    dry_run: bool,
    now: DateTime<Utc>,
) -> Result<ActionRecord> {
    let cfg = for_account(&r.sdk, &r.caller, account, &r.role).await?;
    let client = aws_sdk_iam::Client::new(&cfg);
    let user = user_by_name(&client, user_name)
        .await?
        .ok_or_else(|| Error::NotFound(format!("user {user_name:?} in {account}")))?;
    let keys = read_keys_live(&client, user_name)
        .await?
        .ok_or_else(|| Error::NotFound(format!("user {user_name:?} in {account}")))?;
    let delete_due = match restorable(&user, &keys, key_id, &r.settings, now) {
        Restorable::Yes { delete_due } => delete_due,
        Restorable::No(why) => return Err(Error::Refused(why)),
    };
    let until = now + chrono::Duration::days(r.settings.installation_grace_period.into());
    let why = format!(
        "re-enabled by an operator{}; keyguard will not disable it before {}",
        delete_due
            .map(|d| format!(" (it was to be deleted {})", day(d)))
            .unwrap_or_default(),
        day(until)
    );
    if !dry_run {
        iam::set_key_status(&client, user_name, key_id, KeyStatus::Active).await?;
        let restored = [(format!("{RESTORED_TAG_PREFIX}{key_id}"), now.to_rfc3339())];
        iam::tag_user(&client, user_name, &restored.into_iter().collect()).await?;
        iam::untag_user(
            &client,
            user_name,
            &[format!("{DISABLED_TAG_PREFIX}{key_id}")],
        )
        .await?;
    }
    info!(account, user = user_name, key = %mask_key_id(key_id), dry_run, "restore");
    Ok(ActionRecord {
        user: user_name.to_string(),
        key: mask_key_id(key_id),
        action: ActionKind::Restore,
        outcome: if dry_run {
            Outcome::Preview
        } else {
            Outcome::Done
        },
        date: now,
        why,
        secret_name: None,
    })
}
