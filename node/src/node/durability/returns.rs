//! Offers on return (issue 20): a node that comes back hands the blocks of its store area
//! to the peers that are now closer to their keys than it is.
//!
//! While a node is away its store answers nobody, and the inserts and fetches of its keys go
//! to the peers that were online; when it comes back, peers that were away when it stored a
//! block may be back too, and closer to the block's key. In the durability model, offers on
//! return were the largest single effect (docs/durability.md). "Back" is either of:
//!
//! - the node had no connected peer for at least [`DurabilityConfig::away`] (10 minutes by
//!   default) and a peer connects again;
//! - the node started with the keys it remembered before a restart
//!   (`Node::load_remembered_keys`, `remembered.rs`) and its first peer connects.
//!
//! Then, and for every peer that connects within [`DurabilityConfig::return_window`] of the
//! return (a node's friends come back one by one), the offer queue is rebuilt
//! [`SETTLE`] later (by then the new peers' `LocationUpdate`s have arrived: a driver adds a
//! peer at this node's own location until it says where it is): every remembered key some
//! connected peer is closer to is queued, and the paced offer path of offers on swap sends
//! each to the connected peer closest to it (same budget, same memory of the peer each key
//! was last offered to, HTL-1 inserts the peer keeps only as a sink). Bounds: at most one
//! rebuild per [`SETTLE`], only within the window; the queue is at most the keys remembered.
//! A short blip (all peers gone for less than `away`) offers nothing. A node rarely online
//! also queues the keys it is still the closest to, for a steady peer (`steady.rs`).

use std::time::{Duration, Instant};

use super::super::Node;
use super::DurabilityConfig;
use crate::id::PeerId;
use crate::store::BlockStore;

/// How long after a peer connects in the return window the offer queue is rebuilt: its
/// location arrives with its first `LocationUpdate`, sent as soon as it adds this node.
pub(super) const SETTLE: Duration = Duration::from_secs(2);

/// Where the node stands with respect to returns.
#[derive(Debug, Default)]
pub(super) struct Return {
    /// Since when the node has had no connected peer (`None`: it has some, or has had none
    /// since it started).
    alone_since: Option<Instant>,
    /// Keys remembered before a restart were loaded: the first peer starts a return.
    restarted: bool,
    /// Until when newly connected peers get the keys they are closer to.
    window_until: Option<Instant>,
    /// When the offer queue is rebuilt for the peers that connected.
    pub(super) requeue_at: Option<Instant>,
}

impl Return {
    /// Keys from before a restart were loaded.
    pub(super) fn restarted(&mut self) {
        self.restarted = true;
    }
}

impl<S: BlockStore> Node<S> {
    /// A peer connected (called by `Node::add_peer` once it is in the peer table).
    pub(in crate::node) fn durability_peer_added(&mut self, now: Instant, peer: PeerId) {
        self.durability.uptimes.seen(peer, now, true);
        let DurabilityConfig { offers_on_return, away, return_window, offers_per_tick, .. } = self.config.durability;
        let r = &mut self.durability.returns;
        let back = r.restarted || r.alone_since.is_some_and(|t| now.saturating_duration_since(t) >= away);
        r.alone_since = None;
        if !offers_on_return || offers_per_tick == 0 {
            return;
        }
        if back {
            r.restarted = false;
            r.window_until = Some(now + return_window);
            self.stats.returns += 1;
        }
        if r.window_until.is_some_and(|t| now <= t) && r.requeue_at.is_none() {
            r.requeue_at = Some(now + SETTLE);
        }
    }

    /// A peer disconnected (called by `Node::remove_peer` once it left the peer table).
    pub(in crate::node) fn durability_peer_removed(&mut self, now: Instant, peer: PeerId) {
        self.durability.uptimes.seen(peer, now, false);
        if self.peers.is_empty() {
            self.durability.returns.alone_since = Some(now);
        }
    }

    /// The durability work due at `now`: the offer queue's rebuild after a return, and the
    /// next batch of offers.
    pub(in crate::node) fn durability_tick(&mut self, now: Instant) {
        if self.durability.returns.requeue_at.is_some_and(|t| t <= now) {
            self.durability.returns.requeue_at = None;
            let before = self.stats.offers_queued;
            let steady = self.backs_up_on_return();
            self.queue_offers_with(now, steady);
            self.stats.return_offers_queued += self.stats.offers_queued - before;
        }
        self.send_offers(now);
    }
}
