//! Issue 18: a fetch's window of blocks in flight follows its path (client/window.rs).
//! A scripted path of 350 ms whose latency grows with every request beyond what it
//! carries at once; the runtime's clock is paused, so latencies are exact and the test
//! takes no wall time. A wide path must get more than the configured 16 in flight (a
//! fixed window left a 20 Mbit/s path 62% idle, docs/benchmarks.md); a narrow one fewer.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pamphlet_crypto::{Block, BlockKind, RoutingKey, Uri, CHK_PAYLOAD_LEN};
use pamphlet_node::client::memory_net::MemoryNetwork;
use pamphlet_node::client::pipeline::{self, BlockNetwork, FetchOptions, InsertOutcome};
use pamphlet_node::client::splitfile::InsertOptions;
use pamphlet_node::client::window::MAX_WINDOW;
use pamphlet_node::node::Failure;

/// A path that carries `capacity` requests at once in 350 ms; each request beyond that
/// (at the moment it is sent) adds `per_queued` to its latency, as blocks queueing on a
/// link do.
struct Path {
    blocks: HashMap<RoutingKey, Block>,
    capacity: usize,
    per_queued: Duration,
    in_flight: Arc<AtomicUsize>,
    /// Requests in flight each time one was sent, in order.
    seen: Mutex<Vec<usize>>,
}

impl BlockNetwork for Path {
    fn fetch(&self, _kind: BlockKind, key: RoutingKey) -> impl Future<Output = Result<Block, Failure>> + Send {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.seen.lock().unwrap().push(now);
        let queued = u32::try_from(now.saturating_sub(self.capacity)).unwrap();
        let latency = Duration::from_millis(350) + self.per_queued * queued;
        let block = self.blocks.get(&key).cloned();
        let in_flight = Arc::clone(&self.in_flight);
        async move {
            tokio::time::sleep(latency).await;
            in_flight.fetch_sub(1, Ordering::SeqCst);
            block.ok_or(Failure::NotFound { htl: None, peers_tried: None })
        }
    }

    async fn insert(&self, _block: Block) -> Result<InsertOutcome, Failure> {
        Ok(InsertOutcome::Stored { displaced: false })
    }
}

/// Fetches a 256-block document over a path of `capacity` and `per_queued`; returns the
/// requests in flight at each send.
async fn fetch_over(capacity: usize, per_queued: Duration) -> Vec<usize> {
    use rand::{RngCore, SeedableRng};
    let mut data = vec![0u8; 256 * CHK_PAYLOAD_LEN];
    rand_chacha::ChaCha8Rng::seed_from_u64(18).fill_bytes(&mut data);
    let store = Arc::new(MemoryNetwork::default());
    let uri = pipeline::insert_chk(&store, data.clone(), InsertOptions::default(), 16, &|_, _| {}).await.unwrap();
    let blocks = std::mem::take(&mut *store.blocks.lock().unwrap());
    let path = Arc::new(Path {
        blocks,
        capacity,
        per_queued,
        in_flight: Arc::new(AtomicUsize::new(0)),
        seen: Mutex::new(Vec::new()),
    });
    let options = FetchOptions { parallel: 16, partial_dir: None };
    let fetched = pipeline::fetch(&path, &Uri::Chk(uri), &options, &|_| {}).await.unwrap();
    assert!(fetched.document.data == data, "the document came back different");
    let seen = path.seen.lock().unwrap().clone();
    seen
}

#[tokio::test(start_paused = true)]
async fn a_wide_path_gets_more_than_sixteen_blocks_in_flight() {
    let seen = fetch_over(48, Duration::from_millis(12)).await;
    let most = *seen.iter().max().unwrap();
    assert!(most > 24 && most <= MAX_WINDOW, "at most {most} in flight on a path that carries 48");
    let late = &seen[seen.len() / 2..];
    let mean = late.iter().sum::<usize>() / late.len();
    assert!(mean > 16, "the second half kept only {mean} in flight on average");
}

#[tokio::test(start_paused = true)]
async fn a_narrow_path_gets_fewer() {
    let seen = fetch_over(4, Duration::from_millis(100)).await;
    let late = &seen[seen.len() / 2..];
    let mean = late.iter().sum::<usize>() / late.len();
    assert!(mean < 12, "the second half kept {mean} in flight on a path that carries 4");
}
