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

// A test drives real processes with real time.
#![allow(clippy::disallowed_methods)]

use std::path::Path;
use std::time::{Duration, Instant};

use pamphlet_tests::{api_get, pamphlet_ok, random_file, start_chain, DarknetDown};

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
    let d = dir.to_str().unwrap().to_owned();
    let args = ["darknet", "up", "--nodes", "10", "--degree", "4", "--seed", "20", "--store-mib", "4"];
    pamphlet_ok(&[&args[..], &["--no-cache", "--swap-ms", "200", "--dir", &d]].concat());
    let _down = DarknetDown(d.clone());
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
