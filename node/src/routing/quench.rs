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
//! Each entry remembers whether one of the node's *own* fetches failed. Only then does the
//! quench fail the node's own fetches at once; a quench that neighbours' requests caused
//! makes the node's own fetch wait until it ends and then go out (`node/deferred.rs`).
//! Otherwise a neighbour whose colluders made one request for a key fail here could deny
//! its friend that key, again and again, half a minute at a time (issue 14, item 9).
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
    entries: LruCache<(BlockKind, RoutingKey), Entry>,
    time: Duration,
}

/// One quenched key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// When the quench ends.
    pub until: Instant,
    /// The most HTL a failed request for it had.
    pub htl: Htl,
    /// Whether one of the node's own fetches failed (not only neighbours' requests).
    pub local: bool,
}

impl Quench {
    /// A table quenching keys for `time`, holding at most `capacity` keys (at least one).
    pub fn new(time: Duration, capacity: usize) -> Self {
        Quench { entries: LruCache::new(NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN)), time }
    }

    /// Records that a request for `key` at `htl` failed at `now`; `local`: the node's own.
    pub fn record(&mut self, now: Instant, kind: BlockKind, key: RoutingKey, htl: Htl, local: bool) {
        let (htl, local) = match self.entries.get(&(kind, key)) {
            Some(e) if e.until > now => (htl.max(e.htl), local || e.local),
            _ => (htl, local),
        };
        if !self.time.is_zero() {
            self.entries.put((kind, key), Entry { until: now + self.time, htl, local });
        }
    }

    /// Whether a request for `key` arriving with `htl` is quenched at `now`.
    pub fn is_quenched(&mut self, now: Instant, kind: BlockKind, key: &RoutingKey, htl: Htl) -> bool {
        self.quenched(now, kind, key, htl).is_some()
    }

    /// The quench that holds for a request for `key` arriving with `htl` at `now`, if any.
    pub fn quenched(&mut self, now: Instant, kind: BlockKind, key: &RoutingKey, htl: Htl) -> Option<Entry> {
        match self.entries.peek(&(kind, *key)) {
            Some(e) if e.until > now => (htl <= e.htl).then_some(*e),
            Some(_) => {
                self.entries.pop(&(kind, *key));
                None
            }
            None => None,
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
        q.record(t0, BlockKind::Chk, k, 10, false);
        assert_eq!(q.quenched(t0, BlockKind::Chk, &k, 10).map(|e| e.local), Some(false));
        q.record(t0, BlockKind::Chk, k, 3, true);
        assert_eq!(q.quenched(t0, BlockKind::Chk, &k, 10).map(|e| (e.local, e.htl)), Some((true, 10)), "merged");
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
            q.record(t0, BlockKind::Chk, RoutingKey([i; 32]), 18, false);
        }
        assert_eq!(q.len(), 2);
        assert!(q.is_quenched(t0, BlockKind::Chk, &RoutingKey([4; 32]), 18));
        assert!(!q.is_quenched(t0, BlockKind::Chk, &RoutingKey([0; 32]), 18));
    }
}
