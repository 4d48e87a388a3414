//! Wider top blocks in the node (issue 20; `node/durability/`), on the `sim::network`
//! harness: a block inserted flagged `top` (the block a URI names, which FEC cannot
//! rebuild) is kept in the store area by every node on its path with fewer than
//! `top_sinks` closer peers, a plain block only by its sink; and a peer that flags every
//! block gets its flags honoured only within its budget.

// Tests drive the harness with the real clock as the base of virtual time.
#![allow(clippy::disallowed_methods)]

mod common;

use std::time::{Duration, Instant};

use common::routing::{chk_block, key_loc, SEEDS};
use common::seeds;
use pamphlet_crypto::{Block, RoutingKey};
use pamphlet_node::node::{DurabilityConfig, NodeConfig};
use pamphlet_node::sim::network::Network;
use pamphlet_node::store::memory::MemoryStore;
use pamphlet_node::store::Area;
use pamphlet_node::wire::Message;

/// The first `n` test blocks (from `start`) whose keys lie in `range` of the circle.
fn blocks_in(range: std::ops::Range<f64>, start: u32, n: usize) -> Vec<(RoutingKey, Block)> {
    (start..).map(chk_block).filter(|(k, _)| range.contains(&key_loc(k))).take(n).collect()
}

/// How many nodes hold `key` in their store area.
fn store_holders(net: &Network, key: &RoutingKey, block: &Block) -> usize {
    (0..net.len()).filter(|&i| net.node(i).store().area_of(block.kind(), key) == Some(Area::Store)).count()
}

/// A line of eight nodes towards the keys (0.1 … 0.8, keys in 0.85–0.95): every node on
/// the way has one peer closer to the key, the last none. Node 0 inserts.
fn line(seed: u64, top_sinks: u32) -> Network {
    let mut net = Network::new(seed, Instant::now());
    for i in 0..8 {
        let mut config = net.config(i, pamphlet_node::location::Location::from_f64(0.1 * (i + 1) as f64));
        config.durability = DurabilityConfig { top_sinks, ..config.durability };
        net.add_node_with(config, MemoryStore::default());
    }
    for i in 0..7 {
        net.connect(i, i + 1);
    }
    net.run();
    net
}

/// Inserts a top block and a plain block from node 0; returns their store holders.
fn top_and_plain(net: &mut Network, blocks: &[(RoutingKey, Block)]) -> (usize, usize) {
    let (top_key, top) = &blocks[0];
    let (plain_key, plain) = &blocks[1];
    let now = net.now();
    net.node_mut(0).start_insert_top(now, top.clone());
    net.flush(0);
    net.insert(0, plain.clone());
    net.run();
    (store_holders(net, top_key, top), store_holders(net, plain_key, plain))
}

#[test]
fn a_top_block_ends_in_more_stores_than_a_plain_block_on_the_same_path() {
    for seed in seeds(SEEDS) {
        let blocks = blocks_in(0.85..0.95, 0, 2);
        let mut net = line(seed, 4);
        let (top, plain) = top_and_plain(&mut net, &blocks);
        // The sink (node 7) keeps both; every relay (one closer peer each) keeps the top
        // block too, and the inserter keeps nothing.
        assert_eq!(plain, 1, "seed {seed}");
        assert_eq!(top, 7, "seed {seed}");
        assert!(net.node(3).stats().top_wide_stores >= 1, "seed {seed}");
        // Without the rule (top_sinks 1: only sinks) the flag changes nothing.
        let mut net = line(seed, 1);
        assert_eq!(top_and_plain(&mut net, &blocks), (1, 1), "seed {seed}");
    }
}

/// Node 0 (at 0.5) has a flooding friend (node 1) and three honest peers; it is a sink
/// for few keys. The friend inserts 400 blocks, every one flagged `top`. Node 0 keeps in
/// its store area only its sink blocks and at most its budget of flagged ones, and passes
/// the flag on only as often.
#[test]
fn a_peer_flagging_every_block_gets_only_its_budget() {
    let budget = DurabilityConfig::default().top_budget;
    for seed in seeds(SEEDS) {
        let writes = |flag: bool, defended: bool| {
            let mut net = Network::new(seed, Instant::now());
            for (i, x) in [0.5, 0.9, 0.45, 0.55, 0.6].into_iter().enumerate() {
                let mut config = net.config(i, pamphlet_node::location::Location::from_f64(x));
                if !defended {
                    config.durability.top_budget.burst = 1_000_000;
                }
                net.add_node_with(config, MemoryStore::default());
            }
            for peer in 1..5 {
                net.connect(0, peer);
            }
            net.run();
            let start = net.now();
            for batch in 0..10u32 {
                for i in 0..40u32 {
                    let (_, block) = chk_block(10_000 + batch * 40 + i);
                    let id = u64::from(batch * 40 + i);
                    net.inject(1, 0, Message::InsertRequest { id, htl: 18, block, top: flag });
                }
                net.run();
            }
            let flagged_on = net
                .transcript()
                .iter()
                .filter(|s| s.from == 0 && matches!(s.msg, Message::InsertRequest { top: true, .. }))
                .count();
            let elapsed = net.now().saturating_duration_since(start);
            (net.node(0).stats(), flagged_on, elapsed)
        };
        let (plain, _, _) = writes(false, true);
        let (flagged, flagged_on, elapsed) = writes(true, true);
        let (undefended, _, _) = writes(true, false);
        let refill = (elapsed.as_secs_f64() / budget.every.as_secs_f64()).ceil() as u64;
        let allowance = u64::from(budget.burst) + refill;
        assert!(flagged.top_flags_honoured <= allowance, "seed {seed}: {flagged:?}");
        assert!(flagged.top_flags_over_budget >= 400 - allowance, "seed {seed}: {flagged:?}");
        assert!(
            flagged.store_writes <= plain.store_writes + allowance,
            "seed {seed}: {} store writes flagged, {} plain, allowance {allowance}",
            flagged.store_writes,
            plain.store_writes
        );
        // The budget was used: the flag did widen some (it is not simply ignored).
        assert!(flagged.store_writes > plain.store_writes, "seed {seed}");
        // Without the budget the attack works: nearly every flagged block is written.
        assert!(undefended.store_writes > plain.store_writes + allowance, "seed {seed}: {}", undefended.store_writes);
        assert!(undefended.store_writes >= 300, "seed {seed}: {}", undefended.store_writes);
        // Forwarded flagged at most as often as honoured (each forwarded hop counts once).
        assert!(flagged_on as u64 <= flagged.top_flags_honoured * 18, "seed {seed}");
        assert!(elapsed < Duration::from_secs(3600), "seed {seed}: bounded run");
    }
}

/// A node keeps a top block from a peer's insert like any other, answers it, and a
/// `NodeConfig` default keeps the rule on.
#[test]
fn the_rule_is_on_by_default() {
    let d = NodeConfig::default().durability;
    assert_eq!(d.top_sinks, 4);
    assert!(d.offers_per_tick > 0);
}
