//! Insert and fetch throughput of one document across a 5-node chain of real daemons on
//! loopback (TCP + Noise + disk stores), measured in the same run as a plain copy of the
//! same bytes over one encrypted link between two nodes (the per-hop limit).
//!
//! Run: `cargo bench -p pamphlet-node --bench transfer` (64 MiB; set
//! `PAMPHLET_BENCH_MIB=16` for a quicker run). Figures go to docs/benchmarks.md.

// Tests and benchmarks measure with, or drive nodes by, the real clock.
#![allow(clippy::disallowed_methods)]
#![allow(missing_docs, clippy::print_stdout, clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pamphlet_crypto::{Block, BlockKind, Uri};
use pamphlet_node::api::ApiBackend;
use pamphlet_node::client::pipeline::{self, FetchOptions};
use pamphlet_node::client::splitfile;
use pamphlet_node::client::splitfile::InsertOptions;
use pamphlet_node::daemon::{self, datadir, Daemon};
use pamphlet_node::link::{NodeRef, StaticKeypair};
use pamphlet_node::store::disk::{DiskStore, DiskStoreConfig};
use pamphlet_node::store::{Area, BlockStore};
use pamphlet_node::transport::{peer_id_of, Transport, TransportConfig, TransportEvent};
use pamphlet_node::wire::Message;
use rand::{RngCore, SeedableRng};

fn mb(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

/// Copies `bytes` of CHK blocks over one link (DataFound messages), as fast as it goes.
async fn one_link(bytes: usize) -> Duration {
    let ka = StaticKeypair::generate().unwrap();
    let kb = StaticKeypair::generate().unwrap();
    let (pa, pb) = (peer_id_of(ka.public()), peer_id_of(kb.public()));
    let (ra, rb) = (*ka.public(), *kb.public());
    let (ha, _ea) = Transport::start(TransportConfig::new("127.0.0.1:0".parse().unwrap(), ka)).await.unwrap();
    let (hb, mut eb) = Transport::start(TransportConfig::new("127.0.0.1:0".parse().unwrap(), kb)).await.unwrap();
    hb.add_friend(NodeRef { addr: ha.local_addr(), key: ra }).unwrap();
    ha.add_friend(NodeRef { addr: hb.local_addr(), key: rb }).unwrap();
    while !matches!(eb.recv().await, Some(TransportEvent::Connected { peer }) if peer == pa) {}
    while !ha.connected_peers().contains(&pb) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let block = Block::from_bytes(BlockKind::Chk, vec![0x33u8; BlockKind::Chk.block_len()]).unwrap();
    let msg = Message::DataFound { id: 1, block };
    let n = bytes.div_ceil(pamphlet_crypto::CHK_PAYLOAD_LEN);
    let start = Instant::now();
    let recv = tokio::spawn(async move {
        let mut k = 0;
        while k < n {
            if let Some(TransportEvent::Received { .. }) = eb.recv().await {
                k += 1;
            }
        }
    });
    for _ in 0..n {
        ha.send(pb, &msg).await.unwrap();
    }
    recv.await.unwrap();
    let took = start.elapsed();
    ha.shutdown().await;
    hb.shutdown().await;
    took
}

/// `n` daemons on disk stores wired as a line; node 0's store is preloaded with `preload`.
async fn chain(root: &Path, n: usize, preload: &[Block]) -> Vec<Daemon> {
    let dirs: Vec<_> = (0..n).map(|i| root.join(format!("node{i}"))).collect();
    let mut refs = Vec::new();
    for d in &dirs {
        let mut c = daemon::init(d, None).unwrap();
        // Room for the document and its check blocks in every store.
        (c.store_bytes, c.cache_bytes) = (512 << 20, 256 << 20);
        c.save(&d.join("config.toml")).unwrap();
        let kp = datadir::load_or_create_keypair(&d.join("identity.key")).unwrap();
        refs.push(NodeRef { addr: c.listen, key: *kp.public() });
    }
    for i in 0..n - 1 {
        datadir::append_friend(&dirs[i].join("friends"), &refs[i + 1]).unwrap();
        datadir::append_friend(&dirs[i + 1].join("friends"), &refs[i]).unwrap();
    }
    let mut daemons = Vec::new();
    for (i, d) in dirs.iter().enumerate() {
        if i == 0 && !preload.is_empty() {
            let config = daemon::config::Config::load(&d.join("config.toml")).unwrap();
            let mut store =
                DiskStore::open(d.join("store"), DiskStoreConfig::new(config.store_bytes, config.cache_bytes)).unwrap();
            for b in preload {
                store.put(Area::Store, b.routing_key(), b.clone()).unwrap();
            }
            daemons.push(Daemon::start_with(d, config, store).await.unwrap());
        } else {
            daemons.push(Daemon::start(d).await.unwrap());
        }
    }
    loop {
        let up = daemons
            .iter()
            .enumerate()
            .all(|(i, d)| d.handle().status().peers.len() == if i == 0 || i == n - 1 { 1 } else { 2 });
        if up {
            return daemons;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn main() {
    let mib: usize = std::env::var("PAMPHLET_BENCH_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(64);
    let bytes = mib << 20;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut data = vec![0u8; bytes];
        rand_chacha::ChaCha8Rng::seed_from_u64(1).fill_bytes(&mut data);

        let link = one_link(bytes).await;
        println!("one encrypted link, {mib} MiB of CHK blocks: {:.1} MB/s ({link:.2?})", mb(bytes, link));

        // Insert: from node 0, along the whole line (every node caches, the sinks store).
        let root = tempfile::tempdir().unwrap();
        let nodes = chain(root.path(), 5, &[]).await;
        let first = Arc::new(nodes[0].handle().clone());
        let start = Instant::now();
        let uri = pipeline::insert_chk(&first, data.clone(), InsertOptions::default(), 16, &|_, _| {}).await.unwrap();
        let insert = start.elapsed();
        println!("insert {mib} MiB at node 0 of 5 (FEC 0.5): {:.1} MB/s ({insert:.2?})", mb(bytes, insert));
        for n in nodes {
            n.shutdown().await.unwrap();
        }

        // Fetch: every block lives only in node 0's store, so each one crosses 4 hops to
        // reach node 4 (and is cached on the way back, as in the real network).
        let encoded = splitfile::encode(&data, &InsertOptions::default()).unwrap();
        assert_eq!(encoded.top, uri);
        let blocks: Vec<Block> = encoded.blocks.into_iter().map(Block::Chk).collect();
        let root = tempfile::tempdir().unwrap();
        let nodes = chain(root.path(), 5, &blocks).await;
        let last = Arc::new(nodes[4].handle().clone());
        let options = FetchOptions { parallel: 16, partial_dir: None };
        let start = Instant::now();
        let got = pipeline::fetch(&last, &Uri::Chk(uri), &options, &|_| {}).await.unwrap();
        let fetch = start.elapsed();
        assert!(got.document.data == data, "fetched document differs");
        let line = format!("{:.1} MB/s ({fetch:.2?}, {} requests)", mb(bytes, fetch), got.requests);
        println!("fetch {mib} MiB at node 4 of 5, every block 4 hops away: {line}");
        println!("fetch / one link: {:.0}%", 100.0 * link.as_secs_f64() / fetch.as_secs_f64());
        for n in nodes {
            n.shutdown().await.unwrap();
        }
    });
}
