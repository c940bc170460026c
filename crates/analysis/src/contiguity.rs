//! Queen contiguity as libpysal computes it: two wards are neighbours when they share at least
//! one vertex with exactly equal coordinates (every ring, every part). No snapping tolerance.

use mrpt_table::Geometry;

fn vertex_key(v: [f64; 2]) -> (u64, u64) {
    // -0.0 == 0.0 as coordinates; fold it so bit patterns agree.
    let norm = |x: f64| if x == 0.0 { 0.0f64 } else { x };
    (norm(v[0]).to_bits(), norm(v[1]).to_bits())
}

/// Neighbour lists (sorted, no self) for each geometry.
pub fn queen_neighbours(geometries: &[Option<Geometry>]) -> Vec<Vec<usize>> {
    // Sort (vertex, geometry) pairs so equal vertices sit together; cheaper than a hash map of
    // vectors at national scale.
    let mut pairs: Vec<((u64, u64), u32)> = Vec::new();
    for (g, geom) in geometries.iter().enumerate() {
        for v in geom.iter().flat_map(|g| g.vertices()) {
            if v[0].is_nan() || v[1].is_nan() {
                continue;
            }
            pairs.push((vertex_key(v), g as u32));
        }
    }
    pairs.sort_unstable();
    pairs.dedup();
    let mut edges: Vec<(u32, u32)> = Vec::new();
    let mut i = 0;
    while i < pairs.len() {
        let mut j = i + 1;
        while j < pairs.len() && pairs[j].0 == pairs[i].0 {
            j += 1;
        }
        for a in i..j {
            for b in a + 1..j {
                edges.push((pairs[a].1, pairs[b].1));
                edges.push((pairs[b].1, pairs[a].1));
            }
        }
        i = j;
    }
    edges.sort_unstable();
    edges.dedup();
    let mut neighbours: Vec<Vec<usize>> = vec![Vec::new(); geometries.len()];
    for (a, b) in edges {
        neighbours[a as usize].push(b as usize);
    }
    neighbours
}

#[cfg(test)]
mod tests {
    use super::*;
    use mrpt_table::Polygon;

    fn square(x: f64, y: f64) -> Option<Geometry> {
        Some(Geometry::Polygon(Polygon {
            exterior: vec![
                [x, y],
                [x + 1.0, y],
                [x + 1.0, y + 1.0],
                [x, y + 1.0],
                [x, y],
            ],
            holes: vec![],
        }))
    }

    #[test]
    fn grid_queen() {
        // 3x3 grid, centre touches all 8, corners touch 3.
        let geoms: Vec<Option<Geometry>> = (0..9)
            .map(|i| square((i % 3) as f64, (i / 3) as f64))
            .collect();
        let n = queen_neighbours(&geoms);
        assert_eq!(n[4], vec![0, 1, 2, 3, 5, 6, 7, 8]);
        assert_eq!(n[0], vec![1, 3, 4]);
    }

    #[test]
    fn near_but_not_equal_is_not_a_neighbour() {
        let a = square(0.0, 0.0);
        let b = square(1.0 + 1e-12, 0.0);
        assert_eq!(queen_neighbours(&[a, b]), vec![Vec::<usize>::new(), vec![]]);
    }
}
