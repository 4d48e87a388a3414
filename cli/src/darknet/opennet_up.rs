//! `pamphlet darknet up --opennet`: a local test opennet (issue 19; docs/opennet.md
//! "Running an opennet node"). `--seeds` seed nodes (`seed_node = true`) and the other
//! nodes in opennet mode, every one of them knowing only the seeds: their references are
//! in each node's `DIR/node<i>/seednodes`. No friend links; the nodes find each other by
//! announcement and path folding.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use pamphlet_node::daemon::{self, datadir, opennet};
use pamphlet_node::routing::opennet::Mode;
use rand::{Rng, SeedableRng};

use super::{self as darknet, DarknetFile, NodeEntry, UpArgs};

/// Creates the nodes' directories (seeds first) and starts them; returns once every node
/// has a peer.
pub(crate) fn create(dir: &Path, args: &UpArgs) -> Result<DarknetFile> {
    let n = args.nodes;
    if args.seeds == 0 || args.seeds >= n {
        bail!("--seeds must be at least 1 and below --nodes ({n})");
    }
    if args.graph.is_some() || args.wan.is_some() {
        bail!("--opennet builds no friend graph and runs on loopback: drop --graph and --wan");
    }
    // The opennet settings are checked before any directory is made.
    let check = daemon::config::Config {
        mode: Mode::Opennet,
        opennet_upkeep_ms: args.opennet_upkeep_ms,
        opennet_floor: args.floor,
        opennet_ceiling: args.ceiling,
        seed_cap: args.seed_cap,
        ..daemon::config::Config::default()
    };
    check
        .validate()
        .map_err(|e| anyhow::anyhow!("{e} (from --floor, --ceiling, --seed-cap or --opennet-upkeep-ms)"))?;
    let seed = args.seed.unwrap_or_else(|| rand::rngs::OsRng.gen());
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    std::fs::create_dir_all(dir)?;
    let ports = darknet::pick_ports(2 * n, &mut rng)?;
    let dirs: Vec<PathBuf> = (0..n).map(|i| dir.join(format!("node{i}"))).collect();
    let mut seeds = Vec::new();
    let mut initial_locations = Vec::new();
    let mut nodes = Vec::new();
    for (i, d) in dirs.iter().enumerate() {
        let listen = SocketAddr::from(([127, 0, 0, 1], ports[2 * i]));
        let mut config = daemon::init(d, Some(listen))?;
        config.api_listen = SocketAddr::from(([127, 0, 0, 1], ports[2 * i + 1]));
        config.gateway_listen = "127.0.0.1:0".into();
        config.store_bytes = args.store_mib << 20;
        config.cache_bytes = if args.no_cache { 0 } else { (args.store_mib << 20) / 2 };
        config.max_htl = args.htl;
        config.mode = Mode::Opennet;
        config.seed_node = i < args.seeds;
        config.opennet_upkeep_ms = args.opennet_upkeep_ms;
        config.opennet_floor = args.floor;
        config.opennet_ceiling = args.ceiling;
        config.seed_cap = args.seed_cap;
        // Every node of a local test network shares 127.0.0.1.
        config.strangers_per_ip = n;
        config.strangers_per_subnet = n;
        config.save(&d.join("config.toml"))?;
        let state = datadir::NodeState { location: rng.gen(), swap_age: 0 };
        datadir::save_state(&d.join("state.toml"), &state)?;
        initial_locations.push(state.location().as_f64());
        if i < args.seeds {
            seeds.push(daemon::own_ref::own_noderef(d, &config, listen)?);
        }
        nodes.push(NodeEntry { dir: d.clone(), pid: 0, listen });
    }
    // Seeds know each other too (a seed skips its own line).
    for d in &dirs {
        opennet::save_refs(&d.join(opennet::SEEDNODES), &seeds)?;
    }
    let file = DarknetFile { nodes, edges: Vec::new(), initial_locations, seeds: args.seeds };
    std::fs::write(darknet::darknet_file(dir), serde_json::to_string_pretty(&file)?)?;
    darknet::start_nodes(dir, file)
}
