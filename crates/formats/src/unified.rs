//! The unified dataset (analysis.md §1.4): every table ward with its geometry joined, written as
//! GeoParquet and as CSV. Which extra columns it carries (scores, ranks, PCA...) is the caller's
//! business: the writers take any [`Table`].

use crate::delimited::write_csv;
use crate::error::Result;
use crate::geometry::Geometry;
use crate::geoparquet::write_geoparquet;
use crate::shapefile::WardShapes;
use crate::table::{ColumnData, Table, WardTable};

/// How table rows found their geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JoinKey {
    WardCode,
    WardName,
}

/// The base of the unified dataset: the ward table (names stripped, ward column first) and one
/// geometry per row (`None` when the ward is not in the shapefile).
#[derive(Debug, Clone)]
pub struct UnifiedBase {
    pub table: Table,
    pub geometries: Vec<Option<Geometry>>,
    pub join: JoinKey,
    /// Rows that found no geometry.
    pub without_geometry: usize,
}

const CODE_NAMES: [&str; 4] = ["WardCode", "ward_code", "WardCode_x", "WardCode_y"];

/// §1.4 step 1: a left join of geometries onto the (already name-matched) ward table, by ward
/// code when both sides carry one, else by ward name. A key found several times in the
/// shapefile takes its first shape.
pub fn join_geometries(wards: &WardTable, shapes: &WardShapes) -> Result<UnifiedBase> {
    let mut table = Table::with_rows(wards.table.n_rows());
    let ward_name = wards.ward_column_name().trim().to_string();
    for c in wards.table.columns() {
        table.push(c.name.trim().to_string(), c.data.clone())?;
    }
    if let Some(col) = table.remove(&ward_name) {
        table.insert(0, col.name, col.data)?;
    }
    let table_codes = CODE_NAMES
        .iter()
        .find_map(|n| table.column(n))
        .map(|c| c.data.to_text());
    let (keys, shape_keys, join) = match (table_codes, shapes.ward_codes()) {
        (Some(t), Some(s)) => (t, s, JoinKey::WardCode),
        _ => (
            wards.ward_names().to_vec(),
            shapes.ward_names(),
            JoinKey::WardName,
        ),
    };
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, k) in shape_keys.iter().enumerate() {
        if let Some(k) = k {
            index.entry(k.as_str()).or_insert(i);
        }
    }
    let geometries: Vec<Option<Geometry>> = keys
        .iter()
        .map(|k| {
            k.as_deref()
                .and_then(|k| index.get(k))
                .and_then(|&i| shapes.geometries.get(i).cloned().flatten())
        })
        .collect();
    let without_geometry = geometries.iter().filter(|g| g.is_none()).count();
    Ok(UnifiedBase {
        table,
        geometries,
        join,
        without_geometry,
    })
}

/// §1.4 step 7: `area_km2`, `centroid_lat`, `centroid_lon`, `perimeter_km` (missing where a row
/// has no geometry), in that order.
pub fn spatial_columns(geometries: &[Option<Geometry>]) -> Result<Table> {
    let metrics: Vec<_> = geometries
        .iter()
        .map(|g| g.as_ref().map(Geometry::spatial_metrics))
        .collect();
    let col = |f: fn(&crate::geometry::SpatialMetrics) -> f64| {
        ColumnData::Float(metrics.iter().map(|m| m.as_ref().map(f)).collect())
    };
    let mut t = Table::with_rows(geometries.len());
    t.push("area_km2", col(|m| m.area_km2))?;
    t.push("centroid_lat", col(|m| m.centroid_lat))?;
    t.push("centroid_lon", col(|m| m.centroid_lon))?;
    t.push("perimeter_km", col(|m| m.perimeter_km))?;
    Ok(t)
}

/// The two files of the unified dataset, as bytes for the session store to write atomically.
#[derive(Debug, Clone)]
pub struct UnifiedFiles {
    /// `unified_dataset.geoparquet`
    pub geoparquet: Vec<u8>,
    /// `unified_dataset.csv` (no geometry)
    pub csv: Vec<u8>,
}

/// Encodes the unified dataset: any columns, one geometry per row.
pub fn write_unified(table: &Table, geometries: &[Option<Geometry>]) -> Result<UnifiedFiles> {
    Ok(UnifiedFiles {
        geoparquet: write_geoparquet(table, geometries)?,
        csv: write_csv(table),
    })
}
