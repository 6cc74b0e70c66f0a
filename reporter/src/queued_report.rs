//! The weekly and monthly reports at organization scale, on SQS like the remediator's sweep.
//!
//! - [`dispatch`] (the schedule): lists the accounts once, records the run, writes the evidence
//!   folder's `accounts.json` and `collected.json` to `<REPORT_S3_URI>/evidence/<period>/`, and
//!   sends one [`ReportItem::Account`] per account.
//! - Each account, in its own invocation, writes its slice of that evidence folder: the
//!   credential report, the users, the key ids, the Config results of the rule, and the
//!   period's CloudTrail events keyguard follows (LookupEvents, paced; or the account's org-trail
//!   files of the period). A failure is retried for that account alone; on its last delivery the
//!   account is counted as failed (the report then says its inventory could not be read).
//! - When every account is in, [`ReportItem::Finalize`] builds the report from the evidence
//!   folder (what `keyguard report --evidence s3://…` reads too) and delivers it.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use chrono::{DateTime, Utc};
use keyguard_aws::collect::{account_files, accounts_file, collected_file, EvidenceFile, Sink};
use keyguard_aws::inventory::ReportPolling;
use keyguard_aws::org::organization_accounts;
use keyguard_aws::sdk::for_account;
use keyguard_aws::state::Runs;
use keyguard_aws::{queue, s3};
use keyguard_core::Account;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{info, warn, Instrument};

use crate::deliver::produce_from_folder;
use crate::error::{Error, Result};
use crate::function::Reporter;
use crate::live::{ConfigSource, TrailSource, IAM_EVENTS_REGION};
use crate::period::{Period, PeriodKind};
use crate::scheduled::Outcome;

/// One message of the report queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ReportItem {
    /// One account's slice of the run's evidence folder.
    Account {
        /// The run's id (`report-weekly-2026-11-20`).
        run: String,
        /// The account.
        account: Account,
        /// The report's period.
        period: Period,
    },
    /// Every account is in: build the report from the evidence folder and deliver it.
    Finalize {
        /// The run's id.
        run: String,
        /// The report's period.
        period: Period,
        /// The report date.
        as_of: DateTime<Utc>,
    },
}

/// What the dispatch did.
#[derive(Debug, Clone, Serialize)]
pub struct Dispatched {
    /// The run's id.
    pub run: String,
    /// Accounts handed out (0: dispatched already).
    pub accounts: usize,
    /// Where the evidence folder is written.
    pub evidence: String,
}

/// The evidence folder of a period: `<REPORT_S3_URI>/evidence/<period>`.
pub fn evidence_uri(r: &Reporter, period: &Period) -> Result<String> {
    let base = r.delivery.s3_uri.as_deref().ok_or_else(|| {
        Error::InvalidParameter("a queued report needs REPORT_S3_URI for its evidence".into())
    })?;
    Ok(format!(
        "{}/evidence/{}",
        base.trim_end_matches('/'),
        period.id()
    ))
}

fn runs(r: &Reporter) -> Result<Runs<'_>> {
    r.state.as_ref().map(Runs).ok_or_else(|| {
        Error::InvalidParameter(
            "the report queue needs the state table (KEYGUARD_STATE_TABLE)".into(),
        )
    })
}

async fn enqueue(r: &Reporter, items: &[ReportItem]) -> Result<()> {
    let url = r
        .queue
        .as_deref()
        .ok_or_else(|| Error::InvalidParameter("no REPORT_QUEUE_URL is configured".into()))?;
    let bodies: Vec<String> = items
        .iter()
        .map(|i| serde_json::to_string(i).expect("plain data serializes"))
        .collect();
    queue::send_all(&aws_sdk_sqs::Client::new(&r.sdk), url, &bodies).await?;
    Ok(())
}

/// Hands out the report of `kind` as of `as_of`: one message per account.
pub async fn dispatch(r: &Reporter, kind: PeriodKind, as_of: DateTime<Utc>) -> Result<Dispatched> {
    let period = Period::of(kind, as_of.date_naive());
    let run = format!("report-{}", period.id());
    let evidence = evidence_uri(r, &period)?;
    let accounts = organization_accounts(&r.sdk, &r.live.role, &r.filter).await?;
    let meta = serde_json::json!({"period": period, "as_of": as_of}).to_string();
    if !runs(r)?
        .create(&run, &meta, Some(accounts.len()), as_of)
        .await?
    {
        info!(run, "dispatched already");
        return Ok(Dispatched {
            run,
            accounts: 0,
            evidence,
        });
    }
    let sink = Sink::new(&evidence, Some(&r.sdk), r.delivery.bucket_owner.as_deref())?;
    sink.put(&accounts_file(&accounts)).await?;
    sink.put(&collected_file(
        as_of,
        &format!("keyguard reporter {}", env!("CARGO_PKG_VERSION")),
        &r.caller.account,
    ))
    .await?;
    let items: Vec<ReportItem> = if accounts.is_empty() {
        vec![ReportItem::Finalize {
            run: run.clone(),
            period,
            as_of,
        }]
    } else {
        accounts
            .iter()
            .map(|account| ReportItem::Account {
                run: run.clone(),
                account: account.clone(),
                period,
            })
            .collect()
    };
    enqueue(r, &items).await?;
    info!(run, accounts = accounts.len(), "report dispatched");
    Ok(Dispatched {
        run,
        accounts: accounts.len(),
        evidence,
    })
}

/// Handles one SQS batch of the report queue; the messages to deliver again are returned.
pub async fn handle_batch(
    r: &Reporter,
    event: Value,
    now: DateTime<Utc>,
) -> Result<SqsBatchResponse> {
    let event: SqsEvent = serde_json::from_value(event)
        .map_err(|e| Error::MalformedEvent(format!("SQS event: {e}")))?;
    let mut failures = SqsBatchResponse::default();
    for queue::Delivery { id, receives, body } in queue::deliveries(event) {
        let result = match serde_json::from_str::<ReportItem>(&body) {
            Ok(item) => handle_item(r, item, receives, now).await,
            Err(e) => Err(Error::MalformedEvent(format!("not a report item: {e}"))),
        };
        if let Err(e) = result {
            warn!(message = %id, receives, error = %e, "report item failed");
            failures.add_failure(id);
        }
    }
    Ok(failures)
}

async fn handle_item(
    r: &Reporter,
    item: ReportItem,
    receives: u32,
    now: DateTime<Utc>,
) -> Result<()> {
    match item {
        ReportItem::Account {
            run,
            account,
            period,
        } => {
            let span = tracing::info_span!("account", run = %run, account = %account.id);
            async {
                let written = write_account(r, &account, &period).await;
                let last = receives >= r.max_receives;
                if written.is_err() && !last {
                    return written.map(|_| ());
                }
                let outcome = match &written {
                    Ok((files, digest)) => serde_json::json!({"files": files, "digest": digest}),
                    Err(e) => serde_json::json!({"error": keyguard_aws::chain(e)}),
                };
                if let Some((done, total)) = runs(r)?
                    .finish_account(
                        &run,
                        &account.id,
                        &outcome.to_string(),
                        written.is_err(),
                        now,
                    )
                    .await?
                {
                    if done >= total {
                        let as_of = match runs(r)?.get(&run).await? {
                            Some(run) => serde_json::from_str::<Value>(&run.meta)
                                .ok()
                                .and_then(|m| serde_json::from_value(m["as_of"].clone()).ok())
                                .unwrap_or(now),
                            None => now,
                        };
                        enqueue(
                            r,
                            &[ReportItem::Finalize {
                                run: run.clone(),
                                period,
                                as_of,
                            }],
                        )
                        .await?;
                    }
                }
                written.map(|_| ())
            }
            .instrument(span)
            .await
        }
        ReportItem::Finalize { run, period, as_of } => {
            let span = tracing::info_span!("finalize", run = %run);
            finalize(r, &run, &period, as_of)
                .instrument(span)
                .await
                .map(|_| ())
        }
    }
}

/// One account's slice of the evidence folder. Returns the files written and the slice's digest
/// (kept in the state table: the report uses the slice only if it still matches).
async fn write_account(
    r: &Reporter,
    account: &Account,
    period: &Period,
) -> Result<(usize, String)> {
    let cfg = for_account(&r.sdk, &r.caller, &account.id, &r.live.role).await?;
    let (mut files, _) = account_files(
        &cfg,
        &account.id,
        &r.options.rule_name,
        ReportPolling::default(),
    )
    .await?;
    if let ConfigSource::Aggregator(name) = &r.live.config {
        // Config's results come from the aggregator (the member role reads no Config), keyguard's
        // rule by the name of the pack's copy when the account has the pack.
        files.retain(|f| {
            !f.path.ends_with("config-compliance.json")
                && !f.path.ends_with(keyguard_aws::evidence::PACK_FILE)
        });
        let client = aws_sdk_config::Client::new(&r.sdk);
        let region = r
            .sdk
            .region()
            .map_or(IAM_EVENTS_REGION.to_string(), |r| r.to_string());
        let rule = &r.options.rule_name;
        let pack = match keyguard_aws::conformance_pack::aggregate_rules(
            &client,
            name,
            &account.id,
            &region,
        )
        .await
        {
            Ok(rules) => keyguard_core::pack::of_pack(rules, rule),
            Err(e) => {
                tracing::warn!(account = %account.id, "the account's rules not read through the aggregator: {e}");
                None
            }
        };
        match pack
            .as_deref()
            .map(|p| keyguard_core::pack::keyguard_rule(p, rule))
        {
            // Which rule is keyguard's cannot be told: no verdicts in the slice (the report says
            // "not collected" for the account; its pack's rows still show the rules).
            Some(Err(why)) => tracing::warn!(account = %account.id, "{why}"),
            found => {
                let deployed = match found {
                    Some(Ok(name)) => name.to_string(),
                    _ => rule.to_string(),
                };
                let results = keyguard_aws::config::aggregate_results(
                    &client,
                    name,
                    &deployed,
                    &account.id,
                    &region,
                )
                .await?;
                files.push(keyguard_aws::collect::compliance_file(
                    &account.id,
                    &deployed,
                    results,
                ));
            }
        }
        if let Some(pack) = pack {
            files.push(keyguard_aws::collect::pack_file(&account.id, pack));
        }
    }
    match &r.live.trail {
        TrailSource::LookupEvents => {
            files.push(
                crate::live::lookup_trail_file(
                    &cfg,
                    &account.id,
                    period.start(),
                    period.end(),
                    &format!("keyguard-lookup-{}", period.id()),
                )
                .await?,
            );
            let (usage, _) =
                crate::usage_input::looked_up(&cfg, &r.options.settings, period.end()).await?;
            files.push(crate::usage_input::evidence_file(&account.id, &usage));
        }
        TrailSource::S3(uri) => {
            files.extend(org_trail_files(r, uri, &account.id, period).await?);
            let owner = r.live.trail_owner.as_deref();
            // us-east-1's files are in the slice (their usage is counted from them); the other
            // Regions' only as the account's aggregate.
            let (usage, _, problems) =
                crate::usage_input::other_regions(&r.sdk, uri, owner, &account.id, period).await;
            for p in problems {
                warn!(problem = %p, "trail file");
            }
            files.push(crate::usage_input::evidence_file(&account.id, &usage));
        }
        TrailSource::Folder(_) => {}
    }
    let sink = Sink::new(
        &evidence_uri(r, period)?,
        Some(&r.sdk),
        r.delivery.bucket_owner.as_deref(),
    )?;
    let mut manifest = keyguard_aws::manifest::Manifest::default();
    for f in &files {
        sink.put(f).await?;
        manifest.add(&f.path, &f.bytes);
    }
    let digest = manifest.slice_digest(&account.id).unwrap_or_default();
    Ok((files.len(), digest))
}

/// The account's org-trail files of the period's days (us-east-1, where IAM's events are), as
/// evidence files under `cloudtrail/`.
async fn org_trail_files(
    r: &Reporter,
    uri: &str,
    account: &str,
    period: &Period,
) -> Result<Vec<EvidenceFile>> {
    let client = s3::client(&r.sdk);
    let (bucket, prefix) = s3::split_uri(uri);
    let b = s3::Bucket::new(&bucket, r.live.trail_owner.as_deref());
    let mut out = Vec::new();
    for day in period.days() {
        let day_prefix = crate::live::trail_day_prefix(&prefix, account, day);
        for key in s3::list_keys(&client, b, &day_prefix).await? {
            if !key.ends_with(".json.gz") {
                continue;
            }
            let bytes = s3::get(&client, b, &key).await?;
            let name = key.rsplit('/').next().unwrap_or(&key).to_string();
            out.push(EvidenceFile {
                path: format!(
                    "cloudtrail/AWSLogs/{account}/CloudTrail/{IAM_EVENTS_REGION}/{}/{name}",
                    day.format("%Y/%m/%d")
                ),
                bytes,
            });
        }
    }
    Ok(out)
}

/// Builds the report from the run's evidence folder and delivers it, once.
pub async fn finalize(
    r: &Reporter,
    run: &str,
    period: &Period,
    as_of: DateTime<Utc>,
) -> Result<Option<Outcome>> {
    let runs = runs(r)?;
    if runs.get(run).await?.is_some_and(|s| s.has("finalized")) {
        return Ok(None);
    }
    let evidence = evidence_uri(r, period)?;
    let dir = tempfile::tempdir().map_err(|e| Error::Io(std::env::temp_dir(), e))?;
    let copied = keyguard_aws::collect::download(
        &r.sdk,
        &evidence,
        dir.path(),
        r.delivery.bucket_owner.as_deref(),
    )
    .await?;
    info!(copied, "evidence folder read");
    // Each slice as its account's invocation wrote it: the digests it recorded in the state
    // table, which whoever can write to the evidence prefix cannot change.
    let kept: std::collections::BTreeMap<String, String> = runs
        .accounts(run)
        .await?
        .into_iter()
        .filter_map(|(account, outcome, _)| {
            let v: Value = serde_json::from_str(&outcome).ok()?;
            Some((account, v["digest"].as_str()?.to_string()))
        })
        .collect();
    let folder = keyguard_aws::evidence::Evidence::open_with(dir.path(), &kept).map_err(|e| {
        Error::Input {
            message: format!("evidence folder {evidence}: {e}"),
            source: Some(Box::new(e)),
        }
    })?;
    // The folder's manifest of the slices that matched, for whoever reads the folder later
    // (`keyguard report --evidence`, the auditors).
    let (mut manifest, _) = keyguard_aws::manifest::Manifest::of_folder(dir.path());
    manifest
        .accounts
        .retain(|a, _| !folder.failed_slices.contains_key(a));
    Sink::new(&evidence, Some(&r.sdk), r.delivery.bucket_owner.as_deref())?
        .put(&keyguard_aws::collect::manifest_file(&manifest))
        .await?;
    let options = crate::evidence::Options {
        kind: period.kind,
        as_of: Some(as_of),
        ..r.options.clone()
    };
    let (report, delivered) = produce_from_folder(
        &folder,
        &options,
        as_of,
        Some(r.live.organization.clone()),
        &r.delivery,
        Some(&r.sdk),
        crate::sharded::SHARD_ACCOUNTS,
    )
    .await?;
    runs.claim(run, "finalized").await?;
    for p in &report.problems {
        warn!(problem = %p, "report input");
    }
    Ok(Some(Outcome {
        period: report.period.id(),
        delivered,
        problems: report.problems,
    }))
}
