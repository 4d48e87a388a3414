//! A second attempt by the key, not by who asked (issue 20, session 10;
//! `node/second_attempt.rs`, docs/security.md §16), on the `sim::network` harness.
//!
//! Node X has four friends: A (ranked first for the key), B (second), and U and W, far
//! from the key. Every node sends requests with 4 hops, so one "not found" (which costs
//! a request at most the node's cap, 4 hops) ends X's request. The colluders A and B
//! answer every request "not found" at once (the black hole: also the lying peer of the
//! brief) and compare notes. Whether X asked for the key itself (its client asking a
//! block not found once more) or relayed U's request and then W's, what they see is the
//! same: a request for the key to A, then one to B. Before, a relay sent the repeat to A
//! again, and only an originator went to B; the test of that fails without the rule. With
//! U alone asking, X as a relay sees no repeat at all (U routes it around X): the mark
//! that keeps the rule off by default.

// Tests drive the harness with the real clock as the base of virtual time.
#![allow(clippy::disallowed_methods)]

mod common;

use std::time::{Duration, Instant};

use common::routing::{chk_block, key_loc, SEEDS};
use common::seeds;
use pamphlet_crypto::{Block, BlockKind, RoutingKey};
use pamphlet_node::client::retry::Tries;
use pamphlet_node::location::Location;
use pamphlet_node::node::{Event, Failure, SECOND_ATTEMPT_KEYS};
use pamphlet_node::sim::network::{black_hole, Network};
use pamphlet_node::store::{Area, BlockStore, MemoryStore};
use pamphlet_node::wire::message::Message;

const X: usize = 0;
const A: usize = 1;
const B: usize = 2;
const U: usize = 3;
const W: usize = 4;
/// Behind B (only with `holder`): the node that has the block.
const H: usize = 5;

/// The setup of the module doc, every node with `window`; B honest with the block at H
/// behind it when `holder`, else a colluder.
fn setup(seed: u64, window: Duration, holder: bool) -> (Network, RoutingKey) {
    let (key, block) = chk_block(7);
    let kl = key_loc(&key);
    let at = |x: f64| Location::from_f64((kl + x).rem_euclid(1.0));
    let mut net = Network::new(seed, Instant::now());
    for x in [0.3, 0.001, 0.05, 0.45, 0.5, 0.06] {
        let mut c = net.config(net.len(), at(x));
        c.max_htl = 4;
        c.second_attempt_window = window;
        net.add_node_with(c, MemoryStore::default());
    }
    for f in [A, B, U, W] {
        net.connect(X, f);
    }
    net.set_filter(A, Box::new(black_hole));
    if holder {
        net.connect(B, H);
        net.node_mut(H).store_mut().put(Area::Store, key, block).unwrap();
    } else {
        net.set_filter(B, Box::new(black_hole));
    }
    net.run();
    (net, key)
}

/// Node `from` fetches `key` until the network is idle: its result.
fn fetch(net: &mut Network, from: usize, key: RoutingKey) -> Result<Block, Failure> {
    let op = net.fetch(from, BlockKind::Chk, key);
    net.run();
    let result = net.take_events(from).into_iter().find_map(|e| match e {
        Event::FetchSucceeded { op: o, block, .. } if o == op => Some(Ok(block)),
        Event::FetchFailed { op: o, reason, peers_tried } if o == op => {
            Some(Err(Failure::from_reason(reason, peers_tried)))
        }
        _ => None,
    });
    result.expect("the fetch ended")
}

/// As the client pipeline: fetch, and again while `Tries::retry_fetch` says so.
fn client_fetch(net: &mut Network, from: usize, key: RoutingKey) -> Result<Block, Failure> {
    let mut tries = Tries::default();
    loop {
        match fetch(net, from, key) {
            Err(e) if tries.retry_fetch(key, &e) => {}
            result => return result,
        }
    }
}

/// X's requests for `key` as the colluders see them: to which of them, in order.
fn colluders_view(net: &Network, key: RoutingKey) -> Vec<usize> {
    net.transcript()
        .iter()
        .filter(|s| s.from == X && [A, B].contains(&s.to))
        .filter(|s| matches!(s.msg, Message::DataRequest { key: k, .. } if k == key))
        .map(|s| s.to)
        .collect()
}

/// X originates: its client asks once more after "not found".
fn x_asks(seed: u64, window: Duration) -> Vec<usize> {
    let (mut net, key) = setup(seed, window, false);
    assert!(client_fetch(&mut net, X, key).is_err());
    colluders_view(&net, key)
}

/// X relays: U asks (its own repeat cannot go through X again: X was its only way), and
/// later W asks for the same key.
fn x_relays(seed: u64, window: Duration, later: Duration) -> Vec<usize> {
    let (mut net, key) = setup(seed, window, false);
    assert!(client_fetch(&mut net, U, key).is_err());
    net.run_for(later);
    assert!(client_fetch(&mut net, W, key).is_err());
    colluders_view(&net, key)
}

const WINDOW: Duration = Duration::from_secs(600);

/// Why the rule is off by default (docs/security.md §16): with U alone asking, the relay
/// X never meets U's repeat (U routes it around X), so the colluders see "A" from a relay
/// and "A, then B" from an originator. Only a second requester through X (W) makes the
/// relay's view the originator's.
#[test]
fn colluders_see_the_same_from_an_originator_and_a_relay_only_with_a_second_requester() {
    for seed in seeds(SEEDS) {
        let originator = x_asks(seed, WINDOW);
        assert_eq!(originator, vec![A, B], "seed {seed}: the originator detours");
        let (mut net, key) = setup(seed, WINDOW, false);
        assert!(client_fetch(&mut net, U, key).is_err());
        net.run_for(Duration::from_secs(120));
        assert_eq!(colluders_view(&net, key), vec![A], "seed {seed}: U alone: its repeat avoids X");
        let relay = x_relays(seed, WINDOW, Duration::from_secs(45));
        assert_eq!(relay, originator, "seed {seed}: with W, a relay detours too, by the key");
        // Without the rule (window zero), the relay sends the repeat to A again, and the
        // originator makes no second attempt at all.
        assert_eq!(x_relays(seed, Duration::ZERO, Duration::from_secs(45)), vec![A, A], "seed {seed}");
        assert_eq!(x_asks(seed, Duration::ZERO), vec![A], "seed {seed}");
        // During X's quench the relay answers W at once ("not found"): nothing is sent.
        assert_eq!(x_relays(seed, WINDOW, Duration::from_secs(5)), vec![A], "seed {seed}");
        // After the window, the key routes as ever.
        assert_eq!(x_relays(seed, WINDOW, Duration::from_secs(700)), vec![A, A], "seed {seed}");
    }
}

#[test]
fn a_relay_routes_the_repeat_around_a_peer_that_lied_not_found() {
    for seed in seeds(SEEDS) {
        // A lies "not found" at once; B is honest, and H behind it has the block.
        let (mut net, key) = setup(seed, WINDOW, true);
        assert!(client_fetch(&mut net, U, key).is_err(), "seed {seed}: U's request went to A");
        net.run_for(Duration::from_secs(45));
        assert!(client_fetch(&mut net, W, key).is_ok(), "seed {seed}: W's went around A, to B and H");
        assert_eq!(net.node(X).stats().second_attempts_relayed, 1, "seed {seed}");
        // Without the rule W's request goes to the liar again.
        let (mut net, key) = setup(seed, Duration::ZERO, true);
        assert!(client_fetch(&mut net, U, key).is_err());
        net.run_for(Duration::from_secs(45));
        assert!(client_fetch(&mut net, W, key).is_err(), "seed {seed}");
        assert_eq!(net.node(X).stats().second_attempts_relayed, 0, "seed {seed}");
    }
}

/// A flood of `2 * SECOND_ATTEMPT_KEYS` distinct keys through X from U, all failed by
/// the liars, and the same keys again from W after the quench (newest first): X's requests received and
/// sent, its detours, and the size of its table after the first pass.
fn flood(window: Duration) -> (u64, u64, u64, usize) {
    let (mut net, _) = setup(1, window, false);
    let keys: Vec<RoutingKey> = (0..2 * SECOND_ATTEMPT_KEYS as u32)
        .map(|i| {
            let mut k = [9u8; 32];
            k[..4].copy_from_slice(&i.to_be_bytes());
            RoutingKey(k)
        })
        .collect();
    for &k in &keys {
        let _ = fetch(&mut net, U, k);
        assert!(net.node(X).second_attempt_keys() <= SECOND_ATTEMPT_KEYS);
    }
    let table = net.node(X).second_attempt_keys();
    net.run_for(Duration::from_secs(45));
    // Newest first: the older half, failing again, would push the newer out of the table.
    for &k in keys.iter().rev() {
        let _ = fetch(&mut net, W, k);
    }
    let s = net.node(X).stats();
    (s.requests_received, s.forwarded, s.second_attempts_relayed, table)
}

/// What a lying peer or a flood of distinct keys can make a relay do: nothing it was not
/// asked. A detour changes only where a request X was sent goes (here, around the liar
/// and the dead end it tried first, it costs fewer hops than without the rule), at most
/// one per key and window, and the table of failed keys stays bounded (the oldest keys
/// pushed out route as ever).
#[test]
fn a_flood_of_keys_the_liar_fails_costs_the_relay_nothing_more_and_stays_bounded() {
    let (received, forwarded, detours, table) = flood(WINDOW);
    let (received_off, forwarded_off, detours_off, table_off) = flood(Duration::ZERO);
    assert_eq!(received, received_off, "the same requests");
    assert!(forwarded <= forwarded_off, "{forwarded} requests sent with the rule, {forwarded_off} without");
    assert_eq!(table, SECOND_ATTEMPT_KEYS, "the flood filled the table, no more");
    assert_eq!(detours, SECOND_ATTEMPT_KEYS as u64, "one detour per key remembered");
    assert_eq!((detours_off, table_off), (0, 0));
}
