//! Content-hash keys: any plaintext of up to 32 KiB becomes one fixed-size block.
//!
//! ```text
//! plaintext P (0..=32768 bytes)
//! K  = BLAKE3-derive-key("pamphlet 2026 CHK key v1", P ‖ len_le32(P))   convergent: same P, same K
//! B  = ChaCha20-Poly1305(K, nonce 0)( P ‖ 0-padding to 32768 ‖ len_le32(P) )  → 32772 + 16 tag
//! RK = SHA-256(B)                                            what nodes route and verify on
//! URI: CHK@base64(RK),base64(K),base64(extras)
//! ```
//!
//! A fixed nonce is safe because each key encrypts exactly one plaintext: K is a hash of
//! that plaintext. K uses BLAKE3 rather than SHA-256 because encoding hashes every byte
//! twice (once for K, once for RK) and BLAKE3's SIMD tree mode makes the first pass nearly
//! free; RK stays SHA-256, the hash every node verifies with. See docs/keys.md for the byte
//! diagram, the measurements, and the trade-offs of convergence.

use std::fmt;

use crate::aead;
use sha2::{Digest, Sha256};

use crate::error::BlockError;
use crate::keys::{DecryptionKey, RoutingKey};
use crate::uri::{ChkFlags, ChkUri};

/// Largest plaintext one CHK block holds: 32 KiB.
pub const CHK_PAYLOAD_LEN: usize = 32 * 1024;
/// Bytes of the length trailer inside the ciphertext.
const LEN_FIELD: usize = 4;
/// Bytes of the Poly1305 tag.
const TAG_LEN: usize = aead::TAG_LEN;
/// Size of every CHK block on the wire and on disk.
pub const CHK_BLOCK_LEN: usize = CHK_PAYLOAD_LEN + LEN_FIELD + TAG_LEN;

/// BLAKE3 key-derivation context for the convergent key (globally unique, per BLAKE3's rules).
const KEY_CONTEXT: &str = "pamphlet 2026 CHK key v1";
/// Additional authenticated data: binds the ciphertext to this format version.
const AAD: &[u8] = b"pamphlet/chk/v1";
/// The nonce: all zeros, safe because each convergent key seals exactly one plaintext.
const NONCE: [u8; 12] = [0; 12];

/// One encrypted, self-verifying CHK block of exactly [`CHK_BLOCK_LEN`] bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct ChkBlock {
    bytes: Box<[u8]>,
}

impl ChkBlock {
    /// Wraps received bytes after checking only their length; call [`ChkBlock::verify`]
    /// before trusting the block.
    pub fn from_bytes(bytes: impl Into<Box<[u8]>>) -> Result<Self, BlockError> {
        let bytes = bytes.into();
        if bytes.len() != CHK_BLOCK_LEN {
            return Err(BlockError::WrongSize { kind: "CHK", expected: CHK_BLOCK_LEN, got: bytes.len() });
        }
        Ok(Self { bytes })
    }

    /// The block's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The routing key: SHA-256 of the block. Costs one hash of 32 KiB.
    pub fn routing_key(&self) -> RoutingKey {
        RoutingKey(Sha256::digest(&self.bytes).into())
    }

    /// Checks the block against the routing key it was requested or sent under.
    /// Any node can do this; it needs no secret.
    pub fn verify(&self, routing_key: &RoutingKey) -> Result<(), BlockError> {
        if self.routing_key() == *routing_key {
            Ok(())
        } else {
            Err(BlockError::RoutingKeyMismatch)
        }
    }
}

impl fmt::Debug for ChkBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChkBlock({} bytes)", self.bytes.len())
    }
}

/// Encrypts `plaintext` (at most 32 KiB) into a block and the URI that fetches it.
///
/// Deterministic: the same plaintext and flags always give the same block and URI.
pub fn encode(plaintext: &[u8], flags: ChkFlags) -> Result<(ChkBlock, ChkUri), BlockError> {
    if plaintext.len() > CHK_PAYLOAD_LEN {
        return Err(BlockError::TooLarge { max: CHK_PAYLOAD_LEN, got: plaintext.len() });
    }
    let len = (plaintext.len() as u32).to_le_bytes();
    // The padding is all zeros, so (len, P) determines the padded plaintext exactly; hashing
    // the padding too would only cost time.
    let key = DecryptionKey::from_bytes(convergent_key(&len, plaintext));

    let mut buf = vec![0u8; CHK_BLOCK_LEN];
    buf[..plaintext.len()].copy_from_slice(plaintext);
    buf[CHK_PAYLOAD_LEN..CHK_PAYLOAD_LEN + LEN_FIELD].copy_from_slice(&len);
    let (body, tag_out) = buf.split_at_mut(CHK_PAYLOAD_LEN + LEN_FIELD);
    tag_out.copy_from_slice(&aead::seal_in_place(key.expose(), NONCE, AAD, body));

    let block = ChkBlock { bytes: buf.into_boxed_slice() };
    let uri = ChkUri::new(block.routing_key(), key, flags);
    Ok((block, uri))
}

/// Verifies `block` against the URI's routing key, then decrypts it.
pub fn decode(block: &ChkBlock, uri: &ChkUri) -> Result<Vec<u8>, BlockError> {
    block.verify(&uri.routing_key)?;
    decrypt(block, &uri.key)
}

/// Decrypts a block already known to be genuine.
pub(crate) fn decrypt(block: &ChkBlock, key: &DecryptionKey) -> Result<Vec<u8>, BlockError> {
    let mut body = block.bytes[..CHK_PAYLOAD_LEN + LEN_FIELD].to_vec();
    let mut tag = [0u8; TAG_LEN];
    tag.copy_from_slice(&block.bytes[CHK_PAYLOAD_LEN + LEN_FIELD..]);
    aead::open_in_place(key.expose(), NONCE, AAD, &mut body, &tag).map_err(|_| BlockError::DecryptFailed)?;
    let mut len = [0u8; LEN_FIELD];
    len.copy_from_slice(&body[CHK_PAYLOAD_LEN..]);
    let len = u32::from_le_bytes(len) as usize;
    if len > CHK_PAYLOAD_LEN {
        return Err(BlockError::Malformed("length field larger than a block"));
    }
    if body[len..CHK_PAYLOAD_LEN].iter().any(|&b| b != 0) {
        return Err(BlockError::Malformed("padding is not zero"));
    }
    body.truncate(len);
    Ok(body)
}

/// The convergent key: a hash of the padded plaintext, which `(len, P)` determines.
fn convergent_key(len: &[u8; LEN_FIELD], plaintext: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key(KEY_CONTEXT);
    // Plaintext first: BLAKE3 hashes whole 1 KiB chunks in parallel only when the input is
    // chunk-aligned, and a 4-byte prefix would misalign all of it (measured: 25 µs vs 15 µs
    // per 32 KiB). (P, len) is still an injective encoding: len is the last four bytes.
    h.update(plaintext);
    h.update(len);
    *h.finalize().as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_sizes() {
        for len in [0, 1, 100, CHK_PAYLOAD_LEN - 1, CHK_PAYLOAD_LEN] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let (block, uri) = encode(&data, ChkFlags::default()).unwrap();
            assert_eq!(block.as_bytes().len(), CHK_BLOCK_LEN);
            assert_eq!(decode(&block, &uri).unwrap(), data);
        }
    }

    #[test]
    fn too_large_is_rejected() {
        let data = vec![0u8; CHK_PAYLOAD_LEN + 1];
        assert_eq!(
            encode(&data, ChkFlags::default()).unwrap_err(),
            BlockError::TooLarge { max: CHK_PAYLOAD_LEN, got: CHK_PAYLOAD_LEN + 1 }
        );
    }

    #[test]
    fn convergent() {
        let (b1, u1) = encode(b"same bytes", ChkFlags::default()).unwrap();
        let (b2, u2) = encode(b"same bytes", ChkFlags::default()).unwrap();
        assert_eq!(b1, b2);
        assert_eq!(u1, u2);
        let (_, u3) = encode(b"same bytes\0", ChkFlags::default()).unwrap();
        assert_ne!(u1.routing_key, u3.routing_key, "trailing zero must not collide with padding");
    }

    #[test]
    fn wrong_key_fails_to_decrypt() {
        let (block, mut uri) = encode(b"secret", ChkFlags::default()).unwrap();
        uri.key = DecryptionKey::from_bytes([1; 32]);
        assert_eq!(decode(&block, &uri).unwrap_err(), BlockError::DecryptFailed);
    }

    #[test]
    fn wrong_size_is_rejected() {
        assert!(matches!(ChkBlock::from_bytes(vec![0u8; 10]), Err(BlockError::WrongSize { got: 10, .. })));
    }
}
