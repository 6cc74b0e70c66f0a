//! Whose secret a name holds. Secrets are named after the user *name*, and a name outlives its
//! user: after `V` is renamed `V2`, a new user `V` would inherit the old secret, its policy and
//! its `AWSPREVIOUS` key. So keyguard tags each secret it creates with the user's id
//! ([`USER_ID_TAG`], IAM's stable `UserId`) and reuses a secret only when the tag is the user's
//! own; a secret from before the tag (an earlier keyguard, the aws-samples solution) is adopted
//! only when it is younger than the user. Every call here is to Secrets Manager.

use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretError;
use aws_sdk_secretsmanager::types::Tag;
use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::secrets::secret_name;
use crate::secrets::USER_ID_TAG as TAG;
use crate::time::to_chrono;

pub use crate::secrets::USER_ID_TAG;

/// Whose the secret of a user's name is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// There is no secret of that name: a rotation creates it.
    Nobody,
    /// The secret carries this user's id.
    This,
    /// The secret carries another user's id: never reused.
    Other(String),
    /// The secret has no id (made before the tag): its creation time, for the caller to compare
    /// with the user's.
    Untagged(Option<DateTime<Utc>>),
}

/// Who owns the secret named after `user_name` in `account` (DescribeSecret, one call; a secret
/// scheduled for deletion is described too).
pub async fn owner(
    sm: &aws_sdk_secretsmanager::Client,
    account: &str,
    user_name: &str,
    user_id: &str,
) -> Result<Owner> {
    let name = secret_name(account, user_name);
    let out = match sm.describe_secret().secret_id(&name).send().await {
        Ok(out) => out,
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(DescribeSecretError::ResourceNotFoundException(_))
            ) =>
        {
            return Ok(Owner::Nobody)
        }
        Err(e) => return Err(Error::sdk("DescribeSecret", e)),
    };
    let tagged = out
        .tags()
        .iter()
        .find(|t| t.key() == Some(TAG))
        .and_then(|t| t.value())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    Ok(match tagged {
        Some(id) if id == user_id => Owner::This,
        Some(other) => Owner::Other(other.to_string()),
        None => Owner::Untagged(out.created_date().map(to_chrono)),
    })
}

/// Tags the secret of `user_name` with `user_id`: an untagged secret adopted (TagResource).
pub async fn adopt(
    sm: &aws_sdk_secretsmanager::Client,
    account: &str,
    user_name: &str,
    user_id: &str,
) -> Result<()> {
    sm.tag_resource()
        .secret_id(secret_name(account, user_name))
        .tags(Tag::builder().key(TAG).value(user_id).build())
        .send()
        .await
        .map_err(|e| Error::sdk("TagResource", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput;
    use aws_sdk_secretsmanager::types::error::ResourceNotFoundException;
    use aws_sdk_secretsmanager::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    fn described(tag: Option<&str>) -> DescribeSecretOutput {
        let mut out = DescribeSecretOutput::builder()
            .name("Account_111122223333_User_v_AccessKey")
            .created_date(aws_smithy_types::DateTime::from_secs(1_700_000_000))
            .tags(Tag::builder().key("managed-by").value("keyguard").build());
        if let Some(id) = tag {
            out = out.tags(Tag::builder().key(USER_ID_TAG).value(id).build());
        }
        out.build()
    }

    #[tokio::test]
    async fn a_secret_is_the_users_only_by_its_id() {
        let mine = mock!(Client::describe_secret).then_output(|| described(Some("AIDAV")));
        let other = mock!(Client::describe_secret).then_output(|| described(Some("AIDAOLD")));
        let legacy = mock!(Client::describe_secret).then_output(|| described(None));
        let none = mock!(Client::describe_secret).then_error(|| {
            DescribeSecretError::ResourceNotFoundException(
                ResourceNotFoundException::builder().build(),
            )
        });
        let sm = mock_client!(
            aws_sdk_secretsmanager,
            RuleMode::Sequential,
            [&mine, &other, &legacy, &none]
        );
        let ask = || owner(&sm, "111122223333", "v", "AIDAV");
        assert_eq!(ask().await.unwrap(), Owner::This);
        assert_eq!(ask().await.unwrap(), Owner::Other("AIDAOLD".into()));
        assert_eq!(
            ask().await.unwrap(),
            Owner::Untagged(DateTime::from_timestamp(1_700_000_000, 0))
        );
        assert_eq!(ask().await.unwrap(), Owner::Nobody);
    }
}
