//! IAM writes: every change keyguard makes to IAM (access keys and keyguard's user tags) is one
//! of these functions. The reads are in [`crate::inventory`].

use std::collections::BTreeMap;

use aws_sdk_iam::types::{StatusType, Tag};
use chrono::{DateTime, Utc};
use keyguard_core::KeyStatus;
use secrecy::SecretString;

use crate::error::{Error, Result};
use crate::time::to_chrono;

/// A key IAM just created. The secret exists only here, on its way to Secrets Manager; its
/// `Debug` is redacted.
#[derive(Debug)]
pub struct CreatedKey {
    /// The access key id.
    pub id: String,
    /// The secret access key, shown by IAM this once.
    pub secret: SecretString,
    /// When IAM created it.
    pub created: DateTime<Utc>,
}

/// CreateAccessKey for `user`. `now` stands in for a missing CreateDate.
pub async fn create_access_key(
    iam: &aws_sdk_iam::Client,
    user: &str,
    now: DateTime<Utc>,
) -> Result<CreatedKey> {
    let out = iam
        .create_access_key()
        .user_name(user)
        .send()
        .await
        .map_err(|e| Error::sdk("CreateAccessKey", e))?;
    let Some(key) = out.access_key else {
        return Err(Error::Api {
            operation: "CreateAccessKey",
            code: None,
            message: "the response holds no key".into(),
            source: None,
        });
    };
    Ok(CreatedKey {
        id: key.access_key_id().to_string(),
        created: key.create_date().map(to_chrono).unwrap_or(now),
        secret: SecretString::from(key.secret_access_key().to_string()),
    })
}

/// When IAM created the user `user` (GetUser); `None` when it does not say.
pub async fn user_created(iam: &aws_sdk_iam::Client, user: &str) -> Result<Option<DateTime<Utc>>> {
    let out = iam
        .get_user()
        .user_name(user)
        .send()
        .await
        .map_err(|e| Error::sdk("GetUser", e))?;
    Ok(out.user().map(|u| to_chrono(u.create_date())))
}

/// UpdateAccessKey: sets the key Active or Inactive.
pub async fn set_key_status(
    iam: &aws_sdk_iam::Client,
    user: &str,
    key_id: &str,
    status: KeyStatus,
) -> Result<()> {
    let status = match status {
        KeyStatus::Active => StatusType::Active,
        KeyStatus::Inactive => StatusType::Inactive,
    };
    iam.update_access_key()
        .user_name(user)
        .access_key_id(key_id)
        .status(status)
        .send()
        .await
        .map_err(|e| Error::sdk("UpdateAccessKey", e))?;
    Ok(())
}

/// DeleteAccessKey.
pub async fn delete_access_key(iam: &aws_sdk_iam::Client, user: &str, key_id: &str) -> Result<()> {
    iam.delete_access_key()
        .user_name(user)
        .access_key_id(key_id)
        .send()
        .await
        .map_err(|e| Error::sdk("DeleteAccessKey", e))?;
    Ok(())
}

/// TagUser with every `(key, value)` of `tags` in one call; nothing when empty.
pub async fn tag_user(
    iam: &aws_sdk_iam::Client,
    user: &str,
    tags: &BTreeMap<String, String>,
) -> Result<()> {
    if tags.is_empty() {
        return Ok(());
    }
    let tags = tags
        .iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .expect("key and value are set")
        })
        .collect();
    iam.tag_user()
        .user_name(user)
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(|e| Error::sdk("TagUser", e))?;
    Ok(())
}

/// UntagUser of every key in `keys` in one call; nothing when empty.
pub async fn untag_user(iam: &aws_sdk_iam::Client, user: &str, keys: &[String]) -> Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    iam.untag_user()
        .user_name(user)
        .set_tag_keys(Some(keys.to_vec()))
        .send()
        .await
        .map_err(|e| Error::sdk("UntagUser", e))?;
    Ok(())
}
