//! The deterministic simulator: many [`Node`](crate::Node)s in one process, in virtual
//! time, with a seed (feature `sim`).
//!
//! Layout:
//! - [`network`]: the harness, N nodes joined by an in-memory queue in virtual time (the
//!   routing tests drive it too);
//! - [`config`]: what a run simulates ([`SimConfig`], [`Strategy`], [`SwapMode`],
//!   [`TopologyKind`]) and the `NodeConfig` each node gets;
//! - [`topology`]: the graphs (darknet small world, uniform random, edge list);
//! - [`attack`]: adversaries, as filters on their nodes' outgoing messages, and the
//!   passive observers;
//! - `workload`: the documents (encoded once) and the phases that insert and fetch them;
//! - `direct_swap`: swap rounds as a central chain, for networks too large for the
//!   message-level swap protocol ([`SwapMode::Direct`]);
//! - [`opennet`]: the opennet run (`--topology opennet`): seeds, announcement, path
//!   folding and churn on the same `Node`s, and a Sybil adversary;
//! - `reference`: flooding and Chord, computed on the graph;
//! - `freenet2000`: the original Freenet's key-closeness routing tables (Clarke et al.
//!   2000), computed on their own data structures;
//! - [`durability`]: the long-run durability model (`pamphlet sim --days`): months of
//!   churn and store pressure, routes computed on the graph (docs/durability.md);
//! - [`report`]: the [`Report`] and the one builder every run fills;
//! - this file: [`run`], the script of a run (build, attackers, swap rounds, inserts,
//!   fetches, absent keys, recovery, report), and [`SimError`].
//!
//! Every simulated node runs the very same `Node` code as a real one, so a routing bug seen
//! here is a bug in the real node. Nothing here reads a wall clock or the environment: the
//! caller passes the base `Instant` of the virtual clock, and all randomness comes from the
//! seed. The same [`SimConfig`] gives the same [`Report`], field for field.
//!
//! Requests run one after another (each until the network is idle), so each request's
//! hops and messages are exact counts, not estimates from overlapping traffic. An operation
//! that does not let the network go idle within its step budget fails the run
//! ([`SimError::Stuck`]) rather than counting as a failed request.

pub mod attack;
pub mod config;
mod direct_swap;
pub mod durability;
mod flusher;
mod freenet2000;
pub mod network;
pub mod opennet;
mod reference;
pub mod report;
pub mod topology;
mod workload;

use std::fmt;
use std::time::{Duration, Instant};

use pamphlet_crypto::CHK_BLOCK_LEN;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::location::Location;
use crate::store::memory::MemoryStore;
use network::Network;
use report::ReportBuilder;
use workload::Documents;

pub use attack::{Attack, AttackKind};
pub use config::{SimConfig, Strategy, SwapMode, TopologyKind};
pub use report::{Report, RequestRound, SwapCounts, TracePoint};
pub use topology::{Placement, Topology, TopologyError};

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
    /// An operation kept the network busy past its step budget: messages or timers still
    /// pending, so its outcome (and every figure after it) would be a guess. A bug in the
    /// node or the harness; replay with the seed.
    #[error("seed {seed}: the network was still busy after {steps} steps during {phase}")]
    Stuck {
        /// What was running.
        phase: Phase,
        /// The step budget it exhausted.
        steps: u64,
        /// The run's seed.
        seed: u64,
    },
}

/// A step of a run, to say what got stuck ([`SimError::Stuck`]). Indices count from 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Phase {
    /// Connecting the graph (every node advertises its location to its peers).
    Build,
    /// A message-level swap round (1-based), of the recovery rounds if `recovery`.
    SwapRound {
        /// The round, from 1.
        round: usize,
        /// One of the rounds after the attack stopped.
        recovery: bool,
    },
    /// Moving nodes to where direct swap rounds put them.
    DirectSwapMoves,
    /// Inserting measured document `d`.
    Insert(usize),
    /// Fetching document `d` once to cache it before the junk inserts.
    Warm(usize),
    /// Junk insert `j`.
    Junk(usize),
    /// A node leaving before measured fetch `r`.
    Churn(usize),
    /// Measured fetch `r`.
    Fetch(usize),
    /// Fetch `a` of a key nobody inserted.
    Absent(usize),
    /// Inserting fresh document `d` after the recovery rounds.
    RecoveryInsert(usize),
    /// Fetch `r` of the fresh documents after the recovery rounds.
    RecoveryFetch(usize),
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Phase::Build => write!(f, "the build (location advertisements)"),
            Phase::SwapRound { round, recovery: false } => write!(f, "swap round {round}"),
            Phase::SwapRound { round, recovery: true } => write!(f, "recovery swap round {round}"),
            Phase::DirectSwapMoves => write!(f, "the moves after the direct swap rounds"),
            Phase::Insert(d) => write!(f, "the insert of document {d}"),
            Phase::Warm(d) => write!(f, "the warming fetch of document {d}"),
            Phase::Junk(j) => write!(f, "junk insert {j}"),
            Phase::Churn(r) => write!(f, "a node leaving before fetch {r}"),
            Phase::Fetch(r) => write!(f, "measured fetch {r}"),
            Phase::Absent(a) => write!(f, "absent-key fetch {a}"),
            Phase::RecoveryInsert(d) => write!(f, "the insert of recovery document {d}"),
            Phase::RecoveryFetch(r) => write!(f, "recovery fetch {r}"),
        }
    }
}

/// Steps one operation may take before it counts as stuck.
const OP_STEPS: u64 = 2_000_000;

/// Runs the network until it is idle, or fails with [`SimError::Stuck`] after `steps`.
fn settle(net: &mut Network, steps: u64, phase: Phase) -> Result<(), SimError> {
    if net.run_bounded(steps) {
        Ok(())
    } else {
        Err(SimError::Stuck { phase, steps, seed: net.seed() })
    }
}

/// Runs the simulation. `base` is the virtual clock's origin (any `Instant`; only
/// differences from it matter, so the result does not depend on it).
pub fn run(config: &SimConfig, base: Instant) -> Result<Report, SimError> {
    config.check()?;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let topo = config.graph(&mut rng);
    if config.strategy == Strategy::Freenet2000 {
        return Ok(freenet2000::run(config, &topo, &mut rng));
    }
    if config.is_reference() {
        return Ok(reference::run(config, &topo, &mut rng));
    }
    let docs = Documents::new(config)?;
    let mut sim = Sim::build(config, topo, base, rng)?;
    sim.place_attackers(&docs)?;
    let (swaps, trace) = sim.swap_rounds(config.swap_rounds, config.trace_every, false)?;
    (sim.report.swaps, sim.report.swap_trace) = (swaps, trace);
    sim.insert(&docs)?;
    sim.flush_caches(&docs)?;
    sim.fetch(&docs)?;
    sim.fetch_absent()?;
    sim.measure();
    sim.recover(&docs)?;
    sim.report.virtual_seconds = sim.net.elapsed().as_secs_f64();
    Ok(sim.report.finish(config))
}

/// One node-based run in progress: the network, its graph, who attacks, and the report so
/// far. The phases are its methods (here and in `workload.rs`), called in order by [`run`].
struct Sim<'a> {
    config: &'a SimConfig,
    topo: Topology,
    net: Network,
    /// The run's RNG after the graph was drawn: every later draw, in phase order.
    rng: ChaCha8Rng,
    is_attacker: Vec<bool>,
    /// Nodes that are not attackers (who inserts and fetches).
    honest: Vec<usize>,
    /// Who inserted each measured document.
    inserters: Vec<usize>,
    report: ReportBuilder,
}

impl<'a> Sim<'a> {
    /// The nodes at their starting locations, with their configs and stores, linked as
    /// `topo` says, their location advertisements delivered.
    fn build(config: &'a SimConfig, topo: Topology, base: Instant, mut rng: ChaCha8Rng) -> Result<Self, SimError> {
        let n = topo.len();
        let locations: Vec<Location> = match config.placement {
            Placement::Ideal => (0..n).map(|i| Location::from_f64(i as f64 / n as f64)).collect(),
            Placement::Random => (0..n).map(|_| Location(rng.gen())).collect(),
        };
        let mut net = Network::new(config.seed, base);
        net.set_recording(false);
        net.set_latency(Duration::from_millis(10), Duration::from_millis(40));
        for (i, &loc) in locations.iter().enumerate() {
            let node_config = config.node_config(net.config(i, loc));
            let store = match config.store_blocks {
                Some(b) => MemoryStore::new(b * CHK_BLOCK_LEN as u64, b * CHK_BLOCK_LEN as u64),
                None => MemoryStore::default(),
            };
            net.add_node_with(node_config, store);
        }
        let edges = topo.edges();
        net.connect_many(&edges);
        // One LocationUpdate per link end: more steps than one operation may take at scale.
        settle(&mut net, u64::MAX, Phase::Build)?;
        let report =
            ReportBuilder { nodes: n, edges: edges.len(), mean_degree: topo.mean_degree(), ..ReportBuilder::default() };
        Ok(Sim {
            config,
            topo,
            net,
            rng,
            is_attacker: vec![false; n],
            honest: (0..n).collect(),
            inserters: Vec::new(),
            report,
        })
    }

    /// Picks the attackers (random nodes, or for an eclipse the nodes closest to the first
    /// document's key) and installs their behaviour.
    fn place_attackers(&mut self, docs: &Documents) -> Result<(), SimError> {
        let n = self.net.len();
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut self.rng);
        let attackers = match &self.config.attack {
            Some(a) => ((a.fraction * n as f64).round() as usize).min(n),
            None => 0,
        };
        if self.config.attack.is_some_and(|a| a.kind == AttackKind::Eclipse) {
            // Sybils placed around the first document's key: the nodes closest to it.
            let target = Location::of_key(&docs.measured[0].routing_key());
            order.sort_by_key(|&i| (self.net.node(i).location().distance(target), i));
        }
        for &i in &order[..attackers] {
            self.is_attacker[i] = true;
        }
        self.honest = (0..n).filter(|&i| !self.is_attacker[i]).collect();
        if self.honest.len() < 3 {
            return Err(SimError::TooSmall(self.honest.len()));
        }
        if let Some(a) = &self.config.attack {
            attack::install(&mut self.net, a, &self.is_attacker, &mut self.rng);
        }
        self.report.attackers = attackers;
        Ok(())
    }

    /// Runs `rounds` swap rounds (every node starts one swap per round, in a random order)
    /// in the configured [`SwapMode`]; returns the swap counters of these rounds summed over
    /// all nodes, and a trace point every `trace_every` rounds (none if 0).
    fn swap_rounds(
        &mut self,
        rounds: usize,
        trace_every: usize,
        recovery: bool,
    ) -> Result<(SwapCounts, Vec<TracePoint>), SimError> {
        let (net, topo, rng) = (&mut self.net, &self.topo, &mut self.rng);
        if self.config.swap_mode == SwapMode::Direct {
            return direct_swap::run_rounds(net, topo, rounds, trace_every, self.config.defences, rng);
        }
        let before = totals(net);
        let mut trace = Vec::new();
        let mut order: Vec<usize> = (0..net.len()).collect();
        for round in 1..=rounds {
            order.shuffle(rng);
            for &i in &order {
                net.run_for(SWAP_STAGGER);
                let now = net.now();
                net.node_mut(i).start_swap(now);
                net.flush(i);
            }
            settle(net, OP_STEPS, Phase::SwapRound { round, recovery })?;
            if trace_every > 0 && (round % trace_every == 0 || round == rounds) {
                trace.push(TracePoint {
                    round,
                    mean_link_length: mean_link_length(net, topo),
                    swaps: totals(net) - before,
                });
            }
        }
        Ok((totals(net) - before, trace))
    }

    /// The state of the network after the measured fetches: locations, link lengths, what
    /// the nodes store.
    fn measure(&mut self) {
        let net = &self.net;
        self.report.stored_bytes = (0..net.len())
            .map(|i| {
                let s = crate::store::BlockStore::stats(net.node(i).store());
                s.store_bytes + s.cache_bytes
            })
            .sum();
        self.report.location_ks = location_ks(net, &self.honest);
        self.report.mean_link_length = mean_link_length(net, &self.topo);
    }

    /// With `recovery_rounds`: the attackers turn honest, swapping runs on, and fresh
    /// documents are measured.
    fn recover(&mut self, docs: &Documents) -> Result<(), SimError> {
        if self.config.recovery_rounds == 0 {
            return Ok(());
        }
        for (i, _) in self.is_attacker.iter().enumerate().filter(|(_, a)| **a) {
            self.net.clear_filter(i);
        }
        self.swap_rounds(self.config.recovery_rounds, 0, true)?;
        let ks = location_ks(&self.net, &self.honest);
        let rate = self.fresh_success(docs)?;
        self.report.recovery = Some((rate, ks));
        Ok(())
    }
}

/// Virtual time between two nodes' swap starts within a round: swaps overlap a little
/// (as they would in a real network) without most endpoints being busy.
const SWAP_STAGGER: Duration = Duration::from_millis(5);

/// Swap counters summed over every node.
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

#[cfg(test)]
mod tests {
    use super::*;
    use pamphlet_crypto::{BlockKind, RoutingKey};

    /// An operation that does not let the network go idle within its budget is an error
    /// naming it, never a quiet failed request.
    #[test]
    fn a_busy_network_past_its_budget_is_stuck() {
        let mut net = Network::new(42, Instant::now());
        net.line(&[0.1, 0.5, 0.9]);
        settle(&mut net, OP_STEPS, Phase::Build).expect("the advertisements settle");
        net.fetch(0, BlockKind::Chk, RoutingKey([7; 32]));
        match settle(&mut net, 1, Phase::Fetch(3)) {
            Err(e @ SimError::Stuck { phase: Phase::Fetch(3), steps: 1, seed: 42 }) => {
                assert_eq!(e.to_string(), "seed 42: the network was still busy after 1 steps during measured fetch 3");
            }
            other => panic!("expected Stuck, got {other:?}"),
        }
        settle(&mut net, OP_STEPS, Phase::Fetch(3)).expect("the fetch ends given its budget");
    }
}
