//! Cover traffic (`link_rate`, issue 18) on a recorded link: an observer between two
//! friends records when each 1 KiB frame from A arrives (the kernel's receive timestamp,
//! as a tap on the wire would see it), while A's link alternates idle and busy (blocks
//! queued) segments. The inter-frame gaps of the idle and the busy segments must not be
//! told apart by a two-sample Kolmogorov–Smirnov test, frames must leave at the
//! configured interval (most gaps within 5% of it), and an idle link must send frames at
//! the rate at all (without cover traffic it sends none, and the test fails).
//!
//! Segments of 0.4 s alternate, so load from elsewhere on the machine falls on both
//! alike. CI records about 2,000 gaps of each kind and requires p > 10⁻⁴: a p > 0.05
//! bound fails 5% of honest runs by definition. `PAMPHLET_COVER_SEGMENTS=80` records
//! about 10,000, the target (p > 0.05; figures in docs/wire.md, "Cover traffic").
//! The interval check is what fails the process-timer writer this replaced (its KS p over
//! 2,000 gaps stayed above 10⁻⁴).
//!
//! A second test floods a paced link: it carries at most `link_rate` frames a second,
//! and an idle one sends exactly its padding: the throughput cost.

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
use tokio::time::timeout;

const RATE: u32 = 500;
const SEGMENT: Duration = Duration::from_millis(400);
/// Gaps this soon after a segment starts are left out (what the last one queued drains).
const SETTLE: Duration = Duration::from_millis(150);

fn config(keypair: StaticKeypair, link_rate: u32) -> TransportConfig {
    let mut c = TransportConfig::new("127.0.0.1:0".parse().unwrap(), keypair);
    c.handshake_timeout = Duration::from_millis(800);
    c.backoff_initial = Duration::from_millis(20);
    c.backoff_max = Duration::from_millis(200);
    c.link_rate = link_rate;
    c
}

/// Forwards one connection to `to`, so that A's frames cross a port the tap can pick out.
fn relay(to: SocketAddr) -> SocketAddr {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut inbound, _) = listener.accept().unwrap();
        let mut outbound = std::net::TcpStream::connect(to).unwrap();
        let _ = inbound.set_nodelay(true);
        let _ = outbound.set_nodelay(true);
        let (mut back_from, mut back_to) = (outbound.try_clone().unwrap(), inbound.try_clone().unwrap());
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = back_from.read(&mut buf) {
                if n == 0 || back_to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = inbound.read(&mut buf) {
            if n == 0 || outbound.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    addr
}

/// One TCP segment the tap saw: when its thread read it (to tell which segment of the
/// test it belongs to), the kernel's timestamp of the packet (ns), its sequence number and
/// its payload length.
type Seen = (Instant, u64, u32, usize);

/// A tap on the wire: a packet socket on loopback records the kernel's timestamp of every
/// TCP segment sent to `port` (`SO_TIMESTAMPNS`, taken when the packet is handed to the
/// device: what an observer of the link sees). An earlier observer recorded when a relay's
/// thread read the frames; its wake-ups followed how busy B made the machine (p = 0.009
/// over 10,000 gaps with the kernel-paced sender), and the receive-socket timestamps that
/// replaced them merged two frames whenever the relay fell behind (TCP coalesces queued
/// segments and keeps the later one's timestamp). Needs root (CAP_NET_RAW): `None`, with
/// the reason printed, outside CI.
fn tap(port: u16, stop: Arc<AtomicBool>) -> Option<Arc<Mutex<Vec<Seen>>>> {
    use nix::sys::socket::{
        recvmsg, setsockopt, socket, sockopt, AddressFamily, ControlMessageOwned, LinkAddr, MsgFlags, SockFlag,
        SockProtocol, SockType,
    };
    use std::io::IoSliceMut;
    use std::os::fd::AsRawFd;
    let fd = match socket(AddressFamily::Packet, SockType::Datagram, SockFlag::empty(), SockProtocol::EthAll) {
        Ok(fd) => fd,
        Err(e) => {
            let why = format!("a packet socket to watch the link needs root ({e})");
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}: CI runs as root");
            eprintln!("SKIPPED: {why}");
            return None;
        }
    };
    setsockopt(&fd, sockopt::ReceiveTimestampns, &true).unwrap();
    let _ = setsockopt(&fd, sockopt::RcvBufForce, &(16 << 20));
    let timeout = nix::sys::time::TimeVal::new(0, 100_000);
    setsockopt(&fd, sockopt::ReceiveTimeout, &timeout).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let rec = log.clone();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        let mut cmsg = nix::cmsg_space!(nix::sys::time::TimeSpec);
        while !stop.load(Ordering::Relaxed) {
            let mut iov = [IoSliceMut::new(&mut buf)];
            let Ok(msg) = recvmsg::<LinkAddr>(fd.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::empty()) else {
                continue;
            };
            // Loopback shows each packet twice: leaving (PACKET_OUTGOING) and arriving.
            if msg.address.is_none_or(|a| a.pkttype() == libc::PACKET_OUTGOING) {
                continue;
            }
            let stamp = msg.cmsgs().ok().and_then(|mut c| {
                c.find_map(|c| match c {
                    ControlMessageOwned::ScmTimestampns(t) => {
                        Some(t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
                    }
                    _ => None,
                })
            });
            let (n, Some(stamp)) = (msg.bytes, stamp) else { continue };
            let ip = &buf[..n];
            // IPv4, TCP, to the relay's port.
            if n < 40 || ip[0] >> 4 != 4 || ip[9] != 6 {
                continue;
            }
            let (ihl, total) = (usize::from(ip[0] & 15) * 4, usize::from(u16::from_be_bytes([ip[2], ip[3]])));
            let tcp = &ip[ihl..];
            if u16::from_be_bytes([tcp[2], tcp[3]]) != port {
                continue;
            }
            let seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
            let payload = total.saturating_sub(ihl + usize::from(tcp[12] >> 4) * 4);
            if payload > 0 {
                rec.lock().unwrap().push((Instant::now(), stamp, seq, payload));
            }
        }
    });
    Some(log)
}

/// Each frame the tap saw, in order: when the tap read it and the kernel's timestamp; a
/// segment that carries whole frames (after the handshake, every one) gives each of them
/// its timestamp (two frames in one segment left together: gap 0). `None` marks where the
/// tap missed a segment (a gap across it is not measured); resent segments are skipped.
fn frame_times(log: &[Seen]) -> Vec<(Instant, Option<u64>)> {
    let mut times = Vec::new();
    let mut next: Option<u32> = None;
    for &(t, stamp, seq, len) in log {
        if let Some(want) = next {
            if (seq.wrapping_sub(want) as i32) < 0 {
                continue;
            }
            if seq != want {
                times.push((t, None));
            }
        }
        next = Some(seq.wrapping_add(len as u32));
        if len % FRAME_LEN == 0 {
            times.extend(std::iter::repeat_n((t, Some(stamp)), len / FRAME_LEN));
        } else {
            times.push((t, None));
        }
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

/// A runtime of one worker thread: each node gets its own, as on two machines, so the
/// receiver's work on busy segments does not delay the sender's ticks.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap()
}

#[test]
fn idle_and_busy_links_look_the_same_under_cover_traffic() {
    let segments: usize = std::env::var("PAMPHLET_COVER_SEGMENTS").ok().and_then(|s| s.parse().ok()).unwrap_or(16);
    let (ka, kb) = {
        let (x, y) = (StaticKeypair::generate().unwrap(), StaticKeypair::generate().unwrap());
        if x.public() < y.public() {
            (x, y)
        } else {
            (y, x)
        }
    };
    let (rt_a, rt_b) = (runtime(), runtime());
    // A has the smaller key, so it dials first: through the relay.
    let (b, mut eb) = rt_b.block_on(Transport::start(config(kb, RATE))).unwrap();
    let (a, mut ea) = rt_a.block_on(Transport::start(config(ka, RATE))).unwrap();
    let relay = relay(b.local_addr());
    let stop_tap = Arc::new(AtomicBool::new(false));
    let Some(log) = tap(relay.port(), stop_tap.clone()) else { return };
    b.add_friend(a.node_ref()).unwrap();
    a.add_friend(NodeRef::v1(relay, b.public_key())).unwrap();
    let (pa, pb) = (peer_id_of(&a.public_key()), peer_id_of(&b.public_key()));
    for (rt, rx, want) in [(&rt_a, &mut ea, pb), (&rt_b, &mut eb, pa)] {
        rt.block_on(async {
            loop {
                match timeout(Duration::from_secs(20), rx.recv()).await {
                    Ok(Some(TransportEvent::Connected { peer })) if peer == want => break,
                    Ok(Some(_)) => {}
                    other => panic!("link did not come up: {other:?}"),
                }
            }
        });
    }
    let received = Arc::new(AtomicU64::new(0));
    // Wakes the feeder when a block arrived or a segment began (it never polls: a timer
    // of its own on A's runtime would wake it differently in idle and busy segments).
    let wake = Arc::new(tokio::sync::Notify::new());
    let (counter, woken) = (received.clone(), wake.clone());
    let drain = rt_b.spawn(async move {
        while let Some(ev) = eb.recv().await {
            if let TransportEvent::Received { message: Message::DataFound { .. }, .. } = ev {
                counter.fetch_add(1, Ordering::Relaxed);
                woken.notify_one();
            }
        }
    });
    std::thread::sleep(Duration::from_millis(500));

    // Busy segments: blocks queued all along (at most two outstanding, so little spills
    // into the next idle segment).
    let busy = Arc::new(AtomicBool::new(false));
    let (sender, flag, got, woken) = (a.clone(), busy.clone(), received.clone(), wake.clone());
    let feeder = rt_a.spawn(async move {
        let block = Block::from_bytes(BlockKind::Chk, vec![9; BlockKind::Chk.block_len()]).unwrap();
        let mut sent = 0u64;
        loop {
            if flag.load(Ordering::Relaxed) && sent < got.load(Ordering::Relaxed) + 2 {
                sent += 1;
                if sender.send(pb, &Message::DataFound { id: sent, block: block.clone() }).await.is_err() {
                    return;
                }
            } else {
                woken.notified().await;
            }
        }
    });
    let mut marks = Vec::new();
    for s in 0..2 * segments {
        let is_busy = s % 2 == 1;
        busy.store(is_busy, Ordering::Relaxed);
        wake.notify_one();
        let start = Instant::now();
        std::thread::sleep(SEGMENT);
        marks.push((start, Instant::now(), is_busy, received.load(Ordering::Relaxed)));
    }
    busy.store(false, Ordering::Relaxed);
    feeder.abort();

    stop_tap.store(true, Ordering::Relaxed);
    let times = frame_times(&log.lock().unwrap());
    let (mut idle, mut loaded) = (Vec::new(), Vec::new());
    for w in times.windows(2) {
        let (Some(t0), Some(t1)) = (w[0].1, w[1].1) else { continue };
        if let Some(&(_, _, is_busy, _)) = marks.iter().find(|(s, e, _, _)| w[0].0 >= *s + SETTLE && w[1].0 <= *e) {
            let gap = t1.saturating_sub(t0) as f64 / 1e6;
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
    let q = |v: &[f64], f: f64| v[((v.len() - 1) as f64 * f) as usize];
    for (name, v) in [("idle", &idle), ("busy", &loaded)] {
        let qs: Vec<String> =
            [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99].iter().map(|f| format!("{:.3}", q(v, *f))).collect();
        let long = v.iter().filter(|g| **g > 3.0).count();
        eprintln!(
            "{name} gap quantiles (1, 10, 25, 50, 75, 90, 99%), ms: {}; max {:.3}, {long} over 3 ms",
            qs.join(" "),
            v[v.len() - 1]
        );
    }
    eprintln!("KS: D = {d:.4}, p = {p:.4}");
    assert!(p > 1e-4, "idle and busy gaps differ: D = {d:.4}, p = {p:.6}");
    // The kernel sends the frames, one packet each, at the configured interval: most gaps
    // are within 5% of it, idle or busy (93-99.6% measured, the lower figure on a loaded
    // machine). A timer in the process (the writer this replaced: tokio's 1 ms timer) gave
    // gaps of about 1.1-1.2 and 2.1-2.3 ms for a 2 ms interval, 0.6% of them in that band,
    // while its KS p over 2,000 gaps (and on a quiet machine over 10,000) stayed above the
    // bound: this is what tells the two apart.
    let interval = 1000.0 / f64::from(RATE);
    for (name, v) in [("idle", &idle), ("busy", &loaded)] {
        let on_time = v.iter().filter(|g| (**g - interval).abs() <= interval / 20.0).count();
        let share = on_time as f64 / v.len() as f64;
        eprintln!("{name}: {:.1}% of gaps within 5% of the {interval} ms interval", share * 100.0);
        assert!(share >= 0.6, "only {:.1}% of {name} gaps were within 5% of the interval", share * 100.0);
    }
    drain.abort();
    rt_a.block_on(a.shutdown());
    rt_b.block_on(b.shutdown());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paced_link_carries_its_rate_and_no_more() {
    let (ka, kb) = (StaticKeypair::generate().unwrap(), StaticKeypair::generate().unwrap());
    let (b, mut eb) = Transport::start(config(kb, RATE)).await.unwrap();
    let (a, mut ea) = Transport::start(config(ka, RATE)).await.unwrap();
    b.add_friend(a.node_ref()).unwrap();
    a.add_friend(b.node_ref()).unwrap();
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
    // Idle: only padding, at the rate (after the socket's short unsent queue filled).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = a.stats().bytes_sent;
    let t = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rate = (a.stats().bytes_sent - before) as f64 / t.elapsed().as_secs_f64() / FRAME_LEN as f64;
    // A block's latency on an idle paced link: its 33 frames at the rate, plus the padding
    // already queued ahead of it (figures only: timings are not asserted).
    let block = Block::from_bytes(BlockKind::Chk, vec![7; BlockKind::Chk.block_len()]).unwrap();
    let mut latencies = Vec::new();
    for id in 0..10 {
        let t = Instant::now();
        a.send(pb, &Message::DataFound { id: u64::MAX - id, block: block.clone() }).await.unwrap();
        loop {
            match timeout(Duration::from_secs(5), eb.recv()).await {
                Ok(Some(TransportEvent::Received { message: Message::DataFound { .. }, .. })) => break,
                Ok(Some(_)) => {}
                other => panic!("a block on an idle paced link did not arrive: {other:?}"),
            }
        }
        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    latencies.sort_by(f64::total_cmp);
    eprintln!(
        "one block on an idle paced link: median {:.1} ms, max {:.1} ms",
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1]
    );
    // Flooded: blocks as fast as the queue takes them.
    let sender = a.clone();
    let flood = tokio::spawn(async move {
        let block = Block::from_bytes(BlockKind::Chk, vec![5; BlockKind::Chk.block_len()]).unwrap();
        for id in 0.. {
            if sender.send(pb, &Message::DataFound { id, block: block.clone() }).await.is_err() {
                return;
            }
        }
    });
    let (t, mut got) = (Instant::now(), 0u32);
    while t.elapsed() < Duration::from_secs(3) {
        if let Ok(Some(TransportEvent::Received { message: Message::DataFound { .. }, .. })) =
            timeout(Duration::from_millis(100), eb.recv()).await
        {
            got += 1;
        }
    }
    let blocks_per_sec = f64::from(got) / t.elapsed().as_secs_f64();
    let ceiling = f64::from(RATE) / 33.0;
    eprintln!("idle link: {idle_rate:.0} frames/s; flooded: {blocks_per_sec:.1} blocks/s (ceiling {ceiling:.1})");
    assert!(
        (f64::from(RATE) * 0.8..=f64::from(RATE) * 1.05).contains(&idle_rate),
        "idle link sent {idle_rate} frames/s"
    );
    assert!(blocks_per_sec <= ceiling * 1.1, "a paced link carried {blocks_per_sec} blocks/s");
    assert!(blocks_per_sec >= ceiling * 0.7, "a paced link carried only {blocks_per_sec} blocks/s");
    flood.abort();
    a.shutdown().await;
    b.shutdown().await;
}
