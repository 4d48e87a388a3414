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

/// The buckets of every peer that has spent some of its budget.
#[derive(Debug, Default)]
pub(super) struct Buckets {
    /// Peer -> (tokens left, when they were counted).
    buckets: HashMap<PeerId, (f64, Instant)>,
}

impl Buckets {
    /// Takes one token from `peer`'s bucket at `now`; false if it is empty.
    pub(super) fn take(&mut self, budget: StoreBudget, peer: PeerId, now: Instant) -> bool {
        let burst = f64::from(budget.burst);
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
