//! A synthetic national input: a hexagon grid over Nigeria's bounding box, edges densified with
//! jitter that is identical on both sides of every shared edge (as in a real shapefile).

#![allow(dead_code)]

use mrpt_maps::{ItnWard, MapInput, Vulnerability, WardInput};
use mrpt_table::{Geometry, Polygon};

/// Nigeria, roughly: lon 2.67–14.68 E, lat 4.27–13.89 N.
const LON0: f64 = 2.67;
const LAT0: f64 = 4.27;
const ROWS: i64 = 94;
const HEIGHT_DEG: f64 = 9.62;

/// Pointy-top hexagon corners on the integer vertex lattice (x unit sqrt3/2·size, y unit size/2).
const CORNERS: [(i64, i64); 6] = [(0, -2), (1, -1), (1, 1), (0, 2), (-1, 1), (-1, -1)];

fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Deterministic value in [0, 1).
pub fn unit(seed: u64) -> f64 {
    (mix(seed) >> 11) as f64 / (1u64 << 53) as f64
}

struct Lattice {
    size: f64,
    ux: f64,
    uy: f64,
}

impl Lattice {
    fn point(&self, x: i64, y: i64) -> [f64; 2] {
        [LON0 + x as f64 * self.ux, LAT0 + y as f64 * self.uy]
    }

    /// Points strictly inside edge a→b, computed in canonical order so both neighbours agree.
    fn edge_interior(&self, a: (i64, i64), b: (i64, i64), segments: usize) -> Vec<[f64; 2]> {
        let (p, q, rev) = if a <= b { (a, b, false) } else { (b, a, true) };
        let pa = self.point(p.0, p.1);
        let pb = self.point(q.0, q.1);
        let (dx, dy) = (pb[0] - pa[0], pb[1] - pa[1]);
        let len = (dx * dx + dy * dy).sqrt();
        let (nx, ny) = (-dy / len, dx / len);
        let mut pts: Vec<[f64; 2]> = (1..segments)
            .map(|k| {
                let t = k as f64 / segments as f64;
                let seed = (p.0 as u64).wrapping_mul(73_856_093)
                    ^ (p.1 as u64).wrapping_mul(19_349_663)
                    ^ (q.0 as u64).wrapping_mul(83_492_791)
                    ^ (q.1 as u64).wrapping_mul(2_654_435_761)
                    ^ k as u64;
                let j = (unit(seed) * 2.0 - 1.0) * 0.06 * self.size;
                [pa[0] + dx * t + nx * j, pa[1] + dy * t + ny * j]
            })
            .collect();
        if rev {
            pts.reverse();
        }
        pts
    }
}

/// `n` hexagonal wards, each edge split into `segments` pieces.
pub fn hex_wards(n: usize, segments: usize) -> Vec<(String, Geometry)> {
    let size = HEIGHT_DEG / (1.5 * ROWS as f64);
    let lat = Lattice {
        size,
        ux: size * 3f64.sqrt() / 2.0,
        uy: size / 2.0,
    };
    let cols = ((n as i64 + ROWS - 1) / ROWS).max(1);
    let mut out = Vec::with_capacity(n);
    'outer: for row in 0..ROWS.max(1) {
        for col in 0..cols {
            if out.len() == n {
                break 'outer;
            }
            let cx = 2 * col + (row & 1) + 1;
            let cy = 3 * row + 2;
            let mut ring = Vec::with_capacity(6 * segments + 1);
            for k in 0..6 {
                let a = (cx + CORNERS[k].0, cy + CORNERS[k].1);
                let b = (cx + CORNERS[(k + 1) % 6].0, cy + CORNERS[(k + 1) % 6].1);
                ring.push(lat.point(a.0, a.1));
                ring.extend(lat.edge_interior(a, b, segments));
            }
            ring.push(ring[0]);
            out.push((
                format!("Ward {row}-{col}"),
                Geometry::Polygon(Polygon {
                    exterior: ring,
                    holes: vec![],
                }),
            ));
        }
    }
    out
}

/// A full map input: composite and PCA rankings, an ITN plan with two tiers, some wards
/// without data.
pub fn national_input(n: usize, segments: usize) -> MapInput {
    let shapes = hex_wards(n, segments);
    let mut scores: Vec<(usize, f64)> = (0..n).map(|i| (i, unit(i as u64 * 7 + 1))).collect();
    scores.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut rank = vec![0u32; n];
    for (r, (i, _)) in scores.iter().enumerate() {
        rank[*i] = r as u32 + 1;
    }
    let third = (n / 3) as u32;
    let category = |r: u32| {
        if r <= third {
            "High Risk"
        } else if r > n as u32 - third {
            "Low Risk"
        } else {
            "Medium Risk"
        }
    };
    let wards = shapes
        .into_iter()
        .enumerate()
        .map(|(i, (name, geom))| {
            let has_data = i % 97 != 5;
            let composite = has_data.then(|| Vulnerability {
                score: unit(i as u64 * 7 + 1),
                rank: rank[i],
                category: category(rank[i]).to_string(),
            });
            let pca = has_data.then(|| Vulnerability {
                score: unit(i as u64 * 11 + 3) * 4.0 - 2.0,
                rank: n as u32 - rank[i] + 1,
                category: category(n as u32 - rank[i] + 1).to_string(),
            });
            let need = 1000 + (unit(i as u64 * 13) * 5000.0) as u64;
            let alloc = match i % 5 {
                0 | 1 => need,
                2 => need / 2,
                _ => 0,
            };
            let itn = has_data.then(|| ItnWard {
                population: Some(need as f64 * 1.8),
                nets_needed: need,
                nets_allocated: alloc,
                coverage_percent: alloc as f64 / need as f64 * 100.0,
                phase: if alloc == 0 {
                    String::new()
                } else {
                    "Rural Priority (Full)".to_string()
                },
                tier: Some(if i % 3 == 0 { 2 } else { 1 }),
                urban_pct: Some(unit(i as u64 * 17) * 100.0),
                people_covered: None,
            });
            WardInput {
                name,
                geometry: Some(geom),
                lga: None,
                composite,
                pca,
                itn,
            }
        })
        .collect();
    MapInput {
        area: Some("Nigeria (synthetic)".to_string()),
        wards,
    }
}
