//! The workload: the documents a run inserts and fetches, and the phases that do it
//! (inserts, cache flushing, measured fetches under churn, absent keys, the fresh
//! documents after recovery).
//!
//! Every document is encoded once, in [`Documents::new`], from its text; the phases (and
//! the eclipse attackers, who gather around the first document's key) use those blocks.
//! Each operation runs until the network is idle; one that does not get there within its
//! step budget fails the run ([`SimError::Stuck`]).

use pamphlet_crypto::{chk, Block, BlockKind, ChkFlags, RoutingKey};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::config::{SimConfig, Strategy};
use super::network::Network;
use super::topology::Topology;
use super::{attack, settle, Phase, Sim, SimError, OP_STEPS};
use crate::location::Location;
use crate::node::Event;
use crate::store::Area;
use crate::wire::message::Message;

/// Every document a run inserts, encoded once.
pub(crate) struct Documents {
    /// The measured documents (`max(docs, 1)`), in insert order.
    pub(crate) measured: Vec<Block>,
    /// The junk inserted to flush caches (`junk_inserts`).
    junk: Vec<Block>,
    /// The fresh documents measured after the recovery rounds (none without them).
    recovery: Vec<Block>,
}

impl Documents {
    /// Encodes the run's documents; the texts depend only on the index and the seed.
    pub(crate) fn new(config: &SimConfig) -> Result<Self, SimError> {
        let seed = config.seed;
        let encode_all = |count: usize, text: &dyn Fn(usize) -> String| -> Result<Vec<Block>, SimError> {
            (0..count).map(|i| encode(&text(i))).collect()
        };
        let recovery = if config.recovery_rounds > 0 { config.docs.max(1) } else { 0 };
        Ok(Documents {
            measured: encode_all(config.docs.max(1), &|d| format!("pamphlet simulator document {d} of run {seed}"))?,
            junk: encode_all(config.junk_inserts, &|j| format!("junk {j} of run {seed}"))?,
            recovery: encode_all(recovery, &|d| format!("pamphlet simulator recovery document {d} of run {seed}"))?,
        })
    }
}

/// One CHK block holding `text`.
fn encode(text: &str) -> Result<Block, SimError> {
    let (block, _) = chk::encode(text.as_bytes(), ChkFlags::default())?;
    Ok(Block::Chk(block))
}

impl Sim<'_> {
    /// Inserts the measured documents, each from a random honest node.
    pub(super) fn insert(&mut self, docs: &Documents) -> Result<(), SimError> {
        for (d, block) in docs.measured.iter().enumerate() {
            let from = self.honest[self.rng.gen_range(0..self.honest.len())];
            let op = self.net.insert(from, block.clone());
            settle(&mut self.net, OP_STEPS, Phase::Insert(d))?;
            let ok = self
                .net
                .take_events(from)
                .iter()
                .any(|e| matches!(e, Event::InsertSucceeded { op: o, .. } if *o == op));
            self.report.inserts_ok += usize::from(ok);
            self.inserters.push(from);
        }
        self.report.inserts = docs.measured.len();
        Ok(())
    }

    /// Cache flushing (with `junk_inserts`): every document is fetched once (so it is
    /// cached along its paths, and recently requested), then the junk is inserted from
    /// random nodes.
    pub(super) fn flush_caches(&mut self, docs: &Documents) -> Result<(), SimError> {
        let flusher = self.config.attack.is_some_and(|a| a.kind == attack::AttackKind::Flusher);
        if docs.junk.is_empty() && !flusher {
            return Ok(());
        }
        for (d, (block, &inserter)) in docs.measured.iter().zip(&self.inserters).enumerate() {
            let from = self.honest.iter().copied().find(|&c| c != inserter).unwrap_or(inserter);
            self.net.fetch(from, BlockKind::Chk, block.routing_key());
            settle(&mut self.net, OP_STEPS, Phase::Warm(d))?;
            self.net.take_events(from);
        }
        let before = self.store_copies(docs);
        for (j, block) in docs.junk.iter().enumerate() {
            let from = self.rng.gen_range(0..self.net.len());
            self.net.insert(from, block.clone());
            settle(&mut self.net, OP_STEPS, Phase::Junk(j))?;
            self.net.take_events(from);
        }
        if flusher {
            self.report.flusher_inserts = self.flush_by_attackers()?;
        }
        self.report.store_copies = Some((before, self.store_copies(docs)));
        Ok(())
    }

    /// The mean number of nodes holding each measured document in their store area.
    fn store_copies(&self, docs: &Documents) -> f64 {
        let copies: usize = docs
            .measured
            .iter()
            .map(|block| {
                let key = block.routing_key();
                (0..self.net.len())
                    .filter(|&i| self.net.node(i).store().area_of(BlockKind::Chk, &key) == Some(Area::Store))
                    .count()
            })
            .sum();
        copies as f64 / docs.measured.len().max(1) as f64
    }

    /// The measured fetches: `requests` fetches of the documents in turn, each from a
    /// random online honest node other than its inserter, with churn between them and the
    /// passive observers watching (with `observe`).
    pub(super) fn fetch(&mut self, docs: &Documents) -> Result<(), SimError> {
        let (config, n) = (self.config, self.net.len());
        if config.strategy == Strategy::NextBestOnce {
            for i in 0..n {
                self.net.node_mut(i).set_max_htl(u8::MAX);
            }
        }
        let mut online = vec![true; n];
        self.report.forged_rejected = self.forged();
        let counts_before = self.net.counts();
        self.report.loads = (0..n).map(|i| self.net.received(i)).collect();
        // Neighbour-list updates caused by churn are not the fetches' messages.
        let mut churn_messages = 0u64;
        // Recorded per fetch (cleared before each): the hops to the node closest to the key
        // are read from it, and the passive observers with `observe`.
        self.net.set_recording(true);
        for r in 0..config.requests {
            if config.churn > 0.0 && self.rng.gen::<f64>() < config.churn {
                let before = self.net.counts().messages;
                self.report.churn_leaves +=
                    churn(&mut self.net, &self.topo, &self.honest, &mut online, &mut self.rng, r)?;
                churn_messages += self.net.counts().messages - before;
            }
            let d = r % docs.measured.len();
            let (inserter, block) = (self.inserters[d], &docs.measured[d]);
            let from = loop {
                let c = self.honest[self.rng.gen_range(0..self.honest.len())];
                if c != inserter && online[c] {
                    break c;
                }
            };
            if config.attack.is_some_and(|a| a.kind == attack::AttackKind::Reconnector) {
                // Each reconnector next to the fetching node reconnects first (issue 14).
                for &a in &self.topo.adjacency[from] {
                    let a = a as usize;
                    if self.is_attacker[a] && online[a] {
                        self.net.disconnect(from, a);
                        self.net.connect(from, a);
                    }
                }
            }
            let before = self.net.counts().data_requests;
            self.net.clear_transcript();
            let op = self.net.fetch(from, BlockKind::Chk, block.routing_key());
            settle(&mut self.net, OP_STEPS, Phase::Fetch(r))?;
            self.closest_hops(from, block.routing_key(), &online, false);
            if config.observe {
                let seen = attack::observe(&self.net, from, config.max_htl);
                let (mut guesses, mut right) = seen.at_max;
                if config.attack.is_some_and(|a| a.kind == attack::AttackKind::TimingProber) {
                    // The probers' guesses replace the passive ones (docs/security.md).
                    (guesses, right) =
                        attack::probe_guesses(self.net.transcript(), from, &self.is_attacker, config.max_htl);
                }
                self.report.htl_guesses += guesses;
                self.report.htl_guesses_right += right;
                self.report.htl_guesses_chance += seen.chance;
                self.report.ids_on_two_links += seen.reused;
            }
            for e in self.net.take_events(from) {
                if let Event::FetchSucceeded { op: o, block: got, .. } = e {
                    if o != op {
                        continue;
                    }
                    if got == *block {
                        self.report.successes += 1;
                        self.report.hops.push(self.net.counts().data_requests - before);
                    } else {
                        self.report.invalid += 1;
                    }
                }
            }
        }
        self.net.set_recording(false);
        self.net.clear_transcript();
        self.report.fetch_messages = self.net.counts().messages - counts_before.messages - churn_messages;
        Ok(())
    }

    /// Reads from the transcript of the fetch just made how many requests it sent before
    /// one reached the node (online) closest to `key`, if one did (`absent`: a fetch of a
    /// key nobody inserted).
    fn closest_hops(&mut self, from: usize, key: RoutingKey, online: &[bool], absent: bool) {
        let target = Location::of_key(&key);
        let closest = (0..self.net.len())
            .filter(|&i| online[i])
            .min_by_key(|&i| (self.net.node(i).location().distance(target), i));
        let Some(closest) = closest else { return };
        let (probes, hops) = if absent {
            (&mut self.report.absent_closest_probes, &mut self.report.absent_closest_hops)
        } else {
            (&mut self.report.closest_probes, &mut self.report.closest_hops)
        };
        *probes += 1;
        if closest == from {
            hops.push(0);
            return;
        }
        let mut sent = 0u64;
        for s in self.net.transcript() {
            if let Message::DataRequest { .. } = s.msg {
                sent += 1;
                if s.to == closest {
                    hops.push(sent);
                    return;
                }
            }
        }
    }

    /// The absent-key fetches (what a genuine miss costs); then closes the load and forgery
    /// tallies the measured fetches opened.
    pub(super) fn fetch_absent(&mut self) -> Result<(), SimError> {
        let before = self.net.counts().messages;
        self.net.set_recording(true);
        let online = vec![true; self.net.len()];
        for a in 0..self.config.absent_requests {
            let key = RoutingKey(self.rng.gen());
            let from = self.honest[self.rng.gen_range(0..self.honest.len())];
            self.net.clear_transcript();
            self.net.fetch(from, BlockKind::Chk, key);
            settle(&mut self.net, OP_STEPS, Phase::Absent(a))?;
            self.net.take_events(from);
            // No copy anywhere: the request routes on until its hops run out, so this is
            // the route length to the key's closest node, undisturbed by caches.
            self.closest_hops(from, key, &online, true);
        }
        self.net.set_recording(false);
        self.net.clear_transcript();
        self.report.absent_messages = self.net.counts().messages - before;
        for (i, load) in self.report.loads.iter_mut().enumerate() {
            *load = self.net.received(i) - *load;
        }
        self.report.forged_rejected = self.forged() - self.report.forged_rejected;
        Ok(())
    }

    /// After the recovery rounds: inserts the fresh documents from random honest nodes,
    /// fetches them `requests` times between honest nodes; returns the success rate.
    pub(super) fn fresh_success(&mut self, docs: &Documents) -> Result<f64, SimError> {
        let mut inserters = Vec::with_capacity(docs.recovery.len());
        for (d, block) in docs.recovery.iter().enumerate() {
            let from = self.honest[self.rng.gen_range(0..self.honest.len())];
            self.net.insert(from, block.clone());
            settle(&mut self.net, OP_STEPS, Phase::RecoveryInsert(d))?;
            self.net.take_events(from);
            inserters.push(from);
        }
        let mut ok = 0usize;
        for r in 0..self.config.requests {
            let d = r % docs.recovery.len();
            let (inserter, block) = (inserters[d], &docs.recovery[d]);
            let from = loop {
                let c = self.honest[self.rng.gen_range(0..self.honest.len())];
                if c != inserter {
                    break c;
                }
            };
            self.net.fetch(from, BlockKind::Chk, block.routing_key());
            settle(&mut self.net, OP_STEPS, Phase::RecoveryFetch(r))?;
            ok += self
                .net
                .take_events(from)
                .iter()
                .filter(|e| matches!(e, Event::FetchSucceeded { block: got, .. } if got == block))
                .count();
        }
        Ok(ok as f64 / self.config.requests.max(1) as f64)
    }

    /// Forged blocks rejected so far, summed over nodes.
    fn forged(&self) -> u64 {
        (0..self.net.len()).map(|i| self.net.node(i).stats().forged_blocks).sum()
    }
}

/// One node leaves (its links drop) and, if any is away, one comes back (its links to
/// online neighbours return), before measured fetch `r`. Returns how many left.
fn churn(
    net: &mut Network,
    topo: &Topology,
    honest: &[usize],
    online: &mut [bool],
    rng: &mut ChaCha8Rng,
    r: usize,
) -> Result<usize, SimError> {
    let away: Vec<usize> = (0..online.len()).filter(|&i| !online[i]).collect();
    if let Some(&back) = away.choose(rng) {
        online[back] = true;
        let edges: Vec<(usize, usize)> =
            topo.adjacency[back].iter().map(|&j| j as usize).filter(|&j| online[j]).map(|j| (back, j)).collect();
        net.connect_many(&edges);
    }
    let leaving = honest[rng.gen_range(0..honest.len())];
    if !online[leaving] {
        return Ok(0);
    }
    online[leaving] = false;
    for &j in &topo.adjacency[leaving] {
        net.disconnect(leaving, j as usize);
    }
    settle(net, OP_STEPS, Phase::Churn(r))?;
    Ok(1)
}
