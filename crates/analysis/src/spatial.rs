//! The spatial columns of the unified dataset (analysis.md §1.4 step 7), computed from ward
//! boundaries as ChatMRPT's geopandas computes them.

use mrpt_table::{Geometry, signed_area};
use serde::{Deserialize, Serialize};

/// The spatial columns of analysis.md §1.4 step 7, for one ward.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WardSpatial {
    /// Area in Web Mercator (EPSG:3857) / 1e6, as ChatMRPT computes it.
    pub area_km2: f64,
    /// Boundary length (all rings) in Web Mercator / 1000.
    pub perimeter_km: f64,
    /// Planar area-weighted centroid in the native (lon/lat) coordinates.
    pub centroid_lat: f64,
    /// Planar area-weighted centroid longitude, degrees.
    pub centroid_lon: f64,
}

const WEB_MERCATOR_R: f64 = 6_378_137.0;

fn web_mercator(v: [f64; 2]) -> [f64; 2] {
    let x = WEB_MERCATOR_R * v[0].to_radians();
    let y = WEB_MERCATOR_R
        * (std::f64::consts::FRAC_PI_4 + v[1].to_radians() / 2.0)
            .tan()
            .ln();
    [x, y]
}

impl WardSpatial {
    /// Area, perimeter and centroid of a ward the way geopandas computes them in ChatMRPT.
    pub fn of(geometry: &Geometry) -> WardSpatial {
        let mut area = 0.0;
        let mut perimeter = 0.0;
        let mut ax = 0.0;
        let mut ay = 0.0;
        let mut native_area = 0.0;
        for p in geometry.polygons() {
            for (i, ring) in p.rings().enumerate() {
                let projected: Vec<[f64; 2]> = ring.iter().copied().map(web_mercator).collect();
                let a = signed_area(&projected).abs();
                area += if i == 0 { a } else { -a };
                perimeter += projected
                    .windows(2)
                    .map(|w| (w[1][0] - w[0][0]).hypot(w[1][1] - w[0][1]))
                    .sum::<f64>();
                // Centroid as GEOS does: triangle fan from the ring's first vertex, holes
                // subtracting (signs follow orientation, normalised so the exterior is positive).
                let sa = signed_area(ring);
                let sign = if (i == 0) == (sa >= 0.0) { 1.0 } else { -1.0 };
                let (cx, cy, a2) = ring_centroid_parts(ring);
                ax += sign * cx;
                ay += sign * cy;
                native_area += sign * a2;
            }
        }
        let (centroid_lon, centroid_lat) = if native_area != 0.0 {
            (ax / (3.0 * native_area), ay / (3.0 * native_area))
        } else {
            let n = geometry.vertices().count().max(1) as f64;
            let (sx, sy) = geometry
                .vertices()
                .fold((0.0, 0.0), |(sx, sy), v| (sx + v[0], sy + v[1]));
            (sx / n, sy / n)
        };
        WardSpatial {
            area_km2: area / 1e6,
            perimeter_km: perimeter / 1000.0,
            centroid_lat,
            centroid_lon,
        }
    }
}

/// Returns (Σ cx·a, Σ cy·a, Σ a) over the fan triangles, with `a` twice the signed triangle area
/// and c the triangle's vertex sum, oriented positive for counter-clockwise rings.
fn ring_centroid_parts(ring: &[[f64; 2]]) -> (f64, f64, f64) {
    if ring.len() < 3 {
        return (0.0, 0.0, 0.0);
    }
    let base = ring[0];
    let (mut sx, mut sy, mut sa) = (0.0, 0.0, 0.0);
    for i in 1..ring.len() - 1 {
        let p1 = ring[i];
        let p2 = ring[i + 1];
        let a2 = (p1[0] - base[0]) * (p2[1] - base[1]) - (p2[0] - base[0]) * (p1[1] - base[1]);
        sx += a2 * (base[0] + p1[0] + p2[0]);
        sy += a2 * (base[1] + p1[1] + p2[1]);
        sa += a2;
    }
    let sign = if sa >= 0.0 { 1.0 } else { -1.0 };
    (sign * sx, sign * sy, sign * sa)
}

#[cfg(test)]
#[cfg(test)]
mod tests {
    use super::*;
    use mrpt_table::{Polygon, Ring};

    fn square(x0: f64, y0: f64, s: f64) -> Ring {
        vec![
            [x0, y0],
            [x0, y0 + s],
            [x0 + s, y0 + s],
            [x0 + s, y0],
            [x0, y0],
        ]
    }

    #[test]
    fn centroid_of_square_with_hole() {
        let g = Geometry::Polygon(Polygon {
            exterior: square(0.0, 0.0, 2.0),
            holes: vec![square(1.0, 1.0, 1.0)],
        });
        let m = WardSpatial::of(&g);
        // Area 3; L-shape centroid = (2*... ) computed by decomposition: (4*(1,1) - 1*(1.5,1.5))/3.
        assert!((m.centroid_lon - (4.0 - 1.5) / 3.0).abs() < 1e-12);
        assert!((m.centroid_lat - (4.0 - 1.5) / 3.0).abs() < 1e-12);
    }
}
