//! The output formats of `audit` and `plan`: a table for people, JSON and CSV for machines. A
//! machine format writes its rows to stdout and nothing else (notes and errors go to stderr), and
//! every key id in any format is masked.

use anyhow::Result;
use serde::Serialize;

/// How `audit` and `plan` print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table and a summary line, for people.
    Table,
    /// One JSON array of rows.
    Json,
    /// RFC 4180 CSV with a header row.
    Csv,
    /// One JSON array of OCSF Compliance Findings (class 2003), one per evaluated user.
    Ocsf,
}

/// `--format` and its `--json` alias.
#[derive(Debug, Clone, clap::Args)]
pub struct FormatArg {
    /// Output format; machine formats print only their rows on stdout.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Same as `--format json`.
    #[arg(long, conflicts_with = "format")]
    json: bool,
}

impl FormatArg {
    /// The chosen format.
    pub fn get(&self) -> Format {
        if self.json {
            Format::Json
        } else {
            self.format
        }
    }
}

/// Writes `rows` to stdout as a JSON array.
pub fn print_json<T: Serialize>(rows: &[T]) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(rows)?);
    Ok(())
}

/// A CSV text cell a spreadsheet will not run as a formula (a user named `=1+1`, a user agent
/// starting with `@`): for `#[serde(serialize_with = "cell")]` on every text field of a CSV row.
pub fn cell<T: AsRef<str>, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&keyguard_core::text::csv_cell(v.as_ref()))
}

/// Writes `rows` (flat structs of strings and numbers; every text field marked
/// `serialize_with = "cell"`) to stdout as CSV with a header row, also when there are none
/// (`header` then gives it).
pub fn print_csv<T: Serialize>(rows: &[T], header: &[&str]) -> Result<()> {
    let mut out = csv::Writer::from_writer(std::io::stdout().lock());
    if rows.is_empty() {
        out.write_record(header)?;
    }
    for row in rows {
        out.serialize(row)?;
    }
    out.flush()?;
    Ok(())
}
