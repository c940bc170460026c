//! `prefork tpr`: ward test positivity rate, trends and the other files of tpr.md §8.1 from a
//! health-facility export, offline. It runs mrpt-app's TPR workflow, so the files equal what a
//! session folder gets. CSV exports are streamed (national exports run to hundreds of MB).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::analyze::{file_name, read};
use anyhow::Context;
use mrpt_app::pipeline::InputFile;
use mrpt_app::tpr::{TprParams, compute, link_wards, render_visuals};
use mrpt_table::tpr::{AgeChoice, LevelChoice, MethodChoice, Metric, Selection, Thresholds};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The facility export (.csv, .xlsx or .xls; NMEP/DHIS2 layout).
    #[arg(long)]
    input: PathBuf,
    /// Zipped ward shapefile: ward names, codes and the `Match` column.
    #[arg(long)]
    shapefile: Option<PathBuf>,
    /// Population table (WardName, Population, optional WardCode; Population_u5,
    /// Population_o5, Population_f15_49 for the age groups): burden per 1,000 per year.
    #[arg(long)]
    population: Option<PathBuf>,
    /// State to compute (display name, e.g. Kano), or `all`. Required when the export holds
    /// several states.
    #[arg(long)]
    state: Option<String>,
    /// Years to use: one year (2023) or an inclusive range (2021-2024); default: all.
    #[arg(long, value_parser = parse_years)]
    years: Option<(u16, u16)>,
    /// Metric of trends, hotspots, reprioritisation and maps; burden needs --population.
    #[arg(long, default_value = "tpr", value_parser = ["tpr", "burden"])]
    metric: String,
    #[arg(long, default_value = "all", value_parser = ["all", "primary", "secondary", "tertiary"])]
    facility_level: String,
    #[arg(long, default_value = "all", value_parser = ["all", "all_ages", "u5", "o5", "pw"])]
    age_group: String,
    #[arg(long, default_value = "both", value_parser = ["both", "rdt", "microscopy"])]
    method: String,
    /// Explicit column mapping as JSON, e.g. '{"ward": "Ward name", "u5_rdt_tested": "..."}'.
    #[arg(long)]
    mapping: Option<String>,
    /// Percentage points per year beyond which a ward is worsening or improving.
    #[arg(long, default_value_t = 2.0)]
    direction_threshold: f64,
    /// TPR (%) at which a ward is a hotspot.
    #[arg(long, default_value_t = 50.0)]
    hotspot_threshold: f64,
    /// Number of wards to reprioritise.
    #[arg(long, default_value_t = 10)]
    reprioritise: usize,
    /// Tests a ward needs in the last year to be ranked for reprioritisation.
    #[arg(long, default_value_t = 100.0)]
    min_tested: f64,
    /// Output directory (created if missing).
    #[arg(long)]
    out: PathBuf,
}

/// `2023` or `2021-2024` (also `2021:2024`, `2021..2024`).
fn parse_years(text: &str) -> Result<(u16, u16), String> {
    let t = text.trim();
    let parts: Vec<&str> = t
        .split(['-', ':'])
        .flat_map(|p| p.split(".."))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let year = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|y| (1900..2100).contains(y))
            .ok_or_else(|| format!("`{p}` is not a year (1900-2099)"))
    };
    match parts.as_slice() {
        [one] => year(one).map(|y| (y, y)),
        [a, b] => {
            let (a, b) = (year(a)?, year(b)?);
            if a <= b {
                Ok((a, b))
            } else {
                Err(format!("the range {a}-{b} runs backwards"))
            }
        }
        _ => Err(format!(
            "`{t}`: expected a year or a range such as 2021-2024"
        )),
    }
}

/// Reads the export: CSV streamed from the file, workbooks whole.
fn read_export(
    path: &Path,
    mapping: &BTreeMap<String, Option<String>>,
) -> anyhow::Result<mrpt_table::tpr::FacilityExport> {
    let name = file_name(path);
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut magic = [0u8; 8];
    let n = file.read(&mut magic).unwrap_or(0);
    let excel = magic[..n].starts_with(b"PK\x03\x04") || magic[..n].starts_with(&[0xD0, 0xCF]);
    let is_csv = name.to_ascii_lowercase().ends_with(".csv");
    if is_csv && !excel {
        let options = mrpt_formats::tpr::ReadOptions {
            mapping: mapping.clone(),
            ..Default::default()
        };
        let reader = std::io::BufReader::with_capacity(
            1 << 20,
            std::io::Cursor::new(magic[..n].to_vec()).chain(file),
        );
        Ok(mrpt_formats::tpr::read_csv_export(reader, &name, &options)?)
    } else {
        let bytes = read(path)?;
        Ok(mrpt_app::tpr::read_export(
            InputFile {
                name: &name,
                bytes: &bytes,
            },
            mapping,
        )?)
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let mapping: BTreeMap<String, Option<String>> = match &args.mapping {
        Some(text) => serde_json::from_str(text)
            .context("--mapping must be a JSON object of field -> header (or null)")?,
        None => BTreeMap::new(),
    };
    let export = read_export(&args.input, &mapping)?;
    // Several states: the officer chooses one (tpr.md §3.1 step 1), or asks for all of them.
    let state = match args.state.as_deref().map(str::trim) {
        Some(s) if s.eq_ignore_ascii_case("all") => None,
        Some(s) => Some(s.to_string()),
        None if export.states.len() > 1 => anyhow::bail!(
            "the export holds {} states ({}); choose one with --state NAME, or --state all",
            export.states.len(),
            export
                .states
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => None,
    };
    let selection = Selection {
        state,
        level: LevelChoice::parse(&args.facility_level).unwrap_or_default(),
        age: AgeChoice::parse(&args.age_group).unwrap_or_default(),
        method: MethodChoice::parse(&args.method).unwrap_or_default(),
        years: args.years,
    };
    let read_ms = started.elapsed().as_secs_f64() * 1e3;
    let shapefile = args.shapefile.as_deref().map(read).transpose()?;
    let population = args.population.as_deref().map(read).transpose()?;
    let population_name = args
        .population
        .as_deref()
        .map(file_name)
        .unwrap_or_default();
    let compute_started = std::time::Instant::now();
    let linked = link_wards(
        &export,
        shapefile.as_deref(),
        population.as_deref().map(|bytes| InputFile {
            name: &population_name,
            bytes,
        }),
        selection.age,
    )?;
    if let Some(note) = &linked.population_note {
        eprintln!("note: {note}");
    }
    let links = linked.links;
    let params = TprParams {
        selection,
        thresholds: Thresholds {
            direction: args.direction_threshold,
            hotspot: args.hotspot_threshold,
            ..Thresholds::default()
        },
        mapping,
        reprioritise_n: args.reprioritise,
        min_tested: args.min_tested,
        metric: Metric::parse(&args.metric).unwrap_or_default(),
    };
    let output = compute(&export, links, &params)?;
    let visuals = match shapefile.as_deref() {
        Some(zip) => {
            let area = params
                .selection
                .state
                .clone()
                .or_else(|| (export.states.len() == 1).then(|| export.states[0].name.clone()));
            render_visuals(&export, &output, zip, area.as_deref())?
        }
        None => Vec::new(),
    };
    let compute_ms = compute_started.elapsed().as_secs_f64() * 1e3;
    let write_started = std::time::Instant::now();
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    for (name, bytes) in &output.files {
        let path = args.out.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if !visuals.is_empty() {
        let dir = args.out.join("visualizations");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        for (name, bytes) in &visuals {
            let path = dir.join(name);
            std::fs::write(&path, bytes)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    let write_ms = write_started.elapsed().as_secs_f64() * 1e3;
    let r = &output.result;
    eprintln!(
        "{}: {} rows, {} facilities, {} wards ({} without tests), years {}; {} files in {}",
        r.metric_label,
        export.rows.len(),
        export.facilities.len(),
        r.wards.len(),
        r.wards_without_tests().len(),
        r.years
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        output.files.len(),
        args.out.display()
    );
    if let Some(rule) = output.summary["reprioritise"]["rule"].as_str() {
        eprintln!("{rule}");
    }
    // One machine-readable line for the benchmark.
    eprintln!(
        "TIMINGS read_ms={read_ms:.1} compute_ms={compute_ms:.1} write_ms={write_ms:.1} total_ms={:.1}",
        started.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}
