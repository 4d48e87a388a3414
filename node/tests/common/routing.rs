//! Helpers of the deterministic routing tests (`routing.rs`, `routing_defences.rs`).

use pamphlet_crypto::{chk, Block, ChkFlags, RoutingKey};
use pamphlet_node::location::Location;
use pamphlet_node::wire::Message;

/// The seeds every routing test runs over (unless `PAMPHLET_SEED` picks one).
pub(crate) const SEEDS: &[u64] = &[1, 2, 3];

pub(crate) fn chk_block(i: u32) -> (RoutingKey, Block) {
    let (b, _) = chk::encode(format!("block {i}").as_bytes(), ChkFlags::default()).unwrap();
    let b = Block::Chk(b);
    (b.routing_key(), b)
}

pub(crate) fn key_loc(key: &RoutingKey) -> f64 {
    Location::of_key(key).as_f64()
}

pub(crate) fn is_request(m: &Message) -> bool {
    matches!(m, Message::DataRequest { .. })
}

pub(crate) fn is_insert(m: &Message) -> bool {
    matches!(m, Message::InsertRequest { .. })
}

pub(crate) fn chain(ids: &[usize]) -> Vec<(usize, usize)> {
    ids.windows(2).map(|w| (w[0], w[1])).collect()
}
