//! The result files of tpr.md §8.1 as tables for the one CSV writer ([`crate::write_csv`]):
//! empty values are empty fields, counts integers, floats in shortest round-trip form.

use mrpt_table::tpr::{
    FacilityExport, Hotspot, Lga, LgaRate, LgaTrend, MethodCounts, Metric, MissingnessRow,
    ReprioritisedWard, Trend, WardLink, WardTpr, WardYear, round_half_even,
};

use mrpt_table::{ColumnData, Table};

/// Columns appended in order; every column has the same number of rows.
struct Builder {
    table: Table,
}

impl Builder {
    fn new(rows: usize) -> Builder {
        Builder {
            table: Table::with_rows(rows),
        }
    }

    fn push(&mut self, name: &str, data: ColumnData) {
        // Lengths agree by construction (one value per row); a mismatch would be our bug and
        // is dropped rather than panicking.
        let _ = self.table.push(name, data);
    }

    fn text<I: IntoIterator<Item = Option<String>>>(&mut self, name: &str, values: I) {
        self.push(name, ColumnData::Text(values.into_iter().collect()));
    }

    fn float<I: IntoIterator<Item = Option<f64>>>(&mut self, name: &str, values: I) {
        self.push(name, ColumnData::Float(values.into_iter().collect()));
    }

    fn int<I: IntoIterator<Item = Option<i64>>>(&mut self, name: &str, values: I) {
        self.push(name, ColumnData::Int(values.into_iter().collect()));
    }

    /// Counts: integers when every value is whole, else floats (non-integers are kept).
    fn count<I: IntoIterator<Item = Option<f64>>>(&mut self, name: &str, values: I) {
        let v: Vec<Option<f64>> = values.into_iter().collect();
        if v.iter()
            .flatten()
            .all(|x| x.fract() == 0.0 && x.abs() < 9.0e15)
        {
            self.int(name, v.into_iter().map(|x| x.map(|x| x as i64)));
        } else {
            self.float(name, v);
        }
    }

    fn bool<I: IntoIterator<Item = Option<bool>>>(&mut self, name: &str, values: I) {
        self.push(name, ColumnData::Bool(values.into_iter().collect()));
    }

    fn csv(self) -> Vec<u8> {
        crate::write_csv(&self.table)
    }
}

fn method_columns<'a>(b: &mut Builder, counts: impl Iterator<Item = &'a MethodCounts> + Clone) {
    b.float("TPR", counts.clone().map(|c| c.tpr));
    b.count("Total_Tested", counts.clone().map(|c| Some(c.tested)));
    b.count("Total_Positive", counts.clone().map(|c| Some(c.positive)));
    b.text(
        "Method_Used",
        counts
            .clone()
            .map(|c| Some(c.method_used.map_or("", |m| m.as_str()).to_string())),
    );
    b.count("RDT_Tested", counts.clone().map(|c| Some(c.rdt_tested)));
    b.count("RDT_Positive", counts.clone().map(|c| Some(c.rdt_positive)));
    b.float("RDT_TPR", counts.clone().map(|c| c.rdt_tpr));
    b.count(
        "Microscopy_Tested",
        counts.clone().map(|c| Some(c.microscopy_tested)),
    );
    b.count(
        "Microscopy_Positive",
        counts.clone().map(|c| Some(c.microscopy_positive)),
    );
    b.float("Microscopy_TPR", counts.map(|c| c.microscopy_tpr));
}

/// `tpr_results.csv`; `Burden`, `Burden_Capped` only for all ages.
pub fn results_csv(wards: &[WardTpr], all_ages: bool) -> Vec<u8> {
    let mut b = Builder::new(wards.len());
    b.text("WardName", wards.iter().map(|w| Some(w.ward_name.clone())));
    b.text("LGA", wards.iter().map(|w| Some(w.lga.clone())));
    b.text("WardCode", wards.iter().map(|w| w.ward_code.clone()));
    b.text(
        "DataWardName",
        wards.iter().map(|w| Some(w.data_ward_name.clone())),
    );
    b.text("lga_key", wards.iter().map(|w| Some(w.lga_key.clone())));
    b.text("ward_key", wards.iter().map(|w| Some(w.ward_key.clone())));
    b.text("Match", wards.iter().map(|w| Some(w.match_kind.clone())));
    method_columns(&mut b, wards.iter().map(|w| &w.counts));
    b.int(
        "Facilities",
        wards.iter().map(|w| Some(w.facilities as i64)),
    );
    b.int(
        "Facility_Months",
        wards.iter().map(|w| Some(w.facility_months as i64)),
    );
    b.count("Population", wards.iter().map(|w| w.population));
    if all_ages {
        b.float("Burden", wards.iter().map(|w| w.burden));
        b.bool("Burden_Capped", wards.iter().map(|w| Some(w.burden_capped)));
    }
    b.csv()
}

/// `tpr_time_series.csv` (§6.1).
pub fn time_series_csv(wards: &[WardTpr], series: &[WardYear], all_ages: bool) -> Vec<u8> {
    let w = |s: &WardYear| &wards[s.ward];
    let mut b = Builder::new(series.len());
    b.text(
        "WardName",
        series.iter().map(|s| Some(w(s).ward_name.clone())),
    );
    b.text("LGA", series.iter().map(|s| Some(w(s).lga.clone())));
    b.text("WardCode", series.iter().map(|s| w(s).ward_code.clone()));
    b.text("lga_key", series.iter().map(|s| Some(w(s).lga_key.clone())));
    b.text(
        "ward_key",
        series.iter().map(|s| Some(w(s).ward_key.clone())),
    );
    b.int("Year", series.iter().map(|s| Some(s.year as i64)));
    method_columns(&mut b, series.iter().map(|s| &s.counts));
    b.int(
        "Facilities",
        series.iter().map(|s| Some(s.facilities as i64)),
    );
    b.int(
        "Facility_Months",
        series.iter().map(|s| Some(s.facility_months as i64)),
    );
    b.count("Population", series.iter().map(|s| w(s).population));
    if all_ages {
        b.float("Burden", series.iter().map(|s| s.burden));
    }
    b.csv()
}

fn trend_columns(b: &mut Builder, trends: &[&Trend], with_tested: bool, metric: Metric) {
    let (first, latest) = match metric {
        Metric::Tpr => ("TPR_First", "TPR_Latest"),
        Metric::Burden => ("Burden_First", "Burden_Latest"),
    };
    b.float("Slope", trends.iter().map(|t| t.slope));
    b.text(
        "Direction",
        trends
            .iter()
            .map(|t| Some(t.direction.as_str().to_string())),
    );
    b.float("Delta_Latest", trends.iter().map(|t| t.delta_latest));
    b.float(first, trends.iter().map(|t| t.first));
    b.float(latest, trends.iter().map(|t| t.latest));
    b.int(
        "First_Year",
        trends.iter().map(|t| t.first_year.map(i64::from)),
    );
    b.int(
        "Latest_Year",
        trends.iter().map(|t| t.latest_year.map(i64::from)),
    );
    b.int(
        "Years_Count",
        trends.iter().map(|t| Some(t.years_count as i64)),
    );
    b.float("Kendall_Tau", trends.iter().map(|t| t.kendall_tau));
    b.float("MK_P_Value", trends.iter().map(|t| t.mk_p_value));
    if with_tested {
        b.count("Tested_Latest", trends.iter().map(|t| t.tested_latest));
    }
    b.text(
        "Methods_Used",
        trends.iter().map(|t| Some(t.methods_used.clone())),
    );
}

/// `trend_summary.csv` (§6.2-6.3), one row per ward; the first/latest columns are named after
/// the metric the trend was computed on (`TPR_*` or `Burden_*`).
pub fn trend_summary_csv(wards: &[WardTpr], trends: &[Trend], metric: Metric) -> Vec<u8> {
    let mut b = Builder::new(wards.len());
    b.text("WardName", wards.iter().map(|w| Some(w.ward_name.clone())));
    b.text("LGA", wards.iter().map(|w| Some(w.lga.clone())));
    b.text("lga_key", wards.iter().map(|w| Some(w.lga_key.clone())));
    b.text("ward_key", wards.iter().map(|w| Some(w.ward_key.clone())));
    trend_columns(&mut b, &trends.iter().collect::<Vec<_>>(), true, metric);
    b.csv()
}

/// `tpr_hotspots.csv` (§6.4).
pub fn hotspots_csv(wards: &[WardTpr], hotspots: &[Hotspot], metric: Metric) -> Vec<u8> {
    let w = |h: &Hotspot| &wards[h.ward];
    let mut b = Builder::new(hotspots.len());
    b.text(
        "lga_key",
        hotspots.iter().map(|h| Some(w(h).lga_key.clone())),
    );
    b.text(
        "ward_key",
        hotspots.iter().map(|h| Some(w(h).ward_key.clone())),
    );
    b.text(
        "WardName",
        hotspots.iter().map(|h| Some(w(h).ward_name.clone())),
    );
    b.text("LGA", hotspots.iter().map(|h| Some(w(h).lga.clone())));
    b.text(
        "Status",
        hotspots
            .iter()
            .map(|h| Some(if h.emerging { "emerging" } else { "resolving" }.to_string())),
    );
    b.int(
        "First_Year",
        hotspots.iter().map(|h| Some(h.first_year as i64)),
    );
    b.int(
        "Latest_Year",
        hotspots.iter().map(|h| Some(h.latest_year as i64)),
    );
    let (first, latest) = match metric {
        Metric::Tpr => ("TPR_First", "TPR_Latest"),
        Metric::Burden => ("Burden_First", "Burden_Latest"),
    };
    b.float(first, hotspots.iter().map(|h| Some(h.first)));
    b.float(latest, hotspots.iter().map(|h| Some(h.latest)));
    b.csv()
}

/// `tpr_lga_summary.csv` (§6.5): `Year` is `all` or the year.
pub fn lga_summary_csv(lgas: &[Lga], rates: &[LgaRate]) -> Vec<u8> {
    let mut b = Builder::new(rates.len());
    b.text("LGA", rates.iter().map(|r| Some(lgas[r.lga].name.clone())));
    b.text(
        "lga_key",
        rates.iter().map(|r| Some(lgas[r.lga].key.clone())),
    );
    b.text(
        "Year",
        rates
            .iter()
            .map(|r| Some(r.year.map_or("all".to_string(), |y| y.to_string()))),
    );
    method_columns(&mut b, rates.iter().map(|r| &r.counts));
    b.int("Wards", rates.iter().map(|r| Some(r.wards as i64)));
    b.int(
        "Facilities",
        rates.iter().map(|r| Some(r.facilities as i64)),
    );
    b.int(
        "Facility_Months",
        rates.iter().map(|r| Some(r.facility_months as i64)),
    );
    b.csv()
}

/// `tpr_lga_trend.csv` (§6.5).
pub fn lga_trend_csv(lgas: &[Lga], trends: &[LgaTrend]) -> Vec<u8> {
    let mut b = Builder::new(trends.len());
    b.text("LGA", trends.iter().map(|t| Some(lgas[t.lga].name.clone())));
    b.text(
        "lga_key",
        trends.iter().map(|t| Some(lgas[t.lga].key.clone())),
    );
    trend_columns(
        &mut b,
        &trends.iter().map(|t| &t.trend).collect::<Vec<_>>(),
        false,
        Metric::Tpr,
    );
    b.csv()
}

/// `tpr_reprioritise.csv` (§6.6); `Burden_Latest` instead of `TPR_Latest` for the burden metric.
pub fn reprioritise_csv(wards: &[WardTpr], rows: &[ReprioritisedWard], metric: Metric) -> Vec<u8> {
    let w = |r: &ReprioritisedWard| &wards[r.ward];
    let mut b = Builder::new(rows.len());
    b.int("Priority", rows.iter().map(|r| Some(r.priority as i64)));
    b.text(
        "WardName",
        rows.iter().map(|r| Some(w(r).ward_name.clone())),
    );
    b.text("LGA", rows.iter().map(|r| Some(w(r).lga.clone())));
    b.text("lga_key", rows.iter().map(|r| Some(w(r).lga_key.clone())));
    b.text("ward_key", rows.iter().map(|r| Some(w(r).ward_key.clone())));
    let latest = match metric {
        Metric::Tpr => "TPR_Latest",
        Metric::Burden => "Burden_Latest",
    };
    b.float(latest, rows.iter().map(|r| Some(r.latest)));
    b.float("Slope", rows.iter().map(|r| Some(r.slope)));
    b.text(
        "Direction",
        rows.iter().map(|r| Some(r.direction.as_str().to_string())),
    );
    b.int(
        "Rank_Latest",
        rows.iter().map(|r| Some(r.rank_latest as i64)),
    );
    b.int("Rank_Slope", rows.iter().map(|r| Some(r.rank_slope as i64)));
    b.int("Score", rows.iter().map(|r| Some(r.score as i64)));
    b.count("Tested_Latest", rows.iter().map(|r| Some(r.tested_latest)));
    b.int(
        "Years_Count",
        rows.iter().map(|r| Some(r.years_count as i64)),
    );
    b.csv()
}

/// `tpr_missingness.csv` (§7).
pub fn missingness_csv(rows: &[MissingnessRow]) -> Vec<u8> {
    let mut b = Builder::new(rows.len());
    b.text("scope", rows.iter().map(|r| Some(r.scope.clone())));
    b.text("key", rows.iter().map(|r| Some(r.key.clone())));
    b.int("cells", rows.iter().map(|r| Some(r.cells as i64)));
    b.int("missing", rows.iter().map(|r| Some(r.missing as i64)));
    b.float("pct_missing", rows.iter().map(|r| r.pct_missing));
    b.int(
        "cells_active",
        rows.iter().map(|r| r.cells_active.map(|v| v as i64)),
    );
    b.int(
        "missing_active",
        rows.iter().map(|r| r.missing_active.map(|v| v as i64)),
    );
    b.float(
        "pct_missing_active",
        rows.iter().map(|r| r.pct_missing_active),
    );
    b.csv()
}

/// `ward_matching.csv` (§4.4): every data ward, sorted by keys.
pub fn ward_matching_csv(export: &FacilityExport, links: &[WardLink]) -> Vec<u8> {
    let mut order: Vec<usize> = (0..export.wards.len()).collect();
    let key = |w: usize| {
        let ward = &export.wards[w];
        let lga = &export.lgas[ward.lga as usize];
        (lga.key.as_str(), ward.key.as_str(), lga.state)
    };
    order.sort_by(|a, b| key(*a).cmp(&key(*b)));
    let link = |w: usize| links.get(w).cloned().unwrap_or_else(WardLink::unlinked);
    let mut b = Builder::new(order.len());
    let lga = |w: usize| &export.lgas[export.wards[w].lga as usize];
    b.text("lga_key", order.iter().map(|w| Some(lga(*w).key.clone())));
    b.text(
        "ward_key",
        order.iter().map(|w| Some(export.wards[*w].key.clone())),
    );
    b.text(
        "DataWardName",
        order.iter().map(|w| Some(export.wards[*w].name.clone())),
    );
    b.text("LGA", order.iter().map(|w| Some(lga(*w).name.clone())));
    b.text("Match", order.iter().map(|w| Some(link(*w).match_kind)));
    b.float(
        "match_score",
        order
            .iter()
            .map(|w| link(*w).score.map(|s| round_half_even(s, 4))),
    );
    b.text("WardCode", order.iter().map(|w| link(*w).code));
    b.text(
        "ShapefileWardName",
        order.iter().map(|w| link(*w).shape_name),
    );
    b.csv()
}
