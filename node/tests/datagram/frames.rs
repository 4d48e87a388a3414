//! Frame bodies for the datagram tests: each names its stream and index and carries bytes
//! derived from the index, so an altered or misdelivered frame shows.

use pamphlet_node::wire::frame::BODY_LEN;

/// Frame `i`'s body: stream `stream` (bytes 1..3; 0: a single-frame message), its index
/// (5..13), then bytes derived from the index.
pub(crate) fn body(i: u64, stream: u16) -> [u8; BODY_LEN] {
    let mut b = [0u8; BODY_LEN];
    b[1..3].copy_from_slice(&stream.to_be_bytes());
    b[5..13].copy_from_slice(&i.to_be_bytes());
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for byte in &mut b[13..] {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *byte = x as u8;
    }
    b
}

/// The index a body made by [`body`] names.
pub(crate) fn index_of(b: &[u8; BODY_LEN]) -> u64 {
    u64::from_be_bytes(b[5..13].try_into().unwrap())
}
