//! Simulator properties on small networks (feature `sim`). Each test runs over a few seeds
//! (`PAMPHLET_SEED=n` replays one) and every assertion message carries the seed.

// Tests and benchmarks measure with, or drive nodes by, the real clock.
#![allow(clippy::disallowed_methods)]

mod common;

use std::time::Instant;

use common::seeds;
use pamphlet_node::routing::swap::COOLING_SWAPS;
use pamphlet_node::sim::config::Defence;
use pamphlet_node::sim::{run, Attack, Placement, Report, SimConfig, SwapMode, TopologyKind};

fn small(seed: u64) -> SimConfig {
    SimConfig { nodes: 300, degree: 10, requests: 60, docs: 20, seed, ..SimConfig::default() }
}

fn sim(config: &SimConfig) -> Report {
    run(config, Instant::now()).unwrap_or_else(|e| panic!("seed {}: {e}", config.seed))
}

#[test]
fn same_seed_same_report_and_different_seed_differs() {
    for seed in seeds(&[7]) {
        let config = SimConfig { placement: Placement::Ideal, ..small(seed) };
        let a = sim(&config);
        let b = sim(&config);
        assert_eq!(a, b, "seed {seed}");
        let c = sim(&SimConfig { seed: seed + 1, ..config });
        assert_ne!((a.hops.clone(), a.messages_per_request), (c.hops, c.messages_per_request), "seed {seed}");
        assert!(a.success_rate > 0.9, "seed {seed}: ideal small world should route: {a:?}");
        assert_eq!(a.invalid_accepted, 0, "seed {seed}");
    }
}

#[test]
fn forged_blocks_are_never_accepted() {
    for seed in seeds(&[3, 4]) {
        let config = SimConfig {
            placement: Placement::Ideal,
            attack: Some("forger:0.2".parse::<Attack>().unwrap()),
            ..small(seed)
        };
        let r = sim(&config);
        assert_eq!(r.invalid_accepted, 0, "seed {seed}: {r:?}");
        assert!(r.forged_rejected > 0, "seed {seed}: forgers never met: {r:?}");
    }
}

/// A uniform random graph (like Hyphanet's opennet), not a small world: the run is on
/// `Topology::random`'s graph (its links, at ideal locations, are what the report measures),
/// they are as long as random links (a quarter of the circle; the small world's are about
/// 0.09 at this size), and routing on it still finds the documents without accepting a
/// wrong block (measured: every fetch succeeded for seeds 5 to 9).
#[test]
fn random_topology_runs() {
    use pamphlet_node::location::Location;
    use pamphlet_node::sim::Topology;
    use rand::SeedableRng;

    for seed in seeds(&[5, 6]) {
        let config = SimConfig { topology: TopologyKind::Random, placement: Placement::Ideal, ..small(seed) };
        let r = sim(&config);
        // The run draws its graph first, from the seed.
        let graph = Topology::random(300, 10, &mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
        let at = |i: usize| Location::from_f64(i as f64 / 300.0);
        let link_length = graph
            .adjacency
            .iter()
            .enumerate()
            .map(|(i, nbrs)| nbrs.iter().map(|&j| at(i).distance_f64(at(j as usize))).sum::<f64>() / nbrs.len() as f64)
            .sum::<f64>()
            / 300.0;
        assert_eq!(r.edges, graph.edges().len(), "seed {seed}");
        assert!((r.mean_link_length - link_length).abs() < 1e-9, "seed {seed}: not Topology::random's graph");
        let small_world = sim(&SimConfig { topology: TopologyKind::SmallWorld, ..config });
        assert!(
            r.mean_link_length > 0.2 && small_world.mean_link_length < 0.15,
            "seed {seed}: random graph links {}, small world {}",
            r.mean_link_length,
            small_world.mean_link_length
        );
        assert!(r.success_rate >= 0.95, "seed {seed}: {r:?}");
        assert_eq!((r.invalid_accepted, r.inserts_ok), (0, r.inserts), "seed {seed}");
    }
}

/// Swapping on a small world with shuffled locations: links get shorter and requests
/// cheaper and more successful (summed over seeds: one seed can be noisy). The nodes
/// start settled (no annealing), so 30 rounds show the swap rule itself; annealing has
/// its own test below.
#[test]
fn swapping_improves_routing() {
    let (mut before, mut after) = ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0));
    for seed in seeds(&[1, 2, 3]) {
        let config = SimConfig {
            nodes: 400,
            degree: 8,
            requests: 60,
            docs: 60,
            max_htl: 10,
            swap_age: COOLING_SWAPS,
            seed,
            ..SimConfig::default()
        };
        let a = sim(&config);
        let b = sim(&SimConfig { swap_rounds: 30, ..config });
        assert!(b.swaps_done > 0, "seed {seed}");
        assert!(
            b.mean_link_length < 0.75 * a.mean_link_length,
            "seed {seed}: {} -> {}",
            a.mean_link_length,
            b.mean_link_length
        );
        before = (before.0 + a.mean_link_length, before.1 + a.success_rate, before.2 + a.messages_per_request);
        after = (after.0 + b.mean_link_length, after.1 + b.success_rate, after.2 + b.messages_per_request);
    }
    // Success is near 1 either way at this size (documents are cached along insert
    // paths); allow one request in 180 of noise. Cost is where swapping shows.
    assert!(after.1 >= before.1 - 1.0 / 60.0, "success {before:?} -> {after:?}");
    assert!(after.2 < 0.85 * before.2, "messages per request {before:?} -> {after:?}");
}

/// Black holes (20%) answer DataNotFound at once. With the defences (inserts refuse that
/// answer, originators and relays with many hops left cap what it may cost) documents reach
/// their honest sinks and fetches route around the liars: nearly every fetch succeeds,
/// against well under half when every "not found" is believed.
#[test]
fn blackhole_defence_beats_no_defence() {
    let (mut with, mut without, mut runs) = (0.0, 0.0, 0.0);
    for seed in seeds(&[1, 2]) {
        runs += 1.0;
        let config =
            SimConfig { placement: Placement::Ideal, attack: Some("blackhole:0.2".parse().unwrap()), ..small(seed) };
        let d = sim(&config);
        let n = sim(&SimConfig { defences: false, ..config });
        assert!(d.attackers == 60 && n.attackers == 60, "seed {seed}");
        assert_eq!(d.invalid_accepted + n.invalid_accepted, 0, "seed {seed}");
        assert!(d.success_rate >= 0.9, "seed {seed}: with defence {}", d.success_rate);
        with += d.success_rate;
        without += n.success_rate;
    }
    assert!(with > without + 0.4 * runs, "with defence {with}, without {without}");
}

/// FOAF liars (issue 14, item 7): 10% silent nodes advertising 64 evenly spread
/// neighbours. With the claim checks their lists are refused, so they are not ranked first
/// for most keys; without them inserts die in the liars and fetches cost more messages.
#[test]
fn foaf_liars_are_not_believed() {
    let (mut ok_with, mut ok_without, mut msgs_with, mut msgs_without) = (0, 0, 0.0, 0.0);
    for seed in seeds(&[1, 2]) {
        let config =
            SimConfig { placement: Placement::Ideal, attack: Some("foaf-liar:0.1".parse().unwrap()), ..small(seed) };
        let d = sim(&config);
        let n = sim(&SimConfig { without: vec![Defence::Claims], ..config });
        assert!(d.success_rate >= 0.95, "seed {seed}: with the claim checks {}", d.success_rate);
        (ok_with, ok_without) = (ok_with + d.inserts_ok, ok_without + n.inserts_ok);
        (msgs_with, msgs_without) = (msgs_with + d.messages_per_request, msgs_without + n.messages_per_request);
    }
    assert!(ok_with > ok_without, "inserts that succeeded: {ok_with} with the checks, {ok_without} without");
    assert!(msgs_with < msgs_without, "messages per fetch: {msgs_with} with the checks, {msgs_without} without");
}

/// Location liars (issue 14, item 7): 20% black holes that claim to sit right next to
/// each peer. With pamphlet's defences fetches still succeed; with Hyphanet's rules of
/// trust they mostly fail. (The claim checks alone make no difference to fetches here: the
/// black-hole caps route around the liars; what a near-equal claim does to sinkhood is
/// tested on the peer table, `routing::peers`.)
#[test]
fn location_liars_do_not_stop_fetches() {
    for seed in seeds(&[1]) {
        let config = SimConfig {
            placement: Placement::Ideal,
            attack: Some("location-liar:0.2".parse().unwrap()),
            ..small(seed)
        };
        let d = sim(&config);
        let n = sim(&SimConfig { defences: false, ..config });
        assert!(d.success_rate >= 0.95, "seed {seed}: with defences {}", d.success_rate);
        assert!(n.success_rate < d.success_rate - 0.3, "seed {seed}: without defences {}", n.success_rate);
    }
}

/// Pitch Black: 1% of nodes poison swaps. Without the plausibility check honest locations
/// cluster (KS distance from uniform jumps); with it they stay spread.
#[test]
fn pitch_black_mitigation_keeps_locations_spread() {
    for seed in seeds(&[4]) {
        let config = SimConfig {
            nodes: 300,
            degree: 8,
            swap_rounds: 15,
            requests: 40,
            docs: 20,
            attack: Some("pitchblack:0.01".parse().unwrap()),
            seed,
            ..SimConfig::default()
        };
        let d = sim(&config);
        let n = sim(&SimConfig { defences: false, ..config });
        assert!(n.location_ks > 0.2, "seed {seed}: attack had no effect: {}", n.location_ks);
        assert!(d.location_ks < 0.1, "seed {seed}: mitigation failed: {}", d.location_ks);
        assert!(
            d.mean_link_length > n.mean_link_length,
            "seed {seed}: {} vs {}",
            d.mean_link_length,
            n.mean_link_length
        );
    }
}

/// Every strategy on one topology and workload, with 10% forgers: only genuine blocks come
/// back, and the node-based strategies still find most documents.
#[test]
fn every_strategy_returns_only_valid_data() {
    use pamphlet_node::sim::Strategy;
    for seed in seeds(&[2]) {
        for strategy in Strategy::ALL {
            let config = SimConfig {
                nodes: 200,
                degree: 8,
                requests: 30,
                docs: 10,
                placement: Placement::Ideal,
                attack: Some("forger:0.1".parse().unwrap()),
                strategy,
                seed,
                ..SimConfig::default()
            };
            let r = sim(&config);
            assert_eq!(r.invalid_accepted, 0, "seed {seed} {strategy:?}");
            assert_eq!(r.strategy, strategy.name());
            assert!(r.success_rate > 0.3, "seed {seed} {strategy:?}: {}", r.success_rate);
        }
    }
}

/// Passive attacks on the fetch path: request ids never appear on two links (traceback finds
/// nothing), and a neighbour guessing "my sender started it" at max HTL is often wrong.
#[test]
fn passive_observers_learn_little() {
    for seed in seeds(&[6]) {
        let r = sim(&SimConfig { placement: Placement::Ideal, observe: true, ..small(seed) });
        assert_eq!(r.ids_on_two_links, 0, "seed {seed}");
        let p = r.htl_guess_precision.unwrap_or_else(|| panic!("seed {seed}: no guesses"));
        assert!(r.htl_guesses > 20, "seed {seed}: {}", r.htl_guesses);
        assert!(p < 0.85, "seed {seed}: max-HTL guess precision {p}");
        // Issue 14's target: no better than picking one of the fetch's max-HTL senders at
        // random. An originator that sent at max HTL twice as often as a relay (say, to
        // every peer it backtracked to while relays did not) would show here.
        let chance = r.htl_guess_chance.expect("chance level");
        assert!(p <= chance + 1e-9, "seed {seed}: precision {p} above chance {chance}");
    }
}

/// The timing prober (issue 14; `sim/attack.rs`): silent first hops that ask their sender
/// for the key just after a relay would have given up. Originators and relays now give up
/// at the same time, so no probe is ever answered RejectedLoop and the probers make no
/// guess. With the originator's deadline at 120 s (before the fix) this run gave 5
/// guesses, all right (precision 1.0). Degree 16: a prober needs more than 10 peers for its
/// own silent request to last until the relay deadline.
#[test]
fn timing_probers_make_no_guess() {
    for seed in seeds(&[6]) {
        let r = sim(&SimConfig {
            placement: Placement::Ideal,
            observe: true,
            degree: 16,
            requests: 100,
            attack: Some("timing-prober:0.1".parse().unwrap()),
            ..small(seed)
        });
        assert_eq!(r.attackers, 30, "seed {seed}");
        assert_eq!(r.htl_guesses, 0, "seed {seed}: precision {:?}", r.htl_guess_precision);
    }
}

/// Cache flushing with tiny stores: junk inserts run, never corrupt anything, and can only
/// hurt (the measured figures are in docs/security.md).
#[test]
fn cache_flushing_runs_and_only_hurts() {
    for seed in seeds(&[8]) {
        let config = SimConfig { placement: Placement::Ideal, store_blocks: Some(4), ..small(seed) };
        let clean = sim(&config);
        let flushed = sim(&SimConfig { junk_inserts: 600, ..config.clone() });
        assert_eq!(flushed.invalid_accepted, 0, "seed {seed}");
        assert!(
            flushed.success_rate <= clean.success_rate,
            "seed {seed}: {} > {}",
            flushed.success_rate,
            clean.success_rate
        );
        // The per-peer store budget, scaled to these 4-block store areas (one write at
        // once), keeps most junk out of the store areas; without it the junk flushes.
        let open = sim(&SimConfig { junk_inserts: 600, without: vec![Defence::StoreBudget], ..config });
        assert!(open.success_rate < 1.0, "seed {seed}: 600 junk inserts into 2,400 slots flushed nothing");
        assert!(
            flushed.success_rate >= open.success_rate,
            "seed {seed}: {} < {}",
            flushed.success_rate,
            open.success_rate
        );
    }
}

/// The flusher at scale (issue 14, `sim/flusher.rs`) runs: flushers send their junk to
/// every honest neighbour and it can only take store copies away. What the store budget
/// buys at 2,000 nodes is measured in docs/security.md (at this size the ground keys are too
/// far from the victims to show it; the budget's own tests are in routing_defences.rs).
#[test]
fn flushers_send_junk_and_it_only_hurts() {
    for seed in seeds(&[3]) {
        let config = SimConfig {
            nodes: 100,
            degree: 8,
            placement: Placement::Ideal,
            store_blocks: Some(8),
            attack: Some("flusher:0.1".parse().unwrap()),
            ..small(seed)
        };
        let r = sim(&config);
        assert_eq!(r.attackers, 10, "seed {seed}");
        assert!(r.flusher_inserts >= 10 * 256, "seed {seed}: {}", r.flusher_inserts);
        let (before, after) = (r.store_copies_before_junk.unwrap(), r.store_copies_after_junk.unwrap());
        assert!(after <= before, "seed {seed}: {before} -> {after}");
    }
}

/// Eclipse: the nodes closest to one key are Sybil black holes. The insert refuses their
/// "not found" and lands on the nearest honest nodes, where fetches find it; trusting their
/// DataNotFound finds almost nothing.
#[test]
fn eclipse_defence_beats_no_defence() {
    for seed in seeds(&[1, 3]) {
        let config = SimConfig {
            placement: Placement::Ideal,
            docs: 1,
            attack: Some("eclipse:0.01".parse().unwrap()),
            ..small(seed)
        };
        let d = sim(&config);
        let n = sim(&SimConfig { defences: false, ..config });
        assert_eq!(d.attackers, 3, "seed {seed}");
        assert!(d.success_rate > n.success_rate + 0.5, "seed {seed}: {} vs {}", d.success_rate, n.success_rate);
    }
}

/// Periodic swapping (`swap_interval`) runs on its own timer, through the harness.
#[test]
fn periodic_swapping_runs_on_its_timer() {
    use std::time::Duration;

    use pamphlet_node::location::Location;
    use pamphlet_node::sim::network::Network;
    use pamphlet_node::store::MemoryStore;

    for seed in seeds(&[9]) {
        let mut net = Network::new(seed, Instant::now());
        // A ring of 8 whose locations are reversed pairwise: plenty of good swaps.
        let locs = [0.5, 0.1, 0.7, 0.3, 0.9, 0.2, 0.6, 0.0];
        for (i, &l) in locs.iter().enumerate() {
            let mut c = net.config(i, Location::from_f64(l));
            c.swap_interval = Some(Duration::from_secs(1));
            net.add_node_with(c, MemoryStore::default());
        }
        for i in 0..8 {
            net.connect(i, (i + 1) % 8);
        }
        net.run_for(Duration::from_secs(30));
        let (mut attempted, mut done) = (0, 0);
        for i in 0..8 {
            attempted += net.node(i).stats().swaps_attempted;
            done += net.node(i).stats().swaps_done;
        }
        assert!(attempted >= 8 * 20, "seed {seed}: {attempted} swaps in 30 s at one per second per node");
        assert!(done > 0, "seed {seed}");
        // Swaps permute locations: the multiset is unchanged.
        let mut now: Vec<u64> = (0..8).map(|i| net.node(i).location().0).collect();
        let mut before: Vec<u64> = locs.iter().map(|&l| Location::from_f64(l).0).collect();
        now.sort_unstable();
        before.sort_unstable();
        assert_eq!(now, before, "seed {seed}");
    }
}

/// Determinism holds through swapping, attackers' filters and churn too.
#[test]
fn swapping_attacks_and_churn_are_deterministic() {
    for seed in seeds(&[11]) {
        for attack in ["pitchblack:0.02", "blackhole:0.1"] {
            let config = SimConfig {
                nodes: 200,
                degree: 8,
                requests: 30,
                docs: 10,
                swap_rounds: 3,
                churn: 0.3,
                attack: Some(attack.parse().unwrap()),
                seed,
                ..SimConfig::default()
            };
            assert_eq!(sim(&config), sim(&config), "seed {seed} {attack}");
        }
    }
}

/// Direct swap rounds run the protocol's chain without its messages: on the same graph and
/// starting locations they shorten links about as much as the message-level rounds do
/// (within a fifth; at 10,000 nodes the figures are in docs/simulation.md), the nodes end
/// where the chain put them and route there, the runs are deterministic, and what they
/// cannot model (an attacker's swap messages, location resets) is refused.
#[test]
fn direct_swaps_follow_the_message_protocol() {
    for seed in seeds(&[1, 2, 3]) {
        let config = SimConfig {
            nodes: 400,
            degree: 8,
            requests: 60,
            docs: 60,
            max_htl: 10,
            swap_rounds: 30,
            swap_age: COOLING_SWAPS,
            seed,
            ..SimConfig::default()
        };
        let unswapped = sim(&SimConfig { swap_rounds: 0, ..config.clone() });
        let messages = sim(&config);
        let direct_config = SimConfig { swap_mode: SwapMode::Direct, trace_every: 10, ..config.clone() };
        let direct = sim(&direct_config);
        assert_eq!(direct.swap_mode, "direct");
        assert_eq!(direct, sim(&direct_config), "seed {seed}: direct swaps are not deterministic");
        let (m, d) = (messages.mean_link_length, direct.mean_link_length);
        assert!(
            d < 0.75 * unswapped.mean_link_length,
            "seed {seed}: direct swapping did not shorten links: {} -> {d}",
            unswapped.mean_link_length
        );
        assert!((d - m).abs() < 0.2 * m, "seed {seed}: direct {d} and message-level {m} mean link length disagree");
        assert_eq!(direct.swaps_attempted, 400 * 30, "seed {seed}");
        // The chain's last state is where the nodes are.
        assert_eq!(direct.swap_trace.len(), 3, "seed {seed}");
        assert_eq!(direct.swap_trace[2].mean_link_length, d, "seed {seed}");
        assert!(direct.swaps_done > 0 && direct.swaps_kept > 0, "seed {seed}: {direct:?}");
        assert!(direct.success_rate >= 0.95, "seed {seed}: {direct:?}");
        assert_eq!(direct.invalid_accepted, 0, "seed {seed}");
    }
    let pitch_black =
        SimConfig { swap_mode: SwapMode::Direct, attack: Some("pitchblack:0.01".parse().unwrap()), ..small(1) };
    let err = run(&pitch_black, Instant::now()).expect_err("direct swaps cannot model Pitch Black");
    assert!(err.to_string().contains("Pitch Black"), "{err}");
    let resets = SimConfig { swap_mode: SwapMode::Direct, reset_probability: 0.01, ..small(1) };
    assert!(run(&resets, Instant::now()).is_err(), "direct swaps cannot model location resets");
}

/// Annealing: a new darknet (every node young, so swapping hot and cooling over its first
/// `COOLING_SWAPS` swaps) ends better ordered than the same darknet swapping at the base
/// temperature from the start, once the cooling is over. Direct swap rounds, so the few
/// hundred rounds stay cheap; both runs share graph, start locations and seed.
#[test]
fn annealing_orders_a_new_darknet_better() {
    for seed in seeds(&[1]) {
        let config = SimConfig {
            nodes: 3000,
            degree: 12,
            requests: 20,
            docs: 10,
            swap_rounds: COOLING_SWAPS as usize + 50,
            swap_mode: SwapMode::Direct,
            seed,
            ..SimConfig::default()
        };
        let annealed = sim(&config);
        let constant = sim(&SimConfig { swap_age: COOLING_SWAPS, ..config });
        assert!(
            annealed.mean_link_length < 0.9 * constant.mean_link_length,
            "seed {seed}: annealed {} against constant temperature {}",
            annealed.mean_link_length,
            constant.mean_link_length
        );
    }
}
