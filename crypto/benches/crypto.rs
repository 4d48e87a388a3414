//! CHK/SSK throughput next to the primitives that bound it.
//!
//! `cargo bench -p pamphlet-crypto --bench crypto`
//!
//! CHK encode costs one BLAKE3 pass over the plaintext (the convergent key), one
//! ChaCha20-Poly1305 seal and one SHA-256 pass over the ciphertext (the routing key); the
//! `raw/` rows measure the primitives alone (the AEAD both as the RustCrypto crate and as ring,
//! which the blocks use) on the same 32 KiB buffers so the ratio can
//! be read off one run. See docs/benchmarks.md.

#![allow(missing_docs)]

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use pamphlet_crypto::{chk, ssk, ChkFlags, CryptoKey, SskInsertUri, SskPrivateKey, CHK_PAYLOAD_LEN};
use sha2::{Digest, Sha256};

fn raw(c: &mut Criterion) {
    let mut g = c.benchmark_group("raw");
    g.throughput(Throughput::Bytes(CHK_PAYLOAD_LEN as u64));
    let mut buf = vec![0x42u8; CHK_PAYLOAD_LEN];
    let aead = ChaCha20Poly1305::new(&[7u8; 32].into());
    g.bench_function("chacha20poly1305_seal_32k", |b| {
        b.iter(|| aead.encrypt_in_place_detached(&Nonce::default(), b"", black_box(&mut buf)).unwrap())
    });
    // What blocks and store entries use (ring, `pamphlet_crypto::aead`), beside the crate above.
    g.bench_function("ring_chacha20poly1305_seal_32k", |b| {
        b.iter(|| pamphlet_crypto::aead::seal_in_place(&[7u8; 32], [0; 12], b"", black_box(&mut buf)))
    });
    let data = vec![0x42u8; CHK_PAYLOAD_LEN];
    g.bench_function("sha256_32k", |b| b.iter(|| Sha256::digest(black_box(&data))));
    g.bench_function("blake3_32k", |b| b.iter(|| blake3::hash(black_box(&data))));
    g.finish();
}

fn chk_bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("chk");
    g.throughput(Throughput::Bytes(CHK_PAYLOAD_LEN as u64));
    let data: Vec<u8> = (0..CHK_PAYLOAD_LEN).map(|i| (i * 31 % 251) as u8).collect();
    // Steady state of an insert pipeline: the last 64 blocks are alive (queued to send), and
    // each new block reuses the memory of one sent. Dropping each block at once instead lets
    // glibc return the memory to the kernel every iteration, and keeping every block (as
    // criterion's `iter_with_large_drop` does) grows the heap every iteration; either way
    // each encode then pays page faults (~30 µs in this VM) that a running node does not.
    let mut live = std::collections::VecDeque::with_capacity(65);
    g.bench_function("encode_32k", |b| {
        b.iter(|| {
            live.push_back(chk::encode(black_box(&data), ChkFlags::default()).unwrap());
            if live.len() > 64 {
                live.pop_front();
            }
        })
    });
    let (block, uri) = chk::encode(&data, ChkFlags::default()).unwrap();
    g.bench_function("decode_32k", |b| b.iter(|| chk::decode(black_box(&block), &uri).unwrap()));
    g.bench_function("verify_32k", |b| b.iter(|| block.verify(black_box(&uri.routing_key)).unwrap()));
    g.finish();
}

fn ssk_bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("ssk");
    g.throughput(Throughput::Elements(1));
    let insert = SskInsertUri::new(SskPrivateKey::from_seed([1; 32]), CryptoKey::from_bytes([2; 32]), "doc", 0, false);
    let data = vec![0x11u8; 1024];
    g.bench_function("sign_encode", |b| b.iter(|| ssk::encode(&insert, black_box(&data)).unwrap()));
    let (block, req) = ssk::encode(&insert, &data).unwrap();
    let rk = req.routing_key();
    g.bench_function("verify", |b| b.iter(|| block.verify(black_box(&rk)).unwrap()));
    g.finish();
}

criterion_group!(benches, raw, chk_bench, ssk_bench);
criterion_main!(benches);
