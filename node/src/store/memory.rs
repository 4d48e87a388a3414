//! The in-memory block store: two byte-bounded LRU areas (`lru` crate).
//!
//! Used by tests, the simulator and benchmarks, and by nodes that need no persistence. A key
//! lives in at most one area: putting it into the store area moves it out of the cache;
//! putting into the cache a key the store holds only refreshes the store entry.

use lru::LruCache;
use pamphlet_crypto::{Block, BlockKind, RoutingKey};

use crate::location::Location;
use crate::store::{eviction, Area, BlockStore, StoreError, StoreStats};

type Key = (BlockKind, RoutingKey);

/// One byte-bounded LRU area.
#[derive(Debug)]
struct Lru {
    map: LruCache<Key, Block>,
    bytes: u64,
    capacity: u64,
    /// Entries dropped to make room.
    evictions: u64,
}

impl Lru {
    fn new(capacity: u64) -> Self {
        Lru { map: LruCache::unbounded(), bytes: 0, capacity, evictions: 0 }
    }

    fn remove(&mut self, key: &Key) -> bool {
        match self.map.pop(key) {
            Some(b) => {
                self.bytes -= b.as_bytes().len() as u64;
                true
            }
            None => false,
        }
    }

    /// The entry to drop: the least recently used, or with `near` = (home, w) the one
    /// farthest from home among the `w` least recently used.
    fn victim(&self, near: Option<(Location, usize)>) -> Option<Key> {
        let (home, window) = near?;
        let tail: Vec<Key> = self.map.iter().rev().take(window).map(|(k, _)| *k).collect();
        let i = eviction::farthest(home, tail.iter().map(|k| Location::of_key(&k.1)))?;
        Some(tail[i])
    }

    fn put(&mut self, key: Key, block: Block, near: Option<(Location, usize)>) -> bool {
        let len = block.as_bytes().len() as u64;
        if len > self.capacity {
            return false;
        }
        self.remove(&key);
        while self.bytes + len > self.capacity {
            let dropped = match self.victim(near) {
                Some(k) => self.map.pop_entry(&k),
                None => self.map.pop_lru(),
            };
            match dropped {
                Some((_, old)) => {
                    self.bytes -= old.as_bytes().len() as u64;
                    self.evictions += 1;
                }
                None => break,
            }
        }
        self.bytes += len;
        self.map.put(key, block);
        true
    }
}

/// A memory store with a byte-bounded *store* area and *cache* area.
#[derive(Debug)]
pub struct MemoryStore {
    store: Lru,
    cache: Lru,
    /// With [`MemoryStore::prefer_near`]: the node's location and the eviction window of
    /// the store area.
    near: Option<(Location, usize)>,
}

impl MemoryStore {
    /// A store whose areas hold at most `store_bytes` and `cache_bytes` of blocks.
    pub fn new(store_bytes: u64, cache_bytes: u64) -> Self {
        MemoryStore { store: Lru::new(store_bytes), cache: Lru::new(cache_bytes), near: None }
    }

    /// When the store area is full, drop the block whose key is farthest from `home` among
    /// its `window` least recently used ([`eviction::farthest`]) instead of the least
    /// recently used; call again when the node's location changes. The cache area stays
    /// LRU. Off by default: the durability model (docs/durability.md, "near-own store")
    /// measures what it buys. A window of 0 or 1 is plain LRU.
    pub fn prefer_near(&mut self, home: Location, window: usize) {
        self.near = (window > 1).then_some((home, window));
    }

    /// Which area holds `key`, if any (without touching LRU order). Tests and status
    /// displays use it; the node itself does not care.
    pub fn area_of(&self, kind: BlockKind, key: &RoutingKey) -> Option<Area> {
        let k = (kind, *key);
        if self.store.map.contains(&k) {
            Some(Area::Store)
        } else if self.cache.map.contains(&k) {
            Some(Area::Cache)
        } else {
            None
        }
    }

    /// The block under `key` without touching LRU order.
    pub fn peek(&self, kind: BlockKind, key: &RoutingKey) -> Option<&Block> {
        let k = (kind, *key);
        self.store.map.peek(&k).or_else(|| self.cache.map.peek(&k))
    }
}

impl Default for MemoryStore {
    /// 64 MiB of store and 64 MiB of cache.
    fn default() -> Self {
        MemoryStore::new(64 << 20, 64 << 20)
    }
}

impl BlockStore for MemoryStore {
    fn get(&mut self, kind: BlockKind, key: &RoutingKey) -> Option<Block> {
        let k = (kind, *key);
        self.store.map.get(&k).or_else(|| self.cache.map.get(&k)).cloned()
    }

    fn contains(&self, kind: BlockKind, key: &RoutingKey) -> bool {
        self.area_of(kind, key).is_some()
    }

    fn put(&mut self, area: Area, key: RoutingKey, block: Block) -> Result<(), StoreError> {
        let k = (block.kind(), key);
        let ok = match area {
            Area::Store => {
                self.cache.remove(&k);
                self.store.put(k, block, self.near)
            }
            Area::Cache => {
                if self.store.map.get(&k).is_some() {
                    return Ok(());
                }
                self.cache.put(k, block, None)
            }
        };
        if ok {
            Ok(())
        } else {
            Err(StoreError::NoCapacity(area))
        }
    }

    fn remove(&mut self, kind: BlockKind, key: &RoutingKey) -> bool {
        let k = (kind, *key);
        let a = self.store.remove(&k);
        let b = self.cache.remove(&k);
        a || b
    }

    fn room(&self, area: Area, kind: BlockKind) -> u64 {
        let a = match area {
            Area::Store => &self.store,
            Area::Cache => &self.cache,
        };
        a.capacity.saturating_sub(a.bytes) / kind.block_len() as u64
    }

    fn stats(&self) -> StoreStats {
        StoreStats {
            store_blocks: self.store.map.len() as u64,
            store_bytes: self.store.bytes,
            store_capacity: self.store.capacity,
            cache_blocks: self.cache.map.len() as u64,
            cache_bytes: self.cache.bytes,
            cache_capacity: self.cache.capacity,
            store_evictions: self.store.evictions,
            cache_evictions: self.cache.evictions,
        }
    }
}

#[cfg(test)]
mod tests {
    use pamphlet_crypto::{chk, ChkFlags, SSK_BLOCK_LEN};

    use super::*;

    fn chk_block(i: u8) -> (RoutingKey, Block) {
        let (b, _) = chk::encode(&[i; 10], ChkFlags::default()).unwrap();
        let b = Block::Chk(b);
        (b.routing_key(), b)
    }

    #[test]
    fn byte_bounded_lru_per_area() {
        let len = BlockKind::Chk.block_len() as u64;
        let mut s = MemoryStore::new(2 * len, len);
        let blocks: Vec<_> = (0..4).map(chk_block).collect();
        s.put(Area::Store, blocks[0].0, blocks[0].1.clone()).unwrap();
        s.put(Area::Store, blocks[1].0, blocks[1].1.clone()).unwrap();
        assert!(s.get(BlockKind::Chk, &blocks[0].0).is_some(), "touch 0 so 1 is the LRU");
        s.put(Area::Store, blocks[2].0, blocks[2].1.clone()).unwrap();
        assert_eq!(s.area_of(BlockKind::Chk, &blocks[1].0), None);
        assert_eq!(s.area_of(BlockKind::Chk, &blocks[0].0), Some(Area::Store));
        s.put(Area::Cache, blocks[3].0, blocks[3].1.clone()).unwrap();
        assert_eq!(s.area_of(BlockKind::Chk, &blocks[3].0), Some(Area::Cache));
        let st = s.stats();
        assert_eq!((st.store_blocks, st.store_bytes, st.cache_blocks, st.cache_bytes), (2, 2 * len, 1, len));
        assert!(!s.contains(BlockKind::Ssk, &blocks[3].0), "kinds are separate");
        assert!(s.remove(BlockKind::Chk, &blocks[3].0));
        assert!(!s.remove(BlockKind::Chk, &blocks[3].0));
        assert_eq!(s.stats().cache_bytes, 0);
    }

    #[test]
    fn a_key_lives_in_one_area() {
        let mut s = MemoryStore::default();
        let (k, b) = chk_block(1);
        s.put(Area::Cache, k, b.clone()).unwrap();
        s.put(Area::Store, k, b.clone()).unwrap();
        assert_eq!(s.area_of(BlockKind::Chk, &k), Some(Area::Store));
        s.put(Area::Cache, k, b).unwrap();
        let st = s.stats();
        assert_eq!((st.store_blocks, st.cache_blocks), (1, 0));
    }

    /// With `prefer_near`, a full store area drops the block farthest from the node among
    /// its least recently used, not the least recently used; without it, plain LRU.
    #[test]
    fn prefer_near_drops_the_farthest_of_the_oldest() {
        let len = BlockKind::Chk.block_len() as u64;
        let blocks: Vec<_> = (0..3).map(chk_block).collect();
        let home = Location::of_key(&blocks[0].0);
        // Home is block 0's own key: of the two oldest (0 and 1), block 1 is the farther.
        let fill = |s: &mut MemoryStore| {
            for (k, b) in &blocks {
                s.put(Area::Store, *k, b.clone()).unwrap();
            }
        };
        let mut lru = MemoryStore::new(2 * len, 0);
        fill(&mut lru);
        assert_eq!(lru.area_of(BlockKind::Chk, &blocks[0].0), None, "LRU drops the oldest");
        let mut near = MemoryStore::new(2 * len, 0);
        near.prefer_near(home, 2);
        fill(&mut near);
        assert_eq!(near.area_of(BlockKind::Chk, &blocks[0].0), Some(Area::Store), "the block at home stays");
        assert_eq!(near.area_of(BlockKind::Chk, &blocks[1].0), None);
        assert_eq!(near.stats().store_evictions, 1);
    }

    #[test]
    fn too_small_area() {
        let mut s = MemoryStore::new(SSK_BLOCK_LEN as u64, 0);
        let (k, b) = chk_block(1);
        assert!(matches!(s.put(Area::Store, k, b.clone()), Err(StoreError::NoCapacity(Area::Store))));
        assert!(matches!(s.put(Area::Cache, k, b), Err(StoreError::NoCapacity(Area::Cache))));
    }
}
