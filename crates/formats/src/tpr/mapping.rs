//! Column mapping (tpr.md §2): structural fields by name, indicators by phrase, then the
//! caller's explicit override, validated.

use std::collections::BTreeMap;

use mrpt_table::tpr::{
    AGE_INDICATORS, AmbiguousColumn, INDICATOR_SLOTS, Indicator, StructuralField,
};

use super::rules::{IndicatorRule, classify_indicator, match_form, structural_candidates};
use crate::error::{Error, Result};

/// Where each field reads from, as column indices of the header.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Layout {
    pub structural: BTreeMap<StructuralField, usize>,
    /// Columns per indicator slot; several = one indicator split in two (§1.5 duplicates).
    pub indicators: [Vec<usize>; INDICATOR_SLOTS],
    pub ambiguous: Vec<AmbiguousColumn>,
    /// Headers that are neither structural nor indicators.
    pub unmapped: Vec<usize>,
    /// All-ages columns set aside because age-specific ones exist.
    pub ignored_all_ages: Vec<usize>,
    /// Indicator slots whose column was chosen by the caller (validated for numbers later).
    pub overridden: Vec<usize>,
}

impl Layout {
    pub fn field(&self, f: StructuralField) -> Option<usize> {
        self.structural.get(&f).copied()
    }

    /// Whether at least one complete tested/positive pair exists.
    pub fn has_any_pair(&self) -> bool {
        Indicator::all().iter().any(|i| {
            i.kind == mrpt_table::tpr::CountKind::Tested
                && !self.indicators[i.slot()].is_empty()
                && !self.indicators[i.partner().slot()].is_empty()
        })
    }
}

/// True for the generated names of empty header cells (`column_<n>`), which are never mapped.
pub fn is_placeholder(header: &str, index: usize) -> bool {
    header == format!("column_{}", index + 1)
}

/// Applies the rules of §2.1 and §2.2 to repaired headers. `placeholders[i]` marks generated
/// names.
pub fn apply_rules(headers: &[String], placeholders: &[bool]) -> Layout {
    let forms: Vec<String> = headers.iter().map(|h| match_form(h)).collect();
    let mut used = placeholders.to_vec();
    let mut layout = Layout::default();
    for field in StructuralField::ALL {
        'candidates: for candidate in structural_candidates(field) {
            for (i, form) in forms.iter().enumerate() {
                if !used[i] && form == candidate {
                    layout.structural.insert(field, i);
                    used[i] = true;
                    break 'candidates;
                }
            }
        }
    }
    for (i, form) in forms.iter().enumerate() {
        if used[i] {
            continue;
        }
        match classify_indicator(form) {
            IndicatorRule::Field(ind) => layout.indicators[ind.slot()].push(i),
            IndicatorRule::Ambiguous(reason) => layout.ambiguous.push(AmbiguousColumn {
                column: headers[i].clone(),
                reason,
            }),
            IndicatorRule::NotIndicator => layout.unmapped.push(i),
        }
    }
    set_aside_all_ages(&mut layout);
    layout
}

/// An all-ages column is used only when no age-specific column of its method and kind exists.
fn set_aside_all_ages(layout: &mut Layout) {
    for slot in AGE_INDICATORS..INDICATOR_SLOTS {
        let ind = Indicator::all()[slot];
        let specific = Indicator::all()[..AGE_INDICATORS].iter().any(|s| {
            s.method == ind.method && s.kind == ind.kind && !layout.indicators[s.slot()].is_empty()
        });
        if specific && !layout.indicators[slot].is_empty() {
            let cols = std::mem::take(&mut layout.indicators[slot]);
            layout.ignored_all_ages.extend(cols);
        }
    }
}

/// The caller's `mapping` (§2.4): field -> exact repaired header, or `None` to unmap.
pub fn apply_override(
    layout: &mut Layout,
    headers: &[String],
    overrides: &BTreeMap<String, Option<String>>,
) -> Result<()> {
    let bad = |reason: String| Error::TprMapping { reason };
    let mut resolved = Vec::new();
    for (field, header) in overrides {
        let structural = StructuralField::from_name(field);
        let indicator = Indicator::from_field_name(field);
        if structural.is_none() && indicator.is_none() {
            return Err(bad(format!(
                "unknown field `{field}` in mapping; fields are {}, and indicator fields such as \
                 u5_rdt_tested, o5_microscopy_positive, all_rdt_tested",
                StructuralField::ALL
                    .iter()
                    .map(|f| f.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let column = match header {
            None => None,
            Some(h) => Some(headers.iter().position(|x| x == h).ok_or_else(|| {
                bad(format!(
                    "mapping for `{field}`: no column named `{h}`; columns are: {}",
                    headers.join(" | ")
                ))
            })?),
        };
        resolved.push((structural, indicator, column));
    }
    // A header given for a field is no longer read for a field the caller did not name.
    for (_, _, column) in &resolved {
        let Some(c) = *column else { continue };
        let named_structural =
            |f: &StructuralField| resolved.iter().any(|(s, _, _)| s == &Some(*f));
        layout
            .structural
            .retain(|f, v| *v != c || named_structural(f));
        for ind in Indicator::all() {
            if !resolved.iter().any(|(_, i, _)| i == &Some(ind)) {
                layout.indicators[ind.slot()].retain(|v| *v != c);
            }
        }
        layout.unmapped.retain(|v| *v != c);
        layout.ignored_all_ages.retain(|v| *v != c);
        layout.ambiguous.retain(|a| a.column != headers[c]);
    }
    for (structural, indicator, column) in resolved {
        match (structural, indicator) {
            (Some(f), _) => {
                layout.structural.remove(&f);
                if let Some(c) = column {
                    layout.structural.insert(f, c);
                }
            }
            (None, Some(ind)) => {
                layout.indicators[ind.slot()] = column.into_iter().collect();
                if column.is_some() {
                    layout.overridden.push(ind.slot());
                }
            }
            (None, None) => {}
        }
    }
    // One column may not be both a tested and a positive count (or two structural fields).
    for (f, c) in &layout.structural {
        if let Some((other, _)) = layout
            .structural
            .iter()
            .find(|(o, v)| *v == c && o.as_str() != f.as_str())
        {
            return Err(bad(format!(
                "column `{}` is mapped to both `{}` and `{}`",
                headers[*c],
                f.as_str(),
                other.as_str()
            )));
        }
    }
    for ind in Indicator::all() {
        for c in &layout.indicators[ind.slot()] {
            let clash = Indicator::all().into_iter().find(|other| {
                other.slot() != ind.slot() && layout.indicators[other.slot()].contains(c)
            });
            if let Some(other) = clash {
                return Err(bad(format!(
                    "column `{}` is mapped to both `{}` and `{}`",
                    headers[*c],
                    ind.field_name(),
                    other.field_name()
                )));
            }
            if let Some((f, _)) = layout.structural.iter().find(|(_, v)| *v == c) {
                return Err(bad(format!(
                    "column `{}` is mapped to both `{}` and `{}`",
                    headers[*c],
                    f.as_str(),
                    ind.field_name()
                )));
            }
        }
    }
    set_aside_all_ages(layout);
    Ok(())
}

/// The effective mapping as field -> headers, for responses and `tpr_selection.json`.
pub fn describe(layout: &Layout, headers: &[String]) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for (f, c) in &layout.structural {
        out.insert(f.as_str().to_string(), vec![headers[*c].clone()]);
    }
    for ind in Indicator::all() {
        let cols = &layout.indicators[ind.slot()];
        if !cols.is_empty() {
            out.insert(
                ind.field_name(),
                cols.iter().map(|c| headers[*c].clone()).collect(),
            );
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn headers(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn structural_priority_and_no_reuse() {
        let h = headers(&[
            "Ward",
            "orgunitlevel4",
            "LGA",
            "State",
            "Health Faccility",
            "level",
            "orgunitlevel3",
            "periodname",
            "periodcode",
        ]);
        let l = apply_rules(&h, &[false; 9]);
        // orgunitlevel4 outranks Ward, orgunitlevel3 outranks LGA, periodcode outranks periodname.
        assert_eq!(l.field(StructuralField::Ward), Some(1));
        assert_eq!(l.field(StructuralField::Lga), Some(6));
        assert_eq!(l.field(StructuralField::State), Some(3));
        assert_eq!(l.field(StructuralField::FacilityName), Some(4));
        assert_eq!(l.field(StructuralField::FacilityLevel), Some(5));
        assert_eq!(l.field(StructuralField::Period), Some(8));
    }

    #[test]
    fn orgunitlevel3_is_never_the_level() {
        let h = headers(&[
            "orgunitlevel2",
            "orgunitlevel3",
            "orgunitlevel4",
            "orgunitlevel5",
        ]);
        let l = apply_rules(&h, &[false; 4]);
        assert_eq!(l.field(StructuralField::FacilityLevel), None);
        assert_eq!(l.unmapped, vec![3]);
    }

    #[test]
    fn all_ages_column_set_aside_when_age_columns_exist() {
        let h = headers(&[
            "RDT tested <5",
            "RDT positive <5",
            "Persons tested for malaria by RDT",
            "Microscopy tested",
            "Microscopy positive",
        ]);
        let l = apply_rules(&h, &[false; 5]);
        assert_eq!(l.ignored_all_ages, vec![2]);
        assert_eq!(
            l.indicators[Indicator::from_field_name("all_microscopy_tested")
                .unwrap()
                .slot()],
            vec![3]
        );
        assert!(l.has_any_pair());
    }

    #[test]
    fn duplicates_collect_under_one_field() {
        let h = headers(&["RDT tested <5yrs", "RDT tested <5yrs.1", "RDT positive <5"]);
        let l = apply_rules(&h, &[false; 3]);
        assert_eq!(l.indicators[0], vec![0, 1]);
    }

    #[test]
    fn override_rules() {
        let h = headers(&["W", "L", "T", "P", "X"]);
        let mut l = apply_rules(&h, &[false; 5]);
        assert!(l.field(StructuralField::Ward).is_none());
        let mut m = BTreeMap::new();
        m.insert("ward".to_string(), Some("W".to_string()));
        m.insert("lga".to_string(), Some("L".to_string()));
        m.insert("u5_rdt_tested".to_string(), Some("T".to_string()));
        m.insert("u5_rdt_positive".to_string(), Some("P".to_string()));
        apply_override(&mut l, &h, &m).unwrap();
        assert_eq!(l.field(StructuralField::Ward), Some(0));
        assert!(l.has_any_pair());
        l.overridden.sort();
        assert_eq!(l.overridden, vec![0, 1]);

        let mut bad = BTreeMap::new();
        bad.insert("u5_rdt_tested".to_string(), Some("T".to_string()));
        bad.insert("u5_rdt_positive".to_string(), Some("T".to_string()));
        let e = apply_override(&mut apply_rules(&h, &[false; 5]), &h, &bad).unwrap_err();
        assert!(e.to_string().contains("both"), "{e}");

        // Two structural fields on one column are refused too, naming both.
        let mut twice = BTreeMap::new();
        twice.insert("ward".to_string(), Some("W".to_string()));
        twice.insert("lga".to_string(), Some("W".to_string()));
        let e = apply_override(&mut apply_rules(&h, &[false; 5]), &h, &twice).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("`W`") && text.contains("`ward`") && text.contains("`lga`"),
            "{e}"
        );

        let mut unknown = BTreeMap::new();
        unknown.insert("tpr".to_string(), Some("T".to_string()));
        let e = apply_override(&mut apply_rules(&h, &[false; 5]), &h, &unknown).unwrap_err();
        assert!(e.to_string().contains("unknown field `tpr`"), "{e}");

        let mut missing = BTreeMap::new();
        missing.insert("ward".to_string(), Some("Nope".to_string()));
        let e = apply_override(&mut apply_rules(&h, &[false; 5]), &h, &missing).unwrap_err();
        assert!(e.to_string().contains("no column named `Nope`"), "{e}");

        // null unmaps a field the rules had found.
        let h2 = headers(&["ward", "lga", "RDT tested <5", "RDT positive <5"]);
        let mut l2 = apply_rules(&h2, &[false; 4]);
        let mut unmap = BTreeMap::new();
        unmap.insert("u5_rdt_positive".to_string(), None);
        apply_override(&mut l2, &h2, &unmap).unwrap();
        assert!(!l2.has_any_pair());
    }
}
