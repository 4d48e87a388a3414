//! Adversaries. Each attacker is an ordinary [`Node`](crate::Node) whose outgoing messages
//! pass through a filter ([`Network::set_filter`]) that lies on its behalf, so attackers
//! take part in routing exactly like honest nodes until they lie.
//!
//! - **Black hole**: never forwards a request or insert, and answers every request it takes
//!   on, and every block it could return, with `DataNotFound { htl: 0 }` (the lie that ends
//!   a request at once).
//! - **Forger**: never forwards; answers every request it takes on with a `DataFound`
//!   carrying a block of the right size that does not verify.
//! - **Pitch Black** (Evans et al. 2007): takes part in location swaps with made-up values.
//!   Every swap commitment it sends (as initiator, as a walk's end, *or as a relay*, where
//!   it replaces the commitment it should pass on) commits to a fake reveal: a location
//!   next to the attack's target point and neighbours on the far side of the circle, which
//!   makes keeping one's own location look costly, so honest partners take the clustered
//!   location. It then opens exactly that commitment, so the honest side's commitment
//!   check passes: only a plausibility check of the claims can stop it.
//! - **Timing prober** (issue 14): tries to tell whether the neighbour that sent it a
//!   request started it. It answers `Accepted` and never forwards (silence); when its own
//!   node gives the request up (at its deadline, 105 s after a request at max HTL) it sends
//!   the neighbour, instead of the answer, its own request for the same key. A relay has
//!   given up by then; an originator with a longer deadline would still be routing the key
//!   and answer `RejectedLoop`. [`probe_guesses`] reads the answers off a fetch's
//!   transcript (with `--observe`): each `RejectedLoop` to a probe of a max-HTL request is
//!   a guess "my sender started it".
//! - **Silent** (issue 14, "Accepted, then silence"): never forwards; answers every request
//!   it takes on with `Accepted` and then nothing ([`silent`]), so its upstream waits out
//!   the hop. The defence: each hop waits at most a share of what the request has left
//!   (`NodeConfig::hop_share`) and the silent peer is backed off like a forger.
//! - **Reconnector** (issue 14, item 6): silent, and before each fetch it drops and
//!   re-makes its links to the fetching node, hoping the reconnect wipes its record there
//!   (penalties, backoff, requests in flight). The defence: the record is kept by peer id
//!   (`PeerTable::remove`).
//!
//! - **FOAF liar** (issue 14, item 7): silent, and every `LocationUpdate` it sends claims
//!   [`MAX_FOAF`] neighbours spread evenly round the circle (at a random rotation), so it
//!   looks one hop from every key and is ranked first for a large share of them. The
//!   defences: neighbour lists must pass the swap plausibility and evenness tests
//!   (`swap::plausible_neighbours`), and silence is backed off.
//! - **Location liar** (issue 14, item 7): a black hole that claims to each peer a location
//!   right next to that peer's own ([`Network::set_claim`]), so the peer never thinks it is
//!   the sink for keys on that side of itself and hands their inserts to the liar. The
//!   defence: a peer within `peers::NEAR_EQUAL` of a node does not deny its sinkhood.
//!
//! And two passive observers on each fetch's messages ([`observe`], with
//! [`SimConfig::observe`](super::SimConfig::observe)): a neighbour guessing from max HTL
//! who started a request, and request-id traceback.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use pamphlet_crypto::{Block, BlockKind, ChkBlock, RoutingKey, CHK_BLOCK_LEN};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::network::{black_hole, silent, Network, Sent};
use crate::id::PeerId;
use crate::id::RequestId;
use crate::location::Location;
use crate::routing::htl::MAX_HTL;
use crate::routing::peers::MAX_FOAF;
use crate::routing::swap::Reveal;
use crate::wire::message::Message;

/// What the attackers do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttackKind {
    /// Drop requests and answer DataNotFound.
    Blackhole,
    /// Answer requests with invalid blocks.
    Forger,
    /// Poison location swaps towards one point.
    PitchBlack,
    /// Sybils around one key: the attackers are the nodes closest to the first document's
    /// key (instead of random nodes), and they behave as black holes.
    Eclipse,
    /// Accept, stay silent, then ask the sender for the same key just after a relay would
    /// have given up: a `RejectedLoop` unmasks an originator whose deadline is longer.
    TimingProber,
    /// Accept every request, then stay silent.
    Silent,
    /// Silent, and reconnect to the fetching node before each fetch.
    Reconnector,
    /// Silent, and advertise neighbours spread evenly round the circle.
    FoafLiar,
    /// A black hole that claims to each peer a location right next to that peer's.
    LocationLiar,
    /// Routes honestly; sends its neighbours junk inserts ground near their locations
    /// (`sim/flusher.rs`).
    Flusher,
}

/// An attack: what, and which fraction of the nodes do it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Attack {
    /// What the attackers do.
    pub kind: AttackKind,
    /// Fraction of nodes that are attackers, in [0, 1].
    pub fraction: f64,
}

/// Why an attack description could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttackParseError {
    /// Not of the form `NAME:FRACTION`.
    #[error("expected NAME:FRACTION (e.g. blackhole:0.2), got {0:?}")]
    Form(String),
    /// Unknown attack name.
    #[error(
        "unknown attack {0:?}; known: blackhole, forger, pitchblack, eclipse, timing-prober, silent, reconnector, \
         foaf-liar, location-liar, flusher"
    )]
    Name(String),
    /// The fraction is not a number in [0, 1].
    #[error("attack fraction must be a number in [0, 1], got {0:?}")]
    Fraction(String),
}

impl FromStr for Attack {
    type Err = AttackParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, frac) = s.split_once(':').ok_or_else(|| AttackParseError::Form(s.to_string()))?;
        let kind = match name {
            "blackhole" => AttackKind::Blackhole,
            "forger" => AttackKind::Forger,
            "pitchblack" => AttackKind::PitchBlack,
            "eclipse" => AttackKind::Eclipse,
            "timing-prober" => AttackKind::TimingProber,
            "silent" => AttackKind::Silent,
            "reconnector" => AttackKind::Reconnector,
            "foaf-liar" => AttackKind::FoafLiar,
            "location-liar" => AttackKind::LocationLiar,
            "flusher" => AttackKind::Flusher,
            _ => return Err(AttackParseError::Name(name.to_string())),
        };
        let fraction: f64 = frac.parse().map_err(|_| AttackParseError::Fraction(frac.to_string()))?;
        if !(0.0..=1.0).contains(&fraction) {
            return Err(AttackParseError::Fraction(frac.to_string()));
        }
        Ok(Attack { kind, fraction })
    }
}

impl fmt::Display for AttackKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AttackKind::Blackhole => "blackhole",
            AttackKind::Forger => "forger",
            AttackKind::PitchBlack => "pitchblack",
            AttackKind::Eclipse => "eclipse",
            AttackKind::TimingProber => "timing-prober",
            AttackKind::Silent => "silent",
            AttackKind::Reconnector => "reconnector",
            AttackKind::FoafLiar => "foaf-liar",
            AttackKind::LocationLiar => "location-liar",
            AttackKind::Flusher => "flusher",
        })
    }
}

/// Installs the attack's behaviour on every node marked in `attackers`.
pub(crate) fn install(net: &mut Network, attack: &Attack, attackers: &[bool], rng: &mut ChaCha8Rng) {
    let target = Location(rng.gen());
    for (i, _) in attackers.iter().enumerate().filter(|(_, a)| **a) {
        match attack.kind {
            AttackKind::PitchBlack => {
                let now = net.now();
                net.node_mut(i).set_location(now, target);
                net.flush(i);
                let mut own = ChaCha8Rng::seed_from_u64(rng.gen());
                let mut fakes: HashMap<(PeerId, RequestId), Reveal> = HashMap::new();
                net.set_filter(i, Box::new(move |peer, msg| pitch_black(target, &mut own, &mut fakes, peer, msg)));
            }
            AttackKind::Blackhole | AttackKind::Eclipse => net.set_filter(i, Box::new(black_hole)),
            // The reconnects are the workload's (`Sim::fetch`): a filter cannot reconnect.
            AttackKind::Silent | AttackKind::Reconnector => net.set_filter(i, Box::new(silent)),
            AttackKind::TimingProber => {
                let mut own = ChaCha8Rng::seed_from_u64(rng.gen());
                let mut prober = Prober::default();
                net.set_filter(i, Box::new(move |peer, msg| prober.filter(&mut own, peer, msg)));
            }
            AttackKind::FoafLiar => {
                let rotation: u64 = rng.gen();
                let step = u64::MAX / MAX_FOAF as u64;
                let even: Vec<Location> =
                    (0..MAX_FOAF as u64).map(|k| Location(rotation.wrapping_add(k.wrapping_mul(step)))).collect();
                net.set_filter(
                    i,
                    Box::new(move |peer, msg| match msg {
                        Message::LocationUpdate { location, .. } => {
                            Some(Message::LocationUpdate { location, neighbours: even.clone() })
                        }
                        other => silent(peer, other),
                    }),
                );
                readvertise(net, i);
            }
            AttackKind::LocationLiar => {
                // One step past the peer: closer to every key on that side than the peer is.
                net.set_claim(i, Box::new(|theirs: Location| Location(theirs.0.wrapping_add(1))));
                net.set_filter(i, Box::new(black_hole));
                readvertise(net, i);
            }
            // Honest routing; its junk is the workload's (`Sim::flush_by_attackers`).
            AttackKind::Flusher => {}
            AttackKind::Forger => {
                let mut bytes = vec![0u8; CHK_BLOCK_LEN];
                rng.fill(&mut bytes[..]);
                let Ok(junk) = ChkBlock::from_bytes(bytes) else { continue };
                let junk = Block::Chk(junk);
                net.set_filter(i, Box::new(move |_, msg| forger(&junk, msg)));
            }
        }
    }
}

/// Makes node `i` advertise its location again, now through its lies (the first
/// advertisements went out honestly when the network was built).
fn readvertise(net: &mut Network, i: usize) {
    let (now, here) = (net.now(), net.node(i).location());
    net.node_mut(i).set_location(now, here);
    net.flush(i);
}

/// How far from the target a Pitch Black attacker's claimed locations fall (fraction of
/// the circle, either side).
pub const PITCH_BLACK_SPREAD: f64 = 1e-3;

fn pitch_black(
    target: Location,
    rng: &mut ChaCha8Rng,
    fakes: &mut HashMap<(PeerId, RequestId), Reveal>,
    peer: PeerId,
    msg: Message,
) -> Option<Message> {
    let fake = |rng: &mut ChaCha8Rng| {
        let near = |rng: &mut ChaCha8Rng, centre: Location| {
            Location(centre.0.wrapping_add(
                (rng.gen_range(-PITCH_BLACK_SPREAD..PITCH_BLACK_SPREAD) * 1.8446744073709552e19) as i64 as u64,
            ))
        };
        let far = Location(target.0.wrapping_add(1 << 63));
        // It claims to be brand new (the hottest it could make a swap); the honest
        // partner's age counts as well, so this only matters while the network is young.
        Reveal {
            location: near(rng, target),
            neighbours: (0..12).map(|_| near(rng, far)).collect(),
            age: 0,
            random: rng.gen(),
        }
    };
    Some(match msg {
        Message::SwapRequest { id, htl, .. } => {
            let r = fake(rng);
            let commitment = r.commitment();
            fakes.insert((peer, id), r);
            Message::SwapRequest { id, htl, commitment }
        }
        Message::SwapReply { id, .. } => {
            let r = fake(rng);
            let commitment = r.commitment();
            fakes.insert((peer, id), r);
            Message::SwapReply { id, commitment }
        }
        Message::SwapReveal { id, .. } => match fakes.remove(&(peer, id)) {
            Some(r) => r.message(id),
            None => return None,
        },
        other => other,
    })
}

fn forger(junk: &Block, msg: Message) -> Option<Message> {
    match msg {
        Message::DataRequest { .. } | Message::InsertRequest { .. } => None,
        Message::Accepted { id }
        | Message::DataFound { id, .. }
        | Message::DataNotFound { id, .. }
        | Message::RouteNotFound { id, .. } => Some(Message::DataFound { id, block: junk.clone() }),
        other => Some(other),
    }
}

/// The passive observers (see [`SimConfig::observe`](super::SimConfig::observe)): the two
/// passive attacks on one fetch's transcript: guesses at max HTL, the right ones and the
/// chance level, and ids seen on two links.
pub(crate) fn observe(net: &Network, origin: usize, max_htl: u8) -> Observed {
    let mut o = Observed::default();
    let mut links: std::collections::HashMap<u64, (usize, usize)> = std::collections::HashMap::new();
    let senders: std::collections::HashSet<usize> = net
        .transcript()
        .iter()
        .filter(|s| matches!(s.msg, crate::wire::message::Message::DataRequest { htl, .. } if htl >= max_htl))
        .map(|s| s.from)
        .collect();
    for sent in net.transcript() {
        if let crate::wire::message::Message::DataRequest { id, htl, .. } = sent.msg {
            if htl >= max_htl {
                o.at_max.0 += 1;
                o.at_max.1 += u64::from(sent.from == origin);
                // A guess no better than picking one of this fetch's max-HTL senders.
                o.chance += 1.0 / senders.len() as f64;
            }
            match links.insert(id, (sent.from, sent.to)) {
                Some(l) if l != (sent.from, sent.to) => o.reused += 1,
                _ => {}
            }
        }
    }
    o
}

/// What the passive observers saw on one fetch: (guesses, right ones) at max HTL, and
/// DataRequest ids seen on two links.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Observed {
    pub(crate) at_max: (u64, u64),
    pub(crate) reused: u64,
    /// Sum over the max-HTL guesses of 1 / (the fetch's distinct max-HTL senders): the
    /// right guesses expected if the senders could not be told apart (chance level).
    pub(crate) chance: f64,
}

/// The timing prober's memory: which key each request it accepted was for.
#[derive(Default)]
struct Prober {
    /// The key of the request its node just forwarded (the forward comes right before the
    /// `Accepted` for the same request, see `Node::launch`).
    forwarded: Option<(BlockKind, RoutingKey)>,
    /// (upstream, its link-local id) -> the key, for every request it accepted.
    accepted: HashMap<(PeerId, RequestId), (BlockKind, RoutingKey)>,
    /// (peer, key) pairs already probed: one probe each is all it needs, and probing again
    /// would let two probers next to one node bounce probes for a key between them forever
    /// (each probe is a request the node forwards to the other prober).
    probed: std::collections::HashSet<(PeerId, RoutingKey)>,
}

impl Prober {
    fn filter(&mut self, rng: &mut ChaCha8Rng, peer: PeerId, msg: Message) -> Option<Message> {
        match msg {
            // Silence: nothing is forwarded, so its node times each hop out and gives the
            // request up at its deadline.
            Message::DataRequest { kind, key, .. } => {
                self.forwarded = Some((kind, key));
                None
            }
            Message::Accepted { id } => {
                if let Some(k) = self.forwarded.take() {
                    self.accepted.insert((peer, id), k);
                }
                Some(msg)
            }
            // Its node gives up: instead of the answer, the probe.
            Message::DataNotFound { id, .. } | Message::RouteNotFound { id, .. } => {
                match self.accepted.remove(&(peer, id)) {
                    Some((kind, key)) if self.probed.insert((peer, key)) => {
                        Some(Message::DataRequest { id: rng.gen(), kind, key, htl: MAX_HTL })
                    }
                    _ => Some(msg),
                }
            }
            Message::DataFound { id, .. } => {
                self.accepted.remove(&(peer, id));
                Some(msg)
            }
            other => Some(other),
        }
    }
}

/// The timing probers' guesses in one fetch's transcript: (guesses, correct ones). A prober
/// that received a request at max HTL from a neighbour and probed that neighbour for the
/// key once a relay would have given it up (7/8 of `request_timeout`, the deadline of a
/// request relayed at max HTL) guesses "it started the request" when the neighbour answers
/// the probe with `RejectedLoop`; the guess is correct when the neighbour is `origin`.
/// Probes sent earlier are not counted (relays still route then, too).
pub(crate) fn probe_guesses(transcript: &[Sent], origin: usize, probers: &[bool], max_htl: u8) -> (u64, u64) {
    let relay_deadline = crate::node::NodeConfig::default().request_timeout * 7 / 8;
    let (mut guesses, mut correct) = (0, 0);
    for (n, seen) in transcript.iter().enumerate() {
        let Message::DataRequest { key, htl, .. } = seen.msg else { continue };
        if htl < max_htl || !probers.get(seen.to).copied().unwrap_or(false) {
            continue;
        }
        let (prober, sender) = (seen.to, seen.from);
        let probe = transcript[n + 1..].iter().find_map(|p| match p.msg {
            Message::DataRequest { id, key: k, .. } if (p.from, p.to) == (prober, sender) && k == key => {
                Some((id, p.at))
            }
            _ => None,
        });
        let Some((id, at)) = probe else { continue };
        if at < seen.at + relay_deadline {
            continue;
        }
        let answer = transcript
            .iter()
            .find(|a| (a.from, a.to) == (sender, prober) && a.at >= at && answer_id(&a.msg) == Some(id));
        if answer.is_some_and(|a| matches!(a.msg, Message::RejectedLoop { .. })) {
            guesses += 1;
            correct += u64::from(sender == origin);
        }
    }
    (guesses, correct)
}

/// The request id an answer refers to.
fn answer_id(msg: &Message) -> Option<RequestId> {
    match *msg {
        Message::Accepted { id }
        | Message::RejectedLoop { id }
        | Message::RejectedOverload { id }
        | Message::DataFound { id, .. }
        | Message::DataNotFound { id, .. }
        | Message::RouteNotFound { id, .. } => Some(id),
        _ => None,
    }
}
