//! Link-level adversaries against real transports on loopback (issue 14, item 5): a
//! connection flood that needs no key, a prober timing the node's silence, and a friend
//! whose own address is unreachable. Each test failed on the transport before the
//! defences (a 64-slot semaphore refusing the newest, a fixed 10 s responder timeout,
//! only the smaller key dialling); docs/security.md records the measured figures.
//!
//! Everything stays on 127.0.0.0/8: Linux routes the whole block to loopback, so a flood
//! "from one address" binds 127.0.0.2 and a flood from many binds 127.1.x.y, while the
//! friends connect from 127.0.0.1. The tests use only the public API that existed before
//! the defences, so they can be run against the old transport unchanged.

// Tests measure with the real clock; the node process answers on stdout, and the
// measured figures (docs/security.md) are printed to stderr.
#![allow(clippy::disallowed_methods, clippy::print_stdout, clippy::print_stderr)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pamphlet_node::id::PeerId;
use pamphlet_node::link::noise::Initiator;
use pamphlet_node::link::{NodeRef, StaticKeypair};
use pamphlet_node::transport::{peer_id_of, Transport, TransportConfig, TransportEvent, TransportHandle};
use pamphlet_node::wire::frame::FRAME_LEN;
use pamphlet_node::wire::Message;
use rand::RngCore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::time::timeout;

/// The target: every friend links within this long during a flood.
const LINK_WITHIN: Duration = Duration::from_secs(5);

/// `n` key pairs, sorted by public key.
fn sorted_keys(n: usize) -> Vec<StaticKeypair> {
    let mut v: Vec<_> = (0..n).map(|_| StaticKeypair::generate().unwrap()).collect();
    v.sort_by_key(|k| *k.public());
    v
}

/// Default settings (the defences are the defaults), with quick redials so a test's
/// figure measures the node, not a friend's backoff.
fn config(keypair: StaticKeypair) -> TransportConfig {
    let mut c = TransportConfig::new("127.0.0.1:0".parse().unwrap(), keypair);
    c.backoff_initial = Duration::from_millis(100);
    c.backoff_max = Duration::from_millis(400);
    c
}

/// Waits (at most `within`) until `rx` reports a link to `want`; returns how long it took.
async fn linked_within(rx: &mut mpsc::Receiver<TransportEvent>, want: PeerId, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    let found = timeout(within, async {
        while let Some(ev) = rx.recv().await {
            if matches!(ev, TransportEvent::Connected { peer } if peer == want) {
                return true;
            }
        }
        false
    })
    .await;
    matches!(found, Ok(true)).then(|| start.elapsed())
}

/// What this process holds: open file descriptors, live tokio tasks, resident KiB.
#[derive(Clone, Copy, Debug)]
struct Footprint {
    fds: usize,
    tasks: usize,
    rss_kib: u64,
}

fn footprint() -> Footprint {
    let fds = std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0);
    let tasks = tokio::runtime::Handle::current().metrics().num_alive_tasks();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    Footprint { fds, tasks, rss_kib }
}

/// Connects to `to` from `from` (any port).
async fn connect_from(from: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpSocket::new_v4()?;
    s.bind(SocketAddr::new(from, 0))?;
    s.connect(to).await
}

/// The flood: `per_source` idle connections from each of `sources`, each reopened as
/// soon as the node closes it while `churn` is set (so the node never gets to sit with
/// fewer attackers than at the start), until `stop`. Returns the reopen count.
struct Flood {
    stop: Arc<AtomicBool>,
    reopened: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

async fn flood(to: SocketAddr, sources: &[IpAddr], per_source: usize, churn: bool) -> Flood {
    let stop = Arc::new(AtomicBool::new(false));
    let reopened = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    // Open them all first, so the node faces the whole flood before any friend dials.
    for &src in sources {
        for _ in 0..per_source {
            let Ok(first) = connect_from(src, to).await else { continue };
            let (stop, reopened) = (stop.clone(), reopened.clone());
            tasks.push(tokio::spawn(async move {
                let mut conn = first;
                // Bounded: at most 5 reopens per connection.
                for _ in 0..5 {
                    let mut buf = [0u8; 64];
                    let closed = async { while matches!(conn.read(&mut buf).await, Ok(n) if n > 0) {} };
                    tokio::select! {
                        _ = closed => {}
                        _ = async { while !stop.load(Ordering::Relaxed) {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        } } => return,
                    }
                    if !churn || stop.load(Ordering::Relaxed) {
                        // Hold the closed socket until stop, like an idle attacker.
                        while !stop.load(Ordering::Relaxed) {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        return;
                    }
                    match connect_from(src, to).await {
                        Ok(c) => {
                            reopened.fetch_add(1, Ordering::Relaxed);
                            conn = c;
                        }
                        Err(_) => return,
                    }
                }
            }));
        }
    }
    Flood { stop, reopened, tasks }
}

impl Flood {
    async fn end(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            let _ = t.await;
        }
        self.reopened.load(Ordering::Relaxed)
    }
}

/// The node under attack runs in its own process (this test binary again, running only
/// [`node_process`]), so its footprint is its own and not the flooder's. The parent
/// talks to it over stdin/stdout: `add NODEREF`, `peers`, `stats`, `quit`; each answer
/// is one line starting `NODE `.
const CHILD_ENV: &str = "PAMPHLET_LINK_ATTACKS_NODE";

struct NodeProcess {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    lines: std::sync::mpsc::Receiver<String>,
    node_ref: NodeRef,
}

impl NodeProcess {
    fn spawn(key: &StaticKeypair) -> Self {
        use std::io::BufRead;
        let exe = std::env::current_exe().unwrap();
        let mut child = std::process::Command::new(exe)
            .args(["--exact", "node_process", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, hex::encode(key.expose_secret()))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                // The harness may print "test node_process ... " on the same line.
                if let Some(at) = line.find("NODE ") {
                    if tx.send(line[at + 5..].to_string()).is_err() {
                        return;
                    }
                }
            }
        });
        let first = lines.recv_timeout(Duration::from_secs(30)).expect("the node process started");
        let node_ref = first.strip_prefix("ref ").unwrap().parse().unwrap();
        Self { child, stdin, lines, node_ref }
    }

    fn ask(&mut self, command: &str) -> String {
        use std::io::Write;
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
        self.lines.recv_timeout(Duration::from_secs(30)).expect("the node process answered")
    }

    fn footprint(&mut self) -> Footprint {
        let a = self.ask("stats");
        let v: Vec<u64> = a.split_whitespace().map(|x| x.parse().unwrap()).collect();
        Footprint { fds: v[0] as usize, tasks: v[1] as usize, rss_kib: v[2] }
    }

    /// Polls (at most 5 s) until the node has `n` links; returns the last count.
    async fn wait_peers(&mut self, n: usize) -> usize {
        let mut up = 0;
        for _ in 0..100 {
            up = self.ask("peers").parse().unwrap();
            if up == n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        up
    }

    fn quit(mut self) {
        let _ = self.ask("quit");
        let _ = self.child.wait();
    }
}

/// The node process's body; a no-op in a normal test run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_process() {
    let Ok(secret) = std::env::var(CHILD_ENV) else { return };
    let secret: [u8; 32] = hex::decode(secret).unwrap().try_into().unwrap();
    let (node, mut events) = Transport::start(config(StaticKeypair::from_secret(secret).unwrap())).await.unwrap();
    // The node's own event loop: a daemon drains its events.
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    println!("NODE ref {}", node.node_ref());
    // Commands arrive on stdin, read by a thread (the workspace's tokio has no io-std).
    let (tx, mut commands) = mpsc::channel::<String>(1);
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if tx.blocking_send(line).is_err() {
                return;
            }
        }
    });
    while let Some(line) = commands.recv().await {
        let reply = match line.split_once(' ').unwrap_or((line.as_str(), "")) {
            ("add", r) => {
                node.add_friend(r.parse().unwrap()).unwrap();
                "ok".to_string()
            }
            ("peers", _) => node.connected_peers().len().to_string(),
            ("stats", _) => {
                let f = footprint();
                format!("{} {} {}", f.fds, f.tasks, f.rss_kib)
            }
            _ => break,
        };
        println!("NODE {reply}");
    }
    node.shutdown().await;
    println!("NODE bye");
}

/// The node (the largest key, so on the old transport every friend was the dialler: the
/// old code's best case) in its own process, two friends linked to it before the flood,
/// and a third that starts during the flood.
struct Scene {
    node: NodeProcess,
    linked: Vec<TransportHandle>,
    late: StaticKeypair,
}

async fn scene() -> Scene {
    let mut keys = sorted_keys(4);
    let node_key = keys.pop().unwrap();
    let late = keys.pop().unwrap();
    let mut node = NodeProcess::spawn(&node_key);
    let mut linked = Vec::new();
    for k in keys {
        let (h, mut events) = Transport::start(config(k)).await.unwrap();
        // A transport whose events are not read stops its links: drain them.
        tokio::spawn(async move { while events.recv().await.is_some() {} });
        node.ask(&format!("add {}", h.node_ref()));
        h.add_friend(node.node_ref.clone()).unwrap();
        linked.push(h);
    }
    // The node has a wrong address for the late friend, so the link can only come from
    // the late friend's dial: through the listener under attack.
    node.ask(&format!("add {}", NodeRef::v1(free_port(), *late.public())));
    assert_eq!(node.wait_peers(2).await, 2, "the friends did not link before the flood");
    Scene { node, linked, late }
}

/// The IP address a test node's reference lists (test nodes listen on loopback).
fn node_addr(r: &NodeRef) -> SocketAddr {
    match &r.addresses()[0] {
        pamphlet_node::link::PeerAddr::Ip(a) => *a,
        other => panic!("test nodes listen on an IP, not {other}"),
    }
}

fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// Waits (bounded) until the node's footprint is back near `before`; returns the last.
async fn settles(node: &mut NodeProcess, before: Footprint) -> Footprint {
    let mut now = node.footprint();
    for _ in 0..100 {
        if now.fds <= before.fds && now.tasks <= before.tasks {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        now = node.footprint();
    }
    now
}

async fn flood_then_measure(sources: Vec<IpAddr>, per_source: usize, churn: bool, what: &str) {
    let mut s = scene().await;
    // Warm-up floods of the same shape first, so "before" is the node's steady state:
    // the first flood on a cold 5.5 MB process leaves ~0.6 MB of allocator and runtime
    // high-water behind, and sixteen floods in a row plateau at +0.9 MB (no growth per
    // connection; see docs/security.md). What must not grow is what a flood leaves. The
    // resident size never shrinks (the allocator keeps its high-water), and a flood's
    // high-water varies from flood to flood with thread timing (CI saw 6.6 -> 7.4 MB
    // across the measured flood after one warm-up), so the measured flood is compared
    // with the highest the warm-ups reached, not with where the first one settled: a
    // leak shows as growth past that; the allocator's own high-water does not.
    let mut before = s.node.footprint();
    let mut warm_peak = before.rss_kib;
    for _ in 0..4 {
        let f = flood(node_addr(&s.node.node_ref), &sources, per_source, churn).await;
        warm_peak = warm_peak.max(s.node.footprint().rss_kib);
        f.end().await;
        let settled = settles(&mut s.node, before).await;
        let grew = settled.rss_kib * 50 > before.rss_kib * 51;
        before = settled;
        warm_peak = warm_peak.max(before.rss_kib);
        if !grew {
            break;
        }
    }
    let addr = node_addr(&s.node.node_ref);
    let f = flood(addr, &sources, per_source, churn).await;
    let during = s.node.footprint();
    let (late, mut late_events) = Transport::start(config(s.late.clone())).await.unwrap();
    late.add_friend(s.node.node_ref.clone()).unwrap();
    let took = linked_within(&mut late_events, peer_id_of(&s.node.node_ref.key), LINK_WITHIN).await;
    // The friends linked before the flood are still linked (the node registers a link
    // just after the friend sees it up, hence the wait).
    let want = if took.is_some() { 3 } else { 2 };
    assert_eq!(s.node.wait_peers(want).await, want, "{what}: the flood cut a link");
    late.shutdown().await;
    let reopened = f.end().await;
    let after = settles(&mut s.node, before).await;
    eprintln!(
        "{what}: {} connections from {} address(es), {reopened} reopened; late friend linked in {took:?}; \
         node footprint before {before:?}, during {during:?}, after {after:?}",
        sources.len() * per_source,
        sources.len()
    );
    let took =
        took.unwrap_or_else(|| panic!("{what}: a friend could not link within {LINK_WITHIN:?} during the flood"));
    assert!(took < LINK_WITHIN);
    assert!(after.fds <= before.fds, "{what}: connections left open: {before:?} -> {after:?}");
    assert!(after.tasks <= before.tasks, "{what}: tasks left running: {before:?} -> {after:?}");
    // Within 10% of the warm-ups' high-water, or 2 MiB over it, whichever is more: the
    // allocator's arenas and thread caches move a 7 MB process by about 1 MB from flood to
    // flood, while a leak of 2 KiB per connection of the 1,000 would still show.
    let allowed = (warm_peak * 11 / 10).max(warm_peak + 2048);
    assert!(
        after.rss_kib <= allowed,
        "{what}: memory grew past the warm-up floods' high-water ({warm_peak} KiB) by more than 10% or 2 MiB: {before:?} -> {after:?}"
    );
    s.node.quit();
    for h in s.linked {
        h.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_idle_connections_from_one_address_does_not_lock_friends_out() {
    let one = vec![IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))];
    flood_then_measure(one, 1000, true, "one-address flood").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_many_addresses_does_not_lock_friends_out() {
    // 250 addresses in 125 networks (/24s), 4 connections each: only the global bound
    // and its eviction of the oldest stand between them and the friend.
    let many: Vec<IpAddr> =
        (0..250u32).map(|i| IpAddr::V4(Ipv4Addr::new(127, 1, (i / 2) as u8, (i % 2 + 1) as u8))).collect();
    flood_then_measure(many, 4, false, "many-address flood").await;
}

/// Connects from `from`, sends `bytes`, and returns what came back and when the node
/// closed (from the connect), or `None` if it did not close within `limit`.
async fn probe(from: IpAddr, to: SocketAddr, bytes: Vec<u8>, limit: Duration) -> (Vec<u8>, Option<Duration>) {
    let mut s = connect_from(from, to).await.unwrap();
    let start = Instant::now();
    let _ = s.write_all(&bytes).await;
    let mut got = Vec::new();
    let closed = timeout(limit, s.read_to_end(&mut got)).await.is_ok();
    (got, closed.then(|| start.elapsed()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prober_gets_silence_and_no_fixed_close_time() {
    let mut keys = sorted_keys(2);
    let node_key = keys.pop().unwrap();
    let (node, _events) = Transport::start(config(node_key)).await.unwrap();
    let handshake_max = TransportConfig::new("127.0.0.1:0".parse().unwrap(), keys[0].clone()).handshake_timeout;
    let addr = node.local_addr();
    let stranger = keys.pop().unwrap();
    let mut probes = Vec::new();
    // Twelve probers from twelve addresses (so no per-address bound evicts one): silent,
    // junk, and a well-formed message 1 from a key the node does not know.
    for i in 0..12u8 {
        let bytes = match i % 3 {
            0 => Vec::new(),
            1 => {
                let mut junk = vec![0u8; FRAME_LEN + 7];
                rand::thread_rng().fill_bytes(&mut junk);
                junk
            }
            _ => {
                let mut m1 = [0u8; FRAME_LEN];
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
                Initiator::start(&stranger, &node.public_key(), now, &mut m1).unwrap();
                m1.to_vec()
            }
        };
        let from = IpAddr::V4(Ipv4Addr::new(127, 0, 2, i + 1));
        probes.push(tokio::spawn(probe(from, addr, bytes, Duration::from_secs(6))));
    }
    let mut closes = Vec::new();
    for p in probes {
        let (reply, closed) = p.await.unwrap();
        assert!(reply.is_empty(), "the node answered a prober with {} bytes", reply.len());
        closes.push(closed.expect("the node held a prober's connection for more than 6 s"));
    }
    closes.sort();
    let (min, max) = (closes[0], closes[closes.len() - 1]);
    eprintln!("prober close times: {closes:?} (handshake timeout {handshake_max:?})");
    assert!(max <= handshake_max + Duration::from_millis(500), "a prober was held past the handshake timeout");
    // Uniform over [T/4, T]: twelve draws spread over less than T/8 by chance with
    // probability below 1e-8. A constant timeout spreads over milliseconds.
    assert!(max - min >= handshake_max / 8, "close times are a fixed signature: {min:?}..{max:?}");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_friend_with_a_wrong_address_still_gets_its_link_from_the_other_side() {
    let keys = sorted_keys(2);
    let (small, large) = (keys[0].clone(), keys[1].clone());
    let (hs, mut es) = Transport::start(config(small)).await.unwrap();
    let (hl, mut el) = Transport::start(config(large)).await.unwrap();
    // The smaller key (the only dialler on the old transport) has a stale address for
    // its friend: nothing listens there. The larger knows the right address.
    hs.add_friend(NodeRef::v1(free_port(), hl.public_key())).unwrap();
    hl.add_friend(hs.node_ref()).unwrap();
    let (ps, pl) = (peer_id_of(&hs.public_key()), peer_id_of(&hl.public_key()));
    let took = linked_within(&mut es, pl, LINK_WITHIN).await;
    eprintln!("link through the other side's dial in {took:?}");
    assert!(took.is_some(), "no link: only the side with the wrong address dials");
    assert!(linked_within(&mut el, ps, LINK_WITHIN).await.is_some());
    hs.send(pl, &Message::SwapRejected { id: 1 }).await.unwrap();
    hl.send(ps, &Message::SwapRejected { id: 2 }).await.unwrap();
    hs.shutdown().await;
    hl.shutdown().await;
}

/// Events after the first link came up, for the flapping check.
async fn events_for(rx: &mut mpsc::Receiver<TransportEvent>, how_long: Duration) -> Vec<String> {
    let mut seen = Vec::new();
    let _ = timeout(how_long, async {
        while let Some(ev) = rx.recv().await {
            match ev {
                TransportEvent::Connected { .. } => seen.push("connected".to_string()),
                TransportEvent::Disconnected { reason, .. } => seen.push(format!("disconnected: {reason}")),
                _ => {}
            }
        }
    })
    .await;
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_friends_dialling_at_once_settle_on_one_link_without_flapping() {
    for round in 0..5 {
        let keys = sorted_keys(2);
        // No first-dial delay on either side: both dial at the same instant, every round.
        let mut ca = config(keys[0].clone());
        let mut cb = config(keys[1].clone());
        ca.backoff_initial = Duration::ZERO;
        cb.backoff_initial = Duration::ZERO;
        let (ha, mut ea) = Transport::start(ca).await.unwrap();
        let (hb, mut eb) = Transport::start(cb).await.unwrap();
        let (pa, pb) = (peer_id_of(&ha.public_key()), peer_id_of(&hb.public_key()));
        let (ra, rb) = (ha.node_ref(), hb.node_ref());
        let (x, y) = tokio::join!(async { ha.add_friend(rb) }, async { hb.add_friend(ra) });
        x.unwrap();
        y.unwrap();
        assert!(linked_within(&mut ea, pb, LINK_WITHIN).await.is_some(), "round {round}: no link");
        assert!(linked_within(&mut eb, pa, LINK_WITHIN).await.is_some(), "round {round}: no link");
        // While the race settles an end may see the losing link replaced or closed and
        // the winner come up (a few events), then nothing for a second: a flapping pair
        // would keep connecting and disconnecting.
        let (sa, sb) = tokio::join!(
            events_for(&mut ea, Duration::from_millis(700)),
            events_for(&mut eb, Duration::from_millis(700))
        );
        eprintln!("round {round}: settling events a {sa:?}, b {sb:?}");
        assert!(sa.len() <= 4 && sb.len() <= 4, "round {round}: a saw {sa:?}, b saw {sb:?}");
        let (qa, qb) =
            tokio::join!(events_for(&mut ea, Duration::from_secs(1)), events_for(&mut eb, Duration::from_secs(1)));
        assert!(qa.is_empty() && qb.is_empty(), "round {round}: still flapping: {qa:?} {qb:?}");
        assert_eq!(ha.connected_peers(), vec![pb]);
        assert_eq!(hb.connected_peers(), vec![pa]);
        // Both ends kept the same connection: messages cross both ways.
        ha.send(pb, &Message::SwapRejected { id: 5 }).await.unwrap();
        hb.send(pa, &Message::SwapRejected { id: 6 }).await.unwrap();
        let got = timeout(LINK_WITHIN, async {
            loop {
                if let Some(TransportEvent::Received { message, .. }) = eb.recv().await {
                    return message;
                }
            }
        })
        .await
        .expect("a message over the kept link");
        assert_eq!(got, Message::SwapRejected { id: 5 });
        ha.shutdown().await;
        hb.shutdown().await;
    }
}
