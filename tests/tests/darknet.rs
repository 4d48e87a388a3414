//! The local test darknet (`pamphlet darknet …`) and the demo, as a person runs them:
//! real node processes on 127.0.0.1 (and, where allowed, in network namespaces).

// Tests report what they measured or skipped on stderr.
#![allow(clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use pamphlet_node::routing::swap::COOLING_SWAPS;
use pamphlet_tests::{darknet_up, pamphlet, pamphlet_ok, random_file, setup_turn, NodeProcess};
use serde_json::Value;

/// The tests here start 20 to 128 node processes each; on a 2-core CI machine two at once
/// starved each other's handshakes (links not up within `darknet up`'s 60 s), so they
/// take turns.
static ONE_DARKNET_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_DARKNET_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn status(dir: &str) -> Value {
    serde_json::from_str(&pamphlet_ok(&["darknet", "status", "--json", "--dir", dir])).unwrap()
}

fn darknet_file(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("darknet.json")).unwrap()).unwrap()
}

#[test]
fn twenty_nodes_survive_three_failures_and_a_restart_keeps_the_store() {
    let _turn = one_at_a_time();
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("dn");
    let d = dir.to_str().unwrap().to_owned();
    let _down = darknet_up(&dir, &["--nodes", "20", "--degree", "4", "--seed", "7", "--store-mib", "4"]);
    let node = |i: usize| dir.join(format!("node{i}")).to_str().unwrap().to_owned();

    let (file, data) = random_file(root.path(), "five.bin", 5 * 1024 * 1024, 3);
    let uri = pamphlet_ok(&["insert", file.to_str().unwrap(), "--dir", &node(0)]).lines().last().unwrap().to_owned();
    let out = root.path().join("out.bin");
    pamphlet_ok(&["fetch", &uri, "-o", out.to_str().unwrap(), "--dir", &node(19)]);
    assert!(std::fs::read(&out).unwrap() == data, "5 MiB fetched byte-identical");

    // Kill three nodes that hold blocks (not the two ends), then fetch again elsewhere.
    let before = status(&d);
    // Status names where each node's browser gateway and FCP server listen.
    for n in before["nodes"].as_array().unwrap() {
        for field in ["gateway", "fcp"] {
            let addr: std::net::SocketAddr = n[field].as_str().unwrap_or_default().parse().expect("an address");
            assert!(addr.ip().is_loopback(), "{field} on {addr}");
        }
    }
    let holders: Vec<usize> =
        (1..19).filter(|&i| before["nodes"][i]["store"]["store_blocks"].as_u64() > Some(0)).collect();
    assert!(holders.len() >= 3, "the insert stored blocks on at least three nodes: {holders:?}");
    let victims = &holders[..3];
    let pids = darknet_file(&dir);
    for &v in victims {
        let pid = pids["nodes"][v]["pid"].as_u64().unwrap();
        Command::new("kill").arg("-KILL").arg(pid.to_string()).status().unwrap();
    }
    std::thread::sleep(Duration::from_millis(500));
    let out2 = root.path().join("out2.bin");
    pamphlet_ok(&["fetch", &uri, "-o", out2.to_str().unwrap(), "--dir", &node(10)]);
    assert!(std::fs::read(&out2).unwrap() == data, "fetch after three nodes died is byte-identical");

    // Restart one killed node: the blocks it stored are still there.
    let v = victims[0];
    let kept = before["nodes"][v]["store"]["store_blocks"].as_u64().unwrap();
    let _turn = setup_turn();
    let restarted = NodeProcess::start(&dir.join(format!("node{v}")));
    drop(_turn);
    std::thread::sleep(Duration::from_millis(500));
    let s: Value =
        serde_json::from_str(&pamphlet_ok(&["node", "status", "--json", "--dir", restarted.dir_str()])).unwrap();
    // At least what it held at the status snapshot: a block can still arrive between the
    // snapshot and the kill (the first fetch's healing inserts run after it returned).
    let held = s["store"]["store_blocks"].as_u64().unwrap_or(0);
    assert!(held >= kept, "a restarted node keeps its stored blocks: {kept} before, {held} after");
}

/// Inserts `docs` one-block documents from random nodes and fetches each from
/// [`FETCHES_PER_DOC`] other random nodes; returns the mean number of hops per fetch (from
/// the nodes' request counters). With `--no-cache` a fetch leaves no copy behind, so the
/// fetches of one document are independent samples of the route to it.
fn mean_fetch_hops(root: &Path, dir: &Path, docs: usize, seed: u64) -> f64 {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let d = dir.to_str().unwrap();
    let n = darknet_file(dir)["nodes"].as_array().unwrap().len();
    let node = |i: usize| dir.join(format!("node{i}")).to_str().unwrap().to_owned();
    let mut uris = Vec::new();
    for k in 0..docs {
        let (file, _) = random_file(root, &format!("doc{k}.bin"), 1000, seed * 100 + k as u64);
        let from = rng.gen_range(0..n);
        let out = pamphlet_ok(&["insert", file.to_str().unwrap(), "--dir", &node(from)]);
        uris.push((from, out.lines().last().unwrap().to_owned()));
    }
    std::thread::sleep(Duration::from_millis(450));
    let total = |s: &Value| -> u64 {
        s["nodes"].as_array().unwrap().iter().map(|n| n["requests_received"].as_u64().unwrap()).sum()
    };
    let before = total(&status(d));
    for (from, uri) in &uris {
        for _ in 0..FETCHES_PER_DOC {
            let to = (from + rng.gen_range(1..n)) % n;
            let out = root.join("fetched");
            // A fetch that fails costs all its hops too; both count.
            let _ = pamphlet(&["fetch", uri, "-o", out.to_str().unwrap(), "--dir", &node(to)]);
        }
    }
    std::thread::sleep(Duration::from_millis(450));
    (total(&status(d)) - before) as f64 / (docs * FETCHES_PER_DOC) as f64
}

/// Documents inserted in each phase of the swapping test, and fetches of each.
const DOCS: usize = 40;
const FETCHES_PER_DOC: usize = 2;

/// Sets every node's `swap_interval_ms` and empties its store (so each phase starts from
/// the same empty network), then starts them all and waits until every friend link of
/// the graph is up again, as `darknet up` does.
fn restart_all(dir: &Path, degree: &[u64], swap_ms: u64) -> Vec<NodeProcess> {
    let n = degree.len();
    let _turn = setup_turn();
    let dirs: Vec<PathBuf> = (0..n)
        .map(|i| {
            let nd = dir.join(format!("node{i}"));
            let config = std::fs::read_to_string(nd.join("config.toml")).unwrap();
            let config: String =
                config
                    .lines()
                    .map(|l| {
                        if l.starts_with("swap_interval_ms") {
                            format!("swap_interval_ms = {swap_ms}")
                        } else {
                            l.into()
                        }
                    })
                    .map(|l| l + "\n")
                    .collect();
            std::fs::write(nd.join("config.toml"), config).unwrap();
            std::fs::remove_dir_all(nd.join("store")).unwrap();
            nd
        })
        .collect();
    let nodes = NodeProcess::start_all(&dirs);
    // `darknet status` reads darknet.json; write one for these processes.
    std::fs::write(dir.join("darknet.json"), restarted_darknet_json(dir, n)).unwrap();
    let mut waited = 0;
    while nodes.iter().zip(degree).any(|(p, &d)| p.peers() < d) {
        waited += 1;
        assert!(waited < 600, "links did not all come back within 2 min of the restart");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(1));
    nodes
}

/// The question, on real processes: does swapping make fetches take fewer hops?
///
/// A paired comparison on one darknet: the same 128 nodes (same identities, so the same
/// per-link HTL coins), the same friend graph, the same documents inserted at and fetched
/// from the same nodes, stores emptied between phases, no cache (so only routing decides
/// where data is found). The only difference between the phases is the locations: the
/// random ones the darknet started with, then the ones swapping produced once every node
/// had started `COOLING_SWAPS` = 300 swaps, over which a new node swaps hot, so the network
/// has annealed (see [`swap_until_cooled`]). Links must get shorter; the route figure is
/// printed (see the end of the test for why it is not asserted).
#[test]
fn swapping_brings_friends_close_and_shortens_routes() {
    let _turn = one_at_a_time();
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("dn");
    let d = dir.to_str().unwrap().to_owned();
    let down = darknet_up(
        &dir,
        &[
            "--nodes",
            "128",
            "--degree",
            "5",
            "--seed",
            "11",
            "--htl",
            "5",
            "--store-mib",
            "2",
            "--swap-ms",
            "0",
            "--no-cache",
        ],
    );
    let layout = darknet_file(&dir);
    let edges: Vec<(usize, usize)> = serde_json::from_value(layout["edges"].clone()).unwrap();
    let initial: Vec<f64> = serde_json::from_value(layout["initial_locations"].clone()).unwrap();
    let mut degree = vec![0u64; initial.len()];
    for &(a, b) in &edges {
        degree[a] += 1;
        degree[b] += 1;
    }

    // Phase A: the random starting locations.
    let random = {
        let _down = down;
        mean_fetch_hops(root.path(), &dir, DOCS, 1)
    };

    // Swapping, then a clean stop: each node saves its new location.
    let mut swapping = restart_all(&dir, &degree, 50);
    let (median, least) = swap_until_cooled(&d);
    eprintln!("swaps started per node: median {median}, least {least} (cooling takes {COOLING_SWAPS})");
    for p in &mut swapping {
        assert!(p.stop(), "{} stops cleanly", p.dir.display());
    }

    // Phase B: the swapped locations, everything else as in phase A.
    let nodes = restart_all(&dir, &degree, 0);
    let swapped = mean_fetch_hops(root.path(), &dir, DOCS, 1);
    let locations: Vec<f64> =
        status(&d)["nodes"].as_array().unwrap().iter().map(|n| n["location"].as_f64().unwrap()).collect();
    let _ = std::fs::remove_file(dir.join("darknet.json"));
    drop(nodes);

    let (before, after) = (mean_log_link(&edges, &initial), mean_log_link(&edges, &locations));
    eprintln!("mean ln(link length): {before:.2} at the random start, {after:.2} after swapping");
    eprintln!("mean hops per fetch: {random:.2} at the random start, {swapped:.2} after swapping");
    assert!(after < before - 0.3, "swapping must shorten links: {before:.2} -> {after:.2}");
    // Routes: reported, not asserted. Three runs after cooling measured 5.95 -> 4.83,
    // 4.86 -> 4.21 and 5.03 -> 5.49 hops per fetch: 80 fetches at HTL 5 on 128 nodes are
    // too few for the difference to beat the noise every time (issue 14's notes). The
    // simulator measures routes on swapped locations at scale (docs/simulation.md).
    if swapped >= random {
        eprintln!("routes did not get shorter in this run: {random:.2} -> {swapped:.2} hops per fetch");
    }
}

/// Lets the darknet swap until every node has started [`COOLING_SWAPS`] swaps (past
/// annealing: young nodes swap hot, which scrambles as much as it sorts), or four minutes
/// pass; returns the median and the least number started. A node starts a swap only when
/// it is in none, so the rate follows the machine's load: 20 ticks a second gave about 6
/// swaps a second per node on a loaded 2-core machine, so a fixed 20 s left the network
/// hot (median about 120 swaps).
fn swap_until_cooled(d: &str) -> (u64, u64) {
    let target = u64::from(COOLING_SWAPS);
    let mut polls = 0;
    loop {
        std::thread::sleep(Duration::from_secs(3));
        polls += 1;
        let mut started: Vec<u64> =
            status(d)["nodes"].as_array().unwrap().iter().map(|n| n["swaps_attempted"].as_u64().unwrap()).collect();
        started.sort_unstable();
        let (median, least) = (started[started.len() / 2], started[0]);
        if least >= target || polls == 80 {
            return (median, least);
        }
    }
}

fn mean_log_link(edges: &[(usize, usize)], loc: &[f64]) -> f64 {
    let logs: Vec<f64> = edges
        .iter()
        .map(|&(a, b)| {
            let d = (loc[a] - loc[b]).abs();
            d.min(1.0 - d).max(1e-9).ln()
        })
        .collect();
    logs.iter().sum::<f64>() / logs.len() as f64
}

/// A darknet.json naming the processes of `NodeProcess`es started by the test (pids are
/// not needed by `status`).
fn restarted_darknet_json(dir: &Path, n: usize) -> String {
    let nodes: Vec<Value> = (0..n)
        .map(|i| serde_json::json!({ "dir": dir.join(format!("node{i}")), "pid": 0, "listen": "127.0.0.1:1" }))
        .collect();
    serde_json::json!({ "nodes": nodes, "edges": [] }).to_string()
}

#[test]
fn demo_runs_and_prints_the_uri() {
    let _turn = one_at_a_time();
    let out = pamphlet(&["demo"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "demo failed: {text}\n{}", String::from_utf8_lossy(&out.stderr));
    let uri = text.lines().find_map(|l| l.trim().strip_prefix("CHK@")).expect("the demo prints the URI it fetched");
    assert!(text.contains("fetched it in"), "{text}");
    assert!(!uri.is_empty());
}

/// `darknet up --transport udp`: every friend link runs over UDP datagrams (each node's
/// status counts its UDP links, and the table says so), a document crosses the darknet
/// byte-identical, and an opennet with it is refused (strangers' links are TCP only).
#[test]
fn a_udp_darknet_links_over_datagrams_and_fetches() {
    let _turn = one_at_a_time();
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("dn");
    let d = dir.to_str().unwrap().to_owned();
    let _down = darknet_up(&dir, &["--nodes", "5", "--seed", "3", "--store-mib", "4", "--transport", "udp"]);
    let node = |i: usize| dir.join(format!("node{i}")).to_str().unwrap().to_owned();
    let config = std::fs::read_to_string(dir.join("node0").join("config.toml")).unwrap();
    assert!(config.contains("transport = \"udp\""), "{config}");
    let s = status(&d);
    for (i, n) in s["nodes"].as_array().unwrap().iter().enumerate() {
        let peers = n["peers"].as_u64().unwrap();
        assert!(
            peers > 0 && n["udp_links"].as_u64() == Some(peers),
            "node {i}: {peers} peers, {} over UDP",
            n["udp_links"]
        );
    }
    assert!(pamphlet_ok(&["darknet", "status", "--dir", &d]).contains("(udp "), "the table shows the UDP links");

    let (file, data) = random_file(root.path(), "two.bin", 2 * 1024 * 1024, 5);
    let uri = pamphlet_ok(&["insert", file.to_str().unwrap(), "--dir", &node(0)]).lines().last().unwrap().to_owned();
    let out = root.path().join("out.bin");
    pamphlet_ok(&["fetch", &uri, "-o", out.to_str().unwrap(), "--dir", &node(4)]);
    assert!(std::fs::read(&out).unwrap() == data, "2 MiB fetched byte-identical over UDP links");

    let other = root.path().join("on");
    let refused = pamphlet(&["darknet", "up", "--opennet", "--transport", "udp", "--dir", other.to_str().unwrap()]);
    assert!(!refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("TCP only"));
    assert!(!other.join("darknet.json").exists(), "nothing was started");
}
