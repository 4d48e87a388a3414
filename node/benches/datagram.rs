//! Datagram links (`link::datagram`, `transport::udp`): the cost of the sans-IO session
//! per frame with both ends in memory, and one link's loopback throughput over UDP.
//!
//! Run: `cargo bench -p pamphlet-node --bench datagram`. Figures go to docs/benchmarks.md
//! ("Datagram links"). A plain `main` (no criterion): each figure is one whole transfer,
//! repeated, and the median printed with the range.

// Benchmarks measure with the real clock.
#![allow(clippy::disallowed_methods)]
#![allow(missing_docs)]
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use pamphlet_node::link::datagram::packet::PLAIN_LEN;
use pamphlet_node::link::datagram::{Config, DatagramCipher, Session, DATAGRAM_LEN};
use pamphlet_node::transport::udp::{drive, enlarge_buffers, Body, UdpLinkConfig};
use pamphlet_node::wire::frame::BODY_LEN;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

const RUNS: usize = 5;

fn body(i: u64) -> Body {
    let mut f = Box::new([0u8; BODY_LEN]);
    f[1..3].copy_from_slice(&((i % 4) as u16).to_be_bytes());
    f[5..13].copy_from_slice(&i.to_be_bytes());
    f
}

/// Seals of one whole datagram per second, one core.
fn seal_rate() -> f64 {
    let (a, _) = DatagramCipher::loopback_pair().unwrap();
    let plain = [7u8; PLAIN_LEN];
    let n = 200_000u64;
    let t = Instant::now();
    for pn in 0..n {
        std::hint::black_box(a.seal(pn, &plain).unwrap());
    }
    n as f64 / t.elapsed().as_secs_f64()
}

/// Both ends in memory, the wire instantaneous: frames per second through send_frame,
/// poll_transmit, on_datagram, recv_frame and the acknowledgements back.
fn in_memory(frames: u64) -> f64 {
    let (ca, cb) = DatagramCipher::loopback_pair().unwrap();
    let start = Instant::now();
    let mut a = Session::new(ca, start, Config::default());
    let mut b = Session::new(cb, start, Config::default());
    let (mut next, mut got) = (0u64, 0u64);
    while got < frames {
        let now = Instant::now();
        while next < frames && a.queued_frames() < 256 {
            a.send_frame(&body(next));
            next += 1;
        }
        for s in [&mut a, &mut b] {
            if s.poll_timeout().is_some_and(|t| t <= now) {
                s.on_timeout(now);
            }
        }
        while let Some(d) = a.poll_transmit(now) {
            b.on_datagram(now, &d).unwrap();
        }
        while b.recv_frame().is_some() {
            got += 1;
        }
        while let Some(d) = b.poll_transmit(now) {
            a.on_datagram(now, &d).unwrap();
        }
    }
    frames as f64 / start.elapsed().as_secs_f64()
}

/// One link over UDP on 127.0.0.1, each end on its own one-thread runtime (as the link
/// bench runs TCP links): frames per second, with the sender's counters.
fn loopback(frames: u64) -> (f64, String) {
    let (ca, cb) = DatagramCipher::loopback_pair().unwrap();
    let std_a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let std_b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    std_a.connect(std_b.local_addr().unwrap()).unwrap();
    std_b.connect(std_a.local_addr().unwrap()).unwrap();
    std_a.set_nonblocking(true).unwrap();
    std_b.set_nonblocking(true).unwrap();
    let (a_out, a_out_rx) = mpsc::channel::<Body>(256);
    let (a_in, a_in_rx) = mpsc::channel::<Body>(1);
    drop(a_in_rx);
    let (b_out, b_out_rx) = mpsc::channel::<Body>(1);
    drop(b_out);
    let (b_in, mut b_in_rx) = mpsc::channel::<Body>(256);
    let (stop, stopped) = watch::channel(false);
    let stopped_b = stopped.clone();
    let rt = || tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let start = Instant::now();
    let sender = std::thread::spawn(move || {
        rt().block_on(async move {
            let sock = UdpSocket::from_std(std_a).unwrap();
            if std::env::var_os("DEFAULT_BUFFERS").is_none() {
                enlarge_buffers(&sock).unwrap();
            }
            let s = Session::new(ca, Instant::now(), Config::default());
            let feed = tokio::spawn(async move {
                for i in 0..frames {
                    a_out.send(body(i)).await.unwrap();
                }
            });
            let s = drive(&sock, s, a_out_rx, a_in, stopped, UdpLinkConfig::default()).await.unwrap();
            feed.await.unwrap();
            s
        })
    });
    let receiver = std::thread::spawn(move || {
        rt().block_on(async move {
            let sock = UdpSocket::from_std(std_b).unwrap();
            if std::env::var_os("DEFAULT_BUFFERS").is_none() {
                enlarge_buffers(&sock).unwrap();
            }
            let s = Session::new(cb, Instant::now(), Config::default());
            let count = tokio::spawn(async move {
                for _ in 0..frames {
                    b_in_rx.recv().await.unwrap();
                }
                // Kept open: the driver would end once its receiver closes.
                (Instant::now(), b_in_rx)
            });
            // The receiver keeps acknowledging until told to stop (after the sender saw
            // every frame acknowledged).
            drive(&sock, s, b_out_rx, b_in, stopped_b, UdpLinkConfig::default()).await.unwrap();
            count.await.unwrap().0
        })
    });
    let a = sender.join().unwrap();
    stop.send(true).ok();
    let done = receiver.join().unwrap();
    let st = a.stats();
    let cc = a.congestion();
    let note = format!(
        "retransmissions {}, lost {}, ptos {}, bw estimate {:.0} MB/s, min rtt {:?}",
        st.retransmissions,
        st.lost,
        st.ptos,
        cc.bandwidth() / 1e6,
        cc.min_rtt().unwrap_or(Duration::ZERO)
    );
    (frames as f64 / (done - start).as_secs_f64(), note)
}

fn median(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn main() {
    // Only under `cargo bench` (which passes --bench), not when tests smoke-run benches.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let mb = |fps: f64, bytes: usize| fps * bytes as f64 / 1e6;
    let (s, lo, hi) = median((0..RUNS).map(|_| seal_rate()).collect());
    println!(
        "seal one {DATAGRAM_LEN}-byte datagram, one core: {s:.0}/s ({lo:.0}-{hi:.0}) = {:.0} MB/s of bodies",
        mb(s, BODY_LEN)
    );
    let (m, lo, hi) = median((0..RUNS).map(|_| in_memory(64 * 1024)).collect());
    println!(
        "both ends in memory (64 Ki frames): {m:.0} frames/s ({lo:.0}-{hi:.0}) = {:.0} MB/s of bodies, {:.2} µs per frame",
        mb(m, BODY_LEN),
        1e6 / m
    );
    let frames = 64 * 1024 * 1024 / BODY_LEN as u64;
    let mut rates = Vec::new();
    for run in 0..RUNS {
        let (r, note) = loopback(frames);
        println!("  loopback run {run}: {r:.0} frames/s = {:.0} MB/s of bodies; {note}", mb(r, BODY_LEN));
        rates.push(r);
    }
    let (l, lo, hi) = median(rates);
    println!(
        "one UDP link on loopback, 64 MiB: {l:.0} frames/s ({lo:.0}-{hi:.0}) = {:.0} MB/s of bodies, {:.0} MB/s on the wire; link / seal {:.0}%",
        mb(l, BODY_LEN),
        mb(l, DATAGRAM_LEN),
        100.0 * l / s
    );
}
