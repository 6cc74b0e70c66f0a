//! A [`Report`] → files: one self-contained HTML page (inline CSS, inline SVG charts, no network
//! fetch), one CSV per table (stable headers, listed in [`CSV_TABLES`]) and `summary.json` for
//! the next report's comparison.
//!
//! CSV cells that a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, tab or
//! carriage return, which IAM user names may do) are prefixed with `'` (OWASP's advice); numbers
//! are written as numbers.

use handlebars::Handlebars;
use plotters::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::model::*;

const REPORT_HTML: &str = include_str!("../../report-templates/report.html.hbs");

/// One rendered file: its name and contents.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// File name (no directory).
    pub name: String,
    /// MIME type.
    pub content_type: &'static str,
    /// Contents.
    pub body: Body,
}

/// A rendered file's contents: in memory, or (a report built in shards: the full tables and
/// the OCSF findings) a file written as the shards were built.
#[derive(Debug, Clone)]
pub enum Body {
    /// The bytes.
    Bytes(Vec<u8>),
    /// A file holding them.
    File(std::path::PathBuf),
}

impl Body {
    /// The bytes (a file's read).
    pub fn bytes(&self) -> Result<std::borrow::Cow<'_, [u8]>> {
        match self {
            Body::Bytes(b) => Ok(std::borrow::Cow::Borrowed(b)),
            Body::File(p) => std::fs::read(p)
                .map(std::borrow::Cow::Owned)
                .map_err(|e| Error::Io(p.clone(), e)),
        }
    }

    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        match self {
            Body::Bytes(b) => b.len() as u64,
            Body::File(p) => std::fs::metadata(p).map_or(0, |m| m.len()),
        }
    }
}

/// The CSV files and their headers: the documented, stable schema (README "Report CSV schema").
pub const CSV_TABLES: [(&str, &[&str]); 14] = [
    (
        "summary.csv",
        &["metric", "label", "value", "previous", "change"],
    ),
    (
        "key-ages.csv",
        &["age_days", "active_keys", "at_or_over_rotation"],
    ),
    ("trend.csv", &["period", "last_day", "compliant_pct"]),
    (
        "non-compliant-users.csv",
        &[
            "account",
            "account_name",
            "user",
            "reason",
            "key",
            "age_days",
            "days_out_of_policy",
            "next_action",
            "next_action_date",
        ],
    ),
    (
        "disagreements.csv",
        &[
            "account",
            "account_name",
            "user",
            "config",
            "config_recorded",
            "keyguard",
            "finding",
        ],
    ),
    (
        "outside-owners.csv",
        &["account", "account_name", "user", "address", "told_instead"],
    ),
    (
        "conformance-pack.csv",
        &[
            "account",
            "account_name",
            "pack",
            "keyguard_rule",
            "access_keys_rotated",
            "iam_user_unused_credentials",
            "iam_root_access_key",
            "keyguard_own",
            "finding",
        ],
    ),
    (
        "key-usage.csv",
        &[
            "account",
            "account_name",
            "user",
            "key",
            "step",
            "due",
            "calls",
            "last_seen",
            "sources",
            "agents",
            "services",
            "successor",
            "successor_first_use",
        ],
    ),
    (
        "stalled-migrations.csv",
        &[
            "account",
            "account_name",
            "user",
            "key",
            "successor",
            "disable_due",
            "held_until",
            "last_used",
            "where_used",
        ],
    ),
    (
        "actions.csv",
        &["time", "account", "user", "action", "key", "by_kind", "by"],
    ),
    (
        "exemption-ledger.csv",
        &[
            "time",
            "account",
            "user",
            "change",
            "by",
            "expiry_at_change",
            "granted_while_overdue",
            "beyond_cap",
        ],
    ),
    (
        "exemptions-expiring.csv",
        &["account", "user", "expires", "days_left", "oldest_key_age"],
    ),
    (
        "freshness.csv",
        &[
            "account",
            "account_name",
            "inventory",
            "users",
            "config",
            "users_evaluated",
            "last_evaluated",
            "stale",
            "trail_events",
        ],
    ),
    (
        "controls.csv",
        &[
            "framework",
            "control",
            "title",
            "keyguard_check",
            "failing_users",
        ],
    ),
];

/// The most rows each table of the HTML page shows by default (`REPORT_PAGE_ROWS`): with it the
/// page of any organization stays a few megabytes (docs/performance.md), while the CSVs hold
/// every row.
pub const PAGE_ROWS: usize = 300;

/// The page's counts of rows of a kind ([`Report::totals`]): the pack's rows with a finding, the
/// ledger's grants while overdue and beyond the cap.
pub const PACK_FINDINGS: &str = "conformance-pack.csv#findings";
/// See [`PACK_FINDINGS`].
pub const OVERDUE_GRANTS: &str = "exemption-ledger.csv#overdue";
/// See [`PACK_FINDINGS`].
pub const BEYOND_CAP_GRANTS: &str = "exemption-ledger.csv#beyond-cap";

/// The file name of the HTML report.
pub const HTML_NAME: &str = "report.html";
/// The file name of the findings in OCSF (one JSON array of Compliance Findings).
pub const OCSF_NAME: &str = "findings.ocsf.json";
/// The file name of the snapshot the next report compares with.
pub const SNAPSHOT_NAME: &str = "summary.json";

/// Renders every file of the report.
pub fn render(report: &Report) -> Result<Vec<Rendered>> {
    let mut out = vec![Rendered {
        name: HTML_NAME.into(),
        content_type: "text/html; charset=utf-8",
        body: Body::Bytes(html(report)?.into_bytes()),
    }];
    for (name, bytes) in csvs(report)? {
        out.push(Rendered {
            name,
            content_type: "text/csv; charset=utf-8",
            body: Body::Bytes(bytes),
        });
    }
    out.push(Rendered {
        name: OCSF_NAME.into(),
        content_type: "application/json",
        body: Body::Bytes(serde_json::to_vec(&report.ocsf).map_err(|e| Error::Render {
            message: format!("{OCSF_NAME}: {e}"),
            source: Some(Box::new(e)),
        })?),
    });
    out.push(Rendered {
        name: SNAPSHOT_NAME.into(),
        content_type: "application/json",
        body: Body::Bytes(serde_json::to_vec_pretty(&report.snapshot).map_err(|e| {
            Error::Render {
                message: format!("summary.json: {e}"),
                source: Some(Box::new(e)),
            }
        })?),
    });
    Ok(out)
}

#[derive(Serialize)]
struct Page<'a> {
    #[serde(flatten)]
    report: &'a Report,
    #[serde(flatten)]
    tables: crate::page_tables::Tables<'a>,
    age_chart: String,
    trend_chart: String,
    generated_by: String,
    non_compliant_count: usize,
    disagreement_count: usize,
    pack_disagreement_count: usize,
    outside_owner_count: usize,
    key_usage_count: usize,
    stalled_count: usize,
    overdue_grants: usize,
    beyond_cap_grants: usize,
}

/// The HTML page.
pub fn html(report: &Report) -> Result<String> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_template_string("report", REPORT_HTML)
        .map_err(|e| Error::Render {
            message: format!("report template: {e}"),
            source: Some(Box::new(e)),
        })?;
    let rows = if report.page_rows == 0 {
        PAGE_ROWS
    } else {
        report.page_rows
    };
    let page = Page {
        report,
        tables: crate::page_tables::Tables::of(report, rows),
        age_chart: age_chart(report)?,
        trend_chart: trend_chart(report)?,
        generated_by: format!("keyguard {}", env!("CARGO_PKG_VERSION")),
        non_compliant_count: report.total("non-compliant-users.csv", report.non_compliant.len()),
        disagreement_count: report.total("disagreements.csv", report.disagreements.len()),
        pack_disagreement_count: report.total(
            PACK_FINDINGS,
            report.pack.iter().filter(|p| !p.finding.is_empty()).count(),
        ),
        outside_owner_count: report.total("outside-owners.csv", report.outside_owners.len()),
        key_usage_count: report.total("key-usage.csv", report.key_usage.len()),
        stalled_count: report.total("stalled-migrations.csv", report.stalled.len()),
        overdue_grants: report.total(
            OVERDUE_GRANTS,
            report
                .ledger
                .iter()
                .filter(|l| l.granted_while_overdue)
                .count(),
        ),
        beyond_cap_grants: report.total(
            BEYOND_CAP_GRANTS,
            report.ledger.iter().filter(|l| l.beyond_cap).count(),
        ),
    };
    hb.render("report", &page).map_err(|e| Error::Render {
        message: format!("report template: {e}"),
        source: Some(Box::new(e)),
    })
}

// ------------------------------------------------------------------ CSV

/// Neutralises a text cell a spreadsheet would evaluate ([`keyguard_core::text::csv_cell`]).
pub fn csv_text(s: &str) -> String {
    keyguard_core::text::csv_cell(s).into_owned()
}

fn num<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// The rows of the CSV `table`, formatted (text cells neutralised for spreadsheets).
pub(crate) fn rows(report: &Report, table: &str) -> Vec<Vec<String>> {
    let t = csv_text;
    match table {
        "summary.csv" => report
            .summary
            .iter()
            .map(|r| {
                let raw = |v: Option<f64>| num(v.map(|v| (v * 10.0).round() / 10.0));
                vec![
                    r.metric.into(),
                    t(r.label),
                    raw(r.value_raw),
                    raw(r.previous_raw),
                    raw(r.change_raw),
                ]
            })
            .collect(),
        "key-ages.csv" => report
            .age_buckets
            .iter()
            .map(|b| vec![t(b.label), b.keys.to_string(), b.overdue.to_string()])
            .collect(),
        "trend.csv" => report
            .trend
            .iter()
            .map(|p| {
                vec![
                    p.period.clone(),
                    p.last_day.to_string(),
                    num(p.compliant_pct),
                ]
            })
            .collect(),
        "non-compliant-users.csv" => non_compliant_rows(report),
        "actions.csv" => action_rows(report),
        "outside-owners.csv" | "disagreements.csv" | "conformance-pack.csv" => {
            trust_rows(report, table)
        }
        "key-usage.csv" => report
            .key_usage
            .iter()
            .map(|r| {
                vec![
                    t(&r.account),
                    t(&r.account_name),
                    t(&r.user),
                    t(&r.key),
                    t(&r.step),
                    t(&r.due),
                    r.calls.to_string(),
                    t(&r.last_seen),
                    t(&r.sources),
                    t(&r.agents),
                    t(&r.services),
                    t(&r.successor),
                    t(&r.successor_first_use),
                ]
            })
            .collect(),
        "stalled-migrations.csv" => report
            .stalled
            .iter()
            .map(|r| {
                vec![
                    t(&r.account),
                    t(&r.account_name),
                    t(&r.user),
                    t(&r.key),
                    t(&r.successor),
                    t(&r.disable_due),
                    t(&r.held_until),
                    t(&r.last_used),
                    t(&r.where_used),
                ]
            })
            .collect(),
        "exemption-ledger.csv" => ledger_rows(report),
        "exemptions-expiring.csv" => report
            .expiring
            .iter()
            .map(|r| {
                vec![
                    r.account.clone(),
                    t(&r.user),
                    r.expires.clone(),
                    r.days_left.to_string(),
                    num(r.oldest_key_age),
                ]
            })
            .collect(),
        "freshness.csv" => freshness_rows(report),
        "controls.csv" => report
            .controls
            .iter()
            .map(|r| {
                vec![
                    t(r.framework),
                    r.control.into(),
                    t(r.title),
                    t(r.keyguard_check),
                    r.failing_users.to_string(),
                ]
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn non_compliant_rows(report: &Report) -> Vec<Vec<String>> {
    let t = csv_text;
    report
        .non_compliant
        .iter()
        .map(|r| {
            vec![
                r.account.clone(),
                t(&r.account_name),
                t(&r.user),
                t(&r.reason),
                t(&r.key),
                num(r.age_days),
                num(r.days_out_of_policy),
                t(&r.next_action),
                t(&r.next_action_date),
            ]
        })
        .collect()
}

fn action_rows(report: &Report) -> Vec<Vec<String>> {
    let t = csv_text;
    report
        .actions
        .iter()
        .map(|r| {
            vec![
                r.time.clone(),
                r.account.clone(),
                t(&r.user),
                r.action.clone(),
                t(&r.key),
                r.by_kind.into(),
                t(&r.by),
            ]
        })
        .collect()
}

/// The rows of the tables of what an account may have bent (`disagreements.csv`,
/// `outside-owners.csv`), and of its conformance pack beside keyguard's figures
/// (`conformance-pack.csv`).
fn trust_rows(report: &Report, table: &str) -> Vec<Vec<String>> {
    let t = csv_text;
    match table {
        "outside-owners.csv" => report
            .outside_owners
            .iter()
            .map(|r| {
                vec![
                    t(&r.account),
                    t(&r.account_name),
                    t(&r.user),
                    t(&r.address),
                    t(&r.told_instead),
                ]
            })
            .collect(),
        "conformance-pack.csv" => report
            .pack
            .iter()
            .map(|r| {
                vec![
                    t(&r.account),
                    t(&r.account_name),
                    t(&r.pack),
                    t(&r.keyguard_rule),
                    t(&r.access_keys_rotated),
                    t(&r.unused_credentials),
                    t(&r.root_access_key),
                    t(&r.keyguard_own),
                    t(&r.finding),
                ]
            })
            .collect(),
        "disagreements.csv" => report
            .disagreements
            .iter()
            .map(|r| {
                vec![
                    t(&r.account),
                    t(&r.account_name),
                    t(&r.user),
                    t(&r.config),
                    t(&r.config_recorded),
                    t(&r.keyguard),
                    t(&r.finding),
                ]
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn ledger_rows(report: &Report) -> Vec<Vec<String>> {
    let t = csv_text;
    report
        .ledger
        .iter()
        .map(|r| {
            vec![
                r.time.clone(),
                r.account.clone(),
                t(&r.user),
                t(&r.change),
                t(&r.by),
                t(&r.expiry_at_change),
                r.granted_while_overdue.to_string(),
                r.beyond_cap.to_string(),
            ]
        })
        .collect()
}

fn freshness_rows(report: &Report) -> Vec<Vec<String>> {
    let t = csv_text;
    report
        .freshness
        .iter()
        .map(|r| {
            vec![
                r.account.clone(),
                t(&r.account_name),
                t(&r.inventory),
                r.users.to_string(),
                t(&r.config),
                r.users_evaluated.to_string(),
                r.last_evaluated.clone(),
                r.stale.to_string(),
                r.trail_events.to_string(),
            ]
        })
        .collect()
}

/// Every CSV: `(file name, bytes)`, headers always written (also for empty tables).
pub fn csvs(report: &Report) -> Result<Vec<(String, Vec<u8>)>> {
    CSV_TABLES
        .iter()
        .map(|(name, header)| {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record(*header).map_err(|e| Error::Render {
                message: format!("{name}: {e}"),
                source: Some(Box::new(e)),
            })?;
            for row in rows(report, name) {
                debug_assert_eq!(row.len(), header.len(), "{name}");
                w.write_record(&row).map_err(|e| Error::Render {
                    message: format!("{name}: {e}"),
                    source: Some(Box::new(e)),
                })?;
            }
            let bytes = w.into_inner().map_err(|e| Error::Render {
                message: format!("{name}: {e}"),
                source: Some(Box::new(e)),
            })?;
            Ok((name.to_string(), bytes))
        })
        .collect()
}

// ------------------------------------------------------------------ charts (plotters, SVG)

fn plot_err<E: std::fmt::Display>(e: E) -> Error {
    Error::Render {
        message: format!("chart: {e}"),
        source: None,
    }
}

const GREEN: RGBColor = RGBColor(46, 125, 50);
const RED: RGBColor = RGBColor(198, 40, 40);
const BLUE: RGBColor = RGBColor(21, 101, 192);
const GREY: RGBColor = RGBColor(117, 117, 117);

/// The key-age distribution as an SVG bar chart (bars at or over the rotation period in red).
pub fn age_chart(report: &Report) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (560, 260)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let max = report
            .age_buckets
            .iter()
            .map(|b| b.keys)
            .max()
            .unwrap_or(0)
            .max(1);
        let n = report.age_buckets.len();
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(40)
            .build_cartesian_2d(
                (0..n.saturating_sub(1)).into_segmented(),
                0u64..(max + max / 5 + 1),
            )
            .map_err(plot_err)?;
        let labels: Vec<&str> = report.age_buckets.iter().map(|b| b.label).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .bold_line_style(GREY.mix(0.2))
            .light_line_style(TRANSPARENT)
            .x_desc("key age (days)")
            .y_desc("Active keys")
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => {
                    labels.get(*i).map(|s| s.to_string()).unwrap_or_default()
                }
                _ => String::new(),
            })
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 13))
            .draw()
            .map_err(plot_err)?;
        for (i, b) in report.age_buckets.iter().enumerate() {
            let color = if b.overdue { RED } else { GREEN };
            chart
                .draw_series(std::iter::once(
                    Rectangle::new(
                        [
                            (SegmentValue::Exact(i), 0),
                            (SegmentValue::Exact(i + 1), b.keys),
                        ],
                        color.mix(0.85).filled(),
                    )
                    .into_dyn(),
                ))
                .map_err(plot_err)?;
            chart
                .draw_series(std::iter::once(Text::new(
                    b.keys.to_string(),
                    (SegmentValue::CenterOf(i), b.keys),
                    ("sans-serif", 13).into_font().color(&BLACK),
                )))
                .map_err(plot_err)?;
        }
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// The compliance trend (% of users compliant per period) as an SVG line chart.
pub fn trend_chart(report: &Report) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (560, 260)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let points: Vec<(usize, f64)> = report
            .trend
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.compliant_pct.map(|v| (i, v)))
            .collect();
        let n = report.trend.len().max(1);
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(40)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..100f64)
            .map_err(plot_err)?;
        let days: Vec<String> = report
            .trend
            .iter()
            .map(|p| p.last_day.format("%m-%d").to_string())
            .collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .bold_line_style(GREY.mix(0.2))
            .light_line_style(TRANSPARENT)
            .x_labels(n)
            .x_label_formatter(&|v| {
                let i = v.round();
                if (v - i).abs() < 1e-6 && i >= 0.0 {
                    days.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|v| format!("{v:.0}%"))
            .x_desc("period ending")
            .y_desc("users compliant")
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 13))
            .draw()
            .map_err(plot_err)?;
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|(i, v)| (*i as f64, *v)),
                BLUE.stroke_width(2),
            ))
            .map_err(plot_err)?;
        chart
            .draw_series(
                points
                    .iter()
                    .map(|(i, v)| Circle::new((*i as f64, *v), 4, BLUE.filled())),
            )
            .map_err(plot_err)?;
        chart
            .draw_series(points.iter().map(|(i, v)| {
                Text::new(
                    format!("{v:.1}%"),
                    (*i as f64, (*v + 6.0).min(97.0)),
                    ("sans-serif", 12).into_font().color(&BLACK),
                )
            }))
            .map_err(plot_err)?;
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_neutralised() {
        assert_eq!(csv_text("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(csv_text("+ops@acme.example"), "'+ops@acme.example");
        assert_eq!(csv_text("@sum"), "'@sum");
        assert_eq!(csv_text("platform-deploy"), "platform-deploy");
        assert_eq!(csv_text(""), "");
    }
}
