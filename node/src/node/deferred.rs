//! The node's own operations that wait for someone else's request for the same key.
//!
//! A node routes one request per key at a time (the loop detector, `Node::by_key`). When
//! its own user asks for a key a neighbour's request holds, a fetch joins a fetch in flight
//! (it gets the same answer); anything else used to fail at once with "busy, retry later".
//! That let one neighbour keep a key in flight and so deny its friend the insert of that
//! key (issue 14, item 9). Now the operation waits here and starts as soon as the request
//! holding the key ends, before any new message is handled, so the wait is bounded by one
//! request's deadline and a neighbour cannot take the key back first.
//!
//! Likewise a fetch of a key that neighbours' failed requests quenched (and none of the
//! node's own): it waits for the quench to end and then goes out, once, whatever was
//! quenched meanwhile (`routing/quench.rs`). A relay answers a quenched key "not found" at
//! once and sends nothing on; the node's own fetch also sends nothing while it waits, so
//! the wait does not mark it as the originator. What remains observable: if colluders fail
//! the key again during the wait, the fetch still leaves when the first quench ends, which
//! a relay would not do.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use pamphlet_crypto::{Block, BlockKind, RoutingKey};

use super::{Event, FailReason, Node, OpId};
use crate::store::BlockStore;

/// Keys for which local operations may wait at once; past it they fail busy as before
/// (a bound on memory, not a limit any honest use reaches: the client pipeline keeps at
/// most 64 blocks in flight).
const MAX_KEYS: usize = 1024;

/// A local operation waiting for a key.
#[derive(Debug)]
pub(super) enum Waiting {
    Fetch(OpId),
    Insert(OpId, Block, bool),
}

/// Local operations waiting, by key.
#[derive(Debug, Default)]
pub(super) struct Deferred {
    by_key: HashMap<(BlockKind, RoutingKey), Vec<Waiting>>,
    /// Fetches waiting for a quench to end, by (when, op).
    quenched: BTreeMap<(Instant, OpId), (BlockKind, RoutingKey)>,
}

impl Deferred {
    /// When the first fetch waiting for a quench is due.
    pub(super) fn next_due(&self) -> Option<Instant> {
        self.quenched.keys().next().map(|(t, _)| *t)
    }
}

impl<S: BlockStore> Node<S> {
    /// Parks `op` until the request holding `key` ends; fails it busy if too many keys wait.
    pub(super) fn defer(&mut self, kind: BlockKind, key: RoutingKey, op: Waiting) {
        let table = &mut self.deferred.by_key;
        if table.len() >= MAX_KEYS && !table.contains_key(&(kind, key)) {
            let event = match op {
                Waiting::Fetch(op) => Event::FetchFailed { op, reason: FailReason::KeyBusy, peers_tried: 0 },
                Waiting::Insert(op, ..) => Event::InsertFailed { op, reason: FailReason::KeyBusy, peers_tried: 0 },
            };
            self.events.push_back(event);
            return;
        }
        self.stats.deferred_local += 1;
        table.entry((kind, key)).or_default().push(op);
    }

    /// Parks the fetch `op` until the quench on `key` ends at `until`; fails it "recently
    /// failed" as before if too many wait.
    pub(super) fn defer_until(&mut self, until: Instant, kind: BlockKind, key: RoutingKey, op: OpId) {
        if self.deferred.quenched.len() >= MAX_KEYS {
            self.stats.quenched += 1;
            let reason = FailReason::RecentlyFailed;
            self.events.push_back(Event::FetchFailed { op, reason, peers_tried: 0 });
            return;
        }
        self.stats.deferred_local += 1;
        self.deferred.quenched.insert((until, op), (kind, key));
    }

    /// Starts the fetches whose quench has ended.
    pub(super) fn resume_due(&mut self, now: Instant) {
        while let Some(entry) = self.deferred.quenched.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let ((_, op), (kind, key)) = entry.remove_entry();
            self.fetch_as(now, op, kind, key, true);
        }
    }

    /// The request for `key` ended: start what waited for it, in the order it came.
    pub(super) fn resume_deferred(&mut self, now: Instant, kind: BlockKind, key: RoutingKey) {
        let Some(waiting) = self.deferred.by_key.remove(&(kind, key)) else { return };
        for w in waiting {
            match w {
                Waiting::Fetch(op) => self.fetch_as(now, op, kind, key, false),
                Waiting::Insert(op, block, top) => self.insert_as(now, op, block, top),
            }
        }
    }
}
