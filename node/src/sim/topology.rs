//! Who is connected to whom: the graphs the simulator runs on.
//!
//! - [`Topology::small_world`]: a darknet small world (Kleinberg): a ring (each node linked to
//!   its two neighbours) plus long links whose length `d` (in ring positions) is drawn with
//!   probability proportional to `1/d`, until the mean degree is reached. This is the graph
//!   Sandberg's swapping is proved to make routable.
//! - [`Topology::random`]: uniform random links (like Hyphanet's measured opennet).
//! - [`Topology::from_edge_list`]: a graph read from text, one `a b` pair per line.
//!
//! Graphs are undirected, without self-loops or duplicate edges; node `i`'s "ring
//! position" is `i`, which is also its location under [`Placement::Ideal`].

use rand::seq::SliceRandom;
use rand::Rng;

/// An undirected graph on nodes `0..n`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Topology {
    /// Neighbours of each node, ascending.
    pub adjacency: Vec<Vec<u32>>,
}

/// Why an edge list could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum TopologyError {
    /// A line is not two node numbers.
    #[error("line {line}: expected two node numbers `a b`, got {text:?}")]
    BadLine {
        /// 1-based line number.
        line: usize,
        /// The line's text.
        text: String,
    },
    /// The file names no edge.
    #[error("the edge list has no edges")]
    Empty,
}

/// Where nodes start on the circle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Uniformly at random (what a new darknet looks like before swapping).
    Random,
    /// Node `i` at `i / n`: the ideal small world (an upper bound for swapping).
    Ideal,
}

impl Topology {
    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.adjacency.len()
    }

    /// Whether the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.adjacency.is_empty()
    }

    /// Every edge once, as (smaller, larger).
    pub fn edges(&self) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for (a, nbrs) in self.adjacency.iter().enumerate() {
            for &b in nbrs {
                if (b as usize) > a {
                    out.push((a, b as usize));
                }
            }
        }
        out
    }

    /// Mean degree.
    pub fn mean_degree(&self) -> f64 {
        if self.adjacency.is_empty() {
            return 0.0;
        }
        self.adjacency.iter().map(Vec::len).sum::<usize>() as f64 / self.adjacency.len() as f64
    }

    fn with_nodes(n: usize) -> Self {
        Topology { adjacency: vec![Vec::new(); n] }
    }

    /// Adds edge a–b unless it is a self-loop or already present; returns whether added.
    fn link(&mut self, a: usize, b: usize) -> bool {
        if a == b || self.adjacency[a].contains(&(b as u32)) {
            return false;
        }
        self.adjacency[a].push(b as u32);
        self.adjacency[b].push(a as u32);
        true
    }

    fn finish(mut self) -> Self {
        for nbrs in &mut self.adjacency {
            nbrs.sort_unstable();
        }
        self
    }

    /// Kleinberg small world on `n` nodes with mean degree about `degree` (at least 2: the
    /// ring).
    pub fn small_world(n: usize, degree: usize, rng: &mut impl Rng) -> Self {
        let mut t = Self::with_nodes(n);
        if n < 2 {
            return t;
        }
        for i in 0..n {
            t.link(i, (i + 1) % n);
        }
        let half = (n / 2).max(1) as f64;
        let target = n * degree.max(2) / 2;
        let mut edges = t.edges().len();
        let mut attempts = 0usize;
        while edges < target && attempts < target * 20 {
            attempts += 1;
            let a = rng.gen_range(0..n);
            // P(d) ∝ 1/d on 1..=n/2: d = half^u for uniform u.
            let d = half.powf(rng.gen::<f64>()).round().max(1.0) as usize;
            let b = if rng.gen::<bool>() { (a + d) % n } else { (a + n - d % n) % n };
            if t.link(a, b) {
                edges += 1;
            }
        }
        t.finish()
    }

    /// Uniform random graph on `n` nodes with mean degree about `degree`, made connected by
    /// a random spanning path first (a disconnected graph measures nothing useful).
    pub fn random(n: usize, degree: usize, rng: &mut impl Rng) -> Self {
        let mut t = Self::with_nodes(n);
        if n < 2 {
            return t;
        }
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(rng);
        for w in order.windows(2) {
            t.link(w[0], w[1]);
        }
        let target = n * degree.max(2) / 2;
        let mut edges = n - 1;
        let mut attempts = 0usize;
        while edges < target && attempts < target * 20 {
            attempts += 1;
            if t.link(rng.gen_range(0..n), rng.gen_range(0..n)) {
                edges += 1;
            }
        }
        t.finish()
    }

    /// Reads `a b` pairs (one per line; `#` starts a comment; blank lines skipped). Node
    /// numbers need not be dense: the graph has `max + 1` nodes.
    pub fn from_edge_list(text: &str) -> Result<Self, TopologyError> {
        let mut pairs = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let body = line.split('#').next().unwrap_or("").trim();
            if body.is_empty() {
                continue;
            }
            let nums: Vec<Option<usize>> = body.split_whitespace().map(|x| x.parse().ok()).collect();
            match nums.as_slice() {
                [Some(a), Some(b)] => pairs.push((*a, *b)),
                _ => return Err(TopologyError::BadLine { line: i + 1, text: line.to_string() }),
            }
        }
        let n = pairs.iter().map(|&(a, b)| a.max(b) + 1).max().ok_or(TopologyError::Empty)?;
        let mut t = Self::with_nodes(n);
        for (a, b) in pairs {
            t.link(a, b);
        }
        Ok(t.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn small_world_has_ring_and_degree() {
        let t = Topology::small_world(1000, 12, &mut ChaCha8Rng::seed_from_u64(1));
        assert_eq!(t.len(), 1000);
        for i in 0..1000 {
            assert!(t.adjacency[i].contains(&(((i + 1) % 1000) as u32)));
        }
        assert!((t.mean_degree() - 12.0).abs() < 0.1, "{}", t.mean_degree());
        // Mostly short links: the median link spans far less than a random one would.
        let mut spans: Vec<usize> = t.edges().iter().map(|&(a, b)| (b - a).min(1000 - (b - a))).collect();
        spans.sort_unstable();
        assert!(spans[spans.len() / 2] < 60, "median span {}", spans[spans.len() / 2]);
    }

    #[test]
    fn random_graph_is_connected_with_degree() {
        let t = Topology::random(500, 8, &mut ChaCha8Rng::seed_from_u64(2));
        assert!((t.mean_degree() - 8.0).abs() < 0.1);
        let mut seen = vec![false; 500];
        let mut stack = vec![0usize];
        while let Some(i) = stack.pop() {
            if !std::mem::replace(&mut seen[i], true) {
                stack.extend(t.adjacency[i].iter().map(|&j| j as usize));
            }
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn edge_list_parses_and_rejects() {
        let t = Topology::from_edge_list("# a triangle\n0 1\n1 2\n\n2 0 # closing\n0 1\n").unwrap();
        assert_eq!(t.edges(), vec![(0, 1), (0, 2), (1, 2)]);
        assert!(matches!(Topology::from_edge_list("0 1\nx y\n"), Err(TopologyError::BadLine { line: 2, .. })));
        assert_eq!(Topology::from_edge_list("# nothing\n").unwrap_err(), TopologyError::Empty);
    }
}
