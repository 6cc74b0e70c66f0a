//! Who may ask the remediator for what: every payload it accepts, parsed from the invocation's
//! JSON into a [`Request`]. A member account's request names its account only through
//! EventBridge's envelope and asks for the normal policy only; a forced rotation, a leaked key,
//! a sweep and a manual run are central callers' (see `docs/security.md`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};

/// Whether the run may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Follow the function's DryRun setting.
    #[default]
    Auto,
    /// Never write, whatever DryRun says; send preview notices.
    Preview,
    /// Write, if the function's DryRun is off. An event cannot switch enforcement on: DryRun is
    /// the one switch, owned by whoever deploys the function.
    Enforce,
}

/// What an operator forces beyond the policy (central callers only: a member account's request
/// never forces anything).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Forced {
    /// The policy only.
    #[default]
    No,
    /// Rotate the user's only key now, due or not; the old key then follows the policy.
    Rotate,
    /// The key leaked: rotate it now with the successor readable only by the configured readers
    /// (never the user), and disable the leaked key at once, without the installation grace.
    Leaked {
        /// The leaked key (needed when the user has two active keys).
        key: Option<String>,
        /// Rotate it (a successor for the configured readers) before the disable; `false`:
        /// disable only (`EXPOSED_KEY_RESPONSE=disable`).
        rotate: bool,
        /// Why, in the owner's words (an AWS Health event's type and description); `None`: an
        /// operator said so.
        because: Option<String>,
    },
    /// The key was set Active by `by`, not by `keyguard restore`: when keyguard had disabled
    /// it, its owner and the admin are told and keyguard's records follow (a fresh installation
    /// grace, as after a restore).
    ReEnabled {
        /// The key.
        key: String,
        /// Who set it Active.
        by: String,
    },
}

/// What one invocation asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// One user by UserId, from a central caller (an operator, a test).
    Remediation {
        /// The IAM UserId (Config's resource id).
        user_id: String,
        /// The user's account.
        account: String,
        /// Write or preview.
        mode: Mode,
    },
    /// A member account's request for one of its users: its keyguard rule found the user
    /// NON_COMPLIANT (Config's `Config Rules Compliance Change` event, forwarded by the member
    /// stack to the central request bus), or Config's remediation of the rule ran keyguard's SSM
    /// document (a `keyguard remediation request` event it put on the bus). The account is the
    /// event's envelope `account`, which EventBridge sets to the account the event came from (a
    /// PutEvents entry has no account field, and no PutEvents caller can send a `source`
    /// starting with `aws.`); nothing in the payload chooses it. The normal policy only, at most
    /// once per user per day.
    ComplianceChange {
        /// The account EventBridge vouches for.
        account: String,
        /// The IAM UserId (Config's resource id).
        user_id: String,
    },
    /// A key set Active in a member account (CloudTrail's `UpdateAccessKey`, forwarded by the
    /// member stack): told, and keyguard's records follow it, when keyguard had disabled it.
    KeyReEnabled(crate::reenable_event::ReEnabled),
    /// AWS Health says keys of the account are exposed or compromised (forwarded by the member
    /// stack; the account is the envelope's): the exposed-key response for each.
    Exposure(crate::exposure_event::Exposure),
    /// The scheduled org-wide sweep (EventBridge `Scheduled Event`).
    Sweep {
        /// Write or preview.
        mode: Mode,
    },
    /// An operator re-enables a key keyguard disabled (the runbook's "pipeline X broke"), under
    /// the user's lease, with a `keyguard key action` event like every other step.
    Restore {
        /// The account.
        account: String,
        /// The user (by name).
        user: String,
        /// The disabled key to re-enable.
        key: String,
        /// `preview` only checks that the key can be restored.
        mode: Mode,
    },
    /// A person's request: one account, optionally one user and a forced rotation.
    Manual {
        /// The account.
        account: String,
        /// Only this user (by name).
        user: Option<String>,
        /// What is forced beyond the policy (needs `user`).
        forced: Forced,
        /// Write or preview.
        mode: Mode,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RemediationEvent {
    resource_id: String,
    account_id: String,
    #[serde(default)]
    resource_type: Option<String>,
    #[serde(default)]
    mode: Mode,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ManualEvent {
    #[allow(dead_code)]
    kind: String,
    account: String,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    force_rotate: bool,
    #[serde(default)]
    leaked: bool,
    #[serde(default)]
    key: Option<String>,
    /// The disabled key to re-enable (`restore`: nothing else may be asked with it).
    #[serde(default)]
    restore: Option<String>,
    #[serde(default)]
    mode: Mode,
}

impl Request {
    /// Parses an invocation payload. Unknown shapes and fields are errors that say what was
    /// expected, so a misconfigured schedule or caller fails loudly instead of doing
    /// nothing.
    pub fn parse(event: Value) -> Result<Request> {
        let Some(obj) = event.as_object() else {
            return Err(Error::MalformedEvent(
                "the event is not a JSON object".into(),
            ));
        };
        if obj.contains_key("resourceId") {
            let e: RemediationEvent = Error::typed("remediation event", event)?;
            if let Some(t) = e
                .resource_type
                .as_deref()
                .filter(|t| *t != "AWS::IAM::User")
            {
                return Err(Error::MalformedEvent(format!(
                    "remediation event: resourceType {t:?} is not AWS::IAM::User"
                )));
            }
            check_account(&e.account_id)?;
            if e.resource_id.trim().is_empty() {
                return Err(Error::MalformedEvent(
                    "remediation event: resourceId is empty".into(),
                ));
            }
            return Ok(Request::Remediation {
                user_id: e.resource_id,
                account: e.account_id,
                mode: e.mode,
            });
        }
        if obj.get("detail-type").and_then(Value::as_str) == Some(COMPLIANCE_CHANGE) {
            return compliance_change(event);
        }
        if obj.get("detail-type").and_then(Value::as_str) == Some(REMEDIATION_REQUEST) {
            return remediation_request(event);
        }
        if obj.get("detail-type").and_then(Value::as_str) == Some(crate::reenable_event::API_CALL) {
            return crate::reenable_event::parse(event).map(Request::KeyReEnabled);
        }
        if obj.get("detail-type").and_then(Value::as_str)
            == Some(crate::exposure_event::HEALTH_EVENT)
        {
            return crate::exposure_event::parse(event).map(Request::Exposure);
        }
        if obj.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event") {
            let mode = match obj.get("detail").and_then(|d| d.get("mode")) {
                Some(m) => Error::typed("scheduled event detail.mode", m.clone())?,
                None => Mode::Auto,
            };
            return Ok(Request::Sweep { mode });
        }
        match obj.get("kind").and_then(Value::as_str) {
            Some("manual") => {
                let e: ManualEvent = Error::typed("manual event", event)?;
                check_account(&e.account)?;
                if let Some(key) = e.restore {
                    return restore_request(e.account, e.user, key, e.force_rotate || e.leaked || e.key.is_some(), e.mode);
                }
                if (e.force_rotate || e.leaked) && e.user.is_none() {
                    return Err(Error::MalformedEvent(
                        "manual event: forceRotate and leaked need a user".into(),
                    ));
                }
                let forced = match (e.force_rotate, e.leaked, e.key) {
                    (true, true, _) => {
                        return Err(Error::MalformedEvent(
                            "manual event: forceRotate or leaked, not both".into(),
                        ))
                    }
                    (_, false, Some(_)) => {
                        return Err(Error::MalformedEvent(
                            "manual event: key names the leaked key (with leaked: true)".into(),
                        ))
                    }
                    (true, false, None) => Forced::Rotate,
                    (false, true, key) => Forced::Leaked {
                        key,
                        rotate: true,
                        because: None,
                    },
                    (false, false, None) => Forced::No,
                };
                Ok(Request::Manual {
                    account: e.account,
                    user: e.user,
                    forced,
                    mode: e.mode,
                })
            }
            Some("sweep") => {
                let mode = match obj.get("mode") {
                    Some(m) => Error::typed("sweep event mode", m.clone())?,
                    None => Mode::Auto,
                };
                Ok(Request::Sweep { mode })
            }
            Some(other) => Err(Error::MalformedEvent(format!(
                "unknown kind {other:?}: expected \"manual\" or \"sweep\""
            ))),
            None => Err(Error::MalformedEvent(
                "unknown event: expected a Config remediation payload ({\"resourceId\", \"accountId\"}), \
                 an EventBridge Scheduled Event, or {\"kind\": \"manual\" | \"sweep\", …}"
                    .into(),
            )),
        }
    }
}

/// The `detail-type` of Config's compliance-change events on EventBridge.
const COMPLIANCE_CHANGE: &str = "Config Rules Compliance Change";

/// The `detail-type` and `source` of the event keyguard's SSM Automation document puts on the
/// central request bus when Config remediates keyguard's rule (deploy/member-role.yaml's
/// `keyguard-RequestRemediation`).
pub const REMEDIATION_REQUEST: &str = "keyguard remediation request";
/// See [`REMEDIATION_REQUEST`].
pub const REMEDIATION_SOURCE: &str = "keyguard.remediation";

#[derive(Deserialize)]
struct RemediationEnvelope {
    source: String,
    account: String,
    detail: RemediationDetail,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RemediationDetail {
    resource_id: String,
    resource_type: String,
    #[serde(default)]
    account_id: Option<String>,
}

/// Config's remediation through keyguard's document: the user of the account EventBridge
/// names (the detail is the member's to write, so it chooses nothing else).
fn remediation_request(event: Value) -> Result<Request> {
    let e: RemediationEnvelope = Error::typed("remediation request", event)?;
    let bad = |why: String| Err(Error::MalformedEvent(format!("remediation request: {why}")));
    if e.source != REMEDIATION_SOURCE {
        return bad(format!("source {:?} is not {REMEDIATION_SOURCE}", e.source));
    }
    member_user(
        "remediation request",
        e.account,
        &e.detail.resource_type,
        e.detail.resource_id,
        ("detail.accountId", e.detail.account_id),
    )
}

/// A member account's request for one of its users, from the envelope's `account` (EventBridge's)
/// and the detail's resource (`what` names the event in errors): an IAM user by UserId, and a
/// `claimed` account in the detail, when there is one, the envelope's.
fn member_user(
    what: &str,
    account: String,
    resource_type: &str,
    resource_id: String,
    claimed: (&str, Option<String>),
) -> Result<Request> {
    let bad = |why: String| Err(Error::MalformedEvent(format!("{what}: {why}")));
    check_account(&account)?;
    if resource_type != "AWS::IAM::User" {
        return bad(format!(
            "resourceType {resource_type:?} is not AWS::IAM::User"
        ));
    }
    let (field, claimed) = claimed;
    if let Some(claimed) = claimed.filter(|a| *a != account) {
        return bad(format!(
            "{field} {claimed} is not the account the event came from ({account})"
        ));
    }
    match user_id(resource_id) {
        Ok(user_id) => Ok(Request::ComplianceChange { account, user_id }),
        Err(why) => bad(why),
    }
}

/// `restore` of a manual event: a user and a key, nothing forced with it.
fn restore_request(
    account: String,
    user: Option<String>,
    key: String,
    forced: bool,
    mode: Mode,
) -> Result<Request> {
    let bad = |why: &str| Err(Error::MalformedEvent(format!("manual event: {why}")));
    let Some(user) = user else {
        return bad("restore needs a user");
    };
    if forced {
        return bad("restore re-enables a key: forceRotate, leaked and key do not go with it");
    }
    if !keyguard_core::text::is_access_key_id(&key) {
        return bad("restore names an access key id (AKIA…)");
    }
    Ok(Request::Restore {
        account,
        user,
        key,
        mode,
    })
}

/// IAM's UserIds are AIDA… (16–128 alphanumerics); only the shape matters here: the user is
/// looked up by it in the event's account.
fn user_id(id: String) -> std::result::Result<String, String> {
    if id.is_empty() || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Err(format!("resourceId {id:?} is not an IAM UserId"))
    } else {
        Ok(id)
    }
}

#[derive(Deserialize)]
struct ComplianceEnvelope {
    source: String,
    account: String,
    detail: ComplianceDetail,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ComplianceDetail {
    resource_id: String,
    resource_type: String,
    #[serde(default)]
    aws_account_id: Option<String>,
    new_evaluation_result: NewEvaluationResult,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewEvaluationResult {
    compliance_type: String,
}

/// A compliance-change event: the user of the account EventBridge names, NON_COMPLIANT only.
fn compliance_change(event: Value) -> Result<Request> {
    let e: ComplianceEnvelope = Error::typed("compliance-change event", event)?;
    let bad = |why: String| {
        Err(Error::MalformedEvent(format!(
            "compliance-change event: {why}"
        )))
    };
    if e.source != "aws.config" {
        return bad(format!("source {:?} is not aws.config", e.source));
    }
    if e.detail.new_evaluation_result.compliance_type != "NON_COMPLIANT" {
        return bad(format!(
            "the user is {}: only NON_COMPLIANT users are remediated",
            e.detail.new_evaluation_result.compliance_type
        ));
    }
    member_user(
        "compliance-change event",
        e.account,
        &e.detail.resource_type,
        e.detail.resource_id,
        ("detail.awsAccountId", e.detail.aws_account_id),
    )
}

fn check_account(a: &str) -> Result<()> {
    if keyguard_core::Account::is_id(a) {
        Ok(())
    } else {
        Err(Error::MalformedEvent(format!(
            "{a:?} is not a 12-digit account id"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_three_entry_points() {
        assert_eq!(
            Request::parse(json!({"resourceId": "AIDA1", "accountId": "111122223333", "resourceType": "AWS::IAM::User"})).unwrap(),
            Request::Remediation { user_id: "AIDA1".into(), account: "111122223333".into(), mode: Mode::Auto }
        );
        let scheduled = json!({"version": "0", "id": "x", "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "111122223333", "time": "2026-11-22T06:00:00Z", "region": "us-east-1", "resources": [], "detail": {}});
        assert_eq!(
            Request::parse(scheduled).unwrap(),
            Request::Sweep { mode: Mode::Auto }
        );
        assert_eq!(
            Request::parse(json!({"kind": "manual", "account": "111122223333", "user": "a,b", "forceRotate": true, "mode": "preview"})).unwrap(),
            Request::Manual { account: "111122223333".into(), user: Some("a,b".into()), forced: Forced::Rotate, mode: Mode::Preview }
        );
    }

    /// Config's compliance-change event as EventBridge delivers it (the detail is Config's
    /// notification: docs.aws.amazon.com/config/latest/developerguide/example-config-rule-compliance-notification.html).
    fn compliance_change(account: &str, user_id: &str) -> Value {
        let text = include_str!("../fixtures/config-compliance-change.json")
            .replace("{{account}}", account)
            .replace("{{user_id}}", user_id);
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn a_compliance_change_acts_on_the_account_eventbridge_names() {
        assert_eq!(
            Request::parse(compliance_change("444455556666", "AIDAUSER0000000001")).unwrap(),
            Request::ComplianceChange {
                account: "444455556666".into(),
                user_id: "AIDAUSER0000000001".into()
            }
        );
        let msg = |v: Value| Request::parse(v).unwrap_err().to_string();
        // The detail naming another account than the envelope is refused, not followed.
        let mut other = compliance_change("444455556666", "AIDAUSER0000000001");
        other["detail"]["awsAccountId"] = "111122223333".into();
        assert!(msg(other).contains("not the account the event came from"));
        // A custom event dressed as Config's (PutEvents cannot send source aws.config).
        let mut forged = compliance_change("444455556666", "AIDAUSER0000000001");
        forged["source"] = "keyguard.requests".into();
        assert!(msg(forged).contains("not aws.config"));
        let mut compliant = compliance_change("444455556666", "AIDAUSER0000000001");
        compliant["detail"]["newEvaluationResult"]["complianceType"] = "COMPLIANT".into();
        assert!(msg(compliant).contains("only NON_COMPLIANT"));
        let mut bucket = compliance_change("444455556666", "AIDAUSER0000000001");
        bucket["detail"]["resourceType"] = "AWS::S3::Bucket".into();
        assert!(msg(bucket).contains("not AWS::IAM::User"));
        assert!(msg(compliance_change("444455556666", "../x")).contains("not an IAM UserId"));
        let mut no_account = compliance_change("444455556666", "AIDAUSER0000000001");
        no_account.as_object_mut().unwrap().remove("account");
        assert!(msg(no_account).contains("account"));
    }

    /// The event keyguard's SSM document puts on the request bus (deploy/member-role.yaml's
    /// keyguard-RequestRemediation; tests/it/attacks.rs checks the fixture against it).
    fn remediation_request(account: &str, user_id: &str) -> Value {
        let text = include_str!("../fixtures/keyguard-remediation-request.json")
            .replace("{{account}}", account)
            .replace("{{user_id}}", user_id);
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn a_config_remediation_acts_on_the_account_eventbridge_names() {
        assert_eq!(
            Request::parse(remediation_request("444455556666", "AIDAUSER0000000001")).unwrap(),
            Request::ComplianceChange {
                account: "444455556666".into(),
                user_id: "AIDAUSER0000000001".into()
            }
        );
        let msg = |v: Value| Request::parse(v).unwrap_err().to_string();
        let mut other = remediation_request("444455556666", "AIDAUSER0000000001");
        other["detail"]["accountId"] = "111122223333".into();
        assert!(msg(other).contains("not the account the event came from"));
        let mut source = remediation_request("444455556666", "AIDAUSER0000000001");
        source["source"] = "keyguard".into();
        assert!(msg(source).contains("is not keyguard.remediation"));
        let mut forced = remediation_request("444455556666", "AIDAUSER0000000001");
        forced["detail"]["forceRotate"] = true.into();
        assert!(
            msg(forced).contains("forceRotate"),
            "unknown fields refused"
        );
        assert!(msg(remediation_request("444455556666", "A/B")).contains("not an IAM UserId"));
    }

    #[test]
    fn a_manual_restore_names_a_user_and_a_key_and_nothing_else() {
        let key = "AKIAIOSFODNN7EXAMPLE";
        assert_eq!(
            Request::parse(
                json!({"kind": "manual", "account": "111122223333", "user": "ci", "restore": key})
            )
            .unwrap(),
            Request::Restore {
                account: "111122223333".into(),
                user: "ci".into(),
                key: key.into(),
                mode: Mode::Auto
            }
        );
        let msg = |v: Value| Request::parse(v).unwrap_err().to_string();
        assert!(
            msg(json!({"kind": "manual", "account": "111122223333", "restore": key}))
                .contains("needs a user")
        );
        assert!(msg(json!({"kind": "manual", "account": "111122223333", "user": "ci", "restore": key, "leaked": true}))
            .contains("do not go with it"));
        assert!(msg(
            json!({"kind": "manual", "account": "111122223333", "user": "ci", "restore": "../x"})
        )
        .contains("access key id"));
    }

    #[test]
    fn bad_events_say_what_is_wrong() {
        let msg = |v: Value| Request::parse(v).unwrap_err().to_string();
        assert!(msg(json!([])).contains("not a JSON object"));
        assert!(msg(json!({"hello": 1})).contains("unknown event"));
        assert!(msg(json!({"kind": "nuke"})).contains("unknown kind"));
        assert!(msg(json!({"resourceId": "A", "accountId": "12"})).contains("12-digit"));
        assert!(
            msg(json!({"resourceId": "A", "accountId": "111122223333", "mode": "yolo"}))
                .contains("mode")
        );
        assert!(
            msg(json!({"resourceId": "A", "accountId": "111122223333", "extra": 1}))
                .contains("extra")
        );
        assert!(
            msg(json!({"kind": "manual", "account": "111122223333", "forceRotate": true}))
                .contains("need a user")
        );
    }
}
