//! Key-first offers (issue 20): an offer names the blocks first, and only the blocks the
//! peer asks for follow.
//!
//! In the durability model, sending each offered block as an insert spent 3–4 GiB a day
//! across 2,000 nodes on blocks the peers already held or would not keep; offering the keys
//! first cut the offers' bytes by 72–81% at the same survival (docs/durability.md,
//! "Key-first offers"). So the offer path of offers on swap and on return (`offers.rs`)
//! sends, per round, one [`Message::OfferKeys`] to each peer it has blocks for (at most
//! [`MAX_OFFERED_KEYS`] keys each); the peer answers [`Message::WantKeys`] with the keys it
//! lacks and would keep (its sink test: no connected peer closer to the key, as for an
//! insert that ends at it; and the key neither in its store nor being routed; and, since
//! session 12, for an ordinary offer only as many as its store area has room for,
//! [`super::DurabilityConfig::offers_into_room`]: in the durability model offered blocks
//! pushing older ones out were the largest cause of loss); the wanted
//! blocks go out as HTL-1 inserts at the offers' pace (`offers_per_tick` blocks per tick),
//! and the next round's lists once they are all out, at most one round per
//! [`ROUND_EVERY`] (so an honest node's lists fit the peer's lookup budget).
//!
//! Defences (tests in node/tests/offers_key_first.rs):
//! - a peer's key lists cost this node at most [`LOOKUP_BUDGET`] store lookups per peer
//!   (a burst, then a steady rate, in virtual time, kept across reconnections): the keys
//!   past it are not looked up and not asked for, and a list that finds the budget empty
//!   gets no answer;
//! - an answer is matched against the lists this node sent and is still waiting on
//!   (at most one round, forgotten after [`ANSWER_WAIT`]): an answer for no list (unasked,
//!   late, repeated) sends nothing, and keys the list did not offer are ignored;
//! - what is asked for goes out only at the offers' pace, however much it is.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use pamphlet_crypto::{BlockKind, RoutingKey};

use super::super::budget::StoreBudget;
use super::super::Node;
use super::steady::Offered;
use crate::id::{PeerId, RequestId};
use crate::store::{Area, BlockStore};
use crate::wire::message::{Message, MAX_OFFERED_KEYS};

/// The store lookups one peer's key lists may cost this node: two full lists at once, then
/// 64 keys a second (an honest node offers one list per round, and a round lasts at least
/// a tick).
pub(in crate::node) const LOOKUP_BUDGET: StoreBudget =
    StoreBudget { burst: 2 * MAX_OFFERED_KEYS as u32, every: Duration::from_micros(15_625), scaled: false };

/// An offering node starts a round of key lists at most this often: a round offers a peer
/// at most [`MAX_OFFERED_KEYS`] keys, so an honest node's lists stay within the peer's
/// steady [`LOOKUP_BUDGET`] (64 × 4 s = 256) even when the peer wants none of the keys.
pub(in crate::node) const ROUND_EVERY: Duration = Duration::from_secs(4);

/// How long a sent list waits for its answer; a later answer sends nothing.
pub(in crate::node) const ANSWER_WAIT: Duration = Duration::from_secs(30);

/// A list of keys sent and waiting for its answer.
#[derive(Debug)]
pub(in crate::node) struct Sent {
    pub(in crate::node) peer: PeerId,
    pub(in crate::node) id: RequestId,
    pub(in crate::node) keys: HashSet<(BlockKind, RoutingKey)>,
    pub(in crate::node) at: Instant,
}

impl<S: BlockStore> Node<S> {
    /// `Message::OfferKeys` from `peer`: answers with the keys this node lacks and would
    /// keep, within the peer's lookup budget.
    pub(in crate::node) fn on_offer_keys(
        &mut self,
        now: Instant,
        peer: PeerId,
        id: RequestId,
        keys: Vec<(BlockKind, RoutingKey)>,
    ) {
        let offered = keys.len() as u64;
        let mut checked = 0u64;
        let mut wanted = Vec::new();
        // Room in the store area per kind (CHK, SSK), for the ordinary offers of this list
        // (`DurabilityConfig::offers_into_room`; unbounded without it).
        let into_room = self.config.durability.offers_into_room;
        let mut room =
            [BlockKind::Chk, BlockKind::Ssk]
                .map(|kind| if into_room { self.store.room(Area::Store, kind) } else { u64::MAX });
        for (kind, key) in keys.into_iter().take(MAX_OFFERED_KEYS) {
            if !self.durability.lookups.take(LOOKUP_BUDGET, peer, now) {
                break;
            }
            checked += 1;
            // A sink without the sender (`steady.rs`): for an ordinary offer the same as
            // with it (the sender offers only keys this node is closer to).
            if self.by_key.contains_key(&(kind, key))
                || self.store.contains(kind, &key)
                || wanted.contains(&(kind, key))
            {
                continue;
            }
            // An ordinary offer only into room; a steady backup as before.
            match self.wants_offered(peer, &key) {
                None => continue,
                Some(Offered::Backup) => {}
                Some(Offered::Ordinary) => {
                    let left = &mut room[usize::from(kind == BlockKind::Ssk)];
                    if *left == 0 {
                        self.stats.offered_keys_no_room += 1;
                        continue;
                    }
                    *left -= 1;
                }
            }
            wanted.push((kind, key));
        }
        self.stats.offered_keys_checked += checked;
        self.stats.offered_keys_over_budget += offered - checked;
        if checked > 0 || offered == 0 {
            self.transmits.push_back((peer, Message::WantKeys { id, wanted }));
        }
    }

    /// `Message::WantKeys` from `peer`: the keys of the matching list it asked for are
    /// queued to go out at the offers' pace; anything else is ignored.
    pub(in crate::node) fn on_want_keys(
        &mut self,
        now: Instant,
        peer: PeerId,
        id: RequestId,
        wanted: Vec<(BlockKind, RoutingKey)>,
    ) {
        let offers = &mut self.durability.offers;
        let Some(at) = offers.lists.iter().position(|l| l.peer == peer && l.id == id && l.at + ANSWER_WAIT > now)
        else {
            self.stats.offer_wants_ignored += 1 + wanted.len() as u64;
            return;
        };
        let Some(mut list) = offers.lists.remove(at) else { return };
        for k in wanted {
            if list.keys.remove(&k) {
                offers.wanted.push_back((peer, k.0, k.1));
                self.stats.offer_keys_wanted += 1;
            } else {
                self.stats.offer_wants_ignored += 1;
            }
        }
        if offers.next.is_none() {
            offers.next = Some(now + self.config.durability.offer_tick);
        }
    }
}
