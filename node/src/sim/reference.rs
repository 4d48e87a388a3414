//! Reference systems that do not run on `Node`: Gnutella-style flooding on the same graph,
//! and Chord on its own ideal ring. They are computed directly on the graph (no messages
//! are simulated), which is exact for them: flooding's cost is the number of links the
//! flood crosses, and Chord's lookups are deterministic greedy finger walks.
//!
//! - **Flooding**: the document stays on the node that published it (Gnutella has no
//!   placement); a query floods with a TTL; it succeeds if the publisher is within TTL
//!   hops. Messages: every node reached with TTL left forwards to all its other
//!   neighbours, plus the reply along the shortest path.
//! - **Chord**: `n` nodes with random 64-bit ids on an ideal ring, each with its 64
//!   fingers (`successor(id + 2^i)`); a lookup hops to the closest preceding finger until
//!   the key's successor is reached. Messages: one per hop each way.

use std::collections::VecDeque;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::config::{SimConfig, Strategy};
use super::report::{Report, ReportBuilder};
use crate::sim::topology::Topology;

/// A run of flooding or Chord: `requests` lookups of `docs` documents, each held by a random
/// node under a random key, from random nodes. Chord's ring has 64 fingers per node, whatever
/// the graph.
pub(crate) fn run(config: &SimConfig, topo: &Topology, rng: &mut ChaCha8Rng) -> Report {
    let n = topo.len();
    let chord = (config.strategy == Strategy::Chord).then(|| Chord::new(n, rng));
    let holders: Vec<(usize, u64)> = (0..config.docs.max(1)).map(|_| (rng.gen_range(0..n), rng.gen())).collect();
    let mut report = match chord {
        Some(_) => ReportBuilder { nodes: n, edges: n * 64, mean_degree: 64.0, ..ReportBuilder::default() },
        None => ReportBuilder {
            nodes: n,
            edges: topo.edges().len(),
            mean_degree: topo.mean_degree(),
            ..ReportBuilder::default()
        },
    };
    for r in 0..config.requests {
        let (holder, key) = holders[r % holders.len()];
        let from = rng.gen_range(0..n);
        let (found, hops, messages) = match &chord {
            Some(c) => c.lookup(from, key),
            None => flood(topo, from, holder, config.max_htl.min(7)),
        };
        report.fetch_messages += messages;
        if chord.is_some() {
            // The key's successor is the node Chord routes to: its "closest" node.
            report.closest_probes += 1;
            report.closest_hops.push(hops);
        }
        if found {
            report.successes += 1;
            report.hops.push(hops);
        }
    }
    report.finish(config)
}

/// One lookup's result: found, hops, messages.
pub(crate) type Lookup = (bool, u64, u64);

/// Floods from `from` with `ttl`; looks for `holder`.
pub(crate) fn flood(topo: &Topology, from: usize, holder: usize, ttl: u8) -> Lookup {
    let n = topo.len();
    let mut depth = vec![u8::MAX; n];
    let mut queue = VecDeque::new();
    depth[from] = 0;
    queue.push_back(from);
    let mut messages = 0u64;
    while let Some(x) = queue.pop_front() {
        if depth[x] >= ttl {
            continue;
        }
        for &y in &topo.adjacency[x] {
            let y = y as usize;
            messages += 1;
            if depth[y] == u8::MAX {
                depth[y] = depth[x] + 1;
                queue.push_back(y);
            }
        }
    }
    if depth[holder] == u8::MAX {
        (false, 0, messages)
    } else {
        let d = u64::from(depth[holder]);
        (true, d, messages + d)
    }
}

/// An ideal Chord ring.
pub(crate) struct Chord {
    ids: Vec<u64>,
}

impl Chord {
    /// `n` nodes with random ids.
    pub(crate) fn new(n: usize, rng: &mut ChaCha8Rng) -> Self {
        let mut ids: Vec<u64> = (0..n).map(|_| rng.gen()).collect();
        ids.sort_unstable();
        ids.dedup();
        Chord { ids }
    }

    /// Index of the first node at or after `x` (wrapping).
    fn successor(&self, x: u64) -> usize {
        match self.ids.binary_search(&x) {
            Ok(i) => i,
            Err(i) if i == self.ids.len() => 0,
            Err(i) => i,
        }
    }

    /// Looks `key` up from node index `from`.
    pub(crate) fn lookup(&self, from: usize, key: u64) -> Lookup {
        let owner = self.successor(key);
        let mut x = from % self.ids.len();
        let mut hops = 0u64;
        while x != owner {
            let xid = self.ids[x];
            let next = (x + 1) % self.ids.len();
            // The key lies between us and our successor: the successor holds it.
            if key.wrapping_sub(xid) <= self.ids[next].wrapping_sub(xid) {
                x = next;
                hops += 1;
                continue;
            }
            let mut best = next;
            for i in (0..64).rev() {
                let f = self.successor(xid.wrapping_add(1u64 << i));
                // f strictly between x and key on the circle.
                if f != x && self.ids[f].wrapping_sub(xid) < key.wrapping_sub(xid) {
                    best = f;
                    break;
                }
            }
            x = best;
            hops += 1;
        }
        (true, hops, 2 * hops)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn chord_hops_are_logarithmic() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let c = Chord::new(4096, &mut rng);
        let total: u64 = (0..500).map(|i| c.lookup(i, rng.gen()).1).sum();
        let mean = total as f64 / 500.0;
        assert!((4.0..=8.0).contains(&mean), "mean hops {mean} (log2 4096 / 2 = 6)");
    }

    #[test]
    fn flood_finds_within_ttl_only() {
        // A line 0-1-2-3-4.
        let t = Topology::from_edge_list("0 1\n1 2\n2 3\n3 4\n").unwrap();
        assert!(flood(&t, 0, 3, 3).0);
        assert_eq!(flood(&t, 0, 3, 3).1, 3);
        assert!(!flood(&t, 0, 4, 3).0);
    }
}
