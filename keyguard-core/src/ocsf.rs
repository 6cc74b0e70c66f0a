//! keyguard's verdicts as OCSF Compliance Findings (class 2003, OCSF 1.5): one per evaluated
//! user, the shape a SIEM or Amazon Security Lake loads without a parser. Pure: the caller
//! gives the account, the user and keys, the finding and the evaluation time.
//!
//! Where each fact goes: the controls in `compliance` (`requirements`, `standards`, the first
//! failing control as `control`, pass/fail as `status_id`); the annotation as `message` and
//! `finding_info.desc`; the user as the one resource (`AWS::IAM::User`, its ARN, IAM's Region
//! `us-east-1`), its owner the AWS account; each key masked with its status, age and last use in
//! the resource's `data`. No key id appears in full.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::evaluate::{Finding, Reason, ROOT_USER};
use crate::model::{days_between, Account, Compliance, UserRecord};

/// The OCSF schema version the findings follow.
pub const OCSF_VERSION: &str = "1.5.0";
/// The newest OCSF version Amazon Security Lake takes from a custom source (docs/security-lake.md).
pub const SECURITY_LAKE_OCSF_VERSION: &str = "1.3.0";
/// IAM is a global service; AWS records it in us-east-1 (in the China and GovCloud partitions,
/// in their first Region).
const IAM_REGION: &str = "us-east-1";

/// The Region IAM is recorded in for `partition`.
fn iam_region(partition: &str) -> &'static str {
    match partition {
        "aws-cn" => "cn-north-1",
        "aws-us-gov" => "us-gov-west-1",
        _ => IAM_REGION,
    }
}

/// The controls a reason fails: CIS AWS Foundations v1.4.0–v4.0.1 and Security Hub.
fn controls(r: &Reason) -> &'static [&'static str] {
    match r {
        Reason::RotationDue { .. } => &["CIS 1.14", "IAM.3"],
        Reason::Unused { .. } => &["CIS 1.12", "IAM.22"],
        Reason::TwoActiveKeys => &["CIS 1.13"],
        Reason::RootAccessKey { .. } => &["CIS 1.4", "IAM.4"],
        Reason::ExemptionMissingExpiry { .. }
        | Reason::ExemptionInvalidExpiry { .. }
        | Reason::ExemptionExpired { .. }
        | Reason::ExemptionTooLong { .. } => &[],
    }
}

/// One OCSF Compliance Finding for `finding` of `record` in `account`, at `time`.
pub fn compliance_finding(
    account: &Account,
    record: &UserRecord,
    finding: &Finding,
    time: DateTime<Utc>,
    product_version: &str,
) -> Value {
    let root = finding.user_name == ROOT_USER;
    let failed: Vec<&str> = finding
        .reasons
        .iter()
        .flat_map(|r| controls(r).iter().copied())
        .collect();
    let requirements: Vec<&str> = if root {
        vec!["CIS 1.4", "IAM.4"]
    } else {
        vec!["CIS 1.12", "CIS 1.13", "CIS 1.14", "IAM.3", "IAM.22"]
    };
    // compliance.status_id: 1 Pass, 3 Fail, 99 Other (the caption is the schema's, not sent).
    let (status_id, severity_id, severity) = match finding.compliance {
        Compliance::NonCompliant if root => (3, 5, "Critical"),
        Compliance::NonCompliant => (3, 3, "Medium"),
        Compliance::Compliant => (1, 1, "Informational"),
        Compliance::NotApplicable => (99, 1, "Informational"),
    };
    let keys: Vec<Value> = record
        .keys
        .iter()
        .map(|k| {
            json!({
                "key": k.label(),
                "status": if k.is_active() { "Active" } else { "Inactive" },
                "age_days": days_between(k.created, time),
                "last_used": k.last_used.map(|t| t.format("%Y-%m-%d").to_string()),
            })
        })
        .collect();
    let arn = if record.user.arn.is_empty() {
        format!(
            "arn:aws:iam::{}:user{}{}",
            account.id, record.user.path, record.user.name
        )
    } else {
        record.user.arn.clone()
    };
    let day = time.format("%Y-%m-%d");
    json!({
        "activity_id": 1,
        "activity_name": "Create",
        "category_uid": 2,
        "category_name": "Findings",
        "class_uid": 2003,
        "class_name": "Compliance Finding",
        "type_uid": 200301,
        "type_name": "Compliance Finding: Create",
        "severity_id": severity_id,
        "severity": severity,
        "status_id": 1,
        "status": "New",
        "time": time.timestamp_millis(),
        "message": finding.annotation,
        "metadata": {
            "version": OCSF_VERSION,
            "uid": format!("keyguard:{}:{}:{day}", account.id, finding.user_id),
            "product": {
                "name": "keyguard",
                "vendor_name": "keyguard",
                "version": product_version,
            },
        },
        "compliance": {
            "control": failed.first().copied().unwrap_or(requirements[0]),
            "requirements": requirements,
            "standards": ["CIS AWS Foundations Benchmark v1.4.0", "AWS Foundational Security Best Practices v1.0.0"],
            "status_id": status_id,
        },
        "finding_info": {
            "uid": format!("keyguard:{}:{}", account.id, finding.user_id),
            "title": format!("IAM access keys of {}: {}", finding.user_name, finding.compliance),
            "desc": finding.annotation,
            "types": finding.reasons.iter().map(ToString::to_string).collect::<Vec<_>>(),
        },
        "resources": [{
            "type": if root { "AWS::::Account" } else { "AWS::IAM::User" },
            "uid": arn,
            "name": finding.user_name,
            "region": iam_region(arn.split(':').nth(1).unwrap_or("aws")),
            "cloud_partition": arn.split(':').nth(1).unwrap_or("aws"),
            "data": {"keys": keys, "user_id": finding.user_id},
            "owner": {
                "uid": arn,
                "name": finding.user_name,
                "type_id": if root { 99 } else { 1 },
                "type": if root { "Root" } else { "User" },
                "account": {
                    "uid": account.id,
                    "name": if account.name.is_empty() { &account.id } else { &account.name },
                    "type_id": 10,
                    "type": "AWS Account",
                },
            },
        }],
    })
}

/// `finding` (an OCSF 1.5 Compliance Finding of [`compliance_finding`]) as OCSF 1.3, the version
/// Amazon Security Lake takes from a custom source. Every attribute keyguard sets exists in 1.3
/// with the same type and enum values (checked against both schemas: docs/security-lake.md), so
/// the finding keeps all of them; what differs is mapped:
///
/// - `metadata.version` is `1.3.0`;
/// - the `cloud` profile is declared (`metadata.profiles`) and its required `cloud` object set
///   (`provider` AWS, the resource's Region, its account): Security Lake partitions and queries
///   by them, and 1.3's `compliance.standards` and `finding_info.title`, required there and
///   optional in 1.5, are always set by [`compliance_finding`].
pub fn security_lake_finding(mut finding: Value) -> Value {
    let resource = &finding["resources"][0];
    let cloud = json!({
        "provider": "AWS",
        "region": resource["region"].as_str().unwrap_or(IAM_REGION),
        "account": resource["owner"]["account"].clone(),
    });
    finding["cloud"] = cloud;
    finding["metadata"]["version"] = SECURITY_LAKE_OCSF_VERSION.into();
    finding["metadata"]["profiles"] = json!(["cloud"]);
    finding
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AccessKey, KeyStatus, User};
    use crate::Settings;

    #[test]
    fn the_security_lake_finding_is_the_same_finding_in_1_3() {
        let now = "2026-11-20T12:00:00Z".parse().unwrap();
        let record = UserRecord {
            user: User {
                name: "ci+deploy@x".into(),
                user_id: "AIDAEXAMPLE".into(),
                path: "/ci/".into(),
                ..User::default()
            },
            keys: vec![AccessKey {
                id: Some("AKIAIOSFODNN7EXAMPLE".into()),
                slot: 1,
                status: KeyStatus::Active,
                created: "2026-08-01T00:00:00Z".parse().unwrap(),
                last_used: None,
            }],
        };
        let account = Account {
            id: "111122223333".into(),
            name: "prod".into(),
            email: None,
        };
        let f = crate::evaluate(&record.user, &record.keys, &Settings::default(), now);
        let v15 = compliance_finding(&account, &record, &f, now, "0.1.0");
        let v13 = security_lake_finding(v15.clone());
        assert_eq!(v13["metadata"]["version"], "1.3.0");
        assert_eq!(v13["metadata"]["profiles"], json!(["cloud"]));
        assert_eq!(v13["cloud"]["provider"], "AWS");
        assert_eq!(v13["cloud"]["region"], "us-east-1");
        assert_eq!(v13["cloud"]["account"]["uid"], "111122223333");
        // Nothing else changed: every other attribute is the 1.5 finding's.
        let mut back = v13.clone();
        back.as_object_mut().unwrap().remove("cloud");
        back["metadata"].as_object_mut().unwrap().remove("profiles");
        back["metadata"]["version"] = OCSF_VERSION.into();
        assert_eq!(back, v15);
        assert!(!v13.to_string().contains("AKIAIOSFODNN7EXAMPLE"));

        // A GovCloud user is recorded in GovCloud's IAM Region, and partitioned there.
        let mut gov = record.clone();
        gov.user.arn = "arn:aws-us-gov:iam::111122223333:user/ci/ci+deploy@x".into();
        let v13 = security_lake_finding(compliance_finding(&account, &gov, &f, now, "0.1.0"));
        assert_eq!(v13["cloud"]["region"], "us-gov-west-1");
        assert_eq!(v13["resources"][0]["cloud_partition"], "aws-us-gov");
    }
}
