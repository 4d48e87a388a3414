//! Load management (issue 18): which requests this node accepts, and how many it sends
//! each peer, so an overloaded network says "overloaded" quickly instead of timing out
//! everywhere.
//!
//! **Accepting** (Hyphanet's output bandwidth liability, `NodeStats.checkBandwidthLiability`
//! in fred): every request this node holds may end in a block it must upload, so it
//! accepts a new one only if all of them, the new one included, could be uploaded within
//! half the new request's answer budget at `upload_limit` even if all succeed, after the
//! bytes already committed and not yet sent (a virtual queue draining at the limit). Past
//! half of that capacity, one peer may hold at most its share (capacity ÷ the peers with
//! requests here), so a flooding friend cannot take what the others need. Anything else
//! is answered `RejectedOverload` at once. With no upload limit (`upload_limit = 0`) only
//! the per-peer cap `max_requests_per_peer` applies: the node has no rate to plan with.
//!
//! **Sending** (fred's per-peer request windows, "new load management"): the requester
//! keeps a window per peer, additive increase (one more per window of answers) while the
//! peer answers, halved on `RejectedOverload` or a time-out (AIMD). A peer whose window is
//! full is routed around, as if backed off; a request whose only remaining routes were
//! full or refused it as overloaded ends with [`FailReason::Overloaded`] (its upstream gets
//! `RejectedOverload`), which reaches the person as "retry later: overloaded".
//!
//! Sans-IO: `now` is an argument; the virtual upload queue is fed from `poll_transmit`.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::inflight::{Handle, InFlight, Payload};
use super::{Event, FailReason, Node};
use crate::id::{Htl, PeerId, RequestId};
use crate::routing::htl::LinkHtl;
use crate::store::BlockStore;
use crate::wire::message::Message;

/// What one block costs on a link: 33 frames of 1 KiB (32 KiB and its header, in frames
/// of 1,003 payload bytes).
pub const BLOCK_WIRE_BYTES: u64 = 33 * 1024;
/// What a one-frame message costs.
const FRAME_BYTES: u64 = 1024;
/// The smallest window: one request at a time still probes a peer.
const MIN_WINDOW: f64 = 1.0;

/// Load-management settings (part of `NodeConfig`); the default is off: no upload limit,
/// no windows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadConfig {
    /// Bytes per second this node may send over all its links (config.toml's
    /// `upload_limit`); 0: no limit known, accept by `max_requests_per_peer` alone.
    pub upload_limit: u64,
    /// Whether this node keeps an AIMD window per peer for the requests it sends. On in
    /// the daemon; off by default, so the simulator's golden runs stay as they were.
    pub peer_windows: bool,
}

/// The node's load state.
#[derive(Debug, Default)]
pub(super) struct Load {
    config: LoadConfig,
    /// The largest window (the peers' `max_requests_per_peer`, assumed like ours).
    max_window: f64,
    /// Bytes handed to the driver and, at `upload_limit`, not yet on the wire.
    backlog: f64,
    /// When `backlog` was last drained.
    at: Option<Instant>,
    /// Each peer's window. Absent: `max_window`, the most the peer accepts from one
    /// friend anyway; a window starts there and shrinks only on overload, so a fetch
    /// that fills a long path (its own window reaches 64) is not slowed where nothing is
    /// overloaded.
    windows: HashMap<PeerId, f64>,
    /// Requests that met a full window or a `RejectedOverload` on their way.
    overloaded: HashSet<Handle>,
}

impl Load {
    pub(super) fn new(config: LoadConfig, max_requests_per_peer: u32) -> Self {
        Load { config, max_window: f64::from(max_requests_per_peer.max(1)), ..Load::default() }
    }

    fn drain(&mut self, now: Instant) {
        let at = *self.at.get_or_insert(now);
        let gone = now.saturating_duration_since(at).as_secs_f64() * self.config.upload_limit as f64;
        self.backlog = (self.backlog - gone).max(0.0);
        self.at = Some(now.max(at));
    }

    /// A message leaves for the driver: its bytes join the virtual upload queue.
    pub(super) fn on_transmit(&mut self, msg: &Message) {
        if self.config.upload_limit == 0 {
            return;
        }
        self.backlog += match msg {
            Message::DataFound { .. } | Message::InsertRequest { .. } | Message::InsertCollision { .. } => {
                BLOCK_WIRE_BYTES as f64
            }
            _ => FRAME_BYTES as f64,
        };
    }

    /// Whether a request from a peer holding `peer_held` of the `held` requests here (from
    /// `active` peers) can be answered within `budget` (see the module doc).
    fn admits(&mut self, now: Instant, held: u64, peer_held: u64, active: u64, budget: Duration) -> bool {
        if self.config.upload_limit == 0 {
            return true;
        }
        self.drain(now);
        let capacity = self.config.upload_limit as f64 * budget.as_secs_f64() / 2.0;
        let liability = self.backlog + ((held + 1) * BLOCK_WIRE_BYTES) as f64;
        if liability > capacity {
            return false;
        }
        let share = capacity / active.max(1) as f64;
        liability <= capacity / 2.0 || ((peer_held + 1) * BLOCK_WIRE_BYTES) as f64 <= share
    }

    fn window(&self, peer: PeerId) -> f64 {
        self.windows.get(&peer).copied().unwrap_or(self.max_window)
    }

    /// Whether `peer`, with `sent` of our requests in flight, may get one more.
    fn has_room(&self, peer: PeerId, sent: usize) -> bool {
        !self.config.peer_windows || (sent as f64) < self.window(peer).floor()
    }

    /// `peer` answered request `h` (overloaded or not): grow or halve its window.
    pub(super) fn on_answer(&mut self, h: Handle, peer: PeerId, overload: bool) {
        if overload {
            self.overloaded.insert(h);
            self.shrink(peer);
        } else if self.config.peer_windows {
            let w = self.window(peer);
            self.windows.insert(peer, (w + 1.0 / w).min(self.max_window));
        }
    }

    /// `peer` let a request time out: halve its window.
    pub(super) fn on_timeout(&mut self, peer: PeerId) {
        self.shrink(peer);
    }

    fn shrink(&mut self, peer: PeerId) {
        if self.config.peer_windows {
            let w = self.window(peer);
            self.windows.insert(peer, (w / 2.0).max(MIN_WINDOW));
        }
    }

    /// A peer left: its window starts afresh if it comes back.
    pub(super) fn forget_peer(&mut self, peer: PeerId) {
        self.windows.remove(&peer);
    }

    /// Request `h` ended.
    pub(super) fn forget(&mut self, h: Handle) {
        self.overloaded.remove(&h);
    }
}

impl<S: BlockStore> Node<S> {
    /// Load check for an incoming request (the per-peer cap, then [`Self::admit_load`]):
    /// the link's HTL coins if accepted; otherwise RejectedOverload is queued and None
    /// returned.
    pub(super) fn accept(&mut self, now: Instant, peer: PeerId, id: RequestId, htl: Htl) -> Option<LinkHtl> {
        let cap = self.config.max_requests_per_peer;
        let entry = self.peers.get(peer)?;
        let (held, link) = (entry.in_flight, entry.link);
        if held >= cap || !self.admit_load(now, peer, htl, held) {
            self.stats.rejected_overload += 1;
            self.transmits.push_back((peer, Message::RejectedOverload { id }));
            return None;
        }
        Some(link)
    }

    /// Whether this node takes on a request that arrived from `peer` with `htl` (it holds
    /// `held_by_peer` of that peer's already); if not, the caller answers RejectedOverload.
    pub(super) fn admit_load(&mut self, now: Instant, peer: PeerId, htl: Htl, held_by_peer: u32) -> bool {
        let (mut held, mut active) = (0u64, 0u64);
        for p in self.peers.ids().collect::<Vec<_>>() {
            let n = self.peers.get(p).map_or(0, |e| e.in_flight);
            held += u64::from(n);
            active += u64::from(n > 0 || p == peer);
        }
        let budget = self.budget(htl);
        self.load.admits(now, held, u64::from(held_by_peer), active, budget)
    }

    /// `ranked` without the peers whose window is full; request `h` is marked overloaded
    /// if one of them was a route it had not tried yet.
    pub(super) fn route_around_full(&mut self, h: Handle, mut ranked: Vec<PeerId>) -> Vec<PeerId> {
        if !self.load.config.peer_windows {
            return ranked;
        }
        let mut sent: HashMap<PeerId, usize> = HashMap::new();
        for (p, _) in self.by_link.keys() {
            *sent.entry(*p).or_default() += 1;
        }
        let Some(f) = self.requests.get(&h) else { return ranked };
        let mut skipped = false;
        ranked.retain(|p| {
            let room = self.load.has_room(*p, sent.get(p).copied().unwrap_or(0));
            skipped |= !room && !f.req.tried().contains(p);
            room
        });
        if skipped {
            self.load.overloaded.insert(h);
        }
        ranked
    }

    /// Whether request `h`, out of routes, ran out of them because of overload.
    pub(super) fn ended_by_overload(&mut self, h: Handle) -> bool {
        self.load.overloaded.remove(&h)
    }

    /// Ends request `h` as overloaded: its local operations fail with
    /// [`FailReason::Overloaded`], its upstream gets `RejectedOverload`.
    pub(super) fn finish_overloaded(&mut self, h: Handle, now: Instant) {
        let Some(f) = self.requests.remove(&h) else { return };
        let to = self.detach(&f);
        let (kind, key) = (f.req.kind, f.req.key);
        self.stats.overload_ends += 1;
        let reason = FailReason::Overloaded;
        let InFlight { payload, .. } = f;
        for op in to.local_ops {
            self.events.push_back(match payload {
                Payload::Fetch => Event::FetchFailed { op, reason, peers_tried: to.peers_tried },
                Payload::Insert { .. } => Event::InsertFailed { op, reason, peers_tried: to.peers_tried },
            });
        }
        if let Some((peer, id)) = to.upstream {
            self.transmits.push_back((peer, Message::RejectedOverload { id }));
        }
        // Own operations that waited for this key start now (`deferred.rs`).
        self.resume_deferred(now, kind, key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> Instant {
        // Only differences between instants matter.
        #[allow(clippy::disallowed_methods)]
        Instant::now()
    }

    #[test]
    fn accepts_what_the_upload_limit_can_answer_in_half_the_budget() {
        let now = t0();
        // 338 KB/s (10 blocks a second) and 2 s budgets: 330 KB (10 blocks) may be promised at once.
        let mut l = Load::new(LoadConfig { upload_limit: 10 * BLOCK_WIRE_BYTES, peer_windows: true }, 64);
        let budget = Duration::from_secs(2);
        assert!(l.admits(now, 9, 0, 1, budget));
        assert!(!l.admits(now, 10, 0, 1, budget));
        // Blocks handed to the driver count until the limit has carried them.
        for _ in 0..5 {
            l.on_transmit(&Message::DataFound { id: 1, block: test_block() });
        }
        assert!(!l.admits(now, 5, 0, 1, budget));
        assert!(l.admits(now + Duration::from_millis(500), 5, 0, 1, budget));
        // Past half the capacity, one of two active peers holds at most half.
        assert!(!l.admits(now + Duration::from_secs(2), 6, 5, 2, budget));
        assert!(l.admits(now + Duration::from_secs(2), 6, 1, 2, budget));
        // No limit: no liability check.
        let mut free = Load::new(LoadConfig::default(), 64);
        assert!(free.admits(now, 1_000_000, 1_000_000, 1, budget));
    }

    #[test]
    fn windows_grow_additively_and_halve_on_overload_or_timeout() {
        let mut l = Load::new(LoadConfig { upload_limit: 0, peer_windows: true }, 8);
        let p = PeerId(3);
        assert!(l.has_room(p, 7) && !l.has_room(p, 8));
        for _ in 0..9 {
            l.on_answer(1, p, false);
        }
        assert!(!l.has_room(p, 8), "never above the peer's own cap");
        l.on_answer(2, p, true);
        assert!(l.has_room(p, 3) && !l.has_room(p, 4));
        for _ in 0..5 {
            l.on_answer(1, p, false);
        }
        assert!(l.has_room(p, 4), "one more after a window of answers");
        l.on_answer(2, p, true);
        for _ in 0..5 {
            l.on_timeout(p);
        }
        assert!(l.has_room(p, 0) && !l.has_room(p, 1), "never below one");
        assert!(l.overloaded.contains(&2) && !l.overloaded.contains(&1));
        l.forget_peer(p);
        assert!(l.has_room(p, 7));
        let off = Load::new(LoadConfig::default(), 64);
        assert!(off.has_room(p, 1000), "windows off: no limit");
    }

    fn test_block() -> pamphlet_crypto::Block {
        use pamphlet_crypto::{chk, ChkFlags};
        pamphlet_crypto::Block::Chk(chk::encode(&[1; 3], ChkFlags::default()).unwrap().0)
    }
}
