//! `prefork analyze`: the offline analysis command. It runs the same pipeline as the server
//! (mrpt-app's `pipeline`), so the files it writes are the files a session folder gets.

use std::path::{Path, PathBuf};

use anyhow::Context;
use mrpt_app::pipeline::{self, AnalysisParams, InputFile, ItnParams, PipelineError};
use mrpt_session::Artifact;
use mrpt_table::{ItnStrategy, RankingMethod};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Ward data table (.csv or .xlsx) with a WardName column.
    #[arg(long)]
    csv: PathBuf,
    /// Zipped ward shapefile (.shp, .shx, .dbf, optional .prj).
    #[arg(long)]
    shapefile: Option<PathBuf>,
    /// Variables to score, comma-separated (default: automatic selection).
    #[arg(long, value_delimiter = ',')]
    variables: Vec<String>,
    /// Population table (WardName + Population, or a PBI AdminLevel3/N_FamilyMembers file) for ITN.
    #[arg(long)]
    population: Option<PathBuf>,
    /// Nets available: also plan ITN distribution.
    #[arg(long)]
    total_nets: Option<i64>,
    /// ITN allocation strategy (default: rural_first when the data have an urban % column).
    #[arg(long, value_parser = ["rank", "rural_first"])]
    strategy: Option<String>,
    /// Ranking the ITN plan follows.
    #[arg(long, default_value = "composite", value_parser = ["composite", "pca"])]
    method: String,
    /// People per household for ITN planning.
    #[arg(long, default_value_t = 5.0)]
    household_size: f64,
    /// Urban percentage threshold for ITN tiers (default 30 for rank, 75 for rural_first).
    #[arg(long)]
    urban_threshold: Option<f64>,
    /// Output directory (created if missing).
    #[arg(long)]
    out: PathBuf,
}

pub(crate) fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

pub(crate) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let path = dir.join(name);
    std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// The result files written into the output directory as the analysis produces them (by the
/// threads that write side by side).
struct DirSink {
    dir: PathBuf,
    written: std::sync::Mutex<Vec<Artifact>>,
}

impl DirSink {
    fn note(&self, artifact: &Artifact) {
        self.written
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(artifact.clone());
    }

    fn written(&self) -> Vec<Artifact> {
        self.written
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl pipeline::ArtifactSink for DirSink {
    fn write(
        &self,
        artifact: &Artifact,
        body: &mut dyn FnMut(&mut (dyn std::io::Write + Send)) -> Result<(), PipelineError>,
    ) -> Result<(), PipelineError> {
        // Created with the first file, so bad input leaves no directory behind.
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| pipeline::write_error(artifact, format!("{}: {e}", self.dir.display())))?;
        let path = self.dir.join(artifact.file_name());
        let mut file = std::fs::File::create(&path)
            .map_err(|e| pipeline::write_error(artifact, format!("{}: {e}", path.display())))?;
        body(&mut file)?;
        self.note(artifact);
        Ok(())
    }

    fn link(&self, existing: &Artifact, twin: &Artifact) -> Result<(), PipelineError> {
        let from = self.dir.join(existing.file_name());
        let to = self.dir.join(twin.file_name());
        let _ = std::fs::remove_file(&to);
        std::fs::hard_link(&from, &to)
            .map_err(|e| pipeline::write_error(twin, format!("{}: {e}", to.display())))?;
        self.note(twin);
        Ok(())
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let table = read(&args.csv)?;
    let table_name = file_name(&args.csv);
    let shapefile = args.shapefile.as_deref().map(read).transpose()?;
    let params = AnalysisParams {
        variables: (!args.variables.is_empty()).then(|| args.variables.clone()),
        relationships: Default::default(),
    };
    let analysis_started = std::time::Instant::now();
    let sink = DirSink {
        dir: args.out.clone(),
        written: Default::default(),
    };
    // With ITN to plan, what it reads is kept in memory (no read of our own files back).
    let analyse = if args.total_nets.is_some() {
        pipeline::run_analysis_for_itn
    } else {
        pipeline::run_analysis_into
    };
    let report = analyse(
        InputFile {
            name: &table_name,
            bytes: &table,
        },
        shapefile.as_deref().map(|bytes| InputFile {
            name: "shapefile.zip",
            bytes,
        }),
        &params,
        &sink,
    )?;
    // The result files are streamed out while the analysis runs: this is analysis + files.
    let analysis_ms = analysis_started.elapsed().as_secs_f64() * 1e3;
    let write_started = std::time::Instant::now();
    let summary = serde_json::to_vec_pretty(&report.summary)?;
    write(&args.out, "analysis_summary.json", &summary)?;
    eprintln!(
        "Analysed {} wards with {}: {} files in {}",
        report
            .summary
            .get("ward_count")
            .cloned()
            .unwrap_or_default(),
        report.variables_used.join(", "),
        sink.written().len() + 1,
        args.out.display()
    );
    for warning in &report.warnings {
        eprintln!("Warning: {warning}");
    }
    let write_ms = write_started.elapsed().as_secs_f64() * 1e3;
    let mut itn_ms = None;

    if let Some(total_nets) = args.total_nets {
        let method = match args.method.as_str() {
            "pca" => RankingMethod::Pca,
            _ => RankingMethod::Composite,
        };
        let population = args.population.as_deref().map(read).transpose()?;
        let population_name = args
            .population
            .as_deref()
            .map(file_name)
            .unwrap_or_default();
        let itn_started = std::time::Instant::now();
        let strategy = args.strategy.as_deref().map(|s| match s {
            "rank" => ItnStrategy::Rank,
            _ => ItnStrategy::RuralFirst,
        });
        let population = population.as_deref().map(|bytes| InputFile {
            name: &population_name,
            bytes,
        });
        let sources = report
            .itn_basis
            .as_ref()
            .and_then(|basis| basis.sources(method, population))
            .with_context(|| {
                format!(
                    "the analysis produced no {}",
                    pipeline::rankings_artifact(method)
                )
            })?;
        let output = pipeline::plan_itn(
            sources,
            &ItnParams {
                total_nets,
                avg_household_size: Some(args.household_size),
                urban_threshold: args.urban_threshold,
                method,
                strategy,
            },
        )?;
        write(
            &args.out,
            "itn_distribution_results.json",
            &serde_json::to_vec_pretty(&output.results)?,
        )?;
        write(&args.out, "itn_allocation.csv", &output.allocation_csv)?;
        itn_ms = Some(itn_started.elapsed().as_secs_f64() * 1e3);
        let s = &output.plan.stats;
        eprintln!(
            "ITN: {} of {} nets to {} wards, {} people covered ({}%)",
            s.allocated,
            s.total_nets,
            s.prioritized_wards,
            s.covered_population,
            s.coverage_percent
        );
    }
    // One machine-readable line for scripts/bench/analysis_scaling.sh.
    eprintln!(
        "TIMINGS analysis_ms={analysis_ms:.1} write_ms={write_ms:.1} itn_ms={} total_ms={:.1}",
        itn_ms.map_or("-".to_string(), |t| format!("{t:.1}")),
        started.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}
