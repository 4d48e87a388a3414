//! What a durability run measured: survival at each age, split by popularity and by how
//! full the network was when the document went in; the workload's own fetches; the cost
//! of each kind of traffic.

use serde::Serialize;

use super::load::{Document, Popularity};

/// The ages (days) at which every document is probed.
pub const AGES: [u32; 6] = [1, 3, 7, 14, 30, 60];

/// Bins of "fill at insert" (documents' bytes inserted so far / the network's total store):
/// lower bounds, the last bin open-ended.
pub const FILL_BINS: [f64; 5] = [0.0, 0.25, 0.5, 1.0, 2.0];

/// Documents and blocks probed, and how many were retrievable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Tally {
    /// Documents probed.
    pub documents: u64,
    /// Of them, retrievable in full (the top block, and `k` of every segment's `n`).
    pub documents_ok: u64,
    /// Blocks probed (every block of every probed document).
    pub blocks: u64,
    /// Of them, found.
    pub blocks_ok: u64,
}

impl Tally {
    pub(crate) fn add(&mut self, doc_ok: bool, blocks: u64, blocks_ok: u64) {
        self.documents += 1;
        self.documents_ok += u64::from(doc_ok);
        self.blocks += blocks;
        self.blocks_ok += blocks_ok;
    }
}

/// Survival at one age.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AgePoint {
    /// Age in days.
    pub age_days: u32,
    /// Fraction of probed documents retrievable in full (`None`: none probed at this age).
    pub documents: Option<f64>,
    /// Fraction of probed blocks found.
    pub blocks: Option<f64>,
    /// All probed documents.
    pub all: Tally,
    /// Per popularity class: popular (top 1% of Zipf ranks), occasional (top 10%), rare,
    /// never fetched.
    pub by_popularity: Vec<(String, Tally)>,
    /// Per fill at insert, labelled by the bin's range.
    pub by_fill: Vec<(String, Tally)>,
    /// The pinned documents (kept alive by their publishers; none unless the rules pin).
    pub pinned: Tally,
}

/// Messages and bytes of one kind of traffic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Cost {
    /// Messages (a request and its answer are two).
    pub messages: u64,
    /// Bytes, counting each 32 KiB block once per hop it crosses and 32 bytes per key
    /// offered; request headers are not counted.
    pub bytes: u64,
}

impl Cost {
    pub(crate) fn add(&mut self, messages: u64, bytes: u64) {
        self.messages += messages;
        self.bytes += bytes;
    }
}

/// The result of a durability run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DurabilityReport {
    /// The rules' name.
    pub rules: String,
    /// Seed of the run.
    pub seed: u64,
    /// Nodes in the population (online or not).
    pub nodes: usize,
    /// Simulated days.
    pub days: u32,
    /// Mean number of nodes online (sampled hourly).
    pub mean_online: f64,
    /// Measured share of the online nodes per class: always-on, regular, occasional.
    pub online_share: [f64; 3],
    /// Nodes that left for good and were replaced.
    pub departures: u64,
    /// Documents inserted.
    pub documents: u64,
    /// Blocks inserted (FEC check blocks and manifests included).
    pub blocks: u64,
    /// Documents' bytes inserted / the network's total store, at the end.
    pub final_fill: f64,
    /// The most documents any placement could keep retrievable at one moment at the final
    /// fill, with the measured share of the population online (`bound.rs`).
    pub bound_documents: f64,
    /// Blocks held in store areas at the end / their capacity.
    pub store_use: f64,
    /// Blocks dropped from store areas to make room.
    pub store_evictions: u64,
    /// Copies written to store areas (by inserts, healing and offers) per block inserted:
    /// how many sinks an insert finds.
    pub store_writes_per_block: f64,
    /// Survival at each age of [`AGES`] the run reached.
    pub survival: Vec<AgePoint>,
    /// Fetches by the workload (documents), and how many got the whole document.
    pub fetches: u64,
    /// Of them, successful.
    pub fetches_ok: u64,
    /// Second attempts for blocks the workload's fetches did not find
    /// (`Rules::second_attempt`; probes' are not counted).
    pub second_attempts: u64,
    /// Of them, found.
    pub second_attempts_found: u64,
    /// Blocks re-inserted by healing.
    pub healed_blocks: u64,
    /// Blocks a returning node handed to the sinks that lacked them.
    pub offered_blocks: u64,
    /// Blocks dropped from store areas to make room for offered ones.
    pub offer_evictions: u64,
    /// Blocks a full store area handed to a peer with room instead of dropping them.
    pub passed_on_blocks: u64,
    /// Blocks keepalive inserted again.
    pub kept_alive_blocks: u64,
    /// Cost per day: inserts.
    pub insert_cost_per_day: Cost,
    /// Cost per day: the workload's fetches (probes are not counted: they measure).
    pub fetch_cost_per_day: Cost,
    /// Cost per day: healing inserts.
    pub heal_cost_per_day: Cost,
    /// Cost per day: offers (on return, on swap) and the blocks they handed over, and
    /// evicted blocks passed on to a peer.
    pub offer_cost_per_day: Cost,
    /// Cost per day: keepalive's probes of every block and its inserts.
    pub keepalive_cost_per_day: Cost,
    /// Location swaps done during the run (both ends counted, as the nodes count them).
    pub swaps_done: u64,
    /// Why the documents found lost at each age were lost (`diagnosis.rs`).
    pub loss_causes: Vec<super::LossCauses>,
    /// How fast each class's store areas turn over: always-on, regular, occasional.
    pub store_by_class: [super::ClassStore; 3],
}

impl DurabilityReport {
    /// The survival point at `age` days, if the run reached it.
    pub fn at(&self, age: u32) -> Option<&AgePoint> {
        self.survival.iter().find(|p| p.age_days == age)
    }
}

/// Tallies per age, class and bin while the run goes.
#[derive(Default)]
pub(crate) struct Survival {
    all: [Tally; AGES.len()],
    popularity: [[Tally; 4]; AGES.len()],
    fill: [[Tally; FILL_BINS.len()]; AGES.len()],
    pinned: [Tally; AGES.len()],
}

pub(crate) fn fill_bin(fill: f64) -> usize {
    FILL_BINS.iter().rposition(|&b| fill >= b).unwrap_or(0)
}

fn fill_label(i: usize) -> String {
    match FILL_BINS.get(i + 1) {
        Some(hi) => format!("{}-{}", FILL_BINS[i], hi),
        None => format!("{}+", FILL_BINS[i]),
    }
}

fn ratio(ok: u64, all: u64) -> Option<f64> {
    (all > 0).then(|| ok as f64 / all as f64)
}

impl Survival {
    pub(crate) fn record(&mut self, age: usize, doc: &Document, ok: bool, blocks: u64, found: u64) {
        self.all[age].add(ok, blocks, found);
        if doc.pinned {
            self.pinned[age].add(ok, blocks, found);
        }
        let p = Popularity::ALL.iter().position(|&x| x == doc.popularity).unwrap_or(0);
        self.popularity[age][p].add(ok, blocks, found);
        self.fill[age][fill_bin(doc.fill_at_insert)].add(ok, blocks, found);
    }

    pub(crate) fn points(&self, days: u32) -> Vec<AgePoint> {
        AGES.iter()
            .enumerate()
            .filter(|&(_, &a)| a < days)
            .map(|(i, &a)| AgePoint {
                age_days: a,
                documents: ratio(self.all[i].documents_ok, self.all[i].documents),
                blocks: ratio(self.all[i].blocks_ok, self.all[i].blocks),
                all: self.all[i],
                by_popularity: Popularity::ALL
                    .iter()
                    .zip(self.popularity[i])
                    .map(|(p, t)| (p.name().to_string(), t))
                    .collect(),
                by_fill: (0..FILL_BINS.len()).map(|b| (fill_label(b), self.fill[i][b])).collect(),
                pinned: self.pinned[i],
            })
            .collect()
    }
}
