//! `pamphlet demo`: the whole system on this machine in one command. A darknet of 16
//! real node processes, location swapping, an insert at one node and a fetch from the node
//! farthest from it in the friend graph; then everything is stopped and removed, also when
//! interrupted with Ctrl-C.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;

use crate::api_client::ApiClient;
use crate::darknet::{self, UpArgs};

const NODES: usize = 16;
/// How long swapping runs before the insert.
const SETTLE: Duration = Duration::from_secs(6);

/// Stops the darknet and deletes its directory when dropped (normal end or error).
struct Cleanup {
    dir: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = darknet::down(&self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Ctrl-C or SIGTERM: the same cleanup, then exit 130.
fn on_interrupt(dir: PathBuf) {
    crate::interrupt::on_interrupt(move || {
        eprintln!("\ninterrupted: stopping the nodes and removing {}", dir.display());
        let _ = darknet::down(&dir);
        let _ = std::fs::remove_dir_all(&dir);
    });
}

/// One counter of every node (after the nodes' 200 ms status refresh).
fn counters(dir: &Path, field: &str) -> Result<Vec<u64>> {
    std::thread::sleep(Duration::from_millis(450));
    Ok(darknet::status_now(dir)?.nodes.iter().map(|n| n[field].as_u64().unwrap_or(0)).collect())
}

/// Arguments of `pamphlet demo`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Print one JSON object with what was measured instead of the story.
    #[arg(long)]
    pub(crate) json: bool,
}

pub(crate) fn run(args: &Args) -> Result<()> {
    let json_out = args.json;
    let say = |text: String| {
        if !json_out {
            println!("{text}");
        }
    };
    let started = Instant::now();
    let tmp = tempfile::Builder::new().prefix("pamphlet-demo-").tempdir().context("cannot create a temp dir")?;
    let dir = tmp.keep();
    on_interrupt(dir.clone());
    let _cleanup = Cleanup { dir: dir.clone() };

    say(format!("pamphlet demo: a friend-to-friend darknet of {NODES} real node processes on 127.0.0.1"));
    // HTL 6: on 16 nodes the network's usual 18 would carry the insert to nearly every node,
    // and the fetch would find the block at home.
    let up_args = UpArgs {
        nodes: NODES,
        degree: 4,
        seed: None,
        graph: None,
        swap_ms: 100,
        store_mib: 8,
        htl: 6,
        no_cache: false,
        wan: None,
        transport: crate::darknet::Transport::Tcp,
        opennet: false,
        seeds: 0,
        opennet_upkeep_ms: 1000,
        floor: 8,
        ceiling: 20,
        seed_cap: 40,
    };
    let (file, _) = darknet::up(&dir, &up_args)?;
    say(format!(
        "  {} nodes up, {} friend links (a ring plus long links), in {:.1?}",
        NODES,
        file.edges.len(),
        started.elapsed()
    ));

    let before = darknet::mean_log_link(&file.edges, &file.initial_locations);
    std::thread::sleep(SETTLE);
    let after = darknet::status(&dir)?;
    let swaps: u64 = after.nodes.iter().map(|n| n["swaps_done"].as_u64().unwrap_or(0)).sum();
    say(format!(
        "  location swapping: {swaps} swaps in {SETTLE:?}; mean ln(link length) {before:.2} -> {:.2} (lower routes better)",
        after.mean_log_link
    ));

    let text = format!(
        "This is a pamphlet.\nIt was published anonymously on a local test darknet of {NODES} nodes.\n\
         Anyone with its URI can fetch it; no node on the way can read it.\n{}\n",
        "-".repeat(60)
    );
    let inserts_before = counters(&dir, "inserts_received")?;
    let publisher = ApiClient::for_dir(&file.nodes[0].dir)?;
    let job = publisher.post_bytes("/v1/insert?name=pamphlet.txt&mime=text/plain", &[], text.as_bytes())?;
    let status = publisher.wait_job(job["job"].as_u64().context("no job")?, &mut |_, _| {})?;
    let uri = status["uri"].as_str().context("no URI")?.to_owned();
    say(format!("  node 0 published a {}-byte document:\n    {uri}", text.len()));

    // The farthest node from the publisher in the friend graph, among those the insert did
    // not pass through (they would find the block at home).
    let inserts_after = counters(&dir, "inserts_received")?;
    let distances = darknet::graph_distances(&file, 0);
    let untouched = |i: &usize| inserts_after[*i] == inserts_before[*i];
    let (far, hops_apart) = distances
        .iter()
        .copied()
        .enumerate()
        .filter(|(i, _)| *i != 0)
        .max_by_key(|&(i, d)| (untouched(&i), d))
        .context("no nodes")?;
    let visited = (1..NODES).filter(|i| !untouched(i)).count();
    say(format!("  the insert was stored or cached by {visited} nodes on its way towards the key's location"));
    let requests_before: u64 = counters(&dir, "requests_received")?.iter().sum();
    let fetch_start = Instant::now();
    let fetcher = ApiClient::for_dir(&file.nodes[far].dir)?;
    let job = fetcher.post_json("/v1/fetch", &json!({ "uri": uri }))?;
    let id = job["job"].as_u64().context("no job")?;
    fetcher.wait_job(id, &mut |_, _| {}).context("the fetch failed")?;
    let mut got = Vec::new();
    fetcher.download(id, &mut got)?;
    let took = fetch_start.elapsed();
    if got != text.as_bytes() {
        bail!("the fetched document differs from the published one");
    }
    let hops = counters(&dir, "requests_received")?.iter().sum::<u64>() - requests_before;
    say(format!("  node {far}, {hops_apart} friend links away from node 0, fetched it in {took:.1?}:"));
    let hop_count = hops;
    let hops = if hops == 1 { "1 hop".to_owned() } else { format!("{hops} hops") };
    say(format!("    the request took {hops} through the darknet, and the verified block came back the same way"));
    say(format!(
        "What happened: node 0 encrypted the document into a self-verifying block whose key is a hash of\n\
         its content, and sent it towards the nodes whose locations are closest to that key. Node {far}\n\
         knew only the URI: its request went from friend to friend, each time to the one closest to the\n\
         key, until a node holding the block answered; every node on the way checked the block and cached\n\
         it; none of them could read it, and none could be sure who asked (a request looks the same\n\
         whether it started at the sender or passed through it). All links were Noise-encrypted, in\n\
         frames of one size."
    ));
    say(format!("done in {:.1?}; stopping the nodes and removing {}", started.elapsed(), dir.display()));
    if json_out {
        println!(
            "{}",
            json!({ "nodes": NODES, "links": file.edges.len(), "swaps": swaps,
                    "mean_log_link_before": before, "mean_log_link_after": after.mean_log_link,
                    "uri": uri, "size": text.len(), "stored_or_cached_by": visited, "fetcher": far,
                    "friend_links_apart": hops_apart, "request_hops": hop_count,
                    "fetch_ms": took.as_millis() as u64, "total_ms": started.elapsed().as_millis() as u64 })
        );
    }
    Ok(())
}
