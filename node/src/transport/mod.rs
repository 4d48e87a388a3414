//! The tokio driver of links: TCP + Noise, fixed-size frames, friends only.
//!
//! Layout:
//! - `connection`: one established link (reader + writer in one task);
//! - this file: [`Transport::start`], the listener, the dialers and shutdown.
//!
//! The sans-IO half of a link (static keys, the Noise session, node references) lives in
//! `crate::link`; this folder holds only the tokio code that moves its bytes.
//!
//! The contract for the daemon: [`Transport::start`] binds the listener and returns a
//! [`TransportHandle`] and a bounded receiver of [`TransportEvent`]s. Friends are added
//! by node reference and named by a [`PeerId`] derived from their static key (stable
//! across restarts). `send` waits when a link's bounded queue is full (backpressure);
//! `try_send` reports `Full` instead. `shutdown` ends every task and waits for them.
//!
//! Who dials: of two friends, the one with the smaller static public key dials and the
//! other only listens, so two friends never race two links into existence. The dialer
//! retries with exponential backoff and ±25% jitter. A listener accepts any friend, and a
//! new link from a friend replaces an older one (the friend restarted).

// A driver: reads the clock for handshake timestamps, keepalives and timeouts.
#![allow(clippy::disallowed_methods)]

pub mod connection;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};

pub use connection::LinkError;

use crate::link::noise;
use crate::link::{NodeRef, PublicKey, SessionError, StaticKeypair};

use crate::id::PeerId;
use crate::wire::frame::{FRAME_LEN, MAX_FRAGMENT};
use crate::wire::{codec, CodecError, Message};

/// Everything the transport needs to start. Build with [`TransportConfig::new`] and
/// adjust the public fields.
#[derive(Clone, Debug)]
pub struct TransportConfig {
    /// Where to listen (port 0 picks one; see [`TransportHandle::local_addr`]).
    pub listen: SocketAddr,
    /// The node's long-term static key.
    pub keypair: StaticKeypair,
    /// Friends known at start.
    pub friends: Vec<NodeRef>,
    /// Messages queued per link before `send` waits, for each of the link's two queues
    /// (one-frame messages, and longer ones).
    pub queue_capacity: usize,
    /// Events buffered for the daemon before links stop reading.
    pub event_capacity: usize,
    /// Send a keepalive after this long without sending.
    pub keepalive: Duration,
    /// Close a link after this long without receiving (keep above `keepalive`).
    pub idle_timeout: Duration,
    /// Give up on a handshake (and on draining a failed one) after this long.
    pub handshake_timeout: Duration,
    /// First redial delay after a failure.
    pub backoff_initial: Duration,
    /// Largest redial delay.
    pub backoff_max: Duration,
    /// Incoming connections still handshaking at once; more are closed at once.
    pub max_pending_handshakes: usize,
    /// Frames per direction between rekeys.
    pub rekey_interval: u64,
}

impl TransportConfig {
    /// Defaults: queue 64 messages, keepalive 20 s, idle timeout 60 s, handshake 10 s,
    /// backoff 1 s doubling to 5 min, 64 pending handshakes, rekey every 2^16 frames.
    pub fn new(listen: SocketAddr, keypair: StaticKeypair) -> Self {
        Self {
            listen,
            keypair,
            friends: Vec::new(),
            queue_capacity: 64,
            event_capacity: 1024,
            keepalive: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
            handshake_timeout: Duration::from_secs(10),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            max_pending_handshakes: 64,
            rekey_interval: noise::DEFAULT_REKEY_INTERVAL,
        }
    }
}

/// What the transport tells the daemon.
#[derive(Debug)]
#[non_exhaustive]
pub enum TransportEvent {
    /// A link to this friend is up.
    Connected {
        /// The friend.
        peer: PeerId,
    },
    /// The link to this friend closed (the dialer side will redial).
    Disconnected {
        /// The friend.
        peer: PeerId,
        /// Why it closed.
        reason: LinkError,
    },
    /// A friend sent a message.
    Received {
        /// The friend.
        peer: PeerId,
        /// The message.
        message: Message,
    },
}

/// Why a send failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SendError {
    /// No link to this peer is up.
    #[error("not connected to {0:?}")]
    NotConnected(PeerId),
    /// The link's queue is full (only from `try_send`).
    #[error("queue to {0:?} is full")]
    Full(PeerId),
    /// The message cannot be encoded (too long).
    #[error(transparent)]
    Codec(#[from] CodecError),
}

/// Why a transport call failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TransportError {
    /// Binding or querying the listener failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// Two friends' keys map to the same `PeerId` (astronomically unlikely) or the friend
    /// is ourselves.
    #[error("friend key conflicts with {0:?}")]
    Conflict(PeerId),
}

/// The `PeerId` of a friend: the first 8 bytes of its static key, so it is stable.
pub fn peer_id_of(key: &PublicKey) -> PeerId {
    let mut b = [0u8; 8];
    b.copy_from_slice(&key.0[..8]);
    PeerId(u64::from_be_bytes(b))
}

/// A running link's entry in the table.
#[derive(Debug)]
struct LinkEntry {
    /// Its queue of messages that fit in one frame.
    small: mpsc::Sender<Vec<u8>>,
    /// Its queue of longer messages.
    bulk: mpsc::Sender<Vec<u8>>,
    /// Distinguishes it from an older or newer link to the same friend.
    generation: u64,
}

/// State shared by the handle and every task.
#[derive(Debug, Default)]
struct State {
    /// Friends by static key.
    friends: HashMap<PublicKey, PeerId>,
    /// Up links by friend.
    links: HashMap<PeerId, LinkEntry>,
    /// Next link generation.
    next_generation: u64,
}

#[derive(Debug)]
struct Shared {
    config: TransportConfig,
    local_addr: SocketAddr,
    state: Mutex<State>,
    /// Message-1 ephemeral keys already accepted. Its own lock, held for a whole
    /// responder handshake (four X25519 operations), so handshakes only wait for each
    /// other, never `send`.
    replay: Mutex<noise::ReplayCache>,
    events: mpsc::Sender<TransportEvent>,
    shutdown: watch::Sender<bool>,
    /// Each task holds a clone; shutdown waits until all are dropped (mini-redis style).
    done: Mutex<Option<mpsc::Sender<()>>>,
    done_rx: tokio::sync::Mutex<mpsc::Receiver<()>>,
    /// The runtime `start` ran on: tasks go there even when a handle method is called
    /// from outside it.
    runtime: tokio::runtime::Handle,
}

impl Shared {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A completion token for a new task, or `None` once shutdown began.
    fn token(&self) -> Option<mpsc::Sender<()>> {
        self.done.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn spawn<F>(self: &Arc<Self>, f: impl FnOnce(Arc<Self>, mpsc::Sender<()>) -> F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        if let Some(token) = self.token() {
            self.runtime.spawn(f(self.clone(), token));
        }
    }
}

/// The entry point.
#[derive(Debug)]
pub struct Transport;

impl Transport {
    /// Binds the listener, starts dialers for the configured friends, and returns the
    /// handle and the event receiver.
    pub async fn start(
        config: TransportConfig,
    ) -> Result<(TransportHandle, mpsc::Receiver<TransportEvent>), TransportError> {
        let listener = TcpListener::bind(config.listen).await?;
        let local_addr = listener.local_addr()?;
        let (events, events_rx) = mpsc::channel(config.event_capacity.max(1));
        let (shutdown, _) = watch::channel(false);
        let (done, done_rx) = mpsc::channel(1);
        let friends = config.friends.clone();
        let shared = Arc::new(Shared {
            config,
            local_addr,
            state: Mutex::new(State::default()),
            replay: Mutex::new(noise::ReplayCache::new()),
            events,
            shutdown,
            done: Mutex::new(Some(done)),
            done_rx: tokio::sync::Mutex::new(done_rx),
            runtime: tokio::runtime::Handle::current(),
        });
        shared.spawn(|s, t| listen(s, listener, t));
        let handle = TransportHandle { shared };
        for f in friends {
            handle.add_friend(f)?;
        }
        Ok((handle, events_rx))
    }
}

/// Cheap to clone; every clone drives the same transport.
#[derive(Clone, Debug)]
pub struct TransportHandle {
    shared: Arc<Shared>,
}

impl TransportHandle {
    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// This node's static public key.
    pub fn public_key(&self) -> PublicKey {
        *self.shared.config.keypair.public()
    }

    /// This node's reference (listening address and key), to hand to friends.
    pub fn node_ref(&self) -> NodeRef {
        NodeRef { addr: self.shared.local_addr, key: self.public_key() }
    }

    /// Adds a friend: accepts its handshakes from now on, and dials it if this node's key
    /// is the smaller. Adding a known friend again returns its id and does nothing more.
    pub fn add_friend(&self, friend: NodeRef) -> Result<PeerId, TransportError> {
        let peer = peer_id_of(&friend.key);
        if friend.key == self.public_key() {
            return Err(TransportError::Conflict(peer));
        }
        {
            let mut st = self.shared.state();
            match st.friends.get(&friend.key) {
                Some(_) => return Ok(peer),
                None if st.friends.values().any(|p| *p == peer) => return Err(TransportError::Conflict(peer)),
                None => st.friends.insert(friend.key, peer),
            };
        }
        if self.public_key() < friend.key {
            self.shared.spawn(move |s, t| dial(s, friend, peer, t));
        }
        Ok(peer)
    }

    /// The friends with a link up now.
    pub fn connected_peers(&self) -> Vec<PeerId> {
        let mut v: Vec<_> = self.shared.state().links.keys().copied().collect();
        v.sort();
        v
    }

    /// The queue for an encoded message of `len` bytes to `peer`.
    fn queue(&self, peer: PeerId, len: usize) -> Result<mpsc::Sender<Vec<u8>>, SendError> {
        let st = self.shared.state();
        let link = st.links.get(&peer).ok_or(SendError::NotConnected(peer))?;
        Ok(if len <= MAX_FRAGMENT { link.small.clone() } else { link.bulk.clone() })
    }

    /// Queues a message to a friend, waiting while its link's queue is full.
    pub async fn send(&self, peer: PeerId, msg: &Message) -> Result<(), SendError> {
        let bytes = codec::encode(msg)?;
        let tx = self.queue(peer, bytes.len())?;
        tx.send(bytes).await.map_err(|_| SendError::NotConnected(peer))
    }

    /// Queues a message to a friend, or says `Full` at once.
    pub fn try_send(&self, peer: PeerId, msg: &Message) -> Result<(), SendError> {
        let bytes = codec::encode(msg)?;
        let tx = self.queue(peer, bytes.len())?;
        tx.try_send(bytes).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SendError::Full(peer),
            mpsc::error::TrySendError::Closed(_) => SendError::NotConnected(peer),
        })
    }

    /// Stops the listener, the dialers and every link, and waits until all have ended.
    pub async fn shutdown(&self) {
        let _ = self.shared.shutdown.send(true);
        self.shared.done.lock().unwrap_or_else(|p| p.into_inner()).take();
        self.shared.state().links.clear();
        let mut rx = self.shared.done_rx.lock().await;
        while rx.recv().await.is_some() {}
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

async fn listen(shared: Arc<Shared>, listener: TcpListener, _done: mpsc::Sender<()>) {
    let mut shutdown = shared.shutdown.subscribe();
    let pending = Arc::new(Semaphore::new(shared.config.max_pending_handshakes.max(1)));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        let Ok((stream, from)) = accepted else { continue };
        let Ok(permit) = pending.clone().try_acquire_owned() else {
            tracing::debug!(%from, "too many pending handshakes; dropping connection");
            continue;
        };
        shared.spawn(move |s, t| async move {
            accept(s, stream, permit, t).await;
        });
    }
}

/// Responder side of one incoming connection. Any failure: say nothing, read and discard
/// until the prober gives up or the handshake timeout passes, then close. So a prober
/// cannot tell by our reaction how many bytes we wanted.
async fn accept(
    shared: Arc<Shared>,
    mut stream: TcpStream,
    permit: tokio::sync::OwnedSemaphorePermit,
    done: mpsc::Sender<()>,
) {
    let mut shutdown = shared.shutdown.subscribe();
    let deadline = tokio::time::Instant::now() + shared.config.handshake_timeout;
    let handshake = async {
        let mut m1 = [0u8; FRAME_LEN];
        stream.read_exact(&mut m1).await.map_err(|_| None)?;
        let mut m2 = [0u8; FRAME_LEN];
        let result = {
            let mut replay = shared.replay.lock().unwrap_or_else(|p| p.into_inner());
            noise::respond(
                &shared.config.keypair,
                &m1,
                unix_now(),
                &mut replay,
                |k| shared.state().friends.contains_key(k),
                shared.config.rekey_interval,
                &mut m2,
            )
        };
        let (key, sess) = result.map_err(Some)?;
        stream.write_all(&m2).await.map_err(|_| None)?;
        Ok::<_, Option<SessionError>>((key, sess))
    };
    let outcome = tokio::select! {
        r = tokio::time::timeout_at(deadline, handshake) => r,
        _ = shutdown.wait_for(|s| *s) => return,
    };
    match outcome {
        Ok(Ok((key, sess))) => {
            drop(permit);
            let peer = shared.state().friends.get(&key).copied();
            if let Some(peer) = peer {
                run_link(&shared, stream, sess, peer).await;
            }
        }
        Ok(Err(e)) => {
            tracing::debug!(error = ?e, "incoming handshake refused");
            let mut sink = [0u8; 4096];
            let drain = async { while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {} };
            tokio::select! {
                _ = tokio::time::timeout_at(deadline, drain) => {}
                _ = shutdown.wait_for(|s| *s) => {}
            }
        }
        Err(_) => tracing::debug!("incoming handshake timed out"),
    }
    drop(done);
}

/// Initiator side: keeps a link to `friend` up, redialing with exponential backoff.
async fn dial(shared: Arc<Shared>, friend: NodeRef, peer: PeerId, _done: mpsc::Sender<()>) {
    let mut shutdown = shared.shutdown.subscribe();
    let mut backoff = shared.config.backoff_initial;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let attempt = tokio::time::timeout(shared.config.handshake_timeout, connect(&shared, &friend));
        let result = tokio::select! {
            r = attempt => r,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        let delay = match result {
            Ok(Ok((stream, sess))) => {
                backoff = shared.config.backoff_initial;
                run_link(&shared, stream, sess, peer).await;
                shared.config.backoff_initial
            }
            Ok(Err(e)) => {
                tracing::debug!(?peer, error = %e, "dial failed");
                let d = backoff;
                backoff = (backoff * 2).min(shared.config.backoff_max);
                d
            }
            Err(_) => {
                tracing::debug!(?peer, "dial timed out");
                let d = backoff;
                backoff = (backoff * 2).min(shared.config.backoff_max);
                d
            }
        };
        // ±25% jitter, so friends that lost their links together do not redial in step.
        let delay = delay.mul_f64(rand::Rng::gen_range(&mut rand::thread_rng(), 0.75..1.25));
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

/// Why a dial failed (logged only).
#[derive(Debug, Error)]
enum DialError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("handshake: {0}")]
    Session(#[from] SessionError),
}

async fn connect(shared: &Shared, friend: &NodeRef) -> Result<(TcpStream, noise::Session), DialError> {
    let mut stream = TcpStream::connect(friend.addr).await?;
    let mut m1 = [0u8; FRAME_LEN];
    let init = noise::Initiator::start(&shared.config.keypair, &friend.key, unix_now(), &mut m1)?;
    stream.write_all(&m1).await?;
    let mut m2 = [0u8; FRAME_LEN];
    stream.read_exact(&mut m2).await?;
    let sess = init.finish(&m2, shared.config.rekey_interval)?;
    Ok((stream, sess))
}

/// Registers a link, runs it, and unregisters it.
async fn run_link(shared: &Arc<Shared>, stream: TcpStream, sess: noise::Session, peer: PeerId) {
    let mut shutdown = shared.shutdown.subscribe();
    let (small, small_rx) = mpsc::channel(shared.config.queue_capacity.max(1));
    let (bulk, bulk_rx) = mpsc::channel(shared.config.queue_capacity.max(1));
    let queues = connection::Queues { small: small_rx, bulk: bulk_rx };
    let (generation, replaced) = {
        let mut st = shared.state();
        if *shutdown.borrow() {
            return;
        }
        st.next_generation += 1;
        let generation = st.next_generation;
        // Replacing drops the old link's queue; it ends with `Replaced` and reports
        // nothing itself, so its Disconnected is sent here, before the new Connected.
        let replaced = st.links.insert(peer, LinkEntry { small, bulk, generation }).is_some();
        (generation, replaced)
    };
    if replaced {
        let gone = TransportEvent::Disconnected { peer, reason: LinkError::Replaced };
        tokio::select! {
            _ = shared.events.send(gone) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
    let timers =
        connection::LinkTimers { keepalive: shared.config.keepalive, idle_timeout: shared.config.idle_timeout };
    let connected = async {
        if shared.events.send(TransportEvent::Connected { peer }).await.is_err() {
            return LinkError::Shutdown;
        }
        connection::run(stream, sess, peer, queues, shared.events.clone(), timers, shared.shutdown.subscribe()).await
    };
    let reason = connected.await;
    let current = {
        let mut st = shared.state();
        let current = st.links.get(&peer).is_some_and(|l| l.generation == generation);
        if current {
            st.links.remove(&peer);
        }
        current
    };
    tracing::debug!(?peer, %reason, "link closed");
    if current && !matches!(reason, LinkError::Shutdown) {
        tokio::select! {
            _ = shared.events.send(TransportEvent::Disconnected { peer, reason }) => {}
            _ = shutdown.wait_for(|s| *s) => {}
        }
    }
}
