//! Offers in the durability model: a node back online (`Rules::offer_on_return`) or moved
//! by a swap (`Rules::offer_on_swap`) hands its stored blocks to online peers, under one of
//! two rules (`Rules::offer_to_closer`):
//!
//! - **the node's** (`node/durability/`, the default of `Rules::pamphlet`): a block goes
//!   to the online peer closest to its key only if that peer is closer to it than the
//!   offering node; the peer keeps it in its store area if it is a sink for it and lacks
//!   it. Each offer is an insert carrying the block (2 messages and 32 KiB, whether the peer
//!   takes it or already holds it), except to the peer the node last offered that block to
//!   (the node's memory, lost at a return: a node coming back online has usually
//!   restarted; `Rules::offer_memory_kept` keeps it). The node's pace (8 a second) and its 5-minute return window do not bind
//!   at the model's hour: a 256-block store area is offered within a minute, and every
//!   peer online that hour counts as connected.
//! - **backup copies** (the model's rule before session 7, `--offer-rule backup`): every
//!   stored block goes to the online peer closest to its key, which keeps it if, with the
//!   offering node away, it would be a sink for it (the copy that answers while the
//!   offering node is offline); a key costs 32 bytes, a block handed over 2 messages and
//!   32 KiB. The node does not do this: its peers keep an offered block only as sinks.

use super::holdings::Place;
use super::route::Graph;
use super::{World, BLOCK_BYTES, KEY_BYTES, OFFER};

impl World<'_> {
    /// Node `i` offers its stored blocks (`returning`: it came back online this hour).
    pub(super) fn offer(&mut self, i: usize, returning: bool) {
        if returning && !self.config.rules.offer_memory_kept {
            self.offered_to[i].clear();
        }
        if self.config.rules.offer_to_closer {
            self.offer_to_closer(i, returning);
        } else {
            self.offer_backup(i);
        }
    }

    /// The node's rule (module doc).
    fn offer_to_closer(&mut self, i: usize, returning: bool) {
        let top_only = returning && self.config.rules.offer_top_only_on_return;
        let stored = self.holdings.stored(i);
        {
            let keep: std::collections::HashSet<u32> = stored.iter().copied().collect();
            self.offered_to[i].retain(|b, _| keep.contains(b));
        }
        let steady = self.config.rules.offer_uptime as f32;
        let peers: Vec<usize> = self.topo.adjacency[i]
            .iter()
            .map(|&j| j as usize)
            .filter(|&j| self.online[j] && self.uptime[j] >= steady)
            .collect();
        if peers.is_empty() || stored.is_empty() {
            return;
        }
        let limit = match self.config.rules.offer_limit {
            0 => usize::MAX,
            n => n,
        };
        for b in stored.into_iter().take(limit) {
            if top_only && !self.blocks.unprotected[b as usize] {
                continue;
            }
            let key = self.blocks.location[b as usize];
            let Some(&peer) = peers.iter().min_by_key(|&&j| self.location[j].distance(key)) else { continue };
            if self.location[peer].distance(key) >= self.location[i].distance(key) {
                if returning && f64::from(self.uptime[i]) < self.config.rules.steady_backup {
                    self.steady_backup(i, b);
                }
                continue; // this node is still the closest: not queued
            }
            if self.offered_to[i].get(&b) == Some(&(peer as u32)) {
                continue; // it took this block already
            }
            self.offered_to[i].insert(b, peer as u32);
            let g = Graph { adjacency: &self.topo.adjacency, online: &self.online, location: &self.location };
            let sink = if steady > 0.0 {
                g.is_steady_sink(peer, key, &self.uptime, steady)
            } else {
                g.is_sink(peer, key, self.config.rules.sink_rank)
            };
            let room = !self.config.rules.offer_into_room || self.holdings.has_room(peer);
            let take = sink && room && self.holdings.place(peer, b).is_none();
            self.offer_cost(peer, take);
            if take {
                self.take_offer(peer, b);
            }
        }
        // Key-first offers: one list and its answer per peer offered anything.
        let contacted = std::mem::take(&mut self.offer_contacts).len() as u64;
        self.costs[OFFER].add(2 * contacted, 0);
    }

    /// The cost of offering one block to `peer` (`take`: the peer keeps it). The node's
    /// offers: an insert carrying the block, whatever the peer does with it. Key-first
    /// (`Rules::key_first_offers`): the key in a list to the peer (the list and its answer
    /// counted once per peer and offer round), the key back if the peer wants it, and then
    /// the block's insert, only for blocks the peer keeps.
    fn offer_cost(&mut self, peer: usize, take: bool) {
        if !self.config.rules.key_first_offers {
            self.costs[OFFER].add(2, BLOCK_BYTES);
            return;
        }
        self.offer_contacts.insert(peer);
        self.costs[OFFER].add(0, KEY_BYTES);
        if take {
            self.costs[OFFER].add(2, KEY_BYTES + BLOCK_BYTES);
        }
    }

    /// `Rules::steady_backup`: returning node `i`, rarely online and still the closest to
    /// block `b`'s key, offers it to its online peer closest to the key among those online
    /// at least `steady_backup` of the time, which keeps it if it lacks it and is a sink
    /// for it with `i` away (the copy that answers while `i` is offline again).
    fn steady_backup(&mut self, i: usize, b: u32) {
        let min = self.config.rules.steady_backup as f32;
        let key = self.blocks.location[b as usize];
        let peer = self.topo.adjacency[i]
            .iter()
            .map(|&j| j as usize)
            .filter(|&j| self.online[j] && self.uptime[j] >= min)
            .min_by_key(|&j| self.location[j].distance(key));
        let Some(peer) = peer else { return };
        if self.offered_to[i].get(&b) == Some(&(peer as u32)) {
            return;
        }
        self.offered_to[i].insert(b, peer as u32);
        let g = Graph { adjacency: &self.topo.adjacency, online: &self.online, location: &self.location };
        let take = g.is_sink_without(peer, key, 1, i) && self.holdings.place(peer, b).is_none();
        self.offer_cost(peer, take);
        if take {
            self.take_offer(peer, b);
        }
    }

    /// `peer` keeps offered block `b` in its store area (as the most recently used, or
    /// with `Rules::offer_depth` deeper toward the cold end).
    fn take_offer(&mut self, peer: usize, b: u32) {
        self.offered += 1;
        self.holdings.cause = OFFER as u8;
        let depth = self.config.rules.offer_depth;
        let evicted = if depth > 0.0 {
            self.holdings.put_at(peer, b, depth)
        } else {
            self.holdings.put(peer, self.location[peer], b, Place::Store, &self.blocks.location, &mut self.evict_rng)
        };
        if let Some(old) = evicted {
            self.offer_evictions += 1;
            self.pass_on(peer, old);
        }
    }

    /// A node back online (or moved by a swap) offers its stored blocks to the online peer
    /// closest to each block's key; that peer keeps those it lacks if, with the offering
    /// node away, it would be a sink for them (the copy that answers while this node is
    /// offline, or now that it is elsewhere), and with `offer_into_room` only while its
    /// store area has room.
    fn offer_backup(&mut self, i: usize) {
        let stored = self.holdings.stored(i);
        let peers: Vec<usize> =
            self.topo.adjacency[i].iter().map(|&j| j as usize).filter(|&j| self.online[j]).collect();
        if peers.is_empty() || stored.is_empty() {
            return;
        }
        let mut contacted = vec![false; peers.len()];
        let limit = match self.config.rules.offer_limit {
            0 => usize::MAX,
            n => n,
        };
        for b in stored.into_iter().take(limit) {
            let key = self.blocks.location[b as usize];
            let Some((p, &peer)) = peers.iter().enumerate().min_by_key(|(_, &j)| self.location[j].distance(key)) else {
                continue;
            };
            contacted[p] = true;
            self.costs[OFFER].add(0, KEY_BYTES);
            let g = Graph { adjacency: &self.topo.adjacency, online: &self.online, location: &self.location };
            let wanted = g.is_sink_without(peer, key, self.config.rules.sink_rank, i);
            let room = !self.config.rules.offer_into_room || self.holdings.has_room(peer);
            if wanted && room && self.holdings.place(peer, b).is_none() {
                self.costs[OFFER].add(2, BLOCK_BYTES);
                self.take_offer(peer, b);
            }
        }
        // One offer message and its answer per peer offered anything.
        self.costs[OFFER].add(2 * contacted.iter().filter(|&&c| c).count() as u64, 0);
    }

    /// With `evict_to_peer`, node `i` has just dropped block `b` from its full store area:
    /// it hands `b` to its online peer closest to `b`'s key among those with room in their
    /// store area that lack it (one request and answer, and the block, on one hop).
    pub(super) fn pass_on(&mut self, i: usize, b: u32) {
        if !self.config.rules.evict_to_peer {
            return;
        }
        let key = self.blocks.location[b as usize];
        let holdings = &self.holdings;
        let peer = self.topo.adjacency[i]
            .iter()
            .map(|&j| j as usize)
            .filter(|&j| self.online[j] && holdings.has_room(j) && holdings.place(j, b) != Some(Place::Store))
            .min_by_key(|&j| self.location[j].distance(key));
        let Some(peer) = peer else { return };
        self.costs[OFFER].add(2, BLOCK_BYTES);
        self.passed_on += 1;
        let was = std::mem::replace(&mut self.holdings.cause, OFFER as u8);
        self.holdings.put(peer, self.location[peer], b, Place::Store, &self.blocks.location, &mut self.evict_rng);
        self.holdings.cause = was;
    }
}
