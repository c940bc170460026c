//! Tool execution. Every failure becomes an outcome the answer explains; nothing here panics.

use mrpt_formats as formats;
use mrpt_interpreter::{
    self as interp, AnalysisSummary, DataOverview, ExportInfo, ItnOutcome, MapMethod,
    SessionContext, ToolCall, ToolOutcome, TopWardsResult, Visualization,
};
use mrpt_session::{Artifact, SessionId, Store};
use mrpt_table::{RankedWard, RankingMethod};
use serde_json::{Value, json};

use super::context::{AnalysisTables, data_summary, read_table, ward_column_of};
use crate::ApiError;
use crate::analysis_slots::AnalysisSlots;
use crate::pipeline::{self, ItnParams, UploadDetails};
use crate::routes::analysis::{self, RunAnalysisBody};
use crate::visuals::{MapLink, read_itn};

pub(super) fn execute(
    store: &Store,
    slots: &AnalysisSlots,
    id: &SessionId,
    call: &ToolCall,
    ctx: &SessionContext,
    limits: &mrpt_formats::Limits,
) -> (ToolOutcome, Vec<Value>) {
    let done = if call.name().uses_facility_export() {
        tpr_tool(store, id, call, limits)
    } else {
        run_tool(store, slots, id, call, ctx)
    };
    match done {
        Ok(done) => done,
        Err(err) => {
            if let ApiError::Internal { context } = &err {
                crate::log_line(
                    "ERROR",
                    &format!(
                        "session {}: chat tool {} failed: {context}",
                        id.as_str(),
                        call.name().as_str()
                    ),
                );
            }
            (
                ToolOutcome::Error {
                    message: err.public_message(),
                },
                Vec::new(),
            )
        }
    }
}

fn visual_json(kind: &str, v: &Visualization) -> Value {
    let mut value = json!({"type": kind, "title": v.title, "url": v.url, "path": v.url});
    if let (Some(page), Value::Object(map)) = (v.page, &mut value) {
        map.insert("page".into(), json!(page));
        map.insert("pages".into(), json!(v.pages));
    }
    value
}

pub(super) fn visualizations(items: Vec<(String, Visualization)>) -> (ToolOutcome, Vec<Value>) {
    let json: Vec<Value> = items.iter().map(|(k, v)| visual_json(k, v)).collect();
    (
        ToolOutcome::Visualizations {
            items: items.into_iter().map(|(_, v)| v).collect(),
        },
        json,
    )
}

fn from_map_link(map: &MapLink) -> (String, Visualization) {
    (
        map.kind.to_string(),
        Visualization {
            title: map.title.clone(),
            url: map.url.clone(),
            page: None,
            pages: None,
        },
    )
}

/// A TPR tool: the TPR conversation's own answer (the server's figures), its maps and files.
fn tpr_tool(
    store: &Store,
    id: &SessionId,
    call: &ToolCall,
    limits: &mrpt_formats::Limits,
) -> Result<(ToolOutcome, Vec<Value>), ApiError> {
    let turn = super::tpr::run_tool(store, id, call, limits)?;
    let mut visuals = turn.visualizations;
    visuals.extend(turn.download_links);
    Ok((
        ToolOutcome::Table(mrpt_interpreter::TableAnswer {
            headline: turn.response,
            table: String::new(),
            rows: 0,
            shown: 0,
            csv: None,
            charts: Vec::new(),
            note: None,
        }),
        visuals,
    ))
}

fn run_tool(
    store: &Store,
    slots: &AnalysisSlots,
    id: &SessionId,
    call: &ToolCall,
    ctx: &SessionContext,
) -> Result<(ToolOutcome, Vec<Value>), ApiError> {
    match call {
        ToolCall::RunAnalysis {
            variables,
            exclude,
            force,
        } => run_analysis(store, slots, id, variables, exclude, *force, ctx),
        ToolCall::PlanItn {
            total_nets,
            avg_household_size,
            urban_threshold,
            method,
            strategy,
        } => {
            let params = ItnParams {
                total_nets: i64::try_from(*total_nets)
                    .map_err(|_| ApiError::BadRequest(format!("{total_nets} nets is too many")))?,
                avg_household_size: *avg_household_size,
                urban_threshold: *urban_threshold,
                method: *method,
                strategy: *strategy,
            };
            let result = crate::visuals::plan_and_store_itn(store, id, &params)?;
            let map_url = result.map_path.clone();
            let outcome = ToolOutcome::Itn(ItnOutcome {
                stats: result.stats,
                avg_household_size: Some(result.avg_household_size),
                method: *method,
                map_url: map_url.clone(),
                lga_totals: result
                    .lga_totals
                    .as_array()
                    .map(|rows| {
                        rows.iter()
                            .filter_map(|r| {
                                Some((
                                    r.get("LGA")?.as_str()?.to_string(),
                                    r.get("nets_allocated")?.as_u64()?,
                                    r.get("wards_with_nets")?.as_u64()?,
                                ))
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            });
            let visuals = map_url
                .map(|url| {
                    vec![json!({"type": "itn_map", "title": "ITN distribution map", "url": url, "path": url})]
                })
                .unwrap_or_default();
            Ok((outcome, visuals))
        }
        ToolCall::VulnerabilityMap { method } => {
            let maps = crate::visuals::ensure_vulnerability_maps(store, id)?;
            let wanted = match method {
                MapMethod::Composite => "vulnerability_map_composite",
                MapMethod::Pca => "vulnerability_map_pca",
                MapMethod::Both => "vulnerability_map_comparison",
            };
            let chosen: Vec<(String, Visualization)> = maps
                .iter()
                .filter(|m| m.kind == wanted)
                .map(from_map_link)
                .collect();
            if chosen.is_empty() {
                let what = match method {
                    MapMethod::Pca => "a PCA map (PCA was not possible for this data)",
                    _ => "a vulnerability map (the wards have no boundaries to draw)",
                };
                return Err(ApiError::Unprocessable(format!(
                    "this analysis has no {what}"
                )));
            }
            Ok(visualizations(chosen))
        }
        ToolCall::ItnMap => {
            let Some(results) = read_itn(store, id)? else {
                return Err(ApiError::Conflict(
                    "there is no ITN plan for the current analysis yet".to_string(),
                ));
            };
            let Some(url) = results.map_path else {
                return Err(ApiError::Unprocessable(
                    "the ITN plan has no map (no ward boundaries were uploaded)".to_string(),
                ));
            };
            Ok(visualizations(vec![(
                "itn_map".to_string(),
                Visualization {
                    title: "ITN distribution map".to_string(),
                    url,
                    page: None,
                    pages: None,
                },
            )]))
        }
        ToolCall::BoxPlot { page } => box_plot(store, id, *page),
        ToolCall::VariableMap { variable } => variable_map(store, id, variable),
        ToolCall::TopWards {
            n,
            bottom,
            decile,
            method,
        } => {
            let view = crate::visuals::current_analysis(store, id)?;
            let tables = AnalysisTables::load(&view)?;
            let list = match method {
                RankingMethod::Composite => tables.composite.clone(),
                RankingMethod::Pca => tables.pca.clone().ok_or_else(|| {
                    ApiError::Unprocessable(
                        "this analysis has no PCA ranking (too few wards or variables)".to_string(),
                    )
                })?,
            };
            let total = list.len();
            let count = if *decile {
                total.div_ceil(10)
            } else {
                (*n as usize).min(total)
            };
            let wards: Vec<RankedWard> = if *bottom {
                list.iter().rev().take(count).cloned().collect()
            } else {
                list.iter().take(count).cloned().collect()
            };
            Ok((
                ToolOutcome::TopWards(TopWardsResult {
                    wards,
                    total_wards: total as u32,
                }),
                Vec::new(),
            ))
        }
        ToolCall::WardDetail { ward } => {
            let view = crate::visuals::current_analysis(store, id)?;
            let tables = AnalysisTables::load(&view)?;
            let detail = tables
                .detail(&view, ward)
                .ok_or_else(|| ApiError::NotFound(format!("{ward} is not in the ranking")))?;
            Ok((ToolOutcome::WardDetail(detail), Vec::new()))
        }
        ToolCall::CompareWards { a, b } => {
            let view = crate::visuals::current_analysis(store, id)?;
            let tables = AnalysisTables::load(&view)?;
            let missing = |w: &str| ApiError::NotFound(format!("{w} is not in the ranking"));
            let da = tables.detail(&view, a).ok_or_else(|| missing(a))?;
            let db = tables.detail(&view, b).ok_or_else(|| missing(b))?;
            Ok((ToolOutcome::Comparison { a: da, b: db }, Vec::new()))
        }
        ToolCall::DataSummary => {
            let state = store.status(id)?;
            if !state.data_loaded {
                return Err(ApiError::Conflict("no data has been uploaded yet".into()));
            }
            let summary = data_summary(store, id, &UploadDetails::of(&state))?;
            Ok((
                ToolOutcome::DataSummary(DataOverview {
                    summary,
                    wards: ctx.ward_count() as u32,
                    state_name: ctx.state_name.clone(),
                    shapefile_loaded: state.shapefile_loaded,
                }),
                Vec::new(),
            ))
        }
        ToolCall::ExportPackage => {
            let itn = store.status(id)?.itn_complete;
            let result = crate::routes::files::build_package(store, id)?;
            let url = result
                .get("download_url")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let filename = url.rsplit('/').next().unwrap_or_default().to_string();
            let links = vec![json!({"type": "download", "title": filename, "url": url})];
            Ok((
                ToolOutcome::Export(ExportInfo { url, filename, itn }),
                links,
            ))
        }
        ToolCall::ExplainMethod { .. } => Ok((ToolOutcome::NoOutput, Vec::new())),
        // LGA views and data exploration (issue 14).
        _ => crate::explore::run(store, id, call)
            .unwrap_or_else(|| Err(ApiError::internal("a tool without an executor"))),
    }
}

fn run_analysis(
    store: &Store,
    slots: &AnalysisSlots,
    id: &SessionId,
    variables: &Option<Vec<String>>,
    exclude: &[String],
    force: bool,
    ctx: &SessionContext,
) -> Result<(ToolOutcome, Vec<Value>), ApiError> {
    let selected = match variables {
        Some(list) => Some(
            list.iter()
                .filter(|v| !exclude.contains(v))
                .cloned()
                .collect::<Vec<_>>(),
        ),
        None if exclude.is_empty() => None,
        None => {
            // "Without X": the variables of the current analysis (or, before one, every
            // analysable column) minus the excluded ones.
            let base: Vec<String> = if ctx.analysis_complete && !ctx.variables_used.is_empty() {
                ctx.variables_used.clone()
            } else {
                UploadDetails::of(&store.status(id)?).available_variables
            };
            Some(
                base.into_iter()
                    .filter(|v| !exclude.contains(v))
                    .take(interp::MAX_ANALYSIS_VARIABLES)
                    .collect(),
            )
        }
    };
    if selected.as_ref().is_some_and(Vec::is_empty) {
        return Err(ApiError::BadRequest(
            "no variables are left for the analysis after the exclusions".to_string(),
        ));
    }
    let body = RunAnalysisBody {
        selected_variables: selected,
        force,
        ..RunAnalysisBody::default()
    };
    let result = analysis::analyse(store, slots, id, body)?;
    let view = crate::visuals::current_analysis(store, id)?;
    let tables = AnalysisTables::load(&view)?;
    let summary = AnalysisSummary {
        analysis_id: result.analysis_id,
        variables: result.variables_used,
        top_wards: tables.composite.iter().take(10).cloned().collect(),
        ward_count: tables.composite.len() as u32,
        reused: result.reused,
        warnings: result.warnings,
    };
    let visuals: Vec<Value> = result
        .visualizations
        .iter()
        .map(|m| json!({"type": m.kind, "title": m.title, "url": m.url}))
        .collect();
    Ok((ToolOutcome::Analysis(summary), visuals))
}

fn box_plot(
    store: &Store,
    id: &SessionId,
    page: u32,
) -> Result<(ToolOutcome, Vec<Value>), ApiError> {
    let view = crate::visuals::current_analysis(store, id)?;
    let tables = AnalysisTables::load(&view)?;
    let scores = read_table(&view, &Artifact::CompositeScores)?.ok_or_else(|| {
        ApiError::Unprocessable("this analysis has no per-model composite scores".to_string())
    })?;
    let names = ward_column_of(&scores)
        .ok_or_else(|| ApiError::internal("composite scores have no ward column"))?
        .data
        .to_text();
    let models: Vec<Vec<Option<f64>>> = scores
        .columns()
        .iter()
        .filter(|c| c.name.starts_with("model_"))
        .filter_map(|c| c.data.to_f64())
        .collect();
    let wards = names
        .iter()
        .enumerate()
        .filter_map(|(i, name)| {
            let name = name.clone()?;
            let ranked = tables.composite.iter().find(|w| w.ward_name == name);
            Some(mrpt_maps::BoxWard {
                scores: models
                    .iter()
                    .filter_map(|m| m.get(i).copied().flatten())
                    .collect(),
                rank: ranked.map(|w| w.rank as u32),
                category: ranked.map(|w| w.category.label().to_string()),
                name,
            })
        })
        .collect();
    let input = mrpt_maps::BoxPlotInput { area: None, wards };
    let (html, pages) = mrpt_maps::render_box_plot(&input, page as usize)
        .map_err(|e| ApiError::Unprocessable(format!("the box plot could not be drawn: {e}")))?;
    let file = format!("box_plot_{}_p{page}.html", view.analysis_id);
    store.write_file(id, &Artifact::visualization(&file)?, html.as_bytes())?;
    Ok(visualizations(vec![(
        "box_plot".to_string(),
        Visualization {
            title: "Ward score box plots".to_string(),
            url: crate::visuals::viz_url(id, &file),
            page: Some(page),
            pages: Some(pages as u32),
        },
    )]))
}

fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(60)
        .collect()
}

/// One column across wards: from the analysed, name-matched data when there is an analysis,
/// else from the upload (its table matched to the shapefile as the upload check did).
fn variable_map(
    store: &Store,
    id: &SessionId,
    variable: &str,
) -> Result<(ToolOutcome, Vec<Value>), ApiError> {
    let no_values =
        || ApiError::Unprocessable(format!("\"{variable}\" has no numeric values to map"));
    let (input, values, stamp) = match store.current_analysis(id)? {
        Some(view) if view.has(&Artifact::UnifiedGeoparquet) => {
            let bytes = view.read(&Artifact::UnifiedGeoparquet)?;
            let input = pipeline::map_input_from_unified(&bytes)?;
            let (table, _) = formats::read_geoparquet(&bytes)
                .map_err(|e| ApiError::internal(format!("unified dataset: {e}")))?;
            let values = table
                .column(variable)
                .and_then(|c| c.data.to_f64())
                .ok_or_else(no_values)?;
            (input, values, view.analysis_id.clone())
        }
        _ => {
            let state = store.status(id)?;
            if !state.shapefile_loaded {
                return Err(ApiError::Conflict(
                    "maps need the ward boundaries: upload the shapefile zip with the data"
                        .to_string(),
                ));
            }
            let shp = store.read_artifact(id, &Artifact::RawShapefile)?;
            let shapes = formats::read_shapefile_zip(&shp)
                .map_err(|e| ApiError::internal(format!("stored shapefile: {e}")))?;
            let mut wards = crate::routes::upload::uploaded_wards(store, id)?
                .ok_or_else(|| ApiError::Conflict("no data has been uploaded yet".into()))?;
            // The wards as the upload report and the analysis match them.
            pipeline::match_to_shapes(&mut wards, Some(&shapes))?;
            mrpt_table::fix_duplicate_ward_names(&mut wards)
                .map_err(|e| ApiError::internal(format!("matching wards: {e}")))?;
            let shape_names = shapes.ward_names();
            let column = wards
                .table
                .column(variable)
                .and_then(|c| c.data.to_f64())
                .ok_or_else(no_values)?;
            let by_name: std::collections::HashMap<&str, Option<f64>> = wards
                .ward_names()
                .iter()
                .zip(&column)
                .filter_map(|(n, v)| n.as_deref().map(|n| (n, *v)))
                .collect();
            let mut ward_inputs = Vec::with_capacity(shape_names.len());
            let mut values = Vec::with_capacity(shape_names.len());
            for (i, name) in shape_names.iter().enumerate() {
                let name = name.clone().unwrap_or_default();
                values.push(by_name.get(name.as_str()).copied().flatten());
                ward_inputs.push(mrpt_maps::WardInput {
                    lga: None,
                    geometry: shapes.geometries.get(i).cloned().flatten(),
                    name,
                    composite: None,
                    pca: None,
                    itn: None,
                });
            }
            (
                mrpt_maps::MapInput {
                    area: None,
                    wards: ward_inputs,
                },
                values,
                format!("g{}", state.generation),
            )
        }
    };
    let mut input = input;
    crate::explore::attach_lgas(store, id, &mut input);
    let html = mrpt_maps::render_variable_map(&input, variable, &values)
        .map_err(|e| ApiError::Unprocessable(format!("the map could not be drawn: {e}")))?;
    let file = format!("variable_map_{}_{stamp}.html", file_safe(variable));
    store.write_file(id, &Artifact::visualization(&file)?, html.as_bytes())?;
    Ok(visualizations(vec![(
        "variable_map".to_string(),
        Visualization {
            title: format!("Map of {variable}"),
            url: crate::visuals::viz_url(id, &file),
            page: None,
            pages: None,
        },
    )]))
}
