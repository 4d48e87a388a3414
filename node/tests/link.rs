//! Real links on 127.0.0.1: handshake, every message type, what a relay sees, probers,
//! misbehaving friends, backpressure, rekeying and shutdown.

// Tests and benchmarks measure with, or drive nodes by, the real clock.
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pamphlet_crypto::{Block, BlockKind, RoutingKey};
use pamphlet_node::id::PeerId;
use pamphlet_node::link::noise::{Initiator, Session, DEFAULT_REKEY_INTERVAL};
use pamphlet_node::link::{NodeRef, SessionError, StaticKeypair};
use pamphlet_node::location::Location;
use pamphlet_node::transport::{
    peer_id_of, LinkError, SendError, Transport, TransportConfig, TransportEvent, TransportHandle,
};
use pamphlet_node::wire::frame::{BODY_LEN, FRAME_LEN, MAX_FRAGMENT};
use pamphlet_node::wire::{encode, FrameError, Message};
use rand::{Rng, RngCore, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(20);
/// Repeated through every block we send, so the relay test can look for it in the stream.
const MARKER: &[u8; 16] = b"PAMPHLET-PLAIN!!";

fn config(keypair: StaticKeypair) -> TransportConfig {
    let mut c = TransportConfig::new("127.0.0.1:0".parse().unwrap(), keypair);
    c.handshake_timeout = Duration::from_millis(800);
    c.backoff_initial = Duration::from_millis(20);
    c.backoff_max = Duration::from_millis(200);
    // Long enough that no keepalive interleaves with the messages a test counts.
    c.keepalive = Duration::from_secs(60);
    c.idle_timeout = Duration::from_secs(120);
    c
}

/// Two key pairs, the first smaller (so its owner dials first, and its link is the one
/// both ends keep if the other dials too).
fn ordered_keys() -> (StaticKeypair, StaticKeypair) {
    let a = StaticKeypair::generate().unwrap();
    let b = StaticKeypair::generate().unwrap();
    if a.public() < b.public() {
        (a, b)
    } else {
        (b, a)
    }
}

fn marked_block(kind: BlockKind) -> Block {
    let bytes: Vec<u8> = MARKER.iter().copied().cycle().take(kind.block_len()).collect();
    Block::from_bytes(kind, bytes).unwrap()
}

fn all_messages() -> Vec<Message> {
    let neighbours = vec![Location(1), Location(u64::MAX), Location(1 << 63)];
    vec![
        Message::DataRequest { id: 1, kind: BlockKind::Chk, key: RoutingKey([9; 32]), htl: 18 },
        Message::DataFound { id: 2, block: marked_block(BlockKind::Chk) },
        Message::DataNotFound { id: 3, htl: 4 },
        Message::RouteNotFound { id: 4, htl: 5 },
        Message::RejectedLoop { id: 5 },
        Message::RejectedOverload { id: 6 },
        Message::InsertRequest { id: 7, htl: 17, block: marked_block(BlockKind::Ssk), top: false },
        Message::InsertReply { id: 8 },
        Message::InsertCollision { id: 9, block: marked_block(BlockKind::Chk) },
        Message::SwapRequest { id: 10, htl: 6, commitment: [0x5a; 32] },
        Message::SwapReply { id: 11, commitment: [0xa5; 32] },
        Message::SwapReveal { id: 12, location: Location(42), neighbours: neighbours.clone(), age: 3, random: [7; 32] },
        Message::SwapRejected { id: 13 },
        Message::LocationUpdate { location: Location(43), neighbours },
        Message::Keepalive,
        Message::Accepted { id: 14 },
    ]
}

async fn next(rx: &mut mpsc::Receiver<TransportEvent>) -> TransportEvent {
    timeout(WAIT, rx.recv()).await.expect("event in time").expect("transport alive")
}

async fn wait_connected(rx: &mut mpsc::Receiver<TransportEvent>, want: PeerId) {
    loop {
        if let TransportEvent::Connected { peer } = next(rx).await {
            if peer == want {
                return;
            }
        }
    }
}

async fn wait_disconnected(rx: &mut mpsc::Receiver<TransportEvent>, want: PeerId) -> LinkError {
    loop {
        if let TransportEvent::Disconnected { peer, reason } = next(rx).await {
            if peer == want {
                return reason;
            }
        }
    }
}

/// Receives `n` messages from `from` (ignoring connection events).
async fn receive(rx: &mut mpsc::Receiver<TransportEvent>, from: PeerId, n: usize) -> Vec<Message> {
    let mut got = Vec::new();
    while got.len() < n {
        if let TransportEvent::Received { peer, message } = next(rx).await {
            assert_eq!(peer, from);
            got.push(message);
        }
    }
    got
}

fn sorted(msgs: &[Message]) -> Vec<Vec<u8>> {
    let mut v: Vec<_> = msgs.iter().map(|m| encode(m).unwrap()).collect();
    v.sort();
    v
}

struct Up {
    handle: TransportHandle,
    events: mpsc::Receiver<TransportEvent>,
}

/// Controls of a recording relay.
struct RelayCtl {
    addr: SocketAddr,
    a_to_b: Arc<Mutex<Vec<u8>>>,
    b_to_a: Arc<Mutex<Vec<u8>>>,
    done: tokio::task::JoinHandle<()>,
}

/// A relay that forwards one connection to `to`, recording both directions. If
/// `stall_after` is set, it stops reading from the dialer after that many bytes.
async fn relay(to: SocketAddr, stall_after: Option<usize>) -> RelayCtl {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let a_to_b = Arc::new(Mutex::new(Vec::new()));
    let b_to_a = Arc::new(Mutex::new(Vec::new()));
    let (rec_ab, rec_ba) = (a_to_b.clone(), b_to_a.clone());
    let done = tokio::spawn(async move {
        let (a, _) = listener.accept().await.unwrap();
        let b = TcpStream::connect(to).await.unwrap();
        let (mut ar, mut aw) = a.into_split();
        let (mut br, mut bw) = b.into_split();
        let up = async move {
            let mut buf = [0u8; 4096];
            loop {
                let room = match stall_after {
                    Some(limit) => limit - rec_ab.lock().unwrap().len(),
                    None => buf.len(),
                };
                if room == 0 {
                    std::future::pending::<()>().await;
                }
                let n = match ar.read(&mut buf[..room.min(4096)]).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                rec_ab.lock().unwrap().extend_from_slice(&buf[..n]);
                if bw.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
            let _ = bw.shutdown().await;
        };
        let down = async move {
            let mut buf = [0u8; 4096];
            loop {
                let n = match br.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                rec_ba.lock().unwrap().extend_from_slice(&buf[..n]);
                if aw.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
            let _ = aw.shutdown().await;
        };
        tokio::join!(up, down);
    });
    RelayCtl { addr, a_to_b, b_to_a, done }
}

/// A dialer `a` and listener `b`, friends, optionally through a relay.
async fn pair(
    through_relay: Option<Option<usize>>,
    tweak: impl Fn(&mut TransportConfig),
) -> (Up, Up, Option<RelayCtl>) {
    let (ka, kb) = ordered_keys();
    let mut cb = config(kb);
    tweak(&mut cb);
    let (hb, eb) = Transport::start(cb).await.unwrap();
    let mut ca = config(ka);
    tweak(&mut ca);
    let (ha, ea) = Transport::start(ca).await.unwrap();
    hb.add_friend(ha.node_ref()).unwrap();
    let mut b_ref = hb.node_ref();
    let relay = match through_relay {
        Some(stall) => {
            let r = relay(hb.local_addr(), stall).await;
            b_ref = NodeRef::v1(r.addr, b_ref.key);
            Some(r)
        }
        None => None,
    };
    ha.add_friend(b_ref).unwrap();
    (Up { handle: ha, events: ea }, Up { handle: hb, events: eb }, relay)
}

#[tokio::test]
async fn two_nodes_handshake_and_exchange_every_message_type() {
    let (mut a, mut b, _) = pair(None, |_| {}).await;
    let (pa, pb) = (peer_id_of(&a.handle.public_key()), peer_id_of(&b.handle.public_key()));
    wait_connected(&mut a.events, pb).await;
    wait_connected(&mut b.events, pa).await;
    let msgs = all_messages();
    for m in &msgs {
        a.handle.send(pb, m).await.unwrap();
        b.handle.send(pa, m).await.unwrap();
    }
    let at_b = receive(&mut b.events, pa, msgs.len()).await;
    let at_a = receive(&mut a.events, pb, msgs.len()).await;
    assert_eq!(sorted(&at_b), sorted(&msgs));
    assert_eq!(sorted(&at_a), sorted(&msgs));
    a.handle.shutdown().await;
    assert!(matches!(wait_disconnected(&mut b.events, pa).await, LinkError::Closed | LinkError::Io(_)));
    b.handle.shutdown().await;
    assert!(a.handle.connected_peers().is_empty());
}

#[tokio::test]
async fn links_rekey_often_and_keep_working() {
    let (mut a, mut b, _) = pair(None, |c| c.rekey_interval = 5).await;
    let (pa, pb) = (peer_id_of(&a.handle.public_key()), peer_id_of(&b.handle.public_key()));
    wait_connected(&mut a.events, pb).await;
    wait_connected(&mut b.events, pa).await;
    let msgs: Vec<_> = (0..20).map(|i| Message::DataFound { id: i, block: marked_block(BlockKind::Chk) }).collect();
    for m in &msgs {
        a.handle.send(pb, m).await.unwrap();
    }
    assert_eq!(sorted(&receive(&mut b.events, pa, msgs.len()).await), sorted(&msgs));
    a.handle.shutdown().await;
    b.handle.shutdown().await;
}

/// Byte-frequency chi-square (255 degrees of freedom) and the share of one bits.
fn randomness(bytes: &[u8]) -> (f64, f64) {
    let mut counts = [0u64; 256];
    let mut ones = 0u64;
    for &b in bytes {
        counts[b as usize] += 1;
        ones += u64::from(b.count_ones());
    }
    let expected = bytes.len() as f64 / 256.0;
    let chi: f64 = counts.iter().map(|&c| (c as f64 - expected).powi(2) / expected).sum();
    (chi, ones as f64 / (bytes.len() as f64 * 8.0))
}

#[tokio::test]
async fn a_relay_sees_only_whole_equal_frames_of_random_looking_bytes() {
    let (mut a, mut b, relay) = pair(Some(None), |_| {}).await;
    let relay = relay.unwrap();
    let (pa, pb) = (peer_id_of(&a.handle.public_key()), peer_id_of(&b.handle.public_key()));
    wait_connected(&mut a.events, pb).await;
    wait_connected(&mut b.events, pa).await;
    let msgs = all_messages();
    for m in &msgs {
        a.handle.send(pb, m).await.unwrap();
        b.handle.send(pa, m).await.unwrap();
    }
    receive(&mut b.events, pa, msgs.len()).await;
    receive(&mut a.events, pb, msgs.len()).await;
    a.handle.shutdown().await;
    b.handle.shutdown().await;
    timeout(WAIT, relay.done).await.unwrap().unwrap();
    let small: Vec<Vec<u8>> = msgs.iter().map(|m| encode(m).unwrap()).filter(|e| e.len() >= 12).collect();
    for stream in [relay.a_to_b.lock().unwrap().clone(), relay.b_to_a.lock().unwrap().clone()] {
        // Handshake 1 + two CHK blocks of 33 + an SSK block of 2 + 12 one-frame messages.
        assert!(stream.len() >= 81 * FRAME_LEN, "both directions carried the blocks: {}", stream.len());
        assert_eq!(stream.len() % FRAME_LEN, 0, "a whole number of {FRAME_LEN}-byte frames");
        assert!(!stream.windows(MARKER.len()).any(|w| w == MARKER), "block plaintext visible");
        for e in &small {
            let needle = &e[..12.min(e.len())];
            assert!(!stream.windows(needle.len()).any(|w| w == needle), "message plaintext visible");
        }
        let (chi, ones) = randomness(&stream);
        // 255 degrees of freedom: mean 255, sd 22.6; 400 is > 6 sd.
        assert!(chi < 400.0, "byte distribution far from uniform: chi2 = {chi}");
        assert!((ones - 0.5).abs() < 0.005, "bit balance {ones}");
    }
}

/// Connects, sends `bytes`, and returns everything the node sends back before closing.
async fn probe(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut got = Vec::new();
    let _ = timeout(WAIT, s.read_to_end(&mut got)).await.expect("the node closes the probe");
    got
}

fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

#[tokio::test]
async fn probers_get_nothing_back_and_friends_are_still_served() {
    let (mut a, mut b, _) = pair(None, |_| {}).await;
    let (pa, pb) = (peer_id_of(&a.handle.public_key()), peer_id_of(&b.handle.public_key()));
    wait_connected(&mut a.events, pb).await;
    wait_connected(&mut b.events, pa).await;
    let addr = b.handle.local_addr();
    let stranger = StaticKeypair::generate().unwrap();
    // Wrong responder key.
    let wrong = StaticKeypair::generate().unwrap();
    let mut wrong_key = [0u8; FRAME_LEN];
    Initiator::start(&stranger, wrong.public(), now_unix(), &mut wrong_key).unwrap();
    // Right responder key, unknown initiator.
    let mut unknown = [0u8; FRAME_LEN];
    Initiator::start(&stranger, &b.handle.public_key(), now_unix(), &mut unknown).unwrap();
    // Random bytes, a short hello, a long stream, nothing at all.
    let mut junk = vec![0u8; 3 * FRAME_LEN];
    rand::thread_rng().fill_bytes(&mut junk);
    // All at once: each waits for the node to give up on it.
    let replies = tokio::join!(
        probe(addr, &wrong_key),
        probe(addr, &unknown),
        probe(addr, &junk[..FRAME_LEN]),
        probe(addr, b"GET / HTTP/1.0\r\n\r\n"),
        probe(addr, &junk),
        probe(addr, &[]),
    );
    let replies = [replies.0, replies.1, replies.2, replies.3, replies.4, replies.5];
    for (what, reply) in
        ["wrong responder key", "unknown initiator", "random frame", "http", "long junk", "silence"].iter().zip(replies)
    {
        assert!(reply.is_empty(), "{what}: the node answered {} bytes", reply.len());
    }
    // The friend's link is untouched and works.
    a.handle.send(pb, &Message::RejectedLoop { id: 77 }).await.unwrap();
    b.handle.send(pa, &Message::RejectedLoop { id: 78 }).await.unwrap();
    assert_eq!(receive(&mut b.events, pa, 1).await, vec![Message::RejectedLoop { id: 77 }]);
    assert_eq!(receive(&mut a.events, pb, 1).await, vec![Message::RejectedLoop { id: 78 }]);
    a.handle.shutdown().await;
    b.handle.shutdown().await;
}

/// A friend whose link we drive by hand, to misbehave.
struct RawFriend {
    stream: TcpStream,
    session: Session,
}

async fn raw_connect(key: &StaticKeypair, node: &NodeRef) -> RawFriend {
    let mut stream = TcpStream::connect(node.addresses()[0].to_string()).await.unwrap();
    let mut m1 = [0u8; FRAME_LEN];
    let init = Initiator::start(key, &node.key, now_unix(), &mut m1).unwrap();
    stream.write_all(&m1).await.unwrap();
    let mut m2 = [0u8; FRAME_LEN];
    timeout(WAIT, stream.read_exact(&mut m2)).await.unwrap().unwrap();
    RawFriend { stream, session: init.finish(&m2, DEFAULT_REKEY_INTERVAL).unwrap() }
}

impl RawFriend {
    fn seal(&mut self, body: &[u8; BODY_LEN]) -> [u8; FRAME_LEN] {
        let mut f = [0u8; FRAME_LEN];
        self.session.seal(body, &mut f).unwrap();
        f
    }
}

/// A frame body by hand: flags, stream, fragment.
fn body(flags: u8, stream: u16, fragment: &[u8]) -> [u8; BODY_LEN] {
    let mut b = [0u8; BODY_LEN];
    b[0] = flags;
    b[1..3].copy_from_slice(&stream.to_be_bytes());
    b[3..5].copy_from_slice(&(fragment.len() as u16).to_be_bytes());
    b[5..5 + fragment.len()].copy_from_slice(fragment);
    b
}

#[tokio::test]
async fn bad_frames_close_only_the_offending_link() {
    let (mut a, mut b, _) = pair(None, |_| {}).await;
    let (pa, pb) = (peer_id_of(&a.handle.public_key()), peer_id_of(&b.handle.public_key()));
    wait_connected(&mut a.events, pb).await;
    wait_connected(&mut b.events, pa).await;
    // A raw friend whose key is larger than b's, so b never dials it.
    let raw_key = loop {
        let k = StaticKeypair::generate().unwrap();
        if *k.public() > b.handle.public_key() {
            break k;
        }
    };
    let pr = b.handle.add_friend(NodeRef::v1("127.0.0.1:9".parse().unwrap(), *raw_key.public())).unwrap();
    let hello = encode(&Message::RejectedOverload { id: 5 }).unwrap();
    let node = b.handle.node_ref();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);

    type Case = (&'static str, fn(&LinkError) -> bool);
    let cases: [Case; 8] = [
        ("garbage", |e| matches!(e, LinkError::Session(SessionError::Decrypt))),
        ("truncated", |e| matches!(e, LinkError::Truncated)),
        ("replayed", |e| matches!(e, LinkError::Session(SessionError::Decrypt))),
        ("reordered", |e| matches!(e, LinkError::Session(SessionError::Decrypt))),
        ("tampered", |e| matches!(e, LinkError::Session(SessionError::Decrypt))),
        ("oversized fragment", |e| matches!(e, LinkError::Frame(FrameError::BadLength(_)))),
        ("oversized message", |e| matches!(e, LinkError::Frame(FrameError::MessageTooLong))),
        ("unknown message type", |e| matches!(e, LinkError::Frame(FrameError::Codec(_)))),
    ];
    for (name, expect) in cases {
        let mut r = raw_connect(&raw_key, &node).await;
        wait_connected(&mut b.events, pr).await;
        let good = r.seal(&body(3, 0, &hello));
        let mut wire = good.to_vec();
        match name {
            "garbage" => {
                let mut g = [0u8; FRAME_LEN];
                rng.fill(&mut g[..]);
                wire.extend_from_slice(&g);
            }
            "truncated" => {
                let next = r.seal(&body(3, 0, &hello));
                wire.extend_from_slice(&next[..FRAME_LEN / 2]);
            }
            "replayed" => wire.extend_from_slice(&good),
            "reordered" => {
                let f2 = r.seal(&body(3, 0, &hello));
                let f3 = r.seal(&body(3, 0, &hello));
                wire.extend_from_slice(&f3);
                wire.extend_from_slice(&f2);
            }
            "tampered" => {
                let mut f2 = r.seal(&body(3, 0, &hello));
                f2[FRAME_LEN - 1] ^= 0x40;
                wire.extend_from_slice(&f2);
            }
            "oversized fragment" => {
                let mut bad = body(3, 0, &hello);
                bad[3..5].copy_from_slice(&(MAX_FRAGMENT as u16 + 1).to_be_bytes());
                wire.extend_from_slice(&r.seal(&bad));
            }
            "oversized message" => {
                let chunk = vec![0xAA; MAX_FRAGMENT];
                wire.extend_from_slice(&r.seal(&body(1, 9, &chunk)));
                for _ in 0..40 {
                    wire.extend_from_slice(&r.seal(&body(0, 9, &chunk)));
                }
            }
            "unknown message type" => wire.extend_from_slice(&r.seal(&body(3, 0, &[0x7f]))),
            _ => unreachable!(),
        }
        r.stream.write_all(&wire).await.unwrap();
        let _ = r.stream.shutdown().await;
        let mut got = Vec::new();
        let reason = loop {
            match next(&mut b.events).await {
                TransportEvent::Received { peer, message } if peer == pr => got.push(message),
                TransportEvent::Disconnected { peer, reason } if peer == pr => break reason,
                other => panic!("{name}: unexpected {other:?}"),
            }
        };
        assert!(expect(&reason), "{name}: closed with {reason:?}");
        assert_eq!(got, vec![Message::RejectedOverload { id: 5 }], "{name}: the good frame before the bad one");
        // The friend's link is untouched.
        a.handle.send(pb, &Message::InsertReply { id: 1 }).await.unwrap();
        assert_eq!(receive(&mut b.events, pa, 1).await, vec![Message::InsertReply { id: 1 }], "{name}");
    }
    assert!(b.handle.connected_peers().contains(&pa));
    a.handle.shutdown().await;
    b.handle.shutdown().await;
}

#[tokio::test]
async fn a_peer_that_stops_reading_cannot_grow_the_senders_queue() {
    // The relay forwards the handshake's first message, then never reads from the dialer.
    let (mut a, mut b, _relay) = pair(Some(Some(FRAME_LEN)), |c| c.queue_capacity = 8).await;
    let (pa, pb) = (peer_id_of(&a.handle.public_key()), peer_id_of(&b.handle.public_key()));
    wait_connected(&mut a.events, pb).await;
    wait_connected(&mut b.events, pa).await;
    let big = Message::DataFound { id: 1, block: marked_block(BlockKind::Chk) };
    let mut accepted = 0usize;
    let mut full = false;
    // 16 MiB of blocks is far more than the queue, the framer and the socket buffers hold.
    for _ in 0..512 {
        match a.handle.try_send(pb, &big) {
            Ok(()) => accepted += 1,
            Err(SendError::Full(p)) => {
                assert_eq!(p, pb);
                full = true;
                break;
            }
            Err(e) => panic!("unexpected {e}"),
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(full, "the queue never filled after {accepted} blocks");
    // And it stays full: `send` waits rather than buffering more.
    assert!(timeout(Duration::from_millis(300), a.handle.send(pb, &big)).await.is_err());
    assert!(matches!(a.handle.try_send(pb, &big), Err(SendError::Full(_))));
    // Small messages to other friends are unaffected (none here); shutdown still ends a
    // writer stuck on a full socket.
    timeout(WAIT, a.handle.shutdown()).await.expect("shutdown despite a stuck link");
    b.handle.shutdown().await;
}

#[tokio::test]
async fn a_dialer_reconnects_after_its_friend_restarts() {
    let (ka, kb) = ordered_keys();
    let (hb, mut eb) = Transport::start(config(kb.clone())).await.unwrap();
    let (ha, mut ea) = Transport::start(config(ka)).await.unwrap();
    let (pa, pb) = (peer_id_of(&ha.public_key()), peer_id_of(&hb.public_key()));
    hb.add_friend(ha.node_ref()).unwrap();
    ha.add_friend(hb.node_ref()).unwrap();
    wait_connected(&mut ea, pb).await;
    wait_connected(&mut eb, pa).await;
    let addr = hb.local_addr();
    hb.shutdown().await;
    drop((hb, eb));
    wait_disconnected(&mut ea, pb).await;
    // The same key on the same port: a restarted node.
    let mut c = config(kb);
    c.listen = addr;
    c.friends.push(ha.node_ref());
    let (hb, mut eb) = Transport::start(c).await.unwrap();
    wait_connected(&mut ea, pb).await;
    wait_connected(&mut eb, pa).await;
    ha.send(pb, &Message::SwapRejected { id: 3 }).await.unwrap();
    assert_eq!(receive(&mut eb, pa, 1).await, vec![Message::SwapRejected { id: 3 }]);
    ha.shutdown().await;
    hb.shutdown().await;
}

#[tokio::test]
async fn keepalives_hold_a_quiet_link_and_silence_closes_it() {
    let (mut a, mut b, _) = pair(None, |c| {
        c.keepalive = Duration::from_millis(50);
        c.idle_timeout = Duration::from_millis(400);
    })
    .await;
    let (pa, pb) = (peer_id_of(&a.handle.public_key()), peer_id_of(&b.handle.public_key()));
    wait_connected(&mut a.events, pb).await;
    wait_connected(&mut b.events, pa).await;
    // Many idle timeouts pass with no traffic from the node: only keepalives flow.
    let keepalives = receive(&mut b.events, pa, 30).await;
    assert!(keepalives.iter().all(|m| *m == Message::Keepalive));
    assert_eq!(b.handle.connected_peers(), vec![pa]);
    // A friend that completes the handshake and then says nothing is dropped.
    let raw_key = loop {
        let k = StaticKeypair::generate().unwrap();
        if *k.public() > b.handle.public_key() {
            break k;
        }
    };
    let pr = b.handle.add_friend(NodeRef::v1("127.0.0.1:9".parse().unwrap(), *raw_key.public())).unwrap();
    let _silent = raw_connect(&raw_key, &b.handle.node_ref()).await;
    assert!(matches!(wait_disconnected(&mut b.events, pr).await, LinkError::IdleTimeout));
    a.handle.shutdown().await;
    b.handle.shutdown().await;
}

#[tokio::test]
async fn a_new_link_from_a_friend_replaces_the_old_one() {
    let (a, mut b, _) = pair(None, |_| {}).await;
    let raw_key = loop {
        let k = StaticKeypair::generate().unwrap();
        if *k.public() > b.handle.public_key() {
            break k;
        }
    };
    let pr = b.handle.add_friend(NodeRef::v1("127.0.0.1:9".parse().unwrap(), *raw_key.public())).unwrap();
    let node = b.handle.node_ref();
    let _first = raw_connect(&raw_key, &node).await;
    wait_connected(&mut b.events, pr).await;
    let mut second = raw_connect(&raw_key, &node).await;
    // The old link is reported gone before the new one is announced.
    let reason = wait_disconnected(&mut b.events, pr).await;
    assert!(matches!(reason, LinkError::Replaced), "{reason:?}");
    wait_connected(&mut b.events, pr).await;
    let hello = encode(&Message::SwapRejected { id: 4 }).unwrap();
    let f = second.seal(&body(3, 0, &hello));
    second.stream.write_all(&f).await.unwrap();
    assert_eq!(receive(&mut b.events, pr, 1).await, vec![Message::SwapRejected { id: 4 }]);
    a.handle.shutdown().await;
    b.handle.shutdown().await;
}

#[tokio::test]
async fn a_control_message_overtakes_queued_blocks() {
    let (mut a, mut b, _) = pair(None, |_| {}).await;
    let (pa, pb) = (peer_id_of(&a.handle.public_key()), peer_id_of(&b.handle.public_key()));
    wait_connected(&mut a.events, pb).await;
    wait_connected(&mut b.events, pa).await;
    // Eight blocks (264 frames) are queued before the control message.
    for i in 0..8 {
        a.handle.send(pb, &Message::DataFound { id: i, block: marked_block(BlockKind::Chk) }).await.unwrap();
    }
    a.handle.send(pb, &Message::RejectedOverload { id: 99 }).await.unwrap();
    let got = receive(&mut b.events, pa, 9).await;
    let pos = got.iter().position(|m| *m == Message::RejectedOverload { id: 99 });
    // At most one batch of frames (8) can be on its way before it: not even one whole block.
    assert_eq!(pos, Some(0), "the control message waited behind whole blocks");
    // The blocks themselves arrive in order.
    let ids: Vec<u64> = got
        .iter()
        .filter_map(|m| match m {
            Message::DataFound { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(ids.len(), 8);
    a.handle.shutdown().await;
    b.handle.shutdown().await;
}

#[tokio::test]
async fn shutdown_ends_the_listener_dialers_handshakes_and_links() {
    let (mut a, mut b, _) = pair(None, |c| c.handshake_timeout = Duration::from_secs(60)).await;
    let (pa, pb) = (peer_id_of(&a.handle.public_key()), peer_id_of(&b.handle.public_key()));
    wait_connected(&mut a.events, pb).await;
    wait_connected(&mut b.events, pa).await;
    // A dialer stuck in backoff (a friend at a dead address), and a prober mid-handshake.
    let far = loop {
        let k = StaticKeypair::generate().unwrap();
        if *k.public() > a.handle.public_key() {
            break k;
        }
    };
    a.handle.add_friend(NodeRef::v1("127.0.0.1:9".parse().unwrap(), *far.public())).unwrap();
    let addr = a.handle.local_addr();
    let mut prober = TcpStream::connect(addr).await.unwrap();
    prober.write_all(&[1, 2, 3]).await.unwrap();
    timeout(WAIT, a.handle.shutdown()).await.expect("every task ended");
    assert!(a.handle.connected_peers().is_empty());
    // The listener is gone, the prober's connection is closed, the friend saw the link end.
    assert!(TcpStream::connect(addr).await.is_err(), "still listening after shutdown");
    let mut rest = Vec::new();
    let n = timeout(WAIT, prober.read_to_end(&mut rest)).await.expect("prober closed");
    assert!(n.map(|_| rest.is_empty()).unwrap_or(true));
    wait_disconnected(&mut b.events, pa).await;
    // Sending after shutdown is an error, not a hang.
    assert!(matches!(a.handle.try_send(pb, &Message::Keepalive), Err(SendError::NotConnected(_))));
    b.handle.shutdown().await;
}
