//! CloudTrail's record of an access key set Active (`UpdateAccessKey`, `status` `Active`) through
//! EventBridge (`source` `aws.iam`, `detail-type` `AWS API Call via CloudTrail`), forwarded by the
//! member stack from us-east-1, where IAM's events are delivered: a key keyguard disabled may have
//! come back without `keyguard restore`. No PutEvents caller can send `source` `aws.iam`; the
//! account is the envelope's.

use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};

/// The `detail-type` of CloudTrail's API calls on EventBridge.
pub const API_CALL: &str = "AWS API Call via CloudTrail";

/// A key set Active in an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReEnabled {
    /// The account EventBridge vouches for.
    pub account: String,
    /// The user, when the call named one (a user changing its own key names none).
    pub user: Option<String>,
    /// The key.
    pub key: String,
    /// Who made the call (CloudTrail's `userIdentity.arn`, printable, cut).
    pub by: String,
}

#[derive(Deserialize)]
struct Envelope {
    source: String,
    account: String,
    detail: Detail,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Detail {
    event_source: String,
    event_name: String,
    #[serde(default)]
    error_code: Option<String>,
    #[serde(default)]
    user_identity: Identity,
    #[serde(default)]
    request_parameters: Option<Params>,
}

#[derive(Deserialize, Default)]
struct Identity {
    #[serde(default)]
    arn: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Params {
    #[serde(default)]
    user_name: Option<String>,
    access_key_id: String,
    status: String,
}

/// Parses CloudTrail's `UpdateAccessKey` to Active; anything else is an error that says why.
pub(crate) fn parse(event: Value) -> Result<ReEnabled> {
    let e: Envelope = Error::typed("CloudTrail API call event", event)?;
    let bad = |why: String| Err(Error::MalformedEvent(format!("CloudTrail API call: {why}")));
    if e.source != "aws.iam" || e.detail.event_source != "iam.amazonaws.com" {
        return bad(format!("source {:?} is not aws.iam", e.source));
    }
    if !keyguard_core::Account::is_id(&e.account) {
        return bad(format!("{:?} is not a 12-digit account id", e.account));
    }
    if e.detail.event_name != "UpdateAccessKey" {
        return bad(format!("{} is not UpdateAccessKey", e.detail.event_name));
    }
    if let Some(code) = e.detail.error_code {
        return bad(format!("the call failed ({code}): nothing changed"));
    }
    let Some(p) = e.detail.request_parameters else {
        return bad("no requestParameters".into());
    };
    if p.status != "Active" {
        return bad(format!("status {:?}: not a key set Active", p.status));
    }
    if !keyguard_core::text::is_access_key_id(&p.access_key_id) {
        return bad("accessKeyId is not an access key id".into());
    }
    Ok(ReEnabled {
        account: e.account,
        user: p.user_name.filter(|u| !u.is_empty()),
        key: p.access_key_id,
        by: keyguard_core::text::printable(
            e.detail.user_identity.arn.as_deref().unwrap_or("someone"),
            200,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Value {
        serde_json::from_str(include_str!(
            "../fixtures/cloudtrail-update-access-key.json"
        ))
        .unwrap()
    }

    #[test]
    fn a_key_set_active_is_read_from_the_envelopes_account() {
        let r = parse(event()).unwrap();
        assert_eq!(r.account, "444455556666");
        assert_eq!(r.user.as_deref(), Some("ci-deploy"));
        assert_eq!(r.key, "AKIAIOSFODNN7EXAMPLE");
        assert!(
            r.by.ends_with(":assumed-role/AWSReservedSSO_Admin/mallory"),
            "{r:?}"
        );
        let msg = |v: Value| parse(v).unwrap_err().to_string();
        let mut inactive = event();
        inactive["detail"]["requestParameters"]["status"] = "Inactive".into();
        assert!(msg(inactive).contains("not a key set Active"));
        let mut failed = event();
        failed["detail"]["errorCode"] = "AccessDenied".into();
        assert!(msg(failed).contains("the call failed"));
        let mut forged = event();
        forged["source"] = "keyguard.iam".into();
        assert!(msg(forged).contains("not aws.iam"));
    }
}
