//! Seeded synthetic ward data for property tests and the benchmark: a square grid of wards
//! (shared exact vertices, so queen contiguity has 3–8 neighbours per ward), numeric variables
//! with a few gaps, and a population table.
#![allow(dead_code)]

use mrpt_analysis::{AnalysisInput, PopulationRow};
use mrpt_table::{Column, ColumnData, Geometry, Polygon, Table, WardTable};

/// xorshift64* — small, seeded, deterministic.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

pub const VARIABLE_NAMES: &[&str] = &[
    "tpr",
    "rainfall",
    "distance_to_water",
    "housing_quality",
    "evi",
    "ndwi",
    "soil_wetness",
    "nighttime_lights",
    "elevation",
    "temp",
    "ndmi",
    "pfpr",
    "dumpsites",
    "nets_per_capita",
    "settlement_type_poor",
];

fn square(x: f64, y: f64) -> Option<Geometry> {
    // Coordinates on a 0.01-degree grid: neighbours compute identical f64 corners.
    let c = |i: f64, j: f64| [8.0 + (x + i) * 0.01, 11.0 + (y + j) * 0.01];
    Some(Geometry::Polygon(Polygon {
        exterior: vec![
            c(0.0, 0.0),
            c(1.0, 0.0),
            c(1.0, 1.0),
            c(0.0, 1.0),
            c(0.0, 0.0),
        ],
        holes: vec![],
    }))
}

/// `n` wards x `p` variables; `missing` is the chance a numeric cell is empty.
pub fn dataset(n: usize, p: usize, missing: f64, seed: u64) -> AnalysisInput {
    let mut rng = Rng::new(seed);
    let side = (n as f64).sqrt().ceil() as usize;
    let geometries: Vec<Option<Geometry>> = (0..n)
        .map(|i| square((i % side) as f64, (i / side) as f64))
        .collect();
    let mut columns = vec![Column::new(
        "WardName",
        ColumnData::Text((0..n).map(|i| Some(format!("Ward {i:05}"))).collect()),
    )];
    for v in 0..p {
        let name = VARIABLE_NAMES[v % VARIABLE_NAMES.len()].to_string();
        let scale = 1.0 + v as f64 * 3.0;
        let values: Vec<Option<f64>> = (0..n)
            .map(|_| {
                if rng.unit() < missing {
                    None
                } else {
                    Some(0.05 + rng.unit() * scale)
                }
            })
            .collect();
        columns.push(Column::new(name, ColumnData::Float(values)));
    }
    // A shuffled geometry order, so table rows and shapes are joined by index, not position.
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng.below(i + 1);
        order.swap(i, j);
    }
    let mut shuffled: Vec<Option<Geometry>> = vec![None; n];
    let mut geometry_index = vec![None; n];
    for (row, &slot) in order.iter().enumerate() {
        shuffled[slot] = geometries[row].clone();
        geometry_index[row] = Some(slot);
    }
    AnalysisInput {
        table: Table::new(columns)
            .and_then(WardTable::from_table)
            .expect("synthetic columns have one value per ward and a WardName"),
        geometries: Some(shuffled),
        geometry_index,
        shapefile_state: None,
    }
}

pub fn population(n: usize, seed: u64) -> Vec<PopulationRow> {
    let mut rng = Rng::new(seed ^ 0xABCD);
    (0..n)
        .map(|i| PopulationRow {
            ward_name: format!("Ward {i:05}"),
            admin2: None,
            ward_code: None,
            population: (500 + rng.below(20_000)) as f64,
            latitude: None,
            longitude: None,
        })
        .collect()
}
