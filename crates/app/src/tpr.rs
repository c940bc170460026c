//! The TPR workflow (tpr.md): a read facility export, an optional shapefile and population
//! table in; ward TPR, trends and the rest of the §8.1 files out. `prefork tpr` and the HTTP
//! routes run this same code, so their files are the same.

use std::collections::BTreeMap;

use mrpt_analysis::tpr::{self as analysis_tpr, TprOptions, TprResult};
use mrpt_formats::tpr as formats_tpr;
use mrpt_formats::tpr::write;
use mrpt_table::tpr::{AgeChoice, FacilityExport, Metric, Selection, Thresholds, WardLink};
use serde_json::{Value, json};

use crate::pipeline::{InputFile, PipelineError};

/// What the caller chose besides the files.
#[derive(Debug, Clone, PartialEq)]
pub struct TprParams {
    /// State, levels, ages, method and years.
    pub selection: Selection,
    /// Direction and hotspot thresholds (tpr.md §0.8).
    pub thresholds: Thresholds,
    /// Explicit column mapping (tpr.md §2.4), already applied when the export was read; echoed.
    pub mapping: BTreeMap<String, Option<String>>,
    /// Size of the reprioritisation list (tpr.md §6.6).
    pub reprioritise_n: usize,
    /// Tests a ward needs in the last year to be ranked.
    pub min_tested: f64,
    /// Metric of trends, hotspots, reprioritisation and the map (tpr.md §3.3 `metric`).
    pub metric: Metric,
}

impl Default for TprParams {
    fn default() -> Self {
        TprParams {
            selection: Selection::default(),
            thresholds: Thresholds::default(),
            mapping: BTreeMap::new(),
            reprioritise_n: 10,
            min_tested: 100.0,
            metric: Metric::Tpr,
        }
    }
}

/// The files of one TPR computation and the figures an answer quotes.
#[derive(Debug, Clone)]
pub struct TprOutput {
    /// (file name, bytes) in writing order; `tpr_selection.json` first.
    pub files: Vec<(String, Vec<u8>)>,
    /// Everything the analysis computed.
    pub result: TprResult,
    /// Per export ward, its shapefile match and population.
    pub links: Vec<WardLink>,
    /// The `tpr_missingness.csv` rows (tpr.md §7).
    pub missingness: Vec<mrpt_table::tpr::MissingnessRow>,
    /// The answer's body (tpr.md §8.3 `/api/tpr/calculate`).
    pub summary: Value,
}

/// Reads an uploaded export held in memory.
pub fn read_export(
    file: InputFile<'_>,
    mapping: &BTreeMap<String, Option<String>>,
) -> Result<FacilityExport, PipelineError> {
    let options = formats_tpr::ReadOptions {
        mapping: mapping.clone(),
        ..Default::default()
    };
    Ok(formats_tpr::read_facility_export(
        file.bytes, file.name, &options,
    )?)
}

/// The export's wards linked to the shapefile and to the population of the selected ages.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkedWards {
    /// One per [`FacilityExport::wards`].
    pub links: Vec<WardLink>,
    /// Set when a population table was given but has no column for the selected ages: burden is
    /// then not computed and this says which column is needed (tpr.md §5).
    pub population_note: Option<String>,
}

/// Links the export's wards to the shapefile and the population table (tpr.md §4.4, §5); the
/// population is the selected age group's (`Population_u5` for under-fives, ...).
pub fn link_wards(
    export: &FacilityExport,
    shapefile: Option<&[u8]>,
    population: Option<InputFile<'_>>,
    age: AgeChoice,
) -> Result<LinkedWards, PipelineError> {
    let Some(zip) = shapefile else {
        if population.is_some() {
            return Err(PipelineError::Unprocessable(
                "a population table is joined to the facility wards through the ward \
                 shapefile; upload the shapefile too"
                    .into(),
            ));
        }
        return Ok(LinkedWards {
            links: vec![WardLink::unlinked(); export.wards.len()],
            population_note: None,
        });
    };
    let shapes = mrpt_formats::read_shapefile_zip(zip)?;
    let wards = formats_tpr::shape_wards(&shapes);
    let mut links = formats_tpr::match_tpr_wards(export, &wards);
    let mut population_note = None;
    if let Some(p) = population {
        // `Population` (all ages) is the column the tables show; burden divides by the
        // selected ages' population.
        let all = mrpt_formats::population::read_population(p.bytes, p.name)?;
        formats_tpr::attach_population(&mut links, &wards, &all);
        if age == AgeChoice::AllAges {
            for l in &mut links {
                l.burden_population = l.population;
            }
        } else {
            match formats_tpr::population_for_age(p.bytes, p.name, age)? {
                Some(table) => {
                    let mut by_age = links.clone();
                    formats_tpr::attach_population(&mut by_age, &wards, &table);
                    for (l, a) in links.iter_mut().zip(by_age) {
                        l.burden_population = a.population;
                    }
                }
                None => {
                    population_note = Some(format!(
                        "burden per 1,000 was not computed: the population table has no {} \
                         column for age group {}",
                        age.population_columns(),
                        age.as_str()
                    ))
                }
            }
        }
    }
    Ok(LinkedWards {
        links,
        population_note,
    })
}

/// Computes every output of tpr.md §8.1 for one selection.
pub fn compute(
    export: &FacilityExport,
    links: Vec<WardLink>,
    params: &TprParams,
) -> Result<TprOutput, PipelineError> {
    let options = TprOptions {
        selection: params.selection.clone(),
        thresholds: params.thresholds,
        metric: params.metric,
    };
    let result = analysis_tpr::compute_tpr(export, &links, &options)?;
    let missingness = analysis_tpr::missingness(export, params.selection.state.as_deref())?;
    // Burden columns for all ages (as the reference files), and for an age group whose
    // population was given.
    let all_ages = params.selection.age == AgeChoice::AllAges || result.has_burden;
    let multi_year = result.years.len() >= 2;
    let mut files: Vec<(String, Vec<u8>)> = vec![
        (
            "tpr_results.csv".into(),
            write::results_csv(&result.wards, all_ages),
        ),
        (
            "tpr_time_series.csv".into(),
            write::time_series_csv(&result.wards, &result.series, all_ages),
        ),
        (
            "tpr_lga_summary.csv".into(),
            write::lga_summary_csv(&export.lgas, &result.lga_rates),
        ),
        (
            "tpr_missingness.csv".into(),
            write::missingness_csv(&missingness),
        ),
        (
            "ward_matching.csv".into(),
            write::ward_matching_csv(export, &links),
        ),
    ];
    let reprioritisation = multi_year
        .then(|| analysis_tpr::reprioritise(&result, params.reprioritise_n, params.min_tested));
    if multi_year {
        files.push((
            "trend_summary.csv".into(),
            write::trend_summary_csv(&result.wards, &result.trends, result.metric),
        ));
        files.push((
            "tpr_hotspots.csv".into(),
            write::hotspots_csv(&result.wards, &result.hotspots, result.metric),
        ));
        files.push((
            "tpr_lga_trend.csv".into(),
            write::lga_trend_csv(&export.lgas, &result.lga_trends),
        ));
        if let Some(r) = &reprioritisation {
            files.push((
                "tpr_reprioritise.csv".into(),
                write::reprioritise_csv(&result.wards, &r.wards, result.metric),
            ));
        }
    }
    let summary = summary_json(export, &result, &links, params, reprioritisation.as_ref());
    let selection_json = selection_json(export, &result, &links, params, &summary);
    let selection_bytes = serde_json::to_vec_pretty(&selection_json)
        .map_err(|e| PipelineError::Internal(format!("tpr_selection.json: {e}")))?;
    files.insert(0, ("tpr_selection.json".into(), selection_bytes));
    let mut summary = summary;
    if let Value::Object(m) = &mut summary {
        m.insert(
            "files".into(),
            json!(files.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>()),
        );
    }
    Ok(TprOutput {
        files,
        result,
        links,
        missingness,
        summary,
    })
}

fn unmatched_wards(export: &FacilityExport, links: &[WardLink], result: &TprResult) -> Vec<Value> {
    result
        .export_ward
        .iter()
        .filter_map(|&w| {
            let link = links.get(w)?;
            (!link.is_matched() && link.match_kind != "no_shapefile").then(|| {
                let ward = &export.wards[w];
                json!({
                    "ward": ward.name,
                    "lga": export.lgas[ward.lga as usize].name,
                    "match": link.match_kind,
                })
            })
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// The `/api/tpr/calculate` answer body (tpr.md §8.3); numbers are the server's own.
fn summary_json(
    export: &FacilityExport,
    result: &TprResult,
    links: &[WardLink],
    params: &TprParams,
    reprioritisation: Option<&analysis_tpr::Reprioritisation>,
) -> Value {
    let values: Vec<f64> = result.wards.iter().filter_map(|w| w.counts.tpr).collect();
    let mean = (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64);
    let round2 = |v: Option<f64>| v.map(|x| mrpt_table::tpr::round_half_even(x, 2));
    let mut ranked: Vec<&mrpt_table::tpr::WardTpr> = result
        .wards
        .iter()
        .filter(|w| w.counts.tpr.is_some())
        .collect();
    ranked.sort_by(|a, b| {
        b.counts
            .tpr
            .unwrap_or(0.0)
            .total_cmp(&a.counts.tpr.unwrap_or(0.0))
            .then(a.lga_key.cmp(&b.lga_key))
            .then(a.ward_key.cmp(&b.ward_key))
    });
    let top: Vec<Value> = ranked
        .iter()
        .take(10)
        .map(|w| {
            json!({
                "ward": w.ward_name, "lga": w.lga, "tpr": w.counts.tpr,
                "tested": w.counts.tested, "positive": w.counts.positive,
                "method_used": w.counts.method_used.map(|m| m.as_str()),
            })
        })
        .collect();
    let trend = (result.years.len() >= 2).then(|| {
        let count = |d: mrpt_table::tpr::Direction| {
            result.trends.iter().filter(|t| t.direction == d).count()
        };
        json!({
            "worsening": count(mrpt_table::tpr::Direction::Worsening),
            "improving": count(mrpt_table::tpr::Direction::Improving),
            "stable": count(mrpt_table::tpr::Direction::Stable),
            "insufficient_data": count(mrpt_table::tpr::Direction::InsufficientData),
            "direction_threshold": if params.metric == Metric::Burden {
                params.thresholds.burden_direction
            } else {
                params.thresholds.direction
            },
            "metric": params.metric.as_str(),
            "note": "Direction comes from the least-squares slope over the yearly values; with \
                     few years the Mann-Kendall p-value cannot reach 0.05, so it is reported but \
                     not used to decide the direction.",
        })
    });
    let microscopy_wards: Vec<&str> = result
        .wards
        .iter()
        .filter(|w| {
            params.selection.method == mrpt_table::tpr::MethodChoice::Both
                && w.counts.method_used == Some(mrpt_table::tpr::TestMethod::Microscopy)
        })
        .map(|w| w.ward_name.as_str())
        .collect();
    json!({
        "status": "success",
        "metric_label": result.metric_label,
        "selection": {
            "state": params.selection.state,
            "facility_level": params.selection.level.as_str(),
            "age_group": params.selection.age.as_str(),
            "test_method": params.selection.method.as_str(),
        },
        "wards": result.wards.len(),
        "wards_without_tests": result.wards_without_tests(),
        "wards_microscopy_used": microscopy_wards,
        "unmatched_wards": unmatched_wards(export, links, result),
        "summary": {
            "mean_tpr": round2(mean),
            "median_tpr": round2(median(values.clone())),
            "min_tpr": values.iter().copied().reduce(f64::min),
            "max_tpr": values.iter().copied().reduce(f64::max),
            "state_tpr": result.state.tpr,
            "state_tested": result.state.tested,
            "state_positive": result.state.positive,
            "state_method_used": result.state.method_used.map(|m| m.as_str()),
        },
        "top_wards": top,
        "years": result.years,
        "trend": trend,
        "hotspots": {
            "threshold": if params.metric == Metric::Burden {
                params.thresholds.burden_hotspot
            } else {
                params.thresholds.hotspot
            },
            "emerging": result.hotspots.iter().filter(|h| h.emerging).map(|h| result.wards[h.ward].ward_name.clone()).collect::<Vec<_>>(),
            "resolving": result.hotspots.iter().filter(|h| !h.emerging).map(|h| result.wards[h.ward].ward_name.clone()).collect::<Vec<_>>(),
        },
        "reprioritise": reprioritisation.map(|r| json!({
            "rule": r.rule,
            "wards": r.wards.iter().map(|p| result.wards[p.ward].ward_name.clone()).collect::<Vec<_>>(),
            "ranked": r.wards.iter().map(|p| json!({
                "priority": p.priority,
                "ward": result.wards[p.ward].ward_name,
                "lga": result.wards[p.ward].lga,
                "latest": p.latest,
                "slope": p.slope,
                "direction": p.direction.as_str(),
                "rank_latest": p.rank_latest,
                "rank_slope": p.rank_slope,
                "score": p.score,
                "tested_latest": p.tested_latest,
            })).collect::<Vec<_>>(),
            "excluded_low_tests": r.excluded_low_tests.iter().map(|i| result.wards[*i].ward_name.clone()).collect::<Vec<_>>(),
        })),
        "burden": result.has_burden,
        "joined": false,
        "warnings": warnings_json(export, result),
    })
}

fn warnings_json(export: &FacilityExport, result: &TprResult) -> Value {
    let w = &export.warnings;
    json!({
        "rows_without_ward": w.rows_without_ward,
        "rows_without_year": w.rows_without_year,
        "non_numeric_cells": w.non_numeric_cells,
        "negative_cells": w.negative_cells,
        "summed_duplicate_columns": w.summed_duplicate_columns,
        "rows_positives_exceed_tested": w.rows_positives_exceed_tested,
        "positives_exceed_tested": result.positives_exceed_tested,
        "ignored_all_ages_columns": w.ignored_all_ages_columns,
    })
}

/// `tpr_selection.json` (tpr.md §8.1).
fn selection_json(
    export: &FacilityExport,
    result: &TprResult,
    links: &[WardLink],
    params: &TprParams,
    summary: &Value,
) -> Value {
    json!({
        "header_row_index": export.mapping.header_row_index,
        "mapping": export.mapping.fields,
        "mapping_override": params.mapping,
        "ambiguous_columns": export.mapping.ambiguous,
        "unmapped_columns": export.mapping.unmapped,
        "levels_from_names": export.mapping.levels_from_names,
        "prefix": export.prefix,
        "selection": summary["selection"],
        "metric_label": result.metric_label,
        "years": result.years,
        "thresholds": params.thresholds,
        "reprioritise": {"n": params.reprioritise_n, "min_tested": params.min_tested},
        "warnings": warnings_json(export, result),
        "unmatched_wards": unmatched_wards(export, links, result),
    })
}

/// What joining the ward TPR into a ward table did (tpr.md §8.2).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct JoinReport {
    /// The ward-table column the TPR was written to, as the caller named it.
    pub column: String,
    /// Ward-table rows that got a value.
    pub filled: usize,
    /// Ward-table names left blank (no shapefile match, no facility, or no tests).
    pub blank: Vec<String>,
    /// Other TPR-like columns left alone (two TPR columns double-weight TPR if both are used).
    pub other_tpr_columns: Vec<String>,
}

/// Adds the ward TPR as `column` to a ward table (`raw_data.csv`): each row takes the TPR of
/// the data ward matched to the shapefile ward that the ward table's own name matching assigns
/// it; otherwise blank, never 0. An existing column of that name is refused unless `replace`.
pub fn join_into_ward_table(
    table: InputFile<'_>,
    shapefile: &[u8],
    result: &TprResult,
    links: &[WardLink],
    column: &str,
    replace: bool,
) -> Result<(Vec<u8>, JoinReport), PipelineError> {
    let mut wards = mrpt_formats::read_ward_table(table.bytes, table.name)?;
    if wards.table.column(column).is_some() && !replace {
        return Err(PipelineError::Unprocessable(format!(
            "the ward table already has a `{column}` column; send replace: true to overwrite it, \
             or name another column"
        )));
    }
    let shapes = mrpt_formats::read_shapefile_zip(shapefile)?;
    // The ward table's own name matching (analysis.md §1.3), through the one matcher.
    let shape_names = shapes.ward_names();
    let hits = mrpt_table::match_ward_names(
        wards.ward_names(),
        &shape_names,
        mrpt_table::NameRule::Shapefile,
    );
    let renamed: Vec<Option<&str>> = hits
        .iter()
        .map(|h| h.as_ref().and_then(|h| shape_names[h.first()].as_deref()))
        .collect();
    let mut by_shape: std::collections::HashMap<&str, Option<f64>> =
        std::collections::HashMap::new();
    for (i, w) in result.wards.iter().enumerate() {
        if let Some(name) = links
            .get(result.export_ward[i])
            .and_then(|l| l.shape_name.as_deref())
        {
            by_shape.insert(name, w.counts.tpr);
        }
    }
    let values: Vec<Option<f64>> = renamed
        .iter()
        .map(|n| n.and_then(|n| by_shape.get(n).copied().flatten()))
        .collect();
    let blank: Vec<String> = wards
        .ward_names()
        .iter()
        .zip(&values)
        .filter(|(_, v)| v.is_none())
        .map(|(n, _)| n.clone().unwrap_or_default())
        .collect();
    let other_tpr_columns: Vec<String> = wards
        .table
        .column_names()
        .iter()
        .filter(|c| {
            let l = c.to_lowercase();
            c.as_str() != column && (l.contains("tpr") || l.contains("positivity"))
        })
        .map(|c| c.to_string())
        .collect();
    let filled = values.iter().flatten().count();
    wards
        .table
        .push(column, mrpt_table::ColumnData::Float(values))
        .map_err(|e| PipelineError::Internal(format!("joining {column}: {e}")))?;
    Ok((
        mrpt_formats::write_csv_verbatim(&wards.table),
        JoinReport {
            column: column.to_string(),
            filled,
            blank,
            other_tpr_columns,
        },
    ))
}

/// What the ward table made from the ward TPR holds (tpr.md §8.2 with a shapefile and no ward
/// table; issue 13 "becomes one").
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WardTableFromTpr {
    /// Shapefile wards, one row each.
    pub wards: usize,
    /// The value columns written (`TPR`, and `Burden` when population gave one).
    pub columns: Vec<String>,
    /// Shapefile wards whose first column is filled.
    pub filled: usize,
    /// Shapefile wards left blank: no data ward matched them, or their ward had no tests.
    pub blank: Vec<String>,
}

/// The ward table of a session that has a ward shapefile and no ward table: one row per
/// shapefile ward (`WardName` as the shapefile spells it, `WardCode` when the shapefile has
/// codes, `LGA` of the data ward matched to it, else the shapefile's LGA name when it has one)
/// and one value column per `columns` entry (`Burden` takes the burden per 1,000, any other
/// name the TPR). The data wards reach the shapefile wards through `links` (the §4.4 match,
/// the same links as the TPR map and `ward_matching.csv`); a shapefile ward without a matched
/// data ward, or whose ward had no tests, is blank, never 0. No covariates are invented.
pub fn ward_table_from_tpr(
    shapefile: &[u8],
    result: &TprResult,
    links: &[WardLink],
    columns: &[String],
) -> Result<(Vec<u8>, WardTableFromTpr), PipelineError> {
    let shapes = mrpt_formats::read_shapefile_zip(shapefile)?;
    let names = shapes.ward_names();
    let codes = shapes.ward_codes();
    let lga_column = ["LGAName", "LGA", "lga_name"]
        .iter()
        .find_map(|c| shapes.attributes.column(c));
    let mut by_shape: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, &w) in result.export_ward.iter().enumerate() {
        if let Some(n) = links.get(w).and_then(|l| l.shape_name.as_deref()) {
            by_shape.insert(n, i);
        }
    }
    let ward_of: Vec<Option<usize>> = names
        .iter()
        .map(|n| n.as_deref().and_then(|n| by_shape.get(n).copied()))
        .collect();
    let lgas: Vec<Option<String>> = ward_of
        .iter()
        .enumerate()
        .map(|(row, w)| match w {
            Some(i) => Some(result.wards[*i].lga.clone()),
            None => lga_column.and_then(|c| c.data.cell_text(row)),
        })
        .collect();
    let mut table = mrpt_table::Table::with_rows(names.len());
    let push = |t: &mut mrpt_table::Table, name: &str, data: mrpt_table::ColumnData| {
        t.push(name, data)
            .map_err(|e| PipelineError::Internal(format!("ward table from TPR: {e}")))
    };
    push(
        &mut table,
        "WardName",
        mrpt_table::ColumnData::Text(names.clone()),
    )?;
    if let Some(codes) = codes {
        push(&mut table, "WardCode", mrpt_table::ColumnData::Text(codes))?;
    }
    push(&mut table, "LGA", mrpt_table::ColumnData::Text(lgas))?;
    for column in columns {
        let values: Vec<Option<f64>> = ward_of
            .iter()
            .map(|w| {
                w.and_then(|i| {
                    let ward = &result.wards[i];
                    if column == "Burden" {
                        ward.burden
                    } else {
                        ward.counts.tpr
                    }
                })
            })
            .collect();
        push(&mut table, column, mrpt_table::ColumnData::Float(values))?;
    }
    let first = columns.first().map(String::as_str).unwrap_or("TPR");
    let first_values = table
        .column(first)
        .and_then(|c| c.data.to_f64())
        .unwrap_or_default();
    let blank: Vec<String> = names
        .iter()
        .zip(&first_values)
        .filter(|(_, v)| v.is_none())
        .map(|(n, _)| n.clone().unwrap_or_default())
        .collect();
    let report = WardTableFromTpr {
        wards: names.len(),
        columns: columns.to_vec(),
        filled: first_values.iter().flatten().count(),
        blank,
    };
    Ok((mrpt_formats::write_csv_verbatim(&table), report))
}

/// How many worsening and how many improving wards the trend chart draws.
pub const TREND_CHART_WARDS: usize = 5;

/// The maps and chart of tpr.md §8.1, drawn on the shapefile's wards: `visualizations/` file
/// name and bytes. The value map always; the slope map and the trend chart with two or more
/// years; the missingness map always. A data ward without a shapefile match is not drawn (it is
/// listed in the answer's `unmatched_wards`); a shapefile ward without data is hatched "no data".
pub fn render_visuals(
    export: &FacilityExport,
    output: &TprOutput,
    shapefile: &[u8],
    area: Option<&str>,
) -> Result<Vec<(String, Vec<u8>)>, PipelineError> {
    use mrpt_table::tpr::{Direction, Metric};
    let shapes = mrpt_formats::read_shapefile_zip(shapefile)?;
    let names = shapes.ward_names();
    let result = &output.result;
    let metric = result.metric;
    let mut by_shape: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, &w) in result.export_ward.iter().enumerate() {
        if let Some(n) = output.links.get(w).and_then(|l| l.shape_name.as_deref()) {
            by_shape.insert(n, i);
        }
    }
    let ward_of: Vec<Option<usize>> = names
        .iter()
        .map(|n| n.as_deref().and_then(|n| by_shape.get(n).copied()))
        .collect();
    let input = mrpt_maps::MapInput {
        area: area.map(str::to_string),
        wards: names
            .iter()
            .enumerate()
            .map(|(row, n)| mrpt_maps::WardInput {
                name: n.clone().unwrap_or_default(),
                geometry: shapes.geometries.get(row).cloned().flatten(),
                ..Default::default()
            })
            .collect(),
    };
    let lga_all: std::collections::HashMap<usize, Option<f64>> = result
        .lga_rates
        .iter()
        .filter(|r| r.year.is_none())
        .map(|r| (r.lga, r.counts.tpr))
        .collect();
    let fmt = |v: Option<f64>| v.map_or("no data".to_string(), |x| format!("{x}"));
    let details: Vec<String> = ward_of
        .iter()
        .map(|w| match w {
            Some(i) => {
                let ward = &result.wards[*i];
                let lga = export.wards[result.export_ward[*i]].lga as usize;
                let mut d = format!(
                    "LGA: {}\nTests: {}\nPositives: {}\nMethod used: {}\nLGA TPR: {}%",
                    ward.lga,
                    ward.counts.tested,
                    ward.counts.positive,
                    ward.counts.method_used.map_or("none", |m| m.as_str()),
                    fmt(lga_all.get(&lga).copied().flatten()),
                );
                if metric == Metric::Burden {
                    d.push_str(&format!("\nTPR: {}%", fmt(ward.counts.tpr)));
                }
                d
            }
            None => "No facility data matched to this ward".to_string(),
        })
        .collect();
    let value_of = |i: usize| match metric {
        Metric::Tpr => result.wards[i].counts.tpr,
        Metric::Burden => result.wards[i].burden,
    };
    let values: Vec<Option<f64>> = ward_of.iter().map(|w| w.and_then(value_of)).collect();
    let map_err = |e: mrpt_maps::Error| PipelineError::Unprocessable(format!("TPR map: {e}"));
    let mut files = vec![(
        "tpr_map.html".to_string(),
        mrpt_maps::render_tpr_map(
            &input,
            metric.short(),
            &result.metric_label,
            &values,
            &details,
        )
        .map_err(map_err)?
        .into_bytes(),
    )];
    if result.years.len() >= 2 {
        let threshold = output.summary["trend"]["direction_threshold"]
            .as_f64()
            .unwrap_or(2.0);
        let slopes: Vec<Option<(f64, Direction)>> = ward_of
            .iter()
            .map(|w| {
                w.and_then(|i| {
                    let t = &result.trends[i];
                    t.slope.map(|s| (s, t.direction))
                })
            })
            .collect();
        if slopes.iter().any(Option::is_some) {
            files.push((
                "tpr_map_slope.html".to_string(),
                mrpt_maps::render_slope_map(
                    &input,
                    &result.metric_label,
                    metric.slope_unit(),
                    threshold,
                    &slopes,
                    &details,
                )
                .map_err(map_err)?
                .into_bytes(),
            ));
        }
        let chart = trend_chart_input(result, area, TREND_CHART_WARDS);
        if !chart.series.is_empty() {
            files.push((
                "tpr_trend_chart.html".to_string(),
                mrpt_maps::render_trend_chart(&chart)
                    .map_err(map_err)?
                    .into_bytes(),
            ));
        }
    }
    let missing: std::collections::HashMap<&str, Option<f64>> = output
        .missingness
        .iter()
        .filter(|r| r.scope == "ward")
        .map(|r| (r.key.as_str(), r.pct_missing_active))
        .collect();
    let mut missing_by_shape: std::collections::HashMap<&str, (Option<f64>, String)> =
        std::collections::HashMap::new();
    for (w, link) in output.links.iter().enumerate() {
        if let (Some(n), Some(ward)) = (link.shape_name.as_deref(), export.wards.get(w)) {
            let lga = &export.lgas[ward.lga as usize];
            let key = format!("{}|{}", lga.key, ward.key);
            if let Some(v) = missing.get(key.as_str()) {
                missing_by_shape
                    .insert(n, (*v, format!("Data ward: {} ({})", ward.name, lga.name)));
            }
        }
    }
    let (mvalues, mdetails): (Vec<Option<f64>>, Vec<String>) = names
        .iter()
        .map(|n| {
            n.as_deref()
                .and_then(|n| missing_by_shape.get(n).cloned())
                .unwrap_or((None, String::new()))
        })
        .unzip();
    if mvalues.iter().any(Option::is_some) {
        files.push((
            "tpr_map_missingness.html".to_string(),
            mrpt_maps::render_missingness_map(
                &input,
                "Share of testing-indicator cells left blank, among the indicators each facility \
                 reports at least once (all facility levels, all years)",
                &mvalues,
                &mdetails,
            )
            .map_err(map_err)?
            .into_bytes(),
        ));
    }
    Ok(files)
}

/// The `n` most worsening (steepest rise) and `n` most improving wards with their yearly values.
pub fn trend_chart_input(
    result: &TprResult,
    area: Option<&str>,
    n: usize,
) -> mrpt_maps::TrendChartInput {
    use mrpt_table::tpr::{Direction, Metric};
    let pick = |direction: Direction| {
        let mut v: Vec<(usize, f64)> = result
            .trends
            .iter()
            .enumerate()
            .filter(|(_, t)| t.direction == direction)
            .filter_map(|(i, t)| t.slope.map(|s| (i, s)))
            .collect();
        v.sort_by(|a, b| match direction {
            Direction::Improving => a.1.total_cmp(&b.1),
            _ => b.1.total_cmp(&a.1),
        });
        v.truncate(n);
        v
    };
    let mut series = Vec::new();
    for direction in [Direction::Worsening, Direction::Improving] {
        for (i, slope) in pick(direction) {
            let w = &result.wards[i];
            let points = result
                .series
                .iter()
                .filter(|s| s.ward == i)
                .filter_map(|s| {
                    let v = match result.metric {
                        Metric::Tpr => s.counts.tpr,
                        Metric::Burden => s.burden,
                    };
                    v.map(|v| (s.year, v))
                })
                .collect();
            series.push(mrpt_maps::TrendSeries {
                name: format!("{} ({})", w.ward_name, w.lga),
                direction,
                slope: Some(slope),
                points,
            });
        }
    }
    mrpt_maps::TrendChartInput {
        area: area.map(str::to_string),
        metric: result.metric.short().to_string(),
        metric_label: result.metric_label.clone(),
        unit: result.metric.slope_unit().to_string(),
        series,
    }
}
