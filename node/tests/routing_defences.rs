//! Deterministic routing tests of the defences against lying peers (forgers, black holes
//! on an insert path) and of load backoff, on the `sim::network::Network` harness (feature
//! `sim`). Same conventions as `routing.rs`: a few seeds, `PAMPHLET_SEED=n` replays one.

// Tests drive the harness with the real clock as the base of virtual time.
#![allow(clippy::disallowed_methods)]

mod common;

use std::time::{Duration, Instant};

use common::routing::{chk_block, is_insert, is_request, key_loc, SEEDS};
use common::seeds;
use pamphlet_crypto::{Block, BlockKind, RoutingKey};
use pamphlet_node::location::Location;
use pamphlet_node::sim::network::{black_hole, Network};
use pamphlet_node::store::{Area, BlockStore};
use pamphlet_node::wire::Message;
use pamphlet_node::Event;

/// Node 1 (closest to the key) forges its answer; node 0 rejects it, penalises 1, finds the
/// block through 2 - 3, and caches only the genuine block.
#[test]
fn a_forged_block_is_rejected_and_the_fetch_succeeds_elsewhere() {
    for seed in seeds(SEEDS) {
        let (key, block) = chk_block(700);
        let kl = key_loc(&key);
        let mut net = Network::new(seed, Instant::now());
        for off in [0.2, 0.01, 0.15, 0.1, 0.4] {
            net.add_node(kl + off);
        }
        for (a, b) in [(4, 0), (0, 1), (0, 2), (2, 3)] {
            net.connect(a, b);
        }
        net.node_mut(1).store_mut().put(Area::Store, key, block.clone()).unwrap();
        net.node_mut(3).store_mut().put(Area::Store, key, block.clone()).unwrap();
        // Below max HTL, so node 0 caches what it returns (see
        // `second_fetch_is_shorter_thanks_to_return_path_caching` in routing.rs).
        net.node_mut(4).set_max_htl(10);
        net.set_filter(
            1,
            Box::new(|_, msg| match msg {
                Message::DataFound { id, block } => {
                    let mut bytes = block.as_bytes().to_vec();
                    bytes[100] ^= 1;
                    Some(Message::DataFound { id, block: Block::from_bytes(block.kind(), bytes).unwrap() })
                }
                m => Some(m),
            }),
        );
        net.run();
        net.clear_transcript();
        let op = net.fetch(4, BlockKind::Chk, key);
        net.run();
        assert_eq!(net.hops(is_request), vec![(4, 0), (0, 1), (0, 2), (2, 3)], "seed {seed}");
        assert_eq!(net.events(4), &[Event::FetchSucceeded { op, block: block.clone(), peers_tried: 1, local: false }]);
        assert_eq!(net.node(0).stats().forged_blocks, 1, "seed {seed}");
        assert_eq!(net.node(0).peer(pamphlet_node::id::PeerId(1)).map(|p| p.forgeries), Some(1), "seed {seed}");
        assert_eq!(net.node(0).store().peek(BlockKind::Chk, &key), Some(&block), "seed {seed}: genuine cached");
        assert_eq!(net.node(0).store().stats().cache_blocks, 1, "seed {seed}");
    }
}

/// Node 2, the best next hop of node 1 for the key, is a black hole. Its "not found" to the
/// insert is a lie no honest node tells, so node 1 backs it off and goes on through 3 to the
/// sink 4, which stores the block. Believing it (the old rule) ended the insert at node 1,
/// which reported success upstream: nothing reached the sink.
#[test]
fn a_black_hole_on_the_insert_path_does_not_end_the_insert() {
    for seed in seeds(SEEDS) {
        for refuse in [true, false] {
            let (key, block) = chk_block(800);
            let kl = key_loc(&key);
            let mut net = Network::new(seed, Instant::now());
            for (i, off) in [0.4, 0.2, 0.005, 0.1, 0.01].into_iter().enumerate() {
                let mut c = net.config(i, Location::from_f64(kl + off));
                c.refuse_false_insert_not_found = refuse;
                if !refuse {
                    // The old rule in full: an insert believed every "not found" (relayed
                    // inserts had no cap; now every request has one, which alone would
                    // also save this insert).
                    c.not_found_cap = u8::MAX;
                }
                net.add_node_with(c, pamphlet_node::store::MemoryStore::default());
            }
            for (a, b) in [(0, 1), (1, 2), (1, 3), (3, 4)] {
                net.connect(a, b);
            }
            net.set_filter(2, Box::new(black_hole));
            net.run();
            assert!(net.node(4).is_sink(&key), "seed {seed}");
            net.clear_transcript();
            let op = net.insert(0, block.clone());
            net.run();
            let at_sink = net.node(4).store().area_of(BlockKind::Chk, &key);
            let lies = net.node(1).peer(pamphlet_node::id::PeerId(2)).map(|p| p.false_answers);
            if refuse {
                assert_eq!(net.hops(is_insert), vec![(0, 1), (1, 2), (1, 3), (3, 4)], "seed {seed}");
                assert_eq!(at_sink, Some(Area::Store), "seed {seed}: the sink got the block");
                assert_eq!(net.node(1).stats().false_not_found, 1, "seed {seed}");
                assert_eq!(lies, Some(1), "seed {seed}");
                let backed_off =
                    net.node(1).peer(pamphlet_node::id::PeerId(2)).is_some_and(|p| p.backed_off(net.now()));
                assert!(backed_off, "seed {seed}: the liar is backed off");
                assert_eq!(
                    net.events(0),
                    &[Event::InsertSucceeded { op, key, peers_tried: 1, htl_exhausted: false }],
                    "seed {seed}"
                );
            } else {
                assert_eq!(net.hops(is_insert), vec![(0, 1), (1, 2)], "seed {seed}");
                assert_eq!(at_sink, None, "seed {seed}: believed, the lie ends the insert");
                assert_eq!(lies, Some(0), "seed {seed}");
                assert_eq!(
                    net.events(0),
                    &[Event::InsertSucceeded { op, key, peers_tried: 1, htl_exhausted: true }],
                    "seed {seed}: and the inserter is told it ran its course"
                );
            }
        }
    }
}

/// Three keys whose locations lie within `span` of each other.
fn close_keys(span: f64) -> Vec<(RoutingKey, Block)> {
    let mut blocks: Vec<_> = (1000..1080).map(chk_block).collect();
    blocks.sort_by_key(|(k, _)| Location::of_key(k));
    let i = (0..blocks.len() - 2)
        .find(|i| Location::of_key(&blocks[*i].0).distance_f64(Location::of_key(&blocks[i + 2].0)) < span)
        .expect("no close keys");
    blocks[i..i + 3].to_vec()
}

/// Node 1 (closest) is overloaded: it rejects, node 0 backs it off and the next fetch goes
/// to node 2 first; after the backoff node 1 is tried first again.
#[test]
fn overload_backoff_steers_traffic_away() {
    let keys = close_keys(0.01);
    for seed in seeds(SEEDS) {
        let kl = key_loc(&keys[0].0);
        let mut net = Network::new(seed, Instant::now());
        net.add_node(kl + 0.3);
        let mut cfg = net.config(1, Location::from_f64(kl + 0.02));
        cfg.max_requests_per_peer = 0;
        net.add_node_with(cfg, Default::default());
        net.add_node(kl + 0.2);
        net.connect(0, 1);
        net.connect(0, 2);
        for (k, b) in &keys {
            net.node_mut(2).store_mut().put(Area::Store, *k, b.clone()).unwrap();
        }
        net.run();
        net.clear_transcript();
        net.fetch(0, BlockKind::Chk, keys[0].0);
        net.run();
        assert_eq!(net.hops(is_request), vec![(0, 1), (0, 2)], "seed {seed}");
        assert_eq!(net.hops(|m| matches!(m, Message::RejectedOverload { .. })), vec![(1, 0)]);
        net.clear_transcript();
        net.fetch(0, BlockKind::Chk, keys[1].0);
        net.run();
        assert_eq!(net.hops(is_request), vec![(0, 2)], "seed {seed}: backed-off peer avoided");
        net.run_for(Duration::from_millis(1500));
        net.clear_transcript();
        net.fetch(0, BlockKind::Chk, keys[2].0);
        net.run();
        assert_eq!(net.hops(is_request), vec![(0, 1), (0, 2)], "seed {seed}: tried again after the backoff");
        let p = net.node(0).peer(pamphlet_node::id::PeerId(1)).unwrap();
        assert_eq!(p.backoff_next, Duration::from_secs(4), "seed {seed}: backoff doubles");
        assert_eq!(net.events(0).len(), 3);
        assert!(net.events(0).iter().all(|e| matches!(e, Event::FetchSucceeded { .. })), "seed {seed}");
    }
}
