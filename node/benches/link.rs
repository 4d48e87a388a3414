//! Link performance: raw snow seal rate per frame size (single core), one link's loopback
//! throughput at the chosen frame size, and Noise handshakes per second.
//!
//! Run: `cargo bench -p pamphlet-node --bench link`. Figures go to docs/benchmarks.md.

#![allow(missing_docs)]

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use pamphlet_crypto::{Block, BlockKind};
use pamphlet_node::transport::session::{self, Initiator, ReplayCache, NOISE_PARAMS};
use pamphlet_node::transport::{peer_id_of, StaticKeypair, Transport, TransportConfig, TransportEvent};
use pamphlet_node::wire::frame::{BODY_LEN, FRAME_LEN};
use pamphlet_node::wire::Message;

/// A snow transport pair with the link's parameters (no padding: only `seal` is timed).
fn snow_pair() -> (snow::TransportState, snow::TransportState) {
    let params: snow::params::NoiseParams = NOISE_PARAMS.parse().unwrap();
    let b = snow::Builder::new(params.clone());
    let ki = b.generate_keypair().unwrap();
    let kr = b.generate_keypair().unwrap();
    let mut i = snow::Builder::new(params.clone())
        .local_private_key(&ki.private)
        .remote_public_key(&kr.public)
        .build_initiator()
        .unwrap();
    let mut r = snow::Builder::new(params).local_private_key(&kr.private).build_responder().unwrap();
    let (mut m, mut p) = (vec![0u8; 1024], vec![0u8; 1024]);
    let n = i.write_message(&[], &mut m).unwrap();
    r.read_message(&m[..n], &mut p).unwrap();
    let n = r.write_message(&[], &mut m).unwrap();
    i.read_message(&m[..n], &mut p).unwrap();
    (i.into_transport_mode().unwrap(), r.into_transport_mode().unwrap())
}

fn seal(c: &mut Criterion) {
    let mut g = c.benchmark_group("seal");
    for frame in [512usize, 1024, 2048, 4096, 16384, 32768] {
        let (mut tx, _rx) = snow_pair();
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

fn link(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (ha, hb, mut eb, pb, _ea) = rt.block_on(async {
        let mut ka = StaticKeypair::generate().unwrap();
        let mut kb = StaticKeypair::generate().unwrap();
        if ka.public() > kb.public() {
            std::mem::swap(&mut ka, &mut kb);
        }
        let mut ca = TransportConfig::new("127.0.0.1:0".parse().unwrap(), ka);
        let mut cb = TransportConfig::new("127.0.0.1:0".parse().unwrap(), kb);
        ca.keepalive = Duration::from_secs(600);
        cb.keepalive = Duration::from_secs(600);
        ca.idle_timeout = Duration::from_secs(1200);
        cb.idle_timeout = Duration::from_secs(1200);
        let (hb, mut eb) = Transport::start(cb).await.unwrap();
        let (ha, _ea) = Transport::start(ca).await.unwrap();
        hb.add_friend(ha.node_ref()).unwrap();
        let pb = ha.add_friend(hb.node_ref()).unwrap();
        let pa = peer_id_of(&ha.public_key());
        while !matches!(eb.recv().await, Some(TransportEvent::Connected { peer }) if peer == pa) {}
        while !ha.connected_peers().contains(&pb) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        (ha, hb, eb, pb, _ea)
    });
    let block = Block::from_bytes(BlockKind::Chk, vec![0x33u8; BlockKind::Chk.block_len()]).unwrap();
    let msg = Message::DataFound { id: 1, block };
    const BLOCKS: u64 = 64;
    // A 32 KiB block message is 32,771 bytes encoded: 33 frames of 1,003 bytes.
    let frames_per_block = (pamphlet_node::wire::encode(&msg).unwrap().len()).div_ceil(BODY_LEN - 5) as u64;
    let mut g = c.benchmark_group("link");
    g.throughput(Throughput::Bytes(BLOCKS * frames_per_block * FRAME_LEN as u64));
    g.sample_size(20);
    g.bench_function("one_link_loopback_chk_blocks_wire_bytes", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let send = async {
                        for _ in 0..BLOCKS {
                            ha.send(pb, &msg).await.unwrap();
                        }
                    };
                    let recv = async {
                        let mut n = 0;
                        while n < BLOCKS {
                            if let Some(TransportEvent::Received { .. }) = eb.recv().await {
                                n += 1;
                            }
                        }
                    };
                    tokio::join!(send, recv);
                }
                start.elapsed()
            })
        })
    });
    g.finish();
    rt.block_on(async {
        ha.shutdown().await;
        hb.shutdown().await;
    });
}

criterion_group!(benches, seal, handshake, pipeline, link);
criterion_main!(benches);
