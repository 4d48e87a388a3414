//! The peer table: each connected peer's location, the locations of *its* peers
//! (friend-of-a-friend, from `LocationUpdate`), its HTL link coins, its load and backoff.
//!
//! Routing asks the table for peers ranked for a key ([`PeerTable::ranked`]): peers not
//! backed off first, then by *effective* distance to the key, the smaller of the peer's own
//! distance and its closest advertised neighbour's (Hyphanet's FOAF routing: a peer next to
//! the key's neighbourhood is a good first hop even if its own location is not). Ties break
//! on the peer's own distance, then on the peer id, so the order is deterministic.
//!
//! Backoff: a peer that rejects with overload or times out is backed off for a period that
//! starts at `initial` and doubles on each further failure up to `max`; a reply that is
//! not a rejection resets it. A forger (a peer that returned a block that does not verify)
//! is backed off for the longer `forgery` period. Backed-off peers are still used, but only
//! after every other candidate.
//!
//! Reconnects: a peer's id is derived from its static key, so the same friend comes back
//! with the same id. Its record (load, backoff, penalties) outlives the connection:
//! [`PeerTable::remove`] keeps it among the departed, [`PeerTable::insert`] restores it, so
//! a peer cannot reset its penalties, nor double its share of requests in flight, by
//! reconnecting (issue 14, item 6). At most [`MAX_DEPARTED`] departed records are kept; the
//! oldest departure is forgotten first.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::id::PeerId;
use crate::location::Location;
use crate::routing::htl::LinkHtl;

/// The most friend-of-a-friend locations kept per peer: bounds the memory a peer can make
/// us spend and the cost of ranking (Hyphanet peers have at most a few dozen friends).
pub const MAX_FOAF: usize = 64;

/// The shortest time between two accepted location changes of one peer. A location only
/// changes by a swap, which takes a walk and two round trips and is one at a time per
/// node; a peer claiming new locations faster is lying (chasing keys). A change that comes
/// sooner is held and applied when the interval is over (the latest claim wins).
pub const LOCATION_INTERVAL: Duration = Duration::from_secs(1);

/// The location-claim interval for a node that swaps every `swap_interval`: a quarter of
/// it, at most [`LOCATION_INTERVAL`] (a location changes at most once per swap, and a swap
/// involves a node as initiator or as responder, so honest peers stay well inside it).
pub fn claim_interval(swap_interval: Option<Duration>) -> Duration {
    swap_interval.map_or(LOCATION_INTERVAL, |every| LOCATION_INTERVAL.min(every / 4))
}

/// Peers whose location is this close to ours (a fraction 2^-24 of the circle, either
/// side) do not deny our sinkhood: a peer claiming our own location plus epsilon would
/// otherwise be "closer" to half of every key range we sink. Two honest nodes this close
/// are rare (about 1 pair in 8 million) and then both keep the block.
pub const NEAR_EQUAL: u64 = 1 << 40;

/// What [`PeerTable::update_location`] did with a `LocationUpdate`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClaimOutcome {
    /// The peer's location changed now.
    pub moved: bool,
    /// The location change came too soon and is held (see [`LOCATION_INTERVAL`]).
    pub deferred: bool,
}
/// The most departed peers whose records are remembered (see the module doc): a node has a
/// few dozen friends, so this covers every friend's churn many times over while bounding
/// the memory.
pub const MAX_DEPARTED: usize = 1024;

/// Backoff periods (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackoffConfig {
    /// First backoff after a rejection or timeout.
    pub initial: Duration,
    /// Longest backoff from doubling.
    pub max: Duration,
    /// Backoff of a peer that sent a forged or corrupted block.
    pub forgery: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(180),
            forgery: Duration::from_secs(600),
        }
    }
}

/// What the node knows about one peer.
#[derive(Clone, Debug)]
pub struct PeerEntry {
    /// The peer's own location.
    pub location: Location,
    /// Locations of the peer's peers, as it last advertised them (at most [`MAX_FOAF`]).
    pub foaf: Vec<Location>,
    /// The HTL decrement coins of the link to this peer.
    pub link: LinkHtl,
    /// Requests from this peer that this node is still handling.
    pub in_flight: u32,
    /// Until when the peer is backed off (routing prefers others).
    pub backoff_until: Option<Instant>,
    /// The length of the next doubling backoff.
    pub backoff_next: Duration,
    /// How many forged or corrupted blocks it sent.
    pub forgeries: u32,
    /// How many answers it gave that no honest node gives (DataNotFound to an insert).
    pub false_answers: u32,
    /// When its location last changed (rate limit, [`LOCATION_INTERVAL`]).
    pub moved_at: Option<Instant>,
    /// A location change held until [`LOCATION_INTERVAL`] after `moved_at`.
    pub pending: Option<Location>,
    /// How many requests it accepted and then never answered in time.
    pub silences: u32,
}

impl PeerEntry {
    /// Whether the peer is backed off at `now`.
    pub fn backed_off(&self, now: Instant) -> bool {
        self.backoff_until.is_some_and(|t| now < t)
    }

    /// Effective distance to `target`: own location or closest advertised neighbour.
    pub fn effective_distance(&self, target: Location) -> u64 {
        self.foaf.iter().fold(self.location.distance(target), |d, l| d.min(l.distance(target)))
    }
}

/// All connected peers, ordered by id (so iteration is deterministic), and the records of
/// recently departed ones.
#[derive(Clone, Debug, Default)]
pub struct PeerTable {
    peers: BTreeMap<PeerId, PeerEntry>,
    /// Departed peers' records, with the sequence number of their departure (the smallest
    /// is forgotten first when more than [`MAX_DEPARTED`] are kept).
    departed: BTreeMap<PeerId, (u64, PeerEntry)>,
    /// Departures so far (the next sequence number).
    departures: u64,
    backoff: BackoffConfig,
    /// Whether peers' claims are checked (FOAF plausibility, location rate limit, near-equal
    /// locations); off only to measure the defences (`NodeConfig::check_claims`).
    check_claims: bool,
    /// The shortest time between two accepted location changes of one peer
    /// ([`LOCATION_INTERVAL`], or less on a darknet that swaps faster: see
    /// [`PeerTable::set_location_interval`]).
    location_interval: Duration,
}

impl PeerTable {
    /// An empty table with these backoff periods.
    pub fn new(backoff: BackoffConfig) -> Self {
        PeerTable {
            peers: BTreeMap::new(),
            departed: BTreeMap::new(),
            departures: 0,
            backoff,
            check_claims: true,
            location_interval: LOCATION_INTERVAL,
        }
    }

    /// Turns the checks of peers' claims on or off (see `NodeConfig::check_claims`).
    pub fn set_check_claims(&mut self, on: bool) {
        self.check_claims = on;
    }

    /// Sets the shortest time between two accepted location changes of one peer. The node
    /// passes [`claim_interval`] of its own swap interval: friends run the same software
    /// and usually the same settings, and a test darknet swapping every 50 ms must not see
    /// its peers' locations a second late (swap decisions on stale locations go wrong).
    pub fn set_location_interval(&mut self, every: Duration) {
        self.location_interval = every;
    }

    /// Adds a peer. If it is already present only its location changes: its load, backoff
    /// and forgery record stay. A peer that departed comes back with its record (its
    /// requests still in flight, backoff and penalties), new location and no FOAF list.
    pub fn insert(&mut self, peer: PeerId, location: Location, link: LinkHtl) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.location = location;
            return;
        }
        if let Some((_, mut entry)) = self.departed.remove(&peer) {
            entry.location = location;
            entry.link = link;
            // A location claim held from the old connection is stale; the rate limit
            // (`moved_at`) stays, so reconnecting does not reset it.
            entry.pending = None;
            self.peers.insert(peer, entry);
            return;
        }
        let entry = PeerEntry {
            location,
            foaf: Vec::new(),
            link,
            in_flight: 0,
            backoff_until: None,
            backoff_next: self.backoff.initial,
            forgeries: 0,
            false_answers: 0,
            moved_at: None,
            pending: None,
            silences: 0,
        };
        self.peers.insert(peer, entry);
    }

    /// Removes a peer; returns whether it was there. Its record is remembered (see the
    /// module doc).
    pub fn remove(&mut self, peer: PeerId) -> bool {
        let Some(mut entry) = self.peers.remove(&peer) else { return false };
        entry.foaf = Vec::new();
        self.departures += 1;
        self.departed.insert(peer, (self.departures, entry));
        if self.departed.len() > MAX_DEPARTED {
            let oldest = self.departed.iter().min_by_key(|(_, (seq, _))| *seq).map(|(id, _)| *id);
            if let Some(id) = oldest {
                self.departed.remove(&id);
            }
        }
        true
    }

    /// A request from `peer` ended: one fewer in flight, whether the peer is connected or
    /// departed (requests of a departed peer run on, orphaned, and still count against it).
    pub fn release(&mut self, peer: PeerId) {
        let entry = match self.peers.get_mut(&peer) {
            Some(p) => Some(p),
            None => self.departed.get_mut(&peer).map(|(_, p)| p),
        };
        if let Some(p) = entry {
            p.in_flight = p.in_flight.saturating_sub(1);
        }
    }

    /// How many departed peers' records are remembered.
    pub fn departed_len(&self) -> usize {
        self.departed.len()
    }

    /// The entry of `peer`.
    pub fn get(&self, peer: PeerId) -> Option<&PeerEntry> {
        self.peers.get(&peer)
    }

    /// The entry of `peer`, mutably.
    pub fn get_mut(&mut self, peer: PeerId) -> Option<&mut PeerEntry> {
        self.peers.get_mut(&peer)
    }

    /// Number of peers.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// Whether there are no peers.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// Peer ids in ascending order.
    pub fn ids(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.peers.keys().copied()
    }

    /// Peers' own locations, in peer id order (what this node advertises as FOAF).
    pub fn locations(&self) -> Vec<Location> {
        self.peers.values().map(|p| p.location).collect()
    }

    /// Records a peer's `LocationUpdate` at `now`. Entries equal to `own` (this node itself,
    /// as the peer's neighbour) are dropped: they would make the peer look as close as we
    /// are. The caller has already judged the list's plausibility (`swap::plausible_neighbours`;
    /// an implausible list arrives empty). With claims checked, a location change sooner
    /// than [`LOCATION_INTERVAL`] after the last one is held (see [`PeerTable::apply_pending`]).
    pub fn update_location(
        &mut self,
        peer: PeerId,
        location: Location,
        neighbours: &[Location],
        own: Location,
        now: Instant,
    ) -> ClaimOutcome {
        let check = self.check_claims;
        let Some(p) = self.peers.get_mut(&peer) else { return ClaimOutcome::default() };
        let mut out = ClaimOutcome::default();
        p.foaf.clear();
        p.foaf.extend(neighbours.iter().copied().filter(|l| *l != own).take(MAX_FOAF));
        if location == p.location {
            p.pending = None;
        } else if check && p.moved_at.is_some_and(|t| now < t + self.location_interval) {
            p.pending = Some(location);
            out.deferred = true;
        } else {
            p.location = location;
            p.moved_at = Some(now);
            p.pending = None;
            out.moved = true;
        }
        out
    }

    /// Applies held location changes whose interval is over at `now`; returns whether any
    /// peer moved.
    pub fn apply_pending(&mut self, now: Instant) -> bool {
        let mut moved = false;
        let every = self.location_interval;
        for p in self.peers.values_mut() {
            let due = p.moved_at.is_none_or(|t| now >= t + every);
            if let (Some(l), true) = (p.pending, due) {
                p.location = l;
                p.moved_at = Some(now);
                p.pending = None;
                moved = true;
            }
        }
        moved
    }

    /// When the earliest held location change may be applied.
    pub fn next_pending(&self) -> Option<Instant> {
        self.peers
            .values()
            .filter(|p| p.pending.is_some())
            .filter_map(|p| p.moved_at.map(|t| t + self.location_interval))
            .min()
    }

    /// Whether a node at `own` is a sink for `target`: strictly closer to it than every
    /// peer's own location (FOAF locations do not count: they are not our neighbours). With
    /// claims checked, a peer within [`NEAR_EQUAL`] of `own` does not count either.
    pub fn is_sink(&self, own: Location, target: Location) -> bool {
        let d = own.distance(target);
        let near = if self.check_claims { NEAR_EQUAL } else { 0 };
        self.peers.values().filter(|p| p.location.distance(own) >= near).all(|p| p.location.distance(target) > d)
    }

    /// How many peers are at least as close to `target` as a node at `own` (counted as
    /// [`PeerTable::is_sink`] does: a node is a sink for `target` when this is 0). The
    /// wider rule for top blocks keeps one where this is below `top_sinks` (issue 20).
    pub fn closer_count(&self, own: Location, target: Location) -> usize {
        let d = own.distance(target);
        let near = if self.check_claims { NEAR_EQUAL } else { 0 };
        self.peers
            .values()
            .filter(|p| p.location.distance(own) >= near)
            .filter(|p| p.location.distance(target) <= d)
            .count()
    }

    /// [`PeerTable::closer_count`] without `except`: whether a node would be a sink for
    /// `target` with that peer away (steady backups, issue 20: the backup of a block
    /// whose holder is rarely online is judged without the holder).
    pub fn closer_count_except(&self, own: Location, target: Location, except: PeerId) -> usize {
        let d = own.distance(target);
        let near = if self.check_claims { NEAR_EQUAL } else { 0 };
        self.peers
            .iter()
            .filter(|(&id, _)| id != except)
            .map(|(_, p)| p)
            .filter(|p| p.location.distance(own) >= near)
            .filter(|p| p.location.distance(target) <= d)
            .count()
    }

    /// All peers ranked for `target` at `now`: not backed off first, then by effective
    /// distance, then by own distance (a peer whose FOAF entry is another of our peers
    /// ties with that peer; the direct one goes first), then by id.
    pub fn ranked(&self, target: Location, now: Instant) -> Vec<PeerId> {
        self.ranked_with(target, now, true)
    }

    /// Like [`PeerTable::ranked`]; with `foaf` false, ranks by the peers' own locations
    /// only (plain greedy routing, for comparisons in the simulator).
    pub fn ranked_with(&self, target: Location, now: Instant, foaf: bool) -> Vec<PeerId> {
        let mut v: Vec<(bool, u64, u64, PeerId)> = self
            .peers
            .iter()
            .map(|(id, p)| {
                let own = p.location.distance(target);
                (p.backed_off(now), if foaf { p.effective_distance(target) } else { own }, own, *id)
            })
            .collect();
        v.sort_unstable();
        v.into_iter().map(|(_, _, _, id)| id).collect()
    }

    /// The peer rejected with overload or timed out: back it off, doubling the period.
    pub fn back_off(&mut self, peer: PeerId, now: Instant) {
        let max = self.backoff.max;
        if let Some(p) = self.peers.get_mut(&peer) {
            let len = p.backoff_next;
            p.backoff_until = Some(later(p.backoff_until, now + len));
            p.backoff_next = (len * 2).min(max);
        }
    }

    /// The peer sent a forged or corrupted block: count it and back it off for long.
    pub fn penalise_forgery(&mut self, peer: PeerId, now: Instant) {
        let len = self.backoff.forgery;
        if let Some(p) = self.peers.get_mut(&peer) {
            p.forgeries += 1;
            p.backoff_until = Some(later(p.backoff_until, now + len));
        }
    }

    /// The peer gave an answer no honest node gives (a black hole's "not found" to an
    /// insert): count it and back it off as long as a forger.
    pub fn penalise_false_answer(&mut self, peer: PeerId, now: Instant) {
        let len = self.backoff.forgery;
        if let Some(p) = self.peers.get_mut(&peer) {
            p.false_answers += 1;
            p.backoff_until = Some(later(p.backoff_until, now + len));
        }
    }

    /// The peer accepted a request and then let it time out: count it and back it off as
    /// long as a forger (issue 14, "Accepted, then silence").
    pub fn penalise_silence(&mut self, peer: PeerId, now: Instant) {
        let len = self.backoff.forgery;
        if let Some(p) = self.peers.get_mut(&peer) {
            p.silences += 1;
            p.backoff_until = Some(later(p.backoff_until, now + len));
        }
    }

    /// The peer answered a request after we had penalised it as silent there: it was slow,
    /// not silent. Uncount that silence and, unless it is backed off for something else
    /// too (another silence, a forgery, a false answer), replace the forger-length backoff
    /// by an ordinary timeout's, from now.
    pub fn excuse_silence(&mut self, peer: PeerId, now: Instant) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.silences = p.silences.saturating_sub(1);
            if p.silences == 0 && p.forgeries == 0 && p.false_answers == 0 {
                p.backoff_until = Some(now + p.backoff_next);
            }
        }
    }

    /// The peer answered normally: its next backoff starts from the initial period again.
    pub fn reset_backoff(&mut self, peer: PeerId) {
        let initial = self.backoff.initial;
        if let Some(p) = self.peers.get_mut(&peer) {
            p.backoff_next = initial;
        }
    }
}

fn later(a: Option<Instant>, b: Instant) -> Instant {
    a.map_or(b, |a| a.max(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINK: LinkHtl = LinkHtl { decrement_at_max: true, decrement_at_min: true };

    fn table(locs: &[f64]) -> PeerTable {
        let mut t = PeerTable::new(BackoffConfig::default());
        for (i, l) in locs.iter().enumerate() {
            t.insert(PeerId(i as u64), Location::from_f64(*l), LINK);
        }
        t
    }

    #[test]
    fn ranks_by_distance_then_backoff() {
        let now = Instant::now();
        let mut t = table(&[0.1, 0.5, 0.45, 0.9]);
        let key = Location::from_f64(0.48);
        assert_eq!(t.ranked(key, now), vec![PeerId(1), PeerId(2), PeerId(0), PeerId(3)]);
        t.back_off(PeerId(1), now);
        assert_eq!(t.ranked(key, now), vec![PeerId(2), PeerId(0), PeerId(3), PeerId(1)]);
        // The backoff ends after its period.
        assert_eq!(t.ranked(key, now + Duration::from_secs(1))[0], PeerId(1));
    }

    #[test]
    fn foaf_makes_a_peer_closer_and_own_location_is_ignored() {
        let now = Instant::now();
        let own = Location::from_f64(0.0);
        let mut t = table(&[0.1, 0.3]);
        let key = Location::from_f64(0.45);
        assert_eq!(t.ranked(key, now), vec![PeerId(1), PeerId(0)]);
        t.update_location(PeerId(0), Location::from_f64(0.1), &[own, Location::from_f64(0.44)], own, now);
        assert_eq!(t.get(PeerId(0)).map(|p| p.foaf.len()), Some(1));
        assert_eq!(t.ranked(key, now), vec![PeerId(0), PeerId(1)]);
    }

    #[test]
    fn backoff_doubles_up_to_max_and_resets() {
        let now = Instant::now();
        let mut t = table(&[0.1]);
        let p = PeerId(0);
        for expect in [1u64, 2, 4, 8] {
            assert_eq!(t.get(p).map(|e| e.backoff_next), Some(Duration::from_secs(expect)));
            t.back_off(p, now);
        }
        for _ in 0..20 {
            t.back_off(p, now);
        }
        assert_eq!(t.get(p).map(|e| e.backoff_next), Some(Duration::from_secs(180)));
        t.reset_backoff(p);
        assert_eq!(t.get(p).map(|e| e.backoff_next), Some(Duration::from_secs(1)));
        t.penalise_forgery(p, now);
        assert!(t.get(p).is_some_and(|e| e.backed_off(now + Duration::from_secs(599)) && e.forgeries == 1));
    }

    /// A reconnect restores the record: in-flight count, backoff, penalties; the FOAF list
    /// and location are the new connection's. The memory of departures is bounded.
    #[test]
    fn records_survive_a_reconnect_and_are_bounded() {
        let now = Instant::now();
        let mut t = table(&[0.1, 0.2]);
        let p = PeerId(0);
        t.update_location(p, Location::from_f64(0.1), &[Location::from_f64(0.7)], Location::from_f64(0.5), now);
        t.penalise_silence(p, now);
        if let Some(e) = t.get_mut(p) {
            e.in_flight = 5;
        }
        assert!(t.remove(p) && !t.remove(p));
        t.release(p);
        t.insert(p, Location::from_f64(0.3), LINK);
        let e = t.get(p).cloned().unwrap();
        assert_eq!((e.in_flight, e.silences, e.foaf.len()), (4, 1, 0));
        assert!(e.backed_off(now + Duration::from_secs(599)));
        assert_eq!(e.location, Location::from_f64(0.3));
        for i in 10..(10 + MAX_DEPARTED as u64 + 5) {
            t.insert(PeerId(i), Location::from_f64(0.4), LINK);
            t.remove(PeerId(i));
        }
        assert_eq!(t.departed_len(), MAX_DEPARTED);
    }

    #[test]
    fn sink_ignores_foaf() {
        let own = Location::from_f64(0.5);
        let mut t = table(&[0.4, 0.7]);
        assert!(t.is_sink(own, Location::from_f64(0.52)));
        assert!(!t.is_sink(own, Location::from_f64(0.44)));
        t.update_location(PeerId(0), Location::from_f64(0.4), &[Location::from_f64(0.52)], own, Instant::now());
        assert!(t.is_sink(own, Location::from_f64(0.52)));
        assert!(PeerTable::default().is_sink(own, Location::from_f64(0.9)));
    }

    /// The location liar: a peer at our own location plus a hair is closer than us to half
    /// of every key; without the near-equal rule we are a sink for nothing it is next to.
    #[test]
    fn a_peer_at_our_location_does_not_deny_sinkhood() {
        let own = Location::from_f64(0.5);
        for check in [true, false] {
            let mut t = table(&[0.4, 0.7]);
            t.set_check_claims(check);
            t.update_location(PeerId(1), own, &[], own, Instant::now());
            // Keys in [0.4505, 0.5405): all ours but for the liar.
            let sinks = (0..1000).filter(|i| t.is_sink(own, Location::from_f64(0.4505 + f64::from(*i) * 9e-5))).count();
            assert_eq!(sinks, if check { 1000 } else { 0 });
        }
    }

    #[test]
    fn location_changes_are_rate_limited_and_the_last_claim_wins() {
        let own = Location::from_f64(0.5);
        let now = Instant::now();
        let mut t = table(&[0.4]);
        let p = PeerId(0);
        assert!(t.update_location(p, Location::from_f64(0.41), &[], own, now).moved);
        for i in 0..100 {
            let o = t.update_location(p, Location::from_f64(0.1 + f64::from(i) * 1e-3), &[], own, now);
            assert!(o.deferred && !o.moved);
        }
        assert_eq!(t.get(p).map(|e| e.location), Some(Location::from_f64(0.41)));
        assert_eq!(t.next_pending(), Some(now + LOCATION_INTERVAL));
        assert!(!t.apply_pending(now + LOCATION_INTERVAL / 2));
        assert!(t.apply_pending(now + LOCATION_INTERVAL));
        assert_eq!(t.get(p).map(|e| e.location), Some(Location::from_f64(0.1 + 99.0 * 1e-3)));
        assert_eq!(t.next_pending(), None);
        // Unchecked, every claim is taken at once.
        t.set_check_claims(false);
        assert!(t.update_location(p, Location::from_f64(0.3), &[], own, now).moved);
    }
}
