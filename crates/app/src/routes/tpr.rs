//! The TPR routes (tpr.md §8.3): `POST /api/tpr/upload` (alias `/api/data-analysis/upload`),
//! `GET /api/tpr/options`, `POST /api/tpr/calculate`, `POST /api/tpr/reprioritise`. The export
//! and the outputs live in the session through mrpt-session; every request reads them back from
//! disk (no cache), so any worker answers any step.

use std::collections::BTreeMap;

use http::{Response, StatusCode};
use mrpt_analysis::tpr as analysis_tpr;
use mrpt_session::{Artifact, SessionId, Store};
use mrpt_table::tpr::{
    AgeChoice, FacilityExport, LevelChoice, MethodChoice, Metric, Selection, Thresholds,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::pipeline::{self, InputFile, PipelineError};
use crate::routes::Routed;
use crate::routes::upload::{upload_session, with_cookie};
use crate::tpr::{
    TprParams, compute, join_into_ward_table, link_wards, read_export, render_visuals,
};
use crate::{ApiError, App, ResponseBody, blocking, reply, request_body};

/// A TPR request (tpr.md §3.3, §8.3); unknown keys are ignored.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
pub(crate) struct TprRequest {
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub facility_level: Option<String>,
    #[serde(default)]
    pub age_group: Option<String>,
    #[serde(default)]
    pub test_method: Option<String>,
    #[serde(default)]
    pub mapping: Option<BTreeMap<String, Option<String>>>,
    /// `[first, last]` inclusive, or `[year]`.
    #[serde(default)]
    pub years: Option<Vec<u16>>,
    #[serde(default)]
    pub metric: Option<String>,
    /// `true` (default), `false`, or the columns to add (`["TPR", "Burden"]`).
    #[serde(default)]
    pub join: Option<Value>,
    #[serde(default)]
    pub column: Option<String>,
    #[serde(default)]
    pub replace: Option<bool>,
    #[serde(default)]
    pub direction_threshold: Option<f64>,
    #[serde(default)]
    pub hotspot_threshold: Option<f64>,
    /// `/api/tpr/reprioritise`: how many wards (default 10).
    #[serde(default)]
    pub n: Option<usize>,
    #[serde(default)]
    pub min_tested: Option<f64>,
}

fn unprocessable(message: impl Into<String>) -> ApiError {
    ApiError::Unprocessable(message.into())
}

fn choice<T>(
    value: Option<&str>,
    what: &str,
    allowed: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, ApiError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => parse(v)
            .map(Some)
            .ok_or_else(|| unprocessable(format!("{what} {v:?} is not one of {allowed}"))),
    }
}

impl TprRequest {
    fn level(&self) -> Result<Option<LevelChoice>, ApiError> {
        choice(
            self.facility_level.as_deref(),
            "facility_level",
            "all, primary, secondary, tertiary",
            LevelChoice::parse,
        )
    }

    fn age(&self) -> Result<Option<AgeChoice>, ApiError> {
        choice(
            self.age_group.as_deref(),
            "age_group",
            "all_ages, u5, o5, pw",
            AgeChoice::parse,
        )
    }

    fn method(&self) -> Result<Option<MethodChoice>, ApiError> {
        choice(
            self.test_method.as_deref(),
            "test_method",
            "both, rdt, microscopy",
            MethodChoice::parse,
        )
    }

    fn years(&self) -> Result<Option<(u16, u16)>, ApiError> {
        match self.years.as_deref() {
            None | Some([]) => Ok(None),
            Some(&[y]) => Ok(Some((y, y))),
            Some(&[a, b]) if a <= b => Ok(Some((a, b))),
            Some(other) => Err(unprocessable(format!(
                "years must be [first, last] with first <= last (or [year]), got {other:?}"
            ))),
        }
    }

    /// The full parameters, with the defaults of tpr.md §0.8 for what is not given.
    fn params(
        &self,
        export: &FacilityExport,
        mapping: BTreeMap<String, Option<String>>,
    ) -> Result<TprParams, ApiError> {
        let metric = choice(
            self.metric.as_deref(),
            "metric",
            "tpr, burden",
            Metric::parse,
        )?
        .unwrap_or_default();
        let mut thresholds = Thresholds::default();
        for (name, value) in [
            ("direction_threshold", self.direction_threshold),
            ("hotspot_threshold", self.hotspot_threshold),
        ] {
            if let Some(v) = value
                && (!v.is_finite() || v <= 0.0)
            {
                return Err(unprocessable(format!("{name} must be a positive number")));
            }
        }
        match metric {
            Metric::Tpr => {
                thresholds.direction = self.direction_threshold.unwrap_or(thresholds.direction);
                thresholds.hotspot = self.hotspot_threshold.unwrap_or(thresholds.hotspot);
            }
            Metric::Burden => {
                thresholds.burden_direction = self
                    .direction_threshold
                    .unwrap_or(thresholds.burden_direction);
                thresholds.burden_hotspot =
                    self.hotspot_threshold.unwrap_or(thresholds.burden_hotspot);
            }
        }
        let min_tested = self.min_tested.unwrap_or(100.0);
        if !min_tested.is_finite() || min_tested < 0.0 {
            return Err(unprocessable(
                "min_tested must be a number of tests, 0 or more",
            ));
        }
        let n = self.n.unwrap_or(10);
        if n == 0 || n > 10_000 {
            return Err(unprocessable("n must be between 1 and 10000"));
        }
        Ok(TprParams {
            selection: Selection {
                state: resolve_state(export, self.state.as_deref())?,
                level: self.level()?.unwrap_or_default(),
                age: self.age()?.unwrap_or_default(),
                method: self.method()?.unwrap_or_default(),
                years: self.years()?,
            },
            thresholds,
            mapping,
            reprioritise_n: n,
            min_tested,
            metric,
        })
    }
}

/// The state of the selection: the one named (case-insensitive display name), the only one, or
/// a 422 listing them when the export holds several and none was named (tpr.md §3.1 step 1).
pub(crate) fn resolve_state(
    export: &FacilityExport,
    requested: Option<&str>,
) -> Result<Option<String>, ApiError> {
    let names: Vec<&str> = export.states.iter().map(|s| s.name.as_str()).collect();
    match requested.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => names
            .iter()
            .find(|n| n.eq_ignore_ascii_case(s))
            .map(|n| Some((*n).to_string()))
            .ok_or_else(|| {
                unprocessable(format!(
                    "no state named {s:?} in the export; states: {}",
                    names.join(", ")
                ))
            }),
        None if names.len() > 1 => Err(unprocessable(format!(
            "the export holds {} states ({}); choose one with \"state\"",
            names.len(),
            names.join(", ")
        ))),
        None => Ok(names.first().map(|n| (*n).to_string())),
    }
}

/// The session's TPR upload read back from disk: its record, the export and the stored mapping.
pub(crate) struct Loaded {
    pub record: mrpt_session::TprRecord,
    pub export: FacilityExport,
    pub mapping: BTreeMap<String, Option<String>>,
}

/// Reads the session's facility export again (tpr.md: re-derived from disk on every request).
/// `mapping` overrides the stored one field by field.
pub(crate) fn load(
    store: &Store,
    id: &SessionId,
    mapping: Option<&BTreeMap<String, Option<String>>>,
) -> Result<Loaded, ApiError> {
    let Some(record) = store.tpr(id)? else {
        return Err(ApiError::Conflict(
            "this session has no facility export yet: upload the NMEP/DHIS2 testing export \
             first (the 'Facility export (TPR)' entry on the page)"
                .to_string(),
        ));
    };
    let artifact = Artifact::from_file_name(&record.file)
        .ok_or_else(|| ApiError::internal(format!("unknown TPR upload {}", record.file)))?;
    let bytes = store.read_artifact(id, &artifact)?;
    let mut effective: BTreeMap<String, Option<String>> =
        serde_json::from_value(record.info["mapping_override"].clone()).unwrap_or_default();
    if let Some(m) = mapping {
        effective.extend(m.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    let export = read_export(
        InputFile {
            name: &record.file,
            bytes: &bytes,
        },
        &effective,
    )?;
    Ok(Loaded {
        record,
        export,
        mapping: effective,
    })
}

fn optional(
    store: &Store,
    id: &SessionId,
    artifact: &Artifact,
) -> Result<Option<Vec<u8>>, ApiError> {
    match store.read_artifact(id, artifact) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(mrpt_session::Error::ArtifactNotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn extension(name: &str) -> String {
    name.rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default()
}

/// What the upload answers and the options route starts from (tpr.md §8.3).
fn upload_answer(export: &FacilityExport, id: &SessionId) -> Result<Value, ApiError> {
    let summaries = analysis_tpr::summaries(export, None).map_err(PipelineError::from)?;
    let state_names: Vec<&str> = export.states.iter().map(|s| s.name.as_str()).collect();
    let next_step = if state_names.len() > 1 {
        "state"
    } else {
        "facility_level"
    };
    let levels: Vec<&str> = export.levels().iter().map(|l| l.as_str()).collect();
    let w = &export.warnings;
    Ok(json!({
        "status": "success",
        "session_id": id.as_str(),
        "rows": export.rows.len(),
        "facilities": export.facilities.len(),
        "header_row": export.mapping.header_row_index + 1,
        "mapping": export.mapping.fields,
        "ambiguous_columns": export.mapping.ambiguous,
        "unmapped_columns": export.mapping.unmapped,
        "levels_from_names": export.mapping.levels_from_names,
        "states": summaries.states,
        "years": export.years(),
        "levels": levels,
        "facility_levels": summaries.facility_levels,
        "next_step": next_step,
        "warnings": {
            "rows_without_ward": w.rows_without_ward,
            "rows_without_year": w.rows_without_year,
            "non_numeric_cells": w.non_numeric_cells,
            "negative_cells": w.negative_cells,
            "summed_duplicate_columns": w.summed_duplicate_columns,
            "rows_positives_exceed_tested": w.rows_positives_exceed_tested,
            "ignored_all_ages_columns": w.ignored_all_ages_columns,
        },
    }))
}

/// `POST /api/tpr/upload` (and `/api/data-analysis/upload`): multipart `file` (.csv, .xlsx,
/// .xls), optional `mapping` (JSON text). Same session (one is made when the request names
/// none); the previous export and its outputs are replaced.
pub async fn upload(app: &App, req: Routed) -> Result<Response<ResponseBody>, ApiError> {
    let body = app.upload_body(&req.headers, req.body).await?;
    let headers = &req.headers;
    let form = request_body::multipart(headers, body).await?;
    let Some(mut file) = form.files.get("file").cloned() else {
        return Err(ApiError::BadRequest(
            "the upload needs a 'file' field holding the facility export (.csv, .xlsx or .xls)"
                .to_string(),
        ));
    };
    file.file_name = mrpt_session::stored_file_name(&file.file_name);
    let artifact = match extension(&file.file_name).as_str() {
        "csv" => Artifact::TprUploadCsv,
        "xlsx" => Artifact::TprUploadXlsx,
        "xls" => Artifact::TprUploadXls,
        _ => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "{:?} is not a facility export: upload the NMEP/DHIS2 export as .csv, .xlsx or .xls",
                file.file_name
            )));
        }
    };
    let mapping: BTreeMap<String, Option<String>> = match form.fields.get("mapping") {
        Some(text) if !text.trim().is_empty() => serde_json::from_str(text).map_err(|e| {
            unprocessable(format!(
                "mapping must be a JSON object of field -> exact header (or null): {e}"
            ))
        })?,
        _ => BTreeMap::new(),
    };
    let (id, minted) = upload_session(app, headers).await?;
    let store = app.store.clone();
    let response_id = id.clone();
    let upload_bytes = file.bytes.len();
    let body = blocking(move || {
        // Read (and so validated) before anything is stored: a bad export leaves the previous
        // one in place.
        let export = read_export(
            InputFile {
                name: artifact.file_name().as_str(),
                bytes: &file.bytes,
            },
            &mapping,
        )?;
        let mut answer = upload_answer(&export, &id)?;
        pipeline::check_cancelled()?;
        let seq = store.commit_tpr_upload(
            &id,
            &artifact,
            &file.bytes,
            json!({
                "file_name": file.file_name,
                "mapping_override": mapping,
                "rows": export.rows.len(),
                "facilities": export.facilities.len(),
                "states": export.states.iter().map(|s| s.name.clone()).collect::<Vec<_>>(),
            }),
        )?;
        if let Value::Object(m) = &mut answer {
            m.insert("upload".into(), json!(seq));
            m.insert("file_name".into(), json!(file.file_name));
        }
        Ok(answer)
    })
    .await?;
    let mut response = with_cookie(
        reply::json(StatusCode::OK, &body),
        headers,
        &response_id,
        minted,
    );
    crate::add_metric(
        &mut response,
        &format!("tpr_uploads_total=1, upload_bytes={upload_bytes}"),
    );
    Ok(response)
}

fn query_pairs(uri: &http::Uri) -> BTreeMap<String, String> {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let decode = |s: &str| {
                let s = s.replace('+', " ");
                let bytes = s.as_bytes();
                let mut out = Vec::with_capacity(bytes.len());
                let mut i = 0;
                while i < bytes.len() {
                    let hex = (bytes[i] == b'%')
                        .then(|| bytes.get(i + 1..i + 3))
                        .flatten()
                        .and_then(|h| std::str::from_utf8(h).ok())
                        .and_then(|h| u8::from_str_radix(h, 16).ok());
                    match hex {
                        Some(b) => {
                            out.push(b);
                            i += 3;
                        }
                        None => {
                            out.push(bytes[i]);
                            i += 1;
                        }
                    }
                }
                String::from_utf8_lossy(&out).into_owned()
            };
            (!k.is_empty()).then(|| (decode(k), decode(v)))
        })
        .collect()
}

/// The §3.2 summaries for the next unanswered step of state -> level -> age -> method.
pub(crate) fn options_answer(
    export: &FacilityExport,
    request: &TprRequest,
) -> Result<Value, ApiError> {
    let several = export.states.len() > 1;
    let state_given = request
        .state
        .as_deref()
        .is_some_and(|s| !s.trim().is_empty());
    if several && !state_given {
        let s = analysis_tpr::summaries(export, None).map_err(PipelineError::from)?;
        return Ok(json!({"status": "success", "next_step": "state", "options": s.states}));
    }
    let state = resolve_state(export, request.state.as_deref())?;
    let s = analysis_tpr::summaries(export, state.as_deref()).map_err(PipelineError::from)?;
    let level = request.level()?;
    let age = request.age()?;
    let (next, options) = match (level, age) {
        (None, _) => ("facility_level", json!(s.facility_levels)),
        (Some(l), None) => (
            "age_group",
            json!(
                s.age_groups
                    .iter()
                    .filter(|a| a.level == l.as_str())
                    .collect::<Vec<_>>()
            ),
        ),
        (Some(l), Some(a)) => (
            "test_method",
            json!(
                s.methods
                    .iter()
                    .filter(|m| m.level == l.as_str() && m.age_group == a.as_str())
                    .collect::<Vec<_>>()
            ),
        ),
    };
    Ok(json!({
        "status": "success",
        "state": state,
        "next_step": next,
        "options": options,
    }))
}

/// `GET /api/tpr/options?state=&facility_level=&age_group=`.
pub async fn options(app: &App, req: Routed) -> Result<Response<ResponseBody>, ApiError> {
    let q = query_pairs(&req.uri);
    let request = TprRequest {
        state: q.get("state").cloned(),
        facility_level: q.get("facility_level").cloned(),
        age_group: q.get("age_group").cloned(),
        ..Default::default()
    };
    let id = app.session_of(&req.headers).await?;
    let store = app.store.clone();
    let body = blocking(move || {
        let loaded = load(&store, &id, None)?;
        options_answer(&loaded.export, &request)
    })
    .await?;
    Ok(reply::json(StatusCode::OK, &body))
}

/// Which columns a calculation joins into the ward table.
fn join_columns(request: &TprRequest) -> Result<Vec<String>, ApiError> {
    let column = request.column.clone().unwrap_or_else(|| "TPR".to_string());
    match &request.join {
        None | Some(Value::Bool(true)) | Some(Value::Null) => Ok(vec![column]),
        Some(Value::Bool(false)) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v.as_str() {
                Some("TPR") => Ok(column.clone()),
                Some("Burden") => Ok("Burden".to_string()),
                _ => Err(unprocessable(format!(
                    "join lists {v}: only \"TPR\" and \"Burden\" can be joined"
                ))),
            })
            .collect(),
        Some(other) => Err(unprocessable(format!(
            "join must be true, false or a list such as [\"TPR\", \"Burden\"], got {other}"
        ))),
    }
}

/// Computes one selection from the session's export, stores every output (tables, maps) and,
/// when the session has a ward table and a shapefile, joins the ward TPR into `raw_data.csv`
/// through an upload commit (tpr.md §8.2). The answer is the server's own figures.
pub(crate) fn calculate_and_store(
    store: &Store,
    id: &SessionId,
    request: &TprRequest,
    limits: &mrpt_formats::Limits,
) -> Result<Value, ApiError> {
    let loaded = load(store, id, request.mapping.as_ref())?;
    let export = &loaded.export;
    let params = request.params(export, loaded.mapping.clone())?;
    let shapefile = optional(store, id, &Artifact::RawShapefile)?;
    let population = optional(store, id, &Artifact::Population)?;
    let linked = link_wards(
        export,
        shapefile.as_deref(),
        population.as_deref().map(|bytes| InputFile {
            name: "population.csv",
            bytes,
        }),
        params.selection.age,
    )?;
    let output = compute(export, linked.links, &params)?;
    pipeline::check_cancelled()?;
    let maps = match shapefile.as_deref() {
        Some(zip) => render_visuals(export, &output, zip, params.selection.state.as_deref())?,
        None => Vec::new(),
    };
    // The join (a new upload generation) goes first: its commit removes the old generation's
    // maps, and the TPR maps are written after it.
    let columns = join_columns(request)?;
    let mut join_report = Value::Null;
    let mut joined = false;
    let ward_table = store.read_uploaded_table(id)?;
    if let (false, Some(table), Some(zip)) = (columns.is_empty(), &ward_table, shapefile.as_deref())
    {
        let mut name = table.artifact.file_name();
        let mut bytes = table.bytes.clone();
        let mut reports = Vec::new();
        for column in &columns {
            let existing =
                mrpt_formats::read_ward_table(&bytes, &name).map_err(PipelineError::from)?;
            if existing.table.column(column).is_some() && !request.replace.unwrap_or(false) {
                return Err(ApiError::Conflict(format!(
                    "the ward table already has a `{column}` column; send replace: true to \
                     overwrite it, or name another column"
                )));
            }
            let mut result = output.result.clone();
            if column == "Burden" {
                for w in &mut result.wards {
                    w.counts.tpr = w.burden;
                }
            }
            let without = drop_column(&bytes, &name, column)?;
            let (next, report) = join_into_ward_table(
                InputFile {
                    name: &name,
                    bytes: &without,
                },
                zip,
                &result,
                &output.links,
                column,
                true,
            )?;
            bytes = next;
            name = "raw_data.csv".to_string();
            reports.push(report);
        }
        pipeline::check_cancelled()?;
        let details = pipeline::inspect_upload(
            InputFile {
                name: "raw_data.csv",
                bytes: &bytes,
            },
            Some(InputFile {
                name: "raw_shapefile.zip",
                bytes: zip,
            }),
            limits,
        )?;
        let mut upload = store.begin_upload(id)?;
        upload.write(&Artifact::RawCsv, &bytes)?;
        upload.write(&Artifact::RawShapefile, zip)?;
        let info = serde_json::to_value(&details)
            .map_err(|e| ApiError::internal(format!("upload record: {e}")))?;
        store.commit_upload(
            upload,
            mrpt_session::UploadInfo {
                upload_type: details.upload_type().to_string(),
                info,
            },
        )?;
        // The population belongs to the ward data, not to this join: it stays.
        if let Some(p) = &population {
            store.commit_population(
                id,
                p,
                json!({"file_name": "population.csv", "kept_by": "tpr join"}),
            )?;
        }
        joined = true;
        join_report = json!(reports);
    }
    let files: Vec<(Artifact, &[u8])> = output
        .files
        .iter()
        .filter_map(|(name, bytes)| Artifact::from_file_name(name).map(|a| (a, bytes.as_slice())))
        .collect();
    let map_artifacts: Vec<(Artifact, Vec<u8>)> = maps
        .into_iter()
        .map(|(name, bytes)| Artifact::visualization(&name).map(|a| (a, bytes)))
        .collect::<Result<_, _>>()?;
    let map_refs: Vec<(Artifact, &[u8])> = map_artifacts
        .iter()
        .map(|(a, b)| (a.clone(), b.as_slice()))
        .collect();
    let mut answer = output.summary.clone();
    let map_names: Vec<String> = map_artifacts
        .iter()
        .map(|(a, _)| {
            a.file_name()
                .trim_start_matches("visualizations/")
                .to_string()
        })
        .collect();
    if let Value::Object(m) = &mut answer {
        m.insert("joined".into(), json!(joined));
        m.insert("join".into(), join_report);
        if let Some(note) = &linked.population_note {
            m.insert("population_note".into(), json!(note));
        }
        m.insert(
            "map_path".into(),
            json!(
                map_names
                    .iter()
                    .find(|n| *n == "tpr_map.html")
                    .map(|n| crate::visuals::viz_url(id, n))
            ),
        );
        m.insert(
            "maps".into(),
            json!(
                map_names
                    .iter()
                    .map(|n| json!({"file": n, "url": crate::visuals::viz_url(id, n)}))
                    .collect::<Vec<_>>()
            ),
        );
        m.insert(
            "downloads".into(),
            json!(
                output
                    .files
                    .iter()
                    .map(|(n, _)| format!("/export/download/{}/{n}", id.as_str()))
                    .collect::<Vec<_>>()
            ),
        );
        m.insert("metric".into(), json!(params.metric.as_str()));
        m.insert("upload".into(), json!(loaded.record.seq));
    }
    let mut stored = answer.clone();
    if let Value::Object(m) = &mut stored {
        m.insert("request".into(), json!(request));
    }
    store.commit_tpr_outputs(id, loaded.record.seq, &files, &map_refs, stored)?;
    Ok(answer)
}

/// The ward table without `column` (so a `replace` rewrites it instead of adding a second one).
fn drop_column(bytes: &[u8], name: &str, column: &str) -> Result<Vec<u8>, ApiError> {
    let mut wards = mrpt_formats::read_ward_table(bytes, name).map_err(PipelineError::from)?;
    if wards.table.remove(column).is_none() {
        return Ok(bytes.to_vec());
    }
    Ok(mrpt_formats::write_csv(&wards.table))
}

/// `POST /api/tpr/calculate` (tpr.md §3.3 body).
pub async fn calculate(app: &App, req: Routed) -> Result<Response<ResponseBody>, ApiError> {
    let body = app.body(&req.headers, req.body).await?;
    let request: TprRequest = if body.iter().all(u8::is_ascii_whitespace) {
        TprRequest::default()
    } else {
        request_body::json(&body)?
    };
    let id = app.session_of(&req.headers).await?;
    let store = app.store.clone();
    let limits = app.config.limits;
    let answer = blocking(move || calculate_and_store(&store, &id, &request, &limits)).await?;
    let mut response = reply::json(StatusCode::OK, &answer);
    crate::add_metric(&mut response, "tpr_calculations_total=1");
    Ok(response)
}

/// Recomputes the last selection with a new `n` / `min_tested` and answers the §6.6 list.
pub(crate) fn reprioritise_and_store(
    store: &Store,
    id: &SessionId,
    overrides: &TprRequest,
    limits: &mrpt_formats::Limits,
) -> Result<Value, ApiError> {
    let previous: TprRequest = store
        .tpr(id)?
        .and_then(|t| t.outputs)
        .and_then(|o| serde_json::from_value(o.summary["request"].clone()).ok())
        .unwrap_or_default();
    let request = TprRequest {
        n: overrides.n.or(previous.n),
        min_tested: overrides.min_tested.or(previous.min_tested),
        metric: overrides.metric.clone().or(previous.metric.clone()),
        // The ward table already holds the column from the calculation.
        join: Some(Value::Bool(false)),
        ..previous
    };
    let loaded = load(store, id, request.mapping.as_ref())?;
    if loaded.export.years().len() < 2 {
        return Err(ApiError::Conflict(format!(
            "reprioritising needs a trend, and the export covers {} year(s); upload an export \
             with two or more years",
            loaded.export.years().len()
        )));
    }
    drop(loaded);
    let answer = calculate_and_store(store, id, &request, limits)?;
    let Some(r) = answer.get("reprioritise").filter(|r| !r.is_null()) else {
        return Err(ApiError::Conflict(
            "the selected years give no trend (fewer than two years with tests)".to_string(),
        ));
    };
    Ok(json!({
        "status": "success",
        "rule": r["rule"],
        "wards": r["wards"],
        "ranked": r["ranked"],
        "excluded_low_tests": r["excluded_low_tests"],
        "metric_label": answer["metric_label"],
        "file": format!("/export/download/{}/tpr_reprioritise.csv", id.as_str()),
    }))
}

/// `POST /api/tpr/reprioritise` `{"n"?:10,"min_tested"?:100,"metric"?:"tpr"}`.
pub async fn reprioritise(app: &App, req: Routed) -> Result<Response<ResponseBody>, ApiError> {
    let body = app.body(&req.headers, req.body).await?;
    let request: TprRequest = if body.iter().all(u8::is_ascii_whitespace) {
        TprRequest::default()
    } else {
        request_body::json(&body)?
    };
    let id = app.session_of(&req.headers).await?;
    let store = app.store.clone();
    let limits = app.config.limits;
    let answer = blocking(move || reprioritise_and_store(&store, &id, &request, &limits)).await?;
    Ok(reply::json(StatusCode::OK, &answer))
}
