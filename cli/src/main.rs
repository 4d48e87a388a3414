//! `pamphlet`: the command-line tool. Every subcommand is a thin layer over the library
//! crates or the running node's API; errors are `anyhow` here and only here, with messages
//! a person can act on.

#![forbid(unsafe_code)]
// The CLI is a driver: it may read the clock (progress, benchmarks).
#![allow(clippy::disallowed_methods)]
// Printing is this crate's job.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

mod api_client;
mod darknet;
mod demo;
mod failure;
mod keygen;
mod node_cmd;
mod sim;
mod site;
mod transfer;

/// Publish and fetch documents anonymously on a friend-to-friend network.
#[derive(Parser, Debug)]
#[command(name = "pamphlet", version, about, long_about = None)]
struct Cli {
    /// The node's data directory (default: $PAMPHLET_DIR, else ~/.pamphlet).
    #[arg(long, global = true, value_name = "DIR")]
    dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a new signed subspace (SSK): prints its private insert URI and public request URI.
    Keygen(keygen::Args),
    /// Publish a file through the running node; prints the URI that fetches it (last line).
    /// `insert --site DIR [--ssk URI --name NAME --edition N]` publishes a directory as a site.
    Insert(transfer::InsertArgs),
    /// Fetch a document through the running node and write it to a file.
    Fetch(transfer::FetchArgs),
    /// A local test darknet of real node processes on this machine.
    #[command(subcommand)]
    Darknet(darknet::DarknetCommand),
    /// Show the whole thing working: a darknet, an insert, a fetch from the far side.
    Demo,
    /// Run a node, or manage its identity and friends.
    #[command(subcommand)]
    Node(node_cmd::NodeCommand),
    /// Run the deterministic many-node simulator (strategies, topologies, attacks).
    Sim(sim::Args),
}

fn data_dir(cli: &Cli) -> PathBuf {
    cli.dir
        .clone()
        .or_else(|| std::env::var_os("PAMPHLET_DIR").map(PathBuf::from))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pamphlet")))
        .unwrap_or_else(|| PathBuf::from(".pamphlet"))
}

/// Runs the command; an error is printed as `Error: …` with its causes, and the exit status
/// says which kind of failure it was (docs/api.md, "Exit status").
fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:?}");
            ExitCode::from(failure::exit_code_of(&e))
        }
    }
}

fn run() -> Result<()> {
    // Logs go to stderr, filtered by RUST_LOG (default: warnings). The node never logs a
    // document name, URI or content.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if site::is_site_insert(&args) {
        return site::run(args, || data_dir(&Cli { dir: None, command: Command::Demo }));
    }
    let cli = Cli::parse();
    let dir = data_dir(&cli);
    match &cli.command {
        Command::Keygen(args) => keygen::run(args),
        Command::Insert(args) => transfer::insert(&dir, args),
        Command::Fetch(args) => transfer::fetch(&dir, args),
        Command::Node(cmd) => node_cmd::run(&dir, cmd),
        Command::Darknet(cmd) => darknet::run(&dir, cmd),
        Command::Demo => demo::run(),
        Command::Sim(args) => sim::run(args),
    }
}
