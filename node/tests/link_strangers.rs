//! Stranger links on 127.0.0.1 (opennet, issue 19): a node in opennet mode answers an
//! initiator it does not know (as long as the initiator knows its key), a darknet node
//! still refuses one, strangers are bounded per address, and a dropped stranger's link
//! closes on both ends.

// Tests drive transports by the real clock.
#![allow(clippy::disallowed_methods)]

use std::time::Duration;

use pamphlet_node::id::PeerId;
use pamphlet_node::link::{NodeRef, StaticKeypair};
use pamphlet_node::transport::{peer_id_of, LinkError, Transport, TransportConfig, TransportEvent, TransportHandle};
use pamphlet_node::wire::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(20);

struct Node {
    handle: TransportHandle,
    events: mpsc::Receiver<TransportEvent>,
    peer: PeerId,
}

/// A transport on 127.0.0.1 with a signed reference (so the address record it sends first
/// on every link gives strangers its reference).
async fn node(accept_strangers: bool, per_ip: usize) -> Node {
    let kp = StaticKeypair::generate().unwrap();
    let mut c = TransportConfig::new("127.0.0.1:0".parse().unwrap(), kp.clone());
    c.handshake_timeout = Duration::from_millis(800);
    c.accept_strangers = accept_strangers;
    c.max_strangers_per_ip = per_ip;
    c.max_strangers_per_subnet = per_ip.max(4);
    let (handle, events) = Transport::start(c).await.unwrap();
    let own = NodeRef::signed(&kp, vec![handle.local_addr().into()], 1).unwrap();
    handle.set_own_ref(own);
    let peer = peer_id_of(&handle.public_key());
    Node { handle, events, peer }
}

async fn next(rx: &mut mpsc::Receiver<TransportEvent>) -> TransportEvent {
    timeout(WAIT, rx.recv()).await.expect("event in time").expect("transport alive")
}

/// The next stranger event: `Some(outbound)` for a link up, `None` for a failed dial.
async fn stranger_event(rx: &mut mpsc::Receiver<TransportEvent>, want: PeerId) -> Option<bool> {
    loop {
        match next(rx).await {
            TransportEvent::StrangerConnected { peer, outbound } if peer == want => return Some(outbound),
            TransportEvent::StrangerDialFailed { peer } if peer == want => return None,
            _ => {}
        }
    }
}

#[tokio::test]
async fn an_opennet_node_answers_an_initiator_it_does_not_know() {
    let mut a = node(true, 1).await;
    let mut b = node(true, 1).await;
    a.handle.dial_stranger(b.handle.node_ref()).unwrap();
    assert_eq!(stranger_event(&mut a.events, b.peer).await, Some(true), "the dialler's link is up");
    assert_eq!(stranger_event(&mut b.events, a.peer).await, Some(false), "the responder took the stranger");
    a.handle.send(b.peer, &Message::SwapRejected { id: 7 }).await.unwrap();
    loop {
        if let TransportEvent::Received { peer, message } = next(&mut b.events).await {
            assert_eq!((peer, message), (a.peer, Message::SwapRejected { id: 7 }));
            break;
        }
    }
    // The responder learnt the dialler's reference from its signed address record.
    let mut refs = b.handle.stranger_refs();
    for _ in 0..100 {
        if !refs.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        refs = b.handle.stranger_refs();
    }
    assert_eq!(refs, vec![(a.peer, a.handle.node_ref())]);
    assert!(b.handle.friends().is_empty(), "a stranger is not made a friend");

    // Dropping it closes the link at both ends.
    b.handle.drop_stranger(a.peer);
    loop {
        if let TransportEvent::Disconnected { peer, reason } = next(&mut b.events).await {
            assert_eq!((peer, matches!(reason, LinkError::Dropped)), (a.peer, true));
            break;
        }
    }
    loop {
        if let TransportEvent::Disconnected { peer, .. } = next(&mut a.events).await {
            assert_eq!(peer, b.peer);
            break;
        }
    }
    assert!(a.handle.stranger_refs().is_empty() && b.handle.stranger_refs().is_empty());
    a.handle.shutdown().await;
    b.handle.shutdown().await;
}

#[tokio::test]
async fn a_darknet_node_still_refuses_an_unknown_key() {
    let mut a = node(true, 1).await;
    let mut dark = node(false, 1).await;
    a.handle.dial_stranger(dark.handle.node_ref()).unwrap();
    assert_eq!(stranger_event(&mut a.events, dark.peer).await, None, "the darknet node stayed silent");
    assert!(timeout(Duration::from_millis(300), dark.events.recv()).await.is_err(), "and told its node nothing");
    assert!(dark.handle.connected_peers().is_empty());
    a.handle.shutdown().await;
    dark.handle.shutdown().await;
}

#[tokio::test]
async fn strangers_past_the_per_address_bound_get_silence() {
    // Every test node is on 127.0.0.1: with one stranger per address the second is refused.
    let mut seed = node(true, 1).await;
    let mut first = node(true, 1).await;
    let mut second = node(true, 1).await;
    first.handle.dial_stranger(seed.handle.node_ref()).unwrap();
    assert_eq!(stranger_event(&mut first.events, seed.peer).await, Some(true));
    assert_eq!(stranger_event(&mut seed.events, first.peer).await, Some(false));
    second.handle.dial_stranger(seed.handle.node_ref()).unwrap();
    assert_eq!(stranger_event(&mut second.events, seed.peer).await, None, "the second stranger from 127.0.0.1");
    assert_eq!(seed.handle.connected_peers(), vec![first.peer]);
    // A friend from the same address is not a stranger: it is still answered.
    seed.handle.add_friend(second.handle.node_ref()).unwrap();
    second.handle.add_friend(seed.handle.node_ref()).unwrap();
    loop {
        if let TransportEvent::Connected { peer } = next(&mut second.events).await {
            assert_eq!(peer, seed.peer);
            break;
        }
    }
    for n in [seed, first, second] {
        n.handle.shutdown().await;
    }
}

#[tokio::test]
async fn probing_an_opennet_node_without_its_key_gets_silence() {
    let n = node(true, 8).await;
    let mut s = TcpStream::connect(n.handle.local_addr()).await.unwrap();
    // A whole message 1's worth of bytes, not made with the node's key.
    s.write_all(&[0x42; pamphlet_node::wire::frame::FRAME_LEN]).await.unwrap();
    let mut got = Vec::new();
    let _ = timeout(WAIT, s.read_to_end(&mut got)).await.expect("the node closes the probe");
    assert!(got.is_empty(), "an opennet node answered a probe: {} bytes", got.len());
    assert!(n.handle.connected_peers().is_empty());
    n.handle.shutdown().await;
}
