//! Population tables for ITN planning (api.md `/upload_population`): `WardName` + `Population`
//! (+ optional `WardCode`), or ChatMRPT's PBI household export (`AdminLevel3`, `AdminLevel2`,
//! `N_FamilyMembers`), which is summed per ward.

use crate::error::{Error, Result};
use mrpt_table::{ColumnData, Table, find_ward_code_column, find_ward_column};

/// Population per ward, in file order (PBI exports: first-appearance order of each ward).
#[derive(Debug, Clone, PartialEq)]
pub struct PopulationTable {
    /// Ward names, one per kept row.
    pub ward_names: Vec<String>,
    /// People per ward (summed family members for PBI exports), parallel to `ward_names`.
    pub populations: Vec<f64>,
    /// Ward codes parallel to `ward_names`, when the table has a ward-code column.
    pub ward_codes: Option<Vec<Option<String>>>,
    /// Rows dropped because the ward name or the population was missing.
    pub skipped_rows: Vec<usize>,
}

impl PopulationTable {
    /// The normalised table (`WardName`, `Population`[, `WardCode`]) the service stores and
    /// ITN planning reads, whatever layout was uploaded.
    pub fn to_table(&self) -> Result<Table> {
        let mut out = Table::with_rows(self.ward_names.len());
        out.push(
            "WardName",
            ColumnData::texts(self.ward_names.iter().cloned()),
        )?;
        out.push(
            "Population",
            ColumnData::Float(self.populations.iter().copied().map(Some).collect()),
        )?;
        if let Some(codes) = &self.ward_codes {
            out.push("WardCode", ColumnData::Text(codes.clone()))?;
        }
        Ok(out)
    }
}

/// Reads a population upload (.csv or .xlsx).
pub fn read_population(bytes: &[u8], file_name: &str) -> Result<PopulationTable> {
    read_population_with(bytes, file_name, &crate::Limits::default())
}

/// [`read_population`] within the given caps.
pub fn read_population_with(
    bytes: &[u8],
    file_name: &str,
    limits: &crate::Limits,
) -> Result<PopulationTable> {
    let table = crate::read_table_with(bytes, file_name, limits)?;
    population_from_table(&table)
}

fn find_population_column(table: &Table) -> Option<String> {
    const NAMES: [&str; 6] = [
        "population",
        "total_population",
        "population_total",
        "pop",
        "pop_total",
        "totalpop",
    ];
    if table.column("Population").is_some() {
        return Some("Population".into());
    }
    NAMES.iter().find_map(|want| {
        table
            .columns()
            .iter()
            .find(|c| c.name.trim().to_ascii_lowercase() == *want)
            .map(|c| c.name.clone())
    })
}

/// Extracts ward populations from an already-read table.
pub fn population_from_table(table: &Table) -> Result<PopulationTable> {
    if table.column("AdminLevel3").is_some() && table.column("N_FamilyMembers").is_some() {
        return from_pbi(table);
    }
    let ward = find_ward_column(table).ok_or_else(|| mrpt_table::Error::NoWardColumn {
        found: table.column_names(),
    })?;
    let pop_name = find_population_column(table).ok_or_else(|| Error::NoPopulationColumn {
        found: table.column_names(),
    })?;
    let pops = table.numeric(&pop_name)?;
    let names = table.columns()[ward].data.to_text();
    let codes = find_ward_code_column(table).map(|i| table.columns()[i].data.to_text());
    let mut out = PopulationTable {
        ward_names: vec![],
        populations: vec![],
        ward_codes: codes.as_ref().map(|_| vec![]),
        skipped_rows: vec![],
    };
    for (r, (name, pop)) in names.into_iter().zip(pops).enumerate() {
        match (name, pop) {
            (Some(n), Some(p)) => {
                out.ward_names.push(n);
                out.populations.push(p);
                if let (Some(dst), Some(src)) = (out.ward_codes.as_mut(), codes.as_ref()) {
                    dst.push(src[r].clone());
                }
            }
            _ => out.skipped_rows.push(r + 1),
        }
    }
    Ok(out)
}

fn from_pbi(table: &Table) -> Result<PopulationTable> {
    let ward = table
        .column("AdminLevel3")
        .map(|c| c.data.to_text())
        .unwrap_or_default();
    let lga = table
        .column("AdminLevel2")
        .map(|c| c.data.to_text())
        .unwrap_or_else(|| vec![None; table.n_rows()]);
    let members = table.numeric("N_FamilyMembers")?;
    let mut order: Vec<(String, Option<String>)> = Vec::new();
    let mut sums: std::collections::HashMap<(String, Option<String>), f64> = Default::default();
    let mut skipped = Vec::new();
    for r in 0..table.n_rows() {
        match (&ward[r], members[r]) {
            (Some(w), Some(m)) => {
                let key = (w.clone(), lga[r].clone());
                let e = sums.entry(key.clone()).or_insert_with(|| {
                    order.push(key);
                    0.0
                });
                *e += m;
            }
            _ => skipped.push(r + 1),
        }
    }
    Ok(PopulationTable {
        populations: order
            .iter()
            .map(|k| sums.get(k).copied().unwrap_or(0.0))
            .collect(),
        ward_names: order.into_iter().map(|k| k.0).collect(),
        ward_codes: None,
        skipped_rows: skipped,
    })
}
