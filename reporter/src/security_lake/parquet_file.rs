//! OCSF 1.3 Compliance Findings → one Parquet object, as Amazon Security Lake wants a custom
//! source's: zstd, records ordered by time, data pages ≤ 1 MB uncompressed, row groups ≤ 256 MB
//! (docs/security-lake.md cites each). Pure: findings in, bytes out.
//!
//! The Arrow schema is OCSF 1.3's for the attributes keyguard sets, typed as Security Lake's own
//! tables type them: `integer_t` as int32, `long_t` and `timestamp_t` (epoch milliseconds) as
//! int64, every string type as UTF-8, `json_t` (`resources[].data`) as its JSON text, objects as
//! structs and arrays as lists. The decoder runs in strict mode: an attribute the schema does not
//! hold is an error, never a column dropped in silence.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::WriterProperties;
use serde_json::Value;

use crate::error::{Error, Result};

/// The data page size the writer aims at. Its limit is checked between batches of
/// [`WRITE_BATCH_ROWS`] values, so a page can pass it by one batch: half of Security Lake's 1 MB
/// leaves that batch room (a value here is at most a few KB: names, ARNs, a 256-character
/// annotation).
pub const DATA_PAGE_BYTES: usize = 512 * 1024;
/// Rows written per batch (the granularity of the page limit).
pub const WRITE_BATCH_ROWS: usize = 64;
/// The row group size the writer aims at (estimated encoded bytes), half of Security Lake's
/// 256 MB for the same reason.
pub const ROW_GROUP_BYTES: usize = 128 * 1024 * 1024;

fn utf8(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
}
fn int32(name: &str) -> Field {
    Field::new(name, DataType::Int32, true)
}
fn strings(name: &str) -> Field {
    Field::new(
        name,
        DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
        true,
    )
}
fn object(name: &str, fields: Vec<Field>) -> Field {
    Field::new(name, DataType::Struct(Fields::from(fields)), true)
}
fn account() -> Field {
    object(
        "account",
        vec![utf8("uid"), utf8("name"), int32("type_id"), utf8("type")],
    )
}

/// The Parquet schema of keyguard's Compliance Findings (OCSF 1.3, class 2003). `time` first:
/// the column the objects are sorted by.
pub fn schema() -> SchemaRef {
    let resource = object(
        "item",
        vec![
            utf8("type"),
            utf8("uid"),
            utf8("name"),
            utf8("region"),
            utf8("cloud_partition"),
            utf8("data"),
            object(
                "owner",
                vec![
                    utf8("uid"),
                    utf8("name"),
                    int32("type_id"),
                    utf8("type"),
                    account(),
                ],
            ),
        ],
    );
    Arc::new(Schema::new(vec![
        Field::new("time", DataType::Int64, false),
        int32("activity_id"),
        utf8("activity_name"),
        int32("category_uid"),
        utf8("category_name"),
        int32("class_uid"),
        utf8("class_name"),
        Field::new("type_uid", DataType::Int64, true),
        utf8("type_name"),
        int32("severity_id"),
        utf8("severity"),
        int32("status_id"),
        utf8("status"),
        utf8("message"),
        object(
            "metadata",
            vec![
                utf8("version"),
                utf8("uid"),
                strings("profiles"),
                object(
                    "product",
                    vec![utf8("name"), utf8("vendor_name"), utf8("version")],
                ),
            ],
        ),
        object("cloud", vec![utf8("provider"), utf8("region"), account()]),
        object(
            "compliance",
            vec![
                utf8("control"),
                strings("requirements"),
                strings("standards"),
                int32("status_id"),
            ],
        ),
        object(
            "finding_info",
            vec![utf8("uid"), utf8("title"), utf8("desc"), strings("types")],
        ),
        Field::new("resources", DataType::List(Arc::new(resource)), true),
    ]))
}

/// A finding as a row of [`schema`]: its `json_t` attributes (`resources[].data`) as JSON text.
fn row(mut finding: Value) -> Value {
    if let Some(resources) = finding["resources"].as_array_mut() {
        for r in resources {
            if let Some(data) = r.get_mut("data").filter(|d| !d.is_null() && !d.is_string()) {
                *data = Value::String(data.to_string());
            }
        }
    }
    finding
}

fn parquet_err(e: impl std::fmt::Display + Send + Sync + 'static) -> Error {
    Error::Render {
        message: format!("Security Lake Parquet: {e}"),
        source: None,
    }
}

/// The writer's settings: zstd, the page and row-group limits, `time` declared as the sort order.
pub fn properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_data_page_size_limit(DATA_PAGE_BYTES)
        .set_dictionary_page_size_limit(DATA_PAGE_BYTES)
        .set_write_batch_size(WRITE_BATCH_ROWS)
        .set_max_row_group_bytes(Some(ROW_GROUP_BYTES))
        .set_sorting_columns(Some(vec![SortingColumn {
            column_idx: 0,
            descending: false,
            nulls_first: false,
        }]))
        .set_created_by(format!("keyguard {}", env!("CARGO_PKG_VERSION")))
        .build()
}

/// One Parquet object of `findings` (OCSF 1.3), ordered by `time` then `metadata.uid`. Rows are
/// decoded and written a batch at a time, so the object's bytes and one batch are all it holds
/// besides the findings given.
pub fn encode(mut findings: Vec<Value>) -> Result<Vec<u8>> {
    findings.sort_by(|a, b| {
        (a["time"].as_i64(), a["metadata"]["uid"].as_str())
            .cmp(&(b["time"].as_i64(), b["metadata"]["uid"].as_str()))
    });
    let schema = schema();
    let mut writer = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(properties()))
        .map_err(parquet_err)?;
    let mut decoder = arrow_json::ReaderBuilder::new(schema)
        .with_strict_mode(true)
        .with_batch_size(1024)
        .build_decoder()
        .map_err(parquet_err)?;
    let mut rows = findings.into_iter().map(row).peekable();
    while rows.peek().is_some() {
        let batch: Vec<Value> = rows.by_ref().take(1024).collect();
        decoder.serialize(&batch).map_err(parquet_err)?;
        if let Some(b) = decoder.flush().map_err(parquet_err)? {
            writer.write(&b).map_err(parquet_err)?;
        }
    }
    writer.into_inner().map_err(parquet_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(time: i64, uid: &str) -> Value {
        serde_json::json!({
            "time": time, "class_uid": 2003, "type_uid": 200301,
            "metadata": {"version": "1.3.0", "uid": uid, "product": {"vendor_name": "keyguard"}},
            "resources": [{"uid": "arn", "data": {"keys": [], "user_id": "AIDA"}}],
        })
    }

    #[test]
    fn rows_are_ordered_by_time_and_json_becomes_text() {
        let bytes = encode(vec![finding(2, "b"), finding(1, "a")]).unwrap();
        let mut file = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut file, &bytes).unwrap();
        let reader =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        let meta = reader.metadata().clone();
        assert_eq!(meta.file_metadata().num_rows(), 2);
        let batch = reader.build().unwrap().next().unwrap().unwrap();
        let time = batch
            .column(0)
            .as_any()
            .downcast_ref::<arrow_array::Int64Array>()
            .unwrap();
        assert_eq!(time.values(), &[1, 2]);
    }

    #[test]
    fn an_attribute_outside_the_schema_is_an_error_not_a_dropped_column() {
        let mut f = finding(1, "a");
        f["osint"] = serde_json::json!([]);
        let e = encode(vec![f]).unwrap_err().to_string();
        assert!(e.contains("osint"), "{e}");
    }
}
