//! What the benchmarks that run real daemons share: a line of daemons on disk stores, a raw
//! encrypted link pair, and MB/s. Included with `#[path]` by each bench that needs it.

#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use pamphlet_crypto::Block;
use pamphlet_node::api::ApiBackend;
use pamphlet_node::daemon::{self, datadir, Daemon};
use pamphlet_node::id::PeerId;
use pamphlet_node::link::{NodeRef, StaticKeypair};
use pamphlet_node::store::disk::{DiskStore, DiskStoreConfig};
use pamphlet_node::store::{Area, BlockStore};
use pamphlet_node::transport::{peer_id_of, Transport, TransportConfig, TransportEvent, TransportHandle};
use tokio::sync::mpsc;

/// Megabytes (10^6) per second.
pub(crate) fn mb(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

/// Two transports on loopback, friends and connected: `a` sends to `b` (as `b_peer`),
/// `b_events` receives.
pub(crate) struct LinkPair {
    pub(crate) a: TransportHandle,
    pub(crate) b: TransportHandle,
    pub(crate) b_peer: PeerId,
    pub(crate) b_events: mpsc::Receiver<TransportEvent>,
}

/// A connected [`LinkPair`].
pub(crate) async fn link_pair() -> LinkPair {
    let ka = StaticKeypair::generate().unwrap();
    let kb = StaticKeypair::generate().unwrap();
    let (pa, pb) = (peer_id_of(ka.public()), peer_id_of(kb.public()));
    let (ra, rb) = (*ka.public(), *kb.public());
    let (a, _ea) = Transport::start(TransportConfig::new("127.0.0.1:0".parse().unwrap(), ka)).await.unwrap();
    let (b, mut b_events) = Transport::start(TransportConfig::new("127.0.0.1:0".parse().unwrap(), kb)).await.unwrap();
    b.add_friend(NodeRef::v1(a.local_addr(), ra)).unwrap();
    a.add_friend(NodeRef::v1(b.local_addr(), rb)).unwrap();
    while !matches!(b_events.recv().await, Some(TransportEvent::Connected { peer }) if peer == pa) {}
    while !a.connected_peers().contains(&pb) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    LinkPair { a, b, b_peer: pb, b_events }
}

/// `n` daemons on disk stores wired as a line; node 0's store is preloaded with `preload`.
pub(crate) async fn chain(root: &Path, n: usize, preload: &[Block]) -> Vec<Daemon> {
    chain_with(root, n, preload, |_, _| {}).await
}

/// [`chain`], with `configure(i, config)` changing node `i`'s configuration first.
pub(crate) async fn chain_with(
    root: &Path,
    n: usize,
    preload: &[Block],
    configure: impl Fn(usize, &mut daemon::config::Config),
) -> Vec<Daemon> {
    let dirs: Vec<_> = (0..n).map(|i| root.join(format!("node{i}"))).collect();
    let mut refs = Vec::new();
    for (i, d) in dirs.iter().enumerate() {
        let mut c = daemon::init(d, None).unwrap();
        // Room for the document and its check blocks in every store.
        (c.store_bytes, c.cache_bytes) = (512 << 20, 256 << 20);
        configure(i, &mut c);
        c.save(&d.join("config.toml")).unwrap();
        let kp = datadir::load_or_create_keypair(&d.join("identity.key")).unwrap();
        refs.push(NodeRef::v1(c.listen, *kp.public()));
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
