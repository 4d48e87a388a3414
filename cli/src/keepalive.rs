//! `pamphlet keepalive URI`: asks the running node to keep a document or site alive, probing
//! every block and inserting again the ones the network lost (docs/durability.md).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::api_client::ApiClient;

/// Arguments of `pamphlet keepalive`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The document's or site's URI (CHK@, SSK@, USK@ or KSK@), without a path inside it.
    uri: String,
    /// Print the result as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// The data directory of the running node that does it (default: $PAMPHLET_DIR, else
    /// ~/.pamphlet).
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,
}

pub(crate) fn run(dir: &Path, args: &Args) -> Result<()> {
    let api = ApiClient::for_dir(dir)?;
    let job = api.post_json("/v1/keepalive", &json!({ "uri": args.uri }))?;
    let id = job["job"].as_u64().context("the node did not start a job")?;
    let quiet = args.json;
    api.wait_job(id, &mut |done, total| {
        if !quiet && total > 0 {
            eprint!("\rprobing: {done} of {total} blocks found");
        }
    })?;
    if !quiet {
        eprintln!();
    }
    let mut data = Vec::new();
    api.download(id, &mut data)?;
    let kept: Value = serde_json::from_slice(&data).context("the node's answer is not JSON")?;
    if args.json {
        println!("{}", json!({ "uri": args.uri, "kept": kept }));
    } else {
        let n = |k: &str| kept[k].as_u64().unwrap_or(0);
        println!(
            "{} document(s), {} blocks probed: {} missing, {} inserted again{}",
            n("documents"),
            n("probed"),
            n("missing"),
            n("reinserted"),
            if n("missing") > n("reinserted") { " (the rest were not taken: run it again later)" } else { "" }
        );
    }
    Ok(())
}
