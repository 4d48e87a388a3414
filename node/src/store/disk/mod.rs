//! The on-disk slot store: two LRU areas of fixed-size, encrypted slots in preallocated
//! files, rebuilt by a scan at open.
//!
//! Layout of a data directory (docs/store.md has the byte diagrams):
//! - `store.header`: magic, format version, the store secret ([`FORMAT_VERSION`]);
//! - `lock`: held with an exclusive file lock while a [`DiskStore`] is open;
//! - `store-chk.slots`, `store-ssk.slots`, `cache-chk.slots`, `cache-ssk.slots`: one file
//!   per area and block kind, each groups of [`GROUP_SLOTS`] slots: a page of headers,
//!   then the bodies (the `layout` module).
//!
//! The contract:
//! - an entry is encrypted under a key derived from its routing key and the store's salt;
//!   neither the routing key nor the block's bytes are ever written;
//! - `put` into an area whose [`Durability`] is [`Durability::EveryPut`] returns `Ok` only
//!   after the slot is written and `fdatasync`ed: that is the durability point;
//! - at open, every slot whose header MAC verifies is indexed; at `get`, the entry's AEAD
//!   tag and then the block itself are verified against the routing key, and anything
//!   that fails is dropped, never served.
//!
//! The files are accessed with positioned reads and writes (`FileExt`), so this module is
//! Unix-only. All I/O is synchronous, inside the [`BlockStore`] calls.

mod error;
mod file;
mod header;
mod layout;
pub mod lock;
mod slot;

use std::collections::{BTreeSet, HashMap};
use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};

use lru::LruCache;
use pamphlet_crypto::{Block, BlockKind, RoutingKey};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

pub use error::DiskError;
pub use header::FORMAT_VERSION;
pub use layout::{
    body_offset, body_stride, file_len, group_bytes, header_offset, slots_in, BODY_ALIGN, GROUP_SLOTS,
    HEADERS_PER_SECTOR, HEADER_PAGE,
};
use lock::{FileLock, LockError};
pub use slot::SLOT_HEADER_LEN;

use super::{Area, BlockStore, StoreError, StoreStats};
use file::SlotFile;
use slot::{Digest, FileId, SlotHeader, StoreKeys};

/// The lock file's name inside the data directory.
const LOCK_FILE: &str = "lock";

/// When a put into an area counts as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// `put` returns after the slot is written and `fdatasync`ed (one sync per put).
    EveryPut,
    /// `put` returns after the write reaches the OS; entries become durable at the next
    /// [`DiskStore::flush`] (or when the OS writes them back). A crash may lose the most
    /// recent puts, never a flushed one, and never serves a torn entry.
    OnFlush,
}

/// How a [`DiskStore`] is sized and synced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskStoreConfig {
    /// Byte limit of the store area (sink data).
    pub store_bytes: u64,
    /// Byte limit of the cache area (passing data).
    pub cache_bytes: u64,
    /// Percentage of each area's bytes given to SSK slots; the rest holds CHK slots.
    /// Blocks of the two kinds differ in size by 27×, so each kind has its own file of
    /// fixed-size slots and its own LRU inside the area.
    pub ssk_percent: u8,
    /// When a put into the store area counts as stored (default [`Durability::EveryPut`]).
    pub store_durability: Durability,
    /// When a put into the cache area counts as stored (default [`Durability::OnFlush`]:
    /// cached blocks are copies of data that lives elsewhere).
    pub cache_durability: Durability,
    /// Open without writing anything: serve what the store holds, refuse puts.
    pub read_only: bool,
    /// Whether [`DiskStore::open`] may drop blocks of the store area that no longer fit
    /// `store_bytes` (it was lowered). When false, such an open fails with
    /// [`DiskError::ShrinkRefused`] and leaves every block in place. The cache area always
    /// shrinks: it holds copies.
    pub shrink_store: bool,
}

impl DiskStoreConfig {
    /// Limits for the two areas, with the defaults: 10% SSK, synced store puts, cache
    /// durable at flush, read-write.
    pub fn new(store_bytes: u64, cache_bytes: u64) -> Self {
        Self {
            store_bytes,
            cache_bytes,
            ssk_percent: 10,
            store_durability: Durability::EveryPut,
            cache_durability: Durability::OnFlush,
            read_only: false,
            shrink_store: true,
        }
    }

    fn area_bytes(&self, area: Area) -> u64 {
        match area {
            Area::Store => self.store_bytes,
            Area::Cache => self.cache_bytes,
        }
    }

    fn durability(&self, area: Area) -> Durability {
        match area {
            Area::Store => self.store_durability,
            Area::Cache => self.cache_durability,
        }
    }

    /// Slots of the file `id` under these limits.
    fn slots(&self, id: FileId) -> u32 {
        let bytes = self.area_bytes(id.area);
        let ssk = bytes / 100 * u64::from(self.ssk_percent.min(100))
            + bytes % 100 * u64::from(self.ssk_percent.min(100)) / 100;
        let share = match id.kind {
            BlockKind::Ssk => ssk,
            BlockKind::Chk => bytes - ssk,
        };
        slots_in(id.kind, share)
    }
}

/// One slot file with its index: LRU order of the entries it holds, and its free slots.
struct Part {
    file: SlotFile,
    /// D → slot, least recently used first. Unbounded: capacity is the file's slot count.
    lru: LruCache<Digest, u32>,
    /// Free slots; a new entry takes the first free slot at or after its salted placement.
    free: BTreeSet<u32>,
}

impl Part {
    fn take_free(&mut self, start: u32) -> Option<u32> {
        let slot = self.free.range(start..).next().or_else(|| self.free.iter().next()).copied()?;
        self.free.remove(&slot);
        Some(slot)
    }
}

/// The on-disk block store. See the module documentation and docs/store.md.
pub struct DiskStore {
    dir: PathBuf,
    config: DiskStoreConfig,
    keys: StoreKeys,
    /// Indexed by [`FileId::index`].
    parts: [Part; 4],
    /// The next LRU stamp; larger than every stamp on disk.
    next_stamp: u64,
    read_only: bool,
    /// Entries each area dropped to make room since open (store, cache).
    evictions: [u64; 2],
    /// Draws each entry's nonce (seeded at open from the caller's RNG, the OS's by
    /// default): kept only in the slot's header, so clearing the header leaves nothing
    /// that could decrypt the body (see `slot::seal`).
    nonces: ChaCha20Rng,
    /// Holds the directory's lock until the store is dropped (on every path: see `lock`).
    _lock: FileLock,
}

impl std::fmt::Debug for DiskStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskStore").field("dir", &self.dir).field("read_only", &self.read_only).finish_non_exhaustive()
    }
}

/// A slot found valid by the scan at open.
#[derive(Clone, Copy)]
struct Found {
    file: usize,
    slot: u32,
    stamp: u64,
}

impl DiskStore {
    /// Opens the store in `dir`, creating it if absent. A new store's secret comes from the
    /// operating system's RNG (`OsRng`); this is the only randomness the store uses, once,
    /// at creation. Use [`DiskStore::open_with_rng`] to supply it.
    pub fn open(dir: impl AsRef<Path>, config: DiskStoreConfig) -> Result<Self, StoreError> {
        Self::open_with_rng(dir, config, &mut rand::rngs::OsRng)
    }

    /// Opens the store in `dir`, creating it with a secret drawn from `rng` if absent.
    ///
    /// Takes the directory's lock, reads the header, scans every slot header (keeping those
    /// whose MAC verifies), rebuilds LRU order from the stamps, then resizes the areas to
    /// `config` (evicting least recently used entries if they shrank). If the directory
    /// refuses writes (permission denied, read-only file system) an existing store is
    /// opened read-only and keeps serving.
    pub fn open_with_rng(
        dir: impl AsRef<Path>,
        config: DiskStoreConfig,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        if !config.read_only {
            match Self::open_inner(&dir, config, false, rng) {
                Err(e) if e.is_write_refused() && dir.join(header::HEADER_FILE).exists() => {
                    tracing::warn!(dir = %dir.display(), error = %e, "store directory refuses writes; opening read-only");
                }
                other => return other.map_err(StoreError::Disk),
            }
        }
        Self::open_inner(&dir, config, true, rng).map_err(StoreError::Disk)
    }

    fn open_inner(
        dir: &Path,
        config: DiskStoreConfig,
        read_only: bool,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self, DiskError> {
        if !read_only {
            std::fs::create_dir_all(dir).map_err(|e| DiskError::io(dir, e))?;
        }
        let lock = lock_dir(dir, read_only)?;

        let secret = match header::read(dir)? {
            Some(secret) => secret,
            None if read_only => {
                return Err(DiskError::Io {
                    path: dir.join(header::HEADER_FILE),
                    source: io::Error::new(io::ErrorKind::NotFound, "no store to open read-only"),
                })
            }
            None => {
                if FileId::ALL.iter().any(|id| dir.join(id.file_name()).exists()) {
                    return Err(DiskError::MissingHeader { dir: dir.to_path_buf() });
                }
                let mut secret = Zeroizing::new([0u8; 32]);
                rng.fill_bytes(secret.as_mut_slice());
                header::create(dir, &secret)?;
                secret
            }
        };
        let keys = StoreKeys::from_secret(&secret);

        let [a, b, c, d] = FileId::ALL;
        let writable = !read_only;
        let files = [
            SlotFile::open(dir, a, writable)?,
            SlotFile::open(dir, b, writable)?,
            SlotFile::open(dir, c, writable)?,
            SlotFile::open(dir, d, writable)?,
        ];
        if !read_only {
            header::sync_dir(dir)?;
        }

        // Scan: every slot whose MAC verifies is a candidate; a digest found twice (a
        // promotion or a shrink interrupted by a crash) keeps its most recent copy.
        let mut found: HashMap<Digest, Found> = HashMap::new();
        let mut losers: Vec<(usize, u32)> = Vec::new();
        for (fi, file) in files.iter().enumerate() {
            file.scan_headers(|slot, bytes| {
                let Some(h) = SlotHeader::decode(bytes, &keys, file.id, slot) else { return };
                let new = Found { file: fi, slot, stamp: h.stamp };
                match found.get_mut(&h.digest) {
                    Some(old) if old.stamp >= new.stamp => losers.push((fi, slot)),
                    Some(old) => {
                        losers.push((old.file, old.slot));
                        *old = new;
                    }
                    None => {
                        found.insert(h.digest, new);
                    }
                }
            })?;
        }
        for &(fi, slot) in &losers {
            if !read_only {
                // Best effort: a loser that resurfaces after another crash loses again.
                let _ = files[fi].clear_slot(slot);
            }
        }

        let mut entries: Vec<(Digest, Found)> = found.into_iter().collect();
        entries.sort_unstable_by_key(|(_, f)| f.stamp);
        let next_stamp = entries.last().map_or(1, |(_, f)| f.stamp + 1);
        let mut parts = files.map(|file| Part { free: (0..file.slots).collect(), lru: LruCache::unbounded(), file });
        for (digest, f) in entries {
            let part = &mut parts[f.file];
            part.free.remove(&f.slot);
            part.lru.put(digest, f.slot);
        }

        if !read_only && !config.shrink_store {
            let dropped: usize = FileId::ALL
                .iter()
                .filter(|id| id.area == Area::Store)
                .map(|&id| parts[id.index()].lru.len().saturating_sub(config.slots(id) as usize))
                .sum();
            if dropped > 0 {
                let held = FileId::ALL
                    .iter()
                    .filter(|id| id.area == Area::Store)
                    .map(|id| layout::file_len(id.kind, parts[id.index()].file.slots))
                    .sum();
                return Err(DiskError::ShrinkRefused {
                    dir: dir.to_path_buf(),
                    blocks: dropped as u64,
                    held_bytes: held,
                });
            }
        }
        let nonces = ChaCha20Rng::from_seed({
            let mut seed = [0u8; 32];
            rng.fill_bytes(&mut seed);
            seed
        });
        let mut store = Self {
            dir: dir.to_path_buf(),
            config,
            keys,
            parts,
            next_stamp,
            read_only,
            evictions: [0; 2],
            nonces,
            _lock: lock,
        };
        if read_only {
            if FileId::ALL.iter().any(|&id| store.parts[id.index()].file.slots != config.slots(id)) {
                tracing::warn!(dir = %dir.display(), "read-only store: configured size differs from the files; not resizing");
            }
        } else {
            store.apply_limits()?;
        }
        Ok(store)
    }

    /// Changes the areas' byte limits. Shrinking evicts the least recently used entries of
    /// each part and moves survivors out of the file's tail before truncating it; growing
    /// preallocates new empty slots and keeps every entry. Durable when it returns.
    pub fn resize(&mut self, store_bytes: u64, cache_bytes: u64) -> Result<(), StoreError> {
        if self.read_only {
            return Err(self.read_only_error());
        }
        let previous = self.config;
        self.config.store_bytes = store_bytes;
        self.config.cache_bytes = cache_bytes;
        if let Err(e) = self.apply_limits() {
            // A failed grow (disk full) leaves that file at its old size; the store keeps
            // serving everything it holds. Files already resized stay resized.
            self.config = previous;
            return Err(StoreError::Disk(e));
        }
        Ok(())
    }

    /// Makes every write so far durable (`fdatasync` of each slot file): entries put into an
    /// [`Durability::OnFlush`] area and LRU stamps refreshed by `get`.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        if self.read_only {
            return Ok(());
        }
        for part in &self.parts {
            part.file.sync_if_dirty().map_err(StoreError::Disk)?;
        }
        Ok(())
    }

    /// Flushes and closes the store, releasing the directory's lock. Dropping the store
    /// does the same but cannot report a failure.
    pub fn close(mut self) -> Result<(), StoreError> {
        self.flush()
    }

    /// Whether the store refuses puts (opened read-only, or the disk refused writes).
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The configuration in force (limits as last set by open or [`DiskStore::resize`]).
    pub fn config(&self) -> &DiskStoreConfig {
        &self.config
    }

    /// An estimate of the heap bytes the in-memory index uses: per entry, the LRU node
    /// (digest, slot, two links), its hash-table bucket, and the free-slot set.
    pub fn index_heap_bytes(&self) -> usize {
        // lru 0.12: Box<LruEntry { key: [u8; 32], val: u32, prev, next }> (56 B, 64 with the
        // allocator's header) plus a bucket of (KeyRef, NonNull) = 16 B and a control byte,
        // at a load factor of at most 7/8. BTreeSet<u32>: ~4 B per element plus node overhead
        // (11 elements per ~100 B leaf): ~10 B per free slot.
        let per_entry = 64 + (16 + 1) * 8 / 7;
        self.parts.iter().map(|p| p.lru.len() * per_entry + p.free.len() * 10).sum()
    }

    fn read_only_error(&self) -> StoreError {
        StoreError::Disk(DiskError::ReadOnly { dir: self.dir.clone() })
    }

    fn take_stamp(&mut self) -> u64 {
        let s = self.next_stamp;
        self.next_stamp += 1;
        s
    }

    fn apply_limits(&mut self) -> Result<(), DiskError> {
        for id in FileId::ALL {
            let target = self.config.slots(id);
            self.resize_part(id.index(), target)?;
        }
        Ok(())
    }

    fn resize_part(&mut self, pi: usize, target: u32) -> Result<(), DiskError> {
        let part = &mut self.parts[pi];
        let current = part.file.slots;
        if target > current {
            part.file.set_slots(target)?;
            part.free.extend(current..target);
            return Ok(());
        }
        if target == current {
            return Ok(());
        }
        // Shrink: evict the least recently used down to the new capacity…
        while part.lru.len() > target as usize {
            let Some((_, slot)) = part.lru.pop_lru() else { break };
            part.file.clear_slot(slot)?;
            part.free.insert(slot);
        }
        // …move survivors out of the tail into free slots below `target`…
        let id = part.file.id;
        let mut header = [0u8; SLOT_HEADER_LEN];
        let mut body = vec![0u8; id.kind.block_len()];
        let movers: Vec<(Digest, u32)> = part.lru.iter().filter(|(_, &s)| s >= target).map(|(d, &s)| (*d, s)).collect();
        for (digest, from) in movers {
            let Some(to) = part.free.range(..target).next().copied() else { break };
            part.file.read_header(from, &mut header)?;
            part.file.read_body(from, &mut body)?;
            let Some(stamp) = SlotHeader::decode(&header, &self.keys, id, from).map(|h| h.stamp) else {
                part.lru.pop(&digest);
                continue;
            };
            let Some(moved) = slot::restamp(&self.keys, &header, (id, from), (id, to), stamp) else { continue };
            part.file.write_entry(to, &moved, &body)?;
            part.free.remove(&to);
            if let Some(v) = part.lru.peek_mut(&digest) {
                *v = to;
            }
        }
        // …make the copies durable before the originals disappear with the tail.
        part.file.sync()?;
        part.file.set_slots(target)?;
        part.free.split_off(&target);
        Ok(())
    }

    /// Drops the entry `digest` at `slot` of part `pi` (it failed verification or was
    /// removed): out of the index, header zeroed (best effort), slot free.
    fn drop_entry(&mut self, pi: usize, digest: &Digest, slot: u32) {
        let part = &mut self.parts[pi];
        part.lru.pop(digest);
        if !self.read_only {
            if let Err(e) = part.file.clear_slot(slot) {
                tracing::warn!(error = %e, "could not clear a dropped store slot");
            }
        }
        part.free.insert(slot);
    }

    /// Reads and opens the entry at `slot` of part `pi`; `None` if it does not verify.
    fn read_entry(&self, pi: usize, slot: u32, key: &RoutingKey) -> Result<Option<(Block, Vec<u8>)>, DiskError> {
        let part = &self.parts[pi];
        let kind = part.file.id.kind;
        let mut head = [0u8; SLOT_HEADER_LEN];
        part.file.read_header(slot, &mut head)?;
        let Some(header) = SlotHeader::decode(&head, &self.keys, part.file.id, slot) else { return Ok(None) };
        let mut body = vec![0u8; kind.block_len()];
        part.file.read_body(slot, &mut body)?;
        Ok(slot::open(&self.keys, &header, key, kind, &mut body).map(|block| (block, head.to_vec())))
    }

    /// Moves `digest` to the most-recent end of part `pi` and records a new stamp in its
    /// header (written, not synced: LRU order is durable at the next flush).
    fn touch(&mut self, pi: usize, digest: &Digest, slot: u32, header_bytes: Option<&[u8]>) {
        self.parts[pi].lru.promote(digest);
        if self.read_only {
            return;
        }
        let id = self.parts[pi].file.id;
        let mut owned = [0u8; SLOT_HEADER_LEN];
        let bytes = match header_bytes {
            Some(b) => b,
            None => {
                if self.parts[pi].file.read_header(slot, &mut owned).is_err() {
                    return;
                }
                &owned
            }
        };
        let stamp = self.take_stamp();
        if let Some(h) = slot::restamp(&self.keys, bytes, (id, slot), (id, slot), stamp) {
            if let Err(e) = self.parts[pi].file.write_header(slot, &h) {
                tracing::warn!(error = %e, "could not record an LRU stamp");
            }
        }
    }
}

/// Takes the data directory's lock: exclusive for a writer, shared for a reader, so two
/// nodes never write one store and a reader never sees a writer's half-done resize.
fn lock_dir(dir: &Path, read_only: bool) -> Result<FileLock, DiskError> {
    let path = dir.join(LOCK_FILE);
    let file = if read_only {
        OpenOptions::new().read(true).open(&path)
    } else {
        OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path)
    };
    let file = file.map_err(|e| DiskError::io(&path, e))?;
    let locked = if read_only { FileLock::shared(file) } else { FileLock::exclusive(file) };
    locked.map_err(|e| match e {
        LockError::Held => DiskError::Locked { dir: dir.to_path_buf() },
        LockError::Io(e) => DiskError::io(&path, e),
    })
}

impl BlockStore for DiskStore {
    fn get(&mut self, kind: BlockKind, key: &RoutingKey) -> Option<Block> {
        let digest = self.keys.digest(kind, key);
        for area in [Area::Store, Area::Cache] {
            let pi = FileId { area, kind }.index();
            let Some(&slot) = self.parts[pi].lru.peek(&digest) else { continue };
            match self.read_entry(pi, slot, key) {
                Ok(Some((block, header))) => {
                    self.touch(pi, &digest, slot, Some(&header));
                    return Some(block);
                }
                Ok(None) => {
                    tracing::warn!(key = %key.short(), ?area, "store entry failed verification; dropped");
                    self.drop_entry(pi, &digest, slot);
                }
                Err(e) => {
                    // Unreadable is not proven corrupt: forget it for this session without
                    // clearing it; the next open re-indexes it if its header still verifies.
                    tracing::warn!(error = %e, ?area, "store slot unreadable; skipped");
                    self.parts[pi].lru.pop(&digest);
                }
            }
        }
        None
    }

    fn contains(&self, kind: BlockKind, key: &RoutingKey) -> bool {
        let digest = self.keys.digest(kind, key);
        [Area::Store, Area::Cache].iter().any(|&area| self.parts[FileId { area, kind }.index()].lru.contains(&digest))
    }

    fn put(&mut self, area: Area, key: RoutingKey, block: Block) -> Result<(), StoreError> {
        if self.read_only {
            return Err(self.read_only_error());
        }
        let kind = block.kind();
        let digest = self.keys.digest(kind, &key);
        let id = FileId { area, kind };
        let pi = id.index();
        let store_pi = FileId { area: Area::Store, kind }.index();
        let cache_pi = FileId { area: Area::Cache, kind }.index();

        // Already held where it belongs (or in the store when offered to the cache): refresh.
        for held in [pi, store_pi] {
            if let Some(&slot) = self.parts[held].lru.peek(&digest) {
                if held == pi || area == Area::Cache {
                    self.touch(held, &digest, slot, None);
                    return Ok(());
                }
            }
        }
        if self.parts[pi].file.slots == 0 {
            return Err(StoreError::NoCapacity(area));
        }

        let start = self.keys.placement(&digest, self.parts[pi].file.slots);
        let slot = match self.parts[pi].take_free(start) {
            Some(slot) => slot,
            None => match self.parts[pi].lru.pop_lru() {
                Some((_, victim)) => {
                    self.evictions[usize::from(area == Area::Cache)] += 1;
                    victim
                }
                None => return Err(StoreError::NoCapacity(area)),
            },
        };
        let stamp = self.take_stamp();
        let nonce: [u8; 12] = self.nonces.gen();
        let (header, body) = slot::seal(&self.keys, id, slot, (&key, &block), stamp, nonce);
        let file = &self.parts[pi].file;
        let written = file.write_entry(slot, &header, &body).and_then(|()| match self.config.durability(area) {
            Durability::EveryPut => file.sync(),
            Durability::OnFlush => Ok(()),
        });
        if let Err(e) = written {
            // The slot's content is unknown now; it is free, and its old entry (if it was an
            // eviction victim) is gone from the index either way.
            self.parts[pi].free.insert(slot);
            return Err(StoreError::Disk(e));
        }
        self.parts[pi].lru.put(digest, slot);

        // Promoted from the cache into the store: the cache copy goes. If this clear is
        // lost in a crash, the scan keeps the newer (store) copy.
        if area == Area::Store {
            if let Some(&old) = self.parts[cache_pi].lru.peek(&digest) {
                self.drop_entry(cache_pi, &digest, old);
            }
        }
        Ok(())
    }

    fn remove(&mut self, kind: BlockKind, key: &RoutingKey) -> bool {
        let digest = self.keys.digest(kind, key);
        let mut removed = false;
        for area in [Area::Store, Area::Cache] {
            let pi = FileId { area, kind }.index();
            if let Some(&slot) = self.parts[pi].lru.peek(&digest) {
                self.drop_entry(pi, &digest, slot);
                if !self.read_only && self.config.durability(area) == Durability::EveryPut {
                    if let Err(e) = self.parts[pi].file.sync() {
                        tracing::warn!(error = %e, "could not sync a removal");
                    }
                }
                removed = true;
            }
        }
        removed
    }

    fn room(&self, area: Area, kind: BlockKind) -> u64 {
        let part = &self.parts[FileId { area, kind }.index()];
        u64::from(part.file.slots).saturating_sub(part.lru.len() as u64)
    }

    fn stats(&self) -> StoreStats {
        let area = |area: Area| -> (u64, u64) {
            [BlockKind::Chk, BlockKind::Ssk].iter().fold((0, 0), |(n, b), &kind| {
                let len = self.parts[FileId { area, kind }.index()].lru.len() as u64;
                (n + len, b + len * kind.block_len() as u64)
            })
        };
        let (store_blocks, store_bytes) = area(Area::Store);
        let (cache_blocks, cache_bytes) = area(Area::Cache);
        StoreStats {
            store_blocks,
            store_bytes,
            store_capacity: self.config.store_bytes,
            cache_blocks,
            cache_bytes,
            cache_capacity: self.config.cache_bytes,
            store_evictions: self.evictions[0],
            cache_evictions: self.evictions[1],
        }
    }
}

impl Drop for DiskStore {
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            tracing::warn!(error = %e, "store flush on drop failed");
        }
        // The directory's lock (`_lock`) is released after this, when the fields drop.
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pamphlet_crypto::{chk, ChkFlags};

    /// The disk thief of issue 14 (item 9): the nonce was derived from the routing key
    /// and the salt on disk, so whoever held both could re-derive a removed CHK entry's
    /// keystream after its header was zeroed (ChaCha20 needs no tag to decrypt). Now each
    /// write draws its nonce, kept only in the header: the same block written twice gets
    /// two nonces, neither the derived one.
    #[test]
    fn entry_nonces_are_drawn_not_derived() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let config = DiskStoreConfig::new(1 << 20, 0);
        let mut store = DiskStore::open_with_rng(dir.path(), config, &mut rng).unwrap();
        let (block, uri) = chk::encode(b"a removed document", ChkFlags::default()).unwrap();
        let (block, key) = (Block::Chk(block), uri.routing_key);
        let id = FileId { area: Area::Store, kind: BlockKind::Chk };
        let derived = slot::derived_nonce(&store.keys, BlockKind::Chk, &key);
        let mut nonces = Vec::new();
        for _ in 0..2 {
            store.put(Area::Store, key, block.clone()).unwrap();
            let digest = store.keys.digest(BlockKind::Chk, &key);
            let slot = *store.parts[id.index()].lru.peek(&digest).unwrap();
            let mut bytes = [0u8; slot::SLOT_HEADER_LEN];
            store.parts[id.index()].file.read_header(slot, &mut bytes).unwrap();
            let header = SlotHeader::decode(&bytes, &store.keys, id, slot).unwrap();
            nonces.push(header.nonce);
            assert!(store.remove(BlockKind::Chk, &key));
        }
        assert_ne!(nonces[0], nonces[1]);
        assert!(nonces.iter().all(|n| *n != derived), "{nonces:?}");
    }
}
