//! Block stores: where a node keeps blocks.
//!
//! Two areas per node (../docs/store.md):
//! - **store**: blocks this node is a sink for (closest to the key among its peers);
//! - **cache**: blocks that passed through on a return path.
//!
//! Both are size-bounded LRU. [`BlockStore`] is the interface the sans-IO node uses; the
//! memory store implements it in `memory.rs` and the on-disk slot store in `disk/`.
//! Implementations are synchronous: a disk store does its I/O inside these calls, which
//! keeps the node deterministic (it never waits on an executor).

#[cfg(unix)]
pub mod disk;
pub mod eviction;
pub mod memory;

use pamphlet_crypto::{Block, BlockKind, RoutingKey};

pub use memory::MemoryStore;

/// Which of the two areas a block goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Area {
    /// Long-term storage of blocks this node is a sink for.
    Store,
    /// Short-term cache of blocks that passed through.
    Cache,
}

/// Fill and traffic figures for `status` displays.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoreStats {
    /// Blocks in the store area.
    pub store_blocks: u64,
    /// Bytes used in the store area.
    pub store_bytes: u64,
    /// Byte limit of the store area.
    pub store_capacity: u64,
    /// Blocks in the cache area.
    pub cache_blocks: u64,
    /// Bytes used in the cache area.
    pub cache_bytes: u64,
    /// Byte limit of the cache area.
    pub cache_capacity: u64,
    /// Blocks the store area dropped to make room since the store was opened: when this
    /// grows, the network's stores are full and it forgets the least recently used data.
    #[serde(default)]
    pub store_evictions: u64,
    /// Blocks the cache area dropped to make room since the store was opened (the cache
    /// turning over is normal).
    #[serde(default)]
    pub cache_evictions: u64,
}

/// Why a store operation failed. Reads never fail this way: an unreadable or corrupt
/// entry is dropped and reported as absent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The underlying I/O failed (disk full, read-only, permission denied…).
    #[error("store I/O failed: {0}")]
    Io(#[from] std::io::Error),
    /// The block is larger than the area's whole capacity.
    #[error("the {0:?} area is too small to hold any block")]
    NoCapacity(Area),
    /// The on-disk store failed: locked directory, newer format, disk full, read-only…
    #[cfg(unix)]
    #[error(transparent)]
    Disk(#[from] disk::DiskError),
}

/// A size-bounded, LRU-evicting block store with two areas.
///
/// Blocks given to `put` have already been verified by the caller; `get` re-verifies what
/// it reads from durable media, so a corrupt entry is never returned.
pub trait BlockStore {
    /// The block under `key`, from either area (store first), marking it recently used.
    fn get(&mut self, kind: BlockKind, key: &RoutingKey) -> Option<Block>;

    /// Whether `key` is held in either area, without touching LRU order.
    fn contains(&self, kind: BlockKind, key: &RoutingKey) -> bool;

    /// Puts `block` (whose routing key is `key`) into `area`, evicting least-recently-used
    /// entries of that area as needed. Putting a key that is present refreshes it.
    fn put(&mut self, area: Area, key: RoutingKey, block: Block) -> Result<(), StoreError>;

    /// Removes `key` from both areas; returns whether anything was removed.
    fn remove(&mut self, kind: BlockKind, key: &RoutingKey) -> bool;

    /// Current fill.
    fn stats(&self) -> StoreStats;

    /// How many more blocks of `kind` `area` takes before it has to drop any (an offered
    /// block is taken only into room: `node/durability/key_first.rs`).
    fn room(&self, area: Area, kind: BlockKind) -> u64;
}
