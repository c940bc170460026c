//! ITN (bed-net) planning (§5, §0.8). Two strategies: `rank` reproduces ChatMRPT \[J\] (exact
//! normalised-name population join, wards without population excluded, greedy by rank, stop at
//! the first partial ward); `rural_first` reproduces \[N\] (ward-code or fuzzy name join, wards
//! without population get the mean, rural tier first, urban tier only with a surplus).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use mrpt_table::{
    ItnStats, ItnStrategy, NameRule, RankingMethod, Table, WardCoverageStats,
    find_ward_code_column, find_ward_column, match_ward_names,
};

use crate::error::Error;
use crate::linalg::pairwise_sum;
use crate::pipeline::{AnalysisResult, Warning, WarningKind};

/// One ranked ward as ITN planning needs it. Can be built from an [`AnalysisResult`]
/// ([`itn_rankings`]) or from an old `analysis_vulnerability_rankings.csv` alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItnRankingRow {
    /// The ward's name as ranked.
    pub ward_name: String,
    /// The ward's code, when the table has one (joins to the population by code first).
    #[serde(default)]
    pub ward_code: Option<String>,
    /// Rows with a NaN score are dropped, as ChatMRPT drops non-numeric scores.
    pub score: f64,
    /// 1-based rank, 1 = most vulnerable.
    pub rank: usize,
    /// `High Risk`, `Medium Risk` or `Low Risk`.
    pub category: String,
    /// Urban percentage 0..100; `None` counts as 50.
    #[serde(default)]
    pub urban_pct: Option<f64>,
    /// Ward centroid `[lon, lat]` (WGS84), used only to split duplicate names in the `rank`
    /// strategy's population join.
    #[serde(default)]
    pub centroid: Option<[f64; 2]>,
}

/// One row of the population table (`population.csv`, a PBI distribution file, or a data
/// column turned into rows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PopulationRow {
    /// Ward name (`AdminLevel3` in PBI files, `WardName` elsewhere).
    pub ward_name: String,
    /// LGA (`AdminLevel2`); rows are summed per (ward_name, admin2) in the `rank` strategy.
    #[serde(default)]
    pub admin2: Option<String>,
    /// Ward code (`WardCode`), when the table has one.
    #[serde(default)]
    pub ward_code: Option<String>,
    /// People in the ward (summed over the ward's rows).
    pub population: f64,
    /// Latitude of the row (PBI files), WGS84 degrees; splits duplicate names.
    #[serde(default)]
    pub latitude: Option<f64>,
    /// Longitude of the row (PBI files), WGS84 degrees; splits duplicate names.
    #[serde(default)]
    pub longitude: Option<f64>,
}

/// The ITN request (analysis.md §5). Validated by [`crate::plan_itn`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ItnOptions {
    /// Nets available; must be positive ([`Error::InvalidTotalNets`]).
    pub total_nets: i64,
    /// People per household (default 5); must be positive ([`Error::InvalidHouseholdSize`]).
    pub avg_household_size: f64,
    /// Default 30 for `rank` (\[J\]), 75 for `rural_first` (\[N\]).
    pub urban_threshold: Option<f64>,
    /// `None`: `rural_first` when any ranking row carries an urban percentage, else `rank`.
    pub strategy: Option<ItnStrategy>,
}

impl Default for ItnOptions {
    fn default() -> Self {
        ItnOptions {
            total_nets: 0,
            avg_household_size: 5.0,
            urban_threshold: None,
            strategy: None,
        }
    }
}

/// One ward that received nets: a row of the ITN allocation file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AllocationRow {
    /// The ward's name as ranked.
    pub ward_name: String,
    /// The ward's code, when known.
    pub ward_code: Option<String>,
    /// The ranking's score.
    pub score: f64,
    /// Rank in the vulnerability ranking (1 = most vulnerable).
    pub overall_rank: usize,
    /// `High Risk`, `Medium Risk` or `Low Risk`.
    pub vulnerability_category: String,
    /// People in the ward (matched, or the mean stand-in when `population_imputed`).
    pub population: f64,
    /// True when the population is the mean stand-in for an unmatched ward (`rural_first`).
    pub population_imputed: bool,
    /// Urban share, percent 0-100 (50 when the ranking had none).
    pub urban_pct: f64,
    /// The population row's name and match score (`rural_first` only).
    pub pop_ward_name: Option<String>,
    /// Fuzzy match score of the population row, 0-100 (`rural_first` only).
    pub match_score: Option<i64>,
    /// Nets to cover the ward: `ceil(max(population / 1.8, ceil(population / household size)))`.
    pub nets_needed: i64,
    /// Nets given (at most `nets_needed`).
    pub nets_allocated: i64,
    /// `nets_allocated / nets_needed`, percent 0-100 (1 decimal).
    pub coverage_percent: f64,
    /// ChatMRPT's phase label (`Full Coverage`, `Rural Priority (Partial)`, ...).
    pub allocation_phase: String,
    /// 1 = rural tier, 2 = urban surplus (`rural_first` only).
    pub priority_tier: Option<u8>,
    /// People covered by the nets given.
    pub population_covered: f64,
}

/// How the ranking met the population table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchingReport {
    /// Wards in the ranking.
    pub total_ranking_wards: usize,
    /// Rows of the population table.
    pub total_population_wards: usize,
    /// Ranked wards that found a population row.
    pub matched_wards: usize,
    /// Ranked wards that did not.
    pub unmatched_wards: usize,
    /// `matched_wards / total_ranking_wards`, percent 0-100.
    pub match_percentage: f64,
    /// Mean fuzzy score (0-100) of the matches; `None` when no fuzzy match was made.
    pub average_match_score: Option<f64>,
    /// "Exact" (rank), "WardCode" or "Fuzzy" (rural_first).
    pub match_method: String,
    /// Ranked wards without population, in rank order.
    pub unmatched_ward_names: Vec<String>,
}

/// An ITN plan: the parameters used, the figures, the allocation and the joins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItnPlan {
    /// The strategy used (given, or chosen from the presence of urban shares).
    pub strategy: ItnStrategy,
    /// Urban share, percent 0-100, used (the strategy's default when not given).
    pub urban_threshold: f64,
    /// People per household used.
    pub avg_household_size: f64,
    /// Nets available.
    pub total_nets: i64,
    /// The plan's figures (`itn_distribution_results.json`).
    pub stats: ItnStats,
    /// Wards that received nets, in allocation order (ChatMRPT's `prioritized`).
    pub allocations: Vec<AllocationRow>,
    /// Wards with population that received nothing, in rank order.
    pub unallocated_wards: Vec<String>,
    /// Wards left out for lack of population (`rank` strategy).
    pub excluded_wards: Vec<String>,
    /// How the ranking met the population table.
    pub matching: MatchingReport,
    /// Unmatched population, nets left over.
    pub warnings: Vec<Warning>,
}

const URBAN_COLUMNS: &[&str] = &[
    "urban_percentage",
    "urbanPercentage",
    "UrbanPercent",
    "urbanPercent",
    "urban_percent",
    "Urban_Percent",
    "Urban_Percentage",
    "URBANPERCENT",
    "UrbanPerce",
];

/// The urban-percentage column of a table: the first of the §5 \[N\] names, else any column whose
/// name holds "urban" and "percent"/"pct"/"%".
fn urban_column(table: &Table) -> Option<Vec<Option<f64>>> {
    URBAN_COLUMNS
        .iter()
        .find_map(|c| table.column(c))
        .or_else(|| {
            table.columns().iter().find(|c| {
                let l = c.name.to_lowercase();
                l.contains("urban")
                    && (l.contains("percent") || l.contains("pct") || l.contains('%'))
            })
        })
        .and_then(|c| c.data.to_f64())
}

/// The rankings ITN planning needs, from the files an analysis leaves on disk: a rankings table
/// (`analysis_vulnerability_rankings.csv` or its `_pca` twin, as this service or the old Python
/// system wrote it) and, when present, the ward data (`unified_dataset.csv`) for urban % and
/// centroids, joined by ward name. Works on folders that hold the rankings file alone.
pub fn itn_rankings_from_tables(
    rankings: &Table,
    data: Option<&Table>,
    method: RankingMethod,
) -> Result<Vec<ItnRankingRow>, Error> {
    let names = ward_names(rankings)?;
    let numbers = |candidates: &[&str]| {
        candidates
            .iter()
            .find_map(|c| rankings.column(c))
            .and_then(|c| c.data.to_f64())
    };
    let (score_names, rank_names): (&[&str], &[&str]) = match method {
        RankingMethod::Composite => (
            &["median_score", "composite_score", "score"],
            &["overall_rank", "composite_rank", "rank"],
        ),
        RankingMethod::Pca => (
            &["pca_score", "median_score", "score"],
            &["pca_rank", "overall_rank", "rank"],
        ),
    };
    let scores = numbers(score_names).ok_or(Error::EmptyRanking)?;
    let ranks = numbers(rank_names).ok_or(Error::EmptyRanking)?;
    // A unified dataset carries both methods' categories; the rankings files one each.
    let category_names: &[&str] = match method {
        RankingMethod::Composite => &["composite_category", "vulnerability_category"],
        RankingMethod::Pca => &["pca_category", "vulnerability_category"],
    };
    let categories = category_names.iter().find_map(|c| rankings.column(c));
    let codes = find_ward_code_column(rankings).map(|i| &rankings.columns()[i]);

    // Ward data by name (first row wins, as a left join on a duplicated key would show first).
    let mut by_name: HashMap<String, usize> = HashMap::new();
    let (data_urban, data_lat, data_lon) = match data {
        Some(table) => {
            for (row, name) in ward_names(table)?.into_iter().enumerate() {
                if let Some(name) = name {
                    by_name.entry(name).or_insert(row);
                }
            }
            let f = |name: &str| table.column(name).and_then(|c| c.data.to_f64());
            (urban_column(table), f("centroid_lat"), f("centroid_lon"))
        }
        None => (None, None, None),
    };
    let mut rows = Vec::with_capacity(names.len());
    for (i, name) in names.into_iter().enumerate() {
        let (Some(name), Some(score), Some(rank)) = (
            name,
            scores.get(i).copied().flatten(),
            ranks.get(i).copied().flatten(),
        ) else {
            continue;
        };
        let data_row = by_name.get(&name).copied();
        let at = |col: &Option<Vec<Option<f64>>>| {
            data_row.and_then(|r| col.as_ref().and_then(|c| c.get(r).copied().flatten()))
        };
        let centroid = match (at(&data_lon), at(&data_lat)) {
            (Some(lon), Some(lat)) => Some([lon, lat]),
            _ => None,
        };
        rows.push(ItnRankingRow {
            ward_name: name,
            ward_code: codes.and_then(|c| c.data.cell_text(i)),
            score,
            rank: rank.max(0.0) as usize,
            category: categories
                .and_then(|c| c.data.cell_text(i))
                .unwrap_or_default(),
            urban_pct: at(&data_urban),
            centroid,
        });
    }
    if rows.is_empty() {
        return Err(Error::EmptyRanking);
    }
    rows.sort_by_key(|r| r.rank);
    Ok(rows)
}

/// A table's ward names by the one ward-name rule, or the error the upload gives.
fn ward_names(table: &Table) -> Result<Vec<Option<String>>, Error> {
    let column = find_ward_column(table).ok_or_else(|| mrpt_table::Error::NoWardColumn {
        found: table.column_names(),
    })?;
    Ok(table.columns()[column].data.to_text())
}

/// Population rows from a table's `Population` (else `population`) column, keyed by ward name:
/// the population table as stored (`WardName`, `Population`[, `WardCode`]), or ward data that
/// carry a population column. `None` when there is no ward column or no such numeric column.
pub fn population_rows_from_data(table: &Table) -> Option<Vec<PopulationRow>> {
    let values = table
        .first_column(&["Population", "population"])?
        .data
        .to_f64()?;
    let names = ward_names(table).ok()?;
    let codes = find_ward_code_column(table).map(|i| &table.columns()[i]);
    Some(
        names
            .into_iter()
            .zip(values)
            .enumerate()
            .filter_map(|(row, (name, v))| {
                Some(PopulationRow {
                    ward_name: name?,
                    admin2: None,
                    ward_code: codes.and_then(|c| c.data.cell_text(row)),
                    population: v?,
                    latitude: None,
                    longitude: None,
                })
            })
            .collect(),
    )
}

/// The rankings ITN planning needs, from an analysis. Urban % comes from `urban_pct` when given
/// (per cleaned-table row), else from the first urban-percentage column of the cleaned table
/// (§5 \[N\] list); `centroids` (per cleaned row, `[lon, lat]`) are optional. `None` when the PCA
/// ranking is asked for but PCA did not run.
pub fn itn_rankings(
    result: &AnalysisResult,
    method: RankingMethod,
    urban_pct: Option<&[Option<f64>]>,
    centroids: Option<&[Option<[f64; 2]>]>,
) -> Option<Vec<ItnRankingRow>> {
    let table = &result.cleaned.table;
    let urban_col = urban_column(table);
    let codes = result.cleaned.code_column.map(|i| &table.columns()[i]);
    let row_of = |row: usize| -> (Option<f64>, Option<String>, Option<[f64; 2]>) {
        let urban = match urban_pct {
            Some(u) => u.get(row).copied().flatten(),
            None => urban_col
                .as_ref()
                .and_then(|u| u.get(row).copied().flatten()),
        };
        let code = codes.and_then(|c| c.data.cell_text(row));
        let centroid = centroids.and_then(|c| c.get(row).copied().flatten());
        (urban, code, centroid)
    };
    let ranked = match method {
        RankingMethod::Composite => &result.composite.rankings,
        RankingMethod::Pca => &result.pca.as_ref()?.rankings,
    };
    Some(
        ranked
            .iter()
            .map(|w| {
                let (urban, code, centroid) = row_of(w.row);
                ItnRankingRow {
                    ward_name: w.ward_name.clone(),
                    ward_code: code,
                    score: w.score,
                    rank: w.rank,
                    category: w.category.label().to_string(),
                    urban_pct: urban,
                    centroid,
                }
            })
            .collect(),
    )
}

/// Population rows from the ward data itself (§0.8): the `Population` (else `population`)
/// column of the cleaned table, keyed by ward name. `None` when there is no such numeric column.
pub fn population_from_table(result: &AnalysisResult) -> Option<Vec<PopulationRow>> {
    let table = &result.cleaned.table;
    let values = table
        .first_column(&["Population", "population"])?
        .data
        .to_f64()?;
    let codes = result.cleaned.code_column.map(|i| &table.columns()[i]);
    Some(
        result
            .ward_names()
            .into_iter()
            .zip(values)
            .enumerate()
            .filter_map(|(row, (name, v))| {
                v.map(|population| PopulationRow {
                    ward_name: name,
                    admin2: None,
                    ward_code: codes.and_then(|c| c.data.cell_text(row)),
                    population,
                    latitude: None,
                    longitude: None,
                })
            })
            .collect(),
    )
}

/// `⌈max(P/1.8, ⌈P/h⌉)⌉`: one net per 1.8 people, at least one per household.
pub(crate) fn nets_needed(population: f64, household: f64) -> i64 {
    let v = (population / 1.8)
        .max((population / household).ceil())
        .ceil();
    if v.is_finite() && v > 0.0 {
        v as i64
    } else {
        0
    }
}

/// Python `round(x, 1)` (correctly rounded from the exact binary value, half to even).
fn round1(x: f64) -> f64 {
    format!("{x:.1}").parse().unwrap_or(x)
}

struct Candidate {
    row: ItnRankingRow,
    population: f64,
    imputed: bool,
    pop_ward_name: Option<String>,
    match_score: Option<i64>,
}

fn haversine_km(a: [f64; 2], b: [f64; 2]) -> f64 {
    let (lon1, lat1, lon2, lat2) = (
        a[0].to_radians(),
        a[1].to_radians(),
        b[0].to_radians(),
        b[1].to_radians(),
    );
    let h = ((lat2 - lat1) / 2.0).sin().powi(2)
        + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().asin()
}

struct PopGroup {
    name: String,
    population: f64,
    coord: Option<[f64; 2]>,
}

/// \[J\] join: (ward, LGA) groups summed, exact normalised-name match, nearest point on
/// duplicate names. Returns candidates and the wards left out.
fn join_rank(
    rankings: &[ItnRankingRow],
    population: &[PopulationRow],
) -> (Vec<Candidate>, Vec<String>) {
    let mut groups: Vec<PopGroup> = Vec::new();
    let mut group_index: HashMap<(String, Option<String>), usize> = HashMap::new();
    let mut coord_sums: Vec<(f64, f64, usize)> = Vec::new();
    for p in population {
        let key = (p.ward_name.clone(), p.admin2.clone());
        let gi = *group_index.entry(key).or_insert_with(|| {
            groups.push(PopGroup {
                name: p.ward_name.clone(),
                population: 0.0,
                coord: None,
            });
            coord_sums.push((0.0, 0.0, 0));
            groups.len() - 1
        });
        if !p.population.is_nan() {
            groups[gi].population += p.population;
        }
        if let (Some(lat), Some(lon)) = (p.latitude, p.longitude) {
            let c = &mut coord_sums[gi];
            c.0 += lon;
            c.1 += lat;
            c.2 += 1;
        }
    }
    for (g, c) in groups.iter_mut().zip(&coord_sums) {
        if c.2 > 0 {
            g.coord = Some([c.0 / c.2 as f64, c.1 / c.2 as f64]);
        }
    }
    let rule = NameRule::PopulationExact;
    let group_names: Vec<Option<String>> = groups.iter().map(|g| Some(g.name.clone())).collect();
    let ward_names: Vec<Option<String>> =
        rankings.iter().map(|r| Some(r.ward_name.clone())).collect();
    let hits = match_ward_names(&ward_names, &group_names, rule);
    let mut ward_key_count: HashMap<String, usize> = HashMap::new();
    for r in rankings {
        *ward_key_count.entry(rule.key(&r.ward_name)).or_default() += 1;
    }
    let mut out = Vec::new();
    let mut excluded = Vec::new();
    for (r, hit) in rankings.iter().zip(&hits) {
        let key = rule.key(&r.ward_name);
        let cands = hit.as_ref().map_or(&[][..], |h| h.candidates.as_slice());
        let duplicated = cands.len() > 1 || ward_key_count.get(&key).copied().unwrap_or(0) > 1;
        let chosen = if cands.is_empty() {
            None
        } else if !duplicated {
            Some(cands[0])
        } else if let Some(centroid) = r.centroid {
            let limit = if key.contains("falgore") { 15.0 } else { 5.0 };
            cands
                .iter()
                .filter_map(|&g| groups[g].coord.map(|c| (g, haversine_km(centroid, c))))
                .filter(|(_, d)| *d <= limit)
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(g, _)| g)
        } else {
            // No coordinates to split the duplicate: take the first population row.
            Some(cands[0])
        };
        match chosen {
            Some(g) => out.push(Candidate {
                row: r.clone(),
                population: groups[g].population,
                imputed: false,
                pop_ward_name: None,
                match_score: None,
            }),
            None => excluded.push(r.ward_name.clone()),
        }
    }
    (out, excluded)
}

/// \[N\] join: ward codes when both sides have them, else normalised names (exact = 100,
/// token_sort_ratio >= 70, partial_ratio >= 90). Unmatched wards get the mean population.
fn join_fuzzy(
    rankings: &[ItnRankingRow],
    population: &[PopulationRow],
) -> (Vec<Candidate>, Vec<String>, &'static str) {
    let by_code = !population.is_empty()
        && rankings.iter().all(|r| r.ward_code.is_some())
        && population.iter().all(|p| p.ward_code.is_some());
    let matched: Vec<Option<(usize, i64)>> = if by_code {
        let mut code_index: HashMap<&str, usize> = HashMap::new();
        for (i, p) in population.iter().enumerate() {
            if let Some(c) = &p.ward_code {
                code_index.entry(c.trim()).or_insert(i);
            }
        }
        rankings
            .iter()
            .map(|r| {
                r.ward_code
                    .as_deref()
                    .and_then(|c| code_index.get(c.trim()).copied())
                    .map(|i| (i, 100))
            })
            .collect()
    } else {
        let pop_names: Vec<Option<String>> = population
            .iter()
            .map(|p| Some(p.ward_name.clone()))
            .collect();
        let ward_names: Vec<Option<String>> =
            rankings.iter().map(|r| Some(r.ward_name.clone())).collect();
        match_ward_names(&ward_names, &pop_names, NameRule::PopulationFuzzy)
            .into_iter()
            // fuzzywuzzy scores are whole numbers.
            .map(|hit| hit.map(|h| (h.first(), h.score as i64)))
            .collect()
    };
    let matched_pops: Vec<f64> = matched
        .iter()
        .flatten()
        .map(|(i, _)| population[*i].population)
        .collect();
    let fill = if matched_pops.is_empty() {
        10_000.0
    } else {
        pairwise_sum(&matched_pops) / matched_pops.len() as f64
    };
    let mut unmatched = Vec::new();
    let out = rankings
        .iter()
        .zip(&matched)
        .map(|(r, m)| match m {
            Some((i, s)) => Candidate {
                row: r.clone(),
                population: population[*i].population,
                imputed: false,
                pop_ward_name: Some(population[*i].ward_name.clone()),
                match_score: Some(*s),
            },
            None => {
                unmatched.push(r.ward_name.clone());
                Candidate {
                    row: r.clone(),
                    population: fill,
                    imputed: true,
                    pop_ward_name: None,
                    match_score: None,
                }
            }
        })
        .collect();
    (out, unmatched, if by_code { "WardCode" } else { "Fuzzy" })
}

fn allocation_row(
    c: &Candidate,
    need: i64,
    given: i64,
    phase: &str,
    tier: Option<u8>,
) -> AllocationRow {
    let coverage = if need > 0 {
        given as f64 / need as f64 * 100.0
    } else {
        100.0
    };
    AllocationRow {
        ward_name: c.row.ward_name.clone(),
        ward_code: c.row.ward_code.clone(),
        score: c.row.score,
        overall_rank: c.row.rank,
        vulnerability_category: c.row.category.clone(),
        population: c.population,
        population_imputed: c.imputed,
        urban_pct: c.row.urban_pct.filter(|u| !u.is_nan()).unwrap_or(50.0),
        pop_ward_name: c.pop_ward_name.clone(),
        match_score: c.match_score,
        nets_needed: need,
        nets_allocated: given,
        coverage_percent: coverage,
        allocation_phase: phase.to_string(),
        priority_tier: tier,
        population_covered: given as f64 * 1.8,
    }
}

/// Greedy walk: full need while it fits; the first ward that does not fit gets the remainder
/// (if any) and ends the walk. Returns `true` when every ward was fully covered.
fn greedy(
    wards: &[&Candidate],
    household: f64,
    remaining: &mut i64,
    phases: (&str, &str),
    tier: Option<u8>,
    out: &mut Vec<AllocationRow>,
) -> bool {
    for c in wards {
        let need = nets_needed(c.population, household);
        if need <= *remaining {
            *remaining -= need;
            out.push(allocation_row(c, need, need, phases.0, tier));
        } else {
            if *remaining > 0 {
                out.push(allocation_row(c, need, *remaining, phases.1, tier));
                *remaining = 0;
            }
            return false;
        }
    }
    true
}

/// Plan bed-net distribution from a ranking and a population table.
pub fn plan_itn(
    rankings: &[ItnRankingRow],
    population: &[PopulationRow],
    options: &ItnOptions,
) -> Result<ItnPlan, Error> {
    if options.total_nets <= 0 {
        return Err(Error::InvalidTotalNets(options.total_nets));
    }
    let household = options.avg_household_size;
    if !(household.is_finite() && household > 0.0) {
        return Err(Error::InvalidHouseholdSize(household));
    }
    let mut ranked: Vec<ItnRankingRow> = rankings
        .iter()
        .filter(|r| !r.score.is_nan())
        .cloned()
        .collect();
    if ranked.is_empty() {
        return Err(Error::EmptyRanking);
    }
    ranked.sort_by_key(|r| r.rank);
    let strategy = options.strategy.unwrap_or(
        if ranked
            .iter()
            .any(|r| r.urban_pct.is_some_and(|u| !u.is_nan()))
        {
            ItnStrategy::RuralFirst
        } else {
            ItnStrategy::Rank
        },
    );
    let threshold = options.urban_threshold.unwrap_or(match strategy {
        ItnStrategy::Rank => 30.0,
        ItnStrategy::RuralFirst => 75.0,
    });
    let mut warnings = Vec::new();
    let (candidates, unmatched, method) = match strategy {
        ItnStrategy::Rank => {
            let (c, u) = join_rank(&ranked, population);
            if c.is_empty() {
                return Err(Error::NoPopulationMatch {
                    rankings: ranked.len(),
                    population: population.len(),
                });
            }
            if !u.is_empty() {
                warnings.push(Warning::new(
                    WarningKind::UnmatchedPopulation,
                    format!(
                        "{} wards have no population and were left out of the plan: {}",
                        u.len(),
                        u.join(", ")
                    ),
                ));
            }
            (c, u, "Exact")
        }
        ItnStrategy::RuralFirst => {
            let (c, u, m) = join_fuzzy(&ranked, population);
            if !u.is_empty() {
                let all = u.len() == ranked.len();
                warnings.push(Warning::new(
                    WarningKind::UnmatchedPopulation,
                    if all {
                        "no ward matched the population table; every ward was given 10,000 people"
                            .to_string()
                    } else {
                        format!(
                            "{} wards have no population match and were given the mean population: {}",
                            u.len(),
                            u.join(", ")
                        )
                    },
                ));
            }
            (c, u, m)
        }
    };
    let mut remaining = options.total_nets;
    let mut allocations = Vec::new();
    match strategy {
        ItnStrategy::Rank => {
            let all: Vec<&Candidate> = candidates.iter().collect();
            greedy(
                &all,
                household,
                &mut remaining,
                ("Full Coverage", "Partial Coverage (Last Ward)"),
                None,
                &mut allocations,
            );
        }
        ItnStrategy::RuralFirst => {
            let urban = |c: &Candidate| c.row.urban_pct.filter(|u| !u.is_nan()).unwrap_or(50.0);
            let rural: Vec<&Candidate> =
                candidates.iter().filter(|c| urban(c) < threshold).collect();
            let urban_tier: Vec<&Candidate> = candidates
                .iter()
                .filter(|c| urban(c) >= threshold)
                .collect();
            let all_rural_covered = greedy(
                &rural,
                household,
                &mut remaining,
                ("Rural Priority (Full)", "Rural Priority (Partial)"),
                Some(1),
                &mut allocations,
            );
            if all_rural_covered && remaining > 0 {
                greedy(
                    &urban_tier,
                    household,
                    &mut remaining,
                    ("Urban Surplus (Full)", "Urban Surplus (Partial)"),
                    Some(2),
                    &mut allocations,
                );
            }
        }
    }
    let total_pop = pairwise_sum(&candidates.iter().map(|c| c.population).collect::<Vec<_>>());
    let covered = pairwise_sum(
        &allocations
            .iter()
            .map(|a| a.population_covered)
            .collect::<Vec<_>>(),
    );
    let allocated: i64 = allocations.iter().map(|a| a.nets_allocated).sum();
    let cov: Vec<f64> = allocations.iter().map(|a| a.coverage_percent).collect();
    let ward_coverage_stats = if cov.is_empty() {
        WardCoverageStats {
            avg_coverage_percent: 0.0,
            min_coverage_percent: 0.0,
            max_coverage_percent: 0.0,
        }
    } else {
        WardCoverageStats {
            avg_coverage_percent: round1(pairwise_sum(&cov) / cov.len() as f64),
            min_coverage_percent: round1(cov.iter().copied().fold(f64::INFINITY, f64::min)),
            max_coverage_percent: round1(cov.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
        }
    };
    if remaining > 0 {
        warnings.push(Warning::new(
            WarningKind::NetsLeftOver,
            format!("{remaining} nets were not allocated: every eligible ward is fully covered"),
        ));
    }
    let stats = ItnStats {
        total_nets: options.total_nets,
        allocated,
        remaining: options.total_nets - allocated,
        coverage_percent: if total_pop > 0.0 {
            round1(covered / total_pop * 100.0)
        } else {
            0.0
        },
        prioritized_wards: allocations.len(),
        fully_covered_wards: allocations
            .iter()
            .filter(|a| a.coverage_percent == 100.0)
            .count(),
        partially_covered_wards: allocations
            .iter()
            .filter(|a| a.coverage_percent < 100.0)
            .count(),
        reprioritized_wards: 0,
        total_population: total_pop as i64,
        covered_population: covered as i64,
        ward_coverage_stats,
    };
    let allocated_names: std::collections::HashSet<(&str, usize)> = allocations
        .iter()
        .map(|a| (a.ward_name.as_str(), a.overall_rank))
        .collect();
    let unallocated_wards: Vec<String> = candidates
        .iter()
        .filter(|c| !allocated_names.contains(&(c.row.ward_name.as_str(), c.row.rank)))
        .map(|c| c.row.ward_name.clone())
        .collect();
    let scores: Vec<f64> = candidates
        .iter()
        .filter_map(|c| c.match_score.map(|s| s as f64))
        .collect();
    let matched = ranked.len() - unmatched.len();
    let matching = MatchingReport {
        total_ranking_wards: ranked.len(),
        total_population_wards: population.len(),
        matched_wards: matched,
        unmatched_wards: unmatched.len(),
        match_percentage: matched as f64 / ranked.len() as f64 * 100.0,
        average_match_score: if scores.is_empty() {
            None
        } else {
            Some(pairwise_sum(&scores) / scores.len() as f64)
        },
        match_method: method.to_string(),
        unmatched_ward_names: unmatched.clone(),
    };
    Ok(ItnPlan {
        strategy,
        urban_threshold: threshold,
        avg_household_size: household,
        total_nets: options.total_nets,
        stats,
        allocations,
        unallocated_wards,
        excluded_wards: if strategy == ItnStrategy::Rank {
            unmatched
        } else {
            Vec::new()
        },
        matching,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nets_formula() {
        assert_eq!(nets_needed(5500.0, 5.0), 3056);
        assert_eq!(nets_needed(4500.0, 5.0), 2500);
        assert_eq!(nets_needed(2000.0, 5.0), 1112);
        // Large households: one net per household dominates only when h < 1.8.
        assert_eq!(nets_needed(10.0, 1.0), 10);
        assert_eq!(nets_needed(0.0, 5.0), 0);
    }

    #[test]
    fn code_suffix_and_spellings() {
        let rank_key = |name: &str| NameRule::PopulationExact.key(name);
        assert_eq!(rank_key("Fagge A (KN123)"), "fagge a");
        assert_eq!(rank_key("Jauben Kudu"), "jaube");
        assert_eq!(rank_key("Ward (rural)"), "ward (rural)");
    }

    #[test]
    fn round_like_python() {
        assert_eq!(round1(46.33204633), 46.3);
        assert_eq!(round1(97.84999), 97.8);
        assert_eq!(round1(0.25), 0.2);
    }

    #[test]
    fn haversine_one_degree() {
        let d = haversine_km([0.0, 0.0], [1.0, 0.0]);
        assert!((d - 111.19492664455873).abs() < 1e-9);
    }
}
