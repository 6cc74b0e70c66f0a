//! CloudTrail log files in, the IAM events the report needs out, and where each long-term access
//! key was used (every call made with an `AKIA…` key, aggregated per key:
//! [`keyguard_core::usage`]).
//!
//! A trail file is a gzip of `{"Records": [...]}`. Each file is decompressed whole (libdeflate,
//! sized from the gzip trailer), parsed with serde into borrowed structs that name only the fields
//! keyguard reads (request parameters stay raw JSON until the record is known to matter), and
//! only exemption-group changes and key actions are kept, owned. Files are read one at a time per
//! worker, in parallel across cores, so memory is bounded by the largest files in flight, not by
//! the number of files. Duplicates (an org trail delivers a record once per copy) are removed by
//! `eventID`.

use std::borrow::Cow;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::{Error, Result};

/// The IAM API calls the report follows.
pub const FOLLOWED: &[&str] = &[
    "AddUserToGroup",
    "RemoveUserFromGroup",
    "CreateGroup",
    "DeleteGroup",
    "UpdateGroup",
    "TagUser",
    "UntagUser",
    "CreateAccessKey",
    "UpdateAccessKey",
    "DeleteAccessKey",
];

/// One followed IAM call, as the report uses it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrailEvent {
    /// CloudTrail's `eventID` (the de-duplication key).
    pub id: String,
    /// When the call was made.
    pub time: DateTime<Utc>,
    /// The account the call acted in.
    pub account: String,
    /// The API call (`AddUserToGroup`…).
    pub name: String,
    /// Who made it: the caller's ARN (for a role session, the assumed-role ARN).
    pub actor: String,
    /// The caller's identity type (`IAMUser`, `AssumedRole`, `Root`…).
    pub actor_type: String,
    /// `requestParameters.userName`.
    pub user_name: Option<String>,
    /// `requestParameters.groupName`.
    pub group_name: Option<String>,
    /// `requestParameters.newGroupName` of UpdateGroup (a group renamed).
    #[serde(default)]
    pub new_group_name: Option<String>,
    /// `requestParameters.accessKeyId` (UpdateAccessKey, DeleteAccessKey) or the created key's id
    /// (CreateAccessKey's `responseElements`).
    pub access_key_id: Option<String>,
    /// `requestParameters.status` of UpdateAccessKey.
    pub status: Option<String>,
    /// Tags set by TagUser (key, value).
    pub tags: Vec<(String, String)>,
    /// Tag keys removed by UntagUser.
    pub tag_keys: Vec<String>,
    /// The error code when the call failed (it changed nothing).
    pub error_code: Option<String>,
}

#[derive(Deserialize)]
struct TrailFile<'a> {
    #[serde(rename = "Records", borrow)]
    records: Vec<Record<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record<'a> {
    #[serde(rename = "eventID", borrow)]
    event_id: Cow<'a, str>,
    #[serde(borrow)]
    event_time: Cow<'a, str>,
    #[serde(borrow)]
    event_source: Cow<'a, str>,
    #[serde(borrow)]
    event_name: Cow<'a, str>,
    #[serde(default, borrow)]
    recipient_account_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    error_code: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    user_identity: Option<Identity<'a>>,
    #[serde(default, borrow)]
    request_parameters: Option<&'a RawValue>,
    #[serde(default, borrow)]
    response_elements: Option<&'a RawValue>,
    #[serde(default, borrow)]
    aws_region: Cow<'a, str>,
    #[serde(rename = "sourceIPAddress", default, borrow)]
    source_ip_address: Cow<'a, str>,
    #[serde(default, borrow)]
    user_agent: Cow<'a, str>,
    #[serde(default, borrow)]
    vpc_endpoint_id: Option<Cow<'a, str>>,
}

impl Record<'_> {
    /// The call, for where its key is used, when it was made with a long-term key.
    fn key_call(&self) -> Option<keyguard_core::usage::Call<'_>> {
        keyguard_aws::cloudtrail::key_call(keyguard_aws::cloudtrail::KeyCallFields {
            key_id: self.user_identity.as_ref()?.access_key_id.as_deref()?,
            event_time: &self.event_time,
            source_ip: &self.source_ip_address,
            user_agent: &self.user_agent,
            service: &self.event_source,
            region: &self.aws_region,
            vpc_endpoint: self.vpc_endpoint_id.as_deref(),
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Identity<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    arn: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    access_key_id: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Params {
    user_name: Option<String>,
    group_name: Option<String>,
    new_group_name: Option<String>,
    access_key_id: Option<String>,
    status: Option<String>,
    #[serde(default)]
    tags: Vec<TagParam>,
    #[serde(default)]
    tag_keys: Vec<String>,
}

#[derive(Deserialize)]
struct TagParam {
    key: String,
    #[serde(default)]
    value: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct CreatedKey {
    access_key: Option<CreatedKeyId>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreatedKeyId {
    access_key_id: String,
}

/// Decompresses one gzip file whole. The output buffer is sized from the gzip trailer (ISIZE),
/// so there is one allocation and no streaming state.
pub fn gunzip(bytes: &[u8]) -> Result<Vec<u8>> {
    if bytes.len() < 18 || bytes[0] != 0x1f || bytes[1] != 0x8b {
        return Err(Error::Trail {
            message: "not a gzip file".into(),
            source: None,
        });
    }
    let isize = u32::from_le_bytes(bytes[bytes.len() - 4..].try_into().expect("4 bytes")) as usize;
    let mut out = vec![0u8; isize];
    let mut d = libdeflater::Decompressor::new();
    let n = d
        .gzip_decompress(bytes, &mut out)
        .map_err(|e| Error::Trail {
            message: format!("gzip: {e} (truncated or corrupt file?)"),
            source: Some(Box::new(e)),
        })?;
    out.truncate(n);
    Ok(out)
}

/// What one trail file holds for the report: the followed IAM events and where keys were used.
#[derive(Debug, Default)]
pub struct Parsed {
    /// The followed IAM events, in the file's order.
    pub events: Vec<TrailEvent>,
    /// The calls made with long-term keys, aggregated.
    pub usage: keyguard_core::usage::Usage,
}

/// Parses one decompressed trail file and keeps the followed IAM events.
pub fn parse(json: &[u8]) -> Result<Vec<TrailEvent>> {
    Ok(parse_all(json)?.events)
}

/// Parses one decompressed trail file: the followed IAM events, and every call made with a
/// long-term key counted where it was used.
pub fn parse_all(json: &[u8]) -> Result<Parsed> {
    let file: TrailFile = serde_json::from_slice(json).map_err(|e| Error::Trail {
        message: format!("not a CloudTrail log file (expected {{\"Records\": [...]}}): {e}"),
        source: Some(Box::new(e)),
    })?;
    let mut out = Vec::new();
    let mut usage = keyguard_core::usage::Usage::default();
    for r in file.records {
        if let Some(call) = r.key_call() {
            usage.add(&call);
        }
        if r.event_source != "iam.amazonaws.com" || !FOLLOWED.contains(&r.event_name.as_ref()) {
            continue;
        }
        let time = DateTime::parse_from_rfc3339(&r.event_time)
            .map_err(|e| Error::Trail {
                message: format!("event {}: eventTime: {e}", r.event_id),
                source: Some(Box::new(e)),
            })?
            .with_timezone(&Utc);
        let params: Params = match r.request_parameters {
            Some(raw) if raw.get() != "null" => {
                serde_json::from_str(raw.get()).map_err(|e| Error::Trail {
                    message: format!("event {}: requestParameters: {e}", r.event_id),
                    source: Some(Box::new(e)),
                })?
            }
            _ => Params::default(),
        };
        let created = match (r.event_name.as_ref(), r.response_elements) {
            ("CreateAccessKey", Some(raw)) if raw.get() != "null" => {
                serde_json::from_str::<CreatedKey>(raw.get())
                    .ok()
                    .and_then(|c| c.access_key)
                    .map(|k| k.access_key_id)
            }
            _ => None,
        };
        let identity = r.user_identity.as_ref();
        out.push(TrailEvent {
            id: r.event_id.into_owned(),
            time,
            account: r
                .recipient_account_id
                .map(Cow::into_owned)
                .unwrap_or_default(),
            name: r.event_name.into_owned(),
            actor: identity
                .and_then(|i| i.arn.as_deref())
                .unwrap_or("")
                .to_string(),
            actor_type: identity
                .and_then(|i| i.kind.as_deref())
                .unwrap_or("")
                .to_string(),
            user_name: params.user_name,
            group_name: params.group_name,
            new_group_name: params.new_group_name,
            access_key_id: params.access_key_id.or(created),
            status: params.status,
            tags: params.tags.into_iter().map(|t| (t.key, t.value)).collect(),
            tag_keys: params.tag_keys,
            error_code: r.error_code.map(Cow::into_owned),
        });
    }
    Ok(Parsed { events: out, usage })
}

/// Parses single records (as `LookupEvents` returns each in `CloudTrailEvent`) and keeps the
/// followed IAM events.
pub fn parse_records(records: &[&str]) -> Result<Vec<TrailEvent>> {
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let mut json = String::with_capacity(records.iter().map(|r| r.len() + 1).sum::<usize>() + 16);
    json.push_str("{\"Records\":[");
    json.push_str(&records.join(","));
    json.push_str("]}");
    parse(json.as_bytes())
}

/// Reads one `.json.gz` trail file.
pub fn read_file(path: &Path) -> Result<Vec<TrailEvent>> {
    Ok(read_file_all(path)?.events)
}

/// Reads one `.json.gz` trail file: its followed events and where keys were used.
pub fn read_file_all(path: &Path) -> Result<Parsed> {
    let bytes = std::fs::read(path).map_err(|e| Error::Io(path.to_path_buf(), e))?;
    parse_all(&gunzip(&bytes)?)
}

/// What a scan found: the events (sorted by time, de-duplicated) and the files it could not read.
#[derive(Debug, Default)]
pub struct Scan {
    /// Followed events, oldest first, each `eventID` once.
    pub events: Vec<TrailEvent>,
    /// Files read.
    pub files: usize,
    /// Files that could not be read, and why (a truncated gzip, a JSON file that is not a trail
    /// file…). The report lists them; the rest is still used.
    pub problems: Vec<(PathBuf, String)>,
    /// Where each long-term key was used, over every file read.
    pub usage: keyguard_core::usage::Usage,
}

/// Every `*.json.gz` under `dir` (recursively), sorted.
pub fn trail_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(|e| Error::Io(d.clone(), e))? {
            let entry = entry.map_err(|e| Error::Io(d.clone(), e))?;
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.to_string_lossy().ends_with(".json.gz") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Scans `files` in parallel (rayon's pool, one file per worker at a time).
pub fn scan(files: &[PathBuf]) -> Scan {
    // Each worker folds its files into one running scan (its usage merged file by file), so
    // memory holds the followed events and one usage per worker, never one per file.
    let folded = files
        .par_iter()
        .map(|p| (p, read_file_all(p)))
        .fold(Scan::default, |mut acc, (path, result)| {
            match result {
                Ok(parsed) => {
                    acc.usage.merge(&parsed.usage);
                    acc.events.extend(parsed.events);
                }
                Err(e) => acc.problems.push((path.clone(), e.to_string())),
            }
            acc
        })
        .reduce(Scan::default, |mut a, b| {
            a.usage.merge(&b.usage);
            a.events.extend(b.events);
            a.problems.extend(b.problems);
            a
        });
    let mut problems = folded.problems;
    problems.sort();
    let mut seen = HashSet::new();
    let mut events: Vec<TrailEvent> = folded
        .events
        .into_iter()
        .filter(|e| seen.insert(e.id.clone()))
        .collect();
    events.sort_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id)));
    Scan {
        events,
        files: files.len(),
        problems,
        usage: folded.usage,
    }
}

/// The benchmark's deterministic trail generator, for the tests below.
#[cfg(test)]
#[path = "../benches/support/trailgen.rs"]
mod trailgen;

#[cfg(test)]
mod tests {
    use super::trailgen;
    use super::*;

    #[test]
    fn counts_where_each_long_term_key_is_used() {
        let json = br#"{"Records":[
          {"eventID":"1","eventTime":"2026-11-20T10:00:00Z","eventSource":"ec2.amazonaws.com","eventName":"DescribeInstances","awsRegion":"eu-west-1",
           "sourceIPAddress":"203.0.113.7","userAgent":"aws-cli/2.15.0 Python/3.11","vpcEndpointId":"vpce-1",
           "userIdentity":{"type":"IAMUser","accessKeyId":"AKIAOLDKEY000000001","userName":"ci"}},
          {"eventID":"2","eventTime":"2026-11-20T11:00:00Z","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","awsRegion":"us-east-1",
           "sourceIPAddress":"203.0.113.7","userAgent":"aws-cli/2.15.0 Python/3.11",
           "userIdentity":{"type":"IAMUser","accessKeyId":"AKIAOLDKEY000000001","userName":"ci"}},
          {"eventID":"3","eventTime":"2026-11-20T12:00:00Z","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","awsRegion":"us-east-1",
           "sourceIPAddress":"10.0.0.1","userAgent":"Boto3/1.34",
           "userIdentity":{"type":"AssumedRole","accessKeyId":"ASIASESSION00000001","arn":"arn:aws:sts::1:assumed-role/r/s"}}
        ]}"#;
        let parsed = parse_all(json).unwrap();
        assert_eq!(
            parsed.usage.keys.len(),
            1,
            "sessions (ASIA) are not the key"
        );
        let u = parsed.usage.of("AKIAOLDKEY000000001").unwrap();
        assert_eq!(u.calls, 2);
        assert_eq!(u.sources.values["203.0.113.7"].calls, 2);
        assert_eq!(u.regions.values.len(), 2);
        assert_eq!(u.vpc_endpoints.values["vpce-1"].calls, 1);
    }

    #[test]
    fn a_scan_merges_every_files_usage() {
        let dir = tempfile::tempdir().unwrap();
        trailgen::write_org_trail(dir.path(), 6, 300, 11).unwrap();
        let files = trail_files(dir.path()).unwrap();
        let all = scan(&files);
        let by_file: u64 = files
            .iter()
            .map(|f| {
                read_file_all(f)
                    .unwrap()
                    .usage
                    .keys
                    .values()
                    .map(|u| u.calls)
                    .sum::<u64>()
            })
            .sum();
        let total: u64 = all.usage.keys.values().map(|u| u.calls).sum();
        assert_eq!(total, by_file);
        assert!(total > 300, "a third of 1,800 calls: {total}");
    }

    #[test]
    fn keeps_followed_iam_events_with_who_and_what() {
        let json = br#"{"Records":[
          {"eventID":"1","eventTime":"2026-11-20T10:00:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","requestParameters":{"bucketName":"b"}},
          {"eventID":"2","eventTime":"2026-11-20T10:01:00Z","eventSource":"iam.amazonaws.com","eventName":"AddUserToGroup","recipientAccountId":"111122223333",
           "userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/Admin/alice"},
           "requestParameters":{"groupName":"IAMKeyRotationExemptionGroup","userName":"ci\"bot"}},
          {"eventID":"3","eventTime":"2026-11-20T10:02:00Z","eventSource":"iam.amazonaws.com","eventName":"TagUser",
           "requestParameters":{"userName":"ci","tags":[{"key":"keyguard:exemption-expires","value":"2026-12-31"}]}},
          {"eventID":"4","eventTime":"2026-11-20T10:03:00Z","eventSource":"iam.amazonaws.com","eventName":"CreateAccessKey","requestParameters":{"userName":"ci"},
           "responseElements":{"accessKey":{"accessKeyId":"AKIANEW","status":"Active","userName":"ci"}}},
          {"eventID":"5","eventTime":"2026-11-20T10:04:00Z","eventSource":"iam.amazonaws.com","eventName":"ListUsers","requestParameters":null}
        ]}"#;
        let events = parse(json).unwrap();
        assert_eq!(events.len(), 3);
        assert_eq!(
            events[0].actor,
            "arn:aws:sts::111122223333:assumed-role/Admin/alice"
        );
        assert_eq!(
            events[0].user_name.as_deref(),
            Some("ci\"bot"),
            "escaped strings"
        );
        assert_eq!(
            events[1].tags,
            [(
                "keyguard:exemption-expires".to_string(),
                "2026-12-31".to_string()
            )]
        );
        assert_eq!(events[2].access_key_id.as_deref(), Some("AKIANEW"));
    }

    #[test]
    fn bad_files_are_named_and_the_rest_is_read() {
        let dir = std::env::temp_dir().join(format!("keyguard-trail-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let written = trailgen::write_org_trail(&dir, 3, 2000, 7).unwrap();
        assert!(written.followed > 0);
        let good = trail_files(&dir).unwrap();
        assert_eq!(good.len(), 3);
        let whole = std::fs::read(&good[0]).unwrap();
        std::fs::write(dir.join("truncated.json.gz"), &whole[..whole.len() / 2]).unwrap();
        std::fs::write(
            dir.join("other.json.gz"),
            trailgen::gzip(br#"{"hello": "world"}"#),
        )
        .unwrap();
        // The same file again (an org trail copy): its events count once.
        std::fs::write(dir.join("copy.json.gz"), &whole).unwrap();
        let scan = scan(&trail_files(&dir).unwrap());
        assert_eq!(scan.files, 6);
        assert_eq!(scan.events.len(), written.followed, "duplicates removed");
        let problems: Vec<String> = scan
            .problems
            .iter()
            .map(|(p, m)| format!("{}: {m}", p.display()))
            .collect();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems
            .iter()
            .any(|p| p.contains("truncated.json.gz") && p.contains("gzip")));
        assert!(problems
            .iter()
            .any(|p| p.contains("other.json.gz") && p.contains("not a CloudTrail log file")));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
