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
    ward_table_from_tpr as build_ward_table,
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

/// Whether the session's ward table was made from the ward TPR (and so is rebuilt by the next
/// calculation) rather than uploaded by the user.
pub(crate) fn ward_table_from_tpr(state: &mrpt_session::SessionState) -> bool {
    state.data_loaded && state.upload_info["origin"] == "tpr"
}

/// Checks a ward shapefile sent with (or after) the facility export and previews how the
/// export's wards match it (tpr.md §4.4), so the answer lists the unmatched wards at once.
fn shapefile_preview(
    export: &FacilityExport,
    bytes: &[u8],
    file_name: &str,
    limits: &mrpt_formats::Limits,
) -> Result<Value, ApiError> {
    let shapes = mrpt_formats::shapefile::read_shapefile_zip_with(bytes, limits)
        .map_err(PipelineError::from)?;
    let wards = mrpt_formats::tpr::shape_wards(&shapes);
    let links = mrpt_formats::tpr::match_tpr_wards(export, &wards);
    let unmatched: Vec<Value> = links
        .iter()
        .zip(&export.wards)
        .filter(|(l, _)| !l.is_matched())
        .map(|(l, w)| {
            json!({
                "ward": w.name,
                "lga": export.lgas[w.lga as usize].name,
                "match": l.match_kind,
            })
        })
        .collect();
    Ok(json!({
        "file_name": file_name,
        "wards": wards.len(),
        "data_wards": export.wards.len(),
        "matched": links.iter().filter(|l| l.is_matched()).count(),
        "unmatched": unmatched,
    }))
}

/// `POST /api/tpr/upload` (and `/api/data-analysis/upload`): multipart `file` (.csv, .xlsx,
/// .xls), optional `mapping` (JSON text), optional `shapefile` (.zip of the ward shapefile, for
/// a session without a ward table: the ward TPR then becomes its ward table). A `shapefile`
/// alone joins the session's current export. Same session (one is made when the request names
/// none); the previous export and its outputs are replaced (its shapefile is kept when no new
/// one is sent).
pub async fn upload(app: &App, req: Routed) -> Result<Response<ResponseBody>, ApiError> {
    let body = app.upload_body(&req.headers, req.body).await?;
    let headers = &req.headers;
    let form = request_body::multipart(headers, body).await?;
    let file = form.files.get("file").cloned();
    let shapefile = form.files.get("shapefile").cloned();
    if file.is_none() && shapefile.is_none() {
        return Err(ApiError::BadRequest(
            "the upload needs a 'file' field holding the facility export (.csv, .xlsx or .xls), \
             and may add a 'shapefile' field holding the ward shapefile (.zip)"
                .to_string(),
        ));
    }
    let file = match file {
        Some(mut f) => {
            f.file_name = mrpt_session::stored_file_name(&f.file_name);
            let artifact = match extension(&f.file_name).as_str() {
                "csv" => Artifact::TprUploadCsv,
                "xlsx" => Artifact::TprUploadXlsx,
                "xls" => Artifact::TprUploadXls,
                _ => {
                    return Err(ApiError::UnsupportedMediaType(format!(
                        "{:?} is not a facility export: upload the NMEP/DHIS2 export as .csv, \
                         .xlsx or .xls",
                        f.file_name
                    )));
                }
            };
            Some((artifact, f))
        }
        None => None,
    };
    let shapefile = match shapefile {
        Some(mut f) => {
            f.file_name = mrpt_session::stored_file_name(&f.file_name);
            if extension(&f.file_name) != "zip" {
                return Err(ApiError::UnsupportedMediaType(format!(
                    "{:?} is not a .zip: upload the ward shapefile as one zip holding its .shp, \
                     .shx and .dbf",
                    f.file_name
                )));
            }
            Some(f)
        }
        None => None,
    };
    let mapping: Option<BTreeMap<String, Option<String>>> = match form.fields.get("mapping") {
        Some(text) if !text.trim().is_empty() => Some(mapping_text(text)?),
        _ => None,
    };
    let (id, minted) = upload_session(app, headers).await?;
    let store = app.store.clone();
    let response_id = id.clone();
    let limits = app.config.limits;
    let upload_bytes = file.as_ref().map_or(0, |(_, f)| f.bytes.len())
        + shapefile.as_ref().map_or(0, |f| f.bytes.len());
    let body = blocking(move || {
        let previous = store.tpr(&id)?;
        if shapefile.is_some() {
            let state = store.status(&id)?;
            if state.data_loaded && !ward_table_from_tpr(&state) {
                return Err(ApiError::Conflict(
                    "this session already holds ward data, and the TPR is joined to it through \
                     the shapefile uploaded with it. Upload the facility export without a \
                     shapefile, or upload the ward data again with its shapefile"
                        .to_string(),
                ));
            }
        }
        // The export: the new one, or (a shapefile alone) the session's current one with its
        // stored mapping.
        let (artifact, export_name, export_bytes, mapping) = match file {
            Some((artifact, f)) => (
                artifact,
                f.file_name,
                f.bytes.to_vec(),
                mapping.unwrap_or_default(),
            ),
            None => {
                let Some(record) = &previous else {
                    return Err(ApiError::Conflict(
                        "a ward shapefile joins a facility export: upload the NMEP/DHIS2 export \
                         ('file') first, or both together"
                            .to_string(),
                    ));
                };
                let artifact = Artifact::from_file_name(&record.file).ok_or_else(|| {
                    ApiError::internal(format!("unknown TPR upload {}", record.file))
                })?;
                let stored: BTreeMap<String, Option<String>> =
                    serde_json::from_value(record.info["mapping_override"].clone())
                        .unwrap_or_default();
                let name = record.info["file_name"]
                    .as_str()
                    .unwrap_or(record.file.as_str())
                    .to_string();
                let bytes = store.read_artifact(&id, &artifact)?;
                (artifact, name, bytes, mapping.unwrap_or(stored))
            }
        };
        // Read (and so validated) before anything is stored: a bad export or shapefile leaves
        // the previous one in place.
        let export = read_export(
            InputFile {
                name: artifact.file_name().as_str(),
                bytes: &export_bytes,
            },
            &mapping,
        )?;
        let mut answer = upload_answer(&export, &id)?;
        // A new export without a shapefile keeps the one the officer already gave.
        let (shape_name, shape_bytes): (Option<String>, Option<Vec<u8>>) = match shapefile {
            Some(f) => (Some(f.file_name), Some(f.bytes.to_vec())),
            None => match &previous {
                Some(r)
                    if r.extra
                        .iter()
                        .any(|e| *e == Artifact::TprShapefile.file_name()) =>
                {
                    (
                        r.info["shapefile"]["file_name"]
                            .as_str()
                            .map(str::to_string),
                        Some(store.read_artifact(&id, &Artifact::TprShapefile)?),
                    )
                }
                _ => (None, None),
            },
        };
        let preview = match &shape_bytes {
            Some(b) => Some(shapefile_preview(
                &export,
                b,
                shape_name.as_deref().unwrap_or("tpr_shapefile.zip"),
                &limits,
            )?),
            None => None,
        };
        pipeline::check_cancelled()?;
        let extra: Vec<(Artifact, &[u8])> = shape_bytes
            .as_deref()
            .map(|b| (Artifact::TprShapefile, b))
            .into_iter()
            .collect();
        let seq = store.commit_tpr_upload_with(
            &id,
            &artifact,
            &export_bytes,
            &extra,
            json!({
                "file_name": export_name,
                "mapping_override": mapping,
                "rows": export.rows.len(),
                "facilities": export.facilities.len(),
                "states": export.states.iter().map(|s| s.name.clone()).collect::<Vec<_>>(),
                "shapefile": preview,
            }),
        )?;
        if let Value::Object(m) = &mut answer {
            m.insert("upload".into(), json!(seq));
            m.insert("file_name".into(), json!(export_name));
            m.insert("shapefile".into(), preview.unwrap_or(Value::Null));
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

/// A `mapping` sent as text (the upload's form field, the options route's query parameter):
/// a JSON object of field -> exact header (or null).
fn mapping_text(text: &str) -> Result<BTreeMap<String, Option<String>>, ApiError> {
    serde_json::from_str(text).map_err(|e| {
        unprocessable(format!(
            "mapping must be a JSON object of field -> exact header (or null): {e}"
        ))
    })
}

/// The options under `request.mapping` (tpr.md §0.2: an explicit mapping in the request
/// overrides the rules and the stored mapping, for this answer only), with the effective
/// mapping echoed.
fn options_with_mapping(
    store: &Store,
    id: &SessionId,
    request: &TprRequest,
) -> Result<Value, ApiError> {
    let loaded = load(store, id, request.mapping.as_ref())?;
    let mut answer = options_answer(&loaded.export, request)?;
    if let Value::Object(m) = &mut answer {
        m.insert("mapping".into(), json!(loaded.export.mapping.fields));
        m.insert(
            "ambiguous_columns".into(),
            json!(loaded.export.mapping.ambiguous),
        );
        m.insert(
            "unmapped_columns".into(),
            json!(loaded.export.mapping.unmapped),
        );
    }
    Ok(answer)
}

/// `GET /api/tpr/options?state=&facility_level=&age_group=&mapping=<JSON>`.
pub async fn options(app: &App, req: Routed) -> Result<Response<ResponseBody>, ApiError> {
    let q = query_pairs(&req.uri);
    let mapping = match q.get("mapping").map(|m| m.trim()).filter(|m| !m.is_empty()) {
        Some(text) => Some(mapping_text(text)?),
        None => None,
    };
    let request = TprRequest {
        state: q.get("state").cloned(),
        facility_level: q.get("facility_level").cloned(),
        age_group: q.get("age_group").cloned(),
        mapping,
        ..Default::default()
    };
    let id = app.session_of(&req.headers).await?;
    let store = app.store.clone();
    let body = blocking(move || options_with_mapping(&store, &id, &request)).await?;
    Ok(reply::json(StatusCode::OK, &body))
}

/// `POST /api/tpr/options` with the §3.3 body (`state`, `facility_level`, `age_group`,
/// `mapping`): the same answer as the GET, for a mapping too long or awkward for a URL.
pub async fn options_post(app: &App, req: Routed) -> Result<Response<ResponseBody>, ApiError> {
    let body = app.body(&req.headers, req.body).await?;
    let request: TprRequest = if body.iter().all(u8::is_ascii_whitespace) {
        TprRequest::default()
    } else {
        request_body::json(&body)?
    };
    let id = app.session_of(&req.headers).await?;
    let store = app.store.clone();
    let body = blocking(move || options_with_mapping(&store, &id, &request)).await?;
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
    let state = store.status(id)?;
    // The shapefile uploaded with the export is used when the session has no ward table of its
    // own (or one made from an earlier TPR): the ward TPR then becomes the ward table.
    let tpr_shapefile = if !state.data_loaded || ward_table_from_tpr(&state) {
        optional(store, id, &Artifact::TprShapefile)?
    } else {
        None
    };
    let builds_ward_table = tpr_shapefile.is_some();
    let shapefile = match tpr_shapefile {
        Some(b) => Some(b),
        None => optional(store, id, &Artifact::RawShapefile)?,
    };
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
    let mut columns = join_columns(request)?;
    if builds_ward_table && request.join.is_none() && output.result.has_burden {
        // A ward table made from the TPR takes the burden too when population gave one.
        columns.push("Burden".to_string());
    }
    let mut join_report = Value::Null;
    let mut joined = false;
    let mut ward_table_made: Option<crate::tpr::WardTableFromTpr> = None;
    let ward_table = store.read_uploaded_table(id)?;
    let new_ward_table: Option<(Vec<u8>, Value)> = match (&ward_table, shapefile.as_deref()) {
        _ if columns.is_empty() => None,
        (_, Some(zip)) if builds_ward_table => {
            let (bytes, report) = build_ward_table(zip, &output.result, &output.links, &columns)?;
            let value = json!(report);
            ward_table_made = Some(report);
            Some((bytes, value))
        }
        (Some(table), Some(zip)) => {
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
            Some((bytes, json!(reports)))
        }
        _ => None,
    };
    if let (Some((bytes, report)), Some(zip)) = (new_ward_table, shapefile.as_deref()) {
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
        let mut info = serde_json::to_value(&details)
            .map_err(|e| ApiError::internal(format!("upload record: {e}")))?;
        if builds_ward_table && let Value::Object(m) = &mut info {
            m.insert("origin".into(), json!("tpr"));
            m.insert("tpr_upload".into(), json!(loaded.record.seq));
        }
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
        join_report = report;
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
        m.insert(
            "ward_table_from_tpr".into(),
            json!(ward_table_made.is_some()),
        );
        if let Some(made) = &ward_table_made {
            m.insert("analysis_note".into(), json!(analysis_note(made)));
        }
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

/// What the risk analysis can do with a ward table made from the ward TPR (analysis.md §0.1,
/// §3.1: the composite score combines two or more variables; PCA needs three).
fn analysis_note(made: &crate::tpr::WardTableFromTpr) -> String {
    if made.columns.len() >= 2 {
        format!(
            "The ward table now holds {} for every shapefile ward. The risk analysis can \
             combine them (the composite score needs two or more variables; PCA needs three, so \
             it reports that it is not suitable).",
            made.columns.join(" and ")
        )
    } else {
        format!(
            "The ward table now holds {} for every shapefile ward. The risk analysis combines \
             two or more variables, so {} alone cannot be ranked: upload the ward population \
             (it adds Burden per 1,000) or a ward table with other variables (rainfall, \
             housing, ...).",
            made.columns.join(", "),
            made.columns.first().map_or("TPR", String::as_str)
        )
    }
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
