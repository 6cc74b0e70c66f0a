//! Delivery: a local folder, S3, and SESv2 email to auditors (HTML body, CSVs attached, the MIME
//! built by `mail-builder`). Earlier reports (their `summary.json`) are read back from the same
//! place for the comparison and the trend.

use std::path::PathBuf;

use aws_config::SdkConfig;
use futures::StreamExt;

use crate::error::{Error, Result};
use crate::model::{Report, Snapshot};
use crate::period::PeriodKind;
use crate::render::{render, Body, Rendered, HTML_NAME, SNAPSHOT_NAME};
use keyguard_aws::{email, s3};

/// The largest CSV attached to the email (SESv2 takes messages up to 40 MB; a CSV is attached
/// base64, a third larger).
pub const ATTACHMENT_MAX: u64 = 5_000_000;
/// The most bytes of CSV one email attaches.
pub const ATTACHMENTS_MAX: u64 = 25_000_000;

/// Earlier reports read back, at most.
pub const HISTORY_MAX: usize = 24;

/// Where a report goes. At least one of the three must be set.
#[derive(Debug, Clone, Default)]
pub struct Delivery {
    /// A local folder; the report goes to `<out>/<period id>/`.
    pub out: Option<PathBuf>,
    /// `s3://bucket/prefix`; the report goes to `prefix/<period id>/`.
    pub s3_uri: Option<String>,
    /// Auditors to email.
    pub email_to: Vec<String>,
    /// The verified SES identity to send from (required with `email_to`).
    pub sender: Option<String>,
    /// The account that must own the `s3_uri` bucket (S3's ExpectedBucketOwner; reports, their
    /// history and a queued report's evidence).
    pub bucket_owner: Option<String>,
    /// Amazon Security Lake: the findings as its custom source's objects.
    pub security_lake: Option<crate::security_lake::Destination>,
}

/// Earlier reports of `kind`: from the local folder if given, else from S3. Problems (an
/// unreadable `summary.json`, S3 errors) are returned, not raised.
pub async fn history(
    d: &Delivery,
    sdk: Option<&SdkConfig>,
    kind: PeriodKind,
) -> (Vec<Snapshot>, Vec<String>) {
    if let Some(out) = &d.out {
        return crate::evidence::history(out, kind);
    }
    match (&d.s3_uri, sdk) {
        (Some(uri), Some(cfg)) => s3_history(cfg, uri, d.bucket_owner.as_deref(), kind).await,
        _ => (Vec::new(), Vec::new()),
    }
}

async fn s3_history(
    cfg: &SdkConfig,
    uri: &str,
    owner: Option<&str>,
    kind: PeriodKind,
) -> (Vec<Snapshot>, Vec<String>) {
    let s3 = s3::client(cfg);
    let (bucket, prefix) = s3::split_uri(uri);
    let b = s3::Bucket::new(&bucket, owner);
    let list_prefix = format!("{}{}-", slash(&prefix), kind.as_str());
    let mut problems = Vec::new();
    let mut keys: Vec<String> = match s3::list_keys(&s3, b, &list_prefix).await {
        Ok(keys) => keys
            .into_iter()
            .filter(|k| k.ends_with(&format!("/{SNAPSHOT_NAME}")))
            .collect(),
        Err(e) => {
            problems.push(format!(
                "s3://{bucket}/{list_prefix}: {e}; earlier reports not compared"
            ));
            return (Vec::new(), problems);
        }
    };
    keys.sort();
    let skip = keys.len().saturating_sub(HISTORY_MAX);
    let fetched: Vec<(String, std::result::Result<Snapshot, String>)> =
        futures::stream::iter(keys.into_iter().skip(skip))
            .map(|key| {
                let s3 = &s3;
                async move {
                    let r = match s3::get(s3, b, &key).await {
                        Ok(b) => serde_json::from_slice::<Snapshot>(&b).map_err(|e| e.to_string()),
                        Err(e) => Err(e.to_string()),
                    };
                    (key, r)
                }
            })
            .buffer_unordered(8)
            .collect()
            .await;
    let mut found = Vec::new();
    for (key, r) in fetched {
        match r {
            Ok(s) => found.push(s),
            Err(e) => problems.push(format!(
                "s3://{bucket}/{key}: earlier report unreadable ({e}); not compared"
            )),
        }
    }
    (found, problems)
}

fn slash(prefix: &str) -> String {
    if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    }
}

/// Renders and delivers the report everywhere `d` names. Returns one line per place written
/// (a folder, an S3 prefix, `email to …`). `sdk` is needed for S3 and email.
pub async fn deliver(
    report: &Report,
    d: &Delivery,
    sdk: Option<&SdkConfig>,
) -> Result<Vec<String>> {
    deliver_files(report, &render(report)?, None, d, sdk).await
}

/// [`deliver`] of files already rendered; Security Lake is written from `finding_lines` (one
/// finding a line) when given, else from the report's findings.
pub async fn deliver_files(
    report: &Report,
    files: &[Rendered],
    finding_lines: Option<&std::path::Path>,
    d: &Delivery,
    sdk: Option<&SdkConfig>,
) -> Result<Vec<String>> {
    let id = report.period.id();
    let mut done = Vec::new();
    if let Some(out) = &d.out {
        let dir = out.join(&id);
        std::fs::create_dir_all(&dir).map_err(|e| Error::Io(dir.clone(), e))?;
        for f in files {
            let path = dir.join(&f.name);
            match &f.body {
                Body::Bytes(b) => std::fs::write(&path, b),
                Body::File(from) => std::fs::copy(from, &path).map(|_| ()),
            }
            .map_err(|e| Error::Io(path.clone(), e))?;
        }
        done.push(dir.display().to_string());
    }
    if let Some(uri) = &d.s3_uri {
        let cfg =
            sdk.ok_or_else(|| Error::InvalidParameter("S3 delivery needs AWS credentials".into()))?;
        done.push(upload(cfg, uri, d.bucket_owner.as_deref(), &id, files).await?);
    }
    if !d.email_to.is_empty() {
        let cfg = sdk.ok_or_else(|| {
            Error::InvalidParameter("email delivery needs AWS credentials".into())
        })?;
        let sender = d.sender.as_deref().ok_or_else(|| {
            Error::InvalidParameter("email delivery needs a sender (NOTICE_SENDER)".into())
        })?;
        send(cfg, sender, &d.email_to, report, files).await?;
        done.push(format!("email to {}", d.email_to.join(", ")));
    }
    // Last, and never fatal: the report is delivered whatever Security Lake says (a retry of the
    // invocation would send the auditors the same email again); what failed is in the line.
    if let Some(lake) = &d.security_lake {
        done.push(
            match to_security_lake(report, finding_lines, lake, sdk).await {
                Ok(line) => line,
                Err(e) => {
                    let why = keyguard_aws::chain(&e);
                    tracing::error!(error = %why, "Security Lake not written");
                    format!("Security Lake: not written: {why}")
                }
            },
        );
    }
    Ok(done)
}

/// The report's findings to Security Lake; one line: how many, in how many objects, where.
async fn to_security_lake(
    report: &Report,
    finding_lines: Option<&std::path::Path>,
    lake: &crate::security_lake::Destination,
    sdk: Option<&SdkConfig>,
) -> Result<String> {
    let written = match finding_lines {
        None => {
            // Grouped by account (the report lists the root users' findings last).
            let mut findings: Vec<serde_json::Value> = report
                .ocsf
                .iter()
                .map(|raw| serde_json::from_str(raw.get()).expect("the report's own JSON"))
                .collect();
            findings.sort_by(|a, b| {
                crate::security_lake::account_of(a).cmp(&crate::security_lake::account_of(b))
            });
            lake.deliver(findings, sdk).await?
        }
        Some(path) => {
            use std::io::BufRead;
            let file = std::fs::File::open(path).map_err(|e| Error::Io(path.into(), e))?;
            let mut unread = None;
            let findings = std::io::BufReader::new(file)
                .lines()
                .map_while(|l| l.map_err(|e| unread = Some(e)).ok())
                .map(|l| serde_json::from_str(&l).expect("the report's own JSON"));
            let written = lake.deliver(findings, sdk).await?;
            if let Some(e) = unread {
                return Err(Error::Io(path.into(), e));
            }
            written
        }
    };
    for p in &written.problems {
        tracing::error!(problem = %p, "left out of Security Lake");
    }
    Ok(format!(
        "Security Lake: {} findings in {} object(s) under {}{}",
        written.rows,
        written.objects.len(),
        lake.target,
        match written.left_out {
            0 => String::new(),
            n => format!("; {n} findings left out (why: the log)"),
        }
    ))
}

async fn upload(
    cfg: &SdkConfig,
    uri: &str,
    owner: Option<&str>,
    id: &str,
    files: &[Rendered],
) -> Result<String> {
    let s3 = s3::client(cfg);
    let (bucket, prefix) = s3::split_uri(uri);
    let b = s3::Bucket::new(&bucket, owner);
    let base = format!("{}{id}", slash(&prefix));
    // summary.json last: a report is "there" for the next comparison only once it is complete.
    let mut ordered: Vec<&Rendered> = files.iter().filter(|f| f.name != SNAPSHOT_NAME).collect();
    ordered.extend(files.iter().filter(|f| f.name == SNAPSHOT_NAME));
    for f in ordered {
        let key = format!("{base}/{}", f.name);
        match &f.body {
            Body::Bytes(bytes) => s3::put(&s3, b, &key, f.content_type, bytes.clone()).await,
            Body::File(path) => s3::put_file(&s3, b, &key, f.content_type, path).await,
        }
        .map_err(|source| Error::Deliver {
            to: format!("s3://{bucket}/{key}"),
            source,
        })?;
    }
    Ok(format!("s3://{bucket}/{base}/"))
}

/// The CSVs the email attaches: each up to ATTACHMENT_MAX, the smallest first, at most
/// ATTACHMENTS_MAX in all (SESv2 takes messages up to 40 MB; base64 is a third larger); in the
/// report's order.
fn attached(files: &[Rendered]) -> Vec<&Rendered> {
    let mut csvs: Vec<&Rendered> = files
        .iter()
        .filter(|f| f.name.ends_with(".csv") && f.body.size() <= ATTACHMENT_MAX)
        .collect();
    csvs.sort_by_key(|f| f.body.size());
    let mut total = 0;
    let mut out = Vec::new();
    for f in csvs {
        total += f.body.size();
        if total > ATTACHMENTS_MAX {
            break;
        }
        out.push(f);
    }
    files
        .iter()
        .filter(|f| out.iter().any(|o| std::ptr::eq(*o, *f)))
        .collect()
}

/// The email: the HTML report as the body, a short text part, every CSV attached.
pub fn mime(sender: &str, to: &[String], report: &Report, files: &[Rendered]) -> Result<Vec<u8>> {
    let html = files
        .iter()
        .find(|f| f.name == HTML_NAME)
        .and_then(|f| f.body.bytes().ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let attach = attached(files);
    let text = {
        let mut t = format!(
            "IAM access key compliance — {} — {} report for {}\n\n",
            report.organization,
            report.period.kind.as_str(),
            report.period_label
        );
        for r in &report.summary {
            t.push_str(&format!(
                "{}: {}{}\n",
                r.label,
                r.value,
                if r.change.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", r.change)
                }
            ));
        }
        t.push_str(
            "\nThe full report is the HTML part of this email; every table is attached as CSV.\n",
        );
        for f in files
            .iter()
            .filter(|f| f.name.ends_with(".csv") && !attach.iter().any(|a| std::ptr::eq(*a, *f)))
        {
            t.push_str(&format!(
                "{} ({} MB) is not attached (too large): it is in the report's folder.\n",
                f.name,
                f.body.size() / 1_000_000
            ));
        }
        t
    };
    let mut msg = mail_builder::MessageBuilder::new()
        .from(sender)
        .to(to.iter().map(String::as_str).collect::<Vec<_>>())
        .subject(format!(
            "IAM access key compliance — {} — {}",
            report.organization, report.period_label
        ))
        .text_body(text)
        .html_body(html);
    // The CSVs not attached stay in the report's folder or S3, and the text says so.
    for f in attach {
        msg = msg.attachment("text/csv", f.name.clone(), f.body.bytes()?.into_owned());
    }
    msg.write_to_vec().map_err(|e| Error::Render {
        message: format!("email: {e}"),
        source: Some(Box::new(e)),
    })
}

async fn send(
    cfg: &SdkConfig,
    sender: &str,
    to: &[String],
    report: &Report,
    files: &[Rendered],
) -> Result<()> {
    let raw = mime(sender, to, report, files)?;
    let ses = aws_sdk_sesv2::Client::new(cfg);
    email::send_raw(&ses, sender, to, raw)
        .await
        .map_err(|source| Error::Deliver {
            to: format!("email to {}", to.join(", ")),
            source,
        })
}

/// The whole run of an evidence folder: earlier reports from the delivery place, the report
/// built in shards of `shard` accounts ([`crate::sharded`], one build when the folder holds at
/// most one shard), rendered and delivered. Returns the report and the places written.
pub async fn produce_from_folder(
    evidence: &keyguard_aws::evidence::Evidence,
    opts: &crate::evidence::Options,
    now: chrono::DateTime<chrono::Utc>,
    organization: Option<String>,
    d: &Delivery,
    sdk: Option<&SdkConfig>,
    shard: usize,
) -> Result<(Report, Vec<String>)> {
    let in_scope = crate::evidence::in_scope(evidence, opts).count();
    if in_scope <= shard {
        let mut inputs = crate::evidence::inputs(evidence, opts, now)?;
        if let Some(o) = organization {
            inputs.organization = o;
        }
        return produce(inputs, d, sdk).await;
    }
    let earlier = history(d, sdk, opts.kind).await;
    let work = tempfile::tempdir().map_err(|e| Error::Io(std::env::temp_dir(), e))?;
    let (report, files) = crate::sharded::report(
        evidence,
        opts,
        (now, organization),
        earlier,
        shard,
        work.path(),
    )?;
    let lines = work.path().join(crate::sharded::FINDING_LINES);
    let written = deliver_files(&report, &files, Some(&lines), d, sdk).await?;
    Ok((report, written))
}

/// The whole run after the inputs are read: earlier reports from the delivery place, the report
/// built, rendered and delivered. Returns the report and the places written.
pub async fn produce(
    mut inputs: crate::model::Inputs,
    d: &Delivery,
    sdk: Option<&SdkConfig>,
) -> Result<(Report, Vec<String>)> {
    let (history, problems) = history(d, sdk, inputs.period.kind).await;
    inputs.history = history;
    inputs.trail.problems.extend(problems);
    let report = crate::build(&inputs)?;
    let written = deliver(&report, d, sdk).await?;
    Ok((report, written))
}
