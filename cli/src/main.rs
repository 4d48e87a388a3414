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
mod error;
mod failure;
mod friends_cmd;
mod interrupt;
mod keepalive;
mod keygen;
mod mirror;
mod node_cmd;
mod pin;
mod sim;
mod site;
mod transfer;
mod wan;

/// Publish and fetch documents anonymously on a friend-to-friend network.
#[derive(Parser, Debug)]
#[command(name = "pamphlet", version, about, long_about = None)]
struct Cli {
    /// Accepted before the command too (`pamphlet --dir DIR insert …`), as it always was;
    /// each command that uses a directory says what it means in its own help.
    #[arg(long, value_name = "DIR", hide = true)]
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
    /// Fetch a document through the running node and write it to a file
    /// (`fetch --site URI -o DIR` mirrors a whole site).
    Fetch(transfer::FetchArgs),
    /// Keep a document or site alive: probe every block and insert again what the network lost.
    Keepalive(keepalive::Args),
    /// Pin a document or site: the node keeps it alive on its own (without a URI: list pins).
    Pin(pin::Args),
    /// A local test darknet of real node processes on this machine.
    Darknet(darknet::DarknetArgs),
    /// Show the whole thing working: a darknet, an insert, a fetch from the far side.
    Demo(demo::Args),
    /// Run a node, or manage its identity and friends.
    Node(node_cmd::NodeArgs),
    /// Run the deterministic many-node simulator (strategies, topologies, attacks).
    Sim(Box<sim::Args>),
}

fn data_dir(cli: &Cli) -> PathBuf {
    // A test darknet never defaults to the person's own node directory.
    let default = match cli.command {
        Command::Darknet(_) => ".pamphlet-darknet",
        _ => ".pamphlet",
    };
    let env = match cli.command {
        Command::Darknet(_) => None,
        _ => std::env::var_os("PAMPHLET_DIR").map(PathBuf::from),
    };
    let given = match &cli.command {
        Command::Insert(a) => a.dir.clone(),
        Command::Fetch(a) => a.dir.clone(),
        Command::Keepalive(a) => a.dir.clone(),
        Command::Pin(a) => a.dir.clone(),
        Command::Node(a) => a.dir.clone(),
        Command::Darknet(a) => a.dir.clone(),
        Command::Keygen(_) | Command::Demo(_) | Command::Sim(_) => None,
    };
    given
        .or_else(|| cli.dir.clone())
        .or(env)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(default)))
        .unwrap_or_else(|| PathBuf::from(default))
}

/// Runs the command; an error is printed as `Error: …` with its causes, and the exit status
/// says which kind of failure it was (docs/api.md, "Exit status").
fn main() -> ExitCode {
    // Logs go to stderr, filtered by RUST_LOG (default: warnings). The node never logs a
    // document name, URI or content.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if site::is_site_insert(&args) {
        let json = args.iter().any(|a| a == "--json");
        return finish(site::run(args, node_dir_default), json);
    }
    let cli = Cli::parse();
    finish(run(&cli), cli.command.json())
}

/// The exit status of a command's result, after printing its error (as JSON with `json`).
fn finish(result: Result<()>, json: bool) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if json {
                // On stdout, where the result would have been: a script reads one place.
                println!("{}", failure::json(&e));
            } else {
                eprintln!("{}", failure::human(&e));
            }
            ExitCode::from(failure::exit_code_of(&e))
        }
    }
}

/// A node's data directory when none is given: $PAMPHLET_DIR, else ~/.pamphlet.
fn node_dir_default() -> PathBuf {
    std::env::var_os("PAMPHLET_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pamphlet")))
        .unwrap_or_else(|| PathBuf::from(".pamphlet"))
}

impl Command {
    /// Whether the command was asked for JSON output (results and errors).
    fn json(&self) -> bool {
        match self {
            Command::Keygen(a) => a.json,
            Command::Insert(a) => a.json,
            Command::Fetch(a) => a.json,
            Command::Keepalive(a) => a.json,
            Command::Pin(a) => a.json,
            Command::Darknet(c) => c.command.json(),
            Command::Demo(a) => a.json,
            Command::Node(c) => c.command.json(),
            Command::Sim(a) => a.json,
        }
    }
}

fn run(cli: &Cli) -> Result<()> {
    let dir = data_dir(cli);
    match &cli.command {
        Command::Keygen(args) => keygen::run(args),
        Command::Insert(args) => transfer::insert(&dir, args),
        Command::Fetch(args) => transfer::fetch(&dir, args),
        Command::Keepalive(args) => keepalive::run(&dir, args),
        Command::Pin(args) => pin::run(&dir, args),
        Command::Node(a) => node_cmd::run(&dir, &a.command),
        Command::Darknet(a) => darknet::run(&dir, &a.command),
        Command::Demo(args) => demo::run(args),
        Command::Sim(args) => sim::run(args),
    }
}
