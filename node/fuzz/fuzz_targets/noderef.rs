//! Arbitrary text into the node-reference parser, and arbitrary bytes that decode to an
//! `AddressRecord` message into the record check. Neither may panic; a reference that
//! parses prints back to text that parses to the same reference.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pamphlet_node::link::{AddressRecord, NodeRef, PublicKey};
use pamphlet_node::wire::{decode, Message};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(r) = text.parse::<NodeRef>() {
            assert_eq!(r.to_string().parse::<NodeRef>().ok(), Some(r));
        }
    }
    if let Ok(Message::AddressRecord { seq, addresses, signature }) = decode(data) {
        let _ = AddressRecord::from_wire(&PublicKey([9; 32]), seq, &addresses, &signature);
    }
});
