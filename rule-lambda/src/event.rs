//! The `invokingEvent` of a Config rule invocation, typed on `messageType`.

use std::collections::BTreeMap;

use aws_sdk_config::types::ResourceType;
use chrono::{DateTime, Utc};
use keyguard_aws::{to_chrono, to_smithy};
use keyguard_core::User;
use serde::Deserialize;

use crate::error::{Error, Result};

/// The invoking event, by message type. Any other `messageType` is an error naming it.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "messageType")]
pub enum InvokingEvent {
    /// A resource changed; the item is in the event.
    #[serde(
        rename = "ConfigurationItemChangeNotification",
        rename_all = "camelCase"
    )]
    Change {
        /// The changed item.
        configuration_item: ConfigurationItem,
    },
    /// A resource changed but the item was too large for the event: only a summary.
    #[serde(
        rename = "OversizedConfigurationItemChangeNotification",
        rename_all = "camelCase"
    )]
    Oversized {
        /// The item's summary (its configuration must be fetched).
        configuration_item_summary: ConfigurationItem,
    },
    /// The periodic trigger.
    #[serde(rename = "ScheduledNotification", rename_all = "camelCase")]
    Scheduled {
        /// The rule's account.
        aws_account_id: Option<String>,
        /// When Config triggered the evaluation: the ordering timestamp of its results.
        notification_creation_time: DateTime<Utc>,
    },
}

impl InvokingEvent {
    /// Parses the `invokingEvent` JSON string.
    pub fn parse(raw: &str) -> Result<Self> {
        serde_json::from_str(raw).map_err(|e| Error::MalformedEvent(format!("invokingEvent: {e}")))
    }

    /// The message type, as Config spells it.
    pub fn message_type(&self) -> &'static str {
        match self {
            InvokingEvent::Change { .. } => "ConfigurationItemChangeNotification",
            InvokingEvent::Oversized { .. } => "OversizedConfigurationItemChangeNotification",
            InvokingEvent::Scheduled { .. } => "ScheduledNotification",
        }
    }

    /// The account the event names, if any.
    pub fn account(&self) -> Option<&str> {
        match self {
            InvokingEvent::Change {
                configuration_item: i,
            }
            | InvokingEvent::Oversized {
                configuration_item_summary: i,
            } => i.aws_account_id.as_deref(),
            InvokingEvent::Scheduled { aws_account_id, .. } => aws_account_id.as_deref(),
        }
    }
}

/// A configuration item (or an oversized item's summary, which lacks `configuration`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationItem {
    /// When Config captured the item: the ordering timestamp of the evaluation.
    #[serde(rename = "configurationItemCaptureTime")]
    pub capture_time: DateTime<Utc>,
    /// `OK`, `ResourceDiscovered`, `ResourceNotRecorded`, `ResourceDeleted`,
    /// `ResourceDeletedNotRecorded`.
    #[serde(rename = "configurationItemStatus")]
    pub status: String,
    /// `AWS::IAM::User` for keyguard's rule.
    pub resource_type: String,
    /// The UserId.
    pub resource_id: String,
    /// The user name.
    #[serde(default)]
    pub resource_name: String,
    /// The item's account.
    #[serde(default)]
    pub aws_account_id: Option<String>,
    /// The resource's configuration (absent from summaries, null for deleted items).
    #[serde(default)]
    pub configuration: Option<serde_json::Value>,
    /// The resource's tags as Config records them.
    #[serde(default)]
    pub tags: Option<BTreeMap<String, String>>,
}

/// The fields of an IAM user's configuration keyguard reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IamUserConfiguration {
    user_name: String,
    user_id: String,
    arn: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    group_list: Vec<String>,
    #[serde(default)]
    tags: Vec<ConfigTag>,
}

#[derive(Debug, Deserialize)]
struct ConfigTag {
    key: String,
    value: String,
}

impl ConfigurationItem {
    /// True for a deleted resource.
    pub fn is_deleted(&self) -> bool {
        matches!(
            self.status.as_str(),
            "ResourceDeleted" | "ResourceDeletedNotRecorded"
        )
    }

    /// The IAM user the item describes; `None` when the item carries no configuration.
    pub fn user(&self) -> Result<Option<User>> {
        let Some(conf) = self.configuration.as_ref().filter(|c| !c.is_null()) else {
            return Ok(None);
        };
        let c: IamUserConfiguration = serde_json::from_value(conf.clone()).map_err(|e| {
            Error::MalformedEvent(format!(
                "configuration of {} is not an IAM user: {e}",
                self.resource_id
            ))
        })?;
        let tags = match &self.tags {
            Some(map) if !map.is_empty() => map.clone(),
            _ => c.tags.into_iter().map(|t| (t.key, t.value)).collect(),
        };
        Ok(Some(User {
            name: c.user_name,
            user_id: c.user_id,
            arn: c.arn,
            path: c.path.unwrap_or_else(|| "/".into()),
            groups: c.group_list,
            tags,
        }))
    }
}

/// Fetches an oversized item's configuration with GetResourceConfigHistory (the version captured
/// at the summary's time). Without history the summary comes back unchanged, and the handler asks
/// IAM instead.
pub async fn fetch_item(
    config: &aws_sdk_config::Client,
    summary: &ConfigurationItem,
) -> Result<ConfigurationItem> {
    use aws_sdk_config::operation::get_resource_config_history::GetResourceConfigHistoryError;
    let out = match config
        .get_resource_config_history()
        .resource_type(ResourceType::from(summary.resource_type.as_str()))
        .resource_id(&summary.resource_id)
        .later_time(to_smithy(summary.capture_time))
        .limit(1)
        .send()
        .await
    {
        Ok(out) => out,
        // Not recorded (recording off for IAM, or already gone): IAM still knows.
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(GetResourceConfigHistoryError::ResourceNotDiscoveredException(_))
            ) =>
        {
            tracing::warn!(resource = %summary.resource_id, "resource not discovered by Config; reading the user from IAM");
            return Ok(summary.clone());
        }
        Err(e) => return Err(keyguard_aws::Error::sdk("GetResourceConfigHistory", e).into()),
    };
    let Some(item) = out.configuration_items().first() else {
        tracing::warn!(resource = %summary.resource_id, "no configuration history; reading the user from IAM");
        return Ok(summary.clone());
    };
    let configuration = match item.configuration() {
        Some(text) => Some(serde_json::from_str(text).map_err(|e| {
            Error::MalformedEvent(format!(
                "configuration history of {}: {e}",
                summary.resource_id
            ))
        })?),
        None => None,
    };
    Ok(ConfigurationItem {
        capture_time: item
            .configuration_item_capture_time()
            .map(to_chrono)
            .unwrap_or(summary.capture_time),
        status: item
            .configuration_item_status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|| summary.status.clone()),
        resource_type: summary.resource_type.clone(),
        resource_id: summary.resource_id.clone(),
        resource_name: item
            .resource_name()
            .unwrap_or(&summary.resource_name)
            .to_string(),
        aws_account_id: summary.aws_account_id.clone(),
        configuration,
        tags: item
            .tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
    })
}
