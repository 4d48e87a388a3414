//! The line of three nodes the offers tests start from (node/tests/offers.rs,
//! offers_key_first.rs), and the sink blocks the offers and steady-backup tests insert.

use std::time::Instant;

use pamphlet_crypto::{Block, RoutingKey};
use pamphlet_node::location::Location;
use pamphlet_node::node::DurabilityConfig;
use pamphlet_node::sim::network::Network;
use pamphlet_node::store::memory::MemoryStore;
use pamphlet_node::store::Area;

use super::routing::{chk_block, key_loc};

/// Node 0 at 0.5 between node 1 (0.2) and node 2 (0.8), in a line 1 - 0 - 2, each with
/// `offers_per_tick`; the nodes in `caching` cache passing blocks, the others hold only
/// what they store as sinks. Node 1 inserts `n` blocks whose keys lie in 0.42–0.5, for
/// which node 0 is the sink (checked: node 0 stores each, the inserter keeps none). The
/// transcript starts empty after that.
pub(crate) fn line_of_three(
    seed: u64,
    offers_per_tick: u32,
    n: usize,
    caching: &[usize],
) -> (Network, Vec<(RoutingKey, Block)>) {
    line_of_three_with(seed, offers_per_tick, n, caching, MemoryStore::default())
}

/// [`line_of_three`] with `store` as node 1's store.
#[allow(dead_code)] // Not every test binary that includes `common` uses it.
pub(crate) fn line_of_three_with(
    seed: u64,
    offers_per_tick: u32,
    n: usize,
    caching: &[usize],
    store: MemoryStore,
) -> (Network, Vec<(RoutingKey, Block)>) {
    let mut net = Network::new(seed, Instant::now());
    let mut store = Some(store);
    for (i, x) in [0.5, 0.2, 0.8].into_iter().enumerate() {
        let mut config = net.config(i, Location::from_f64(x));
        config.durability = DurabilityConfig { offers_per_tick, ..config.durability };
        config.cache_passing = caching.contains(&i);
        let own = if i == 1 { store.take().unwrap_or_default() } else { MemoryStore::default() };
        net.add_node_with(config, own);
    }
    net.connect(1, 0);
    net.connect(0, 2);
    net.run();
    let blocks = insert_at_sink(&mut net, seed, 1, 0, 0.42..0.5, n);
    for (k, b) in &blocks {
        assert_eq!(net.node(1).store().area_of(b.kind(), k), None, "seed {seed}: the inserter keeps nothing");
    }
    net.clear_transcript();
    (net, blocks)
}

/// Node `inserter` inserts the first `n` CHK blocks whose keys lie in `keys` (a range of
/// locations), one at a time; node `sink` must be their sink (checked: each ends in its
/// store area). The blocks, with their keys.
pub(crate) fn insert_at_sink(
    net: &mut Network,
    seed: u64,
    inserter: usize,
    sink: usize,
    keys: std::ops::Range<f64>,
    n: usize,
) -> Vec<(RoutingKey, Block)> {
    let blocks: Vec<_> = (0..).map(chk_block).filter(|(k, _)| keys.contains(&key_loc(k))).take(n).collect();
    for (_, b) in &blocks {
        net.insert(inserter, b.clone());
        net.run();
    }
    for (k, b) in &blocks {
        assert_eq!(
            net.node(sink).store().area_of(b.kind(), k),
            Some(Area::Store),
            "seed {seed}: node {sink} is the sink"
        );
    }
    blocks
}

/// Node 0 moves to `to` (a swap), and its offers are queued.
#[allow(dead_code)] // Not every test binary that includes `common` uses it.
pub(crate) fn move_node_0(net: &mut Network, to: f64) {
    let now = net.now();
    net.node_mut(0).set_location(now, Location::from_f64(to));
    net.flush(0);
}
