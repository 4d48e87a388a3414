//! Per-request bookkeeping: the requests this node is routing ([`InFlight`]), who each one
//! answers to, and how it moves: launched, forwarded hop by hop (`route`), judged on each
//! downstream answer (`on_reply`), and ended (`finish`: answer the origin, store what should
//! be stored, quench what was not found).
//!
//! The routing decisions themselves (which peer next, how much HTL is left, when to give
//! up) belong to [`crate::routing::request::Request`]; this file wires them to messages,
//! the peer table, the store and the quench table.

use std::cmp::Reverse;
use std::time::{Duration, Instant};

use pamphlet_crypto::{Block, BlockKind, RoutingKey};
use rand::Rng;

use super::{Event, FailReason, Node, OpId, RoutingStrategy};
use crate::id::{Htl, PeerId, RequestId};
use crate::location::Location;
use crate::routing::request::{Outcome, Reply, Request, Step};
use crate::store::{Area, BlockStore};
use crate::wire::message::{Message, Reference};

/// Internal handle of a request in flight at this node.
pub(super) type Handle = u64;

/// Who a request in flight answers to.
#[derive(Clone, Copy, Debug)]
pub(super) enum Origin {
    /// A local fetch or insert.
    Local(OpId),
    /// A peer's request, answered on its link with its link-local id.
    Remote { peer: PeerId, id: RequestId },
    /// A peer's request whose peer disconnected: it runs to its end (the block is still
    /// cached on success) but nobody is answered. It still counts against the peer's
    /// requests in flight (kept across a reconnect), so reconnecting cannot double the cap.
    Orphan { peer: PeerId },
}

/// What a request in flight carries.
#[derive(Clone, Debug)]
pub(super) enum Payload {
    Fetch,
    /// The block being inserted (verified on arrival), forwarded on each hop; `top`: the
    /// insert is flagged as a document's top block and the flag is honoured here
    /// (`durability`), so it is kept wider and forwarded flagged.
    Insert {
        block: Block,
        top: bool,
    },
}

/// A request this node is routing.
#[derive(Debug)]
pub(super) struct InFlight {
    pub(super) req: Request,
    pub(super) origin: Origin,
    pub(super) payload: Payload,
    /// HTL the request arrived with (before our decrement); quenching compares with it.
    pub(super) arrived_htl: Htl,
    /// Local fetches of the same key that joined this request.
    pub(super) waiters: Vec<OpId>,
    /// Sequence number of the request's live timer (older heap entries are stale).
    pub(super) timer: u64,
    /// A path-folding offer that came with the answer (opennet).
    pub(super) fold: Option<(Location, Reference)>,
    /// Inserts: a downstream sink could not keep the block for good (`Message::StoreFull`).
    pub(super) displaced: bool,
}

/// Who hears how a request ended (see `Node::detach`).
pub(super) struct Audience {
    /// The upstream peer and its link-local id, if the request came from a peer still here.
    pub(super) upstream: Option<(PeerId, RequestId)>,
    /// Whether the request passed through (remote or orphaned): only those are kept here.
    remote: bool,
    /// The peer that sent the request, while it is connected (whose store budget it spends).
    from: Option<PeerId>,
    /// Whose request it was, connected or not (`None`: this node's own; see `Quench`).
    source: Option<PeerId>,
    /// Whether a fetched (or collided) block may go into the cache area: the request passed
    /// through *and* arrived below max HTL. One that arrived at max HTL may have started at
    /// the sender, which never caches its own requests; caching it would let the sender's
    /// neighbour tell the two apart by asking for the key afterwards (issue 14; Hyphanet
    /// does not cache at high HTL either). Inserts are kept regardless (`insert_ended`).
    cache: bool,
    /// Local operations waiting for this request (the originator and any that joined it).
    pub(super) local_ops: Vec<OpId>,
    /// Peers this node tried.
    pub(super) peers_tried: u32,
    /// Inserts: a downstream sink said it could not keep the block for good.
    pub(super) displaced: bool,
}

impl Audience {
    /// "Not found" for the upstream: DataNotFound when no hops are left, otherwise
    /// RouteNotFound with the HTL left.
    fn not_found(&self, htl_left: Htl) -> Message {
        let id = self.upstream.map_or(0, |(_, id)| id);
        if htl_left == 0 {
            Message::DataNotFound { id, htl: 0 }
        } else {
            Message::RouteNotFound { id, htl: htl_left }
        }
    }
}

/// The store-area bytes one CHK block takes, for counting an area in blocks (the store
/// budget's scale; SSK blocks are smaller, so this errs towards a smaller budget).
const CHK_SLOT_BYTES: u64 = 32 * 1024;

/// How a request in flight ends.
pub(super) enum End {
    Found(Block),
    Collision(Block),
    Inserted,
    Failed(Outcome),
}

impl<S: BlockStore> Node<S> {
    pub(super) fn launch(&mut self, now: Instant, req: Request, origin: Origin, payload: Payload, arrived_htl: Htl) {
        let h = self.next_handle;
        self.next_handle += 1;
        if let Origin::Remote { peer, .. } = origin {
            if let Some(p) = self.peers.get_mut(peer) {
                p.in_flight += 1;
            }
        }
        self.by_key.insert((req.kind, req.key), h);
        self.requests.insert(
            h,
            InFlight { req, origin, payload, arrived_htl, waiters: Vec::new(), timer: 0, fold: None, displaced: false },
        );
        self.route(h, now);
        // Still routing it: tell the upstream, which then waits the longer answer time.
        if let Origin::Remote { peer, id } = origin {
            if self.requests.contains_key(&h) {
                self.transmits.push_back((peer, Message::Accepted { id }));
            }
        }
    }

    pub(super) fn on_accepted(&mut self, peer: PeerId, id: RequestId) {
        let Some(&h) = self.by_link.get(&(peer, id)) else {
            // An offer (`durability/offers.rs`) needs no answer.
            self.stats.unexpected_replies += u64::from(!self.durability.offers.is_offer(peer, id));
            return;
        };
        let Some(f) = self.requests.get_mut(&h) else { return };
        if let Some(until) = f.req.on_accepted() {
            self.next_timer += 1;
            f.timer = self.next_timer;
            self.timers.push(Reverse((until, self.next_timer, h)));
        }
    }

    /// Asks the request for its next step and carries it out.
    pub(super) fn route(&mut self, h: Handle, now: Instant) {
        let Some(target) = self.requests.get(&h).map(|f| f.req.target) else { return };
        let ranked = match self.config.strategy {
            RoutingStrategy::Pamphlet => self.peers.ranked(target, now),
            RoutingStrategy::Greedy => self.peers.ranked_with(target, now, false),
            RoutingStrategy::RandomWalk => {
                let mut v: Vec<PeerId> = self.peers.ids().collect();
                rand::seq::SliceRandom::shuffle(&mut v[..], &mut self.rng);
                v
            }
        };
        let ranked = self.route_around_full(h, ranked);
        let Some(f) = self.requests.get_mut(&h) else { return };
        let id: RequestId = self.rng.gen();
        let (timeout, max, accept) = (self.config.request_timeout, self.config.max_htl, self.config.accept_timeout);
        match f.req.next(now, &ranked, id, accept, |htl| hop_wait(timeout, max, htl)) {
            Step::Forward { peer, id, htl, until } => {
                let msg = match &f.payload {
                    Payload::Fetch => Message::DataRequest { id, kind: f.req.kind, key: f.req.key, htl },
                    Payload::Insert { block, top } => {
                        Message::InsertRequest { id, htl, block: block.clone(), top: *top }
                    }
                };
                self.next_timer += 1;
                f.timer = self.next_timer;
                self.timers.push(Reverse((until, self.next_timer, h)));
                self.by_link.insert((peer, id), h);
                self.transmits.push_back((peer, msg));
                self.stats.forwarded += 1;
            }
            Step::Finish(Outcome::RouteNotFound { .. }) if self.ended_by_overload(h) => self.finish_overloaded(h, now),
            Step::Finish(outcome) => self.finish(h, now, End::Failed(outcome)),
        }
    }

    pub(super) fn on_reply(&mut self, now: Instant, peer: PeerId, id: RequestId, answer: Answer) {
        let Some(h) = self.by_link.remove(&(peer, id)) else {
            if self.durability.offers.is_offer(peer, id) {
                return; // an offer's answer: nothing waits for it
            }
            self.stats.unexpected_replies += 1;
            // An answer to a hop we gave up on as silent: the peer was slow (an honest
            // relay's own deadline can outlast the share we wait), not silent. It keeps an
            // ordinary timeout's backoff instead of a forger's.
            if let Some(i) = self.silent_hops.iter().position(|(hop, _)| *hop == (peer, id)) {
                self.silent_hops.remove(i);
                self.peers.excuse_silence(peer, now);
                self.stats.late_answers += 1;
            }
            return;
        };
        self.load.on_answer(h, peer, matches!(answer, Answer::Overload));
        let Some(f) = self.requests.get_mut(&h) else { return };
        let reply = match (answer, &f.payload) {
            (Answer::Found(block), Payload::Fetch) if block.kind() == f.req.kind && verifies(&block, &f.req.key) => {
                self.stats.data_found += 1;
                self.peers.reset_backoff(peer);
                self.opennet_success(peer, now);
                return self.finish(h, now, End::Found(block));
            }
            (Answer::Inserted, Payload::Insert { .. }) => {
                self.peers.reset_backoff(peer);
                self.opennet_success(peer, now);
                return self.finish(h, now, End::Inserted);
            }
            (Answer::Collision(existing), Payload::Insert { block: ours, .. })
                if existing.kind() == BlockKind::Ssk && existing != *ours && verifies(&existing, &f.req.key) =>
            {
                self.peers.reset_backoff(peer);
                return self.finish(h, now, End::Collision(existing));
            }
            // An insert is never answered "not found" with no hops left by an honest node:
            // one that runs its hops out answers InsertReply (see `finish`). Only a node
            // that drops inserts says so: the black hole's lie, which would otherwise end
            // the insert here, far from the key's sinks, and be reported upstream as done.
            (Answer::NotFound { htl, route }, Payload::Insert { .. })
                if self.config.refuse_false_insert_not_found && (!route || htl == 0) =>
            {
                self.stats.false_not_found += 1;
                self.peers.penalise_false_answer(peer, now);
                Reply::Forged
            }
            (Answer::NotFound { htl, .. }, _) => {
                self.peers.reset_backoff(peer);
                Reply::NotFound { htl }
            }
            (Answer::Loop, _) => Reply::RejectedLoop,
            (Answer::Overload, _) => {
                self.peers.back_off(peer, now);
                Reply::RejectedOverload
            }
            // A block that does not verify, or an answer that does not fit the request:
            // the peer lied. Nothing of it is kept; routing goes on elsewhere.
            _ => {
                self.stats.forged_blocks += 1;
                self.peers.penalise_forgery(peer, now);
                Reply::Forged
            }
        };
        f.req.on_reply(reply);
        if reply == Reply::Forged {
            // A forged block or a false "not found": a lie (`misbehaviour.rs`).
            self.lie(now, peer);
        }
        self.route(h, now);
    }

    /// Ends request `h`: answers its origin, stores what should be stored, quenches.
    fn finish(&mut self, h: Handle, now: Instant, end: End) {
        let Some(mut f) = self.requests.remove(&h) else { return };
        self.load.forget(h);
        let to = self.detach(&f);
        // Path folding rides on success: a found block, or an insert that ran its hops out
        // here (this node is then where the data is).
        match (&f.payload, &end) {
            (Payload::Fetch, End::Found(_)) | (Payload::Insert { .. }, End::Inserted) => {
                self.fold(now, f.fold.take(), false, to.upstream)
            }
            (Payload::Insert { .. }, End::Failed(Outcome::HtlExhausted)) if to.upstream.is_some() => {
                self.fold(now, None, true, to.upstream)
            }
            _ => {}
        }
        // Whoever asked: the repeat is routed by the key (`second_attempt.rs`).
        if let (Payload::Fetch, End::Failed(Outcome::HtlExhausted)) = (&f.payload, &end) {
            self.second.failed(now, (f.req.kind, f.req.key), f.arrived_htl, f.req.tried());
        }
        let msg = match (f.payload, end) {
            (Payload::Fetch, End::Found(block)) => self.fetch_found(&to, f.req.key, block),
            (Payload::Fetch, End::Failed(outcome)) => {
                self.fetch_failed(&to, now, (f.req.kind, f.req.key), f.arrived_htl, outcome)
            }
            (Payload::Insert { .. }, End::Collision(existing)) => self.insert_collided(&to, f.req.key, existing),
            (Payload::Insert { block, top }, end) => {
                Some(self.insert_ended(&to, now, f.req.key, (block, top), end, f.req.reached()))
            }
            (Payload::Fetch, End::Collision(_) | End::Inserted) => None,
        };
        if let (Some((peer, _)), Some(msg)) = (to.upstream, msg) {
            self.transmits.push_back((peer, msg));
        }
        self.resume_deferred(now, f.req.kind, f.req.key);
    }

    /// Forgets request `f` in the lookup tables and releases its upstream's load slot;
    /// returns who must hear how it ended.
    pub(super) fn detach(&mut self, f: &InFlight) -> Audience {
        self.by_key.remove(&(f.req.kind, f.req.key));
        if let Some(w) = f.req.waiting() {
            self.by_link.remove(&(w.peer, w.id));
        }
        // The upstream link to answer on, if the request is remote and the peer still here.
        let upstream = match f.origin {
            Origin::Remote { peer, id } => {
                self.peers.release(peer);
                self.peers.get(peer).map(|_| (peer, id))
            }
            Origin::Orphan { peer } => {
                self.peers.release(peer);
                None
            }
            Origin::Local(_) => None,
        };
        let local_ops = match f.origin {
            Origin::Local(op) => std::iter::once(op).chain(f.waiters.iter().copied()).collect(),
            Origin::Remote { .. } | Origin::Orphan { .. } => f.waiters.clone(),
        };
        Audience {
            upstream,
            remote: !matches!(f.origin, Origin::Local(_)),
            from: upstream.map(|(p, _)| p),
            source: match f.origin {
                Origin::Remote { peer, .. } | Origin::Orphan { peer } => Some(peer),
                Origin::Local(_) => None,
            },
            cache: !matches!(f.origin, Origin::Local(_)) && f.arrived_htl < self.config.max_htl,
            local_ops,
            peers_tried: f.req.tried().len() as u32,
            displaced: f.displaced,
        }
    }

    /// A fetch found its block: cache it if it passed through below max HTL, hand it to the
    /// local waiters, return it upstream.
    fn fetch_found(&mut self, to: &Audience, key: RoutingKey, block: Block) -> Option<Message> {
        if to.cache {
            self.put(Area::Cache, key, block.clone());
        }
        for &op in &to.local_ops {
            self.events.push_back(Event::FetchSucceeded {
                op,
                block: block.clone(),
                peers_tried: to.peers_tried,
                local: false,
            });
        }
        to.upstream.map(|(_, id)| Message::DataFound { id, block })
    }

    /// A fetch failed: quench a key that ran its hops out, tell the local waiters why, and
    /// give the upstream the HTL that was left.
    fn fetch_failed(
        &mut self,
        to: &Audience,
        now: Instant,
        (kind, key): (BlockKind, RoutingKey),
        arrived_htl: Htl,
        outcome: Outcome,
    ) -> Option<Message> {
        let (reason, htl_left) = match outcome {
            Outcome::HtlExhausted => {
                self.quench.record(now, kind, key, arrived_htl, to.source.is_none());
                (FailReason::DataNotFound { htl: arrived_htl }, 0)
            }
            Outcome::RouteNotFound { htl } => (FailReason::RouteNotFound { htl_left: htl }, htl),
            Outcome::TimedOut { htl } => (FailReason::TimedOut { htl_left: htl }, htl),
        };
        for &op in &to.local_ops {
            self.events.push_back(Event::FetchFailed { op, reason, peers_tried: to.peers_tried });
        }
        Some(to.not_found(htl_left))
    }

    /// An SSK insert met a different block under its key: keep that one (it verified) and
    /// tell everyone who asked.
    fn insert_collided(&mut self, to: &Audience, key: RoutingKey, existing: Block) -> Option<Message> {
        if to.cache {
            self.put(Area::Cache, key, existing.clone());
        }
        for &op in &to.local_ops {
            self.events.push_back(Event::InsertCollision { op, existing: existing.clone() });
        }
        to.upstream.map(|(_, id)| Message::InsertCollision { id, block: existing })
    }

    /// An insert ended without a collision: store the block here (in the store area if this
    /// node is a sink for it), report success or failure locally, and answer upstream.
    fn insert_ended(
        &mut self,
        to: &Audience,
        now: Instant,
        key: RoutingKey,
        (block, top): (Block, bool),
        end: End,
        reached: bool,
    ) -> Message {
        // An insert that ran out of hops, however (even by timing out with none left),
        // answers InsertReply: an honest node never answers an insert with DataNotFound,
        // which lets the upstream treat that answer as a lie.
        let mut displaced = to.displaced;
        let (htl_exhausted, htl_left, reason) = match end {
            End::Failed(Outcome::RouteNotFound { htl }) if htl > 0 => {
                (false, htl, FailReason::RouteNotFound { htl_left: htl })
            }
            End::Failed(Outcome::TimedOut { htl }) if htl > 0 => (false, htl, FailReason::TimedOut { htl_left: htl }),
            // Unused: an insert that ran its hops out succeeded.
            _ => (true, 0, FailReason::RouteNotFound { htl_left: 0 }),
        };
        // Unlike a fetch's block, an insert is kept whatever HTL it arrived with: the nodes
        // at max HTL may be the only ones after the inserter (which keeps nothing) to hold
        // it, e.g. on a 3-node chain whose inserter is the key's sink. The neighbour's probe
        // this leaves is a residual channel (docs/security.md, section 8).
        if to.remote {
            let mut area = self.insert_area(&key, top, to.from);
            // A peer's inserts may push out only so much sink data (`NodeConfig::store_budget`):
            // a write into free room pushes nothing out and costs no token, so an honest bulk
            // insert into a store with room (and no cache to fall back on) loses nothing.
            let stats = self.store.stats();
            let full = stats.store_bytes + block.as_bytes().len() as u64 > stats.store_capacity;
            if let (Area::Store, Some(budget), true) = (area, self.config.store_budget, full) {
                let budget = budget.for_area(stats.store_capacity / CHK_SLOT_BYTES);
                if !to.from.is_some_and(|p| self.budgets.take(budget, p, now)) {
                    self.stats.store_budget_exceeded += 1;
                    area = Area::Cache;
                    // A sink that keeps it only in its cache will forget it soon.
                    displaced = true;
                }
            }
            let evictions = self.store.stats().store_evictions;
            if area == Area::Store {
                self.durability.offers.remember(block.kind(), key);
            }
            self.put(area, key, block);
            displaced |= self.store.stats().store_evictions > evictions;
        }
        let peers_tried = to.peers_tried;
        for &op in &to.local_ops {
            self.events.push_back(if htl_exhausted || reached {
                Event::InsertSucceeded { op, key, peers_tried, htl_exhausted, displaced }
            } else {
                Event::InsertFailed { op, reason, peers_tried }
            });
        }
        if let (true, Some((peer, id))) = (displaced, to.upstream) {
            // Ahead of the answer, on the same link with the same id (as `FoldOffer`).
            self.transmits.push_back((peer, Message::StoreFull { id }));
        }
        if htl_exhausted {
            Message::InsertReply { id: to.upstream.map_or(0, |(_, id)| id) }
        } else {
            to.not_found(htl_left)
        }
    }

    /// `Message::StoreFull` from `peer`: the insert it answers next could not be kept for
    /// good somewhere downstream. Remembered on the request, passed on with its answer.
    pub(super) fn on_store_full(&mut self, peer: PeerId, id: RequestId) {
        let Some(&h) = self.by_link.get(&(peer, id)) else {
            self.stats.unexpected_replies += u64::from(!self.durability.offers.is_offer(peer, id));
            return;
        };
        if let Some(f) = self.requests.get_mut(&h).filter(|f| matches!(f.payload, Payload::Insert { .. })) {
            f.displaced = true;
        }
    }

    /// Drops stale timers from the top of the heap so `poll_timeout` is exact.
    pub(super) fn prune_timers(&mut self) {
        while let Some(&Reverse((_, seq, h))) = self.timers.peek() {
            let live = self.requests.get(&h).is_some_and(|f| f.timer == seq && f.req.waiting().is_some());
            if live {
                break;
            }
            self.timers.pop();
        }
    }
}

/// A downstream answer, before routing has judged it.
pub(super) enum Answer {
    Found(Block),
    /// DataNotFound (`route` false) or RouteNotFound (`route` true), with the HTL left.
    NotFound {
        htl: Htl,
        route: bool,
    },
    Loop,
    Overload,
    Inserted,
    Collision(Block),
}

/// How long to wait for a peer sent a request with `htl`: proportional to the hops it may
/// still take, so a request at max HTL gets the whole `timeout`.
pub(super) fn hop_wait(timeout: Duration, max: Htl, htl: Htl) -> Duration {
    timeout * (u32::from(htl.min(max)) + 1) / (u32::from(max) + 1)
}

/// Whether `block` is genuine for `key`, a key the node asked for: recomputes the CHK hash,
/// or the SSK routing key and signature.
pub(super) fn verifies(block: &Block, key: &RoutingKey) -> bool {
    block.verify(key).is_ok()
}

/// Whether `block` is genuine for `key == block.routing_key()`, a key just derived from the
/// block itself: a CHK's routing key *is* its hash, so only an SSK's signature is left to
/// check (this saves a second SHA-256 over 32 KiB on every insert hop).
pub(super) fn verifies_derived(block: &Block, key: &RoutingKey) -> bool {
    match block {
        Block::Chk(_) => true,
        Block::Ssk(_) => block.verify(key).is_ok(),
    }
}
