//! The deterministic simulator: many [`Node`](crate::Node)s in one process, in virtual
//! time, with a seed (feature `sim`).
//!
//! Layout:
//! - [`topology`]: the graphs (darknet small world, uniform random, edge list);
//! - [`attack`]: adversaries, as filters on their nodes' outgoing messages;
//! - `direct_swap`: swap rounds as a central chain, for networks too large for the
//!   message-level swap protocol ([`SwapMode::Direct`]);
//! - this file: the configuration, the run (build, swap rounds, inserts, fetches, churn)
//!   and the [`Report`].
//!
//! The driver is [`crate::testing::Network`] (the harness the routing tests use), so a
//! routing bug seen here is a bug in the real node: every simulated node runs the very same
//! `Node` code as a real one. Nothing here reads a wall clock: the caller passes the base
//! `Instant` of the virtual clock, and all randomness comes from the seed. The same
//! [`SimConfig`] gives the same [`Report`], field for field.
//!
//! Requests run one after another (each until the network is idle), so each request's
//! hops and messages are exact counts, not estimates from overlapping traffic.

pub mod attack;
mod direct_swap;
mod reference;
pub mod topology;

use std::time::{Duration, Instant};

use pamphlet_crypto::{chk, Block, BlockKind, ChkFlags, CHK_BLOCK_LEN};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::location::Location;
use crate::node::Event;
use crate::store::memory::MemoryStore;
use crate::testing::Network;

pub use attack::{Attack, AttackKind};

pub use topology::{Placement, Topology, TopologyError};

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

impl PartialEq for Topology {
    fn eq(&self, other: &Self) -> bool {
        self.adjacency == other.adjacency
    }
}
impl Eq for Topology {}

/// A routing strategy to compare (all on the same topology and workload).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Strategy {
    /// pamphlet's default: greedy by effective (FOAF) distance with backtracking.
    #[default]
    Pamphlet,
    /// Hyphanet-like: greedy by own distance with backtracking, HTL 18, no FOAF.
    Hyphanet,
    /// NextBestOnce (Roos et al.): greedy depth-first search with backtracking, each
    /// neighbour tried once, no FOAF, and no hop limit to speak of (HTL 255).
    NextBestOnce,
    /// A random untried peer each hop, with backtracking, HTL 18.
    RandomWalk,
    /// Gnutella-style flooding with TTL `min(max_htl, 7)`; data stays with its publisher.
    Flooding,
    /// Chord on its own ideal ring of the same size (structured reference).
    Chord,
}

impl std::str::FromStr for Strategy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "pamphlet" => Strategy::Pamphlet,
            "hyphanet" => Strategy::Hyphanet,
            "nbo" | "nextbestonce" => Strategy::NextBestOnce,
            "randomwalk" | "random-walk" => Strategy::RandomWalk,
            "flooding" | "flood" => Strategy::Flooding,
            "chord" => Strategy::Chord,
            _ => {
                return Err(format!(
                    "unknown strategy {s:?}; known: pamphlet, hyphanet, nbo, randomwalk, flooding, chord"
                ))
            }
        })
    }
}

impl Strategy {
    /// Every strategy, in table order.
    pub const ALL: [Strategy; 6] = [
        Strategy::Pamphlet,
        Strategy::Hyphanet,
        Strategy::NextBestOnce,
        Strategy::RandomWalk,
        Strategy::Flooding,
        Strategy::Chord,
    ];

    /// The name the CLI takes.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Pamphlet => "pamphlet",
            Strategy::Hyphanet => "hyphanet",
            Strategy::NextBestOnce => "nbo",
            Strategy::RandomWalk => "randomwalk",
            Strategy::Flooding => "flooding",
            Strategy::Chord => "chord",
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

/// What a run measured. Hop and message counts are per fetch; "hops" counts every
/// `DataRequest` a fetch caused, backtracking included (the cost a user waits for).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// The strategy's name.
    pub strategy: &'static str,
    /// How the swap rounds ran ([`SwapMode::name`]).
    pub swap_mode: &'static str,
    /// The seed (replay with it).
    pub seed: u64,
    /// Nodes in the graph.
    pub nodes: usize,
    /// Edges in the graph.
    pub edges: usize,
    /// Mean degree of the graph.
    pub mean_degree: f64,
    /// Adversary nodes.
    pub attackers: usize,
    /// Fetches measured.
    pub requests: usize,
    /// Fetches that returned the right block.
    pub successes: usize,
    /// `successes / requests`.
    pub success_rate: f64,
    /// Fetches that returned a block other than the one inserted (must be 0).
    pub invalid_accepted: usize,
    /// Median hops of successful fetches.
    pub hops_median: f64,
    /// 95th percentile hops of successful fetches.
    pub hops_p95: f64,
    /// Most hops of a successful fetch.
    pub hops_max: u64,
    /// Hops of every successful fetch, for histograms.
    #[serde(skip)]
    pub hops: Vec<u64>,
    /// Messages (all kinds) per fetch, failed ones included.
    pub messages_per_request: f64,
    /// Messages the busiest node received during the fetch phase, per fetch.
    pub busiest_node_load: f64,
    /// Mean messages a node received during the fetch phase, per fetch.
    pub mean_node_load: f64,
    /// Inserts that reported success.
    pub inserts_ok: usize,
    /// Inserts started.
    pub inserts: usize,
    /// Blocks the honest nodes rejected as forged (the forger defence at work).
    pub forged_rejected: u64,
    /// Swaps started during the swap rounds.
    pub swaps_attempted: u64,
    /// Location changes (two per swap that exchanged locations).
    pub swaps_done: u64,
    /// Swaps that completed with the rule saying keep (counted at both ends).
    pub swaps_kept: u64,
    /// Swaps ended by a `SwapRejected` (mostly: the partner was busy with its own swap).
    pub swaps_refused: u64,
    /// Swaps ended by the plausibility check (the Pitch Black mitigation).
    pub swaps_implausible: u64,
    /// Swaps that timed out.
    pub swaps_timed_out: u64,
    /// Mean link length and swap counters every [`SimConfig::trace_every`] rounds.
    pub swap_trace: Vec<TracePoint>,
    /// Mean over nodes of the mean distance (fraction of the circle) to their neighbours:
    /// small when locations fit the graph.
    pub mean_link_length: f64,
    /// Kolmogorov–Smirnov distance of honest nodes' locations from uniform: 0 when spread
    /// evenly, near 1 when clustered (Pitch Black).
    pub location_ks: f64,
    /// Nodes that left (churn).
    pub churn_leaves: usize,
    /// Messages per fetch of a key nobody inserted (the cost of a genuine miss; see
    /// [`SimConfig::absent_requests`]), 0 when none were run.
    pub messages_per_absent_request: f64,
    /// HTL inference (with `observe`): of the DataRequests sent at max HTL, the share sent
    /// by the fetch's originator: the precision of a neighbour who guesses "my sender
    /// started it" whenever it sees max HTL. Under the timing-prober attack, the precision
    /// of the probers' guesses instead (`attack::probe_guesses`).
    pub htl_guess_precision: Option<f64>,
    /// DataRequests at max HTL observed (the guesses made).
    pub htl_guesses: u64,
    /// Request-id traceback (with `observe`): DataRequest ids seen on more than one link
    /// within one fetch (0 means an id never leads anywhere past its link).
    pub ids_on_two_links: u64,
    /// Success rate on fresh documents after the recovery rounds (`None`: not run).
    pub recovery_success_rate: Option<f64>,
    /// Location KS distance after the recovery rounds.
    pub recovery_location_ks: Option<f64>,
    /// Mean bytes of blocks held per node at the end.
    pub stored_bytes_per_node: f64,
    /// Virtual time the run took, in seconds.
    pub virtual_seconds: f64,
}

/// The state of swapping after some rounds (see [`SimConfig::trace_every`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TracePoint {
    /// Swap rounds run so far.
    pub round: usize,
    /// Mean link length then.
    pub mean_link_length: f64,
    /// Swap counters so far (summed over nodes, as in [`Report`]).
    pub swaps: SwapCounts,
}

/// Swap counters summed over nodes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SwapCounts {
    /// Swaps started.
    pub attempted: u64,
    /// Location changes (two per exchange).
    pub done: u64,
    /// Completed, rule said keep (both ends count).
    pub kept: u64,
    /// Ended by `SwapRejected`.
    pub refused: u64,
    /// Ended by the plausibility check.
    pub implausible: u64,
    /// Timed out.
    pub timed_out: u64,
}

impl std::ops::Sub for SwapCounts {
    type Output = SwapCounts;

    fn sub(self, o: SwapCounts) -> SwapCounts {
        SwapCounts {
            attempted: self.attempted - o.attempted,
            done: self.done - o.done,
            kept: self.kept - o.kept,
            refused: self.refused - o.refused,
            implausible: self.implausible - o.implausible,
            timed_out: self.timed_out - o.timed_out,
        }
    }
}

/// Why a simulation could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// Too few nodes to insert on one and fetch from another.
    #[error("the network needs at least 3 honest nodes, it has {0}")]
    TooSmall(usize),
    /// Encoding a document failed (a bug).
    #[error("encoding a document failed: {0}")]
    Encode(#[from] pamphlet_crypto::BlockError),
    /// Direct swaps asked for together with something they cannot model.
    #[error("direct swap rounds cannot model {0}: use the message swap mode")]
    DirectSwaps(&'static str),
}

/// Steps one operation may take before it counts as stuck.
const OP_STEPS: u64 = 2_000_000;

/// Runs the simulation. `base` is the virtual clock's origin (any `Instant`; only
/// differences from it matter, so the result does not depend on it).
pub fn run(config: &SimConfig, base: Instant) -> Result<Report, SimError> {
    if config.swap_mode == SwapMode::Direct {
        if config.attack.is_some_and(|a| a.kind == AttackKind::PitchBlack) {
            return Err(SimError::DirectSwaps("Pitch Black attackers (they lie in swap messages)"));
        }
        if config.reset_probability > 0.0 {
            return Err(SimError::DirectSwaps("location resets"));
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let topo = match &config.topology {
        TopologyKind::SmallWorld => Topology::small_world(config.nodes, config.degree, &mut rng),
        TopologyKind::Random => Topology::random(config.nodes, config.degree, &mut rng),
        TopologyKind::Given(t) => t.clone(),
    };
    let n = topo.len();
    if matches!(config.strategy, Strategy::Flooding | Strategy::Chord) {
        return Ok(reference_run(config, &topo, &mut rng));
    }
    let locations: Vec<Location> = match config.placement {
        Placement::Ideal => (0..n).map(|i| Location::from_f64(i as f64 / n as f64)).collect(),
        Placement::Random => (0..n).map(|_| Location(rng.gen())).collect(),
    };

    let mut net = Network::with_base(config.seed, base);
    net.set_recording(false);
    net.set_latency(Duration::from_millis(10), Duration::from_millis(40));
    for (i, &loc) in locations.iter().enumerate() {
        let mut node_config = net.config(i, loc);
        node_config.max_htl = config.max_htl;
        node_config.swap_age = config.swap_age;
        match config.strategy {
            Strategy::Hyphanet => node_config.strategy = crate::RoutingStrategy::Greedy,
            // Inserts keep HTL max_htl; fetches get 255 (set below, before the fetches).
            Strategy::NextBestOnce => node_config.strategy = crate::RoutingStrategy::Greedy,
            Strategy::RandomWalk => node_config.strategy = crate::RoutingStrategy::RandomWalk,
            Strategy::Pamphlet | Strategy::Flooding | Strategy::Chord => {}
        }
        node_config.swap.check_neighbours = config.defences;
        node_config.swap.reset_probability = config.reset_probability;
        if !config.defences {
            // Hyphanet's rules: believe every "not found".
            node_config.not_found_cap = u8::MAX;
            node_config.refuse_false_insert_not_found = false;
        }
        let store = match config.store_blocks {
            Some(b) => MemoryStore::new(b * CHK_BLOCK_LEN as u64, b * CHK_BLOCK_LEN as u64),
            None => MemoryStore::default(),
        };
        net.add_node_with(node_config, store);
    }
    let edges = topo.edges();
    net.connect_many(&edges);
    // One LocationUpdate per link end: more steps than one operation may take at scale.
    net.run_bounded(u64::MAX);

    // Adversaries.
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rng);
    let attackers = match &config.attack {
        Some(a) => ((a.fraction * n as f64).round() as usize).min(n),
        None => 0,
    };
    if config.attack.is_some_and(|a| a.kind == AttackKind::Eclipse) {
        // Sybils placed around the first document's key: the nodes closest to it.
        let (first, _) = chk::encode(document_text(0, config.seed).as_bytes(), ChkFlags::default())?;
        let target = Location::of_key(&Block::Chk(first).routing_key());
        order.sort_by_key(|&i| (net.node(i).location().distance(target), i));
    }
    let mut is_attacker = vec![false; n];
    for &i in &order[..attackers] {
        is_attacker[i] = true;
    }
    let honest: Vec<usize> = (0..n).filter(|&i| !is_attacker[i]).collect();
    if honest.len() < 3 {
        return Err(SimError::TooSmall(honest.len()));
    }
    if let Some(a) = &config.attack {
        attack::install(&mut net, a, &is_attacker, &mut rng);
    }

    // Swap rounds.
    let (swaps, swap_trace) = swap_rounds(&mut net, &topo, config, config.swap_rounds, config.trace_every, &mut rng);

    // Inserts.
    let mut docs = Vec::with_capacity(config.docs.max(1));
    let mut inserts_ok = 0;
    for d in 0..config.docs.max(1) {
        let (block, _) = chk::encode(document_text(d, config.seed).as_bytes(), ChkFlags::default())?;
        let block = Block::Chk(block);
        let from = honest[rng.gen_range(0..honest.len())];
        let op = net.insert(from, block.clone());
        net.run_bounded(OP_STEPS);
        let ok = net.take_events(from).iter().any(|e| matches!(e, Event::InsertSucceeded { op: o, .. } if *o == op));
        inserts_ok += usize::from(ok);
        docs.push((from, block));
    }

    // Cache flushing: warm every document once, then flood the network with junk.
    if config.junk_inserts > 0 {
        for (inserter, block) in &docs {
            let from = honest.iter().copied().find(|&c| c != *inserter).unwrap_or(*inserter);
            net.fetch(from, BlockKind::Chk, block.routing_key());
            net.run_bounded(OP_STEPS);
            net.take_events(from);
        }
        for j in 0..config.junk_inserts {
            let text = format!("junk {j} of run {}", config.seed);
            let (block, _) = chk::encode(text.as_bytes(), ChkFlags::default())?;
            let from = rng.gen_range(0..n);
            net.insert(from, Block::Chk(block));
            net.run_bounded(OP_STEPS);
            net.take_events(from);
        }
    }

    // Fetches.
    if config.strategy == Strategy::NextBestOnce {
        for i in 0..n {
            net.node_mut(i).set_max_htl(u8::MAX);
        }
    }
    let mut online = vec![true; n];
    let mut churn_leaves = 0;
    let forged_before: u64 = (0..n).map(|i| net.node(i).stats().forged_blocks).sum();
    let counts_before = net.counts();
    let received_before: Vec<u64> = (0..n).map(|i| net.received(i)).collect();
    let (mut successes, mut invalid) = (0usize, 0usize);
    let mut hops = Vec::with_capacity(config.requests);
    let (mut guesses, mut correct, mut ids_on_two_links) = (0u64, 0u64, 0u64);
    // Neighbour-list updates caused by churn are not the fetches' messages.
    let mut churn_messages = 0u64;
    net.set_recording(config.observe);
    for r in 0..config.requests {
        if config.churn > 0.0 && rng.gen::<f64>() < config.churn {
            let before = net.counts().messages;
            churn_leaves += churn(&mut net, &topo, &honest, &mut online, &mut rng);
            churn_messages += net.counts().messages - before;
        }
        let (inserter, block) = &docs[r % docs.len()];
        let from = loop {
            let c = honest[rng.gen_range(0..honest.len())];
            if c != *inserter && online[c] {
                break c;
            }
        };
        let before = net.counts().data_requests;
        net.clear_transcript();
        let op = net.fetch(from, BlockKind::Chk, block.routing_key());
        net.run_bounded(OP_STEPS);
        if config.observe {
            let (mut g, mut c, t) = observe(&net, from, config.max_htl);
            if config.attack.is_some_and(|a| a.kind == AttackKind::TimingProber) {
                // The probers' guesses replace the passive ones (docs/security.md).
                (g, c) = attack::probe_guesses(net.transcript(), from, &is_attacker, config.max_htl);
            }
            guesses += g;
            correct += c;
            ids_on_two_links += t;
        }
        for e in net.take_events(from) {
            if let Event::FetchSucceeded { op: o, block: got, .. } = e {
                if o != op {
                    continue;
                }
                if got == *block {
                    successes += 1;
                    hops.push(net.counts().data_requests - before);
                } else {
                    invalid += 1;
                }
            }
        }
    }
    net.set_recording(false);
    net.clear_transcript();
    let counts = net.counts();
    let absent_before = counts.messages;
    for a in 0..config.absent_requests {
        let key = pamphlet_crypto::RoutingKey(rng.gen());
        let from = honest[rng.gen_range(0..honest.len())];
        let _ = a;
        net.fetch(from, BlockKind::Chk, key);
        net.run_bounded(OP_STEPS);
        net.take_events(from);
    }
    let messages_per_absent_request =
        (net.counts().messages - absent_before) as f64 / config.absent_requests.max(1) as f64;
    let requests = config.requests.max(1) as f64;
    let loads: Vec<u64> = (0..n).map(|i| net.received(i) - received_before[i]).collect();
    let forged_after: u64 = (0..n).map(|i| net.node(i).stats().forged_blocks).sum();
    let stored: u64 = (0..n)
        .map(|i| {
            let s = crate::store::BlockStore::stats(net.node(i).store());
            s.store_bytes + s.cache_bytes
        })
        .sum();

    let location_ks_measured = location_ks(&net, &honest);
    let mean_link = mean_link_length(&net, &topo);
    let (mut recovery_success_rate, mut recovery_location_ks) = (None, None);
    if config.recovery_rounds > 0 {
        for (i, _) in is_attacker.iter().enumerate().filter(|(_, a)| **a) {
            net.clear_filter(i);
        }
        swap_rounds(&mut net, &topo, config, config.recovery_rounds, 0, &mut rng);
        recovery_location_ks = Some(location_ks(&net, &honest));
        recovery_success_rate = Some(fresh_success(&mut net, &honest, &mut rng, config)?);
    }

    hops.sort_unstable();
    Ok(Report {
        strategy: config.strategy.name(),
        swap_mode: config.swap_mode.name(),
        seed: config.seed,
        nodes: n,
        edges: edges.len(),
        mean_degree: topo.mean_degree(),
        attackers,
        requests: config.requests,
        successes,
        success_rate: successes as f64 / requests,
        invalid_accepted: invalid,
        hops_median: percentile(&hops, 0.5),
        hops_p95: percentile(&hops, 0.95),
        hops_max: hops.last().copied().unwrap_or(0),
        hops,
        messages_per_request: (counts.messages - counts_before.messages - churn_messages) as f64 / requests,
        busiest_node_load: loads.iter().copied().max().unwrap_or(0) as f64 / requests,
        mean_node_load: loads.iter().sum::<u64>() as f64 / n as f64 / requests,
        inserts_ok,
        inserts: docs.len(),
        forged_rejected: forged_after - forged_before,
        swaps_attempted: swaps.attempted,
        swaps_done: swaps.done,
        swaps_kept: swaps.kept,
        swaps_refused: swaps.refused,
        swaps_implausible: swaps.implausible,
        swaps_timed_out: swaps.timed_out,
        swap_trace,
        mean_link_length: mean_link,
        location_ks: location_ks_measured,
        htl_guess_precision: (config.observe && guesses > 0).then(|| correct as f64 / guesses as f64),
        htl_guesses: guesses,
        ids_on_two_links,
        recovery_success_rate,
        recovery_location_ks,
        churn_leaves,
        messages_per_absent_request,
        stored_bytes_per_node: stored as f64 / n as f64,
        virtual_seconds: net.elapsed().as_secs_f64(),
    })
}

/// The two passive attacks on one fetch's transcript: (guesses at max HTL, correct ones,
/// ids seen on two links).
fn observe(net: &Network, origin: usize, max_htl: u8) -> (u64, u64, u64) {
    let (mut g, mut c) = (0, 0);
    let mut links: std::collections::HashMap<u64, (usize, usize)> = std::collections::HashMap::new();
    let mut reused = 0;
    for sent in net.transcript() {
        if let crate::wire::message::Message::DataRequest { id, htl, .. } = sent.msg {
            if htl >= max_htl {
                g += 1;
                c += u64::from(sent.from == origin);
            }
            match links.insert(id, (sent.from, sent.to)) {
                Some(l) if l != (sent.from, sent.to) => reused += 1,
                _ => {}
            }
        }
    }
    (g, c, reused)
}

/// The plaintext of measured document `d`.
fn document_text(d: usize, seed: u64) -> String {
    format!("pamphlet simulator document {d} of run {seed}")
}

/// Flooding or Chord: lookups computed on the graph (see `reference.rs`).
fn reference_run(config: &SimConfig, topo: &Topology, rng: &mut ChaCha8Rng) -> Report {
    let n = topo.len();
    let chord = (config.strategy == Strategy::Chord).then(|| reference::Chord::new(n, rng));
    let holders: Vec<(usize, u64)> = (0..config.docs.max(1)).map(|_| (rng.gen_range(0..n), rng.gen())).collect();
    let (mut ok, mut messages, mut hops) = (0usize, 0u64, Vec::new());
    for r in 0..config.requests {
        let (holder, key) = holders[r % holders.len()];
        let from = rng.gen_range(0..n);
        let (found, h, m) = match &chord {
            Some(c) => c.lookup(from, key),
            None => reference::flood(topo, from, holder, config.max_htl.min(7)),
        };
        messages += m;
        if found {
            ok += 1;
            hops.push(h);
        }
    }
    hops.sort_unstable();
    let requests = config.requests.max(1) as f64;
    Report {
        strategy: config.strategy.name(),
        swap_mode: config.swap_mode.name(),
        seed: config.seed,
        nodes: n,
        edges: if chord.is_some() { n * 64 } else { topo.edges().len() },
        mean_degree: if chord.is_some() { 64.0 } else { topo.mean_degree() },
        attackers: 0,
        requests: config.requests,
        successes: ok,
        success_rate: ok as f64 / requests,
        invalid_accepted: 0,
        hops_median: percentile(&hops, 0.5),
        hops_p95: percentile(&hops, 0.95),
        hops_max: hops.last().copied().unwrap_or(0),
        hops,
        messages_per_request: messages as f64 / requests,
        busiest_node_load: 0.0,
        mean_node_load: 0.0,
        inserts_ok: 0,
        inserts: 0,
        forged_rejected: 0,
        swaps_attempted: 0,
        swaps_done: 0,
        swaps_kept: 0,
        swaps_refused: 0,
        swaps_implausible: 0,
        swaps_timed_out: 0,
        swap_trace: Vec::new(),
        mean_link_length: 0.0,
        location_ks: 0.0,
        churn_leaves: 0,
        messages_per_absent_request: 0.0,
        htl_guess_precision: None,
        htl_guesses: 0,
        ids_on_two_links: 0,
        recovery_success_rate: None,
        recovery_location_ks: None,
        stored_bytes_per_node: 0.0,
        virtual_seconds: 0.0,
    }
}

/// Inserts `config.docs` new documents and fetches them `config.requests` times between
/// honest nodes; returns the success rate.
fn fresh_success(
    net: &mut Network,
    honest: &[usize],
    rng: &mut ChaCha8Rng,
    config: &SimConfig,
) -> Result<f64, SimError> {
    let mut docs = Vec::new();
    for d in 0..config.docs.max(1) {
        let text = format!("pamphlet simulator recovery document {d} of run {}", config.seed);
        let (block, _) = chk::encode(text.as_bytes(), ChkFlags::default())?;
        let block = Block::Chk(block);
        let from = honest[rng.gen_range(0..honest.len())];
        net.insert(from, block.clone());
        net.run_bounded(OP_STEPS);
        net.take_events(from);
        docs.push((from, block));
    }
    let mut ok = 0usize;
    for r in 0..config.requests {
        let (inserter, block) = &docs[r % docs.len()];
        let from = loop {
            let c = honest[rng.gen_range(0..honest.len())];
            if c != *inserter {
                break c;
            }
        };
        net.fetch(from, BlockKind::Chk, block.routing_key());
        net.run_bounded(OP_STEPS);
        ok += net
            .take_events(from)
            .iter()
            .filter(|e| matches!(e, Event::FetchSucceeded { block: got, .. } if got == block))
            .count();
    }
    Ok(ok as f64 / config.requests.max(1) as f64)
}

/// Virtual time between two nodes' swap starts within a round: swaps overlap a little
/// (as they would in a real network) without most endpoints being busy.
const SWAP_STAGGER: Duration = Duration::from_millis(5);

/// Runs `rounds` swap rounds (every node starts one swap per round, in a random order) in
/// the configured [`SwapMode`]; returns the swap counters of these rounds summed over all
/// nodes, and a trace point every `trace_every` rounds (none if 0).
fn swap_rounds(
    net: &mut Network,
    topo: &Topology,
    config: &SimConfig,
    rounds: usize,
    trace_every: usize,
    rng: &mut ChaCha8Rng,
) -> (SwapCounts, Vec<TracePoint>) {
    if config.swap_mode == SwapMode::Direct {
        return direct_swap::run_rounds(net, topo, rounds, trace_every, config.defences, rng);
    }
    let n = net.len();
    let before = totals(net);
    let mut trace = Vec::new();
    let mut order: Vec<usize> = (0..n).collect();
    for round in 1..=rounds {
        order.shuffle(rng);
        for &i in &order {
            net.run_for(SWAP_STAGGER);
            let now = net.now();
            net.node_mut(i).start_swap(now);
            net.flush(i);
        }
        net.run_bounded(OP_STEPS);
        if trace_every > 0 && (round % trace_every == 0 || round == rounds) {
            trace.push(TracePoint {
                round,
                mean_link_length: mean_link_length(net, topo),
                swaps: totals(net) - before,
            });
        }
    }
    (totals(net) - before, trace)
}

fn totals(net: &Network) -> SwapCounts {
    let mut c = SwapCounts::default();
    for i in 0..net.len() {
        let s = net.node(i).stats();
        c.attempted += s.swaps_attempted;
        c.done += s.swaps_done;
        c.kept += s.swaps_kept;
        c.refused += s.swaps_refused;
        c.implausible += s.swaps_implausible;
        c.timed_out += s.swaps_timed_out;
    }
    c
}

/// One node leaves (its links drop) and, if any is away, one comes back (its links to
/// online neighbours return). Returns how many left.
fn churn(net: &mut Network, topo: &Topology, honest: &[usize], online: &mut [bool], rng: &mut ChaCha8Rng) -> usize {
    let away: Vec<usize> = (0..online.len()).filter(|&i| !online[i]).collect();
    if let Some(&back) = away.choose(rng) {
        online[back] = true;
        let edges: Vec<(usize, usize)> =
            topo.adjacency[back].iter().map(|&j| j as usize).filter(|&j| online[j]).map(|j| (back, j)).collect();
        net.connect_many(&edges);
    }
    let leaving = honest[rng.gen_range(0..honest.len())];
    if !online[leaving] {
        return 0;
    }
    online[leaving] = false;
    for &j in &topo.adjacency[leaving] {
        net.disconnect(leaving, j as usize);
    }
    net.run_bounded(OP_STEPS);
    1
}

/// The `q` quantile of sorted values (nearest rank), 0 when empty.
fn percentile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64
}

/// Mean over nodes of the mean circular distance to their graph neighbours.
pub fn mean_link_length(net: &Network, topo: &Topology) -> f64 {
    let locations: Vec<Location> = (0..net.len()).map(|i| net.node(i).location()).collect();
    mean_link_length_of(topo, &locations)
}

/// [`mean_link_length`] with node `i` at `locations[i]`.
fn mean_link_length_of(topo: &Topology, locations: &[Location]) -> f64 {
    let mut total = 0.0;
    let mut counted = 0usize;
    for (i, nbrs) in topo.adjacency.iter().enumerate() {
        if nbrs.is_empty() {
            continue;
        }
        let li = locations[i];
        let sum: f64 = nbrs.iter().map(|&j| li.distance_f64(locations[j as usize])).sum();
        total += sum / nbrs.len() as f64;
        counted += 1;
    }
    total / counted.max(1) as f64
}

/// Kolmogorov–Smirnov distance between the nodes' locations and the uniform distribution.
pub fn location_ks(net: &Network, nodes: &[usize]) -> f64 {
    let mut locs: Vec<f64> = nodes.iter().map(|&i| net.node(i).location().as_f64()).collect();
    locs.sort_by(f64::total_cmp);
    let m = locs.len() as f64;
    locs.iter()
        .enumerate()
        .map(|(k, &x)| (x - k as f64 / m).abs().max(((k + 1) as f64 / m - x).abs()))
        .fold(0.0, f64::max)
}
