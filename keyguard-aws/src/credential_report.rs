//! IAM's credential report parsed: each user's key slots (age, activity, last use). A bad row
//! costs its own user at most, never the account.

use chrono::{DateTime, Utc};
use keyguard_core::{AccessKey, KeyStatus};
use serde::Deserialize;

use crate::error::{Error, Result};

/// One row of the credential report: a user and its key slots (ids unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRow {
    /// The user name.
    pub user: String,
    /// The user's ARN (the join key with account authorization details).
    pub arn: String,
    /// Key slots 1 and 2 that hold a key.
    pub keys: Vec<AccessKey>,
}

#[derive(Deserialize)]
struct RawRow {
    user: String,
    arn: String,
    access_key_1_active: String,
    access_key_1_last_rotated: String,
    access_key_1_last_used_date: String,
    access_key_2_active: String,
    access_key_2_last_rotated: String,
    access_key_2_last_used_date: String,
}

/// Parses a credential report (the CSV IAM returns, already base64-decoded). The root account's
/// row is kept under its name `<root_account>` ([`root_keys`] reads it; no IAM user has that
/// name, so joining drops it); a slot whose `last_rotated` is `N/A` holds no key.
///
/// A row costs its own user at most: the last 20 columns are the report's fixed ones, the user
/// name is every field before the first that starts an ARN (`arn:`, which no user name can hold),
/// and the ARN is everything between, whatever commas the name and the path (any printable
/// ASCII) hold and however the report quoted them. A row that still does not read is skipped and
/// said in the second list; its user, missing from the report, has its keys read live
/// ([`crate::inventory::read_inventory`]) or is named as not read (an evidence folder).
pub fn parse_credential_report(csv_bytes: &[u8]) -> Result<Vec<ReportRow>> {
    let (rows, skipped) = parse_with_skipped(csv_bytes)?;
    for s in &skipped {
        tracing::warn!(row = %s, "credential report row skipped");
    }
    Ok(rows)
}

/// [`parse_credential_report`], with the rows it skipped (`row N: why`).
pub fn parse_with_skipped(csv_bytes: &[u8]) -> Result<(Vec<ReportRow>, Vec<String>)> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(csv_bytes);
    let headers = reader
        .headers()
        .map_err(|e| Error::CredentialReport {
            message: format!("header: {e}"),
            source: Some(e),
        })?
        .clone();
    if headers.len() < FIXED_COLUMNS + 2
        || headers.get(0) != Some("user")
        || headers.get(1) != Some("arn")
    {
        return Err(Error::CredentialReport {
            message: format!(
                "header: {} columns, not IAM's credential report",
                headers.len()
            ),
            source: None,
        });
    }
    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                skipped.push(format!("row {line}: {e}"));
                continue;
            }
        };
        match row(&headers, &record) {
            Ok(r) => rows.push(r),
            Err(why) => skipped.push(format!("row {line}: {why}")),
        }
    }
    Ok((rows, skipped))
}

/// The columns after `user` and `arn`.
const FIXED_COLUMNS: usize = 20;

/// One record as a row: the user and the ARN put back together, then the fixed columns.
fn row(
    headers: &csv::StringRecord,
    record: &csv::StringRecord,
) -> std::result::Result<ReportRow, String> {
    let n = record.len();
    let fixed = headers.len() - 2;
    if n < headers.len() {
        return Err(format!("{n} fields for a {}-column header", headers.len()));
    }
    let tail = n - fixed;
    let Some(arn_at) = (1..tail).find(|&f| record[f].starts_with("arn:")) else {
        return Err("no ARN".into());
    };
    let user = (0..arn_at)
        .map(|f| &record[f])
        .collect::<Vec<_>>()
        .join(",");
    let arn = (arn_at..tail)
        .map(|f| &record[f])
        .collect::<Vec<_>>()
        .join(",");
    let root = user == keyguard_core::ROOT_USER && arn.ends_with(":root");
    if !root && !arn.ends_with(&format!("/{user}")) {
        return Err(format!("the ARN does not end with the user name {user:?}"));
    }
    let mut fixed_record = csv::StringRecord::new();
    fixed_record.push_field(&user);
    fixed_record.push_field(&arn);
    for f in tail..n {
        fixed_record.push_field(&record[f]);
    }
    let raw: RawRow = fixed_record
        .deserialize(Some(headers))
        .map_err(|e| e.to_string())?;
    let mut keys = Vec::new();
    for (slot, active, rotated, used) in [
        (
            1,
            &raw.access_key_1_active,
            &raw.access_key_1_last_rotated,
            &raw.access_key_1_last_used_date,
        ),
        (
            2,
            &raw.access_key_2_active,
            &raw.access_key_2_last_rotated,
            &raw.access_key_2_last_used_date,
        ),
    ] {
        let Some(created) = report_time(rotated) else {
            continue;
        };
        keys.push(AccessKey {
            id: None,
            slot,
            status: if active.eq_ignore_ascii_case("true") {
                KeyStatus::Active
            } else {
                KeyStatus::Inactive
            },
            created,
            last_used: report_time(used),
        });
    }
    Ok(ReportRow {
        user: raw.user,
        arn: raw.arn,
        keys,
    })
}

/// The root user's access keys (credential-report slots, ids unknown) from a report's rows.
pub fn root_keys(rows: &[ReportRow]) -> Vec<AccessKey> {
    rows.iter()
        .find(|r| r.user == keyguard_core::ROOT_USER)
        .map(|r| r.keys.clone())
        .unwrap_or_default()
}

/// Credential-report times are ISO 8601 or `N/A` / `no_information` / `not_supported`.
fn report_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated";

    fn line(user: &str, arn: &str) -> String {
        format!("{user},{arn},2026-01-01T00:00:00+00:00,false,N/A,N/A,N/A,false,true,2026-01-01T00:00:00+00:00,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A")
    }

    #[test]
    fn commas_in_a_path_or_a_name_cost_nothing_and_a_bad_row_only_itself() {
        let report = [
            HEADER.to_string(),
            line("ok", "arn:aws:iam::111122223333:user/ok"),
            // IAM paths may hold any printable ASCII, commas included; moto leaves them unquoted.
            line("pathed", "arn:aws:iam::111122223333:user/a,b/c,,d/pathed"),
            line("a,b", "arn:aws:iam::111122223333:user/x,y/a,b"),
            // Quoted as AWS would.
            format!(
                "\"q,r\",\"arn:aws:iam::111122223333:user/p,q/q,r\"{}",
                &line("", "")[1..]
            ),
            // Broken: cut short, and an ARN that is not the user's.
            "broken,arn:aws:iam::111122223333:user/broken,2026".to_string(),
            line("liar", "arn:aws:iam::111122223333:user/someone-else"),
            line("after", "arn:aws:iam::111122223333:user/after"),
        ]
        .join("\n");
        let (rows, skipped) = parse_with_skipped(report.as_bytes()).unwrap();
        let users: Vec<&str> = rows.iter().map(|r| r.user.as_str()).collect();
        assert_eq!(
            users,
            ["ok", "pathed", "a,b", "q,r", "after"],
            "{skipped:?}"
        );
        assert_eq!(
            rows[1].arn,
            "arn:aws:iam::111122223333:user/a,b/c,,d/pathed"
        );
        assert_eq!(rows[1].keys.len(), 1);
        assert_eq!(skipped.len(), 2, "{skipped:?}");
        assert!(
            skipped[0].starts_with("row 6:") && skipped[1].starts_with("row 7:"),
            "{skipped:?}"
        );
    }
}
