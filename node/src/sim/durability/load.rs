//! The load: which documents are inserted, what blocks they become, who fetches them.
//!
//! - Sizes: log-uniform from 32 KiB to 100 MiB (every factor of ten in size equally
//!   likely; mean 12.4 MiB, median 1.8 MiB). No measurement of Freenet's document sizes
//!   was at hand: this is an assumption, and a parameter of the code, not of the CLI.
//! - Blocks: exactly what `client::splitfile::encode` makes of incompressible data of that
//!   size: a single block up to one block of content; otherwise segments from
//!   `client::fec::plan` (any `k` of a segment's `n` blocks rebuild it) under a manifest
//!   (sized by serializing a real `Manifest`), which is one top block when its block
//!   references fit and otherwise a nested splitfile of its own (test `block_counts_match_the_real_encoder`). The top block has
//!   no redundancy: losing it loses the document.
//! - Popularity: a fraction of the documents is never fetched after its insert; each other
//!   document gets a Zipf rank `r` (uniform in 1..=R, weight `1 / r^s`), and each fetch
//!   picks among the documents inserted so far in proportion to their weight.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::client::fec;
use crate::client::manifest::{BlockRef, Body, Compression, Manifest, Segment as ManifestSegment, MANIFEST_VERSION};
use crate::location::Location;

/// Smallest and largest document, in bytes.
pub(crate) const MIN_DOC: f64 = 32.0 * 1024.0;
pub(crate) const MAX_DOC: f64 = 100.0 * 1024.0 * 1024.0;
/// Content bytes per block (one CHK payload).
const BLOCK: u64 = fec::SHARD_LEN as u64;

/// A popularity class, for reporting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Popularity {
    /// Zipf rank in the top 1%.
    Popular,
    /// Rank in the top 10% (but not 1%).
    Occasional,
    /// Any other rank.
    Rare,
    /// Never fetched after its insert.
    Never,
}

impl Popularity {
    pub(crate) const ALL: [Popularity; 4] =
        [Popularity::Popular, Popularity::Occasional, Popularity::Rare, Popularity::Never];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Popularity::Popular => "popular (top 1%)",
            Popularity::Occasional => "occasional (top 10%)",
            Popularity::Rare => "rare",
            Popularity::Never => "never fetched",
        }
    }
}

/// One FEC segment: any `k` of its blocks (`first..first + n` in the block table) rebuild it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Segment {
    pub(crate) first: u32,
    pub(crate) n: u32,
    pub(crate) k: u32,
}

/// An inserted document.
#[derive(Clone, Debug)]
pub(crate) struct Document {
    /// Its segments; the last one is the top block (`n = k = 1`).
    pub(crate) segments: Vec<Segment>,
    pub(crate) popularity: Popularity,
    /// Fraction of the network's total store inserted (documents' bytes) when it was inserted.
    pub(crate) fill_at_insert: f64,
    /// Its publisher keeps it alive (`Rules::keepalive_share`).
    pub(crate) pinned: bool,
    /// The node that inserted it, which keeps it alive when pinned.
    pub(crate) publisher: u32,
    /// The hour of its next keepalive, when pinned.
    pub(crate) next_keepalive: u32,
}

/// `(k, n)` of every segment of a document of `bytes` (incompressible), top block last.
/// The manifests' sizes are those of real [`Manifest`]s serialized with dummy references,
/// so the nesting decision is the encoder's own.
pub(crate) fn layout(bytes: u64, redundancy: f64) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    let (mut content, mut nested) = (bytes, false);
    loop {
        let mut manifest = Manifest {
            version: MANIFEST_VERSION,
            nested,
            name: None,
            mime: None,
            sha256: [0; 32],
            compression: Compression::None,
            body: Body::Inline(Vec::new()),
        };
        if content <= BLOCK {
            manifest.body = Body::Inline(vec![0; content as usize]);
            if manifest.to_bytes().len() as u64 <= BLOCK {
                out.push((1, 1));
                return out;
            }
        }
        let plan = fec::plan(content.div_ceil(BLOCK) as usize, redundancy);
        out.extend(plan.iter().map(|&(k, m)| (k as u32, (k + m) as u32)));
        let r = BlockRef { routing_key: [0; 32], key: [0; 32] };
        let segments = plan.iter().map(|&(k, m)| ManifestSegment { data: vec![r; k], check: vec![r; m] }).collect();
        manifest.body = Body::Split { len: content, segments };
        let size = manifest.to_bytes().len() as u64;
        if size <= BLOCK {
            out.push((1, 1));
            return out;
        }
        (content, nested) = (size, true);
    }
}

/// A document size, log-uniform on [`MIN_DOC`, `max`] (`max`: [`MAX_DOC`] but in tests).
pub(crate) fn draw_size(rng: &mut ChaCha8Rng, max: f64) -> u64 {
    (MIN_DOC * (max / MIN_DOC).powf(rng.gen::<f64>())) as u64
}

/// Mean of [`draw_size`]: `(b - a) / ln(b / a)`.
pub(crate) fn mean_size(max: f64) -> f64 {
    (max - MIN_DOC) / (max / MIN_DOC).ln()
}

/// Every block ever inserted: its key's location, and whether FEC cannot rebuild it (a
/// top block or a segment without check blocks: `Rules::offer_top_only_on_return`).
#[derive(Default)]
pub(crate) struct Blocks {
    pub(crate) location: Vec<Location>,
    pub(crate) unprotected: Vec<bool>,
}

impl Blocks {
    /// `n` new blocks at random key locations; returns the first's index.
    pub(crate) fn add(&mut self, n: u32, rng: &mut ChaCha8Rng) -> u32 {
        let first = self.location.len() as u32;
        self.location.extend((0..n).map(|_| Location(rng.gen())));
        self.unprotected.resize(self.location.len(), false);
        first
    }
}

/// Weighted choice among a growing set (a Fenwick tree of weights).
#[derive(Default)]
pub(crate) struct Weights {
    tree: Vec<f64>,
    total: f64,
}

impl Weights {
    /// Appends an item of `weight` (index = number of items before it).
    pub(crate) fn push(&mut self, weight: f64) {
        let i = self.tree.len() + 1;
        // A Fenwick node covers (i - lowbit(i), i]: sum the children it covers.
        let low = i & i.wrapping_neg();
        let mut sum = weight;
        let mut j = i - 1;
        while j > i - low {
            sum += self.tree[j - 1];
            j -= j & j.wrapping_neg();
        }
        self.tree.push(sum);
        self.total += weight;
    }

    /// An index drawn in proportion to the weights; `None` if all are zero.
    pub(crate) fn draw(&self, rng: &mut ChaCha8Rng) -> Option<usize> {
        if self.total <= 0.0 {
            return None;
        }
        let mut x = rng.gen::<f64>() * self.total;
        let mut pos = 0usize;
        let mut step = self.tree.len().next_power_of_two();
        while step > 0 {
            let next = pos + step;
            if next <= self.tree.len() && self.tree[next - 1] <= x {
                x -= self.tree[next - 1];
                pos = next;
            }
            step /= 2;
        }
        Some(pos.min(self.tree.len() - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::splitfile::{encode, InsertOptions};
    use rand::SeedableRng;

    /// The model's block counts are the real encoder's, including nested manifests.
    #[test]
    fn block_counts_match_the_real_encoder() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for bytes in [1_000u64, 40_000, 200_000, 4_300_000, 11_000_000, 17_000_000] {
            let data: Vec<u8> = (0..bytes).map(|_| rng.gen()).collect();
            let options = InsertOptions { compress: false, ..InsertOptions::default() };
            let real = encode(&data, &options).expect("encodes").blocks.len();
            let model: u32 = layout(bytes, fec::DEFAULT_REDUNDANCY).iter().map(|s| s.1).sum();
            assert_eq!(model as usize, real, "{bytes} bytes");
        }
    }

    #[test]
    fn sizes_stay_in_range_and_have_the_stated_mean() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let sizes: Vec<u64> = (0..20_000).map(|_| draw_size(&mut rng, MAX_DOC)).collect();
        assert!(sizes.iter().all(|&s| s as f64 >= MIN_DOC && s as f64 <= MAX_DOC));
        let mean = sizes.iter().sum::<u64>() as f64 / sizes.len() as f64;
        assert!((mean / mean_size(MAX_DOC) - 1.0).abs() < 0.05, "{mean} vs {}", mean_size(MAX_DOC));
    }

    #[test]
    fn weighted_draws_follow_the_weights() {
        let mut w = Weights::default();
        for x in [1.0, 0.0, 3.0, 0.0, 4.0, 2.0] {
            w.push(x);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut seen = [0u32; 6];
        for _ in 0..100_000 {
            seen[w.draw(&mut rng).unwrap()] += 1;
        }
        assert_eq!((seen[1], seen[3]), (0, 0));
        for (i, want) in [(0, 0.1), (2, 0.3), (4, 0.4), (5, 0.2)] {
            let got = f64::from(seen[i]) / 100_000.0;
            assert!((got - want).abs() < 0.01, "{i}: {got}");
        }
    }
}
