//! The workflows that join the pure crates: uploaded bytes -> checked tables (mrpt-formats) ->
//! analysis and ITN (mrpt-analysis) -> result files as bytes. No session folder and no HTTP here:
//! the routes store what this returns through mrpt-session, and `prefork analyze` writes it to a
//! directory, so both produce the same files.

use std::collections::BTreeMap;

use mrpt_analysis as analysis;
use mrpt_formats as formats;
use serde_json::{Value, json};

/// How many top wards a summary carries.
const TOP_WARDS: usize = 10;

/// Failures of a workflow, split by whose fault they are.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The uploaded data could not be read (400 / 415).
    #[error("{0}")]
    Input(String),
    /// The file type is not one we read (415).
    #[error("{0}")]
    UnsupportedType(String),
    /// The data parse but cannot be analysed or planned as asked (422).
    #[error("{0}")]
    Unprocessable(String),
    /// Our own failure (500).
    #[error("{0}")]
    Internal(String),
}

impl From<formats::Error> for PipelineError {
    fn from(err: formats::Error) -> Self {
        match err {
            formats::Error::UnsupportedFileType { .. } | formats::Error::TprFileType { .. } => {
                PipelineError::UnsupportedType(err.to_string())
            }
            formats::Error::NoHeaderRow { .. }
            | formats::Error::TprMissingFields { .. }
            | formats::Error::NoIndicatorPair { .. }
            | formats::Error::TprMapping { .. }
            | formats::Error::TooManyRows { .. }
            | formats::Error::TooManyColumns { .. } => {
                PipelineError::Unprocessable(err.to_string())
            }
            e if e.is_input_error() => PipelineError::Input(e.to_string()),
            e => PipelineError::Internal(e.to_string()),
        }
    }
}

impl From<analysis::Error> for PipelineError {
    fn from(err: analysis::Error) -> Self {
        PipelineError::Unprocessable(err.to_string())
    }
}

/// A file the user sent.
#[derive(Debug, Clone, Copy)]
pub struct InputFile<'a> {
    pub name: &'a str,
    pub bytes: &'a [u8],
}

/// What an upload is checked into before it is stored.
#[derive(Debug, Clone)]
pub struct UploadReport {
    pub upload_type: &'static str,
    pub data_summary: Value,
    pub ward_matching: Value,
    pub rows: usize,
    pub columns: usize,
    pub shapefile_features: Option<usize>,
    pub available_variables: Vec<String>,
}

/// Read and check an upload without storing anything: the table must load and have a ward
/// column; the shapefile (if any) must load; names are matched for the report.
pub fn inspect_upload(
    table: InputFile<'_>,
    shapefile: Option<InputFile<'_>>,
) -> Result<UploadReport, PipelineError> {
    let mut wards = formats::read_ward_table(table.bytes, table.name)?;
    let summary = formats::summary::summarize(&wards.table, Some(wards.ward_column));
    let data_summary = serde_json::to_value(&summary)
        .map_err(|e| PipelineError::Internal(format!("data summary: {e}")))?;
    let available_variables = wards.candidate_variables();
    let (ward_matching, shapefile_features) = match shapefile {
        Some(file) => {
            let shapes = formats::read_shapefile_zip(file.bytes)?;
            let report = formats::match_wards(&mut wards, &shapes.ward_names())?;
            let unmatched = report.unmatched_table.clone();
            let value = json!({
                "matched": report.matched,
                "exact": report.exact,
                "fuzzy": report.fuzzy,
                "unmatched": unmatched,
                "unmatched_shapefile": report.unmatched_shape,
                "total_wards": wards.table.n_rows(),
            });
            (value, Some(shapes.geometries.len()))
        }
        None => (
            json!({"matched": 0, "unmatched": [], "note": "no shapefile uploaded: maps and spatial imputation need one"}),
            None,
        ),
    };
    Ok(UploadReport {
        upload_type: if shapefile.is_some() {
            "csv_shapefile"
        } else {
            "csv_only"
        },
        data_summary,
        ward_matching,
        rows: wards.table.n_rows(),
        columns: wards.table.n_columns(),
        shapefile_features,
        available_variables,
    })
}

/// What the user asked the analysis for.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AnalysisParams {
    /// Named variables; `None` = automatic selection.
    pub variables: Option<Vec<String>>,
    /// Per-variable direction overrides: "direct" | "inverse".
    #[serde(default)]
    pub relationships: BTreeMap<String, analysis::Direction>,
}

/// Every file an analysis produces (api.md / analysis.md §1.5 names) and its summary.
#[derive(Debug, Clone)]
pub struct AnalysisFiles {
    pub files: Vec<(String, Vec<u8>)>,
    pub variables_used: Vec<String>,
    pub warnings: Vec<String>,
    /// Stored with the analysis so a reused answer can repeat it (top wards, PCA facts...).
    pub summary: Value,
}

/// Run the full analysis on uploaded bytes: read, match names, impute, select, score, rank,
/// and encode every output file, the unified dataset included.
pub fn run_analysis(
    table: InputFile<'_>,
    shapefile: Option<InputFile<'_>>,
    params: &AnalysisParams,
) -> Result<AnalysisFiles, PipelineError> {
    let wards = formats::read_ward_table(table.bytes, table.name)?;
    let shapes = match shapefile {
        Some(file) => Some(formats::read_shapefile_zip(file.bytes)?),
        None => None,
    };
    let ward_column = wards.ward_column;
    let mut columns: Vec<analysis::Column> = wards
        .table
        .columns()
        .iter()
        .map(|c| analysis::Column {
            name: c.name.clone(),
            data: convert_column(&c.data),
        })
        .collect();
    let (geometries, geometry_index, shapefile_state, row_geometries) = match &shapes {
        Some(shapes) => {
            let table_names = wards.ward_names().to_vec();
            let join = analysis::join_ward_names(&table_names, &shapes.ward_names());
            if let Some(col) = columns.get_mut(ward_column) {
                col.data = analysis::ColumnData::Text(join.names.clone());
            }
            let geometries: Vec<analysis::WardGeometry> = shapes
                .geometries
                .iter()
                .map(|g| to_analysis_geometry(g.as_ref()))
                .collect();
            let row_geometries: Vec<Option<formats::Geometry>> = join
                .geometry_index
                .iter()
                .map(|i| i.and_then(|i| shapes.geometries.get(i).cloned().flatten()))
                .collect();
            (
                Some(geometries),
                join.geometry_index,
                shapefile_state(shapes),
                Some(row_geometries),
            )
        }
        None => (None, Vec::new(), None, None),
    };
    let input = analysis::AnalysisInput {
        table: analysis::WardTable { columns },
        geometries,
        geometry_index,
        shapefile_state,
    };
    let options = analysis::AnalysisOptions {
        variables: params.variables.clone().filter(|v| !v.is_empty()),
        relationships: params.relationships.clone(),
        ..analysis::AnalysisOptions::default()
    };
    let result = analysis::analyze(&input, &options)?;

    let mut files: Vec<(String, Vec<u8>)> = analysis::output_tables(&result)
        .into_iter()
        .map(|t| (t.file_name.clone(), t.to_csv_string().into_bytes()))
        .collect();
    for (name, value) in analysis::output_json(&result) {
        let bytes = serde_json::to_vec_pretty(&value)
            .map_err(|e| PipelineError::Internal(format!("{name}: {e}")))?;
        files.push((name, bytes));
    }
    let spatial: Option<Vec<Option<analysis::WardSpatial>>> = row_geometries.as_ref().map(|rows| {
        rows.iter()
            .map(|g| {
                g.as_ref().map(|g| {
                    let m = g.spatial_metrics();
                    analysis::WardSpatial {
                        area_km2: m.area_km2,
                        centroid_lat: m.centroid_lat,
                        centroid_lon: m.centroid_lon,
                        perimeter_km: m.perimeter_km,
                    }
                })
            })
            .collect()
    });
    let unified = analysis::unified_table(&result, spatial.as_deref(), &now_iso());
    files.push((
        "unified_dataset.csv".to_string(),
        unified.to_csv_string().into_bytes(),
    ));
    if let Some(rows) = &row_geometries {
        let table = output_to_table(&unified)?;
        let geoparquet = formats::write_geoparquet(&table, rows)?;
        files.push(("unified_dataset.geoparquet".to_string(), geoparquet));
    }

    let variables_used = result.selection.variables.clone();
    let warnings: Vec<String> = result.warnings.iter().map(|w| w.message.clone()).collect();
    let summary = analysis_summary(&result, &warnings);
    Ok(AnalysisFiles {
        files,
        variables_used,
        warnings,
        summary,
    })
}

fn analysis_summary(result: &analysis::AnalysisResult, warnings: &[String]) -> Value {
    let top = |wards: &[analysis::RankedWard]| -> Vec<Value> {
        wards
            .iter()
            .take(TOP_WARDS)
            .map(|w| {
                json!({"ward_name": w.ward_name, "score": w.score, "rank": w.rank, "category": w.category.label()})
            })
            .collect()
    };
    let pca = result.pca.as_ref().map(|p| {
        json!({
            "top_wards": top(&p.rankings),
            "n_components": p.n_components,
            "explained_variance": p.explained_variance,
            "variable_importance": p.importance.iter().map(|(v, i)| json!({"variable": v, "importance": i})).collect::<Vec<_>>(),
            "suitability": p.suitability,
        })
    });
    json!({
        "variables_used": result.selection.variables,
        "selection_method": result.selection.method,
        "zone": result.selection.zone,
        "directions": result.directions,
        "ward_count": result.composite.median_score.len(),
        "model_count": result.composite.models.len(),
        "composite": {"top_wards": top(&result.composite.rankings)},
        "pca": pca,
        "warnings": warnings,
    })
}

/// The shapefile's state name for zone detection. Only name columns count: analysis.md §2.3
/// rule 4 says ChatMRPT never used the shapefile's `StateCode` for the zone.
fn shapefile_state(shapes: &formats::WardShapes) -> Option<String> {
    let table = &shapes.attributes;
    ["State", "STATE_NAME", "StateName"]
        .iter()
        .filter_map(|name| table.column(name))
        .flat_map(|c| c.data.to_text().into_iter().flatten())
        .find(|v| !v.trim().is_empty())
}

fn convert_column(data: &formats::ColumnData) -> analysis::ColumnData {
    match data {
        formats::ColumnData::Float(v) => analysis::ColumnData::Float(v.clone()),
        formats::ColumnData::Int(v) => analysis::ColumnData::Int(v.clone()),
        formats::ColumnData::Bool(v) => analysis::ColumnData::Bool(v.clone()),
        formats::ColumnData::Text(v) => analysis::ColumnData::Text(v.clone()),
    }
}

fn to_analysis_geometry(geometry: Option<&formats::Geometry>) -> analysis::WardGeometry {
    analysis::WardGeometry {
        polygons: geometry
            .map(|g| {
                g.polygons()
                    .iter()
                    .map(|p| analysis::Polygon {
                        exterior: p.exterior.clone(),
                        holes: p.holes.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// The analysis crate's output table as a formats table, for the GeoParquet writer.
fn output_to_table(output: &analysis::OutputTable) -> Result<formats::Table, PipelineError> {
    let mut table = formats::Table::with_rows(output.n_rows());
    for column in &output.columns {
        table
            .push(column.name.clone(), cells_to_column(&column.cells))
            .map_err(|e| PipelineError::Internal(format!("unified dataset column: {e}")))?;
    }
    Ok(table)
}

/// One typed column from cells: the first non-null cell decides the type (floats absorb ints);
/// anything mixed is written as text.
fn cells_to_column(cells: &[analysis::Cell]) -> formats::ColumnData {
    use analysis::Cell;
    let mut kind = None;
    for cell in cells {
        let k = match cell {
            Cell::Null => continue,
            Cell::Int(_) => 0,
            Cell::Float(_) => 1,
            Cell::Bool(_) => 2,
            Cell::Text(_) => 3,
        };
        kind = Some(match (kind, k) {
            (None, k) => k,
            (Some(a), b) if a == b => a,
            (Some(0), 1) | (Some(1), 0) => 1,
            _ => 3,
        });
    }
    match kind {
        Some(0) => formats::ColumnData::Int(
            cells
                .iter()
                .map(|c| match c {
                    Cell::Int(i) => Some(*i),
                    _ => None,
                })
                .collect(),
        ),
        Some(1) => formats::ColumnData::Float(
            cells
                .iter()
                .map(|c| match c {
                    Cell::Int(i) => Some(*i as f64),
                    Cell::Float(f) => Some(*f),
                    _ => None,
                })
                .collect(),
        ),
        Some(2) => formats::ColumnData::Bool(
            cells
                .iter()
                .map(|c| match c {
                    Cell::Bool(b) => Some(*b),
                    _ => None,
                })
                .collect(),
        ),
        _ => formats::ColumnData::Text(
            cells
                .iter()
                .map(|c| match c {
                    Cell::Null => None,
                    other => Some(other.render()),
                })
                .collect(),
        ),
    }
}

/// UTC now as `YYYY-MM-DDTHH:MM:SS` (the unified dataset's `last_updated`).
fn now_iso() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    iso_from_unix(secs)
}

pub(crate) fn iso_from_unix(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if mo <= 2 { y + 1 } else { y };
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates() {
        assert_eq!(iso_from_unix(0), "1970-01-01T00:00:00");
        assert_eq!(iso_from_unix(1_796_000_000), "2026-11-30T00:53:20");
    }
}

/// A table file read back from the session as the analysis crate's table.
pub fn read_result_table(bytes: &[u8], name: &str) -> Result<analysis::WardTable, PipelineError> {
    let table = formats::read_table(bytes, name)?;
    Ok(to_analysis_table(&table))
}

fn to_analysis_table(table: &formats::Table) -> analysis::WardTable {
    analysis::WardTable {
        columns: table
            .columns()
            .iter()
            .map(|c| analysis::Column {
                name: c.name.clone(),
                data: convert_column(&c.data),
            })
            .collect(),
    }
}

/// What the user asked ITN planning for.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ItnParams {
    pub total_nets: i64,
    pub avg_household_size: Option<f64>,
    pub urban_threshold: Option<f64>,
    pub method: analysis::RankingMethod,
    pub strategy: Option<analysis::Strategy>,
}

/// The files ITN planning reads: the rankings of the chosen method, the ward data (for urban %,
/// centroids and a population column) and the uploaded population table, each if present.
#[derive(Debug, Clone, Copy)]
pub struct ItnSources<'a> {
    pub rankings: &'a [u8],
    pub data: Option<&'a [u8]>,
    pub population: Option<InputFile<'a>>,
}

#[derive(Debug, Clone)]
pub struct ItnOutput {
    pub plan: analysis::ItnPlan,
    /// `itn_distribution_results.json` without the session fields (analysis id, map path).
    pub results: Value,
    /// The per-ward allocation table as CSV (the Flask system lost it; we keep it).
    pub allocation_csv: Vec<u8>,
}

/// Plan ITN distribution from stored rankings. Never runs the analysis.
pub fn plan_itn(sources: ItnSources<'_>, params: &ItnParams) -> Result<ItnOutput, PipelineError> {
    let rankings_table = read_result_table(sources.rankings, "rankings.csv")?;
    let data = match sources.data {
        Some(bytes) => Some(read_result_table(bytes, "unified_dataset.csv")?),
        None => None,
    };
    let rankings =
        analysis::itn_rankings_from_tables(&rankings_table, data.as_ref(), params.method)?;
    let population: Vec<analysis::PopulationRow> = match sources.population {
        Some(file) => {
            let table = formats::population::read_population(file.bytes, file.name)?;
            let codes = table.ward_codes.clone();
            table
                .ward_names
                .iter()
                .zip(&table.populations)
                .enumerate()
                .map(|(i, (name, population))| analysis::PopulationRow {
                    ward_name: name.clone(),
                    admin2: None,
                    ward_code: codes.as_ref().and_then(|c| c.get(i).cloned().flatten()),
                    population: *population,
                    latitude: None,
                    longitude: None,
                })
                .collect()
        }
        None => data
            .as_ref()
            .and_then(analysis::population_rows_from_data)
            .ok_or_else(|| {
                PipelineError::Unprocessable(
                    "ITN planning needs ward populations: upload a population table \
                     (POST /upload_population with WardName and Population columns) or include a \
                     Population column in the ward data"
                        .to_string(),
                )
            })?,
    };
    let options = analysis::ItnOptions {
        total_nets: params.total_nets,
        avg_household_size: params.avg_household_size.unwrap_or(5.0),
        urban_threshold: params.urban_threshold,
        strategy: params.strategy,
    };
    let plan = analysis::plan_itn(&rankings, &population, &options)?;
    let table = plan.allocation_table();
    let results = json!({
        "status": "success",
        "stats": plan.stats,
        "method": params.method,
        "strategy": plan.strategy,
        "urban_threshold": plan.urban_threshold,
        "avg_household_size": plan.avg_household_size,
        "total_nets": plan.total_nets,
        "timestamp": now_iso(),
        "prioritized": table.records(),
        "reprioritized": [],
        "unallocated_wards": plan.unallocated_wards,
        "excluded_wards": plan.excluded_wards,
        "matching": plan.matching,
        "warnings": plan.warnings.iter().map(|w| w.message.clone()).collect::<Vec<_>>(),
    });
    Ok(ItnOutput {
        results,
        allocation_csv: table.to_csv_string().into_bytes(),
        plan,
    })
}

/// Ward shapes and their results, read back from `unified_dataset.geoparquet`.
pub fn map_input_from_unified(geoparquet: &[u8]) -> Result<mrpt_maps::MapInput, PipelineError> {
    let (table, geometries) = formats::read_geoparquet(geoparquet)?;
    let wards = formats::WardTable::from_table(table)?;
    let t = &wards.table;
    let floats = |name: &str| t.column(name).and_then(|c| c.data.to_f64());
    let texts = |name: &str| t.column(name).map(|c| c.data.to_text());
    let vulnerability = |score: &str, rank: &str, category: &str| {
        let (s, r, c) = (floats(score), floats(rank), texts(category));
        move |row: usize| -> Option<mrpt_maps::Vulnerability> {
            let score = s.as_ref()?.get(row).copied().flatten()?;
            let rank = r.as_ref()?.get(row).copied().flatten()?;
            let category = c
                .as_ref()
                .and_then(|c| c.get(row).cloned().flatten())
                .unwrap_or_default();
            Some(mrpt_maps::Vulnerability {
                score,
                rank: rank.max(0.0) as u32,
                category,
            })
        }
    };
    let composite = vulnerability("composite_score", "composite_rank", "composite_category");
    let pca = vulnerability("pca_score", "pca_rank", "pca_category");
    let names = wards.ward_names();
    let mut out = Vec::with_capacity(names.len());
    for (row, name) in names.iter().enumerate() {
        out.push(mrpt_maps::WardInput {
            name: name.clone().unwrap_or_default(),
            geometry: geometries
                .get(row)
                .cloned()
                .flatten()
                .map(|g| to_map_geometry(&g)),
            composite: composite(row),
            pca: pca(row),
            itn: None,
        });
    }
    Ok(mrpt_maps::MapInput {
        area: None,
        wards: out,
    })
}

/// Add the shapefile's wards that are not on the map yet (no table row matched them), without
/// data, so the map shows every ward of the area.
pub fn add_unmatched_shapes(
    input: &mut mrpt_maps::MapInput,
    shapefile_zip: &[u8],
) -> Result<(), PipelineError> {
    let shapes = formats::read_shapefile_zip(shapefile_zip)?;
    let present: std::collections::HashSet<String> =
        input.wards.iter().map(|w| w.name.clone()).collect();
    for (name, geometry) in shapes.ward_names().into_iter().zip(&shapes.geometries) {
        let (Some(name), Some(geometry)) = (name, geometry) else {
            continue;
        };
        if present.contains(&name) {
            continue;
        }
        input.wards.push(mrpt_maps::WardInput {
            name,
            geometry: Some(to_map_geometry(geometry)),
            composite: None,
            pca: None,
            itn: None,
        });
    }
    Ok(())
}

fn to_map_geometry(g: &formats::Geometry) -> mrpt_maps::MultiPolygon {
    g.polygons()
        .iter()
        .map(|p| {
            std::iter::once(p.exterior.clone())
                .chain(p.holes.iter().cloned())
                .collect()
        })
        .collect()
}

/// Attach an ITN plan's per-ward figures to the map input (by ward name).
pub fn attach_itn(input: &mut mrpt_maps::MapInput, plan: &analysis::ItnPlan) {
    let by_name: std::collections::HashMap<&str, &analysis::AllocationRow> = plan
        .allocations
        .iter()
        .map(|a| (a.ward_name.as_str(), a))
        .collect();
    for ward in &mut input.wards {
        ward.itn = by_name.get(ward.name.as_str()).map(|a| mrpt_maps::ItnWard {
            population: Some(a.population),
            nets_needed: a.nets_needed.max(0) as u64,
            nets_allocated: a.nets_allocated.max(0) as u64,
            coverage_percent: a.coverage_percent,
            phase: a.allocation_phase.clone(),
            tier: a.priority_tier,
            urban_pct: Some(a.urban_pct),
        });
        if ward.itn.is_none() && plan.unallocated_wards.iter().any(|w| w == &ward.name) {
            ward.itn = Some(mrpt_maps::ItnWard {
                population: None,
                nets_needed: 0,
                nets_allocated: 0,
                coverage_percent: 0.0,
                phase: "No allocation".to_string(),
                tier: None,
                urban_pct: None,
            });
        }
    }
}

pub fn itn_summary(
    plan: &analysis::ItnPlan,
    method: analysis::RankingMethod,
) -> mrpt_maps::ItnSummary {
    mrpt_maps::ItnSummary {
        total_nets: plan.total_nets.max(0) as u64,
        allocated: plan.stats.allocated.max(0) as u64,
        remaining: plan.stats.remaining.max(0) as u64,
        coverage_percent: plan.stats.coverage_percent,
        avg_household_size: plan.avg_household_size,
        urban_threshold: plan.urban_threshold,
        method: match method {
            analysis::RankingMethod::Composite => mrpt_maps::Method::Composite,
            analysis::RankingMethod::Pca => mrpt_maps::Method::Pca,
        },
        strategy: Some(
            match plan.strategy {
                analysis::Strategy::Rank => "rank",
                analysis::Strategy::RuralFirst => "rural_first",
            }
            .to_string(),
        ),
    }
}
