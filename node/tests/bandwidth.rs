//! Bandwidth limits on real links (127.0.0.1): a node whose `upload_limit` is 1 MB/s,
//! flooding two friends with blocks as fast as its queues take them, never sends more
//! than 10% over the limit in any window (3 s here, the 10 s scaled down for CI; set
//! `PAMPHLET_LIMIT_WINDOW_SECS=10` for the full one),
//! shares it fairly between the two friends, and still fetches: its requests go ahead of
//! its blocks, and the replies (its download, unlimited) come back.

// Tests measure with, and drive links by, the real clock; the figures go to stderr.
#![allow(clippy::disallowed_methods, clippy::print_stderr)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pamphlet_crypto::{Block, BlockKind, RoutingKey};
use pamphlet_node::id::PeerId;
use pamphlet_node::link::StaticKeypair;
use pamphlet_node::transport::{peer_id_of, Transport, TransportConfig, TransportEvent, TransportHandle};
use pamphlet_node::wire::Message;
use tokio::sync::mpsc;
use tokio::time::timeout;

const LIMIT: u64 = 1_000_000;
/// The window no part of the flood may exceed the limit over: 3 s, or
/// `PAMPHLET_LIMIT_WINDOW_SECS` (10 for the figure); the flood lasts two windows
/// and a second.
fn window() -> Duration {
    let secs = std::env::var("PAMPHLET_LIMIT_WINDOW_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    Duration::from_secs(secs)
}
/// Request ids of the fetch, apart from the flood's.
const FETCH_BASE: u64 = 1 << 40;

fn config(upload_limit: u64) -> TransportConfig {
    limited(upload_limit, 0)
}

fn limited(upload_limit: u64, download_limit: u64) -> TransportConfig {
    let mut c = TransportConfig::new("127.0.0.1:0".parse().unwrap(), StaticKeypair::generate().unwrap());
    c.handshake_timeout = Duration::from_millis(800);
    c.backoff_initial = Duration::from_millis(20);
    c.backoff_max = Duration::from_millis(200);
    c.upload_limit = upload_limit;
    c.download_limit = download_limit;
    c
}

fn block(seed: u8) -> Block {
    Block::from_bytes(BlockKind::Chk, vec![seed; BlockKind::Chk.block_len()]).unwrap()
}

/// Sends `peer` blocks (`block(seed)`) from `from` as fast as the link's queue takes them,
/// until `stop` is set or the link is gone.
fn flood(from: TransportHandle, peer: PeerId, seed: u8, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut id = 0;
        while !stop.load(Ordering::Relaxed) {
            id += 1;
            if from.send(peer, &Message::DataFound { id, block: block(seed) }).await.is_err() {
                break;
            }
        }
    })
}

async fn wait_connected(rx: &mut mpsc::Receiver<TransportEvent>, mut want: Vec<PeerId>) {
    while !want.is_empty() {
        match timeout(Duration::from_secs(20), rx.recv()).await {
            Ok(Some(TransportEvent::Connected { peer })) => want.retain(|p| *p != peer),
            Ok(Some(_)) => {}
            other => panic!("link did not come up: {other:?}"),
        }
    }
}

/// A friend of the limited node: counts the bytes of blocks it gets, and answers every
/// request with a block.
fn friend_loop(
    handle: TransportHandle,
    mut events: mpsc::Receiver<TransportEvent>,
    got: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            if let TransportEvent::Received { peer, message } = ev {
                match message {
                    Message::DataFound { block, .. } => {
                        got.fetch_add(block.as_bytes().len() as u64, Ordering::Relaxed);
                    }
                    Message::DataRequest { id, .. } => {
                        let _ = handle.send(peer, &Message::DataFound { id, block: block(7) }).await;
                    }
                    _ => {}
                }
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_limit_holds_in_every_window_while_fetches_progress() {
    let (a, mut ea) = Transport::start(config(LIMIT)).await.unwrap();
    let (b, mut eb) = Transport::start(config(0)).await.unwrap();
    let (c, mut ec) = Transport::start(config(0)).await.unwrap();
    let (pa, pb, pc) = (peer_id_of(&a.public_key()), peer_id_of(&b.public_key()), peer_id_of(&c.public_key()));
    b.add_friend(a.node_ref()).unwrap();
    c.add_friend(a.node_ref()).unwrap();
    a.add_friend(b.node_ref()).unwrap();
    a.add_friend(c.node_ref()).unwrap();
    wait_connected(&mut ea, vec![pb, pc]).await;
    wait_connected(&mut eb, vec![pa]).await;
    wait_connected(&mut ec, vec![pa]).await;
    let (to_b, to_c) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let friends = [friend_loop(b.clone(), eb, to_b.clone()), friend_loop(c.clone(), ec, to_c.clone())];

    // The flood: blocks to both friends, as fast as the links' queues take them.
    let stop = Arc::new(AtomicBool::new(false));
    let floods: Vec<_> = [pb, pc].into_iter().map(|peer| flood(a.clone(), peer, 1, stop.clone())).collect();

    // The fetch: one request to B at a time, the next when the block came back.
    let fetched = Arc::new(AtomicU64::new(0));
    let fetch = {
        let (a, fetched) = (a.clone(), fetched.clone());
        tokio::spawn(async move {
            let request = |n: u64| Message::DataRequest {
                id: FETCH_BASE + n,
                kind: BlockKind::Chk,
                key: RoutingKey([3; 32]),
                htl: 1,
            };
            let _ = a.send(pb, &request(0)).await;
            while let Some(ev) = ea.recv().await {
                if let TransportEvent::Received { message: Message::DataFound { id, .. }, .. } = ev {
                    if id >= FETCH_BASE {
                        let n = fetched.fetch_add(1, Ordering::Relaxed) + 1;
                        let _ = a.send(pb, &request(n)).await;
                    }
                }
            }
        })
    };

    // Sample the limited node's sent-bytes counter every 100 ms.
    let (window, flood) = (window(), window() * 2 + Duration::from_secs(1));
    let start = Instant::now();
    let mut samples = vec![(Duration::ZERO, a.stats().bytes_sent)];
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    while start.elapsed() < flood {
        tick.tick().await;
        samples.push((start.elapsed(), a.stats().bytes_sent));
    }
    stop.store(true, Ordering::Relaxed);
    let fetched_during_flood = fetched.load(Ordering::Relaxed);

    let mut worst: f64 = 0.0;
    for (i, &(t0, b0)) in samples.iter().enumerate() {
        if let Some(&(t1, b1)) = samples[i..].iter().find(|(t, _)| *t - t0 >= window) {
            let rate = (b1 - b0) as f64 / (t1 - t0).as_secs_f64();
            worst = worst.max(rate);
        }
    }
    let total = samples.last().unwrap().1;
    eprintln!(
        "worst {window:?} window: {worst:.0} B/s; sent {total} B in {:?}; to B {} B, to C {} B; {fetched_during_flood} fetches",
        samples.last().unwrap().0,
        to_b.load(Ordering::Relaxed),
        to_c.load(Ordering::Relaxed)
    );
    assert!(worst <= LIMIT as f64 * 1.1, "a {window:?} window ran at {worst:.0} B/s, limit {LIMIT}");
    // The limit is a limit, not a stall: the flood used most of it...
    assert!(total as f64 >= LIMIT as f64 * flood.as_secs_f64() * 0.7, "only {total} B sent");
    // ...each friend got a fair share...
    let (gb, gc) = (to_b.load(Ordering::Relaxed) as f64, to_c.load(Ordering::Relaxed) as f64);
    assert!(gb.min(gc) >= 0.35 * (gb + gc), "unfair shares: {gb} B to B, {gc} B to C");
    // ...and the node's own fetch went on through its saturated upload.
    assert!(fetched_during_flood >= 20, "only {fetched_during_flood} blocks fetched during the flood");

    for t in floods {
        let _ = timeout(Duration::from_secs(10), t).await;
    }
    for h in [&a, &b, &c] {
        h.shutdown().await;
    }
    fetch.abort();
    for f in friends {
        f.abort();
    }
}

/// The worst rate over any `window` of a counter sampled every 100 ms for `run`.
async fn worst_window(counter: impl Fn() -> u64, window: Duration, run: Duration) -> (f64, u64) {
    let start = Instant::now();
    let mut samples = vec![(Duration::ZERO, counter())];
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    while start.elapsed() < run {
        tick.tick().await;
        samples.push((start.elapsed(), counter()));
    }
    let mut worst: f64 = 0.0;
    for (i, &(t0, b0)) in samples.iter().enumerate() {
        if let Some(&(t1, b1)) = samples[i..].iter().find(|(t, _)| *t - t0 >= window) {
            worst = worst.max((b1 - b0) as f64 / (t1 - t0).as_secs_f64());
        }
    }
    (worst, samples.last().map_or(0, |s| s.1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_limit_holds_in_every_window() {
    let (a, mut ea) = Transport::start(limited(0, LIMIT)).await.unwrap();
    let (b, mut eb) = Transport::start(config(0)).await.unwrap();
    let (c, mut ec) = Transport::start(config(0)).await.unwrap();
    let (pa, pb, pc) = (peer_id_of(&a.public_key()), peer_id_of(&b.public_key()), peer_id_of(&c.public_key()));
    b.add_friend(a.node_ref()).unwrap();
    c.add_friend(a.node_ref()).unwrap();
    a.add_friend(b.node_ref()).unwrap();
    a.add_friend(c.node_ref()).unwrap();
    wait_connected(&mut ea, vec![pb, pc]).await;
    wait_connected(&mut eb, vec![pa]).await;
    wait_connected(&mut ec, vec![pa]).await;
    let got = Arc::new(AtomicU64::new(0));
    let drain = friend_loop(a.clone(), ea, got.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let floods: Vec<_> = [b.clone(), c.clone()].into_iter().map(|h| flood(h, pa, 2, stop.clone())).collect();
    let (window, run) = (window(), window() * 2 + Duration::from_secs(1));
    let (worst, total) = worst_window(|| a.stats().bytes_received, window, run).await;
    stop.store(true, Ordering::Relaxed);
    eprintln!(
        "download: worst {window:?} window {worst:.0} B/s; {total} B read; {} B of blocks",
        got.load(Ordering::Relaxed)
    );
    assert!(worst <= LIMIT as f64 * 1.1, "a {window:?} window read {worst:.0} B/s, limit {LIMIT}");
    assert!(total as f64 >= LIMIT as f64 * run.as_secs_f64() * 0.7, "only {total} B read");
    for h in [&a, &b, &c] {
        h.shutdown().await;
    }
    for t in floods {
        t.abort();
    }
    drain.abort();
    drop((eb, ec));
}
