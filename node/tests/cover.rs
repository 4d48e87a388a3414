//! Cover traffic (`link_rate`, issue 18) on a recorded link: an observer between two
//! friends records when each 1 KiB frame from A arrives, while A's link alternates idle
//! and busy (blocks queued) segments. The inter-frame gaps of the idle and the busy
//! segments must not be told apart by a two-sample Kolmogorov–Smirnov test, and an idle
//! link must send frames at the rate at all (without cover traffic it sends none, and the
//! test fails).
//!
//! Segments alternate, so load from elsewhere on the machine falls on both alike. CI
//! records about 2,000 gaps of each kind and requires p > 0.001 (a p > 0.05 bound fails
//! 5% of honest runs by definition); `PAMPHLET_COVER_SEGMENTS=30` records about 10,000 for
//! the figure (docs/wire.md).

// Tests measure with, and drive links by, the real clock; the figures go to stderr.
#![allow(clippy::disallowed_methods, clippy::print_stderr)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pamphlet_crypto::{Block, BlockKind};
use pamphlet_node::link::{NodeRef, StaticKeypair};
use pamphlet_node::transport::{peer_id_of, Transport, TransportConfig, TransportEvent};
use pamphlet_node::wire::frame::FRAME_LEN;
use pamphlet_node::wire::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

const RATE: u32 = 500;
const SEGMENT: Duration = Duration::from_secs(1);
/// Gaps this soon after a segment starts are left out (what the last one queued drains).
const SETTLE: Duration = Duration::from_millis(300);

fn config(keypair: StaticKeypair, link_rate: u32) -> TransportConfig {
    let mut c = TransportConfig::new("127.0.0.1:0".parse().unwrap(), keypair);
    c.handshake_timeout = Duration::from_millis(800);
    c.backoff_initial = Duration::from_millis(20);
    c.backoff_max = Duration::from_millis(200);
    c.link_rate = link_rate;
    c
}

/// Forwards one connection to `to`, recording when bytes from the dialer arrive.
async fn recording_relay(to: SocketAddr) -> (SocketAddr, Arc<Mutex<Vec<(Instant, usize)>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let rec = log.clone();
    tokio::spawn(async move {
        let (inbound, _) = listener.accept().await.unwrap();
        let outbound = TcpStream::connect(to).await.unwrap();
        let _ = inbound.set_nodelay(true);
        let _ = outbound.set_nodelay(true);
        let (mut ir, mut iw) = inbound.into_split();
        let (mut or, mut ow) = outbound.into_split();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = or.read(&mut buf).await {
                if n == 0 || iw.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        });
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = ir.read(&mut buf).await {
            if n == 0 {
                break;
            }
            rec.lock().unwrap().push((Instant::now(), n));
            if ow.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    });
    (addr, log)
}

/// Arrival time of each whole frame, from the relay's reads.
fn frame_times(log: &[(Instant, usize)]) -> Vec<Instant> {
    let mut times = Vec::new();
    let mut bytes = 0;
    for &(t, n) in log {
        let before = bytes / FRAME_LEN;
        bytes += n;
        times.extend(std::iter::repeat_n(t, bytes / FRAME_LEN - before));
    }
    times
}

/// The two-sample Kolmogorov–Smirnov statistic and its asymptotic p-value.
fn ks(a: &mut [f64], b: &mut [f64]) -> (f64, f64) {
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (n, m) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j, mut d) = (0, 0, 0.0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / n - j as f64 / m).abs());
    }
    let ne = n * m / (n + m);
    let lambda = (ne.sqrt() + 0.12 + 0.11 / ne.sqrt()) * d;
    let p: f64 = (1..=100)
        .map(|k| {
            let k = f64::from(k);
            let sign = if k as u32 % 2 == 1 { 1.0 } else { -1.0 };
            2.0 * sign * (-2.0 * k * k * lambda * lambda).exp()
        })
        .sum();
    (d, p.clamp(0.0, 1.0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_busy_links_look_the_same_under_cover_traffic() {
    let segments: usize = std::env::var("PAMPHLET_COVER_SEGMENTS").ok().and_then(|s| s.parse().ok()).unwrap_or(6);
    let (ka, kb) = {
        let (x, y) = (StaticKeypair::generate().unwrap(), StaticKeypair::generate().unwrap());
        if x.public() < y.public() {
            (x, y)
        } else {
            (y, x)
        }
    };
    // A has the smaller key, so it dials first: through the relay.
    let (b, mut eb) = Transport::start(config(kb, RATE)).await.unwrap();
    let (a, mut ea) = Transport::start(config(ka, RATE)).await.unwrap();
    let (relay, log) = recording_relay(b.local_addr()).await;
    b.add_friend(a.node_ref()).unwrap();
    a.add_friend(NodeRef::v1(relay, b.public_key())).unwrap();
    let (pa, pb) = (peer_id_of(&a.public_key()), peer_id_of(&b.public_key()));
    for (rx, want) in [(&mut ea, pb), (&mut eb, pa)] {
        loop {
            match timeout(Duration::from_secs(20), rx.recv()).await {
                Ok(Some(TransportEvent::Connected { peer })) if peer == want => break,
                Ok(Some(_)) => {}
                other => panic!("link did not come up: {other:?}"),
            }
        }
    }
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    let drain = tokio::spawn(async move {
        while let Some(ev) = eb.recv().await {
            if let TransportEvent::Received { message: Message::DataFound { .. }, .. } = ev {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Busy segments: blocks queued all along (at most two outstanding, so little spills
    // into the next idle segment).
    let busy = Arc::new(AtomicBool::new(false));
    let (sender, flag, got) = (a.clone(), busy.clone(), received.clone());
    let feeder = tokio::spawn(async move {
        let block = Block::from_bytes(BlockKind::Chk, vec![9; BlockKind::Chk.block_len()]).unwrap();
        let mut sent = 0u64;
        loop {
            if flag.load(Ordering::Relaxed) && sent < got.load(Ordering::Relaxed) + 2 {
                sent += 1;
                if sender.send(pb, &Message::DataFound { id: sent, block: block.clone() }).await.is_err() {
                    return;
                }
            } else {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    });
    let mut marks = Vec::new();
    for s in 0..2 * segments {
        let is_busy = s % 2 == 1;
        busy.store(is_busy, Ordering::Relaxed);
        let start = Instant::now();
        tokio::time::sleep(SEGMENT).await;
        marks.push((start, Instant::now(), is_busy, received.load(Ordering::Relaxed)));
    }
    busy.store(false, Ordering::Relaxed);
    feeder.abort();

    let times = frame_times(&log.lock().unwrap());
    let (mut idle, mut loaded) = (Vec::new(), Vec::new());
    for w in times.windows(2) {
        if let Some(&(_, _, is_busy, _)) = marks.iter().find(|(s, e, _, _)| w[0] >= *s + SETTLE && w[1] <= *e) {
            let gap = (w[1] - w[0]).as_secs_f64() * 1000.0;
            if is_busy {
                loaded.push(gap);
            } else {
                idle.push(gap);
            }
        }
    }
    let blocks = received.load(Ordering::Relaxed);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let (mi, mb) = (mean(&idle), mean(&loaded));
    let expected = (segments as f64 * (SEGMENT - SETTLE).as_secs_f64() * f64::from(RATE) * 0.8) as usize;
    eprintln!(
        "{} idle gaps (mean {mi:.3} ms), {} busy gaps (mean {mb:.3} ms), {blocks} blocks delivered",
        idle.len(),
        loaded.len()
    );
    assert!(idle.len() >= expected, "an idle link sent {} frames, expected about {expected}", idle.len());
    assert!(loaded.len() >= expected, "a busy link sent {} frames, expected about {expected}", loaded.len());
    assert!(blocks >= segments as u64 * 5, "the busy segments carried only {blocks} blocks");
    let (d, p) = ks(&mut idle, &mut loaded);
    eprintln!("KS: D = {d:.4}, p = {p:.4}");
    assert!(p > 0.001, "idle and busy gaps differ: D = {d:.4}, p = {p:.6}");
    drain.abort();
    a.shutdown().await;
    b.shutdown().await;
}
