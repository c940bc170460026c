//! A deterministic synthetic country of wards for benchmarks and load tests: a hexagon grid over
//! Nigeria's bounding box (adjacent wards share exact vertices), with spatially plausible malaria
//! covariates, written as a CSV and a zipped WGS84 shapefile.

use std::collections::HashSet;

use crate::archive::write_zip;
use crate::crs::WGS84_PRJ;
use crate::csv_writer::write_csv;
use crate::error::Result;
use crate::shapefile::write_shapefile;
use mrpt_table::{ColumnData, Geometry, Polygon, Table};

/// Nigeria's ward count.
pub const NIGERIA_WARDS: usize = 9410;
const LON: (f64, f64) = (2.67, 14.68);
const LAT: (f64, f64) = (4.27, 13.89);

/// The generated dataset, in memory and encoded.
#[derive(Debug, Clone)]
pub struct SynthData {
    /// The ward table (what the CSV holds).
    pub table: Table,
    /// Shapefile attributes (StateCode, WardCode, WardName, LGACode, Urban).
    pub attributes: Table,
    /// One ward polygon per row (always `Some`).
    pub geometries: Vec<Option<Geometry>>,
    /// The ward table as CSV bytes.
    pub csv: Vec<u8>,
    /// A zip of `.shp`, `.shx`, `.dbf`, `.prj` (WGS84) and `.cpg` for the attributes and geometries.
    pub shapefile_zip: Vec<u8>,
}

/// SplitMix64: tiny, seedable, and the same on every platform.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub(crate) fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(1e-300);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize
    }
}

fn round_to(x: f64, decimals: i32) -> f64 {
    let m = 10f64.powi(decimals);
    (x * m).round() / m
}

const SYLLABLES: [&str; 32] = [
    "Ka", "no", "Ba", "ki", "Ru", "wa", "Ga", "Da", "la", "Fa", "gge", "Zai", "ta", "Ma", "Ya",
    "Tu", "dun", "Sa", "bon", "ri", "Ko", "far", "Gi", "di", "Ile", "Oke", "Ado", "Iga", "Nna",
    "Obi", "Eke", "Uma",
];
const SUFFIXES: [&str; 8] = ["", "", "", " A", " B", " North", " South", " Central"];

/// Generates `wards` wards from `seed`. Equal arguments give byte-identical output.
pub fn synthesize(wards: usize, seed: u64) -> Result<SynthData> {
    let mut rng = Rng(seed ^ 0x5EED_0F0A_11D5);
    let wards = wards.max(1);
    let (w_deg, h_deg) = (LON.1 - LON.0, LAT.1 - LAT.0);
    // Pointy-top hexagons: columns are one width apart, rows three quarters of a height apart.
    let cols = ((wards as f64 * w_deg / h_deg * 0.866).sqrt().ceil() as usize).max(1);
    let rows = wards.div_ceil(cols);
    let half_w = w_deg / (2.0 * cols as f64 + 1.0);
    let quarter_h = h_deg / (3.0 * rows as f64 + 1.0);
    // Vertices come from integer lattice indices, so neighbours compute bit-identical values.
    let vx = |i: i64| LON.0 + i as f64 * half_w;
    let vy = |j: i64| LAT.0 + j as f64 * quarter_h;

    let cities: Vec<(f64, f64, f64)> = (0..40)
        .map(|_| {
            (
                LON.0 + rng.unit() * w_deg,
                LAT.0 + rng.unit() * h_deg,
                0.08 + rng.unit() * 0.35,
            )
        })
        .collect();
    let phase = rng.unit() * 6.0;

    let mut names = Vec::with_capacity(wards);
    let mut seen = HashSet::with_capacity(wards);
    let mut geometries = Vec::with_capacity(wards);
    let mut cols_data: [Vec<Option<f64>>; 7] = Default::default();
    let mut population = Vec::with_capacity(wards);
    let mut codes = Vec::with_capacity(wards);
    let mut lgas = Vec::with_capacity(wards);
    let mut urban_flag = Vec::with_capacity(wards);
    for k in 0..wards {
        let (r, c) = ((k / cols) as i64, (k % cols) as i64);
        let ic = 2 * c + 1 + (r & 1);
        let jc = 3 * r + 2;
        let ring = vec![
            [vx(ic), vy(jc + 2)],
            [vx(ic + 1), vy(jc + 1)],
            [vx(ic + 1), vy(jc - 1)],
            [vx(ic), vy(jc - 2)],
            [vx(ic - 1), vy(jc - 1)],
            [vx(ic - 1), vy(jc + 1)],
            [vx(ic), vy(jc + 2)],
        ];
        geometries.push(Some(Geometry::Polygon(Polygon {
            exterior: ring,
            holes: vec![],
        })));
        let (lon, lat) = (vx(ic), vy(jc));

        let mut name = String::new();
        for word in 0..1 + usize::from(rng.unit() < 0.3) {
            if word > 0 {
                name.push(' ');
            }
            let mut w = String::new();
            for _ in 0..2 + rng.below(2) {
                w.push_str(SYLLABLES[rng.below(SYLLABLES.len())]);
            }
            let mut chars = w.chars();
            if let Some(first) = chars.next() {
                name.push(first.to_ascii_uppercase());
                name.extend(chars.map(|c| c.to_ascii_lowercase()));
            }
        }
        name.push_str(SUFFIXES[rng.below(SUFFIXES.len())]);
        let mut unique = name.clone();
        let mut n = 2;
        while !seen.insert(unique.clone()) {
            unique = format!("{name} {n}");
            n += 1;
        }
        names.push(unique);
        codes.push(format!("SY{:05}", k + 1));
        lgas.push(format!("{:05}", 20000 + k / 12));

        let north = (lat - LAT.0) / h_deg;
        let urban_signal = cities
            .iter()
            .map(|&(cx, cy, rad)| (-((lon - cx).powi(2) + (lat - cy).powi(2)) / (rad * rad)).exp())
            .fold(0.0, f64::max);
        let urban = (100.0 * urban_signal + 5.0 * rng.normal()).clamp(0.0, 100.0);
        let rainfall =
            (2600.0 - 2000.0 * north + 150.0 * (3.0 * lon + phase).sin() + 80.0 * rng.normal())
                .clamp(300.0, 3200.0);
        let evi = (0.55 - 0.35 * north + 0.05 * (2.0 * lat + phase).sin() + 0.03 * rng.normal())
            .clamp(0.05, 0.8);
        let housing = (0.3 + 0.4 * urban / 100.0 + 0.1 * rng.normal()).clamp(0.0, 1.0);
        let water = (7.5 + 0.8 * rng.normal()).exp().clamp(50.0, 30000.0);
        let settlement = (0.7 - 0.5 * urban / 100.0 + 0.15 * rng.normal()).clamp(0.0, 1.0);
        let rain_norm = (rainfall - 300.0) / 2900.0;
        let tpr = (0.15 + 0.45 * rain_norm * (1.0 - 0.6 * urban / 100.0) + 0.05 * rng.normal())
            .clamp(0.01, 0.95);
        let pop = (15000.0 * (1.0 + 3.0 * urban / 100.0) * (0.5 * rng.normal()).exp())
            .clamp(1000.0, 400000.0);
        // About 0.5% missing cells in three columns, as real uploads have gaps.
        let gap = |rng: &mut Rng, v: f64| (rng.unit() >= 0.005).then_some(v);
        cols_data[0].push(gap(&mut rng, round_to(tpr, 4)));
        cols_data[1].push(Some(round_to(rainfall, 1)));
        cols_data[2].push(gap(&mut rng, round_to(evi, 4)));
        cols_data[3].push(gap(&mut rng, round_to(housing, 4)));
        cols_data[4].push(Some(round_to(water, 1)));
        cols_data[5].push(Some(round_to(settlement, 4)));
        cols_data[6].push(Some(round_to(urban, 2)));
        population.push(Some(pop.round() as i64));
        urban_flag.push(if urban >= 50.0 { "Yes" } else { "No" });
    }

    // About 0.5% of table names carry a typo the fuzzy matcher should fix.
    let table_names: Vec<Option<String>> = names
        .iter()
        .map(|n| {
            let roll = rng.unit();
            Some(if roll < 0.002 {
                n.replacen(' ', "-", 1)
            } else if roll < 0.004 {
                format!("{n}a")
            } else if roll < 0.005 {
                n.to_lowercase()
            } else {
                n.clone()
            })
        })
        .collect();

    let text = |v: &[String]| ColumnData::Text(v.iter().map(|s| Some(s.clone())).collect());
    let mut table = Table::with_rows(wards);
    table.push("WardName", ColumnData::Text(table_names))?;
    table.push("WardCode", text(&codes))?;
    table.push("LGACode", text(&lgas))?;
    table.push(
        "StateCode",
        ColumnData::Text(vec![Some("SY".into()); wards]),
    )?;
    let [tpr, rain, evi, housing, water, settlement, urban] = cols_data;
    table.push("tpr", ColumnData::Float(tpr))?;
    table.push("rainfall", ColumnData::Float(rain))?;
    table.push("evi", ColumnData::Float(evi))?;
    table.push("housing_quality", ColumnData::Float(housing))?;
    table.push("distance_to_water", ColumnData::Float(water))?;
    table.push("settlement_type", ColumnData::Float(settlement))?;
    table.push("urban_percentage", ColumnData::Float(urban))?;
    table.push("population", ColumnData::Int(population))?;

    let mut attributes = Table::with_rows(wards);
    attributes.push(
        "StateCode",
        ColumnData::Text(vec![Some("SY".into()); wards]),
    )?;
    attributes.push("WardCode", text(&codes))?;
    attributes.push("WardName", text(&names))?;
    attributes.push("LGACode", text(&lgas))?;
    attributes.push(
        "Urban",
        ColumnData::Text(urban_flag.iter().map(|s| Some(s.to_string())).collect()),
    )?;

    let shp = write_shapefile(&geometries, &attributes)?;
    let shapefile_zip = write_zip(&[
        ("synthetic_wards.shp", &shp.shp),
        ("synthetic_wards.shx", &shp.shx),
        ("synthetic_wards.dbf", &shp.dbf),
        ("synthetic_wards.prj", WGS84_PRJ.as_bytes()),
        ("synthetic_wards.cpg", b"UTF-8"),
    ])?;
    Ok(SynthData {
        csv: write_csv(&table),
        table,
        attributes,
        geometries,
        shapefile_zip,
    })
}
