//! The storage rules a durability run compares: pamphlet's, the Hyphanet-like reference's,
//! and each mechanism on or off (docs/durability.md, "Mechanisms").

use super::Eviction;
use crate::client::fec;

/// The storage rules of a run: what differs between Hyphanet, pamphlet and each mechanism.
#[derive(Clone, Debug, PartialEq)]
pub struct Rules {
    /// A name for reports.
    pub name: String,
    /// FEC check blocks per data block.
    pub redundancy: f64,
    /// Re-insert the blocks a fetch had to rebuild with FEC.
    pub heal: bool,
    /// A node on an insert's path writes it to its store area if at most `sink_rank - 1`
    /// of its online peers are closer to the key (1: only a sink, as today).
    pub sink_rank: usize,
    /// The first node on an insert's path that may write to its store area (1: any).
    pub first_store_hop: usize,
    /// Which block a full store area drops.
    pub store_eviction: Eviction,
    /// Of the sinks an insert entered, only the one closest to the key writes it to its
    /// store area (the others cache it). An ideal, to measure what fewer store writes buy:
    /// a real insert would have to carry the closest location it has seen and learn, at
    /// its end, which node that was.
    pub store_once: bool,
    /// The uptime rule (0: off): a node on an insert's path writes it to its store area only
    /// if its own uptime over about the last week is at least this and no online peer with
    /// such an uptime is closer to the key (see `Graph::is_steady_sink`); otherwise it
    /// caches it. Uptimes are exponential averages of hours online with a one-week time
    /// constant, which a node can keep for itself and for each friend it sees connected.
    pub store_uptime: f64,
    /// A node whose location changed in a swap hands each block of its store area to its
    /// online peer now closest to the block's key, if that peer is a sink for it and lacks
    /// it (as `offer_on_return`, at the swap).
    pub offer_on_swap: bool,
    /// Offers (on return or swap) hand a block over only while the peer's store area has
    /// room (they never evict).
    pub offer_into_room: bool,
    /// A node whose full store area drops a block to make room hands the block to its
    /// online peer closest to the block's key among those whose store area has room (and
    /// that lack it), instead of losing it.
    pub evict_to_peer: bool,
    /// At most this many nodes on an insert's path write it to their store areas (0: no
    /// limit): the first ones the rules make sinks; the insert carries the count, and the
    /// sinks after them cache it.
    pub max_store_copies: usize,
    /// The sink rule for blocks FEC cannot rebuild (a document's top block, manifest
    /// segments without check blocks): a node on the insert's path stores one if fewer than
    /// this many online peers are closer to its key (0: as every other block). One block per
    /// document, the one every fetch needs first: more copies of it cost little store.
    pub unprotected_sink_rank: usize,
    /// A node coming back online offers each block of its store area to its online peer
    /// closest to the block's key, which keeps it if it lacks it and is where inserts of
    /// that key go while the returning node is away (a sink without it).
    pub offer_on_return: bool,
    /// Every this many days, each pinned document's publisher (when online) runs keepalive
    /// on it: probes every block and inserts again the ones missing from segments that can
    /// still be rebuilt (`pamphlet pin`). 0: never.
    pub keepalive_days: u32,
    /// The share of documents their publishers pin (drawn at insert).
    pub keepalive_share: f64,
    /// The most blocks one node offers after one move (0: no limit): the node's
    /// `DurabilityConfig::offers_remembered` (it remembers that many of its most recently
    /// stored keys). Its pace (`offers_per_tick` a second) is not modelled: the model's
    /// store areas (256 blocks by default) are offered within a minute of a swap, and
    /// swaps come once a day.
    pub offer_limit: usize,
    /// The rule of offers (on return and on swap; `offers.rs`): true, the node's (a block
    /// goes only to a peer closer to its key than the offering node, which keeps it as a
    /// sink; every offer carries the block, except to the peer last offered it); false,
    /// backup copies (every block to the closest online peer, which keeps it if it would be
    /// a sink with the offering node away; the model's rule before session 7).
    pub offer_to_closer: bool,
    /// With `offer_to_closer`: the node's memory of the peer it last offered each block to
    /// survives its returns (a node whose links dropped but that kept running, or one that
    /// persisted the memory; the node today persists only the keys). False: lost at every
    /// return, as a restart loses it.
    pub offer_memory_kept: bool,
    /// Where an offered block enters the peer's store area (`Holdings::put_at`): 0 as the
    /// most recently used (the node today), 1 at the cold end, the next to be dropped (kept
    /// only while nothing else needs the room, unless it is read first), between: that
    /// share of the area's blocks stay ahead of it.
    pub offer_depth: f64,
    /// Offers on return hand over only blocks FEC cannot rebuild (top blocks); offers on
    /// swap hand over every block.
    pub offer_top_only_on_return: bool,
    /// Hops of a fetch (and of the probes, which measure what a fetch finds); 0: the
    /// model's [`HTL`](super::route::HTL), as inserts. A diagnosis of routing losses.
    pub fetch_htl: u32,
    /// Offers (by the node's rule) go only to peers whose uptime (as `store_uptime`
    /// measures it) is at least this, which keep the block if no online peer of theirs
    /// with such an uptime is closer to its key (0: any peer, as the node).
    pub offer_uptime: f64,
    /// A returning node whose uptime is below this offers each block it is still the
    /// closest to (which the node's rule does not offer) to its online peer closest to the
    /// key among those whose uptime is at least this, kept there if that peer lacks it and
    /// is a sink for it with the returning node away (0: off).
    pub steady_backup: f64,
    /// Which routes rank a neighbour by the smaller of its own distance to the key and its
    /// closest online neighbour's, as the node does (friend-of-a-friend locations,
    /// `routing::peers`); the others rank by own locations (the model until session 10).
    pub foaf: Foaf,
    /// Offers by the node's rule send keys first: the peer answers with the keys it lacks
    /// and would keep, and only those blocks follow (`offers.rs`, `offer_cost`). Changes
    /// the offers' cost, never what is kept.
    pub key_first_offers: bool,
    /// After a fetch (or probe) of a block finds nothing, the originator asks once more,
    /// routed around the failed attempt's first hops, and relays as the rule says
    /// (`second.rs`; off: never).
    pub second_attempt: SecondAttempt,
    /// The second attempt waits until the relays' quench of the failed key has ended
    /// (half a minute, `routing/quench.rs`); false: it leaves at once, and relays on the
    /// failed path answer it "not found".
    pub second_attempt_waits: bool,
    /// Fetches and probes route as the node does after a "not found": it costs a node at
    /// most this many of its hops, and the node tries its next peer with the rest (the
    /// node's `not_found_cap`, 4). 0: all its hops (the model until session 9: a route
    /// backtracks only from dead ends, and ends where its hops run out).
    pub fetch_cap: u32,
}

/// Which routes use friend-of-a-friend locations (`Rules::foaf`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Foaf {
    /// None: every route by the neighbours' own locations (the model until session 10).
    #[default]
    Off,
    /// Every route: inserts, fetches, probes (the node today: `RoutingStrategy::Pamphlet`).
    All,
    /// Fetches and probes only; inserts (healing's and keepalive's too) by own locations.
    /// An FOAF insert goes straight to the node closest to the key and then spends its hops
    /// among that node's neighbours, none of which is a sink (the closest node is their
    /// peer), so it is stored at fewer nodes (docs/durability.md, "Session 10: FOAF").
    Fetches,
}

impl Foaf {
    /// Whether inserts route by FOAF locations.
    pub fn inserts(self) -> bool {
        self == Foaf::All
    }

    /// Whether any route does (the FOAF lists must be kept).
    pub fn any(self) -> bool {
        self != Foaf::Off
    }
}

/// How a second attempt for a block not found is routed (`Rules::second_attempt`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SecondAttempt {
    /// No second attempt (the node today).
    #[default]
    Off,
    /// The originator sends it to its best peer other than the failed attempt's first
    /// hops; relays route it as any request (they may enter those hops later).
    Next,
    /// As `Next`, and the route never enters the failed attempt's first hops (an ideal:
    /// relays would have to be told them).
    Avoid,
    /// By the key, the node's rule since session 10 (`node/second_attempt.rs`): every node
    /// whose hops ran out in the failed attempt, originator and relays alike, routes the
    /// second around the peers it sent the failed one to (`route::Again::by_key`).
    Key,
}

impl Rules {
    /// pamphlet as the node is: redundancy 0.5, healing, one sink, LRU store, top blocks
    /// stored wider (`top_sinks`), offers on swap and on return by the node's rule, with the
    /// node's own defaults
    /// (`node::DurabilityConfig`; test `the_model_defaults_are_the_nodes`).
    pub fn pamphlet() -> Self {
        let node = crate::node::DurabilityConfig::default();
        let routing = crate::node::NodeConfig::default();
        Rules {
            name: "pamphlet defaults".into(),
            unprotected_sink_rank: node.top_sinks as usize,
            offer_on_swap: node.offers_per_tick > 0,
            offer_on_return: node.offers_per_tick > 0 && node.offers_on_return,
            offer_to_closer: true,
            offer_limit: node.offers_remembered,
            // Since session 9, as the node: key lists first, steady backups on return, a
            // fetch that a "not found" costs at most `not_found_cap` hops, and a second
            // attempt around the first hops once the quench has ended.
            key_first_offers: node.offers_per_tick > 0,
            steady_backup: if node.offers_on_return { node.steady_backup } else { 0.0 },
            fetch_cap: u32::from(routing.not_found_cap),
            second_attempt: if routing.second_attempt_window.is_zero() {
                SecondAttempt::Off
            } else {
                SecondAttempt::Key
            },
            second_attempt_waits: true,
            // Since session 10, as the node: every request ranks peers by FOAF locations.
            foaf: if routing.strategy == crate::node::RoutingStrategy::Pamphlet { Foaf::All } else { Foaf::Off },
            // Since session 12, as the node: offered blocks only into room.
            offer_into_room: node.offers_into_room,
            ..Rules::before()
        }
    }

    /// pamphlet before issue 20's mechanisms were built into the node (the model's
    /// defaults until then): no wider top blocks, no offers on swap.
    pub fn before() -> Self {
        Rules {
            name: "pamphlet before (no wider top blocks, no offers)".into(),
            redundancy: fec::DEFAULT_REDUNDANCY,
            heal: true,
            sink_rank: 1,
            first_store_hop: 1,
            store_eviction: Eviction::Lru,
            store_once: false,
            store_uptime: 0.0,
            offer_on_swap: false,
            offer_into_room: false,
            evict_to_peer: false,
            max_store_copies: 0,
            unprotected_sink_rank: 0,
            offer_on_return: false,
            keepalive_days: 0,
            keepalive_share: 0.0,
            offer_limit: 0,
            offer_to_closer: false,
            offer_memory_kept: false,
            offer_depth: 0.0,
            offer_top_only_on_return: false,
            fetch_htl: 0,
            offer_uptime: 0.0,
            steady_backup: 0.0,
            foaf: Foaf::Off,
            key_first_offers: false,
            second_attempt: SecondAttempt::Off,
            second_attempt_waits: false,
            fetch_cap: 0,
        }
    }

    /// Hyphanet-like, as issue 20 asks for the reference: redundancy 1.0, no healing, its
    /// store's random replacement, and nothing stored in the store area by the first two
    /// nodes after the inserter (Hyphanet keeps inserts out of the store near their
    /// originator; our reading of fred, see docs/durability.md). Neither of pamphlet's
    /// wider top blocks nor its offers on swap.
    pub fn hyphanet() -> Self {
        Rules {
            name: "Hyphanet-like".into(),
            redundancy: 1.0,
            heal: false,
            first_store_hop: 3,
            store_eviction: Eviction::Random,
            ..Rules::before()
        }
    }
}
