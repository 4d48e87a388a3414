//! Arbitrary bytes into the message decoder, and into the frame reassembler as a run of
//! frame bodies. Neither may panic; whatever decodes must re-encode to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pamphlet_node::wire::frame::{FrameReader, BODY_LEN};
use pamphlet_node::wire::{decode, encode};

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = decode(data) {
        // postcard is canonical for our types: a decoded message re-encodes to its input.
        assert_eq!(encode(&msg).ok().as_deref(), Some(data));
    }
    let mut reader = FrameReader::new();
    for body in data.chunks(BODY_LEN) {
        if reader.read_frame(body).is_err() {
            break;
        }
    }
});
