//! Data wards of an export to shapefile wards (tpr.md §4.4), on the normalised keys with the
//! one difflib port (`mrpt_table::sequence_ratio`), and population attached through the
//! match (§5).

use std::collections::HashMap;

use mrpt_table::tpr::{AgeChoice, FacilityExport, WardLink, norm_name};

use crate::population::PopulationTable;
use crate::shapefile::WardShapes;
use mrpt_table::{NameRule, match_ward_names, sequence_ratio};

/// The population of the selected age group from a population upload (tpr.md §5), as a
/// [`PopulationTable`] whose `populations` are that age's. `Ok(None)` when the table has no
/// column for the age: burden is then not computed and the answer names
/// [`AgeChoice::population_columns`]. All ages use the usual population column rules.
pub fn population_for_age(
    bytes: &[u8],
    file_name: &str,
    age: AgeChoice,
) -> crate::Result<Option<PopulationTable>> {
    let mut table = crate::read_table(bytes, file_name)?;
    let column = |t: &mrpt_table::Table, want: &str| {
        t.columns()
            .iter()
            .find(|c| c.name.trim().eq_ignore_ascii_case(want))
            .map(|c| c.name.clone())
    };
    let derived: Option<Vec<Option<f64>>> = match age {
        AgeChoice::AllAges => return crate::population::population_from_table(&table).map(Some),
        AgeChoice::U5 => column(&table, "Population_u5")
            .map(|c| table.numeric(&c))
            .transpose()?,
        AgeChoice::Pw => column(&table, "Population_f15_49")
            .map(|c| table.numeric(&c))
            .transpose()?,
        AgeChoice::O5 => match column(&table, "Population_o5") {
            Some(c) => Some(table.numeric(&c)?),
            None => match (
                column(&table, "Population"),
                column(&table, "Population_u5"),
            ) {
                (Some(all), Some(u5)) => {
                    let (all, u5) = (table.numeric(&all)?, table.numeric(&u5)?);
                    Some(
                        all.iter()
                            .zip(&u5)
                            .map(|(a, u)| match (a, u) {
                                (Some(a), Some(u)) => Some(a - u),
                                _ => None,
                            })
                            .collect(),
                    )
                }
                _ => None,
            },
        },
    };
    let Some(values) = derived else {
        return Ok(None);
    };
    // The age's figures become the table's `Population`; names and codes are read as usual.
    for name in table.column_names() {
        if name.trim().eq_ignore_ascii_case("population") {
            table.remove(&name);
        }
    }
    table.push("Population", mrpt_table::ColumnData::Float(values))?;
    crate::population::population_from_table(&table).map(Some)
}

/// A shapefile ward as the matcher sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ShapeWard {
    /// The ward name as the shapefile spells it.
    pub name: String,
    /// Its ward code, when the shapefile has a code column.
    pub code: Option<String>,
    /// The LGA name when the shapefile has an LGA name column.
    pub lga: Option<String>,
}

/// The wards of a shapefile, with an LGA name column when one of `LGAName`, `LGA`, `lga_name`
/// exists.
pub fn shape_wards(shapes: &WardShapes) -> Vec<ShapeWard> {
    let names = shapes.ward_names();
    let codes = shapes.ward_codes();
    let lga_column = ["LGAName", "LGA", "lga_name"]
        .iter()
        .find_map(|c| shapes.attributes.column(c));
    names
        .iter()
        .enumerate()
        .filter_map(|(i, n)| {
            n.as_ref().map(|name| ShapeWard {
                name: name.clone(),
                code: codes.as_ref().and_then(|c| c[i].clone()),
                lga: lga_column.and_then(|c| c.data.cell_text(i)),
            })
        })
        .collect()
}

/// Strength order of match kinds (lower is stronger), for one-to-one conflicts.
fn strength(kind: &str) -> u8 {
    match kind {
        "exact" => 0,
        "normalised" => 1,
        "fuzzy" => 2,
        "zero_fix" => 3,
        _ => 4,
    }
}

const FUZZY_CUTOFF: f64 = 0.70;
const ZERO_FIX_CUTOFF: f64 = 0.65;

/// Best candidates by ratio (score, candidate indices sharing it).
fn best(key: &str, candidates: &[(usize, String)], cutoff: f64) -> Option<(f64, Vec<usize>)> {
    let mut best: Option<(f64, Vec<usize>)> = None;
    for (i, c) in candidates {
        let r = sequence_ratio(c, key);
        if r < cutoff {
            continue;
        }
        match &mut best {
            Some((score, hits)) if r == *score => hits.push(*i),
            Some((score, _)) if r < *score => {}
            _ => best = Some((r, vec![*i])),
        }
    }
    best
}

/// Links every data ward of the export to a shapefile ward (tpr.md §4.4). Population is not
/// filled here (see [`attach_population`]).
pub fn match_tpr_wards(export: &FacilityExport, shapes: &[ShapeWard]) -> Vec<WardLink> {
    let keys: Vec<String> = shapes.iter().map(|s| norm_name(&s.name)).collect();
    let lga_keys: Vec<Option<String>> = shapes
        .iter()
        .map(|s| s.lga.as_deref().map(norm_name))
        .collect();
    // (link, shape index, ratio) per data ward.
    let mut found: Vec<(WardLink, Option<usize>, f64)> = Vec::with_capacity(export.wards.len());
    for ward in &export.wards {
        let lga_key = &export.lgas[ward.lga as usize].key;
        let restrict = lga_keys
            .iter()
            .any(|l| l.as_deref() == Some(lga_key.as_str()));
        let candidates: Vec<(usize, String)> = keys
            .iter()
            .enumerate()
            .filter(|(i, _)| !restrict || lga_keys[*i].as_deref() == Some(lga_key.as_str()))
            .map(|(i, k)| (i, k.clone()))
            .collect();
        let k = &ward.key;
        let link = |kind: &str, shape: Option<usize>, score: Option<f64>| WardLink {
            shape_name: shape.map(|s| shapes[s].name.clone()),
            code: shape.and_then(|s| shapes[s].code.clone()),
            match_kind: kind.into(),
            score,
            population: None,
            burden_population: None,
        };
        let equal: Vec<usize> = candidates
            .iter()
            .filter(|(_, c)| c == k)
            .map(|(i, _)| *i)
            .collect();
        let outcome = if equal.len() == 1 {
            let s = equal[0];
            let kind = if shapes[s].name == ward.name {
                "exact"
            } else {
                "normalised"
            };
            (link(kind, Some(s), Some(1.0)), Some(s), 1.0)
        } else if equal.len() > 1 {
            (link("ambiguous", None, Some(1.0)), None, 1.0)
        } else if let Some((score, hits)) = best(k, &candidates, FUZZY_CUTOFF) {
            if hits.len() == 1 {
                (
                    link("fuzzy", Some(hits[0]), Some(score)),
                    Some(hits[0]),
                    score,
                )
            } else {
                (link("ambiguous", None, Some(score)), None, score)
            }
        } else if let Some((score, hits)) = k
            .contains('0')
            .then(|| best(&k.replace('0', "a"), &candidates, ZERO_FIX_CUTOFF))
            .flatten()
        {
            if hits.len() == 1 {
                (
                    link("zero_fix", Some(hits[0]), Some(score)),
                    Some(hits[0]),
                    score,
                )
            } else {
                (link("ambiguous", None, Some(score)), None, score)
            }
        } else {
            let inside: Vec<usize> = candidates
                .iter()
                .filter(|(_, c)| {
                    !c.is_empty() && (c.contains(k.as_str()) || k.contains(c.as_str()))
                })
                .map(|(i, _)| *i)
                .collect();
            if inside.len() == 1 {
                let s = inside[0];
                let score = sequence_ratio(&keys[s], k);
                (link("substring", Some(s), Some(score)), Some(s), score)
            } else {
                (link("none", None, None), None, 0.0)
            }
        };
        found.push(outcome);
    }
    // One shapefile ward takes one data ward: the strongest claim wins.
    let mut winner: HashMap<usize, usize> = HashMap::new();
    for (w, (l, shape, score)) in found.iter().enumerate() {
        let Some(s) = shape else { continue };
        let better = match winner.get(s) {
            None => true,
            Some(&other) => {
                let (ol, _, os) = &found[other];
                (strength(&l.match_kind), -score) < (strength(&ol.match_kind), -os)
            }
        };
        if better {
            winner.insert(*s, w);
        }
    }
    found
        .into_iter()
        .enumerate()
        .map(|(w, (l, shape, _))| match shape {
            Some(s) if winner.get(&s) != Some(&w) => WardLink {
                shape_name: None,
                code: None,
                match_kind: "conflict".into(),
                ..l
            },
            _ => l,
        })
        .collect()
}

/// Population of matched wards (tpr.md §5): by ward code when both sides have one, else
/// through the population table's own name match to the shapefile (the ward-table matcher).
pub fn attach_population(
    links: &mut [WardLink],
    shapes: &[ShapeWard],
    population: &PopulationTable,
) {
    let by_code: HashMap<&str, f64> = population
        .ward_codes
        .as_ref()
        .map(|codes| {
            codes
                .iter()
                .zip(&population.populations)
                .filter_map(|(c, p)| c.as_deref().map(|c| (c, *p)))
                .collect()
        })
        .unwrap_or_default();
    let shape_names: Vec<Option<String>> = shapes.iter().map(|s| Some(s.name.clone())).collect();
    let table_names: Vec<Option<String>> = population
        .ward_names
        .iter()
        .map(|n| Some(n.clone()))
        .collect();
    // The one ward-name matcher, under the table <-> shapefile rule (exact, else difflib 0.8).
    let hits = match_ward_names(&table_names, &shape_names, NameRule::Shapefile);
    let by_name: HashMap<&str, f64> = hits
        .iter()
        .zip(&population.populations)
        .filter_map(|(h, p)| h.as_ref().map(|h| (shapes[h.first()].name.as_str(), *p)))
        .collect();
    for link in links.iter_mut() {
        let from_code = link
            .code
            .as_deref()
            .filter(|_| !by_code.is_empty())
            .and_then(|c| by_code.get(c).copied());
        link.population = from_code.or_else(|| {
            link.shape_name
                .as_deref()
                .and_then(|n| by_name.get(n).copied())
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod age_population_tests {
    use super::*;

    const CSV: &str = "WardName,WardCode,Population,Population_u5,Population_f15_49\n\
                       Gwale,KN1,1000,200,230\nDala,KN2,2000,,450\n";

    #[test]
    fn each_age_reads_its_own_column() {
        let all = population_for_age(CSV.as_bytes(), "p.csv", AgeChoice::AllAges)
            .unwrap()
            .unwrap();
        assert_eq!(all.populations, vec![1000.0, 2000.0]);
        let u5 = population_for_age(CSV.as_bytes(), "p.csv", AgeChoice::U5)
            .unwrap()
            .unwrap();
        // A blank age cell drops that ward (no population, no burden), never 0.
        assert_eq!(u5.ward_names, vec!["Gwale"]);
        assert_eq!(u5.populations, vec![200.0]);
        assert_eq!(u5.skipped_rows, vec![2]);
        let o5 = population_for_age(CSV.as_bytes(), "p.csv", AgeChoice::O5)
            .unwrap()
            .unwrap();
        assert_eq!(o5.populations, vec![800.0]);
        let pw = population_for_age(CSV.as_bytes(), "p.csv", AgeChoice::Pw)
            .unwrap()
            .unwrap();
        assert_eq!(pw.populations, vec![230.0, 450.0]);
        assert_eq!(pw.ward_codes.unwrap()[1].as_deref(), Some("KN2"));
    }

    #[test]
    fn a_missing_age_column_is_none_not_the_total() {
        let total_only = "WardName,Population\nGwale,1000\n";
        for age in [AgeChoice::U5, AgeChoice::O5, AgeChoice::Pw] {
            assert_eq!(
                population_for_age(total_only.as_bytes(), "p.csv", age).unwrap(),
                None,
                "{age:?}"
            );
        }
        assert!(
            AgeChoice::Pw
                .population_columns()
                .contains("Population_f15_49")
        );
    }
}
