//! AWS Health's events of an exposed or compromised access key, as the central request bus
//! receives them from a member account's forwarding: `source` `aws.health`, `detail-type` `AWS
//! Health Event`, `detail.service` `RISK`, one of [`EXPOSURE_CODES`], the key ids in
//! `detail.affectedEntities[].entityValue` (AWS Health User Guide, "Monitoring AWS Health events
//! with Amazon EventBridge", and its sample `AWS_RISK_CREDENTIALS_EXPOSED` event). No PutEvents
//! caller can send a `source` starting with `aws.`; the account is the envelope's.

use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};

/// The Health event type codes of an exposed or compromised key. Real leaks have arrived as
/// `AWS_RISK_IAM_QUARANTINE` (with `region` `global`) alone, which a rule on `_EXPOSED` missed.
pub const EXPOSURE_CODES: [&str; 5] = [
    "AWS_RISK_CREDENTIALS_EXPOSED",
    "AWS_RISK_CREDENTIALS_EXPOSURE_SUSPECTED",
    "AWS_RISK_CREDENTIALS_COMPROMISED",
    "AWS_RISK_CREDENTIALS_COMPROMISE_SUSPECTED",
    "AWS_RISK_IAM_QUARANTINE",
];

/// What keyguard does when AWS Health says a key is exposed or compromised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ExposedKeyResponse {
    /// A successor for the configured readers (never the user), and the key disabled at once.
    #[default]
    RotateAndDisable,
    /// The key disabled at once, no successor.
    Disable,
    /// The owner and the admin told what keyguard would do; nothing written.
    Notify,
}

/// The `detail-type` of AWS Health's events on EventBridge.
pub const HEALTH_EVENT: &str = "AWS Health Event";

/// One Health event about exposed keys of one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposure {
    /// The account EventBridge vouches for.
    pub account: String,
    /// The event's ARN (updates of one event share it): with a key id, what a delivery is
    /// deduplicated on.
    pub event_arn: String,
    /// Its type code (one of [`EXPOSURE_CODES`]).
    pub code: String,
    /// AWS's description (English), its key ids masked, cut to 600 printable characters for the
    /// notices.
    pub description: String,
    /// The access key ids it names.
    pub keys: Vec<String>,
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
    event_arn: String,
    service: String,
    event_type_code: String,
    #[serde(default)]
    affected_account: Option<String>,
    #[serde(default)]
    event_description: Vec<Description>,
    #[serde(default)]
    affected_entities: Vec<Entity>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Description {
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    latest_description: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entity {
    #[serde(default)]
    entity_value: String,
}

/// Parses a Health event of exposed keys; anything else is an error that says why.
pub(crate) fn parse(event: Value) -> Result<Exposure> {
    let e: Envelope = Error::typed("AWS Health event", event)?;
    let bad = |why: String| Err(Error::MalformedEvent(format!("AWS Health event: {why}")));
    if e.source != "aws.health" {
        return bad(format!("source {:?} is not aws.health", e.source));
    }
    if !keyguard_core::Account::is_id(&e.account) {
        return bad(format!("{:?} is not a 12-digit account id", e.account));
    }
    if e.detail.service != "RISK" || !EXPOSURE_CODES.contains(&e.detail.event_type_code.as_str()) {
        return bad(format!(
            "{} {} is not an exposed-key event",
            e.detail.service, e.detail.event_type_code
        ));
    }
    if let Some(claimed) = e.detail.affected_account.filter(|a| *a != e.account) {
        return bad(format!(
            "detail.affectedAccount {claimed} is not the account the event came from ({})",
            e.account
        ));
    }
    let keys: Vec<String> = e
        .detail
        .affected_entities
        .into_iter()
        .map(|x| x.entity_value.trim().to_string())
        .filter(|k| keyguard_core::text::is_access_key_id(k) && k.starts_with("AKIA"))
        .collect();
    if keys.is_empty() {
        return bad("it names no long-term access key id (AKIA…)".into());
    }
    let description = e
        .detail
        .event_description
        .iter()
        .find(|d| d.language.as_deref().is_none_or(|l| l.starts_with("en")))
        .or(e.detail.event_description.first())
        .map(|d| {
            let text = keyguard_core::text::mask_key_ids(&d.latest_description);
            keyguard_core::text::printable(&text, 600)
        })
        .unwrap_or_default();
    Ok(Exposure {
        account: e.account,
        event_arn: e.detail.event_arn,
        code: e.detail.event_type_code,
        description,
        keys,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's published sample of the event (AWS Health User Guide), with a key id.
    fn sample(code: &str) -> Value {
        let text = include_str!("../fixtures/health-credentials-exposed.json")
            .replace("AWS_RISK_CREDENTIALS_EXPOSED", code);
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn every_exposure_code_names_its_keys_and_the_account_is_the_envelopes() {
        for code in EXPOSURE_CODES {
            let e = parse(sample(code)).unwrap();
            assert_eq!(e.account, "123456789012");
            assert_eq!(e.keys, ["AKIAIOSFODNN7EXAMPLE"]);
            assert_eq!(e.code, code);
            assert!(e.description.contains("exposed"), "{e:?}");
            assert!(
                !e.description.contains("IOSFODNN7"),
                "the key id is masked: {e:?}"
            );
        }
        let msg = |v: Value| parse(v).unwrap_err().to_string();
        let mut other = sample("AWS_RISK_CREDENTIALS_EXPOSED");
        other["detail"]["affectedAccount"] = "111122223333".into();
        assert!(msg(other).contains("not the account the event came from"));
        let mut forged = sample("AWS_RISK_CREDENTIALS_EXPOSED");
        forged["source"] = "keyguard.health".into();
        assert!(msg(forged).contains("not aws.health"));
        let mut ec2 = sample("AWS_RISK_CREDENTIALS_EXPOSED");
        ec2["detail"]["service"] = "EC2".into();
        ec2["detail"]["eventTypeCode"] = "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED".into();
        assert!(msg(ec2).contains("not an exposed-key event"));
        let mut no_key = sample("AWS_RISK_CREDENTIALS_EXPOSED");
        no_key["detail"]["affectedEntities"][0]["entityValue"] = "arn:aws:iam::1:user/x".into();
        assert!(msg(no_key).contains("names no long-term access key"));
    }
}
