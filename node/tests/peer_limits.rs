//! Per-peer limits against one neighbour running modified code (issue 14, item 9), on the
//! `sim::network::Network` harness (feature `sim`): what a friend can make a node spend
//! stays within that friend's share. Same conventions as `routing.rs`.

// Tests drive the harness with the real clock as the base of virtual time.
#![allow(clippy::disallowed_methods)]

mod common;

use std::time::Instant;

use common::routing::{chk_block, SEEDS};
use common::seeds;
use pamphlet_crypto::{ssk, Block, BlockKind, CryptoKey, SskInsertUri, SskPrivateKey};
use pamphlet_node::id::PeerId;
use pamphlet_node::sim::network::{silent, Network};
use pamphlet_node::wire::Message;

/// Friend 1 fills its share of node 0's requests (inserts that node 0 forwards to the
/// silent node 2, so they stay in flight), then sends SSK inserts with broken signatures.
/// Node 0 answers them `RejectedOverload` without verifying a signature: the check of a
/// block comes after the per-peer limit. Before, each cost a signature check (and counted
/// as a forgery).
#[test]
fn a_peer_past_its_limit_costs_no_signature_checks() {
    for seed in seeds(SEEDS) {
        let mut net = Network::new(seed, Instant::now());
        for x in [0.0, 0.5, 0.25] {
            net.add_node(x);
        }
        net.connect(0, 1);
        net.connect(0, 2);
        net.set_filter(2, Box::new(silent));
        net.run();
        let cap = net.node(0).config().max_requests_per_peer;
        for i in 0..cap {
            let (_, block) = chk_block(5_000 + i);
            net.inject(1, 0, Message::InsertRequest { id: u64::from(i), htl: 10, block, top: false });
        }
        net.run_for(std::time::Duration::from_secs(1));
        assert_eq!(net.node(0).peer(PeerId(1)).map(|p| p.in_flight), Some(cap), "seed {seed}");
        let uri = SskInsertUri::new(SskPrivateKey::from_seed([7; 32]), CryptoKey::from_bytes([9; 32]), "x", 0, false);
        let good = ssk::encode(&uri, b"hello").unwrap().0;
        let mut bytes = good.as_bytes().to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let forged = Block::from_bytes(BlockKind::Ssk, bytes).unwrap();
        net.clear_transcript();
        for id in 0..100u64 {
            net.inject(1, 0, Message::InsertRequest { id: 1_000 + id, htl: 10, block: forged.clone(), top: false });
        }
        net.run_for(std::time::Duration::from_secs(1));
        let overload =
            net.transcript().iter().filter(|s| s.from == 0 && matches!(s.msg, Message::RejectedOverload { .. }));
        assert_eq!(overload.count(), 100, "seed {seed}");
        assert_eq!(net.node(0).stats().forged_blocks, 0, "seed {seed}: no signature was checked");
    }
}
