//! A deterministic synthetic facility export in the DHIS2 layout of the Kano test file (tpr.md
//! §1.4), at any size: the national benchmark uses 37 states, ~9,400 wards, ~25,000
//! facilities and 48 months. Counts are seeded noise around realistic levels, not data.

use std::io::Write;

use crate::synth::Rng;

/// The export's dimensions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExportShape {
    /// Number of states (at most 37).
    pub states: usize,
    /// Number of wards, spread over the states.
    pub wards: usize,
    /// Number of facilities, spread over the wards.
    pub facilities: usize,
    /// Months from January 2021.
    pub months: usize,
    /// Share of facility-months that report (DHIS2 omits the others).
    pub report_rate: f64,
    /// Seed of the deterministic noise: same shape and seed, same bytes.
    pub seed: u64,
}

impl ExportShape {
    /// Nigeria-sized: all 37 states (with the FCT), 9,410 wards, 25,000 facilities, 2021-2024.
    pub fn national() -> ExportShape {
        ExportShape {
            states: 37,
            wards: 9410,
            facilities: 25_000,
            months: 48,
            report_rate: 0.86,
            seed: 1,
        }
    }
}

/// What was written.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExportStats {
    /// Data rows written (facility-months that reported).
    pub rows: usize,
    /// Bytes written.
    pub bytes: usize,
}

const HEADER: &str = "orgunitlevel1,orgunitlevel2,orgunitlevel3,orgunitlevel4,organisationunitid,\
organisationunitname,organisationunitcode,organisationunitdescription,periodid,periodname,\
periodcode,perioddescription,Facility level,Ownership,\
Persons presenting with fever & tested by RDT <5yrs,\
Persons presenting with fever & tested by RDT  ≥5yrs (excl PW),\
Persons presenting with fever & tested by RDT Preg Women (PW),\
Persons presenting with fever <5yrs,\
Persons presenting with fever  ≥5yrs (excl PW),\
Persons presenting with fever Preg Women (PW),\
Persons presenting with fever and tested by Microscopy <5yrs,\
Persons presenting with fever and tested by Microscopy  ≥5yrs (excl PW),\
Persons presenting with fever and tested by Microscopy Preg Women (PW),\
Persons tested positive for malaria by Microscopy <5yrs,\
Persons tested positive for malaria by Microscopy  ≥5yrs (excl PW),\
Persons tested positive for malaria by Microscopy Preg Women (PW),\
Persons tested positive for malaria by RDT <5yrs,\
Persons tested positive for malaria by RDT  ≥5yrs (excl PW),\
Persons tested positive for malaria by RDT Preg Women (PW),\
Persons with Confirmed Uncomplicated Malaria <5yrs";

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Two lower-case letters per state (DHIS2's prefix), distinct for 37 states.
fn state_code(i: usize) -> String {
    let a = b'a' + (i / 26) as u8 % 26;
    let b = b'a' + (i % 26) as u8;
    String::from_utf8_lossy(&[a, b]).into_owned()
}

fn facility_id(rng: &mut Rng) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..11)
        .map(|_| CHARS[rng.below(CHARS.len())] as char)
        .collect()
}

/// Writes the export as CSV (UTF-8, `\n`). About 200 bytes per facility-month.
pub fn write_synthetic_export<W: Write>(
    out: W,
    shape: &ExportShape,
) -> std::io::Result<ExportStats> {
    let mut w = std::io::BufWriter::with_capacity(1 << 20, out);
    let mut rng = Rng(shape.seed);
    let mut bytes = HEADER.len() + 1;
    writeln!(w, "{HEADER}")?;
    let lgas_per_state = 21;
    let states = shape.states.max(1);
    let wards = shape.wards.max(1);
    let facilities = shape.facilities.max(1);
    let mut rows = 0;
    let mut line = String::with_capacity(512);
    for f in 0..facilities {
        let ward = f * wards / facilities;
        let state = ward * states / wards;
        let lga = ward * (states * lgas_per_state) / wards;
        let code = state_code(state);
        let id = facility_id(&mut rng);
        let level = match rng.below(100) {
            0..=2 => "secondary",
            3 => "Tertiary",
            4 => "",
            _ => "primary",
        };
        let microscopy = level != "primary" || rng.below(4) == 0;
        // Ward-level positivity around 50 %, with a per-facility drift per year.
        let base = 0.5 + 0.12 * rng.normal().clamp(-3.0, 3.0);
        let drift = 0.02 * rng.normal().clamp(-3.0, 3.0);
        let size = 20.0 + 60.0 * rng.unit();
        for m in 0..shape.months {
            if rng.unit() >= shape.report_rate {
                continue;
            }
            let year = 2021 + m / 12;
            let month = m % 12;
            let season = 1.0 + 0.4 * ((month as f64 - 2.0) / 12.0 * std::f64::consts::TAU).sin();
            let p = (base + drift * (m / 12) as f64).clamp(0.05, 0.95);
            let pw_blank = rng.below(6) == 0;
            let mut count = |scale: f64, blank: bool| -> (Option<u64>, Option<u64>) {
                if blank {
                    return (None, None);
                }
                let tested = (size * scale * season * (0.8 + 0.4 * rng.unit())) as u64;
                let positive = (tested as f64 * p * (0.9 + 0.2 * rng.unit())) as u64;
                (Some(tested), Some(positive.min(tested)))
            };
            let u5 = count(0.8, false);
            let o5 = count(1.1, false);
            let pw = count(0.15, pw_blank);
            let mu5 = count(0.3, !microscopy);
            let mo5 = count(0.4, !microscopy);
            let mpw = count(0.05, !microscopy || pw_blank);
            let cell = |v: Option<u64>| v.map_or(String::new(), |v| v.to_string());
            line.clear();
            use std::fmt::Write as _;
            let _ = write!(
                line,
                "ng Federal Government,{code} State {state} State,{code} Lga {lga} Local Government Area,\
                 {code} Ward {ward} Ward,{id},{code} Ward {ward} Primary Health Centre {f},,,\
                 {year}{:02},{} {year},{year}{:02},,{level},Public,",
                month + 1,
                MONTHS[month],
                month + 1,
            );
            let fever = |t: Option<u64>| t.map(|t| t + t / 5);
            let cells = [
                u5.0,
                o5.0,
                pw.0,
                fever(u5.0),
                fever(o5.0),
                fever(pw.0),
                mu5.0,
                mo5.0,
                mpw.0,
                mu5.1,
                mo5.1,
                mpw.1,
                u5.1,
                o5.1,
                pw.1,
                u5.1,
            ];
            let texts: Vec<String> = cells.iter().map(|c| cell(*c)).collect();
            line.push_str(&texts.join(","));
            line.push('\n');
            w.write_all(line.as_bytes())?;
            bytes += line.len();
            rows += 1;
        }
    }
    w.flush()?;
    Ok(ExportStats { rows, bytes })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::tpr::{ReadOptions, read_facility_export};

    #[test]
    fn a_small_synthetic_export_reads_back() {
        let shape = ExportShape {
            states: 3,
            wards: 30,
            facilities: 60,
            months: 24,
            report_rate: 0.9,
            seed: 7,
        };
        let mut buf = Vec::new();
        let stats = write_synthetic_export(&mut buf, &shape).unwrap();
        assert_eq!(stats.bytes, buf.len());
        let export = read_facility_export(&buf, "synthetic.csv", &ReadOptions::default()).unwrap();
        assert_eq!(export.rows.len(), stats.rows);
        assert_eq!(export.states.len(), 3);
        assert_eq!(export.wards.len(), 30);
        assert_eq!(export.facilities.len(), 60);
        assert_eq!(export.years(), vec![2021, 2022]);
        // Each state has its own prefix, so none is stripped.
        assert_eq!(export.prefix, None);
        assert_eq!(export.mapping.fields.len(), 19);
    }
}
