//! Offers on swap (issue 20): a node whose location changed hands the blocks of its store
//! area to the peers now closer to their keys.
//!
//! A swap moves a node's whole store away from the keys it was a sink for: the blocks stay
//! with it, at its new location, where routing no longer looks for them. In the durability
//! model this was the largest single loss (no daily swaps: 100% of documents at day 30
//! against 68% at fill 0.04), and offers on swap with wider top blocks kept 100% at fill
//! 0.04 (docs/durability.md). So when the node's location changes (`Node::set_location`:
//! a completed swap, a location reset, or a driver's direct swap), every remembered key of
//! its store area for which some connected peer is now closer than the node is queued.
//! Each key is offered to the connected peer now closest to it (by own location), keys
//! first (`key_first.rs`): a list of keys, the peer's answer naming those it lacks and is
//! a sink for, and then, on a paced tick ([`super::DurabilityConfig::offers_per_tick`]
//! blocks per `offer_tick`), each wanted block as an insert at HTL 1. That peer keeps it
//! in its store area if it is a sink for it (as any insert), and the insert ends there or
//! one hop further (HTL 1's per-link coin, `routing/htl.rs`), toward the key. The node
//! keeps its own copy.
//!
//! A block already offered to the same peer after an earlier move is not offered again
//! (the node remembers, for as many keys, the peer it last offered each to), so a node
//! that keeps moving spends its pace only on blocks whose closest peer changed.
//!
//! Bounds: the keys remembered (the most recently written to the store area; a store
//! cannot be listed cheaply, and the on-disk store keeps no keys in the clear) and so the
//! queue are at most `offers_remembered`; a new move rebuilds the queue; the sends are
//! paced; answers to offers are matched against the last [`SENT_REMEMBERED`] sent and
//! dropped. The queue and the memory of who took what are lost on restart; the remembered
//! keys survive it if the driver persists them (`remembered.rs`), and a restarted node then
//! offers them on return (`returns.rs`).

use std::collections::{BTreeMap, VecDeque};
use std::num::NonZeroUsize;
use std::time::Instant;

use lru::LruCache;
use pamphlet_crypto::{BlockKind, RoutingKey};
use rand::Rng;

use super::super::Node;
use super::key_first::{Sent, ANSWER_WAIT, ROUND_EVERY};
use crate::id::{PeerId, RequestId};
use crate::location::Location;
use crate::store::BlockStore;
use crate::wire::message::{Message, MAX_OFFERED_KEYS};

/// Offers whose answers are recognised (older answers count as unexpected replies).
const SENT_REMEMBERED: usize = 1024;
/// Offers yield to fetches: for this long after the node last saw a fetch (its own, or a
/// peer's request it answered or routed), its offers go out at most one block per this
/// interval instead of at their pace. An offer is an insert on the same links as the
/// fetch's blocks, and its friend stores it `fdatasync`ed on its node thread: on the WAN
/// darknet, offers after the swaps of a fresh darknet took about a tenth of the bottleneck
/// link and held the relays up to 100 ms a second, and a 10 MiB fetch lost 0.1-0.5 s to
/// them (docs/benchmarks.md, "Session 11"). One a second still moves a store under
/// constant traffic, only slower; offers wait, fetches are what people wait for.
pub const OFFERS_YIELD: std::time::Duration = std::time::Duration::from_secs(1);
/// Store reads one batch of wanted blocks makes at most, a block found or not (a block
/// evicted between the list and its answer costs a read and sends nothing). The lists
/// themselves check at most [`MAX_OFFERED_KEYS`] keys a round against the store's index
/// (no block read): without these bounds one tick could read the store up to
/// `offers_remembered` times on the node's thread.
const LOOKUPS_PER_TICK: u32 = 64;

/// The offer state of a node.
#[derive(Debug)]
pub(in crate::node) struct Offers {
    /// Keys written to the store area, most recently written last.
    written: LruCache<(BlockKind, RoutingKey), ()>,
    /// Keys to offer, in the order they go out, each with whether it may go to a steady
    /// peer when no peer is closer (a steady backup, `steady.rs`).
    queue: VecDeque<(BlockKind, RoutingKey, bool)>,
    /// When the next batch goes out (`None`: nothing queued).
    pub(in crate::node) next: Option<Instant>,
    /// (peer, link-local id) of the offers sent most recently.
    sent: VecDeque<(PeerId, RequestId)>,
    /// The peer each remembered key was last offered to: a node that keeps moving does not
    /// offer a block again to the peer that already took it.
    offered: LruCache<(BlockKind, RoutingKey), PeerId>,
    /// Keys remembered since start (`Node::remembered_writes`).
    writes: u64,
    /// Key lists sent and waiting for their answers (at most one round's).
    pub(in crate::node) lists: VecDeque<Sent>,
    /// Blocks the peers asked for, to send at the offers' pace (at most one round's).
    pub(in crate::node) wanted: VecDeque<(PeerId, BlockKind, RoutingKey)>,
    /// When the last round of key lists went out (one per [`ROUND_EVERY`] at most).
    last_round: Option<Instant>,
    /// When the node last saw a fetch ([`OFFERS_YIELD`]).
    fetch_seen: Option<Instant>,
    /// When the last offered block went out.
    block_sent: Option<Instant>,
}

impl Offers {
    pub(super) fn new(remembered: usize) -> Self {
        let cap = NonZeroUsize::new(remembered.max(1)).unwrap_or(NonZeroUsize::MIN);
        Offers {
            written: LruCache::new(cap),
            offered: LruCache::new(cap),
            queue: VecDeque::new(),
            next: None,
            sent: VecDeque::new(),
            writes: 0,
            lists: VecDeque::new(),
            wanted: VecDeque::new(),
            last_round: None,
            fetch_seen: None,
            block_sent: None,
        }
    }

    /// The node started, answered or routed a fetch at `now`: offers yield for a while.
    pub(in crate::node) fn on_fetch(&mut self, now: Instant) {
        self.fetch_seen = Some(now);
    }

    /// How many offered blocks may go out in the tick at `now`: the pace, or while fetches
    /// are about ([`OFFERS_YIELD`]) one if none went out for that long, else none.
    fn blocks_allowed(&self, now: Instant, pace: u32) -> u32 {
        let within = |t: Option<Instant>| t.is_some_and(|t| now < t + OFFERS_YIELD);
        match (within(self.fetch_seen), within(self.block_sent)) {
            (false, _) => pace,
            (true, false) => pace.min(1),
            (true, true) => 0,
        }
    }

    /// A block was written to the store area.
    pub(in crate::node) fn remember(&mut self, kind: BlockKind, key: RoutingKey) {
        self.written.put((kind, key), ());
        self.writes += 1;
    }

    /// The remembered keys, least recently written first.
    pub(in crate::node) fn remembered(&self) -> Vec<(BlockKind, RoutingKey)> {
        self.written.iter().rev().map(|(k, ())| *k).collect()
    }

    /// Keys remembered since start.
    pub(in crate::node) fn writes(&self) -> u64 {
        self.writes
    }

    /// Whether `(peer, id)` is an offer this node sent (its answers need no request).
    pub(in crate::node) fn is_offer(&self, peer: PeerId, id: RequestId) -> bool {
        self.sent.contains(&(peer, id))
    }

    /// Blocks waiting to be offered: queued, in a list waiting for its answer, or asked
    /// for and not yet sent.
    pub(in crate::node) fn queued(&self) -> usize {
        self.queue.len() + self.lists.iter().map(|l| l.keys.len()).sum::<usize>() + self.wanted.len()
    }
}

impl<S: BlockStore> Node<S> {
    /// The node's location changed: queue every remembered store-area key that some
    /// connected peer is now closer to (a new move replaces the queue).
    pub(in crate::node) fn queue_offers(&mut self, now: Instant) {
        self.queue_offers_with(now, false);
    }

    /// As [`Node::queue_offers`]; with `steady` (a return of a node rarely online), the
    /// keys no connected peer is closer to are queued too, for a steady peer if one is
    /// connected (`steady.rs`).
    pub(in crate::node) fn queue_offers_with(&mut self, now: Instant, steady: bool) {
        if self.config.durability.offers_per_tick == 0 {
            return;
        }
        let own = self.config.location;
        let steady_peers = if steady { self.round_steady_peers(now) } else { Vec::new() };
        self.durability.offers.queue.clear();
        let written: Vec<_> = self.durability.offers.written.iter().map(|(k, ())| *k).rev().collect();
        for (kind, key) in written {
            if self.peers.closer_count(own, Location::of_key(&key)) > 0 {
                self.durability.offers.queue.push_back((kind, key, false));
            } else if self.queue_backup(&steady_peers) {
                self.durability.offers.queue.push_back((kind, key, true));
            }
        }
        let offers = &mut self.durability.offers;
        self.stats.offers_queued += offers.queue.len() as u64;
        // The first batch one tick later: the peers first hear the new location (sent at
        // once), so each judges an offer as a sink against where this node now is.
        offers.next = (!offers.queue.is_empty()).then_some(now + self.config.durability.offer_tick);
    }

    /// The offer round due at `now`, if any (key-first, `key_first.rs`): the blocks the
    /// peers asked for, at most `offers_per_tick`; once none is left to send and no list
    /// waits for its answer, the next round's key lists (at most one round per
    /// [`ROUND_EVERY`]).
    pub(in crate::node) fn send_offers(&mut self, now: Instant) {
        if self.durability.offers.next.is_none_or(|t| t > now) {
            return;
        }
        self.durability.offers.lists.retain(|l| l.at + ANSWER_WAIT > now);
        self.send_wanted_blocks(now);
        let offers = &self.durability.offers;
        let round_due = offers.last_round.is_none_or(|t| now >= t + ROUND_EVERY);
        let idle = offers.wanted.is_empty() && offers.lists.is_empty() && !offers.queue.is_empty();
        if idle && round_due && self.send_key_lists(now) {
            self.durability.offers.last_round = Some(now);
        }
        let tick = self.config.durability.offer_tick;
        let offers = &mut self.durability.offers;
        let busy = !(offers.queue.is_empty() && offers.wanted.is_empty() && offers.lists.is_empty());
        offers.next = busy.then_some(now + tick);
    }

    /// Sends up to `offers_per_tick` of the blocks the peers asked for (fewer while fetches
    /// are about: [`OFFERS_YIELD`]), each as an insert at HTL 1.
    fn send_wanted_blocks(&mut self, now: Instant) {
        let mut left = self.durability.offers.blocks_allowed(now, self.config.durability.offers_per_tick);
        let mut lookups = LOOKUPS_PER_TICK.max(left);
        while left > 0 && lookups > 0 {
            let Some((peer, kind, key)) = self.durability.offers.wanted.pop_front() else { break };
            // Still connected, and the key not being routed right now.
            if self.peers.get(peer).is_none() || self.by_key.contains_key(&(kind, key)) {
                continue;
            }
            lookups -= 1;
            let Some(block) = self.store.get(kind, &key) else {
                // Evicted since: forget it, so no later move or return offers it again.
                self.durability.offers.written.pop(&(kind, key));
                continue;
            };
            left -= 1;
            let id: RequestId = self.rng.gen();
            let offers = &mut self.durability.offers;
            if offers.sent.len() >= SENT_REMEMBERED {
                offers.sent.pop_front();
            }
            offers.sent.push_back((peer, id));
            offers.block_sent = Some(now);
            self.stats.offers_sent += 1;
            self.transmits.push_back((peer, Message::InsertRequest { id, htl: 1, block, top: false }));
        }
    }

    /// Takes up to [`MAX_OFFERED_KEYS`] keys off the queue and offers each to the connected
    /// peer now closest to it (one `OfferKeys` per peer). Whether any list went out.
    fn send_key_lists(&mut self, now: Instant) -> bool {
        let mut lists: BTreeMap<PeerId, Vec<(BlockKind, RoutingKey)>> = BTreeMap::new();
        let backups = self.durability.offers.queue.iter().take(MAX_OFFERED_KEYS).any(|q| q.2);
        let steady = if backups { self.round_steady_peers(now) } else { Vec::new() };
        for _ in 0..MAX_OFFERED_KEYS {
            let Some((kind, key, backup)) = self.durability.offers.queue.pop_front() else { break };
            let target = Location::of_key(&key);
            let own = self.config.location.distance(target);
            let closest = self
                .peers
                .ids()
                .filter_map(|p| self.peers.get(p).map(|e| (e.location.distance(target), p)))
                .min()
                .filter(|&(d, _)| d < own)
                .map(|(_, p)| p);
            // Still the closest: a steady backup goes to the steady peer closest to the key.
            let closest = closest.or_else(|| backup.then(|| self.steady_target(&steady, target)).flatten());
            let Some(peer) = closest else { continue };
            if self.durability.offers.offered.peek(&(kind, key)) == Some(&peer) {
                continue; // it was offered this block after an earlier move
            }
            // Not being routed right now; still held (an index lookup, no block read).
            if self.by_key.contains_key(&(kind, key)) {
                continue;
            }
            if !self.store.contains(kind, &key) {
                // Evicted since: forget it, so no later move or return offers it again.
                self.durability.offers.written.pop(&(kind, key));
                continue;
            }
            self.durability.offers.offered.put((kind, key), peer);
            if backup {
                self.stats.steady_backup_keys_offered += 1;
            }
            lists.entry(peer).or_default().push((kind, key));
        }
        let any = !lists.is_empty();
        for (peer, keys) in lists {
            let id: RequestId = self.rng.gen();
            self.stats.offer_lists_sent += 1;
            self.stats.offer_keys_sent += keys.len() as u64;
            let set = keys.iter().copied().collect();
            self.durability.offers.lists.push_back(Sent { peer, id, keys: set, at: now });
            self.transmits.push_back((peer, Message::OfferKeys { id, keys }));
        }
        any
    }
}
