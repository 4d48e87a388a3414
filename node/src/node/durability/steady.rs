//! Steady backups on return (issue 20): a node that is rarely online, on its return, hands
//! the blocks it is still the closest to to a peer that is usually there.
//!
//! Why: in the durability model, at day 30 about 41% of the missing blocks of lost
//! documents sit only on offline nodes, a third of them only on occasional ones (online a
//! sixth of the time): their store areas turn over slowest, so a month after an insert the
//! copies left are on the nodes that are rarely there. Offers on return hand a block only
//! to a peer *closer* to its key; the blocks the returning node is still the closest to
//! stay with it, and go offline with it again. The model's steady backup
//! (`--steady-backup 0.5`) moved day 30 at fill 0.09 from 70.9% to 77.9%, and with deeper
//! fetches to 86.7% (docs/durability.md, "Why documents are lost").
//!
//! The rule, as the model's: on a return (`returns.rs`), if the node's own share
//! (`Node::set_own_uptime`, from the driver's history) is known and below
//! [`super::DurabilityConfig::steady_backup`] (U, 0.5), every remembered store-area key
//! that no connected peer is closer to is queued too, for the connected peer closest to
//! the key among those this node observed online at least U of the time (`uptime.rs`:
//! what it saw, never what a peer claims). It goes by the key-first offer path, same pace
//! and budgets: the key in an `OfferKeys`, and the block only if the peer asks for it.
//!
//! The receiver judges an offered key as a sink **without the sender** (no connected
//! peer but the sender at least as close): for an offer on swap or an ordinary offer on
//! return that changes nothing (the sender offers only keys the receiver is closer to),
//! and for a backup it is the model's test (a sink with the returning node away). It
//! remembers the keys it asked for that way ([`BACKUPS_REMEMBERED`]), and keeps the HTL-1
//! insert that follows from that sender in its store area, where an ordinary insert from a
//! closer sender would go to its cache. No new message and no flag: a node without this
//! rule judges with the sender and wants none of a backup's keys.
//!
//! What a lying sender gets: it can already push blocks into a peer's store area with
//! plain inserts of keys that peer is a sink for; this lets it choose keys near itself
//! instead, at the same cost to the receiver, bounded by the same budgets (64 keys a
//! second looked up, `LOOKUP_BUDGET`; the store budget for writes into a full store area).
//! A lying receiver cannot become a steady peer by saying so: nothing it says is read.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::time::Instant;

use lru::LruCache;
use pamphlet_crypto::RoutingKey;

use super::super::Node;
use crate::id::PeerId;
use crate::location::Location;
use crate::routing::opennet::PeerKind;
use crate::store::{Area, BlockStore};

/// Backup keys a receiver asked for and still waits for (four full rounds of lists).
pub(super) const BACKUPS_REMEMBERED: usize = 1024;

/// Backup keys one peer may have this node wait for at once (one full round of lists):
/// a peer offering keys without end cannot push the others' pending backups out of the
/// shared memory (they would then land in the cache area).
pub(super) const BACKUPS_PER_PEER: usize = 256;

/// The receiver's memory of the backups it asked for: key → the peer to send it, and how
/// many each peer has there.
#[derive(Debug)]
pub(super) struct Asked {
    keys: LruCache<RoutingKey, PeerId>,
    per_peer: HashMap<PeerId, usize>,
}

impl Default for Asked {
    fn default() -> Self {
        Asked {
            keys: LruCache::new(NonZeroUsize::new(BACKUPS_REMEMBERED).unwrap_or(NonZeroUsize::MIN)),
            per_peer: HashMap::new(),
        }
    }
}

impl Asked {
    /// Remembers that `peer` is to send `key`; false (nothing remembered) if `peer`
    /// already has [`BACKUPS_PER_PEER`] keys waiting.
    fn put(&mut self, key: RoutingKey, peer: PeerId) -> bool {
        if self.keys.peek(&key) == Some(&peer) {
            return true;
        }
        if self.per_peer.get(&peer).copied().unwrap_or(0) >= BACKUPS_PER_PEER {
            return false;
        }
        *self.per_peer.entry(peer).or_default() += 1;
        if let Some((_, old)) = self.keys.push(key, peer) {
            self.forget(old);
        }
        true
    }

    /// Whether `peer` is to send `key`; forgets it if so.
    fn take(&mut self, key: &RoutingKey, peer: PeerId) -> bool {
        if self.keys.peek(key) != Some(&peer) {
            return false;
        }
        self.keys.pop(key);
        self.forget(peer);
        true
    }

    fn forget(&mut self, peer: PeerId) {
        if let Some(n) = self.per_peer.get_mut(&peer) {
            *n -= 1;
            if *n == 0 {
                self.per_peer.remove(&peer);
            }
        }
    }

    /// Keys waited for from `peer` (tests).
    #[cfg(test)]
    fn waiting_from(&self, peer: PeerId) -> usize {
        self.per_peer.get(&peer).copied().unwrap_or(0)
    }
}

/// What an offered key this node wants is ([`Node::wants_offered`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Offered {
    /// No connected peer is closer to it, the sender included: an offer on swap or return.
    Ordinary,
    /// The sender is closer to it: a steady backup.
    Backup,
}

impl<S: BlockStore> Node<S> {
    /// Whether a return now makes steady backups: the node's own share is known and below
    /// `steady_backup`.
    pub(super) fn backs_up_on_return(&self) -> bool {
        let u = self.config.durability.steady_backup;
        u > 0.0 && self.durability.uptimes.own().is_some_and(|own| own < u)
    }

    /// The connected steady peer closest to `target`, among `steady` (`steady_peers`).
    pub(super) fn steady_target(&self, steady: &[PeerId], target: Location) -> Option<PeerId> {
        steady.iter().filter_map(|&p| self.peers.get(p).map(|e| (e.location.distance(target), p))).min().map(|(_, p)| p)
    }

    /// The receiver's sink test for a key `peer` offers: no connected peer but `peer` at
    /// least as close to it; `None` if it fails. A key the sender itself is closer to (a
    /// backup) is remembered, so the insert that brings it is kept in the store area.
    pub(super) fn wants_offered(&mut self, peer: PeerId, key: &RoutingKey) -> Option<Offered> {
        let (own, target) = (self.config.location, Location::of_key(key));
        if self.peers.closer_count_except(own, target, peer) > 0 {
            return None;
        }
        if self.peers.closer_count(own, target) == 0 {
            return Some(Offered::Ordinary);
        }
        // A backup: the sender is closer to the key. Only from a friend (a stranger would
        // choose keys near itself for this node's store area: not what opennet admits
        // strangers for), and within the sender's share of the memory.
        (self.peer_kind(peer).0 == PeerKind::Friend && self.durability.asked.put(*key, peer)).then_some(Offered::Backup)
    }

    /// Where an insert of `key` from `from` ends if it is a backup this node asked that
    /// peer for and is still a sink for without it: the store area (`None`: not a backup).
    pub(super) fn backup_area(&mut self, key: &RoutingKey, from: Option<PeerId>) -> Option<Area> {
        let from = from?;
        if !self.durability.asked.take(key, from) {
            return None;
        }
        let (own, target) = (self.config.location, Location::of_key(key));
        (self.peers.closer_count_except(own, target, from) == 0).then(|| {
            self.stats.steady_backups_kept += 1;
            Area::Store
        })
    }

    /// Queue a steady backup? The key is one no connected peer is closer to; with `steady`
    /// peers connected, it is.
    pub(super) fn queue_backup(&mut self, steady: &[PeerId]) -> bool {
        let any = !steady.is_empty();
        if any {
            self.stats.steady_backups_queued += 1;
        }
        any
    }

    /// The steady peers for a round of offers at `now` (none unless backups are on).
    pub(super) fn round_steady_peers(&self, now: Instant) -> Vec<PeerId> {
        let u = self.config.durability.steady_backup;
        if u > 0.0 {
            self.steady_peers(now, u)
        } else {
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32) -> RoutingKey {
        let mut b = [0u8; 32];
        b[..4].copy_from_slice(&i.to_be_bytes());
        RoutingKey(b)
    }

    /// One peer cannot fill the shared memory: past its share its keys are not asked for,
    /// and another peer's pending backups stay.
    #[test]
    fn one_peer_cannot_push_out_anothers_pending_backups() {
        let mut asked = Asked::default();
        let (honest, flooder) = (PeerId(1), PeerId(2));
        assert!((0..10).all(|i| asked.put(key(i), honest)));
        let taken = (100..2100).filter(|&i| asked.put(key(i), flooder)).count();
        assert_eq!(taken, BACKUPS_PER_PEER);
        assert_eq!(asked.waiting_from(flooder), BACKUPS_PER_PEER);
        assert!((0..10).all(|i| asked.take(&key(i), honest)), "the honest peer's backups are still expected");
        assert!(!asked.take(&key(100), honest), "only from the peer asked");
        assert!(asked.take(&key(100), flooder));
        assert_eq!(asked.waiting_from(flooder), BACKUPS_PER_PEER - 1);
    }
}
