//! Per-peer token buckets in virtual time: how many blocks each peer's inserts may write to
//! the store area (issue 14, item 8: a flusher's junk inserts pushed sink data out).
//!
//! A bucket holds at most `burst` tokens and gains one every `every`; a store-area write
//! caused by a peer's insert takes one. An insert from a peer whose bucket is empty is
//! still kept, in the cache area only, so an honest burst loses nothing but long-term
//! placement. Buckets are keyed by peer id and survive reconnections (a reconnect must not
//! refill them).

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
}

impl Default for StoreBudget {
    /// 256 blocks (8 MiB) at once, then one every 2 s (1,800 an hour): a node is a sink for
    /// only its share of a friend's inserts, so an honest friend inserting a 100 MB file
    /// into a 10-node darknet causes about 320 writes here.
    fn default() -> Self {
        StoreBudget { burst: 256, every: Duration::from_secs(2) }
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
        let b = StoreBudget { burst: 3, every: Duration::from_secs(2) };
        let mut k = Buckets::default();
        let p = PeerId(7);
        assert!((0..3).all(|_| k.take(b, p, now)));
        assert!(!k.take(b, p, now));
        assert!(k.take(b, PeerId(8), now), "buckets are per peer");
        assert!(!k.take(b, p, now + Duration::from_secs(1)));
        assert!(k.take(b, p, now + Duration::from_secs(2)));
        assert!(!k.take(b, p, now + Duration::from_secs(2)));
    }
}
