//! Property tests: encode/decode and URI round trips, tampering, and total parsing.

use pamphlet_crypto::{
    chk, ssk, Block, BlockError, BlockKind, ChkFlags, ChkUri, CryptoKey, DecryptionKey, KskUri, PublicKeyHash,
    RoutingKey, SskInsertUri, SskPrivateKey, SskRequestUri, Uri, CHK_PAYLOAD_LEN, SSK_PAYLOAD_LEN,
};
use proptest::prelude::*;

fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9._~-]([a-zA-Z0-9._~ -]{0,22}[a-zA-Z0-9._~-])?"
}

fn uri() -> impl Strategy<Value = Uri> {
    prop_oneof![
        (any::<[u8; 32]>(), any::<[u8; 32]>(), any::<bool>(), any::<bool>(), proptest::option::of(name())).prop_map(
            |(rk, k, manifest, compressed, name)| {
                let mut u =
                    ChkUri::new(RoutingKey(rk), DecryptionKey::from_bytes(k), ChkFlags { manifest, compressed });
                u.name = name;
                Uri::Chk(u)
            }
        ),
        (any::<[u8; 32]>(), any::<[u8; 32]>(), name(), any::<u64>(), any::<bool>()).prop_map(
            |(pkh, ck, name, edition, updatable)| Uri::SskRequest(SskRequestUri {
                public_key_hash: PublicKeyHash(pkh),
                crypto_key: CryptoKey::from_bytes(ck),
                name,
                edition: if updatable { edition } else { 0 },
                updatable,
            })
        ),
        (any::<[u8; 32]>(), any::<[u8; 32]>(), name(), any::<u64>(), any::<bool>()).prop_map(
            |(seed, ck, name, edition, updatable)| Uri::SskInsert(SskInsertUri::new(
                SskPrivateKey::from_seed(seed),
                CryptoKey::from_bytes(ck),
                &name,
                if updatable { edition } else { 0 },
                updatable
            ))
        ),
        "[a-zA-Z0-9./_-]([a-zA-Z0-9./_ -]{0,38}[a-zA-Z0-9./_-])?".prop_map(|keyword| Uri::Ksk(KskUri { keyword })),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn chk_round_trip(data in proptest::collection::vec(any::<u8>(), 0..=CHK_PAYLOAD_LEN)) {
        let (block, uri) = chk::encode(&data, ChkFlags::default()).unwrap();
        prop_assert_eq!(chk::decode(&block, &uri).unwrap(), data);
        let reparsed = Uri::parse(&uri.to_string()).unwrap();
        prop_assert_eq!(reparsed, Uri::Chk(uri));
    }

    #[test]
    fn ssk_round_trip(data in proptest::collection::vec(any::<u8>(), 0..=SSK_PAYLOAD_LEN),
                      seed in any::<[u8; 32]>(), name in name(), edition in any::<u64>()) {
        let insert = SskInsertUri::new(SskPrivateKey::from_seed(seed), CryptoKey::from_bytes([9; 32]), &name, edition, true);
        let (block, request) = ssk::encode(&insert, &data).unwrap();
        block.verify(&request.routing_key()).unwrap();
        prop_assert_eq!(ssk::decode(&block, &request).unwrap(), data);
    }

    #[test]
    fn uri_round_trip(u in uri()) {
        let text = u.to_string();
        let parsed = Uri::parse(&text).unwrap();
        prop_assert_eq!(parsed.to_string(), text);
        prop_assert_eq!(parsed, u);
    }

    /// Parsing is total: arbitrary text never panics.
    #[test]
    fn parse_never_panics(s in ".{0,200}") {
        let _ = Uri::parse(&s);
    }

    /// Parsing mutated valid URIs never panics, and what parses re-formats to itself.
    #[test]
    fn mutated_uris_parse_or_error(u in uri(), pos in any::<prop::sample::Index>(), c in any::<char>()) {
        let mut chars: Vec<char> = u.to_string().chars().collect();
        let i = pos.index(chars.len());
        chars[i] = c;
        let s: String = chars.into_iter().collect();
        if let Ok(p) = Uri::parse(&s) {
            let again = Uri::parse(&p.to_string()).unwrap();
            prop_assert_eq!(again, p);
        }
    }

    /// Arbitrary bytes as a block never panic and never verify.
    #[test]
    fn random_blocks_never_verify(bytes in proptest::collection::vec(any::<u8>(), 0..2000), rk in any::<[u8; 32]>()) {
        for kind in [BlockKind::Chk, BlockKind::Ssk] {
            if let Ok(b) = Block::from_bytes(kind, bytes.clone()) {
                prop_assert!(b.verify(&RoutingKey(rk)).is_err());
            }
        }
    }
}

/// Flipping any single bit of a CHK block fails verification. Exhaustive over all
/// 262,304 bit positions (one SHA-256 of 32 KiB each).
#[test]
fn chk_every_bit_flip_fails() {
    let (block, uri) = chk::encode(b"tamper with me", ChkFlags::default()).unwrap();
    let mut bytes = block.as_bytes().to_vec();
    for byte in 0..bytes.len() {
        for bit in 0..8 {
            bytes[byte] ^= 1 << bit;
            let b = Block::from_bytes(BlockKind::Chk, bytes.clone()).unwrap();
            assert_eq!(b.verify(&uri.routing_key), Err(BlockError::RoutingKeyMismatch), "byte {byte} bit {bit}");
            bytes[byte] ^= 1 << bit;
        }
    }
}

/// Flipping any single bit of an SSK block fails verification (routing key or signature).
#[test]
fn ssk_every_bit_flip_fails() {
    let insert = SskInsertUri::new(SskPrivateKey::from_seed([1; 32]), CryptoKey::from_bytes([2; 32]), "d", 3, true);
    let (block, request) = ssk::encode(&insert, b"tamper with me").unwrap();
    let rk = request.routing_key();
    let mut bytes = block.as_bytes().to_vec();
    for byte in 0..bytes.len() {
        for bit in 0..8 {
            bytes[byte] ^= 1 << bit;
            let b = Block::from_bytes(BlockKind::Ssk, bytes.clone()).unwrap();
            assert!(b.verify(&rk).is_err(), "byte {byte} bit {bit} still verifies");
            bytes[byte] ^= 1 << bit;
        }
    }
}

/// Truncated or extended blocks are rejected by size before anything else.
#[test]
fn wrong_sizes_are_typed_errors() {
    let (block, _) = chk::encode(b"x", ChkFlags::default()).unwrap();
    let bytes = block.as_bytes();
    for len in [0, 1, bytes.len() - 1, bytes.len() + 1] {
        let mut v = bytes.to_vec();
        v.resize(len, 0);
        assert!(matches!(Block::from_bytes(BlockKind::Chk, v), Err(BlockError::WrongSize { .. })));
    }
}
