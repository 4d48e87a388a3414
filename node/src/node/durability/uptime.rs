//! Uptimes (steady backups, issue 20): the node's own online share, told by the driver,
//! and each peer's, as this node observed it.
//!
//! A peer's share is what this node saw, never what the peer says (no message carries an
//! uptime): the time the peer was connected over the time this node ran knowing it, in the
//! node's own clock (`now`), counted from the first time it connected. The oldest time is
//! forgotten past [`PEER_WINDOW`] (both counters scaled down together, so the share leans
//! toward the last week, as the model's one-week average). A peer known for less than
//! `DurabilityConfig::steady_observed` counts as known that long, offline the rest: a peer
//! that connected a minute ago is not "always online" (its share is a minute over that
//! time), and one that flaps counts only the time it was there. While this node is off it
//! sees nobody, so an occasional node measures its peers over its own sessions (which is
//! what it needs: who is there when it is).
//!
//! Memory: at most [`MAX_PEERS`] peers (to make room, the peer not connected now that was
//! connected least is forgotten), about 48 bytes each. The counters are persisted by the driver with the
//! node's own sessions (`history.rs`, `DIR/uptime`), so a restarted node, the usual
//! returning node, knows its peers from its earlier runs.

use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use lru::LruCache;

use super::super::Node;
use super::history::{PeerUptime, MAX_PEERS};
use crate::id::PeerId;
use crate::store::BlockStore;

/// How much of a peer's past counts: both counters are scaled down together once this
/// node has known the peer longer than this.
pub const PEER_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);

/// One peer's counters.
#[derive(Clone, Copy, Debug)]
struct Seen {
    /// Time this node ran knowing the peer, up to `at`.
    known: Duration,
    /// Of that, time the peer was connected.
    connected: Duration,
    /// Until when the counters run (`None`: loaded from before a restart, not seen since:
    /// they run from the node's first instant).
    at: Option<Instant>,
    /// Connected now.
    up: bool,
}

impl Seen {
    /// The counters brought forward to `now` (`origin`: when this node started counting).
    fn at(mut self, now: Instant, origin: Instant) -> Self {
        let from = self.at.unwrap_or(origin);
        let d = now.saturating_duration_since(from);
        self.known += d;
        if self.up {
            self.connected += d;
        }
        self.at = Some(now.max(from));
        if self.known > PEER_WINDOW {
            let f = PEER_WINDOW.as_secs_f64() / self.known.as_secs_f64();
            self.connected = self.connected.mul_f64(f).min(PEER_WINDOW);
            self.known = PEER_WINDOW;
        }
        self
    }
}

/// The node's own share and its peers' observed ones.
#[derive(Debug)]
pub(in crate::node) struct Uptimes {
    /// The node's online share from the driver's history (`None`: unknown).
    own: Option<f64>,
    /// Each peer's counters.
    peers: LruCache<PeerId, Seen>,
    /// The first instant this node saw (loaded counters run from here).
    origin: Option<Instant>,
}

impl Default for Uptimes {
    fn default() -> Self {
        let cap = NonZeroUsize::new(MAX_PEERS).unwrap_or(NonZeroUsize::MIN);
        Uptimes { own: None, peers: LruCache::new(cap), origin: None }
    }
}

impl Uptimes {
    /// The node's own share (`None`: unknown).
    pub(super) fn own(&self) -> Option<f64> {
        self.own
    }

    /// `peer` connected (`up`) or disconnected at `now`.
    pub(super) fn seen(&mut self, peer: PeerId, now: Instant, up: bool) {
        let origin = *self.origin.get_or_insert(now);
        if self.peers.len() >= self.peers.cap().get() && !self.peers.contains(&peer) {
            self.forget_one(now, origin);
        }
        let fresh = Seen { known: Duration::ZERO, connected: Duration::ZERO, at: Some(now), up };
        let seen = self.peers.get(&peer).map_or(fresh, |s| s.at(now, origin));
        self.peers.put(peer, Seen { up, ..seen });
    }

    /// Makes room for a new peer: forgets the peer not connected now that was connected
    /// least (the least recently seen would be the steadiest: a peer connected all along
    /// has the oldest connect, and a churn of made-up ids would push it out first).
    fn forget_one(&mut self, now: Instant, origin: Instant) {
        let victim =
            self.peers.iter().filter(|(_, s)| !s.up).min_by_key(|(_, s)| s.at(now, origin).connected).map(|(&p, _)| p);
        match victim {
            Some(p) => {
                self.peers.pop(&p);
            }
            // Every peer remembered is connected now: the least recently seen goes.
            None => {
                self.peers.pop_lru();
            }
        }
    }

    /// `peer`'s observed share at `now`, with a history shorter than `observed` counted as
    /// that long (`None`: never seen).
    pub(super) fn share(&self, peer: PeerId, now: Instant, observed: Duration) -> Option<f64> {
        let s = self.peers.peek(&peer)?.at(now, self.origin.unwrap_or(now));
        let known = s.known.max(observed).max(Duration::from_secs(1));
        Some(s.connected.as_secs_f64() / known.as_secs_f64())
    }
}

impl<S: BlockStore> Node<S> {
    /// Tells the node its own online share (from the driver's history of its runs,
    /// `UptimeHistory::own_share`; `None`: unknown). A node below
    /// `DurabilityConfig::steady_backup` makes steady backups when it returns.
    pub fn set_own_uptime(&mut self, share: Option<f64>) {
        self.durability.uptimes.own = share.filter(|s| s.is_finite()).map(|s| s.clamp(0.0, 1.0));
    }

    /// The node's own online share, as last told (`None`: unknown).
    pub fn own_uptime(&self) -> Option<f64> {
        self.durability.uptimes.own
    }

    /// `peer`'s online share as this node observed it at `now` (`None`: never connected).
    pub fn peer_uptime(&self, now: Instant, peer: PeerId) -> Option<f64> {
        self.durability.uptimes.share(peer, now, self.config.durability.steady_observed)
    }

    /// The peers' counters at `now`, for the driver to persist (`history.rs`).
    pub fn peer_uptimes(&self, now: Instant) -> Vec<PeerUptime> {
        let u = &self.durability.uptimes;
        let origin = u.origin.unwrap_or(now);
        u.peers
            .iter()
            .rev()
            .map(|(&peer, s)| {
                let s = s.at(now, origin);
                PeerUptime { peer, known: s.known.as_secs(), connected: s.connected.as_secs() }
            })
            .collect()
    }

    /// Takes back the peers' counters saved before a restart (before any peer connects;
    /// later entries win, at most [`MAX_PEERS`]). Counters that make no sense (connected
    /// longer than known) are clamped; nothing a peer sends can reach them.
    pub fn load_peer_uptimes(&mut self, peers: &[PeerUptime]) {
        let u = &mut self.durability.uptimes;
        for p in peers {
            let known = Duration::from_secs(p.known).min(PEER_WINDOW);
            let connected = Duration::from_secs(p.connected).min(known);
            u.peers.put(p.peer, Seen { known, connected, at: None, up: false });
        }
    }

    /// Connected peers observed online at least `min` of the time at `now`.
    pub(super) fn steady_peers(&self, now: Instant, min: f64) -> Vec<PeerId> {
        let observed = self.config.durability.steady_observed;
        self.peers
            .ids()
            .filter(|&p| self.durability.uptimes.share(p, now, observed).is_some_and(|s| s >= min))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A churn of brief peers (made-up ids cost nothing) does not push out the peer that
    /// was there all along: room is made by forgetting the least connected.
    #[test]
    fn a_churn_of_brief_peers_does_not_forget_the_steady_one() {
        let start = Instant::now();
        let mut u = Uptimes::default();
        let steady = PeerId(u64::MAX);
        u.seen(steady, start, true);
        let mut now = start + Duration::from_secs(2 * 3600);
        for i in 0..(MAX_PEERS as u64 + 100) {
            u.seen(PeerId(i), now, true);
            now += Duration::from_secs(1);
            u.seen(PeerId(i), now, false);
        }
        assert!(u.peers.len() <= MAX_PEERS);
        let share = u.share(steady, now, Duration::from_secs(3600)).expect("still remembered");
        assert!(share > 0.9, "{share}");
    }
}
