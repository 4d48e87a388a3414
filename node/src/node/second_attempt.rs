//! A second, differently routed attempt for a key this node's own fetch did not find
//! (issue 20, session 9; docs/durability.md "A second attempt").
//!
//! An 18-hop route that misses a holder usually spends its hops around a local minimum
//! near the key that is not where the block is. The originator cannot see where the route
//! went, only which of its peers it sent the request to; a second request for the key sent
//! through its best *other* peer leads into another region of the graph towards the same
//! key. Nothing changes for relays or in the protocol: HTL, deadlines and "not found" are
//! as for any request.
//!
//! When one of the node's own fetches ends "not found" (its hops ran out), the node
//! remembers the key with the peers it sent that request to (its first hops), for
//! [`NodeConfig::second_attempt_window`](super::NodeConfig). The next own fetch of the key
//! in that window (the client pipeline sends one at once, `client::retry`) is the second
//! attempt: it waits until the key's quench ends (half a minute: relays on the failed path
//! would answer "not found" at once, and a request that leaves while its originator's own
//! quench holds marks the originator), then goes out at max HTL to peers other than those
//! first hops. Once per key per window: a key that fails again keeps its entry, used, and
//! further own fetches meet the quench as before. So a genuinely absent key costs one more
//! request per window, never more.
//!
//! The table is an LRU of [`CAPACITY`] keys: a flood of distinct keys pushes out the
//! oldest (which then get no second attempt), it never grows. Sans-IO: the node's clock.
//!
//! **Off by default** (a zero window): only an originator detours around the failed
//! first hops, where a relay asked again sends the repeat to its same best peer, so
//! colluding neighbours could tell this node started the request (docs/security.md §16,
//! with the fix this needs before it is switched on).

use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use lru::LruCache;
use pamphlet_crypto::{BlockKind, RoutingKey};

use super::Node;
use crate::id::PeerId;
use crate::store::BlockStore;

/// Keys remembered at most (`Node::second_attempt_keys`).
pub const CAPACITY: usize = 1024;

/// First hops of a failed attempt remembered per key (the rest are not avoided).
const FIRST_HOPS: usize = 8;

/// Keys whose own fetch failed, with the first hops it went to.
#[derive(Debug)]
pub(super) struct SecondAttempts {
    entries: LruCache<(BlockKind, RoutingKey), Entry>,
    window: Duration,
}

#[derive(Debug)]
struct Entry {
    /// When the window ends.
    until: Instant,
    /// The failed attempt's first hops.
    first_hops: Vec<PeerId>,
    /// The second attempt was sent.
    used: bool,
}

impl SecondAttempts {
    /// A table whose entries last `window` (zero: no second attempts).
    pub(super) fn new(window: Duration) -> Self {
        let capacity = NonZeroUsize::new(CAPACITY).unwrap_or(NonZeroUsize::MIN);
        SecondAttempts { entries: LruCache::new(capacity), window }
    }

    /// One of the node's own fetches of `key`, sent first to `first_hops`, ran its hops
    /// out at `now`. A key already in its window keeps its entry (and whether it was used).
    pub(super) fn failed(&mut self, now: Instant, kind: BlockKind, key: RoutingKey, first_hops: &[PeerId]) {
        if self.window.is_zero() {
            return;
        }
        if self.entries.peek(&(kind, key)).is_some_and(|e| e.until > now) {
            return;
        }
        let first_hops = first_hops.iter().copied().take(FIRST_HOPS).collect();
        self.entries.put((kind, key), Entry { until: now + self.window, first_hops, used: false });
    }

    /// If an own fetch of `key` at `now` may be the second attempt: the first hops it
    /// would avoid (without taking it).
    pub(super) fn due(&self, now: Instant, kind: BlockKind, key: &RoutingKey) -> Option<&[PeerId]> {
        self.entries.peek(&(kind, *key)).filter(|e| e.until > now && !e.used).map(|e| e.first_hops.as_slice())
    }

    /// An own fetch of `key` leaves at `now`: if it is the second attempt, the first hops to
    /// route around (and the entry is used); None otherwise.
    pub(super) fn take(&mut self, now: Instant, kind: BlockKind, key: &RoutingKey) -> Option<Vec<PeerId>> {
        let e = self.entries.get_mut(&(kind, *key)).filter(|e| e.until > now && !e.used)?;
        e.used = true;
        Some(e.first_hops.clone())
    }

    /// Keys remembered.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }
}

impl<S: BlockStore> Node<S> {
    /// Whether an own fetch of `key` at `now` is a second attempt worth waiting for: the
    /// key's own fetch failed in the window, no second attempt was sent yet, and the node
    /// has a peer that was not a first hop of the failure (with none, the fetch fails
    /// "recently failed" at once, as without second attempts).
    pub(super) fn second_attempt_due(&self, now: Instant, kind: BlockKind, key: &RoutingKey) -> bool {
        self.second.due(now, kind, key).is_some_and(|hops| self.peers.ids().any(|p| !hops.contains(&p)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::disallowed_methods)] // A base instant only; time moves by arithmetic.
    fn once_per_key_per_window_and_bounded() {
        let t0 = Instant::now();
        let mut t = SecondAttempts::new(Duration::from_secs(600));
        let (k, kind) = (RoutingKey([1; 32]), BlockKind::Chk);
        assert!(t.take(t0, kind, &k).is_none(), "no failure yet");
        t.failed(t0, kind, k, &[PeerId(3), PeerId(4)]);
        assert_eq!(t.due(t0, kind, &k), Some(&[PeerId(3), PeerId(4)][..]));
        assert_eq!(t.take(t0, kind, &k), Some(vec![PeerId(3), PeerId(4)]));
        assert!(t.take(t0, kind, &k).is_none(), "once");
        t.failed(t0 + Duration::from_secs(60), kind, k, &[PeerId(5)]);
        assert!(
            t.due(t0 + Duration::from_secs(60), kind, &k).is_none(),
            "a second failure in the window does not renew it"
        );
        let later = t0 + Duration::from_secs(601);
        t.failed(later, kind, k, &[PeerId(5)]);
        assert_eq!(t.take(later, kind, &k), Some(vec![PeerId(5)]), "a new window");
        for i in 0..(3 * CAPACITY as u32) {
            let mut key = [0; 32];
            key[..4].copy_from_slice(&i.to_be_bytes());
            t.failed(later, kind, RoutingKey(key), &[PeerId(1)]);
        }
        assert_eq!(t.len(), CAPACITY);
        let mut off = SecondAttempts::new(Duration::ZERO);
        off.failed(t0, kind, k, &[PeerId(3)]);
        assert!(off.take(t0, kind, &k).is_none(), "a zero window: off");
    }
}
