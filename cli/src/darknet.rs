//! `pamphlet darknet up|status|down`: a local test darknet of real node processes on
//! loopback, friends wired as a small world, swapping running.
//!
//! `up` writes `DIR/darknet.json` (the nodes' directories, process ids and addresses);
//! `status` and `down` read it. Each node is its own OS process with its own data
//! directory (`DIR/node<i>`), port and log file (`DIR/node<i>/node.log`).

mod opennet_up;

use std::collections::VecDeque;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use pamphlet_node::daemon::config::LinkTransport;
use pamphlet_node::daemon::{self, datadir};
use pamphlet_node::sim::topology::Topology;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api_client::ApiClient;
use crate::error::cli_error;

/// Arguments of `pamphlet darknet up`.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct UpArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 16)]
    pub(crate) nodes: usize,
    /// Mean number of friends per node (a ring plus long links, Kleinberg's small world).
    #[arg(long, default_value_t = 4)]
    pub(crate) degree: usize,
    /// Seed for the graph, the starting locations and the ports (random if absent).
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// An edge list (`a b` per line, nodes numbered from 0) instead of the small world; with
    /// --wan a line may add that link's own settings (`1 2 delay=100ms,rate=5mbit`).
    #[arg(long, value_name = "FILE")]
    pub(crate) graph: Option<PathBuf>,
    /// Milliseconds between the location swaps each node starts.
    #[arg(long, default_value_t = 500)]
    pub(crate) swap_ms: u64,
    /// MiB of store (and half as much cache) per node; files are preallocated.
    #[arg(long, default_value_t = 16)]
    pub(crate) store_mib: u64,
    /// Hops-to-live of the nodes' requests and inserts (18 suits networks of thousands; a
    /// few-node darknet with 18 sends every insert to nearly every node).
    #[arg(long, default_value_t = 18, value_parser = clap::value_parser!(u8).range(1..=18))]
    pub(crate) htl: u8,
    /// Nodes keep only what they are sinks for, no copies of passing blocks (cache_bytes =
    /// 0): data then lives only where routing puts it, so hop counts show routing alone.
    #[arg(long)]
    pub(crate) no_cache: bool,
    /// WAN links: every node in its own network namespace, packets between them delayed,
    /// rate-limited and dropped by a relay, e.g. `delay=40ms,jitter=5ms,loss=0.5%,rate=20mbit`
    /// (also `queue=100ms`, the longest wait for a busy link). Needs root. docs/darknet.md.
    #[arg(long, value_name = "SPEC", value_parser = crate::wan::LinkSpec::parse)]
    pub(crate) wan: Option<crate::wan::LinkSpec>,
    /// How the friend links travel: `tcp`, or `udp` (one frame per datagram, the node's
    /// own loss recovery and congestion control; `transport` in each node's config.toml,
    /// docs/wire.md "Datagram links").
    #[arg(long, value_enum, default_value_t = Transport::Tcp)]
    pub(crate) transport: Transport,
    /// An opennet instead of a darknet: --seeds seed nodes, and the other nodes knowing
    /// only the seeds (no friends); they find each other by announcement and path
    /// folding (docs/opennet.md).
    #[arg(long)]
    pub(crate) opennet: bool,
    /// Seed nodes of an --opennet network (node0, node1, …).
    #[arg(long, default_value_t = 2)]
    pub(crate) seeds: usize,
    /// Milliseconds between the opennet upkeeps of an --opennet network's nodes (the
    /// other opennet timers scale with it; a real node's default is 10000).
    #[arg(long, default_value_t = 1000)]
    pub(crate) opennet_upkeep_ms: u64,
    /// An --opennet node's peer floor (it announces below it) and ceiling.
    #[arg(long, default_value_t = 8)]
    pub(crate) floor: usize,
    /// See --floor.
    #[arg(long, default_value_t = 20)]
    pub(crate) ceiling: usize,
    /// The most newcomers an --opennet seed holds at once.
    #[arg(long, default_value_t = 40)]
    pub(crate) seed_cap: usize,
}

/// `--transport` of `darknet up`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// TCP links (every node's default).
    Tcp,
    /// UDP datagram links.
    Udp,
}

/// What `up` records for `status` and `down`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DarknetFile {
    /// One entry per node, in order.
    pub(crate) nodes: Vec<NodeEntry>,
    /// The friend graph.
    pub(crate) edges: Vec<(usize, usize)>,
    /// The random locations the nodes started at (before any swap).
    #[serde(default)]
    pub(crate) initial_locations: Vec<f64>,
    /// An opennet's seed nodes (the first ones); 0 for a darknet.
    #[serde(default)]
    pub(crate) seeds: usize,
}

/// One node of the darknet.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct NodeEntry {
    /// Its data directory.
    pub(crate) dir: PathBuf,
    /// Its process id.
    pub(crate) pid: u32,
    /// Where friends connect.
    pub(crate) listen: SocketAddr,
}

pub(crate) fn darknet_file(dir: &Path) -> PathBuf {
    dir.join("darknet.json")
}

pub(crate) fn load(dir: &Path) -> Result<DarknetFile> {
    let path = darknet_file(dir);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("no darknet in {} (start one with `pamphlet darknet up --dir ...`)", dir.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is damaged", path.display()))
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/stat")).map(|s| !s.contains(") Z ")).unwrap_or(false)
}

/// Whether `pid` is still this darknet's node for `dir` (after a reboot the number may
/// belong to an unrelated process, which must never be signalled).
fn is_our_node(pid: u32, dir: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { return false };
    let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
    let dir = dir.as_os_str().as_encoded_bytes();
    alive(pid) && args.windows(2).any(|w| w[0] == b"--dir" && w[1] == dir) && args.contains(&&b"run"[..])
}

/// Loopback ports below Linux's ephemeral range (32768+), so no outgoing connection of
/// another node can take a port before its node binds it.
pub(crate) fn pick_ports(count: usize, rng: &mut impl Rng) -> Result<Vec<u16>> {
    let mut ports = Vec::new();
    let mut held = Vec::new();
    let mut candidate: u16 = rng.gen_range(20_000..30_000);
    while ports.len() < count {
        candidate = if candidate >= 32_000 { 20_000 } else { candidate + 1 };
        if let Ok(l) = TcpListener::bind(("127.0.0.1", candidate)) {
            ports.push(candidate);
            held.push(l);
        }
        if held.len() > 20_000 {
            bail!("no free loopback ports between 20000 and 32000");
        }
    }
    Ok(ports)
}

/// What `up` finds in its directory.
enum Found {
    /// Nothing (or an empty directory): a new darknet goes there.
    Nothing,
    /// A darknet this command made, stopped: it comes back with its data.
    Stopped(DarknetFile),
}

/// Refuses a directory that holds anything but a darknet of ours: `up` must never build
/// inside, or delete, a real node's data directory or anything else.
fn inspect(dir: &Path) -> Result<Found> {
    let entries: Vec<std::ffi::OsString> = match std::fs::read_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Nothing),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
        Ok(d) => d.map(|e| e.map(|e| e.file_name())).collect::<std::io::Result<_>>()?,
    };
    if entries.is_empty() {
        return Ok(Found::Nothing);
    }
    let shown = dir.display();
    let foreign = || {
        cli_error(
            "exists",
            format!(
                "{shown} is not empty and holds no darknet of pamphlet's: `darknet up` creates a darknet only \
                 in a new or empty directory (and restarts one it made); choose another one with --dir (e.g. \
                 --dir /tmp/pamphlet-darknet), or remove {shown} yourself if you are sure nothing in it is needed"
            ),
        )
    };
    if !entries.iter().any(|e| e == "darknet.json") {
        return Err(foreign());
    }
    let file = load(dir)?;
    if file.nodes.iter().any(|n| is_our_node(n.pid, &n.dir)) {
        return Err(cli_error(
            "exists",
            format!("a darknet is already up in {shown}: `pamphlet darknet down --dir {shown}` first"),
        ));
    }
    Ok(Found::Stopped(file))
}

/// Starts the darknet; returns when every link is up. In a directory holding a stopped
/// darknet of ours, starts its nodes again with their data (`args` then do not apply).
pub(crate) fn up(dir: &Path, args: &UpArgs) -> Result<(DarknetFile, bool)> {
    match inspect(dir)? {
        Found::Stopped(file) => restart(dir, file).map(|f| (f, true)),
        Found::Nothing if args.opennet && args.transport == Transport::Udp => Err(cli_error(
            "usage",
            "--transport udp carries friend links; an --opennet network's links to strangers run over TCP only",
        )),
        Found::Nothing if args.opennet => opennet_up::create(dir, args).map(|f| (f, false)),
        Found::Nothing => create(dir, args).map(|f| (f, false)),
    }
}

fn create(dir: &Path, args: &UpArgs) -> Result<DarknetFile> {
    let seed = args.seed.unwrap_or_else(|| rand::rngs::OsRng.gen());
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut link_settings = Vec::new();
    let topology = match &args.graph {
        Some(file) => {
            let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
            let graph = crate::wan::GraphFile::split(&text);
            let t =
                Topology::from_edge_list(&graph.edge_list).with_context(|| format!("bad graph {}", file.display()))?;
            link_settings = graph
                .overrides(args.wan)
                .map_err(|e| cli_error("usage", format!("bad graph {}: {e}", file.display())))?;
            t
        }
        None => {
            if args.nodes < 2 {
                bail!("--nodes must be at least 2");
            }
            Topology::small_world(args.nodes, args.degree.max(2), &mut rng)
        }
    };
    let n = topology.len();
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let ports = pick_ports(2 * n, &mut rng)?;
    let wan = args.wan.map(|spec| crate::wan::Plan::create(dir, n, (spec, link_settings), seed)).transpose()?;
    let dirs: Vec<PathBuf> = (0..n).map(|i| dir.join(format!("node{i}"))).collect();
    let mut refs = Vec::new();
    let mut initial_locations = Vec::new();
    for (i, d) in dirs.iter().enumerate() {
        let ip = wan.as_ref().map_or([127, 0, 0, 1], |_| crate::wan::node_addr(i).octets());
        let listen = SocketAddr::from((ip, ports[2 * i]));
        let mut config = daemon::init(d, Some(listen))?;
        config.api_listen = SocketAddr::from(([127, 0, 0, 1], ports[2 * i + 1]));
        // Every node its own free gateway port (8888 is the default of a lone node).
        config.gateway_listen = "127.0.0.1:0".into();
        config.store_bytes = args.store_mib << 20;
        config.cache_bytes = if args.no_cache { 0 } else { (args.store_mib << 20) / 2 };
        config.swap_interval_ms = args.swap_ms;
        config.max_htl = args.htl;
        config.transport = match args.transport {
            Transport::Tcp => LinkTransport::Tcp,
            Transport::Udp => LinkTransport::Udp,
        };
        config.save(&d.join("config.toml"))?;
        // Random starting locations (seeded), as a new darknet has before swapping.
        let state = datadir::NodeState { location: rng.gen(), swap_age: 0 };
        datadir::save_state(&d.join("state.toml"), &state)?;
        initial_locations.push(state.location().as_f64());
        // Signed, as `node noderef` would hand it out.
        refs.push((listen, daemon::own_ref::own_noderef(d, &config, listen)?));
    }
    let edges = topology.edges();
    for &(a, b) in &edges {
        datadir::append_friend(&dirs[a].join("friends"), &refs[b].1)?;
        datadir::append_friend(&dirs[b].join("friends"), &refs[a].1)?;
    }
    let nodes =
        dirs.iter().zip(&refs).map(|(d, (listen, _))| NodeEntry { dir: d.clone(), pid: 0, listen: *listen }).collect();
    let file = DarknetFile { nodes, edges, initial_locations, seeds: 0 };
    // Recorded before any start: a darknet cut short can be brought back or stopped whole.
    std::fs::write(darknet_file(dir), serde_json::to_string_pretty(&file)?)?;
    start_nodes(dir, file)
}

/// Starts a stopped darknet's nodes again: same directories, keys, friends and stores.
fn restart(dir: &Path, file: DarknetFile) -> Result<DarknetFile> {
    for (i, node) in file.nodes.iter().enumerate() {
        if !node.dir.join("config.toml").exists() {
            return Err(cli_error(
                "exists",
                format!(
                    "{} records node {i} in {}, which is gone: remove {} to start a new darknet",
                    darknet_file(dir).display(),
                    node.dir.display(),
                    dir.display()
                ),
            ));
        }
    }
    start_nodes(dir, file)
}

/// Starts every node process of `file` and waits until every link is up.
pub(crate) fn start_nodes(dir: &Path, mut file: DarknetFile) -> Result<DarknetFile> {
    let exe = std::env::current_exe().context("cannot find the pamphlet binary")?;
    let hint = format!("; `pamphlet darknet down --dir {}` stops what started", dir.display());
    let wan = crate::wan::Plan::load(dir)?;
    if let Some(plan) = &wan {
        let dirs: Vec<&Path> = file.nodes.iter().map(|n| n.dir.as_path()).collect();
        plan.bring_up(dir, &dirs).with_context(|| format!("cannot set up the WAN links{hint}"))?;
    }
    for i in 0..file.nodes.len() {
        let d = file.nodes[i].dir.clone();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.join("node.log"))
            .with_context(|| format!("cannot write {}", d.display()))?;
        let child = wan
            .as_ref()
            .map_or_else(|| Command::new(&exe), |plan| plan.command(i, &exe))
            .args(["node", "run", "--dir"])
            .arg(&d)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start node {i}{hint}"))?;
        file.nodes[i].pid = child.id();
        // Recorded after every start, so `down` finds every process even if a later one fails.
        std::fs::write(darknet_file(dir), serde_json::to_string_pretty(&file)?)?;
    }

    // Wait for every node's API, then for every link (an opennet: for a peer at every node).
    // The wait grows with the darknet: every process starts and handshakes on the same
    // cores, and 128 nodes on 2 loaded cores took close to a flat minute (CI once gave up
    // at node 102 of 128).
    let limit = links_limit(file.nodes.len());
    let deadline = Instant::now() + limit;
    let mut degree = vec![0usize; file.nodes.len()];
    for &(a, b) in &file.edges {
        degree[a] += 1;
        degree[b] += 1;
    }
    for (i, node) in file.nodes.iter().enumerate() {
        loop {
            let peers = ApiClient::for_dir(&node.dir).ok().and_then(|a| a.get_json("/v1/status").ok());
            let have = peers.as_ref().and_then(|s| s["peers"].as_u64());
            if have == Some(degree[i] as u64) || (file.seeds > 0 && have >= Some(1)) {
                break;
            }
            if !alive(node.pid) {
                bail!("node {i} exited; see {}{hint}", node.dir.join("node.log").display());
            }
            if Instant::now() > deadline {
                bail!(
                    "node {i}'s links did not all come up within {} s; see {}{hint}",
                    limit.as_secs(),
                    node.dir.join("node.log").display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(file)
}

/// How long `up` waits for every node's links: a minute, and half a second more per node.
fn links_limit(nodes: usize) -> Duration {
    Duration::from_secs(60) + Duration::from_millis(500) * u32::try_from(nodes).unwrap_or(u32::MAX)
}

/// Per-node status, and the mean log link length of the whole darknet.
pub(crate) struct Status {
    pub(crate) nodes: Vec<Value>,
    /// Mean of ln(distance) over every friend link (lower: more routable).
    pub(crate) mean_log_link: f64,
    /// Whether the locations are one instant's: two reads in a row agreed and no two nodes
    /// shared a location (a swap seen half done would, and one link of length 0 pulls the
    /// mean down by several units).
    pub(crate) settled: bool,
}

/// Mean of ln(circular distance) over the links: Sandberg's measure of how routable a
/// graph's locations are (lower is better).
pub(crate) fn mean_log_link(edges: &[(usize, usize)], locations: &[f64]) -> f64 {
    let logs: Vec<f64> = edges
        .iter()
        .map(|&(a, b)| {
            let d = (locations[a] - locations[b]).abs();
            d.min(1.0 - d).max(1e-9).ln()
        })
        .collect();
    logs.iter().sum::<f64>() / logs.len().max(1) as f64
}

/// E[ln d] for d uniform on (0, 1/2]: what random locations give.
pub(crate) const RANDOM_MEAN_LOG_LINK: f64 = -1.693_147_18;

/// Every node's status, read at once (one thread per node).
fn read_all(file: &DarknetFile) -> Result<Vec<Value>> {
    std::thread::scope(|scope| {
        let reads: Vec<_> = file
            .nodes
            .iter()
            .map(|node| {
                scope.spawn(move || {
                    let mut status = ApiClient::for_dir(&node.dir).and_then(|a| a.get_json("/v1/status"))?;
                    // Where a browser and FCP tools reach the node (files the node writes).
                    for (field, file) in [("gateway", "gateway.addr"), ("fcp", "fcp.addr")] {
                        let addr = std::fs::read_to_string(node.dir.join(file)).ok().map(|a| a.trim().to_owned());
                        status[field] = addr.map_or(Value::Null, Value::String);
                    }
                    Ok::<Value, anyhow::Error>(status)
                })
            })
            .collect();
        reads
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                r.join()
                    .map_err(|_| anyhow::anyhow!("reading node {i} panicked"))?
                    .with_context(|| format!("node {i} does not answer"))
            })
            .collect()
    })
}

fn locations_of(nodes: &[Value]) -> Vec<f64> {
    nodes.iter().map(|s| s["location"].as_f64().unwrap_or(0.0)).collect()
}

fn all_distinct(locations: &[f64]) -> bool {
    let mut sorted = locations.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.windows(2).all(|w| w[0] != w[1])
}

/// Every node's status once, as fast as it can be read (counters; locations may be caught
/// mid-swap).
pub(crate) fn status_now(dir: &Path) -> Result<Status> {
    let file = load(dir)?;
    let nodes = read_all(&file)?;
    let locations = locations_of(&nodes);
    let settled = all_distinct(&locations);
    Ok(Status { mean_log_link: mean_log_link(&file.edges, &locations), nodes, settled })
}

/// Every node's status with the locations of one instant: reads until two rounds agree
/// and no location appears twice (nodes refresh their status every 200 ms), at most 12
/// rounds; `settled` says whether that happened.
pub(crate) fn status(dir: &Path) -> Result<Status> {
    let file = load(dir)?;
    let mut nodes = read_all(&file)?;
    // Failing agreement, the last read without a half-done swap in it.
    let mut distinct = all_distinct(&locations_of(&nodes)).then(|| nodes.clone());
    for _ in 0..12 {
        std::thread::sleep(Duration::from_millis(250));
        let again = read_all(&file)?;
        let (before, after) = (locations_of(&nodes), locations_of(&again));
        nodes = again;
        if all_distinct(&after) {
            if before == after {
                let mean_log_link = mean_log_link(&file.edges, &after);
                return Ok(Status { nodes, mean_log_link, settled: true });
            }
            distinct = Some(nodes.clone());
        }
    }
    let nodes = distinct.unwrap_or(nodes);
    let locations = locations_of(&nodes);
    Ok(Status { mean_log_link: mean_log_link(&file.edges, &locations), nodes, settled: false })
}

pub(crate) fn print_status(dir: &Path, json: bool) -> Result<()> {
    let s = status(dir)?;
    let wan = crate::wan::links_status(dir, &load(dir)?.edges)?;
    if json {
        println!(
            "{}",
            serde_json::json!({ "nodes": s.nodes, "mean_log_link_length": s.mean_log_link, "settled": s.settled, "wan": wan })
        );
        return Ok(());
    }
    println!("node  peers  location  swaps  store(blocks)  evicted  cache(blocks)  requests  gateway  kinds");
    for (i, n) in s.nodes.iter().enumerate() {
        let num = |v: &Value| v.as_u64().unwrap_or(0);
        println!(
            "{i:>4}  {:>5}  {:>8.4}  {:>5}  {:>13}  {:>7}  {:>13}  {:>8}  http://{}/  {}",
            num(&n["peers"]),
            n["location"].as_f64().unwrap_or(0.0),
            num(&n["swaps_done"]),
            num(&n["store"]["store_blocks"]),
            num(&n["store"]["store_evictions"]),
            num(&n["store"]["cache_blocks"]),
            num(&n["requests_received"]),
            n["gateway"].as_str().unwrap_or("-"),
            links_text(n),
        );
    }
    if load(dir)?.seeds > 0 {
        println!("an opennet: {} seed nodes (node0 on); peers by kind in the last column", load(dir)?.seeds);
        return Ok(());
    }
    println!(
        "mean ln(link length): {:.3} (random locations: {:.3}; lower is more routable)",
        s.mean_log_link, RANDOM_MEAN_LOG_LINK
    );
    if !s.settled {
        println!(
            "  (swaps kept changing the locations while they were read, so this figure mixes two moments; \
             run it again, or slow swapping with a larger --swap-ms)"
        );
    }
    if let Some(wan) = wan {
        crate::wan::print_links(&wan);
    }
    Ok(())
}

/// `{"friend": 2, "stranger": 5}` as `friend 2, stranger 5` (empty for no peers).
pub(crate) fn counts_text(counts: &Value) -> String {
    let Some(map) = counts.as_object() else { return String::new() };
    map.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
}

/// The status table's last column: peers by kind, and how many links run over UDP when
/// any do (`friend 4 (udp 4)`).
fn links_text(status: &Value) -> String {
    let kinds = counts_text(&status["peers_by_kind"]);
    match status["udp_links"].as_u64() {
        Some(udp) if udp > 0 => format!("{kinds} (udp {udp})"),
        _ => kinds,
    }
}

/// A node status's peers by kind, after `prefix`, or nothing when it has none.
pub(crate) fn kinds_text(status: &Value, prefix: &str) -> String {
    let text = counts_text(&status["peers_by_kind"]);
    if text.is_empty() {
        text
    } else {
        format!("{prefix}{text}")
    }
}

/// Stops every node (SIGTERM, then SIGKILL after 10 s). The darknet's record stays, so
/// `up` can bring it back with its data.
pub(crate) fn down(dir: &Path) -> Result<()> {
    let mut file = load(dir)?;
    let ours: Vec<&NodeEntry> = file.nodes.iter().filter(|n| is_our_node(n.pid, &n.dir)).collect();
    for node in &ours {
        let _ = Command::new("kill").arg("-TERM").arg(node.pid.to_string()).status();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for node in &ours {
        while alive(node.pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if is_our_node(node.pid, &node.dir) {
            let _ = Command::new("kill").arg("-KILL").arg(node.pid.to_string()).status();
        }
    }
    for node in &mut file.nodes {
        node.pid = 0;
    }
    // The relay and the namespaces of --wan (found by name: also after a killed `up`).
    if crate::wan::Plan::load(dir)?.is_some() {
        crate::wan::tear_down(dir)?;
    }
    std::fs::write(darknet_file(dir), serde_json::to_string_pretty(&file)?)
        .with_context(|| format!("cannot write {}", darknet_file(dir).display()))?;
    Ok(())
}

/// Friend-graph distances (in links) from `from` to every node.
pub(crate) fn graph_distances(file: &DarknetFile, from: usize) -> Vec<usize> {
    let n = file.nodes.len();
    let mut adj = vec![Vec::new(); n];
    for &(a, b) in &file.edges {
        adj[a].push(b);
        adj[b].push(a);
    }
    let mut dist = vec![usize::MAX; n];
    dist[from] = 0;
    let mut queue = VecDeque::from([from]);
    while let Some(a) = queue.pop_front() {
        for &b in &adj[a] {
            if dist[b] == usize::MAX {
                dist[b] = dist[a] + 1;
                queue.push_back(b);
            }
        }
    }
    dist
}

/// `pamphlet darknet`: the directory and a subcommand.
#[derive(clap::Args, Debug)]
pub(crate) struct DarknetArgs {
    /// The darknet's directory, which holds one folder per node (node0, node1, …) and
    /// darknet.json (default: ~/.pamphlet-darknet; never a node's own directory).
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: DarknetCommand,
}

/// `pamphlet darknet` subcommands.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum DarknetCommand {
    /// Start N node processes wired as friends, and wait until every link is up (with
    /// --opennet: seeds and strangers, until every node has a peer). --dir
    /// (default ~/.pamphlet-darknet) must be new or empty, or hold a stopped darknet made
    /// there, which then comes back with its data.
    Up {
        #[command(flatten)]
        args: UpArgs,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show each node's peers, location, swaps, store and cache fill, requests served.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop every node of the darknet cleanly (`up` brings it back with its data).
    Down {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The packet relay of a --wan darknet (`up` starts it; `down` stops it).
    #[command(hide = true)]
    WanRelay,
}

impl DarknetCommand {
    /// Whether JSON output was asked for.
    pub(crate) fn json(&self) -> bool {
        match self {
            DarknetCommand::Up { json, .. } | DarknetCommand::Status { json } | DarknetCommand::Down { json } => *json,
            DarknetCommand::WanRelay => false,
        }
    }
}

pub(crate) fn run(dir: &Path, cmd: &DarknetCommand) -> Result<()> {
    match cmd {
        DarknetCommand::Up { args, json } => {
            let (file, restarted) = up(dir, args)?;
            let node0 = dir.join("node0");
            if *json {
                let nodes: Vec<&Path> = file.nodes.iter().map(|n| n.dir.as_path()).collect();
                println!(
                    "{}",
                    serde_json::json!({ "dir": dir, "nodes": nodes, "links": file.edges.len(), "restarted": restarted })
                );
                return Ok(());
            }
            let how = if restarted { "back up, with its data," } else { "up" };
            println!(
                "darknet of {} nodes {how} in {} ({} friend links)",
                file.nodes.len(),
                dir.display(),
                file.edges.len()
            );
            println!("use it with: pamphlet insert FILE --dir {}", node0.display());
            Ok(())
        }
        DarknetCommand::Status { json } => print_status(dir, *json),
        DarknetCommand::WanRelay => crate::wan::relay::run(dir),
        DarknetCommand::Down { json } => {
            down(dir)?;
            if *json {
                println!("{}", serde_json::json!({ "dir": dir, "stopped": true }));
            } else {
                println!(
                    "darknet in {} stopped; `pamphlet darknet up --dir {}` brings it back with its data, or remove \
                     the directory",
                    dir.display(),
                    dir.display()
                );
            }
            Ok(())
        }
    }
}
