//! Quenching keys that just failed.
//!
//! When a fetch for a key ends at this node with DataNotFound (its hops ran out: the network
//! looked and the block was not there), the key is quenched for a short time: further
//! requests for it that arrive with no more HTL than the failed one are answered
//! DataNotFound at once instead of being routed again, and local fetches fail with
//! "recently failed". A burst of repeats (a client retrying, many readers of a missing
//! block) thus costs one walk through the network, not one per repeat. A request with more
//! HTL than the failed one is still routed: it may search further. This is Hyphanet's
//! "recently failed" idea with a short, fixed time.
//!
//! The table is bounded (least-recently-quenched entries go first) so a flood of distinct
//! missing keys cannot grow it without limit.

use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use lru::LruCache;
use pamphlet_crypto::{BlockKind, RoutingKey};

use crate::id::Htl;

/// Recently failed keys, with when their quench ends and the HTL they failed at.
#[derive(Debug)]
pub struct Quench {
    entries: LruCache<(BlockKind, RoutingKey), (Instant, Htl)>,
    time: Duration,
}

impl Quench {
    /// A table quenching keys for `time`, holding at most `capacity` keys (at least one).
    pub fn new(time: Duration, capacity: usize) -> Self {
        Quench { entries: LruCache::new(NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN)), time }
    }

    /// Records that a request for `key` at `htl` failed at `now`.
    pub fn record(&mut self, now: Instant, kind: BlockKind, key: RoutingKey, htl: Htl) {
        let htl = match self.entries.get(&(kind, key)) {
            Some((until, old)) if *until > now => htl.max(*old),
            _ => htl,
        };
        if !self.time.is_zero() {
            self.entries.put((kind, key), (now + self.time, htl));
        }
    }

    /// Whether a request for `key` arriving with `htl` is quenched at `now`.
    pub fn is_quenched(&mut self, now: Instant, kind: BlockKind, key: &RoutingKey, htl: Htl) -> bool {
        match self.entries.peek(&(kind, *key)) {
            Some((until, failed)) if *until > now => htl <= *failed,
            Some(_) => {
                self.entries.pop(&(kind, *key));
                false
            }
            None => false,
        }
    }

    /// Number of entries (some may have expired).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quenches_for_a_while_and_only_up_to_the_failed_htl() {
        let t0 = Instant::now();
        let k = RoutingKey([1; 32]);
        let mut q = Quench::new(Duration::from_secs(30), 4);
        assert!(!q.is_quenched(t0, BlockKind::Chk, &k, 5));
        q.record(t0, BlockKind::Chk, k, 10);
        assert!(q.is_quenched(t0, BlockKind::Chk, &k, 10));
        assert!(q.is_quenched(t0 + Duration::from_secs(29), BlockKind::Chk, &k, 3));
        assert!(!q.is_quenched(t0, BlockKind::Chk, &k, 11), "more HTL may search further");
        assert!(!q.is_quenched(t0, BlockKind::Ssk, &k, 3), "kinds are separate");
        assert!(!q.is_quenched(t0 + Duration::from_secs(30), BlockKind::Chk, &k, 3));
        assert!(q.is_empty(), "expired entries are dropped when seen");
    }

    #[test]
    fn bounded() {
        let t0 = Instant::now();
        let mut q = Quench::new(Duration::from_secs(30), 2);
        for i in 0..5u8 {
            q.record(t0, BlockKind::Chk, RoutingKey([i; 32]), 18);
        }
        assert_eq!(q.len(), 2);
        assert!(q.is_quenched(t0, BlockKind::Chk, &RoutingKey([4; 32]), 18));
        assert!(!q.is_quenched(t0, BlockKind::Chk, &RoutingKey([0; 32]), 18));
    }
}
