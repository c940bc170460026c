//! The ward table and geometries the caller hands in. They mirror mrpt-formats' in-memory table
//! (same four dtypes, pandas semantics) so converting is a move, not a parse.

use serde::{Deserialize, Serialize};

/// One column's values; `None` (or NaN in `Float`) is a missing cell. Dtypes follow pandas:
/// `Int` is int64 (no missing cells in practice), `Float` any other all-numeric column, `Bool` a
/// True/False column (not numeric for scoring), `Text` as soon as one cell is not a number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dtype", content = "values", rename_all = "snake_case")]
pub enum ColumnData {
    Float(Vec<Option<f64>>),
    Int(Vec<Option<i64>>),
    Bool(Vec<Option<bool>>),
    Text(Vec<Option<String>>),
}

impl ColumnData {
    pub fn len(&self) -> usize {
        match self {
            ColumnData::Float(v) => v.len(),
            ColumnData::Int(v) => v.len(),
            ColumnData::Bool(v) => v.len(),
            ColumnData::Text(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Numeric in the pandas `select_dtypes('number')` sense: float or int, never bool.
    pub fn is_numeric(&self) -> bool {
        matches!(self, ColumnData::Float(_) | ColumnData::Int(_))
    }

    /// Numeric values as f64 with NaN folded into `None`; `None` for non-numeric columns.
    pub fn to_f64(&self) -> Option<Vec<Option<f64>>> {
        match self {
            ColumnData::Float(v) => Some(v.iter().map(|x| x.filter(|f| !f.is_nan())).collect()),
            ColumnData::Int(v) => Some(v.iter().map(|x| x.map(|i| i as f64)).collect()),
            _ => None,
        }
    }

    pub fn is_missing(&self, row: usize) -> bool {
        match self {
            ColumnData::Float(v) => v.get(row).is_none_or(|x| x.is_none_or(f64::is_nan)),
            ColumnData::Int(v) => v.get(row).is_none_or(Option::is_none),
            ColumnData::Bool(v) => v.get(row).is_none_or(Option::is_none),
            ColumnData::Text(v) => v.get(row).is_none_or(Option::is_none),
        }
    }

    pub fn missing_count(&self) -> usize {
        (0..self.len()).filter(|&r| self.is_missing(r)).count()
    }

    /// The cell as text (used for ward names and text joins); numbers the pandas way.
    pub fn cell_text(&self, row: usize) -> Option<String> {
        match self {
            ColumnData::Float(v) => v
                .get(row)
                .copied()
                .flatten()
                .filter(|f| !f.is_nan())
                .map(crate::output::python_float_repr),
            ColumnData::Int(v) => v.get(row).copied().flatten().map(|i| i.to_string()),
            ColumnData::Bool(v) => v
                .get(row)
                .copied()
                .flatten()
                .map(|b| if b { "True" } else { "False" }.to_string()),
            ColumnData::Text(v) => v.get(row).cloned().flatten(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    pub data: ColumnData,
}

impl Column {
    pub fn new(name: impl Into<String>, data: ColumnData) -> Column {
        Column {
            name: name.into(),
            data,
        }
    }
}

/// The uploaded ward-level table, columns in file order (pandas `read_csv` names, so an unnamed
/// leading index column is `Unnamed: 0`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WardTable {
    pub columns: Vec<Column>,
}

impl WardTable {
    pub fn n_rows(&self) -> usize {
        self.columns.first().map_or(0, |c| c.data.len())
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The ward-name column per ChatMRPT's detection order (`WardName, ward_name, Ward, ward`).
    pub fn ward_column_index(&self) -> Option<usize> {
        ["WardName", "ward_name", "Ward", "ward"]
            .iter()
            .find_map(|n| self.column_index(n))
    }

    /// Ward names as text, one per row (`None` where the cell is missing).
    pub fn ward_names(&self) -> Option<Vec<Option<String>>> {
        let idx = self.ward_column_index()?;
        let data = &self.columns[idx].data;
        Some((0..data.len()).map(|r| data.cell_text(r)).collect())
    }
}

/// One polygon: an exterior ring and its holes, vertices exactly as stored in the shapefile.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Polygon {
    pub exterior: Vec<[f64; 2]>,
    #[serde(default)]
    pub holes: Vec<Vec<[f64; 2]>>,
}

impl Polygon {
    pub fn rings(&self) -> impl Iterator<Item = &Vec<[f64; 2]>> {
        std::iter::once(&self.exterior).chain(self.holes.iter())
    }
}

/// A ward's shape (one polygon, or the parts of a multipolygon).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WardGeometry {
    pub polygons: Vec<Polygon>,
}

impl WardGeometry {
    pub fn vertices(&self) -> impl Iterator<Item = [f64; 2]> + '_ {
        self.polygons
            .iter()
            .flat_map(|p| p.rings())
            .flat_map(|r| r.iter().copied())
    }
}
