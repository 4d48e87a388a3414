//! `pamphlet node …`: run a node and manage its identity and friends.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context, Result};
use pamphlet_node::daemon::{self, Daemon, StartOptions};
use pamphlet_node::link::NodeRef;

use crate::api_client::ApiClient;

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
        /// Address friends connect to (default: 127.0.0.1 and a free port).
        #[arg(long)]
        listen: Option<SocketAddr>,
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
    /// Print this node's reference, to give to a friend.
    Noderef,
    /// Add a friend by its node reference (works while the node runs, too).
    AddFriend {
        /// The friend's reference, as `pamphlet node noderef` prints it.
        noderef: String,
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
            NodeCommand::Init { json, .. } | NodeCommand::AddFriend { json, .. } | NodeCommand::Status { json } => {
                *json
            }
            NodeCommand::Run { .. } | NodeCommand::Noderef => false,
        }
    }
}

pub(crate) fn run(dir: &Path, cmd: &NodeCommand) -> Result<()> {
    match cmd {
        NodeCommand::Init { listen, json } => {
            let config = daemon::init(dir, *listen)?;
            if *json {
                println!("{}", serde_json::json!({ "dir": dir, "listen": config.listen.to_string() }));
            } else {
                println!("initialised {} (friends connect to {})", dir.display(), config.listen);
            }
            Ok(())
        }
        NodeCommand::Run { shrink_store } => run_node(dir, *shrink_store),
        NodeCommand::Noderef => {
            let config = daemon::init(dir, None)?;
            let kp = daemon::datadir::load_or_create_keypair(&dir.join("identity.key"))?;
            println!("{}", NodeRef { addr: config.listen, key: *kp.public() });
            Ok(())
        }
        NodeCommand::AddFriend { noderef, json } => {
            let friend: NodeRef = noderef.trim().parse().context("that is not a valid node reference")?;
            match ApiClient::for_dir(dir) {
                // Running: the node connects at once and remembers the friend.
                Ok(api) if api.get_json("/v1/status").is_ok() => {
                    api.post_bytes("/v1/friends", &[], friend.to_string().as_bytes())?;
                }
                _ => {
                    daemon::init(dir, None)?;
                    daemon::datadir::append_friend(&dir.join("friends"), &friend)?;
                }
            }
            if *json {
                println!("{}", serde_json::json!({ "added": friend.key.short().to_string() }));
            } else {
                println!("added friend {}", friend.key.short());
            }
            Ok(())
        }
        NodeCommand::Status { json } => {
            let api = ApiClient::for_dir(dir)?;
            let status = api.get_json("/v1/status")?;
            if *json {
                println!("{status}");
            } else {
                println!("location   {:.6}", status["location"].as_f64().unwrap_or(0.0));
                println!("peers      {}", status["peers"]);
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
        eprintln!("node running: friends connect to {}, API on {}", daemon.noderef().addr, daemon.api_addr());
        eprintln!("noderef: {}", daemon.noderef());
        crate::interrupt::signalled().await;
        eprintln!("shutting down");
        daemon.shutdown().await?;
        Ok(())
    })
}
