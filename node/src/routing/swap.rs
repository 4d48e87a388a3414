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
use crate::routing::peers::MAX_FOAF;
use crate::wire::message::Message;

/// Shortest random walk a swap request takes.
pub const WALK_HTL_MIN: Htl = 6;
/// Longest random walk (also the cap on a received HTL).
pub const WALK_HTL_MAX: Htl = 10;

/// The Metropolis temperature of the swap rule: a swap that makes the product of
/// neighbour distances grow by a factor `r` is still taken with probability `r^(-1/T)`,
/// with `T = temperature(k, age)` for the `k` neighbours both partners reveal together and
/// the older partner's swap age (swaps it has started).
///
/// Sandberg's rule is `T = 1` (the chain then samples the posterior of locations given a
/// Kleinberg graph). From random locations that chain gets stuck in large networks: the
/// simulator and a centralised replay of the same chain agree that the ring wraps the
/// circle several times and stays locally disordered for hundreds of rounds. Two things
/// help, both measured (docs/benchmarks.md):
///
/// - A hotter chain crosses those barriers faster and still holds a converged network where
///   it is. But the product has one factor per link, so the same `T` is far hotter for
///   partners with few friends: at 48 nodes of degree 3, `T = 2` left links as long as
///   random ones. Hence the base temperature grows with the links the swap weighs: `k / 12`,
///   between 1 (Sandberg's rule, small degrees) and [`MAX_TEMPERATURE`] (two partners of
///   degree 12 or more).
/// - Annealing: young nodes swap [`HEAT`] times hotter, cooling linearly to the base over
///   their first [`COOLING_SWAPS`] swaps. A new darknet, whose nodes are all young, first
///   orders itself at large scale (the ring stops wrapping the circle) and then locally;
///   at a constant temperature the local order freezes first and traps the windings. The
///   older partner's age counts, so a newcomer joining a settled network swaps cold, and a
///   peer that lies about its age to make its partners hot gains nothing.
///
/// Both ends see both reveals, so they compute the same `T` and still decide alike.
pub fn temperature(links: usize, age: u32) -> f64 {
    let base = (links as f64 / 12.0).clamp(1.0, MAX_TEMPERATURE);
    let warm = (1.0 - f64::from(age) / f64::from(COOLING_SWAPS)).max(0.0);
    base * (1.0 + (HEAT - 1.0) * warm)
}

/// How much hotter than its base temperature a brand-new node swaps (see [`temperature`]).
pub const HEAT: f64 = 4.0;

/// Swaps (started by a node) over which its extra heat falls to none (see [`temperature`]).
pub const COOLING_SWAPS: u32 = 300;

/// The hottest base temperature (see [`temperature`]; [`HEAT`] multiplies it while young).
pub const MAX_TEMPERATURE: f64 = 2.0;

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
}

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
        // Relaying is bounded; past the bound this node ends the walk itself.
        let step = if self.relays.len() < 2 * 1024 { walk_step(rng, htl, from, peers) } else { None };
        if let Some((next, left)) = step {
            let out_id = rng.gen();
            let deadline = now + self.config.timeout;
            self.relays.insert((from, id), Relay { peer: next, id: out_id, deadline, reveals: 0 });
            self.relays.insert((next, out_id), Relay { peer: from, id, deadline, reveals: 0 });
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

/// What [`decide`] concluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Exchange locations.
    Swap,
    /// Keep them.
    Keep,
    /// One side's claims fail the plausibility check.
    Implausible,
}

/// Sum of ln(distance) from `at` to `neighbours`, with `moved` (the partner's location,
/// when the partner is a neighbour) replaced by `to` (where the partner will be).
fn log_product(at: Location, neighbours: &[Location], moved: Option<(Location, Location)>) -> f64 {
    neighbours
        .iter()
        .map(|&n| {
            let n = match moved {
                Some((from, to)) if n == from => to,
                _ => n,
            };
            (at.distance(n).max(1) as f64).ln()
        })
        .sum()
}

/// The swap rule, the same at both ends (`a` is the initiator's reveal, `b` the
/// responder's): swap if the product of neighbour distances does not grow, else with
/// probability `(before/after)^(1/T)` with `T` from [`temperature`]; the coin is the XOR
/// of both shares.
pub fn decide(a: &Reveal, b: &Reveal, check_neighbours: bool) -> Decision {
    if check_neighbours && !(plausible(a) && plausible(b)) {
        return Decision::Implausible;
    }
    let before = log_product(a.location, &a.neighbours, None) + log_product(b.location, &b.neighbours, None);
    let after = log_product(b.location, &a.neighbours, Some((b.location, a.location)))
        + log_product(a.location, &b.neighbours, Some((a.location, b.location)));
    if after <= before {
        return Decision::Swap;
    }
    let mut coin = [0u8; 8];
    for (i, c) in coin.iter_mut().enumerate() {
        *c = a.random[i] ^ b.random[i];
    }
    let u = u64::from_be_bytes(coin) as f64 / 18_446_744_073_709_551_616.0;
    let t = temperature(a.neighbours.len() + b.neighbours.len(), a.age.max(b.age));
    if u < ((before - after) / t).exp() {
        Decision::Swap
    } else {
        Decision::Keep
    }
}

/// The Pitch Black mitigation: whether a reveal's neighbour locations are plausible.
///
/// In a darknet whose locations are uniformly random (the worst case for an honest node,
/// before any swapping) the distance from a node to a neighbour is uniform on [0, 1/2],
/// so `ln(distance)` has mean `ln(1/2) - 1` and standard deviation 1; swapping only makes
/// neighbours closer. An attacker that wants its swaps accepted must claim neighbours
/// *far* from the location it offers (Evans et al.): that makes keeping its own location
/// look costly. A reveal whose mean `ln(distance)` exceeds the uniform mean by more than
/// three standard errors (`3/sqrt(k)` for `k` neighbours) is rejected, as is one claiming
/// no neighbour or more than [`MAX_FOAF`].
pub fn plausible(r: &Reveal) -> bool {
    let k = r.neighbours.len();
    if k == 0 || k > MAX_FOAF {
        return false;
    }
    let mean = log_product(r.location, &r.neighbours, None) / k as f64 - (u64::MAX as f64).ln();
    let uniform_mean = 0.5f64.ln() - 1.0;
    mean <= uniform_mean + 3.0 / (k as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn loc(x: f64) -> Location {
        Location::from_f64(x)
    }

    fn now() -> Instant {
        Instant::now()
    }

    /// Runs a direct swap (walk of length 1 by forcing htl 1) between a and b.
    fn handshake(a_loc: f64, a_n: &[f64], b_loc: f64, b_n: &[f64], seed: u64) -> (Option<Outcome>, Option<Outcome>) {
        let t = now();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (pa, pb) = (PeerId(1), PeerId(2));
        // Settled nodes: the rule at its base temperature (annealing has its own test).
        let mut a = Swapper::new(SwapConfig::default());
        let mut b = Swapper::new(SwapConfig::default());
        a.set_age(COOLING_SWAPS);
        b.set_age(COOLING_SWAPS);
        let mut out = Vec::new();
        let an: Vec<Location> = a_n.iter().map(|&x| loc(x)).collect();
        let bn: Vec<Location> = b_n.iter().map(|&x| loc(x)).collect();
        assert!(a.start(t, &mut rng, loc(a_loc), an, &[pb], &mut out));
        let Some((_, Message::SwapRequest { id, commitment, .. })) = out.pop() else { panic!() };
        b.on_request(t, &mut rng, (pa, id), 1, commitment, (loc(b_loc), bn), &[pa], &mut out);
        let Some((_, Message::SwapReply { commitment: cb, .. })) = out.pop() else { panic!("{out:?}") };
        a.on_reply((pb, id), cb, &mut out);
        let Some((_, Message::SwapReveal { location, neighbours, age, random, .. })) = out.pop() else { panic!() };
        assert_eq!(age, COOLING_SWAPS, "a settled node reveals only that it is settled");
        assert_eq!(a.age(), COOLING_SWAPS + 1, "starting a swap ages the initiator");
        let ob = b.on_reveal((pa, id), Reveal { location, neighbours, age, random }, &mut out);
        let Some((_, Message::SwapReveal { location, neighbours, age, random, .. })) = out.pop() else { panic!() };
        assert_eq!(b.age(), COOLING_SWAPS, "answering does not age the responder");
        let oa = a.on_reveal((pb, id), Reveal { location, neighbours, age, random }, &mut out);
        assert!(!a.busy() && !b.busy());
        (oa, ob)
    }

    #[test]
    fn temperature_grows_with_the_links_weighed() {
        let old = COOLING_SWAPS;
        assert_eq!(temperature(6, old), 1.0, "two partners of degree 3: Sandberg's rule");
        assert_eq!(temperature(12, old), 1.0);
        assert_eq!(temperature(18, old), 1.5);
        assert_eq!(temperature(24, old), MAX_TEMPERATURE, "two partners of degree 12");
        assert_eq!(temperature(100, old), MAX_TEMPERATURE, "capped");
        // A mildly worsening swap, with every neighbour location repeated `copies` times
        // (which multiplies its cost). Counted over 256 coins (XOR of the shares ≈ c/256).
        let reveal = |location: f64, n: &[f64], copies: usize, random: [u8; 32]| Reveal {
            location: loc(location),
            neighbours: n.iter().cycle().take(n.len() * copies).map(|&x| loc(x)).collect(),
            age: old,
            random,
        };
        let (na, nb) = ([0.0, 0.05, 0.02], [0.3, 0.35, 0.4]);
        let accepted = |copies: usize| -> usize {
            (0..=255u8)
                .filter(|&c| {
                    let a = reveal(0.1, &na, copies, [c; 32]);
                    let b = reveal(0.105, &nb, copies, [0; 32]);
                    decide(&a, &b, false) == Decision::Swap
                })
                .count()
        };
        let a = reveal(0.1, &na, 1, [0; 32]);
        let b = reveal(0.105, &nb, 1, [0; 32]);
        let cost = log_product(b.location, &a.neighbours, None) + log_product(a.location, &b.neighbours, None)
            - log_product(a.location, &a.neighbours, None)
            - log_product(b.location, &b.neighbours, None);
        let p = (-cost).exp();
        assert!(p > 0.5 && p < 0.9, "a mild worsening: {p}");
        // 6 links: T = 1, accepted with p. 24 links: four times the cost, but T = 2, so
        // p^2 (a fixed T = 1 would give p^4).
        for (copies, want) in [(1, p), (4, p * p)] {
            let got = accepted(copies) as f64 / 256.0;
            assert!((got - want).abs() < 0.02, "{copies}: accepted {got}, expected {want}");
        }
    }

    #[test]
    fn reveals_carry_the_age_capped_at_settled() {
        let t = now();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let (pa, pb) = (PeerId(1), PeerId(2));
        let (mut a, mut b) = (Swapper::new(SwapConfig::default()), Swapper::new(SwapConfig::default()));
        b.set_age(5);
        let mut out = Vec::new();
        assert!(a.start(t, &mut rng, loc(0.1), vec![loc(0.2)], &[pb], &mut out));
        let Some((_, Message::SwapRequest { id, commitment, .. })) = out.pop() else { panic!() };
        b.on_request(t, &mut rng, (pa, id), 1, commitment, (loc(0.6), vec![loc(0.7)]), &[pa], &mut out);
        let Some((_, Message::SwapReply { commitment: cb, .. })) = out.pop() else { panic!() };
        a.on_reply((pb, id), cb, &mut out);
        let Some((_, Message::SwapReveal { location, neighbours, age, random, .. })) = out.pop() else { panic!() };
        assert_eq!(age, 1, "a new node's first swap");
        b.on_reveal((pa, id), Reveal { location, neighbours, age, random }, &mut out);
        let Some((_, Message::SwapReveal { age, .. })) = out.pop() else { panic!() };
        assert_eq!(age, 5, "the responder's own age");
        // Past the cooling, every node reveals the same age, however long it has run.
        let mut old = Swapper::new(SwapConfig::default());
        old.set_age(1_000_000);
        assert!(old.start(t, &mut rng, loc(0.1), vec![loc(0.2)], &[pb], &mut out));
        assert_eq!(old.age(), 1_000_001);
        let Some((_, Message::SwapRequest { id, .. })) = out.pop() else { panic!() };
        old.on_reply((pb, id), [0; 32], &mut out);
        let Some((_, Message::SwapReveal { age, .. })) = out.pop() else { panic!() };
        assert_eq!(age, COOLING_SWAPS);
        assert_eq!(Reveal::new(loc(0.1), vec![], 1_000_001, &mut rng).age, COOLING_SWAPS);
    }

    #[test]
    fn walk_steps_go_on_but_never_back_and_end_at_htl_or_dead_ends() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        // The last hop and a dead end end the walk without a draw.
        let mut untouched = rng.clone();
        assert_eq!(walk_step(&mut rng, 1, 7u32, &[1, 2, 3]), None);
        assert_eq!(walk_step(&mut rng, 5, 7u32, &[7]), None);
        assert_eq!(walk_step(&mut rng, 5, 7u32, &[]), None);
        assert_eq!(rng.gen::<u64>(), untouched.gen::<u64>());
        for _ in 0..200 {
            let (next, left) = walk_step(&mut rng, 200, 2u32, &[1, 2, 3]).expect("goes on");
            assert!(next == 1 || next == 3, "went back to where it came from");
            assert_eq!(left, WALK_HTL_MAX - 1, "a received HTL is capped");
            assert!((WALK_HTL_MIN..=WALK_HTL_MAX).contains(&walk_htl(&mut rng)));
        }
    }

    #[test]
    fn young_nodes_swap_hotter_and_the_older_partner_counts() {
        assert_eq!(temperature(6, 0), HEAT, "a new node of degree 3");
        assert_eq!(temperature(24, 0), HEAT * MAX_TEMPERATURE);
        assert_eq!(temperature(24, COOLING_SWAPS / 2), (1.0 + HEAT) / 2.0 * MAX_TEMPERATURE, "cools linearly");
        assert_eq!(temperature(24, COOLING_SWAPS), MAX_TEMPERATURE);
        assert_eq!(temperature(24, u32::MAX), MAX_TEMPERATURE);
        // The mild worsening of the test above, between degree-3 partners (T = 1 when
        // settled: accepted with p). Two brand-new partners take it with p^(1/HEAT); a
        // new node meeting a settled one swaps cold, whichever side is the new one.
        let reveal = |location: f64, n: &[f64], age: u32, random: [u8; 32]| Reveal {
            location: loc(location),
            neighbours: n.iter().map(|&x| loc(x)).collect(),
            age,
            random,
        };
        let (na, nb) = ([0.0, 0.05, 0.02], [0.3, 0.35, 0.4]);
        let accepted = |age_a: u32, age_b: u32| -> f64 {
            let n = (0..=255u8)
                .filter(|&c| {
                    decide(&reveal(0.1, &na, age_a, [c; 32]), &reveal(0.105, &nb, age_b, [0; 32]), false)
                        == Decision::Swap
                })
                .count();
            n as f64 / 256.0
        };
        let p = accepted(COOLING_SWAPS, COOLING_SWAPS);
        assert!(p > 0.5 && p < 0.9, "a mild worsening: {p}");
        let hot = p.powf(1.0 / HEAT);
        assert!((accepted(0, 0) - hot).abs() < 0.02, "two new nodes: {} against {hot}", accepted(0, 0));
        assert!((accepted(0, COOLING_SWAPS) - p).abs() < 0.01, "the settled partner's age counts");
        assert!((accepted(COOLING_SWAPS, 0) - p).abs() < 0.01, "either way round");
    }

    #[test]
    fn misplaced_pair_swaps() {
        // a sits among b's neighbours and b among a's: swapping shortens every link.
        let (oa, ob) = handshake(0.1, &[0.58, 0.6, 0.62], 0.6, &[0.08, 0.1, 0.12], 1);
        assert_eq!(oa, Some(Outcome::Swapped(loc(0.6))));
        assert_eq!(ob, Some(Outcome::Swapped(loc(0.1))));
    }

    #[test]
    fn both_sides_always_agree() {
        for seed in 0..200 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let an: Vec<f64> = (0..4).map(|_| rng.gen()).collect();
            let bn: Vec<f64> = (0..4).map(|_| rng.gen()).collect();
            let (oa, ob) = handshake(rng.gen(), &an, rng.gen(), &bn, seed);
            match (oa, ob) {
                (Some(Outcome::Swapped(_)), Some(Outcome::Swapped(_))) | (Some(Outcome::Kept), Some(Outcome::Kept)) => {
                }
                (Some(Outcome::Aborted(_)), Some(Outcome::Aborted(_))) => {}
                other => panic!("seed {seed}: sides disagree: {other:?}"),
            }
        }
    }

    #[test]
    fn well_placed_pair_mostly_keeps() {
        let mut kept = 0;
        for seed in 0..100 {
            let (oa, _) = handshake(0.1, &[0.09, 0.11, 0.12], 0.6, &[0.59, 0.61, 0.62], seed);
            kept += usize::from(oa == Some(Outcome::Kept));
        }
        assert!(kept > 95, "kept {kept}");
    }

    #[test]
    fn bad_reveal_aborts() {
        let t = now();
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let (pa, pb) = (PeerId(1), PeerId(2));
        let mut b = Swapper::new(SwapConfig::default());
        let mut out = Vec::new();
        let honest = Reveal { location: loc(0.3), neighbours: vec![loc(0.31)], age: 0, random: [1; 32] };
        b.on_request(t, &mut rng, (pa, 5), 1, honest.commitment(), (loc(0.5), vec![loc(0.52)]), &[pa], &mut out);
        out.clear();
        // The reveal claims another location than the one committed to.
        let lie = Reveal { location: loc(0.9), ..honest };
        assert_eq!(b.on_reveal((pa, 5), lie, &mut out), Some(Outcome::Aborted(Abort::BadReveal)));
        assert_eq!(out, vec![(pa, Message::SwapRejected { id: 5 })], "B must not reveal after a bad reveal");
        let _ = pb;
    }

    #[test]
    fn relay_forwards_both_ways_and_forgets() {
        let t = now();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (up, down) = (PeerId(1), PeerId(2));
        let mut r = Swapper::new(SwapConfig::default());
        let mut out = Vec::new();
        r.on_request(t, &mut rng, (up, 7), 5, [9; 32], (loc(0.5), vec![]), &[up, down], &mut out);
        let Some((to, Message::SwapRequest { id, htl: 4, commitment: [9, ..] })) = out.pop() else { panic!() };
        assert_eq!(to, down);
        assert!(!r.busy());
        r.on_reply((down, id), [8; 32], &mut out);
        assert_eq!(out.pop(), Some((up, Message::SwapReply { id: 7, commitment: [8; 32] })));
        let rv = Reveal { location: loc(0.1), neighbours: vec![], age: 0, random: [0; 32] };
        assert_eq!(r.on_reveal((up, 7), rv.clone(), &mut out), None);
        assert_eq!(out.pop(), Some((down, rv.message(id))));
        assert_eq!(r.on_reveal((down, id), rv.clone(), &mut out), None);
        assert_eq!(out.pop(), Some((up, rv.message(7))));
        assert_eq!(r.relays(), 0);
    }

    #[test]
    fn busy_responder_rejects_and_timeouts_clear() {
        let t = now();
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let mut s = Swapper::new(SwapConfig::default());
        let mut out = Vec::new();
        assert!(s.start(t, &mut rng, loc(0.2), vec![loc(0.3)], &[PeerId(1)], &mut out));
        assert!(!s.start(t, &mut rng, loc(0.2), vec![loc(0.3)], &[PeerId(1)], &mut out));
        out.clear();
        s.on_request(t, &mut rng, (PeerId(2), 1), 1, [0; 32], (loc(0.2), vec![]), &[PeerId(2)], &mut out);
        assert_eq!(out, vec![(PeerId(2), Message::SwapRejected { id: 1 })]);
        assert_eq!(s.on_timeout(t + Duration::from_secs(31)), Some(Outcome::Aborted(Abort::TimedOut)));
        assert!(!s.busy() && s.next_deadline().is_none());
    }

    #[test]
    fn plausibility_rejects_far_claimed_neighbours() {
        // Pitch Black: a location next to the target, neighbours on the far side.
        let far = Reveal {
            location: loc(0.25),
            neighbours: (0..12).map(|i| loc(0.75 + i as f64 * 1e-4)).collect(),
            age: 0,
            random: [0; 32],
        };
        assert!(!plausible(&far));
        // An unswapped honest node: uniformly random neighbours pass (almost always).
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut passed = 0;
        for _ in 0..1000 {
            let r = Reveal {
                location: Location(rng.gen()),
                neighbours: (0..12).map(|_| Location(rng.gen())).collect(),
                age: 0,
                random: [0; 32],
            };
            passed += usize::from(plausible(&r));
        }
        assert!(passed > 990, "{passed}");
        // A converged honest node (close neighbours) passes; a node with no neighbour fails.
        assert!(plausible(&Reveal {
            location: loc(0.5),
            neighbours: vec![loc(0.49), loc(0.52), loc(0.9)],
            age: 0,
            random: [0; 32]
        }));
        assert!(!plausible(&Reveal { location: loc(0.5), neighbours: vec![], age: 0, random: [0; 32] }));
    }
}
