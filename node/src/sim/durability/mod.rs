//! The long-run durability model (`pamphlet sim --days D`): how long documents stay
//! retrievable over months of churn and store pressure (issue 20; docs/durability.md).
//!
//! Layout:
//! - `population`: node classes and their sessions (Hyphanet's measured uptimes), diurnal
//!   windows, permanent departures replaced by newcomers;
//! - `load`: document sizes, the blocks the real encoder makes of them, popularity;
//! - `holdings`: every node's store and cache area, in blocks, with the eviction rules;
//! - `route`: routes computed on the graph of online nodes (no messages: see there);
//! - `report`: the [`DurabilityReport`] and its tallies;
//! - `rules`: the storage [`Rules`] compared (pamphlet's, Hyphanet-like, each mechanism);
//! - `bound`: the most documents any placement can keep retrievable at once;
//! - this file: the [`DurabilityConfig`] and [`run`], an hour-by-hour loop (population,
//!   daily swap rounds, inserts, fetches, offers, probes).
//!
//! The friend graph is the simulator's small world, swapped by the direct swap chain
//! (`direct_swap::chain`), first on the whole graph to settle a darknet, then every day on
//! the graph of the nodes online at midnight (newcomers start at random locations, hot).
//! Four RNG streams from the seed keep runs comparable: the graph, locations and swaps;
//! the population; the load (sizes, keys, popularity, who inserts and fetches); and the
//! probes. Block keys, eviction draws (Hyphanet's random replacement) and the order in
//! which a fetch asks for a segment's blocks use streams of their own. So two runs with the
//! same seed and different [`Rules`] see the same people, the same documents and the same
//! fetchers (test `rules_change_storage_not_the_world`); probes are the same too while
//! the redundancy is.
//!
//! Survival is measured by probes that change nothing: at each age of [`AGES`] every
//! document is probed block by block, each block by a route from a random online node;
//! it is retrievable in full if its top block and `k` of every segment's `n` blocks are
//! found.

mod bound;
mod diagnosis;
#[cfg(test)]
mod foaf_tests;
mod holdings;
mod load;
mod offers;
mod population;
mod report;
mod route;
mod rules;
mod second;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::direct_swap;
use super::report::SwapCounts;
use super::topology::Topology;
use crate::client::fec;
use crate::location::Location;
use holdings::{Holdings, Place};
use load::{Blocks, Document, Popularity, Segment, Weights};
use population::{Class, Population};
use report::Survival;
use route::{Graph, Router};

pub use bound::{mean_uptime, retrievable_bound, Bound};
pub use diagnosis::{BlockCauses, ClassStore, LossCauses, GONE_AGE_BINS};
pub use holdings::Eviction;
pub use report::{AgePoint, Cost, DurabilityReport, Tally, AGES, FILL_BINS};
pub use rules::{Foaf, Rules, SecondAttempt};

/// Bytes of one block on the wire (a CHK block: 32 KiB of payload and its header).
const BLOCK_BYTES: u64 = pamphlet_crypto::CHK_BLOCK_LEN as u64;
/// Bytes per key in a returning node's offer.
const KEY_BYTES: u64 = 32;
/// How many times larger than its cache area a node's store area is by default: the
/// node's own split (its 256 MiB store and 64 MiB cache, `daemon::config`'s
/// `DEFAULT_STORE_BYTES` and `DEFAULT_CACHE_BYTES`; the CLI's test
/// `the_models_split_is_the_nodes` holds the two together). Until session 12 the model
/// gave the cache as much as the store.
pub const STORE_PER_CACHE: u32 = 4;
/// Time constant of the uptime average, in hours (a week).
const UPTIME_HOURS: f32 = 168.0;

/// One durability run.
#[derive(Clone, Debug, PartialEq)]
pub struct DurabilityConfig {
    /// Nodes in the population (about 35% of them online at a time).
    pub nodes: usize,
    /// Mean degree of the friend graph.
    pub degree: usize,
    /// Days simulated.
    pub days: u32,
    /// Seed of everything.
    pub seed: u64,
    /// Store area of each node, in blocks.
    pub store_blocks: u32,
    /// Cache area of each node, in blocks ([`STORE_PER_CACHE`] times less than the
    /// store by default, as the node).
    pub cache_blocks: u32,
    /// Days after which the documents inserted (their bytes, before FEC) equal the
    /// network's total store area: the daily insert load is the total store divided by
    /// this.
    pub fill_days: f64,
    /// Fraction of the population that leaves for good each week.
    pub weekly_departures: f64,
    /// Document fetches by the workload per day.
    pub fetches_per_day: f64,
    /// Fraction of documents never fetched after their insert.
    pub never_fetched: f64,
    /// Zipf exponent of the other documents' popularity.
    pub zipf: f64,
    /// Direct swap rounds on the whole graph before day 0 (a settled darknet).
    pub swap_rounds: usize,
    /// Direct swap rounds each day among the nodes online at midnight.
    pub daily_swap_rounds: usize,
    /// The largest document (sizes are log-uniform from 32 KiB to this): 100 MiB, as issue
    /// 20 says; the small test runs use less, to have many documents in small stores.
    pub max_document_bytes: f64,
    /// The storage rules.
    pub rules: Rules,
}

impl Default for DurabilityConfig {
    fn default() -> Self {
        DurabilityConfig {
            nodes: 10_000,
            degree: 12,
            days: 60,
            seed: 1,
            store_blocks: 256,
            cache_blocks: 256 / STORE_PER_CACHE,
            fill_days: 120.0,
            weekly_departures: 0.05,
            fetches_per_day: 500.0,
            never_fetched: 0.5,
            zipf: 1.0,
            swap_rounds: 350,
            daily_swap_rounds: 4,
            max_document_bytes: load::MAX_DOC,
            rules: Rules::pamphlet(),
        }
    }
}

/// Why a durability run cannot start.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum DurabilityError {
    /// A parameter is outside what the model means.
    #[error("{0}")]
    Bad(&'static str),
}

impl DurabilityConfig {
    /// Whether the model can run this (what [`run`] checks first).
    pub fn check(&self) -> Result<(), DurabilityError> {
        let bad = |ok: bool, why| if ok { Ok(()) } else { Err(DurabilityError::Bad(why)) };
        bad(self.nodes >= 10, "the durability model needs at least 10 nodes")?;
        bad(
            self.nodes as u64 * u64::from(self.store_blocks + self.cache_blocks) < u64::from(u32::MAX),
            "too many store slots in all (nodes x blocks must stay below 2^32)",
        )?;
        bad(self.days >= 1, "--days must be at least 1")?;
        bad(self.store_blocks >= 1, "the store area needs at least one block")?;
        bad(self.fill_days > 0.0 && self.fill_days.is_finite(), "--fill-days must be positive")?;
        bad((0.0..=1.0).contains(&self.weekly_departures), "--weekly-departures must be between 0 and 1")?;
        bad((0.0..=1.0).contains(&self.never_fetched), "--never-fetched must be between 0 and 1")?;
        bad(self.fetches_per_day >= 0.0 && self.fetches_per_day.is_finite(), "--fetches-per-day must be >= 0")?;
        bad(self.zipf >= 0.0 && self.zipf.is_finite(), "--zipf must be >= 0")?;
        bad((0.0..=fec::MAX_REDUNDANCY).contains(&self.rules.redundancy), "redundancy must be between 0 and 4")?;
        bad(
            self.max_document_bytes >= load::MIN_DOC && self.max_document_bytes <= load::MAX_DOC,
            "the largest document must be between 32 KiB and 100 MiB",
        )?;
        bad(self.rules.sink_rank >= 1, "--sinks must be at least 1")?;
        bad((0.0..=1.0).contains(&self.rules.store_uptime), "--store-uptime must be between 0 and 1")?;
        bad((0.0..=1.0).contains(&self.rules.offer_uptime), "--offer-uptime must be between 0 and 1")?;
        bad((0.0..=1.0).contains(&self.rules.steady_backup), "--steady-backup must be between 0 and 1")?;
        bad((0.0..=1.0).contains(&self.rules.keepalive_share), "--keepalive-share must be between 0 and 1")?;
        bad((0.0..=1.0).contains(&self.rules.offer_depth), "--offer-depth must be between 0 and 1")?;
        bad(self.rules.store_eviction != Eviction::NearOwn(0), "the near-own window needs at least one block")
    }

    /// The network's total store area, in bytes of documents it could hold once.
    fn total_store_bytes(&self) -> f64 {
        self.nodes as f64 * f64::from(self.store_blocks) * fec::SHARD_LEN as f64
    }
}

/// The RNG for stream `s` of `seed` (see the module doc).
fn stream(seed: u64, s: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(s);
    r
}

/// Runs the model (see the module doc).
pub fn run(config: &DurabilityConfig) -> Result<DurabilityReport, DurabilityError> {
    config.check()?;
    let mut w = World::new(config);
    for day in 0..config.days {
        for hour in 0..24 {
            w.hour(day, hour);
        }
    }
    Ok(w.finish())
}

/// The run's state.
struct World<'a> {
    config: &'a DurabilityConfig,
    topo: Topology,
    location: Vec<Location>,
    swap_age: Vec<u32>,
    online: Vec<bool>,
    /// Each node's uptime, an exponential average of its hours online (one-week time
    /// constant; `Rules::store_uptime`).
    uptime: Vec<f32>,
    population: Population,
    holdings: Holdings,
    router: Router,
    blocks: Blocks,
    docs: Vec<Document>,
    /// First document of each hour (`docs_at[h]..docs_at[h + 1]` were inserted in hour h).
    docs_at: Vec<u32>,
    weights: Weights,
    swap_rng: ChaCha8Rng,
    load_rng: ChaCha8Rng,
    probe_rng: ChaCha8Rng,
    evict_rng: ChaCha8Rng,
    /// The order a fetch asks for a segment's blocks (its own stream: how far a fetch
    /// gets depends on the rules, and must not shift the load's draws).
    order_rng: ChaCha8Rng,
    /// Block keys (their own stream: how many blocks a document makes depends on the
    /// rules' redundancy).
    key_rng: ChaCha8Rng,
    /// Which documents are pinned (its own stream, so pinning shifts no other draw).
    pin_rng: ChaCha8Rng,
    /// Document bytes owed to the load (carried between hours), fetches likewise.
    owed_bytes: f64,
    /// The size of the next document, drawn and waiting until the load owes that much (a
    /// size that does not fit this hour's bytes waits rather than being drawn again, which
    /// would favour small documents).
    next_size: Option<u64>,
    owed_fetches: f64,
    inserted_bytes: f64,
    survival: Survival,
    costs: [Cost; 5],
    swaps: SwapCounts,
    online_samples: [f64; 3],
    hours: u64,
    departures: u64,
    fetches: u64,
    fetches_ok: u64,
    healed: u64,
    offered: u64,
    /// Blocks evicted from store areas to make room for offered blocks.
    offer_evictions: u64,
    /// Blocks handed to a peer with room instead of being dropped (`evict_to_peer`).
    passed_on: u64,
    kept_alive: u64,
    /// With `Rules::offer_to_closer`: the peer each node last offered each of its stored
    /// blocks to (the node's memory; lost at a return, as a restart loses it).
    offered_to: Vec<std::collections::HashMap<u32, u32>>,
    /// Why lost documents were lost (`diagnosis.rs`).
    losses: diagnosis::Losses,
    /// Hops of fetches and probes (`Rules::fetch_htl`, or [`route::HTL`]).
    fetch_htl: u32,
    /// What one "not found" may cost a fetch's node (`Rules::fetch_cap`, or all).
    fetch_cap: u32,
    /// The peers sent a key-first offer list in the current offer round.
    offer_contacts: std::collections::HashSet<usize>,
    /// The workload's second attempts (`Rules::second_attempt`): sent, and found.
    second_attempts: [u64; 2],
}

/// Indices into `World::costs`.
const INSERT: usize = 0;
const FETCH: usize = 1;
const HEAL: usize = 2;
const OFFER: usize = 3;
const KEEPALIVE: usize = 4;

impl<'a> World<'a> {
    fn new(config: &'a DurabilityConfig) -> Self {
        let mut swap_rng = stream(config.seed, 1);
        let topo = Topology::small_world(config.nodes, config.degree, &mut swap_rng);
        let mut location: Vec<Location> = (0..config.nodes).map(|_| Location(swap_rng.gen())).collect();
        let mut swap_age = vec![0u32; config.nodes];
        let mut swaps = SwapCounts::default();
        direct_swap::chain(&topo, &mut location, &mut swap_age, config.swap_rounds, 0, true, &mut swaps, &mut swap_rng);
        let population = Population::new(config.nodes, config.weekly_departures, stream(config.seed, 2));
        let online = (0..config.nodes).map(|i| population.online(i)).collect();
        // A settled network: every node starts at its class's uptime.
        let uptime = population.members.iter().map(|m| population::UPTIME[m.class.index()] as f32).collect();
        let r = &config.rules;
        let mut holdings =
            Holdings::new(config.nodes, config.store_blocks, config.cache_blocks, r.store_eviction, Eviction::Lru);
        for (i, m) in population.members.iter().enumerate() {
            holdings.class[i] = m.class.index() as u8;
        }
        World {
            config,
            holdings,
            router: Router::new(config.nodes),
            topo,
            location,
            swap_age,
            online,
            uptime,
            population,
            blocks: Blocks::default(),
            docs: Vec::new(),
            docs_at: vec![0],
            weights: Weights::default(),
            swap_rng,
            load_rng: stream(config.seed, 3),
            probe_rng: stream(config.seed, 4),
            evict_rng: stream(config.seed, 5),
            order_rng: stream(config.seed, 6),
            key_rng: stream(config.seed, 7),
            pin_rng: stream(config.seed, 8),
            owed_bytes: 0.0,
            next_size: None,
            owed_fetches: 0.0,
            inserted_bytes: 0.0,
            survival: Survival::default(),
            costs: [Cost::default(); 5],
            swaps: SwapCounts::default(),
            online_samples: [0.0; 3],
            hours: 0,
            departures: 0,
            fetches: 0,
            fetches_ok: 0,
            healed: 0,
            offered: 0,
            offer_evictions: 0,
            passed_on: 0,
            kept_alive: 0,
            offered_to: vec![std::collections::HashMap::new(); config.nodes],
            losses: diagnosis::Losses::default(),
            fetch_htl: if r.fetch_htl == 0 { route::HTL } else { r.fetch_htl },
            fetch_cap: if r.fetch_cap == 0 { u32::MAX } else { r.fetch_cap },
            offer_contacts: std::collections::HashSet::new(),
            second_attempts: [0; 2],
        }
    }

    fn hour(&mut self, day: u32, hour: u32) {
        let changes = self.population.step(hour);
        self.holdings.now = day * 24 + hour;
        for &i in &changes.replaced {
            self.holdings.clear(i, diagnosis::DEPARTURE);
            self.holdings.class[i] = self.population.members[i].class.index() as u8;
            self.offered_to[i].clear();
            self.location[i] = Location(self.swap_rng.gen());
            self.swap_age[i] = 0;
            self.uptime[i] = 0.0;
        }
        self.departures += changes.replaced.len() as u64;
        for i in 0..self.config.nodes {
            self.online[i] = self.population.online(i);
            self.uptime[i] += (f32::from(u8::from(self.online[i])) - self.uptime[i]) / UPTIME_HOURS;
            if self.online[i] {
                self.online_samples[self.population.members[i].class.index()] += 1.0;
            }
        }
        self.hours += 1;
        if hour == 0 {
            self.swap_day();
        }
        if self.config.rules.foaf.any() {
            let g = Graph { adjacency: &self.topo.adjacency, online: &self.online, location: &self.location };
            self.router.set_foaf(&g);
        }
        if self.config.rules.offer_on_return {
            for &i in &changes.returned {
                self.offer(i, true);
            }
        }
        let now = day * 24 + hour;
        self.insert_hour();
        self.fetch_hour();
        if self.config.rules.keepalive_days > 0 {
            self.keepalive_hour(now);
        }
        self.probe_hour(now);
    }

    /// The day's swap rounds, among the nodes online now.
    fn swap_day(&mut self) {
        if self.config.daily_swap_rounds == 0 {
            return;
        }
        let online = &self.online;
        let adjacency = self
            .topo
            .adjacency
            .iter()
            .enumerate()
            .map(
                |(i, n)| {
                    if online[i] {
                        n.iter().copied().filter(|&j| online[j as usize]).collect()
                    } else {
                        Vec::new()
                    }
                },
            )
            .collect();
        let topo = Topology { adjacency };
        let rounds = self.config.daily_swap_rounds;
        let before = self.location.clone();
        direct_swap::chain(
            &topo,
            &mut self.location,
            &mut self.swap_age,
            rounds,
            0,
            true,
            &mut self.swaps,
            &mut self.swap_rng,
        );
        let moved: Vec<usize> = (0..self.config.nodes).filter(|&i| self.location[i] != before[i]).collect();
        for &i in &moved {
            self.holdings.moves[i] = self.holdings.moves[i].wrapping_add(1);
        }
        if self.config.rules.offer_on_swap {
            for i in moved {
                self.offer(i, false);
            }
        }
    }

    /// A random online node, from `rng`.
    fn random_online(online: &[bool], rng: &mut ChaCha8Rng) -> Option<usize> {
        if !online.iter().any(|&o| o) {
            return None;
        }
        loop {
            let i = rng.gen_range(0..online.len());
            if online[i] {
                return Some(i);
            }
        }
    }

    /// Inserts this hour's share of the load.
    fn insert_hour(&mut self) {
        let c = self.config;
        self.owed_bytes += c.total_store_bytes() / c.fill_days / 24.0;
        loop {
            let size = *self.next_size.get_or_insert_with(|| load::draw_size(&mut self.load_rng, c.max_document_bytes));
            if size as f64 > self.owed_bytes {
                break;
            }
            self.next_size = None;
            self.owed_bytes -= size as f64;
            self.inserted_bytes += size as f64;
            let Some(from) = Self::random_online(&self.online, &mut self.load_rng) else { break };
            let popularity = if self.load_rng.gen_bool(c.never_fetched) {
                self.weights.push(0.0);
                Popularity::Never
            } else {
                // Zipf rank among the documents the whole run is expected to insert.
                let expected = (c.total_store_bytes() / c.fill_days * f64::from(c.days)
                    / load::mean_size(c.max_document_bytes))
                .max(1.0);
                let r = self.load_rng.gen_range(1..=expected as u64);
                self.weights.push((r as f64).powf(-c.zipf));
                match r as f64 / expected {
                    x if x <= 0.01 => Popularity::Popular,
                    x if x <= 0.1 => Popularity::Occasional,
                    _ => Popularity::Rare,
                }
            };
            let mut segments = Vec::new();
            for (k, n) in load::layout(size, c.rules.redundancy) {
                let first = self.blocks.add(n, &mut self.key_rng);
                self.blocks.unprotected[first as usize..(first + n) as usize].fill(n == k);
                segments.push(Segment { first, n, k });
            }
            self.holdings.grow(self.blocks.location.len());
            let pinned = self.pin_rng.gen_bool(c.rules.keepalive_share);
            let doc = Document {
                segments,
                popularity,
                fill_at_insert: self.inserted_bytes / c.total_store_bytes(),
                pinned,
                publisher: from as u32,
                next_keepalive: self.hours as u32 - 1 + c.rules.keepalive_days * 24,
            };
            for s in &doc.segments {
                for b in s.first..s.first + s.n {
                    self.insert_block(from, b, INSERT, s.n == s.k);
                }
            }
            self.docs.push(doc);
        }
        self.docs_at.push(self.docs.len() as u32);
    }

    /// Routes block `b` from `from` until its hops run out; every node entered keeps it, in
    /// its store area if the rules say it is a sink for it, else in its cache. `unprotected`:
    /// the block is a segment of its own that FEC cannot rebuild (a top block, or a manifest
    /// segment without check blocks), which `Rules::unprotected_sink_rank` stores wider.
    fn insert_block(&mut self, from: usize, b: u32, cost: usize, unprotected: bool) {
        self.holdings.cause = cost as u8;
        let target = self.blocks.location[b as usize];
        let g = Graph { adjacency: &self.topo.adjacency, online: &self.online, location: &self.location };
        let r = &self.config.rules;
        let route = self.router.route_insert(&g, from, target, r.foaf.inserts());
        let hops = route.visited.len() as u64;
        self.costs[cost].add(2 * hops, hops * BLOCK_BYTES);
        let g = Graph { adjacency: &self.topo.adjacency, online: &self.online, location: &self.location };
        let mut sinks: Vec<bool> = route
            .visited
            .iter()
            .enumerate()
            .map(|(h, &v)| {
                h + 1 >= r.first_store_hop
                    && if r.store_uptime > 0.0 {
                        g.is_steady_sink(v as usize, target, &self.uptime, r.store_uptime as f32)
                    } else {
                        let rank = if unprotected { r.sink_rank.max(r.unprotected_sink_rank) } else { r.sink_rank };
                        g.is_sink(v as usize, target, rank)
                    }
            })
            .collect();
        if r.store_once {
            let best = (0..sinks.len())
                .filter(|&h| sinks[h])
                .min_by_key(|&h| g.location[route.visited[h] as usize].distance(target));
            sinks.iter_mut().enumerate().for_each(|(h, s)| *s = Some(h) == best);
        }
        if r.max_store_copies > 0 {
            let mut n = 0;
            for s in &mut sinks {
                *s &= n < r.max_store_copies;
                n += usize::from(*s);
            }
        }
        for (&v, sink) in route.visited.iter().zip(sinks) {
            let v = v as usize;
            let place = if sink { Place::Store } else { Place::Cache };
            let evicted = self.holdings.put(v, self.location[v], b, place, &self.blocks.location, &mut self.evict_rng);
            if let Some(old) = evicted {
                self.pass_on(v, old);
            }
        }
    }

    /// This hour's share of the workload's fetches.
    fn fetch_hour(&mut self) {
        self.owed_fetches += self.config.fetches_per_day / 24.0;
        while self.owed_fetches >= 1.0 {
            self.owed_fetches -= 1.0;
            let Some(d) = self.weights.draw(&mut self.load_rng) else { return };
            let Some(from) = Self::random_online(&self.online, &mut self.load_rng) else { return };
            self.fetches += 1;
            if self.fetch(d, from) {
                self.fetches_ok += 1;
            }
        }
    }

    /// Fetches document `d` from `from` as the client pipeline does: the top block first,
    /// then each segment's blocks (in a random order) until `k` arrived; found blocks are
    /// refreshed where found and cached on the way back; with healing, a decodable
    /// segment's missing blocks are inserted again. Whether the whole document arrived.
    fn fetch(&mut self, d: usize, from: usize) -> bool {
        let segments = self.docs[d].segments.clone();
        for s in segments.iter().rev() {
            let mut order: Vec<u32> = (s.first..s.first + s.n).collect();
            order.shuffle(&mut self.order_rng);
            let (mut got, mut missing) = (0, Vec::new());
            for b in order {
                if got == s.k {
                    break;
                }
                if self.fetch_block(from, b, FETCH) {
                    got += 1;
                } else {
                    missing.push(b);
                }
            }
            if got < s.k {
                return false;
            }
            if self.config.rules.heal {
                self.healed += missing.len() as u64;
                for b in missing {
                    self.insert_block(from, b, HEAL, s.n == s.k);
                }
            }
        }
        true
    }

    fn fetch_block(&mut self, from: usize, b: u32, cost: usize) -> bool {
        let target = self.blocks.location[b as usize];
        let holdings = &self.holdings;
        let g = Graph { adjacency: &self.topo.adjacency, online: &self.online, location: &self.location };
        let again = (self.config.rules.second_attempt, self.config.rules.second_attempt_waits);
        let (first, second) = second::route_block(
            &mut self.router,
            &g,
            holdings,
            from,
            b,
            target,
            (self.fetch_htl, self.fetch_cap),
            again,
        );
        if let Some(s) = &second {
            self.costs[cost].add(2 * first.visited.len() as u64, 0);
            if cost == FETCH {
                self.second_attempts[0] += 1;
                self.second_attempts[1] += u64::from(s.found);
            }
        }
        let route = second.unwrap_or(first);
        let hops = route.visited.len() as u64;
        let back = route.path.len().saturating_sub(1) as u64;
        self.costs[cost].add(2 * hops, if route.found { back * BLOCK_BYTES } else { 0 });
        if !route.found {
            return false;
        }
        let holder = route.path[route.path.len() - 1] as usize;
        self.holdings.touch(holder, b);
        self.holdings.cause = cost as u8;
        for &v in &route.path[1..route.path.len() - 1] {
            let v = v as usize;
            self.holdings.put(v, self.location[v], b, Place::Cache, &self.blocks.location, &mut self.evict_rng);
        }
        true
    }

    /// Runs keepalive on every pinned document that is due and whose publisher is online
    /// (one that is offline is kept alive the next hour it is online).
    fn keepalive_hour(&mut self, now: u32) {
        for d in 0..self.docs.len() {
            let doc = &self.docs[d];
            if !doc.pinned || doc.next_keepalive > now || !self.online[doc.publisher as usize] {
                continue;
            }
            let from = doc.publisher as usize;
            self.docs[d].next_keepalive = now + self.config.rules.keepalive_days * 24;
            self.keepalive(d, from);
        }
    }

    /// `pamphlet keepalive` from `from`: every block of document `d` asked for (found ones
    /// refreshed and cached on the way back, as a fetch does), and in each segment that can
    /// still be rebuilt, the missing blocks inserted again.
    fn keepalive(&mut self, d: usize, from: usize) {
        let segments = self.docs[d].segments.clone();
        for s in segments.iter().rev() {
            let missing: Vec<u32> =
                (s.first..s.first + s.n).filter(|&b| !self.fetch_block(from, b, KEEPALIVE)).collect();
            if s.n - missing.len() as u32 >= s.k {
                self.kept_alive += missing.len() as u64;
                for b in missing {
                    self.insert_block(from, b, KEEPALIVE, s.n == s.k);
                }
            }
        }
    }

    /// Probes every document whose age reaches one of [`AGES`] this hour.
    fn probe_hour(&mut self, now: u32) {
        for (ai, &age) in AGES.iter().enumerate() {
            let Some(born) = now.checked_sub(age * 24) else { continue };
            let (lo, hi) = (self.docs_at[born as usize], self.docs_at[born as usize + 1]);
            for d in lo..hi {
                let (ok, blocks, found) = self.probe(d as usize, ai);
                self.survival.record(ai, &self.docs[d as usize], ok, blocks, found);
            }
        }
    }

    /// Probes every block of document `d`, each from a random online node, changing
    /// nothing: (retrievable in full, blocks, blocks found). A lost document's missing
    /// blocks go to the diagnosis at age index `age`.
    fn probe(&mut self, d: usize, age: usize) -> (bool, u64, u64) {
        let g = Graph { adjacency: &self.topo.adjacency, online: &self.online, location: &self.location };
        let (mut ok, mut blocks, mut found) = (true, 0u64, 0u64);
        let (mut misses, mut top_missing) = (Vec::new(), false);
        let top = self.docs[d].segments.len() - 1;
        for (si, s) in self.docs[d].segments.iter().enumerate() {
            let (mut got, first_miss) = (0, misses.len());
            for b in s.first..s.first + s.n {
                let Some(from) = Self::random_online(g.online, &mut self.probe_rng) else { return (false, 0, 0) };
                let holdings = &self.holdings;
                if !holdings.held_online(b, g.online) {
                    // No online copy: no route finds it, and a probe changes nothing, so
                    // the route is not worth computing (most of a heavy run's probes of
                    // old documents). The diagnosis of a block with no online copy does
                    // not read `hops_out`.
                    misses.push(diagnosis::Miss { block: b, hops_out: false });
                    continue;
                }
                let key = self.blocks.location[b as usize];
                let again = (self.config.rules.second_attempt, self.config.rules.second_attempt_waits);
                let (first, second) = second::route_block(
                    &mut self.router,
                    &g,
                    holdings,
                    from,
                    b,
                    key,
                    (self.fetch_htl, self.fetch_cap),
                    again,
                );
                let route = second.unwrap_or(first);
                got += u32::from(route.found);
                if !route.found {
                    misses.push(diagnosis::Miss { block: b, hops_out: route.visited.len() == self.fetch_htl as usize });
                }
            }
            if got < s.k {
                top_missing |= si == top;
            } else {
                misses.truncate(first_miss);
            }
            ok &= got >= s.k;
            blocks += u64::from(s.n);
            found += u64::from(got);
        }
        if !ok {
            self.diagnose(age, &misses, top_missing);
        }
        (ok, blocks, found)
    }

    fn finish(self) -> DurabilityReport {
        let c = self.config;
        let days = f64::from(c.days);
        let per_day =
            |x: Cost| Cost { messages: (x.messages as f64 / days) as u64, bytes: (x.bytes as f64 / days) as u64 };
        let total_online: f64 = self.online_samples.iter().sum();
        let (store_held, _) = self.holdings.held();
        DurabilityReport {
            rules: c.rules.name.clone(),
            seed: c.seed,
            nodes: c.nodes,
            days: c.days,
            mean_online: total_online / self.hours.max(1) as f64,
            online_share: Class::ALL.map(|k| self.online_samples[k.index()] / total_online.max(1.0)),
            departures: self.departures,
            documents: self.docs.len() as u64,
            blocks: self.blocks.location.len() as u64,
            final_fill: self.inserted_bytes / c.total_store_bytes(),
            bound_documents: bound::retrievable_bound(
                self.inserted_bytes / c.total_store_bytes(),
                total_online / self.hours.max(1) as f64 / c.nodes as f64,
                c.rules.redundancy,
            )
            .documents,
            store_use: store_held as f64 / (c.nodes as f64 * f64::from(c.store_blocks)),
            store_evictions: self.holdings.store_evictions,
            store_writes_per_block: self.holdings.store_writes as f64 / self.blocks.location.len().max(1) as f64,
            survival: self.survival.points(c.days),
            fetches: self.fetches,
            fetches_ok: self.fetches_ok,
            second_attempts: self.second_attempts[0],
            second_attempts_found: self.second_attempts[1],
            healed_blocks: self.healed,
            offered_blocks: self.offered,
            offer_evictions: self.offer_evictions,
            passed_on_blocks: self.passed_on,
            kept_alive_blocks: self.kept_alive,
            insert_cost_per_day: per_day(self.costs[INSERT]),
            fetch_cost_per_day: per_day(self.costs[FETCH]),
            heal_cost_per_day: per_day(self.costs[HEAL]),
            offer_cost_per_day: per_day(self.costs[OFFER]),
            keepalive_cost_per_day: per_day(self.costs[KEEPALIVE]),
            swaps_done: self.swaps.done,
            loss_causes: self.losses.points(c.days),
            store_by_class: self.store_by_class(),
        }
    }
}

#[cfg(test)]
mod tests;
