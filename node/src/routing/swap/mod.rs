//! Location swapping (Sandberg 2006), as a value with its own small state machine.
//!
//! A darknet's links are fixed by who trusts whom; swapping moves *locations* (never links)
//! so the graph becomes a routable small world. A [`Swapper`] is one node's swapping state:
//! at most one swap of its own at a time (as initiator or responder) plus the walks it
//! relays. It sends nothing itself: every method appends messages to `out` and the node
//! transmits them; the caller applies an [`Outcome`].
//!
//! Protocol (link-local ids, like requests):
//! 1. The initiator A draws a random share, builds its [`Reveal`] (location, neighbours'
//!    locations, share) and sends `SwapRequest { id, htl, commitment = H(reveal) }` to a
//!    random peer. HTL is drawn from [`WALK_HTL_MIN`]..=[`WALK_HTL_MAX`], so a neighbour
//!    cannot tell from it who started the walk.
//! 2. Each hop decrements the HTL and forwards to a random peer (not the one it came from)
//!    under a fresh id, remembering the pair of links. At HTL 0 the node is the responder
//!    B: if busy it answers `SwapRejected`, else `SwapReply { commitment = H(its reveal) }`.
//! 3. A receives B's commitment and sends its `SwapReveal`; B checks it against A's
//!    commitment and sends its own reveal; A checks B's. A reveal that does not match its
//!    commitment aborts (`SwapRejected`). Neither side sees the other's values before it
//!    is committed to its own, so neither can tailor its answer.
//! 4. Both decide with the same symmetric rule ([`decide`]): swap when the product of
//!    distances to neighbours shrinks, otherwise with probability (old/new)^(1/T), the coin being
//!    the XOR of both shares. Both reveals must also pass the plausibility check
//!    ([`plausible`], the Pitch Black mitigation, docs/routing.md) when it is on.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::Rng;
use sha2::{Digest, Sha256};

use crate::id::PeerId;
use crate::id::{Htl, RequestId};
use crate::location::Location;
use crate::wire::message::Message;

mod rule;

pub use rule::{
    decide, plausible, plausible_neighbours, temperature, too_even, Decision, COOLING_SWAPS, EVENNESS_MIN_POINTS, HEAT,
    MAX_TEMPERATURE,
};

/// Shortest random walk a swap request takes.
pub const WALK_HTL_MIN: Htl = 6;
/// Longest random walk (also the cap on a received HTL).
pub const WALK_HTL_MAX: Htl = 10;

/// Swapping parameters (part of `NodeConfig`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SwapConfig {
    /// How long a swap (own or relayed) may take before it is forgotten.
    pub timeout: Duration,
    /// Reject swaps whose partner claims neighbours implausibly far from its location
    /// (the Pitch Black mitigation; see [`plausible`]).
    pub check_neighbours: bool,
    /// Probability, at each periodic swap attempt, of taking a fresh random location
    /// instead (Zoethout/Schiller location resets; lets a poisoned network recover).
    pub reset_probability: f64,
}

impl Default for SwapConfig {
    fn default() -> Self {
        SwapConfig { timeout: Duration::from_secs(30), check_neighbours: true, reset_probability: 0.0 }
    }
}

/// What one side reveals: its location, its neighbours' locations, its swap age and its
/// random share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reveal {
    /// The sender's location.
    pub location: Location,
    /// Its neighbours' locations.
    pub neighbours: Vec<Location>,
    /// Swaps the sender has started (its age, for the temperature).
    pub age: u32,
    /// Its random share.
    pub random: [u8; 32],
}

impl Reveal {
    /// A node's fresh reveal: its location and neighbours' locations, its swap age as
    /// revealed ([`revealed_age`]: capped) and a random share drawn from `rng` (one draw).
    /// [`Swapper`] and the simulator's direct swap rounds both build reveals here.
    pub fn new(location: Location, neighbours: Vec<Location>, age: u32, rng: &mut impl Rng) -> Self {
        Reveal { location, neighbours, age: revealed_age(age), random: rng.gen() }
    }

    /// SHA-256 commitment to this reveal (domain-separated, length-prefixed).
    pub fn commitment(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"pamphlet/swap-commit/v1");
        h.update(self.location.0.to_be_bytes());
        h.update((self.neighbours.len() as u64).to_be_bytes());
        for n in &self.neighbours {
            h.update(n.0.to_be_bytes());
        }
        h.update(self.age.to_be_bytes());
        h.update(self.random);
        h.finalize().into()
    }

    /// The message that opens the commitment.
    pub fn message(&self, id: RequestId) -> Message {
        Message::SwapReveal {
            id,
            location: self.location,
            neighbours: self.neighbours.clone(),
            age: self.age,
            random: self.random,
        }
    }
}

/// How a swap of this node's ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Take this location (the partner's).
    Swapped(Location),
    /// The swap completed but the rule said keep.
    Kept,
    /// The swap ended without a decision.
    Aborted(Abort),
}

/// Why a swap ended without a decision (counted separately, to see what limits swapping).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Abort {
    /// The partner (or a relay) answered `SwapRejected`: busy with a swap of its own, a
    /// dead-end walk, or our reveal failed its check there.
    Refused,
    /// The partner's reveal did not open its commitment.
    BadReveal,
    /// A reveal failed the plausibility check ([`plausible`]).
    Implausible,
    /// No answer before the deadline.
    TimedOut,
    /// The link the swap ran on went away.
    PeerGone,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Initiator,
    Responder,
}

#[derive(Debug)]
struct Session {
    role: Role,
    /// The link the swap runs on at this node, and its id.
    peer: PeerId,
    id: RequestId,
    mine: Reveal,
    /// The partner's commitment, once known.
    theirs: Option<[u8; 32]>,
    deadline: Instant,
}

#[derive(Clone, Copy, Debug)]
struct Relay {
    peer: PeerId,
    id: RequestId,
    deadline: Instant,
    reveals: u8,
    /// This is the side the walk came from (each relayed walk has one such entry, keyed
    /// by the upstream peer): what [`MAX_RELAYS_PER_PEER`] counts.
    upstream: bool,
}

/// The most relayed walks in all ([`Swapper::relays`]): bounds the table's memory.
pub const MAX_RELAYS: usize = 1024;

/// The most walks one peer may have relayed through this node at once. Far above what an
/// honest friend needs (each node starts one swap at a time, and a friend relays others'
/// walks at the same low rate), and far below [`MAX_RELAYS`], so one friend sending walk
/// after walk can neither fill the table nor, past it, make every further walk end here
/// and hold this node's one swap session: its extra walks are rejected.
pub const MAX_RELAYS_PER_PEER: usize = 64;

/// One node's swapping state.
#[derive(Debug)]
pub struct Swapper {
    config: SwapConfig,
    session: Option<Session>,
    /// Relayed walks: each side's (peer, id) maps to the other side's.
    relays: BTreeMap<(PeerId, RequestId), Relay>,
    /// Swaps this node has started (saturating): its age for [`temperature`].
    age: u32,
}

impl Swapper {
    /// No swap in progress.
    pub fn new(config: SwapConfig) -> Self {
        Swapper { config, session: None, relays: BTreeMap::new(), age: 0 }
    }

    /// Swaps this node has started: its age for [`temperature`] (kept across restarts).
    pub fn age(&self) -> u32 {
        self.age
    }

    /// Sets the age (a restarted node continues where it stopped).
    pub fn set_age(&mut self, age: u32) {
        self.age = age;
    }

    /// The parameters.
    pub fn config(&self) -> &SwapConfig {
        &self.config
    }

    /// Whether a swap of this node's own is in progress.
    pub fn busy(&self) -> bool {
        self.session.is_some()
    }

    /// Walks being relayed.
    pub fn relays(&self) -> usize {
        self.relays.len() / 2
    }

    /// The earliest deadline of anything in progress.
    pub fn next_deadline(&self) -> Option<Instant> {
        let s = self.session.as_ref().map(|s| s.deadline);
        let r = self.relays.values().map(|r| r.deadline).min();
        match (s, r) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Starts a swap from this node. Returns false (and sends nothing) if one is already in
    /// progress or there is no peer.
    pub fn start(
        &mut self,
        now: Instant,
        rng: &mut impl Rng,
        location: Location,
        neighbours: Vec<Location>,
        peers: &[PeerId],
        out: &mut Vec<(PeerId, Message)>,
    ) -> bool {
        if self.session.is_some() {
            return false;
        }
        let Some(&peer) = peers.choose(rng) else { return false };
        self.age = self.age.saturating_add(1);
        let mine = Reveal::new(location, neighbours, self.age, rng);
        let id = rng.gen();
        let htl = walk_htl(rng);
        out.push((peer, Message::SwapRequest { id, htl, commitment: mine.commitment() }));
        self.session =
            Some(Session { role: Role::Initiator, peer, id, mine, theirs: None, deadline: now + self.config.timeout });
        true
    }

    /// A `SwapRequest` from `from`: relay it on, or answer as the walk's end.
    #[allow(clippy::too_many_arguments)]
    pub fn on_request(
        &mut self,
        now: Instant,
        rng: &mut impl Rng,
        (from, id): (PeerId, RequestId),
        htl: Htl,
        commitment: [u8; 32],
        (location, neighbours): (Location, Vec<Location>),
        peers: &[PeerId],
        out: &mut Vec<(PeerId, Message)>,
    ) {
        // Relaying is bounded per peer (past it the walk is refused) and in all (past it
        // this node ends the walk itself).
        let step = walk_step(rng, htl, from, peers);
        if step.is_some()
            && self.relays.iter().filter(|(k, r)| k.0 == from && r.upstream).count() >= MAX_RELAYS_PER_PEER
        {
            out.push((from, Message::SwapRejected { id }));
            return;
        }
        let step = step.filter(|_| self.relays.len() < 2 * MAX_RELAYS);
        if let Some((next, left)) = step {
            let out_id = rng.gen();
            let deadline = now + self.config.timeout;
            self.relays.insert((from, id), Relay { peer: next, id: out_id, deadline, reveals: 0, upstream: true });
            self.relays.insert((next, out_id), Relay { peer: from, id, deadline, reveals: 0, upstream: false });
            out.push((next, Message::SwapRequest { id: out_id, htl: left, commitment }));
            return;
        }
        if self.session.is_some() {
            out.push((from, Message::SwapRejected { id }));
            return;
        }
        let mine = Reveal::new(location, neighbours, self.age, rng);
        out.push((from, Message::SwapReply { id, commitment: mine.commitment() }));
        self.session = Some(Session {
            role: Role::Responder,
            peer: from,
            id,
            mine,
            theirs: Some(commitment),
            deadline: now + self.config.timeout,
        });
    }

    /// A `SwapReply`: relay it back, or (initiator) reveal.
    pub fn on_reply(
        &mut self,
        (from, id): (PeerId, RequestId),
        commitment: [u8; 32],
        out: &mut Vec<(PeerId, Message)>,
    ) {
        if let Some(r) = self.relays.get(&(from, id)) {
            out.push((r.peer, Message::SwapReply { id: r.id, commitment }));
            return;
        }
        if let Some(s) = self.session.as_mut() {
            if s.role == Role::Initiator && s.peer == from && s.id == id && s.theirs.is_none() {
                s.theirs = Some(commitment);
                out.push((from, s.mine.message(id)));
            }
        }
    }

    /// A `SwapReveal`: relay it, or check it and decide.
    pub fn on_reveal(
        &mut self,
        (from, id): (PeerId, RequestId),
        theirs: Reveal,
        out: &mut Vec<(PeerId, Message)>,
    ) -> Option<Outcome> {
        if let Some(r) = self.relays.get_mut(&(from, id)) {
            r.reveals += 1;
            let (peer, out_id, done) = (r.peer, r.id, r.reveals);
            out.push((peer, theirs.message(out_id)));
            if let Some(o) = self.relays.get_mut(&(peer, out_id)) {
                o.reveals = done.max(o.reveals + 1);
            }
            if done >= 2 || self.relays.get(&(peer, out_id)).is_some_and(|o| o.reveals >= 2) {
                self.relays.remove(&(from, id));
                self.relays.remove(&(peer, out_id));
            }
            return None;
        }
        let s = self.session.as_ref()?;
        if s.peer != from || s.id != id {
            return None;
        }
        let s = self.session.take()?;
        if s.theirs != Some(theirs.commitment()) {
            out.push((from, Message::SwapRejected { id }));
            return Some(Outcome::Aborted(Abort::BadReveal));
        }
        let (a, b) = match s.role {
            Role::Initiator => (&s.mine, &theirs),
            Role::Responder => {
                out.push((from, s.mine.message(id)));
                (&theirs, &s.mine)
            }
        };
        Some(match decide(a, b, self.config.check_neighbours) {
            Decision::Swap => Outcome::Swapped(theirs.location),
            Decision::Keep => Outcome::Kept,
            Decision::Implausible => Outcome::Aborted(Abort::Implausible),
        })
    }

    /// A `SwapRejected`: relay it, or abort our swap.
    pub fn on_rejected(
        &mut self,
        (from, id): (PeerId, RequestId),
        out: &mut Vec<(PeerId, Message)>,
    ) -> Option<Outcome> {
        if let Some(r) = self.relays.remove(&(from, id)) {
            self.relays.remove(&(r.peer, r.id));
            out.push((r.peer, Message::SwapRejected { id: r.id }));
            return None;
        }
        let s = self.session.as_ref()?;
        if s.peer == from && s.id == id {
            self.session = None;
            return Some(Outcome::Aborted(Abort::Refused));
        }
        None
    }

    /// A peer went away: walks through it and our swap with it end.
    pub fn on_peer_removed(&mut self, peer: PeerId) -> Option<Outcome> {
        let dead: Vec<(PeerId, RequestId)> =
            self.relays.iter().filter(|(k, r)| k.0 == peer || r.peer == peer).map(|(k, _)| *k).collect();
        for k in dead {
            self.relays.remove(&k);
        }
        if self.session.as_ref().is_some_and(|s| s.peer == peer) {
            self.session = None;
            return Some(Outcome::Aborted(Abort::PeerGone));
        }
        None
    }

    /// Forgets everything past its deadline; returns Aborted if our own swap timed out.
    pub fn on_timeout(&mut self, now: Instant) -> Option<Outcome> {
        self.relays.retain(|_, r| r.deadline > now);
        if self.session.as_ref().is_some_and(|s| s.deadline <= now) {
            self.session = None;
            return Some(Outcome::Aborted(Abort::TimedOut));
        }
        None
    }
}

/// The age a reveal carries for a node of swap age `age`: capped at [`COOLING_SWAPS`], past
/// which the temperature no longer depends on it, so a settled node says only "settled",
/// not how long it has run.
pub fn revealed_age(age: u32) -> u32 {
    age.min(COOLING_SWAPS)
}

/// The HTL a new swap walk starts with: uniform in [`WALK_HTL_MIN`]`..=`[`WALK_HTL_MAX`]
/// (one draw), so a neighbour cannot tell from it who started the walk.
pub fn walk_htl(rng: &mut impl Rng) -> Htl {
    rng.gen_range(WALK_HTL_MIN..=WALK_HTL_MAX)
}

/// One step of a swap walk, at a node that received it with `htl` from `from` and has
/// `peers`: `Some((next, htl_left))` to forward it to a random peer other than `from`
/// (one draw), or `None` when the walk ends here (no hops left, or a dead end: no other
/// peer; no draw). The protocol ([`Swapper::on_request`], on `PeerId`s) and the
/// simulator's direct swap rounds (on node indices) both walk with it, so the two walks
/// cannot drift apart.
pub fn walk_step<P: Copy + PartialEq>(rng: &mut impl Rng, htl: Htl, from: P, peers: &[P]) -> Option<(P, Htl)> {
    let left = htl.min(WALK_HTL_MAX).saturating_sub(1);
    if left == 0 {
        return None;
    }
    let others: Vec<P> = peers.iter().copied().filter(|p| *p != from).collect();
    others.choose(rng).map(|&next| (next, left))
}

#[cfg(test)]
mod tests;
