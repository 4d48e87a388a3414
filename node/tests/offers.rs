//! Offers on swap in the node (issue 20; `node/durability/offers.rs`), on the
//! `sim::network` harness: a node whose location changed hands its stored blocks to the
//! peer now closest to their keys, paced by its budget.

// Tests drive the harness with the real clock as the base of virtual time.
#![allow(clippy::disallowed_methods)]

mod common;

use std::time::Duration;

use common::routing::SEEDS;
use common::seeds;
use pamphlet_crypto::{Block, RoutingKey};
use pamphlet_node::sim::network::Network;
use pamphlet_node::store::{Area, BlockStore};

/// The offers' line of three (node 2 caches nothing): `common::offers::line_of_three`.
fn setup(seed: u64, offers_per_tick: u32, n: usize) -> (Network, Vec<(RoutingKey, Block)>) {
    common::offers::line_of_three(seed, offers_per_tick, n, &[0, 1])
}

/// Node 0 moves to 0.1 (as a swap would move it): node 1 (0.2) is now the closest to the
/// blocks' keys and a sink for them. With offers it ends holding every block in its store
/// area, node 0 keeps its copies; without, node 1 has none.
#[test]
fn after_a_swap_the_peer_now_closest_holds_the_blocks() {
    for seed in seeds(SEEDS) {
        for offers in [8, 0] {
            let (mut net, blocks) = setup(seed, offers, 12);
            common::offers::move_node_0(&mut net, 0.1);
            net.run_for(Duration::from_secs(10));
            let held =
                blocks.iter().filter(|(k, b)| net.node(1).store().area_of(b.kind(), k) == Some(Area::Store)).count();
            let kept = blocks.iter().filter(|(k, b)| net.node(0).store().area_of(b.kind(), k).is_some()).count();
            assert_eq!(kept, blocks.len(), "seed {seed}: the offering node keeps its copies");
            if offers > 0 {
                assert_eq!(held, blocks.len(), "seed {seed}: {:?}", net.node(0).stats());
                assert_eq!(net.node(0).stats().offers_sent, blocks.len() as u64, "seed {seed}");
                assert_eq!(net.node(0).stats().unexpected_replies, 0, "seed {seed}: answers to offers are expected");
            } else {
                assert_eq!(held, 0, "seed {seed}: without offers node 1 has nothing");
            }
        }
    }
}

/// The cost is the budget: the key list one tick after the move, then `offers_per_tick`
/// blocks per `offer_tick`.
#[test]
fn offers_go_out_at_the_budgets_pace() {
    for seed in seeds(SEEDS) {
        let (mut net, blocks) = setup(seed, 4, 20);
        common::offers::move_node_0(&mut net, 0.1);
        assert_eq!(net.node(0).offers_waiting(), blocks.len(), "seed {seed}");
        let tick = net.node(0).config().durability.offer_tick;
        net.run_for(tick / 2);
        assert_eq!(net.node(0).stats().offers_sent, 0, "seed {seed}: none before the first tick");
        net.run_for(tick);
        let stats = net.node(0).stats();
        assert_eq!((stats.offer_lists_sent, stats.offers_sent), (1, 0), "seed {seed}: the keys first");
        for ticks in 1..=5u64 {
            net.run_for(tick);
            let sent = net.node(0).stats().offers_sent;
            assert_eq!(sent, (4 * ticks).min(blocks.len() as u64), "seed {seed}: after {ticks} ticks");
        }
        assert_eq!(net.node(0).offers_waiting(), 0, "seed {seed}");
    }
}

/// Blocks whose sink the node still is are not offered: a move that leaves it closest to
/// them queues nothing.
#[test]
fn a_move_that_keeps_the_node_closest_offers_nothing() {
    for seed in seeds(SEEDS) {
        let (mut net, _) = setup(seed, 8, 6);
        common::offers::move_node_0(&mut net, 0.46);
        net.run_for(Duration::from_secs(5));
        assert_eq!(net.node(0).stats().offers_sent, 0, "seed {seed}");
    }
}

/// A node that moves again, with the same peer still closest to its blocks, does not offer
/// them to it a second time.
#[test]
fn a_second_move_does_not_offer_the_same_blocks_to_the_same_peer() {
    for seed in seeds(SEEDS) {
        let (mut net, blocks) = setup(seed, 8, 10);
        for to in [0.1, 0.05] {
            common::offers::move_node_0(&mut net, to);
            net.run_for(Duration::from_secs(10));
        }
        assert_eq!(net.node(0).stats().offers_sent, blocks.len() as u64, "seed {seed}: each block once");
    }
}

/// Keys whose blocks left the store (evicted, or removed) since they were remembered cost a
/// store index lookup each and are not offered: one round looks up at most 256 of them (so
/// a queue of thousands cannot hold the node's thread in one tick), and each is forgotten,
/// so a later move does not look for it again.
#[test]
fn blocks_gone_from_the_store_cost_bounded_lookups_and_are_forgotten() {
    for seed in seeds(SEEDS) {
        let (mut net, blocks) = setup(seed, 4, 300);
        for (k, b) in &blocks {
            assert!(net.node_mut(0).store_mut().remove(b.kind(), k), "seed {seed}");
        }
        common::offers::move_node_0(&mut net, 0.1);
        assert_eq!(net.node(0).offers_waiting(), 300, "seed {seed}: all remembered keys queued");
        let tick = net.node(0).config().durability.offer_tick;
        net.run_for(tick + tick / 2);
        assert_eq!(net.node(0).offers_waiting(), 44, "seed {seed}: one round looked up 256 keys, no more");
        net.run_for(tick);
        assert_eq!(net.node(0).offers_waiting(), 0, "seed {seed}");
        let stats = net.node(0).stats();
        assert_eq!((stats.offer_lists_sent, stats.offers_sent), (0, 0), "seed {seed}: nothing to offer");
        common::offers::move_node_0(&mut net, 0.15);
        assert_eq!(net.node(0).offers_waiting(), 0, "seed {seed}: the missing keys were forgotten");
    }
}

/// Offers yield to fetches (`OFFERS_YIELD`): while node 0 answers a fetch from node 1 every
/// 200 ms, its offers go out at one block a second instead of their pace (4 a tick); once
/// the fetches stop, the pace comes back. Without the rule the offers keep their pace
/// throughout and take the links and the friend's store from the fetches.
#[test]
fn offers_yield_to_fetches_and_come_back_after() {
    use pamphlet_node::node::OFFERS_YIELD;
    for seed in seeds(SEEDS) {
        let (mut net, blocks) = setup(seed, 4, 40);
        common::offers::move_node_0(&mut net, 0.1);
        let tick = net.node(0).config().durability.offer_tick;
        // The key list goes out and is answered before the fetches start.
        net.run_for(tick + tick / 2);
        assert_eq!(net.node(0).stats().offers_sent, 0, "seed {seed}: the keys first");
        let busy = Duration::from_secs(5);
        let start = net.elapsed();
        let mut i = 0;
        while net.elapsed() < start + busy {
            let (k, b) = &blocks[i % blocks.len()];
            net.fetch(1, b.kind(), *k);
            net.run_for(Duration::from_millis(200));
            i += 1;
        }
        let during = net.node(0).stats().offers_sent;
        let most = busy.as_secs() / OFFERS_YIELD.as_secs() + 1;
        assert!(during >= 1, "seed {seed}: offers still move under constant fetches");
        assert!(during <= most, "seed {seed}: {during} offered blocks in {busy:?} of fetches (pace: 4 per {tick:?})");
        net.run_for(OFFERS_YIELD + 3 * tick);
        let after = net.node(0).stats().offers_sent - during;
        assert!(after >= 8, "seed {seed}: the pace comes back once the fetches stop ({after} in 3 ticks)");
    }
}
