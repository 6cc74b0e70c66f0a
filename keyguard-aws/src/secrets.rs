//! Secrets Manager: one secret per user, holding the user's current access key. Every call
//! keyguard makes to Secrets Manager is here.
//!
//! The secret keeps the aws-samples name (`Account_<account>_User_<user>_AccessKey`) so that a
//! migration keeps every consumer working. Its resource policy lets only the user and keyguard's
//! own role read it; public policies are blocked. The value is stored last, after the policy, so
//! a secret never holds a key that the wrong principals could read.

use aws_sdk_secretsmanager::operation::create_secret::CreateSecretError;
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
use aws_sdk_secretsmanager::operation::put_resource_policy::PutResourcePolicyError;
use aws_sdk_secretsmanager::types::Tag;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The secret's name for `user` in `account`: the aws-samples name
/// `Account_<account>_User_<user>_AccessKey` for every name without `,` or `=`. Secrets Manager
/// names allow IAM's `+=.@-_` but not `,`, so `,` becomes `=2C` and `=` itself `=3D`: every `=`
/// of the result starts an escape, so two IAM users never share a secret (`a,b` and `a=2Cb` are
/// both legal user names).
pub fn secret_name(account: &str, user: &str) -> String {
    let mut escaped = String::with_capacity(user.len());
    for c in user.chars() {
        match c {
            '=' => escaped.push_str("=3D"),
            ',' => escaped.push_str("=2C"),
            c => escaped.push(c),
        }
    }
    format!("Account_{account}_User_{escaped}_AccessKey")
}

/// The secret tag holding the IAM UserId the secret belongs to (written at creation; a secret
/// of another id is never reused, `crate::secret_owner`).
pub const USER_ID_TAG: &str = "keyguard:user-id";

/// What one secret costs a month: $0.40 a secret a month, prorated (AWS Secrets Manager
/// pricing, https://aws.amazon.com/secrets-manager/pricing/).
pub const MONTHLY_USD_PER_SECRET: f64 = 0.40;

/// One secret keyguard keeps (tagged `managed-by=keyguard`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeptSecret {
    /// Its name.
    pub name: String,
    /// When its value or policy last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_changed_date: Option<DateTime<Utc>>,
}

/// The secrets keyguard keeps in the account of `sm` (ListSecrets filtered on the
/// `managed-by=keyguard` tag, every page). `None` when the caller may not list secrets (a member
/// stack older than the permission): unknown, not zero.
pub async fn kept(sm: &aws_sdk_secretsmanager::Client) -> Result<Option<Vec<KeptSecret>>> {
    use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType};
    let filter =
        |key: FilterNameStringType, value: &str| Filter::builder().key(key).values(value).build();
    let mut out = Vec::new();
    let mut pages = sm
        .list_secrets()
        .filters(filter(FilterNameStringType::TagKey, "managed-by"))
        .filters(filter(FilterNameStringType::TagValue, "keyguard"))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = match page {
            Ok(p) => p,
            Err(e) => match Error::sdk("ListSecrets", e) {
                Error::AccessDenied { .. } => return Ok(None),
                other => return Err(other),
            },
        };
        out.extend(page.secret_list().iter().map(|s| KeptSecret {
            name: s.name().unwrap_or_default().to_string(),
            last_changed_date: s.last_changed_date().map(crate::time::to_chrono),
        }));
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Some(out))
}

/// A secret named as keyguard names a user's (`Account_<account>_User_<user>_AccessKey`, the
/// aws-samples solution's naming too) that does not carry keyguard's `managed-by` tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UntaggedSecret {
    /// Its name.
    pub name: String,
    /// When it was created.
    pub created: Option<DateTime<Utc>>,
}

/// The most ListSecrets pages [`untagged`] reads in one call.
pub const UNTAGGED_PAGES: usize = 10;

/// The secrets of the account of `sm` named as keyguard names a user's in `account` but not
/// tagged `managed-by=keyguard` (ListSecrets filtered on the name's prefix, every page): what
/// an earlier rotator, the aws-samples solution, left there.
pub async fn untagged(
    sm: &aws_sdk_secretsmanager::Client,
    account: &str,
) -> Result<Vec<UntaggedSecret>> {
    use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType};
    let prefix = format!("Account_{account}_User_");
    let mut pages = sm
        .list_secrets()
        .filters(
            Filter::builder()
                .key(FilterNameStringType::Name)
                .values(&prefix)
                .build(),
        )
        .into_paginator()
        .send();
    let mut out = Vec::new();
    let mut read = 0;
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| Error::sdk("ListSecrets", e))?;
        read += 1;
        out.extend(
            page.secret_list()
                .iter()
                // The name filter is a case-insensitive prefix match: keep the exact names.
                .filter(|s| s.name().is_some_and(|n| user_of(account, n).is_some()))
                .filter(|s| {
                    !s.tags()
                        .iter()
                        .any(|t| t.key() == Some("managed-by") && t.value() == Some("keyguard"))
                })
                .map(|s| UntaggedSecret {
                    name: s.name().unwrap_or_default().to_string(),
                    created: s.created_date().map(crate::time::to_chrono),
                }),
        );
        // An account can hold any number of secrets named so: a sweep reads at most this many
        // pages (1,000 secrets at ListSecrets' 100 a page) of them.
        if read >= UNTAGGED_PAGES {
            break;
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Tags the secret `name` as keyguard's for the user `user_id` (`managed-by=keyguard` and
/// [`USER_ID_TAG`], one TagResource): from now on it is counted, retained and reused as one of
/// keyguard's.
pub async fn tag_as_keyguards(
    sm: &aws_sdk_secretsmanager::Client,
    name: &str,
    user_id: &str,
) -> Result<()> {
    let tag = |k: &str, v: &str| {
        aws_sdk_secretsmanager::types::Tag::builder()
            .key(k)
            .value(v)
            .build()
    };
    sm.tag_resource()
        .secret_id(name)
        .tags(tag("managed-by", "keyguard"))
        .tags(tag(USER_ID_TAG, user_id))
        .send()
        .await
        .map_err(|e| Error::sdk("TagResource", e))?;
    Ok(())
}

/// How long a secret keyguard deletes can still be restored (`aws secretsmanager
/// restore-secret`): Secrets Manager's recovery window, 7 to 30 days.
pub const DELETE_RECOVERY_DAYS: i64 = 7;

/// Schedules the deletion of `user`'s secret in `account` after [`DELETE_RECOVERY_DAYS`] (the
/// owner installed the key; the secret would only cost $0.40 a month from now on).
pub async fn delete(sm: &aws_sdk_secretsmanager::Client, account: &str, user: &str) -> Result<()> {
    sm.delete_secret()
        .secret_id(secret_name(account, user))
        .recovery_window_in_days(DELETE_RECOVERY_DAYS)
        .send()
        .await
        .map_err(|e| Error::sdk("DeleteSecret", e))?;
    Ok(())
}

/// The IAM user whose secret `name` is in `account` (the inverse of [`secret_name`]); `None`
/// for a name keyguard would not give a secret.
pub fn user_of(account: &str, name: &str) -> Option<String> {
    let escaped = name
        .strip_prefix(&format!("Account_{account}_User_"))?
        .strip_suffix("_AccessKey")?;
    let mut user = String::with_capacity(escaped.len());
    let mut rest = escaped;
    while let Some(i) = rest.find('=') {
        user.push_str(&rest[..i]);
        match rest.get(i..i + 3) {
            Some("=2C") => user.push(','),
            Some("=3D") => user.push('='),
            _ => return None,
        }
        rest = &rest[i + 3..];
    }
    user.push_str(rest);
    Some(user)
}

/// [`kept`] in the account of `cfg`.
pub async fn kept_in(cfg: &aws_config::SdkConfig) -> Result<Option<Vec<KeptSecret>>> {
    kept(&aws_sdk_secretsmanager::Client::new(cfg)).await
}

/// The command an owner runs to read the new key (given in owner notices).
pub fn read_command(name: &str, region: &str) -> String {
    format!(
        "aws secretsmanager get-secret-value --region {region} --secret-id '{name}' --query SecretString --output text"
    )
}

/// A new access key, as stored. Its `Debug` never shows the secret.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StoredKey<'a> {
    /// The access key id.
    pub access_key_id: &'a str,
    /// The secret access key.
    #[serde(serialize_with = "expose")]
    pub secret_access_key: &'a SecretString,
    /// The IAM user name.
    pub user_name: &'a str,
    /// When IAM created the key (RFC 3339).
    pub create_date: String,
}

fn expose<S: serde::Serializer>(s: &&SecretString, ser: S) -> std::result::Result<S::Ok, S::Error> {
    ser.serialize_str(s.expose_secret())
}

/// Where and how to store secrets in one account.
#[derive(Debug, Clone)]
pub struct SecretTarget<'a> {
    /// The account.
    pub account: &'a str,
    /// The IAM user name.
    pub user_name: &'a str,
    /// The user's IAM UserId: the secret is tagged with it at creation
    /// ([`USER_ID_TAG`]), and reused only for that user.
    pub user_id: &'a str,
    /// Who may read the new key besides keyguard (the user itself by default; a CI role where
    /// configured; never the user after a leak).
    pub readers: &'a [String],
    /// keyguard's principal in the account (the other allowed reader).
    pub keyguard_arn: &'a str,
    /// Optional customer-managed KMS key for new secrets.
    pub kms_key_id: Option<&'a str>,
}

/// The resource policy: only `readers` and keyguard may read; everybody else is denied, so an
/// over-broad identity policy in the account does not expose the key.
pub fn resource_policy(readers: &[String], keyguard_arn: &str) -> String {
    let mut allowed: Vec<&str> = readers.iter().map(String::as_str).collect();
    allowed.push(keyguard_arn);
    allowed.dedup();
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadersAndKeyguardRead",
                "Effect": "Allow",
                "Principal": {"AWS": allowed},
                "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                "Resource": "*"
            },
            {
                "Sid": "NobodyElseReads",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": "*",
                "Condition": {"StringNotEquals": {"aws:PrincipalArn": allowed}}
            }
        ]
    })
    .to_string()
}

/// The readers of a user's new key from the configured reader templates (`SECRET_READERS`):
/// `self` is the user's own ARN (the aws-samples behaviour: whoever holds the old key can read
/// the new one), anything else a principal ARN in which `{account}` is the user's account. After
/// a leak (`leaked`) the user is never a reader.
pub fn readers(templates: &[String], account: &str, user_arn: &str, leaked: bool) -> Vec<String> {
    templates
        .iter()
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .filter_map(|t| match t {
            "self" if leaked => None,
            "self" => Some(user_arn.to_string()),
            arn => Some(arn.replace("{account}", account)),
        })
        .filter(|arn| !(leaked && arn == user_arn))
        .collect()
}

/// Stores `key` as the secret's current value: creates the secret (tags, KMS key) when it does
/// not exist, puts the resource policy, then the value (a new AWSCURRENT version when the secret
/// existed). Three calls. An error means the value may not be stored: the caller deletes the key.
pub async fn store(
    sm: &aws_sdk_secretsmanager::Client,
    target: &SecretTarget<'_>,
    key_id: &str,
    secret: &SecretString,
    created: DateTime<Utc>,
) -> Result<String> {
    let name = secret_name(target.account, target.user_name);
    let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
    let created_secret = sm
        .create_secret()
        .name(&name)
        .description(format!(
            "Access key of IAM user {} in {}, kept current by keyguard",
            target.user_name, target.account
        ))
        .set_kms_key_id(target.kms_key_id.map(str::to_string))
        .tags(tag("managed-by", "keyguard"))
        .tags(tag("keyguard:account", target.account))
        .tags(tag("keyguard:user", target.user_name))
        .tags(tag(USER_ID_TAG, target.user_id))
        .send()
        .await;
    match created_secret {
        Ok(_) => {}
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(CreateSecretError::ResourceExistsException(_))
            ) => {}
        // A secret of that name is scheduled for deletion (SECRET_DELETE_DAYS_AFTER_USE deleted
        // it once its key was installed): restore it and use it.
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(CreateSecretError::InvalidRequestException(_))
            ) =>
        {
            restore(sm, &name).await?;
        }
        Err(e) => return Err(Error::sdk("CreateSecret", e)),
    }
    let policy = || {
        sm.put_resource_policy()
            .secret_id(&name)
            .resource_policy(resource_policy(target.readers, target.keyguard_arn))
            .block_public_policy(true)
            .send()
    };
    match policy().await {
        Ok(_) => {}
        // The secret was scheduled for deletion (keyguard deletes a rotation's secret once its
        // key is installed, SECRET_DELETE_DAYS_AFTER_USE): restore it, then go on.
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(PutResourcePolicyError::InvalidRequestException(_))
            ) =>
        {
            restore(sm, &name).await?;
            policy()
                .await
                .map_err(|e| Error::sdk("PutResourcePolicy", e))?;
        }
        Err(e) => return Err(Error::sdk("PutResourcePolicy", e)),
    }
    let value = StoredKey {
        access_key_id: key_id,
        secret_access_key: secret,
        user_name: target.user_name,
        create_date: created.to_rfc3339(),
    };
    // The JSON holds the secret: it goes straight into a SecretString and into the request,
    // whose Debug output the SDK redacts.
    let json =
        SecretString::from(serde_json::to_string(&value).expect("a struct of strings serializes"));
    sm.put_secret_value()
        .secret_id(&name)
        .secret_string(json.expose_secret())
        .send()
        .await
        .map_err(|e| Error::sdk("PutSecretValue", e))?;
    Ok(name)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyIdOnly {
    access_key_id: String,
}

/// Cancels the scheduled deletion of the secret `name` (keyguard scheduled it once its key was
/// installed, SECRET_DELETE_DAYS_AFTER_USE), so that a rotation can use it again.
async fn restore(sm: &aws_sdk_secretsmanager::Client, name: &str) -> Result<()> {
    sm.restore_secret()
        .secret_id(name)
        .send()
        .await
        .map_err(|e| Error::sdk("RestoreSecret", e))?;
    Ok(())
}

/// The access key id the user's secret holds now; `None` when there is no secret (or no value).
/// Reads the value (keyguard's role may) and keeps only the id.
pub async fn stored_key_id(
    sm: &aws_sdk_secretsmanager::Client,
    account: &str,
    user_name: &str,
) -> Result<Option<String>> {
    let name = secret_name(account, user_name);
    match sm.get_secret_value().secret_id(&name).send().await {
        Ok(out) => {
            let Some(value) = out.secret_string() else {
                return Ok(None);
            };
            // Parse only the id; a value in another shape (not keyguard's) counts as none.
            Ok(serde_json::from_str::<KeyIdOnly>(value)
                .ok()
                .map(|v| v.access_key_id))
        }
        // No secret, or one scheduled for deletion: nothing stored.
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(GetSecretValueError::ResourceNotFoundException(_))
                    | Some(GetSecretValueError::InvalidRequestException(_))
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(Error::sdk("GetSecretValue", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_aws_samples_and_stay_valid() {
        assert_eq!(
            secret_name("111122223333", "ci+deploy@x.com"),
            "Account_111122223333_User_ci+deploy@x.com_AccessKey"
        );
        assert_eq!(
            secret_name("111122223333", "a,b"),
            "Account_111122223333_User_a=2Cb_AccessKey"
        );
        assert_eq!(
            secret_name("111122223333", "a=2Cb"),
            "Account_111122223333_User_a=3D2Cb_AccessKey"
        );
    }

    /// Every IAM user name over an alphabet holding both escapes' characters, up to 5
    /// characters (19,607 names), plus 20,000 pseudo-random names over IAM's whole alphabet up to
    /// its 64 characters: no two share a secret name, each is a valid Secrets Manager name, and
    /// names without `,` or `=` keep the aws-samples name.
    #[test]
    fn secret_names_are_injective_over_legal_user_names() {
        fn check(seen: &mut std::collections::HashMap<String, String>, user: &str) {
            let name = secret_name("111122223333", user);
            assert!(
                name.len() <= 512
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c)),
                "{name}"
            );
            if !user.contains([',', '=']) {
                assert_eq!(name, format!("Account_111122223333_User_{user}_AccessKey"));
            }
            assert_eq!(
                user_of("111122223333", &name).as_deref(),
                Some(user),
                "{name}"
            );
            if let Some(other) = seen.insert(name.clone(), user.to_string()) {
                assert_eq!(other, user, "{other:?} and {user:?} share {name}");
            }
        }
        let mut seen = std::collections::HashMap::new();
        let small: Vec<char> = "=,2C3Da".chars().collect();
        let mut names = vec![String::new()];
        for _ in 0..5 {
            names = names
                .iter()
                .flat_map(|n| small.iter().map(move |c| format!("{n}{c}")))
                .collect();
            for n in &names {
                check(&mut seen, n);
            }
        }
        let iam: Vec<char> = ('a'..='z')
            .chain('A'..='Z')
            .chain('0'..='9')
            .chain("+=,.@-_".chars())
            .collect();
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = 1 + (next() % 64) as usize;
            let user: String = (0..len)
                .map(|_| iam[(next() % iam.len() as u64) as usize])
                .collect();
            check(&mut seen, &user);
        }
    }

    #[test]
    fn the_stored_value_has_the_documented_shape() {
        let secret = SecretString::from("s3cr3t".to_string());
        let v = StoredKey {
            access_key_id: "AKIA1",
            secret_access_key: &secret,
            user_name: "u",
            create_date: "2026-01-01T00:00:00+00:00".into(),
        };
        let json: serde_json::Value = serde_json::to_value(&v).unwrap();
        assert_eq!(json["AccessKeyId"], "AKIA1");
        assert_eq!(json["SecretAccessKey"], "s3cr3t");
        assert_eq!(json["UserName"], "u");
        assert_eq!(json["CreateDate"], "2026-01-01T00:00:00+00:00");
    }

    #[test]
    fn the_policy_denies_everybody_else() {
        let p: serde_json::Value =
            serde_json::from_str(&resource_policy(&["arn:u".into()], "arn:r")).unwrap();
        assert_eq!(p["Statement"][1]["Effect"], "Deny");
        assert_eq!(
            p["Statement"][1]["Condition"]["StringNotEquals"]["aws:PrincipalArn"],
            serde_json::json!(["arn:u", "arn:r"])
        );
    }

    #[test]
    fn readers_follow_the_setting_and_never_include_a_leaked_keys_user() {
        let user = "arn:aws:iam::111122223333:user/ci";
        let ci = "arn:aws:iam::{account}:role/ci-deployer".to_string();
        assert_eq!(
            readers(&["self".into()], "111122223333", user, false),
            [user]
        );
        assert!(readers(&["self".into()], "111122223333", user, true).is_empty());
        assert_eq!(
            readers(&["self".into(), ci.clone()], "111122223333", user, true),
            ["arn:aws:iam::111122223333:role/ci-deployer"]
        );
        assert!(readers(&[user.into()], "111122223333", user, true).is_empty());
    }

    use aws_sdk_secretsmanager::operation::create_secret::CreateSecretOutput;
    use aws_sdk_secretsmanager::operation::put_resource_policy::PutResourcePolicyOutput;
    use aws_sdk_secretsmanager::operation::put_secret_value::{
        PutSecretValueError, PutSecretValueOutput,
    };
    use aws_sdk_secretsmanager::types::error::{
        EncryptionFailure, ResourceExistsException, ResourceNotFoundException,
    };
    use aws_sdk_secretsmanager::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    static READERS: std::sync::LazyLock<Vec<String>> =
        std::sync::LazyLock::new(|| vec!["arn:aws:iam::111122223333:user/u".to_string()]);

    fn target() -> SecretTarget<'static> {
        SecretTarget {
            account: "111122223333",
            user_name: "u",
            user_id: "AIDAU",
            readers: &READERS,
            keyguard_arn: "arn:aws:iam::111122223333:role/keyguard-member",
            kms_key_id: Some("alias/keys"),
        }
    }

    #[tokio::test]
    async fn an_existing_secret_gets_a_new_version_and_the_policy_comes_first() {
        let create = mock!(Client::create_secret)
            .match_requests(|r| r.kms_key_id() == Some("alias/keys") && r.secret_string().is_none())
            .then_error(|| {
                CreateSecretError::ResourceExistsException(
                    ResourceExistsException::builder().build(),
                )
            });
        let policy = mock!(Client::put_resource_policy)
            .match_requests(|r| r.block_public_policy() == Some(true))
            .then_output(|| PutResourcePolicyOutput::builder().build());
        let put = mock!(Client::put_secret_value)
            .match_requests(|r| {
                r.secret_string()
                    .is_some_and(|s| s.contains("\"AccessKeyId\":\"AKIA1\""))
            })
            .then_output(|| PutSecretValueOutput::builder().build());
        let sm = mock_client!(
            aws_sdk_secretsmanager,
            RuleMode::Sequential,
            [&create, &policy, &put]
        );
        let secret = SecretString::from("s3cr3t".to_string());
        let name = store(&sm, &target(), "AKIA1", &secret, Utc::now())
            .await
            .unwrap();
        assert_eq!(name, "Account_111122223333_User_u_AccessKey");
        assert_eq!(
            (create.num_calls(), policy.num_calls(), put.num_calls()),
            (1, 1, 1)
        );
    }

    #[tokio::test]
    async fn a_failed_store_is_an_error_without_the_secret() {
        let create =
            mock!(Client::create_secret).then_output(|| CreateSecretOutput::builder().build());
        let policy = mock!(Client::put_resource_policy)
            .then_output(|| PutResourcePolicyOutput::builder().build());
        let put = mock!(Client::put_secret_value).then_error(|| {
            PutSecretValueError::EncryptionFailure(
                EncryptionFailure::builder()
                    .message("KMS key disabled")
                    .build(),
            )
        });
        let sm = mock_client!(
            aws_sdk_secretsmanager,
            RuleMode::Sequential,
            [&create, &policy, &put]
        );
        let secret = SecretString::from("s3cr3t-value".to_string());
        let err = store(&sm, &target(), "AKIA1", &secret, Utc::now())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("PutSecretValue") && err.contains("KMS key disabled"),
            "{err}"
        );
        assert!(!err.contains("s3cr3t-value"));
    }

    #[tokio::test]
    async fn no_secret_means_no_stored_key() {
        let get = mock!(Client::get_secret_value).then_error(|| {
            GetSecretValueError::ResourceNotFoundException(
                ResourceNotFoundException::builder().build(),
            )
        });
        let sm = mock_client!(aws_sdk_secretsmanager, RuleMode::Sequential, [&get]);
        assert_eq!(stored_key_id(&sm, "111122223333", "u").await.unwrap(), None);
    }
}
