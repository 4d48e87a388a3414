//! The node's durability rules across real node processes (issue 20).
//!
//! Wider top blocks: the block a URI names — the one
//! block FEC cannot rebuild and every fetch needs first — is kept in the store area of
//! every node on its insert's path with fewer than `top_sinks` (4) peers at least as close
//! to its key, not only by the sinks (docs/durability.md, "Wider top blocks"). The flag
//! travels from the CLI through the API, the client pipeline and the wire
//! (`InsertRequest.top`) to each node on the path; node/tests/top_blocks.rs checks the rule
//! itself on sans-IO nodes.
//!
//! Offers on swap: a node whose location a swap changed hands the blocks of its store area
//! that a peer is now closer to, to that peer (node/tests/offers.rs checks where they go).
//!
//! Offers on return: a node restarted with the store keys it persisted (`DIR/offers.keys`)
//! offers them to the friends that came back closer to them (node/tests/offers_on_return.rs
//! checks the rules on sans-IO nodes); one that is rarely online (`DIR/uptime`) also
//! hands the blocks it is still the closest to to a steady friend (node/tests/steady.rs).

// A test drives real processes with real time.
#![allow(clippy::disallowed_methods)]

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pamphlet_node::link::noderef::NodeRef;
use pamphlet_node::transport::peer_id_of;
use pamphlet_tests::{api_get, darknet_up, pamphlet_ok, random_file, start_chain, NodeProcess};

#[test]
fn a_documents_top_block_is_kept_along_its_whole_insert_path() {
    let root = tempfile::tempdir().unwrap();
    // A line of six: every node has at most two peers, fewer than top_sinks, so every node
    // the insert reaches keeps a top block. A plain block is kept only by sinks (nodes no
    // peer is closer than), and on a line at most 3 of the 5 nodes after the inserter
    // can be sinks for one key (no two neighbours both are).
    let nodes = start_chain(root.path(), 6);
    let (file, _) = random_file(root.path(), "note.bin", 20_000, 20);
    // 20 kB: a one-block document, whose only block is its top block.
    let out = pamphlet_ok(&["insert", file.to_str().unwrap(), "--dir", nodes[0].dir_str()]);
    assert!(out.lines().last().unwrap().starts_with("CHK@"), "{out}");
    // The status snapshots refresh on the nodes' own timers: read until the counts settle.
    let holders = || -> Vec<u64> {
        nodes
            .iter()
            .map(|n| api_get(Path::new(n.dir_str()), "/v1/status")["store"]["store_blocks"].as_u64().unwrap())
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut last, mut now) = (Vec::new(), holders());
    while (now != last || now.iter().all(|&b| b == 0)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(1));
        (last, now) = (now, holders());
    }
    let kept = now[1..].iter().filter(|&&b| b == 1).count();
    assert!(kept >= 4, "the top block is in the store area of only {kept} of the 5 nodes after the inserter: {now:?}");
}

#[test]
fn nodes_moved_by_swaps_offer_their_blocks_to_closer_peers() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("dn");
    let args = ["--nodes", "10", "--degree", "4", "--seed", "20", "--store-mib", "4", "--no-cache", "--swap-ms", "200"];
    let _down = darknet_up(&dir, &args);
    let node = |i: usize| dir.join(format!("node{i}"));
    let (file, data) = random_file(root.path(), "doc.bin", 300_000, 21);
    let out = pamphlet_ok(&["insert", file.to_str().unwrap(), "--dir", node(0).to_str().unwrap()]);
    let uri = out.lines().last().unwrap().trim().to_owned();
    // Swaps go on every 200 ms; each one that moves a node holding blocks queues offers.
    let counter = |name: &str| -> u64 {
        (0..10).map(|i| api_get(&node(i), "/v1/status")["durability"][name].as_u64().unwrap()).sum()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while counter("offers_sent") == 0 {
        assert!(
            Instant::now() < deadline,
            "no node offered a block in 60 s of swapping ({} queued)",
            counter("offers_queued")
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // The document is still whole from a node that did not insert it.
    let got = root.path().join("got.bin");
    pamphlet_ok(&["fetch", &uri, "-o", got.to_str().unwrap(), "--dir", node(9).to_str().unwrap()]);
    assert!(std::fs::read(&got).unwrap() == data);
}

/// `location = "HEX"` of a fraction of the circle, for `state.toml`.
fn state_at(x: f64) -> String {
    format!("location = \"{:x}\"\nswap_age = 100\n", (x * 2f64.powi(64)) as u64)
}

#[test]
fn a_restarted_node_offers_its_blocks_to_the_friend_that_came_back_closer() {
    // A line 0 - 1 - 2 at fixed locations (no swaps): 0.0, 0.5 and 0.55. Node 2 is down
    // while node 0 inserts a 1 MiB document: node 1 keeps (as a sink) the blocks closer to
    // 0.5 than to 0.0. Node 1 stops cleanly (its remembered keys go to DIR/offers.keys),
    // node 2 comes up, node 1 restarts: it loads the keys, its friends connect, and it
    // offers node 2 the blocks now closer to 0.55 (keys in 0.525–0.75, about 22% of node
    // 1's). Node 2 had none; it ends holding some in its store area.
    let root = tempfile::tempdir().unwrap();
    let dirs: Vec<_> = (0..3).map(|i| root.path().join(format!("node{i}"))).collect();
    let d = |i: usize| dirs[i].to_str().unwrap().to_owned();
    let mut refs = Vec::new();
    {
        let _turn = pamphlet_tests::setup_turn();
        for (i, x) in [0.0, 0.5, 0.55].into_iter().enumerate() {
            pamphlet_ok(&["node", "init", "--dir", &d(i)]);
            let config = dirs[i].join("config.toml");
            let text = std::fs::read_to_string(&config).unwrap();
            let text = text
                .replace("gateway_listen = \"127.0.0.1:8888\"", "gateway_listen = \"127.0.0.1:0\"")
                .replace("swap_interval_ms = 10000", "swap_interval_ms = 0");
            std::fs::write(&config, text).unwrap();
            std::fs::write(dirs[i].join("state.toml"), state_at(x)).unwrap();
            refs.push(pamphlet_ok(&["node", "noderef", "--dir", &d(i)]).trim().to_owned());
        }
        for (a, b) in [(0, 1), (1, 2)] {
            pamphlet_ok(&["node", "add-friend", "--dir", &d(a), &refs[b]]);
            pamphlet_ok(&["node", "add-friend", "--dir", &d(b), &refs[a]]);
        }
    }
    let status = |i: usize| api_get(&dirs[i], "/v1/status");
    let wait = |what: &str, ok: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ok() {
            assert!(Instant::now() < deadline, "{what} within 30 s");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let n0 = NodeProcess::start(&dirs[0]);
    let mut n1 = NodeProcess::start(&dirs[1]);
    wait("nodes 0 and 1 linked", &|| n0.peers() == 1 && n1.peers() == 1);
    let (file, _) = random_file(root.path(), "doc.bin", 1 << 20, 22);
    let out = pamphlet_ok(&["insert", file.to_str().unwrap(), "--dir", &d(0)]);
    assert!(out.lines().last().unwrap().starts_with("CHK@"), "{out}");
    wait("node 1 stores blocks", &|| status(1)["store"]["store_blocks"].as_u64().unwrap() > 0);
    assert!(n1.stop(), "node 1 stops cleanly");
    assert!(dirs[1].join("offers.keys").exists(), "node 1 persisted its remembered keys");
    // Steady backups (docs/durability.md, "Steady backups in the node"): node 1's history
    // says it ran one hour two days ago (online 2% of the time) and saw node 0 connected
    // for the whole of a day (steady), node 2 never. Back, it hands the blocks it is still
    // the closest to (keys in 0.25-0.525) to node 0, whose sink test without node 1 wants
    // them (it has no other peer), and node 0 keeps them in its store area.
    let node0: NodeRef = refs[0].parse().unwrap();
    let unix = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let history = format!(
        "pamphlet-uptime 1\ns {} {}\np {:016x} 86400 86400\n",
        unix - 2 * 86_400,
        unix - 2 * 86_400 + 3_600,
        peer_id_of(&node0.key).0
    );
    std::fs::write(dirs[1].join("uptime"), history).unwrap();
    let n2 = NodeProcess::start(&dirs[2]);
    let n1 = NodeProcess::start(&dirs[1]);
    wait("node 1 linked to both", &|| n1.peers() == 2);
    wait("node 2 holds offered blocks", &|| status(2)["store"]["store_blocks"].as_u64().unwrap() > 0);
    // Node 1's status snapshot refreshes on its own timer: wait for it to show the offers.
    wait("node 1's status shows offers sent", &|| status(1)["durability"]["offers_sent"].as_u64().unwrap() > 0);
    let counters = status(1)["durability"].clone();
    assert!(counters["keys_loaded"].as_u64().unwrap() > 0, "{counters}");
    assert!(counters["returns"].as_u64().unwrap() >= 1, "{counters}");
    assert!(counters["offers_sent"].as_u64().unwrap() > 0, "{counters}");
    assert!(counters["own_uptime"].as_f64().is_some_and(|u| u < 0.1), "{counters}");
    wait("node 1 queued steady backups", &|| status(1)["durability"]["steady_backups_queued"].as_u64().unwrap() > 0);
    wait("node 0 kept node 1's backups", &|| status(0)["durability"]["steady_backups_kept"].as_u64().unwrap() > 0);
    drop((n0, n1, n2));
}
