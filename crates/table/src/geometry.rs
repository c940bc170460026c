//! Ward boundaries as every crate sees them. Coordinates are `[x, y]` = `[lon, lat]` (WGS84
//! degrees once a reader has re-projected them), exactly as read: contiguity is decided on
//! exactly shared vertices, so nothing here rounds or re-orders vertices.

use serde::{Deserialize, Serialize};

/// A closed ring (first vertex == last vertex, as in shapefiles and WKB).
pub type Ring = Vec<[f64; 2]>;

/// One polygon: an exterior ring and its holes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Polygon {
    /// The outer boundary (closed ring).
    pub exterior: Ring,
    /// Inner boundaries cut out of the exterior (closed rings); empty for most wards.
    #[serde(default)]
    pub holes: Vec<Ring>,
}

impl Polygon {
    /// The exterior ring, then the holes.
    pub fn rings(&self) -> impl Iterator<Item = &Ring> {
        std::iter::once(&self.exterior).chain(self.holes.iter())
    }
}

/// A ward's boundary. In JSON it is a GeoJSON geometry object:
/// `{"type": "Polygon", "coordinates": [exterior, hole...]}` or
/// `{"type": "MultiPolygon", "coordinates": [[exterior, hole...], ...]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "GeoJson", try_from = "GeoJson")]
pub enum Geometry {
    /// A single polygon.
    Polygon(Polygon),
    /// Several polygons (islands, enclaves), in file order.
    MultiPolygon(Vec<Polygon>),
}

/// The GeoJSON form of a [`Geometry`].
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", content = "coordinates")]
enum GeoJson {
    Polygon(Vec<Ring>),
    MultiPolygon(Vec<Vec<Ring>>),
}

fn rings_of(p: Polygon) -> Vec<Ring> {
    std::iter::once(p.exterior).chain(p.holes).collect()
}

fn polygon_of(mut rings: Vec<Ring>) -> Result<Polygon, String> {
    if rings.is_empty() {
        return Err("a GeoJSON polygon needs at least its exterior ring".to_string());
    }
    let exterior = rings.remove(0);
    Ok(Polygon {
        exterior,
        holes: rings,
    })
}

impl From<Geometry> for GeoJson {
    fn from(g: Geometry) -> GeoJson {
        match g {
            Geometry::Polygon(p) => GeoJson::Polygon(rings_of(p)),
            Geometry::MultiPolygon(ps) => {
                GeoJson::MultiPolygon(ps.into_iter().map(rings_of).collect())
            }
        }
    }
}

impl TryFrom<GeoJson> for Geometry {
    type Error = String;

    fn try_from(g: GeoJson) -> Result<Geometry, String> {
        Ok(match g {
            GeoJson::Polygon(rings) => Geometry::Polygon(polygon_of(rings)?),
            GeoJson::MultiPolygon(ps) => {
                Geometry::MultiPolygon(ps.into_iter().map(polygon_of).collect::<Result<_, _>>()?)
            }
        })
    }
}

impl Geometry {
    /// The polygon(s): one for `Polygon`, all of them for `MultiPolygon`.
    pub fn polygons(&self) -> &[Polygon] {
        match self {
            Geometry::Polygon(p) => std::slice::from_ref(p),
            Geometry::MultiPolygon(v) => v,
        }
    }

    /// The polygon(s), mutable (readers re-project vertices in place).
    pub fn polygons_mut(&mut self) -> &mut [Polygon] {
        match self {
            Geometry::Polygon(p) => std::slice::from_mut(p),
            Geometry::MultiPolygon(v) => v,
        }
    }

    /// The OGC type name (`Polygon`, `MultiPolygon`).
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

    /// `[min_x, min_y, max_x, max_y]`; `None` when there is no vertex.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bbox_spans_every_part() {
        let square = |x: f64, y: f64| Polygon {
            exterior: vec![[x, y], [x + 1.0, y], [x + 1.0, y + 1.0], [x, y]],
            holes: vec![],
        };
        let g = Geometry::MultiPolygon(vec![square(0.0, 0.0), square(5.0, -2.0)]);
        assert_eq!(g.bbox(), Some([0.0, -2.0, 6.0, 1.0]));
        assert_eq!(g.type_name(), "MultiPolygon");
        assert_eq!(Geometry::MultiPolygon(vec![]).bbox(), None);
    }
}
