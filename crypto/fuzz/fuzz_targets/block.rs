//! Block decoding and verification never panic on arbitrary bytes, and arbitrary bytes
//! never verify against an arbitrary routing key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pamphlet_crypto::{Block, BlockKind, RoutingKey};

fuzz_target!(|data: &[u8]| {
    if data.len() < 33 {
        return;
    }
    let kind = if data[0] & 1 == 0 { BlockKind::Chk } else { BlockKind::Ssk };
    let mut rk = [0u8; 32];
    rk.copy_from_slice(&data[1..33]);
    let body = &data[33..];
    // Pad or cut to the kind's size so verification code runs, not just the size check.
    let mut bytes = body.to_vec();
    bytes.resize(kind.block_len(), 0);
    let block = Block::from_bytes(kind, bytes).expect("sized to fit");
    assert!(block.verify(&RoutingKey(rk)).is_err() || block.routing_key() == RoutingKey(rk));
    let _ = Block::from_bytes(kind, body.to_vec());
});
