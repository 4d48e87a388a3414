//! `pamphlet`: the command-line tool. Every subcommand is a thin layer over the library
//! crates; errors are `anyhow` here and only here, with messages a person can act on.

#![forbid(unsafe_code)]
// Printing is this crate's job.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use anyhow::Result;
use clap::{Parser, Subcommand};

mod keygen;

/// Publish and fetch documents anonymously on a friend-to-friend network.
#[derive(Parser, Debug)]
#[command(name = "pamphlet", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a new signed subspace (SSK): prints its private insert URI and public request URI.
    Keygen(keygen::Args),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Keygen(args) => keygen::run(&args),
    }
}
