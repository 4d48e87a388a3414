//! The on-disk store against a model: a seeded random run of puts, gets, removes and
//! reopens on tiny areas (so evictions and promotions happen all the time), checking after
//! every step that the store holds exactly what an LRU model of the documented semantics
//! holds, and that every get returns the right block.

#![cfg(unix)]

use std::collections::VecDeque;

use pamphlet_crypto::{chk, ssk, Block, BlockKind, ChkFlags, CryptoKey, RoutingKey, SskInsertUri, SskPrivateKey};
use pamphlet_node::store::disk::{slots_in, DiskStore, DiskStoreConfig};
use pamphlet_node::store::{Area, BlockStore, StoreError};
use rand::{Rng, SeedableRng};

const SSK_PERCENT: u8 = 6;
const STORE_BYTES: u64 = 200_000;
const CACHE_BYTES: u64 = 120_000;

fn blocks() -> Vec<(RoutingKey, Block)> {
    let mut v = Vec::new();
    for i in 0..12u64 {
        let (b, uri) = chk::encode(format!("model block {i}").as_bytes(), ChkFlags::default()).unwrap();
        v.push((uri.routing_key, Block::Chk(b)));
    }
    for i in 0..8u64 {
        let insert = SskInsertUri::new(
            SskPrivateKey::from_seed([i as u8 + 1; 32]),
            CryptoKey::from_bytes([1; 32]),
            "m",
            i,
            false,
        );
        let (b, _) = ssk::encode(&insert, b"model").unwrap();
        let b = Block::Ssk(b);
        v.push((b.routing_key(), b));
    }
    v
}

fn config() -> DiskStoreConfig {
    let mut c = DiskStoreConfig::new(STORE_BYTES, CACHE_BYTES);
    c.ssk_percent = SSK_PERCENT;
    c
}

/// Slots of one area and kind, by the documented rule (whole slots that fit in the share).
fn capacity(area: Area, kind: BlockKind) -> usize {
    let bytes = if area == Area::Store { STORE_BYTES } else { CACHE_BYTES };
    let ssk = bytes * u64::from(SSK_PERCENT) / 100;
    let share = if kind == BlockKind::Ssk { ssk } else { bytes - ssk };
    slots_in(kind, share) as usize
}

/// One LRU list per area and kind: block indices, least recently used first.
struct Model {
    lists: [VecDeque<usize>; 4],
}

fn li(area: Area, kind: BlockKind) -> usize {
    (if area == Area::Store { 0 } else { 2 }) + usize::from(kind == BlockKind::Ssk)
}

impl Model {
    fn touch(&mut self, l: usize, i: usize) -> bool {
        let Some(p) = self.lists[l].iter().position(|&x| x == i) else { return false };
        self.lists[l].remove(p);
        self.lists[l].push_back(i);
        true
    }

    fn put(&mut self, area: Area, kind: BlockKind, i: usize) -> Result<(), ()> {
        let (t, s, c) = (li(area, kind), li(Area::Store, kind), li(Area::Cache, kind));
        if self.touch(t, i) || (area == Area::Cache && self.touch(s, i)) {
            return Ok(());
        }
        let cap = capacity(area, kind);
        if cap == 0 {
            return Err(());
        }
        if self.lists[t].len() == cap {
            self.lists[t].pop_front();
        }
        self.lists[t].push_back(i);
        if area == Area::Store {
            self.lists[c].retain(|&x| x != i);
        }
        Ok(())
    }

    fn get(&mut self, kind: BlockKind, i: usize) -> bool {
        self.touch(li(Area::Store, kind), i) || self.touch(li(Area::Cache, kind), i)
    }

    fn remove(&mut self, kind: BlockKind, i: usize) -> bool {
        let mut removed = false;
        for area in [Area::Store, Area::Cache] {
            let l = li(area, kind);
            let before = self.lists[l].len();
            self.lists[l].retain(|&x| x != i);
            removed |= self.lists[l].len() != before;
        }
        removed
    }

    fn contains(&self, kind: BlockKind, i: usize) -> bool {
        self.lists[li(Area::Store, kind)].contains(&i) || self.lists[li(Area::Cache, kind)].contains(&i)
    }
}

#[test]
fn store_matches_an_lru_model_through_evictions_promotions_and_reopens() {
    let caps = [Area::Store, Area::Cache].map(|a| [BlockKind::Chk, BlockKind::Ssk].map(|k| capacity(a, k)));
    assert_eq!(caps, [[5, 5], [3, 2]], "tiny areas, fewer slots than blocks of each kind");
    let blocks = blocks();
    let dir = tempfile::tempdir().unwrap();
    let mut store = DiskStore::open(dir.path(), config()).unwrap();
    let mut model = Model { lists: Default::default() };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x10de1);
    for step in 0..400 {
        let i = rng.gen_range(0..blocks.len());
        let (k, b) = &blocks[i];
        let kind = b.kind();
        match rng.gen_range(0..100) {
            0..=44 => {
                let area = if rng.gen_bool(0.5) { Area::Store } else { Area::Cache };
                let got = store.put(area, *k, b.clone());
                let want = model.put(area, kind, i);
                assert_eq!(got.is_ok(), want.is_ok(), "step {step}: put {i} into {area:?}: {got:?}");
                if let Err(e) = got {
                    assert!(matches!(e, StoreError::NoCapacity(a) if a == area));
                }
            }
            45..=79 => {
                let got = store.get(kind, k);
                let want = model.get(kind, i);
                assert_eq!(got.is_some(), want, "step {step}: get {i}");
                if let Some(got) = got {
                    assert_eq!(&got, b, "step {step}: get {i} returned another block");
                }
            }
            80..=91 => assert_eq!(store.remove(kind, k), model.remove(kind, i), "step {step}: remove {i}"),
            _ => {
                store.close().unwrap();
                store = DiskStore::open(dir.path(), config()).unwrap();
            }
        }
        for (j, (k, b)) in blocks.iter().enumerate() {
            assert_eq!(store.contains(b.kind(), k), model.contains(b.kind(), j), "step {step}: contains {j}");
        }
        let stats = store.stats();
        let count = |area| {
            [BlockKind::Chk, BlockKind::Ssk].iter().map(|&kd| model.lists[li(area, kd)].len() as u64).sum::<u64>()
        };
        assert_eq!((stats.store_blocks, stats.cache_blocks), (count(Area::Store), count(Area::Cache)), "step {step}");
    }
}
