//! LGA outlines: the arcs where neighbouring wards belong to different LGAs.
//!
//! Shared borders come out of [`crate::geometry::prepare`] identical on both sides (simplified
//! once per arc between junctions, then quantised), so a border segment is the same pair of
//! quantised points in both wards' rings. A segment whose wards have two different known LGAs is
//! an outline segment; outline segments are chained into maximal arcs that end where three or
//! more outline segments meet (or at a dead end). A closed LGA border with no such junction is one
//! arc. Borders on the edge of the map (one ward only) are not outlines.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::geometry::QuantRings;

type Pt = [i32; 2];

fn edge(a: Pt, b: Pt) -> (Pt, Pt) {
    if a <= b { (a, b) } else { (b, a) }
}

/// The outline arcs (each a polyline of quantised points) for wards `rings[i]` with LGA
/// `lgas[i]`.
pub(crate) fn lga_arcs(rings: &[QuantRings], lgas: &[Option<&str>]) -> Vec<Vec<Pt>> {
    // Edge -> the first LGA seen on it, and whether a different LGA shares it.
    let mut seen: HashMap<(Pt, Pt), (Option<&str>, bool)> = HashMap::new();
    for (ward, rs) in rings.iter().enumerate() {
        let lga = lgas.get(ward).copied().flatten();
        for ring in rs {
            let n = ring.len();
            if n < 2 {
                continue;
            }
            for k in 0..n {
                let (a, b) = (ring[k], ring[(k + 1) % n]);
                if a == b {
                    continue;
                }
                let e = seen.entry(edge(a, b)).or_insert((lga, false));
                if let (Some(first), Some(this)) = (e.0, lga)
                    && first != this
                {
                    e.1 = true;
                }
                if e.0.is_none() {
                    e.0 = lga;
                }
            }
        }
    }
    let mut edges: Vec<(Pt, Pt)> = seen
        .into_iter()
        .filter(|(_, (_, differs))| *differs)
        .map(|(e, _)| e)
        .collect();
    edges.sort_unstable();
    let mut adjacency: HashMap<Pt, Vec<usize>> = HashMap::new();
    for (i, (a, b)) in edges.iter().enumerate() {
        adjacency.entry(*a).or_default().push(i);
        adjacency.entry(*b).or_default().push(i);
    }
    let degree = |p: &Pt| adjacency.get(p).map_or(0, Vec::len);
    let mut used = vec![false; edges.len()];
    let mut arcs = Vec::new();
    let walk = |start: Pt, first: usize, used: &mut Vec<bool>| -> Vec<Pt> {
        let mut arc = vec![start];
        let (mut at, mut e) = (start, first);
        loop {
            used[e] = true;
            let (a, b) = edges[e];
            let next = if a == at { b } else { a };
            arc.push(next);
            at = next;
            if degree(&at) != 2 {
                break;
            }
            let Some(&n) = adjacency
                .get(&at)
                .and_then(|v| v.iter().find(|&&x| !used[x]))
            else {
                break;
            };
            e = n;
        }
        arc
    };
    // Open arcs start at a junction or an end, in a fixed order so output is deterministic.
    let mut starts: Vec<Pt> = adjacency
        .keys()
        .copied()
        .filter(|p| degree(p) != 2)
        .collect();
    starts.sort_unstable();
    for s in starts {
        let list = adjacency.get(&s).cloned().unwrap_or_default();
        for e in list {
            if !used[e] {
                arcs.push(walk(s, e, &mut used));
            }
        }
    }
    // What is left are closed loops.
    for e in 0..edges.len() {
        if !used[e] {
            let start = edges[e].0;
            arcs.push(walk(start, e, &mut used));
        }
    }
    arcs
}

/// Path data of open polylines (absolute move, relative lines).
pub(crate) fn arcs_path(arcs: &[Vec<Pt>]) -> String {
    let mut d = String::with_capacity(arcs.iter().map(Vec::len).sum::<usize>() * 6);
    for arc in arcs {
        let Some(first) = arc.first() else { continue };
        let _ = write!(d, "M{} {}", first[0], first[1]);
        let mut prev = *first;
        for (k, p) in arc.iter().enumerate().skip(1) {
            let (dx, dy) = (p[0] - prev[0], p[1] - prev[1]);
            if k == 1 {
                d.push('l');
            } else if dx >= 0 {
                d.push(' ');
            }
            let _ = write!(d, "{dx}");
            if dy >= 0 {
                d.push(' ');
            }
            let _ = write!(d, "{dy}");
            prev = *p;
        }
    }
    d
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn square(x: i32, y: i32) -> QuantRings {
        vec![vec![[x, y], [x + 10, y], [x + 10, y + 10], [x, y + 10]]]
    }

    #[test]
    fn two_lgas_in_a_row_share_one_arc() {
        // A | A | B : one vertical outline arc of one segment.
        let rings = vec![square(0, 0), square(10, 0), square(20, 0)];
        let arcs = lga_arcs(&rings, &[Some("A"), Some("A"), Some("B")]);
        assert_eq!(arcs, vec![vec![[20, 0], [20, 10]]]);
        assert!(lga_arcs(&rings, &[Some("A"), Some("A"), Some("A")]).is_empty());
        // Unknown LGAs draw no outline.
        assert!(lga_arcs(&rings, &[Some("A"), None, Some("B")]).is_empty());
    }

    #[test]
    fn three_lgas_meeting_make_three_arcs() {
        // 2x2 grid: top row A A, bottom-left B, bottom-right C. Outlines: A|B and A|C along
        // y = 10 joined at the centre, where B|C runs down: three arcs meeting at (10, 10).
        let rings = vec![square(0, 10), square(10, 10), square(0, 0), square(10, 0)];
        let arcs = lga_arcs(&rings, &[Some("A"), Some("A"), Some("B"), Some("C")]);
        assert_eq!(arcs.len(), 3, "{arcs:?}");
        assert_eq!(arcs_path(&[vec![[0, 0], [5, 0], [5, -3]]]), "M0 0l5 0 0-3");
    }

    #[test]
    fn an_enclosed_lga_is_one_closed_arc() {
        // 3x3 grid, centre ward in B, the rest in A: a closed loop of four segments.
        let mut rings = Vec::new();
        let mut lgas = Vec::new();
        for r in 0..3 {
            for c in 0..3 {
                rings.push(square(c * 10, r * 10));
                lgas.push(if r == 1 && c == 1 {
                    Some("B")
                } else {
                    Some("A")
                });
            }
        }
        let arcs = lga_arcs(&rings, &lgas);
        assert_eq!(arcs.len(), 1);
        assert_eq!(arcs[0].len(), 5);
        assert_eq!(arcs[0].first(), arcs[0].last());
    }
}
