//! Proptest strategies for messages, shared by the wire unit tests.

use pamphlet_crypto::{Block, BlockKind, RoutingKey};
use proptest::prelude::*;
use rand::RngCore;
use rand_chacha::rand_core::SeedableRng;

use super::message::{Message, Reference, MAX_OFFERED_KEYS, MAX_REFERENCE_LEN};
use crate::location::Location;

/// How many variants [`arb_message`] covers. The exhaustive match in [`variant_index`]
/// stops compiling when a variant is added, as a reminder to extend the strategy.
pub(crate) const VARIANTS: usize = 24;

/// The index of a message's variant (exhaustive on purpose, see [`VARIANTS`]).
pub(crate) fn variant_index(m: &Message) -> usize {
    match m {
        Message::DataRequest { .. } => 0,
        Message::DataFound { .. } => 1,
        Message::DataNotFound { .. } => 2,
        Message::RouteNotFound { .. } => 3,
        Message::RejectedLoop { .. } => 4,
        Message::RejectedOverload { .. } => 5,
        Message::InsertRequest { .. } => 6,
        Message::InsertReply { .. } => 7,
        Message::InsertCollision { .. } => 8,
        Message::SwapRequest { .. } => 9,
        Message::SwapReply { .. } => 10,
        Message::SwapReveal { .. } => 11,
        Message::SwapRejected { .. } => 12,
        Message::LocationUpdate { .. } => 13,
        Message::Keepalive => 14,
        Message::Accepted { .. } => 15,
        Message::AddressRecord { .. } => 16,
        Message::Announce { .. } => 17,
        Message::AnnounceReply { .. } => 18,
        Message::AnnounceDone { .. } => 19,
        Message::FoldOffer { .. } => 20,
        Message::StoreFull { .. } => 21,
        Message::OfferKeys { .. } => 22,
        Message::WantKeys { .. } => 23,
    }
}

/// A block of the given kind with seeded random bytes (only the size is checked).
pub(crate) fn block(kind: BlockKind, seed: u64) -> Block {
    let mut bytes = vec![0u8; kind.block_len()];
    rand_chacha::ChaCha8Rng::seed_from_u64(seed).fill_bytes(&mut bytes);
    Block::from_bytes(kind, bytes).unwrap()
}

/// A `DataFound` carrying a 32 KiB CHK block.
pub(crate) fn big_block_message(seed: u64) -> Message {
    Message::DataFound { id: seed, block: block(BlockKind::Chk, seed) }
}

fn arb_kind() -> impl Strategy<Value = BlockKind> {
    prop_oneof![Just(BlockKind::Chk), Just(BlockKind::Ssk)]
}

fn arb_block() -> impl Strategy<Value = Block> {
    (arb_kind(), any::<u64>()).prop_map(|(k, s)| block(k, s))
}

fn arb_keys() -> impl Strategy<Value = Vec<(BlockKind, RoutingKey)>> {
    proptest::collection::vec((arb_kind(), any::<[u8; 32]>().prop_map(RoutingKey)), 0..=MAX_OFFERED_KEYS)
}

fn arb_locations() -> impl Strategy<Value = Vec<Location>> {
    proptest::collection::vec(any::<u64>().prop_map(Location), 0..40)
}

fn arb_reference() -> impl Strategy<Value = Reference> {
    proptest::collection::vec(any::<u8>(), 0..=MAX_REFERENCE_LEN).prop_map(|b| Reference::new(b).unwrap())
}

/// Any message, every variant.
pub(crate) fn arb_message() -> impl Strategy<Value = Message> {
    let id = any::<u64>;
    prop_oneof![
        (id(), arb_kind(), any::<[u8; 32]>(), any::<u8>()).prop_map(|(id, kind, k, htl)| Message::DataRequest {
            id,
            kind,
            key: RoutingKey(k),
            htl
        }),
        (id(), arb_block()).prop_map(|(id, block)| Message::DataFound { id, block }),
        (id(), any::<u8>()).prop_map(|(id, htl)| Message::DataNotFound { id, htl }),
        (id(), any::<u8>()).prop_map(|(id, htl)| Message::RouteNotFound { id, htl }),
        id().prop_map(|id| Message::RejectedLoop { id }),
        id().prop_map(|id| Message::RejectedOverload { id }),
        (id(), any::<u8>(), arb_block(), any::<bool>()).prop_map(|(id, htl, block, top)| Message::InsertRequest {
            id,
            htl,
            block,
            top
        }),
        id().prop_map(|id| Message::InsertReply { id }),
        (id(), arb_block()).prop_map(|(id, block)| Message::InsertCollision { id, block }),
        (id(), any::<u8>(), any::<[u8; 32]>()).prop_map(|(id, htl, commitment)| Message::SwapRequest {
            id,
            htl,
            commitment
        }),
        (id(), any::<[u8; 32]>()).prop_map(|(id, commitment)| Message::SwapReply { id, commitment }),
        (id(), any::<u64>(), arb_locations(), any::<u32>(), any::<[u8; 32]>()).prop_map(
            |(id, l, neighbours, age, random)| Message::SwapReveal {
                id,
                location: Location(l),
                neighbours,
                age,
                random
            }
        ),
        id().prop_map(|id| Message::SwapRejected { id }),
        (any::<u64>(), arb_locations())
            .prop_map(|(l, neighbours)| Message::LocationUpdate { location: Location(l), neighbours }),
        Just(Message::Keepalive),
        id().prop_map(|id| Message::Accepted { id }),
        (any::<u64>(), proptest::collection::vec("[a-z0-9.:\\[\\]-]{0,40}", 0..10), any::<[[u8; 32]; 2]>())
            .prop_map(|(seq, addresses, signature)| Message::AddressRecord { seq, addresses, signature }),
        (id(), any::<u8>(), any::<u64>(), arb_reference()).prop_map(|(id, htl, l, reference)| Message::Announce {
            id,
            htl,
            location: Location(l),
            reference
        }),
        (id(), any::<u64>(), arb_reference()).prop_map(|(id, l, reference)| Message::AnnounceReply {
            id,
            location: Location(l),
            reference
        }),
        id().prop_map(|id| Message::AnnounceDone { id }),
        (id(), any::<u64>(), arb_reference()).prop_map(|(id, l, reference)| Message::FoldOffer {
            id,
            location: Location(l),
            reference
        }),
        id().prop_map(|id| Message::StoreFull { id }),
        (id(), arb_keys()).prop_map(|(id, keys)| Message::OfferKeys { id, keys }),
        (id(), arb_keys()).prop_map(|(id, wanted)| Message::WantKeys { id, wanted }),
    ]
}
