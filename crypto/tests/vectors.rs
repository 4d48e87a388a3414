//! Known-answer vectors: a refactor that changes one output byte of CHK, SSK or KSK
//! encoding fails here.
//!
//! The vectors live in `tests/vectors/keys.json`. They were produced by this file with
//! `PAMPHLET_WRITE_VECTORS=1 cargo test -p pamphlet-crypto --test vectors`; regenerate them
//! only for a deliberate format change, together with a new format version.

use pamphlet_crypto::{chk, ssk, Block, ChkFlags, CryptoKey, KskUri, SskInsertUri, SskPrivateKey, Uri};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/keys.json");

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 131 + 7) as u8).collect()
}

/// Computes every vector from its inputs.
fn compute() -> Value {
    let mut chks = Vec::new();
    for (len, flags) in [
        (0usize, ChkFlags::default()),
        (5, ChkFlags::default()),
        (1000, ChkFlags { manifest: true, compressed: false }),
        (32 * 1024, ChkFlags { manifest: false, compressed: true }),
    ] {
        let data = pattern(len);
        let (block, uri) = chk::encode(&data, flags).unwrap();
        chks.push(json!({
            "plaintext_len": len,
            "plaintext_pattern": "byte i = (i*131+7) mod 256",
            "manifest": flags.manifest,
            "compressed": flags.compressed,
            "uri": uri.to_string(),
            "block_sha256": hex::encode(Sha256::digest(block.as_bytes())),
            "block_head_hex": hex::encode(&block.as_bytes()[..64]),
        }));
    }
    let mut ssks = Vec::new();
    for (seed, ck, name, edition, updatable, len) in
        [(1u8, 2u8, "index", 0u64, false, 0usize), (3, 4, "blog", 7, true, 300), (5, 6, "full", 1, true, 1024)]
    {
        let insert = SskInsertUri::new(
            SskPrivateKey::from_seed([seed; 32]),
            CryptoKey::from_bytes([ck; 32]),
            name,
            edition,
            updatable,
        );
        let data = pattern(len);
        let (block, request) = ssk::encode(&insert, &data).unwrap();
        ssks.push(json!({
            "seed_byte": seed,
            "crypto_key_byte": ck,
            "name": name,
            "edition": edition,
            "plaintext_len": len,
            "insert_uri": insert.to_string(),
            "request_uri": request.to_string(),
            "routing_key_hex": hex::encode(request.routing_key().as_bytes()),
            "block_hex": hex::encode(block.as_bytes()),
        }));
    }
    let mut ksks = Vec::new();
    for word in ["freedom.txt", "pamphlet"] {
        let k = KskUri { keyword: word.into() };
        let (block, request) = ssk::encode(&k.insert_uri(), word.as_bytes()).unwrap();
        ksks.push(json!({
            "keyword": word,
            "request_uri": request.to_string(),
            "routing_key_hex": hex::encode(request.routing_key().as_bytes()),
            "block_sha256": hex::encode(Sha256::digest(block.as_bytes())),
        }));
    }
    json!({ "format": 1, "chk": chks, "ssk": ssks, "ksk": ksks })
}

#[test]
fn known_answers() {
    let computed = compute();
    if std::env::var_os("PAMPHLET_WRITE_VECTORS").is_some() {
        std::fs::write(PATH, serde_json::to_string_pretty(&computed).unwrap() + "\n").unwrap();
    }
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(PATH).unwrap()).unwrap();
    for section in ["chk", "ssk", "ksk"] {
        let (s, c) = (stored[section].as_array().unwrap(), computed[section].as_array().unwrap());
        assert_eq!(s.len(), c.len(), "{section}: vector count");
        for (i, (s, c)) in s.iter().zip(c).enumerate() {
            assert_eq!(s, c, "{section} vector {i} changed: the encoding is no longer byte-identical");
        }
    }
}

#[test]
fn stored_vectors_decode() {
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(PATH).unwrap()).unwrap();
    for v in stored["ssk"].as_array().unwrap() {
        let bytes = hex::decode(v["block_hex"].as_str().unwrap()).unwrap();
        let Uri::SskRequest(req) = Uri::parse(v["request_uri"].as_str().unwrap()).unwrap() else { panic!() };
        let block = pamphlet_crypto::SskBlock::from_bytes(bytes).unwrap();
        Block::Ssk(block.clone()).verify(&req.routing_key()).unwrap();
        let data = ssk::decode(&block, &req).unwrap();
        assert_eq!(data, pattern(v["plaintext_len"].as_u64().unwrap() as usize));
    }
}
