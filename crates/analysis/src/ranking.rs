//! Ranks and vulnerability categories shared by the composite and PCA methods (§3.5–§3.6).

use mrpt_table::{Category, RankedWard};

/// Row indices ordered by score descending; ties keep input order (stable), NaN last.
pub fn rank_descending(scores: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (scores[a], scores[b]);
        match (x.is_nan(), y.is_nan()) {
            (true, true) => std::cmp::Ordering::Equal,
            (true, false) => std::cmp::Ordering::Greater,
            (false, true) => std::cmp::Ordering::Less,
            (false, false) => y.partial_cmp(&x).unwrap_or(std::cmp::Ordering::Equal),
        }
    });
    order
}

/// §3.6: top ⌊n/3⌋ High, bottom ⌊n/3⌋ Low, the rest Medium (all Medium when n < 3).
pub fn categorize(rank: usize, n: usize) -> Category {
    Category::of_rank(rank, n)
}

pub(crate) fn rank_wards(names: &[String], rows: &[usize], scores: &[f64]) -> Vec<RankedWard> {
    let n = scores.len();
    rank_descending(scores)
        .into_iter()
        .enumerate()
        .map(|(pos, i)| RankedWard {
            row: rows[i],
            ward_name: names[i].clone(),
            score: scores[i],
            rank: pos + 1,
            category: categorize(pos + 1, n),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_ties_and_nan_last() {
        assert_eq!(
            rank_descending(&[1.0, f64::NAN, 3.0, 1.0]),
            vec![2, 0, 3, 1]
        );
    }

    #[test]
    fn category_sizes() {
        let count = |n: usize| {
            let mut c = [0; 3];
            for r in 1..=n {
                match categorize(r, n) {
                    Category::High => c[0] += 1,
                    Category::Medium => c[1] += 1,
                    Category::Low => c[2] += 1,
                }
            }
            c
        };
        assert_eq!(count(35), [11, 13, 11]);
        assert_eq!(count(66), [22, 22, 22]);
        assert_eq!(count(2), [0, 2, 0]);
        assert_eq!(count(1), [0, 1, 0]);
    }
}
