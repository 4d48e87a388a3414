//! `pamphlet pin [URI] [--remove]`: the documents the node keeps alive on its own, every
//! `keepalive_interval_secs` (docs/durability.md). Without a URI, lists the pins and what
//! their last keepalive found.

use std::path::{Path, PathBuf};

use anyhow::Result;
use pamphlet_node::daemon::config::Config;
use pamphlet_node::daemon::pins;
use serde_json::json;

use crate::error::cli_error;

/// Arguments of `pamphlet pin`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The document's or site's URI to pin (or with --remove, to unpin). Without one: list.
    uri: Option<String>,
    /// Unpin the URI instead.
    #[arg(long, requires = "uri")]
    remove: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// The node's data directory (default: $PAMPHLET_DIR, else ~/.pamphlet). The node need
    /// not be running: it reads the list at every pass.
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,
}

pub(crate) fn run(dir: &Path, args: &Args) -> Result<()> {
    if !dir.join("config.toml").exists() {
        return Err(cli_error(
            "no_node",
            format!("{} is not a node's directory (run `pamphlet node init --dir {}`)", dir.display(), dir.display()),
        ));
    }
    let bad = |e: pins::PinError| match e {
        pins::PinError::DataDir(e) => anyhow::Error::new(e),
        e => cli_error("bad_uri", e.to_string()),
    };
    let Some(uri) = &args.uri else { return list(dir, args.json) };
    let changed = if args.remove { pins::remove(dir, uri).map_err(bad)? } else { pins::add(dir, uri).map_err(bad)? };
    let every = Config::load(&dir.join("config.toml")).map(|c| c.keepalive_interval_secs).unwrap_or(0);
    if args.json {
        println!("{}", json!({ "uri": uri, "pinned": !args.remove, "changed": changed, "every_secs": every }));
    } else if args.remove {
        println!("{}", if changed { "unpinned" } else { "was not pinned" });
    } else if every == 0 {
        println!(
            "pinned; but keepalive_interval_secs is 0 in {}, so the node never runs it (run `pamphlet keepalive URI` by hand, or set it)",
            dir.join("config.toml").display()
        );
    } else {
        let again = if changed { "pinned" } else { "already pinned" };
        println!("{again}: the node keeps it alive every {} h (keepalive_interval_secs)", every as f64 / 3600.0);
    }
    Ok(())
}

fn list(dir: &Path, as_json: bool) -> Result<()> {
    let pinned = pins::list(dir)?;
    let states = pins::states(dir);
    if as_json {
        println!("{}", json!({ "pins": pinned, "last": states }));
        return Ok(());
    }
    if pinned.is_empty() {
        println!("nothing pinned (pamphlet pin URI)");
    }
    for uri in &pinned {
        let last = match states.iter().find(|s| s.uri == *uri) {
            None => "not kept alive yet".to_owned(),
            Some(pins::PinState { kept: Some(k), .. }) => {
                format!("last pass: {} blocks probed, {} missing, {} inserted again", k.probed, k.missing, k.reinserted)
            }
            Some(pins::PinState { error: Some(e), .. }) => format!("last pass failed: {e}"),
            Some(_) => "unknown".to_owned(),
        };
        println!("{uri}\n    {last}");
    }
    Ok(())
}
