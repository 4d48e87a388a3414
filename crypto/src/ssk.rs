//! Signed-subspace keys: small (1 KiB) signed, encrypted, updatable documents.
//!
//! ```text
//! offset  size  field
//!      0    32  ed25519 public key of the subspace
//!     32    32  hashed name  H = SHA-256("pamphlet/ssk/name/v1", crypto key, name)
//!     64     8  edition, big-endian u64
//!     72    12  nonce = SHA-256("pamphlet/ssk/nonce/v1", data key, padded body)[..12]
//!     84  1044  ChaCha20-Poly1305(data key)( P ‖ 0-padding to 1024 ‖ len_le32(P) ) ‖ tag
//!   1128    64  ed25519 signature over "pamphlet/ssk/sig/v1" ‖ bytes 0..1128
//!   1192        total
//! routing key = SHA-256("pamphlet/ssk/rk/v1", SHA-256(pubkey), H, edition)
//! data key    = SHA-256("pamphlet/ssk/data/v1", crypto key, H, edition)
//! ```
//!
//! A node checks a block with nothing but the block and its routing key: it recomputes the
//! routing key from the public key, hashed name and edition, then checks the signature.
//! Only holders of the crypto key (the request URI) can link a block to a document name or
//! read its payload. The nonce is synthetic (derived from the content), so publishing two
//! different bodies under one name and edition never reuses a keystream.

use std::fmt;

use crate::aead;
use ed25519_dalek::{Signature, Signer, VerifyingKey};

use crate::error::BlockError;
use crate::keys::{hash, ssk_name_hash, ssk_routing_key, CryptoKey, PublicKeyHash, RoutingKey, SskPublicKey};
use crate::uri::{SskInsertUri, SskRequestUri};

/// Largest plaintext one SSK block holds: 1 KiB.
pub const SSK_PAYLOAD_LEN: usize = 1024;
const PUBKEY: usize = 0;
const NAME: usize = 32;
const EDITION: usize = 64;
const NONCE: usize = 72;
const BODY: usize = 84;
const BODY_PLAIN: usize = SSK_PAYLOAD_LEN + 4;
const SIG: usize = BODY + BODY_PLAIN + 16;
/// Size of every SSK block on the wire and on disk.
pub const SSK_BLOCK_LEN: usize = SIG + 64;

const SIG_LABEL: &[u8] = b"pamphlet/ssk/sig/v1";
const AAD: &[u8] = b"pamphlet/ssk/v1";

fn data_key(crypto_key: &CryptoKey, name_hash: &[u8; 32], edition: u64) -> CryptoKey {
    CryptoKey::from_bytes(hash("pamphlet/ssk/data/v1", &[crypto_key.expose(), name_hash, &edition.to_be_bytes()]))
}

/// One signed, encrypted SSK block of exactly [`SSK_BLOCK_LEN`] bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct SskBlock {
    bytes: Box<[u8]>,
}

impl SskBlock {
    /// Wraps received bytes after checking only their length; call [`SskBlock::verify`]
    /// before trusting the block.
    pub fn from_bytes(bytes: impl Into<Box<[u8]>>) -> Result<Self, BlockError> {
        let bytes = bytes.into();
        if bytes.len() != SSK_BLOCK_LEN {
            return Err(BlockError::WrongSize { kind: "SSK", expected: SSK_BLOCK_LEN, got: bytes.len() });
        }
        Ok(Self { bytes })
    }

    /// The block's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The edition number, readable by any node.
    pub fn edition(&self) -> u64 {
        let mut e = [0u8; 8];
        e.copy_from_slice(&self.bytes[EDITION..NONCE]);
        u64::from_be_bytes(e)
    }

    fn public_key_bytes(&self) -> [u8; 32] {
        let mut k = [0u8; 32];
        k.copy_from_slice(&self.bytes[PUBKEY..NAME]);
        k
    }

    fn name_hash(&self) -> [u8; 32] {
        let mut k = [0u8; 32];
        k.copy_from_slice(&self.bytes[NAME..EDITION]);
        k
    }

    /// The routing key this block claims, derived from its public key, hashed name and
    /// edition. Cheap (three small hashes); it does not check the signature.
    pub fn routing_key(&self) -> RoutingKey {
        let pkh = PublicKeyHash(hash("pamphlet/ssk/pubkey/v1", &[&self.public_key_bytes()]));
        ssk_routing_key(&pkh, &self.name_hash(), self.edition())
    }

    /// Checks the block against the routing key it was requested or sent under, and its
    /// signature. Any node can do this; it needs no secret.
    pub fn verify(&self, routing_key: &RoutingKey) -> Result<(), BlockError> {
        if self.routing_key() != *routing_key {
            return Err(BlockError::RoutingKeyMismatch);
        }
        let key = VerifyingKey::from_bytes(&self.public_key_bytes()).map_err(|_| BlockError::BadSignature)?;
        let mut sig = [0u8; 64];
        sig.copy_from_slice(&self.bytes[SIG..]);
        let signed = [SIG_LABEL, &self.bytes[..SIG]].concat();
        key.verify_strict(&signed, &Signature::from_bytes(&sig)).map_err(|_| BlockError::BadSignature)
    }
}

impl fmt::Debug for SskBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SskBlock(edition {})", self.edition())
    }
}

/// Signs and encrypts `plaintext` (at most 1 KiB) as the document the insert URI names.
/// Returns the block and the public URI that fetches it.
pub fn encode(insert: &SskInsertUri, plaintext: &[u8]) -> Result<(SskBlock, SskRequestUri), BlockError> {
    if plaintext.len() > SSK_PAYLOAD_LEN {
        return Err(BlockError::TooLarge { max: SSK_PAYLOAD_LEN, got: plaintext.len() });
    }
    let request = insert.request_uri();
    let name_hash = ssk_name_hash(&request.crypto_key, &request.name);
    let key = data_key(&request.crypto_key, &name_hash, request.edition);

    let mut bytes = vec![0u8; SSK_BLOCK_LEN];
    bytes[PUBKEY..NAME].copy_from_slice(&insert.private_key.public_key().to_bytes());
    bytes[NAME..EDITION].copy_from_slice(&name_hash);
    bytes[EDITION..NONCE].copy_from_slice(&request.edition.to_be_bytes());
    let body = &mut bytes[BODY..BODY + BODY_PLAIN];
    body[..plaintext.len()].copy_from_slice(plaintext);
    body[SSK_PAYLOAD_LEN..].copy_from_slice(&(plaintext.len() as u32).to_le_bytes());
    let nonce_full = hash("pamphlet/ssk/nonce/v1", &[key.expose(), body]);
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&nonce_full[..12]);
    let tag = aead::seal_in_place(key.expose(), nonce, AAD, body);
    bytes[NONCE..BODY].copy_from_slice(&nonce);
    bytes[BODY + BODY_PLAIN..SIG].copy_from_slice(&tag);
    let signed = [SIG_LABEL, &bytes[..SIG]].concat();
    let sig = insert.private_key.signing_key().sign(&signed);
    bytes[SIG..].copy_from_slice(&sig.to_bytes());

    Ok((SskBlock { bytes: bytes.into_boxed_slice() }, request))
}

/// Verifies `block` against the request URI (routing key, signature, publisher) and
/// decrypts it.
pub fn decode(block: &SskBlock, request: &SskRequestUri) -> Result<Vec<u8>, BlockError> {
    let public = VerifyingKey::from_bytes(&block.public_key_bytes()).map_err(|_| BlockError::BadSignature)?;
    if SskPublicKey(public).hash() != request.public_key_hash {
        return Err(BlockError::WrongPublicKey);
    }
    block.verify(&request.routing_key())?;
    let name_hash = block.name_hash();
    let key = data_key(&request.crypto_key, &name_hash, block.edition());
    let mut body = block.bytes[BODY..BODY + BODY_PLAIN].to_vec();
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&block.bytes[NONCE..BODY]);
    let mut tag = [0u8; aead::TAG_LEN];
    tag.copy_from_slice(&block.bytes[BODY + BODY_PLAIN..SIG]);
    aead::open_in_place(key.expose(), nonce, AAD, &mut body, &tag).map_err(|_| BlockError::DecryptFailed)?;
    let mut len = [0u8; 4];
    len.copy_from_slice(&body[SSK_PAYLOAD_LEN..]);
    let len = u32::from_le_bytes(len) as usize;
    if len > SSK_PAYLOAD_LEN {
        return Err(BlockError::Malformed("length field larger than a block"));
    }
    if body[len..SSK_PAYLOAD_LEN].iter().any(|&b| b != 0) {
        return Err(BlockError::Malformed("padding is not zero"));
    }
    body.truncate(len);
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SskPrivateKey;

    fn insert_uri(name: &str, edition: u64) -> SskInsertUri {
        SskInsertUri::new(SskPrivateKey::from_seed([3; 32]), CryptoKey::from_bytes([4; 32]), name, edition, edition > 0)
    }

    #[test]
    fn round_trip() {
        for len in [0, 1, 500, SSK_PAYLOAD_LEN] {
            let data = vec![0x5a; len];
            let (block, req) = encode(&insert_uri("doc", 0), &data).unwrap();
            assert_eq!(block.as_bytes().len(), SSK_BLOCK_LEN);
            block.verify(&req.routing_key()).unwrap();
            assert_eq!(decode(&block, &req).unwrap(), data);
        }
    }

    #[test]
    fn editions_have_distinct_routing_keys() {
        let (b1, r1) = encode(&insert_uri("doc", 1), b"v1").unwrap();
        let (b2, r2) = encode(&insert_uri("doc", 2), b"v2").unwrap();
        assert_ne!(r1.routing_key(), r2.routing_key());
        assert_eq!(b1.edition(), 1);
        assert_eq!(b2.edition(), 2);
        assert_eq!(b2.verify(&r1.routing_key()), Err(BlockError::RoutingKeyMismatch));
    }

    #[test]
    fn other_publisher_is_rejected() {
        let (block, _) = encode(&insert_uri("doc", 0), b"x").unwrap();
        let other =
            SskInsertUri::new(SskPrivateKey::from_seed([9; 32]), CryptoKey::from_bytes([4; 32]), "doc", 0, false);
        assert_eq!(decode(&block, &other.request_uri()), Err(BlockError::WrongPublicKey));
    }

    #[test]
    fn wrong_crypto_key_cannot_find_or_read() {
        let (block, mut req) = encode(&insert_uri("doc", 0), b"x").unwrap();
        req.crypto_key = CryptoKey::from_bytes([5; 32]);
        // A different crypto key hashes the name differently, so the routing key differs.
        assert_eq!(decode(&block, &req), Err(BlockError::RoutingKeyMismatch));
    }

    #[test]
    fn too_large() {
        assert!(matches!(encode(&insert_uri("d", 0), &[0; SSK_PAYLOAD_LEN + 1]), Err(BlockError::TooLarge { .. })));
    }
}
