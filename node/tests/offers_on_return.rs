//! Offers on return in the node (issue 20; `node/durability/returns.rs` and
//! `remembered.rs`), on the `sim::network` harness: a node back after a time without peers,
//! or restarted with the store keys it remembered, hands its stored blocks to the peers
//! that came back closer to their keys, paced by its budget.

// Tests drive the harness with the real clock as the base of virtual time.
#![allow(clippy::disallowed_methods)]

mod common;

use std::time::{Duration, Instant};

use common::offers::insert_at_sink;
use common::routing::SEEDS;
use common::seeds;
use pamphlet_crypto::{Block, RoutingKey};
use pamphlet_node::location::Location;
use pamphlet_node::node::{DurabilityConfig, KeysFileError, NodeConfig};
use pamphlet_node::sim::network::Network;
use pamphlet_node::store::memory::MemoryStore;
use pamphlet_node::store::Area;

/// The returning node, its friends around it, and the friend that was away.
const NODE: usize = 0;
const INSERTER: usize = 1;
const AWAY_FRIEND: usize = 2;
const OTHER: usize = 3;

/// Node 0 at 0.5 with friends 1 (0.2) and 3 (0.8) online; friend 2 (0.46) is offline
/// (not connected) while node 1 inserts `n` blocks whose keys lie in 0.42–0.47: node 0 is
/// their sink, though node 2 is closer to each of them. Node 2 caches nothing, so it holds
/// only what it stores as a sink.
fn setup(seed: u64, durability: impl Fn(DurabilityConfig) -> DurabilityConfig, n: usize) -> (Network, Blocks) {
    let mut net = Network::new(seed, Instant::now());
    for (i, x) in [0.5, 0.2, 0.46, 0.8].into_iter().enumerate() {
        let mut config = net.config(i, Location::from_f64(x));
        config.durability = durability(config.durability);
        config.cache_passing = i != AWAY_FRIEND;
        net.add_node_with(config, MemoryStore::default());
    }
    net.connect(INSERTER, NODE);
    net.connect(NODE, OTHER);
    net.run();
    let blocks = insert_at_sink(&mut net, seed, INSERTER, NODE, 0.42..0.47, n);
    (net, blocks)
}

type Blocks = Vec<(RoutingKey, Block)>;

/// The blocks node 2 holds in its store area.
fn held_by_friend(net: &Network, blocks: &Blocks) -> usize {
    blocks.iter().filter(|(k, b)| net.node(AWAY_FRIEND).store().area_of(b.kind(), k) == Some(Area::Store)).count()
}

/// Node 0 loses every peer for `away`, then its friends connect again, node 2 with them.
fn away_and_back(net: &mut Network, away: Duration) {
    net.disconnect(NODE, INSERTER);
    net.disconnect(NODE, OTHER);
    net.run_for(away);
    for friend in [INSERTER, AWAY_FRIEND, OTHER] {
        net.connect(NODE, friend);
    }
}

fn default_durability(d: DurabilityConfig) -> DurabilityConfig {
    d
}

/// Away for longer than the threshold (10 minutes): back, node 0 offers node 2 the blocks
/// it is now closer to, and node 2 keeps them all in its store area. Switched off, or after
/// a blip shorter than the threshold, node 2 gets none.
#[test]
fn a_node_back_after_the_threshold_offers_what_its_peers_are_now_closer_to() {
    let away = DurabilityConfig::default().away;
    for seed in seeds(SEEDS) {
        for (on, gone, want) in [(true, away + Duration::from_secs(60), true), (false, away * 2, false)] {
            let (mut net, blocks) = setup(seed, |d| DurabilityConfig { offers_on_return: on, ..d }, 12);
            away_and_back(&mut net, gone);
            net.run_for(Duration::from_secs(10));
            let stats = net.node(NODE).stats();
            let kept = blocks.iter().filter(|(k, b)| net.node(NODE).store().area_of(b.kind(), k).is_some()).count();
            assert_eq!(kept, blocks.len(), "seed {seed}: the returning node keeps its copies");
            if want {
                assert_eq!(held_by_friend(&net, &blocks), blocks.len(), "seed {seed}: {stats:?}");
                assert_eq!(stats.returns, 1, "seed {seed}");
                assert_eq!(stats.offers_sent, blocks.len() as u64, "seed {seed}: only the blocks node 2 is closer to");
                assert_eq!(stats.unexpected_replies, 0, "seed {seed}: answers to offers are expected");
            } else {
                assert_eq!(held_by_friend(&net, &blocks), 0, "seed {seed}: switched off, node 2 gets nothing");
                assert_eq!(stats.offers_sent, 0, "seed {seed}");
            }
        }
    }
}

/// A short blip (every peer gone for a minute) is no return: nothing is offered.
#[test]
fn a_short_blip_offers_nothing() {
    for seed in seeds(SEEDS) {
        let (mut net, blocks) = setup(seed, default_durability, 12);
        away_and_back(&mut net, Duration::from_secs(60));
        net.run_for(Duration::from_secs(30));
        assert_eq!(net.node(NODE).stats().returns, 0, "seed {seed}");
        assert_eq!(net.node(NODE).stats().offers_sent, 0, "seed {seed}");
        assert_eq!(held_by_friend(&net, &blocks), 0, "seed {seed}");
    }
}

/// The pace is the offers' budget: the queue is rebuilt 2 s after the peers connect (their
/// locations have arrived), the key list one tick later, then `offers_per_tick` blocks go
/// out per tick.
#[test]
fn offers_on_return_go_out_at_the_budgets_pace() {
    let away = DurabilityConfig::default().away;
    for seed in seeds(SEEDS) {
        let (mut net, blocks) = setup(seed, |d| DurabilityConfig { offers_per_tick: 4, ..d }, 20);
        away_and_back(&mut net, away * 2);
        net.run_for(Duration::from_millis(2500));
        let stats = net.node(NODE).stats();
        assert_eq!(stats.return_offers_queued, blocks.len() as u64, "seed {seed}: {stats:?}");
        assert_eq!(stats.offers_sent, 0, "seed {seed}: none before the first tick");
        net.run_for(Duration::from_secs(1));
        let stats = net.node(NODE).stats();
        assert_eq!((stats.offer_lists_sent, stats.offers_sent), (1, 0), "seed {seed}: the keys first");
        for ticks in 1..=6u64 {
            net.run_for(Duration::from_secs(1));
            let sent = net.node(NODE).stats().offers_sent;
            assert_eq!(sent, (4 * ticks).min(blocks.len() as u64), "seed {seed}: after {ticks} ticks");
        }
        assert_eq!(held_by_friend(&net, &blocks), blocks.len(), "seed {seed}");
    }
}

/// Friends that come back within the return window (5 minutes) get their blocks; one that
/// connects later does not (the window bounds the rebuilds).
#[test]
fn friends_back_within_the_window_get_their_blocks_later_ones_do_not() {
    let d = DurabilityConfig::default();
    for seed in seeds(SEEDS) {
        for (after, want) in [(Duration::from_secs(60), 12), (d.return_window + Duration::from_secs(60), 0)] {
            let (mut net, blocks) = setup(seed, default_durability, 12);
            net.disconnect(NODE, INSERTER);
            net.disconnect(NODE, OTHER);
            net.run_for(d.away * 2);
            net.connect(NODE, INSERTER);
            net.connect(NODE, OTHER);
            net.run_for(after);
            assert_eq!(net.node(NODE).stats().offers_sent, 0, "seed {seed}: no peer closer yet");
            net.connect(NODE, AWAY_FRIEND);
            net.run_for(Duration::from_secs(10));
            assert_eq!(held_by_friend(&net, &blocks), want, "seed {seed}: node 2 back {after:?} after the return");
        }
    }
}

/// Restarts node 0 on the same store (the real node: same data directory, a fresh RNG
/// seed, the same link secret), loads `keys` if given, and connects its friends at once,
/// node 2 with them.
fn restart(net: &mut Network, keys: Option<&[u8]>) -> Result<usize, KeysFileError> {
    net.disconnect(NODE, INSERTER);
    net.disconnect(NODE, OTHER);
    let store = std::mem::take(net.node_mut(NODE).store_mut());
    let config = NodeConfig { seed: pamphlet_node::node::NodeSecret::new([9; 32]), ..net.node(NODE).config().clone() };
    net.replace_node(NODE, config, store);
    let loaded = keys.map_or(Ok(0), |k| net.node_mut(NODE).load_remembered_keys(k));
    for friend in [INSERTER, AWAY_FRIEND, OTHER] {
        net.connect(NODE, friend);
    }
    net.run_for(Duration::from_secs(10));
    loaded
}

/// A restarted node that loads the keys it sealed before the restart offers them at once
/// (no away time needed); without them it offers nothing (it cannot list its store).
#[test]
fn a_restarted_node_offers_the_keys_it_persisted() {
    for seed in seeds(SEEDS) {
        for load in [true, false] {
            let (mut net, blocks) = setup(seed, default_durability, 12);
            let sealed = net.node_mut(NODE).remembered_keys_sealed();
            let loaded = restart(&mut net, load.then_some(&sealed[..]));
            let stats = net.node(NODE).stats();
            if load {
                assert_eq!(loaded, Ok(blocks.len()), "seed {seed}");
                assert_eq!(stats.keys_loaded, blocks.len() as u64, "seed {seed}");
                assert_eq!(stats.returns, 1, "seed {seed}");
                assert_eq!(held_by_friend(&net, &blocks), blocks.len(), "seed {seed}: {stats:?}");
            } else {
                assert_eq!(stats.offers_sent, 0, "seed {seed}");
                assert_eq!(held_by_friend(&net, &blocks), 0, "seed {seed}");
            }
        }
    }
}

/// The sealed keys hold no routing key in the clear.
#[test]
fn the_persisted_keys_are_sealed() {
    let (mut net, blocks) = setup(1, default_durability, 12);
    let sealed = net.node_mut(NODE).remembered_keys_sealed();
    for (k, _) in &blocks {
        assert!(!sealed.windows(32).any(|w| w == k.as_bytes()), "a routing key in the clear");
        assert!(!sealed.windows(8).any(|w| w == &k.as_bytes()[..8]), "a key's first bytes in the clear");
    }
}

/// A damaged, cut or foreign keys file is refused whole with its error: nothing is loaded,
/// nothing offered, and the node runs on (it still serves its blocks).
#[test]
fn a_corrupt_keys_file_offers_nothing_and_the_node_runs_on() {
    for seed in seeds(SEEDS) {
        let files = |net: &mut Network| {
            let good = net.node_mut(NODE).remembered_keys_sealed();
            let mut flipped = good.clone();
            let last = flipped.len() - 1;
            flipped[last] ^= 1;
            let mut header = good.clone();
            header[0] ^= 1;
            let foreign = net.node_mut(OTHER).remembered_keys_sealed();
            vec![
                (flipped, KeysFileError::Sealed),
                (good[..good.len() - 5].to_vec(), KeysFileError::Format),
                (header, KeysFileError::Format),
                (Vec::new(), KeysFileError::Format),
                (foreign, KeysFileError::Sealed),
            ]
        };
        for case in 0..5 {
            let (mut net, blocks) = setup(seed, default_durability, 8);
            let (bytes, want) = files(&mut net).swap_remove(case);
            assert_eq!(restart(&mut net, Some(&bytes)), Err(want), "seed {seed}, case {case}");
            let stats = net.node(NODE).stats();
            assert_eq!((stats.keys_loaded, stats.returns, stats.offers_sent), (0, 0, 0), "seed {seed}, case {case}");
            assert_eq!(held_by_friend(&net, &blocks), 0, "seed {seed}, case {case}");
            let (k, b) = &blocks[0];
            net.fetch(INSERTER, b.kind(), *k);
            net.run();
            let found = net
                .events(INSERTER)
                .iter()
                .any(|e| matches!(e, pamphlet_node::node::Event::FetchSucceeded { block, .. } if block == b));
            assert!(found, "seed {seed}, case {case}: the node still serves its blocks");
        }
    }
}
