//! GeoParquet 1.1 (WKB geometry column, `geo` file metadata) and plain Parquet <-> [`Table`].

use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
};
use arrow_schema::{DataType, Field, Schema};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use crate::error::{Error, Result};
use crate::wkb::{decode_row, to_wkb};
use mrpt_table::Geometry;
use mrpt_table::{ColumnData, Table};

/// Name of the geometry column we write (geopandas' default).
pub const GEOMETRY_COLUMN: &str = "geometry";

fn column_array(data: &ColumnData) -> (DataType, ArrayRef) {
    match data {
        ColumnData::Float(v) => (DataType::Float64, Arc::new(Float64Array::from(v.clone()))),
        ColumnData::Int(v) => (DataType::Int64, Arc::new(Int64Array::from(v.clone()))),
        ColumnData::Bool(v) => (DataType::Boolean, Arc::new(BooleanArray::from(v.clone()))),
        ColumnData::Text(v) => (
            DataType::Utf8,
            Arc::new(StringArray::from(
                v.iter().map(Option::as_deref).collect::<Vec<_>>(),
            )),
        ),
    }
}

/// The table as one arrow record batch (plus a WKB `geometry` column when geometries are given).
pub fn to_record_batch(
    table: &Table,
    geometries: Option<&[Option<Geometry>]>,
) -> Result<RecordBatch> {
    let mut fields = Vec::with_capacity(table.n_columns() + 1);
    let mut arrays = Vec::with_capacity(table.n_columns() + 1);
    for c in table.columns() {
        let (ty, arr) = column_array(&c.data);
        fields.push(Field::new(&c.name, ty, true));
        arrays.push(arr);
    }
    if let Some(geoms) = geometries {
        if geoms.len() != table.n_rows() {
            return Err(Error::GeometryCount {
                rows: table.n_rows(),
                geometries: geoms.len(),
            });
        }
        if table.column_index(GEOMETRY_COLUMN).is_some() {
            return Err(Error::DuplicateColumn {
                column: GEOMETRY_COLUMN.into(),
            });
        }
        let wkb: Vec<Option<Vec<u8>>> = geoms.iter().map(|g| g.as_ref().map(to_wkb)).collect();
        let arr = BinaryArray::from(wkb.iter().map(Option::as_deref).collect::<Vec<_>>());
        fields.push(Field::new(GEOMETRY_COLUMN, DataType::Binary, true));
        arrays.push(Arc::new(arr));
    }
    let schema = Arc::new(Schema::new(fields));
    let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(table.n_rows()));
    Ok(RecordBatch::try_new_with_options(schema, arrays, &options)?)
}

/// The `geo` metadata of GeoParquet 1.1 for one WKB column in OGC:CRS84 (lon/lat, the default
/// when `crs` is omitted).
pub fn geo_metadata(geometries: &[Option<Geometry>]) -> serde_json::Value {
    let mut types = std::collections::BTreeSet::new();
    let mut bbox: Option<[f64; 4]> = None;
    for g in geometries.iter().flatten() {
        types.insert(g.type_name());
        if let Some(b) = g.bbox() {
            bbox = Some(match bbox {
                None => b,
                Some(a) => [
                    a[0].min(b[0]),
                    a[1].min(b[1]),
                    a[2].max(b[2]),
                    a[3].max(b[3]),
                ],
            });
        }
    }
    let mut col = serde_json::json!({
        "encoding": "WKB",
        "geometry_types": types.into_iter().collect::<Vec<_>>(),
    });
    if let Some(b) = bbox {
        col["bbox"] = serde_json::json!(b);
    }
    serde_json::json!({
        "version": "1.1.0",
        "primary_column": GEOMETRY_COLUMN,
        "columns": { GEOMETRY_COLUMN: col },
    })
}

fn write_parquet(batch: &RecordBatch, geo: Option<serde_json::Value>) -> Result<Vec<u8>> {
    // WKB values are all distinct: a dictionary only costs time.
    let mut props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_column_dictionary_enabled(ColumnPath::from(GEOMETRY_COLUMN), false);
    if let Some(geo) = geo {
        props = props.set_key_value_metadata(Some(vec![KeyValue::new(
            "geo".to_string(),
            geo.to_string(),
        )]));
    }
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, batch.schema(), Some(props.build()))?;
    writer.write(batch)?;
    writer.close()?;
    Ok(out)
}

/// Encodes a table with one geometry per row as GeoParquet 1.1 (snappy).
pub fn write_geoparquet(table: &Table, geometries: &[Option<Geometry>]) -> Result<Vec<u8>> {
    let batch = to_record_batch(table, Some(geometries))?;
    write_parquet(&batch, Some(geo_metadata(geometries)))
}

/// Encodes a table as plain Parquet (snappy).
pub fn write_parquet_table(table: &Table) -> Result<Vec<u8>> {
    write_parquet(&to_record_batch(table, None)?, None)
}

/// Decodes GeoParquet (or plain Parquet: then every geometry is `None`). The primary geometry
/// column named by the `geo` metadata becomes the geometries; every other column a table column.
pub fn read_geoparquet(bytes: &[u8]) -> Result<(Table, Vec<Option<Geometry>>)> {
    crate::error::contain_panic(
        |reason| Error::BadGeoParquet { reason },
        || decode_geoparquet(bytes),
    )
}

fn decode_geoparquet(bytes: &[u8]) -> Result<(Table, Vec<Option<Geometry>>)> {
    let bad = |reason: String| Error::BadGeoParquet { reason };
    let builder = ParquetRecordBatchReaderBuilder::try_new(Bytes::copy_from_slice(bytes))
        .map_err(|e| bad(e.to_string()))?;
    let geo_col: Option<String> = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == "geo"))
        .and_then(|k| k.value.as_deref())
        .map(|v| {
            serde_json::from_str::<serde_json::Value>(v)
                .map_err(|e| bad(format!("`geo` metadata: {e}")))
        })
        .transpose()?
        .map(|v| {
            let enc =
                v["columns"][v["primary_column"].as_str().unwrap_or(GEOMETRY_COLUMN)]["encoding"]
                    .as_str()
                    .unwrap_or("WKB")
                    .to_string();
            if enc != "WKB" {
                return Err(bad(format!("geometry encoding {enc}; only WKB is read")));
            }
            Ok(v["primary_column"]
                .as_str()
                .unwrap_or(GEOMETRY_COLUMN)
                .to_string())
        })
        .transpose()?;
    let reader = builder.build().map_err(|e| bad(e.to_string()))?;
    let mut columns: Vec<(String, ColumnData)> = Vec::new();
    let mut geometries: Vec<Option<Geometry>> = Vec::new();
    let mut rows = 0;
    for batch in reader {
        let batch = batch.map_err(|e| bad(e.to_string()))?;
        let schema = batch.schema();
        for (i, field) in schema.fields().iter().enumerate() {
            let arr = batch.column(i);
            if Some(field.name()) == geo_col.as_ref() {
                let bin = arr
                    .as_any()
                    .downcast_ref::<BinaryArray>()
                    .ok_or_else(|| bad(format!("geometry column is {}", field.data_type())))?;
                for r in 0..bin.len() {
                    geometries.push(if bin.is_null(r) {
                        None
                    } else {
                        Some(decode_row(rows + r + 1, bin.value(r))?)
                    });
                }
                continue;
            }
            let data = array_column(arr.as_ref()).ok_or_else(|| {
                bad(format!(
                    "column `{}` has unsupported type {}",
                    field.name(),
                    field.data_type()
                ))
            })?;
            match columns.iter_mut().find(|(n, _)| n == field.name()) {
                Some((_, existing)) => append(existing, data),
                None => columns.push((field.name().clone(), data)),
            }
        }
        rows += batch.num_rows();
    }
    let mut table = Table::with_rows(rows);
    for (name, data) in columns {
        table.push(name, data)?;
    }
    if geometries.is_empty() {
        geometries = vec![None; rows];
    }
    Ok((table, geometries))
}

fn append(into: &mut ColumnData, more: ColumnData) {
    match (into, more) {
        (ColumnData::Float(a), ColumnData::Float(b)) => a.extend(b),
        (ColumnData::Int(a), ColumnData::Int(b)) => a.extend(b),
        (ColumnData::Bool(a), ColumnData::Bool(b)) => a.extend(b),
        (ColumnData::Text(a), ColumnData::Text(b)) => a.extend(b),
        _ => {}
    }
}

fn array_column(arr: &dyn Array) -> Option<ColumnData> {
    let any = arr.as_any();
    let nulls = |i: usize| arr.is_null(i);
    if let Some(a) = any.downcast_ref::<Float64Array>() {
        return Some(ColumnData::Float(
            (0..a.len())
                .map(|i| (!nulls(i)).then(|| a.value(i)))
                .collect(),
        ));
    }
    if let Some(a) = any.downcast_ref::<Int64Array>() {
        return Some(ColumnData::Int(
            (0..a.len())
                .map(|i| (!nulls(i)).then(|| a.value(i)))
                .collect(),
        ));
    }
    if let Some(a) = any.downcast_ref::<arrow_array::Int32Array>() {
        return Some(ColumnData::Int(
            (0..a.len())
                .map(|i| (!nulls(i)).then(|| a.value(i) as i64))
                .collect(),
        ));
    }
    if let Some(a) = any.downcast_ref::<arrow_array::Float32Array>() {
        return Some(ColumnData::Float(
            (0..a.len())
                .map(|i| (!nulls(i)).then(|| a.value(i) as f64))
                .collect(),
        ));
    }
    if let Some(a) = any.downcast_ref::<BooleanArray>() {
        return Some(ColumnData::Bool(
            (0..a.len())
                .map(|i| (!nulls(i)).then(|| a.value(i)))
                .collect(),
        ));
    }
    if let Some(a) = any.downcast_ref::<StringArray>() {
        return Some(ColumnData::Text(
            (0..a.len())
                .map(|i| (!nulls(i)).then(|| a.value(i).to_string()))
                .collect(),
        ));
    }
    if let Some(a) = any.downcast_ref::<arrow_array::LargeStringArray>() {
        return Some(ColumnData::Text(
            (0..a.len())
                .map(|i| (!nulls(i)).then(|| a.value(i).to_string()))
                .collect(),
        ));
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use mrpt_table::Column;
    use mrpt_table::Polygon;

    #[test]
    fn round_trip_with_metadata() {
        let g = Some(Geometry::Polygon(Polygon {
            exterior: vec![[8.1, 12.0], [8.1, 12.1], [8.2, 12.1], [8.1, 12.0]],
            holes: vec![],
        }));
        let table = Table::new(vec![
            Column {
                name: "WardName".into(),
                data: ColumnData::Text(vec![Some("A".into()), None]),
            },
            Column {
                name: "score".into(),
                data: ColumnData::Float(vec![Some(0.1), None]),
            },
            Column {
                name: "rank".into(),
                data: ColumnData::Int(vec![Some(1), Some(2)]),
            },
            Column {
                name: "ok".into(),
                data: ColumnData::Bool(vec![Some(true), None]),
            },
        ])
        .unwrap();
        let geoms = vec![g, None];
        let bytes = write_geoparquet(&table, &geoms).unwrap();
        let (t2, g2) = read_geoparquet(&bytes).unwrap();
        assert_eq!(t2, table);
        assert_eq!(g2, geoms);
        let meta = geo_metadata(&geoms);
        assert_eq!(
            meta["columns"]["geometry"]["bbox"],
            serde_json::json!([8.1, 12.0, 8.2, 12.1])
        );
        assert_eq!(
            meta["columns"]["geometry"]["geometry_types"],
            serde_json::json!(["Polygon"])
        );
        assert!(matches!(
            read_geoparquet(b"PAR1 nonsense"),
            Err(Error::BadGeoParquet { .. })
        ));
    }
}
