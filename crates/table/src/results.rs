//! Result vocabulary shared by the analysis that computes it and the crates that show it:
//! ranked wards with their risk category, and the figures of an ITN plan.

use serde::{Deserialize, Serialize};

/// A ward's vulnerability category (analysis.md §3.6): top third High, bottom third Low.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Category {
    #[serde(rename = "High Risk")]
    High,
    #[serde(rename = "Medium Risk")]
    Medium,
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
    pub ward_name: String,
    pub score: f64,
    pub rank: usize,
    pub category: Category,
    /// The ward's row in the table the ranking was computed from (for a ranking read back from
    /// a file, its row in that file).
    pub row: usize,
}

/// Coverage across the wards that received nets, in percent (1 decimal).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WardCoverageStats {
    pub avg_coverage_percent: f64,
    pub min_coverage_percent: f64,
    pub max_coverage_percent: f64,
}

/// The figures of an ITN plan (analysis.md §5 "Stats"), as `itn_distribution_results.json`
/// carries them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItnStats {
    pub total_nets: i64,
    pub allocated: i64,
    pub remaining: i64,
    /// Share of the matched population covered, in percent (1 decimal).
    pub coverage_percent: f64,
    /// Wards that received nets.
    pub prioritized_wards: usize,
    pub fully_covered_wards: usize,
    pub partially_covered_wards: usize,
    pub reprioritized_wards: usize,
    pub total_population: i64,
    pub covered_population: i64,
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
