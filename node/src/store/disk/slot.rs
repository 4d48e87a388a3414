//! One slot: the byte layout of its header and body, and how an entry is sealed into it
//! and opened from it. Where headers and bodies sit in the file: `layout.rs`.
//!
//! ```text
//! header (96 bytes, in its group's header page)
//! offset  size  field
//!      0    32  D     = SHA-256(label "pamphlet/store/digest/v1", salt, kind, routing key)
//!     32     8  stamp   LRU access stamp, u64 little-endian (store-wide counter)
//!     40    12  nonce   random, drawn per write (stores written before 2026-12 derived
//!                       it from K, and from the block for an SSK; those still open)
//!     52    16  tag     Poly1305 tag of the body
//!     68    12  reserved, zero
//!     80    16  MAC   = SHA-256(label "pamphlet/store/mac/v1", mac key, file id, slot index,
//!                             bytes 0..80)[..16]
//! body (block length, at its body offset)
//!      0     n  ChaCha20-Poly1305(K, nonce, aad "pamphlet/store/v1" ‖ kind)(block)
//! K = SHA-256(label "pamphlet/store/key/v1", salt, kind, routing key)
//! n = 32788 (CHK) or 1192 (SSK)
//! ```
//!
//! The MAC needs no routing key, so a scan at open can tell a whole header from a torn,
//! zeroed or foreign one. The AEAD needs the routing key, so only someone who already
//! knows it can decrypt the entry; `get` checks the tag and then verifies the block
//! against its routing key before returning it. See docs/store.md.

use pamphlet_crypto::aead;
use pamphlet_crypto::{Block, BlockKind, RoutingKey};
use sha2::{Digest as _, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::store::Area;

/// Bytes of a slot header.
pub const SLOT_HEADER_LEN: usize = 96;

const DIGEST: usize = 0;
const STAMP: usize = 32;
const NONCE: usize = 40;
const TAG: usize = 52;
const MAC: usize = 80;
const MAC_LEN: usize = 16;

const AAD_LABEL: &[u8] = b"pamphlet/store/v1";

/// The one-way digest of a routing key that slots and the in-memory index are keyed by.
pub(crate) type Digest = [u8; 32];

/// Which of the four slot files (area × kind) a slot lives in; bound into every MAC so a
/// header copied to another file or position does not verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileId {
    pub(crate) area: Area,
    pub(crate) kind: BlockKind,
}

impl FileId {
    /// All four files, in the order the store keeps them (store area first).
    pub(crate) const ALL: [FileId; 4] = [
        FileId { area: Area::Store, kind: BlockKind::Chk },
        FileId { area: Area::Store, kind: BlockKind::Ssk },
        FileId { area: Area::Cache, kind: BlockKind::Chk },
        FileId { area: Area::Cache, kind: BlockKind::Ssk },
    ];

    /// Position in [`FileId::ALL`].
    pub(crate) fn index(self) -> usize {
        match (self.area, self.kind) {
            (Area::Store, BlockKind::Chk) => 0,
            (Area::Store, BlockKind::Ssk) => 1,
            (Area::Cache, BlockKind::Chk) => 2,
            (Area::Cache, BlockKind::Ssk) => 3,
        }
    }

    /// The file's name inside the data directory.
    pub(crate) fn file_name(self) -> &'static str {
        ["store-chk.slots", "store-ssk.slots", "cache-chk.slots", "cache-ssk.slots"][self.index()]
    }
}

fn kind_byte(kind: BlockKind) -> u8 {
    match kind {
        BlockKind::Chk => 1,
        BlockKind::Ssk => 2,
    }
}

/// SHA-256 over a length-prefixed label and fixed-length parts (the crypto crate's scheme).
fn hash(label: &str, parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([label.len() as u8]);
    h.update(label.as_bytes());
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// The store's secrets, derived from the 32-byte store secret in the header file.
///
/// Both live on the same disk as the slots: the salt makes digests and keys differ between
/// stores (no precomputed tables, no linking two seized disks), the MAC key gives integrity
/// against torn or random damage. Neither gives secrecy against whoever holds the disk;
/// secrecy comes from the routing key, which the disk never holds.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct StoreKeys {
    salt: [u8; 32],
    mac_key: [u8; 32],
}

impl StoreKeys {
    /// Derives the salt and MAC key from the store secret.
    pub(crate) fn from_secret(secret: &[u8; 32]) -> Self {
        Self { salt: hash("pamphlet/store/salt/v1", &[secret]), mac_key: hash("pamphlet/store/mac-key/v1", &[secret]) }
    }

    /// D: what the index and the slot header hold instead of the routing key.
    pub(crate) fn digest(&self, kind: BlockKind, key: &RoutingKey) -> Digest {
        hash("pamphlet/store/digest/v1", &[&self.salt, &[kind_byte(kind)], key.as_bytes()])
    }

    /// K: the entry's encryption key.
    fn entry_key(&self, kind: BlockKind, key: &RoutingKey) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(hash("pamphlet/store/key/v1", &[&self.salt, &[kind_byte(kind)], key.as_bytes()]))
    }

    /// A salted position in `0..n`, where a free-slot search for `digest` starts.
    pub(crate) fn placement(&self, digest: &Digest, n: u32) -> u32 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&digest[24..32]);
        if n == 0 {
            0
        } else {
            (u64::from_le_bytes(b) % u64::from(n)) as u32
        }
    }

    fn mac(&self, file: FileId, slot: u32, header: &[u8]) -> [u8; MAC_LEN] {
        let id = [file.index() as u8];
        let full = hash("pamphlet/store/mac/v1", &[&self.mac_key, &id, &slot.to_le_bytes(), &header[..MAC]]);
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&full[..MAC_LEN]);
        out
    }
}

/// The decoded fields of a slot header whose MAC verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SlotHeader {
    /// D of the entry's routing key.
    pub(crate) digest: Digest,
    /// LRU access stamp: larger is more recent.
    pub(crate) stamp: u64,
    pub(crate) nonce: [u8; 12],
    tag: [u8; 16],
}

impl SlotHeader {
    /// The header bytes, MAC included, for slot `slot` of `file`.
    pub(crate) fn encode(&self, keys: &StoreKeys, file: FileId, slot: u32) -> [u8; SLOT_HEADER_LEN] {
        let mut h = [0u8; SLOT_HEADER_LEN];
        h[DIGEST..STAMP].copy_from_slice(&self.digest);
        h[STAMP..NONCE].copy_from_slice(&self.stamp.to_le_bytes());
        h[NONCE..TAG].copy_from_slice(&self.nonce);
        h[TAG..TAG + 16].copy_from_slice(&self.tag);
        let mac = keys.mac(file, slot, &h);
        h[MAC..].copy_from_slice(&mac);
        h
    }

    /// The header in `bytes` if its MAC verifies for this position; `None` for an empty
    /// (zeroed), torn, damaged or misplaced header.
    pub(crate) fn decode(bytes: &[u8], keys: &StoreKeys, file: FileId, slot: u32) -> Option<Self> {
        let bytes = bytes.get(..SLOT_HEADER_LEN)?;
        let expected = keys.mac(file, slot, bytes);
        // Not secret-dependent in a way that matters (the MAC key is on the same disk), but
        // compare in constant time anyway; it costs nothing.
        let diff = expected.iter().zip(&bytes[MAC..]).fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff != 0 {
            return None;
        }
        let mut h = Self { digest: [0; 32], stamp: 0, nonce: [0; 12], tag: [0; 16] };
        h.digest.copy_from_slice(&bytes[DIGEST..STAMP]);
        let mut stamp = [0u8; 8];
        stamp.copy_from_slice(&bytes[STAMP..NONCE]);
        h.stamp = u64::from_le_bytes(stamp);
        h.nonce.copy_from_slice(&bytes[NONCE..TAG]);
        h.tag.copy_from_slice(&bytes[TAG..TAG + 16]);
        Some(h)
    }
}

fn aad(kind: BlockKind) -> [u8; AAD_LABEL.len() + 1] {
    let mut a = [0u8; AAD_LABEL.len() + 1];
    a[..AAD_LABEL.len()].copy_from_slice(AAD_LABEL);
    a[AAD_LABEL.len()] = kind_byte(kind);
    a
}

/// The nonce the store used to derive for a CHK entry (before drawing it at random): for
/// the test that it no longer does.
#[cfg(test)]
pub(crate) fn derived_nonce(keys: &StoreKeys, kind: BlockKind, key: &RoutingKey) -> [u8; 12] {
    let k = keys.entry_key(kind, key);
    let full = hash("pamphlet/store/nonce/v1", &[k.as_slice()]);
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&full[..12]);
    nonce
}

/// Seals `block` (stored under `key`) for slot `slot` of `file` with `nonce`: its header
/// and its body.
///
/// The nonce is random (the store's seeded RNG) and lives only in the header. A nonce
/// derived from the routing key (as before) let whoever held the store's salt and a
/// routing key re-derive K and the nonce of a removed entry and decrypt the body, tag or
/// no tag (ChaCha20 is a stream cipher); zeroing the header did not destroy it. 96 random
/// bits never repeat in practice, whatever is written under one key.
pub(crate) fn seal(
    keys: &StoreKeys,
    file: FileId,
    slot: u32,
    (key, block): (&RoutingKey, &Block),
    stamp: u64,
    nonce: [u8; 12],
) -> ([u8; SLOT_HEADER_LEN], Vec<u8>) {
    let kind = block.kind();
    let k = keys.entry_key(kind, key);
    let mut body = block.as_bytes().to_vec();
    let tag = aead::seal_in_place(&k, nonce, &aad(kind), &mut body);
    let header = SlotHeader { digest: keys.digest(kind, key), stamp, nonce, tag };
    (header.encode(keys, file, slot), body)
}

/// Decrypts the ciphertext in `body` (in place) and returns the block if the tag verifies
/// and the block verifies against `key`; `None` for anything torn, damaged or forged.
pub(crate) fn open(
    keys: &StoreKeys,
    header: &SlotHeader,
    key: &RoutingKey,
    kind: BlockKind,
    body: &mut [u8],
) -> Option<Block> {
    if body.len() != kind.block_len() || header.digest != keys.digest(kind, key) {
        return None;
    }
    let k = keys.entry_key(kind, key);
    aead::open_in_place(&k, header.nonce, &aad(kind), body, &header.tag).ok()?;
    let block = Block::from_bytes(kind, body.to_vec()).ok()?;
    block.verify(key).ok()?;
    Some(block)
}

/// Re-encodes the header in `slot_bytes` with a new stamp and position (LRU refresh or
/// relocation); the ciphertext is unchanged. `None` if the header does not verify.
pub(crate) fn restamp(
    keys: &StoreKeys,
    header_bytes: &[u8],
    from: (FileId, u32),
    to: (FileId, u32),
    stamp: u64,
) -> Option<[u8; SLOT_HEADER_LEN]> {
    let mut h = SlotHeader::decode(header_bytes, keys, from.0, from.1)?;
    h.stamp = stamp;
    Some(h.encode(keys, to.0, to.1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pamphlet_crypto::{chk, ChkFlags};

    const F: FileId = FileId { area: Area::Store, kind: BlockKind::Chk };

    #[test]
    fn seal_then_open_round_trips_and_rejects_damage() {
        let keys = StoreKeys::from_secret(&[7; 32]);
        let (block, uri) = chk::encode(b"hello store", ChkFlags::default()).unwrap();
        let block = Block::Chk(block);
        let rk = uri.routing_key;
        let (head, sealed) = seal(&keys, F, 3, (&rk, &block), 42, [5; 12]);
        let header = SlotHeader::decode(&head, &keys, F, 3).unwrap();
        assert_eq!(header.stamp, 42);
        assert!(SlotHeader::decode(&head, &keys, F, 4).is_none(), "MAC binds the position");
        assert!(SlotHeader::decode(&[0u8; SLOT_HEADER_LEN], &keys, F, 3).is_none(), "zeroed slot is empty");

        let mut body = sealed.clone();
        assert_eq!(open(&keys, &header, &rk, BlockKind::Chk, &mut body), Some(block.clone()));

        let mut damaged = sealed.clone();
        damaged[100] ^= 1;
        assert_eq!(open(&keys, &header, &rk, BlockKind::Chk, &mut damaged), None);

        let other = StoreKeys::from_secret(&[8; 32]);
        let mut body = sealed.clone();
        assert_eq!(open(&other, &header, &rk, BlockKind::Chk, &mut body), None, "another store's salt");
        assert_ne!(&sealed[..64], &block.as_bytes()[..64]);
    }
}
