//! The coordinate system of a shapefile's .prj (WKT1): accept WGS84 longitude/latitude, convert
//! WGS84 Transverse Mercator (UTM) to it, refuse the rest with a message saying what was found.

use crate::error::{Error, Result};

/// What the .prj said and what we did about it.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceCrs {
    /// No .prj (or an empty one): taken as WGS84 longitude/latitude, as ChatMRPT does.
    Unspecified,
    /// Geographic WGS84: coordinates used as they are.
    Wgs84,
    /// A WGS84 Transverse Mercator projection; coordinates were converted to WGS84.
    TransverseMercator {
        /// The projection's name from the `.prj` (`WGS_1984_UTM_Zone_32N`).
        name: String,
    },
}

/// Parameters of a Transverse Mercator projection on an ellipsoid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TransverseMercator {
    /// Semi-major axis of the ellipsoid, metres.
    pub a: f64,
    /// Inverse flattening of the ellipsoid (298.257223563 for WGS84).
    pub inv_f: f64,
    /// Longitude of the central meridian, degrees.
    pub central_meridian: f64,
    /// Scale factor on the central meridian (0.9996 for UTM).
    pub scale: f64,
    /// False easting, in projected units.
    pub false_easting: f64,
    /// False northing, in projected units.
    pub false_northing: f64,
    /// Metres per projected unit.
    pub unit: f64,
}

#[derive(Debug, Clone, PartialEq)]
enum Wkt {
    Node(String, Vec<Wkt>),
    Str(String),
    Num(f64),
}

impl Wkt {
    fn name(&self) -> &str {
        match self {
            Wkt::Node(n, _) => n,
            _ => "",
        }
    }
    fn children(&self) -> &[Wkt] {
        match self {
            Wkt::Node(_, c) => c,
            _ => &[],
        }
    }
    fn child(&self, name: &str) -> Option<&Wkt> {
        self.children()
            .iter()
            .find(|c| c.name().eq_ignore_ascii_case(name))
    }
    fn label(&self) -> String {
        match self.children().first() {
            Some(Wkt::Str(s)) => s.clone(),
            _ => String::new(),
        }
    }
    fn num(&self, i: usize) -> Option<f64> {
        match self.children().get(i) {
            Some(Wkt::Num(x)) => Some(*x),
            _ => None,
        }
    }
}

fn parse_wkt(s: &str) -> std::result::Result<Wkt, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut pos = 0;
    let node = parse_node(&chars, &mut pos, 0)?;
    Ok(node)
}

fn skip_ws(c: &[char], pos: &mut usize) {
    while *pos < c.len() && c[*pos].is_whitespace() {
        *pos += 1;
    }
}

fn parse_node(c: &[char], pos: &mut usize, depth: usize) -> std::result::Result<Wkt, String> {
    if depth > 32 {
        return Err("nested too deeply".into());
    }
    skip_ws(c, pos);
    let start = *pos;
    while *pos < c.len() && (c[*pos].is_alphanumeric() || c[*pos] == '_') {
        *pos += 1;
    }
    let name: String = c[start..*pos].iter().collect();
    if name.is_empty() {
        return Err(format!("expected a keyword at character {start}"));
    }
    skip_ws(c, pos);
    let open = c.get(*pos).copied();
    if open != Some('[') && open != Some('(') {
        return Ok(Wkt::Node(name, vec![]));
    }
    *pos += 1;
    let mut kids = Vec::new();
    loop {
        skip_ws(c, pos);
        match c.get(*pos) {
            None => return Err("unterminated bracket".into()),
            Some(']') | Some(')') => {
                *pos += 1;
                break;
            }
            Some(',') => *pos += 1,
            Some('"') => {
                *pos += 1;
                let s = *pos;
                while *pos < c.len() && c[*pos] != '"' {
                    *pos += 1;
                }
                kids.push(Wkt::Str(c[s..(*pos).min(c.len())].iter().collect()));
                *pos += 1;
            }
            Some(ch) if ch.is_ascii_digit() || *ch == '-' || *ch == '+' || *ch == '.' => {
                let s = *pos;
                while *pos < c.len() && (c[*pos].is_ascii_alphanumeric() || "+-.".contains(c[*pos]))
                {
                    *pos += 1;
                }
                let t: String = c[s..*pos].iter().collect();
                kids.push(Wkt::Num(
                    t.parse().map_err(|_| format!("bad number `{t}`"))?,
                ));
            }
            Some(_) => kids.push(parse_node(c, pos, depth + 1)?),
        }
    }
    Ok(Wkt::Node(name, kids))
}

fn is_wgs84_datum(geog: &Wkt) -> bool {
    // WKT2 names the datum DATUM or, for WGS 84 since EPSG 10, ENSEMBLE.
    let Some(datum) = geog.child("DATUM").or_else(|| geog.child("ENSEMBLE")) else {
        return false;
    };
    let name = datum.label().to_ascii_uppercase().replace([' ', '-'], "_");
    if name.contains("WGS_1984") || name.contains("WGS84") || name.contains("WGS_84") {
        return true;
    }
    name.contains("WORLD_GEODETIC_SYSTEM_1984")
}

fn spheroid(geog: &Wkt) -> (f64, f64) {
    geog.child("DATUM")
        .and_then(|d| d.child("SPHEROID").or_else(|| d.child("ELLIPSOID")))
        .and_then(|s| Some((s.num(1)?, s.num(2)?)))
        .unwrap_or((6_378_137.0, 298.257_223_563))
}

/// Reads a .prj. Returns what it declares and, for a projection, the transform to apply.
pub fn parse_prj(text: &str) -> Result<(SourceCrs, Option<TransverseMercator>)> {
    let text = text.trim().trim_start_matches('\u{feff}');
    if text.is_empty() {
        return Ok((SourceCrs::Unspecified, None));
    }
    let unsupported = |reason: String| Error::UnsupportedCrs { reason };
    let wkt = parse_wkt(text).map_err(|e| unsupported(format!("unreadable .prj: {e}")))?;
    match wkt.name().to_ascii_uppercase().as_str() {
        "GEOGCS" | "GEOGCRS" | "GEODCRS" => {
            if !is_wgs84_datum(&wkt) {
                let datum = wkt.child("DATUM").map(Wkt::label).unwrap_or_default();
                return Err(unsupported(format!(
                    "geographic coordinates on datum `{datum}`, not WGS84"
                )));
            }
            Ok((SourceCrs::Wgs84, None))
        }
        "PROJCS" => {
            let name = wkt.label();
            let geog = wkt
                .child("GEOGCS")
                .ok_or_else(|| unsupported(format!("`{name}` has no GEOGCS")))?;
            if !is_wgs84_datum(geog) {
                let datum = geog.child("DATUM").map(Wkt::label).unwrap_or_default();
                return Err(unsupported(format!(
                    "projection `{name}` on datum `{datum}`, not WGS84 (a datum shift is not supported)"
                )));
            }
            let projection = wkt.child("PROJECTION").map(Wkt::label).unwrap_or_default();
            let norm = projection.to_ascii_lowercase().replace(' ', "_");
            if norm != "transverse_mercator" {
                return Err(unsupported(format!(
                    "projection `{projection}` of `{name}`; only Transverse Mercator (UTM) is converted"
                )));
            }
            let param = |key: &str| {
                wkt.children()
                    .iter()
                    .filter(|c| c.name().eq_ignore_ascii_case("PARAMETER"))
                    .find(|c| c.label().eq_ignore_ascii_case(key))
                    .and_then(|c| c.num(1))
            };
            let origin = param("latitude_of_origin").unwrap_or(0.0);
            if origin != 0.0 {
                return Err(unsupported(format!(
                    "Transverse Mercator with latitude of origin {origin}; only 0 (UTM) is converted"
                )));
            }
            let (a, inv_f) = spheroid(geog);
            let unit = wkt.child("UNIT").and_then(|u| u.num(1)).unwrap_or(1.0);
            let tm = TransverseMercator {
                a,
                inv_f,
                central_meridian: param("central_meridian").unwrap_or(0.0),
                scale: param("scale_factor").unwrap_or(1.0),
                false_easting: param("false_easting").unwrap_or(0.0),
                false_northing: param("false_northing").unwrap_or(0.0),
                unit,
            };
            Ok((SourceCrs::TransverseMercator { name }, Some(tm)))
        }
        other => Err(unsupported(format!(
            "a `{other}` definition; expected GEOGCS (WGS84) or PROJCS (UTM on WGS84)"
        ))),
    }
}

struct Series {
    n: f64,
    e: f64,
    big_a: f64,
}

fn series(tm: &TransverseMercator) -> Series {
    let f = 1.0 / tm.inv_f;
    let n = f / (2.0 - f);
    let e = (f * (2.0 - f)).sqrt();
    let n2 = n * n;
    let big_a = tm.a / (1.0 + n) * (1.0 + n2 / 4.0 + n2 * n2 / 64.0);
    Series { n, e, big_a }
}

fn tau_prime(tau: f64, e: f64) -> f64 {
    let tau1 = tau.hypot(1.0);
    let sig = (e * (e * tau / tau1).atanh()).sinh();
    tau * sig.hypot(1.0) - sig * tau1
}

// Newton's method on the conformal latitude (Karney 2011, eq. 19-21): exact to rounding.
fn tau_from_prime(taup: f64, e: f64) -> f64 {
    let e2m = 1.0 - e * e;
    let mut tau = taup / e2m;
    for _ in 0..8 {
        let taupa = tau_prime(tau, e);
        let dtau =
            (taup - taupa) * (1.0 + e2m * tau * tau) / (e2m * tau.hypot(1.0) * taupa.hypot(1.0));
        tau += dtau;
        if dtau.abs() < 1e-15 * tau.abs().max(1.0) {
            break;
        }
    }
    tau
}

impl TransverseMercator {
    /// Projected (easting, northing) in the .prj's unit -> (lon, lat) degrees.
    pub fn inverse(&self, easting: f64, northing: f64) -> [f64; 2] {
        let Series { n, e, big_a } = series(self);
        let (n2, n3, n4) = (n * n, n * n * n, n * n * n * n);
        let beta = [
            n / 2.0 - 2.0 / 3.0 * n2 + 37.0 / 96.0 * n3 - 1.0 / 360.0 * n4,
            n2 / 48.0 + n3 / 15.0 - 437.0 / 1440.0 * n4,
            17.0 / 480.0 * n3 - 37.0 / 840.0 * n4,
            4397.0 / 161_280.0 * n4,
        ];
        let k = self.scale * big_a;
        let xi = (northing * self.unit - self.false_northing * self.unit) / k;
        let eta = (easting * self.unit - self.false_easting * self.unit) / k;
        let mut xip = xi;
        let mut etap = eta;
        for (j, b) in beta.iter().enumerate() {
            let m = 2.0 * (j as f64 + 1.0);
            xip -= b * (m * xi).sin() * (m * eta).cosh();
            etap -= b * (m * xi).cos() * (m * eta).sinh();
        }
        let taup = xip.sin() / etap.sinh().hypot(xip.cos());
        let lam = etap.sinh().atan2(xip.cos());
        let tau = tau_from_prime(taup, e);
        [
            self.central_meridian + lam.to_degrees(),
            tau.atan().to_degrees(),
        ]
    }

    /// (lon, lat) degrees -> projected (easting, northing) in the .prj's unit. Used by the
    /// synthetic generator's tests and to check `inverse`.
    pub fn forward(&self, lon: f64, lat: f64) -> [f64; 2] {
        let Series { n, e, big_a } = series(self);
        let (n2, n3, n4) = (n * n, n * n * n, n * n * n * n);
        let alpha = [
            n / 2.0 - 2.0 / 3.0 * n2 + 5.0 / 16.0 * n3 + 41.0 / 180.0 * n4,
            13.0 / 48.0 * n2 - 3.0 / 5.0 * n3 + 557.0 / 1440.0 * n4,
            61.0 / 240.0 * n3 - 103.0 / 140.0 * n4,
            49561.0 / 161_280.0 * n4,
        ];
        let lam = (lon - self.central_meridian).to_radians();
        let taup = tau_prime(lat.to_radians().tan(), e);
        let xip = taup.atan2(lam.cos());
        let etap = (lam.sin() / taup.hypot(lam.cos())).asinh();
        let mut xi = xip;
        let mut eta = etap;
        for (j, a) in alpha.iter().enumerate() {
            let m = 2.0 * (j as f64 + 1.0);
            xi += a * (m * xip).sin() * (m * etap).cosh();
            eta += a * (m * xip).cos() * (m * etap).sinh();
        }
        let k = self.scale * big_a;
        [
            (self.false_easting * self.unit + k * eta) / self.unit,
            (self.false_northing * self.unit + k * xi) / self.unit,
        ]
    }
}

/// The .prj we write: geographic WGS84, in the ESRI flavour ArcGIS and GDAL both read.
pub const WGS84_PRJ: &str = "GEOGCS[\"GCS_WGS_1984\",DATUM[\"D_WGS_1984\",SPHEROID[\"WGS_1984\",6378137.0,298.257223563]],PRIMEM[\"Greenwich\",0.0],UNIT[\"Degree\",0.0174532925199433]]";

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const UTM32N: &str = r#"PROJCS["WGS_1984_UTM_Zone_32N",GEOGCS["GCS_WGS_1984",DATUM["D_WGS_1984",SPHEROID["WGS_1984",6378137.0,298.257223563]],PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]],PROJECTION["Transverse_Mercator"],PARAMETER["False_Easting",500000.0],PARAMETER["False_Northing",0.0],PARAMETER["Central_Meridian",9.0],PARAMETER["Scale_Factor",0.9996],PARAMETER["Latitude_Of_Origin",0.0],UNIT["Meter",1.0]]"#;

    #[test]
    fn wgs84_accepted() {
        assert_eq!(parse_prj(WGS84_PRJ).unwrap(), (SourceCrs::Wgs84, None));
        assert_eq!(parse_prj("  ").unwrap(), (SourceCrs::Unspecified, None));
    }

    #[test]
    fn utm_inverse_round_trips_and_matches_a_known_point() {
        let (crs, tm) = parse_prj(UTM32N).unwrap();
        assert!(matches!(crs, SourceCrs::TransverseMercator { .. }));
        let tm = tm.unwrap();
        let [lon, lat] = tm.inverse(500_000.0, 0.0);
        assert!((lon - 9.0).abs() < 1e-12 && lat.abs() < 1e-12);
        for (lon, lat) in [(8.5, 12.0), (6.1, 4.3), (11.9, 13.8)] {
            let [x, y] = tm.forward(lon, lat);
            let [lon2, lat2] = tm.inverse(x, y);
            assert!(
                (lon - lon2).abs() < 1e-11 && (lat - lat2).abs() < 1e-11,
                "{lon} {lat}"
            );
        }
        // CN Tower: 43.642567 N, 79.387139 W is UTM 17N 630084 E, 4833439 N (to the metre).
        let zone17 = TransverseMercator {
            central_meridian: -81.0,
            ..tm
        };
        let [lon, lat] = zone17.inverse(630_084.0, 4_833_439.0);
        assert!(
            (lon + 79.387139).abs() < 2e-5 && (lat - 43.642567).abs() < 2e-5,
            "{lon} {lat}"
        );
    }

    #[test]
    fn wkt2_wgs84_accepted() {
        let wkt2 = r#"GEOGCRS["WGS 84",ENSEMBLE["World Geodetic System 1984 ensemble",MEMBER["World Geodetic System 1984 (Transit)"],ELLIPSOID["WGS 84",6378137,298.257223563,LENGTHUNIT["metre",1]]],CS[ellipsoidal,2],AXIS["geodetic latitude (Lat)",north],AXIS["geodetic longitude (Lon)",east],ANGLEUNIT["degree",0.0174532925199433],ID["EPSG",4326]]"#;
        assert_eq!(parse_prj(wkt2).unwrap(), (SourceCrs::Wgs84, None));
    }

    #[test]
    fn other_datums_and_projections_refused() {
        let minna = UTM32N
            .replace("D_WGS_1984", "D_Minna")
            .replace("GCS_WGS_1984", "GCS_Minna");
        assert!(matches!(
            parse_prj(&minna),
            Err(Error::UnsupportedCrs { .. })
        ));
        let lcc = UTM32N.replace("Transverse_Mercator", "Lambert_Conformal_Conic");
        let err = parse_prj(&lcc).unwrap_err().to_string();
        assert!(err.contains("Lambert_Conformal_Conic"), "{err}");
        assert!(parse_prj("GEOGCS[").is_err());
    }
}
