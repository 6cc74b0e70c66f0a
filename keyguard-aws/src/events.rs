//! EventBridge: keyguard's own events (`PutEvents`, ten entries a call).

use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use crate::error::{Error, Result};

/// One event keyguard publishes.
#[derive(Debug, Clone)]
pub struct Event {
    /// `source` (keyguard's events use `keyguard`).
    pub source: String,
    /// `detail-type`.
    pub detail_type: String,
    /// The ARNs the event is about.
    pub resources: Vec<String>,
    /// The `detail` object, as JSON text.
    pub detail: String,
}

/// PutEvents of `events` to `bus`, ten a call (EventBridge's limit). Returns how many entries
/// EventBridge refused.
pub async fn put_events(
    client: &aws_sdk_eventbridge::Client,
    bus: &str,
    events: &[Event],
) -> Result<usize> {
    let mut refused = 0;
    for chunk in events.chunks(10) {
        let entries = chunk
            .iter()
            .map(|e| {
                PutEventsRequestEntry::builder()
                    .source(&e.source)
                    .detail_type(&e.detail_type)
                    .event_bus_name(bus)
                    .set_resources(Some(e.resources.clone()))
                    .detail(&e.detail)
                    .build()
            })
            .collect();
        let out = client
            .put_events()
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| Error::sdk("PutEvents", e))?;
        refused += out.failed_entry_count().max(0) as usize;
    }
    Ok(refused)
}
