//! keyguard's EventBridge events: one `keyguard key action` event per step of a run (with
//! `EVENT_BUS` set), for chat, tickets and the operator's own rules.

use chrono::{DateTime, Utc};
use keyguard_core::Account;
use serde::Serialize;

use crate::error::Result;
use crate::function::Remediator;
use crate::summary::{ActionKind, ActionRecord, Outcome};

/// The EventBridge `detail` of one action.
#[derive(Debug, Serialize)]
struct EventDetail<'a> {
    account: &'a str,
    user: &'a str,
    key: &'a str,
    action: ActionKind,
    outcome: &'a Outcome,
    date: DateTime<Utc>,
    why: &'a str,
    dry_run: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_name: Option<&'a str>,
}

/// Publishes one `keyguard key action` event per record to `bus` (source `keyguard`). Returns
/// how many entries EventBridge refused.
pub async fn publish(
    events: &aws_sdk_eventbridge::Client,
    bus: &str,
    account: &str,
    records: &[ActionRecord],
    dry_run: bool,
) -> Result<usize> {
    let entries = records
        .iter()
        .map(|r| {
            let detail = EventDetail {
                account,
                user: &r.user,
                key: &r.key,
                action: r.action,
                outcome: &r.outcome,
                date: r.date,
                why: &r.why,
                dry_run,
                secret_name: r.secret_name.as_deref(),
            };
            keyguard_aws::events::Event {
                source: "keyguard".into(),
                detail_type: "keyguard key action".into(),
                resources: vec![format!("arn:aws:iam::{account}:user/{}", r.user)],
                detail: serde_json::to_string(&detail).expect("plain data serializes"),
            }
        })
        .collect::<Vec<_>>();
    Ok(keyguard_aws::events::put_events(events, bus, &entries).await?)
}

/// One `keyguard key action` event per record of the account (with `EVENT_BUS` set). Returns
/// notes for the report.
pub(crate) async fn publish_events(
    r: &Remediator,
    account: &Account,
    actions: &[ActionRecord],
    preview: bool,
) -> Vec<String> {
    let Some(bus) = &r.notices.event_bus else {
        return vec![];
    };
    if actions.is_empty() {
        return vec![];
    }
    let events = aws_sdk_eventbridge::Client::new(&r.sdk);
    match publish(&events, bus, &account.id, actions, preview).await {
        Ok(0) => vec![],
        Ok(refused) => vec![format!("EventBridge refused {refused} event(s)")],
        Err(e) => vec![format!("events not published: {e}")],
    }
}
