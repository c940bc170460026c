//! Maps and ITN results: built from the current analysis's files on disk and stored under names
//! that carry the analysis id, so a map of an older analysis can never pass for the current one.

use mrpt_session::{AnalysisView, Artifact, SessionId, Store};
use mrpt_table::{ItnStats, ItnStrategy, RankingMethod};
use serde_json::{Value, json};

use crate::ApiError;
use crate::pipeline::{self, InputFile, ItnParams};

/// The URL a session file is served at.
pub fn viz_url(id: &SessionId, file: &str) -> String {
    format!("/serve_viz_file/{}/visualizations/{file}", id.as_str())
}

pub fn current_analysis(store: &Store, id: &SessionId) -> Result<AnalysisView, ApiError> {
    store.current_analysis(id)?.ok_or_else(|| {
        ApiError::Conflict(
            "the risk analysis has not been run for the current data: run it first \
             (POST /run_analysis, or ask the assistant to \"run the malaria risk analysis\")"
                .to_string(),
        )
    })
}

fn write_if_missing(
    store: &Store,
    id: &SessionId,
    file: &str,
    render: impl FnOnce() -> Result<String, ApiError>,
) -> Result<(), ApiError> {
    let artifact = Artifact::visualization(file)?;
    match store.read_artifact(id, &artifact) {
        Ok(_) => Ok(()),
        Err(mrpt_session::Error::ArtifactNotFound(_)) => {
            let html = render()?;
            store.write_file(id, &artifact, html.as_bytes())?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

fn map_error(e: mrpt_maps::Error) -> ApiError {
    ApiError::Unprocessable(format!("the map could not be drawn: {e}"))
}

/// The current analysis's wards for a map, plus the shapefile's wards that no table row matched
/// (drawn as "no data" rather than left as holes).
pub fn map_input(
    store: &Store,
    id: &SessionId,
    view: &AnalysisView,
) -> Result<mrpt_maps::MapInput, ApiError> {
    let mut input = pipeline::map_input_from_unified(&view.read(&Artifact::UnifiedGeoparquet)?)?;
    let shapefile = match store.read_artifact(id, &Artifact::RawShapefile) {
        Ok(bytes) => bytes,
        Err(mrpt_session::Error::ArtifactNotFound(_)) => {
            crate::explore::attach_lgas(store, id, &mut input);
            return Ok(input);
        }
        Err(e) => return Err(e.into()),
    };
    pipeline::add_unmatched_shapes(&mut input, &shapefile)?;
    // LGA outlines and LGA names in the tooltips of every ward map.
    crate::explore::attach_lgas(store, id, &mut input);
    Ok(input)
}

/// A map of the current analysis as answers list it (fields in the order the answers always
/// had: alphabetical).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MapLink {
    /// What the map shows (`vulnerability_map_composite`, `..._pca`, `..._comparison`).
    pub title: String,
    /// `vulnerability_map_composite`, `vulnerability_map_pca` or `vulnerability_map_comparison`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Where the session's owner fetches it.
    pub url: String,
}

type Renderer = fn(&mrpt_maps::MapInput) -> Result<String, mrpt_maps::Error>;

/// The vulnerability maps of an analysis: title, file stem (`<stem>_<analysis id>.html`), how
/// it is drawn.
const VULNERABILITY_MAPS: [(&str, &str, Renderer); 3] = [
    (
        "Vulnerability map (composite)",
        "vulnerability_map_composite",
        |i| mrpt_maps::render_vulnerability_map(i, RankingMethod::Composite),
    ),
    ("Vulnerability map (PCA)", "vulnerability_map_pca", |i| {
        mrpt_maps::render_vulnerability_map(i, RankingMethod::Pca)
    }),
    (
        "Composite and PCA side by side",
        "vulnerability_map_comparison",
        mrpt_maps::render_side_by_side,
    ),
];

/// Draws the vulnerability maps of an analysis being computed into its staging folder; its
/// commit puts them in place with its files (so a new upload meanwhile leaves no map behind).
/// A map that cannot be drawn is left out here; [`ensure_vulnerability_maps`] after the commit
/// draws what is missing and reports why a map cannot be drawn, as it always did.
pub fn stage_vulnerability_maps(
    store: &Store,
    id: &SessionId,
    staging: &mrpt_session::AnalysisStaging,
    shapefile: &[u8],
) -> Result<(), ApiError> {
    let geoparquet = match staging.read(&Artifact::UnifiedGeoparquet) {
        Ok(bytes) => bytes,
        Err(mrpt_session::Error::ArtifactNotFound(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let Ok(mut input) = pipeline::map_input_from_unified(&geoparquet) else {
        return Ok(());
    };
    drop(geoparquet);
    if pipeline::add_unmatched_shapes(&mut input, shapefile).is_err() {
        return Ok(());
    }
    crate::explore::attach_lgas(store, id, &mut input);
    let aid = staging.analysis_id().to_string();
    for (_, stem, render) in VULNERABILITY_MAPS {
        pipeline::check_cancelled()?;
        if let Ok(html) = render(&input) {
            let artifact = Artifact::visualization(&format!("{stem}_{aid}.html"))?;
            staging.write_visualization(&artifact, html.as_bytes())?;
        }
    }
    Ok(())
}

/// The composite, PCA and side-by-side vulnerability maps of the current analysis (drawn once:
/// normally staged and committed with the analysis, drawn here when missing).
pub fn ensure_vulnerability_maps(store: &Store, id: &SessionId) -> Result<Vec<MapLink>, ApiError> {
    let view = current_analysis(store, id)?;
    if !view.has(&Artifact::UnifiedGeoparquet) {
        return Ok(Vec::new());
    }
    let aid = view.analysis_id.clone();
    let input = std::cell::OnceCell::new();
    let load = || map_input(store, id, &view);
    let mut out = Vec::new();
    for (title, stem, render) in VULNERABILITY_MAPS {
        let file = format!("{stem}_{aid}.html");
        let drawn = write_if_missing(store, id, &file, || {
            if input.get().is_none() {
                let _ = input.set(load()?);
            }
            let Some(i) = input.get() else {
                return Err(ApiError::internal("map input missing after load"));
            };
            render(i).map_err(map_error)
        });
        let drawn = match drawn {
            // A new upload cleared `visualizations/` while the map was written.
            Err(_) if !is_current(store, id, &aid) => Err(replaced_meanwhile()),
            other => other,
        };
        match drawn {
            Ok(()) => out.push(MapLink {
                title: title.to_string(),
                kind: stem,
                url: viz_url(id, &file),
            }),
            // PCA may be absent (too few wards); the other maps still stand.
            Err(ApiError::Unprocessable(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Whether `analysis_id` is still the session's current analysis.
fn is_current(store: &Store, id: &SessionId, analysis_id: &str) -> bool {
    matches!(store.current_analysis(id), Ok(Some(v)) if v.analysis_id == analysis_id)
}

fn replaced_meanwhile() -> ApiError {
    ApiError::Conflict(
        "the session's data changed (a new upload) while the maps of its previous analysis were \
         drawn; nothing was kept: run the analysis again"
            .to_string(),
    )
}

/// A stored ITN plan as the ITN route answers it and chat reports it (fields alphabetical, the
/// order the answer always had).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ItnPlanned {
    /// Where the allocation table downloads.
    pub allocation_download: String,
    /// The analysis the plan was made from.
    pub analysis_id: String,
    /// The household size used (the default when none was asked).
    pub avg_household_size: f64,
    /// Wards left out (urban wards above the threshold, for instance).
    pub excluded_wards: Vec<String>,
    /// ITN totals per LGA (rows of LGA, nets, wards, people), `null` when no LGA is known.
    pub lga_totals: Value,
    /// The map of the plan; `None` when no ward boundaries were uploaded.
    pub map_path: Option<String>,
    /// How population rows were matched to the ranked wards.
    pub matching: mrpt_analysis::MatchingReport,
    /// The ranking the plan followed.
    pub method: RankingMethod,
    /// Wards that received nets.
    pub prioritized_wards: usize,
    /// Nets allocated, coverage, wards covered.
    pub stats: ItnStats,
    /// Always `"success"`.
    pub status: &'static str,
    /// The allocation strategy used.
    pub strategy: ItnStrategy,
    /// The urban-percentage threshold used.
    pub urban_threshold: f64,
    /// Warnings of the planning, in words.
    pub warnings: Vec<String>,
}

/// Plan ITN from the stored rankings, draw its map and commit both for the current analysis.
pub fn plan_and_store_itn(
    store: &Store,
    id: &SessionId,
    params: &ItnParams,
) -> Result<ItnPlanned, ApiError> {
    let view = current_analysis(store, id)?;
    // The method's rankings file; an old-system folder may hold only the unified dataset,
    // whose composite/PCA score and rank columns serve as well.
    let rankings_artifact = pipeline::rankings_artifact(params.method);
    let source = if view.has(&rankings_artifact) {
        rankings_artifact
    } else if view.has(&Artifact::UnifiedCsv) {
        Artifact::UnifiedCsv
    } else {
        return Err(ApiError::Conflict(match params.method {
            RankingMethod::Pca => {
                "this analysis has no PCA rankings; plan with method \"composite\"".to_string()
            }
            RankingMethod::Composite => {
                "this analysis has no composite rankings; plan with method \"pca\" or re-run the analysis"
                    .to_string()
            }
        }));
    };
    let rankings = view.read(&source)?;
    let data = if view.has(&Artifact::UnifiedCsv) {
        Some(view.read(&Artifact::UnifiedCsv)?)
    } else {
        None
    };
    let population_name = Artifact::Population.file_name();
    let population = match store.read_artifact(id, &Artifact::Population) {
        Ok(bytes) => Some(bytes),
        Err(mrpt_session::Error::ArtifactNotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let output = pipeline::plan_itn(
        pipeline::ItnSources {
            rankings: (&source, &rankings),
            data: data.as_deref(),
            population: population.as_deref().map(|bytes| InputFile {
                name: &population_name,
                bytes,
            }),
        },
        params,
    )?;
    let aid = view.analysis_id.clone();
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    // Each plan gets its own names (a page never shows one plan's map under another's name);
    // the commit records them, and only the current plan's files are kept: the previous plan's
    // map and table are removed by `commit_itn` (disk stays bounded however often one plans).
    let map_file = format!("itn_map_{aid}_{stamp}.html");
    let csv_file = format!("itn_allocation_{aid}_{stamp}.csv");
    let mut files: Vec<(Artifact, Vec<u8>)> =
        vec![(Artifact::export(&csv_file)?, output.allocation_csv.clone())];
    // ITN totals per LGA (issue 14): in the answer, the results and the export.
    let lga_totals = crate::explore::itn_lga_totals(store, id, &output.plan);
    let mut lga_rows = Value::Null;
    if let Some(t) = &lga_totals {
        let lga_csv = format!("itn_by_lga_{aid}_{stamp}.csv");
        files.push((Artifact::export(&lga_csv)?, mrpt_formats::write_csv(t)));
        lga_rows = json!(t.records());
    }
    let mut map_path = Value::Null;
    if view.has(&Artifact::UnifiedGeoparquet) {
        let mut input = map_input(store, id, &view)?;
        pipeline::attach_itn(&mut input, &output.plan);
        let summary = pipeline::itn_summary(&output.plan, params.method, lga_totals.as_ref());
        let html = mrpt_maps::render_itn_map(&input, &summary).map_err(map_error)?;
        files.push((Artifact::visualization(&map_file)?, html.into_bytes()));
        map_path = json!(viz_url(id, &map_file));
    }
    let mut results = output.results.clone();
    if let Value::Object(map) = &mut results {
        map.insert("map_path".into(), map_path.clone());
        map.insert(
            "allocation_csv".into(),
            json!(format!("exports/{csv_file}")),
        );
        map.insert("parameters".into(), json!(params));
        map.insert("lga_totals".into(), lga_rows.clone());
    }
    let refs: Vec<(Artifact, &[u8])> = files
        .iter()
        .map(|(a, b)| (a.clone(), b.as_slice()))
        .collect();
    store.commit_itn(id, &aid, &results, &refs)?;
    Ok(ItnPlanned {
        allocation_download: format!("/export/download/{}/{csv_file}", id.as_str()),
        analysis_id: aid,
        avg_household_size: output.plan.avg_household_size,
        excluded_wards: output.plan.excluded_wards.clone(),
        lga_totals: lga_rows,
        map_path: map_path.as_str().map(str::to_string),
        matching: output.plan.matching.clone(),
        method: params.method,
        prioritized_wards: output.plan.allocations.len(),
        stats: output.plan.stats.clone(),
        status: "success",
        strategy: output.plan.strategy,
        urban_threshold: output.plan.urban_threshold,
        warnings: output
            .plan
            .warnings
            .iter()
            .map(|w| w.message.clone())
            .collect(),
    })
}

/// What chat reads back from `itn_distribution_results.json`: typed, and lenient (a folder of
/// the old system may lack a field or hold it at the top level instead of under `parameters`;
/// a field of the wrong type reads as absent rather than failing the whole record).
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct StoredItn {
    /// What the user asked for (this system writes it).
    #[serde(deserialize_with = "lenient")]
    pub parameters: Option<StoredItnParameters>,
    /// The plan's totals.
    #[serde(deserialize_with = "lenient")]
    pub stats: Option<StoredItnStats>,
    /// The plan's map, if one was drawn.
    #[serde(deserialize_with = "lenient")]
    pub map_path: Option<String>,
    /// Old-system copies of the parameters at the top level.
    #[serde(flatten)]
    pub top_level: StoredItnParameters,
}

/// The parameters of a stored plan, each optional.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct StoredItnParameters {
    /// Nets available.
    #[serde(deserialize_with = "lenient")]
    pub total_nets: Option<f64>,
    /// People per household.
    #[serde(deserialize_with = "lenient")]
    pub avg_household_size: Option<f64>,
    /// Urban-percentage threshold.
    #[serde(deserialize_with = "lenient")]
    pub urban_threshold: Option<f64>,
    /// The ranking followed.
    #[serde(deserialize_with = "lenient")]
    pub method: Option<RankingMethod>,
}

/// The totals of a stored plan that chat reports.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct StoredItnStats {
    /// Nets allocated.
    #[serde(deserialize_with = "lenient")]
    pub allocated: Option<f64>,
    /// Share of the population covered, in percent.
    #[serde(deserialize_with = "lenient")]
    pub coverage_percent: Option<f64>,
}

/// A field that does not parse as `T` reads as `None`.
pub(crate) fn lenient<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let value = <Value as serde::Deserialize>::deserialize(deserializer)?;
    Ok(serde_json::from_value(value).ok())
}

/// The current ITN plan's stored results; `None` before any plan.
pub fn read_itn(store: &Store, id: &SessionId) -> Result<Option<StoredItn>, ApiError> {
    match store.read_artifact(id, &Artifact::ItnResults) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| ApiError::internal(format!("itn results unreadable: {e}"))),
        Err(mrpt_session::Error::ArtifactNotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
