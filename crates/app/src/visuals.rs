//! Maps and ITN results: built from the current analysis's files on disk and stored under names
//! that carry the analysis id, so a map of an older analysis can never pass for the current one.

use mrpt_session::{AnalysisView, Artifact, SessionId, Store};
use mrpt_table::RankingMethod;
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

type Renderer = fn(&mrpt_maps::MapInput) -> Result<String, mrpt_maps::Error>;

/// The composite, PCA and side-by-side vulnerability maps of the current analysis (drawn once).
pub fn ensure_vulnerability_maps(store: &Store, id: &SessionId) -> Result<Vec<Value>, ApiError> {
    let view = current_analysis(store, id)?;
    if !view.has(&Artifact::UnifiedGeoparquet) {
        return Ok(Vec::new());
    }
    let aid = view.analysis_id.clone();
    let input = std::cell::OnceCell::new();
    let load = || map_input(store, id, &view);
    let mut out = Vec::new();
    let maps: [(&str, &str, Renderer); 3] = [
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
    for (title, stem, render) in maps {
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
        match drawn {
            Ok(()) => out.push(json!({"type": stem, "title": title, "url": viz_url(id, &file)})),
            // PCA may be absent (too few wards); the other maps still stand.
            Err(ApiError::Unprocessable(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Plan ITN from the stored rankings, draw its map and commit both for the current analysis.
pub fn plan_and_store_itn(
    store: &Store,
    id: &SessionId,
    params: &ItnParams,
) -> Result<Value, ApiError> {
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
        let html =
            mrpt_maps::render_itn_map(&input, &pipeline::itn_summary(&output.plan, params.method))
                .map_err(map_error)?;
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
    Ok(json!({
        "status": "success",
        "analysis_id": aid,
        "stats": output.plan.stats,
        "strategy": output.plan.strategy,
        "method": params.method,
        "urban_threshold": output.plan.urban_threshold,
        "avg_household_size": output.plan.avg_household_size,
        "map_path": map_path,
        "allocation_download": format!("/export/download/{}/{csv_file}", id.as_str()),
        "prioritized_wards": output.plan.allocations.len(),
        "excluded_wards": output.plan.excluded_wards,
        "matching": output.plan.matching,
        "warnings": results.get("warnings").cloned().unwrap_or_else(|| json!([])),
        "lga_totals": lga_rows,
    }))
}
