//! Load management under overload (issue 18), on sans-IO nodes in virtual time.
//!
//! A small darknet, a diamond: the fetcher A has two friends B1 and B2, both friends of
//! the holder C, which has every block. Each node uploads at most 4 blocks a second
//! (its `upload_limit`): the links are modelled as each node's one upload queue draining
//! at that rate, control messages passing waiting blocks (as `transport::limit` does), and
//! 20 ms per hop. C's upload is the bottleneck: the darknet carries 4 blocks a second.
//!
//! Fetch sessions each fetch one block after the other (distinct keys); a failed fetch is
//! retried after a second. With 8 sessions the darknet is full; with 40 (5×) a node without
//! load management queues 10 s of blocks at C, longer than B waits for them: most time
//! out, and C keeps sending blocks nobody waits for. With load management C refuses what
//! it cannot send in time, and A's windows route around a full friend: goodput stays at
//! least 70% of the best measured, every fetch ends (a block, or a clear overload
//! failure), none hangs.

// Virtual time starts at one reading of the real clock; the figures go to stderr.
#![allow(clippy::disallowed_methods, clippy::print_stderr)]

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use pamphlet_crypto::{chk, Block, BlockKind, ChkFlags};
use pamphlet_node::id::PeerId;
use pamphlet_node::location::Location;
use pamphlet_node::node::{Event, FailReason, LoadConfig, Node, NodeConfig, OpId, BLOCK_WIRE_BYTES};
use pamphlet_node::store::memory::MemoryStore;
use pamphlet_node::store::{Area, BlockStore};
use pamphlet_node::wire::Message;

/// Each node's upload: 4 blocks a second.
const UPLOAD: u64 = 4 * BLOCK_WIRE_BYTES;
const HOP: Duration = Duration::from_millis(20);
const RUN: Duration = Duration::from_secs(150);
/// Goodput is counted after this (queues have formed).
const WARMUP: Duration = Duration::from_secs(30);
const RETRY_AFTER: Duration = Duration::from_secs(1);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
const A: usize = 0;
const C: usize = 3;
const LINKS: [(usize, usize); 4] = [(0, 1), (0, 2), (1, 3), (2, 3)];

struct Session {
    /// Index of the block it is fetching.
    block: usize,
    /// The fetch under way and when it started.
    op: Option<(OpId, Instant)>,
    /// When to start the next fetch (None: a fetch is under way).
    wake: Option<Instant>,
}

#[derive(Default, Debug)]
struct Outcome {
    /// Blocks fetched after the warm-up, per second.
    goodput: f64,
    fetched: u64,
    overloaded: u64,
    other_failures: u64,
    /// The longest any fetch took to end.
    longest: Duration,
    /// Fetches still under way long after their deadline.
    hung: usize,
}

fn is_block(m: &Message) -> bool {
    matches!(m, Message::DataFound { .. } | Message::InsertRequest { .. } | Message::InsertCollision { .. })
}

fn run(sessions: usize, load: LoadConfig, blocks: &[Block]) -> Outcome {
    let t0 = Instant::now();
    let mut nodes: Vec<Node> = (0..4)
        .map(|i| {
            let config = NodeConfig {
                location: Location::from_f64([0.1, 0.45, 0.55, 0.5][i]),
                request_timeout: REQUEST_TIMEOUT,
                load,
                ..NodeConfig::seeded(i as u64 + 1)
            };
            Node::new(config, MemoryStore::new(64 << 20, 8 << 20))
        })
        .collect();
    for b in blocks {
        nodes[C].store_mut().put(Area::Store, b.routing_key(), b.clone()).unwrap();
    }
    for &(x, y) in &LINKS {
        let (lx, ly) = (nodes[x].location(), nodes[y].location());
        nodes[x].add_peer(t0, PeerId(y as u64), ly);
        nodes[y].add_peer(t0, PeerId(x as u64), lx);
    }
    // (arrival, sequence) -> (from, to, message)
    let mut wire: BinaryHeap<Reverse<(Instant, u64, usize)>> = BinaryHeap::new();
    let mut in_wire: HashMap<u64, (usize, usize, Message)> = HashMap::new();
    let mut seq = 0u64;
    let mut upload_free = [t0; 4];
    let mut sess: Vec<Session> = (0..sessions).map(|i| Session { block: i, op: None, wake: Some(t0) }).collect();
    let mut next_block = sessions;
    let mut by_op: HashMap<OpId, usize> = HashMap::new();
    let mut out = Outcome::default();
    let mut now = t0;
    let end = t0 + RUN;
    loop {
        // Drain every node's output.
        for i in 0..nodes.len() {
            while let Some((to, msg)) = nodes[i].poll_transmit() {
                let to = to.0 as usize;
                let arrive = if is_block(&msg) {
                    let start = upload_free[i].max(now);
                    let done = start + Duration::from_secs_f64(BLOCK_WIRE_BYTES as f64 / UPLOAD as f64);
                    upload_free[i] = done;
                    done + HOP
                } else {
                    now + HOP
                };
                seq += 1;
                wire.push(Reverse((arrive, seq, 0)));
                in_wire.insert(seq, (i, to, msg));
            }
            while let Some(ev) = nodes[i].poll_event() {
                let (op, ok, reason) = match ev {
                    Event::FetchSucceeded { op, .. } => (op, true, None),
                    Event::FetchFailed { op, reason, .. } => (op, false, Some(reason)),
                    _ => continue,
                };
                let Some(s) = by_op.remove(&op) else { continue };
                let started = sess[s].op.take().map_or(now, |(_, t)| t);
                out.longest = out.longest.max(now - started);
                if ok {
                    if now >= t0 + WARMUP && now <= end {
                        out.fetched += 1;
                    }
                    sess[s].block = next_block;
                    next_block += 1;
                    sess[s].wake = Some(now);
                } else {
                    if reason == Some(FailReason::Overloaded) {
                        out.overloaded += 1;
                    } else {
                        out.other_failures += 1;
                    }
                    sess[s].wake = Some(now + RETRY_AFTER);
                }
            }
        }
        // The next thing to happen.
        let mut next = wire.peek().map(|Reverse((t, _, _))| *t);
        for n in &nodes {
            next = [next, n.poll_timeout()].into_iter().flatten().min();
        }
        for s in &sess {
            if now < end {
                next = [next, s.wake].into_iter().flatten().min();
            }
        }
        let Some(t) = next else { break };
        if t > end + REQUEST_TIMEOUT * 2 {
            break;
        }
        now = now.max(t);
        if let Some(&Reverse((at, id, _))) = wire.peek() {
            if at <= now {
                wire.pop();
                let (from, to, msg) = in_wire.remove(&id).unwrap();
                nodes[to].handle_message(now, PeerId(from as u64), msg);
                continue;
            }
        }
        let mut acted = false;
        for n in nodes.iter_mut() {
            if n.poll_timeout().is_some_and(|t| t <= now) {
                n.handle_timeout(now);
                acted = true;
            }
        }
        if acted {
            continue;
        }
        if now < end {
            for (i, s) in sess.iter_mut().enumerate() {
                if s.wake.is_some_and(|w| w <= now) && s.block < blocks.len() {
                    s.wake = None;
                    let b = &blocks[s.block];
                    let op = nodes[A].start_fetch(now, BlockKind::Chk, b.routing_key());
                    s.op = Some((op, now));
                    by_op.insert(op, i);
                }
            }
        }
    }
    out.goodput = out.fetched as f64 / (RUN - WARMUP).as_secs_f64();
    out.hung = sess.iter().filter(|s| s.op.is_some()).count();
    out
}

fn blocks(n: usize) -> Vec<Block> {
    (0..n)
        .map(|i| {
            let data: Vec<u8> = (i as u64).to_le_bytes().iter().copied().cycle().take(1024).collect();
            Block::Chk(chk::encode(&data, ChkFlags::default()).unwrap().0)
        })
        .collect()
}

#[test]
fn five_times_the_load_keeps_goodput_and_every_fetch_ends() {
    let blocks = blocks(1200);
    let on = LoadConfig { upload_limit: UPLOAD, peer_windows: true };
    let mut best: f64 = 0.0;
    for k in [2, 4, 8] {
        let o = run(k, on, &blocks);
        eprintln!("{k} sessions, load management: {o:?}");
        best = best.max(o.goodput);
    }
    let over = run(40, on, &blocks);
    eprintln!("40 sessions, load management: {over:?}");
    let bare = run(40, LoadConfig::default(), &blocks);
    eprintln!("40 sessions, none: {bare:?}");
    // Each half alone, for docs/wire.md.
    let admission = run(40, LoadConfig { peer_windows: false, ..on }, &blocks);
    eprintln!("40 sessions, admission only: {admission:?}");
    let windows = run(40, LoadConfig { upload_limit: 0, ..on }, &blocks);
    eprintln!("40 sessions, windows only: {windows:?}");
    assert!(best >= 3.0, "the darknet should carry about 4 blocks a second, measured {best}");
    assert!(over.goodput >= 0.7 * best, "goodput {} under 5x load, best {best}", over.goodput);
    assert_eq!(over.hung, 0, "fetches hung");
    assert!(over.longest <= REQUEST_TIMEOUT, "a fetch took {:?}", over.longest);
    assert_eq!(over.other_failures, 0, "failures other than overload: {over:?}");
    // The scenario is an overload: without load management it collapses.
    assert!(bare.goodput < 0.7 * best, "5x load without load management was not an overload: {bare:?}");
}
