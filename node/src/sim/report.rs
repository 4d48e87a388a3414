//! What a run measured ([`Report`]), and the one builder every run fills phase by phase,
//! node-based or reference ([`ReportBuilder`]), so each figure is derived in one place.

use serde::Serialize;

use super::config::SimConfig;

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
    /// Chance level for the max-HTL guesses: the precision a neighbour would have if the
    /// fetch's max-HTL senders could not be told apart (each guess right with probability
    /// 1 / their number). Issue 14's target: precision at most this.
    pub htl_guess_chance: Option<f64>,
    /// Request-id traceback (with `observe`): DataRequest ids seen on more than one link
    /// within one fetch (0 means an id never leads anywhere past its link).
    pub ids_on_two_links: u64,
    /// Success rate on fresh documents after the recovery rounds (`None`: not run).
    pub recovery_success_rate: Option<f64>,
    /// Location KS distance after the recovery rounds.
    pub recovery_location_ks: Option<f64>,
    /// Cache flushing (with `junk_inserts`): the mean number of nodes holding each measured
    /// document in their store area (not the cache) before the junk, and after it (`None`:
    /// no junk). What a flusher evicts from the sinks shows here, even when cached copies
    /// elsewhere still answer the fetches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_copies_before_junk: Option<f64>,
    /// See `store_copies_before_junk`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_copies_after_junk: Option<f64>,
    /// Junk inserts the flushers sent (`--attack flusher:F`, `sim/flusher.rs`).
    pub flusher_inserts: usize,
    /// Mean bytes of blocks held per node at the end.
    pub stored_bytes_per_node: f64,
    /// Virtual time the run took, in seconds.
    pub virtual_seconds: f64,
    /// Of the measured fetches, the share whose request reached the node closest to the
    /// key (`None` where nodes have no location: freenet2000). A fetch answered by a copy
    /// on the way may stop before it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closest_reached: Option<f64>,
    /// Hops (requests sent, backtracking included) until the request first reached the
    /// node closest to the key: median and 95th percentile over the fetches that reached
    /// it. Compares with Kleinberg's and Sandberg's route lengths.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closest_hops_median: Option<f64>,
    /// See `closest_hops_median`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closest_hops_p95: Option<f64>,
    /// The same three over the fetches of keys nobody inserted (`absent_requests`): no
    /// copy stops them early, so these are the route lengths to the closest node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub absent_closest_reached: Option<f64>,
    /// See `absent_closest_reached`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub absent_closest_hops_median: Option<f64>,
    /// See `absent_closest_reached`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub absent_closest_hops_p95: Option<f64>,
    /// Freenet 2000 only: success and median hops per round of `nodes` fetches (one
    /// request per node on average), to see how many requests per node its routing tables
    /// need to become useful.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub request_rounds: Vec<RequestRound>,
}

/// One round of `nodes` fetches (see [`Report::request_rounds`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RequestRound {
    /// Requests per node so far.
    pub requests_per_node: f64,
    /// Success rate in this round.
    pub success_rate: f64,
    /// Median hops of its successful fetches.
    pub hops_median: f64,
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

/// The raw tallies of one run, gathered phase by phase; [`ReportBuilder::finish`] derives
/// every rate and percentile of the [`Report`] from them. What a phase did not run stays
/// at its default (no fetches, no swaps: zero).
#[derive(Debug, Default)]
pub(crate) struct ReportBuilder {
    /// Nodes in the graph.
    pub(crate) nodes: usize,
    /// Edges in the graph.
    pub(crate) edges: usize,
    /// Mean degree of the graph.
    pub(crate) mean_degree: f64,
    /// Adversary nodes.
    pub(crate) attackers: usize,
    /// Inserts started, and those that reported success.
    pub(crate) inserts: usize,
    pub(crate) inserts_ok: usize,
    /// Measured fetches that returned the right block, and a wrong one.
    pub(crate) successes: usize,
    pub(crate) invalid: usize,
    /// Hops (DataRequests caused) of each successful fetch, in fetch order.
    pub(crate) hops: Vec<u64>,
    /// Messages the measured fetches caused (churn's own messages excluded).
    pub(crate) fetch_messages: u64,
    /// Messages each node received from the first measured fetch to the last absent one.
    pub(crate) loads: Vec<u64>,
    /// Forged blocks the nodes rejected over the same span.
    pub(crate) forged_rejected: u64,
    /// Swap counters of the swap rounds, and their trace.
    pub(crate) swaps: SwapCounts,
    pub(crate) swap_trace: Vec<TracePoint>,
    /// Mean link length and location KS distance after the measured fetches.
    pub(crate) mean_link_length: f64,
    pub(crate) location_ks: f64,
    /// Nodes that left (churn).
    pub(crate) churn_leaves: usize,
    /// Messages all absent-key fetches caused.
    pub(crate) absent_messages: u64,
    /// Passive observers' tallies: guesses at max HTL, right ones, ids on two links.
    pub(crate) htl_guesses: u64,
    pub(crate) htl_guesses_right: u64,
    pub(crate) htl_guesses_chance: f64,
    pub(crate) ids_on_two_links: u64,
    /// Success rate and location KS distance after the recovery rounds.
    pub(crate) recovery: Option<(f64, f64)>,
    /// Mean store-area copies per document before and after the junk inserts.
    pub(crate) store_copies: Option<(f64, f64)>,
    /// Junk inserts the flushers sent.
    pub(crate) flusher_inserts: usize,
    /// Bytes of blocks held by all nodes after the measured fetches.
    pub(crate) stored_bytes: u64,
    /// Virtual time the run took, in seconds.
    pub(crate) virtual_seconds: f64,
    /// Fetches for which the hops to the node closest to the key were looked for, and the
    /// hops of those that reached it.
    pub(crate) closest_probes: usize,
    pub(crate) closest_hops: Vec<u64>,
    /// The same for the absent-key fetches.
    pub(crate) absent_closest_probes: usize,
    pub(crate) absent_closest_hops: Vec<u64>,
    /// Freenet 2000's rounds.
    pub(crate) request_rounds: Vec<RequestRound>,
}

impl ReportBuilder {
    /// The report of a run of `config`.
    pub(crate) fn finish(self, config: &SimConfig) -> Report {
        let requests = config.requests.max(1) as f64;
        let nodes = self.nodes.max(1) as f64;
        let mut hops = self.hops;
        hops.sort_unstable();
        let mut closest = self.closest_hops;
        closest.sort_unstable();
        let probed = self.closest_probes > 0;
        let mut absent = self.absent_closest_hops;
        absent.sort_unstable();
        let absent_probed = self.absent_closest_probes > 0 && !absent.is_empty();
        Report {
            strategy: config.strategy.name(),
            swap_mode: config.swap_mode.name(),
            seed: config.seed,
            nodes: self.nodes,
            edges: self.edges,
            mean_degree: self.mean_degree,
            attackers: self.attackers,
            requests: config.requests,
            successes: self.successes,
            success_rate: self.successes as f64 / requests,
            invalid_accepted: self.invalid,
            hops_median: percentile(&hops, 0.5),
            hops_p95: percentile(&hops, 0.95),
            hops_max: hops.last().copied().unwrap_or(0),
            hops,
            messages_per_request: self.fetch_messages as f64 / requests,
            busiest_node_load: self.loads.iter().copied().max().unwrap_or(0) as f64 / requests,
            mean_node_load: self.loads.iter().sum::<u64>() as f64 / nodes / requests,
            inserts_ok: self.inserts_ok,
            inserts: self.inserts,
            forged_rejected: self.forged_rejected,
            swaps_attempted: self.swaps.attempted,
            swaps_done: self.swaps.done,
            swaps_kept: self.swaps.kept,
            swaps_refused: self.swaps.refused,
            swaps_implausible: self.swaps.implausible,
            swaps_timed_out: self.swaps.timed_out,
            swap_trace: self.swap_trace,
            mean_link_length: self.mean_link_length,
            location_ks: self.location_ks,
            churn_leaves: self.churn_leaves,
            messages_per_absent_request: self.absent_messages as f64 / config.absent_requests.max(1) as f64,
            htl_guess_precision: (config.observe && self.htl_guesses > 0)
                .then(|| self.htl_guesses_right as f64 / self.htl_guesses as f64),
            htl_guesses: self.htl_guesses,
            htl_guess_chance: (config.observe && self.htl_guesses > 0)
                .then(|| self.htl_guesses_chance / self.htl_guesses as f64),
            ids_on_two_links: self.ids_on_two_links,
            recovery_success_rate: self.recovery.map(|(rate, _)| rate),
            store_copies_before_junk: self.store_copies.map(|(before, _)| before),
            store_copies_after_junk: self.store_copies.map(|(_, after)| after),
            flusher_inserts: self.flusher_inserts,
            recovery_location_ks: self.recovery.map(|(_, ks)| ks),
            stored_bytes_per_node: self.stored_bytes as f64 / nodes,
            virtual_seconds: self.virtual_seconds,
            closest_reached: probed.then(|| closest.len() as f64 / self.closest_probes as f64),
            closest_hops_median: (probed && !closest.is_empty()).then(|| percentile(&closest, 0.5)),
            closest_hops_p95: (probed && !closest.is_empty()).then(|| percentile(&closest, 0.95)),
            absent_closest_reached: (self.absent_closest_probes > 0)
                .then(|| absent.len() as f64 / self.absent_closest_probes as f64),
            absent_closest_hops_median: absent_probed.then(|| percentile(&absent, 0.5)),
            absent_closest_hops_p95: absent_probed.then(|| percentile(&absent, 0.95)),
            request_rounds: self.request_rounds,
        }
    }
}

/// The `q` quantile of sorted values (nearest rank), 0 when empty.
fn percentile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64
}
