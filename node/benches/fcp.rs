//! What FCP itself costs: a 5 MiB document inserted and fetched through an FCP session
//! (the codec, the session and its writer, over an in-memory pipe) against the same
//! client pipelines called directly, both on one map of blocks (no network, no other
//! process), so the difference is FCP's alone.
//!
//! `cargo bench -p pamphlet-node --bench fcp` (`PAMPHLET_BENCH_MIB`, `PAMPHLET_BENCH_ROUNDS`
//! change the size, default 5, and the rounds, default 9). Rounds alternate which way goes
//! first; each round inserts fresh random bytes. Prints the median and range of each way
//! and the overhead of the medians. docs/benchmarks.md has the figures.

// A benchmark reports on stdout and reads the wall clock.
#![allow(missing_docs, clippy::print_stdout, clippy::disallowed_methods, clippy::unwrap_used)]

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pamphlet_crypto::{Block, BlockKind, RoutingKey, Uri};
use pamphlet_node::api::{AddFriendError, ApiBackend, FriendAdded, FriendSnapshot, NodeSnapshot, RemoveFriendError};
use pamphlet_node::client::memory_net::MemoryNetwork;
use pamphlet_node::client::pipeline::{self, BlockNetwork, FetchOptions, InsertOutcome};
use pamphlet_node::client::splitfile::InsertOptions;
use pamphlet_node::fcp::message::{decode, Limits, Message};
use pamphlet_node::fcp::request::Ctx;
use pamphlet_node::fcp::session::{serve, SessionConfig};
use pamphlet_node::node::Failure;
use rand::{RngCore, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Block requests in flight, as the daemon's default.
const PARALLEL: usize = 16;

/// The map of blocks, as a node backend.
struct Net(MemoryNetwork);

impl BlockNetwork for Net {
    fn fetch(&self, kind: BlockKind, key: RoutingKey) -> impl Future<Output = Result<Block, Failure>> + Send {
        self.0.fetch(kind, key)
    }
    fn insert(&self, block: Block) -> impl Future<Output = Result<InsertOutcome, Failure>> + Send {
        self.0.insert(block)
    }
}

impl ApiBackend for Net {
    fn status(&self) -> NodeSnapshot {
        NodeSnapshot::default()
    }
    fn add_friend(&self, _noderef: &str) -> Result<FriendAdded, AddFriendError> {
        Err(AddFriendError::Transport("a benchmark has no friends".into()))
    }
    fn friends(&self) -> Vec<FriendSnapshot> {
        Vec::new()
    }
    fn remove_friend(&self, friend: &str) -> Result<FriendSnapshot, RemoveFriendError> {
        Err(RemoveFriendError::NotFound(friend.to_owned()))
    }
}

fn random(len: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rand_chacha::ChaCha8Rng::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

async fn direct(net: &Arc<Net>, data: Vec<u8>) -> Duration {
    let t = Instant::now();
    let expect = data.len();
    let uri = pipeline::insert_chk(net, data, InsertOptions::default(), PARALLEL, &|_, _| {}).await.unwrap();
    let options = FetchOptions { parallel: PARALLEL, partial_dir: None };
    let got = pipeline::fetch(net, &Uri::Chk(uri), &options, &|_| {}).await.unwrap();
    assert_eq!(got.document.data.len(), expect);
    t.elapsed()
}

/// Reads messages until one named `name`.
async fn until(io: &mut tokio::io::DuplexStream, buf: &mut Vec<u8>, name: &str) -> Message {
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        while let Some((m, n)) = decode(buf, Limits::default()).unwrap() {
            buf.drain(..n);
            if m.name == name {
                return m;
            }
            assert!(!m.name.ends_with("Failed") && m.name != "ProtocolError", "{m:?}");
        }
        let n = io.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the session closed");
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn fcp(ctx: &Arc<Ctx<Net>>, data: Vec<u8>) -> Duration {
    let (mut io, server) = tokio::io::duplex(1 << 20);
    tokio::spawn(serve(Arc::clone(ctx), SessionConfig::default(), server));
    let t = Instant::now();
    let expect = data.len();
    let mut buf = Vec::new();
    io.write_all(&Message::new("ClientHello").with("Name", "bench").with("ExpectedVersion", "2.0").encode())
        .await
        .unwrap();
    until(&mut io, &mut buf, "NodeHello").await;
    let put = Message { data: Some(data), ..Message::new("ClientPut") }.with("Identifier", "p").with("URI", "CHK@");
    io.write_all(&put.encode()).await.unwrap();
    let done = until(&mut io, &mut buf, "PutSuccessful").await;
    let get = Message::new("ClientGet").with("Identifier", "g").with("URI", done.get("URI").unwrap());
    io.write_all(&get.encode()).await.unwrap();
    let all = until(&mut io, &mut buf, "AllData").await;
    assert_eq!(all.data.unwrap().len(), expect);
    t.elapsed()
}

/// CPU time of this process so far, all threads (user + system), from /proc/self/stat in
/// clock ticks of 10 ms (Linux's USER_HZ = 100): summed over all rounds, the ticks'
/// resolution is small against the total, and CPU time moves far less than wall time with
/// the other work on a loaded machine.
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which ends with ')'): utime is the 12th, stime the 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    let ticks = field(11) + field(12);
    Duration::from_millis(ticks * 10)
}

fn summary(xs: &mut [Duration]) -> (f64, f64, f64) {
    xs.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (ms(xs[xs.len() / 2]), ms(xs[0]), ms(xs[xs.len() - 1]))
}

fn main() {
    let env = |k: &str, d: usize| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
    let mib = env("PAMPHLET_BENCH_MIB", 5);
    let rounds = env("PAMPHLET_BENCH_ROUNDS", 9);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let ctx = Arc::new(Ctx {
            backend: Arc::new(Net(MemoryNetwork::default())),
            parallel: PARALLEL,
            queue: Arc::default(),
            store: None,
        });
        let (mut d, mut f) = (Vec::new(), Vec::new());
        let (mut dcpu, mut fcpu) = (Duration::ZERO, Duration::ZERO);
        for r in 0..rounds {
            let (a, b) = (random(mib << 20, 2 * r as u64), random(mib << 20, 2 * r as u64 + 1));
            for first in [r % 2 == 0, r % 2 != 0] {
                let c = cpu();
                if first {
                    d.push(direct(&ctx.backend, a.clone()).await);
                    dcpu += cpu() - c;
                } else {
                    f.push(fcp(&ctx, b.clone()).await);
                    fcpu += cpu() - c;
                }
            }
        }
        let (dm, dlo, dhi) = summary(&mut d);
        let (fm, flo, fhi) = summary(&mut f);
        println!("{mib} MiB insert + fetch, {rounds} rounds, on a map of blocks");
        println!("pipelines directly: median {dm:.0} ms ({dlo:.0}-{dhi:.0})");
        println!("through FCP:        median {fm:.0} ms ({flo:.0}-{fhi:.0})");
        println!("FCP overhead: {:+.1}% of the median", 100.0 * (fm / dm - 1.0));
        let per = |c: Duration| c.as_secs_f64() * 1000.0 / rounds as f64;
        println!(
            "CPU per round (all threads): directly {:.0} ms, through FCP {:.0} ms: {:+.1}%",
            per(dcpu),
            per(fcpu),
            100.0 * (fcpu.as_secs_f64() / dcpu.as_secs_f64().max(1e-9) - 1.0)
        );
    });
}
