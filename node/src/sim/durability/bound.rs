//! The best any placement can do (docs/durability.md, "The bound").
//!
//! At any moment only the store areas of the nodes online answer. With equal store areas,
//! the bytes held online are at most `u × S`, where `u` is the share of the population
//! online (its mean uptime) and `S` the network's total store area. A document is
//! retrievable only while its top block and `k` of every segment's `n` blocks are on
//! online nodes, so it needs at least its `Σ k` blocks of that online capacity (FEC's check
//! blocks and any second copy only add to it). With `D` documents inserted (their bytes:
//! `fill × S`), the largest *number* of them that can be retrievable at one moment is
//! reached by keeping the smallest ones: the bound is the largest fraction `f` of the
//! documents, smallest first, whose `Σ k` blocks fit in `u × S`.
//!
//! The sizes are the model's own (`load::draw_size`, log-uniform), taken at evenly spaced
//! quantiles, and each size's `Σ k` is what the real encoder makes of it (`load::layout`).

use super::load;
use crate::client::fec;

/// Quantiles of the size distribution the bound is computed on.
const QUANTILES: usize = 4000;

/// The most any placement can keep retrievable at one moment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bound {
    /// Fraction of the documents (the smallest ones kept first).
    pub documents: f64,
    /// Fraction of the documents' bytes.
    pub bytes: f64,
}

/// The bound at `fill` (documents' bytes inserted over the network's total store area) when
/// a share `online` of the store area answers at a time (see the module doc).
pub fn retrievable_bound(fill: f64, online: f64, redundancy: f64) -> Bound {
    let sizes: Vec<f64> = (0..QUANTILES)
        .map(|i| load::MIN_DOC * (load::MAX_DOC / load::MIN_DOC).powf((i as f64 + 0.5) / QUANTILES as f64))
        .collect();
    let mean = sizes.iter().sum::<f64>() / sizes.len() as f64;
    // Online capacity per document, in blocks: online × S / (SHARD_LEN × D), D = fill × S / mean.
    let per_doc = online * mean / (fill * fec::SHARD_LEN as f64);
    let mut capacity = per_doc * QUANTILES as f64;
    let (mut docs, mut bytes) = (0usize, 0.0);
    // The quantiles are in increasing size, and Σ k grows with size.
    for &s in &sizes {
        let need: u32 = load::layout(s as u64, redundancy).iter().map(|&(k, _)| k).sum();
        if f64::from(need) > capacity {
            break;
        }
        capacity -= f64::from(need);
        docs += 1;
        bytes += s;
    }
    Bound { documents: docs as f64 / QUANTILES as f64, bytes: bytes / (mean * QUANTILES as f64) }
}

/// The population's mean uptime (its share online at a time), from the measured classes:
/// `1 / Σ (online share / uptime)`.
pub fn mean_uptime() -> f64 {
    use super::population::{ONLINE_SHARE, UPTIME};
    1.0 / (0..3).map(|i| ONLINE_SHARE[i] / UPTIME[i]).sum::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_uptime_is_about_a_third() {
        assert!((mean_uptime() - 0.351).abs() < 0.001, "{}", mean_uptime());
    }

    /// Every document fits while the online store exceeds the fill; beyond it, the bound
    /// falls, by bytes no higher than online / fill and by count higher (small ones first).
    #[test]
    fn the_bound_falls_once_the_fill_exceeds_the_online_store() {
        let u = mean_uptime();
        assert_eq!(retrievable_bound(0.05, u, 0.5).documents, 1.0);
        let b = retrievable_bound(0.5, u, 0.5);
        assert!(b.bytes <= u / 0.5 + 1e-9 && b.bytes > u / 0.5 - 0.05, "{b:?}");
        assert!(b.documents > b.bytes && b.documents < 1.0, "{b:?}");
        assert!(retrievable_bound(1.0, u, 0.5).documents < b.documents);
    }
}
