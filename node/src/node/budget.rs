//! Per-peer token buckets in virtual time: how many blocks each peer's inserts may write to
//! the store area (issue 14, item 8: a flusher's junk inserts pushed sink data out).
//!
//! A bucket holds at most `burst` tokens and gains one every `every`; a store-area write
//! caused by a peer's insert takes one when the store area is full (a write that pushes
//! older data out; writes into free room cost nothing). An insert from a peer whose bucket is empty is
//! still kept, in the cache area only, so an honest burst loses nothing but long-term
//! placement. Buckets are keyed by peer id and survive reconnections (a reconnect must not
//! refill them).
//!
//! A fixed budget cannot protect a small store area: at one write every 2 s a flusher
//! pushes 2,056 junk blocks a hour into it, so a store area under about 2,000 blocks lost
//! data requested an hour before. With `scaled` (the default) the budget follows the store
//! area's size: at most a quarter of it at once and half of it per hour, so one peer's
//! inserts can never push out, within an hour, a block that was requested (and so made
//! most recently used) at its start (issue 14's flusher target).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::id::PeerId;

/// How many store-area writes one peer's inserts may cause (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreBudget {
    /// Writes a peer may cause at once.
    pub burst: u32,
    /// One more write per this period.
    pub every: Duration,
    /// Shrink the budget to the store area: `burst` at most a quarter of its blocks and
    /// `every` at least an hour over half of them ([`StoreBudget::for_area`]).
    pub scaled: bool,
}

impl StoreBudget {
    /// The budget for a store area of `blocks` blocks (see `scaled`).
    pub fn for_area(self, blocks: u64) -> StoreBudget {
        if !self.scaled {
            return self;
        }
        let blocks = blocks.max(4);
        let quarter = u32::try_from(blocks / 4).unwrap_or(u32::MAX);
        let half_an_hour = Duration::from_secs(3600) / u32::try_from(blocks / 2).unwrap_or(u32::MAX);
        StoreBudget { burst: self.burst.min(quarter), every: self.every.max(half_an_hour), scaled: true }
    }
}

impl Default for StoreBudget {
    /// 256 blocks (8 MiB) at once, then one every 2 s (1,800 an hour): a node is a sink for
    /// only its share of a friend's inserts, so an honest friend inserting a 100 MB file
    /// into a 10-node darknet causes about 320 writes here.
    fn default() -> Self {
        StoreBudget { burst: 256, every: Duration::from_secs(2), scaled: true }
    }
}

/// Buckets kept before the full ones are dropped: a bucket that has refilled is the same
/// as none, so only peers that spent within the last refill time are remembered. Without
/// this a node kept one entry for every peer id that ever spent (an opennet node meets
/// strangers without end, and a key, so an id, costs nothing to make).
const PRUNE_ABOVE: usize = 1024;

/// The buckets of every peer that has spent some of its budget lately.
#[derive(Debug, Default)]
pub(super) struct Buckets {
    /// Peer -> (tokens left, when they were counted).
    buckets: HashMap<PeerId, (f64, Instant)>,
    /// Prune when a new peer finds this many buckets (twice what the last pruning kept, at
    /// least [`PRUNE_ABOVE`]): pruning costs a pass over the map, amortised over as many
    /// new peers.
    prune_at: usize,
}

impl Buckets {
    /// Takes one token from `peer`'s bucket at `now`; false if it is empty.
    pub(super) fn take(&mut self, budget: StoreBudget, peer: PeerId, now: Instant) -> bool {
        let burst = f64::from(budget.burst);
        if self.buckets.len() >= self.prune_at.max(PRUNE_ABOVE) && !self.buckets.contains_key(&peer) {
            let every = budget.every.as_secs_f64().max(1e-9);
            self.buckets
                .retain(|_, (tokens, at)| *tokens + now.saturating_duration_since(*at).as_secs_f64() / every < burst);
            self.prune_at = 2 * self.buckets.len();
        }
        let (tokens, at) = self.buckets.entry(peer).or_insert((burst, now));
        let gained = now.saturating_duration_since(*at).as_secs_f64() / budget.every.as_secs_f64().max(1e-9);
        *tokens = (*tokens + gained).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_empties_and_refills_in_virtual_time() {
        let now = Instant::now();
        let b = StoreBudget { burst: 3, every: Duration::from_secs(2), scaled: false };
        let mut k = Buckets::default();
        let p = PeerId(7);
        assert!((0..3).all(|_| k.take(b, p, now)));
        assert!(!k.take(b, p, now));
        assert!(k.take(b, PeerId(8), now), "buckets are per peer");
        assert!(!k.take(b, p, now + Duration::from_secs(1)));
        assert!(k.take(b, p, now + Duration::from_secs(2)));
        assert!(!k.take(b, p, now + Duration::from_secs(2)));
    }

    /// Peers that spent and whose buckets refilled are forgotten (the map stays bounded
    /// under endless new peer ids); a peer that keeps its bucket empty is not (prunings do
    /// not refill it: it gets its rate, never a second burst).
    #[test]
    fn refilled_buckets_are_forgotten_and_empty_ones_kept() {
        let start = Instant::now();
        let b = StoreBudget { burst: 3, every: Duration::from_secs(2), scaled: false };
        let mut k = Buckets::default();
        let spender = PeerId(u64::MAX);
        let mut granted = 0u64;
        // 100,000 new peers, one every 10 ms, each spending a token (refilled 2 s later),
        // and one peer asking every 10 ms all along.
        for i in 0..100_000u64 {
            let now = start + Duration::from_millis(10 * i);
            assert!(k.take(b, PeerId(i), now));
            granted += u64::from(k.take(b, spender, now));
            assert!(k.buckets.len() <= 2 * PRUNE_ABOVE, "{} buckets kept at {i}", k.buckets.len());
        }
        // 1,000 s: the burst of 3 and one token per 2 s.
        assert_eq!(granted, 3 + 499, "the spender's bucket was never dropped");
    }

    #[test]
    fn a_scaled_budget_follows_the_store_area() {
        let d = StoreBudget::default();
        // Large areas keep the default.
        assert_eq!(d.for_area(1 << 20), d);
        // 1,024 blocks: 256 at once, one per 7.03 s (512 an hour).
        let b = d.for_area(1024);
        assert_eq!(b.burst, 256);
        assert_eq!(b.every, Duration::from_secs(3600) / 512);
        // 512 blocks: 128 at once.
        assert_eq!(d.for_area(512).burst, 128);
        assert_eq!(StoreBudget { scaled: false, ..d }.for_area(512), StoreBudget { scaled: false, ..d });
    }
}
