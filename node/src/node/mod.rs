//! `Node`: the deterministic, sans-IO state machine at the heart of pamphlet.
//!
//! Inputs are method calls: [`Node::handle_message`], [`Node::handle_timeout`] and the
//! commands [`Node::add_peer`], [`Node::remove_peer`], [`Node::start_fetch`],
//! [`Node::start_insert`]. After every input the driver drains the outputs until empty:
//! [`Node::poll_transmit`] (messages for peers), [`Node::poll_event`] (results for the
//! client) and [`Node::poll_timeout`] (when to call `handle_timeout` next). Time is the
//! `now` argument and randomness comes from a ChaCha8 RNG seeded from the config (32 bytes
//! the driver draws from the OS, or derives from the simulator's seed), so the same inputs
//! always give the same outputs: the tokio driver and the simulator run the
//! very same code.
//!
//! Per-request routing lives in [`crate::routing::request::Request`]; this file wires
//! requests to messages, the peer table, the store and the quench table. The algorithm and
//! every constant are described in docs/routing.md.
//!
//! Loop defence: request ids are link-local (fresh and random per hop), so loops are
//! detected **by key**: while this node routes a key, any other request for that key is
//! answered RejectedLoop. See docs/routing.md for the residual oracle this leaves.

mod budget;
mod config;
mod deferred;
mod durability;
mod event;
mod failure;
mod inflight;
mod load;
mod misbehaviour;
mod opennet;
mod own_location;
mod second_attempt;
mod stats;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use pamphlet_crypto::{Block, BlockKind, RoutingKey};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use budget::StoreBudget;
pub use config::{DurabilityConfig, KeysFileError, NodeConfig, NodeSecret, RoutingStrategy};
pub use durability::{
    PeerUptime, Session, UptimeFileError, UptimeHistory, MAX_PEERS, MAX_SESSIONS, MAX_UPTIME_FILE, OFFERS_YIELD,
    OWN_MIN_COVERED, OWN_WINDOW, PEER_WINDOW,
};
pub use event::{Event, FailReason, OpId};
pub use failure::{Failure, RetryCause};
pub use load::{LoadConfig, BLOCK_WIRE_BYTES};
pub use misbehaviour::{FIRST_SUSPENSION, MAX_SUSPENSION};
pub use opennet::{LinkAction, OpennetStats};
pub use second_attempt::CAPACITY as SECOND_ATTEMPT_KEYS;
pub use stats::NodeStats;

use inflight::{hop_wait, verifies_derived, Answer, Handle, InFlight, Origin, Payload};

use crate::id::{Htl, PeerId, RequestId};
use crate::location::Location;
use crate::routing::htl::LinkHtl;
use crate::routing::peers::{claim_interval, PeerEntry, PeerTable};
use crate::routing::quench::Quench;
use crate::routing::request::{Reply, Request};
use crate::routing::swap::{Reveal, Swapper};
use crate::store::{memory::MemoryStore, Area, BlockStore};
use crate::wire::message::Message;

/// The shortest time between two `LocationUpdate` broadcasts caused by peers' updates
/// (issue 14: 1,000 updates in from one peer caused 11,988 out). Updates that come
/// sooner are coalesced into one broadcast when the interval is over. Our own moves and
/// peer changes still broadcast at once.
pub const REBROADCAST_INTERVAL: Duration = Duration::from_secs(1);

/// The sans-IO node. `S` is its block store ([`MemoryStore`] unless the driver picks the
/// on-disk store).
pub struct Node<S: BlockStore = MemoryStore> {
    config: NodeConfig,
    store: S,
    rng: ChaCha8Rng,
    /// Secret from which each link's HTL coins are derived (see `link_coins`).
    link_secret: [u8; 32],
    peers: PeerTable,
    quench: Quench,
    /// Requests in flight, by handle (ordered, so any iteration is deterministic).
    requests: BTreeMap<Handle, InFlight>,
    next_handle: Handle,
    /// Keys being routed: the loop detector.
    by_key: HashMap<(BlockKind, RoutingKey), Handle>,
    /// (peer, link-local id) of each request's current hop, to match replies.
    by_link: HashMap<(PeerId, RequestId), Handle>,
    /// Wake-ups: (when, timer sequence number, handle); stale entries are skipped.
    timers: BinaryHeap<Reverse<(Instant, u64, Handle)>>,
    next_timer: u64,
    transmits: VecDeque<(PeerId, Message)>,
    events: VecDeque<Event>,
    next_op: u64,
    stats: NodeStats,
    /// Location swapping: our own swap and the walks we relay.
    swapper: Swapper,
    /// When the next periodic swap starts (set once the node has a peer, if
    /// `swap_interval` is on).
    next_swap: Option<Instant>,
    /// When our last `LocationUpdate` broadcast went out.
    last_broadcast: Option<Instant>,
    /// A coalesced re-broadcast, due at this instant (see [`REBROADCAST_INTERVAL`]).
    rebroadcast_at: Option<Instant>,
    /// Each peer's store-area write budget (`NodeConfig::store_budget`).
    budgets: budget::Buckets,
    /// Hops penalised as silent, by (peer, link-local id), oldest first: an answer that
    /// comes after all shows the peer was slow, not silent (see `inflight::on_reply`).
    silent_hops: VecDeque<((PeerId, RequestId), Instant)>,
    /// Strangers, announcements and path folding (opennet and hybrid modes).
    opennet: opennet::OpennetState,
    /// Own operations waiting for another request for their key to end.
    deferred: deferred::Deferred,
    /// Peers' lies and the suspensions of their links.
    misbehaviour: misbehaviour::Misbehaviour,
    /// What this node accepts and how many requests it sends each peer (see `load`).
    load: load::Load,
    /// Wider top blocks and offers on swap (issue 20).
    durability: durability::State,
    /// Keys whose fetch (own or relayed) found nothing, for a second attempt
    /// (`second_attempt.rs`).
    second: second_attempt::SecondAttempts,
}

/// The most penalised-as-silent hops remembered for a late answer (bounds the memory a
/// run of silent peers can make us spend; the oldest are forgotten first).
const SILENT_HOPS_REMEMBERED: usize = 4096;

impl<S: BlockStore> std::fmt::Debug for Node<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("location", &self.config.location)
            .field("peers", &self.peers.len())
            .field("in_flight", &self.requests.len())
            .finish_non_exhaustive()
    }
}

impl<S: BlockStore> Node<S> {
    /// A node with no peers.
    pub fn new(config: NodeConfig, store: S) -> Self {
        // Two secrets, not one seed: the RNG must differ at every start, the link coins must
        // not (see `NodeConfig::seed`).
        let rng = ChaCha8Rng::from_seed(*config.seed.expose());
        let link_secret = *config.link_secret.expose();
        Node {
            rng,
            link_secret,
            quench: Quench::new(config.quench_time, config.quench_capacity),
            store,
            requests: BTreeMap::new(),
            next_handle: 0,
            by_key: HashMap::new(),
            by_link: HashMap::new(),
            timers: BinaryHeap::new(),
            next_timer: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            next_op: 0,
            stats: NodeStats::default(),
            swapper: {
                let mut s = Swapper::new(config.swap);
                s.set_age(config.swap_age);
                s
            },
            next_swap: None,
            last_broadcast: None,
            rebroadcast_at: None,
            budgets: budget::Buckets::default(),
            silent_hops: VecDeque::new(),
            opennet: opennet::OpennetState::default(),
            deferred: deferred::Deferred::default(),
            misbehaviour: misbehaviour::Misbehaviour::default(),
            load: load::Load::new(config.load, config.max_requests_per_peer),
            durability: durability::State::new(&config.durability),
            second: second_attempt::SecondAttempts::new(config.second_attempt_window),
            peers: {
                let mut t = PeerTable::new(config.backoff);
                t.set_check_claims(config.check_claims);
                t.set_location_interval(claim_interval(config.swap_interval));
                t
            },
            config,
        }
    }

    // ----- accessors -------------------------------------------------------------------

    /// This node's location.
    pub fn location(&self) -> Location {
        self.config.location
    }

    /// Swaps this node has started in its life (see `NodeConfig::swap_age`).
    pub fn swap_age(&self) -> u32 {
        self.swapper.age()
    }

    /// Sets the swap age (a driver that ran swaps on the node's behalf, like the
    /// simulator's direct swap mode).
    pub fn set_swap_age(&mut self, age: u32) {
        self.swapper.set_age(age);
    }

    /// The configuration.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> NodeStats {
        self.stats
    }

    /// The block store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The block store, mutably (to preload blocks, or for maintenance).
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    /// Ends the node, handing back its store (for the driver to flush on shutdown).
    pub fn into_store(self) -> S {
        self.store
    }

    /// What this node knows about `peer`.
    pub fn peer(&self, peer: PeerId) -> Option<&PeerEntry> {
        self.peers.get(peer)
    }

    /// Connected peers, by id.
    pub fn peer_ids(&self) -> Vec<PeerId> {
        self.peers.ids().collect()
    }

    /// Requests this node is routing right now.
    pub fn in_flight(&self) -> usize {
        self.requests.len()
    }

    /// Whether this node is a sink for `key`: closer to it than all its peers.
    pub fn is_sink(&self, key: &RoutingKey) -> bool {
        self.peers.is_sink(self.config.location, Location::of_key(key))
    }

    // ----- outputs ---------------------------------------------------------------------

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<(PeerId, Message)> {
        let t = self.transmits.pop_front();
        if let Some((_, m)) = &t {
            self.load.on_transmit(m);
        }
        t
    }

    /// The next event for the client.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Keys remembered for a second attempt (at most [`SECOND_ATTEMPT_KEYS`]).
    pub fn second_attempt_keys(&self) -> usize {
        self.second.len()
    }

    /// When `handle_timeout` should be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.timers.peek().map(|Reverse((t, _, _))| *t),
            self.next_swap,
            self.swapper.next_deadline(),
            self.rebroadcast_at,
            self.peers.next_pending(),
            self.opennet.next_upkeep,
            self.deferred.next_due(),
            self.durability.next_due(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ----- commands --------------------------------------------------------------------

    /// Connects a peer at `location` and tells every peer our new neighbour list
    /// (friend-of-a-friend routing). Adding a peer that is already connected only updates
    /// its location.
    pub fn add_peer(&mut self, now: Instant, peer: PeerId, location: Location) {
        let link = self.link_coins(peer);
        self.peers.insert(peer, location, link);
        self.durability_peer_added(now, peer);
        if let (None, Some(every)) = (self.next_swap, self.config.swap_interval) {
            self.next_swap = Some(now + self.jittered(every));
        }
        self.broadcast_location(now);
    }

    /// Disconnects a peer. Requests waiting on it move on to their next peer; requests it
    /// sent us run on, but their answers are dropped. Its record (requests in flight,
    /// backoff, penalties) is kept by peer id and restored if it reconnects.
    pub fn remove_peer(&mut self, now: Instant, peer: PeerId) {
        if !self.peers.remove(peer) {
            return;
        }
        self.durability_peer_removed(now, peer);
        self.load.forget_peer(peer);
        self.opennet_peer_removed(peer);
        if let Some(o) = self.swapper.on_peer_removed(peer) {
            self.apply_swap(now, o);
        }
        let waiting: Vec<(Handle, RequestId)> = self
            .requests
            .iter()
            .filter_map(|(h, f)| f.req.waiting().filter(|w| w.peer == peer).map(|w| (*h, w.id)))
            .collect();
        for (h, id) in waiting {
            self.by_link.remove(&(peer, id));
            if let Some(f) = self.requests.get_mut(&h) {
                f.req.on_reply(Reply::TimedOut);
            }
            self.route(h, now);
        }
        // Requests it sent us run on, answering nobody, and still count against it: its
        // record (load, backoff, penalties) is kept for when it reconnects (PeerTable).
        for f in self.requests.values_mut() {
            if matches!(f.origin, Origin::Remote { peer: p, .. } if p == peer) {
                f.origin = Origin::Orphan { peer };
            }
        }
        self.broadcast_location(now);
        self.prune_timers();
    }

    /// Changes the HTL of requests started from now on, and the cap on incoming ones.
    pub fn set_max_htl(&mut self, max_htl: Htl) {
        self.config.max_htl = max_htl;
    }

    /// Starts fetching the block of `kind` under `key`. The result comes as a
    /// `FetchSucceeded` or `FetchFailed` event with the returned id. A block fetched for a
    /// local request is never cached here (anti-fingerprinting).
    pub fn start_fetch(&mut self, now: Instant, kind: BlockKind, key: RoutingKey) -> OpId {
        let op = self.new_op();
        self.stats.local_fetches += 1;
        self.durability.offers.on_fetch(now);
        self.fetch_as(now, op, kind, key, false);
        op
    }

    /// `start_fetch` under an id already handed out (also for a fetch that waited).
    /// `resumed`: it already waited out a quench that neighbours caused, and goes out now
    /// whatever they did meanwhile (so colluders re-failing the key cannot hold it forever).
    fn fetch_as(&mut self, now: Instant, op: OpId, kind: BlockKind, key: RoutingKey, resumed: bool) {
        if let Some(block) = self.store.get(kind, &key) {
            self.stats.found_locally += 1;
            self.events.push_back(Event::FetchSucceeded { op, block, peers_tried: 0, local: true });
            return;
        }
        if let Some(&h) = self.by_key.get(&(kind, key)) {
            if let Some(f) = self.requests.get_mut(&h) {
                if matches!(f.payload, Payload::Fetch) {
                    f.waiters.push(op);
                    return;
                }
            }
            // An insert of the key is in flight: fetch once it has ended.
            return self.defer(kind, key, deferred::Waiting::Fetch(op));
        }
        let max = self.config.max_htl;
        match self.quench.quenched(now, kind, &key, max) {
            // A second attempt waits out the quench its failure left (`second_attempt.rs`).
            Some(q) if !resumed && self.second_attempt_due(now, (kind, &key), max, None) => {
                let until = self.second_attempt_wait(q.until);
                return self.defer_until(until, kind, key, op);
            }
            Some(q) if q.local => {
                self.stats.quenched += 1;
                self.events.push_back(Event::FetchFailed { op, reason: FailReason::RecentlyFailed, peers_tried: 0 });
                return;
            }
            // Only neighbours' requests failed: wait for the quench to end, then go out.
            Some(q) if !resumed => return self.defer_until(q.until, kind, key, op),
            _ => {}
        }
        let req = self.request(now, kind, key, max, max, None);
        let req = self.second_attempt(now, req, max, None);
        self.launch(now, req, Origin::Local(op), Payload::Fetch, max);
    }

    /// Starts inserting `block`. The result comes as an `InsertSucceeded`,
    /// `InsertCollision` or `InsertFailed` event. The block is not stored here
    /// (anti-fingerprinting), only on the route.
    pub fn start_insert(&mut self, now: Instant, block: Block) -> OpId {
        let op = self.new_op();
        self.stats.local_inserts += 1;
        self.insert_as(now, op, block, false);
        op
    }

    /// `start_insert` under an id already handed out (also for an insert that waited).
    fn insert_as(&mut self, now: Instant, op: OpId, block: Block, top: bool) {
        let key = block.routing_key();
        if !verifies_derived(&block, &key) {
            self.events.push_back(Event::InsertFailed { op, reason: FailReason::InvalidBlock, peers_tried: 0 });
            return;
        }
        let kind = block.kind();
        if let Some(existing) = self.store.get(kind, &key) {
            if existing != block {
                self.events.push_back(Event::InsertCollision { op, existing });
                return;
            }
        }
        if self.by_key.contains_key(&(kind, key)) {
            // Someone's request holds the key: insert once it has ended.
            return self.defer(kind, key, deferred::Waiting::Insert(op, block, top));
        }
        let max = self.config.max_htl;
        let req = self.request(now, kind, key, max, max, None);
        self.launch(now, req, Origin::Local(op), Payload::Insert { block, top }, max);
    }

    // ----- inputs ----------------------------------------------------------------------

    /// Handles a message from `peer`. Messages from unknown peers are ignored.
    pub fn handle_message(&mut self, now: Instant, peer: PeerId, msg: Message) {
        if self.peers.get(peer).is_none() {
            return;
        }
        match msg {
            Message::DataRequest { id, kind, key, htl } => self.on_data_request(now, peer, id, kind, key, htl),
            Message::InsertRequest { id, htl, block, top } => self.on_insert_request(now, peer, id, (htl, top), block),
            Message::DataFound { id, block } => self.on_reply(now, peer, id, Answer::Found(block)),
            Message::DataNotFound { id, htl } => self.on_reply(now, peer, id, Answer::NotFound { htl, route: false }),
            Message::RouteNotFound { id, htl } => self.on_reply(now, peer, id, Answer::NotFound { htl, route: true }),
            Message::RejectedLoop { id } => self.on_reply(now, peer, id, Answer::Loop),
            Message::RejectedOverload { id } => self.on_reply(now, peer, id, Answer::Overload),
            Message::InsertReply { id } => self.on_reply(now, peer, id, Answer::Inserted),
            Message::StoreFull { id } => self.on_store_full(peer, id),
            Message::InsertCollision { id, block } => self.on_reply(now, peer, id, Answer::Collision(block)),
            Message::Accepted { id } => self.on_accepted(peer, id),
            Message::LocationUpdate { location, neighbours } => {
                self.on_location_update(now, peer, location, &neighbours)
            }
            // Opennet locations are fixed: no swaps (Hyphanet does not swap with opennet on).
            Message::SwapRequest { id, .. } if self.config.opennet.mode.strangers() => {
                self.transmits.push_back((peer, Message::SwapRejected { id }))
            }
            Message::SwapRequest { id, htl, commitment } => {
                let mut out = Vec::new();
                let me = (self.config.location, self.peers.locations());
                let peers = self.peer_ids();
                self.swapper.on_request(now, &mut self.rng, (peer, id), htl, commitment, me, &peers, &mut out);
                self.transmits.extend(out);
            }
            Message::SwapReply { id, commitment } => {
                let mut out = Vec::new();
                self.swapper.on_reply((peer, id), commitment, &mut out);
                self.transmits.extend(out);
            }
            Message::SwapReveal { id, location, neighbours, age, random } => {
                let mut out = Vec::new();
                let o = self.swapper.on_reveal((peer, id), Reveal { location, neighbours, age, random }, &mut out);
                self.transmits.extend(out);
                if let Some(o) = o {
                    self.apply_swap(now, o);
                }
            }
            Message::SwapRejected { id } => {
                let mut out = Vec::new();
                let o = self.swapper.on_rejected((peer, id), &mut out);
                self.transmits.extend(out);
                if let Some(o) = o {
                    self.apply_swap(now, o);
                }
            }
            // Keepalives need no answer.
            Message::Keepalive => {}
            // A link-level message: the transport checks and keeps address records; one
            // that reached the node anyway is no routing input.
            Message::AddressRecord { .. } => {}
            m @ (Message::Announce { .. }
            | Message::AnnounceReply { .. }
            | Message::AnnounceDone { .. }
            | Message::FoldOffer { .. }) => self.on_opennet_message(now, peer, m),
            Message::OfferKeys { id, keys } => self.on_offer_keys(now, peer, id, keys),
            Message::WantKeys { id, wanted } => self.on_want_keys(now, peer, id, wanted),
        }
        self.prune_timers();
    }

    /// Fires every timer due at `now`: a peer that has not answered is treated like one
    /// that answered RouteNotFound one hop down, and backed off (like a forger if it had
    /// accepted the request, with `penalise_silence`).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.resume_due(now);
        self.durability_tick(now);
        if self.peers.apply_pending(now) {
            self.schedule_rebroadcast(now);
        }
        if self.rebroadcast_at.is_some_and(|t| t <= now) {
            self.broadcast_location(now);
        }
        if let (Some(at), Some(every)) = (self.opennet.next_upkeep, self.config.opennet.upkeep_interval) {
            if at <= now {
                self.opennet.next_upkeep = Some(now + every);
                self.opennet_upkeep(now);
            }
        }
        if let Some(o) = self.swapper.on_timeout(now) {
            self.apply_swap(now, o);
        }
        if let (Some(at), Some(every)) = (self.next_swap, self.config.swap_interval) {
            if at <= now {
                self.next_swap = Some(now + self.jittered(every));
                self.start_swap(now);
            }
        }
        while let Some(&Reverse((t, seq, h))) = self.timers.peek() {
            if t > now {
                break;
            }
            self.timers.pop();
            let Some(f) = self.requests.get_mut(&h) else { continue };
            let Some(w) = f.req.waiting() else { continue };
            if f.timer != seq {
                continue;
            }
            self.by_link.remove(&(w.peer, w.id));
            self.load.on_timeout(w.peer);
            // Accepted, then silence: no honest peer does that within its share of the
            // budget (it answers by its own deadline, earlier), so it costs like a forgery.
            let silent = w.accepted && self.config.penalise_silence;
            if silent {
                self.peers.penalise_silence(w.peer, now);
            } else {
                self.peers.back_off(w.peer, now);
            }
            self.stats.timeouts += 1;
            f.req.on_reply(Reply::TimedOut);
            if silent {
                self.remember_silent_hop((w.peer, w.id), now);
            }
            self.route(h, now);
        }
        self.prune_timers();
    }

    // ----- request handling ------------------------------------------------------------

    fn on_data_request(
        &mut self,
        now: Instant,
        peer: PeerId,
        id: RequestId,
        kind: BlockKind,
        key: RoutingKey,
        htl: Htl,
    ) {
        self.stats.requests_received += 1;
        let Some(link) = self.accept(now, peer, id, htl) else { return };
        self.durability.offers.on_fetch(now);
        if let Some(block) = self.store.get(kind, &key) {
            self.stats.found_locally += 1;
            self.fold(now, None, true, Some((peer, id)));
            self.transmits.push_back((peer, Message::DataFound { id, block }));
            return;
        }
        if self.by_key.contains_key(&(kind, key)) {
            self.stats.rejected_loop += 1;
            self.transmits.push_back((peer, Message::RejectedLoop { id }));
            return;
        }
        if self.quench.is_quenched(now, kind, &key, htl) {
            self.stats.quenched += 1;
            self.transmits.push_back((peer, Message::DataNotFound { id, htl: 0 }));
            return;
        }
        let max = self.config.max_htl;
        let left = link.decrement(htl, max);
        if left == 0 {
            self.transmits.push_back((peer, Message::DataNotFound { id, htl: 0 }));
            return;
        }
        let req = self.request(now, kind, key, htl, left, Some(peer));
        // The key failed here lately: route this repeat around it (`second_attempt.rs`).
        let req = self.second_attempt(now, req, htl.min(max), Some(peer));
        self.launch(now, req, Origin::Remote { peer, id }, Payload::Fetch, htl.min(max));
    }

    fn on_insert_request(&mut self, now: Instant, peer: PeerId, id: RequestId, (htl, top): (Htl, bool), block: Block) {
        self.stats.inserts_received += 1;
        if htl == 0 && self.config.refuse_zero_htl_inserts {
            // Honest nodes never send an insert with no hops left: only a flusher does, to
            // write junk into our store area without it travelling further.
            self.stats.zero_htl_inserts += 1;
            self.peers.penalise_forgery(peer, now);
            self.lie(now, peer);
            return;
        }
        // The per-peer load limit comes before the check of the block: an SSK's is a
        // signature verification, which a peer past its limit must not make us spend.
        let Some(link) = self.accept(now, peer, id, htl) else { return };
        let key = block.routing_key();
        if !verifies_derived(&block, &key) {
            // Only a malicious peer sends an unverifiable insert (honest nodes verify before
            // forwarding): no answer, and it is penalised like a forger.
            self.stats.forged_blocks += 1;
            self.peers.penalise_forgery(peer, now);
            self.lie(now, peer);
            return;
        }
        let kind = block.kind();
        if let Some(existing) = self.store.get(kind, &key) {
            if existing == block {
                // Already here: the insert need not travel (or be sent) further.
                self.stats.inserts_already_present += 1;
                self.transmits.push_back((peer, Message::InsertReply { id }));
            } else {
                self.stats.insert_collisions += 1;
                self.transmits.push_back((peer, Message::InsertCollision { id, block: existing }));
            }
            return;
        }
        if self.by_key.contains_key(&(kind, key)) {
            self.stats.rejected_loop += 1;
            self.transmits.push_back((peer, Message::RejectedLoop { id }));
            return;
        }
        let max = self.config.max_htl;
        let left = link.decrement(htl, max);
        let req = self.request(now, kind, key, htl, left, Some(peer));
        let top = top && self.honour_top(peer, now);
        self.launch(now, req, Origin::Remote { peer, id }, Payload::Insert { block, top }, htl.min(max));
    }

    // ----- helpers ---------------------------------------------------------------------

    /// `every` times a random factor in [0.5, 1.5): nodes started together must not all
    /// swap at the same instant (each would find its partner busy with its own swap, which
    /// the simulator showed: every swap rejected).
    fn jittered(&mut self, every: Duration) -> Duration {
        every.mul_f64(self.rng.gen_range(0.5..1.5))
    }

    fn put(&mut self, area: Area, key: RoutingKey, block: Block) {
        if area == Area::Cache && !self.config.cache_passing {
            return;
        }
        match self.store.put(area, key, block) {
            Ok(()) if area == Area::Store => self.stats.store_writes += 1,
            Ok(()) => self.stats.cache_writes += 1,
            Err(e) => {
                self.stats.store_errors += 1;
                tracing::warn!(error = %e, "store write failed");
            }
        }
    }

    /// The HTL coins of the link to `peer`: drawn from a generator keyed by this node's
    /// secret and the peer id, so they stay the same across reconnections. Redrawing them on
    /// every connection would let a peer reconnect until it saw both outcomes, averaging
    /// the coin away (Hyphanet keeps them for the peer's lifetime for the same reason).
    fn link_coins(&self, peer: PeerId) -> LinkHtl {
        use sha2::{Digest, Sha256};
        let seed: [u8; 32] = Sha256::new()
            .chain_update(b"pamphlet/htl-link/v1")
            .chain_update(self.link_secret)
            .chain_update(peer.0.to_be_bytes())
            .finalize()
            .into();
        LinkHtl::draw(&mut ChaCha8Rng::from_seed(seed))
    }

    fn new_op(&mut self) -> OpId {
        self.next_op += 1;
        OpId(self.next_op)
    }

    /// How long a node that received a request at `htl` may take to answer: a little less
    /// than its upstream waits for it, so the answer arrives before the upstream gives up.
    fn budget(&self, htl: Htl) -> Duration {
        hop_wait(self.config.request_timeout, self.config.max_htl, htl) * 7 / 8
    }

    /// The routing state of a request this node routes, whoever started it: it arrived with
    /// `arrived` hops (a local request counts as arriving at max HTL), goes on with `left`,
    /// and came from `upstream` (None: local). Deadline and not-found cap depend on nothing
    /// else: a request this node started and one it relays at max HTL must look the same
    /// to every neighbour, in when it gives up, what one "not found" costs it (the HTL the
    /// next hop sees) and how long it answers RejectedLoop for the key (issue 14; the
    /// adversaries are in tests/routing_anonymity.rs).
    fn request(
        &self,
        now: Instant,
        kind: BlockKind,
        key: RoutingKey,
        arrived: Htl,
        left: Htl,
        upstream: Option<PeerId>,
    ) -> Request {
        Request::new(kind, key, left, upstream, now + self.budget(arrived))
            .with_not_found_cap(self.config.not_found_cap)
            .with_hop_share(self.config.hop_share)
    }

    /// Remembers a hop penalised as silent for as long as an answer to it could still come
    /// (a relayed request's deadline), at most [`SILENT_HOPS_REMEMBERED`] of them.
    fn remember_silent_hop(&mut self, hop: (PeerId, RequestId), now: Instant) {
        let horizon = self.config.request_timeout;
        while self.silent_hops.front().is_some_and(|&(_, at)| at + horizon <= now) {
            self.silent_hops.pop_front();
        }
        if self.silent_hops.len() >= SILENT_HOPS_REMEMBERED {
            self.silent_hops.pop_front();
        }
        self.silent_hops.push_back((hop, now));
    }
}

#[cfg(test)]
mod tests;
