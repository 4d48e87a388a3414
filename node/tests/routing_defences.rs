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
use pamphlet_node::sim::network::{black_hole, silent, Network};
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
                    &[Event::InsertSucceeded { op, key, peers_tried: 1, htl_exhausted: false, displaced: false }],
                    "seed {seed}"
                );
            } else {
                assert_eq!(net.hops(is_insert), vec![(0, 1), (1, 2)], "seed {seed}");
                assert_eq!(at_sink, None, "seed {seed}: believed, the lie ends the insert");
                assert_eq!(lies, Some(0), "seed {seed}");
                assert_eq!(
                    net.events(0),
                    &[Event::InsertSucceeded { op, key, peers_tried: 1, htl_exhausted: true, displaced: false }],
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

/// A victim (node 0) with 13 friends at random locations, each with a few friends of its
/// own, all advertised; returns the network once the adverts have settled.
fn victim_with_friends(seed: u64, check_claims: bool) -> Network {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut net = Network::new(seed, Instant::now());
    for i in 0..40 {
        let mut c = net.config(i, Location(rng.gen()));
        c.check_claims = check_claims;
        net.add_node_with(c, pamphlet_node::store::MemoryStore::default());
    }
    for f in 1..=13 {
        net.connect(0, f);
    }
    for a in 1..40 {
        for _ in 0..3 {
            let b = rng.gen_range(1..40);
            if b != a {
                net.connect(a, b);
            }
        }
    }
    net.run();
    net
}

/// How often peer `who` is the victim's first choice (smallest effective distance) over
/// 10,000 evenly spread keys.
fn first_choice_share(net: &Network, who: u64) -> f64 {
    let node = net.node(0);
    let mut wins = 0;
    for i in 0..10_000u64 {
        let key = Location(i.wrapping_mul(u64::MAX / 10_000));
        let best = node
            .peer_ids()
            .into_iter()
            .filter_map(|p| node.peer(p).map(|e| (e.effective_distance(key), e.location.distance(key), p)))
            .min()
            .map(|(_, _, p)| p);
        wins += u64::from(best == Some(pamphlet_node::id::PeerId(who)));
    }
    wins as f64 / 10_000.0
}

/// The FOAF liar (issue 14, item 7): friend 1 advertises 64 evenly spaced neighbours and is
/// the victim's first hop for most keys. Its advert fails the plausibility test (far too
/// evenly spread) and is ignored: it is first for no more than its honest share (about
/// 1/13) again.
#[test]
fn a_foaf_liar_is_not_ranked_first_for_most_keys() {
    for seed in seeds(SEEDS) {
        for check in [true, false] {
            let mut net = victim_with_friends(seed, check);
            let honest = first_choice_share(&net, 1);
            let liar = net.node(1).location();
            let spread: Vec<Location> = (0..64u64).map(|i| Location(i.wrapping_mul(u64::MAX / 64))).collect();
            net.inject(1, 0, Message::LocationUpdate { location: liar, neighbours: spread });
            net.run();
            let share = first_choice_share(&net, 1);
            if check {
                // Its whole advert is ignored, so it ranks by its own location alone.
                assert!(share <= honest && share < 0.2, "seed {seed}: {share} (honest {honest})");
                assert_eq!(net.node(0).stats().foaf_implausible, 1, "seed {seed}");
            } else {
                assert!(share > 0.4, "seed {seed}: believed, the liar is first for {share}");
            }
        }
    }
}

/// Honest adverts pass: in a network of random locations no honest neighbour list is
/// judged implausible.
#[test]
fn honest_neighbour_lists_are_plausible() {
    for seed in seeds(SEEDS) {
        let net = victim_with_friends(seed, true);
        for i in 0..net.len() {
            assert_eq!(net.node(i).stats().foaf_implausible, 0, "seed {seed} node {i}");
        }
    }
}

/// The location liar: friend 1 claims the victim's own location, which made the victim a
/// sink for no key at all (a stored insert then lands nowhere near where fetches go).
#[test]
fn a_location_liar_does_not_deny_sinkhood() {
    for seed in seeds(SEEDS) {
        for check in [true, false] {
            let mut net = victim_with_friends(seed, check);
            let own = net.node(0).location();
            // 10,000 keys around the victim's location, as the real `Node::is_sink` sees them.
            let sinks = |net: &Network| {
                (0..10_000u64)
                    .filter(|i| {
                        let k = own.0.wrapping_add(i.wrapping_mul(1 << 44)).wrapping_sub(5_000 << 44);
                        let mut bytes = [0u8; 32];
                        bytes[..8].copy_from_slice(&k.to_be_bytes());
                        net.node(0).is_sink(&RoutingKey(bytes))
                    })
                    .count()
            };
            let before = sinks(&net);
            assert!(before > 0, "seed {seed}");
            net.inject(1, 0, Message::LocationUpdate { location: own, neighbours: vec![] });
            net.run();
            let after = sinks(&net);
            if check {
                assert!(after >= before, "seed {seed}: {after} < {before}");
            } else {
                assert_eq!(after, 0, "seed {seed}: believed, the victim sinks nothing");
            }
        }
    }
}

/// The update flood: 1,000 location updates from one friend made the victim send one
/// `LocationUpdate` to each of its 13 peers per update (13,000 out). Coalesced, the
/// victim re-broadcasts at most once per second, and the liar's location moves at most
/// once per second too.
#[test]
fn a_location_update_flood_is_not_amplified() {
    for seed in seeds(SEEDS) {
        for check in [true, false] {
            let mut net = victim_with_friends(seed, check);
            net.clear_transcript();
            for i in 0..1000u64 {
                let l = Location(i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                net.inject(1, 0, Message::LocationUpdate { location: l, neighbours: vec![] });
            }
            net.run();
            let out = net
                .transcript()
                .iter()
                .filter(|s| s.from == 0 && matches!(s.msg, Message::LocationUpdate { .. }))
                .count();
            if check {
                assert!(out <= 3 * 13, "seed {seed}: {out} updates out");
                let last = Location(999u64.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                let liar = net.node(0).peer(pamphlet_node::id::PeerId(1)).map(|e| e.location);
                assert_eq!(liar, Some(last), "seed {seed}: the last claim wins in the end");
            } else {
                assert!(out >= 1000 * 13, "seed {seed}: {out} updates out");
            }
        }
    }
}

/// A victim (node 0) whose only friend (node 1, the flusher) sits opposite it on the
/// circle, so the victim is a sink for about half of all keys. `defended` sets the HTL-0
/// refusal and the store budget (otherwise both are off).
fn flusher_pair(seed: u64, defended: bool, store_bytes: u64) -> Network {
    let mut net = Network::new(seed, Instant::now());
    let mut c = net.config(0, Location::from_f64(0.0));
    if !defended {
        c.refuse_zero_htl_inserts = false;
        c.store_budget = None;
    }
    net.add_node_with(c, pamphlet_node::store::MemoryStore::new(store_bytes, 1 << 30));
    net.add_node(0.5);
    net.connect(0, 1);
    net.run();
    net
}

/// The first `n` test blocks whose keys the victim is a sink for.
fn sink_blocks(net: &Network, from: u32, n: usize) -> Vec<(RoutingKey, Block)> {
    (from..).map(chk_block).filter(|(k, _)| net.node(0).is_sink(k)).take(n).collect()
}

/// An insert with HTL 0 is never forwarded; honest nodes never send one. It was written to
/// the store area; now it is refused, counted and its sender penalised like a forger.
#[test]
fn an_htl_zero_insert_is_refused() {
    for seed in seeds(SEEDS) {
        for defended in [true, false] {
            let mut net = flusher_pair(seed, defended, 64 << 20);
            let (key, block) = sink_blocks(&net, 0, 1).remove(0);
            net.clear_transcript();
            net.inject(1, 0, Message::InsertRequest { id: 1, htl: 0, block, top: false });
            net.run();
            let area = net.node(0).store().area_of(BlockKind::Chk, &key);
            let liar = net.node(0).peer(pamphlet_node::id::PeerId(1)).map(|p| p.forgeries);
            if defended {
                assert_eq!(area, None, "seed {seed}");
                assert_eq!(net.node(0).stats().zero_htl_inserts, 1, "seed {seed}");
                assert_eq!(liar, Some(1), "seed {seed}");
                assert!(net.transcript().iter().all(|s| s.from != 0), "seed {seed}: no answer");
            } else {
                assert_eq!(area, Some(Area::Store), "seed {seed}: stored");
            }
        }
    }
}

/// The flusher: a store area of 512 blocks full of sink data, one of them just requested;
/// then the only friend sends 2,000 junk inserts the victim is a sink for. Unlimited, the
/// junk fills the store area and pushes the requested block out; with the store budget
/// only 128 junk blocks (a quarter of the area) reach the store area (the rest go to the
/// cache), and the requested block, the most recently used, stays.
#[test]
fn a_flusher_does_not_evict_requested_sink_data() {
    let block_len = 32 * 1024 + 64;
    for seed in seeds(SEEDS) {
        for defended in [true, false] {
            let mut net = flusher_pair(seed, defended, 512 * block_len);
            let held = sink_blocks(&net, 0, 512);
            for (k, b) in &held {
                net.node_mut(0).store_mut().put(Area::Store, *k, b.clone()).unwrap();
            }
            let (wanted, _) = held[0];
            assert!(net.node_mut(0).store_mut().get(BlockKind::Chk, &wanted).is_some());
            for (i, (_, b)) in sink_blocks(&net, 100_000, 2_000).into_iter().enumerate() {
                net.inject(1, 0, Message::InsertRequest { id: i as u64, htl: 18, block: b, top: false });
            }
            net.run();
            let area = net.node(0).store().area_of(BlockKind::Chk, &wanted);
            let writes = net.node(0).stats().store_writes;
            if defended {
                assert_eq!(area, Some(Area::Store), "seed {seed}: the requested block stays");
                // A quarter of the 512-block area at once (`StoreBudget::for_area`).
                assert_eq!(writes, 128, "seed {seed}");
                assert_eq!(net.node(0).stats().store_budget_exceeded, 2_000 - 128, "seed {seed}");
            } else {
                assert_eq!(area, None, "seed {seed}: flushed");
                assert_eq!(writes, 2_000, "seed {seed}");
            }
        }
    }
}

/// Node 1, the first-ranked peer of node 0 for the key, answers `Accepted` and then stays
/// silent (issue 14, item 4). With the hop share (default) node 0 waits at most half of its
/// budget on it, backs it off like a forger and finds the block through 2 - 3 well within
/// its deadline. Without it (the old rule, `hop_share` 1) the first hop took the whole
/// budget: the fetch timed out after one peer.
#[test]
fn accepted_then_silence_leaves_time_for_another_route() {
    for seed in seeds(SEEDS) {
        for defended in [true, false] {
            let (key, block) = chk_block(900);
            let kl = key_loc(&key);
            let mut net = Network::new(seed, Instant::now());
            for (i, off) in [0.3, 0.01, 0.15, 0.1].into_iter().enumerate() {
                let mut c = net.config(i, Location::from_f64(kl + off));
                if !defended {
                    c.hop_share = 1;
                    c.penalise_silence = false;
                }
                net.add_node_with(c, pamphlet_node::store::MemoryStore::default());
            }
            for (a, b) in [(0, 1), (0, 2), (2, 3)] {
                net.connect(a, b);
            }
            net.node_mut(3).store_mut().put(Area::Store, key, block.clone()).unwrap();
            net.set_filter(1, Box::new(silent));
            net.run();
            net.clear_transcript();
            let start = net.elapsed();
            let op = net.fetch(0, BlockKind::Chk, key);
            net.run();
            let silent_peer = net.node(0).peer(pamphlet_node::id::PeerId(1)).cloned();
            if defended {
                assert_eq!(net.hops(is_request), vec![(0, 1), (0, 2), (2, 3)], "seed {seed}");
                assert_eq!(
                    net.events(0),
                    &[Event::FetchSucceeded { op, block: block.clone(), peers_tried: 2, local: false }],
                    "seed {seed}"
                );
                let took = net.transcript().last().map(|s| s.at).unwrap_or_default() - start;
                let deadline = net.node(0).config().request_timeout * 7 / 8;
                assert!(took <= deadline / 2 + Duration::from_secs(1), "seed {seed}: took {took:?}");
                let p = silent_peer.unwrap();
                assert_eq!(p.silences, 1, "seed {seed}");
                assert!(p.backed_off(net.now() + Duration::from_secs(500)), "seed {seed}: backed off like a forger");
            } else {
                assert_eq!(net.hops(is_request), vec![(0, 1)], "seed {seed}: one peer tried");
                assert!(
                    matches!(net.events(0), [Event::FetchFailed { op: o, peers_tried: 1, .. }] if *o == op),
                    "seed {seed}: {:?}",
                    net.events(0)
                );
            }
        }
    }
}

/// Node 1 is a reconnector (issue 14, item 6): it accepts node 0's fetch and goes silent,
/// then reconnects, and fills node 0's request slots (node 2 is silent too, so they stay in
/// flight), reconnects, and tries to fill them again. Its record is kept by peer id: after
/// each reconnect it is still backed off as silent, and its requests of the old link still
/// count, so the cap of 24 holds. Before, a reconnect reset all of it: 48 in flight.
#[test]
fn a_reconnect_keeps_the_peers_record_and_the_cap_holds() {
    for seed in seeds(SEEDS) {
        let (key, _) = chk_block(950);
        let kl = key_loc(&key);
        let mut net = Network::new(seed, Instant::now());
        for off in [0.3, 0.01, 0.2] {
            net.add_node(kl + off);
        }
        net.connect(0, 1);
        net.connect(0, 2);
        net.set_filter(1, Box::new(silent));
        net.set_filter(2, Box::new(silent));
        net.run();
        net.fetch(0, BlockKind::Chk, key);
        net.run_for(Duration::from_secs(120));
        let p1 = pamphlet_node::id::PeerId(1);
        assert_eq!(net.node(0).peer(p1).map(|p| p.silences), Some(1), "seed {seed}");
        net.disconnect(0, 1);
        net.connect(0, 1);
        let now = net.now();
        let rec = net.node(0).peer(p1).cloned().unwrap();
        assert_eq!(rec.silences, 1, "seed {seed}: the penalty survives the reconnect");
        assert!(rec.backed_off(now + Duration::from_secs(500)), "seed {seed}: and so does the backoff");
        let cap = net.node(0).config().max_requests_per_peer;
        let mut id = 1000;
        for round in 0..2 {
            for i in 0..cap {
                let (k, _) = chk_block(2000 + round * 100 + i);
                id += 1;
                net.inject(1, 0, Message::DataRequest { id, kind: BlockKind::Chk, key: k, htl: 18 });
            }
            net.run_for(Duration::from_secs(1));
            net.disconnect(0, 1);
            net.connect(0, 1);
        }
        let in_flight = net.node(0).peer(p1).map(|p| p.in_flight);
        assert_eq!(in_flight, Some(cap), "seed {seed}: orphans of the old link still count");
        assert_eq!(net.node(0).in_flight(), cap as usize, "seed {seed}: no more than the cap runs");
        assert_eq!(net.node(0).stats().rejected_overload, u64::from(cap), "seed {seed}");
    }
}

/// An honest relay whose own next hop went silent answers after its upstream's share of
/// the wait ran out: it was slow, not silent. Node 0 penalises relay 1 as silent when its
/// wait ends, and the late answer turns that into an ordinary timeout's backoff (before,
/// every honest relay behind a silent node stayed counted and backed off like a forger).
#[test]
fn a_late_answer_excuses_a_silence_penalty() {
    for seed in seeds(SEEDS) {
        let (key, _) = chk_block(950);
        let kl = key_loc(&key);
        let mut net = Network::new(seed, Instant::now());
        net.line(&[kl + 0.3, kl + 0.2, kl + 0.01]);
        net.set_filter(2, Box::new(silent));
        net.run();
        let op = net.fetch(0, BlockKind::Chk, key);
        net.run();
        assert!(matches!(net.events(0), [Event::FetchFailed { op: o, .. }] if *o == op), "seed {seed}");
        let relay = net.node(0).peer(pamphlet_node::id::PeerId(1)).unwrap();
        assert_eq!(net.node(0).stats().late_answers, 1, "seed {seed}: relay 1 answered after the wait");
        assert_eq!(relay.silences, 0, "seed {seed}: and is not counted as silent");
        assert_eq!(net.node(1).peer(pamphlet_node::id::PeerId(2)).unwrap().silences, 1, "seed {seed}");
    }
}

/// Issue 14, item 9: a neighbour (0) keeps a request for a key in flight at its friend (1),
/// whose next hop (2) accepts and stays silent. Node 1's own insert of that key used to fail
/// at once with "busy, retry later" (`KeyBusy`), so a neighbour could deny its friend the
/// insert of any key it chose. Now the insert waits for the neighbour's request to end and
/// then goes out: the block reaches the sink (3).
#[test]
fn a_neighbours_request_in_flight_does_not_block_the_nodes_own_insert() {
    for seed in seeds(SEEDS) {
        let (key, block) = chk_block(900);
        let kl = key_loc(&key);
        let mut net = Network::new(seed, Instant::now());
        for off in [0.3, 0.2, 0.01, 0.02] {
            net.add_node(kl + off);
        }
        net.connect_many(&[(0, 1), (1, 2), (1, 3)]);
        net.set_filter(2, Box::new(silent));
        net.run();
        let _held = net.fetch(0, BlockKind::Chk, key);
        // Let the neighbour's request reach node 1 and go on to the silent node 2.
        net.run_for(Duration::from_millis(50));
        assert!(net.hops(is_request).contains(&(1, 2)), "seed {seed}: node 1 routes it to 2");
        net.clear_transcript();
        let op = net.insert(1, block.clone());
        assert!(
            !net.events(1).iter().any(|e| matches!(e, Event::InsertFailed { op: o, .. } if *o == op)),
            "seed {seed}: the insert must not fail while the key is held: {:?}",
            net.events(1)
        );
        net.run();
        assert!(net.hops(is_insert).contains(&(1, 3)), "seed {seed}: {:?}", net.hops(is_insert));
        assert_eq!(net.node(3).store().peek(BlockKind::Chk, &key), Some(&block), "seed {seed}: at the sink");
        assert!(
            net.events(1).iter().any(|e| matches!(e, Event::InsertSucceeded { op: o, .. } if *o == op)),
            "seed {seed}: {:?}",
            net.events(1)
        );
        assert_eq!(net.node(1).stats().deferred_local, 1, "seed {seed}");
    }
}

/// Issue 14, item 9: a neighbour (0) asks its friend (1) for a key nobody has; the request
/// runs its hops out and node 1 quenches the key. The quench used to fail node 1's own
/// fetches at once for half a minute ("recently failed"), so a neighbour whose colluders
/// made one request fail could deny its friend the key, again and again. Now a quench only
/// neighbours caused makes node 1's own fetch wait for its end and then go out; the
/// neighbour's repeat is still answered at once.
#[test]
fn a_neighbours_failed_request_does_not_quench_the_nodes_own_fetch() {
    for seed in seeds(SEEDS) {
        let (key, _) = chk_block(901);
        let kl = key_loc(&key);
        let mut net = Network::new(seed, Instant::now());
        // Node 1 has eight friends (2..=9) that answer "not found, no hops left" at once:
        // each costs the request the not-found cap (4 hops), so the neighbour's max-HTL
        // request runs its hops out at node 1, which quenches the key at max HTL (and that
        // bound node 1's own fetches too, before).
        for off in [0.3, 0.2, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08] {
            net.add_node(kl + off);
        }
        net.connect_many(&[(0, 1), (1, 2), (1, 3), (1, 4), (1, 5), (1, 6), (1, 7), (1, 8), (1, 9)]);
        for leaf in 2..=9 {
            net.set_filter(leaf, Box::new(black_hole));
        }
        net.run();
        let first = net.fetch(0, BlockKind::Chk, key);
        net.run();
        assert!(
            net.events(0).iter().any(|e| matches!(e, Event::FetchFailed { op, .. } if *op == first)),
            "seed {seed}"
        );
        assert!(net.node(1).stats().quenched == 0, "seed {seed}: nothing quenched yet");
        net.clear_transcript();
        let again = net.fetch(0, BlockKind::Chk, key);
        net.run();
        assert!(!net.hops(is_request).contains(&(1, 2)), "seed {seed}: the neighbour's repeat is quenched at 1");
        assert!(net.events(0).iter().any(|e| matches!(e, Event::FetchFailed { op, .. } if *op == again)));
        net.clear_transcript();
        let own = net.fetch(1, BlockKind::Chk, key);
        net.run();
        assert!(
            !net.events(1)
                .iter()
                .any(|e| matches!(e, Event::FetchFailed { op, reason: pamphlet_node::FailReason::RecentlyFailed, .. } if *op == own)),
            "seed {seed}: node 1's own fetch must not be quenched by its neighbour's: {:?}",
            net.events(1)
        );
        assert!(net.hops(is_request).contains(&(1, 2)), "seed {seed}: node 1's own fetch is routed");
    }
}

/// Issue 14: repeated misbehaviour closes the link, for longer each time. A friend (1)
/// sends HTL-0 inserts, a lie no honest node tells. Each is refused and backs it off; at the
/// eighth the node asks its driver to close the link until 10 minutes from now (the harness
/// closes it both ways). Linked again and lying again, the friend is suspended for 20
/// minutes. With `close_after_lies` off (the old node) the link stays up however much it lies.
#[test]
fn a_friend_that_keeps_lying_loses_its_link_for_longer_each_time() {
    use pamphlet_node::id::PeerId;
    use pamphlet_node::node::FIRST_SUSPENSION;
    for seed in seeds(SEEDS) {
        for close in [true, false] {
            let mut net = Network::new(seed, Instant::now());
            for off in [0.1, 0.2, 0.3] {
                let mut c = net.config(net.len(), Location::from_f64(off));
                if !close {
                    c.close_after_lies = None;
                }
                net.add_node_with(c, pamphlet_node::store::MemoryStore::default());
            }
            net.connect_many(&[(0, 1), (0, 2)]);
            net.run_for(Duration::from_secs(1));
            for round in 1..=2u32 {
                if round == 2 {
                    net.connect(0, 1);
                    net.run_for(Duration::from_secs(1));
                }
                for i in 0..8u64 {
                    assert!(net.node(0).peer(PeerId(1)).is_some(), "seed {seed}: linked before lie {i}");
                    let (_, block) = chk_block(1000 + i as u32 + 100 * round);
                    net.inject(1, 0, Message::InsertRequest { id: i, htl: 0, block, top: false });
                    net.run_for(Duration::from_millis(100));
                }
                let until = net.node(0).suspended_until(PeerId(1), net.now());
                if close {
                    assert!(net.node(0).peer(PeerId(1)).is_none(), "seed {seed} round {round}: link closed");
                    assert!(net.node(1).peer(PeerId(0)).is_none(), "seed {seed} round {round}: both ways");
                    assert!(net.node(0).peer(PeerId(2)).is_some(), "seed {seed}: the honest friend stays");
                    let len = until.expect("suspended") - net.now();
                    let want = FIRST_SUSPENSION * round;
                    assert!(len <= want && len + Duration::from_secs(5) > want, "seed {seed} round {round}: {len:?}");
                    assert_eq!(net.node(0).stats().links_suspended, u64::from(round));
                } else {
                    assert!(net.node(0).peer(PeerId(1)).is_some(), "seed {seed}: never closed");
                    assert_eq!(until, None);
                    assert_eq!(net.node(0).stats().links_suspended, 0);
                }
            }
        }
    }
}

/// Issue 14's flusher target: a neighbour sending 10,000 junk inserts over an hour evicts
/// nothing requested in the last hour from the store area. A store area of 1,024 blocks
/// full of sink data, one block requested at the start; the flusher sends a junk insert
/// the victim is a sink for every 0.36 s for an hour. The fixed budget (256 at once, then
/// one every 2 s: 2,056 writes) pushed the requested block out; the budget scaled to the
/// area (a quarter at once, half per hour: 768 writes) keeps it.
#[test]
fn an_hour_of_junk_inserts_evicts_nothing_requested_in_that_hour() {
    let block_len = 32 * 1024 + 64;
    for seed in seeds(&[1]) {
        for scaled in [true, false] {
            let mut net = Network::new(seed, Instant::now());
            let mut c = net.config(0, Location::from_f64(0.0));
            c.store_budget = c.store_budget.map(|b| pamphlet_node::node::StoreBudget { scaled, ..b });
            net.add_node_with(c, pamphlet_node::store::MemoryStore::new(1024 * block_len, 1 << 30));
            net.add_node(0.5);
            net.connect(0, 1);
            net.run_for(Duration::from_secs(1));
            let held = sink_blocks(&net, 0, 1024);
            for (k, b) in &held {
                net.node_mut(0).store_mut().put(Area::Store, *k, b.clone()).unwrap();
            }
            let (wanted, _) = held[0];
            assert!(net.node_mut(0).store_mut().get(BlockKind::Chk, &wanted).is_some(), "requested now");
            let junk = sink_blocks(&net, 100_000, 10_000);
            for (i, (_, b)) in junk.into_iter().enumerate() {
                net.inject(1, 0, Message::InsertRequest { id: i as u64, htl: 18, block: b, top: false });
                net.run_for(Duration::from_millis(360));
            }
            assert!(net.elapsed() >= Duration::from_secs(3600), "an hour of junk");
            let area = net.node(0).store().area_of(BlockKind::Chk, &wanted);
            let writes = net.node(0).stats().store_writes;
            if scaled {
                assert_eq!(area, Some(Area::Store), "seed {seed}: requested within the hour, kept ({writes} writes)");
                assert!(writes < 1024, "seed {seed}: {writes}");
            } else {
                assert_eq!(area, None, "seed {seed}: the fixed budget let {writes} junk writes push it out");
            }
        }
    }
}
