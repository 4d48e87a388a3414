//! Swap rounds without the swap protocol's messages: the same chain, run centrally.
//!
//! A simulated swap round at 100,000 nodes costs 13–40 s of wall time when every walk,
//! commitment and reveal is a message between `Node`s (about 14 messages per swap, most of
//! the time in cache misses), so the hundreds of rounds a large darknet needs take hours.
//! This module runs the *chain* those messages implement and nothing else:
//!
//! - the partner is the end of a random walk taken with the protocol's own pure steps:
//!   a length from [`walk_htl`], a random first peer, then [`walk_step`] at each hop (a
//!   random peer other than the one the walk came from, stopping early at a dead end), the
//!   function `Swapper::on_request` relays with; a walk that ends where it started is
//!   refused, as the busy initiator would refuse it;
//! - both sides' reveals are built by [`Reveal::new`], as `Swapper` builds them: true
//!   locations, neighbours' locations, swap ages (the initiator ages by one per swap it
//!   starts; the reveal carries it capped) and a fresh random share per side; [`decide`]
//!   (the same function the node calls, plausibility check included) gives the verdict.
//!
//! The initiator's draws come in a different order from `Swapper::start`'s (walk length,
//! then first peer, here; first peer, share, id, length there): the chain draws from the
//! simulator's RNG, not the nodes', so the orders need not match, and this one is what the
//! pinned direct-mode reports were made with.
//!
//! What it leaves out: swaps overlapping in time (in the message mode about 3% of swaps are
//! refused because the partner is busy), stale neighbour locations while updates are in
//! flight, and anything an attacker does to swap messages. So it refuses Pitch Black and
//! location resets ([`SimError::DirectSwaps`](super::SimError::DirectSwaps)), and the
//! message mode stays the default. The figures that compare the two modes on the same
//! seed are in docs/simulation.md.
//!
//! The chain runs on a vector of locations; the nodes are moved once, at the end (each
//! then tells its peers, as after a real swap), a batch at a time.

use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::network::Network;
use super::{mean_link_length_of, settle, Phase, SimError, SwapCounts, Topology, TracePoint};
use crate::location::Location;
use crate::routing::swap::{decide, walk_htl, walk_step, Decision, Reveal};

/// Nodes moved to their new locations at a time (see the end of [`run_rounds`]).
const MOVE_BATCH: usize = 5_000;

/// Runs `rounds` rounds (every node starts one swap per round, in a random order) on the
/// nodes' current locations, then moves every node whose location changed. Returns the
/// counters (as the nodes would have counted them) and a trace point every `trace_every`
/// rounds.
pub(crate) fn run_rounds(
    net: &mut Network,
    topo: &Topology,
    rounds: usize,
    trace_every: usize,
    check_neighbours: bool,
    rng: &mut ChaCha8Rng,
) -> Result<(SwapCounts, Vec<TracePoint>), SimError> {
    let n = net.len();
    let start: Vec<Location> = (0..n).map(|i| net.node(i).location()).collect();
    let mut age: Vec<u32> = (0..n).map(|i| net.node(i).swap_age()).collect();
    let mut loc = start.clone();
    let mut counts = SwapCounts::default();
    let trace = chain(topo, &mut loc, &mut age, rounds, trace_every, check_neighbours, &mut counts, rng);
    // A moved node tells each peer, and each peer then tells its own peers about its
    // changed neighbour list: about 150 messages per moved node. Moving all of 100,000
    // nodes at once would queue 15 million messages (3 GiB), so they move in batches.
    for (i, &a) in age.iter().enumerate() {
        net.node_mut(i).set_swap_age(a);
    }
    let moved: Vec<usize> = (0..n).filter(|&i| loc[i] != start[i]).collect();
    for batch in moved.chunks(MOVE_BATCH) {
        let now = net.now();
        for &i in batch {
            net.node_mut(i).set_location(now, loc[i]);
            net.flush(i);
        }
        // Each batch's updates are a flood of their own: no per-operation budget.
        settle(net, u64::MAX, Phase::DirectSwapMoves)?;
    }
    Ok((counts, trace))
}

/// Runs `rounds` rounds of the chain on `loc` and `age` (node `i` at `loc[i]`, aged
/// `age[i]`), adding to `counts`; returns a trace point every `trace_every` rounds. A node
/// without neighbours in `topo` sits the rounds out: the durability model
/// (`sim::durability`) passes the graph of the nodes online at the time, so offline nodes
/// neither start swaps nor end walks.
#[allow(clippy::too_many_arguments)]
pub(crate) fn chain(
    topo: &Topology,
    loc: &mut [Location],
    age: &mut [u32],
    rounds: usize,
    trace_every: usize,
    check_neighbours: bool,
    counts: &mut SwapCounts,
    rng: &mut ChaCha8Rng,
) -> Vec<TracePoint> {
    let mut trace = Vec::new();
    let mut order: Vec<usize> = (0..loc.len()).collect();
    for round in 1..=rounds {
        order.shuffle(rng);
        for &a in &order {
            if topo.adjacency[a].is_empty() {
                continue;
            }
            counts.attempted += 1;
            age[a] = age[a].saturating_add(1);
            let b = walk_end(topo, a, rng);
            if b == a {
                counts.refused += 1;
                continue;
            }
            let ra = reveal(topo, loc, age, a, rng);
            let rb = reveal(topo, loc, age, b, rng);
            match decide(&ra, &rb, check_neighbours) {
                Decision::Swap => {
                    loc.swap(a, b);
                    counts.done += 2;
                }
                Decision::Keep => counts.kept += 2,
                Decision::Implausible => counts.implausible += 2,
            }
        }
        if trace_every > 0 && (round % trace_every == 0 || round == rounds) {
            trace.push(TracePoint { round, mean_link_length: mean_link_length_of(topo, loc), swaps: *counts });
        }
    }
    trace
}

/// Where a swap walk from `a` ends (see the module comment).
fn walk_end(topo: &Topology, a: usize, rng: &mut ChaCha8Rng) -> usize {
    let mut htl = walk_htl(rng);
    let Some(&first) = topo.adjacency[a].choose(rng) else { return a };
    let (mut prev, mut at) = (a as u32, first);
    while let Some((next, left)) = walk_step(rng, htl, prev, &topo.adjacency[at as usize]) {
        (prev, at, htl) = (at, next, left);
    }
    at as usize
}

/// Node `i`'s reveal on the chain's locations (its true age: [`Reveal::new`] caps it).
fn reveal(topo: &Topology, loc: &[Location], age: &[u32], i: usize, rng: &mut ChaCha8Rng) -> Reveal {
    Reveal::new(loc[i], topo.adjacency[i].iter().map(|&j| loc[j as usize]).collect(), age[i], rng)
}
