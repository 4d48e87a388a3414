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
        let config = NodeConfig { location: Location::from_f64(0.0), ..NodeConfig::seeded(seed) };
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

// ----- A neighbour probing whether its friend started a request (issue 14) -------------

/// Whether the victim started the request or relays it for `UPSTREAM`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Originated,
    Relayed,
}

/// The peers of the victim in the probes below: its upstream (for a relayed request), the
/// first hop A (best for the key: the adversary) and the second hop B (next best: A's
/// colluder). The victim sits at 0.3 from the key, A next to it, B at 0.05, the upstream at
/// 0.4.
const A: PeerId = PeerId(2);
const B: PeerId = PeerId(3);

/// The victim with its three peers. The upstream's id is picked so that its link does not
/// decrement at max HTL: a request relayed from it leaves the victim at max HTL, exactly
/// like one the victim started (the case the HTL coins alone leave ambiguous).
fn victim(now: Instant, target: Location) -> (Node, PeerId) {
    let at = |d: f64| Location::from_f64((target.as_f64() + d).rem_euclid(1.0));
    let config = NodeConfig { location: at(0.3), ..NodeConfig::default() };
    let mut node = Node::new(config, MemoryStore::default());
    node.add_peer(now, A, at(0.001));
    node.add_peer(now, B, at(0.05));
    let upstream = (100..)
        .map(PeerId)
        .find(|&p| {
            node.add_peer(now, p, at(0.4));
            let quiet = !node.peer(p).unwrap().link.decrement_at_max;
            if !quiet {
                node.remove_peer(now, p);
            }
            quiet
        })
        .unwrap();
    while node.poll_transmit().is_some() {}
    (node, upstream)
}

/// What a neighbour sees of a message: its kind and, for requests, the HTL (ids are fresh
/// random numbers on every hop and tell nothing).
fn seen(msg: &Message) -> String {
    match msg {
        Message::DataRequest { htl, .. } => format!("DataRequest htl {htl}"),
        Message::InsertRequest { htl, .. } => format!("InsertRequest htl {htl}"),
        Message::DataNotFound { htl, .. } => format!("DataNotFound htl {htl}"),
        Message::RouteNotFound { htl, .. } => format!("RouteNotFound htl {htl}"),
        Message::RejectedLoop { .. } => "RejectedLoop".into(),
        Message::RejectedOverload { .. } => "RejectedOverload".into(),
        Message::Accepted { .. } => "Accepted".into(),
        Message::DataFound { .. } => "DataFound".into(),
        Message::InsertReply { .. } => "InsertReply".into(),
        Message::InsertCollision { .. } => "InsertCollision".into(),
        other => format!("{:?}", std::mem::discriminant(other)),
    }
}

/// Drains the victim's output; returns what A and B received, stamped with the time since
/// `t0`, and the id of the last request sent to A.
fn drain(node: &mut Node, t0: Instant, now: Instant, log: &mut Vec<(Duration, PeerId, String)>) -> Option<u64> {
    let mut to_a = None;
    while let Some((to, msg)) = node.poll_transmit() {
        if let (true, Message::DataRequest { id, .. } | Message::InsertRequest { id, .. }) = (to == A, &msg) {
            to_a = Some(*id);
        }
        if to == A || to == B {
            log.push((now - t0, to, seen(&msg)));
        }
    }
    to_a
}

/// Runs the victim's timers up to `until`.
fn run_until(node: &mut Node, t0: Instant, until: Instant, log: &mut Vec<(Duration, PeerId, String)>) {
    while let Some(t) = node.poll_timeout().filter(|t| *t <= until) {
        node.handle_timeout(t);
        drain(node, t0, t, log);
    }
}

fn insert_block(key: u8) -> pamphlet_crypto::Block {
    let (b, _) = pamphlet_crypto::chk::encode(&[key; 40], pamphlet_crypto::ChkFlags::default()).unwrap();
    pamphlet_crypto::Block::Chk(b)
}

/// Starts a fetch (or, with `insert`, an insert) at the victim, in `role`; returns the id
/// of the hop it sent A.
fn begin(
    node: &mut Node,
    up: PeerId,
    role: Role,
    insert: Option<&pamphlet_crypto::Block>,
    k: RoutingKey,
    t0: Instant,
    log: &mut Vec<(Duration, PeerId, String)>,
) -> u64 {
    match (role, insert) {
        (Role::Originated, None) => {
            node.start_fetch(t0, BlockKind::Chk, k);
        }
        (Role::Originated, Some(b)) => {
            node.start_insert(t0, b.clone());
        }
        (Role::Relayed, None) => {
            node.handle_message(t0, up, Message::DataRequest { id: 7, kind: BlockKind::Chk, key: k, htl: MAX_HTL })
        }
        (Role::Relayed, Some(b)) => {
            node.handle_message(t0, up, Message::InsertRequest { id: 7, htl: MAX_HTL, block: b.clone(), top: false })
        }
    }
    drain(node, t0, t0, log).expect("the victim forwards to A first")
}

/// The timing probe (issue 14, item 1). The victim's first hop A answers `Accepted`, stays
/// silent, and shortly after a relay at max HTL would have given up, asks the victim for
/// the same key itself: `RejectedLoop` would mean the victim still routes the key, which
/// only an originator did (its deadline was longer). Everything A and its colluder B see,
/// with timing, must be the same whether the victim started the request or relays it.
#[test]
fn timing_probe_cannot_tell_an_originator_from_a_relay() {
    for probe_at in [105.5, 106.0, 110.0, 119.0] {
        let mut views = Vec::new();
        for role in [Role::Originated, Role::Relayed] {
            let t0 = Instant::now();
            let k = key(41, 0);
            let (mut node, up) = victim(t0, Location::of_key(&k));
            let mut log = Vec::new();
            let id = begin(&mut node, up, role, None, k, t0, &mut log);
            node.handle_message(t0 + Duration::from_millis(10), A, Message::Accepted { id });
            let probe = t0 + Duration::from_secs_f64(probe_at);
            run_until(&mut node, t0, probe, &mut log);
            node.handle_message(probe, A, Message::DataRequest { id: 999, kind: BlockKind::Chk, key: k, htl: MAX_HTL });
            drain(&mut node, t0, probe, &mut log);
            run_until(&mut node, t0, probe + Duration::from_secs(200), &mut log);
            views.push(log);
        }
        assert_eq!(
            views[0], views[1],
            "probe at +{probe_at} s: what A and B see differs between an originated (left) and a relayed (right) request"
        );
    }
}

/// Two colluding neighbours (issue 14, item 2): A answers "not found" with no hops left at
/// once, B (the victim's next choice) reads the HTL it is sent. A different not-found cap
/// for requests the victim started would show in that HTL. Fetches and inserts.
#[test]
fn colluding_neighbours_cannot_read_the_role_from_the_htl() {
    for insert in [false, true] {
        for answer in [0u8, 1, 5, 12] {
            let mut views = Vec::new();
            for role in [Role::Originated, Role::Relayed] {
                let t0 = Instant::now();
                let block = insert_block(answer);
                let k = if insert { block.routing_key() } else { key(42, answer) };
                let (mut node, up) = victim(t0, Location::of_key(&k));
                let mut log = Vec::new();
                let id = begin(&mut node, up, role, insert.then_some(&block), k, t0, &mut log);
                let t1 = t0 + Duration::from_millis(20);
                // DataNotFound to an insert is refused as a lie whatever the role; RouteNotFound
                // with hops left is the answer an insert believes.
                let msg = if insert || answer > 0 {
                    Message::RouteNotFound { id, htl: answer.max(1) }
                } else {
                    Message::DataNotFound { id, htl: 0 }
                };
                node.handle_message(t1, A, msg);
                drain(&mut node, t0, t1, &mut log);
                views.push(log);
            }
            assert_eq!(
                views[0], views[1],
                "insert {insert}, A answers with {answer} hops left: B sees a different HTL for an originated (left) and a relayed (right) request"
            );
        }
    }
}

/// The cache probe (issue 14, item 1, "every way a neighbour can observe"): the first hop A
/// returns the block, then later asks the victim for the same key. A node never caches its
/// own requests; had a relay cached a request that reached it at max HTL, the answer
/// (`DataFound` at once, or a forward) would tell A which the victim was. Fetches only: a
/// relay keeps an insert whatever its HTL (availability first; the residual channel is in
/// docs/security.md, section 8).
#[test]
fn cache_probe_cannot_tell_an_originator_from_a_relay() {
    let mut views = Vec::new();
    for role in [Role::Originated, Role::Relayed] {
        let t0 = Instant::now();
        let block = insert_block(99);
        let k = block.routing_key();
        let (mut node, up) = victim(t0, Location::of_key(&k));
        let mut log = Vec::new();
        let id = begin(&mut node, up, role, None, k, t0, &mut log);
        let t1 = t0 + Duration::from_millis(20);
        node.handle_message(t1, A, Message::DataFound { id, block: block.clone() });
        drain(&mut node, t0, t1, &mut log);
        let probe = t0 + Duration::from_secs(60);
        node.handle_message(probe, A, Message::DataRequest { id: 999, kind: BlockKind::Chk, key: k, htl: 9 });
        drain(&mut node, t0, probe, &mut log);
        views.push(log);
    }
    assert_eq!(
        views[0], views[1],
        "A's later request for the key is answered differently for an originated (left) and a relayed (right) fetch"
    );
}

/// Randomness on restart (issue 14, item 3): a node started twice from the same data
/// directory must not repeat its random choices (a neighbour sees request ids and swap
/// commitments raw: a repeat links the two runs and makes swap shares predictable), while
/// its per-link HTL coins must stay the same (redrawing them lets a neighbour average the
/// coin away by reconnecting).
#[cfg(feature = "net")]
#[test]
fn a_restart_does_not_replay_randomness_but_keeps_link_coins() {
    use pamphlet_node::daemon;

    let dir = tempfile::tempdir().unwrap();
    let listen = "127.0.0.1:9".parse().unwrap();
    let config = daemon::init(dir.path(), Some(listen)).unwrap();
    let start = || {
        let now = Instant::now();
        let mut node = Node::new(daemon::node_config(dir.path(), &config).unwrap(), MemoryStore::default());
        for p in 1..=64 {
            node.add_peer(now, PeerId(p), Location::from_f64(p as f64 / 65.0));
        }
        while node.poll_transmit().is_some() {}
        node.start_fetch(now, BlockKind::Chk, key(9, 9));
        let request = std::iter::from_fn(|| node.poll_transmit()).find_map(|(_, m)| match m {
            Message::DataRequest { id, .. } => Some(id),
            _ => None,
        });
        assert!(node.start_swap(now));
        let commitment = std::iter::from_fn(|| node.poll_transmit()).find_map(|(_, m)| match m {
            Message::SwapRequest { commitment, .. } => Some(commitment),
            _ => None,
        });
        let coins: Vec<_> = (1..=64).map(|p| node.peer(PeerId(p)).unwrap().link).collect();
        (request.unwrap(), commitment.unwrap(), coins)
    };
    let (id1, c1, coins1) = start();
    let (id2, c2, coins2) = start();
    assert_ne!(id1, id2, "the first request id repeats across restarts");
    assert_ne!(c1, c2, "the first swap commitment repeats across restarts");
    assert_eq!(coins1, coins2, "the link coins must survive a restart");
}
