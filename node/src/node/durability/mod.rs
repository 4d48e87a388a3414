//! Data that stays (issue 20): the node's two durability mechanisms, both sans-IO.
//!
//! - **Wider top blocks** (this file). An insert flagged `top` (`Message::InsertRequest`)
//!   carries a block FEC cannot rebuild: the block a URI names (a CHK document's top block,
//!   an SSK/KSK/edition block, a site manifest's top), which every fetch needs first. A node
//!   on its path keeps it in its store area if fewer than [`DurabilityConfig::top_sinks`]
//!   of its connected peers are at least as close to the key (every other block: only a
//!   sink, no peer closer). In the durability model this took day-30 survival from 68% to
//!   77% at fill 0.04 on its own, and to 100% with offers on swap (docs/durability.md).
//! - **Offers on swap** (`offers.rs`). A node whose location changed (a swap, or a location
//!   reset) hands the blocks of its store area to the peers now closer to their keys.
//! - **Offers on return** (`returns.rs`). A node back after a time without peers, or
//!   restarted with the keys it remembered (`remembered.rs`, sealed on disk), does the same
//!   for the peers that came back with it.
//! - **Steady backups on return** (`steady.rs`, with `uptime.rs` and `history.rs`). A node
//!   rarely online hands the blocks it is still the closest to to a peer it observed
//!   online most of the time.
//!
//! **The flag's adversary.** A peer that flags every block would make every node on its
//! inserts' paths keep them in the store area, as if it had `top_sinks` sinks. A node
//! honours the flag only within a per-peer token bucket ([`DurabilityConfig::top_budget`],
//! in virtual time, kept across reconnections like the store budget); past it the insert
//! is handled, and forwarded, as a plain one, so a flooder also cannot spend the budget
//! its downstream nodes keep for this node. Test: node/tests/top_blocks.rs
//! (`a_peer_flagging_every_block_gets_only_its_budget`).

mod history;
mod key_first;
mod offers;
mod remembered;
mod returns;
mod steady;
mod uptime;

use std::time::{Duration, Instant};

use pamphlet_crypto::{Block, RoutingKey};

use super::budget::{Buckets, StoreBudget};
use super::{Node, OpId};
use crate::id::PeerId;
use crate::location::Location;
use crate::store::{Area, BlockStore};

pub use history::{
    PeerUptime, Session, UptimeFileError, UptimeHistory, MAX_PEERS, MAX_SESSIONS, MAX_UPTIME_FILE, OWN_MIN_COVERED,
    OWN_WINDOW,
};
pub(super) use offers::Offers;
pub use offers::OFFERS_YIELD;
pub use remembered::KeysFileError;
pub use uptime::PEER_WINDOW;

/// The durability settings of a node (part of `NodeConfig`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DurabilityConfig {
    /// A block flagged `top` is kept in the store area by a node with fewer than this many
    /// connected peers at least as close to its key (the model's `--top-sinks`). 0 or 1:
    /// only sinks, as for every other block.
    pub top_sinks: u32,
    /// How many flagged inserts one peer may send that this node honours (and forwards
    /// flagged). An honest peer flags one or two blocks per document inserted through it.
    pub top_budget: StoreBudget,
    /// Offers on swap: blocks offered per `offer_tick` after the node's location changed.
    /// 0: no offers.
    pub offers_per_tick: u32,
    /// Offers on swap: the pace of the offer queue.
    pub offer_tick: Duration,
    /// Offers on swap: how many store-area keys the node remembers (the most recently
    /// written), and so the most it offers after one move. Lost on restart unless the
    /// driver persists them (`Node::remembered_keys_sealed`).
    pub offers_remembered: usize,
    /// Offers on return: a node that had no peer for at least `away`, or that loaded the
    /// keys it remembered before a restart, offers them to the peers that connect within
    /// `return_window` (same pace, same memory as offers on swap).
    pub offers_on_return: bool,
    /// Offers on return: how long without any connected peer counts as away.
    pub away: Duration,
    /// Offers on return: how long after the return newly connected peers still get the
    /// keys they are closer to (friends come back one by one).
    pub return_window: Duration,
    /// Steady backups on return (`steady.rs`): a node whose own online share
    /// (`Node::set_own_uptime`) is below this, on a return, also offers the blocks it is
    /// still the closest to, each to its connected peer closest to the key among those
    /// observed online at least this share of the time. 0: off.
    pub steady_backup: f64,
    /// Steady backups: a peer known for less than this counts as known this long (offline
    /// the rest), so a peer connected a short while is not steady.
    pub steady_observed: Duration,
    /// Offers on swap and on return are taken only into room: a node asks for an offered
    /// block only while its store area can hold it without dropping another (steady
    /// backups are taken as before). In the durability model, on the node's store/cache
    /// split, offered blocks pushing others out were the largest cause of loss, and taking
    /// them only into room kept more documents at every age (docs/durability.md,
    /// "Session 12").
    pub offers_into_room: bool,
}

impl Default for DurabilityConfig {
    /// Top blocks at every node with fewer than 4 closer peers, at most 64 flagged inserts
    /// at once per peer and then one every 15 s (240 an hour); offers paced at 8 a second
    /// (256 KiB/s at most, a few minutes for a store area of a few thousand blocks), from
    /// the 16,384 most recently stored keys (about 1.3 MiB of memory with the peer each was
    /// last offered to); offers on return after 10 minutes without peers, to the peers that
    /// connect within 5 minutes of the return; steady backups by a node online less than
    /// half the time (the model's `--steady-backup 0.5`) to peers seen online at least half
    /// of at least 6 hours.
    fn default() -> Self {
        DurabilityConfig {
            top_sinks: 4,
            top_budget: StoreBudget { burst: 64, every: Duration::from_secs(15), scaled: false },
            offers_per_tick: 8,
            offer_tick: Duration::from_secs(1),
            offers_remembered: 16_384,
            offers_on_return: true,
            away: Duration::from_secs(600),
            return_window: Duration::from_secs(300),
            steady_backup: 0.5,
            steady_observed: Duration::from_secs(6 * 3600),
            offers_into_room: true,
        }
    }
}

/// The durability state of a node.
#[derive(Debug)]
pub(super) struct State {
    /// Each peer's budget of honoured `top` flags.
    top: Buckets,
    /// Offers on swap.
    pub(super) offers: Offers,
    /// Each peer's budget of store lookups for the keys it offers (`key_first.rs`).
    lookups: Buckets,
    /// Offers on return.
    returns: returns::Return,
    /// The node's own uptime and its peers' (steady backups).
    uptimes: uptime::Uptimes,
    /// Backups this node asked peers for (steady backups, receiver side).
    asked: steady::Asked,
}

impl State {
    pub(super) fn new(config: &DurabilityConfig) -> Self {
        State {
            top: Buckets::default(),
            offers: Offers::new(config.offers_remembered),
            lookups: Buckets::default(),
            returns: returns::Return::default(),
            uptimes: uptime::Uptimes::default(),
            asked: steady::Asked::default(),
        }
    }

    /// When the durability machinery wants `handle_timeout` next.
    pub(super) fn next_due(&self) -> Option<Instant> {
        [self.offers.next, self.returns.requeue_at].into_iter().flatten().min()
    }
}

impl<S: BlockStore> Node<S> {
    /// Starts inserting `block` as a document's top block (the block its URI names): the
    /// insert is flagged so the nodes on its path keep it wider ([`DurabilityConfig`]).
    /// Otherwise as [`Node::start_insert`].
    pub fn start_insert_top(&mut self, now: Instant, block: Block) -> OpId {
        let op = self.new_op();
        self.stats.local_inserts += 1;
        self.insert_as(now, op, block, true);
        op
    }

    /// Blocks waiting to be offered after the node's last move (offers on swap).
    pub fn offers_waiting(&self) -> usize {
        self.durability.offers.queued()
    }

    /// Whether to honour the `top` flag of an insert from `peer`: within its budget.
    pub(super) fn honour_top(&mut self, peer: PeerId, now: Instant) -> bool {
        let honoured = self.durability.top.take(self.config.durability.top_budget, peer, now);
        if honoured {
            self.stats.top_flags_honoured += 1;
        } else {
            self.stats.top_flags_over_budget += 1;
        }
        honoured
    }

    /// Where an insert that ends here is kept: the store area if this node is a sink for
    /// `key`, or (a `top` block) if fewer than `top_sinks` connected peers are at least as
    /// close to it, or (a steady backup this node asked `from` for) if it is a sink without
    /// `from`; the cache area otherwise.
    pub(super) fn insert_area(&mut self, key: &RoutingKey, top: bool, from: Option<PeerId>) -> Area {
        let closer = self.peers.closer_count(self.config.location, Location::of_key(key));
        if closer == 0 {
            return Area::Store;
        }
        if let Some(area) = self.backup_area(key, from) {
            return area;
        }
        if top && closer < self.config.durability.top_sinks as usize {
            self.stats.top_wide_stores += 1;
            return Area::Store;
        }
        Area::Cache
    }
}
