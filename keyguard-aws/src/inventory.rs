//! Users and keys of one account, in as few IAM calls as the data allows.
//!
//! A scheduled evaluation of an account with U users costs:
//! `GenerateCredentialReport` (1–2 polls) + `GetCredentialReport` (1) +
//! `GetAccountAuthorizationDetails` (⌈U/1000⌉ pages), and then, only for users whose finding
//! needs key ids, `ListAccessKeys` (1) — plus `GetAccessKeyLastUsed` for a key whose creation time
//! does not match a credential-report slot (rare). The aws-samples tool makes 2 + U + K calls.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_iam::operation::get_credential_report::GetCredentialReportError;
use aws_sdk_iam::operation::list_access_keys::ListAccessKeysError;
use aws_sdk_iam::types::{EntityType, ReportStateType, StatusType};
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use keyguard_core::{evaluate, AccessKey, Finding, KeyStatus, Settings, User, UserRecord};

pub use crate::credential_report::{parse_credential_report, root_keys, ReportRow};
use crate::error::{Error, Result};
use crate::limits::CONCURRENCY;
use crate::time::to_chrono;

/// Every user of one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    /// The account id.
    pub account: String,
    /// Users sorted by name.
    pub users: Vec<UserRecord>,
    /// When IAM generated the credential report (it may be up to 4 hours old).
    pub report_generated: Option<DateTime<Utc>>,
    /// The root user's access keys (credential-report slots): a finding while any is Active.
    pub root_keys: Vec<AccessKey>,
}

/// A user's finding together with the keys it was made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluated {
    /// The user and keys.
    pub record: UserRecord,
    /// The verdict.
    pub finding: Finding,
}

impl Evaluated {
    /// Evaluates `record` at `now`.
    pub fn of(record: UserRecord, settings: &Settings, now: DateTime<Utc>) -> Self {
        let finding = evaluate(&record.user, &record.keys, settings, now);
        Evaluated { record, finding }
    }
}

/// How long to wait for IAM to generate the credential report.
#[derive(Debug, Clone, Copy)]
pub struct ReportPolling {
    /// Pause between polls.
    pub interval: Duration,
    /// Polls before giving up with [`Error::CredentialReportTimeout`].
    pub attempts: u32,
}

impl Default for ReportPolling {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(2),
            attempts: 30,
        }
    }
}

/// Generates (if needed) and downloads the account's credential report. IAM reuses a report
/// younger than 4 hours, so the first `GenerateCredentialReport` usually answers COMPLETE.
pub async fn credential_report(
    iam: &aws_sdk_iam::Client,
    polling: ReportPolling,
) -> Result<(Vec<u8>, Option<DateTime<Utc>>)> {
    for attempt in 1..=polling.attempts {
        let gen = iam
            .generate_credential_report()
            .send()
            .await
            .map_err(|e| Error::sdk("GenerateCredentialReport", e))?;
        if gen.state() == Some(&ReportStateType::Complete) {
            match iam.get_credential_report().send().await {
                Ok(report) => {
                    let content = report
                        .content()
                        .map(|b| b.as_ref().to_vec())
                        .unwrap_or_default();
                    return Ok((content, report.generated_time().map(to_chrono)));
                }
                Err(e) => match e.as_service_error() {
                    Some(
                        GetCredentialReportError::CredentialReportNotReadyException(_)
                        | GetCredentialReportError::CredentialReportNotPresentException(_)
                        | GetCredentialReportError::CredentialReportExpiredException(_),
                    ) => tracing::debug!(attempt, "credential report not ready yet"),
                    _ => return Err(Error::sdk("GetCredentialReport", e)),
                },
            }
        }
        if attempt < polling.attempts {
            tokio::time::sleep(polling.interval).await;
        }
    }
    Err(Error::CredentialReportTimeout(polling.attempts))
}

/// The root user's finding in an inventory, as an [`Evaluated`] whose record is the root user
/// (name and UserId `<root_account>`, ARN `arn:aws:iam::<account>:root`); `None` without an
/// active root key. Never planned, never remediated.
pub fn root_evaluated(inv: &Inventory, now: DateTime<Utc>) -> Option<Evaluated> {
    let finding = keyguard_core::evaluate_root(&inv.root_keys, now)?;
    Some(Evaluated {
        record: UserRecord {
            user: User {
                name: keyguard_core::ROOT_USER.into(),
                user_id: keyguard_core::ROOT_USER.into(),
                arn: format!("arn:aws:iam::{}:root", inv.account),
                path: "/".into(),
                ..User::default()
            },
            keys: inv.root_keys.clone(),
        },
        finding,
    })
}

/// All IAM users with UserId, path, groups and tags: `GetAccountAuthorizationDetails` filtered to
/// users, 1000 a page.
pub async fn users(iam: &aws_sdk_iam::Client) -> Result<Vec<User>> {
    let mut out = Vec::new();
    let mut pages = iam
        .get_account_authorization_details()
        .filter(EntityType::User)
        .max_items(1000)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| Error::sdk("GetAccountAuthorizationDetails", e))?;
        for u in page.user_detail_list() {
            out.push(User {
                name: u.user_name().unwrap_or_default().to_string(),
                user_id: u.user_id().unwrap_or_default().to_string(),
                arn: u.arn().unwrap_or_default().to_string(),
                path: u.path().unwrap_or("/").to_string(),
                groups: u.group_list().to_vec(),
                tags: u
                    .tags()
                    .iter()
                    .map(|t| (t.key().to_string(), t.value().to_string()))
                    .collect(),
            });
        }
    }
    Ok(out)
}

/// Joins users with credential-report rows by ARN. Users missing from the report (created after
/// it was generated) come back separately: their keys must be read live.
pub fn join(users: Vec<User>, rows: Vec<ReportRow>) -> (Vec<UserRecord>, Vec<User>) {
    let mut by_arn: HashMap<String, ReportRow> =
        rows.into_iter().map(|r| (r.arn.clone(), r)).collect();
    let mut records = Vec::new();
    let mut missing = Vec::new();
    for user in users {
        match by_arn.remove(&user.arn) {
            Some(row) => records.push(UserRecord {
                user,
                keys: row.keys,
            }),
            None => missing.push(user),
        }
    }
    (records, missing)
}

/// Reads the whole account: credential report + users, joined. Users newer than the report get
/// their keys live.
pub async fn read_inventory(
    iam: &aws_sdk_iam::Client,
    account: &str,
    polling: ReportPolling,
) -> Result<Inventory> {
    let (report, generated) = credential_report(iam, polling).await?;
    let rows = parse_credential_report(&report)?;
    let root_keys = root_keys(&rows);
    let (mut records, missing) = join(users(iam).await?, rows);
    let late: Vec<UserRecord> = futures::stream::iter(missing)
        .map(|user| async move {
            let keys = read_keys_live(iam, &user.name).await?;
            Ok::<_, Error>(keys.map(|keys| UserRecord { user, keys }))
        })
        .buffer_unordered(CONCURRENCY)
        .try_filter_map(|r| async move { Ok(r) })
        .try_collect()
        .await?;
    records.extend(late);
    records.sort_by(|a, b| a.user.name.cmp(&b.user.name));
    Ok(Inventory {
        account: account.to_string(),
        users: records,
        report_generated: generated,
        root_keys,
    })
}

/// A key as ListAccessKeys shows it (no last use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The access key id.
    pub id: String,
    /// Active or Inactive.
    pub status: KeyStatus,
    /// Creation time.
    pub created: DateTime<Utc>,
}

/// ListAccessKeys of one user, every page. `None` when the user no longer exists.
pub async fn list_keys(iam: &aws_sdk_iam::Client, user_name: &str) -> Result<Option<Vec<Listed>>> {
    let items = iam
        .list_access_keys()
        .user_name(user_name)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await;
    match items {
        Ok(items) => Ok(Some(
            items
                .into_iter()
                .map(|k| Listed {
                    id: k.access_key_id().unwrap_or_default().to_string(),
                    status: if k.status() == Some(&StatusType::Active) {
                        KeyStatus::Active
                    } else {
                        KeyStatus::Inactive
                    },
                    created: k.create_date().map(to_chrono).unwrap_or_default(),
                })
                .collect(),
        )),
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(ListAccessKeysError::NoSuchEntityException(_))
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(Error::sdk("ListAccessKeys", e)),
    }
}

/// The user of this account who holds the key `key_id`: GetAccessKeyLastUsed names the key's
/// user, and that user's ListAccessKeys here confirms it (an id a payload names is not taken on
/// its word: the emulator's GetAccessKeyLastUsed even answers for other accounts' keys). `None`
/// when no user of this account holds it (deleted, or another account's).
pub async fn key_holder(iam: &aws_sdk_iam::Client, key_id: &str) -> Result<Option<String>> {
    use aws_sdk_iam::error::ProvideErrorMetadata;
    let named = match iam
        .get_access_key_last_used()
        .access_key_id(key_id)
        .send()
        .await
    {
        Ok(out) => out.user_name().map(str::to_string),
        Err(e) if e.code() == Some("NoSuchEntity") => None,
        Err(e) => return Err(Error::sdk("GetAccessKeyLastUsed", e)),
    };
    let Some(user) = named else {
        return Ok(None);
    };
    let mut pages = iam
        .list_access_keys()
        .user_name(&user)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = match page {
            Ok(p) => p,
            Err(e) if e.code() == Some("NoSuchEntity") => return Ok(None),
            Err(e) => return Err(Error::sdk("ListAccessKeys", e)),
        };
        if page
            .access_key_metadata()
            .iter()
            .any(|k| k.access_key_id() == Some(key_id))
        {
            return Ok(Some(user));
        }
    }
    Ok(None)
}

/// When a key was last used, live (GetAccessKeyLastUsed); `None` when never.
pub async fn last_used(iam: &aws_sdk_iam::Client, key_id: &str) -> Result<Option<DateTime<Utc>>> {
    let out = iam
        .get_access_key_last_used()
        .access_key_id(key_id)
        .send()
        .await
        .map_err(|e| Error::sdk("GetAccessKeyLastUsed", e))?;
    Ok(out
        .access_key_last_used()
        .and_then(|u| u.last_used_date())
        .map(to_chrono))
}

/// Reads one user's keys live: ListAccessKeys plus GetAccessKeyLastUsed for each key. This is
/// what the remediator re-reads before any write. `None` when the user no longer exists.
pub async fn read_keys_live(
    iam: &aws_sdk_iam::Client,
    user_name: &str,
) -> Result<Option<Vec<AccessKey>>> {
    let Some(listed) = list_keys(iam, user_name).await? else {
        return Ok(None);
    };
    let mut keys = Vec::with_capacity(listed.len());
    for (i, k) in listed.into_iter().enumerate() {
        let used = last_used(iam, &k.id).await?;
        keys.push(AccessKey {
            id: Some(k.id),
            slot: (i + 1) as u8,
            status: k.status,
            created: k.created,
            last_used: used,
        });
    }
    Ok(Some(keys))
}

/// Gives report-slot keys their ids: one ListAccessKeys, matched to slots by creation second;
/// a key that matches no slot gets its last use from GetAccessKeyLastUsed. `None` when the user
/// no longer exists.
pub async fn with_key_ids(
    iam: &aws_sdk_iam::Client,
    record: &UserRecord,
) -> Result<Option<Vec<AccessKey>>> {
    let Some(listed) = list_keys(iam, &record.user.name).await? else {
        return Ok(None);
    };
    let mut keys = Vec::with_capacity(listed.len());
    for (i, k) in listed.into_iter().enumerate() {
        let slot = record
            .keys
            .iter()
            .find(|s| s.created.timestamp() == k.created.timestamp());
        let used = match slot {
            Some(s) => s.last_used,
            None => last_used(iam, &k.id).await?,
        };
        keys.push(AccessKey {
            id: Some(k.id),
            slot: slot.map_or((i + 1) as u8, |s| s.slot),
            status: k.status,
            created: k.created,
            last_used: used,
        });
    }
    Ok(Some(keys))
}

/// Evaluates every user of an inventory at `now`; users whose finding needs key ids get them
/// (bounded concurrency) and are evaluated again so the annotation names the keys. A user deleted
/// meanwhile is dropped (the next scheduled run marks it NOT_APPLICABLE).
pub async fn evaluate_inventory(
    iam: &aws_sdk_iam::Client,
    inventory: Inventory,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Result<Vec<Evaluated>> {
    let evaluated = inventory
        .users
        .into_iter()
        .map(|record| Evaluated::of(record, settings, now));
    futures::stream::iter(evaluated)
        .map(|e| async move {
            if !e.finding.needs_key_ids() || e.record.keys.iter().all(|k| k.id.is_some()) {
                return Ok(Some(e));
            }
            let Some(keys) = with_key_ids(iam, &e.record).await? else {
                return Ok(None);
            };
            let record = UserRecord {
                user: e.record.user,
                keys,
            };
            Ok::<_, Error>(Some(Evaluated::of(record, settings, now)))
        })
        .buffered(CONCURRENCY)
        .try_filter_map(|e| async move { Ok(e) })
        .try_collect()
        .await
}

/// One user by name from IAM (GetUser + ListGroupsForUser, paged): for when no Config item is at
/// hand. `None` when the user does not exist.
pub async fn user_by_name(iam: &aws_sdk_iam::Client, name: &str) -> Result<Option<User>> {
    use aws_sdk_iam::operation::get_user::GetUserError;
    let out = match iam.get_user().user_name(name).send().await {
        Ok(out) => out,
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(GetUserError::NoSuchEntityException(_))
            ) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(Error::sdk("GetUser", e)),
    };
    let Some(u) = out.user() else { return Ok(None) };
    let groups = iam
        .list_groups_for_user()
        .user_name(name)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| Error::sdk("ListGroupsForUser", e))?;
    Ok(Some(User {
        name: u.user_name().to_string(),
        user_id: u.user_id().to_string(),
        arn: u.arn().to_string(),
        path: u.path().to_string(),
        groups: groups.iter().map(|g| g.group_name().to_string()).collect(),
        tags: u
            .tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_iam::operation::generate_credential_report::GenerateCredentialReportOutput;
    use aws_sdk_iam::operation::get_account_authorization_details::GetAccountAuthorizationDetailsOutput;
    use aws_sdk_iam::operation::get_credential_report::GetCredentialReportOutput;
    use aws_sdk_iam::operation::list_access_keys::ListAccessKeysOutput;
    use aws_sdk_iam::types::error::{CredentialReportNotReadyException, NoSuchEntityException};
    use aws_sdk_iam::types::{AccessKeyMetadata, UserDetail};
    use aws_sdk_iam::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::Blob;

    const REPORT: &str = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated
<root_account>,arn:aws:iam::111111111111:root,2020-01-01T00:00:00+00:00,not_supported,2020-01-01T00:00:00+00:00,not_supported,not_supported,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A
ci+deploy@x,arn:aws:iam::111111111111:user/ci/ci+deploy@x,2020-01-01T00:00:00+00:00,false,N/A,N/A,N/A,false,true,2026-01-01T00:00:00+00:00,2026-05-01T10:00:00+00:00,us-east-1,s3,false,2025-06-01T00:00:00+00:00,N/A,N/A,N/A,false,N/A,false,N/A
nokeys,arn:aws:iam::111111111111:user/nokeys,2020-01-01T00:00:00+00:00,false,N/A,N/A,N/A,false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A
";

    fn fast() -> ReportPolling {
        ReportPolling {
            interval: Duration::from_millis(1),
            attempts: 5,
        }
    }

    #[test]
    fn parses_slots_and_keeps_root_apart() {
        let all = parse_credential_report(REPORT.as_bytes()).unwrap();
        assert!(root_keys(&all).is_empty(), "the fixture's root has no key");
        let root_with_key = REPORT.replace(
            "not_supported,true,false,N/A,N/A,N/A,N/A,false",
            "not_supported,true,true,2025-01-01T00:00:00+00:00,2026-05-01T00:00:00+00:00,us-east-1,s3,false",
        );
        let keys = root_keys(&parse_credential_report(root_with_key.as_bytes()).unwrap());
        assert_eq!(keys.len(), 1);
        assert!(keys[0].is_active() && keys[0].last_used.is_some());
        let rows: Vec<ReportRow> = all
            .into_iter()
            .filter(|r| r.user != keyguard_core::ROOT_USER)
            .collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].user, "ci+deploy@x");
        assert_eq!(rows[0].keys.len(), 2);
        assert_eq!(rows[0].keys[0].status, KeyStatus::Active);
        assert!(rows[0].keys[0].last_used.is_some());
        assert_eq!(rows[0].keys[1].status, KeyStatus::Inactive);
        assert_eq!(rows[0].keys[1].last_used, None);
        assert!(rows[1].keys.is_empty());
        assert!(parse_credential_report(b"user,arn\nx").is_err());
        // An unquoted user name with commas.
        let unquoted = REPORT.replace(
            "ci+deploy@x,arn:aws:iam::111111111111:user/ci/ci+deploy@x",
            "a,b=c,arn:aws:iam::111111111111:user/a,b=c",
        );
        let rows = parse_credential_report(unquoted.as_bytes()).unwrap();
        let rows: Vec<&ReportRow> = rows
            .iter()
            .filter(|r| r.user != keyguard_core::ROOT_USER)
            .collect();
        assert_eq!(rows[0].user, "a,b=c");
        assert_eq!(rows[0].arn, "arn:aws:iam::111111111111:user/a,b=c");
        assert_eq!(rows[0].keys.len(), 2);
    }

    #[tokio::test]
    async fn polls_until_the_report_is_ready() {
        let gen = mock!(Client::generate_credential_report)
            .sequence()
            .output(|| {
                GenerateCredentialReportOutput::builder()
                    .state(ReportStateType::Started)
                    .build()
            })
            .output(|| {
                GenerateCredentialReportOutput::builder()
                    .state(ReportStateType::Inprogress)
                    .build()
            })
            .output(|| {
                GenerateCredentialReportOutput::builder()
                    .state(ReportStateType::Complete)
                    .build()
            })
            .times(2)
            .build();
        let get = mock!(Client::get_credential_report)
            .sequence()
            .error(|| {
                GetCredentialReportError::CredentialReportNotReadyException(
                    CredentialReportNotReadyException::builder().build(),
                )
            })
            .output(|| {
                GetCredentialReportOutput::builder()
                    .content(Blob::new(REPORT))
                    .build()
            })
            .build();
        let iam = mock_client!(aws_sdk_iam, RuleMode::MatchAny, [&gen, &get]);
        let (csv, _) = credential_report(&iam, fast()).await.unwrap();
        assert_eq!(csv, REPORT.as_bytes());
        assert_eq!((gen.num_calls(), get.num_calls()), (4, 2));
    }

    #[tokio::test]
    async fn gives_up_on_a_report_that_never_completes() {
        let gen = mock!(Client::generate_credential_report).then_output(|| {
            GenerateCredentialReportOutput::builder()
                .state(ReportStateType::Inprogress)
                .build()
        });
        let iam = mock_client!(aws_sdk_iam, RuleMode::MatchAny, [&gen]);
        let err = credential_report(&iam, fast()).await.unwrap_err();
        assert!(matches!(err, Error::CredentialReportTimeout(5)), "{err}");
    }

    fn throttled() -> aws_smithy_runtime_api::http::Response {
        let body = "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>r</RequestId></ErrorResponse>";
        aws_smithy_runtime_api::http::Response::new(400.try_into().unwrap(), SdkBody::from(body))
    }

    fn retrying(c: aws_sdk_iam::config::Builder) -> aws_sdk_iam::config::Builder {
        c.retry_config(crate::sdk::retry_config().with_initial_backoff(Duration::from_millis(1)))
    }

    #[tokio::test]
    async fn throttling_is_retried_then_succeeds() {
        let rule = mock!(Client::get_account_authorization_details)
            .sequence()
            .http_response(throttled)
            .times(3)
            .output(|| {
                GetAccountAuthorizationDetailsOutput::builder()
                    .user_detail_list(UserDetail::builder().user_name("a").arn("arn:a").build())
                    .build()
            })
            .build();
        let iam = mock_client!(aws_sdk_iam, RuleMode::Sequential, [&rule], retrying);
        let users = users(&iam).await.unwrap();
        assert_eq!(users.len(), 1);
        assert_eq!(rule.num_calls(), 4);
    }

    #[tokio::test]
    async fn persistent_throttling_is_a_typed_error() {
        let rule = mock!(Client::get_account_authorization_details)
            .sequence()
            .http_response(throttled)
            .times(8)
            .build();
        let iam = mock_client!(aws_sdk_iam, RuleMode::Sequential, [&rule], retrying);
        let err = users(&iam).await.unwrap_err();
        assert!(err.is_throttling(), "{err:?}");
        assert_eq!(rule.num_calls(), 8, "max_attempts");
    }

    #[tokio::test]
    async fn users_are_paged_1000_at_a_time() {
        let p1 = mock!(Client::get_account_authorization_details)
            .match_requests(|r| r.marker().is_none() && r.max_items() == Some(1000))
            .then_output(|| {
                GetAccountAuthorizationDetailsOutput::builder()
                    .user_detail_list(
                        UserDetail::builder()
                            .user_name("a")
                            .arn("arn:a")
                            .group_list("g")
                            .build(),
                    )
                    .is_truncated(true)
                    .marker("m2")
                    .build()
            });
        let p2 = mock!(Client::get_account_authorization_details)
            .match_requests(|r| r.marker() == Some("m2"))
            .then_output(|| {
                GetAccountAuthorizationDetailsOutput::builder()
                    .user_detail_list(UserDetail::builder().user_name("b").arn("arn:b").build())
                    .is_truncated(false)
                    .build()
            });
        let iam = mock_client!(aws_sdk_iam, RuleMode::Sequential, [&p1, &p2]);
        let users = users(&iam).await.unwrap();
        assert_eq!(
            users.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(users[0].groups, ["g"]);
    }

    fn meta(id: &str, created: i64) -> AccessKeyMetadata {
        AccessKeyMetadata::builder()
            .access_key_id(id)
            .status(StatusType::Active)
            .create_date(aws_smithy_types::DateTime::from_secs(created))
            .build()
    }

    #[tokio::test]
    async fn key_ids_are_paged_and_matched_to_slots() {
        let created = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .timestamp();
        let p1 = mock!(Client::list_access_keys)
            .match_requests(|r| r.marker().is_none())
            .then_output(move || {
                ListAccessKeysOutput::builder()
                    .access_key_metadata(meta("AKIAAAAAAAAAAAAAONE1", created))
                    .is_truncated(true)
                    .marker("m")
                    .build()
                    .unwrap()
            });
        let p2 = mock!(Client::list_access_keys)
            .match_requests(|r| r.marker() == Some("m"))
            .then_output(|| {
                ListAccessKeysOutput::builder()
                    .access_key_metadata(meta("AKIAAAAAAAAAAAAATWO2", 1_700_000_000))
                    .build()
                    .unwrap()
            });
        let lu = mock!(Client::get_access_key_last_used)
            .match_requests(|r| r.access_key_id() == Some("AKIAAAAAAAAAAAAATWO2"))
            .then_output(|| aws_sdk_iam::operation::get_access_key_last_used::GetAccessKeyLastUsedOutput::builder().build());
        let iam = mock_client!(aws_sdk_iam, RuleMode::MatchAny, [&p1, &p2, &lu]);
        let rows: Vec<ReportRow> = parse_credential_report(REPORT.as_bytes())
            .unwrap()
            .into_iter()
            .filter(|r| r.user != keyguard_core::ROOT_USER)
            .collect();
        let record = UserRecord {
            user: User {
                name: "ci+deploy@x".into(),
                ..User::default()
            },
            keys: rows[0].keys[..1].to_vec(),
        };
        let keys = with_key_ids(&iam, &record).await.unwrap().unwrap();
        assert_eq!(keys[0].id.as_deref(), Some("AKIAAAAAAAAAAAAAONE1"));
        assert_eq!(
            keys[0].last_used, rows[0].keys[0].last_used,
            "last use taken from the matching slot"
        );
        assert_eq!(keys[1].id.as_deref(), Some("AKIAAAAAAAAAAAAATWO2"));
        assert_eq!(
            lu.num_calls(),
            1,
            "only the unmatched key costs a GetAccessKeyLastUsed"
        );
    }

    #[tokio::test]
    async fn a_user_deleted_meanwhile_is_none() {
        let gone = mock!(Client::list_access_keys).then_error(|| {
            ListAccessKeysError::NoSuchEntityException(NoSuchEntityException::builder().build())
        });
        let iam = mock_client!(aws_sdk_iam, RuleMode::MatchAny, [&gone]);
        assert_eq!(read_keys_live(&iam, "gone").await.unwrap(), None);
    }
}
