//! The node's one UDP socket (`transport::udp_endpoint`, issue 18): two endpoints on
//! 127.0.0.1 handshake over datagrams and move 10 MiB of frames both ways through the
//! shared sockets while a third socket throws garbage and strangers' handshakes at both;
//! a flood from one address stays within its share of the handshake queue; a friend that
//! restarts on the same address gets a new session in place of the old one.

// A driver test: the stranger's message 1 is made at a real `Instant` (its resend
// schedule is not used); the links run on tokio's clock.
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pamphlet_node::link::datagram::handshake::{HandshakeConfig, Initiator};
use pamphlet_node::link::datagram::DATAGRAM_LEN;
use pamphlet_node::link::noise::ReplayCache;
use pamphlet_node::link::{PublicKey, StaticKeypair};
use pamphlet_node::transport::udp::{drive_link, Body, UdpLinkConfig, UdpLinkError};
use pamphlet_node::transport::udp_endpoint::{Accepted, DialError, EndpointConfig, UdpEndpoint, UdpLink};
use pamphlet_node::wire::frame::BODY_LEN;
use rand::{Rng, SeedableRng};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

const MIB: usize = 1024 * 1024;

async fn endpoint(
    at: &str,
    me: &StaticKeypair,
    friend: PublicKey,
    config: impl FnOnce(&mut EndpointConfig),
    stop: &watch::Sender<bool>,
) -> (UdpEndpoint, mpsc::Receiver<Accepted>) {
    let mut c = EndpointConfig::new(me.clone());
    config(&mut c);
    let is_friend = Arc::new(move |k: &PublicKey, _| *k == friend);
    UdpEndpoint::bind(at.parse().unwrap(), c, is_friend, Arc::new(Mutex::new(ReplayCache::new())), stop.subscribe())
        .await
        .unwrap()
}

/// Frame `i` of a direction: its index and a fill byte, on one of 4 streams.
fn frame(i: u64, dir: u8) -> Body {
    let mut f = Box::new([0u8; BODY_LEN]);
    f[1..3].copy_from_slice(&((i % 4) as u16 + 1).to_be_bytes());
    f[5..13].copy_from_slice(&i.to_be_bytes());
    f[13] = dir;
    f[14..].fill(i as u8 ^ dir);
    f
}

/// Sends `n` frames of direction `mine` on `out` and checks that `n` of direction
/// `theirs` arrive on `inc`, each once and intact.
async fn exchange(out: mpsc::Sender<Body>, mut inc: mpsc::Receiver<Body>, n: u64, mine: u8, theirs: u8) {
    let producer = tokio::spawn(async move {
        for i in 0..n {
            out.send(frame(i, mine)).await.unwrap();
        }
    });
    let mut seen = vec![false; n as usize];
    for _ in 0..n {
        let f = inc.recv().await.expect("a frame");
        let i = u64::from_be_bytes(f[5..13].try_into().unwrap());
        assert!(!seen[i as usize], "frame {i} twice");
        seen[i as usize] = true;
        assert!(*f == *frame(i, theirs), "frame {i} altered");
    }
    producer.await.unwrap();
}

/// A third party's datagrams: garbage of every length, full-size garbage, and genuine
/// messages 1 of a stranger (who holds the target's key but is nobody's friend).
async fn hostile(targets: Vec<(SocketAddr, PublicKey)>, rounds: usize) -> usize {
    let socket = UdpSocket::bind("127.0.0.3:0").await.unwrap();
    let stranger = StaticKeypair::generate().unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut sent = 0;
    let t0 = std::time::Instant::now();
    for r in 0..rounds {
        for (to, key) in &targets {
            let len = if r % 2 == 0 { DATAGRAM_LEN } else { rng.gen_range(0..1500) };
            let junk: Vec<u8> = (0..len).map(|_| rng.r#gen()).collect();
            let _ = socket.send_to(&junk, to).await;
            if r % 10 == 0 {
                let mut i = Initiator::start(&stranger, key, 1_800_000_000, t0, HandshakeConfig::default()).unwrap();
                let _ = socket.send_to(i.poll_transmit(t0).unwrap(), to).await;
            }
            sent += 1;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_mib_both_ways_over_shared_sockets_with_a_hostile_third() {
    let (a, b) = (StaticKeypair::generate().unwrap(), StaticKeypair::generate().unwrap());
    let (stop, _) = watch::channel(false);
    let (ea, mut acc_a) = endpoint("127.0.0.1:0", &a, *b.public(), |_| {}, &stop).await;
    let (eb, mut acc_b) = endpoint("127.0.0.1:0", &b, *a.public(), |_| {}, &stop).await;
    let targets = vec![(ea.local_addr(), *a.public()), (eb.local_addr(), *b.public())];
    let attack = tokio::spawn(hostile(targets, 400));

    let la = ea.dial(eb.local_addr(), b.public()).await.unwrap();
    let Accepted { peer, link: lb } = acc_b.recv().await.unwrap();
    assert_eq!(peer, *a.public());
    assert_eq!(lb.addr, ea.local_addr());

    let frames = (10 * MIB / BODY_LEN) as u64;
    let cfg = UdpLinkConfig::default();
    let (a_out, a_out_rx) = mpsc::channel(64);
    let (a_in, a_in_rx) = mpsc::channel(64);
    let (b_out, b_out_rx) = mpsc::channel(64);
    let (b_in, b_in_rx) = mpsc::channel(64);
    let ta = tokio::spawn(drive_link(la, a_out_rx, a_in, stop.subscribe(), cfg.clone()));
    let tb = tokio::spawn(drive_link(lb, b_out_rx, b_in, stop.subscribe(), cfg));
    tokio::join!(exchange(a_out, a_in_rx, frames, 1, 2), exchange(b_out, b_in_rx, frames, 2, 1));
    assert!(attack.await.unwrap() > 0);

    // The third party got no link, and took no session's place (a new session would have
    // come as an `Accepted`); the links that ended with their transfer left the table.
    assert!(acc_a.try_recv().is_err() && acc_b.try_recv().is_err(), "a link for the third party");
    let (sa, sb) = (ea.stats(), eb.stats());
    assert!(sa.sessions <= 1 && sb.sessions <= 1, "{sa:?} {sb:?}");
    assert!(sa.wrong_length > 0 && sb.wrong_length > 0, "{sa:?} {sb:?}");
    assert!(sa.refused > 0 && sb.refused > 0, "the garbage and the stranger reached the responder: {sa:?} {sb:?}");
    // (The last acknowledgements may still be on their way: no count of what is
    // unacknowledged here; every frame arrived, checked above.)
    stop.send(true).unwrap();
    ta.await.unwrap().unwrap();
    tb.await.unwrap().unwrap();
}

/// A flood of full-size datagrams from one address holds at most its per-address share of
/// the handshake queue (the rest is dropped before any work), and a friend's dial from
/// another address still gets through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_one_address_keeps_to_its_share_of_the_handshake_queue() {
    let (a, b) = (StaticKeypair::generate().unwrap(), StaticKeypair::generate().unwrap());
    let (stop, _) = watch::channel(false);
    let per_ip = 2;
    let (ea, _acc_a) = endpoint("127.0.0.1:0", &a, *b.public(), |_| {}, &stop).await;
    let (eb, mut acc_b) = endpoint("127.0.0.1:0", &b, *a.public(), |c| c.max_pending_per_ip = per_ip, &stop).await;
    let target = eb.local_addr();
    let flood = tokio::spawn(async move {
        let s = UdpSocket::bind("127.0.0.2:0").await.unwrap();
        for i in 0..3000u32 {
            let _ = s.send_to(&[(i % 251) as u8; DATAGRAM_LEN], target).await;
        }
    });
    let watch_b = eb.clone();
    let watcher = tokio::spawn(async move {
        let mut most = 0;
        for _ in 0..2000 {
            most = most.max(watch_b.stats().pending);
            tokio::task::yield_now().await;
        }
        most
    });
    let la = ea.dial(target, b.public()).await.expect("the friend's dial gets through the flood");
    assert_eq!(acc_b.recv().await.unwrap().peer, *a.public());
    flood.await.unwrap();
    let most = watcher.await.unwrap();
    let s = eb.stats();
    assert!(most <= per_ip + 1, "the queue held {most} (one address may hold {per_ip}, the friend 1)");
    assert!(s.pending_dropped > 0, "{s:?}");
    drop(la);
    stop.send(true).unwrap();
}

/// A friend that restarts on the same address handshakes again: the old session cannot
/// open its message 1 and hands it back to the endpoint, which answers it; the new
/// session replaces the old one, whose link ends `Replaced`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_friend_restarting_on_the_same_address_replaces_its_session() {
    let (a, b) = (StaticKeypair::generate().unwrap(), StaticKeypair::generate().unwrap());
    let (stop, _) = watch::channel(false);
    let (ea, mut acc_a) = endpoint("127.0.0.1:0", &a, *b.public(), |_| {}, &stop).await;
    let (stop_b, _) = watch::channel(false);
    let (eb, _acc_b) = endpoint("127.0.0.1:0", &b, *a.public(), |_| {}, &stop_b).await;
    let b_addr = eb.local_addr();
    let lb = eb.dial(ea.local_addr(), a.public()).await.unwrap();
    let old = acc_a.recv().await.unwrap().link;
    let (_o_out, o_out_rx) = mpsc::channel(8);
    let (o_in, _o_in_rx) = mpsc::channel(8);
    let old = tokio::spawn(drive_link(old, o_out_rx, o_in, stop.subscribe(), UdpLinkConfig::default()));

    // B stops and starts again on the same address, and dials A anew.
    drop(lb);
    stop_b.send(true).unwrap();
    drop(eb);
    let (stop_b, _) = watch::channel(false);
    let mut again = None;
    for _ in 0..100 {
        // The old socket closes once the endpoint's tasks have seen the stop.
        tokio::time::sleep(Duration::from_millis(10)).await;
        let mut c = EndpointConfig::new(b.clone());
        c.handshake.resend_initial = Duration::from_millis(50);
        let friend = *a.public();
        let f = Arc::new(move |k: &PublicKey, _| *k == friend);
        if let Ok(e) =
            UdpEndpoint::bind(b_addr, c, f, Arc::new(Mutex::new(ReplayCache::new())), stop_b.subscribe()).await
        {
            again = Some(e);
            break;
        }
    }
    let (eb, _acc_b) = again.expect("rebound on the same address");
    let lb = eb.dial(ea.local_addr(), a.public()).await.expect("the restarted friend gets a new session");
    let new = acc_a.recv().await.unwrap().link;
    assert_eq!(new.peer, *b.public());
    let ended = tokio::time::timeout(Duration::from_secs(10), old).await.expect("the old link ends").unwrap();
    assert!(matches!(ended, Err(UdpLinkError::Replaced)), "{:?}", ended.err());
    assert_eq!(ea.stats().sessions, 1);

    // And the new pair carries frames.
    let cfg = UdpLinkConfig::default();
    let (a_out, a_out_rx) = mpsc::channel(8);
    let (a_in, a_in_rx) = mpsc::channel(8);
    let (b_out, b_out_rx) = mpsc::channel(8);
    let (b_in, b_in_rx) = mpsc::channel(8);
    let _ta = tokio::spawn(drive_link(new, a_out_rx, a_in, stop.subscribe(), cfg.clone()));
    let _tb = tokio::spawn(drive_link(lb, b_out_rx, b_in, stop_b.subscribe(), cfg));
    tokio::join!(exchange(a_out, a_in_rx, 100, 1, 2), exchange(b_out, b_in_rx, 100, 2, 1));
    stop.send(true).unwrap();
    stop_b.send(true).unwrap();
}

/// Another friend's handshake from the address where a friend holds a session (a spoofed
/// source address, stood in for here by C's endpoint bound to B's address) is refused:
/// only the key holding an address's session may replace it. Before, C's session took B's
/// place, B's datagrams no longer opened and B's link died until it timed out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_key_from_a_friends_address_does_not_take_its_session() {
    let keys: Vec<StaticKeypair> = (0..3).map(|_| StaticKeypair::generate().unwrap()).collect();
    let (a, b, c) = (&keys[0], &keys[1], &keys[2]);
    let (bk, ck) = (*b.public(), *c.public());
    let (stop, _) = watch::channel(false);
    let both = Arc::new(move |k: &PublicKey, _| *k == bk || *k == ck);
    let (ea, mut acc_a) = UdpEndpoint::bind(
        "127.0.0.1:0".parse().unwrap(),
        EndpointConfig::new(a.clone()),
        both,
        Arc::new(Mutex::new(ReplayCache::new())),
        stop.subscribe(),
    )
    .await
    .unwrap();
    let (stop_b, _) = watch::channel(false);
    let (eb, _acc_b) = endpoint("127.0.0.1:0", b, *a.public(), |_| {}, &stop_b).await;
    let b_addr = eb.local_addr();
    let lb = eb.dial(ea.local_addr(), a.public()).await.unwrap();
    let held = acc_a.recv().await.unwrap().link;
    assert_eq!(held.peer, bk);
    let (_o_out, o_out_rx) = mpsc::channel(8);
    let (o_in, _o_in_rx) = mpsc::channel(8);
    let held = tokio::spawn(drive_link(held, o_out_rx, o_in, stop.subscribe(), UdpLinkConfig::default()));

    // C, on B's address, handshakes with A.
    drop(lb);
    stop_b.send(true).unwrap();
    drop(eb);
    let mut spoofer = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let mut cfg = EndpointConfig::new(c.clone());
        cfg.handshake.resend_initial = Duration::from_millis(50);
        cfg.handshake.timeout = Duration::from_millis(600);
        let friend = *a.public();
        let f = Arc::new(move |k: &PublicKey, _| *k == friend);
        if let Ok(e) =
            UdpEndpoint::bind(b_addr, cfg, f, Arc::new(Mutex::new(ReplayCache::new())), stop.subscribe()).await
        {
            spoofer = Some(e);
            break;
        }
    }
    let (ec, _acc_c) = spoofer.expect("bound on B's address");
    assert!(ec.dial(ea.local_addr(), a.public()).await.is_err(), "C's handshake from B's address was answered");
    assert!(acc_a.try_recv().is_err(), "A accepted a session for C at B's address");
    assert!(!held.is_finished(), "B's session was replaced");
    assert_eq!(ea.stats().sessions, 1);
    stop.send(true).unwrap();
}

/// A link being driven: whether it is still the endpoint's for its address, and its
/// frames.
struct Driven {
    current: Box<dyn Fn() -> bool + Send + Sync>,
    out: mpsc::Sender<Body>,
    inc: mpsc::Receiver<Body>,
}

/// Drives every link one side is given (its dial's, and the accepted ones) as soon as it
/// comes, as the transport does, for `window`.
async fn drive_all(
    dial: tokio::task::JoinHandle<Result<UdpLink, DialError>>,
    mut acc: mpsc::Receiver<Accepted>,
    stop: watch::Receiver<bool>,
    window: Duration,
) -> Vec<Driven> {
    let mut driven = Vec::new();
    let mut start = |link: UdpLink| {
        let (out, out_rx) = mpsc::channel(8);
        let (inc_tx, inc) = mpsc::channel(8);
        let current = Box::new(link.current());
        tokio::spawn(drive_link(link, out_rx, inc_tx, stop.clone(), UdpLinkConfig::default()));
        driven.push(Driven { current, out, inc });
    };
    let deadline = tokio::time::sleep(window);
    tokio::pin!(deadline, dial);
    let mut dialling = true;
    loop {
        tokio::select! {
            d = &mut dial, if dialling => {
                dialling = false;
                if let Ok(link) = d.unwrap() {
                    start(link);
                }
            }
            a = acc.recv() => start(a.unwrap().link),
            _ = &mut deadline, if !dialling => return driven,
        }
    }
}

/// Two friends dialling each other at once end with one link, not two half-links: the
/// node with the larger key answers the other's message 1 and drops its own dial (the
/// rule of TCP links: the dial of the smaller key wins); the smaller refuses the larger's,
/// also when it arrives just after its own dial completed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_dials_make_one_link() {
    let (x, y) = (StaticKeypair::generate().unwrap(), StaticKeypair::generate().unwrap());
    let (small, large) = if x.public() < y.public() { (x, y) } else { (y, x) };
    let (stop, _) = watch::channel(false);
    let (es, acc_s) = endpoint("127.0.0.1:0", &small, *large.public(), |_| {}, &stop).await;
    let (el, acc_l) = endpoint("127.0.0.1:0", &large, *small.public(), |_| {}, &stop).await;
    let (es2, el2, lkey, skey) = (es.clone(), el.clone(), *large.public(), *small.public());
    let (la, sa) = (el.local_addr(), es.local_addr());
    let ds = tokio::spawn(async move { es2.dial(la, &lkey).await });
    let dl = tokio::spawn(async move { el2.dial(sa, &skey).await });
    let window = Duration::from_millis(500);
    let (s_links, l_links) =
        tokio::join!(drive_all(ds, acc_s, stop.subscribe(), window), drive_all(dl, acc_l, stop.subscribe(), window));
    // Whichever way the race ran, each side holds one session, and its current link is
    // one end of the pair.
    assert_eq!((es.stats().sessions, el.stats().sessions), (1, 1));
    let pick = |links: Vec<Driven>| {
        let mut current: Vec<Driven> = links.into_iter().filter(|d| (d.current)()).collect();
        assert_eq!(current.len(), 1, "one current link");
        current.remove(0)
    };
    let (s, l) = (pick(s_links), pick(l_links));
    tokio::join!(exchange(s.out, s.inc, 100, 1, 2), exchange(l.out, l.inc, 100, 2, 1));
    stop.send(true).unwrap();
}
