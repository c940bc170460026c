//! Ward polygons in ISO WKB, the GeoParquet geometry encoding.

use mrpt_table::{Geometry, Polygon};

use crate::error::{Error, Result};

/// ISO WKB, little endian (the GeoParquet encoding).
pub fn to_wkb(geometry: &Geometry) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + 16 * geometry.vertices().count() + 8);
    match geometry {
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
    from_wkb(bytes).map_err(|reason| Error::BadWkb { row, reason })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use mrpt_table::Ring;

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
        let back = from_wkb(&to_wkb(&g)).unwrap();
        assert_eq!(back, g);
        assert!(from_wkb(&to_wkb(&g)[..20]).is_err());
        assert!(from_wkb(&[1, 3, 0, 0, 0, 255, 255, 255, 255]).is_err());
    }
}
