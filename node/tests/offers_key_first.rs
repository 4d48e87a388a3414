//! Key-first offers in the node (issue 20; `node/durability/key_first.rs`), on the
//! `sim::network` harness: the offering node names the blocks first, the peer asks for the
//! ones it lacks and would keep, and only those follow. And the defences: a flood of key
//! lists costs the receiver a bounded number of lookups; answers nobody asked for, late,
//! repeated or naming keys never offered send nothing; an answer asking for everything
//! gets the offers' pace.

// Tests drive the harness with the real clock as the base of virtual time.
#![allow(clippy::disallowed_methods)]

mod common;

use std::time::Duration;

use common::routing::{chk_block, SEEDS};
use common::seeds;
use pamphlet_crypto::{Block, BlockKind, RoutingKey};
use pamphlet_node::sim::network::Network;
use pamphlet_node::store::memory::MemoryStore;
use pamphlet_node::store::{Area, BlockStore};
use pamphlet_node::wire::codec::encode;
use pamphlet_node::wire::message::{Message, MAX_OFFERED_KEYS};

/// The offers' line of three (node 1 caches nothing): `common::offers::line_of_three`.
fn setup(seed: u64, offers_per_tick: u32, n: usize) -> (Network, Vec<(RoutingKey, Block)>) {
    common::offers::line_of_three(seed, offers_per_tick, n, &[0])
}

/// Node 0 moves to 0.1, so node 1 is now closest to the blocks' keys.
fn move_node_0(net: &mut Network) {
    common::offers::move_node_0(net, 0.1);
}

/// Encoded bytes and count of the messages between nodes 0 and 1 in the transcript.
fn traffic(net: &Network) -> (usize, usize) {
    let between = |s: &&pamphlet_node::sim::network::Sent| (s.from.min(s.to), s.from.max(s.to)) == (0, 1);
    let sent: Vec<_> = net.transcript().iter().filter(between).collect();
    (sent.iter().map(|s| encode(&s.msg).unwrap().len()).sum(), sent.len())
}

fn inserts_to_1(net: &Network) -> usize {
    net.transcript()
        .iter()
        .filter(|s| (s.from, s.to) == (0, 1) && matches!(s.msg, Message::InsertRequest { .. }))
        .count()
}

/// The offer lists node 0 sent node 1: (id, keys).
fn offer_lists(net: &Network) -> Vec<(u64, Vec<(BlockKind, RoutingKey)>)> {
    net.transcript()
        .iter()
        .filter(|s| (s.from, s.to) == (0, 1))
        .filter_map(|s| match &s.msg {
            Message::OfferKeys { id, keys } => Some((*id, keys.clone())),
            _ => None,
        })
        .collect()
}

/// A peer that already holds some of the blocks is sent only the others; it ends holding
/// all of them, for fewer bytes and messages than an insert per block (today's offers: the
/// block and its answer each).
#[test]
fn a_peer_holding_a_block_is_not_sent_it_and_offers_cost_less() {
    for seed in seeds(SEEDS) {
        let n = 12;
        let (mut net, blocks) = setup(seed, 8, n);
        for (k, b) in blocks.iter().step_by(2) {
            net.node_mut(1).store_mut().put(Area::Store, *k, b.clone()).unwrap();
        }
        move_node_0(&mut net);
        net.run_for(Duration::from_secs(10));
        let held = blocks.iter().filter(|(k, b)| net.node(1).store().area_of(b.kind(), k) == Some(Area::Store)).count();
        assert_eq!(held, n, "seed {seed}: {:?}", net.node(0).stats());
        let stats = net.node(0).stats();
        assert_eq!((stats.offer_lists_sent, stats.offer_keys_sent), (1, n as u64), "seed {seed}");
        assert_eq!((stats.offer_keys_wanted, stats.offers_sent), (n as u64 / 2, n as u64 / 2), "seed {seed}");
        assert_eq!(inserts_to_1(&net), n / 2, "seed {seed}: only the blocks node 1 lacked");
        assert_eq!(stats.unexpected_replies, 0, "seed {seed}");
        // Today's cost: each block offered as an insert, and its answer.
        let before: usize = blocks
            .iter()
            .map(|(_, b)| {
                encode(&Message::InsertRequest { id: u64::MAX, htl: 1, block: b.clone(), top: false }).unwrap().len()
                    + encode(&Message::InsertReply { id: u64::MAX }).unwrap().len()
            })
            .sum();
        let (bytes, messages) = traffic(&net);
        assert!(bytes < before * 6 / 10, "seed {seed}: {bytes} bytes against {before}");
        assert!(messages < 2 * n, "seed {seed}: {messages} messages against {}", 2 * n);
    }
}

/// Offers go only into room: a peer whose store area has room for 5 more blocks asks for
/// 5 of the 12 offered, drops none of what it holds, and says why it asked for no more.
#[test]
fn a_peer_asks_only_for_the_offered_blocks_it_has_room_for() {
    for seed in seeds(SEEDS) {
        let slot = BlockKind::Chk.block_len() as u64;
        let store = MemoryStore::new(8 * slot, 64 << 20);
        let (mut net, blocks) = common::offers::line_of_three_with(seed, 8, 12, &[0], store);
        // Three blocks of its own, far from the offered keys: room for five more.
        let own: Vec<_> = (1_000_000..).map(chk_block).take(3).collect();
        for (k, b) in &own {
            net.node_mut(1).store_mut().put(Area::Store, *k, b.clone()).unwrap();
        }
        assert_eq!(net.node(1).store().room(Area::Store, BlockKind::Chk), 5, "seed {seed}");
        move_node_0(&mut net);
        net.run_for(Duration::from_secs(10));
        let taken =
            blocks.iter().filter(|(k, b)| net.node(1).store().area_of(b.kind(), k) == Some(Area::Store)).count();
        assert_eq!(taken, 5, "seed {seed}: as many as there was room for");
        assert_eq!(inserts_to_1(&net), 5, "seed {seed}: only those were sent");
        for (k, b) in &own {
            assert_eq!(net.node(1).store().area_of(b.kind(), k), Some(Area::Store), "seed {seed}: its own kept");
        }
        let stats = net.node(1).stats();
        assert_eq!((stats.offered_keys_checked, stats.offered_keys_no_room), (12, 7), "seed {seed}");
        assert_eq!(net.node(1).store().stats().store_evictions, 0, "seed {seed}");
    }
}

/// A peer that holds every block is sent none: two small messages instead of 2 × 12.
#[test]
fn a_peer_holding_everything_is_sent_nothing() {
    for seed in seeds(SEEDS) {
        let (mut net, blocks) = setup(seed, 8, 12);
        for (k, b) in &blocks {
            net.node_mut(1).store_mut().put(Area::Store, *k, b.clone()).unwrap();
        }
        move_node_0(&mut net);
        net.run_for(Duration::from_secs(10));
        assert_eq!(inserts_to_1(&net), 0, "seed {seed}");
        assert_eq!(net.node(0).stats().offers_sent, 0, "seed {seed}");
        assert_eq!(net.node(0).offers_waiting(), 0, "seed {seed}");
        let (bytes, messages) = traffic(&net);
        assert!(messages <= 4 && bytes < 1024, "seed {seed}: {messages} messages, {bytes} bytes");
    }
}

/// An honest node offering more keys than one round holds, none of which the peer wants
/// (it holds them all), offers them all within the peer's lookup budget: rounds of at most
/// 256 keys, one per 4 s, match the budget's 64 a second.
#[test]
fn many_keys_offered_stay_within_the_peers_budget() {
    for seed in seeds(&SEEDS[..1]) {
        let n = 1200;
        let (mut net, blocks) = setup(seed, 8, n);
        for (k, b) in &blocks {
            net.node_mut(1).store_mut().put(Area::Store, *k, b.clone()).unwrap();
        }
        move_node_0(&mut net);
        net.run_for(Duration::from_secs(30));
        let (sender, receiver) = (net.node(0).stats(), net.node(1).stats());
        assert_eq!(sender.offer_keys_sent, n as u64, "seed {seed}: {sender:?}");
        assert_eq!(sender.offers_sent, 0, "seed {seed}");
        assert_eq!(receiver.offered_keys_checked, n as u64, "seed {seed}");
        assert_eq!(receiver.offered_keys_over_budget, 0, "seed {seed}: {receiver:?}");
    }
}

/// Keys of many full lists at once from one peer (a flood): node 0 looks up at most its
/// budget for that peer (two lists' worth, then 64 a second), answers at most the lists
/// that found budget left, and goes on working.
#[test]
fn a_flood_of_key_lists_costs_bounded_lookups() {
    for seed in seeds(SEEDS) {
        let (mut net, blocks) = setup(seed, 8, 4);
        let lists = 40u64;
        for id in 0..lists {
            let keys = (0..MAX_OFFERED_KEYS).map(|i| (BlockKind::Chk, RoutingKey([(id * 7 + i as u64) as u8; 32])));
            net.inject(1, 0, Message::OfferKeys { id, keys: keys.collect() });
        }
        net.run_for(Duration::from_millis(100));
        let stats = net.node(0).stats();
        let offered = lists * MAX_OFFERED_KEYS as u64;
        assert!(stats.offered_keys_checked <= 2 * MAX_OFFERED_KEYS as u64 + 16, "seed {seed}: {stats:?}");
        assert_eq!(stats.offered_keys_checked + stats.offered_keys_over_budget, offered, "seed {seed}");
        let answers = net
            .transcript()
            .iter()
            .filter(|s| (s.from, s.to) == (0, 1) && matches!(s.msg, Message::WantKeys { .. }))
            .count();
        assert!(answers <= 3, "seed {seed}: {answers} answers");
        // The node still serves its peer.
        net.fetch(1, BlockKind::Chk, blocks[0].0);
        net.run();
        assert!(
            net.events(1).iter().any(|e| matches!(e, pamphlet_node::node::Event::FetchSucceeded { .. })),
            "seed {seed}: {:?}",
            net.events(1)
        );
    }
}

/// Answers that match no list waiting for one send nothing: unasked (a made-up id), late
/// (after the wait), repeated (the same answer twice), or naming keys the list did not
/// offer. An answer asking for every key (and more) gets them at the offers' pace only.
#[test]
fn wrong_answers_send_nothing_and_greedy_ones_get_the_pace() {
    for seed in seeds(SEEDS) {
        let (mut net, blocks) = setup(seed, 4, 20);
        let all: Vec<_> = blocks.iter().map(|(k, b)| (b.kind(), *k)).collect();
        // Unasked: no list was sent.
        net.inject(1, 0, Message::WantKeys { id: 99, wanted: all.clone() });
        net.run_for(Duration::from_secs(3));
        assert_eq!(inserts_to_1(&net), 0, "seed {seed}: unasked");
        // Node 1 answers nothing itself; the list's answers are made up below.
        net.set_filter(1, Box::new(|_, m| (!matches!(m, Message::WantKeys { .. })).then_some(m)));
        move_node_0(&mut net);
        net.run_for(Duration::from_millis(1500));
        let lists = offer_lists(&net);
        assert_eq!(lists.len(), 1, "seed {seed}");
        let (id, keys) = lists[0].clone();
        assert_eq!(keys.len(), blocks.len(), "seed {seed}");
        // Unasked while a list waits: another id.
        net.inject(1, 0, Message::WantKeys { id: id.wrapping_add(1), wanted: keys.clone() });
        net.run_for(Duration::from_secs(3));
        assert_eq!(inserts_to_1(&net), 0, "seed {seed}: another id");
        // Keys never offered, under the right id: ignored, and the list is answered.
        let other = (0..).map(chk_block).find(|(k, _)| !blocks.iter().any(|(b, _)| b == k)).unwrap().0;
        let mut greedy = vec![(BlockKind::Chk, other); 30];
        greedy.extend(keys.iter().copied());
        greedy.extend(keys.iter().copied());
        net.inject(1, 0, Message::WantKeys { id, wanted: greedy.clone() });
        net.run_for(Duration::from_millis(100));
        for t in 1..=5usize {
            net.run_for(Duration::from_secs(1));
            assert_eq!(inserts_to_1(&net), (4 * t).min(blocks.len()), "seed {seed}: the pace after {t} ticks");
        }
        // Twice: the list was answered already.
        net.inject(1, 0, Message::WantKeys { id, wanted: greedy });
        net.run_for(Duration::from_secs(5));
        assert_eq!(inserts_to_1(&net), blocks.len(), "seed {seed}: repeated");
        let stats = net.node(0).stats();
        assert_eq!(stats.offer_keys_wanted, blocks.len() as u64, "seed {seed}: {stats:?}");
    }
}

/// An answer after the wait (30 s) for it is late: the list was forgotten, nothing is sent.
#[test]
fn a_late_answer_sends_nothing() {
    for seed in seeds(SEEDS) {
        let (mut net, blocks) = setup(seed, 4, 8);
        net.set_filter(1, Box::new(|_, m| (!matches!(m, Message::WantKeys { .. })).then_some(m)));
        move_node_0(&mut net);
        net.run_for(Duration::from_secs(40));
        let lists = offer_lists(&net);
        assert_eq!(lists.len(), 1, "seed {seed}");
        let (id, keys) = lists[0].clone();
        assert_eq!(keys.len(), blocks.len(), "seed {seed}");
        net.inject(1, 0, Message::WantKeys { id, wanted: keys });
        net.run_for(Duration::from_secs(10));
        assert_eq!(inserts_to_1(&net), 0, "seed {seed}: late");
        assert_eq!(net.node(0).stats().offer_wants_ignored, 1 + blocks.len() as u64, "seed {seed}");
        assert_eq!(net.node(0).offers_waiting(), 0, "seed {seed}");
    }
}
