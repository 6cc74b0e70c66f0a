//! One `SdkConfig` for the whole run, and AssumeRole into member accounts.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_types::sdk_config::SharedCredentialsProvider;

use crate::error::{Error, Result};

/// keyguard's retry policy for every client: the SDK's standard strategy (exponential backoff with
/// full jitter, throttling and transient errors retried) with more attempts than the default 3,
/// because an org-wide run makes bursts of IAM calls that IAM throttles at low rates.
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(8)
        .with_initial_backoff(Duration::from_millis(200))
        .with_max_backoff(Duration::from_secs(20))
}

/// Loads the SDK configuration from the environment (credentials chain, `AWS_REGION`,
/// `AWS_ENDPOINT_URL`, profiles) with keyguard's retry policy. IAM, Organizations and CloudTrail's
/// IAM events live in us-east-1, so that is the region when none is configured.
pub async fn load() -> SdkConfig {
    let region =
        aws_config::meta::region::RegionProviderChain::default_provider().or_else("us-east-1");
    aws_config::defaults(BehaviorVersion::latest())
        .region(region)
        .retry_config(retry_config())
        .load()
        .await
}

/// Who the base credentials belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The caller's account id.
    pub account: String,
    /// The partition (`aws`, `aws-us-gov`, `aws-cn`), taken from the caller's ARN.
    pub partition: String,
    /// The caller's ARN (`…:assumed-role/<role>/<session>` in a Lambda).
    pub arn: String,
}

impl Caller {
    /// The ARN of the IAM principal keyguard acts as in `account`: the member role there, or in
    /// the caller's own account the caller's role (or user). The secrets' resource policies name
    /// it. A role's path is not visible in an assumed-role ARN: deploy keyguard's roles at `/`.
    pub fn principal_in(&self, account: &str, role: &RoleSpec) -> String {
        if account != self.account {
            return format!(
                "arn:{}:iam::{account}:role/{}",
                self.partition, role.role_name
            );
        }
        let parts: Vec<&str> = self.arn.split(':').collect();
        match parts.get(5).map(|r| r.split('/').collect::<Vec<_>>()) {
            Some(r) if r.first() == Some(&"assumed-role") && r.len() >= 2 => {
                format!("arn:{}:iam::{account}:role/{}", self.partition, r[1])
            }
            _ => self.arn.clone(),
        }
    }
}

impl Caller {
    /// Who a Lambda function runs as, without a network call: the account and partition from the
    /// ARN it was invoked by (`Lambda-Runtime-Invoked-Function-Arn`, which names the function's
    /// own account), and its execution role's name from the deployment (`KEYGUARD_EXECUTION_ROLE`).
    pub fn of_lambda(function_arn: &str, execution_role: &str) -> Result<Caller> {
        let parts: Vec<&str> = function_arn.split(':').collect();
        match parts.as_slice() {
            ["arn", partition, "lambda", _region, account, "function", name, ..]
                if keyguard_core::Account::is_id(account)
                    && !partition.is_empty()
                    && !execution_role.trim().is_empty() =>
            {
                Ok(Caller {
                    account: account.to_string(),
                    partition: partition.to_string(),
                    arn: format!(
                        "arn:{partition}:sts::{account}:assumed-role/{}/{name}",
                        execution_role.trim()
                    ),
                })
            }
            _ => Err(Error::Invalid(format!(
                "cannot tell the function's account from {function_arn:?} and role {execution_role:?}"
            ))),
        }
    }
}

/// Asks STS who the base credentials are (one call).
pub async fn caller(sts: &aws_sdk_sts::Client) -> Result<Caller> {
    let me = sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| Error::sdk("GetCallerIdentity", e))?;
    let arn = me.arn().unwrap_or("arn:aws:");
    Ok(Caller {
        arn: arn.to_string(),
        account: me.account().unwrap_or_default().to_string(),
        partition: arn
            .split(':')
            .nth(1)
            .filter(|p| !p.is_empty())
            .unwrap_or("aws")
            .to_string(),
    })
}

/// How to reach member accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSpec {
    /// The role name deployed in every member account (by the StackSet).
    pub role_name: String,
    /// The session name, visible in the member account's CloudTrail as the actor.
    pub session_name: String,
    /// A role to list the organization's accounts through (deploy/org-list-role.yaml, in the
    /// management or an Organizations delegated-admin account), when the caller's own account may
    /// not call `organizations:ListAccounts`; `None` lists with the caller's credentials.
    pub org_role_arn: Option<String>,
}

/// Returns an `SdkConfig` acting in `account`: `base` itself when the caller is already in that
/// account, otherwise credentials from STS AssumeRole of `role`. The assumed credentials last one
/// hour, longer than any Lambda invocation.
pub async fn for_account(
    base: &SdkConfig,
    caller: &Caller,
    account: &str,
    role: &RoleSpec,
) -> Result<SdkConfig> {
    if account == caller.account {
        return Ok(base.clone());
    }
    if !keyguard_core::Account::is_id(account) {
        return Err(Error::Invalid(format!(
            "{account:?} is not a 12-digit account id"
        )));
    }
    let role_arn = format!(
        "arn:{}:iam::{account}:role/{}",
        caller.partition, role.role_name
    );
    assume(base, &role_arn, &role.session_name, None).await
}

/// `base` with the credentials of a role another account made for keyguard to act through,
/// named by its ARN and the external id that account's trust policy asks for (Security Lake's
/// provider role of a custom source), narrowed by `session_policy` (an IAM policy document: the
/// session may do only what both it and the role allow).
pub async fn as_role(
    base: &SdkConfig,
    role_arn: &str,
    external_id: Option<&str>,
    session_name: &str,
    session_policy: &str,
) -> Result<SdkConfig> {
    assume(
        base,
        role_arn,
        session_name,
        Some(Assumed {
            external_id,
            session_policy,
        }),
    )
    .await
}

/// What an AssumeRole of a role outside keyguard's own adds.
struct Assumed<'a> {
    external_id: Option<&'a str>,
    session_policy: &'a str,
}

/// The `SdkConfig` for Organizations calls: `base`, or with [`RoleSpec::org_role_arn`] set, that
/// role's credentials (one AssumeRole).
pub async fn for_organization(base: &SdkConfig, role: &RoleSpec) -> Result<SdkConfig> {
    match role.org_role_arn.as_deref().map(str::trim) {
        Some(arn) if !arn.is_empty() => assume(base, arn, &role.session_name, None).await,
        _ => Ok(base.clone()),
    }
}

/// `base` with the credentials of STS AssumeRole of `role_arn` (one hour, longer than any Lambda
/// invocation).
async fn assume(
    base: &SdkConfig,
    role_arn: &str,
    session_name: &str,
    outside: Option<Assumed<'_>>,
) -> Result<SdkConfig> {
    let sts = aws_sdk_sts::Client::new(base);
    let out = sts
        .assume_role()
        .role_arn(role_arn)
        .role_session_name(session_name)
        .set_external_id(
            outside
                .as_ref()
                .and_then(|o| o.external_id.map(str::to_string)),
        )
        .set_policy(outside.as_ref().map(|o| o.session_policy.to_string()))
        .duration_seconds(3600)
        .send()
        .await
        .map_err(|e| {
            let sts = Error::sdk("AssumeRole", e);
            Error::AssumeRole {
                role_arn: role_arn.to_string(),
                message: sts.to_string(),
                source: Some(Box::new(sts)),
            }
        })?;
    let c = out.credentials().ok_or_else(|| Error::AssumeRole {
        role_arn: role_arn.to_string(),
        message: "STS returned no credentials".into(),
        source: None,
    })?;
    let expiry = std::time::SystemTime::try_from(*c.expiration()).ok();
    let creds = aws_credential_types::Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_string()),
        expiry,
        "keyguard-assume-role",
    );
    Ok(base
        .to_builder()
        .credentials_provider(SharedCredentialsProvider::new(creds))
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_function_knows_its_account_from_its_arn() {
        let c = Caller::of_lambda(
            "arn:aws-us-gov:lambda:us-gov-west-1:222233334444:function:keyguard-remediator:live",
            "keyguard-remediator",
        )
        .unwrap();
        assert_eq!(c.account, "222233334444");
        assert_eq!(c.partition, "aws-us-gov");
        let role = RoleSpec {
            role_name: "keyguard-member-remediator".into(),
            session_name: "keyguard".into(),
            org_role_arn: None,
        };
        assert_eq!(
            c.principal_in("222233334444", &role),
            "arn:aws-us-gov:iam::222233334444:role/keyguard-remediator"
        );
        for bad in [
            "",
            "arn:aws:lambda:us-east-1:12:function:f",
            "arn:aws:s3:::b",
        ] {
            assert!(Caller::of_lambda(bad, "r").is_err(), "{bad}");
        }
        assert!(
            Caller::of_lambda("arn:aws:lambda:us-east-1:222233334444:function:f", " ").is_err()
        );
    }
}
