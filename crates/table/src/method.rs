//! The choices a user makes about rankings and net plans, named once for every crate (and for
//! the JSON of the API: `"composite"`, `"pca"`, `"rank"`, `"rural_first"`).

use serde::{Deserialize, Serialize};

/// Which vulnerability ranking a result, a map or an ITN plan is based on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RankingMethod {
    /// Median of the composite models (`composite_score`, `composite_rank`).
    #[default]
    Composite,
    /// Weighted principal components (`pca_score`, `pca_rank`).
    Pca,
}

impl RankingMethod {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RankingMethod::Composite => "composite",
            RankingMethod::Pca => "pca",
        }
    }

    /// The name people read ("Composite", "PCA").
    pub fn title(self) -> &'static str {
        match self {
            RankingMethod::Composite => "Composite",
            RankingMethod::Pca => "PCA",
        }
    }
}

/// In which order wards receive nets (analysis.md §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItnStrategy {
    /// ChatMRPT \[J\]: strictly by risk rank, stopping at the first ward that does not fit.
    Rank,
    /// ChatMRPT \[N\]: rural wards (below the urban threshold) first, urban ones with a surplus.
    RuralFirst,
}

impl ItnStrategy {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ItnStrategy::Rank => "rank",
            ItnStrategy::RuralFirst => "rural_first",
        }
    }
}
