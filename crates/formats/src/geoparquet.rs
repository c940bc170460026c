//! GeoParquet 1.1 (WKB geometry column, `geo` file metadata) and plain Parquet <-> [`Table`].

use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
};
use arrow_schema::{DataType, Field, Schema};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::arrow_writer::{ArrowRowGroupWriterFactory, compute_leaves};
use parquet::basic::Compression;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use crate::error::{Error, Result};
use crate::wkb::{decode_row, to_wkb};
use mrpt_table::Geometry;
use mrpt_table::{ColumnData, ColumnView, Table, TableView};

/// Name of the geometry column we write (geopandas' default).
pub const GEOMETRY_COLUMN: &str = "geometry";

fn view_array(data: &ColumnView<'_>) -> (DataType, ArrayRef) {
    match data {
        ColumnView::Data(d) => column_array(d),
        ColumnView::Floats(v) => (
            DataType::Float64,
            Arc::new(Float64Array::from_iter(
                v.iter().map(|x| (!x.is_nan()).then_some(x)),
            )),
        ),
    }
}

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
    table: &TableView<'_>,
    geometries: Option<&[Option<Geometry>]>,
) -> Result<RecordBatch> {
    let mut fields = Vec::with_capacity(table.n_columns() + 1);
    let mut arrays = Vec::with_capacity(table.n_columns() + 1);
    for (name, c) in table.columns() {
        let (ty, arr) = view_array(c);
        fields.push(Field::new(*name, ty, true));
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

fn writer_properties(geo: Option<serde_json::Value>) -> WriterProperties {
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
    props.build()
}

fn write_parquet<W: std::io::Write + Send>(
    batch: &RecordBatch,
    geo: Option<serde_json::Value>,
    out: W,
) -> Result<W> {
    let mut writer = ArrowWriter::try_new(out, batch.schema(), Some(writer_properties(geo)))?;
    writer.write(batch)?;
    Ok(writer.into_inner()?)
}

/// Encodes a table with one geometry per row as GeoParquet 1.1 (snappy).
pub fn write_geoparquet(table: &Table, geometries: &[Option<Geometry>]) -> Result<Vec<u8>> {
    write_geoparquet_to(&TableView::from(table), geometries, Vec::new())
}

/// [`write_geoparquet`] of borrowed columns, streamed into `out`.
///
/// The bytes are those [`ArrowWriter`] writes for the whole table as one record batch (one row
/// group), but the columns are encoded one after the other with arrow's own column writers:
/// only one column's arrow array and one column's dictionary exist at a time (ArrowWriter keeps
/// every column's dictionary open until the row group ends: 34 MB at 9,410 wards x 300
/// columns), and only the encoded chunks wait for the row group.
pub fn write_geoparquet_to<W: std::io::Write + Send>(
    table: &TableView<'_>,
    geometries: &[Option<Geometry>],
    out: W,
) -> Result<W> {
    if geometries.len() != table.n_rows() {
        return Err(Error::GeometryCount {
            rows: table.n_rows(),
            geometries: geometries.len(),
        });
    }
    if table.column_index(GEOMETRY_COLUMN).is_some() {
        return Err(Error::DuplicateColumn {
            column: GEOMETRY_COLUMN.into(),
        });
    }
    let props = writer_properties(Some(geo_metadata(geometries)));
    if table.n_rows() == 0
        || props
            .max_row_group_row_count()
            .is_some_and(|max| table.n_rows() > max)
    {
        // No row group, or several: ArrowWriter's own splitting decides.
        let batch = to_record_batch(table, Some(geometries))?;
        return write_parquet(&batch, Some(geo_metadata(geometries)), out);
    }
    let mut fields: Vec<Field> = table
        .columns()
        .iter()
        .map(|(name, c)| Field::new(*name, view_type(c), true))
        .collect();
    fields.push(Field::new(GEOMETRY_COLUMN, DataType::Binary, true));
    let schema = Arc::new(Schema::new(fields));
    let mut props = props;
    parquet::arrow::add_encoded_arrow_schema_to_metadata(&schema, &mut props);
    let parquet_schema = parquet::arrow::ArrowSchemaConverter::new()
        .with_coerce_types(props.coerce_types())
        .convert(&schema)?;
    let mut file = parquet::file::writer::SerializedFileWriter::new(
        out,
        parquet_schema.root_schema_ptr(),
        Arc::new(props),
    )?;
    let factory = ArrowRowGroupWriterFactory::new(&file, Arc::clone(&schema));
    let writers = factory.create_column_writers(0)?;
    drop(factory);
    // Each column's encoded chunk goes to the output as soon as it is done (the same bytes in
    // the same order as holding them all for the row group, without 25 MB of them in memory at
    // national scale).
    let mut row_group = file.next_row_group()?;
    for ((i, field), mut writer) in schema.fields().iter().enumerate().zip(writers) {
        let array: ArrayRef = match table.columns().get(i) {
            Some((_, c)) => view_array(c).1,
            None => {
                let wkb: Vec<Option<Vec<u8>>> =
                    geometries.iter().map(|g| g.as_ref().map(to_wkb)).collect();
                Arc::new(BinaryArray::from(
                    wkb.iter().map(Option::as_deref).collect::<Vec<_>>(),
                ))
            }
        };
        for leaf in compute_leaves(field, &array)? {
            writer.write(&leaf)?;
        }
        writer.close()?.append_to_row_group(&mut row_group)?;
    }
    row_group.close()?;
    Ok(file.into_inner()?)
}

fn view_type(c: &ColumnView<'_>) -> DataType {
    match c {
        ColumnView::Floats(_) | ColumnView::Data(ColumnData::Float(_)) => DataType::Float64,
        ColumnView::Data(ColumnData::Int(_)) => DataType::Int64,
        ColumnView::Data(ColumnData::Bool(_)) => DataType::Boolean,
        ColumnView::Data(ColumnData::Text(_)) => DataType::Utf8,
    }
}

/// Encodes a table as plain Parquet (snappy).
pub fn write_parquet_table(table: &Table) -> Result<Vec<u8>> {
    write_parquet(
        &to_record_batch(&TableView::from(table), None)?,
        None,
        Vec::new(),
    )
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

    /// The column-at-a-time writer gives ArrowWriter's bytes for the same table.
    #[test]
    fn column_writer_matches_arrow_writer() {
        use mrpt_table::{Polygon, Strided};
        let n = 3000;
        let floats: Vec<f64> = (0..n * 3)
            .map(|i| {
                if i % 7 == 0 {
                    f64::NAN
                } else {
                    (i as f64).sqrt() / 10.0
                }
            })
            .collect();
        let names = ColumnData::Text(
            (0..n)
                .map(|i| (i % 5 != 0).then(|| format!("w{i}")))
                .collect(),
        );
        let ints = ColumnData::Int((0..n).map(|i| (i % 9 != 0).then_some(i as i64)).collect());
        let bools = ColumnData::Bool((0..n).map(|i| (i % 4 != 0).then_some(i % 2 == 0)).collect());
        let mut view = TableView::with_rows(n);
        view.push("WardName", ColumnView::Data(&names)).unwrap();
        view.push("i", ColumnView::Data(&ints)).unwrap();
        view.push("b", ColumnView::Data(&bools)).unwrap();
        for k in 0..3 {
            let name: &'static str = ["model_1", "model_2", "model_3"][k];
            view.push(name, ColumnView::Floats(Strided::new(&floats, k, 3, n)))
                .unwrap();
        }
        let geoms: Vec<Option<Geometry>> = (0..n)
            .map(|i| {
                (i % 11 != 0).then(|| {
                    let x = i as f64 * 0.001;
                    Geometry::Polygon(Polygon {
                        exterior: vec![[x, 0.0], [x + 1.0, 0.0], [x, 1.0], [x, 0.0]],
                        holes: vec![],
                    })
                })
            })
            .collect();
        let ours = write_geoparquet_to(&view, &geoms, Vec::new()).unwrap();
        let batch = to_record_batch(&view, Some(&geoms)).unwrap();
        let theirs = write_parquet(&batch, Some(geo_metadata(&geoms)), Vec::new()).unwrap();
        assert!(ours == theirs, "{} vs {} bytes", ours.len(), theirs.len());
        let (back, g) = read_geoparquet(&ours).unwrap();
        assert_eq!(back, view.to_table().unwrap());
        assert_eq!(g, geoms);
    }

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
