//! Result vocabulary shared by the analysis that computes it and the crates that show it:
//! ranked wards with their risk category, and the figures of an ITN plan.

use serde::{Deserialize, Serialize};

/// A ward's vulnerability category (analysis.md §3.6): top third High, bottom third Low.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Category {
    /// Top third of the ranks (written `High Risk`).
    #[serde(rename = "High Risk")]
    High,
    /// Middle ranks (written `Medium Risk`).
    #[serde(rename = "Medium Risk")]
    Medium,
    /// Bottom third of the ranks (written `Low Risk`).
    #[serde(rename = "Low Risk")]
    Low,
}

impl Category {
    /// ChatMRPT's label, as written in the result files.
    pub fn label(self) -> &'static str {
        match self {
            Category::High => "High Risk",
            Category::Medium => "Medium Risk",
            Category::Low => "Low Risk",
        }
    }

    /// Parses ChatMRPT's labels (as found in result files, this service's or the old system's).
    pub fn from_label(label: &str) -> Option<Category> {
        match label.trim() {
            "High Risk" => Some(Category::High),
            "Medium Risk" => Some(Category::Medium),
            "Low Risk" => Some(Category::Low),
            _ => None,
        }
    }

    /// §3.6: of `n` wards, the top ⌊n/3⌋ ranks are High, the bottom ⌊n/3⌋ Low, the rest Medium
    /// (all Medium when n < 3).
    pub fn of_rank(rank: usize, n: usize) -> Category {
        let third = n / 3;
        if rank <= third {
            Category::High
        } else if rank > n - third {
            Category::Low
        } else {
            Category::Medium
        }
    }
}

impl std::fmt::Display for Category {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// One ward's place in a ranking (1 = most vulnerable).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankedWard {
    /// The ward's name as the ranked table carries it (after §1.3 fuzzy renames).
    pub ward_name: String,
    /// The method's score: composite score (0-1 after normalisation) or PCA score; higher = more vulnerable.
    pub score: f64,
    /// 1-based rank, 1 = most vulnerable; equal scores keep table order, NaN scores rank last.
    pub rank: usize,
    /// The rank's third ([`Category::of_rank`]).
    pub category: Category,
    /// The ward's row in the table the ranking was computed from (for a ranking read back from
    /// a file, its row in that file).
    pub row: usize,
}

/// Coverage across the wards that received nets, in percent (1 decimal).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WardCoverageStats {
    /// Mean of the per-ward coverage, percent 0-100.
    pub avg_coverage_percent: f64,
    /// Lowest per-ward coverage, percent 0-100.
    pub min_coverage_percent: f64,
    /// Highest per-ward coverage, percent 0-100.
    pub max_coverage_percent: f64,
}

/// The figures of an ITN plan (analysis.md §5 "Stats"), as `itn_distribution_results.json`
/// carries them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItnStats {
    /// Nets available, as the user entered them.
    pub total_nets: i64,
    /// Nets given to wards (never more than `total_nets`).
    pub allocated: i64,
    /// `total_nets - allocated`: nets left after every ward was covered or no ward could take more.
    pub remaining: i64,
    /// Share of the matched population covered, in percent (1 decimal).
    pub coverage_percent: f64,
    /// Wards that received nets.
    pub prioritized_wards: usize,
    /// Wards that received nets and reached 100% coverage.
    pub fully_covered_wards: usize,
    /// Wards that received nets but less than 100% coverage.
    pub partially_covered_wards: usize,
    /// Always 0: kept because ChatMRPT's results JSON carries it (analysis.md §5).
    pub reprioritized_wards: usize,
    /// Population of the wards matched to the population table (people).
    pub total_population: i64,
    /// People covered by the allocated nets.
    pub covered_population: i64,
    /// Spread of coverage across the wards that received nets.
    pub ward_coverage_stats: WardCoverageStats,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_are_thirds() {
        let n = 7;
        let cats: Vec<Category> = (1..=n).map(|r| Category::of_rank(r, n)).collect();
        assert_eq!(
            cats,
            [
                Category::High,
                Category::High,
                Category::Medium,
                Category::Medium,
                Category::Medium,
                Category::Low,
                Category::Low
            ]
        );
        assert_eq!(Category::of_rank(1, 2), Category::Medium);
        assert_eq!(Category::from_label(" Low Risk"), Some(Category::Low));
    }
}
