//! Why documents are lost: for every document a probe finds not retrievable, each block
//! missing from a segment that fell below `k` (the top block included) is put in one of
//! three places, and the counts go into the report (`loss_causes`, docs/durability.md
//! "Why documents are lost"):
//!
//! 1. **gone**: no copy anywhere. Split by what pushed the last copy out (the model's
//!    activity at that moment: an insert passing, a fetch caching on its way back,
//!    healing, an offer, keepalive, or the holder leaving for good), by the area it was in
//!    (store or cache), and by the block's age when it went;
//! 2. **offline**: copies exist, all on offline nodes; split by the best class among the
//!    holders (always-on, regular, occasional), and whether any copy is in a store area;
//! 3. **unreached**: some online node holds it, the probe's route did not get there.
//!    Split: a store copy at a node that is still a sink for the key (closer than all its
//!    online peers: the route missed it, with or without its hops run out), store copies
//!    at online nodes none of which is a sink now (the holder moved since it wrote the
//!    copy, or others came closer), or online copies in cache areas only.
//!
//! Read-only: the diagnosis changes nothing and draws no random number.

use serde::Serialize;

use super::holdings::Place;
use super::population::Class;
use super::report::AGES;
use super::route::Graph;
use super::World;

/// The last copy went as the node that held it left for good (the other causes are the
/// cost indices of `World::costs`: insert, fetch, heal, offer, keepalive).
pub(super) const DEPARTURE: u8 = 5;

/// Bins of a block's age when its last copy went (days, lower bounds).
pub const GONE_AGE_BINS: [u32; 6] = [0, 1, 3, 7, 14, 30];

/// Why the missing blocks of lost documents were missing (see the module doc).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct BlockCauses {
    /// Blocks missing (from segments below `k`).
    pub missing: u64,
    /// No copy anywhere; the last one pushed out by an insert passing.
    pub gone_insert: u64,
    /// … by a fetch caching on its way back.
    pub gone_fetch: u64,
    /// … by healing.
    pub gone_heal: u64,
    /// … by an offered or passed-on block.
    pub gone_offer: u64,
    /// … by keepalive.
    pub gone_keepalive: u64,
    /// … with its holder, which left for good.
    pub gone_departure: u64,
    /// No copy anywhere, and never was (its insert entered no node).
    pub never_stored: u64,
    /// Of the gone blocks, those whose last copy was in a cache area.
    pub gone_from_cache: u64,
    /// Copies only on offline nodes, the best of them always-on.
    pub offline_always_on: u64,
    /// … the best of them regular.
    pub offline_regular: u64,
    /// … all occasional.
    pub offline_occasional: u64,
    /// Of the offline ones, those with a copy in a store area.
    pub offline_in_store: u64,
    /// An online store copy at a node still a sink for the key; the route missed it.
    pub unreached_at_sink: u64,
    /// … of which the route had spent all its hops.
    pub unreached_at_sink_hops_out: u64,
    /// Online store copies, none at a sink now; a holder moved since it wrote its copy.
    pub unreached_holder_moved: u64,
    /// … no holder moved (others came online or moved closer).
    pub unreached_others_closer: u64,
    /// Online copies in cache areas only.
    pub unreached_cache_only: u64,
}

/// The causes at one probe age.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LossCauses {
    /// Age in days.
    pub age_days: u32,
    /// Documents probed at this age that were not retrievable.
    pub documents_lost: u64,
    /// Of them, those whose top block was missing.
    pub top_missing: u64,
    /// The missing top blocks (and manifest segments FEC cannot rebuild).
    pub top: BlockCauses,
    /// The missing data and check blocks.
    pub data: BlockCauses,
    /// Gone blocks (both kinds) by their age when the last copy went ([`GONE_AGE_BINS`]).
    pub gone_age: [u64; GONE_AGE_BINS.len()],
}

/// The store areas of one class of nodes over the run: how fast they turn over.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct ClassStore {
    /// Blocks written to the class's store areas per node of the class per day.
    pub writes_per_node_day: f64,
    /// Blocks dropped from them to make room, per node per day.
    pub evictions_per_node_day: f64,
    /// Mean age (days since insert) of the blocks dropped.
    pub evicted_age_days: f64,
}

/// The tallies while the run goes, one per age of [`AGES`].
#[derive(Default)]
pub(super) struct Losses {
    at: [LossCauses; AGES.len()],
}

impl Losses {
    pub(super) fn points(&self, days: u32) -> Vec<LossCauses> {
        AGES.iter().zip(self.at).filter(|(&a, _)| a < days).map(|(&a, c)| LossCauses { age_days: a, ..c }).collect()
    }
}

/// One missing block as the probe saw it.
pub(super) struct Miss {
    pub(super) block: u32,
    /// The probe's route spent all its hops.
    pub(super) hops_out: bool,
}

impl World<'_> {
    /// [`ClassStore`] per class (always-on, regular, occasional), nodes counted by the
    /// population's class shares at the end of the run.
    pub(super) fn store_by_class(&self) -> [ClassStore; 3] {
        let h = &self.holdings;
        let days = f64::from(self.config.days);
        Class::ALL.map(|k| {
            let i = k.index();
            let nodes = self.population.members.iter().filter(|m| m.class == k).count().max(1) as f64;
            let ev = h.class_evictions[i];
            ClassStore {
                writes_per_node_day: h.class_writes[i] as f64 / nodes / days,
                evictions_per_node_day: ev as f64 / nodes / days,
                evicted_age_days: h.class_evicted_hours[i] as f64 / ev.max(1) as f64 / 24.0,
            }
        })
    }

    /// Records why a document lost at age index `age` missed `misses` (the missing
    /// blocks of its segments below `k`).
    pub(super) fn diagnose(&mut self, age: usize, misses: &[Miss], top_missing: bool) {
        let g = Graph { adjacency: &self.topo.adjacency, online: &self.online, location: &self.location };
        let at = &mut self.losses.at[age];
        at.documents_lost += 1;
        at.top_missing += u64::from(top_missing);
        for m in misses {
            let b = m.block as usize;
            let c = if self.blocks.unprotected[b] { &mut at.top } else { &mut at.data };
            c.missing += 1;
            let copies: Vec<_> = self.holdings.copies_of(m.block).collect();
            if copies.is_empty() {
                let Some(gone) = self.holdings.gone[b] else {
                    c.never_stored += 1;
                    continue;
                };
                match usize::from(gone.cause) {
                    super::INSERT => c.gone_insert += 1,
                    super::FETCH => c.gone_fetch += 1,
                    super::HEAL => c.gone_heal += 1,
                    super::OFFER => c.gone_offer += 1,
                    super::KEEPALIVE => c.gone_keepalive += 1,
                    _ => c.gone_departure += 1,
                }
                c.gone_from_cache += u64::from(gone.place == Place::Cache);
                let days = gone.hour.saturating_sub(self.holdings.born[b]) / 24;
                let bin = GONE_AGE_BINS.iter().rposition(|&x| days >= x).unwrap_or(0);
                at.gone_age[bin] += 1;
                continue;
            }
            let online: Vec<_> = copies.iter().filter(|c| self.online[c.node]).collect();
            if online.is_empty() {
                let best = copies.iter().map(|c| self.population.members[c.node].class.index()).min().unwrap_or(2);
                match Class::ALL[best] {
                    Class::AlwaysOn => c.offline_always_on += 1,
                    Class::Regular => c.offline_regular += 1,
                    Class::Occasional => c.offline_occasional += 1,
                }
                c.offline_in_store += u64::from(copies.iter().any(|c| c.place == Place::Store));
                continue;
            }
            let key = self.blocks.location[b];
            let stored: Vec<_> = online.iter().filter(|c| c.place == Place::Store).collect();
            if stored.is_empty() {
                c.unreached_cache_only += 1;
            } else if stored.iter().any(|c| g.is_sink(c.node, key, 1)) {
                c.unreached_at_sink += 1;
                c.unreached_at_sink_hops_out += u64::from(m.hops_out);
            } else if stored.iter().any(|c| c.moved) {
                c.unreached_holder_moved += 1;
            } else {
                c.unreached_others_closer += 1;
            }
        }
    }
}
