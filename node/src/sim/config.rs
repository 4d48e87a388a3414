//! What a simulation runs: the graph, the routing strategy, how swap rounds run, the
//! workload and the adversaries ([`SimConfig`]), and how that maps onto each node's
//! [`NodeConfig`].

use rand::Rng;

use super::attack::{Attack, AttackKind};
use super::topology::{Placement, Topology};
use super::SimError;
use crate::node::{NodeConfig, RoutingStrategy};

/// Which graph to build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TopologyKind {
    /// Ring plus 1/d long links ([`Topology::small_world`]).
    SmallWorld,
    /// Uniform random links ([`Topology::random`]).
    Random,
    /// A given graph (`nodes` and `degree` are then ignored).
    Given(Topology),
}

/// A routing strategy to compare (all on the same topology and workload).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Strategy {
    /// pamphlet's default: greedy by effective (FOAF) distance with backtracking.
    #[default]
    Pamphlet,
    /// Hyphanet's rules as fred has them: greedy by effective (FOAF) distance (fred's
    /// `PeerManager.closerPeer`), HTL 18 with the same per-link probabilistic decrement,
    /// and none of pamphlet's defences (`NodeConfig::without_defences`: every not-found
    /// believed for the HTL it reports, no caps; a silent peer backed off as a timeout).
    Hyphanet,
    /// Greedy by the peers' own locations with backtracking, HTL 18, no FOAF, pamphlet's
    /// defences (the row called `hyphanet` before issue 19).
    Greedy,
    /// NextBestOnce (Roos et al.): greedy depth-first search with backtracking, each
    /// neighbour tried once, no FOAF, and no hop limit to speak of (HTL 255).
    NextBestOnce,
    /// A random untried peer each hop, with backtracking, HTL 18.
    RandomWalk,
    /// Gnutella-style flooding with TTL `min(max_htl, 7)`; data stays with its publisher.
    Flooding,
    /// Chord on its own ideal ring of the same size (structured reference).
    Chord,
    /// The original Freenet (Clarke et al. 2000): routing tables of key → node learnt from
    /// successful requests, routed to the entry whose key is closest; computed
    /// (`freenet2000.rs`).
    Freenet2000,
}

impl std::str::FromStr for Strategy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "pamphlet" => Strategy::Pamphlet,
            "hyphanet" => Strategy::Hyphanet,
            "greedy" => Strategy::Greedy,
            "nbo" | "nextbestonce" => Strategy::NextBestOnce,
            "randomwalk" | "random-walk" => Strategy::RandomWalk,
            "flooding" | "flood" => Strategy::Flooding,
            "chord" => Strategy::Chord,
            "freenet2000" => Strategy::Freenet2000,
            _ => {
                return Err(format!(
                    "unknown strategy {s:?}; known: pamphlet, hyphanet, greedy, nbo, randomwalk, flooding, chord, freenet2000"
                ))
            }
        })
    }
}

impl Strategy {
    /// Every strategy, in table order.
    pub const ALL: [Strategy; 8] = [
        Strategy::Pamphlet,
        Strategy::Hyphanet,
        Strategy::Greedy,
        Strategy::NextBestOnce,
        Strategy::RandomWalk,
        Strategy::Flooding,
        Strategy::Chord,
        Strategy::Freenet2000,
    ];

    /// The name the CLI takes.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Pamphlet => "pamphlet",
            Strategy::Hyphanet => "hyphanet",
            Strategy::Greedy => "greedy",
            Strategy::NextBestOnce => "nbo",
            Strategy::RandomWalk => "randomwalk",
            Strategy::Flooding => "flooding",
            Strategy::Chord => "chord",
            Strategy::Freenet2000 => "freenet2000",
        }
    }
}

/// How swap rounds run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SwapMode {
    /// Every swap is the real protocol between `Node`s: walk, commitments, reveals.
    #[default]
    Messages,
    /// The same chain (walk, reveals, `swap::decide`) run centrally, without the
    /// messages: per round 30 to 80 times faster, for large networks. Cannot model an
    /// attacker's swaps or location resets (see `direct_swap.rs`).
    Direct,
}

impl SwapMode {
    /// The name the CLI takes.
    pub fn name(self) -> &'static str {
        match self {
            SwapMode::Messages => "messages",
            SwapMode::Direct => "direct",
        }
    }
}

impl std::str::FromStr for SwapMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "messages" => Ok(SwapMode::Messages),
            "direct" => Ok(SwapMode::Direct),
            other => Err(format!("unknown swap mode {other:?} (messages or direct)")),
        }
    }
}

/// One simulation: topology, workload, adversaries.
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    /// Number of nodes (for generated topologies).
    pub nodes: usize,
    /// Mean degree (for generated topologies).
    pub degree: usize,
    /// Which graph.
    pub topology: TopologyKind,
    /// Where nodes start on the circle.
    pub placement: Placement,
    /// Fetches to measure.
    pub requests: usize,
    /// Documents inserted before the fetches (each fetched about `requests / docs` times).
    pub docs: usize,
    /// Seed of everything: graph, placement, workload, node RNGs, latencies.
    pub seed: u64,
    /// Rounds of location swapping before measuring (each node starts one swap per round).
    pub swap_rounds: usize,
    /// Adversaries, if any.
    pub attack: Option<Attack>,
    /// Probability, per fetch, that one random node leaves and one that left comes back
    /// (the returning node keeps its store and reconnects to its online neighbours). A
    /// mild model: about one node is away at a time.
    pub churn: f64,
    /// Store and cache size of every node, in blocks (`None`: 64 MiB each). Small values
    /// force eviction (data ageing).
    pub store_blocks: Option<u64>,
    /// Hops-to-live of requests.
    pub max_htl: u8,
    /// Extra fetches, after the measured ones, of keys that were never inserted: what a
    /// miss costs (defences that distrust DataNotFound make misses dearer).
    pub absent_requests: usize,
    /// pamphlet's defences on, as a real node has them (`NodeConfig::default()`): the
    /// black-hole defences (caps on what one DataNotFound may cost, at the originator and
    /// at relays; DataNotFound to an insert refused as a lie) and the Pitch Black swap
    /// checks. Off: trust every DataNotFound (Hyphanet's rule) and accept any swap reveal.
    pub defences: bool,
    /// With `defences` on, these ones off: what one defence buys against its adversary
    /// while the others stay (`--no-defence` turns them all off at once).
    pub without: Vec<Defence>,
    /// After measuring, stop the attack (attackers turn honest) and run this many more
    /// swap rounds, then measure again on fresh documents: how fast the network recovers.
    pub recovery_rounds: usize,
    /// `SwapConfig::reset_probability` of every node (location resets).
    pub reset_probability: f64,
    /// How requests are routed.
    pub strategy: Strategy,
    /// Cache flushing: after the documents are inserted (and each fetched once, so it is
    /// "popular" and cached on its paths), this many junk documents are inserted from
    /// random nodes before the measured fetches. With small `store_blocks` the fetch
    /// success then measures how documents survive the flood.
    pub junk_inserts: usize,
    /// Record every fetch's messages and play two passive attackers on them: a neighbour
    /// guessing that a request at max HTL started at its sender (Levine et al. 2017), and
    /// request-id traceback (Tian et al. 2013: does one id appear on two links?). Costs
    /// memory: for small runs.
    pub observe: bool,
    /// Every this many swap rounds (0: never), record the mean link length and the swap
    /// counters so far in [`Report::swap_trace`]: how fast swapping converges.
    pub trace_every: usize,
    /// How the swap rounds run (the recovery rounds too).
    pub swap_mode: SwapMode,
    /// Swap age every node starts with (`NodeConfig::swap_age`). 0: a new darknet, which
    /// anneals over its first `swap::COOLING_SWAPS` rounds; `COOLING_SWAPS` or more: no
    /// annealing (the swap rule at its base temperature from the start).
    pub swap_age: u32,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            nodes: 1000,
            degree: 12,
            topology: TopologyKind::SmallWorld,
            placement: Placement::Random,
            requests: 200,
            docs: 50,
            seed: 1,
            swap_rounds: 0,
            attack: None,
            churn: 0.0,
            store_blocks: None,
            max_htl: crate::routing::htl::MAX_HTL,
            defences: true,
            without: Vec::new(),
            absent_requests: 0,
            recovery_rounds: 0,
            reset_probability: 0.0,
            strategy: Strategy::Pamphlet,
            observe: false,
            junk_inserts: 0,
            trace_every: 0,
            swap_mode: SwapMode::Messages,
            swap_age: 0,
        }
    }
}

impl SimConfig {
    /// Refuses what the configured swap mode cannot model.
    pub(crate) fn check(&self) -> Result<(), SimError> {
        if self.swap_mode == SwapMode::Direct {
            if self.attack.is_some_and(|a| a.kind == AttackKind::PitchBlack) {
                return Err(SimError::DirectSwaps("Pitch Black attackers (they lie in swap messages)"));
            }
            if self.reset_probability > 0.0 {
                return Err(SimError::DirectSwaps("location resets"));
            }
        }
        Ok(())
    }

    /// The graph (drawn from `rng` when generated).
    pub(crate) fn graph(&self, rng: &mut impl Rng) -> Topology {
        match &self.topology {
            TopologyKind::SmallWorld => Topology::small_world(self.nodes, self.degree, rng),
            TopologyKind::Random => Topology::random(self.nodes, self.degree, rng),
            TopologyKind::Given(t) => t.clone(),
        }
    }

    /// Whether the strategy is a reference system computed on the graph, not run on `Node`s
    /// (see `reference.rs`).
    pub(crate) fn is_reference(&self) -> bool {
        matches!(self.strategy, Strategy::Flooding | Strategy::Chord | Strategy::Freenet2000)
    }

    /// A simulated node's configuration: `base` (the harness's, with its location and
    /// seed) with this run's HTL, swap age and resets, the strategy's routing rules and,
    /// with `defences` off, Hyphanet's rules of trust (the presets are `NodeConfig`'s).
    pub(crate) fn node_config(&self, base: NodeConfig) -> NodeConfig {
        let mut c = base;
        c.max_htl = self.max_htl;
        c.swap_age = self.swap_age;
        c.swap.reset_probability = self.reset_probability;
        let c = match self.strategy {
            Strategy::Hyphanet => c.without_defences(),
            Strategy::Greedy => c.greedy_routing(),
            // Greedy without FOAF too; inserts keep HTL max_htl, fetches get 255 (set
            // before the fetches, `workload.rs`).
            Strategy::NextBestOnce => NodeConfig { strategy: RoutingStrategy::Greedy, ..c },
            Strategy::RandomWalk => NodeConfig { strategy: RoutingStrategy::RandomWalk, ..c },
            Strategy::Pamphlet | Strategy::Flooding | Strategy::Chord | Strategy::Freenet2000 => c,
        };
        if !self.defences {
            return c.without_defences();
        }
        self.without.iter().fold(c, |c, d| d.switch_off(c))
    }
}

/// One of pamphlet's defences, to switch off alone (`SimConfig::without`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Defence {
    /// FOAF plausibility and evenness, location-change rate limit, near-equal locations
    /// not denying sinkhood (`NodeConfig::check_claims`).
    Claims,
    /// A hop waits at most half of what is left, and a silent peer is backed off like a
    /// forger (`hop_share`, `penalise_silence`).
    Silence,
    /// HTL-0 inserts refused (`refuse_zero_htl_inserts`).
    ZeroHtl,
    /// The per-peer store-write budget (`store_budget`).
    StoreBudget,
    /// The cap on what one not-found answer may cost (`not_found_cap`).
    NotFoundCap,
    /// Closing the link to a peer that keeps lying (`close_after_lies`).
    CloseLiars,
}

impl Defence {
    fn switch_off(self, c: NodeConfig) -> NodeConfig {
        match self {
            Defence::Claims => NodeConfig { check_claims: false, ..c },
            Defence::Silence => NodeConfig { hop_share: 1, penalise_silence: false, ..c },
            Defence::ZeroHtl => NodeConfig { refuse_zero_htl_inserts: false, ..c },
            Defence::StoreBudget => NodeConfig { store_budget: None, ..c },
            Defence::NotFoundCap => NodeConfig { not_found_cap: crate::id::Htl::MAX, ..c },
            Defence::CloseLiars => NodeConfig { close_after_lies: None, ..c },
        }
    }
}

impl std::str::FromStr for Defence {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "claims" => Defence::Claims,
            "silence" => Defence::Silence,
            "zero-htl" => Defence::ZeroHtl,
            "store-budget" => Defence::StoreBudget,
            "not-found-cap" => Defence::NotFoundCap,
            "close-liars" => Defence::CloseLiars,
            _ => {
                return Err(format!(
                    "unknown defence {s:?}; known: claims, silence, zero-htl, store-budget, not-found-cap, close-liars"
                ))
            }
        })
    }
}
