//! The node's configuration: every constant a `Node` runs with, explained in
//! docs/routing.md, and the named presets the simulator compares.

use std::time::Duration;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::id::Htl;
use crate::location::Location;
use crate::routing::htl::MAX_HTL;
use crate::routing::opennet::OpennetConfig;
use crate::routing::peers::BackoffConfig;
use crate::routing::swap::SwapConfig;

use super::budget::StoreBudget;
pub use super::durability::{DurabilityConfig, KeysFileError};
use super::load::LoadConfig;

/// Configuration of a node; every constant is explained in docs/routing.md.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeConfig {
    /// This node's location on the circle.
    pub location: Location,
    /// Seed of the node's RNG: link-local request ids, swap shares and walks, timer jitter,
    /// location resets. A real node draws 32 fresh bytes from the OS at every start
    /// (`daemon::node_config`), so no random choice repeats across restarts (a neighbour sees
    /// request ids and swap commitments raw); the simulator derives it from its seed
    /// ([`NodeConfig::seeded`]). The default is a fixed value, for tests only.
    pub seed: NodeSecret,
    /// Secret from which each link's HTL coins are derived (`Node::add_peer`): unlike
    /// `seed` it must stay the same for the node's life, so a peer that reconnects meets
    /// the same coins. A real node keeps it in its data directory (`DIR/link.secret`).
    pub link_secret: NodeSecret,
    /// Swaps this node has started in its life so far (its swap age: young nodes swap
    /// hotter, `swap::temperature`). State like `location`: a restarted node passes the
    /// saved value (`Node::swap_age`) so it does not start hot again.
    pub swap_age: u32,
    /// Hops-to-live of requests this node starts, and the cap on incoming ones.
    pub max_htl: Htl,
    /// How long this node waits for a peer sent a request at max HTL; a hop sent with HTL h
    /// is given `request_timeout * (h + 1) / (max_htl + 1)`. A request that arrived with
    /// HTL h (a local one counts as max HTL) must be over within 7/8 of its upstream's wait
    /// for it, so the answer arrives in time: 105 s for a local request, exactly as for one
    /// relayed at max HTL, so no neighbour can tell them apart by when they give up.
    pub request_timeout: Duration,
    /// How long a peer has to say `Accepted` (or answer) before it counts as timed out.
    pub accept_timeout: Duration,
    /// Requests from one peer this node handles at once; more get RejectedOverload.
    pub max_requests_per_peer: u32,
    /// Backoff periods for peers that reject, time out or forge.
    pub backoff: BackoffConfig,
    /// How long a key that failed with DataNotFound stays quenched.
    pub quench_time: Duration,
    /// How many quenched keys are remembered at most.
    pub quench_capacity: usize,
    /// How long after a fetch this node routed (its own or a peer's) found nothing here the
    /// next request for the key it routes, whoever sent it, goes around the peers the
    /// failed one was sent to (once per key in this window; zero, the default: never.
    /// Off because, when one node asks, only an originator ever routes the repeat: every
    /// node upstream of a relay routes it around that relay first, so colluding neighbours
    /// still tell who asked: `node/second_attempt.rs`, docs/security.md §16).
    pub second_attempt_window: Duration,
    /// How often this node starts a location swap (darknet); `None`: never on its own
    /// (a driver may still call `Node::start_swap`). Swap requests from peers are always
    /// served.
    pub swap_interval: Option<Duration>,
    /// Swapping parameters, including the Pitch Black mitigation.
    pub swap: SwapConfig,
    /// The most hops one DataNotFound / RouteNotFound answer may cost a fetch or insert
    /// this node routes, whether it started it or relays it (`Htl::MAX`: trust the HTL it
    /// reports, as Hyphanet does). A black hole answers DataNotFound at once; with the cap
    /// the request tries another peer instead of giving up. One cap for every role: with a
    /// smaller cap at the originator, the next hop after a colluding "not found" saw an
    /// HTL that only an originator sends (issue 14). Default 4, measured with 20% black
    /// holes (docs/routing.md): at 10,000 nodes it keeps more fetches than the former
    /// caps (3 at the originator, 6 at relays), 0.994 and 0.983 (swapped) against 0.992
    /// and 0.976, while 5 fell to 0.945 on swapped locations. The cost is 1.6 times the
    /// messages per genuine miss (344 against 214 at 2,000 nodes); 3 would cost 3.4 times.
    /// A request holding the cap or less believes the answer, which bounds how far a
    /// genuine miss branches out.
    pub not_found_cap: Htl,
    /// Treat DataNotFound (or RouteNotFound with no hops left) in answer to an insert as
    /// the lie it is: honest nodes answer an insert that ran its hops out with
    /// InsertReply, so only a black hole says this. The insert goes on to the next peer
    /// without spending hops and the liar is backed off like a forger. Off: believe it and
    /// end the insert (Hyphanet's rule, for comparison in the simulator).
    pub refuse_false_insert_not_found: bool,
    /// Each hop of a request this node routes may wait at most `1 / hop_share` of the time
    /// the request has left (for `Accepted` and for the answer; `Request::with_hop_share`).
    /// Default 2: a peer that answers `Accepted` and then stays silent costs at most half of
    /// what is left, so backtracking always has budget (issue 14, "Accepted, then silence";
    /// measured in docs/security.md). 1: the first hop may take the whole deadline.
    pub hop_share: u32,
    /// Treat a peer that answered `Accepted` and then let its hop time out like a forger:
    /// back it off for `backoff.forgery` and count it (`PeerEntry::silences`). The record
    /// is kept by peer id across reconnects (`PeerTable::remove`). Off: the ordinary
    /// doubling backoff of a timeout.
    pub penalise_silence: bool,
    /// How requests pick the next peer. Only [`RoutingStrategy::Pamphlet`] is meant for
    /// real nodes; the others exist so the simulator can compare systems on one code base.
    pub strategy: RoutingStrategy,
    /// Keep copies of blocks that pass through (fetch return paths, insert paths) in the
    /// cache area. On by default: caching is what makes popular data fast and spreads it
    /// away from the nodes nearest its key. Off (config `cache_bytes = 0`) the node keeps
    /// only what it is a sink for, and data lives only where routing puts it.
    pub cache_passing: bool,
    /// Check what peers claim about where they are (issue 14): a friend-of-a-friend list
    /// that fails `swap::plausible_neighbours` (too far, too many, far too evenly spread)
    /// is ignored; a peer's location changes at most once per `peers::LOCATION_INTERVAL`
    /// (later claims are held); a peer within `peers::NEAR_EQUAL` of our location does not
    /// deny our sinkhood; and our re-broadcasts caused by peers' updates are coalesced to
    /// one per [`super::REBROADCAST_INTERVAL`]. Off: believe every claim at once (for
    /// measuring the defences).
    pub check_claims: bool,
    /// Refuse inserts that arrive with HTL 0 (issue 14, item 8). Honest nodes never send
    /// one (an insert with no hops left ends where it is), so it is a lie: nothing is
    /// stored, no answer is sent, and the sender is penalised like a forger. Off: store it
    /// (it was written to the store area with an fsync each, and never forwarded).
    pub refuse_zero_htl_inserts: bool,
    /// Close the link to a peer after this many lies (forged blocks, "not found" to an
    /// insert, HTL-0 inserts; one leaks away every 10 minutes), for 10 minutes doubling
    /// each time (`node/misbehaviour.rs`). `None`: never (links stay up, liars are only
    /// backed off).
    pub close_after_lies: Option<u32>,
    /// How many store-area writes each peer's inserts may cause ([`StoreBudget`]); past it
    /// they go to the cache area only. `None`: no limit.
    pub store_budget: Option<StoreBudget>,
    /// Data that stays (issue 20): top blocks kept wider, offers after a swap.
    pub durability: DurabilityConfig,
    /// Darknet (the default), opennet or hybrid, and the opennet limits
    /// (docs/opennet.md).
    pub opennet: OpennetConfig,
    /// Load management: the upload limit requests are accepted by, and per-peer request
    /// windows (`node::load`, issue 18).
    pub load: LoadConfig,
}

/// How a node ranks its peers for a request (docs/simulation.md compares them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum RoutingStrategy {
    /// Greedy by effective distance (own or friend-of-a-friend), with backtracking.
    #[default]
    Pamphlet,
    /// Greedy by the peers' own locations only, with backtracking (no FOAF).
    Greedy,
    /// A random untried peer each time, with backtracking (a random walk).
    RandomWalk,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            location: Location(0),
            seed: NodeSecret([0; 32]),
            link_secret: NodeSecret([0; 32]),
            swap_age: 0,
            max_htl: MAX_HTL,
            request_timeout: Duration::from_secs(120),
            accept_timeout: Duration::from_secs(10),
            max_requests_per_peer: 64,
            backoff: BackoffConfig::default(),
            quench_time: Duration::from_secs(30),
            quench_capacity: 4096,
            second_attempt_window: Duration::ZERO,
            swap_interval: None,
            swap: SwapConfig::default(),
            not_found_cap: 4,
            refuse_false_insert_not_found: true,
            hop_share: 2,
            penalise_silence: true,
            strategy: RoutingStrategy::Pamphlet,
            cache_passing: true,
            check_claims: true,
            refuse_zero_htl_inserts: true,
            close_after_lies: Some(8),
            store_budget: Some(StoreBudget::default()),
            durability: DurabilityConfig::default(),
            opennet: OpennetConfig::default(),
            load: LoadConfig::default(),
        }
    }
}

/// Named presets: the rules other systems run by, on pamphlet's code, so the simulator
/// (and anyone comparing) says *which* rules it means rather than setting fields itself.
/// Each is a builder step on a config; they combine (`NodeConfig::default()
/// .without_defences()` is a node that routes and trusts as Hyphanet does: Hyphanet routes
/// on its peers' neighbours too, fred's `PeerManager.closerPeer`, as pamphlet's default
/// ranking does).
impl NodeConfig {
    /// Greedy by the peers' own locations with backtracking, without friend-of-a-friend
    /// locations ([`RoutingStrategy::Greedy`]; the simulator's `greedy` row, which it
    /// called `hyphanet` until issue 19). HTL and the defences are left as they are.
    #[must_use]
    pub fn greedy_routing(self) -> Self {
        NodeConfig { strategy: RoutingStrategy::Greedy, ..self }
    }

    /// Hyphanet's rules of trust, without pamphlet's defences: every DataNotFound /
    /// RouteNotFound is believed for the HTL it reports, whoever started the request (no
    /// cap), DataNotFound in answer to an insert ends the insert, and any swap reveal
    /// is accepted (no Pitch Black plausibility check), the first hop may wait out the whole
    /// deadline and a silent peer is only backed off as for a timeout. For comparison only: docs/security.md
    /// measures what each defence buys against its adversary.
    #[must_use]
    pub fn without_defences(self) -> Self {
        NodeConfig {
            not_found_cap: Htl::MAX,
            refuse_false_insert_not_found: false,
            swap: SwapConfig { check_neighbours: false, ..self.swap },
            check_claims: false,
            refuse_zero_htl_inserts: false,
            close_after_lies: None,
            store_budget: None,
            hop_share: 1,
            penalise_silence: false,
            ..self
        }
    }
}

impl NodeConfig {
    /// The default configuration with both secrets derived from `seed`: for the simulator
    /// and tests, where one `u64` must replay a whole run. Never for a real node: 64 bits
    /// can be searched, and the same `seed` repeats every random choice.
    pub fn seeded(seed: u64) -> Self {
        NodeConfig {
            seed: NodeSecret::derive(b"pamphlet/sim-rng/v1", seed),
            link_secret: NodeSecret::derive(b"pamphlet/sim-link-secret/v1", seed),
            ..NodeConfig::default()
        }
    }
}

/// 32 secret bytes that seed part of a node ([`NodeConfig::seed`],
/// [`NodeConfig::link_secret`]). `Debug` prints none of them; they are zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct NodeSecret([u8; 32]);

impl NodeSecret {
    /// A secret from 32 bytes (a real node: from the OS, or its data directory).
    pub fn new(bytes: [u8; 32]) -> Self {
        NodeSecret(bytes)
    }

    /// The bytes.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// SHA-256 of `label` and `seed`: a `u64` stretched for the simulator and tests.
    fn derive(label: &[u8], seed: u64) -> Self {
        NodeSecret(Sha256::new().chain_update(label).chain_update(seed.to_be_bytes()).finalize().into())
    }
}

impl PartialEq for NodeSecret {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for NodeSecret {}

impl std::fmt::Debug for NodeSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeSecret(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_change_only_what_they_name() {
        let d = NodeConfig::default();
        assert_eq!(d.clone().greedy_routing(), NodeConfig { strategy: RoutingStrategy::Greedy, ..d.clone() });
        let trusting = d.clone().without_defences();
        assert_eq!(trusting.not_found_cap, Htl::MAX);
        assert!(!trusting.refuse_false_insert_not_found && !trusting.swap.check_neighbours);
        assert_eq!(
            trusting,
            NodeConfig {
                not_found_cap: Htl::MAX,
                refuse_false_insert_not_found: false,
                swap: SwapConfig { check_neighbours: false, ..d.swap },
                check_claims: false,
                refuse_zero_htl_inserts: false,
                close_after_lies: None,
                store_budget: None,
                hop_share: 1,
                penalise_silence: false,
                ..d.clone()
            }
        );
        // The defaults are pamphlet's defences, on.
        assert!(
            d.refuse_false_insert_not_found && d.swap.check_neighbours && d.not_found_cap < Htl::MAX && d.check_claims
        );
        assert!(d.hop_share > 1 && d.penalise_silence);
    }
}
