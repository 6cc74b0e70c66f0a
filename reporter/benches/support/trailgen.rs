//! A deterministic generator of org-trail log files, for the throughput benchmark and tests.
//!
//! Files follow the org trail's layout
//! (`AWSLogs/o-…/<account>/CloudTrail/us-east-1/YYYY/MM/DD/<account>_CloudTrail_us-east-1_…json.gz`)
//! and CloudTrail's record shape. Most records are the noise a real trail carries (S3, STS, EC2
//! reads, with realistic identities and user agents); about one in a thousand is an IAM call the
//! report follows. The same `(files, records, seed)` always gives the same bytes.

use std::io::Write;
use std::path::Path;

use chrono::{Duration, TimeZone, Utc};
use serde_json::json;

/// What was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Files.
    pub files: usize,
    /// Records in all files.
    pub records: usize,
    /// Records of followed IAM calls (distinct event ids).
    pub followed: usize,
    /// Bytes of the compressed files.
    pub bytes: u64,
}

/// Gzips `data` (default level, as CloudTrail delivers).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("in memory");
    e.finish().expect("in memory")
}

/// The user agents of the generated calls.
const AGENTS: [&str; 5] = [
    "aws-sdk-go-v2/1.30.3 os/linux lang/go#1.22.5 md/GOOS#linux md/GOARCH#amd64 api/iam#1.34.3",
    "aws-cli/2.15.0 Python/3.11.6 Linux/6.1.0 exe/x86_64.amzn.2023 prompt/off command/s3.cp",
    "Boto3/1.34.0 md/Botocore#1.34.0 ua/2.0 os/linux#6.1 md/arch#x86_64 lang/python#3.11.6",
    "terraform-provider-aws/5.31.0 (+https://registry.terraform.io/providers/hashicorp/aws)",
    "aws-sdk-java/2.21.0 Linux/6.1 OpenJDK_64-Bit_Server_VM/17.0.9 Java/17.0.9 vendor/Amazon.com",
];

/// Writes `files` trail files of `records` records each under `dir`.
pub fn write_org_trail(
    dir: &Path,
    files: usize,
    records: usize,
    seed: u64,
) -> std::io::Result<Written> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let start = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
    let accounts = [
        "111122223333",
        "222233334444",
        "333344445555",
        "444455556666",
    ];
    let mut out = Written {
        files,
        records: 0,
        followed: 0,
        bytes: 0,
    };
    for f in 0..files {
        let account = accounts[f % accounts.len()];
        let at = start + Duration::minutes(5 * f as i64);
        let mut recs = Vec::with_capacity(records);
        for r in 0..records {
            let t = at + Duration::milliseconds(rng.i64(0..300_000));
            let id = format!(
                "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
                f,
                r,
                rng.u16(0..4096),
                rng.u16(0..4096),
                rng.u64(0..1 << 48)
            );
            let user = format!("svc-{}", rng.u8(0..40));
            // One call in three is made with a CI user's long-term key (40 users, each from a
            // few addresses and agents): what the usage aggregation counts.
            let long_term = rng.u8(0..3) == 0;
            let ci = rng.u8(0..40);
            let (source_ip, agent) = if long_term {
                (
                    format!("203.0.113.{}", ci / 4 * 4 + rng.u8(0..3)),
                    AGENTS[usize::from(ci) % AGENTS.len()].to_string(),
                )
            } else {
                (
                    format!("10.{}.{}.{}", rng.u8(..), rng.u8(..), rng.u8(..)),
                    AGENTS[0].to_string(),
                )
            };
            let identity = if long_term {
                json!({
                    "type": "IAMUser",
                    "principalId": format!("AIDA{ci:016}"),
                    "arn": format!("arn:aws:iam::{account}:user/ci-{ci}"),
                    "accountId": account,
                    "accessKeyId": format!("AKIA{:04}{ci:012}", f % 4),
                    "userName": format!("ci-{ci}"),
                })
            } else {
                json!({
                "type": "AssumedRole",
                "principalId": format!("AROA{:016X}:session-{}", rng.u64(..), rng.u16(..)),
                "arn": format!("arn:aws:sts::{account}:assumed-role/Deployer/session-{}", rng.u16(..)),
                "accountId": account,
                "accessKeyId": format!("ASIA{:016X}", rng.u64(..)),
                "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLE", "arn": format!("arn:aws:iam::{account}:role/Deployer"), "accountId": account, "userName": "Deployer"},
                                   "attributes": {"creationDate": t.to_rfc3339(), "mfaAuthenticated": "false"}}
                })
            };
            let followed = rng.u16(0..1000) == 0;
            if followed {
                out.followed += 1;
            }
            let (source, name, params, response) = call_of(&mut rng, account, &user, t, followed);
            recs.push(json!({
                "eventVersion": "1.09",
                "userIdentity": identity,
                "eventTime": t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                "eventSource": source,
                "eventName": name,
                "awsRegion": "us-east-1",
                "sourceIPAddress": source_ip,
                "userAgent": agent,
                "requestParameters": params,
                "responseElements": response,
                "requestID": format!("{:016x}{:016x}", rng.u64(..), rng.u64(..)),
                "eventID": id,
                "readOnly": !followed,
                "eventType": "AwsApiCall",
                "managementEvent": true,
                "recipientAccountId": account,
                "eventCategory": "Management",
                "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256", "clientProvidedHostHeader": format!("{}", source)}
            }));
        }
        out.records += records;
        let body = serde_json::to_vec(&json!({"Records": recs})).expect("serializable");
        let day = at.format("%Y/%m/%d");
        let path = dir
            .join(format!(
                "AWSLogs/o-exampleorg1/{account}/CloudTrail/us-east-1/{day}"
            ))
            .join(format!(
                "{account}_CloudTrail_us-east-1_{}_{f:06}.json.gz",
                at.format("%Y%m%dT%H%MZ")
            ));
        std::fs::create_dir_all(path.parent().expect("a parent"))?;
        let gz = gzip(&body);
        out.bytes += gz.len() as u64;
        std::fs::write(path, gz)?;
    }
    Ok(out)
}

/// One call of a trail record: (eventSource, eventName, requestParameters, responseElements);
/// `followed`: an IAM call the report follows, else the noise around it.
fn call_of(
    rng: &mut fastrand::Rng,
    account: &str,
    user: &str,
    t: chrono::DateTime<Utc>,
    followed: bool,
) -> (
    &'static str,
    &'static str,
    serde_json::Value,
    serde_json::Value,
) {
    if followed {
        match rng.u8(0..6) {
            0 => (
                "iam.amazonaws.com",
                "AddUserToGroup",
                json!({"groupName": "IAMKeyRotationExemptionGroup", "userName": user}),
                json!(null),
            ),
            1 => (
                "iam.amazonaws.com",
                "RemoveUserFromGroup",
                json!({"groupName": "IAMKeyRotationExemptionGroup", "userName": user}),
                json!(null),
            ),
            2 => (
                "iam.amazonaws.com",
                "TagUser",
                json!({"userName": user, "tags": [{"key": "keyguard:exemption-expires", "value": "2027-01-31"}]}),
                json!(null),
            ),
            3 => (
                "iam.amazonaws.com",
                "CreateAccessKey",
                json!({"userName": user}),
                json!({"accessKey": {"accessKeyId": format!("AKIA{:016X}", rng.u64(..)), "status": "Active", "userName": user, "createDate": t.to_rfc3339()}}),
            ),
            4 => (
                "iam.amazonaws.com",
                "UpdateAccessKey",
                json!({"userName": user, "accessKeyId": format!("AKIA{:016X}", rng.u64(..)), "status": "Inactive"}),
                json!(null),
            ),
            _ => (
                "iam.amazonaws.com",
                "DeleteAccessKey",
                json!({"userName": user, "accessKeyId": format!("AKIA{:016X}", rng.u64(..))}),
                json!(null),
            ),
        }
    } else {
        match rng.u8(0..4) {
            0 => (
                "s3.amazonaws.com",
                "GetObject",
                json!({"bucketName": format!("artifacts-{account}"), "key": format!("builds/{}/app-{}.tar.gz", rng.u32(..), rng.u16(..)), "Host": "s3.us-east-1.amazonaws.com"}),
                json!(null),
            ),
            1 => (
                "sts.amazonaws.com",
                "AssumeRole",
                json!({"roleArn": format!("arn:aws:iam::{account}:role/Deployer"), "roleSessionName": format!("session-{}", rng.u16(..)), "durationSeconds": 3600}),
                json!({"credentials": {"accessKeyId": format!("ASIA{:016X}", rng.u64(..)), "expiration": t.to_rfc3339()}}),
            ),
            2 => (
                "ec2.amazonaws.com",
                "DescribeInstances",
                json!({"instancesSet": {}, "filterSet": {"items": [{"name": "tag:team", "valueSet": {"items": [{"value": "payments"}]}}]}}),
                json!(null),
            ),
            _ => (
                "iam.amazonaws.com",
                "GetUser",
                json!({"userName": user}),
                json!(null),
            ),
        }
    }
}
