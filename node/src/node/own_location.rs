//! The node's own location: swaps that move it, resets, and telling the peers where it is
//! (`LocationUpdate`, coalesced re-broadcasts when the peers' view of it is stale).

use std::time::Instant;

use rand::Rng;

use super::{claim_interval, Node, REBROADCAST_INTERVAL};
use crate::id::PeerId;
use crate::location::Location;
use crate::routing::swap;
use crate::store::BlockStore;
use crate::wire::message::Message;

impl<S: BlockStore> Node<S> {
    /// Moves this node to a new location (after a swap) and tells the peers.
    pub fn set_location(&mut self, now: Instant, location: Location) {
        self.config.location = location;
        self.broadcast_location(now);
        self.queue_offers(now);
    }

    /// Starts a location swap (Sandberg; see `routing/swap.rs`) unless one is in progress
    /// or there is no peer; returns whether it started. With probability
    /// `swap.reset_probability` the node instead takes a fresh random location (the
    /// location-reset defence against Pitch Black) and returns false. Periodic swapping
    /// (`swap_interval`) calls this; a driver may call it directly.
    pub fn start_swap(&mut self, now: Instant) -> bool {
        let p = self.config.swap.reset_probability;
        if self.config.opennet.mode.strangers() {
            return false; // opennet locations are fixed (docs/opennet.md)
        }
        if p > 0.0 && self.rng.gen::<f64>() < p {
            self.stats.location_resets += 1;
            let fresh = Location(self.rng.gen());
            self.set_location(now, fresh);
            return false;
        }
        let mut out = Vec::new();
        let peers = self.peer_ids();
        let started =
            self.swapper.start(now, &mut self.rng, self.config.location, self.peers.locations(), &peers, &mut out);
        self.transmits.extend(out);
        self.stats.swaps_attempted += u64::from(started);
        started
    }

    pub(super) fn apply_swap(&mut self, now: Instant, outcome: swap::Outcome) {
        match outcome {
            swap::Outcome::Swapped(location) => {
                self.stats.swaps_done += 1;
                self.set_location(now, location);
            }
            swap::Outcome::Kept => self.stats.swaps_kept += 1,
            swap::Outcome::Aborted(why) => {
                self.stats.swaps_aborted += 1;
                match why {
                    swap::Abort::Refused => self.stats.swaps_refused += 1,
                    swap::Abort::Implausible => self.stats.swaps_implausible += 1,
                    swap::Abort::BadReveal => self.stats.swaps_bad_reveal += 1,
                    swap::Abort::TimedOut => self.stats.swaps_timed_out += 1,
                    swap::Abort::PeerGone => {}
                }
            }
        }
    }

    /// A peer's `LocationUpdate`. If it moved, our neighbour list changed, so our peers'
    /// FOAF view of us is stale: re-broadcast (coalesced with claims checked). Our own
    /// location did not change, so this does not cascade.
    pub(super) fn on_location_update(
        &mut self,
        now: Instant,
        peer: PeerId,
        location: Location,
        neighbours: &[Location],
    ) {
        let neighbours = &neighbours[..neighbours.len().min(crate::routing::peers::MAX_FOAF)];
        let plausible = !self.config.check_claims || swap::plausible_neighbours(location, neighbours);
        if !plausible {
            self.stats.foaf_implausible += 1;
        }
        let list = if plausible { neighbours } else { &[] };
        let o = self.peers.update_location(peer, location, list, self.config.location, now);
        self.opennet_location_known(peer, location);
        self.stats.locations_deferred += u64::from(o.deferred);
        if o.moved {
            self.schedule_rebroadcast(now);
        }
    }

    /// Broadcasts now (claims unchecked), or at most [`REBROADCAST_INTERVAL`] after the last
    /// broadcast (less on a darknet that swaps faster, as for peers' claims:
    /// `peers::claim_interval`), once for every update in between.
    pub(super) fn schedule_rebroadcast(&mut self, now: Instant) {
        if !self.config.check_claims {
            return self.broadcast_location(now);
        }
        if self.rebroadcast_at.is_none() {
            let every = claim_interval(self.config.swap_interval).min(REBROADCAST_INTERVAL);
            let at = self.last_broadcast.map_or(now, |t| (t + every).max(now));
            self.rebroadcast_at = Some(at);
        }
        if self.rebroadcast_at.is_some_and(|t| t <= now) {
            self.broadcast_location(now);
        }
    }

    pub(super) fn broadcast_location(&mut self, now: Instant) {
        self.last_broadcast = Some(now);
        self.rebroadcast_at = None;
        self.stats.location_broadcasts += 1;
        let neighbours = self.peers.locations();
        let location = self.config.location;
        for peer in self.peers.ids() {
            self.transmits.push_back((peer, Message::LocationUpdate { location, neighbours: neighbours.clone() }));
        }
    }
}
