//! How few transmissions could carry one operation to every node: the yardstick that relay
//! counts are judged against.
//!
//! A broadcast reaches everyone when the nodes that transmit form a connected dominating set
//! (every node transmits or hears one that does, and the transmitters hear each other). The
//! smallest such set is NP-hard to find; the greedy construction here (grow one tree, each
//! step adding the node that covers the most uncovered nodes) stays within a log factor of
//! it and is what the figure of "8 nodes on grid-25" came from. It assumes a lossless
//! channel: with loss, more transmissions are needed.

use lorabridge_hardware::Modulation;
use serde::Serialize;

use crate::physics::Geometry;

/// The relay bound of a topology.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RelayBound {
    /// Nodes in the greedy connected dominating set.
    pub dominating_nodes: usize,
    /// Transmissions per operation, averaged over origins: the set's nodes, plus the origin's
    /// own transmission when the origin is not one of them.
    pub transmissions_per_op: f64,
}

/// The bound, or `None` when the topology is not connected (then no set of relays reaches
/// everyone).
pub fn relay_bound(geo: &Geometry, m: &Modulation) -> Option<RelayBound> {
    let set = dominating_set(geo, m)?;
    let n = geo.n.max(1) as f64;
    let size = set.len() as f64;
    Some(RelayBound {
        dominating_nodes: set.len(),
        transmissions_per_op: (size + (n - size) / n).max(1.0),
    })
}

#[derive(Clone, Copy, PartialEq)]
enum Mark {
    Uncovered,
    Covered,
    InSet,
}

/// The greedy connected dominating set (ties go to the lower index, so it is deterministic).
fn dominating_set(geo: &Geometry, m: &Modulation) -> Option<Vec<usize>> {
    let n = geo.n;
    if n == 0 {
        return Some(Vec::new());
    }
    if geo.hops_from(0, m).iter().any(Option::is_none) {
        return None;
    }
    let neighbours: Vec<Vec<usize>> = (0..n)
        .map(|a| (0..n).filter(|&b| b != a && geo.hears(a, b, m)).collect())
        .collect();
    let mut marks = vec![Mark::Uncovered; n];
    let mut set = Vec::new();
    let add = |node: usize, marks: &mut Vec<Mark>, set: &mut Vec<usize>| {
        marks[node] = Mark::InSet;
        set.push(node);
        for &b in &neighbours[node] {
            if marks[b] == Mark::Uncovered {
                marks[b] = Mark::Covered;
            }
        }
    };
    let gain = |node: usize, marks: &[Mark]| {
        neighbours[node]
            .iter()
            .filter(|&&b| marks[b] == Mark::Uncovered)
            .count()
    };
    let first = (0..n)
        .max_by_key(|&a| (neighbours[a].len(), std::cmp::Reverse(a)))
        .unwrap_or(0);
    add(first, &mut marks, &mut set);
    while marks.contains(&Mark::Uncovered) {
        // Only covered nodes extend the tree, so the set stays connected; the graph is
        // connected, so some covered node has an uncovered neighbour.
        let next = (0..n)
            .filter(|&a| marks[a] == Mark::Covered)
            .max_by_key(|&a| (gain(a, &marks), std::cmp::Reverse(a)))?;
        add(next, &mut marks, &mut set);
    }
    Some(set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scenario;

    fn bound(topology: &str) -> Option<RelayBound> {
        let s = Scenario::parse(&format!(
            "name = \"t\"\nduration = \"1h\"\n[radio]\nspreading_factor = 7\n\
             [path_loss]\nsigma_db = 0.0\n[topology]\n{topology}\n"
        ))
        .expect("scenario");
        relay_bound(&Geometry::build(&s), &s.radio.modulation())
    }

    #[test]
    fn a_line_needs_its_inner_nodes() {
        // 100 m apart at SF7 without fading: each node hears only its neighbours.
        let line = bound("kind = \"line\"\nn = 5\nspacing_m = 100").expect("connected");
        assert_eq!(line.dominating_nodes, 3);
        // The three inner nodes, plus the origin's own frame for the two ends' ops.
        assert!((line.transmissions_per_op - 3.4).abs() < 1e-9);
    }

    #[test]
    fn nodes_out_of_range_have_no_bound() {
        assert_eq!(bound("kind = \"line\"\nn = 3\nspacing_m = 100000"), None);
    }
}
