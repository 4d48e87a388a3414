//! Routing properties that protect anonymity: per-link HTL decrement and link-local ids.

// Tests and benchmarks measure with, or drive nodes by, the real clock.
#![allow(clippy::disallowed_methods)]

mod common;

use std::time::{Duration, Instant};

use common::seeds;
use pamphlet_crypto::{BlockKind, RoutingKey};
use pamphlet_node::id::PeerId;
use pamphlet_node::location::Location;
use pamphlet_node::routing::htl::{DECREMENT_AT_MAX_PROB, DECREMENT_AT_MIN_PROB, MAX_HTL};
use pamphlet_node::sim::network::Network;
use pamphlet_node::store::MemoryStore;
use pamphlet_node::wire::Message;
use pamphlet_node::{Node, NodeConfig};

fn key(i: u32, round: u8) -> RoutingKey {
    let mut k = [round; 32];
    k[..4].copy_from_slice(&i.to_be_bytes());
    k[4] = 0x5a;
    RoutingKey(k)
}

/// What `node` does with a request from `peer` at `htl`: the HTL it forwards with, or 0 if
/// it ended the request with DataNotFound.
fn forwarded_htl(node: &mut Node, now: Instant, peer: PeerId, key: RoutingKey, htl: u8) -> u8 {
    node.handle_message(now, peer, Message::DataRequest { id: 1, kind: BlockKind::Chk, key, htl });
    let mut out = None;
    while let Some((to, msg)) = node.poll_transmit() {
        match msg {
            Message::DataRequest { htl, .. } => out = Some(htl),
            Message::DataNotFound { htl: 0, .. } if to == peer => out = Some(0),
            _ => {}
        }
    }
    out.expect("the request was neither forwarded nor answered")
}

/// One node with many peers: each link decrements at max with probability 1/2 and at 1 with
/// probability 1/4, and always the same way for the same link.
#[test]
fn per_link_htl_decrement_statistics() {
    for seed in seeds(&[11, 12]) {
        let now = Instant::now();
        let config = NodeConfig { location: Location::from_f64(0.0), seed, ..NodeConfig::default() };
        let mut node = Node::new(config, MemoryStore::default());
        let n = 300u64;
        for i in 1..=n {
            node.add_peer(now, PeerId(i), Location::from_f64(i as f64 / (n + 1) as f64));
            while node.poll_transmit().is_some() {}
        }
        let (mut at_max, mut at_min) = (0, 0);
        for i in 1..=n {
            let p = PeerId(i);
            let link = node.peer(p).unwrap().link;
            let a = forwarded_htl(&mut node, now, p, key(i as u32, 1), MAX_HTL);
            let b = forwarded_htl(&mut node, now, p, key(i as u32, 2), MAX_HTL);
            assert_eq!(a, b, "seed {seed}: the same link decides the same way every time");
            assert_eq!(a, link.decrement(MAX_HTL, MAX_HTL), "seed {seed}");
            assert!(a == MAX_HTL || a == MAX_HTL - 1, "seed {seed}");
            at_max += usize::from(a == MAX_HTL - 1);
            let c = forwarded_htl(&mut node, now, p, key(i as u32, 3), 1);
            let d = forwarded_htl(&mut node, now, p, key(i as u32, 4), 1);
            assert_eq!(c, d, "seed {seed}");
            assert_eq!(c, link.decrement(1, MAX_HTL), "seed {seed}");
            at_min += usize::from(c == 0);
            // In between, every hop costs exactly one.
            assert_eq!(forwarded_htl(&mut node, now, p, key(i as u32, 5), 9), 8, "seed {seed}");
        }
        let (fmax, fmin) = (at_max as f64 / n as f64, at_min as f64 / n as f64);
        // Standard deviations ~0.029 and ~0.025 for 300 links: allow 4 of them.
        assert!((fmax - DECREMENT_AT_MAX_PROB).abs() < 0.12, "seed {seed}: at max {fmax}");
        assert!((fmin - DECREMENT_AT_MIN_PROB).abs() < 0.10, "seed {seed}: at min {fmin}");

        // A local request leaves at the maximum, like half the forwarded ones.
        node.start_fetch(now, BlockKind::Chk, key(0, 9));
        let sent: Vec<u8> = std::iter::from_fn(|| node.poll_transmit())
            .filter_map(|(_, m)| match m {
                Message::DataRequest { htl, .. } => Some(htl),
                _ => None,
            })
            .collect();
        assert_eq!(sent, vec![MAX_HTL], "seed {seed}");
    }
}

/// Line 0 - 1 - 2 - 3 - 4 with node 4 silent, so the request waits at node 3. Ids differ on
/// every hop; node 3 rejects a second request for the key whatever id it carries, and an id
/// seen on another link means nothing to it.
#[test]
fn loop_defence_holds_without_a_traceable_id() {
    for seed in seeds(&[1, 2, 3]) {
        let k = key(77, 0);
        let kl = Location::of_key(&k).as_f64();
        let mut net = Network::new(seed, Instant::now());
        net.line(&[kl + 0.4, kl + 0.3, kl + 0.2, kl + 0.1, kl + 0.05]);
        net.set_filter(4, Box::new(|_, _| None));
        net.run();
        net.clear_transcript();
        net.fetch(0, BlockKind::Chk, k);
        net.run_for(Duration::from_secs(1));
        let ids: Vec<(usize, usize, u64)> = net
            .transcript()
            .iter()
            .filter_map(|s| match s.msg {
                Message::DataRequest { id, .. } => Some((s.from, s.to, id)),
                _ => None,
            })
            .collect();
        assert_eq!(ids.iter().map(|(f, t, _)| (*f, *t)).collect::<Vec<_>>(), vec![(0, 1), (1, 2), (2, 3), (3, 4)]);
        let mut distinct: Vec<u64> = ids.iter().map(|x| x.2).collect();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 4, "seed {seed}: a fresh id on every hop");
        let seen_by_1 = ids[0].2;
        assert_eq!(net.node(3).in_flight(), 1, "seed {seed}: node 3 is routing the key");

        // Node 1's observer asks node 3 (through a colluder at node 2) about the id it saw:
        // as a request for another key it is simply a new request (accepted, routed on)...
        net.clear_transcript();
        let other = key(78, 0);
        net.inject(2, 3, Message::DataRequest { id: seen_by_1, kind: BlockKind::Chk, key: other, htl: 18 });
        net.run_for(Duration::from_millis(100));
        let answers: Vec<&Message> =
            net.transcript().iter().filter(|s| s.from == 3 && s.to == 2).map(|s| &s.msg).collect();
        assert_eq!(answers, vec![&Message::Accepted { id: seen_by_1 }], "seed {seed}");
        // ...and as a reply it matches nothing: node 3 says nothing at all.
        net.clear_transcript();
        let before = net.node(3).stats().unexpected_replies;
        net.inject(2, 3, Message::DataNotFound { id: seen_by_1, htl: 5 });
        net.run_for(Duration::from_millis(100));
        assert!(net.transcript().iter().all(|s| s.from != 3), "seed {seed}");
        assert_eq!(net.node(3).stats().unexpected_replies, before + 1, "seed {seed}");
        assert_eq!(net.node(3).in_flight(), 2, "seed {seed}: the real request is untouched");

        // The loop defence is by key: any id, same key, is rejected while it is routed.
        net.clear_transcript();
        net.inject(2, 3, Message::DataRequest { id: 12345, kind: BlockKind::Chk, key: k, htl: 18 });
        net.run_for(Duration::from_millis(100));
        assert_eq!(net.hops(|m| matches!(m, Message::RejectedLoop { id: 12345 })), vec![(3, 2)], "seed {seed}");

        // The id node 1 saw never left the link it was used on.
        net.run();
        let leaked = net.transcript().iter().any(|s| match &s.msg {
            Message::DataRequest { id, .. } => *id == seen_by_1 && (s.from, s.to) != (2, 3),
            _ => false,
        });
        assert!(!leaked, "seed {seed}");
    }
}
