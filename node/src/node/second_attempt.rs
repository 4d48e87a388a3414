//! A second, differently routed attempt for a key not found, by the key and not by who
//! asked (issue 20, sessions 9–10, off by default; docs/durability.md "A second attempt",
//! docs/security.md §16).
//!
//! An 18-hop route that misses a holder usually spends its hops around a local minimum
//! near the key that is not where the block is. A node on that route sees only which of
//! its peers it sent the request to and that they answered "not found"; a repeat of the
//! request sent through its best *other* peer leads into another region of the graph
//! towards the same key.
//!
//! **One rule for every node, originator and relay alike.** When a fetch this node routed
//! (its own or a peer's) ends "not found" here (its hops ran out: the same event that
//! quenches the key, `routing/quench.rs`), the node remembers the key, the HTL that
//! request arrived with, and the peers it sent it to (at most [`SENT_REMEMBERED`]), for
//! [`NodeConfig::second_attempt_window`](super::NodeConfig). The next request for the key
//! that the node routes in that window, whoever sent it, is the *repeat*: it goes to the
//! node's best peers other than those. Before (session 9) only the originator detoured.
//!
//! **Off by default** (a zero window): the rule is the key's, but when one node asks for
//! the key (the usual case) only its originator ever meets the repeat. Every node
//! upstream of a relay R sent the failed request towards R, so it routes the repeat around
//! R (the originator first of all, at its first hop), and R never sees it; the
//! originator's neighbours A (the failed hop) and B (the detour) see "K to A, failed,
//! later K to B" from an originator and nothing more from a relay. A relay repeats the
//! detour only when a second requester's request, or a repeat that came round another
//! way, reaches it within the window (the test of this in
//! `node/tests/second_attempt_relay.rs` needs such a second requester). docs/security.md
//! §16 has the rest of what it leaks and what a fix would need.
//!
//! - Once per key per window: a repeat that fails too leaves the entry used, and the
//!   window is not renewed, so further requests route as ever (and an absent key costs at
//!   most one more request per window, which only the originator's client creates: a
//!   relay never sends a request it was not asked to route).
//! - Only a request that arrives with no more HTL than the failed one is a repeat (the
//!   quench's comparison): a peer that sends a 2-hop probe for K cannot make the node
//!   route someone's full request for K away from its best peer; a deeper failure replaces
//!   a shallower unused entry.
//! - A node none of whose peers (other than the requester) is left after the detour routes
//!   the request as ever and keeps the entry.
//! - The originator's own repeat (the client pipeline asks a block not found once more,
//!   `client::retry`) waits until the key's quench ends, plus a random share of the quench
//!   time again (`Node::second_attempt_wait`): relays on the failed path would answer
//!   "not found" at once, and a repeat that leaves exactly at the end of the originator's
//!   own quench would tell the failed hop's colluder who started it (a relay's repeat
//!   arrives later: the failure's way up and the repeat's way down).
//!
//! The table is an LRU of [`CAPACITY`] keys: a flood of distinct keys pushes out the
//! oldest (which then route as ever), it never grows. Sans-IO: the node's clock and
//! seeded RNG.

use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use lru::LruCache;
use pamphlet_crypto::{BlockKind, RoutingKey};
use rand::Rng;

use super::Node;
use crate::id::{Htl, PeerId};
use crate::routing::request::Request;
use crate::store::BlockStore;

/// Keys remembered at most (`Node::second_attempt_keys`).
pub const CAPACITY: usize = 1024;

/// Peers a failed request was sent to remembered per key (the rest are not avoided).
const SENT_REMEMBERED: usize = 8;

/// Keys whose fetch failed here, with the peers it was sent to.
#[derive(Debug)]
pub(super) struct SecondAttempts {
    entries: LruCache<(BlockKind, RoutingKey), Entry>,
    window: Duration,
}

#[derive(Debug)]
struct Entry {
    /// When the window ends.
    until: Instant,
    /// The HTL the failed request arrived with (max HTL for an own fetch).
    htl: Htl,
    /// The peers the failed request was sent to.
    sent: Vec<PeerId>,
    /// The repeat was routed.
    used: bool,
}

impl SecondAttempts {
    /// A table whose entries last `window` (zero: no second attempts).
    pub(super) fn new(window: Duration) -> Self {
        let capacity = NonZeroUsize::new(CAPACITY).unwrap_or(NonZeroUsize::MIN);
        SecondAttempts { entries: LruCache::new(capacity), window }
    }

    /// A fetch of `key` that arrived with `htl` (an own one: max HTL) and was sent to
    /// `sent` ran its hops out here at `now`. A key already in its window keeps its entry
    /// (and whether it was used), unless this failure searched deeper than an unused one.
    pub(super) fn failed(&mut self, now: Instant, (kind, key): (BlockKind, RoutingKey), htl: Htl, sent: &[PeerId]) {
        if self.window.is_zero() || sent.is_empty() {
            return;
        }
        if self.entries.peek(&(kind, key)).is_some_and(|e| e.until > now && (e.used || e.htl >= htl)) {
            return;
        }
        let until = match self.entries.peek(&(kind, key)) {
            Some(e) if e.until > now => e.until,
            _ => now + self.window,
        };
        let sent = sent.iter().copied().take(SENT_REMEMBERED).collect();
        self.entries.put((kind, key), Entry { until, htl, sent, used: false });
    }

    /// If a request for `key` arriving with `htl` at `now` is the repeat: the peers it
    /// would avoid (without taking the entry).
    pub(super) fn due(&self, now: Instant, kind: BlockKind, key: &RoutingKey, htl: Htl) -> Option<&[PeerId]> {
        self.entries.peek(&(kind, *key)).filter(|e| e.until > now && !e.used && htl <= e.htl).map(|e| e.sent.as_slice())
    }

    /// A request for `key` arriving with `htl` is routed at `now`: if it is the repeat, the
    /// peers to route around (and the entry is used); None otherwise.
    pub(super) fn take(&mut self, now: Instant, kind: BlockKind, key: &RoutingKey, htl: Htl) -> Option<Vec<PeerId>> {
        let e = self.entries.get_mut(&(kind, *key)).filter(|e| e.until > now && !e.used && htl <= e.htl)?;
        e.used = true;
        Some(e.sent.clone())
    }

    /// Keys remembered.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }
}

impl<S: BlockStore> Node<S> {
    /// Whether a request for `key` arriving with `htl` from `upstream` (None: an own fetch)
    /// at `now` is a repeat this node would route around a failure: the key failed here in
    /// the window, arriving with at least `htl`, no repeat was routed yet, and the node has
    /// a peer other than the requester that the failed request was not sent to.
    pub(super) fn second_attempt_due(
        &self,
        now: Instant,
        (kind, key): (BlockKind, &RoutingKey),
        htl: Htl,
        upstream: Option<PeerId>,
    ) -> bool {
        self.second
            .due(now, kind, key, htl)
            .is_some_and(|sent| self.peers.ids().any(|p| Some(p) != upstream && !sent.contains(&p)))
    }

    /// `req` (a fetch arriving with `htl` from `upstream`, None: an own one), routed around
    /// the peers a failed request for its key was sent to if it is the repeat.
    pub(super) fn second_attempt(&mut self, now: Instant, req: Request, htl: Htl, upstream: Option<PeerId>) -> Request {
        let (kind, key) = (req.kind, req.key);
        if !self.second_attempt_due(now, (kind, &key), htl, upstream) {
            return req;
        }
        let Some(sent) = self.second.take(now, kind, &key, htl) else { return req };
        match upstream {
            None => self.stats.second_attempts += 1,
            Some(_) => self.stats.second_attempts_relayed += 1,
        }
        req.avoiding(sent)
    }

    /// When an own repeat held back by the key's quench (ending `quench_end`) leaves: the
    /// quench's end plus a random share of the quench time, so that the failed hop's
    /// colluder cannot tell it from a relay's repeat by when it comes (module doc).
    pub(super) fn second_attempt_wait(&mut self, quench_end: Instant) -> Instant {
        let spread = u64::try_from(self.config.quench_time.as_millis()).unwrap_or(u64::MAX);
        quench_end + Duration::from_millis(self.rng.gen_range(0..=spread))
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
        assert!(t.take(t0, kind, &k, 18).is_none(), "no failure yet");
        t.failed(t0, (kind, k), 18, &[PeerId(3), PeerId(4)]);
        assert_eq!(t.due(t0, kind, &k, 18), Some(&[PeerId(3), PeerId(4)][..]));
        assert_eq!(t.take(t0, kind, &k, 18), Some(vec![PeerId(3), PeerId(4)]));
        assert!(t.take(t0, kind, &k, 18).is_none(), "once");
        t.failed(t0 + Duration::from_secs(60), (kind, k), 18, &[PeerId(5)]);
        assert!(
            t.due(t0 + Duration::from_secs(60), kind, &k, 18).is_none(),
            "a second failure in the window does not renew it"
        );
        let later = t0 + Duration::from_secs(601);
        t.failed(later, (kind, k), 18, &[PeerId(5)]);
        assert_eq!(t.take(later, kind, &k, 18), Some(vec![PeerId(5)]), "a new window");
        for i in 0..(3 * CAPACITY as u32) {
            let mut key = [0; 32];
            key[..4].copy_from_slice(&i.to_be_bytes());
            t.failed(later, (kind, RoutingKey(key)), 18, &[PeerId(1)]);
        }
        assert_eq!(t.len(), CAPACITY);
        let mut off = SecondAttempts::new(Duration::ZERO);
        off.failed(t0, (kind, k), 18, &[PeerId(3)]);
        assert!(off.take(t0, kind, &k, 18).is_none(), "a zero window: off");
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // A base instant only; time moves by arithmetic.
    fn only_a_request_no_deeper_than_the_failure_is_its_repeat() {
        let t0 = Instant::now();
        let mut t = SecondAttempts::new(Duration::from_secs(600));
        let (k, kind) = (RoutingKey([2; 32]), BlockKind::Chk);
        // A peer's 2-hop probe failed through peer 3.
        t.failed(t0, (kind, k), 2, &[PeerId(3)]);
        assert!(t.due(t0, kind, &k, 18).is_none(), "a full request is not the probe's repeat");
        assert_eq!(t.due(t0, kind, &k, 2), Some(&[PeerId(3)][..]));
        // A full request failed through 4 and 5: it is the one to route around.
        t.failed(t0 + Duration::from_secs(1), (kind, k), 18, &[PeerId(4), PeerId(5)]);
        assert_eq!(t.take(t0 + Duration::from_secs(40), kind, &k, 17), Some(vec![PeerId(4), PeerId(5)]));
        // A shallower failure never replaces a deeper entry: used (this one) or not.
        t.failed(t0 + Duration::from_secs(50), (kind, k), 3, &[PeerId(6)]);
        assert!(t.due(t0 + Duration::from_secs(50), kind, &k, 3).is_none());
        let k2 = RoutingKey([3; 32]);
        t.failed(t0, (kind, k2), 18, &[PeerId(7)]);
        t.failed(t0 + Duration::from_secs(50), (kind, k2), 3, &[PeerId(6)]);
        assert_eq!(t.due(t0 + Duration::from_secs(50), kind, &k2, 3), Some(&[PeerId(7)][..]), "unused, kept");
        // A deeper failure replaces a shallower unused entry, within the first one's window.
        let k3 = RoutingKey([4; 32]);
        t.failed(t0, (kind, k3), 2, &[PeerId(3)]);
        t.failed(t0 + Duration::from_secs(300), (kind, k3), 18, &[PeerId(8)]);
        assert_eq!(t.due(t0 + Duration::from_secs(599), kind, &k3, 18), Some(&[PeerId(8)][..]));
        assert!(t.due(t0 + Duration::from_secs(601), kind, &k3, 18).is_none(), "the window is the first failure's");
    }
}
