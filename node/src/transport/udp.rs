//! The tokio driver of one datagram link (`link::datagram`): a [`Session`] over a
//! connected `UdpSocket` ([`drive`]: tests and benchmarks) or over the node's shared
//! socket ([`drive_link`]: `udp_endpoint`, under the friend links of `udp_link`), frames
//! in and out through bounded channels, and at most [`UdpLinkConfig::max_undelivered`]
//! received frames held for a consumer that is slow; a padding frame after `keepalive`
//! without sending.
//!
//! The loop: read the clock once per turn, run the session's timers, send what it lets
//! out (paced; a full socket buffer waits for writability), take frames from the
//! application while fewer than [`UdpLinkConfig::max_queued_frames`] wait in the session,
//! hand received frames up (waiting for room, but still sending meanwhile), and sleep
//! until the next datagram, frame or deadline. While `max_undelivered` frames wait for the
//! consumer the socket is not read: the kernel's buffer fills and drops, and the sender's
//! loss recovery repeats what was dropped (the session acknowledges a frame when it
//! arrives, so without this a stalled consumer would let memory grow at the link's rate;
//! over TCP, TCP's flow control stops the sender instead).

use std::collections::VecDeque;
use std::io;
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

pub use super::udp_endpoint::{enlarge_buffers, SOCKET_BUFFER};
use super::udp_endpoint::{Registration, UdpLink};
use crate::link::datagram::{DatagramError, Dropped, PeerError, Session, DATAGRAM_LEN};
use crate::wire::frame::BODY_LEN;

/// A frame body as the link carries it.
pub type Body = Box<[u8; BODY_LEN]>;

/// The driver's settings.
#[derive(Clone, Debug)]
pub struct UdpLinkConfig {
    /// The link fails after this long without an authenticated datagram while it has
    /// frames unacknowledged.
    pub idle_timeout: Duration,
    /// Frames taken from the application and not yet sent, at most (backpressure).
    pub max_queued_frames: usize,
    /// Received frames waiting for the consumer, at most (beyond: the socket is not read).
    pub max_undelivered: usize,
    /// Send a padding frame (all zeros, which `wire::frame::FrameReader` skips) after this
    /// long without sending: within NAT binding lifetimes (30 s for many home routers'
    /// UDP; 25 s or less), and the idle timeout then finds a dead peer. `None`: never.
    pub keepalive: Option<Duration>,
    /// Deliver frames of no stream (one-frame messages) in the order sent, as TCP does
    /// ([`Session::send_frame_ordered`]); off, each goes up as soon as it arrives.
    pub order_single_frames: bool,
    /// The node's upload limit, charged for the datagrams the session makes on its own
    /// (acknowledgement-only ones and resent frames; fresh frames were claimed when the
    /// link handed them over): while it is in debt the driver sends nothing. `None`: no
    /// limit.
    pub(crate) upload: Option<std::sync::Arc<super::limit::Limiter>>,
}

impl Default for UdpLinkConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(30),
            max_queued_frames: 256,
            max_undelivered: 256,
            keepalive: Some(Duration::from_secs(20)),
            order_single_frames: false,
            upload: None,
        }
    }
}

/// Why a datagram link ended.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum UdpLinkError {
    /// The socket failed (local error).
    #[error("socket: {0}")]
    Io(#[from] io::Error),
    /// The peer broke the protocol (its fault).
    #[error("peer: {0}")]
    Peer(#[from] PeerError),
    /// Nothing authenticated arrived for the idle timeout while frames were unacknowledged.
    #[error("no answer from the peer for {0:?}")]
    Silent(Duration),
    /// A newer session took the peer's address (it handshook again).
    #[error("replaced by a newer session from the same address")]
    Replaced,
}

/// Where a link's datagrams come from and go to.
enum Wire<'a> {
    /// A socket connected to the peer, for this link alone.
    Connected(&'a UdpSocket),
    /// The node's one socket (`udp_endpoint`): datagrams from the peer's address arrive
    /// on the link's channel.
    Shared(&'a mut Registration),
}

impl Wire<'_> {
    /// The next datagram into `buf`.
    async fn recv(&mut self, buf: &mut [u8]) -> Result<usize, UdpLinkError> {
        match self {
            Wire::Connected(socket) => loop {
                match socket.recv(buf).await {
                    Ok(n) => return Ok(n),
                    // An ICMP "port unreachable" for an earlier datagram (the friend's
                    // node restarting): that datagram is lost, as `send` counts it.
                    Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
                    Err(e) => return Err(e.into()),
                }
            },
            Wire::Shared(r) => {
                let d = r.recv().await.ok_or(UdpLinkError::Replaced)?;
                Ok(copy(&d, buf))
            }
        }
    }

    /// A datagram already waiting, if any.
    fn try_recv(&mut self, buf: &mut [u8]) -> Option<usize> {
        match self {
            Wire::Connected(socket) => socket.try_recv(buf).ok(),
            Wire::Shared(r) => r.try_recv().map(|d| copy(&d, buf)),
        }
    }

    async fn send(&self, d: &[u8]) -> io::Result<()> {
        match self {
            Wire::Connected(socket) => send(socket, d).await,
            Wire::Shared(r) => r.send(d).await,
        }
    }

    /// A datagram from the peer's address that the session could not open.
    fn not_ours(&self, d: &[u8]) {
        if let Wire::Shared(r) = self {
            r.not_ours(d.to_vec());
        }
    }
}

/// How often a link's state is traced (`RUST_LOG=pamphlet_node::transport::udp=trace`).
const TRACE_EVERY: Duration = Duration::from_millis(100);

/// One line of a link's sending and receiving state, for tracing where a transfer's time
/// goes (docs/benchmarks.md, "Session 11").
fn trace_session(peer: Option<std::net::SocketAddr>, session: &Session, waiting: usize, undelivered: usize) {
    let s = session.stats();
    let cc = session.congestion();
    tracing::trace!(
        ?peer,
        mode = ?cc.mode,
        window = cc.window(),
        bandwidth = cc.bandwidth() as u64,
        min_rtt_us = cc.min_rtt().map_or(0, |d| d.as_micros() as u64),
        srtt_us = session.rtt().get().as_micros() as u64,
        unacked = session.unacked_frames(),
        queued = session.queued_frames(),
        waiting,
        undelivered,
        sent = s.datagrams_sent,
        ack_only = s.ack_only_sent,
        lost = s.lost,
        resent = s.retransmissions,
        ptos = s.ptos,
        received = s.datagrams_received,
        duplicates = s.duplicate_frames,
        "link state"
    );
}

fn copy(d: &[u8], buf: &mut [u8]) -> usize {
    let n = d.len().min(buf.len());
    buf[..n].copy_from_slice(&d[..n]);
    n
}

/// Runs `session` over `socket` (connected to the peer). Frames from `outgoing` go to the
/// peer; frames from the peer go to `incoming`. Returns the session (for its counters)
/// when `shutdown` turns true, or when `outgoing` is closed and every frame it gave was
/// acknowledged and `incoming` is closed.
pub async fn drive(
    socket: &UdpSocket,
    session: Session,
    outgoing: mpsc::Receiver<Body>,
    incoming: mpsc::Sender<Body>,
    shutdown: watch::Receiver<bool>,
    config: UdpLinkConfig,
) -> Result<Session, UdpLinkError> {
    let peer = socket.peer_addr().ok();
    run(Wire::Connected(socket), peer, session, outgoing, incoming, shutdown, config).await
}

/// Runs a link of the node's shared socket (`udp_endpoint`), as [`drive`]. It also ends
/// with [`UdpLinkError::Replaced`] when a newer session took the peer's address (the
/// friend restarted and handshook again).
pub async fn drive_link(
    link: UdpLink,
    outgoing: mpsc::Receiver<Body>,
    incoming: mpsc::Sender<Body>,
    shutdown: watch::Receiver<bool>,
    config: UdpLinkConfig,
) -> Result<Session, UdpLinkError> {
    let UdpLink { session, mut registration, addr, .. } = link;
    run(Wire::Shared(&mut registration), Some(addr), session, outgoing, incoming, shutdown, config).await
}

async fn run(
    mut wire: Wire<'_>,
    peer: Option<std::net::SocketAddr>,
    mut session: Session,
    mut outgoing: mpsc::Receiver<Body>,
    incoming: mpsc::Sender<Body>,
    mut shutdown: watch::Receiver<bool>,
    config: UdpLinkConfig,
) -> Result<Session, UdpLinkError> {
    let mut buf = vec![0u8; DATAGRAM_LEN + 1];
    let mut undelivered: VecDeque<Body> = VecDeque::new();
    let mut outgoing_open = true;
    let mut last_heard = Instant::now();
    let mut last_sent = Instant::now();
    // The upload limit's claim for the session's own datagrams: none leaves before it is
    // granted.
    let mut claim: Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>> = None;
    // The session's own datagrams (acks, resent frames) already charged to the limit.
    let mut charged = 0u64;
    // Set by the claim's branch of the select below, which cannot drop the claim it polls.
    let mut granted = false;
    let mut traced = Instant::now();
    loop {
        let now = Instant::now();
        if now.duration_since(traced) >= TRACE_EVERY && tracing::enabled!(tracing::Level::TRACE) {
            traced = now;
            trace_session(peer, &session, outgoing.len(), undelivered.len());
        }
        if session.poll_timeout().is_some_and(|t| t <= now) {
            session.on_timeout(now);
        }
        // Take waiting frames before sending, so they leave in this turn: taken after, a
        // frame waited for the next wake-up, which on a quiet link is the idle deadline.
        while outgoing_open && session.queued_frames() < config.max_queued_frames {
            match outgoing.try_recv() {
                Ok(f) => send_frame(&mut session, &f, now, &mut last_heard, config.order_single_frames),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => outgoing_open = false,
            }
        }
        // Keepalive: a padding frame after `keepalive` without sending anything, so the
        // NAT bindings on the path stay open and a dead peer is found (the frame goes
        // unacknowledged, and the idle timeout runs).
        if config.keepalive.is_some_and(|k| now.duration_since(last_sent) >= k) && session.unacked_frames() == 0 {
            send_frame(&mut session, &[0u8; BODY_LEN], now, &mut last_heard, config.order_single_frames);
        }
        if claim.is_none() {
            while let Some(d) = session.poll_transmit(now) {
                wire.send(&d).await?;
                last_sent = now;
            }
            // What the session sent beyond the frames the link claimed (acknowledgements,
            // resent frames) is claimed on the upload limit too, in the limit's
            // first-come turn with every link's data, and nothing more leaves this link
            // until it is granted: the peer, unacknowledged, slows down (a download's
            // acknowledgements are part of the upload it is limited to), and the other
            // links' data keeps its turns (a debt paid back first-come would let a
            // flooding friend's acknowledgements take every turn).
            let made = session.stats().ack_only_sent + session.stats().retransmissions;
            if let Some(limit) = config.upload.clone().filter(|_| made > charged) {
                // One claim per datagram, as the links claim their frames: the turns are
                // shared per datagram, not per claim (one claim for a batch of
                // acknowledgements held the turn as long as the whole batch's credit took).
                let datagrams = made - charged;
                claim = Some(Box::pin(async move {
                    for _ in 0..datagrams {
                        limit.send(DATAGRAM_LEN, false).await;
                    }
                }));
            }
            charged = made;
        }
        while let Some(f) = session.recv_frame() {
            undelivered.push_back(f);
        }
        while let Some(f) = undelivered.pop_front() {
            match incoming.try_send(f) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(f)) => {
                    undelivered.push_front(f);
                    break;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => undelivered.clear(),
            }
        }
        if *shutdown.borrow() || (!outgoing_open && session.unacked_frames() == 0 && incoming.is_closed()) {
            return Ok(session);
        }
        if session.unacked_frames() > 0 && now.duration_since(last_heard) > config.idle_timeout {
            return Err(UdpLinkError::Silent(config.idle_timeout));
        }
        // The pacer's deadline may already be due (a full window waits for acks instead).
        let mut wake = session.poll_timeout().unwrap_or(now + config.idle_timeout);
        // The next keepalive, if none is in flight (one in flight is the loss timers' and
        // the idle timeout's business; its due time would be past and spin the loop).
        if let Some(k) = config.keepalive.filter(|_| session.unacked_frames() == 0) {
            wake = wake.min(last_sent + k);
        }
        let may_take = outgoing_open && session.queued_frames() < config.max_queued_frames;
        let may_read = undelivered.len() < config.max_undelivered;
        tokio::select! {
            r = wire.recv(&mut buf), if may_read => {
                let now = Instant::now();
                let n = match r {
                    // The endpoint stopped with the node: not a replacement.
                    Err(UdpLinkError::Replaced) if *shutdown.borrow() => return Ok(session),
                    r => r?,
                };
                take(&mut session, &wire, now, &buf[..n], &mut last_heard)?;
                // Read whatever else already arrived before sending (fewer wake-ups).
                for _ in 0..64 {
                    let Some(n) = wire.try_recv(&mut buf) else { break };
                    take(&mut session, &wire, now, &buf[..n], &mut last_heard)?;
                }
            }
            f = outgoing.recv(), if may_take => match f {
                Some(f) => send_frame(&mut session, &f, Instant::now(), &mut last_heard, config.order_single_frames),
                None => outgoing_open = false,
            },
            p = incoming.reserve(), if !undelivered.is_empty() => {
                if let (Ok(p), Some(f)) = (p, undelivered.pop_front()) {
                    p.send(f);
                }
            }
            _ = shutdown.changed() => {}
            () = async { if let Some(c) = claim.as_mut() { c.await } }, if claim.is_some() => granted = true,
            _ = tokio::time::sleep_until(wake.into()), if wake > now => {}
        }
        if std::mem::take(&mut granted) {
            claim = None;
        }
    }
}

/// Hands one datagram to the session: an authenticated one is news from the peer, one
/// anybody could have sent is dropped (one that did not open goes back to the endpoint:
/// perhaps a new handshake from the same address), a protocol breach by the peer ends
/// the link.
fn take(
    session: &mut Session,
    wire: &Wire<'_>,
    now: Instant,
    datagram: &[u8],
    last_heard: &mut Instant,
) -> Result<(), UdpLinkError> {
    match session.on_datagram(now, datagram) {
        Ok(()) => *last_heard = now,
        Err(DatagramError::Dropped(Dropped::Decrypt)) => wire.not_ours(datagram),
        Err(DatagramError::Dropped(_)) => {}
        Err(DatagramError::Peer(e)) => return Err(e.into()),
    }
    Ok(())
}

/// Gives the session a frame to send. If nothing was waiting for an answer, the silence
/// the idle timeout measures starts now, not at the last datagram heard (which may be long
/// ago on a link that was quiet: it would fail `Silent` at its first new frame).
fn send_frame(session: &mut Session, frame: &[u8; BODY_LEN], now: Instant, last_heard: &mut Instant, ordered: bool) {
    if session.unacked_frames() == 0 {
        *last_heard = now;
    }
    if ordered {
        session.send_frame_ordered(frame);
    } else {
        session.send_frame(frame);
    }
}

/// Sends one datagram, waiting while the socket buffer is full.
async fn send(socket: &UdpSocket, d: &[u8]) -> io::Result<()> {
    loop {
        match socket.try_send(d) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => socket.writable().await?,
            // The peer's port is closed for now (ICMP unreachable): the datagram is lost,
            // and loss recovery resends its frame.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::datagram::{Config, DatagramCipher};

    /// 10 MiB of frames through two drivers on 127.0.0.1: all arrive, intact, once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ten_mib_cross_loopback() {
        cross_loopback(10, Config::default()).await;
    }

    /// The same, 4 MiB, with each direction rekeying every 256 datagrams: every frame still
    /// arrives intact, once, and none is dropped.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn four_mib_cross_loopback_across_rekeys() {
        let (a, b) = cross_loopback(4, Config { rekey_after: 256, ..Config::default() }).await;
        assert!(a.stats().rekeys_sent >= 10, "{:?}", a.stats());
        assert!(b.stats().rekeys_received + 1 >= a.stats().rekeys_sent, "{:?}", b.stats());
    }

    /// `mib` MiB of frames from `a` to `b` through two drivers on 127.0.0.1; returns both
    /// sessions after.
    async fn cross_loopback(mib: u64, config: Config) -> (Session, Session) {
        let frames: u64 = mib * 1024 * 1024 / BODY_LEN as u64;
        let (sa, sb, a, b) = pair_with(config).await;
        let (a_out, a_out_rx) = mpsc::channel::<Body>(64);
        let (a_in, a_in_rx) = mpsc::channel::<Body>(64);
        drop(a_in_rx); // `a` receives nothing: it may end once all it sent is acknowledged
        let (b_out, b_out_rx) = mpsc::channel::<Body>(64);
        let (b_in, mut b_in_rx) = mpsc::channel::<Body>(64);
        let (stop, stopped) = watch::channel(false);
        drop(b_out);
        let cfg = UdpLinkConfig::default();
        let (s2, c2) = (stopped.clone(), cfg.clone());
        let ta = tokio::spawn(async move { drive(&sa, a, a_out_rx, a_in, s2, c2).await });
        let tb = tokio::spawn(async move { drive(&sb, b, b_out_rx, b_in, stopped, cfg).await });
        let producer = tokio::spawn(async move {
            for i in 0..frames {
                let mut f = Box::new([0u8; BODY_LEN]);
                f[1..3].copy_from_slice(&((i % 4) as u16).to_be_bytes());
                f[5..13].copy_from_slice(&i.to_be_bytes());
                f[13..].fill(i as u8);
                a_out.send(f).await.unwrap();
            }
        });
        let mut seen = vec![false; frames as usize];
        for _ in 0..frames {
            let f = b_in_rx.recv().await.unwrap();
            let i = u64::from_be_bytes(f[5..13].try_into().unwrap());
            assert!(!seen[i as usize], "frame {i} twice");
            seen[i as usize] = true;
            assert!(f[13..].iter().all(|&x| x == i as u8), "frame {i} altered");
        }
        producer.await.unwrap();
        let a = ta.await.unwrap().unwrap();
        stop.send(true).unwrap();
        let b = tb.await.unwrap().unwrap();
        assert_eq!(a.unacked_frames(), 0);
        assert_eq!(b.stats().dropped, 0);
        (a, b)
    }

    /// Two connected sockets on 127.0.0.1 and a session each.
    async fn pair() -> (UdpSocket, UdpSocket, Session, Session) {
        pair_with(Config::default()).await
    }

    /// As [`pair`], with the sessions' `config`.
    async fn pair_with(config: Config) -> (UdpSocket, UdpSocket, Session, Session) {
        let (ca, cb) = DatagramCipher::loopback_pair().unwrap();
        let sa = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let sb = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        sa.connect(sb.local_addr().unwrap()).await.unwrap();
        sb.connect(sa.local_addr().unwrap()).await.unwrap();
        let now = Instant::now();
        (sa, sb, Session::new(ca, now, config.clone()), Session::new(cb, now, config))
    }

    fn frame(i: u64) -> Body {
        let mut f = Box::new([0u8; BODY_LEN]);
        f[5..13].copy_from_slice(&i.to_be_bytes());
        f
    }

    /// A link quiet for longer than the idle timeout sends again: the silence counts from
    /// the new frame, not from the last datagram heard (the first new frame failed the
    /// link `Silent` before), and a frame taken while the link was quiet leaves at once
    /// (it waited for the next wake-up, the idle deadline, and the link failed `Silent`).
    #[tokio::test]
    async fn a_quiet_link_that_sends_again_is_not_silent() {
        let (sa, sb, a, b) = pair().await;
        let cfg = UdpLinkConfig { idle_timeout: Duration::from_millis(300), ..UdpLinkConfig::default() };
        let (a_out, a_out_rx) = mpsc::channel::<Body>(8);
        let (a_in, _a_in_rx) = mpsc::channel::<Body>(8);
        let (_b_out, b_out_rx) = mpsc::channel::<Body>(8);
        let (b_in, mut b_in_rx) = mpsc::channel::<Body>(8);
        let (stop, stopped) = watch::channel(false);
        let (s2, c2) = (stopped.clone(), cfg.clone());
        let ta = tokio::spawn(async move { drive(&sa, a, a_out_rx, a_in, s2, c2).await });
        let tb = tokio::spawn(async move { drive(&sb, b, b_out_rx, b_in, stopped, cfg).await });
        a_out.send(frame(1)).await.unwrap();
        assert_eq!(b_in_rx.recv().await.unwrap()[5..13], 1u64.to_be_bytes());
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(!ta.is_finished(), "the quiet link ended: {:?}", ta.await.unwrap().err());
        a_out.send(frame(2)).await.unwrap();
        assert_eq!(b_in_rx.recv().await.unwrap()[5..13], 2u64.to_be_bytes());
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!ta.is_finished(), "the sender's link ended: {:?}", ta.await.unwrap().err());
        stop.send(true).unwrap();
        ta.await.unwrap().unwrap();
        tb.await.unwrap().unwrap();
    }

    /// A friend whose port is closed (its node restarting) makes the kernel answer ICMP
    /// "port unreachable", which a connected socket reports on a later receive: a loss, so
    /// the link ends only as any unanswered link does (`Silent`), not at once with `Io`.
    #[tokio::test]
    async fn a_closed_port_is_a_loss_not_a_socket_failure() {
        let (sa, sb, a, _b) = pair().await;
        drop(sb);
        let cfg = UdpLinkConfig { idle_timeout: Duration::from_millis(500), ..UdpLinkConfig::default() };
        let (a_out, a_out_rx) = mpsc::channel::<Body>(8);
        let (a_in, _a_in_rx) = mpsc::channel::<Body>(8);
        let (_stop, stopped) = watch::channel(false);
        let ta = tokio::spawn(async move { drive(&sa, a, a_out_rx, a_in, stopped, cfg).await });
        for i in 0..4 {
            a_out.send(frame(i)).await.unwrap();
        }
        let ended = tokio::time::timeout(Duration::from_secs(10), ta).await.expect("the link ends").unwrap();
        assert!(matches!(ended, Err(UdpLinkError::Silent(_))), "{:?}", ended.err());
    }

    /// A consumer that stops taking frames stops the sender: the receiving driver holds at
    /// most `max_undelivered` of them and then leaves the socket unread, so the sender's
    /// window fills and its queue with it (before, the receiver read and acknowledged
    /// everything, holding all of it in memory, and the sender never stopped).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stalled_consumer_stops_the_sender() {
        let (sa, sb, a, b) = pair().await;
        let cfg = UdpLinkConfig { max_undelivered: 16, max_queued_frames: 16, ..UdpLinkConfig::default() };
        let (a_out, a_out_rx) = mpsc::channel::<Body>(8);
        let (a_in, _a_in_rx) = mpsc::channel::<Body>(8);
        let (_b_out, b_out_rx) = mpsc::channel::<Body>(8);
        let (b_in, _b_in_rx) = mpsc::channel::<Body>(8); // never read
        let (stop, stopped) = watch::channel(false);
        let (s2, c2) = (stopped.clone(), cfg.clone());
        let ta = tokio::spawn(async move { drive(&sa, a, a_out_rx, a_in, s2, c2).await });
        let tb = tokio::spawn(async move { drive(&sb, b, b_out_rx, b_in, stopped, cfg).await });
        let total = 3_000u64;
        let mut taken = 0;
        while taken < total {
            match tokio::time::timeout(Duration::from_secs(1), a_out.send(frame(taken))).await {
                Ok(r) => {
                    r.unwrap();
                    taken += 1;
                }
                Err(_) => break, // the sender has stopped taking frames
            }
        }
        assert!(taken < total, "the sender never stopped: all {total} frames taken with nobody reading");
        stop.send(true).unwrap();
        ta.await.unwrap().unwrap();
        tb.await.unwrap().unwrap();
    }

    /// An idle link sends a padding frame every `keepalive` (so NAT bindings stay open)
    /// and a friend gone silent is then found by the idle timeout, though nothing was
    /// being sent: without keepalives an idle link to a dead friend never ended.
    #[tokio::test]
    async fn an_idle_link_keeps_alive_and_finds_a_dead_peer() {
        let (sa, sb, a, b) = pair().await;
        let cfg = UdpLinkConfig {
            keepalive: Some(Duration::from_millis(100)),
            idle_timeout: Duration::from_millis(400),
            ..UdpLinkConfig::default()
        };
        let (_a_out, a_out_rx) = mpsc::channel::<Body>(8);
        let (a_in, _a_in_rx) = mpsc::channel::<Body>(8);
        let (_b_out, b_out_rx) = mpsc::channel::<Body>(8);
        let (b_in, mut b_in_rx) = mpsc::channel::<Body>(8);
        let (_stop_a, stopped_a) = watch::channel(false);
        let (stop_b, stopped_b) = watch::channel(false);
        let c2 = cfg.clone();
        let ta = tokio::spawn(async move { drive(&sa, a, a_out_rx, a_in, stopped_a, c2).await });
        let tb = tokio::spawn(async move { drive(&sb, b, b_out_rx, b_in, stopped_b, cfg).await });
        for _ in 0..3 {
            let f = tokio::time::timeout(Duration::from_secs(5), b_in_rx.recv()).await.expect("a keepalive");
            assert_eq!(*f.unwrap(), [0u8; BODY_LEN], "keepalives are padding frames");
        }
        stop_b.send(true).unwrap();
        tb.await.unwrap().unwrap();
        let ended = tokio::time::timeout(Duration::from_secs(10), ta).await.expect("the link ends").unwrap();
        assert!(matches!(ended, Err(UdpLinkError::Silent(_))), "{:?}", ended.err());
    }
}
