//! The LGA and exploration tools of the chat (issue 14): each answer is a short table in the
//! message, the whole table as a CSV download (written by mrpt-formats' one CSV writer) and a
//! chart or map where it helps. The data is the session's unified table after an analysis, else
//! the upload; each ward's LGA comes from the data, the shapefile, or the session's LGA lookup
//! (`exports/lga_lookup.csv`, see [`LGA_LOOKUP_FILE`]). Everything is derived from disk per call.

use std::collections::HashMap;

use mrpt_analysis::explore::{self, Groups};
use mrpt_analysis::lga::{self, LgaAssignment, LgaLookup};
use mrpt_analysis::stats::{self, CorrelationMethod};
use mrpt_formats as formats;
use mrpt_interpreter::{Download, TableAnswer, ToolCall, ToolOutcome, Visualization};
use mrpt_maps::MapInput;
use mrpt_session::{Artifact, SessionId, Store};
use mrpt_table::explore::{Agg, MissingBy};
use mrpt_table::{Cell, ColumnData, Table, find_ward_column};
use serde_json::{Value, json};

use crate::ApiError;
use crate::pipeline;

/// The session's LGA lookup (`WardName,LGA` or `LGACode,LGAName`), kept with the exports so it
/// applies to every upload of the session.
pub const LGA_LOOKUP_FILE: &str = "lga_lookup.csv";

/// Rows shown in a chat message; the CSV has them all.
const SHOWN_ROWS: usize = 12;

/// The table the tools explore, with its wards' LGAs and (when there are boundaries) a map
/// input in the same row order.
pub(crate) struct Data {
    pub table: Table,
    pub ward_column: String,
    pub lgas: Option<LgaAssignment>,
    pub map: Option<MapInput>,
    pub analysed: bool,
    /// The shapefile's `Urban` attribute joined to the rows, when the table has no urban column.
    pub shape_urban: Option<Vec<Option<String>>>,
    /// Names files so that a newer upload or analysis never shows an older file.
    pub stamp: String,
}

fn not_found_is_none(r: Result<Vec<u8>, mrpt_session::Error>) -> Result<Option<Vec<u8>>, ApiError> {
    match r {
        Ok(b) => Ok(Some(b)),
        Err(mrpt_session::Error::ArtifactNotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The session's LGA lookup, if one was uploaded.
pub(crate) fn lookup(store: &Store, id: &SessionId) -> Result<Option<LgaLookup>, ApiError> {
    let Some(bytes) =
        not_found_is_none(store.read_artifact(id, &Artifact::export(LGA_LOOKUP_FILE)?))?
    else {
        return Ok(None);
    };
    let table = formats::read_table(&bytes, LGA_LOOKUP_FILE)
        .map_err(|e| ApiError::internal(format!("stored LGA lookup: {e}")))?;
    Ok(LgaLookup::from_table(&table).ok())
}

/// Validates and stores an LGA lookup CSV; returns how many wards and codes it names.
pub(crate) fn store_lookup(store: &Store, id: &SessionId, bytes: &[u8]) -> Result<Value, ApiError> {
    let table = formats::read_table(bytes, LGA_LOOKUP_FILE)
        .map_err(|e| ApiError::BadRequest(format!("the LGA lookup could not be read: {e}")))?;
    let lookup = LgaLookup::from_table(&table).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    store.write_file(id, &Artifact::export(LGA_LOOKUP_FILE)?, bytes)?;
    let mut names: Vec<&String> = lookup
        .by_code
        .values()
        .chain(lookup.by_ward.values())
        .collect();
    names.sort();
    names.dedup();
    Ok(json!({
        "status": "success",
        "message": format!("LGA lookup saved: {} LGA(s), {} ward name(s), {} code(s).", names.len(), lookup.by_ward.len(), lookup.by_code.len()),
        "lgas": names,
    }))
}

/// Loads the data the tools explore.
pub(crate) fn load(store: &Store, id: &SessionId) -> Result<Data, ApiError> {
    let state = store.status(id)?;
    let shapes = match not_found_is_none(store.read_artifact(id, &Artifact::RawShapefile))? {
        Some(b) => Some(
            formats::read_shapefile_zip(&b)
                .map_err(|e| ApiError::internal(format!("stored shapefile: {e}")))?,
        ),
        None => None,
    };
    let lookup = lookup(store, id)?;
    let (table, map, analysed, stamp) = match store.current_analysis(id)? {
        Some(view) if view.has(&Artifact::UnifiedGeoparquet) => {
            let bytes = view.read(&Artifact::UnifiedGeoparquet)?;
            let (table, _) = formats::read_geoparquet(&bytes)
                .map_err(|e| ApiError::internal(format!("unified dataset: {e}")))?;
            let map = pipeline::map_input_from_unified(&bytes)?;
            (table, Some(map), true, view.analysis_id.clone())
        }
        _ => {
            let mut wards = crate::routes::upload::uploaded_wards(store, id)?
                .ok_or_else(|| ApiError::Conflict("no data has been uploaded yet".into()))?;
            pipeline::match_to_shapes(&mut wards, shapes.as_ref())?;
            mrpt_table::fix_duplicate_ward_names(&mut wards)
                .map_err(|e| ApiError::internal(format!("matching wards: {e}")))?;
            let map = shapes.as_ref().map(|s| {
                let geom: HashMap<String, Option<mrpt_table::Geometry>> = s
                    .ward_names()
                    .into_iter()
                    .zip(&s.geometries)
                    .filter_map(|(n, g)| n.map(|n| (n, g.clone())))
                    .collect();
                MapInput {
                    area: None,
                    wards: wards
                        .ward_names()
                        .iter()
                        .map(|n| {
                            let name = n.clone().unwrap_or_default();
                            mrpt_maps::WardInput {
                                geometry: geom.get(&name).cloned().flatten(),
                                name,
                                ..mrpt_maps::WardInput::default()
                            }
                        })
                        .collect(),
                }
            });
            (wards.table, map, false, format!("g{}", state.generation))
        }
    };
    let ward_column = find_ward_column(&table)
        .map(|i| table.columns()[i].name.clone())
        .unwrap_or_else(|| "WardName".to_string());
    let from_shapes = shapes
        .as_ref()
        .and_then(|s| lga::join_shapefile_lgas(&table, &s.attributes));
    let lgas = lga::assign_lgas(&table, from_shapes.as_deref(), lookup.as_ref());
    let shape_urban = shapes.as_ref().and_then(|s| {
        let c = s
            .attributes
            .columns()
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case("urban"))?;
        lga::join_shapefile_column(&table, &s.attributes, &c.data.to_text())
    });
    let mut map = map.filter(|m| m.wards.iter().any(|w| w.geometry.is_some()));
    if let (Some(m), Some(a)) = (map.as_mut(), lgas.as_ref())
        && m.wards.len() == a.lgas.len()
    {
        for (w, l) in m.wards.iter_mut().zip(&a.lgas) {
            w.lga = l.clone();
        }
    }
    Ok(Data {
        table,
        ward_column,
        lgas,
        map,
        analysed,
        shape_urban,
        stamp,
    })
}

/// What the chat context needs from the explored data: the distinct LGAs (empty when unknown)
/// and the columns of the analysed table the upload did not have (`composite_score`,
/// `vulnerability_category`...), so that typed arguments naming them validate.
pub(crate) fn context_extras(
    store: &Store,
    id: &SessionId,
    known: &[String],
) -> (Vec<String>, Vec<(String, bool)>) {
    // Built for every message, so the cheap way: the unified CSV (no geometry, no map input)
    // after an analysis, else the upload as stored (no name matching); the tools themselves
    // load everything.
    let light = || -> Result<(Table, bool), ApiError> {
        if let Some(view) = store.current_analysis(id)?
            && view.has(&Artifact::UnifiedCsv)
        {
            let bytes = view.read(&Artifact::UnifiedCsv)?;
            let t = formats::read_table(&bytes, "unified_dataset.csv")
                .map_err(|e| ApiError::internal(format!("unified dataset: {e}")))?;
            return Ok((t, true));
        }
        let wards = crate::routes::upload::uploaded_wards(store, id)?
            .ok_or_else(|| ApiError::Conflict("no data".into()))?;
        Ok((wards.table, false))
    };
    let Ok((table, analysed)) = light() else {
        return (Vec::new(), Vec::new());
    };
    let extra = if analysed {
        table
            .columns()
            .iter()
            .filter(|c| !known.contains(&c.name) && !c.name.starts_with("Unnamed"))
            .map(|c| (c.name.clone(), c.data.is_numeric()))
            .collect()
    } else {
        Vec::new()
    };
    let lookup = lookup(store, id).ok().flatten();
    let from_shapes = if mrpt_table::find_lga_column(&table).is_some() {
        None
    } else {
        not_found_is_none(store.read_artifact(id, &Artifact::RawShapefile))
            .ok()
            .flatten()
            .and_then(|b| formats::read_shapefile_zip(&b).ok())
            .and_then(|s| lga::join_shapefile_lgas(&table, &s.attributes))
    };
    let lgas = lga::assign_lgas(&table, from_shapes.as_deref(), lookup.as_ref())
        .map(|a| a.names())
        .unwrap_or_default();
    (lgas, extra)
}

/// Sets every ward's LGA on a map input (by ward name), so the map draws LGA outlines and its
/// tooltips name the LGA. Wards of the shapefile that no table row matched take the shapefile's
/// own LGA (named by the lookup when it holds codes). Best effort: without LGAs the map is
/// drawn as before.
pub(crate) fn attach_lgas(store: &Store, id: &SessionId, input: &mut MapInput) {
    let Ok(data) = load(store, id) else {
        return;
    };
    let mut by_ward = lga_of_ward(&data);
    if let Ok(Some(bytes)) = not_found_is_none(store.read_artifact(id, &Artifact::RawShapefile))
        && let Ok(shapes) = formats::read_shapefile_zip(&bytes)
        && let Some(lgas) = lga::shapefile_lgas(&shapes.attributes)
    {
        let lookup = lookup(store, id).ok().flatten();
        for (name, l) in shapes.ward_names().into_iter().zip(lgas) {
            if let (Some(name), Some(l)) = (name, l) {
                let named = lookup
                    .as_ref()
                    .and_then(|k| k.by_code.get(l.trim()).cloned())
                    .unwrap_or(l);
                by_ward.entry(name).or_insert(named);
            }
        }
    }
    for w in &mut input.wards {
        if w.lga.is_none() {
            w.lga = by_ward.get(&w.name).cloned();
        }
    }
}

/// ITN plan totals per LGA, when the wards have LGAs.
pub(crate) fn itn_lga_totals(
    store: &Store,
    id: &SessionId,
    plan: &mrpt_analysis::ItnPlan,
) -> Option<Table> {
    let data = load(store, id).ok()?;
    data.lgas.as_ref()?;
    let alloc = plan.allocation_table().ok()?;
    lga::itn_by_lga(&alloc, &lga_of_ward(&data)).ok()
}

/// The LGA of every ward name, for maps and the ITN totals.
fn lga_of_ward(data: &Data) -> HashMap<String, String> {
    let names = data
        .table
        .column(&data.ward_column)
        .map(|c| c.data.to_text())
        .unwrap_or_default();
    match &data.lgas {
        Some(a) => names
            .into_iter()
            .zip(&a.lgas)
            .filter_map(|(w, l)| Some((w?, l.clone()?)))
            .collect(),
        None => HashMap::new(),
    }
}

fn analysis_error(e: mrpt_analysis::Error) -> ApiError {
    ApiError::Unprocessable(e.to_string())
}

fn no_lgas(data: &Data) -> ApiError {
    ApiError::Unprocessable(format!(
        "this data has no LGA for its wards: no LGA, LGAName, LGACode or orgunitlevel3 column in the data ({}) or the shapefile. Upload an LGA lookup (a CSV with WardName,LGA or LGACode,LGAName) to add them.",
        data.table.column_names().join(", ")
    ))
}

fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(40)
        .collect()
}

/// Writes the table as CSV under exports/ and the charts under visualizations/, and builds
/// the answer and its UI links.
struct Answer<'a> {
    store: &'a Store,
    id: &'a SessionId,
    data: &'a Data,
    slug: String,
    charts: Vec<(String, String, String)>,
}

impl<'a> Answer<'a> {
    fn new(store: &'a Store, id: &'a SessionId, data: &'a Data, slug: &str) -> Answer<'a> {
        Answer {
            store,
            id,
            data,
            slug: format!("{}_{}", file_safe(slug), data.stamp),
            charts: Vec::new(),
        }
    }

    /// Adds a chart or map (kind, title, html); a drawing failure leaves the answer without it.
    fn chart(&mut self, kind: &str, title: &str, html: Result<String, mrpt_maps::Error>) {
        if let Ok(html) = html {
            self.charts
                .push((kind.to_string(), title.to_string(), html));
        }
    }

    fn finish(
        self,
        headline: String,
        table: &Table,
        note: Option<String>,
    ) -> Result<(ToolOutcome, Vec<Value>), ApiError> {
        let csv_name = format!("{}.csv", self.slug);
        self.store.write_file(
            self.id,
            &Artifact::export(&csv_name)?,
            &formats::write_csv(table),
        )?;
        let csv_url = format!("/export/download/{}/{csv_name}", self.id.as_str());
        let mut links = vec![json!({"type": "download", "title": csv_name, "url": csv_url})];
        let mut charts = Vec::new();
        for (k, (kind, title, html)) in self.charts.into_iter().enumerate() {
            let file = format!("{kind}_{}_{k}.html", self.slug);
            self.store
                .write_file(self.id, &Artifact::visualization(&file)?, html.as_bytes())?;
            let url = crate::visuals::viz_url(self.id, &file);
            links.push(json!({"type": kind, "title": title, "url": url, "path": url}));
            charts.push(Visualization {
                title,
                url,
                page: None,
                pages: None,
            });
        }
        let shown = table.n_rows().min(SHOWN_ROWS);
        let _ = self.data;
        Ok((
            ToolOutcome::Table(TableAnswer {
                headline,
                table: markdown(table, shown),
                rows: table.n_rows(),
                shown,
                csv: Some(Download {
                    filename: csv_name,
                    url: csv_url,
                }),
                charts,
                note,
            }),
            links,
        ))
    }
}

fn cell_text(c: &Cell) -> String {
    lga::cell_text(c).replace('|', "/")
}

/// The first `rows` rows as a markdown table.
fn markdown(table: &Table, rows: usize) -> String {
    let names = table.column_names();
    let mut out = format!("| {} |\n", names.join(" | "));
    out.push_str(&format!("|{}\n", "---|".repeat(names.len())));
    for r in 0..rows.min(table.n_rows()) {
        let cells: Vec<String> = table
            .columns()
            .iter()
            .map(|c| cell_text(&c.data.cell(r)))
            .collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out
}

fn num(x: Option<f64>) -> String {
    x.map_or("\u{2014}".to_string(), lga::format_number)
}

fn groups_for(data: &Data, by: &str) -> Result<Groups, ApiError> {
    if by.eq_ignore_ascii_case("lga") {
        let a = data.lgas.as_ref().ok_or_else(|| no_lgas(data))?;
        return Ok(Groups {
            name: "LGA".to_string(),
            keys: a.lgas.clone(),
        });
    }
    Groups::from_column(&data.table, by).map_err(analysis_error)
}

fn values_of(data: &Data, column: &str) -> Result<(String, Vec<Option<f64>>), ApiError> {
    explore::numeric_column(&data.table, column).map_err(analysis_error)
}

fn map_of(data: &Data) -> Option<&MapInput> {
    data.map
        .as_ref()
        .filter(|m| m.wards.len() == data.table.n_rows())
}

/// Runs one LGA or exploration tool; `None` when the call is not one of them.
pub(crate) fn run(
    store: &Store,
    id: &SessionId,
    call: &ToolCall,
) -> Option<Result<(ToolOutcome, Vec<Value>), ApiError>> {
    let handled = matches!(
        call,
        ToolCall::LgaRanking { .. }
            | ToolCall::WardsInLga { .. }
            | ToolCall::LgaItn
            | ToolCall::UrbanExtentMap { .. }
            | ToolCall::Describe { .. }
            | ToolCall::Filter { .. }
            | ToolCall::GroupBy { .. }
            | ToolCall::TopN { .. }
            | ToolCall::Correlate { .. }
            | ToolCall::CorrelationMatrix { .. }
            | ToolCall::Missingness { .. }
            | ToolCall::CompositeMaps { .. }
            | ToolCall::RankingChart { .. }
    );
    if !handled {
        return None;
    }
    Some(load(store, id).and_then(|data| run_on(store, id, call, &data)))
}

fn run_on(
    store: &Store,
    id: &SessionId,
    call: &ToolCall,
    data: &Data,
) -> Result<(ToolOutcome, Vec<Value>), ApiError> {
    let t = &data.table;
    match call {
        ToolCall::LgaRanking { variable } => {
            let a = data.lgas.as_ref().ok_or_else(|| no_lgas(data))?;
            let mut ans = Answer::new(store, id, data, "lga_ranking");
            let (table, value_col, headline) = match variable {
                None if data.analysed => {
                    let table = lga::lga_vulnerability(t, a).map_err(analysis_error)?;
                    let first = lga::cell_text(&explore::cell(&table, "LGA", 0));
                    let score = explore::cell(&table, "mean_composite_score", 0);
                    let headline = format!(
                        "{} LGAs ranked by mean composite score (population-weighted when the data has population). Most vulnerable: {first} (mean score {}).",
                        table.n_rows(),
                        lga::cell_text(&score)
                    );
                    (table, "mean_composite_score".to_string(), headline)
                }
                None => {
                    let table = lga::aggregate_by_lga(t, a, &[]).map_err(analysis_error)?;
                    let headline = format!(
                        "The analysis has not run yet, so there is no risk ranking of the LGAs; here are the {} LGAs with each variable aggregated (rates weighted by tests or population, other variables population-weighted means where population exists). Say \"rank the LGAs by <variable>\" or run the analysis.",
                        table.n_rows()
                    );
                    return ans.finish(headline, &table, None);
                }
                Some(v) => {
                    let agg = lga::aggregate_by_lga(t, a, &[]).map_err(analysis_error)?;
                    let (name, _) = values_of(data, v)?;
                    let ranked = lga::rank_lgas(&agg, &name, true).map_err(analysis_error)?;
                    let table = explore::select(
                        &ranked,
                        &(0..ranked.n_rows()).collect::<Vec<_>>(),
                        &["rank", "LGA", "wards", name.as_str()],
                    );
                    let how = match (lga::aggregation_of(&name), lga::weight_for(t, &name)) {
                        (lga::Aggregation::Sum, _) => "summed over the wards".to_string(),
                        (lga::Aggregation::Rate, Some(w)) => format!("a rate: sum over sum, weighted by {w}"),
                        (lga::Aggregation::Mean, Some(w)) => format!("a mean weighted by {w}"),
                        (_, None) => "the plain mean of the wards: the data has no tests or population column to weight by".to_string(),
                    };
                    let headline = format!(
                        "{} LGAs ranked by {name} ({how}). Highest: {} ({}).",
                        table.n_rows(),
                        lga::cell_text(&explore::cell(&table, "LGA", 0)),
                        lga::cell_text(&explore::cell(&table, &name, 0))
                    );
                    (table, name, headline)
                }
            };
            let lga_values: Vec<(String, Option<f64>)> = (0..table.n_rows())
                .map(|r| {
                    (
                        lga::cell_text(&explore::cell(&table, "LGA", r)),
                        match explore::cell(&table, &value_col, r) {
                            Cell::Float(f) => Some(f),
                            Cell::Int(i) => Some(i as f64),
                            _ => None,
                        },
                    )
                })
                .collect();
            if let Some(m) = map_of(data) {
                ans.chart(
                    "lga_map",
                    &format!("LGA map of {value_col}"),
                    mrpt_maps::render_lga_map(m, &value_col, &lga_values),
                );
            }
            let bars: Vec<(String, f64)> = lga_values
                .iter()
                .filter_map(|(l, v)| v.map(|v| (l.clone(), v)))
                .collect();
            ans.chart(
                "bar_chart",
                &format!("{value_col} by LGA"),
                mrpt_maps::render_bar_chart(
                    &format!("{value_col} by LGA"),
                    &value_col,
                    &bars,
                    None,
                ),
            );
            ans.finish(headline, &table, None)
        }
        ToolCall::WardsInLga { lga: name } => {
            let a = data.lgas.as_ref().ok_or_else(|| no_lgas(data))?;
            let lga_name = a.resolve(name).map_err(analysis_error)?;
            let mut rows = a.rows_of(&lga_name);
            let rank = t.column("composite_rank").and_then(|c| c.data.to_f64());
            if let Some(rank) = &rank {
                rows.sort_by(|&x, &y| {
                    rank[x]
                        .unwrap_or(f64::MAX)
                        .total_cmp(&rank[y].unwrap_or(f64::MAX))
                });
            }
            let mut cols: Vec<&str> = vec![data.ward_column.as_str()];
            if data.analysed {
                cols.extend([
                    "composite_rank",
                    "vulnerability_category",
                    "composite_score",
                ]);
            } else {
                cols.extend(
                    t.columns()
                        .iter()
                        .filter(|c| c.data.is_numeric() && !c.name.starts_with("Unnamed"))
                        .take(4)
                        .map(|c| c.name.as_str()),
                );
            }
            let table = explore::select(t, &rows, &cols);
            let mut headline = format!("{lga_name} LGA has {} ward(s)", rows.len());
            if data.analysed {
                let high = rows
                    .iter()
                    .filter(|&&r| {
                        explore::cell(t, "vulnerability_category", r)
                            == Cell::Text("High Risk".into())
                    })
                    .count();
                headline.push_str(&format!(
                    ", {high} of them High Risk; listed by composite rank."
                ));
            } else {
                headline.push('.');
            }
            Answer::new(store, id, data, &format!("wards_in_{lga_name}"))
                .finish(headline, &table, None)
        }
        ToolCall::LgaItn => {
            if data.lgas.is_none() {
                return Err(no_lgas(data));
            }
            let results = not_found_is_none(store.read_artifact(id, &Artifact::ItnResults))?
                .ok_or_else(|| ApiError::Conflict("there is no ITN plan yet: tell me how many nets you have (for example \"I have 120,000 nets\") and I'll plan it, then total it per LGA".to_string()))?;
            let results: Value = serde_json::from_slice(&results)
                .map_err(|e| ApiError::internal(format!("ITN results: {e}")))?;
            let csv = results
                .get("allocation_csv")
                .and_then(Value::as_str)
                .ok_or_else(|| ApiError::internal("ITN results without an allocation table"))?;
            let bytes = store.read_artifact(id, &Artifact::export(csv)?)?;
            let alloc = formats::read_table(&bytes, csv)
                .map_err(|e| ApiError::internal(format!("ITN allocation table: {e}")))?;
            let table = lga::itn_by_lga(&alloc, &lga_of_ward(data)).map_err(analysis_error)?;
            let total = |c: &str| -> f64 {
                table
                    .column(c)
                    .and_then(|c| c.data.to_f64())
                    .map_or(0.0, |v| v.iter().flatten().sum())
            };
            let headline = format!(
                "The ITN plan per LGA: {} nets to {} ward(s) in {} LGA(s), covering {} people. Most nets: {} ({} nets).",
                lga::format_number(total("nets_allocated")),
                lga::format_number(total("wards_with_nets")),
                table.n_rows(),
                lga::format_number(total("people_covered").round()),
                lga::cell_text(&explore::cell(&table, "LGA", 0)),
                lga::cell_text(&explore::cell(&table, "nets_allocated", 0))
            );
            let mut ans = Answer::new(store, id, data, "itn_by_lga");
            let bars: Vec<(String, f64)> = (0..table.n_rows())
                .filter_map(|r| match explore::cell(&table, "nets_allocated", r) {
                    Cell::Int(n) => {
                        Some((lga::cell_text(&explore::cell(&table, "LGA", r)), n as f64))
                    }
                    _ => None,
                })
                .collect();
            ans.chart(
                "bar_chart",
                "Nets allocated per LGA",
                mrpt_maps::render_bar_chart(
                    "Nets allocated per LGA",
                    "nets allocated",
                    &bars,
                    None,
                ),
            );
            ans.finish(headline, &table, None)
        }
        ToolCall::UrbanExtentMap { threshold } => {
            let threshold = threshold.unwrap_or(50.0);
            let m = map_of(data).ok_or_else(|| {
                ApiError::Conflict(
                    "the urban extent map needs the ward boundaries and the analysis".into(),
                )
            })?;
            let urban = urban_percent(t)
                .or_else(|| data.shape_urban.as_ref().map(|u| yes_no_percent(u.clone())))
                .ok_or_else(|| {
                ApiError::Unprocessable(format!(
                    "the data has no urban share column (urbanPercentage, urban_percentage, UrbanPercent or Urban yes/no); columns: {}",
                    t.column_names().join(", ")
                ))
            })?;
            let html = mrpt_maps::render_urban_extent_map(m, &urban, threshold)
                .map_err(|e| ApiError::Unprocessable(format!("the map could not be drawn: {e}")))?;
            let below = urban.iter().flatten().filter(|u| **u < threshold).count();
            let above = urban.iter().flatten().filter(|u| **u >= threshold).count();
            let file = format!(
                "urban_extent_{}_{}.html",
                lga::format_number(threshold),
                data.stamp
            );
            store.write_file(id, &Artifact::visualization(&file)?, html.as_bytes())?;
            let url = crate::visuals::viz_url(id, &file);
            let title = format!(
                "Urban extent map ({above} wards at or above {}% urban, {below} below)",
                lga::format_number(threshold)
            );
            Ok((
                ToolOutcome::Visualizations {
                    items: vec![Visualization {
                        title: title.clone(),
                        url: url.clone(),
                        page: None,
                        pages: None,
                    }],
                },
                vec![json!({"type": "urban_extent_map", "title": title, "url": url, "path": url})],
            ))
        }
        ToolCall::Describe { column, by } => {
            let groups = by.as_deref().map(|b| groups_for(data, b)).transpose()?;
            let table = explore::describe(t, column, groups.as_ref()).map_err(analysis_error)?;
            let (name, values) = values_of(data, column)?;
            let mut ans = Answer::new(store, id, data, &format!("describe_{name}"));
            let headline = match &groups {
                None => {
                    let d = stats::describe(&values);
                    format!(
                        "{name}: {} ward(s) with a value ({} missing); mean {}, standard deviation {}, median {}, range {} to {}.",
                        d.count,
                        d.missing,
                        num(d.mean),
                        num(d.std),
                        num(d.median),
                        num(d.min),
                        num(d.max)
                    )
                }
                Some(g) => format!("{name} by {}: {} group(s).", g.name, table.n_rows()),
            };
            match &groups {
                None => ans.chart(
                    "histogram",
                    &format!("Histogram of {name}"),
                    mrpt_maps::render_histogram(None, &name, &values, 0),
                ),
                Some(g) => {
                    let parts: Vec<(String, Vec<f64>)> = g
                        .distinct()
                        .into_iter()
                        .map(|k| {
                            let v = g
                                .keys
                                .iter()
                                .zip(&values)
                                .filter(|(key, _)| key.as_deref() == Some(k.as_str()))
                                .filter_map(|(_, v)| *v)
                                .collect();
                            (k, v)
                        })
                        .collect();
                    ans.chart(
                        "box_plot",
                        &format!("{name} by {}", g.name),
                        mrpt_maps::render_box_by_category(None, &name, &g.name, &parts),
                    );
                }
            }
            ans.finish(headline, &table, None)
        }
        ToolCall::Filter { column, op, value } => {
            let rows = explore::filter(t, column, *op, value).map_err(analysis_error)?;
            let name = explore::find_column(t, column)
                .map_err(analysis_error)?
                .to_string();
            let mut cols = vec![data.ward_column.clone()];
            if data.lgas.is_some() {
                cols.push("LGA".to_string());
            }
            cols.push(name.clone());
            if data.analysed {
                cols.extend([
                    "composite_rank".to_string(),
                    "vulnerability_category".to_string(),
                ]);
            }
            let with_lga = match &data.lgas {
                Some(a) => lga::with_lga_column(t, a).map_err(analysis_error)?,
                None => t.clone(),
            };
            let refs: Vec<&str> = cols.iter().map(String::as_str).collect();
            let table = explore::select(&with_lga, &rows, &refs);
            let headline = format!(
                "{} of {} wards have {name} {} {value}.",
                rows.len(),
                t.n_rows(),
                op.symbol()
            );
            let mut ans = Answer::new(store, id, data, &format!("filter_{name}"));
            if let (Some(m), Ok((_, values))) = (map_of(data), values_of(data, &name)) {
                let picked: Vec<Option<f64>> = (0..values.len())
                    .map(|r| if rows.contains(&r) { values[r] } else { None })
                    .collect();
                ans.chart(
                    "variable_map",
                    &format!("Wards with {name} {} {value}", op.symbol()),
                    mrpt_maps::render_variable_map(m, &name, &picked),
                );
            }
            ans.finish(headline, &table, None)
        }
        ToolCall::GroupBy { by, agg, column } => {
            let g = groups_for(data, by)?;
            let columns: Vec<String> = match column {
                Some(c) => vec![values_of(data, c)?.0],
                None => explore::numeric_columns(t)
                    .into_iter()
                    .filter(|c| !c.starts_with("Unnamed") && c != "X")
                    .collect(),
            };
            let table = explore::group_by(t, &g, *agg, &columns).map_err(analysis_error)?;
            let mut headline = format!(
                "{} of {} per {} ({} groups).",
                agg.label(),
                column.as_deref().unwrap_or("every numeric column"),
                g.name,
                table.n_rows()
            );
            if *agg == Agg::Mean && g.name == "LGA" {
                headline.push_str(" These are plain means of the wards; \"rank the LGAs by <variable>\" gives rates as sum/sum and population-weighted means.");
            }
            let mut ans = Answer::new(
                store,
                id,
                data,
                &format!("group_{}_{}", g.name, agg.label()),
            );
            if let Some(c) = column {
                let col = format!("{}_{}", agg.label(), values_of(data, c)?.0);
                let bars: Vec<(String, f64)> = (0..table.n_rows())
                    .filter_map(|r| match explore::cell(&table, &col, r) {
                        Cell::Float(f) => {
                            Some((lga::cell_text(&explore::cell(&table, &g.name, r)), f))
                        }
                        _ => None,
                    })
                    .collect();
                ans.chart(
                    "bar_chart",
                    &format!("{col} by {}", g.name),
                    mrpt_maps::render_bar_chart(&format!("{col} by {}", g.name), &col, &bars, None),
                );
            }
            ans.finish(headline, &table, None)
        }
        ToolCall::TopN {
            column,
            n,
            lowest,
            lga: within,
        } => {
            let (name, values) = values_of(data, column)?;
            let rows_in = match within {
                Some(l) => {
                    let a = data.lgas.as_ref().ok_or_else(|| no_lgas(data))?;
                    Some(a.rows_of(&a.resolve(l).map_err(analysis_error)?))
                }
                None => None,
            };
            let rows = explore::top_n(t, &name, *n as usize, *lowest, rows_in.as_deref())
                .map_err(analysis_error)?;
            let with_lga = match &data.lgas {
                Some(a) => lga::with_lga_column(t, a).map_err(analysis_error)?,
                None => t.clone(),
            };
            let mut cols = vec![data.ward_column.clone()];
            if data.lgas.is_some() {
                cols.push("LGA".to_string());
            }
            cols.push(name.clone());
            if data.analysed {
                cols.extend([
                    "composite_rank".to_string(),
                    "vulnerability_category".to_string(),
                ]);
            }
            let refs: Vec<&str> = cols.iter().map(String::as_str).collect();
            let table = explore::select(&with_lga, &rows, &refs);
            let which = if *lowest { "lowest" } else { "highest" };
            let scope = within
                .as_ref()
                .map_or(String::new(), |l| format!(" in {l}"));
            let headline = match rows.first() {
                Some(&r) => format!(
                    "The {} ward(s){scope} with the {which} {name}: first is {} ({}).",
                    rows.len(),
                    lga::cell_text(&explore::cell(t, &data.ward_column, r)),
                    num(values[r])
                ),
                None => format!("No ward{scope} has a value of {name}."),
            };
            let mut ans = Answer::new(store, id, data, &format!("top_{name}"));
            let bars: Vec<(String, f64)> = rows
                .iter()
                .filter_map(|&r| {
                    values[r].map(|v| (lga::cell_text(&explore::cell(t, &data.ward_column, r)), v))
                })
                .collect();
            let cats: Option<Vec<Option<String>>> = t
                .column("vulnerability_category")
                .map(|c| rows.iter().map(|&r| c.data.cell_text(r)).collect());
            ans.chart(
                "bar_chart",
                &format!("Top {} wards by {name}", rows.len()),
                mrpt_maps::render_bar_chart(
                    &format!("Wards{scope} with the {which} {name}"),
                    &name,
                    &bars,
                    cats.as_deref(),
                ),
            );
            ans.finish(headline, &table, None)
        }
        ToolCall::Correlate { a, b, method } => {
            let (an, bn, c) = explore::correlate(t, a, b, *method).map_err(analysis_error)?;
            let strength = match c.r.abs() {
                x if x >= 0.7 => "strong",
                x if x >= 0.4 => "moderate",
                x if x >= 0.2 => "weak",
                _ => "very weak or no",
            };
            let direction = if c.r >= 0.0 { "positive" } else { "negative" };
            let significance = if c.p < 0.05 {
                "statistically significant at the 5% level"
            } else {
                "not statistically significant at the 5% level"
            };
            let headline = format!(
                "{} correlation of {an} and {bn}: r = {:.3}, p = {}, n = {} wards. A {strength} {direction} relationship, {significance}. Correlation is not causation.",
                c.method.label(),
                c.r,
                format_p(c.p),
                c.n
            );
            let mut table = Table::with_rows(1);
            let push = |t: &mut Table, n: &str, d: ColumnData| {
                t.push(n, d).map_err(|e| ApiError::internal(e.to_string()))
            };
            push(&mut table, "a", ColumnData::texts([an.clone()]))?;
            push(&mut table, "b", ColumnData::texts([bn.clone()]))?;
            push(&mut table, "method", ColumnData::texts([c.method.label()]))?;
            push(&mut table, "r", ColumnData::floats([c.r]))?;
            push(&mut table, "p", ColumnData::floats([c.p]))?;
            push(&mut table, "n", ColumnData::ints([c.n as i64]))?;
            let (_, av) = values_of(data, &an)?;
            let (_, bv) = values_of(data, &bn)?;
            let names = t
                .column(&data.ward_column)
                .map(|c| c.data.to_text())
                .unwrap_or_default();
            let points: Vec<mrpt_maps::Point> = av
                .iter()
                .zip(&bv)
                .enumerate()
                .filter_map(|(r, (x, y))| {
                    Some(mrpt_maps::Point {
                        label: names.get(r).cloned().flatten().unwrap_or_default(),
                        x: (*x)?,
                        y: (*y)?,
                    })
                })
                .collect();
            let (xs, ys) = stats::complete_pairs(&av, &bv);
            let mut ans = Answer::new(store, id, data, &format!("correlate_{an}_{bn}"));
            ans.chart(
                "scatter",
                &format!("{bn} against {an}"),
                mrpt_maps::render_scatter(
                    None,
                    &an,
                    &bn,
                    &points,
                    stats::ols(&xs, &ys),
                    &format!(
                        "{} r = {:.3}, p = {}.",
                        c.method.label(),
                        c.r,
                        format_p(c.p)
                    ),
                ),
            );
            ans.finish(headline, &table, None)
        }
        ToolCall::CorrelationMatrix { method } => {
            let columns: Vec<String> = explore::numeric_columns(t)
                .into_iter()
                .filter(|c| {
                    let l = c.to_lowercase();
                    !(c.starts_with("Unnamed")
                        || c == "X"
                        || l.contains("rank")
                        || l.starts_with("model_")
                        || l.starts_with("pc")
                        || l.contains("centroid")
                        || l == "data_completeness")
                })
                .take(20)
                .collect();
            let table =
                explore::correlation_matrix(t, &columns, *method).map_err(analysis_error)?;
            let matrix: Vec<Vec<Option<f64>>> = (0..table.n_rows())
                .map(|r| {
                    columns
                        .iter()
                        .map(|c| match explore::cell(&table, c, r) {
                            Cell::Float(f) => Some(f),
                            _ => None,
                        })
                        .collect()
                })
                .collect();
            let mut strongest: Option<(f64, &str, &str)> = None;
            for (i, a) in columns.iter().enumerate() {
                for (j, b) in columns.iter().enumerate().skip(i + 1) {
                    if let Some(r) = matrix[i][j]
                        && strongest.is_none_or(|(s, _, _)| r.abs() > s.abs())
                    {
                        strongest = Some((r, a, b));
                    }
                }
            }
            let headline = format!(
                "{} correlations of {} numeric columns.{}",
                method_label(*method),
                columns.len(),
                strongest.map_or(String::new(), |(r, a, b)| format!(
                    " Strongest pair: {a} and {b} (r = {r:.3})."
                )),
            );
            let mut ans = Answer::new(store, id, data, "correlation_matrix");
            ans.chart(
                "heatmap",
                "Correlation heatmap",
                mrpt_maps::render_correlation_heatmap(
                    None,
                    method_label(*method),
                    &columns,
                    &matrix,
                ),
            );
            ans.finish(headline, &table, None)
        }
        ToolCall::Missingness { by } => {
            let groups = match by {
                MissingBy::Lga => Some(groups_for(data, "LGA")?),
                _ => None,
            };
            let table = explore::missingness(t, *by, groups.as_ref()).map_err(analysis_error)?;
            let mut ans = Answer::new(store, id, data, &format!("missing_by_{}", by.label()));
            let headline = match by {
                MissingBy::Column => {
                    let gaps: Vec<String> = (0..table.n_rows())
                        .filter_map(|r| match explore::cell(&table, "missing", r) {
                            Cell::Int(m) if m > 0 => Some(format!(
                                "{} ({m})",
                                lga::cell_text(&explore::cell(&table, "column", r))
                            )),
                            _ => None,
                        })
                        .collect();
                    if gaps.is_empty() {
                        format!("No missing values in the {} columns.", table.n_rows())
                    } else {
                        format!(
                            "{} of {} columns have missing values: {}.",
                            gaps.len(),
                            table.n_rows(),
                            gaps.join(", ")
                        )
                    }
                }
                _ => format!(
                    "Missing values by {} ({} groups).",
                    by.label(),
                    table.n_rows()
                ),
            };
            if let Some(m) = map_of(data) {
                ans.chart(
                    "missingness_map",
                    "Missing values per ward (% of columns)",
                    mrpt_maps::render_variable_map(
                        m,
                        "missing values (%)",
                        &explore::row_missing_pct(t),
                    ),
                );
            }
            ans.finish(headline, &table, None)
        }
        ToolCall::CompositeMaps { page } => {
            let m = map_of(data).ok_or_else(|| {
                ApiError::Conflict(
                    "composite score maps need the ward boundaries and the analysis".into(),
                )
            })?;
            let models: Vec<(String, Vec<Option<f64>>)> = t
                .columns()
                .iter()
                .filter(|c| {
                    c.name.starts_with("model_")
                        && c.name[6..].chars().all(|ch| ch.is_ascii_digit())
                })
                .filter_map(|c| c.data.to_f64().map(|v| (c.name.clone(), v)))
                .collect();
            let formulas = model_formulas(store, id);
            let models: Vec<(String, Vec<Option<f64>>)> = models
                .into_iter()
                .map(|(n, v)| match formulas.get(&n) {
                    Some(f) => (format!("{n}: {f}"), v),
                    None => (n, v),
                })
                .collect();
            let (html, pages) = mrpt_maps::render_composite_maps(m, &models, *page as usize)
                .map_err(|e| {
                    ApiError::Unprocessable(format!("the composite maps could not be drawn: {e}"))
                })?;
            let file = format!("composite_maps_{}_p{page}.html", data.stamp);
            store.write_file(id, &Artifact::visualization(&file)?, html.as_bytes())?;
            let url = crate::visuals::viz_url(id, &file);
            let title = format!("Composite score maps ({} models)", models.len());
            Ok((
                ToolOutcome::Visualizations {
                    items: vec![Visualization {
                        title: title.clone(),
                        url: url.clone(),
                        page: Some(*page),
                        pages: Some(pages as u32),
                    }],
                },
                vec![
                    json!({"type": "composite_maps", "title": title, "url": url, "path": url, "page": page, "pages": pages}),
                ],
            ))
        }
        ToolCall::RankingChart { method } => {
            let m = data.map.as_ref().ok_or_else(|| {
                ApiError::Conflict("the ranking chart needs the analysis results".into())
            })?;
            let html = mrpt_maps::render_ranking_chart(m, *method, 0).map_err(|e| {
                ApiError::Unprocessable(format!("the ranking chart could not be drawn: {e}"))
            })?;
            let file = format!("ranking_chart_{}_{}.html", method.as_str(), data.stamp);
            store.write_file(id, &Artifact::visualization(&file)?, html.as_bytes())?;
            let url = crate::visuals::viz_url(id, &file);
            let title = format!("{} ranking chart", method.title());
            Ok((
                ToolOutcome::Visualizations {
                    items: vec![Visualization {
                        title: title.clone(),
                        url: url.clone(),
                        page: None,
                        pages: None,
                    }],
                },
                vec![json!({"type": "ranking_chart", "title": title, "url": url, "path": url})],
            ))
        }
        _ => Err(ApiError::internal("not an exploration tool")),
    }
}

fn method_label(m: CorrelationMethod) -> &'static str {
    m.label()
}

fn format_p(p: f64) -> String {
    if p < 0.001 {
        "< 0.001".to_string()
    } else {
        format!("{p:.3}")
    }
}

/// Each row's urban share in percent: a percentage column, or `Urban` Yes/No as 100/0.
fn urban_percent(t: &Table) -> Option<Vec<Option<f64>>> {
    const PCT: [&str; 6] = [
        "urbanPercentage",
        "urban_percentage",
        "UrbanPercent",
        "urbanPercent",
        "urban_pct",
        "urban_percent",
    ];
    if let Some(v) = PCT
        .iter()
        .find_map(|n| t.column(n).and_then(|c| c.data.to_f64()))
    {
        return Some(v);
    }
    let c = t
        .columns()
        .iter()
        .find(|c| c.name.eq_ignore_ascii_case("urban"))?;
    if let Some(v) = c.data.to_f64() {
        return Some(
            v.into_iter()
                .map(|x| x.map(|x| if x <= 1.0 { x * 100.0 } else { x }))
                .collect(),
        );
    }
    Some(yes_no_percent(c.data.to_text()))
}

/// `Urban` yes/no (or 1/0, urban/rural) as 100/0 percent.
fn yes_no_percent(v: Vec<Option<String>>) -> Vec<Option<f64>> {
    v.into_iter()
        .map(|x| {
            x.and_then(|s| match s.trim().to_lowercase().as_str() {
                "yes" | "true" | "y" | "1" | "urban" => Some(100.0),
                "no" | "false" | "n" | "0" | "rural" => Some(0.0),
                other => other.parse::<f64>().ok(),
            })
        })
        .collect()
}

/// `model_k` → "var1 + var2" from the stored model formulas, when readable.
fn model_formulas(store: &Store, id: &SessionId) -> HashMap<String, String> {
    let Ok(Some(view)) = store.current_analysis(id) else {
        return HashMap::new();
    };
    let Ok(bytes) = view.read(&Artifact::ModelFormulas) else {
        return HashMap::new();
    };
    let Ok(table) = formats::read_table(&bytes, "model_formulas.csv") else {
        return HashMap::new();
    };
    let (Some(model), Some(vars)) = (
        table.column("model").map(|c| c.data.to_text()),
        table.column("variables").map(|c| c.data.to_text()),
    ) else {
        return HashMap::new();
    };
    model
        .into_iter()
        .zip(vars)
        .filter_map(|(m, v)| Some((m?, v?.replace(',', " +"))))
        .collect()
}
