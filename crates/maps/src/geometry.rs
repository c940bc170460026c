//! Projection, topology-preserving simplification, quantisation and compact SVG path data.
//!
//! Projection: north-up equirectangular ("plate carrée") with the x axis scaled by
//! cos(φ₀), φ₀ the latitude of the centre of the drawn wards' bounding box. Within a state or a
//! country near the equator this keeps shapes and areas true to within a few percent (Nigeria,
//! 4°–14° N: x-scale error at the edges under 3 %), needs no datum handling, and keeps north up.
//! The result is fitted so that the longer side spans [`EXTENT`] SVG user units plus a margin.
//!
//! Simplification: Douglas–Peucker on *arcs*, not rings. A vertex where the boundary's neighbours
//! change (three wards meet, or a shared border begins or ends) is a junction and always kept; the
//! chain between two junctions is simplified once in a canonical direction, so both wards sharing
//! a border get the identical simplified line and no slivers or gaps appear. Coordinates are then
//! rounded to whole user units (1/[`EXTENT`] of the map's longer side) and written as relative
//! path commands.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{BuildHasherDefault, Hasher};

use crate::Error;
use mrpt_table::Geometry;

/// Every ring of a ward: each polygon's exterior, then its holes.
pub(crate) fn rings(g: &Geometry) -> impl Iterator<Item = &Vec<[f64; 2]>> {
    g.polygons().iter().flat_map(|p| p.rings())
}

/// SVG user units along the longer side of the drawn area.
pub(crate) const EXTENT: f64 = 10_000.0;
/// Blank border around the drawing, in user units.
pub(crate) const MARGIN: f64 = 40.0;
/// Douglas–Peucker tolerance in user units (0.02 % of the longer side: well under a pixel on a
/// full-screen map).
pub(crate) const TOLERANCE: f64 = 2.0;

/// Fitted projection from (lon, lat) degrees to SVG user units (y grows southwards).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Projection {
    lon_min: f64,
    lat_max: f64,
    kx: f64,
    scale: f64,
    /// viewBox width and height in user units.
    pub width: u32,
    /// viewBox height in user units (the longer side of the area spans a fixed extent, plus margins).
    pub height: u32,
}

impl Projection {
    /// Fits the projection to a bounding box `[lon_min, lat_min, lon_max, lat_max]`.
    pub fn fit(bbox: [f64; 4]) -> Projection {
        let [lon_min, lat_min, lon_max, lat_max] = bbox;
        let lat0 = (lat_min + lat_max) / 2.0;
        let kx = lat0.to_radians().cos().max(0.01);
        let w = (lon_max - lon_min) * kx;
        let h = lat_max - lat_min;
        let longer = w.max(h);
        // A single point or a line still needs a finite scale.
        let scale = if longer > 0.0 { EXTENT / longer } else { 1.0 };
        let width = (w * scale + 2.0 * MARGIN).ceil().max(1.0) as u32;
        let height = (h * scale + 2.0 * MARGIN).ceil().max(1.0) as u32;
        Projection {
            lon_min,
            lat_max,
            kx,
            scale,
            width,
            height,
        }
    }

    /// Projects one point to user units.
    pub fn project(&self, lon: f64, lat: f64) -> [f64; 2] {
        [
            (lon - self.lon_min) * self.kx * self.scale + MARGIN,
            (self.lat_max - lat) * self.scale + MARGIN,
        ]
    }
}

/// Validates coordinates and returns the bounding box of all given geometries, or `None` when
/// there is not a single point.
pub(crate) fn bounding_box<'a>(
    shapes: impl Iterator<Item = (&'a str, &'a Geometry)>,
) -> Result<Option<[f64; 4]>, Error> {
    let mut bb = [
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    ];
    let mut any = false;
    for (name, mp) in shapes {
        for ring in rings(mp) {
            for &[lon, lat] in ring {
                if !(lon.is_finite()
                    && lat.is_finite()
                    && (-180.0..=180.0).contains(&lon)
                    && (-90.0..=90.0).contains(&lat))
                {
                    return Err(Error::InvalidCoordinate {
                        ward: name.to_string(),
                        lon,
                        lat,
                    });
                }
                any = true;
                bb[0] = bb[0].min(lon);
                bb[1] = bb[1].min(lat);
                bb[2] = bb[2].max(lon);
                bb[3] = bb[3].max(lat);
            }
        }
    }
    Ok(any.then_some(bb))
}

/// A ward ready to draw: rings of quantised user-unit points.
pub(crate) type QuantRings = Vec<Vec<[i32; 2]>>;

type Key = (u64, u64);

fn key(p: [f64; 2]) -> Key {
    // +0.0 folds -0.0 into 0.0 so equal coordinates get equal keys.
    ((p[0] + 0.0).to_bits(), (p[1] + 0.0).to_bits())
}

fn key_cmp(a: [f64; 2], b: [f64; 2]) -> std::cmp::Ordering {
    a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1]))
}

/// FxHash: the vertex table holds hundreds of thousands of keys and SipHash would dominate.
#[derive(Default)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Rings without repeated consecutive points and without the closing duplicate.
fn clean_ring(ring: &[[f64; 2]]) -> Vec<[f64; 2]> {
    let mut out: Vec<[f64; 2]> = Vec::with_capacity(ring.len());
    for &p in ring {
        if out.last().is_none_or(|&q| key(q) != key(p)) {
            out.push(p);
        }
    }
    while out.len() > 1 && out.first().map(|&p| key(p)) == out.last().map(|&p| key(p)) {
        out.pop();
    }
    out
}

/// Simplifies and quantises every ward's geometry; `None` in, empty rings out.
pub(crate) fn prepare(
    geometries: &[Option<&Geometry>],
    proj: &Projection,
    tolerance: f64,
) -> Vec<QuantRings> {
    let cleaned: Vec<Vec<Vec<[f64; 2]>>> = geometries
        .iter()
        .map(|g| {
            g.map(|mp| {
                rings(mp)
                    .map(|r| clean_ring(r))
                    .filter(|r| !r.is_empty())
                    .collect()
            })
            .unwrap_or_default()
        })
        .collect();

    // Pass 1: one hash lookup per vertex gives it a dense id; everything after indexes vectors.
    let total: usize = cleaned.iter().flatten().map(Vec::len).sum();
    let mut ids: FxMap<Key, u32> = FxMap::default();
    ids.reserve(total / 2 + 16);
    let ring_ids: Vec<Vec<Vec<u32>>> = cleaned
        .iter()
        .map(|rings| {
            rings
                .iter()
                .map(|ring| {
                    ring.iter()
                        .map(|&p| {
                            let next = ids.len() as u32;
                            *ids.entry(key(p)).or_insert(next)
                        })
                        .collect()
                })
                .collect()
        })
        .collect();
    let vertices = ids.len();
    drop(ids);
    // Pass 2: a vertex is a junction when two of its occurrences have different neighbours.
    const UNSEEN: (u32, u32) = (u32::MAX, u32::MAX);
    let mut first_pair: Vec<(u32, u32)> = vec![UNSEEN; vertices];
    let mut junction = vec![false; vertices];
    for ring in ring_ids.iter().flatten() {
        let n = ring.len();
        for i in 0..n {
            let (prev, next) = (ring[(i + n - 1) % n], ring[(i + 1) % n]);
            let pair = (prev.min(next), prev.max(next));
            let v = ring[i] as usize;
            if let (Some(fp), Some(j)) = (first_pair.get_mut(v), junction.get_mut(v)) {
                if *fp == UNSEEN {
                    *fp = pair;
                } else if *fp != pair {
                    *j = true;
                }
            }
        }
    }
    drop(first_pair);

    let tol2 = tolerance * tolerance;
    cleaned
        .iter()
        .zip(&ring_ids)
        .map(|(rings, rids)| {
            let mut out: QuantRings = Vec::with_capacity(rings.len());
            let mut fallback: Option<Vec<[i32; 2]>> = None;
            for (ring, rid) in rings.iter().zip(rids) {
                let simplified = simplify_ring(ring, rid, &junction, proj, tol2);
                let q = quantise(&simplified);
                if q.len() >= 3 {
                    out.push(q);
                } else if fallback.as_ref().is_none_or(|f| f.len() < q.len()) {
                    fallback = Some(q);
                }
            }
            // A ward smaller than a user unit still gets a (degenerate) shape, so it is present.
            if out.is_empty()
                && let Some(f) = fallback
                && !f.is_empty()
            {
                out.push(f);
            }
            out
        })
        .collect()
}

fn quantise(points: &[[f64; 2]]) -> Vec<[i32; 2]> {
    let mut out: Vec<[i32; 2]> = Vec::with_capacity(points.len());
    for p in points {
        let q = [p[0].round() as i32, p[1].round() as i32];
        if out.last() != Some(&q) {
            out.push(q);
        }
    }
    while out.len() > 1 && out.first() == out.last() {
        out.pop();
    }
    out
}

fn simplify_ring(
    ring: &[[f64; 2]],
    ids: &[u32],
    junction: &[bool],
    proj: &Projection,
    tol2: f64,
) -> Vec<[f64; 2]> {
    let n = ring.len();
    if n < 4 {
        return ring.iter().map(|p| proj.project(p[0], p[1])).collect();
    }
    let junctions: Vec<usize> = (0..n)
        .filter(|&i| {
            ids.get(i)
                .and_then(|&id| junction.get(id as usize))
                .is_some_and(|&j| j)
        })
        .collect();
    if junctions.is_empty() {
        return simplify_loop(ring, proj, tol2);
    }
    let mut out = Vec::with_capacity(n);
    let mut arc: Vec<[f64; 2]> = Vec::new();
    for (j, &start) in junctions.iter().enumerate() {
        let end = if j + 1 < junctions.len() {
            junctions[j + 1]
        } else {
            junctions[0] + n
        };
        arc.clear();
        arc.extend((start..=end).map(|i| ring[i % n]));
        let simplified = simplify_arc(&arc, proj, tol2);
        // The arc's last point is the next arc's first one.
        out.extend_from_slice(&simplified[..simplified.len() - 1]);
    }
    out
}

/// An isolated closed ring (an island, or a boundary shared whole with one enclave): canonical
/// start and direction so an enclave and the hole it fills are simplified alike.
fn simplify_loop(ring: &[[f64; 2]], proj: &Projection, tol2: f64) -> Vec<[f64; 2]> {
    let n = ring.len();
    let start = (0..n)
        .min_by(|&a, &b| key_cmp(ring[a], ring[b]))
        .unwrap_or(0);
    let forward = key_cmp(ring[(start + 1) % n], ring[(start + n - 1) % n]).is_le();
    let canonical: Vec<[f64; 2]> = (0..n)
        .map(|k| {
            let i = if forward {
                (start + k) % n
            } else {
                (start + n - k) % n
            };
            proj.project(ring[i][0], ring[i][1])
        })
        .collect();
    // Split at the vertex farthest from the start so each half has distinct endpoints.
    let p0 = canonical[0];
    let far = (1..n)
        .max_by(|&a, &b| dist2(canonical[a], p0).total_cmp(&dist2(canonical[b], p0)))
        .unwrap_or(1);
    let mut keep = vec![false; n + 1];
    let mut closed = canonical.clone();
    closed.push(p0);
    douglas_peucker(&closed[..=far], tol2, &mut keep[..=far]);
    douglas_peucker(&closed[far..], tol2, &mut keep[far..]);
    let mut out: Vec<[f64; 2]> = (0..n).filter(|&i| keep[i]).map(|i| canonical[i]).collect();
    if out.len() < 3 {
        // Keep a triangle: the start, the far point and the point farthest from their chord.
        let third = (1..n).filter(|&i| i != far).max_by(|&a, &b| {
            seg_dist2(canonical[a], p0, canonical[far]).total_cmp(&seg_dist2(
                canonical[b],
                p0,
                canonical[far],
            ))
        });
        if let Some(t) = third {
            let mut idx = vec![0, far, t];
            idx.sort_unstable();
            out = idx.into_iter().map(|i| canonical[i]).collect();
        }
    }
    out
}

/// A chain between two junctions, simplified in canonical direction.
fn simplify_arc(arc: &[[f64; 2]], proj: &Projection, tol2: f64) -> Vec<[f64; 2]> {
    let m = arc.len();
    if m <= 2 {
        return arc.iter().map(|p| proj.project(p[0], p[1])).collect();
    }
    let order = key_cmp(arc[0], arc[m - 1]).then(key_cmp(arc[1], arc[m - 2]));
    let reversed = order.is_gt();
    let pts: Vec<[f64; 2]> = if reversed {
        arc.iter().rev().map(|p| proj.project(p[0], p[1])).collect()
    } else {
        arc.iter().map(|p| proj.project(p[0], p[1])).collect()
    };
    let mut keep = vec![false; m];
    douglas_peucker(&pts, tol2, &mut keep);
    let mut out: Vec<[f64; 2]> = (0..m).filter(|&i| keep[i]).map(|i| pts[i]).collect();
    if reversed {
        out.reverse();
    }
    out
}

fn dist2(a: [f64; 2], b: [f64; 2]) -> f64 {
    let dx = a[0] - b[0];
    let dy = a[1] - b[1];
    dx * dx + dy * dy
}

/// Squared distance from `p` to the segment `a`–`b`.
fn seg_dist2(p: [f64; 2], a: [f64; 2], b: [f64; 2]) -> f64 {
    let dx = b[0] - a[0];
    let dy = b[1] - a[1];
    let len2 = dx * dx + dy * dy;
    if len2 == 0.0 {
        return dist2(p, a);
    }
    let t = (((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / len2).clamp(0.0, 1.0);
    dist2(p, [a[0] + t * dx, a[1] + t * dy])
}

/// Marks the points to keep; both endpoints are always kept. Iterative, so long rivers of
/// vertices cannot overflow the stack.
pub(crate) fn douglas_peucker(points: &[[f64; 2]], tol2: f64, keep: &mut [bool]) {
    let n = points.len();
    if n == 0 {
        return;
    }
    keep[0] = true;
    keep[n - 1] = true;
    let mut stack = vec![(0usize, n - 1)];
    while let Some((a, b)) = stack.pop() {
        if b <= a + 1 {
            continue;
        }
        let mut best = 0.0;
        let mut idx = a;
        for i in a + 1..b {
            let d = seg_dist2(points[i], points[a], points[b]);
            if d > best {
                best = d;
                idx = i;
            }
        }
        if best > tol2 {
            keep[idx] = true;
            stack.push((a, idx));
            stack.push((idx, b));
        }
    }
}

/// Appends compact path data: absolute move, relative lines, close; rings separated by `M`.
pub(crate) fn write_path(out: &mut String, rings: &QuantRings) {
    for ring in rings {
        let Some(first) = ring.first() else { continue };
        out.push('M');
        push_pair(out, first[0], first[1]);
        let mut prev = *first;
        for (k, p) in ring.iter().enumerate().skip(1) {
            if k == 1 {
                out.push('l');
                push_pair(out, p[0] - prev[0], p[1] - prev[1]);
            } else {
                push_sep(out, p[0] - prev[0]);
                push_pair(out, p[0] - prev[0], p[1] - prev[1]);
            }
            prev = *p;
        }
        out.push('z');
    }
}

fn push_sep(out: &mut String, next: i32) {
    if next >= 0 {
        out.push(' ');
    }
}

fn push_pair(out: &mut String, x: i32, y: i32) {
    let _ = write!(out, "{x}");
    push_sep(out, y);
    let _ = write!(out, "{y}");
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn projection_is_north_up_and_scales_longitude_by_cos_lat() {
        // A 1°×1° box at 60° N: one degree of longitude is half a degree of latitude.
        let p = Projection::fit([10.0, 59.5, 11.0, 60.5]);
        let sw = p.project(10.0, 59.5);
        let ne = p.project(11.0, 60.5);
        let nw = p.project(10.0, 60.5);
        assert!(nw[1] < sw[1], "north is up (smaller y)");
        assert!(ne[0] > nw[0], "east is right");
        let w = ne[0] - nw[0];
        let h = sw[1] - nw[1];
        assert!((w / h - 60f64.to_radians().cos()).abs() < 1e-12);
        assert!((h - EXTENT).abs() < 1e-9, "longer side spans EXTENT");
        assert_eq!(p.height, (EXTENT + 2.0 * MARGIN) as u32);
        assert!((nw[0] - MARGIN).abs() < 1e-9 && (nw[1] - MARGIN).abs() < 1e-9);
    }

    #[test]
    fn projection_of_a_single_point_is_finite() {
        let p = Projection::fit([8.5, 12.0, 8.5, 12.0]);
        let q = p.project(8.5, 12.0);
        assert!(q[0].is_finite() && q[1].is_finite());
        assert!(p.width >= 1 && p.height >= 1);
    }

    #[test]
    fn douglas_peucker_drops_only_points_within_tolerance() {
        let pts = [[0.0, 0.0], [1.0, 0.1], [2.0, -0.1], [3.0, 5.0], [4.0, 0.0]];
        let mut keep = [false; 5];
        douglas_peucker(&pts, 0.5 * 0.5, &mut keep);
        assert_eq!(keep, [true, false, true, true, true]);
        let mut keep = [false; 5];
        douglas_peucker(&pts, 10.0 * 10.0, &mut keep);
        assert_eq!(keep, [true, false, false, false, true]);
    }

    /// A ward from polygons given as rings (exterior first).
    fn mp(polygons: Vec<Vec<Vec<[f64; 2]>>>) -> Geometry {
        Geometry::MultiPolygon(
            polygons
                .into_iter()
                .map(|mut rings| mrpt_table::Polygon {
                    exterior: rings.remove(0),
                    holes: rings,
                })
                .collect(),
        )
    }

    #[test]
    fn shared_borders_stay_identical_after_simplification() {
        // Two squares sharing a wiggly vertical border x = 1, traversed in opposite directions.
        let border: Vec<[f64; 2]> = (0..=100)
            .map(|i| {
                let y = f64::from(i) / 100.0;
                [1.0 + 0.0004 * (f64::from(i) * 1.7).sin(), y]
            })
            .collect();
        let mut left = vec![[0.0, 0.0]];
        left.extend(border.iter().copied());
        left.push([0.0, 1.0]);
        let mut right = vec![[2.0, 1.0]];
        right.extend(border.iter().rev().copied());
        right.push([2.0, 0.0]);
        let a = mp(vec![vec![left]]);
        let b = mp(vec![vec![right]]);
        let proj = Projection::fit([0.0, 0.0, 2.0, 1.0]);
        let q = prepare(&[Some(&a), Some(&b)], &proj, 3.0);
        let x_border = proj.project(1.0, 0.5)[0];
        let on_border = |r: &Vec<[i32; 2]>| -> Vec<[i32; 2]> {
            let mut v: Vec<[i32; 2]> = r
                .iter()
                .copied()
                .filter(|p| (f64::from(p[0]) - x_border).abs() < 20.0)
                .collect();
            v.sort_unstable();
            v
        };
        let la = on_border(&q[0][0]);
        let lb = on_border(&q[1][0]);
        assert_eq!(la, lb);
        assert!(la.len() < 101, "the wiggle was simplified: {}", la.len());
        assert!(la.len() >= 2);
    }

    #[test]
    fn enclave_and_hole_simplify_alike() {
        let circle = |reverse: bool, offset: usize| -> Vec<[f64; 2]> {
            let mut v: Vec<[f64; 2]> = (0..200)
                .map(|i| {
                    let t = f64::from(i) / 200.0 * std::f64::consts::TAU;
                    [0.5 + 0.2 * t.cos(), 0.5 + 0.2 * t.sin()]
                })
                .collect();
            v.rotate_left(offset);
            if reverse {
                v.reverse();
            }
            v
        };
        let outer = vec![[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]];
        let donut = mp(vec![vec![outer, circle(false, 0)]]);
        let enclave = mp(vec![vec![circle(true, 37)]]);
        let proj = Projection::fit([0.0, 0.0, 1.0, 1.0]);
        let q = prepare(&[Some(&donut), Some(&enclave)], &proj, 5.0);
        let mut hole = q[0][1].clone();
        let mut inner = q[1][0].clone();
        hole.sort_unstable();
        inner.sort_unstable();
        assert_eq!(hole, inner);
        assert!(inner.len() < 200 && inner.len() >= 3);
    }

    #[test]
    fn tiny_ward_keeps_a_shape() {
        let big = mp(vec![vec![vec![
            [0.0, 0.0],
            [1.0, 0.0],
            [1.0, 1.0],
            [0.0, 0.0],
        ]]]);
        let tiny = mp(vec![vec![vec![
            [0.5, 0.5],
            [0.500_000_1, 0.5],
            [0.500_000_1, 0.500_000_1],
        ]]]);
        let proj = Projection::fit([0.0, 0.0, 1.0, 1.0]);
        let q = prepare(&[Some(&big), Some(&tiny), None], &proj, TOLERANCE);
        assert_eq!(q[0].len(), 1);
        assert_eq!(q[1].len(), 1, "collapsed ward still has one ring");
        assert!(q[2].is_empty());
    }

    #[test]
    fn path_data_is_compact_and_relative() {
        let mut s = String::new();
        write_path(&mut s, &vec![vec![[10, 20], [15, 20], [15, 12], [10, 12]]]);
        assert_eq!(s, "M10 20l5 0 0-8-5 0z");
    }

    #[test]
    fn bad_coordinates_name_the_ward() {
        let outside = mp(vec![vec![vec![[200.0, 0.0], [1.0, 1.0], [0.0, 1.0]]]]);
        let err = bounding_box(std::iter::once(("Gwale", &outside))).unwrap_err();
        assert!(err.to_string().contains("Gwale"));
        let nan = mp(vec![vec![vec![[f64::NAN, 0.0]]]]);
        assert!(bounding_box(std::iter::once(("x", &nan))).is_err());
    }
}
