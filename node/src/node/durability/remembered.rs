//! The remembered store keys across a restart (offers on return, issue 20).
//!
//! A node offers only the keys it remembers writing to its store area: the on-disk store
//! keeps no routing key in the clear (an entry is found by a salted digest and sealed under
//! a key derived from its routing key), so it cannot be listed. For a restarted node to
//! offer, the driver persists the remembered keys: [`Node::remembered_keys_sealed`] gives
//! them sealed (ChaCha20-Poly1305 under a key derived from the node's link secret, which
//! lives in its data directory, with a fresh random nonce), [`Node::load_remembered_keys`]
//! takes them back at start. A file that does not open (damaged, cut, another node's)
//! is refused whole with a [`KeysFileError`]: the node then has nothing to offer and runs
//! on.
//!
//! **What it costs in secrecy** (docs/security.md, "Disk seizure"): the sealing key is in
//! the same data directory, so whoever seizes the whole directory can list the routing
//! keys of the node's most recent store writes (up to `offers_remembered`), where the
//! store alone answers only for keys the seizer already knows. A routing key does not
//! decrypt a block (the URI's key does), but the list tells which blocks the node held.
//! `offers_on_return = false` writes no file and removes an old one.
//!
//! Format: `MAGIC` (8 bytes, also the associated data), nonce (12), tag (16), then the
//! ciphertext of the entries, oldest first, each a kind byte (0 CHK, 1 SSK) and the 32-byte
//! routing key.

use pamphlet_crypto::aead;
use pamphlet_crypto::{BlockKind, RoutingKey};
use rand::Rng;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::super::Node;
use crate::store::BlockStore;

/// The file's first bytes (and the seal's associated data): format version 1.
const MAGIC: &[u8; 8] = b"pamofk01";
/// Bytes before the entries.
const HEAD: usize = MAGIC.len() + 12 + aead::TAG_LEN;
/// Bytes of one entry.
const ENTRY: usize = 33;

/// Why remembered keys could not be loaded. The node then offers nothing on return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeysFileError {
    /// Not a keys file of this version, or cut short.
    #[error("not a remembered-keys file (wrong header or length)")]
    Format,
    /// The seal does not open: damaged, or sealed by another node (another link secret).
    #[error("the remembered keys do not open (damaged, or another node's file)")]
    Sealed,
    /// Opened, but an entry names no block kind: written by a newer version.
    #[error("an entry of the remembered keys has an unknown block kind")]
    Entry,
}

fn kind_byte(kind: BlockKind) -> u8 {
    match kind {
        BlockKind::Chk => 0,
        BlockKind::Ssk => 1,
    }
}

impl<S: BlockStore> Node<S> {
    /// The sealing key of the remembered keys: derived from the link secret.
    fn keys_file_key(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(
            Sha256::new().chain_update(b"pamphlet/offers/keys/v1").chain_update(self.link_secret).finalize().into(),
        )
    }

    /// The store-area keys this node remembers (for offers), sealed, for the driver to write
    /// on clean shutdown and now and then (`DIR/offers.keys`).
    pub fn remembered_keys_sealed(&mut self) -> Vec<u8> {
        let keys = self.durability.offers.remembered();
        let mut body = Vec::with_capacity(keys.len() * ENTRY);
        for (kind, key) in keys {
            body.push(kind_byte(kind));
            body.extend_from_slice(key.as_bytes());
        }
        let nonce: [u8; 12] = self.rng.gen();
        let tag = aead::seal_in_place(&self.keys_file_key(), nonce, MAGIC, &mut body);
        let mut out = Vec::with_capacity(HEAD + body.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&tag);
        out.extend_from_slice(&body);
        out
    }

    /// Loads keys sealed by [`Node::remembered_keys_sealed`] (by this node before a
    /// restart: same link secret) and returns how many. With offers on return on, the first
    /// peer to connect then starts a return. On error nothing is loaded.
    pub fn load_remembered_keys(&mut self, bytes: &[u8]) -> Result<usize, KeysFileError> {
        if bytes.len() < HEAD || &bytes[..MAGIC.len()] != MAGIC || !(bytes.len() - HEAD).is_multiple_of(ENTRY) {
            return Err(KeysFileError::Format);
        }
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(&bytes[MAGIC.len()..MAGIC.len() + 12]);
        let mut tag = [0u8; aead::TAG_LEN];
        tag.copy_from_slice(&bytes[MAGIC.len() + 12..HEAD]);
        let mut body = bytes[HEAD..].to_vec();
        aead::open_in_place(&self.keys_file_key(), nonce, MAGIC, &mut body, &tag).map_err(|_| KeysFileError::Sealed)?;
        let mut keys = Vec::with_capacity(body.len() / ENTRY);
        for e in body.chunks_exact(ENTRY) {
            let kind = match e[0] {
                0 => BlockKind::Chk,
                1 => BlockKind::Ssk,
                _ => return Err(KeysFileError::Entry),
            };
            let mut key = [0u8; 32];
            key.copy_from_slice(&e[1..]);
            keys.push((kind, RoutingKey(key)));
        }
        let n = keys.len();
        for (kind, key) in keys {
            self.durability.offers.remember(kind, key);
        }
        self.stats.keys_loaded += n as u64;
        if n > 0 && self.config.durability.offers_on_return {
            self.durability.returns.restarted();
        }
        Ok(n)
    }

    /// How many store-area writes the node has remembered since it started: a driver writes
    /// the sealed keys again only when this changed.
    pub fn remembered_writes(&self) -> u64 {
        self.durability.offers.writes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::{NodeConfig, NodeSecret};
    use crate::store::memory::MemoryStore;

    fn node(secret: u8) -> Node<MemoryStore> {
        Node::new(
            NodeConfig { link_secret: NodeSecret::new([secret; 32]), ..NodeConfig::default() },
            MemoryStore::default(),
        )
    }

    fn keys() -> Vec<(BlockKind, RoutingKey)> {
        vec![
            (BlockKind::Chk, RoutingKey([1; 32])),
            (BlockKind::Ssk, RoutingKey([2; 32])),
            (BlockKind::Chk, RoutingKey([3; 32])),
        ]
    }

    #[test]
    fn remembered_keys_come_back_in_order_after_a_restart() {
        let mut before = node(7);
        for (kind, key) in keys() {
            before.durability.offers.remember(kind, key);
        }
        let file = before.remembered_keys_sealed();
        assert_eq!(file.len(), HEAD + 3 * ENTRY);
        let mut after = node(7);
        assert_eq!(after.load_remembered_keys(&file), Ok(3));
        assert_eq!(after.durability.offers.remembered(), keys(), "oldest first, as written");
        assert_eq!(after.stats().keys_loaded, 3);
        assert_eq!(node(8).load_remembered_keys(&file), Err(KeysFileError::Sealed), "another node's file");
    }

    #[test]
    fn an_entry_of_an_unknown_kind_loads_nothing() {
        let mut n = node(7);
        let mut body = vec![0u8; 2 * ENTRY];
        body[ENTRY] = 9; // the second entry's kind
        let nonce = [5u8; 12];
        let tag = aead::seal_in_place(&n.keys_file_key(), nonce, MAGIC, &mut body);
        let file = [&MAGIC[..], &nonce, &tag, &body].concat();
        assert_eq!(n.load_remembered_keys(&file), Err(KeysFileError::Entry));
        assert!(n.durability.offers.remembered().is_empty(), "nothing loaded from a file with a bad entry");
        assert_eq!(n.stats().keys_loaded, 0);
    }
}
