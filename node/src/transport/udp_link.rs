//! Friend links over datagrams (`transport = "udp"`, issue 18): what `connection` is for a
//! TCP link, over a session of the node's UDP endpoint (`udp_endpoint`, driven by
//! `udp::drive_link`).
//!
//! The link gives the node what a TCP link gives: the same `TransportEvent`s, the same two
//! bounded queues (one-frame messages ahead of blocks, backpressure when the session's
//! queue is full), the upload and download limits (counted per datagram), and the order
//! promise "each kind of message keeps its order": one-frame messages are chained in one
//! frame stream (`Session::send_frame_ordered`), so a lost `LocationUpdate` cannot be
//! overtaken by an older one; each block is its own stream, so a lost frame holds back
//! only its own block (no head-of-line blocking across blocks). Blocks may complete in
//! another order than they were queued; over TCP they complete in queue order.
//!
//! Keepalives are the driver's padding frames (every `keepalive`, at most 20 s, within NAT
//! binding lifetimes), not `Message::Keepalive`s; a friend gone silent ends the link
//! `IdleTimeout` once a keepalive goes unanswered for the idle timeout (at most 30 s).

use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use super::connection::{self, LinkError, LinkTimers, Queues, LOW_WATER};
use super::limit::Limits;
use super::udp::{self, Body, UdpLinkConfig, UdpLinkError};
use super::udp_endpoint::{Accepted, EndpointConfig, UdpEndpoint, UdpLink};
use super::{run_link, Shared, TransportEvent};
use crate::id::PeerId;
use crate::link::datagram::DATAGRAM_LEN;
use crate::link::noise;
use crate::wire::frame::{FrameReader, FrameWriter, BODY_LEN};
use crate::wire::Message;

/// One-frame messages moved into the framer per turn at most.
const SMALL_DRAIN: usize = 64;
/// Frames between the link and its session's driver, each way.
const CHANNEL_FRAMES: usize = 64;
/// The longest wait between keepalives over UDP (NAT bindings often last 30 s).
const MAX_KEEPALIVE: Duration = Duration::from_secs(20);
/// The longest silence, after a keepalive or data, before the link is given up.
const MAX_IDLE: Duration = Duration::from_secs(30);

/// An established link's transport.
#[derive(Debug)]
pub(crate) enum LinkIo {
    /// TCP and the Noise session over it.
    Tcp(TcpStream, noise::Session),
    /// A session of the node's UDP endpoint (boxed: a session is large).
    Udp(Box<UdpLink>),
}

impl LinkIo {
    /// Whether it runs over datagrams.
    pub(crate) fn is_udp(&self) -> bool {
        matches!(self, LinkIo::Udp(_))
    }

    /// The friend's address.
    pub(crate) fn peer_addr(&self) -> std::io::Result<SocketAddr> {
        match self {
            LinkIo::Tcp(stream, _) => stream.peer_addr(),
            LinkIo::Udp(link) => Ok(link.addr),
        }
    }
}

/// Runs a link until it ends, over whichever transport it has (see `connection::run` for
/// the arguments).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run_io(
    io: LinkIo,
    peer: PeerId,
    queues: Queues,
    events: mpsc::Sender<TransportEvent>,
    timers: LinkTimers,
    shutdown: watch::Receiver<bool>,
    unregister: &(dyn Fn() + Sync),
    on_record: &(dyn Fn(Message) + Sync),
    limits: &Limits,
) -> LinkError {
    match io {
        LinkIo::Tcp(stream, sess) => {
            connection::run(stream, sess, peer, queues, events, timers, shutdown, unregister, on_record, limits).await
        }
        LinkIo::Udp(link) => run(*link, peer, queues, events, timers, shutdown, on_record, limits).await,
    }
}

#[allow(clippy::too_many_arguments)]
async fn run(
    link: UdpLink,
    peer: PeerId,
    queues: Queues,
    events: mpsc::Sender<TransportEvent>,
    timers: LinkTimers,
    mut shutdown: watch::Receiver<bool>,
    on_record: &(dyn Fn(Message) + Sync),
    limits: &Limits,
) -> LinkError {
    let (out_tx, out_rx) = mpsc::channel::<Body>(CHANNEL_FRAMES);
    let (in_tx, in_rx) = mpsc::channel::<Body>(CHANNEL_FRAMES);
    let config = UdpLinkConfig {
        idle_timeout: timers.idle_timeout.min(MAX_IDLE),
        keepalive: Some(timers.keepalive.min(MAX_KEEPALIVE)),
        order_single_frames: true,
        upload: limits.up.limited().then(|| limits.up.clone()),
        ..UdpLinkConfig::default()
    };
    let driver = udp::drive_link(link, out_rx, in_tx, shutdown.clone(), config);
    let writer = write_loop(queues, out_tx, limits);
    let reader = read_loop(in_rx, peer, &events, on_record, limits);
    tokio::pin!(driver, writer, reader);
    let retired = tokio::select! {
        r = &mut driver => return ended(r),
        e = &mut reader => return e,
        w = &mut writer => w,
        _ = shutdown.wait_for(|s| *s) => return LinkError::Shutdown,
    };
    if let Err(e) = retired {
        return e;
    }
    // Retired (our queues were dropped): every message is with the session. Let it deliver
    // them while the friend's still arrive, for `drain` at most.
    tokio::select! {
        _ = &mut driver => LinkError::Replaced,
        _ = &mut reader => LinkError::Replaced,
        _ = tokio::time::sleep(timers.drain) => LinkError::Replaced,
        _ = shutdown.wait_for(|s| *s) => LinkError::Shutdown,
    }
}

/// Why the driver ended, as a link error.
fn ended(r: Result<crate::link::datagram::Session, UdpLinkError>) -> LinkError {
    match r {
        Ok(_) => LinkError::Shutdown,
        Err(UdpLinkError::Io(e)) => LinkError::Io(e),
        Err(UdpLinkError::Peer(e)) => LinkError::Datagram(e),
        Err(UdpLinkError::Silent(_)) => LinkError::IdleTimeout,
        // The friend handshook again from the same address (it restarted): its new link
        // comes up as a new session.
        Err(UdpLinkError::Replaced) => LinkError::Replaced,
    }
}

/// Moves messages from the queues into frames for the session: one-frame messages first,
/// blocks while the framer holds less than `LOW_WATER` bytes. `Ok` once both queues are
/// closed and empty (the link was retired).
async fn write_loop(mut queues: Queues, out: mpsc::Sender<Body>, limits: &Limits) -> Result<(), LinkError> {
    let mut framer = FrameWriter::new();
    loop {
        if framer.is_empty() {
            let next = tokio::select! {
                biased;
                m = queues.small.recv() => m,
                m = queues.bulk.recv() => m,
            };
            let next = next.or_else(|| queues.small.try_recv().or_else(|_| queues.bulk.try_recv()).ok());
            match next {
                Some(m) => framer.push_encoded(m)?,
                None => return Ok(()),
            }
        }
        let mut body = [0u8; BODY_LEN];
        loop {
            for _ in 0..SMALL_DRAIN {
                let Ok(m) = queues.small.try_recv() else { break };
                framer.push_encoded(m)?;
            }
            while framer.queued_bytes() < LOW_WATER {
                let Ok(m) = queues.bulk.try_recv() else { break };
                framer.push_encoded(m)?;
            }
            if !framer.next_frame(&mut body) {
                break;
            }
            // Stream 0 carries the one-frame messages: requests, replies, rejections.
            let control = body[1..3] == [0, 0];
            limits.up.send(DATAGRAM_LEN, control).await;
            if out.send(Box::new(body)).await.is_err() {
                return Err(LinkError::Shutdown);
            }
        }
    }
}

/// Partial messages a UDP link's reader holds at once. Over TCP at most the writer's 4
/// interleaved messages are partial; over datagrams a message with a lost frame stays
/// partial for the round trip or more its repair takes, while later messages keep coming
/// and may lose frames of their own. TCP's bound (16 messages, 256 KiB) closed a link as
/// the peer's fault on the WAN darknet at 100 Mbit/s with 1% loss ("too many buffered
/// bytes", and the fetch failed). 64 blocks (2 MiB) is about 4× what that path held at
/// its worst estimate, and stays below what the session already lets a peer make us hold
/// waiting for a frame (`link::datagram::FRAME_WINDOW`, 4 MiB).
const MAX_PARTIAL_MESSAGES: usize = 64;
/// Bytes of partial messages a UDP link's reader holds at once (see above).
const MAX_BUFFERED_BYTES: usize = 2 * 1024 * 1024;

/// Reassembles the friend's messages from the frames the session hands up and delivers
/// them (address records to the transport, everything else to the node).
async fn read_loop(
    mut frames: mpsc::Receiver<Body>,
    peer: PeerId,
    events: &mpsc::Sender<TransportEvent>,
    on_record: &(dyn Fn(Message) + Sync),
    limits: &Limits,
) -> LinkError {
    let mut reader = FrameReader::with_limits(MAX_PARTIAL_MESSAGES, MAX_BUFFERED_BYTES);
    while let Some(body) = frames.recv().await {
        limits.down.received(DATAGRAM_LEN).await;
        let message = match reader.read_frame(&body[..]) {
            Ok(Some(m)) => m,
            Ok(None) => continue,
            Err(e) => return e.into(),
        };
        if matches!(message, Message::AddressRecord { .. }) {
            on_record(message);
        } else if events.send(TransportEvent::Received { peer, message }).await.is_err() {
            return LinkError::Shutdown;
        }
    }
    LinkError::Closed
}

/// Binds the node's UDP endpoint on the TCP listener's address and starts taking the
/// links it accepts.
pub(super) async fn start(shared: &Arc<Shared>, at: SocketAddr) -> std::io::Result<UdpEndpoint> {
    let mut config = EndpointConfig::new(shared.config.keypair.clone());
    config.handshake.timeout = shared.config.handshake_timeout;
    config.max_pending_handshakes = shared.config.max_pending_handshakes;
    config.max_pending_per_ip = shared.config.max_pending_per_ip;
    let weak: Weak<Shared> = Arc::downgrade(shared);
    let is_friend = Arc::new(move |k: &_, ip| weak.upgrade().is_some_and(|s| s.answers(k, ip)));
    // Its own replay cache, not the TCP listener's: a message 1 cannot pass on both
    // transports (another prologue, another length), so sharing protected nothing, and
    // the UDP responder holding the lock through each handshake attempt (a flood of
    // full-size garbage included) made TCP handshakes wait behind it.
    let replay = Arc::new(std::sync::Mutex::new(crate::link::noise::ReplayCache::new()));
    let (endpoint, accepted) = UdpEndpoint::bind(at, config, is_friend, replay, shared.shutdown.subscribe()).await?;
    shared.spawn(|s, t| accept(s, accepted, t));
    Ok(endpoint)
}

/// Runs each link the endpoint accepted, as the TCP listener does.
async fn accept(shared: Arc<Shared>, mut accepted: mpsc::Receiver<Accepted>, _done: mpsc::Sender<()>) {
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        let Accepted { peer: key, link } = tokio::select! {
            a = accepted.recv() => match a { Some(a) => a, None => return },
            _ = shutdown.wait_for(|s| *s) => return,
        };
        let ip = link.addr.ip();
        shared.spawn(move |s, done| async move {
            let friend = s.state().friends.by_key.get(&key).map(|f| f.peer);
            let peer = friend.or_else(|| s.register_stranger(key, ip, None));
            if let Some(peer) = peer {
                run_link(&s, LinkIo::Udp(Box::new(link)), key, peer, false).await;
            }
            drop(done);
        });
    }
}
