//! One UDP socket for every datagram link of a node (issue 18): the handshake over
//! datagrams (`link::datagram::handshake`) and the demultiplexing of datagrams by source
//! address to sessions, each driven by `udp::drive_link` in its own task.
//!
//! ```text
//!                 ┌─ address with a session ─► its channel ─► drive_link (opens it)
//! recv_from ──────┤     (a copy of the message 1 it answered: message 2 again)
//!                 ├─ address being dialled ──► the dial (message 2?)
//!                 └─ any other address ──────► the handshake queue ─► respond()
//!  a datagram a session or a dial cannot open goes on down this list (a friend that
//!  restarted sends a new message 1 from the address of its old session)
//! ```
//!
//! Nothing in a datagram says which kind it is (docs/wire.md, "Datagram links"), so the
//! receiver tries what the source address leads it to expect, cheapest first.
//!
//! Bounds: the handshake queue holds at most `max_pending_handshakes` datagrams, at most
//! `max_pending_per_ip` from one IP address; beyond, a datagram is dropped (the responder
//! keeps no state per handshake, so what is bounded is the work waiting: a flood from one
//! address cannot crowd out the others, and an honest initiator resends). Each session's
//! channel holds at most `session_queue` datagrams; beyond, they are dropped as the kernel
//! would drop them, and loss recovery resends.
//!
//! Simultaneous dials: two friends dialling each other at once would each refuse the
//! other's message 1 as not the message 2 it waits for, or answer it and end with two
//! unrelated half-links. The rule is the TCP link's (`tie.rs`: the link dialled by the
//! smaller key wins): a node dialling an address refuses a message 1 from there by the
//! friend it dials if its own key is the smaller, and otherwise answers it and drops its
//! own dial ([`DialError::Superseded`]; the link arrives as [`Accepted`]).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

use super::friends::unix_now;
use crate::link::datagram::handshake::{self, HandshakeConfig, Initiator, Reply};
use crate::link::datagram::{Config, Session, DATAGRAM_LEN};
use crate::link::noise::ReplayCache;
use crate::link::{PublicKey, SessionError, StaticKeypair};

/// Who may complete a handshake with us (a friend, or a stranger an opennet node admits),
/// from which IP address.
pub type IsFriend = Arc<dyn Fn(&PublicKey, IpAddr) -> bool + Send + Sync>;

/// The endpoint's settings.
#[derive(Clone, Debug)]
pub struct EndpointConfig {
    /// This node's static key.
    pub keypair: StaticKeypair,
    /// The initiator's resend schedule and timeout.
    pub handshake: HandshakeConfig,
    /// The session settings of every link.
    pub session: Config,
    /// Datagrams waiting for the responder, at most, in all.
    pub max_pending_handshakes: usize,
    /// Datagrams waiting for the responder from one IP address, at most.
    pub max_pending_per_ip: usize,
    /// Datagrams buffered for one session's task, at most.
    pub session_queue: usize,
    /// Accepted links waiting for the owner, at most (beyond, a new one is refused).
    pub accept_capacity: usize,
}

impl EndpointConfig {
    /// Defaults: the TCP listener's bounds (64 pending, 8 per address), 1024 datagrams
    /// (about one 80 ms round trip at 100 Mbit/s) per session.
    pub fn new(keypair: StaticKeypair) -> Self {
        Self {
            keypair,
            handshake: HandshakeConfig::default(),
            session: Config::default(),
            max_pending_handshakes: 64,
            max_pending_per_ip: 8,
            session_queue: 1024,
            accept_capacity: 64,
        }
    }
}

/// An incoming link whose message 1 we answered.
#[derive(Debug)]
pub struct Accepted {
    /// The initiator's static key.
    pub peer: PublicKey,
    /// The link, ready for `udp::drive_link`.
    pub link: UdpLink,
}

/// Why a dial failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DialError {
    /// No message 2 came back within the handshake timeout (an unknown key, a wrong
    /// address, or no node there: silence looks the same).
    #[error("no answer to the handshake")]
    Unanswered,
    /// The friend dialled us at the same time, and its dial won (the link arrives as an
    /// [`Accepted`]).
    #[error("the friend's own dial won the tie")]
    Superseded,
    /// The endpoint is shutting down.
    #[error("shutting down")]
    Shutdown,
    /// A local error (the socket, or the handshake's own keys).
    #[error("local: {0}")]
    Local(String),
}

/// Counters (tests, status).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// Sessions registered now.
    pub sessions: usize,
    /// Dials under way now.
    pub dials: usize,
    /// Datagrams waiting for the responder now.
    pub pending: usize,
    /// Datagrams dropped because the handshake queue was full (per address or in all).
    pub pending_dropped: u64,
    /// Datagrams dropped because a session's channel was full.
    pub session_dropped: u64,
    /// Datagrams of the wrong length dropped before any work.
    pub wrong_length: u64,
    /// Messages 1 refused (did not decrypt, unknown key, stale, replayed).
    pub refused: u64,
    /// Messages 2 sent again for a resent message 1.
    pub replies_resent: u64,
    /// Datagrams written to the socket, of every kind (handshakes, frames, resent frames,
    /// acknowledgements, keepalives): what the node's upload on UDP really is.
    pub datagrams_sent: u64,
}

/// Where one address's datagrams go.
#[derive(Debug)]
struct SessionSlot {
    tx: mpsc::Sender<Vec<u8>>,
    /// The message 2 we sent, if we answered this link's handshake.
    reply: Option<Reply>,
    generation: u64,
    /// The friend at the other end, and when we dialled it (if we did).
    peer: PublicKey,
    dialled_at: Option<Instant>,
}

#[derive(Debug)]
struct DialSlot {
    tx: mpsc::Sender<Vec<u8>>,
    key: PublicKey,
    generation: u64,
}

#[derive(Debug, Default)]
struct Table {
    sessions: HashMap<SocketAddr, SessionSlot>,
    dials: HashMap<SocketAddr, DialSlot>,
    pending_per_ip: HashMap<IpAddr, usize>,
    pending: usize,
    next_generation: u64,
}

#[derive(Default)]
struct Counters {
    pending_dropped: AtomicU64,
    session_dropped: AtomicU64,
    wrong_length: AtomicU64,
    refused: AtomicU64,
    replies_resent: AtomicU64,
    datagrams_sent: AtomicU64,
}

struct Inner {
    socket: UdpSocket,
    local_addr: SocketAddr,
    config: EndpointConfig,
    is_friend: IsFriend,
    replay: Arc<Mutex<ReplayCache>>,
    table: Mutex<Table>,
    handshakes: mpsc::Sender<(SocketAddr, Vec<u8>)>,
    accepted: mpsc::Sender<Accepted>,
    counters: Counters,
    shutdown: watch::Receiver<bool>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpEndpoint").field("local_addr", &self.local_addr).finish_non_exhaustive()
    }
}

/// The node's UDP socket and its table of sessions; cheap to clone.
#[derive(Clone, Debug)]
pub struct UdpEndpoint {
    inner: Arc<Inner>,
}

impl Inner {
    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends at once or not at all (a full socket buffer drops it: the sender resends).
    fn send_now(&self, to: SocketAddr, d: &[u8]) {
        if self.socket.try_send_to(d, to).is_ok() {
            self.counters.datagrams_sent.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Takes one datagram from the socket.
    fn dispatch(&self, from: SocketAddr, d: &[u8]) {
        if d.len() != DATAGRAM_LEN {
            self.counters.wrong_length.fetch_add(1, Ordering::Relaxed);
            return;
        }
        {
            let t = self.table();
            if let Some(s) = t.sessions.get(&from) {
                if let Some(reply) = s.reply.as_ref().filter(|r| r.answers(d)) {
                    self.counters.replies_resent.fetch_add(1, Ordering::Relaxed);
                    self.send_now(from, reply.datagram());
                } else if s.tx.try_send(d.to_vec()).is_err() {
                    self.counters.session_dropped.fetch_add(1, Ordering::Relaxed);
                }
                return;
            }
        }
        self.unclaimed(from, d.to_vec(), false);
    }

    /// A datagram no session took: a dial's message 2, else a message 1. `dial_tried`: the
    /// dial at this address already refused it.
    fn unclaimed(&self, from: SocketAddr, d: Vec<u8>, dial_tried: bool) {
        let mut t = self.table();
        if !dial_tried {
            if let Some(dial) = t.dials.get(&from) {
                let _ = dial.tx.try_send(d);
                return;
            }
        }
        let per_ip = t.pending_per_ip.get(&from.ip()).copied().unwrap_or(0);
        if t.pending >= self.config.max_pending_handshakes || per_ip >= self.config.max_pending_per_ip {
            self.counters.pending_dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if self.handshakes.try_send((from, d)).is_err() {
            self.counters.pending_dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        t.pending += 1;
        *t.pending_per_ip.entry(from.ip()).or_default() += 1;
    }

    /// Registers a session at `addr` (replacing any there: its channel closes and its
    /// link ends), returning the link's half.
    fn register(
        self: &Arc<Self>,
        addr: SocketAddr,
        peer: PublicKey,
        reply: Option<Reply>,
        t: &mut Table,
    ) -> Registration {
        t.next_generation += 1;
        let generation = t.next_generation;
        let (tx, rx) = mpsc::channel(self.config.session_queue.max(1));
        let dialled_at = reply.is_none().then(Instant::now);
        t.sessions.insert(addr, SessionSlot { tx, reply, generation, peer, dialled_at });
        Registration { endpoint: self.clone(), addr, generation, rx }
    }

    /// The responder: one queued datagram as message 1.
    fn respond(self: &Arc<Self>, from: SocketAddr, d: &[u8]) {
        let (dialling, dialled, holder) = {
            let t = self.table();
            let fresh = |s: &SessionSlot| s.dialled_at.is_some_and(|at| at.elapsed() < self.config.handshake.timeout);
            let holder = t.sessions.get(&from).map(|s| s.peer);
            (t.dials.get(&from).map(|s| s.key), t.sessions.get(&from).filter(|s| fresh(s)).map(|s| s.peer), holder)
        };
        let ours = *self.config.keypair.public();
        // A friend we are dialling at this address, or dialled within the handshake
        // timeout (its message 1 crossed our dial's and arrived late): the dial of the
        // smaller key wins. Later, a message 1 from a session's address is the friend
        // handshaking again (it restarted) and replaces the session.
        let ours_wins = |k: &PublicKey| ours < *k && (dialling == Some(*k) || dialled == Some(*k));
        // Only the key that holds the address's session may replace it (a restart keeps
        // the key): a source address is not authenticated, so another friend, or with
        // strangers admitted anybody, spoofing a friend's address would otherwise take
        // over that friend's session with a handshake of its own, and the friend's
        // datagrams would stop opening until its link timed out.
        let not_taken = |k: &PublicKey| holder.is_none_or(|h| h == *k);
        let admit = |k: &PublicKey| (self.is_friend)(k, from.ip()) && !ours_wins(k) && not_taken(k);
        let answer = {
            let mut replay = self.replay.lock().unwrap_or_else(|p| p.into_inner());
            handshake::respond(&self.config.keypair, d, unix_now(), &mut replay, admit)
        };
        let answer = match answer {
            Ok(a) => a,
            Err(e) => {
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(error = ?e, %from, "datagram handshake refused");
                return;
            }
        };
        let (reg, msg2) = {
            let mut t = self.table();
            if t.dials.get(&from).is_some_and(|s| s.key == answer.peer) {
                t.dials.remove(&from); // our dial yields: its channel closes
            }
            let msg2 = answer.reply.datagram().to_vec();
            (self.register(from, answer.peer, Some(answer.reply), &mut t), msg2)
        };
        self.send_now(from, &msg2);
        let session = Session::new(answer.cipher, Instant::now(), self.config.session.clone());
        let link = UdpLink { peer: answer.peer, addr: from, session, registration: reg };
        if let Err(e) = self.accepted.try_send(Accepted { peer: answer.peer, link }) {
            tracing::warn!(error = %e, "accepted datagram link dropped: the owner is not taking them");
        }
    }
}

impl UdpEndpoint {
    /// Binds `addr` (the TCP listener's address and port) and starts the receive and
    /// responder tasks, which end when `shutdown` turns true. `replay` is shared with the
    /// TCP listener: a message 1 is accepted once, whichever way it came.
    pub async fn bind(
        addr: SocketAddr,
        config: EndpointConfig,
        is_friend: IsFriend,
        replay: Arc<Mutex<ReplayCache>>,
        shutdown: watch::Receiver<bool>,
    ) -> io::Result<(Self, mpsc::Receiver<Accepted>)> {
        let socket = UdpSocket::bind(addr).await?;
        enlarge_buffers(&socket)?;
        let local_addr = socket.local_addr()?;
        let (handshakes, handshakes_rx) = mpsc::channel(config.max_pending_handshakes.max(1));
        let (accepted, accepted_rx) = mpsc::channel(config.accept_capacity.max(1));
        let inner = Arc::new(Inner {
            socket,
            local_addr,
            config,
            is_friend,
            replay,
            table: Mutex::new(Table::default()),
            handshakes,
            accepted,
            counters: Counters::default(),
            shutdown,
        });
        tokio::spawn(receive(inner.clone()));
        tokio::spawn(responder(inner.clone(), handshakes_rx));
        Ok((Self { inner }, accepted_rx))
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// Counters, now.
    pub fn stats(&self) -> EndpointStats {
        let (sessions, dials, pending) = {
            let t = self.inner.table();
            (t.sessions.len(), t.dials.len(), t.pending)
        };
        let c = &self.inner.counters;
        EndpointStats {
            sessions,
            dials,
            pending,
            pending_dropped: c.pending_dropped.load(Ordering::Relaxed),
            session_dropped: c.session_dropped.load(Ordering::Relaxed),
            wrong_length: c.wrong_length.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            replies_resent: c.replies_resent.load(Ordering::Relaxed),
            datagrams_sent: c.datagrams_sent.load(Ordering::Relaxed),
        }
    }

    /// Handshakes with the node holding `remote` at `addr`: message 1, resent with backoff
    /// until message 2 or the handshake timeout.
    pub async fn dial(&self, addr: SocketAddr, remote: &PublicKey) -> Result<UdpLink, DialError> {
        let inner = &self.inner;
        let mut shutdown = inner.shutdown.clone();
        let local = |e: SessionError| DialError::Local(e.to_string());
        let mut init =
            Initiator::start(&inner.config.keypair, remote, unix_now(), Instant::now(), inner.config.handshake.clone())
                .map_err(local)?;
        let (tx, mut rx) = mpsc::channel(8);
        let generation = {
            let mut t = inner.table();
            t.next_generation += 1;
            let generation = t.next_generation;
            t.dials.insert(addr, DialSlot { tx, key: *remote, generation });
            generation
        };
        let _dial = DialGuard { inner: inner.clone(), addr, generation };
        loop {
            let now = Instant::now();
            if init.expired(now) {
                return Err(DialError::Unanswered);
            }
            if let Some(m) = init.poll_transmit(now) {
                match inner.socket.send_to(m, addr).await {
                    Ok(_) => {
                        inner.counters.datagrams_sent.fetch_add(1, Ordering::Relaxed);
                    }
                    // Nobody listens there now (ICMP port unreachable): keep trying until
                    // the timeout, as for silence.
                    Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
                    Err(e) => return Err(DialError::Local(e.to_string())),
                }
            }
            let wake = init.poll_timeout();
            tokio::select! {
                d = rx.recv() => match d {
                    None => return Err(DialError::Superseded),
                    Some(d) => match init.on_datagram(&d) {
                        Ok(()) => break,
                        Err(_) => inner.unclaimed(addr, d, true),
                    },
                },
                _ = tokio::time::sleep_until(wake.into()) => {}
                _ = shutdown.wait_for(|s| *s) => return Err(DialError::Shutdown),
            }
        }
        let cipher = init.into_cipher().map_err(local)?;
        let registration = {
            let mut t = inner.table();
            if t.dials.get(&addr).is_some_and(|s| s.generation == generation) {
                t.dials.remove(&addr);
            }
            inner.register(addr, *remote, None, &mut t)
        };
        let session = Session::new(cipher, Instant::now(), inner.config.session.clone());
        Ok(UdpLink { peer: *remote, addr, session, registration })
    }
}

/// Removes a dial's slot when the dial ends, unless another took its place.
struct DialGuard {
    inner: Arc<Inner>,
    addr: SocketAddr,
    generation: u64,
}

impl Drop for DialGuard {
    fn drop(&mut self) {
        let mut t = self.inner.table();
        if t.dials.get(&self.addr).is_some_and(|s| s.generation == self.generation) {
            t.dials.remove(&self.addr);
        }
    }
}

/// A session's place in the table: its incoming datagrams, and its removal when the link
/// ends (unless a newer session took the address).
#[derive(Debug)]
pub(crate) struct Registration {
    endpoint: Arc<Inner>,
    addr: SocketAddr,
    generation: u64,
    rx: mpsc::Receiver<Vec<u8>>,
}

impl Registration {
    /// The next datagram from the peer's address; `None` once a newer session replaced
    /// this one (or the endpoint stopped).
    pub(crate) async fn recv(&mut self) -> Option<Vec<u8>> {
        self.rx.recv().await
    }

    /// A datagram already waiting.
    pub(crate) fn try_recv(&mut self) -> Option<Vec<u8>> {
        self.rx.try_recv().ok()
    }

    /// Sends one datagram to the peer.
    pub(crate) async fn send(&self, d: &[u8]) -> io::Result<()> {
        let socket = &self.endpoint.socket;
        loop {
            match socket.try_send_to(d, self.addr) {
                Ok(_) => {
                    self.endpoint.counters.datagrams_sent.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => socket.writable().await?,
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// A datagram from the peer's address that the session could not open: perhaps the
    /// friend restarted and this is its new message 1 (or a dial's message 2).
    pub(crate) fn not_ours(&self, d: Vec<u8>) {
        self.endpoint.unclaimed(self.addr, d, false);
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut t = self.endpoint.table();
        if t.sessions.get(&self.addr).is_some_and(|s| s.generation == self.generation) {
            t.sessions.remove(&self.addr);
        }
    }
}

/// One datagram link, ready for `udp::drive_link`.
#[derive(Debug)]
pub struct UdpLink {
    /// The friend's static key.
    pub peer: PublicKey,
    /// Its address.
    pub addr: SocketAddr,
    /// The session.
    pub session: Session,
    pub(crate) registration: Registration,
}

impl UdpLink {
    /// Whether this link still holds its address at the endpoint (a newer session from
    /// the same address replaces it: then its driver ends `Replaced`).
    pub fn is_current(&self) -> bool {
        self.current()()
    }

    /// [`UdpLink::is_current`], to ask later (after the link moved into its driver).
    pub fn current(&self) -> impl Fn() -> bool + Send + Sync + 'static {
        let (endpoint, addr, generation) =
            (self.registration.endpoint.clone(), self.registration.addr, self.registration.generation);
        move || endpoint.table().sessions.get(&addr).is_some_and(|s| s.generation == generation)
    }
}

/// Socket buffer bytes asked for (the kernel caps them at `net.core.rmem_max` /
/// `wmem_max`, 4 MiB here, and doubles them for its bookkeeping).
pub const SOCKET_BUFFER: usize = 4 << 20;

/// Enlarges the socket's receive and send buffers to [`SOCKET_BUFFER`]: the default
/// (208 KiB, 180 datagrams) overflowed whenever the receiving task fell a few milliseconds
/// behind, and every overflow is a loss the sender must detect and repair.
pub fn enlarge_buffers(socket: &UdpSocket) -> io::Result<()> {
    use nix::sys::socket::getsockopt;
    use nix::sys::socket::{setsockopt, sockopt};
    setsockopt(socket, sockopt::RcvBuf, &SOCKET_BUFFER).map_err(io::Error::from)?;
    setsockopt(socket, sockopt::SndBuf, &SOCKET_BUFFER).map_err(io::Error::from)?;
    // The kernel caps the request silently at rmem_max / wmem_max (208 KiB on a stock
    // Linux) and reports twice what it applied: say so when the cap bit.
    let got = getsockopt(socket, sockopt::RcvBuf).map_err(io::Error::from)?;
    if got < SOCKET_BUFFER {
        tracing::warn!(
            asked = SOCKET_BUFFER,
            got = got / 2,
            "UDP receive buffer capped by net.core.rmem_max: datagrams may be dropped under load"
        );
    }
    Ok(())
}

/// How long the receive task pauses after a socket error that is not the peer's (rather
/// than spinning on it).
const RECV_ERROR_PAUSE: Duration = Duration::from_millis(50);

async fn receive(inner: Arc<Inner>) {
    let mut shutdown = inner.shutdown.clone();
    let mut buf = vec![0u8; 2048];
    loop {
        let r = tokio::select! {
            r = inner.socket.recv_from(&mut buf) => r,
            _ = shutdown.wait_for(|s| *s) => break,
        };
        match r {
            Ok((n, from)) => inner.dispatch(from, &buf[..n]),
            // An ICMP error for an earlier datagram: that datagram was lost, no more.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
            Err(e) => {
                tracing::debug!(error = %e, "UDP receive failed");
                tokio::select! {
                    _ = tokio::time::sleep(RECV_ERROR_PAUSE) => {}
                    _ = shutdown.wait_for(|s| *s) => break,
                }
            }
        }
    }
    // Closing every session's channel ends its link.
    let mut t = inner.table();
    t.sessions.clear();
    t.dials.clear();
}

async fn responder(inner: Arc<Inner>, mut rx: mpsc::Receiver<(SocketAddr, Vec<u8>)>) {
    let mut shutdown = inner.shutdown.clone();
    loop {
        let (from, d) = tokio::select! {
            m = rx.recv() => match m { Some(m) => m, None => return },
            _ = shutdown.wait_for(|s| *s) => return,
        };
        {
            let mut t = inner.table();
            t.pending = t.pending.saturating_sub(1);
            if let Some(n) = t.pending_per_ip.get_mut(&from.ip()) {
                *n -= 1;
                if *n == 0 {
                    t.pending_per_ip.remove(&from.ip());
                }
            }
        }
        inner.respond(from, &d);
        // Four X25519 operations per message 1: let the socket task run between them.
        tokio::task::yield_now().await;
    }
}
