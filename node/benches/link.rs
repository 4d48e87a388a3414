//! Link performance: raw snow seal rate per frame size (single core), one link's loopback
//! throughput at the chosen frame size, and Noise handshakes per second.
//!
//! Run: `cargo bench -p pamphlet-node --bench link`. Figures go to docs/benchmarks.md.

// Tests and benchmarks measure with, or drive nodes by, the real clock.
#![allow(clippy::disallowed_methods)]
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use pamphlet_crypto::{Block, BlockKind};
use pamphlet_node::id::PeerId;
use pamphlet_node::link::noise::{self as session, Initiator, ReplayCache, NOISE_PARAMS};
use pamphlet_node::link::StaticKeypair;
use pamphlet_node::transport::{peer_id_of, Transport, TransportConfig, TransportEvent, TransportHandle};
use pamphlet_node::wire::frame::{BODY_LEN, FRAME_LEN};
use pamphlet_node::wire::Message;
use tokio::sync::mpsc;

/// A snow transport pair with the link's parameters (no padding: only `seal` is timed).
fn snow_pair() -> (snow::TransportState, snow::TransportState) {
    snow_pair_with(|p| snow::Builder::with_resolver(p, Box::new(snow::resolvers::DefaultResolver)))
}

/// The same with ring's primitives where ring has them (snow's `ring-accelerated`).
fn ring_pair() -> (snow::TransportState, snow::TransportState) {
    use snow::resolvers::{DefaultResolver, FallbackResolver, RingResolver};
    snow_pair_with(|p| {
        let resolver = FallbackResolver::new(Box::new(RingResolver), Box::new(DefaultResolver));
        snow::Builder::with_resolver(p, Box::new(resolver))
    })
}

fn snow_pair_with(
    builder: impl Fn(snow::params::NoiseParams) -> snow::Builder<'static>,
) -> (snow::TransportState, snow::TransportState) {
    let params: snow::params::NoiseParams = NOISE_PARAMS.parse().unwrap();
    let b = builder(params.clone());
    let ki = b.generate_keypair().unwrap();
    let kr = b.generate_keypair().unwrap();
    let mut i =
        builder(params.clone()).local_private_key(&ki.private).remote_public_key(&kr.public).build_initiator().unwrap();
    let mut r = builder(params).local_private_key(&kr.private).build_responder().unwrap();
    let (mut m, mut p) = (vec![0u8; 1024], vec![0u8; 1024]);
    let n = i.write_message(&[], &mut m).unwrap();
    r.read_message(&m[..n], &mut p).unwrap();
    let n = r.write_message(&[], &mut m).unwrap();
    i.read_message(&m[..n], &mut p).unwrap();
    (i.into_transport_mode().unwrap(), r.into_transport_mode().unwrap())
}

fn seal(c: &mut Criterion) {
    seal_group(c, "seal", &[512, 1024, 2048, 4096, 16384, 32768], snow_pair);
    // The same frames sealed with ring's ChaCha20-Poly1305 (issue 18: the frame
    // AEAD is the main CPU cost per hop).
    seal_group(c, "seal_ring", &[1024, 32768], ring_pair);
}

/// Seals frames of each size with the sending half of a session from `pair`.
fn seal_group(
    c: &mut Criterion,
    name: &str,
    frames: &[usize],
    pair: fn() -> (snow::TransportState, snow::TransportState),
) {
    let mut g = c.benchmark_group(name);
    for &frame in frames {
        let (mut tx, _rx) = pair();
        let body = vec![0x5au8; frame - 16];
        let mut out = vec![0u8; frame];
        g.throughput(Throughput::Bytes(frame as u64));
        g.bench_with_input(BenchmarkId::from_parameter(frame), &frame, |b, _| {
            b.iter(|| tx.write_message(&body, &mut out).unwrap())
        });
    }
    g.finish();
}

fn handshake(c: &mut Criterion) {
    let a = StaticKeypair::generate().unwrap();
    let r = StaticKeypair::generate().unwrap();
    let mut cache = ReplayCache::new();
    let mut now = 1_800_000_000u64;
    c.bench_function("handshake/ik_padded_both_sides", |b| {
        b.iter(|| {
            now += 1;
            let (mut m1, mut m2) = ([0u8; FRAME_LEN], [0u8; FRAME_LEN]);
            let init = Initiator::start(&a, r.public(), now, &mut m1).unwrap();
            let (_, s) = session::respond(&r, &m1, now, &mut cache, |_| true, 1 << 16, &mut m2).unwrap();
            (init.finish(&m2, 1 << 16).unwrap(), s)
        })
    });
}

/// Both ends of a link's CPU work for one CHK block, in memory on one core: frame, seal,
/// open, reassemble, decode. Compare with 33 × seal/1024 to see the non-crypto overhead.
fn pipeline(c: &mut Criterion) {
    use pamphlet_node::wire::{FrameReader, FrameWriter};
    let a = StaticKeypair::generate().unwrap();
    let r = StaticKeypair::generate().unwrap();
    let (mut m1, mut m2) = ([0u8; FRAME_LEN], [0u8; FRAME_LEN]);
    let init = Initiator::start(&a, r.public(), 1, &mut m1).unwrap();
    let (_, mut rx) = session::respond(&r, &m1, 1, &mut ReplayCache::new(), |_| true, 1 << 16, &mut m2).unwrap();
    let mut tx = init.finish(&m2, 1 << 16).unwrap();
    let block = Block::from_bytes(BlockKind::Chk, vec![0x33u8; BlockKind::Chk.block_len()]).unwrap();
    let msg = Message::DataFound { id: 1, block };
    let encoded = pamphlet_node::wire::encode(&msg).unwrap();
    c.bench_function("codec/encode_chk_message", |b| b.iter(|| pamphlet_node::wire::encode(&msg).unwrap()));
    c.bench_function("codec/decode_chk_message", |b| b.iter(|| pamphlet_node::wire::decode(&encoded).unwrap()));
    c.bench_function("frame/write_read_chk_message", |b| {
        let mut w = FrameWriter::new();
        let mut rd = FrameReader::new();
        let mut body = [0u8; BODY_LEN];
        b.iter(|| {
            w.push_encoded(encoded.clone()).unwrap();
            let mut got = None;
            while w.next_frame(&mut body) {
                got = rd.read_frame(&body).unwrap().or(got);
            }
            got.unwrap()
        })
    });
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Bytes(33 * FRAME_LEN as u64));
    g.bench_function("chk_block_frame_seal_open_decode_one_core", |b| {
        let mut w = FrameWriter::new();
        let mut rd = FrameReader::new();
        let (mut body, mut frame, mut out) = ([0u8; BODY_LEN], [0u8; FRAME_LEN], [0u8; BODY_LEN]);
        b.iter(|| {
            w.push(&msg).unwrap();
            let mut got = None;
            while w.next_frame(&mut body) {
                tx.seal(&body, &mut frame).unwrap();
                rx.open(&frame, &mut out).unwrap();
                got = rd.read_frame(&out).unwrap().or(got);
            }
            got.unwrap()
        })
    });
    g.finish();
}

/// Two nodes, each on its own one-worker runtime (as two processes would be), link up.
struct Nodes {
    rt_a: tokio::runtime::Runtime,
    rt_b: tokio::runtime::Runtime,
    ha: TransportHandle,
    hb: TransportHandle,
    eb: Arc<tokio::sync::Mutex<mpsc::Receiver<TransportEvent>>>,
    pb: PeerId,
    _ea: mpsc::Receiver<TransportEvent>,
}

fn nodes() -> Nodes {
    let rt = || tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let (rt_a, rt_b) = (rt(), rt());
    let mut ka = StaticKeypair::generate().unwrap();
    let mut kb = StaticKeypair::generate().unwrap();
    if ka.public() > kb.public() {
        std::mem::swap(&mut ka, &mut kb);
    }
    let config = |k| {
        let mut c = TransportConfig::new("127.0.0.1:0".parse().unwrap(), k);
        c.keepalive = Duration::from_secs(600);
        c.idle_timeout = Duration::from_secs(1200);
        c
    };
    let (hb, mut eb) = rt_b.block_on(Transport::start(config(kb))).unwrap();
    let (ha, _ea) = rt_a.block_on(Transport::start(config(ka))).unwrap();
    hb.add_friend(ha.node_ref()).unwrap();
    let pb = ha.add_friend(hb.node_ref()).unwrap();
    let pa = peer_id_of(&ha.public_key());
    rt_b.block_on(async {
        while !matches!(eb.recv().await, Some(TransportEvent::Connected { peer }) if peer == pa) {}
    });
    while !ha.connected_peers().contains(&pb) {
        std::thread::sleep(Duration::from_millis(5));
    }
    Nodes { rt_a, rt_b, ha, hb, eb: Arc::new(tokio::sync::Mutex::new(eb)), pb, _ea }
}

impl Nodes {
    /// Sends `blocks` messages from A to B; returns the time until B has them all.
    fn transfer(&self, msg: &Message, blocks: u64) -> Duration {
        let start = Instant::now();
        let eb = self.eb.clone();
        let recv = self.rt_b.spawn(async move {
            let mut eb = eb.lock().await;
            let mut k = 0;
            while k < blocks {
                if let Some(TransportEvent::Received { .. }) = eb.recv().await {
                    k += 1;
                }
            }
            Instant::now()
        });
        let (ha, pb, msg) = (self.ha.clone(), self.pb, msg.clone());
        let send = self.rt_a.spawn(async move {
            for _ in 0..blocks {
                ha.send(pb, &msg).await.unwrap();
            }
        });
        self.rt_a.block_on(send).unwrap();
        self.rt_b.block_on(recv).unwrap() - start
    }

    fn stop(self) {
        self.rt_a.block_on(self.ha.shutdown());
        self.rt_b.block_on(self.hb.shutdown());
    }
}

fn chk_message() -> (Message, u64) {
    let block = Block::from_bytes(BlockKind::Chk, vec![0x33u8; BlockKind::Chk.block_len()]).unwrap();
    let msg = Message::DataFound { id: 1, block };
    // 32,771 bytes encoded: 33 frames of 1,003 bytes.
    let frames = pamphlet_node::wire::encode(&msg).unwrap().len().div_ceil(BODY_LEN - 5) as u64;
    (msg, frames)
}

fn link(c: &mut Criterion) {
    let n = nodes();
    let (msg, frames_per_block) = chk_message();
    const BLOCKS: u64 = 64;
    let mut g = c.benchmark_group("link");
    g.throughput(Throughput::Bytes(BLOCKS * frames_per_block * FRAME_LEN as u64));
    g.sample_size(20);
    g.bench_function("one_link_loopback_chk_blocks_wire_bytes", |b| {
        b.iter_custom(|iters| n.transfer(&msg, iters * BLOCKS))
    });
    g.finish();
    n.stop();
}

/// The target compares one link with the single-core seal rate, but on a shared machine
/// the load drifts between criterion's benchmarks. So this measures the two back to back,
/// alternating, ten rounds, and prints the medians and the median ratio.
#[allow(clippy::print_stdout)]
fn paired() {
    const ROUND: Duration = Duration::from_millis(300);
    const BLOCKS: u64 = 256;
    let n = nodes();
    let (msg, frames_per_block) = chk_message();
    let (mut tx, _rx) = snow_pair();
    let body = vec![0x5au8; BODY_LEN];
    let mut out = vec![0u8; FRAME_LEN];
    let (mut seal_rates, mut link_rates, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let (mut seal_cpu, mut seal_frames, mut link_cpu, mut link_frames) = (0.0, 0u64, 0.0, 0u64);
    for _ in 0..10 {
        let cpu0 = cpu_secs();
        let start = Instant::now();
        let mut k = 0u64;
        while start.elapsed() < ROUND {
            for _ in 0..256 {
                tx.write_message(&body, &mut out).unwrap();
            }
            k += 256;
        }
        let seal = k as f64 / start.elapsed().as_secs_f64();
        let cpu1 = cpu_secs();
        let link = (BLOCKS * frames_per_block) as f64 / n.transfer(&msg, BLOCKS).as_secs_f64();
        let cpu2 = cpu_secs();
        (seal_cpu, seal_frames) = (seal_cpu + cpu1 - cpu0, seal_frames + k);
        (link_cpu, link_frames) = (link_cpu + cpu2 - cpu1, link_frames + BLOCKS * frames_per_block);
        seal_rates.push(seal);
        link_rates.push(link);
        ratios.push(link / seal);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (s, l, r) = (median(&mut seal_rates), median(&mut link_rates), median(&mut ratios));
    let mb = |frames: f64| frames * FRAME_LEN as f64 / 1e6;
    println!("paired (10 rounds: seal for {ROUND:?}, then {BLOCKS} CHK blocks over the link; medians):");
    println!("  seal/1024 single core: {s:.0} frames/s = {:.1} MB/s", mb(s));
    println!("  one link (wire bytes): {l:.0} frames/s = {:.1} MB/s", mb(l));
    println!("  link / seal: {:.0}%", r * 100.0);
    if seal_cpu > 0.0 && link_cpu > 0.0 {
        // CPU per frame, independent of how much of the shared machine we got.
        let (sc, lc) = (seal_cpu / seal_frames as f64 * 1e6, link_cpu / link_frames as f64 * 1e6);
        println!("  CPU per frame: seal {sc:.2} us, link (both ends, all threads) {lc:.2} us = {:.2} seals", lc / sc);
    }
    n.stop();
}

/// CPU time (user + system) of this process so far, from /proc (Linux; 0 elsewhere).
fn cpu_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    let Some((_, rest)) = stat.rsplit_once(')') else { return 0.0 };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 (here 11 and 12), in USER_HZ = 100 ticks/s.
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

criterion_group!(benches, seal, handshake, pipeline, link);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // Only under `cargo bench` (which passes --bench), not when tests smoke-run benches.
    if std::env::args().any(|a| a == "--bench") {
        paired();
    }
}
