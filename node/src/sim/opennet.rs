//! The opennet simulation (`pamphlet sim --topology opennet`, issue 19; docs/opennet.md):
//! every node starts knowing only a few seed nodes, then announcement and path folding,
//! run by the very same `Node` code as a real opennet node, shape the graph.
//!
//! The script: `seeds` seed nodes know each other; the others join one after another
//! (`join_gap` of virtual time apart), each connecting to `seeds_per_node` random seeds
//! and announcing itself; every `upkeep_every` the nodes run their opennet upkeep (announce
//! while below the floor, drop the seeds once at it). Then `docs` single-block documents
//! (SSK blocks, 1 KiB, so 10,000 nodes' caches fit in memory) are inserted from random
//! nodes, and in each of `rounds` rounds every node fetches one random document: the
//! figures per round (success, hops, degree, link length, connections made) show how many
//! requests per node the network needs to become routable. With `churn`, that fraction of
//! the nodes leaves before each round and as many fresh nodes join through the seeds.
//!
//! The Sybil adversary (`sybil`): that fraction of the joining nodes are attackers who take
//! locations within 1/10,000 of the circle around the first document's key, accept every
//! stranger, put their own reference in every path-folding offer they relay, and answer
//! every fetch of that one key with DataNotFound (they serve every other key, so they look
//! useful). Measured: how many of the honest peers of the honest nodes nearest the key are
//! attackers, and how many fetches of the key succeed, with the honest nodes' limits on or
//! off.

use std::time::{Duration, Instant};

use pamphlet_crypto::{ssk, Block, BlockKind, CryptoKey, RoutingKey, SskInsertUri, SskPrivateKey};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::network::Network;
use super::{Phase, SimError};
use crate::id::PeerId;
use crate::location::Location;
use crate::node::{Event, NodeConfig};
use crate::routing::opennet::{Found, Mode, OpennetConfig};
use crate::store::memory::MemoryStore;
use crate::wire::message::Message;

/// What an opennet simulation runs.
#[derive(Clone, Debug, PartialEq)]
pub struct OpennetSimConfig {
    /// Nodes, seeds included.
    pub nodes: usize,
    /// Seed nodes.
    pub seeds: usize,
    /// Seeds each newcomer connects to.
    pub seeds_per_node: usize,
    /// Fetch rounds (one fetch per node per round).
    pub rounds: usize,
    /// Documents inserted before the rounds.
    pub docs: usize,
    /// Fraction of the nodes replaced before each round.
    pub churn: f64,
    /// The run's seed.
    pub seed: u64,
    /// Peer floor and ceiling of every node.
    pub floor: usize,
    /// See `floor`.
    pub ceiling: usize,
    /// The honest nodes' limits (grace period, replacement rate, announcement rate, seed cap).
    pub limits: bool,
    /// Hyphanet's link-length classes (`OpennetConfig::link_classes`).
    pub link_classes: bool,
    /// Fraction of the joining nodes that are Sybils around the first document's key.
    pub sybil: f64,
    /// Virtual time between two joins.
    pub join_gap: Duration,
    /// Hops-to-live of requests.
    pub max_htl: u8,
}

impl Default for OpennetSimConfig {
    fn default() -> Self {
        OpennetSimConfig {
            nodes: 1000,
            seeds: 5,
            seeds_per_node: 2,
            rounds: 50,
            docs: 200,
            churn: 0.0,
            seed: 1,
            floor: OpennetConfig::default().floor,
            ceiling: OpennetConfig::default().ceiling,
            limits: true,
            link_classes: true,
            sybil: 0.0,
            join_gap: Duration::from_millis(500),
            max_htl: 18,
        }
    }
}

/// One round's figures.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Round {
    /// The round, from 1: every node has made this many requests.
    pub round: usize,
    /// Fetches.
    pub requests: usize,
    /// `successes / requests`.
    pub success_rate: f64,
    /// Median hops of the successful fetches.
    pub hops_median: f64,
    /// 95th percentile of the same.
    pub hops_p95: f64,
    /// Mean peers per node.
    pub mean_degree: f64,
    /// Mean over nodes of the mean circular distance to their peers.
    pub mean_link_length: f64,
    /// Mean short links per node (peers within `OpennetConfig::long_distance`).
    pub mean_short_links: f64,
    /// Strangers admitted during the round, counted at both ends (path folding and
    /// announcements).
    pub admitted: u64,
    /// Strangers dropped for better ones during the round.
    pub replaced: u64,
    /// Failed fetches whose block no node online held any more (lost to churn, not to
    /// routing).
    pub failed_lost: usize,
    /// Connected components among the nodes online at the end of the round.
    pub components: usize,
}

/// What an opennet run measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OpennetReport {
    /// The seed.
    pub seed: u64,
    /// Nodes, seeds included.
    pub nodes: usize,
    /// Seeds.
    pub seeds: usize,
    /// After the joins: mean peers per node.
    pub bootstrap_mean_degree: f64,
    /// After the joins: nodes (seeds not counted) below the floor.
    pub bootstrap_below_floor: usize,
    /// After the joins: the most newcomers a seed held.
    pub seed_max_strangers: usize,
    /// Announcements started over the whole join phase.
    pub announcements: u64,
    /// Announcements refused for the rate limit (join phase).
    pub announcements_refused: u64,
    /// References offered in answer to announcements (join phase).
    pub announcement_offers: u64,
    /// Connections refused by one end (join phase).
    pub refused_links: u64,
    /// After the joins: connected components of the graph (1: one network).
    pub bootstrap_components: usize,
    /// Messages per node in the join phase.
    pub join_messages_per_node: f64,
    /// Inserts that succeeded / started.
    pub inserts_ok: usize,
    /// See `inserts_ok`.
    pub inserts: usize,
    /// The rounds.
    pub rounds: Vec<Round>,
    /// The first round from which on every round reached success >= 0.99 and median hops
    /// <= 6 (the target), if any.
    pub routable_after: Option<usize>,
    /// Attackers (Sybils).
    pub attackers: usize,
    /// With Sybils: of the honest peers of the 20 honest nodes closest to the target key,
    /// the fraction that are attackers.
    pub sybil_peer_share: Option<f64>,
    /// With Sybils: success rate of the fetches of the target key in the last round.
    pub target_success: Option<f64>,
    /// Virtual seconds the run simulated.
    pub virtual_seconds: f64,
}

/// Steps one operation may take.
const OP_STEPS: u64 = 2_000_000;

fn settle(net: &mut Network, phase: Phase) -> Result<(), SimError> {
    if net.run_bounded(OP_STEPS) {
        Ok(())
    } else {
        Err(SimError::Stuck { phase, steps: OP_STEPS, seed: net.seed() })
    }
}

/// How often (virtual) every node runs its opennet upkeep during the joins.
const UPKEEP_EVERY: Duration = Duration::from_secs(10);

struct Run<'a> {
    cfg: &'a OpennetSimConfig,
    net: Network,
    rng: ChaCha8Rng,
    attacker: Vec<bool>,
    /// Nodes online.
    online: Vec<bool>,
    target: Location,
    /// Opennet counters of the nodes churn replaced (so sums over the run never fall).
    retired: Vec<crate::node::OpennetStats>,
}

/// Runs an opennet simulation; `base` is the virtual clock's origin.
pub fn run(cfg: &OpennetSimConfig, base: Instant) -> Result<OpennetReport, SimError> {
    if cfg.nodes < cfg.seeds + 3 || cfg.seeds == 0 {
        return Err(SimError::TooSmall(cfg.nodes.saturating_sub(cfg.seeds)));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let docs = documents(cfg.docs.max(1), cfg.seed)?;
    let target = Location::of_key(&docs[0].routing_key());
    let mut net = Network::new(cfg.seed, base);
    net.set_recording(false);
    net.set_latency(Duration::from_millis(10), Duration::from_millis(40));
    let attackers = ((cfg.nodes - cfg.seeds) as f64 * cfg.sybil).round() as usize;
    let mut attacker = vec![false; cfg.nodes];
    // Attackers are spread over the join order (every k-th joiner).
    if let Some(every) = (cfg.nodes - cfg.seeds).checked_div(attackers) {
        for a in 0..attackers {
            attacker[cfg.seeds + a * every] = true;
        }
    }
    for (i, &is_attacker) in attacker.iter().enumerate() {
        let loc = if is_attacker {
            Location(target.0.wrapping_add(rng.gen_range(0..u64::MAX / 10_000)).wrapping_sub(u64::MAX / 20_000))
        } else {
            Location(rng.gen())
        };
        let config = node_config(cfg, net.config(i, loc), i, is_attacker);
        net.add_node_with(config, MemoryStore::new(128 * 1024, 128 * 1024));
        if is_attacker {
            let key = docs[0].routing_key();
            net.set_filter(i, Box::new(move |_, m| withhold(&key, m)));
        }
    }
    let mut run = Run { cfg, net, rng, attacker, online: vec![true; cfg.nodes], target, retired: Vec::new() };
    let mut report = run.join_all()?;
    report.attackers = attackers;
    let (ok, total) = run.insert(&docs)?;
    (report.inserts_ok, report.inserts) = (ok, total);
    let mut admitted = run.sum(|s| s.admitted);
    let mut replaced = run.sum(|s| s.replaced);
    for round in 1..=cfg.rounds {
        // Under churn the nodes that stored the documents leave: their publishers insert
        // them again before every round, so the rounds measure routing, not data loss.
        if cfg.churn > 0.0 && round > 1 {
            run.insert(&docs)?;
        }
        let (r, target_success) = run.round(round, &docs)?;
        let (a, p) = (run.sum(|s| s.admitted), run.sum(|s| s.replaced));
        report.rounds.push(Round { admitted: a - admitted, replaced: p - replaced, ..r });
        (admitted, replaced) = (a, p);
        report.target_success = target_success;
    }
    report.routable_after = report
        .rounds
        .iter()
        .rposition(|r| r.success_rate < 0.99 || r.hops_median > 6.0)
        .map_or(Some(1), |i| (i + 1 < report.rounds.len()).then_some(i + 2));
    if attackers > 0 {
        report.sybil_peer_share = Some(run.sybil_share());
    }
    report.virtual_seconds = run.net.elapsed().as_secs_f64();
    Ok(report)
}

/// A Sybil's filter: every DataFound of the target key becomes DataNotFound.
fn withhold(key: &RoutingKey, m: Message) -> Option<Message> {
    match m {
        Message::DataFound { id, block } if block.routing_key() == *key => Some(Message::DataNotFound { id, htl: 0 }),
        other => Some(other),
    }
}

/// Node `i`'s configuration.
fn node_config(cfg: &OpennetSimConfig, base: NodeConfig, i: usize, attacker: bool) -> NodeConfig {
    let opennet = OpennetConfig {
        mode: Mode::Opennet,
        seed_node: i < cfg.seeds,
        reference: Network::reference(i),
        floor: cfg.floor,
        ceiling: cfg.ceiling,
        limits: cfg.limits,
        link_classes: cfg.link_classes,
        upkeep_interval: None,
        ..OpennetConfig::default()
    };
    let opennet = if attacker {
        // Takes every stranger, offers itself in every fold it relays.
        OpennetConfig { limits: false, ceiling: 10_000, fold_take: 1.0, ..opennet }
    } else {
        opennet
    };
    NodeConfig { max_htl: cfg.max_htl, opennet, ..base }
}

/// `n` single-block documents (SSK, 1 KiB), seeded.
fn documents(n: usize, seed: u64) -> Result<Vec<Block>, SimError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6f70_656e);
    let key = SskPrivateKey::from_seed(rng.gen());
    (0..n)
        .map(|d| {
            let uri = SskInsertUri::new(key.clone(), CryptoKey::from_bytes(rng.gen()), &format!("doc-{d}"), 0, false);
            Ok(Block::Ssk(ssk::encode(&uri, format!("document {d}").as_bytes())?.0))
        })
        .collect()
}

fn percentile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize] as f64
}

impl Run<'_> {
    fn sum(&self, f: impl Fn(crate::node::OpennetStats) -> u64) -> u64 {
        (0..self.net.len()).map(|i| f(self.net.node(i).opennet_stats())).chain(self.retired.iter().map(|&s| f(s))).sum()
    }

    /// Seeds link up, the others join one by one; then the upkeep runs until every node
    /// is at its floor or a minute of virtual time passed without change.
    fn join_all(&mut self) -> Result<OpennetReport, SimError> {
        let (n, seeds) = (self.cfg.nodes, self.cfg.seeds);
        for a in 0..seeds {
            for b in a + 1..seeds {
                self.net.open_link_as(a, b, Found::Seed, Found::Seed);
            }
        }
        let before = self.net.counts().messages;
        // Each node runs its upkeep once per UPKEEP_EVERY, the nodes spread over it (as
        // real nodes' timers are): a round-robin cursor over the nodes joined so far.
        let mut cursor = 0;
        let mut owed = 0.0;
        for i in seeds..n {
            self.net.run_for(self.cfg.join_gap);
            self.join(i);
            owed += (i + 1) as f64 * self.cfg.join_gap.as_secs_f64() / UPKEEP_EVERY.as_secs_f64();
            while owed >= 1.0 {
                owed -= 1.0;
                self.upkeep_one(cursor % (i + 1));
                cursor += 1;
            }
        }
        for _ in 0..30 {
            settle(&mut self.net, Phase::Build)?;
            self.upkeep();
        }
        settle(&mut self.net, Phase::Build)?;
        let messages = self.net.counts().messages - before;
        let below = (seeds..n).filter(|&i| self.net.node(i).peer_ids().len() < self.cfg.floor).count();
        let seed_max = (0..seeds).map(|s| self.net.node(s).stranger_count()).max().unwrap_or(0);
        Ok(OpennetReport {
            seed: self.cfg.seed,
            nodes: n,
            seeds,
            bootstrap_mean_degree: self.mean_degree(),
            bootstrap_below_floor: below,
            seed_max_strangers: seed_max,
            announcements: self.sum(|s| s.announces_started),
            announcements_refused: self.sum(|s| s.announces_refused),
            announcement_offers: self.sum(|s| s.announce_offers),
            refused_links: self.net.refused_links,
            bootstrap_components: self.components(),
            join_messages_per_node: messages as f64 / n as f64,
            inserts_ok: 0,
            inserts: 0,
            rounds: Vec::new(),
            routable_after: None,
            attackers: 0,
            sybil_peer_share: None,
            target_success: None,
            virtual_seconds: 0.0,
        })
    }

    /// Node `i` connects to a few random seeds and announces.
    fn join(&mut self, i: usize) {
        let mut seeds: Vec<usize> = (0..self.cfg.seeds).collect();
        seeds.shuffle(&mut self.rng);
        for &s in seeds.iter().take(self.cfg.seeds_per_node) {
            self.net.open_link(i, s, Found::Seed);
        }
        let now = self.net.now();
        self.net.node_mut(i).opennet_upkeep(now);
        self.net.flush(i);
    }

    /// Every node online runs its upkeep once, the nodes spread over `UPKEEP_EVERY`.
    fn upkeep(&mut self) {
        let step = UPKEEP_EVERY / self.net.len().max(1) as u32;
        for i in 0..self.net.len() {
            self.net.run_for(step);
            self.upkeep_one(i);
        }
    }

    fn upkeep_one(&mut self, i: usize) {
        if self.online[i] {
            let now = self.net.now();
            self.net.node_mut(i).opennet_upkeep(now);
            self.net.flush(i);
        }
        for j in std::mem::take(&mut self.net.need_seeds) {
            self.join(j);
        }
    }

    fn mean_degree(&self) -> f64 {
        let on: Vec<usize> = (0..self.net.len()).filter(|&i| self.online[i]).collect();
        on.iter().map(|&i| self.net.node(i).peer_ids().len()).sum::<usize>() as f64 / on.len().max(1) as f64
    }

    fn mean_short_links(&self) -> f64 {
        let long = OpennetConfig::default().long_distance;
        let on: Vec<usize> = (0..self.net.len()).filter(|&i| self.online[i]).collect();
        let short = on.iter().map(|&i| {
            let node = self.net.node(i);
            let me = node.location();
            node.peer_ids().iter().filter_map(|&p| node.peer(p)).filter(|e| me.distance_f64(e.location) <= long).count()
        });
        short.sum::<usize>() as f64 / on.len().max(1) as f64
    }

    fn mean_link_length(&self) -> f64 {
        let mut total = 0.0;
        let mut counted = 0usize;
        for i in (0..self.net.len()).filter(|&i| self.online[i]) {
            let node = self.net.node(i);
            let ids = node.peer_ids();
            if ids.is_empty() {
                continue;
            }
            let me = node.location();
            let sum: f64 = ids.iter().filter_map(|&p| node.peer(p)).map(|e| me.distance_f64(e.location)).sum();
            total += sum / ids.len() as f64;
            counted += 1;
        }
        total / counted.max(1) as f64
    }

    /// Connected components among the nodes online.
    fn components(&self) -> usize {
        let n = self.net.len();
        let mut seen = vec![false; n];
        let mut count = 0;
        for start in (0..n).filter(|&i| self.online[i]) {
            if seen[start] {
                continue;
            }
            count += 1;
            seen[start] = true;
            let mut stack = vec![start];
            while let Some(i) = stack.pop() {
                for PeerId(p) in self.net.node(i).peer_ids() {
                    if !seen[p as usize] {
                        seen[p as usize] = true;
                        stack.push(p as usize);
                    }
                }
            }
        }
        count
    }

    fn honest_online(&self) -> Vec<usize> {
        (self.cfg.seeds..self.net.len()).filter(|&i| self.online[i] && !self.attacker[i]).collect()
    }

    fn insert(&mut self, docs: &[Block]) -> Result<(usize, usize), SimError> {
        let honest = self.honest_online();
        let mut ok = 0;
        for (d, block) in docs.iter().enumerate() {
            let at = honest[self.rng.gen_range(0..honest.len())];
            self.net.take_events(at);
            self.net.insert(at, block.clone());
            settle(&mut self.net, Phase::Insert(d))?;
            ok += self.net.take_events(at).iter().filter(|e| matches!(e, Event::InsertSucceeded { .. })).count();
        }
        Ok((ok, docs.len()))
    }

    /// Every honest node online fetches one random document. Returns the round's figures
    /// and, with Sybils, the success rate of the fetches of the target key.
    fn round(&mut self, round: usize, docs: &[Block]) -> Result<(Round, Option<f64>), SimError> {
        let mut order = self.honest_online();
        order.shuffle(&mut self.rng);
        let mut hops = Vec::new();
        let (mut target_asked, mut target_ok) = (0usize, 0usize);
        let mut lost = 0;
        let mut made = 0usize;
        // Churn is spread over the round: `churn` of the nodes leave, one every `every`
        // fetches, each replaced at once by a newcomer.
        let leaving = (order.len() as f64 * self.cfg.churn).round() as usize;
        let every = order.len().checked_div(leaving);
        for (k, &i) in order.iter().enumerate() {
            if every.is_some_and(|e| k % e == 0) {
                let honest = self.honest_online();
                let gone = honest[self.rng.gen_range(0..honest.len())];
                self.replace(gone, round)?;
            }
            // The seeds' upkeep runs every 20 fetches (it lets their newcomers go), each
            // node's before its own fetch (as its timer would have fired in the meantime).
            if k % 20 == 0 {
                for s in 0..self.cfg.seeds {
                    self.upkeep_one(s);
                }
            }
            if !self.online[i] {
                continue; // it left earlier in this round
            }
            made += 1;
            self.upkeep_one(i);
            settle(&mut self.net, Phase::Fetch(k))?;
            // With Sybils, a tenth of the fetches ask for the target key.
            let d = if self.cfg.sybil > 0.0 && k % 10 == 0 { 0 } else { self.rng.gen_range(0..docs.len()) };
            let block = &docs[d];
            let key = block.routing_key();
            let before = self.net.counts().data_requests;
            self.net.take_events(i);
            self.net.fetch(i, BlockKind::Ssk, key);
            settle(&mut self.net, Phase::Fetch(k))?;
            let ok = self
                .net
                .take_events(i)
                .iter()
                .any(|e| matches!(e, Event::FetchSucceeded { block: b, .. } if b == block));
            if ok {
                hops.push(self.net.counts().data_requests - before);
            } else if !(0..self.net.len())
                .any(|j| self.online[j] && self.net.node(j).store().peek(BlockKind::Ssk, &key).is_some())
            {
                lost += 1;
            }
            if d == 0 && self.cfg.sybil > 0.0 {
                target_asked += 1;
                target_ok += usize::from(ok);
            }
        }
        hops.sort_unstable();
        let r = Round {
            round,
            requests: made,
            success_rate: hops.len() as f64 / made.max(1) as f64,
            hops_median: percentile(&hops, 0.5),
            hops_p95: percentile(&hops, 0.95),
            mean_degree: self.mean_degree(),
            mean_link_length: self.mean_link_length(),
            mean_short_links: self.mean_short_links(),
            admitted: 0,
            replaced: 0,
            failed_lost: lost,
            components: self.components(),
        };
        let target = (target_asked > 0).then(|| target_ok as f64 / target_asked as f64);
        Ok((r, target))
    }

    /// Churn: honest node `i` leaves for good and a fresh node (a new number, so a new
    /// identity to its peers, a new location, an empty store) joins through the seeds.
    /// The one that left keeps its number, offline, with its store emptied.
    fn replace(&mut self, i: usize, round: usize) -> Result<(), SimError> {
        for p in self.net.node(i).peer_ids() {
            self.net.disconnect(i, p.0 as usize);
        }
        self.retired.push(self.net.node(i).opennet_stats());
        let gone = NodeConfig { opennet: OpennetConfig::default(), ..self.net.config(i, Location(0)) };
        self.net.replace_node(i, gone, MemoryStore::new(0, 0));
        self.online[i] = false;
        let j = self.net.len();
        let config = node_config(self.cfg, self.net.config(j, Location(self.rng.gen())), j, false);
        self.net.add_node_with(config, MemoryStore::new(128 * 1024, 128 * 1024));
        self.online.push(true);
        self.attacker.push(false);
        self.join(j);
        settle(&mut self.net, Phase::Churn(round))
    }

    /// Of the honest peers' slots of the 20 honest nodes closest to the target, the share
    /// attackers hold.
    fn sybil_share(&self) -> f64 {
        let mut near = self.honest_online();
        near.sort_by_key(|&i| (self.net.node(i).location().distance(self.target), i));
        let (mut all, mut bad) = (0usize, 0usize);
        for &i in near.iter().take(20) {
            for PeerId(p) in self.net.node(i).peer_ids() {
                all += 1;
                bad += usize::from(self.attacker[p as usize]);
            }
        }
        bad as f64 / all.max(1) as f64
    }
}
