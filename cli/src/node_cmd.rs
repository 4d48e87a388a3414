//! `pamphlet node …`: run a node and manage its identity and friends.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Result;
use pamphlet_node::daemon::{self, own_ref, Daemon, StartOptions};
use pamphlet_node::link::PeerAddr;

use crate::api_client::ApiClient;
use crate::friends_cmd;

/// `pamphlet node`: the directory and a subcommand.
#[derive(clap::Args, Debug)]
pub(crate) struct NodeArgs {
    /// The node's data directory: its configuration, keys, friends and store (default:
    /// $PAMPHLET_DIR, else ~/.pamphlet).
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) dir: Option<std::path::PathBuf>,
    #[command(subcommand)]
    pub(crate) command: NodeCommand,
}

/// `pamphlet node` subcommands.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum NodeCommand {
    /// Create the data directory and its configuration (picking a free loopback port).
    Init {
        /// Address to listen on for friends (default: 127.0.0.1 and a free port in 20000-31999; 0.0.0.0:PORT
        /// for every interface).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// An address friends dial, put in your node reference: IP:PORT, [IPv6]:PORT or
        /// HOST:PORT (resolved when they dial). Repeat for several (at most 8). Default: the
        /// listen address.
        #[arg(long, value_name = "ADDR")]
        advertise: Vec<PeerAddr>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run the node until Ctrl-C or SIGTERM (initialising the directory if needed).
    Run {
        /// Start even if the configured store_bytes is smaller than what the store holds,
        /// dropping the least recently used blocks that no longer fit (as `shrink_store =
        /// true` in config.toml does). Without it the node refuses to start and says how many
        /// blocks would go.
        #[arg(long)]
        shrink_store: bool,
    },
    /// Print this node's reference, to give to a friend (warns on stderr when it lists an
    /// address nobody else can dial).
    Noderef,
    /// Add a friend by its node reference (works while the node runs, too). A friendship
    /// works once both sides have added each other.
    AddFriend {
        /// The friend's reference, as `pamphlet node noderef` prints it.
        noderef: String,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List friends: each one's state (connected, connecting, never connected, and why the
    /// last attempt failed), addresses and when it was last seen.
    Friends {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a friend, named by its key (or the first 8 or more characters of it), its
    /// peer id, or its reference.
    RemoveFriend {
        /// The friend, as `pamphlet node friends` shows it.
        friend: String,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show the running node's status.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

impl NodeCommand {
    /// Whether JSON output was asked for.
    pub(crate) fn json(&self) -> bool {
        match self {
            NodeCommand::Init { json, .. }
            | NodeCommand::AddFriend { json, .. }
            | NodeCommand::Friends { json }
            | NodeCommand::RemoveFriend { json, .. }
            | NodeCommand::Status { json } => *json,
            NodeCommand::Run { .. } | NodeCommand::Noderef => false,
        }
    }
}

pub(crate) fn run(dir: &Path, cmd: &NodeCommand) -> Result<()> {
    match cmd {
        NodeCommand::Init { listen, advertise, json } => {
            let config = daemon::init_with(dir, *listen, advertise)?;
            let advertised = own_ref::advertised_addresses(&config, config.listen);
            let advertised: Vec<String> = advertised.iter().map(ToString::to_string).collect();
            if *json {
                println!(
                    "{}",
                    serde_json::json!({ "dir": dir, "listen": config.listen.to_string(), "advertise": advertised })
                );
            } else {
                println!(
                    "initialised {} (listening on {}; friends dial {})",
                    dir.display(),
                    config.listen,
                    advertised.join(", ")
                );
            }
            Ok(())
        }
        NodeCommand::Run { shrink_store } => run_node(dir, *shrink_store),
        NodeCommand::Noderef => friends_cmd::noderef(dir),
        NodeCommand::AddFriend { noderef, json } => friends_cmd::add_friend(dir, noderef, *json),
        NodeCommand::Friends { json } => friends_cmd::friends(dir, *json),
        NodeCommand::RemoveFriend { friend, json } => friends_cmd::remove_friend(dir, friend, *json),
        NodeCommand::Status { json } => {
            let api = ApiClient::for_dir(dir)?;
            let status = api.get_json("/v1/status")?;
            if *json {
                println!("{status}");
            } else {
                println!("location   {:.6}", status["location"].as_f64().unwrap_or(0.0));
                println!("peers      {}{}", status["peers"], crate::darknet::kinds_text(&status, " by kind: "));
                let found = crate::darknet::counts_text(&status["peers_by_found"]);
                if !found.is_empty() {
                    println!("found by   {found}");
                }
                println!("listening  {}", status["listen"].as_str().unwrap_or("?"));
                let s = &status["store"];
                println!(
                    "store      {} blocks, {} of {} bytes; {} evicted to make room since start",
                    s["store_blocks"], s["store_bytes"], s["store_capacity"], s["store_evictions"]
                );
                println!(
                    "cache      {} blocks, {} of {} bytes; {} evicted",
                    s["cache_blocks"], s["cache_bytes"], s["cache_capacity"], s["cache_evictions"]
                );
                println!("requests   {} received, {} found here", status["requests_received"], status["found_locally"]);
            }
            Ok(())
        }
    }
}

fn run_node(dir: &Path, shrink_store: bool) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let daemon = Daemon::start_with_options(dir, StartOptions::shrinking(shrink_store)).await?;
        let advertised: Vec<String> = daemon.noderef().addresses().iter().map(ToString::to_string).collect();
        eprintln!("node running: friends dial {}, API on {}", advertised.join(", "), daemon.api_addr());
        eprintln!("noderef: {}", daemon.noderef());
        crate::interrupt::signalled().await;
        eprintln!("shutting down");
        daemon.shutdown().await?;
        Ok(())
    })
}
