//! `pamphlet keepalive` and `pamphlet pin` on real node processes (issue 20): a document
//! loses a third of its blocks from every node that held them; keepalive at one node (by
//! hand, or the node's own pass over its pins) finds exactly those missing, rebuilds them
//! with FEC and inserts them again, and the document is whole: a second keepalive
//! elsewhere finds nothing missing, and a node that never fetched it gets it byte for byte.
//!
//! Blocks are removed precisely rather than by wiping whole nodes: with the nodes stopped,
//! the test opens each node's store itself and removes the chosen blocks (their keys come
//! from encoding the same bytes here: CHK blocks are convergent).

// A test drives real processes with real time, and reports what it removed on stderr.
#![allow(clippy::disallowed_methods, clippy::print_stderr)]

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use pamphlet_crypto::{BlockKind, RoutingKey};
use pamphlet_node::client::splitfile::{self, InsertOptions};
use pamphlet_node::daemon::config::Config;
use pamphlet_node::store::disk::{DiskStore, DiskStoreConfig};
use pamphlet_node::store::BlockStore;
use pamphlet_tests::{pamphlet_ok, start_chain, NodeProcess};
use rand::{RngCore, SeedableRng};
use serde_json::Value;

/// Removes `keys` from the store of the (stopped) node in `dir`; returns those it held.
fn remove_blocks(dir: &Path, keys: &[RoutingKey]) -> HashSet<RoutingKey> {
    let config = Config::load(&dir.join("config.toml")).unwrap();
    let mut store = DiskStore::open(dir.join("store"), DiskStoreConfig::new(config.store_bytes, config.cache_bytes))
        .expect("open the node's store");
    keys.iter().copied().filter(|k| store.remove(BlockKind::Chk, k)).collect()
}

fn keepalive(node: &Path, uri: &str) -> Value {
    let out = pamphlet_ok(&["keepalive", uri, "--json", "--dir", node.to_str().unwrap()]);
    serde_json::from_str::<Value>(out.trim()).unwrap()["kept"].clone()
}

/// A chain of four nodes holding a fresh 1 MiB document inserted at node 0, then stopped
/// while every third of its data and check blocks is removed from every store, and started
/// again (`edit` may change a node's config meanwhile). Returns the nodes, the URI, the
/// bytes, how many blocks were removed and how many the document has.
fn a_document_missing_a_third(
    root: &Path,
    seed: u64,
    edit: impl Fn(usize, &mut Config),
) -> (Vec<NodeProcess>, String, Vec<u8>, usize, usize) {
    let mut nodes = start_chain(root, 4);
    let mut data = vec![0u8; 1 << 20];
    rand_chacha::ChaCha8Rng::seed_from_u64(seed).fill_bytes(&mut data);
    let file = root.join("leaflet.bin");
    std::fs::write(&file, &data).unwrap();
    let out = pamphlet_ok(&["insert", file.to_str().unwrap(), "--dir", nodes[0].dir_str()]);
    let uri = out.lines().last().unwrap().trim().to_owned();

    // Every third data or check block (never the top block): at most a third of each
    // segment, which FEC (half as many check blocks as data blocks) can still rebuild.
    let encoded = splitfile::encode(&data, &InsertOptions::default()).unwrap();
    let top = encoded.top.routing_key;
    let lost: Vec<RoutingKey> =
        encoded.blocks.iter().map(|b| b.routing_key()).filter(|k| *k != top).skip(2).step_by(3).collect();
    let total = encoded.blocks.len();
    assert!(lost.len() * 3 >= total - 3, "about a third: {} of {total}", lost.len());

    for n in &mut nodes {
        assert!(n.stop(), "node {} stops cleanly", n.dir.display());
    }
    let mut held = HashSet::new();
    for (i, n) in nodes.iter().enumerate() {
        held.extend(remove_blocks(&n.dir, &lost));
        let path = n.dir.join("config.toml");
        let mut config = Config::load(&path).unwrap();
        edit(i, &mut config);
        config.save(&path).unwrap();
    }
    assert_eq!(held.len(), lost.len(), "every chosen block was held somewhere, and is gone now");
    eprintln!("removed {} of the document's {total} blocks from every store", lost.len());
    let dirs: Vec<_> = nodes.iter().map(|n| n.dir.clone()).collect();
    drop(nodes);
    let nodes: Vec<NodeProcess> = dirs.iter().map(|d| NodeProcess::start(d)).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !nodes.iter().enumerate().all(|(i, p)| p.peers() == if i == 0 || i == 3 { 1 } else { 2 }) {
        assert!(Instant::now() < deadline, "links did not come back");
        std::thread::sleep(Duration::from_millis(100));
    }
    (nodes, uri, data, lost.len(), total)
}

/// Whole again: another node's keepalive finds nothing missing, and a node that never
/// fetched it gets it byte for byte.
fn assert_whole(root: &Path, nodes: &[NodeProcess], uri: &str, data: &[u8]) {
    let again = keepalive(&nodes[1].dir, uri);
    assert_eq!(again["missing"].as_u64(), Some(0), "{again}");
    let got = root.join("got.bin");
    pamphlet_ok(&["fetch", uri, "-o", got.to_str().unwrap(), "--dir", nodes[2].dir_str()]);
    assert!(std::fs::read(&got).unwrap() == data, "byte for byte");
}

#[test]
fn keepalive_makes_a_document_that_lost_a_third_of_its_blocks_whole_again() {
    let root = tempfile::tempdir().unwrap();
    let (nodes, uri, data, lost, total) = a_document_missing_a_third(root.path(), 20, |_, _| {});
    let kept = keepalive(&nodes[3].dir, &uri);
    assert_eq!(kept["missing"].as_u64(), Some(lost as u64), "{kept}");
    assert_eq!(kept["reinserted"].as_u64(), Some(lost as u64), "{kept}");
    assert_eq!(kept["probed"].as_u64().map(|p| p >= total as u64), Some(true), "every block probed: {kept}");
    assert_whole(root.path(), &nodes, &uri, &data);
}

/// `pamphlet pin`: the node keeps the document alive on its own, every
/// `keepalive_interval_secs` (3 s here), and `pamphlet pin` shows what the pass found.
#[test]
fn a_pinned_document_is_kept_alive_by_the_node() {
    let root = tempfile::tempdir().unwrap();
    let (nodes, uri, data, lost, _) =
        a_document_missing_a_third(root.path(), 21, |i, c| c.keepalive_interval_secs = if i == 3 { 3 } else { 0 });
    let dir = nodes[3].dir_str();
    let out = pamphlet_ok(&["pin", &uri, "--dir", dir]);
    assert!(out.contains("pinned") && out.contains("every"), "{out}");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let list: Value = serde_json::from_str(pamphlet_ok(&["pin", "--json", "--dir", dir]).trim()).unwrap();
        assert_eq!(list["pins"][0].as_str(), Some(uri.as_str()), "{list}");
        let last = &list["last"][0];
        if last["uri"].as_str() == Some(uri.as_str()) && last["kept"]["missing"].as_u64() == Some(lost as u64) {
            assert_eq!(last["kept"]["reinserted"].as_u64(), Some(lost as u64), "{last}");
            break;
        }
        assert!(Instant::now() < deadline, "no pass found the missing blocks: {list}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_whole(root.path(), &nodes, &uri, &data);
    let out = pamphlet_ok(&["pin", "--remove", &uri, "--dir", dir]);
    assert!(out.contains("unpinned"), "{out}");
}
