//! The sans-IO node's cost: messages handled per second and memory per peer and per
//! request in flight.
//!
//! `cargo bench -p pamphlet-node --bench node`
//!
//! - `node/request_dnf_cycle`: one node with 20 peers (each advertising 20 friend-of-a-friend
//!   locations) receives a DataRequest for a key it does not hold, ranks its peers and
//!   forwards it (plus `Accepted` upstream), then receives DataNotFound and answers
//!   upstream. Two messages handled per iteration, routing decision included.
//! - `node/request_found_cycle`: the same, but the downstream returns a CHK block, which
//!   the node verifies (SHA-256 of 32 KiB), caches and forwards: the data path.
//! - Memory: printed before the timings. The workspace forbids `unsafe`, so there is no
//!   counting allocator; instead the resident set size (/proc/self/statm) is read before and
//!   after creating many peers / requests in flight, and divided. That figure includes the
//!   hash maps' slack and the allocator's overhead, i.e. what a node really pays.
//!   `size_of` of the main entries is printed next to it.

// Tests and benchmarks measure with, or drive nodes by, the real clock.
#![allow(clippy::disallowed_methods)]
#![allow(missing_docs, clippy::print_stdout, clippy::unwrap_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use pamphlet_crypto::{chk, Block, BlockKind, ChkFlags, RoutingKey};
use pamphlet_node::id::PeerId;
use pamphlet_node::location::Location;
use pamphlet_node::routing::htl::LinkHtl;
use pamphlet_node::routing::peers::{BackoffConfig, PeerEntry, PeerTable};
use pamphlet_node::routing::request::Request;
use pamphlet_node::store::MemoryStore;
use pamphlet_node::wire::Message;
use pamphlet_node::{Node, NodeConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const PEERS: u64 = 20;

fn node_with_peers(now: Instant, max_per_peer: u32) -> Node {
    let config = NodeConfig {
        location: Location::from_f64(0.5),
        max_requests_per_peer: max_per_peer,
        // No quench, so repeated keys are routed again rather than answered from the table.
        quench_time: Duration::ZERO,
        ..NodeConfig::seeded(1)
    };
    let mut node = Node::new(config, MemoryStore::new(1 << 20, 1 << 20));
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for i in 0..PEERS {
        node.add_peer(now, PeerId(i), Location(rng.gen()));
    }
    for i in 0..PEERS {
        let neighbours: Vec<Location> = (0..20).map(|_| Location(rng.gen())).collect();
        node.handle_message(now, PeerId(i), Message::LocationUpdate { location: Location(rng.gen()), neighbours });
    }
    while node.poll_transmit().is_some() {}
    node
}

fn keys(n: usize) -> Vec<RoutingKey> {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    (0..n).map(|_| RoutingKey(rng.gen())).collect()
}

/// Feeds a request from `from`; returns the (peer, id) it was forwarded to.
fn request(node: &mut Node, now: Instant, from: PeerId, id: u64, key: RoutingKey) -> (PeerId, u64) {
    node.handle_message(now, from, Message::DataRequest { id, kind: BlockKind::Chk, key, htl: 10 });
    let mut fwd = None;
    while let Some((to, m)) = node.poll_transmit() {
        if let Message::DataRequest { id, .. } = m {
            fwd = Some((to, id));
        }
    }
    fwd.unwrap()
}

fn routing(c: &mut Criterion) {
    let now = Instant::now();
    let mut g = c.benchmark_group("node");
    g.throughput(Throughput::Elements(2));

    let mut node = node_with_peers(now, 24);
    let ks = keys(4096);
    let mut i = 0usize;
    g.bench_function("request_dnf_cycle", |b| {
        b.iter(|| {
            i += 1;
            let from = PeerId(i as u64 % PEERS);
            let (to, id) = request(&mut node, now, from, i as u64, ks[i % ks.len()]);
            node.handle_message(now, to, Message::DataNotFound { id, htl: 0 });
            while let Some(m) = node.poll_transmit() {
                black_box(m);
            }
        })
    });

    let (block, uri) = chk::encode(b"bench", ChkFlags::default()).unwrap();
    let block = Block::Chk(block);
    let mut node = node_with_peers(now, 24);
    g.bench_function("request_found_cycle", |b| {
        b.iter(|| {
            i += 1;
            let from = PeerId(i as u64 % PEERS);
            // The node caches the block, so drop it again to keep every iteration the same.
            pamphlet_node::store::BlockStore::remove(node.store_mut(), BlockKind::Chk, &uri.routing_key);
            let (to, id) = request(&mut node, now, from, i as u64, uri.routing_key);
            node.handle_message(now, to, Message::DataFound { id, block: block.clone() });
            while let Some(m) = node.poll_transmit() {
                black_box(m);
            }
        })
    });
    g.finish();
}

fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn memory_report() {
    println!("size_of: PeerEntry {} B, Request {} B", size_of::<PeerEntry>(), size_of::<Request>());

    // Per peer: a peer table of 100k peers, each advertising 20 FOAF locations.
    let n = 100_000u64;
    let before = rss_bytes();
    let mut table = PeerTable::new(BackoffConfig::default());
    let link = LinkHtl { decrement_at_max: true, decrement_at_min: false };
    let foaf: Vec<Location> = (0..20).map(|i| Location(i * 7919)).collect();
    let now = Instant::now();
    for i in 0..n {
        table.insert(PeerId(i), Location(i), link);
        table.update_location(PeerId(i), Location(i), &foaf, Location(u64::MAX), now);
    }
    if let (Some(a), Some(b)) = (before, rss_bytes()) {
        println!("memory per peer (20 FOAF locations): {} B (RSS delta over {n} peers)", b.saturating_sub(a) / n);
    }
    black_box(&table);
    drop(table);

    // Per request in flight: 200k fetches forwarded and waiting (per-peer cap lifted).
    let now = Instant::now();
    let mut node = node_with_peers(now, u32::MAX);
    let reqs = 200_000usize;
    let ks = keys(reqs);
    let before = rss_bytes();
    for (i, k) in ks.iter().enumerate() {
        request(&mut node, now, PeerId(i as u64 % PEERS), i as u64, *k);
    }
    assert_eq!(node.in_flight(), reqs);
    if let (Some(a), Some(b)) = (before, rss_bytes()) {
        println!(
            "memory per fetch in flight: {} B (RSS delta over {reqs} requests)",
            b.saturating_sub(a) / reqs as u64
        );
    }
    black_box(&node);
}

fn main() {
    if std::env::args().any(|a| a == "--bench") {
        memory_report();
    }
    let mut c = Criterion::default().configure_from_args();
    routing(&mut c);
    c.final_summary();
}
