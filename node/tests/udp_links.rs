//! Friend links over UDP datagrams (`transport = "udp"`, issue 18), real daemons on
//! 127.0.0.1: a darknet whose links all run over UDP fetches a multi-MiB document
//! byte-identical; a UDP node and a TCP-only friend still link (over TCP); garbage and a
//! flood at a node's UDP port leave its links up and working.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use pamphlet_crypto::Uri;
use pamphlet_node::client::pipeline::{self, FetchOptions};
use pamphlet_node::client::splitfile::InsertOptions;
use pamphlet_node::daemon::config::LinkTransport;
use pamphlet_node::daemon::{self, datadir, own_ref, Daemon};
use pamphlet_node::link::datagram::DATAGRAM_LEN;
use pamphlet_node::link::NodeRef;

/// Tests in this file run in parallel; `init` picks a free port and `start` binds it later,
/// so setups take turns (as in tests/daemon.rs).
static SETUP: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A node directory with `transport` set, and its signed reference (which says `udp` when
/// the node takes UDP links).
fn node(dir: &Path, transport: LinkTransport) -> NodeRef {
    let mut config = daemon::init(dir, None).unwrap();
    config.transport = transport;
    config.save(&dir.join("config.toml")).unwrap();
    let r = own_ref::own_noderef(dir, &config, config.listen).unwrap();
    assert_eq!(r.udp, transport == LinkTransport::Udp);
    r
}

/// Daemons wired as a line 0 - 1 - … - n-1, each with its transport; returns once every
/// link is up.
async fn line(root: &Path, transports: &[LinkTransport]) -> (Vec<Daemon>, Vec<PathBuf>) {
    let _turn = SETUP.lock().await;
    let n = transports.len();
    let dirs: Vec<_> = (0..n).map(|i| root.join(format!("node{i}"))).collect();
    let refs: Vec<_> = dirs.iter().zip(transports).map(|(d, t)| node(d, *t)).collect();
    for i in 0..n - 1 {
        datadir::append_friend(&dirs[i].join("friends"), &refs[i + 1]).unwrap();
        datadir::append_friend(&dirs[i + 1].join("friends"), &refs[i]).unwrap();
    }
    let mut daemons = Vec::new();
    for d in &dirs {
        daemons.push(Daemon::start(d).await.unwrap());
    }
    for _ in 0..400 {
        let ok = daemons.iter().enumerate().all(|(i, d)| {
            let want = if i == 0 || i == n - 1 { 1 } else { 2 };
            use pamphlet_node::api::ApiBackend;
            d.handle().status().peers.len() == want
        });
        if ok {
            tokio::time::sleep(Duration::from_millis(100)).await;
            return (daemons, dirs);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("links did not come up");
}

/// Seeded random bytes (no two 32 KiB shards alike).
fn data(len: usize, seed: u8) -> Vec<u8> {
    use rand::{RngCore, SeedableRng};
    let mut v = vec![0u8; len];
    rand_chacha::ChaCha8Rng::seed_from_u64(u64::from(seed)).fill_bytes(&mut v);
    v
}

async fn insert_and_fetch(from: &Daemon, to: &Daemon, len: usize, seed: u8) {
    let d = data(len, seed);
    let (from, to) = (Arc::new(from.handle().clone()), Arc::new(to.handle().clone()));
    let uri = pipeline::insert_chk(&from, d.clone(), InsertOptions::default(), 8, &|_, _| {}).await.unwrap();
    let got = pipeline::fetch(&to, &Uri::Chk(uri), &FetchOptions::default(), &|_| {}).await;
    let got = got.unwrap_or_else(|e| panic!("fetch of {len} bytes: {e}"));
    assert!(got.document.data == d, "{len} bytes fetched byte-identical");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_darknet_over_udp_fetches_a_document_byte_identical() {
    let root = tempfile::tempdir().unwrap();
    let (daemons, _) = line(root.path(), &[LinkTransport::Udp; 4]).await;
    for (i, d) in daemons.iter().enumerate() {
        let s = d.transport_stats();
        assert_eq!(s.udp_links, s.links, "node {i}: every link over UDP: {s:?}");
    }
    insert_and_fetch(&daemons[0], &daemons[3], 3 * 1024 * 1024, 1).await;
    for (i, d) in daemons.iter().enumerate() {
        let s = d.transport_stats();
        assert!(s.udp_links >= 1 && s.udp_links == s.links, "node {i} still over UDP: {s:?}");
    }
    for d in daemons {
        d.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_udp_node_and_a_tcp_only_friend_link_over_tcp() {
    let root = tempfile::tempdir().unwrap();
    let (daemons, _) = line(root.path(), &[LinkTransport::Udp, LinkTransport::Tcp, LinkTransport::Udp]).await;
    for (i, d) in daemons.iter().enumerate() {
        let s = d.transport_stats();
        assert_eq!(s.udp_links, 0, "node {i}: a TCP-only friend gets TCP links: {s:?}");
    }
    insert_and_fetch(&daemons[0], &daemons[2], 200 * 1024, 2).await;
    for d in daemons {
        d.shutdown().await.unwrap();
    }
}

/// Garbage of every size and a flood of full-size datagrams at a node's UDP port (its
/// listening address): its links stay up, over UDP, and carry a fetch afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_a_flood_at_the_udp_port_leave_the_links_working() {
    let root = tempfile::tempdir().unwrap();
    let (daemons, dirs) = line(root.path(), &[LinkTransport::Udp; 3]).await;
    let target = daemon::config::Config::load(&dirs[1].join("config.toml")).unwrap().listen;
    let socket = tokio::net::UdpSocket::bind("127.0.0.4:0").await.unwrap();
    let junk = data(4096, 9);
    for i in 0..20_000usize {
        let len = if i % 3 == 0 { DATAGRAM_LEN } else { i % 1500 };
        let at = i % (junk.len() - 1500);
        let _ = socket.send_to(&junk[at..at + len], target).await;
        if i % 500 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let s = daemons[1].transport_stats();
    assert_eq!((s.links, s.udp_links), (2, 2), "links kept through the flood: {s:?}");
    insert_and_fetch(&daemons[0], &daemons[2], 1024 * 1024, 3).await;
    let s = daemons[1].transport_stats();
    assert_eq!((s.links, s.udp_links), (2, 2), "{s:?}");
    for d in daemons {
        d.shutdown().await.unwrap();
    }
}

/// A node that restarts (same directory, same address) gets its UDP links back: its
/// friends' old sessions hand its new message 1 to their endpoints, which answer it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_gets_its_udp_links_back() {
    let root = tempfile::tempdir().unwrap();
    let (mut daemons, dirs) = line(root.path(), &[LinkTransport::Udp; 3]).await;
    let middle = daemons.remove(1);
    middle.shutdown().await.unwrap();
    let middle = Daemon::start(&dirs[1]).await.expect("restarts on the same UDP port");
    let mut up = false;
    for _ in 0..400 {
        let s = middle.transport_stats();
        if s.links == 2 && s.udp_links == 2 {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "links back over UDP: {:?}", middle.transport_stats());
    insert_and_fetch(&daemons[0], &daemons[1], 256 * 1024, 4).await;
    middle.shutdown().await.unwrap();
    for d in daemons {
        d.shutdown().await.unwrap();
    }
}

/// The loopback figure of docs/benchmarks.md ("Friend links over UDP"): 10 MiB inserted
/// at one end of four nodes in a line and fetched back there (the inserter's store does
/// not keep its own insert, so every block comes over the links, from one to three hops
/// away), over TCP links and over UDP links, three runs each. Prints
/// the times; asserts only that every fetch is byte-identical. Run with
/// `cargo test --release -p pamphlet-node --test udp_links -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a figure for docs/benchmarks.md, run in release"]
#[allow(clippy::print_stdout, clippy::disallowed_methods)] // a measurement: it prints wall-clock times
async fn loopback_fetch_times_over_tcp_and_udp() {
    for transport in [LinkTransport::Tcp, LinkTransport::Udp] {
        let root = tempfile::tempdir().unwrap();
        let (daemons, _) = line(root.path(), &[transport; 4]).await;
        for run in 0..3u8 {
            let d = data(10 * 1024 * 1024, 10 + run);
            let (from, to) = (Arc::new(daemons[0].handle().clone()), Arc::new(daemons[0].handle().clone()));
            let uri = pipeline::insert_chk(&from, d.clone(), InsertOptions::default(), 8, &|_, _| {}).await.unwrap();
            let t = std::time::Instant::now();
            let got = pipeline::fetch(&to, &Uri::Chk(uri), &FetchOptions::default(), &|_| {}).await.unwrap();
            let secs = t.elapsed().as_secs_f64();
            assert!(got.document.data == d);
            println!("{transport:?} run {run}: 10 MiB fetched back in {secs:.2} s ({:.1} MiB/s)", 10.0 / secs);
        }
        for d in daemons {
            d.shutdown().await.unwrap();
        }
    }
}

/// A transport with UDP links on and the upload limit `limit` (0: none), and its events.
async fn udp_transport(
    limit: u64,
) -> (pamphlet_node::transport::TransportHandle, tokio::sync::mpsc::Receiver<pamphlet_node::transport::TransportEvent>)
{
    use pamphlet_node::link::StaticKeypair;
    use pamphlet_node::transport::{Transport, TransportConfig};
    let mut c = TransportConfig::new("127.0.0.1:0".parse().unwrap(), StaticKeypair::generate().unwrap());
    c.udp = true;
    c.upload_limit = limit;
    c.backoff_initial = Duration::from_millis(20);
    Transport::start(c).await.unwrap()
}

/// Makes `a` and `b` friends and waits for their link over UDP: (b as a's peer, a as b's).
async fn udp_link(
    a: &pamphlet_node::transport::TransportHandle,
    b: &pamphlet_node::transport::TransportHandle,
) -> (pamphlet_node::id::PeerId, pamphlet_node::id::PeerId) {
    let udp_links = |t: &pamphlet_node::transport::TransportHandle| t.stats().udp_links;
    let before = (udp_links(a), udp_links(b));
    let a_ref = NodeRef::v1(a.local_addr(), a.public_key()).with_udp(true);
    let b_ref = NodeRef::v1(b.local_addr(), b.public_key()).with_udp(true);
    let peer_b = a.add_friend(b_ref).unwrap();
    let peer_a = b.add_friend(a_ref).unwrap();
    for _ in 0..200 {
        if udp_links(a) > before.0 && udp_links(b) > before.1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!((udp_links(a), udp_links(b)), (before.0 + 1, before.1 + 1), "the link runs over UDP");
    (peer_b, peer_a)
}

/// Two transports linked over UDP, `a` with the upload limit `limit_a`: (a, b, a's
/// events, b's events, b as a's peer, a as b's peer).
async fn udp_pair(
    limit_a: u64,
) -> (
    pamphlet_node::transport::TransportHandle,
    pamphlet_node::transport::TransportHandle,
    tokio::sync::mpsc::Receiver<pamphlet_node::transport::TransportEvent>,
    tokio::sync::mpsc::Receiver<pamphlet_node::transport::TransportEvent>,
    pamphlet_node::id::PeerId,
    pamphlet_node::id::PeerId,
) {
    let (a, a_events) = udp_transport(limit_a).await;
    let (b, b_events) = udp_transport(0).await;
    let (peer_b, peer_a) = udp_link(&a, &b).await;
    (a, b, a_events, b_events, peer_b, peer_a)
}

/// `sender` sends `to` blocks as fast as the link takes them, until aborted.
fn flood(
    sender: &pamphlet_node::transport::TransportHandle,
    to: pamphlet_node::id::PeerId,
) -> tokio::task::JoinHandle<()> {
    use pamphlet_crypto::{Block, BlockKind};
    use pamphlet_node::wire::Message;
    let block = Block::from_bytes(BlockKind::Chk, vec![7; BlockKind::Chk.block_len()]).unwrap();
    let sender = sender.clone();
    tokio::spawn(async move {
        for id in 1.. {
            if sender.send(to, &Message::DataFound { id, block: block.clone() }).await.is_err() {
                break;
            }
        }
    })
}

/// Block bytes `events` delivers within `span` (real time), and the seconds it took.
#[allow(clippy::disallowed_methods)] // measures the rate with the real clock
async fn blocks_received(
    events: &mut tokio::sync::mpsc::Receiver<pamphlet_node::transport::TransportEvent>,
    span: Duration,
) -> (u64, f64) {
    use pamphlet_crypto::BlockKind;
    use pamphlet_node::transport::TransportEvent;
    use pamphlet_node::wire::Message;
    let start = std::time::Instant::now();
    let mut got = 0u64;
    while start.elapsed() < span {
        if let Ok(Some(TransportEvent::Received { message: Message::DataFound { .. }, .. })) =
            tokio::time::timeout(Duration::from_millis(100), events.recv()).await
        {
            got += BlockKind::Chk.block_len() as u64;
        }
    }
    (got, start.elapsed().as_secs_f64())
}

/// The upload limit holds on UDP links: a node limited to 400 kB/s flooding a friend with
/// blocks over UDP sends no more than the limit allows (10% and one burst over it at
/// most), where unlimited the same link carries tens of MB/s on loopback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upload_limit_holds_on_udp_links() {
    const LIMIT: u64 = 400_000;
    let (a, b, _a_events, mut b_events, peer_b, _) = udp_pair(LIMIT).await;
    let flood = flood(&a, peer_b);
    let (got, secs) = blocks_received(&mut b_events, Duration::from_secs(3)).await;
    flood.abort();
    let allowed = (LIMIT as f64 * secs * 1.1) as u64 + 128 * 1024;
    assert!(got > 0, "blocks arrived");
    assert!(got <= allowed, "{got} bytes of blocks in {secs:.1} s over a {LIMIT} B/s limit (allowed {allowed})");
    a.shutdown().await;
    b.shutdown().await;
}

/// A download's acknowledgements are upload too: a node limited to 40 kB/s that a friend
/// floods with blocks sends, counted on its socket (every datagram: acknowledgements,
/// keepalives, handshakes), no more than the limit allows. The session makes its
/// acknowledgement-only datagrams itself (full size, so sizes tell nothing), one per 16
/// received: before they were charged to the limit, a loopback download of tens of MB/s
/// sent MB/s of them past a limit of kB/s. The download still moves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::print_stdout)] // the figures docs/wire.md quotes
async fn a_downloads_acknowledgements_count_against_the_upload_limit() {
    const LIMIT: u64 = 40_000;
    let (a, b, mut a_events, _b_events, _, peer_a) = udp_pair(LIMIT).await;
    let sent_before = a.udp_stats().unwrap().datagrams_sent;
    let flood = flood(&b, peer_a);
    let (got, secs) = blocks_received(&mut a_events, Duration::from_secs(3)).await;
    flood.abort();
    let sent = (a.udp_stats().unwrap().datagrams_sent - sent_before) * DATAGRAM_LEN as u64;
    let allowed = (LIMIT as f64 * secs * 1.1) as u64 + 64 * 1024;
    println!("{got} bytes of blocks received, {sent} bytes sent in {secs:.1} s");
    assert!(got > 0, "the download moved");
    assert!(sent <= allowed, "{sent} bytes sent in {secs:.1} s over a {LIMIT} B/s limit (allowed {allowed})");
    a.shutdown().await;
    b.shutdown().await;
}

/// The acknowledgements of a download take their turn on the upload limit, not every
/// turn: a node limited to 40 kB/s that one friend floods still sends another friend
/// frames at a fair part of its limit (counted as the other friend reads them: blocks go
/// out four at a time, interleaved, so few complete in seconds at this rate). A first
/// version paid the acknowledgements' debt back before any data claim, and the other
/// friend got the first burst and then nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::print_stdout, clippy::disallowed_methods)] // a rate on the real clock, printed
async fn a_flooding_friend_does_not_starve_the_uploads_to_another() {
    const LIMIT: u64 = 40_000;
    let (a, b, _a_events, _b_events, _, peer_a) = udp_pair(LIMIT).await;
    let (c, mut c_events) = udp_transport(0).await;
    let (peer_c, _) = udp_link(&a, &c).await;
    let flood_in = flood(&b, peer_a);
    // Let the flood into A take hold, and A's burst drain, before A's own upload starts.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let upload = flood(&a, peer_c);
    let drain = tokio::spawn(async move { while c_events.recv().await.is_some() {} });
    let (start, before) = (std::time::Instant::now(), c.stats().bytes_received);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (got, secs) = (c.stats().bytes_received - before, start.elapsed().as_secs_f64());
    flood_in.abort();
    upload.abort();
    println!("{got} bytes of frames to the other friend in {secs:.1} s");
    let fair = (LIMIT as f64 * secs / 4.0) as u64;
    assert!(got >= fair, "{got} bytes in {secs:.1} s: less than a quarter of the {LIMIT} B/s limit");
    for t in [a, b, c] {
        t.shutdown().await;
    }
    drain.abort();
}
