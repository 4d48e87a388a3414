//! A small deterministic multi-node harness: N [`Node`]s joined by an in-memory message
//! queue, in virtual time, seeded.
//!
//! The routing tests (`node/tests/routing*.rs`, with feature `sim`) use it and the
//! simulator's run drives it. Node `i` is known to its peers as `PeerId(i)`. Every message takes `latency` to
//! arrive; [`Network::step`] jumps virtual time to the next delivery or node wake-up
//! (whichever comes first, deliveries first on ties), like quinn's test `Pair::drive`. Two
//! runs with the same seed and the same calls produce the same transcript.
//!
//! At scale (the simulator): wake-ups sit in a heap, so a step never scans every node; the
//! transcript can be turned off ([`Network::set_recording`]) and [`Network::counts`] read
//! instead; [`Network::connect_many`] builds a large graph without an advertisement storm;
//! [`Network::set_latency`] adds seeded per-message jitter.
//!
//! Adversaries are modelled with per-node *filters* on outgoing messages
//! ([`Network::set_filter`]): drop everything (a dead node), corrupt blocks (a forger).
//! Overloaded nodes need no filter: give them `max_requests_per_peer: 0`.

//!
//! Nothing here reads a wall clock or the environment: the caller passes the base
//! `Instant` of virtual time (only differences from it reach the nodes, so a run is the
//! same whenever it happens), and all randomness comes from the seed.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use pamphlet_crypto::{Block, BlockKind, RoutingKey};

use crate::id::PeerId;
use crate::location::Location;
use crate::node::{Event, LinkAction, Node, NodeConfig, OpId};
use crate::routing::opennet::Found;
use crate::store::memory::MemoryStore;
use crate::wire::message::{Message, Reference};

/// Rewrites (or drops, with `None`) a node's outgoing message to the given peer.
pub type Filter = Box<dyn FnMut(PeerId, Message) -> Option<Message>>;

/// A lie about a node's own location ([`Network::set_claim`]): given the location of the
/// peer a `LocationUpdate` goes to, the location the node claims to it. Applied before the
/// node's [`Filter`].
pub type Claim = Box<dyn FnMut(Location) -> Location>;

/// A black hole, as a [`Filter`] body: never forwards a request or insert, and turns every
/// answer it would give (Accepted, a found block, RouteNotFound, InsertReply) into
/// `DataNotFound { htl: 0 }`, the lie that ends a request at once. The simulator's
/// black-hole and eclipse attackers use it, and so do the routing tests of the defences.
pub fn black_hole(_: PeerId, msg: Message) -> Option<Message> {
    match msg {
        Message::DataRequest { .. } | Message::InsertRequest { .. } => None,
        Message::Accepted { id }
        | Message::DataFound { id, .. }
        | Message::RouteNotFound { id, .. }
        | Message::InsertReply { id, .. } => Some(Message::DataNotFound { id, htl: 0 }),
        other => Some(other),
    }
}

/// "Accepted, then silence" (issue 14), as a [`Filter`] body: never forwards a request or
/// insert, and turns every answer it would give into `Accepted`, then never answers. The
/// simulator's silent and reconnector attackers use it, and so do the routing tests of the
/// defence (a hop's wait is a bounded share of what the request has left, and the silent
/// peer is backed off like a forger).
pub fn silent(_: PeerId, msg: Message) -> Option<Message> {
    match msg {
        Message::DataRequest { .. } | Message::InsertRequest { .. } => None,
        Message::DataFound { id, .. }
        | Message::DataNotFound { id, .. }
        | Message::RouteNotFound { id, .. }
        | Message::RejectedLoop { id }
        | Message::RejectedOverload { id }
        | Message::InsertReply { id, .. }
        | Message::InsertCollision { id, .. } => Some(Message::Accepted { id }),
        other => Some(other),
    }
}

/// One message as it was sent (after the sender's filter).
#[derive(Clone, Debug)]
pub struct Sent {
    /// Virtual time since the network's start.
    pub at: Duration,
    /// Sender index.
    pub from: usize,
    /// Receiver index.
    pub to: usize,
    /// The message.
    pub msg: Message,
}

/// Message counters, kept whether or not the transcript is recorded (the simulator turns the
/// transcript off at scale and reads these instead).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Every message delivered to the queue (after filters).
    pub messages: u64,
    /// `DataRequest`s among them (request hops, backtracking included).
    pub data_requests: u64,
    /// `InsertRequest`s among them.
    pub insert_requests: u64,
    /// Swap messages among them (`SwapRequest`, `SwapReply`, `SwapReveal`, `SwapRejected`).
    pub swap_messages: u64,
}

/// N nodes, an in-memory link between each connected pair, and virtual time.
pub struct Network {
    seed: u64,
    base: Instant,
    now: Instant,
    latency: Duration,
    /// Extra per-message delay drawn uniformly from [0, jitter) by `rng` (0: none).
    jitter: Duration,
    rng: ChaCha8Rng,
    nodes: Vec<Node<MemoryStore>>,
    filters: BTreeMap<usize, Filter>,
    claims: BTreeMap<usize, Claim>,
    /// Pending deliveries by (arrival time, sequence number).
    queue: BTreeMap<(Instant, u64), (usize, usize, Message)>,
    seq: u64,
    /// Node wake-ups (when, node); an entry is stale once the node's `poll_timeout` moved
    /// (checked when popped), so finding the next wake-up never scans every node.
    wakeups: BinaryHeap<Reverse<(Instant, usize)>>,
    events: Vec<Vec<Event>>,
    record: bool,
    transcript: Vec<Sent>,
    counts: Counts,
    /// Messages each node received (its load).
    received: Vec<u64>,
    steps: u64,
    /// Opennet link actions waiting for [`Network::apply_links`] (node, action).
    links: std::collections::VecDeque<(usize, LinkAction)>,
    /// Whether `apply_links` is running (it is not re-entered).
    applying: bool,
    /// Opennet connections refused by one end.
    pub refused_links: u64,
    /// Nodes that asked for the seeds again ([`LinkAction::NeedSeeds`]), for the opennet
    /// run to reconnect.
    pub need_seeds: Vec<usize>,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network").field("seed", &self.seed).field("nodes", &self.nodes.len()).finish_non_exhaustive()
    }
}

/// The most steps [`Network::run`] takes before deciding the network never goes idle.
pub const MAX_STEPS: u64 = 1_000_000;

impl Network {
    /// An empty network whose virtual clock starts at `base` (any `Instant`: only
    /// differences from it matter; tests pass `Instant::now()`); every message takes 10 ms
    /// (virtual) to arrive.
    pub fn new(seed: u64, base: Instant) -> Self {
        Network {
            seed,
            base,
            now: base,
            latency: Duration::from_millis(10),
            jitter: Duration::ZERO,
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x6E65_7477_6F72_6B21),
            nodes: Vec::new(),
            filters: BTreeMap::new(),
            claims: BTreeMap::new(),
            queue: BTreeMap::new(),
            seq: 0,
            wakeups: BinaryHeap::new(),
            events: Vec::new(),
            record: true,
            transcript: Vec::new(),
            counts: Counts::default(),
            received: Vec::new(),
            steps: 0,
            links: std::collections::VecDeque::new(),
            applying: false,
            refused_links: 0,
            need_seeds: Vec::new(),
        }
    }

    /// Sets the per-hop delay: `latency` plus a seeded uniform draw from [0, `jitter`).
    pub fn set_latency(&mut self, latency: Duration, jitter: Duration) {
        self.latency = latency;
        self.jitter = jitter;
    }

    /// Whether to keep a transcript of every message (on by default; the simulator turns it
    /// off: at scale it would hold every block ever sent).
    pub fn set_recording(&mut self, record: bool) {
        self.record = record;
    }

    /// Message counters since the start.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Messages node `i` received so far.
    pub fn received(&self, i: usize) -> u64 {
        self.received[i]
    }

    /// The seed (print it in assertion messages so a failure can be replayed).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The default config of node `index` at `location`: its seed mixes the network seed
    /// and the index.
    pub fn config(&self, index: usize, location: Location) -> NodeConfig {
        let seed = self.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(index as u64 + 1);
        NodeConfig { location, ..NodeConfig::seeded(seed) }
    }

    /// Adds a node at `location` (fraction of the circle) with the default config and a
    /// 64 MiB + 64 MiB memory store; returns its index.
    pub fn add_node(&mut self, location: f64) -> usize {
        let config = self.config(self.nodes.len(), Location::from_f64(location));
        self.add_node_with(config, MemoryStore::default())
    }

    /// Adds a node with this config and store; returns its index.
    pub fn add_node_with(&mut self, config: NodeConfig, store: MemoryStore) -> usize {
        self.nodes.push(Node::new(config, store));
        self.events.push(Vec::new());
        self.received.push(0);
        self.nodes.len() - 1
    }

    /// Replaces node `i` (already disconnected from everyone) by a fresh one: a node that
    /// left and a newcomer that took its number (opennet churn).
    pub fn replace_node(&mut self, i: usize, config: NodeConfig, store: MemoryStore) {
        self.nodes[i] = Node::new(config, store);
        self.events[i].clear();
    }

    /// Adds nodes at these locations and connects them in a line, in order.
    pub fn line(&mut self, locations: &[f64]) -> Vec<usize> {
        let ids: Vec<usize> = locations.iter().map(|l| self.add_node(*l)).collect();
        for w in ids.windows(2) {
            self.connect(w[0], w[1]);
        }
        ids
    }

    /// Connects two nodes (both add the other as a peer).
    pub fn connect(&mut self, a: usize, b: usize) {
        let (la, lb) = (self.nodes[a].location(), self.nodes[b].location());
        let now = self.now;
        self.nodes[a].add_peer(now, PeerId(b as u64), lb);
        self.nodes[b].add_peer(now, PeerId(a as u64), la);
        self.flush(a);
        self.flush(b);
    }

    /// Connects every pair in `edges` at once. Each `add_peer` makes a node re-advertise
    /// its neighbour list to all its peers; only the last (complete) advertisement to each
    /// peer is delivered, which keeps building a large network linear in its edges.
    pub fn connect_many(&mut self, edges: &[(usize, usize)]) {
        let now = self.now;
        let mut touched = BTreeSet::new();
        for &(a, b) in edges {
            let (la, lb) = (self.nodes[a].location(), self.nodes[b].location());
            self.nodes[a].add_peer(now, PeerId(b as u64), lb);
            self.nodes[b].add_peer(now, PeerId(a as u64), la);
            touched.insert(a);
            touched.insert(b);
            // Keep the outgoing queues short while building.
            for i in [a, b] {
                while self.nodes[i].poll_transmit().is_some() {}
            }
        }
        for i in touched {
            let location = self.nodes[i].location();
            self.nodes[i].set_location(now, location);
            self.flush(i);
        }
    }

    /// Disconnects two nodes.
    pub fn disconnect(&mut self, a: usize, b: usize) {
        let now = self.now;
        self.nodes[a].remove_peer(now, PeerId(b as u64));
        self.nodes[b].remove_peer(now, PeerId(a as u64));
        self.flush(a);
        self.flush(b);
    }

    /// Sets the filter on `node`'s outgoing messages.
    pub fn set_filter(&mut self, node: usize, filter: Filter) {
        self.filters.insert(node, filter);
    }

    /// Removes `node`'s filter and claim (the node behaves honestly again).
    pub fn clear_filter(&mut self, node: usize) {
        self.filters.remove(&node);
        self.claims.remove(&node);
    }

    /// Makes `node` claim, in every `LocationUpdate` it sends, the location `claim` gives
    /// for the receiving peer's location (a location liar).
    pub fn set_claim(&mut self, node: usize, claim: Claim) {
        self.claims.insert(node, claim);
    }

    /// Node `i`.
    pub fn node(&self, i: usize) -> &Node<MemoryStore> {
        &self.nodes[i]
    }

    /// Node `i`, mutably (call [`Network::flush`] after feeding it inputs directly).
    pub fn node_mut(&mut self, i: usize) -> &mut Node<MemoryStore> {
        &mut self.nodes[i]
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Virtual now.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Virtual time elapsed since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.base
    }

    /// Starts a fetch at `node`.
    pub fn fetch(&mut self, node: usize, kind: BlockKind, key: RoutingKey) -> OpId {
        let op = self.nodes[node].start_fetch(self.now, kind, key);
        self.flush(node);
        op
    }

    /// Starts an insert at `node`.
    pub fn insert(&mut self, node: usize, block: Block) -> OpId {
        let op = self.nodes[node].start_insert(self.now, block);
        self.flush(node);
        op
    }

    /// Queues `msg` from `from` to `to` as if `from` had sent it now (an attacker's probe).
    pub fn inject(&mut self, from: usize, to: usize, msg: Message) {
        self.enqueue(from, to, msg);
    }

    /// Events node `i` emitted so far.
    pub fn events(&self, i: usize) -> &[Event] {
        &self.events[i]
    }

    /// Takes node `i`'s events.
    pub fn take_events(&mut self, i: usize) -> Vec<Event> {
        std::mem::take(&mut self.events[i])
    }

    /// Every message sent so far, in order.
    pub fn transcript(&self) -> &[Sent] {
        &self.transcript
    }

    /// Forgets the transcript (to look at one operation's messages).
    pub fn clear_transcript(&mut self) {
        self.transcript.clear();
    }

    /// The (from, to) of every message in the transcript that `pred` selects.
    pub fn hops(&self, pred: impl Fn(&Message) -> bool) -> Vec<(usize, usize)> {
        self.transcript.iter().filter(|s| pred(&s.msg)).map(|s| (s.from, s.to)).collect()
    }

    /// Drains node `i`'s outputs into the queue and its event list.
    pub fn flush(&mut self, i: usize) {
        while let Some((peer, mut msg)) = self.nodes[i].poll_transmit() {
            if let (Some(claim), Message::LocationUpdate { location, .. }) = (self.claims.get_mut(&i), &mut msg) {
                *location = claim(self.nodes[peer.0 as usize].location());
            }
            let msg = match self.filters.get_mut(&i) {
                Some(f) => f(peer, msg),
                None => Some(msg),
            };
            if let Some(msg) = msg {
                self.enqueue(i, peer.0 as usize, msg);
            }
        }
        while let Some(e) = self.nodes[i].poll_event() {
            self.events[i].push(e);
        }
        while let Some(a) = self.nodes[i].poll_link_action() {
            self.links.push_back((i, a));
        }
        if let Some(t) = self.nodes[i].poll_timeout() {
            self.wakeups.push(Reverse((t, i)));
        }
        self.prune_wakeups();
        self.apply_links();
    }

    /// Carries out the nodes' opennet link actions: a connection at once (both ends admit
    /// it or it is closed), a drop by closing the other end. A node's reference in the
    /// simulator is its index, 8 bytes little-endian ([`Network::reference`]).
    fn apply_links(&mut self) {
        if self.applying {
            return;
        }
        self.applying = true;
        while let Some((i, action)) = self.links.pop_front() {
            let now = self.now;
            match action {
                LinkAction::Connect { reference, found, .. } => {
                    let Some(j) = Self::index_of(reference.as_bytes()).filter(|&j| j < self.nodes.len() && j != i)
                    else {
                        continue;
                    };
                    self.open_link(i, j, found);
                }
                LinkAction::NeedSeeds => self.need_seeds.push(i),
                // The simulator does not reconnect a suspended pair (runs are shorter
                // than a suspension).
                LinkAction::Suspend { peer, .. } => {
                    let j = peer.0 as usize;
                    if j < self.nodes.len() {
                        self.nodes[i].remove_peer(now, peer);
                        self.nodes[j].remove_peer(now, PeerId(i as u64));
                        self.flush(i);
                        self.flush(j);
                    }
                }
                LinkAction::Drop { peer } => {
                    let j = peer.0 as usize;
                    if j < self.nodes.len() {
                        self.nodes[j].remove_peer(now, PeerId(i as u64));
                        self.flush(j);
                    }
                }
            }
        }
        self.applying = false;
    }

    /// Opens an opennet link from `a` (which found `b` as `found`) to `b`: `b` admits an
    /// inbound stranger, then `a` admits `b`; a refusal at either end closes the link.
    /// Returns whether the link is up.
    pub fn open_link(&mut self, a: usize, b: usize, found: Found) -> bool {
        self.open_link_as(a, b, found, Found::Inbound)
    }

    /// [`Network::open_link`], `b` admitting `a` as `b_found` (two seeds that know each
    /// other from the seeds file: [`Found::Seed`] both ways).
    pub fn open_link_as(&mut self, a: usize, b: usize, found: Found, b_found: Found) -> bool {
        let now = self.now;
        if self.nodes[a].peer(PeerId(b as u64)).is_some() {
            return true;
        }
        let (la, lb) = (self.nodes[a].location(), self.nodes[b].location());
        let ok = self.nodes[b].admit_stranger(now, PeerId(a as u64), la, b_found).is_ok();
        let ok = ok && {
            let up = self.nodes[a].admit_stranger(now, PeerId(b as u64), lb, found).is_ok();
            if !up {
                self.nodes[b].remove_peer(now, PeerId(a as u64));
            }
            up
        };
        self.refused_links += u64::from(!ok);
        let was = self.applying;
        self.applying = true;
        self.flush(b);
        self.flush(a);
        self.applying = was;
        if !was {
            self.apply_links();
        }
        ok
    }

    /// Node `i`'s opennet reference in the simulator.
    pub fn reference(i: usize) -> Reference {
        Reference::new((i as u64).to_le_bytes().to_vec()).unwrap_or_default()
    }

    fn index_of(bytes: &[u8]) -> Option<usize> {
        Some(u64::from_le_bytes(bytes.try_into().ok()?) as usize)
    }

    fn enqueue(&mut self, from: usize, to: usize, msg: Message) {
        self.counts.messages += 1;
        match &msg {
            Message::DataRequest { .. } => self.counts.data_requests += 1,
            Message::InsertRequest { .. } => self.counts.insert_requests += 1,
            Message::SwapRequest { .. }
            | Message::SwapReply { .. }
            | Message::SwapReveal { .. }
            | Message::SwapRejected { .. } => self.counts.swap_messages += 1,
            _ => {}
        }
        if let Some(r) = self.received.get_mut(to) {
            *r += 1;
        }
        if self.record {
            self.transcript.push(Sent { at: self.now - self.base, from, to, msg: msg.clone() });
        }
        self.seq += 1;
        let delay = if self.jitter.is_zero() {
            self.latency
        } else {
            self.latency + self.jitter.mul_f64(self.rng.gen::<f64>())
        };
        self.queue.insert((self.now + delay, self.seq), (from, to, msg));
    }

    /// Drops wake-ups that no longer match their node's `poll_timeout`.
    fn prune_wakeups(&mut self) {
        while let Some(&Reverse((t, i))) = self.wakeups.peek() {
            if self.nodes[i].poll_timeout() == Some(t) {
                break;
            }
            self.wakeups.pop();
        }
    }

    /// The next instant something happens, if anything is pending.
    pub fn next_wakeup(&self) -> Option<Instant> {
        let delivery = self.queue.keys().next().map(|(t, _)| *t);
        let timer = self.wakeups.peek().map(|Reverse((t, _))| *t);
        match (delivery, timer) {
            (Some(d), Some(t)) => Some(d.min(t)),
            (d, t) => d.or(t),
        }
    }

    /// Processes the next delivery or wake-up; returns false when nothing is pending.
    pub fn step(&mut self) -> bool {
        self.prune_wakeups();
        let Some(t) = self.next_wakeup() else { return false };
        self.steps += 1;
        self.now = self.now.max(t);
        let first = self.queue.keys().next().copied();
        if let Some(k) = first.filter(|(d, _)| *d <= t) {
            if let Some((from, to, msg)) = self.queue.remove(&k) {
                let now = self.now;
                self.nodes[to].handle_message(now, PeerId(from as u64), msg);
                self.flush(to);
            }
            return true;
        }
        // Every node due at `t`, in index order.
        let mut due = BTreeSet::new();
        while let Some(&Reverse((w, i))) = self.wakeups.peek() {
            if w > t {
                break;
            }
            self.wakeups.pop();
            if self.nodes[i].poll_timeout().is_some_and(|w| w <= t) {
                due.insert(i);
            }
        }
        for i in due {
            self.nodes[i].handle_timeout(t);
            self.flush(i);
        }
        true
    }

    /// Runs until nothing is pending. Panics (printing the seed) after [`MAX_STEPS`] steps
    /// in one call.
    pub fn run(&mut self) {
        assert!(self.run_bounded(MAX_STEPS), "network never went idle (seed {})", self.seed);
    }

    /// Runs until nothing is pending or `max_steps` steps were taken; returns whether the
    /// network went idle.
    pub fn run_bounded(&mut self, max_steps: u64) -> bool {
        let start = self.steps;
        while self.step() {
            if self.steps - start >= max_steps {
                return false;
            }
        }
        true
    }

    /// Runs everything due up to `now + d`, then sets the clock to `now + d`.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        let start = self.steps;
        while self.next_wakeup().is_some_and(|t| t <= end) {
            self.step();
            assert!(self.steps - start < MAX_STEPS, "network never went idle (seed {})", self.seed);
        }
        self.now = end;
    }
}
