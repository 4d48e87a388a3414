//! ChaCha20-Poly1305 (RFC 8439) for block bodies and store entries, through ring.
//!
//! One algorithm, one implementation for every place pamphlet seals 32 KiB: CHK and SSK
//! blocks (client side) and the store's entries (at every node a block passes, on each
//! cache write and each read). ring's seals 32 KiB at 2.39 GiB/s on this machine against
//! 1.46 GiB/s for the RustCrypto crate (`cargo bench -p pamphlet-crypto --bench crypto -- raw`,
//! docs/benchmarks.md), and the output is the same RFC 8439 bytes, so formats do not change.

use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, CHACHA20_POLY1305};

/// Bytes of a Poly1305 tag.
pub const TAG_LEN: usize = 16;

/// The tag did not verify: wrong key, nonce or associated data, or damaged bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFailed;

fn key(k: &[u8; 32]) -> LessSafeKey {
    // A 32-byte key is exactly what CHACHA20_POLY1305 takes: this cannot fail.
    #[allow(clippy::expect_used)]
    LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, k).expect("a 32-byte ChaCha20 key"))
}

/// Encrypts `buf` in place under `k` and `nonce`, binding `aad`; returns the tag.
///
/// The caller guarantees `(k, nonce)` never seals two different plaintexts.
pub fn seal_in_place(k: &[u8; 32], nonce: [u8; 12], aad: &[u8], buf: &mut [u8]) -> [u8; TAG_LEN] {
    // Sealing fails only for inputs beyond ChaCha20's 256 GiB limit; blocks are at most 32 KiB.
    #[allow(clippy::expect_used)]
    let tag = key(k)
        .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), buf)
        .expect("a block is far below ChaCha20's length limit");
    let mut out = [0u8; TAG_LEN];
    out.copy_from_slice(tag.as_ref());
    out
}

/// Decrypts `buf` in place if `tag` verifies under `k`, `nonce` and `aad`. On failure
/// `buf` holds unspecified bytes (ring zeroes nothing it did not authenticate, but the
/// caller must not use them).
pub fn open_in_place(
    k: &[u8; 32],
    nonce: [u8; 12],
    aad: &[u8],
    buf: &mut [u8],
    tag: &[u8; TAG_LEN],
) -> Result<(), OpenFailed> {
    key(k)
        .open_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), Tag::from(*tag), buf, 0..)
        .map(|_| ())
        .map_err(|_| OpenFailed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chacha20poly1305::aead::AeadInPlace;
    use chacha20poly1305::{ChaCha20Poly1305, KeyInit};

    /// ring and the RustCrypto crate produce the same bytes and open each other's output:
    /// blocks and store entries written before the switch still read.
    #[test]
    fn ring_and_rustcrypto_agree_on_every_byte() {
        let k = [7u8; 32];
        let nonce = [3u8; 12];
        for len in [0usize, 1, 63, 64, 1024, 32 * 1024] {
            let plain: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let mut ours = plain.clone();
            let tag = seal_in_place(&k, nonce, b"aad", &mut ours);
            let mut theirs = plain.clone();
            let their_tag = ChaCha20Poly1305::new((&k).into())
                .encrypt_in_place_detached((&nonce).into(), b"aad", &mut theirs)
                .unwrap();
            assert_eq!(ours, theirs, "ciphertext, {len} bytes");
            assert_eq!(tag.as_slice(), their_tag.as_slice(), "tag, {len} bytes");
            open_in_place(&k, nonce, b"aad", &mut theirs, &tag).unwrap();
            assert_eq!(theirs, plain);
        }
    }

    #[test]
    fn a_wrong_tag_key_nonce_or_aad_fails_to_open() {
        let k = [1u8; 32];
        let mut buf = vec![9u8; 100];
        let tag = seal_in_place(&k, [0; 12], b"a", &mut buf);
        let sealed = buf.clone();
        let mut bad_tag = tag;
        bad_tag[0] ^= 1;
        for (key, nonce, aad, tag) in [
            ([2u8; 32], [0u8; 12], &b"a"[..], tag),
            (k, [1u8; 12], &b"a"[..], tag),
            (k, [0u8; 12], &b"b"[..], tag),
            (k, [0u8; 12], &b"a"[..], bad_tag),
        ] {
            let mut b = sealed.clone();
            assert_eq!(open_in_place(&key, nonce, aad, &mut b, &tag), Err(OpenFailed));
        }
        let mut flipped = sealed.clone();
        flipped[50] ^= 0x80;
        assert_eq!(open_in_place(&k, [0; 12], b"a", &mut flipped, &tag), Err(OpenFailed));
    }
}
