//! Does a busy store stall the links? Two daemons on disk stores (A inserts, B is the sink
//! that writes and `fdatasync`s every block) share a 2-worker tokio runtime with an
//! unrelated encrypted link pair C→D that streams blocks as fast as it can. D's receive rate
//! is sampled in 100 ms windows, first with the daemons idle, then while A inserts a
//! document (64 MiB by default) into B. A node task that syncs on an async worker takes
//! that worker from every link scheduled there; one on its own thread does not.
//!
//! Run: `cargo bench -p pamphlet-node --bench store_stall` (`PAMPHLET_BENCH_MIB=16` for a
//! quicker run). Figures go to docs/benchmarks.md.

// Tests and benchmarks measure with, or drive nodes by, the real clock.
#![allow(clippy::disallowed_methods)]
#![allow(missing_docs, clippy::print_stdout, clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pamphlet_crypto::{Block, BlockKind};
use pamphlet_node::client::pipeline;
use pamphlet_node::client::splitfile::InsertOptions;
use pamphlet_node::transport::TransportEvent;
use pamphlet_node::wire::Message;
use rand::{RngCore, SeedableRng};

#[path = "common.rs"]
mod common;
use common::{chain, link_pair, mb};

const WINDOW: Duration = Duration::from_millis(100);

/// Mean and 10th-percentile of per-window rates (MB/s).
fn summary(windows: &[usize]) -> (f64, f64) {
    let mut r: Vec<f64> = windows.iter().map(|&b| mb(b, WINDOW)).collect();
    r.sort_by(f64::total_cmp);
    let mean = r.iter().sum::<f64>() / r.len().max(1) as f64;
    (mean, r.get(r.len() / 10).copied().unwrap_or(0.0))
}

fn main() {
    let mib: usize = std::env::var("PAMPHLET_BENCH_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(64);
    // Two workers: what the daemon gets on this project's 2-core machines, and few enough
    // that one blocked worker is felt.
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let mut data = vec![0u8; mib << 20];
        rand_chacha::ChaCha8Rng::seed_from_u64(2).fill_bytes(&mut data);
        let root = tempfile::tempdir().unwrap();
        let nodes = chain(root.path(), 2, &[]).await;
        let common::LinkPair { a, b, b_peer, mut b_events } = link_pair().await;

        // C→D: stream blocks until told to stop; D counts bytes into the current window.
        let stop = Arc::new(AtomicBool::new(false));
        let received = Arc::new(AtomicUsize::new(0));
        let sender = {
            let stop = Arc::clone(&stop);
            let block = Block::from_bytes(BlockKind::Chk, vec![0x5au8; BlockKind::Chk.block_len()]).unwrap();
            let msg = Message::DataFound { id: 1, block };
            let a = a.clone();
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    a.send(b_peer, &msg).await.unwrap();
                }
            })
        };
        let counter = {
            let received = Arc::clone(&received);
            tokio::spawn(async move {
                while let Some(ev) = b_events.recv().await {
                    if let TransportEvent::Received { .. } = ev {
                        received.fetch_add(BlockKind::Chk.block_len(), Ordering::Relaxed);
                    }
                }
            })
        };
        let sample = |until: Arc<AtomicBool>| {
            let received = Arc::clone(&received);
            tokio::spawn(async move {
                let mut windows = Vec::new();
                let mut tick = tokio::time::interval(WINDOW);
                tick.tick().await;
                received.store(0, Ordering::Relaxed);
                while !until.load(Ordering::Relaxed) {
                    tick.tick().await;
                    windows.push(received.swap(0, Ordering::Relaxed));
                }
                windows
            })
        };

        // Idle daemons: 3 s of the link alone.
        let idle_done = Arc::new(AtomicBool::new(false));
        let idle = sample(Arc::clone(&idle_done));
        tokio::time::sleep(Duration::from_secs(3)).await;
        idle_done.store(true, Ordering::Relaxed);
        let idle = idle.await.unwrap();

        // The same link while A inserts into B (every block fsynced at B).
        let busy_done = Arc::new(AtomicBool::new(false));
        let busy = sample(Arc::clone(&busy_done));
        let first = Arc::new(nodes[0].handle().clone());
        let start = Instant::now();
        pipeline::insert_chk(&first, data, InsertOptions::default(), 16, &|_, _| {}).await.unwrap();
        let insert = start.elapsed();
        busy_done.store(true, Ordering::Relaxed);
        let busy = busy.await.unwrap();

        stop.store(true, Ordering::Relaxed);
        sender.await.unwrap();
        let (i_mean, i_p10) = summary(&idle);
        let (b_mean, b_p10) = summary(&busy);
        println!(
            "link C→D, daemons idle:      mean {i_mean:.1} MB/s, p10 window {i_p10:.1} MB/s ({} windows)",
            idle.len()
        );
        println!(
            "link C→D, {mib} MiB insert A→B: mean {b_mean:.1} MB/s, p10 window {b_p10:.1} MB/s ({} windows)",
            busy.len()
        );
        println!(
            "insert took {insert:.2?}; busy/idle mean {:.0}%, p10 {:.0}%",
            100.0 * b_mean / i_mean,
            100.0 * b_p10 / i_p10
        );
        a.shutdown().await;
        b.shutdown().await;
        counter.abort();
        for n in nodes {
            n.shutdown().await.unwrap();
        }
    });
}
