//! `restore`: the incident runbook's "pipeline X broke after its old key was disabled".

use chrono::{DateTime, Utc};
use keyguard_aws::iam;
use keyguard_aws::inventory::{read_keys_live, user_by_name};
use keyguard_aws::sdk::for_account;
use keyguard_core::{
    mask_key_id, restorable, with_records, Account, KeyStatus, Restorable, DISABLED_TAG_PREFIX,
    RESTORED_TAG_PREFIX,
};
use tracing::info;

use crate::email_templates::day;
use crate::error::{Error, Result};
use crate::function::Remediator;
use crate::key_events::publish_events;
use crate::lease::{self, Taken};
use crate::requests::Mode;
use crate::summary::{AccountReport, ActionKind, ActionRecord, Outcome, Summary};
use crate::user_records;

/// Re-enables a disabled key still inside its recovery grace (the incident runbook: "pipeline X
/// broke after the key was disabled"), and records the restore so that the key gets a fresh
/// installation grace before keyguard disables it again. `dry_run` only checks.
///
/// With writes it holds the user's lease (a sweep cannot disable the key again between the two
/// writes), decides on keyguard's records (not the user's tags), and writes the record before it
/// enables the key: a run that sees the key Active also sees that it was restored.
pub async fn restore(
    r: &Remediator,
    account: &str,
    user_name: &str,
    key_id: &str,
    dry_run: bool,
    now: DateTime<Utc>,
) -> Result<ActionRecord> {
    let lease = match (&r.state, dry_run) {
        (Some(table), false) => {
            match lease::take(r, table, account, user_name, &lease::holder_id()).await? {
                Taken::Held(l) => Some(l),
                Taken::Busy { holder, .. } => {
                    return Err(Error::Refused(format!(
                        "another keyguard run ({holder}) is working on {user_name:?}; try again in a minute"
                    )))
                }
            }
        }
        (None, false) if !r.no_lease => {
            return Err(Error::Refused(
                "no state table: restore writes only under the user's lease (--state-table, or \
                 --no-lease when nothing else runs)"
                    .into(),
            ))
        }
        _ => None,
    };
    let done = restore_held(r, lease.as_ref(), account, user_name, key_id, dry_run, now).await;
    if let (Some(table), Some(lease)) = (&r.state, &lease) {
        let _ = lease::release(table, lease).await; // it lapses on its own otherwise
    }
    let record = done?;
    if !dry_run {
        // Like every other step: one `keyguard key action` event (with EVENT_BUS).
        let account = Account {
            id: account.to_string(),
            name: String::new(),
            email: None,
        };
        for note in publish_events(r, &account, std::slice::from_ref(&record), false).await {
            tracing::warn!(account = %account.id, "{note}");
        }
    }
    Ok(record)
}

/// The manual event's `restore` (an operator's direct invocation of the remediator): the same
/// restore as `keyguard restore`, answered as a one-account run.
pub(crate) async fn restore_request(
    r: &Remediator,
    account: String,
    user: String,
    key: String,
    mode: Mode,
    now: DateTime<Utc>,
) -> Result<Summary> {
    let dry_run = r.dry_run(mode);
    let record = restore(r, &account, &user, &key, dry_run, now).await?;
    Ok(Summary {
        dry_run,
        at: now,
        accounts: vec![AccountReport {
            account,
            users: 0,
            examined: 1,
            actions: vec![record],
            ..AccountReport::default()
        }],
        notes: vec![],
    })
}

async fn restore_held(
    r: &Remediator,
    lease: Option<&lease::Lease>,
    account: &str,
    user_name: &str,
    key_id: &str,
    dry_run: bool,
    now: DateTime<Utc>,
) -> Result<ActionRecord> {
    let cfg = for_account(&r.sdk, &r.caller, account, &r.role).await?;
    let client = aws_sdk_iam::Client::new(&cfg);
    let mut user = user_by_name(&client, user_name)
        .await?
        .ok_or_else(|| Error::NotFound(format!("user {user_name:?} in {account}")))?;
    let kept = match &r.state {
        Some(table) => {
            let kept = user_records::read(table, account, user_name).await?;
            user = with_records(&user, &kept);
            Some(kept)
        }
        None => None,
    };
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
        let restored_key = format!("{RESTORED_TAG_PREFIX}{key_id}");
        let disabled_key = format!("{DISABLED_TAG_PREFIX}{key_id}");
        if let (Some(table), Some(mut kept)) = (&r.state, kept) {
            let lease = lease.ok_or_else(|| {
                Error::Internal("keyguard's records are written only under the user's lease".into())
            })?;
            kept.remove(&disabled_key);
            kept.insert(restored_key.clone(), now.to_rfc3339());
            user_records::write(table, lease, &kept, now).await?;
        }
        iam::set_key_status(&client, user_name, key_id, KeyStatus::Active).await?;
        let restored = [(restored_key, now.to_rfc3339())];
        iam::tag_user(&client, user_name, &restored.into_iter().collect()).await?;
        iam::untag_user(&client, user_name, &[disabled_key]).await?;
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
        usage: None,
    })
}
