//! What every node holds: a store area and a cache area per node, counted in blocks, and
//! for every block the nodes that hold it.
//!
//! The real `MemoryStore` keeps whole 32 KiB blocks; 10,000 nodes' stores would not fit in
//! memory, so this model keeps block numbers only, with the same rules: each area is
//! bounded; a block lives in at most one area of a node (putting it in the store moves it
//! out of the cache; putting a stored block in the cache only refreshes it); reading a
//! block refreshes it. Which block an area drops when full is its [`Eviction`] rule:
//! - `Lru`: the least recently used (pamphlet's store, `store::memory`);
//! - `Random`: a random one (Hyphanet's salted-hash store overwrites one of the slots the
//!   new key hashes to, which, for an unrelated key, is any slot);
//! - `NearOwn(w)`: of the `w` least recently used, the one whose key is farthest from the
//!   node's location (`store::eviction::farthest`, the rule the real store offers).
//!
//! Each area is a doubly linked list (most recent first) threaded through one slab of
//! slots per node, so touching, inserting and evicting cost O(1) (`NearOwn`: O(w)).

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::location::Location;
use crate::store::eviction;

/// Which block a full area drops (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Eviction {
    /// Least recently used.
    Lru,
    /// A random block (Hyphanet).
    Random,
    /// Of the `w` least recently used, the one farthest from the node's location.
    NearOwn(usize),
}

const NONE: u32 = u32::MAX;

/// One bounded area of one node.
#[derive(Clone, Copy, Debug)]
struct Area {
    /// First slot of this area in the slab; the area owns `base..base + cap`.
    base: u32,
    cap: u32,
    len: u32,
    head: u32,
    tail: u32,
    /// Slots never used yet start at `base + used`; freed ones are chained from `free`.
    used: u32,
    free: u32,
}

/// Where a node keeps a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Place {
    Store,
    Cache,
}

/// One copy: node, slot, area.
#[derive(Clone, Copy, Debug)]
struct Copy_ {
    node: u32,
    slot: u32,
    place: Place,
    /// The node's location changes (`Holdings::moves`) when it wrote the copy.
    moves_at: u32,
}

/// Every node's two areas and every block's copies.
pub(crate) struct Holdings {
    areas: Vec<[Area; 2]>,
    /// Per slot: the block in it, and its neighbours in the list.
    block: Vec<u32>,
    prev: Vec<u32>,
    next: Vec<u32>,
    /// Per block: where its copies are.
    copies: Vec<Vec<Copy_>>,
    pub(crate) store_rule: Eviction,
    pub(crate) cache_rule: Eviction,
    /// Blocks dropped from store areas to make room.
    pub(crate) store_evictions: u64,
    /// Blocks written to store areas (each copy once).
    pub(crate) store_writes: u64,
    /// What the model is doing now (a `diagnosis` cause), recorded when a block's last
    /// copy goes; and the hour.
    pub(crate) cause: u8,
    pub(crate) now: u32,
    /// Per node: how often its location changed (swaps; a newcomer starts afresh).
    pub(crate) moves: Vec<u32>,
    /// Per block: the hour it was inserted, and when its last copy went, why and from
    /// which area (`None` while it has a copy or never lost one).
    pub(crate) born: Vec<u32>,
    pub(crate) gone: Vec<Option<Gone>>,
    /// Per node: its class index (set by the world); per class: store writes, store
    /// evictions, and the summed age in hours of the blocks evicted.
    pub(crate) class: Vec<u8>,
    pub(crate) class_writes: [u64; 3],
    pub(crate) class_evictions: [u64; 3],
    pub(crate) class_evicted_hours: [u64; 3],
}

/// How a block's last copy went (`diagnosis.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Gone {
    pub(crate) cause: u8,
    pub(crate) place: Place,
    pub(crate) hour: u32,
}

/// One copy as the diagnosis sees it: its node, area, and whether the node's location
/// changed since it wrote it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CopyView {
    pub(crate) node: usize,
    pub(crate) place: Place,
    pub(crate) moved: bool,
}

impl Holdings {
    pub(crate) fn new(nodes: usize, store: u32, cache: u32, store_rule: Eviction, cache_rule: Eviction) -> Self {
        let per = store + cache;
        let areas = (0..nodes as u32)
            .map(|i| {
                let area = |base, cap| Area { base, cap, len: 0, head: NONE, tail: NONE, used: 0, free: NONE };
                [area(i * per, store), area(i * per + store, cache)]
            })
            .collect();
        let slots = nodes * per as usize;
        Holdings {
            areas,
            block: vec![NONE; slots],
            prev: vec![NONE; slots],
            next: vec![NONE; slots],
            copies: Vec::new(),
            store_rule,
            cache_rule,
            store_evictions: 0,
            store_writes: 0,
            cause: 0,
            now: 0,
            moves: vec![0; nodes],
            born: Vec::new(),
            gone: Vec::new(),
            class: vec![0; nodes],
            class_writes: [0; 3],
            class_evictions: [0; 3],
            class_evicted_hours: [0; 3],
        }
    }

    /// Makes room for blocks `0..n` (new blocks have no copies).
    pub(crate) fn grow(&mut self, n: usize) {
        if self.copies.len() < n {
            self.copies.resize(n, Vec::new());
            self.born.resize(n, self.now);
            self.gone.resize(n, None);
        }
    }

    /// The copies of `block`, for the diagnosis.
    pub(crate) fn copies_of(&self, block: u32) -> impl Iterator<Item = CopyView> + '_ {
        self.copies[block as usize].iter().map(|c| CopyView {
            node: c.node as usize,
            place: c.place,
            moved: self.moves[c.node as usize] != c.moves_at,
        })
    }

    /// Drops `node`'s copy of `block` to make room (or as the node leaves), noting why
    /// if it was the last copy.
    fn lose(&mut self, node: usize, block: u32, place: Place) {
        self.remove(node, block);
        if self.copies[block as usize].is_empty() {
            self.gone[block as usize] = Some(Gone { cause: self.cause, place, hour: self.now });
        }
    }

    /// Where `node` keeps `block`, if it does.
    pub(crate) fn place(&self, node: usize, block: u32) -> Option<Place> {
        // A plain loop: this is every fetch hop's question, and debug builds (the tests)
        // pay for each iterator adapter.
        for c in &self.copies[block as usize] {
            if c.node == node as u32 {
                return Some(c.place);
            }
        }
        None
    }

    /// Whether any node for which `online` is true holds `block` (else no route can find
    /// it, wherever it starts).
    pub(crate) fn held_online(&self, block: u32, online: &[bool]) -> bool {
        self.copies[block as usize].iter().any(|c| online[c.node as usize])
    }

    /// The nodes holding `block` and where.
    #[cfg(test)]
    pub(crate) fn holders(&self, block: u32) -> impl Iterator<Item = (usize, Place)> + '_ {
        self.copies[block as usize].iter().map(|c| (c.node as usize, c.place))
    }

    /// Blocks in `node`'s store area, most recent first.
    pub(crate) fn stored(&self, node: usize) -> Vec<u32> {
        let mut out = Vec::new();
        let mut s = self.areas[node][0].head;
        while s != NONE {
            out.push(self.block[s as usize]);
            s = self.next[s as usize];
        }
        out
    }

    /// Whether `node`'s store area has a free slot.
    pub(crate) fn has_room(&self, node: usize) -> bool {
        self.areas[node][0].len < self.areas[node][0].cap
    }

    /// Blocks held per node (store, cache), summed.
    pub(crate) fn held(&self) -> (u64, u64) {
        self.areas.iter().fold((0, 0), |(s, c), a| (s + u64::from(a[0].len), c + u64::from(a[1].len)))
    }

    /// `node` reads `block`: refreshes its copy.
    pub(crate) fn touch(&mut self, node: usize, block: u32) {
        if let Some(c) = self.copies[block as usize].iter().find(|c| c.node == node as u32).copied() {
            let a = c.place as usize;
            self.unlink(node, a, c.slot);
            self.link_front(node, a, c.slot);
        }
    }

    /// `node` (at `own`) puts `block` into `place` (see the module doc for the rules);
    /// the block it evicted from the store area to make room, if any.
    pub(crate) fn put(
        &mut self,
        node: usize,
        own: Location,
        block: u32,
        place: Place,
        locations: &[Location],
        rng: &mut ChaCha8Rng,
    ) -> Option<u32> {
        match (self.place(node, block), place) {
            (Some(Place::Store), _) | (Some(Place::Cache), Place::Cache) => {
                self.touch(node, block);
                return None;
            }
            (Some(Place::Cache), Place::Store) => self.remove(node, block),
            (None, _) => {}
        }
        let a = place as usize;
        if self.areas[node][a].cap == 0 {
            return None;
        }
        let mut evicted = None;
        if self.areas[node][a].len == self.areas[node][a].cap {
            let rule = if place == Place::Store { self.store_rule } else { self.cache_rule };
            let victim = self.victim(node, a, rule, own, locations, rng);
            let old = self.block[victim as usize];
            self.lose(node, old, place);
            if place == Place::Store {
                self.count_eviction(node, old);
                self.store_evictions += 1;
                evicted = Some(old);
            }
        }
        let slot = self.slot(node, a, block);
        self.store_writes += u64::from(place == Place::Store);
        self.link_front(node, a, slot);
        self.push_copy(node, block, slot, place);
        evicted
    }

    /// `node` puts `block` into its store area `depth` of the way from the most recently
    /// used end to the cold end, the next to be dropped (`Rules::offer_depth`; 1: at the cold
    /// end, kept only while nothing else needs the room unless it is read first). A full area
    /// first drops its least recently used block (whatever the eviction rule), which it
    /// returns. A block already in the store area stays where it is; one in the cache moves.
    pub(crate) fn put_at(&mut self, node: usize, block: u32, depth: f64) -> Option<u32> {
        match self.place(node, block) {
            Some(Place::Store) => return None,
            Some(Place::Cache) => self.remove(node, block),
            None => {}
        }
        let area = self.areas[node][0];
        if area.cap == 0 {
            return None;
        }
        let mut evicted = None;
        if area.len == area.cap {
            let old = self.block[area.tail as usize];
            self.lose(node, old, Place::Store);
            self.count_eviction(node, old);
            self.store_evictions += 1;
            evicted = Some(old);
        }
        let slot = self.slot(node, 0, block);
        self.store_writes += 1;
        // Blocks ahead of the new one: `depth` of those held.
        let ahead = (depth.clamp(0.0, 1.0) * f64::from(self.areas[node][0].len)).round() as u32;
        if ahead == 0 {
            self.link_front(node, 0, slot);
        } else {
            let mut before = self.areas[node][0].head;
            for _ in 1..ahead {
                before = self.next[before as usize];
            }
            self.link_after(node, 0, before, slot);
        }
        self.push_copy(node, block, slot, Place::Store);
        evicted
    }

    /// `node` dropped `block` from its full store area.
    fn count_eviction(&mut self, node: usize, block: u32) {
        let c = usize::from(self.class[node]);
        self.class_evictions[c] += 1;
        self.class_evicted_hours[c] += u64::from(self.now.saturating_sub(self.born[block as usize]));
    }

    fn push_copy(&mut self, node: usize, block: u32, slot: u32, place: Place) {
        if place == Place::Store {
            self.class_writes[usize::from(self.class[node])] += 1;
        }
        let moves_at = self.moves[node];
        self.copies[block as usize].push(Copy_ { node: node as u32, slot, place, moves_at });
        self.gone[block as usize] = None;
    }

    /// A free slot of `node`'s area `a`, now holding `block` (not linked yet).
    fn slot(&mut self, node: usize, a: usize, block: u32) -> u32 {
        let area = &mut self.areas[node][a];
        let slot = if area.free != NONE {
            let s = area.free;
            area.free = self.next[s as usize];
            s
        } else {
            area.used += 1;
            area.base + area.used - 1
        };
        self.block[slot as usize] = block;
        slot
    }

    /// Drops `node`'s copy of `block`, if any.
    pub(crate) fn remove(&mut self, node: usize, block: u32) {
        let copies = &mut self.copies[block as usize];
        let Some(i) = copies.iter().position(|c| c.node == node as u32) else { return };
        let c = copies.swap_remove(i);
        let a = c.place as usize;
        self.unlink(node, a, c.slot);
        self.block[c.slot as usize] = NONE;
        let area = &mut self.areas[node][a];
        self.next[c.slot as usize] = area.free;
        area.free = c.slot;
    }

    /// Empties `node`'s areas (a newcomer in its place; `cause` is recorded for the
    /// blocks whose last copy this was).
    pub(crate) fn clear(&mut self, node: usize, cause: u8) {
        let was = std::mem::replace(&mut self.cause, cause);
        for (a, place) in [(0, Place::Store), (1, Place::Cache)] {
            while self.areas[node][a].head != NONE {
                let b = self.block[self.areas[node][a].head as usize];
                self.lose(node, b, place);
            }
        }
        self.cause = was;
        self.moves[node] = self.moves[node].wrapping_add(1);
    }

    fn victim(
        &self,
        node: usize,
        a: usize,
        rule: Eviction,
        own: Location,
        loc: &[Location],
        rng: &mut ChaCha8Rng,
    ) -> u32 {
        let area = self.areas[node][a];
        match rule {
            Eviction::Lru => area.tail,
            Eviction::Random => {
                // Every slot of a full area is in use.
                area.base + rng.gen_range(0..area.cap)
            }
            Eviction::NearOwn(w) => {
                let mut tail = Vec::with_capacity(w);
                let mut s = area.tail;
                while s != NONE && tail.len() < w {
                    tail.push(s);
                    s = self.prev[s as usize];
                }
                let keys = tail.iter().map(|&s| loc[self.block[s as usize] as usize]);
                tail[eviction::farthest(own, keys).unwrap_or(0)]
            }
        }
    }

    fn unlink(&mut self, node: usize, a: usize, s: u32) {
        let (p, n) = (self.prev[s as usize], self.next[s as usize]);
        let area = &mut self.areas[node][a];
        if p == NONE {
            area.head = n;
        } else {
            self.next[p as usize] = n;
        }
        if n == NONE {
            area.tail = p;
        } else {
            self.prev[n as usize] = p;
        }
        area.len -= 1;
    }

    /// Links slot `s` into area `a` right after slot `before` (in use).
    fn link_after(&mut self, node: usize, a: usize, before: u32, s: u32) {
        let after = self.next[before as usize];
        self.prev[s as usize] = before;
        self.next[s as usize] = after;
        self.next[before as usize] = s;
        let area = &mut self.areas[node][a];
        if after == NONE {
            area.tail = s;
        } else {
            self.prev[after as usize] = s;
        }
        area.len += 1;
    }

    fn link_front(&mut self, node: usize, a: usize, s: u32) {
        let area = &mut self.areas[node][a];
        self.prev[s as usize] = NONE;
        self.next[s as usize] = area.head;
        if area.head != NONE {
            self.prev[area.head as usize] = s;
        } else {
            area.tail = s;
        }
        area.head = s;
        area.len += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn locs(n: usize) -> Vec<Location> {
        (0..n).map(|i| Location::from_f64(i as f64 / n as f64)).collect()
    }

    #[test]
    fn lru_areas_evict_the_least_recently_used_and_move_cache_to_store() {
        let loc = locs(8);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut h = Holdings::new(2, 2, 1, Eviction::Lru, Eviction::Lru);
        h.grow(8);
        let own = Location(0);
        h.put(0, own, 0, Place::Store, &loc, &mut rng);
        h.put(0, own, 1, Place::Store, &loc, &mut rng);
        h.touch(0, 0);
        h.put(0, own, 2, Place::Store, &loc, &mut rng);
        assert_eq!(h.stored(0), vec![2, 0], "1 was the least recently used");
        assert_eq!(h.store_evictions, 1);
        h.put(0, own, 3, Place::Cache, &loc, &mut rng);
        assert_eq!(h.place(0, 3), Some(Place::Cache));
        h.put(0, own, 3, Place::Store, &loc, &mut rng);
        assert_eq!(h.place(0, 3), Some(Place::Store));
        assert_eq!(h.held(), (2, 0), "a block lives in one area");
        h.put(1, own, 3, Place::Cache, &loc, &mut rng);
        assert_eq!(h.holders(3).count(), 2);
        h.clear(0, 0);
        assert_eq!(h.held(), (0, 1));
        assert_eq!(h.holders(3).count(), 1);
        // Slots freed by the clear are reused.
        for b in 4..8 {
            h.put(0, own, b, Place::Store, &loc, &mut rng);
        }
        assert_eq!(h.stored(0), vec![7, 6]);
    }

    #[test]
    fn a_cold_block_is_dropped_first_unless_read() {
        let loc = locs(8);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut h = Holdings::new(1, 3, 0, Eviction::Lru, Eviction::Lru);
        h.grow(8);
        let own = Location(0);
        h.put(0, own, 0, Place::Store, &loc, &mut rng);
        h.put(0, own, 1, Place::Store, &loc, &mut rng);
        assert_eq!(h.put_at(0, 2, 1.0), None, "room: nothing dropped");
        assert_eq!(h.stored(0), vec![1, 0, 2]);
        assert_eq!(h.put(0, own, 3, Place::Store, &loc, &mut rng), Some(2), "the cold block goes first");
        // Full: a cold block takes the least recently used one's place, and is next to go.
        assert_eq!(h.put_at(0, 4, 1.0), Some(0));
        assert_eq!(h.stored(0), vec![3, 1, 4]);
        h.touch(0, 4);
        assert_eq!(h.put(0, own, 5, Place::Store, &loc, &mut rng), Some(1), "read: it is kept");
        assert_eq!(h.put_at(0, 4, 1.0), None, "held already: stays where it is");
        assert_eq!(h.stored(0), vec![5, 4, 3]);
        // Half way: one of the two left ahead of it.
        assert_eq!(h.put_at(0, 6, 0.5), Some(3));
        assert_eq!(h.stored(0), vec![5, 6, 4]);
        assert_eq!(h.put_at(0, 7, 0.0), Some(4), "depth 0: as the most recent");
        assert_eq!(h.stored(0), vec![7, 5, 6]);
    }

    #[test]
    fn near_own_keeps_the_blocks_near_the_node() {
        let loc = locs(10);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut h = Holdings::new(1, 3, 0, Eviction::NearOwn(3), Eviction::Lru);
        h.grow(10);
        let own = Location::from_f64(0.0);
        // Blocks at 0.1, 0.5 (farthest), 0.2: the new one at 0.3 evicts 0.5, not 0.1.
        for b in [1, 5, 2, 3] {
            h.put(0, own, b, Place::Store, &loc, &mut rng);
        }
        let mut held = h.stored(0);
        held.sort_unstable();
        assert_eq!(held, vec![1, 2, 3]);
    }
}
