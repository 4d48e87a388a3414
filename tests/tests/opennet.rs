//! Opennet on real processes (issue 19): `pamphlet darknet up --opennet` starts 2 seed
//! nodes and 38 nodes that know only the seeds; they find each other by announcement and
//! path folding over real TCP + Noise links.

// Tests report what they measured on stderr, and wait on the real clock.
#![allow(clippy::print_stderr, clippy::disallowed_methods)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use pamphlet_tests::{api_get, darknet_up, pamphlet, pamphlet_ok, random_file, setup_turn, NodeProcess};
use rand::{Rng, SeedableRng};
use serde_json::Value;

/// Nodes in all, of which the first `SEEDS` are seeds.
const NODES: usize = 40;
const SEEDS: usize = 2;
/// The nodes' peer floor (below it a node announces) and ceiling. Lower than a real
/// node's 8 and 20: with up to 20 peers among 40 nodes nearly every fetch takes one or two
/// hops from the start (measured: 1.50 hops over the first 50 fetches), and there is
/// nothing for path folding to shorten. With a ceiling of 10 most requesters were full
/// and took few folding offers (the same 50 fetches: 2.04 -> 1.66, 2.12 -> 1.82 hops).
const FLOOR: u64 = 5;
const CEILING: u64 = 16;
/// The fewest peers every node must reach: the floor.
const MIN_PEERS: u64 = FLOOR;
/// The most newcomers a seed holds at once (`seed_cap`, 40 by default): lowered so that
/// 38 newcomers arriving together are more than the two seeds hold, and the cap binds.
const SEED_CAP: u64 = 12;

fn status(d: &str) -> Value {
    serde_json::from_str(&pamphlet_ok(&["darknet", "status", "--json", "--dir", d])).unwrap()
}

fn peers(s: &Value) -> Vec<u64> {
    s["nodes"].as_array().unwrap().iter().map(|n| n["peers"].as_u64().unwrap_or(0)).collect()
}

fn requests(s: &Value) -> u64 {
    s["nodes"].as_array().unwrap().iter().map(|n| n["requests_received"].as_u64().unwrap_or(0)).sum()
}

/// `count` random fetches: a random document from a random node other than its
/// publisher, as (document, node) pairs.
fn random_pairs(count: usize, docs: usize, publishers: &[usize], rng: &mut impl Rng) -> Vec<(usize, usize)> {
    (0..count)
        .map(|_| {
            let doc = rng.gen_range(0..docs);
            (doc, (publishers[doc] + rng.gen_range(1..NODES)) % NODES)
        })
        .collect()
}

/// Runs the fetches; returns the mean number of hops per fetch (requests received by all
/// nodes, over fetches; a failed fetch costs its hops too).
fn fetch_hops(root: &Path, d: &str, uris: &[String], pairs: &[(usize, usize)]) -> f64 {
    std::thread::sleep(Duration::from_millis(450));
    let before = requests(&status(d));
    let out = root.join("fetched");
    for &(doc, node) in pairs {
        let _ = pamphlet(&["fetch", &uris[doc], "-o", out.to_str().unwrap(), "--dir", &format!("{d}/node{node}")]);
    }
    std::thread::sleep(Duration::from_millis(450));
    (requests(&status(d)) - before) as f64 / pairs.len() as f64
}

/// The connected parts of the network's peer graph (seeds included), from every node's
/// `GET /v1/peers`: 1 when every node can reach every other.
fn components(d: &str) -> usize {
    let dir = |i: usize| Path::new(d).join(format!("node{i}"));
    let at: Vec<f64> = (0..NODES).map(|i| api_get(&dir(i), "/v1/status")["location"].as_f64().unwrap()).collect();
    let index = |l: f64| at.iter().position(|&x| (x - l).abs() < 1e-12);
    let mut part: Vec<usize> = (0..NODES).collect();
    fn root(part: &mut [usize], mut i: usize) -> usize {
        while part[i] != i {
            part[i] = part[part[i]];
            i = part[i];
        }
        i
    }
    for i in 0..NODES {
        for p in api_get(&dir(i), "/v1/peers").as_array().unwrap() {
            if let Some(j) = p["location"].as_f64().and_then(index) {
                let (a, b) = (root(&mut part, i), root(&mut part, j));
                part[a] = b;
            }
        }
    }
    (0..NODES).filter(|&i| root(&mut part, i) == i).count()
}

// This test found the seeds splitting 40 nodes started at once into islands (one to
// three parts, fetches of 19-53 requests failing "not found"): newcomers that arrived
// together found each other through the seed, and the seed let them go once they had their
// floor of peers, with no link from their clique to the rest. Seeds now hold a newcomer
// until it links outside the seed's nursery (docs/opennet.md); `components` checks it.
#[test]
fn strangers_from_two_seeds_form_a_network_that_path_folding_shortens_and_restarts_rejoin() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("on");
    let d = dir.to_str().unwrap().to_owned();
    let started = Instant::now();
    let _down = darknet_up(
        &dir,
        &[
            "--opennet",
            "--seeds",
            &SEEDS.to_string(),
            "--nodes",
            &NODES.to_string(),
            "--seed",
            "19",
            "--store-mib",
            "4",
            "--htl",
            "10",
            "--no-cache",
            "--opennet-upkeep-ms",
            "500",
            "--floor",
            &FLOOR.to_string(),
            "--ceiling",
            &CEILING.to_string(),
            "--seed-cap",
            &SEED_CAP.to_string(),
        ],
    );
    let node = |i: usize| format!("{d}/node{i}");

    // Every node reaches the floor set here, within a minute; seeds never hold more
    // newcomers (strangers that dialled in) than their cap.
    let seeds_within_cap = |s: &Value| {
        for i in 0..SEEDS {
            let inbound = s["nodes"][i]["peers_by_found"]["inbound"].as_u64().unwrap_or(0);
            assert!(inbound <= SEED_CAP, "seed {i} holds {inbound} newcomers, over its cap of {SEED_CAP}");
        }
    };
    let mut s = status(&d);
    seeds_within_cap(&s);
    while peers(&s).iter().any(|&p| p < MIN_PEERS) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "not every node reached {MIN_PEERS} peers: {:?}",
            peers(&s)
        );
        std::thread::sleep(Duration::from_millis(500));
        s = status(&d);
        seeds_within_cap(&s);
    }
    eprintln!("every node has at least {MIN_PEERS} peers after {:.1?}: {:?}", started.elapsed(), peers(&s));
    assert_eq!(components(&d), 1, "one network, not islands");
    for (i, n) in s["nodes"].as_array().unwrap().iter().enumerate() {
        let kinds = &n["peers_by_kind"];
        if i >= SEEDS {
            assert!(kinds["friend"].is_null(), "node {i} has no friends: {kinds}");
            assert!(kinds["stranger"].as_u64() >= Some(1), "node {i} found strangers: {kinds}");
        }
    }
    let full: u64 = (0..SEEDS).map(|i| s["nodes"][i]["opennet"]["refused_seed_full"].as_u64().unwrap_or(0)).sum();
    eprintln!("the seeds refused {full} newcomers at their cap");
    assert!(full > 0, "38 newcomers at two seeds of cap {SEED_CAP}: the cap must have refused some");
    let found = &s["nodes"][SEEDS + 1]["peers_by_found"];
    assert!(!found.as_object().unwrap().is_empty(), "status says how peers were found: {found}");

    // Path folding on real links (one-block documents, no cache: only routing decides
    // the hops), measured before the 2 MiB transfer's hundred fetches fold paths too. 200
    // fetches: the first 50 random (document, node) pairs, 100 more random ones, and the
    // first 50 again. Asserted: the same 50 fetches take fewer hops the second time (path
    // folding connected their requesters to where the data was; measured 1.88 -> 1.06 and
    // 1.82 -> 1.30). Printed beside it: 50 fresh random pairs after those, against the
    // first 50 (1.66 and 1.72): among 40 nodes the first fetches already take under 2
    // hops, and that difference is within the noise of 50 fetches (at a ceiling of 10 one
    // run in three measured none: 1.92 -> 1.96).
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let mut uris = Vec::new();
    let mut publishers = Vec::new();
    for k in 0..20 {
        let (file, _) = random_file(root.path(), &format!("doc{k}.bin"), 1000, 100 + k);
        let from = rng.gen_range(0..NODES);
        let out = pamphlet_ok(&["insert", file.to_str().unwrap(), "--dir", &node(from)]);
        uris.push(out.lines().last().unwrap().to_owned());
        publishers.push(from);
    }
    let degree_before: u64 = peers(&status(&d)).iter().sum();
    let first_pairs = random_pairs(50, uris.len(), &publishers, &mut rng);
    let first = fetch_hops(root.path(), &d, &uris, &first_pairs);
    let _ = fetch_hops(root.path(), &d, &uris, &random_pairs(100, uris.len(), &publishers, &mut rng));
    let again = fetch_hops(root.path(), &d, &uris, &first_pairs);
    let fresh = fetch_hops(root.path(), &d, &uris, &random_pairs(50, uris.len(), &publishers, &mut rng));
    let degree_after: u64 = peers(&status(&d)).iter().sum();
    eprintln!(
        "mean hops per fetch: {first:.2} over the first 50 fetches, {again:.2} over the same 50 as fetches 151-200, \
         {fresh:.2} over 50 fresh random ones after them; mean degree {:.1} -> {:.1}",
        degree_before as f64 / NODES as f64,
        degree_after as f64 / NODES as f64
    );
    assert!(again < first, "path folding must shorten the routes of fetches made before: {first:.2} -> {again:.2}");
    assert_eq!(components(&d), 1, "still one network after the seeds let their newcomers go");

    // A 2 MiB document inserted at one node is fetched byte-identical at another.
    let (file, data) = random_file(root.path(), "two.bin", 2 * 1024 * 1024, 5);
    let uri = pamphlet_ok(&["insert", file.to_str().unwrap(), "--dir", &node(5)]).lines().last().unwrap().to_owned();
    let out = root.path().join("two.out");
    pamphlet_ok(&["fetch", &uri, "-o", out.to_str().unwrap(), "--dir", &node(NODES - 3)]);
    assert!(std::fs::read(&out).unwrap() == data, "2 MiB fetched byte-identical");

    // A restarted node reconnects from its saved strangers, with both seeds gone.
    let k = NODES - 1;
    let layout: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("darknet.json")).unwrap()).unwrap();
    let pid = |i: usize| layout["nodes"][i]["pid"].as_u64().unwrap().to_string();
    let saved = std::fs::read_to_string(dir.join(format!("node{k}/opennet-peers"))).unwrap_or_default();
    assert!(saved.lines().count() >= 1, "node {k} saved its strangers' references");
    for victim in [k, 0, 1] {
        Command::new("kill").arg("-TERM").arg(pid(victim)).status().unwrap();
    }
    let gone = Instant::now();
    while [k, 0, 1].iter().any(|&i| Path::new(&format!("/proc/{}", pid(i))).exists()) {
        assert!(gone.elapsed() < Duration::from_secs(20), "nodes did not stop");
        std::thread::sleep(Duration::from_millis(100));
    }
    let restarted = {
        let _turn = setup_turn();
        NodeProcess::start(&dir.join(format!("node{k}")))
    };
    let back = Instant::now();
    while restarted.peers() < 3 {
        assert!(back.elapsed() < Duration::from_secs(30), "the restarted node did not reconnect without the seeds");
        std::thread::sleep(Duration::from_millis(200));
    }
    let s: Value = serde_json::from_str(&pamphlet_ok(&["node", "status", "--json", "--dir", &node(k)])).unwrap();
    eprintln!("restarted node: {} peers, by kind {}, found by {}", s["peers"], s["peers_by_kind"], s["peers_by_found"]);
    assert!(s["peers_by_found"]["reconnect"].as_u64() >= Some(1), "{}", s["peers_by_found"]);
    assert!(s["peers_by_kind"]["seed"].is_null(), "no seed: both are down");
}

/// A data directory initialised with `edit` applied to its configuration; returns its
/// node reference.
fn init_node(dir: &Path, edit: impl FnOnce(&mut pamphlet_node::daemon::config::Config)) -> String {
    use pamphlet_node::daemon;
    let mut config = daemon::init(dir, None).unwrap();
    config.gateway_listen = "off".into();
    config.strangers_per_ip = 8;
    config.strangers_per_subnet = 8;
    config.opennet_upkeep_ms = 500;
    edit(&mut config);
    config.save(&dir.join("config.toml")).unwrap();
    daemon::own_ref::own_noderef(dir, &config, config.listen).unwrap().to_string()
}

fn node_status(dir: &Path) -> Value {
    serde_json::from_str(&pamphlet_ok(&["node", "status", "--json", "--dir", dir.to_str().unwrap()])).unwrap()
}

/// Hybrid keeps its friends and adds strangers beside them; a darknet node listed as a
/// seed answers nobody it does not know (its handshake stays silent), so it gets no peer.
#[test]
fn hybrid_nodes_keep_friends_beside_strangers_and_a_darknet_node_stays_closed() {
    use pamphlet_node::routing::opennet::Mode;
    let root = tempfile::tempdir().unwrap();
    let [s, a, b, dark] = ["seed", "a", "b", "dark"].map(|n| root.path().join(n));
    let _turn = setup_turn();
    let seed_ref = init_node(&s, |c| {
        c.mode = Mode::Opennet;
        c.seed_node = true;
    });
    let dark_ref = init_node(&dark, |_| {});
    let a_ref = init_node(&a, |c| c.mode = Mode::Hybrid);
    let b_ref = init_node(&b, |c| c.mode = Mode::Hybrid);
    std::fs::write(a.join("friends"), format!("{b_ref}\n")).unwrap();
    std::fs::write(b.join("friends"), format!("{a_ref}\n")).unwrap();
    for d in [&a, &b] {
        std::fs::write(d.join("seednodes"), format!("{seed_ref}\n{dark_ref}\n")).unwrap();
    }
    let procs: Vec<NodeProcess> = [&s, &dark, &a, &b].iter().map(|d| NodeProcess::start(d)).collect();
    drop(_turn);
    let started = Instant::now();
    let ready = |st: &Value| st["peers_by_kind"]["friend"] == 1 && st["peers_by_kind"]["seed"] == 1;
    // The seed's side too: under load a link can be up at one end a moment before the
    // other end's node has admitted it.
    let seed_has_both = || node_status(&s)["peers_by_kind"]["stranger"] == 2;
    while !(ready(&node_status(&a)) && ready(&node_status(&b)) && seed_has_both()) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "hybrid nodes did not get their friend and the seed: {} / {} / seed {}",
            node_status(&a)["peers_by_kind"],
            node_status(&b)["peers_by_kind"],
            node_status(&s)["peers_by_kind"]
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let st = node_status(&a);
    assert_eq!(st["peers_by_found"]["friends file"], 1, "{}", st["peers_by_found"]);
    assert_eq!(node_status(&s)["peers_by_kind"]["stranger"], 2, "the seed took both as strangers");
    // The darknet node was dialled by both (it is in their seeds file) and answered neither.
    assert_eq!(node_status(&dark)["peers"], 0);
    assert!(st["peers_by_kind"]["stranger"].is_null(), "no stranger link to the darknet node: {}", st["peers_by_kind"]);
    drop(procs);
}
