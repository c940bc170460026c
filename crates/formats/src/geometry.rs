//! Ward polygons, their WKB encoding, and the spatial columns of the unified dataset.
//!
//! Coordinates are (x, y) = (lon, lat) f64 exactly as stored in the source file: contiguity is
//! decided on exactly shared vertices, so nothing here rounds or re-orders vertices.

use crate::error::{Error, Result};

/// A closed ring (first vertex == last vertex, as in shapefiles and WKB).
pub type Ring = Vec<[f64; 2]>;

/// One polygon: an exterior ring and its holes.
#[derive(Debug, Clone, PartialEq)]
pub struct Polygon {
    pub exterior: Ring,
    pub holes: Vec<Ring>,
}

impl Polygon {
    pub fn rings(&self) -> impl Iterator<Item = &Ring> {
        std::iter::once(&self.exterior).chain(self.holes.iter())
    }
}

/// A ward's geometry.
#[derive(Debug, Clone, PartialEq)]
pub enum Geometry {
    Polygon(Polygon),
    MultiPolygon(Vec<Polygon>),
}

impl Geometry {
    pub fn polygons(&self) -> &[Polygon] {
        match self {
            Geometry::Polygon(p) => std::slice::from_ref(p),
            Geometry::MultiPolygon(v) => v,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Geometry::Polygon(_) => "Polygon",
            Geometry::MultiPolygon(_) => "MultiPolygon",
        }
    }

    /// Every vertex of every ring.
    pub fn vertices(&self) -> impl Iterator<Item = [f64; 2]> + '_ {
        self.polygons()
            .iter()
            .flat_map(|p| p.rings())
            .flat_map(|r| r.iter().copied())
    }

    /// [min_x, min_y, max_x, max_y]; `None` when there is no vertex.
    pub fn bbox(&self) -> Option<[f64; 4]> {
        let mut it = self.vertices();
        let first = it.next()?;
        Some(it.fold([first[0], first[1], first[0], first[1]], |b, v| {
            [
                b[0].min(v[0]),
                b[1].min(v[1]),
                b[2].max(v[0]),
                b[3].max(v[1]),
            ]
        }))
    }

    /// ISO WKB, little endian (the GeoParquet encoding).
    pub fn to_wkb(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(9 + 16 * self.vertices().count() + 8);
        match self {
            Geometry::Polygon(p) => write_polygon(&mut out, p),
            Geometry::MultiPolygon(ps) => {
                out.push(1);
                out.extend_from_slice(&6u32.to_le_bytes());
                out.extend_from_slice(&(ps.len() as u32).to_le_bytes());
                for p in ps {
                    write_polygon(&mut out, p);
                }
            }
        }
        out
    }

    /// Decodes Polygon / MultiPolygon WKB (either byte order; Z/M values are dropped).
    pub fn from_wkb(bytes: &[u8]) -> std::result::Result<Geometry, String> {
        let mut r = WkbReader { bytes, pos: 0 };
        let g = r.geometry()?;
        if r.pos != bytes.len() {
            return Err(format!("{} trailing bytes", bytes.len() - r.pos));
        }
        Ok(g)
    }
}

fn write_polygon(out: &mut Vec<u8>, p: &Polygon) {
    out.push(1);
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&(1 + p.holes.len() as u32).to_le_bytes());
    for ring in p.rings() {
        out.extend_from_slice(&(ring.len() as u32).to_le_bytes());
        for v in ring {
            out.extend_from_slice(&v[0].to_le_bytes());
            out.extend_from_slice(&v[1].to_le_bytes());
        }
    }
}

struct WkbReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl WkbReader<'_> {
    fn take<const N: usize>(&mut self) -> std::result::Result<[u8; N], String> {
        let end = self.pos + N;
        let s = self
            .bytes
            .get(self.pos..end)
            .ok_or_else(|| format!("truncated at byte {}", self.pos))?;
        self.pos = end;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn header(&mut self) -> std::result::Result<(bool, u32, usize), String> {
        let le = match self.take::<1>()?[0] {
            0 => false,
            1 => true,
            b => return Err(format!("bad byte-order mark {b}")),
        };
        let raw = self.u32(le)?;
        // ISO (1000/2000/3000 offsets) and EWKB (high flag bits) both mark Z and M.
        let has_z = raw & 0x8000_0000 != 0 || matches!(raw % 10_000 / 1000, 1 | 3);
        let has_m = raw & 0x4000_0000 != 0 || matches!(raw % 10_000 / 1000, 2 | 3);
        let base = (raw & 0x0FFF_FFFF) % 1000;
        Ok((le, base, 2 + has_z as usize + has_m as usize))
    }

    fn u32(&mut self, le: bool) -> std::result::Result<u32, String> {
        let b = self.take::<4>()?;
        Ok(if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    }

    fn f64(&mut self, le: bool) -> std::result::Result<f64, String> {
        let b = self.take::<8>()?;
        Ok(if le {
            f64::from_le_bytes(b)
        } else {
            f64::from_be_bytes(b)
        })
    }

    fn count(&mut self, le: bool, unit: usize) -> std::result::Result<usize, String> {
        let n = self.u32(le)? as usize;
        // A count larger than the bytes left is corrupt; checking first bounds the allocation.
        if n.saturating_mul(unit) > self.bytes.len() - self.pos {
            return Err(format!("count {n} exceeds the data"));
        }
        Ok(n)
    }

    fn geometry(&mut self) -> std::result::Result<Geometry, String> {
        let (le, kind, dims) = self.header()?;
        match kind {
            3 => Ok(Geometry::Polygon(self.polygon_body(le, dims)?)),
            6 => {
                let n = self.count(le, 9)?;
                let mut ps = Vec::with_capacity(n);
                for _ in 0..n {
                    let (le2, k2, d2) = self.header()?;
                    if k2 != 3 {
                        return Err(format!("MultiPolygon member of type {k2}"));
                    }
                    ps.push(self.polygon_body(le2, d2)?);
                }
                Ok(Geometry::MultiPolygon(ps))
            }
            k => Err(format!("geometry type {k} is not a polygon")),
        }
    }

    fn polygon_body(&mut self, le: bool, dims: usize) -> std::result::Result<Polygon, String> {
        let n_rings = self.count(le, 4)?;
        let mut rings = Vec::with_capacity(n_rings);
        for _ in 0..n_rings {
            let n = self.count(le, 8 * dims)?;
            let mut ring = Vec::with_capacity(n);
            for _ in 0..n {
                let x = self.f64(le)?;
                let y = self.f64(le)?;
                for _ in 2..dims {
                    self.f64(le)?;
                }
                ring.push([x, y]);
            }
            rings.push(ring);
        }
        let mut it = rings.into_iter();
        let exterior = it.next().unwrap_or_default();
        Ok(Polygon {
            exterior,
            holes: it.collect(),
        })
    }
}

/// Decodes one row's WKB, naming the row on failure.
pub(crate) fn decode_row(row: usize, bytes: &[u8]) -> Result<Geometry> {
    Geometry::from_wkb(bytes).map_err(|reason| Error::BadWkb { row, reason })
}

/// Shoelace area of a ring (positive when counter-clockwise).
pub fn signed_area(ring: &[[f64; 2]]) -> f64 {
    if ring.len() < 3 {
        return 0.0;
    }
    // Shifting by the first vertex keeps precision for coordinates far from the origin.
    let [x0, y0] = ring[0];
    let mut s = 0.0;
    for w in ring.windows(2) {
        s += (w[0][0] - x0) * (w[1][1] - y0) - (w[1][0] - x0) * (w[0][1] - y0);
    }
    s / 2.0
}

/// The spatial columns of analysis.md §1.4 step 7, for one ward.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpatialMetrics {
    /// Area in Web Mercator (EPSG:3857) / 1e6, as ChatMRPT computes it.
    pub area_km2: f64,
    /// Boundary length (all rings) in Web Mercator / 1000.
    pub perimeter_km: f64,
    /// Planar area-weighted centroid in the native (lon/lat) coordinates.
    pub centroid_lat: f64,
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

impl Geometry {
    /// Area, perimeter and centroid the way geopandas computes them in ChatMRPT.
    pub fn spatial_metrics(&self) -> SpatialMetrics {
        let mut area = 0.0;
        let mut perimeter = 0.0;
        let mut ax = 0.0;
        let mut ay = 0.0;
        let mut native_area = 0.0;
        for p in self.polygons() {
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
            let n = self.vertices().count().max(1) as f64;
            let (sx, sy) = self
                .vertices()
                .fold((0.0, 0.0), |(sx, sy), v| (sx + v[0], sy + v[1]));
            (sx / n, sy / n)
        };
        SpatialMetrics {
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
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
    fn wkb_round_trip_is_exact() {
        let g = Geometry::MultiPolygon(vec![
            Polygon {
                exterior: square(8.1, 12.3, 0.1),
                holes: vec![square(8.12, 12.32, 0.01)],
            },
            Polygon {
                exterior: square(9.0, 11.0, 0.7),
                holes: vec![],
            },
        ]);
        let back = Geometry::from_wkb(&g.to_wkb()).unwrap();
        assert_eq!(back, g);
        assert!(Geometry::from_wkb(&g.to_wkb()[..20]).is_err());
        assert!(Geometry::from_wkb(&[1, 3, 0, 0, 0, 255, 255, 255, 255]).is_err());
    }

    #[test]
    fn centroid_of_square_with_hole() {
        let g = Geometry::Polygon(Polygon {
            exterior: square(0.0, 0.0, 2.0),
            holes: vec![square(1.0, 1.0, 1.0)],
        });
        let m = g.spatial_metrics();
        // Area 3; L-shape centroid = (2*... ) computed by decomposition: (4*(1,1) - 1*(1.5,1.5))/3.
        assert!((m.centroid_lon - (4.0 - 1.5) / 3.0).abs() < 1e-12);
        assert!((m.centroid_lat - (4.0 - 1.5) / 3.0).abs() < 1e-12);
    }
}
