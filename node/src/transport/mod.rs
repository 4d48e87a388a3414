//! The tokio driver of links: TCP + Noise, fixed-size frames, to friends and (opennet and
//! hybrid modes) strangers.
//!
//! Layout:
//! - `connection`: one established link (reader + writer in one task);
//! - `pending`: the bounded table of incoming connections still handshaking;
//! - `dial`: the dial task of each friend, trying each of its addresses;
//! - `friends`: the friend book (each friend's latest addresses and link state) and
//!   address records received;
//! - `limit`: the upload and download limits shared by every link, and byte counters;
//! - `tie`: which of two links to one friend is kept ([`keep_new_link`]);
//! - `strangers`: links to nodes that are not friends (opennet): who may connect, the
//!   per-address bounds, one-shot dials, drops;
//! - `udp`: the driver of one datagram link (`link::datagram`), over a connected socket or
//!   the node's shared one;
//! - `udp_endpoint`: the node's one UDP socket: the handshake over datagrams and the
//!   demultiplexing of datagrams to sessions by source address;
//! - `udp_link`: a friend link over a session of it (`transport = "udp"`), what
//!   `connection` is over TCP;
//! - this file: [`Transport::start`], the listener, which of two links to a friend is
//!   kept, this node's own record, and shutdown.
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
//! Who dials: both friends, whenever they have no link to each other, so a friend whose
//! inbound connections cannot reach it (a wrong or firewalled address) still gets its
//! link from the other side. The dialer with the larger key waits one jittered
//! `backoff_initial` before its first attempt, so the usual outcome of two friends
//! starting together is one dial, not two; a failed attempt backs off exponentially with
//! ±25% jitter. When two links to one friend are up at once, [`keep_new_link`] decides,
//! the same way on both ends: the link dialled by the smaller key wins, and a newer link
//! dialled by the larger key replaces an older one only once the older is past
//! [`TransportConfig::tie_window`] (then it is a restart, not a race).
//!
//! Before the handshake: an incoming connection waits at most a random time, uniform in
//! [`handshake_timeout`/4, `handshake_timeout`], for message 1, so a prober sees no
//! fixed close time. Pending connections are bounded per source address, per /24 (/64)
//! and in all, and a full bound evicts its **oldest** pending connection (see `pending`).
//!
//! [`handshake_timeout`/4, `handshake_timeout`]: TransportConfig::handshake_timeout

// A driver: reads the clock for handshake timestamps, keepalives and timeouts.
#![allow(clippy::disallowed_methods)]

pub mod connection;
mod dial;
pub mod friends;
mod limit;
mod listen;
mod pacing;
mod pending;
mod strangers;
mod suspend;
mod tie;
pub mod udp;
pub mod udp_endpoint;
mod udp_link;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Notify};

pub use connection::LinkError;
pub use friends::{DialFailure, FriendInfo, FriendUpdateHook};
pub use tie::{keep_new_link, LinkOrigin};

use crate::link::noise;
use crate::link::{AddressRecord, NodeRef, PublicKey, StaticKeypair};
use friends::{Friend, FriendBook, Offer};

use crate::id::PeerId;
use crate::wire::frame::MAX_FRAGMENT;
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
    /// When (Unix seconds) a link to each friend was last up, as saved at the last stop,
    /// so `node friends` can tell "not yet reconnected" from "never connected".
    pub last_seen: HashMap<PublicKey, u64>,
    /// Messages queued per link before `send` waits, for each of the link's two queues
    /// (one-frame messages, and longer ones).
    pub queue_capacity: usize,
    /// Events buffered for the daemon before links stop reading.
    pub event_capacity: usize,
    /// Send a keepalive after this long without sending.
    pub keepalive: Duration,
    /// Close a link after this long without receiving (keep above `keepalive`).
    pub idle_timeout: Duration,
    /// A dial (connect and handshake) gives up after this long. An incoming connection
    /// gets a random time, uniform in [`handshake_timeout`/4, `handshake_timeout`], to
    /// deliver message 1 (and a refused one is drained silently until then).
    ///
    /// [`handshake_timeout`/4, `handshake_timeout`]: TransportConfig::handshake_timeout
    pub handshake_timeout: Duration,
    /// First redial delay after a failure.
    pub backoff_initial: Duration,
    /// Largest redial delay.
    pub backoff_max: Duration,
    /// Incoming connections still handshaking at once; a new one beyond this evicts the
    /// oldest pending one.
    pub max_pending_handshakes: usize,
    /// Incoming connections still handshaking from one source address; a new one beyond
    /// this evicts that address's oldest.
    pub max_pending_per_ip: usize,
    /// The same for one /24 (IPv4) or /64 (IPv6) network.
    pub max_pending_per_prefix: usize,
    /// Frames per direction between rekeys.
    pub rekey_interval: u64,
    /// Bytes per second all links together may send (0: unlimited); see
    /// `link::bandwidth`: control frames go ahead of data, links with data take turns.
    pub upload_limit: u64,
    /// Bytes per second all links together may read (0: unlimited).
    pub download_limit: u64,
    /// Cover traffic: frames per second each link sends, data or padding (0: off).
    pub link_rate: u32,
    /// Called when a friend's addresses change (a newer signed record arrived), so the
    /// daemon can persist them.
    pub on_friend_update: Option<FriendUpdateHook>,
    /// Answer initiators that are not friends (opennet and hybrid modes; see
    /// `strangers`). Off: only friends' handshakes are answered.
    pub accept_strangers: bool,
    /// Stranger links at most to or from one IP address.
    pub max_strangers_per_ip: usize,
    /// Stranger links at most to or from one /24 (IPv4) or /48 (IPv6) network.
    pub max_strangers_per_subnet: usize,
    /// Also take links over UDP datagrams on the listening address and port, and dial
    /// friends whose reference announces UDP over it (`transport = "udp"`).
    pub udp: bool,
}

impl TransportConfig {
    /// Defaults: queue 64 messages, keepalive 20 s, idle timeout 60 s, handshake 4 s (an
    /// incoming one 1–4 s), backoff 1 s doubling to 5 min, 64 pending handshakes of which
    /// 8 per address and 16 per /24 or /64, rekey every 2^16 frames.
    pub fn new(listen: SocketAddr, keypair: StaticKeypair) -> Self {
        Self {
            listen,
            keypair,
            friends: Vec::new(),
            last_seen: HashMap::new(),
            queue_capacity: 64,
            event_capacity: 1024,
            keepalive: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
            handshake_timeout: Duration::from_secs(4),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            max_pending_handshakes: 64,
            max_pending_per_ip: 8,
            max_pending_per_prefix: 16,
            rekey_interval: noise::DEFAULT_REKEY_INTERVAL,
            upload_limit: 0,
            download_limit: 0,
            link_rate: 0,
            on_friend_update: None,
            accept_strangers: false,
            max_strangers_per_ip: 1,
            max_strangers_per_subnet: 4,
            udp: false,
        }
    }

    /// How long after a link dialled by the smaller key came up a link dialled by the
    /// larger key is still taken for a simultaneous dial and refused (3 × the handshake
    /// timeout). It must exceed a dial plus an incoming handshake (2 × the timeout), so
    /// both ends of a race classify it the same; see [`keep_new_link`].
    pub fn tie_window(&self) -> Duration {
        self.handshake_timeout * 3
    }

    fn pending_limits(&self) -> pending::Limits {
        pending::Limits {
            per_ip: self.max_pending_per_ip,
            per_prefix: self.max_pending_per_prefix,
            total: self.max_pending_handshakes,
        }
    }
}

/// What the transport holds now (for tests, the status page and adversary measurements).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransportStats {
    /// Incoming connections still handshaking.
    pub pending_handshakes: usize,
    /// Pending connections evicted since start (oldest first, by the bounds).
    pub evicted_handshakes: u64,
    /// Links up.
    pub links: usize,
    /// Bytes written to links since start (frames, after the upload limit).
    pub bytes_sent: u64,
    /// Bytes read from links since start.
    pub bytes_received: u64,
    /// Links up over UDP (`transport = "udp"`), of `links`.
    pub udp_links: usize,
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
    /// A link to a stranger (not a friend) is up: the daemon asks the node to admit it.
    StrangerConnected {
        /// The stranger.
        peer: PeerId,
        /// Whether we dialled it ([`TransportHandle::dial_stranger`]).
        outbound: bool,
    },
    /// A dial of a stranger failed on every address (or its address is over a bound).
    StrangerDialFailed {
        /// The stranger.
        peer: PeerId,
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
    /// Whether the friend with the smaller key dialled it.
    dialled_by_smaller: bool,
    /// Whether it runs over UDP (a newer UDP link from the friend always replaces it: the
    /// endpoint already gave the friend's address to the newer session).
    udp: bool,
    /// When it came up.
    since: tokio::time::Instant,
}

/// State shared by the handle and every task.
#[derive(Debug, Default)]
struct State {
    /// Friends by static key, with their addresses and link state.
    friends: FriendBook,
    /// This node's own reference, once the daemon signed it ([`TransportHandle::set_own_ref`]).
    own: Option<NodeRef>,
    /// Each friend's dialer waits on its `Notify` while a link is up; the link's end
    /// wakes it.
    dialers: HashMap<PeerId, Arc<Notify>>,
    /// Up links by friend.
    links: HashMap<PeerId, LinkEntry>,
    /// Strangers with links up, and stranger dials under way.
    strangers: strangers::StrangerBook,
    /// Next link (and dial task) generation.
    next_generation: u64,
}

impl State {
    /// This node's signed address record as a message, if it has one.
    fn own_record(&self) -> Option<Vec<u8>> {
        let (seq, addresses, signature) = self.own.as_ref()?.record().to_wire()?;
        codec::encode(&Message::AddressRecord { seq, addresses, signature }).ok()
    }
}

#[derive(Debug)]
struct Shared {
    config: TransportConfig,
    local_addr: SocketAddr,
    state: Mutex<State>,
    /// Incoming connections still handshaking.
    pending: Mutex<pending::PendingTable>,
    /// Message-1 ephemeral keys already accepted. Its own lock, held for a whole
    /// responder handshake (four X25519 operations), so handshakes only wait for each
    /// other, never `send`.
    replay: Arc<Mutex<noise::ReplayCache>>,
    events: mpsc::Sender<TransportEvent>,
    /// The upload and download limits, shared by every link, with their byte counters.
    limits: limit::Limits,
    shutdown: watch::Sender<bool>,
    /// Each task holds a clone; shutdown waits until all are dropped (mini-redis style).
    done: Mutex<Option<mpsc::Sender<()>>>,
    done_rx: tokio::sync::Mutex<mpsc::Receiver<()>>,
    /// The runtime `start` ran on: tasks go there even when a handle method is called
    /// from outside it.
    runtime: tokio::runtime::Handle,
    /// The UDP endpoint, with `udp` on.
    udp: std::sync::OnceLock<udp_endpoint::UdpEndpoint>,
}

impl Shared {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, pending::PendingTable> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A completion token for a new task, or `None` once shutdown began.
    fn token(&self) -> Option<mpsc::Sender<()>> {
        self.done.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// A friend's `Message::AddressRecord`, received over its authenticated link: kept if
    /// signed by its key with a higher sequence (and persisted through the update hook),
    /// else refused, counted and logged.
    fn receive_record(&self, key: &PublicKey, msg: Message) {
        let Message::AddressRecord { seq, addresses, signature } = msg else {
            return;
        };
        let verified = AddressRecord::from_wire(key, seq, &addresses, &signature);
        let offer = {
            let mut st = self.state();
            if !st.friends.by_key.contains_key(key) {
                st.strangers.offer_record(key, verified);
                return;
            }
            st.friends.offer_record(key, verified)
        };
        match offer {
            Offer::Replaced(noderef) => {
                tracing::info!(friend = %key.short(), seq, addresses = ?addresses, "friend's addresses updated");
                // A small file write on this link's task: rare (a friend moved), and the
                // link has nothing else to do while its friend's new record is saved.
                if let Some(hook) = &self.config.on_friend_update {
                    (hook.0)(&noderef);
                }
            }
            Offer::Same => {}
            Offer::Refused(why) => {
                tracing::warn!(friend = %key.short(), seq, error = %why, "address record refused");
            }
        }
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
            limits: limit::Limits::new(config.upload_limit, config.download_limit),
            config,
            local_addr,
            state: Mutex::new(State::default()),
            pending: Mutex::new(pending::PendingTable::default()),
            replay: Arc::new(Mutex::new(noise::ReplayCache::new())),
            events,
            shutdown,
            done: Mutex::new(Some(done)),
            done_rx: tokio::sync::Mutex::new(done_rx),
            runtime: tokio::runtime::Handle::current(),
            udp: std::sync::OnceLock::new(),
        });
        if shared.config.udp {
            let endpoint = udp_link::start(&shared, local_addr).await?;
            let _ = shared.udp.set(endpoint);
        }
        shared.spawn(|s, t| listen::listen(s, listener, t));
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

    /// This node's reference: the signed one the daemon set ([`TransportHandle::set_own_ref`]),
    /// else an unsigned one with the listening address.
    pub fn node_ref(&self) -> NodeRef {
        let own = self.shared.state().own.clone();
        own.unwrap_or_else(|| NodeRef::v1(self.shared.local_addr, self.public_key()))
    }

    /// Sets this node's own reference (its signed address record) and sends the record to
    /// every friend connected now; every link that comes up later gets it first.
    pub fn set_own_ref(&self, own: NodeRef) {
        let mut st = self.shared.state();
        st.own = Some(own);
        if let Some(bytes) = st.own_record() {
            for link in st.links.values() {
                let _ = link.small.try_send(bytes.clone());
            }
        }
    }

    /// Adds a friend: accepts its handshakes from now on, and dials it whenever no link to
    /// it is up. Adding a known friend again returns its id; if the reference carries a
    /// newer signed record than the one kept, its addresses replace the kept ones (the
    /// update hook is not called: the caller persists what it added).
    pub fn add_friend(&self, friend: NodeRef) -> Result<PeerId, TransportError> {
        let peer = peer_id_of(&friend.key);
        if friend.key == self.public_key() {
            return Err(TransportError::Conflict(peer));
        }
        let (wake, dialer) = {
            let mut st = self.shared.state();
            if st.friends.by_key.contains_key(&friend.key) {
                let record = friend.record().clone();
                if record.signature().is_some() {
                    st.friends.offer_record(&friend.key, Ok(record));
                }
                // Whether it takes UDP is what the reference just added says.
                if let Some(f) = st.friends.by_key.get_mut(&friend.key) {
                    f.noderef.udp = friend.udp;
                }
                return Ok(peer);
            }
            if st.friends.by_key.values().any(|f| f.peer == peer) {
                return Err(TransportError::Conflict(peer));
            }
            st.next_generation += 1;
            let dialer = st.next_generation;
            let mut entry = Friend::new(peer, friend.clone(), dialer);
            entry.last_seen = self.shared.config.last_seen.get(&friend.key).copied();
            st.friends.by_key.insert(friend.key, entry);
            (st.dialers.entry(peer).or_default().clone(), dialer)
        };
        let key = friend.key;
        self.shared.spawn(move |s, t| dial::dial(s, key, peer, dialer, wake, t));
        Ok(peer)
    }

    /// Removes a friend: its dial task ends, its link (if up) is retired, and its
    /// handshakes are refused from now on. Returns its id, or `None` if it was no friend.
    pub fn remove_friend(&self, key: &PublicKey) -> Option<PeerId> {
        let (peer, had_link) = {
            let mut st = self.shared.state();
            let friend = st.friends.by_key.remove(key)?;
            // Dropping the entry drops its queues: the link sends what they hold and
            // closes (see `connection`), reporting nothing itself.
            let had_link = st.links.remove(&friend.peer).is_some();
            if let Some(wake) = st.dialers.remove(&friend.peer) {
                wake.notify_one();
            }
            (friend.peer, had_link)
        };
        if had_link {
            let events = self.shared.events.clone();
            self.shared.spawn(move |_, done| async move {
                let _ = events.send(TransportEvent::Disconnected { peer, reason: LinkError::Removed }).await;
                drop(done);
            });
        }
        Some(peer)
    }

    /// Every friend with its addresses and link state, by peer id.
    pub fn friends(&self) -> Vec<FriendInfo> {
        let mut v: Vec<FriendInfo> = self.shared.state().friends.by_key.values().map(Friend::info).collect();
        v.sort_by_key(|f| f.peer);
        v
    }

    /// The UDP endpoint's counters (with `udp` on).
    pub fn udp_stats(&self) -> Option<udp_endpoint::EndpointStats> {
        self.shared.udp.get().map(udp_endpoint::UdpEndpoint::stats)
    }

    /// Counts of pending handshakes and links, now.
    pub fn stats(&self) -> TransportStats {
        let (pending_handshakes, evicted_handshakes) = {
            let p = self.shared.pending();
            (p.len(), p.evicted())
        };
        let (links, udp_links) = {
            let st = self.shared.state();
            (st.links.len(), st.links.values().filter(|l| l.udp).count())
        };
        let l = &self.shared.limits;
        let (bytes_sent, bytes_received) = (l.up.moved(), l.down.moved());
        TransportStats { pending_handshakes, evicted_handshakes, links, bytes_sent, bytes_received, udp_links }
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

fn link_timers(config: &TransportConfig) -> connection::LinkTimers {
    // A retired link drains for as long as the friend may take to retire it too: its
    // replacement reaches the friend within the tie window (see `keep_new_link`).
    let drain = config.tie_window().min(config.idle_timeout);
    let link_rate = std::num::NonZeroU32::new(config.link_rate);
    connection::LinkTimers { keepalive: config.keepalive, idle_timeout: config.idle_timeout, drain, link_rate }
}

/// Registers a link (unless the friend's other link wins the tie-break, see
/// [`keep_new_link`]), runs it, and unregisters it. `outbound`: we dialled it.
async fn run_link(shared: &Arc<Shared>, io: udp_link::LinkIo, key: PublicKey, peer: PeerId, outbound: bool) {
    let mut shutdown = shared.shutdown.subscribe();
    let ours = *shared.config.keypair.public();
    let dialled_by_smaller = if outbound { ours < key } else { key < ours };
    let (small, small_rx) = mpsc::channel(shared.config.queue_capacity.max(1));
    let (bulk, bulk_rx) = mpsc::channel(shared.config.queue_capacity.max(1));
    let queues = connection::Queues { small: small_rx, bulk: bulk_rx };
    let registered = {
        let mut st = shared.state();
        if *shutdown.borrow() {
            return;
        }
        // A friend removed (or a stranger dropped) while this handshake was under way
        // gets no link.
        let suspended = st.friends.by_key.get(&key).is_some_and(|f| !suspend::wait_left(f.suspended_until).is_zero());
        if suspended || (!st.friends.by_key.contains_key(&key) && !st.strangers.by_key.contains_key(&key)) {
            return;
        }
        let now = tokio::time::Instant::now();
        let udp = io.is_udp();
        let wins = st.links.get(&peer).is_none_or(|old| {
            if udp && old.udp {
                return true;
            }
            let existing = LinkOrigin { dialled_by_smaller: old.dialled_by_smaller, age: now - old.since };
            keep_new_link(existing, dialled_by_smaller, shared.config.tie_window())
        });
        wins.then(|| {
            st.next_generation += 1;
            let generation = st.next_generation;
            // Our address record goes first on every new link: a friend that kept an old
            // address (we moved and restarted) learns the new one as soon as one of us
            // reaches the other.
            if let Some(record) = st.own_record() {
                let _ = small.try_send(record);
            }
            if let Some(f) = st.friends.by_key.get_mut(&key) {
                f.link_up();
            }
            // Replacing drops the old link's queues: it sends what they held and retires
            // (see `connection`), reporting nothing itself, so its Disconnected is sent
            // here, before the new Connected.
            let entry = LinkEntry { small, bulk, generation, dialled_by_smaller, udp, since: now };
            let replaced = st.links.insert(peer, entry).is_some();
            (generation, replaced)
        })
    };
    let timers = link_timers(&shared.config);
    let stranger = !shared.state().friends.by_key.contains_key(&key);
    let Some((generation, replaced)) = registered else {
        // The friend retires this link by the same rule. Until it has, it may have
        // written on it: read that (our queues are dropped, so the link only drains).
        tracing::debug!(?peer, outbound, "second link to a friend lost the tie-break");
        let on_record = |m| shared.receive_record(&key, m);
        let (events, limits) = (shared.events.clone(), &shared.limits);
        udp_link::run_io(io, peer, queues, events, timers, shutdown, &|| {}, &on_record, limits).await;
        return;
    };
    if replaced {
        let gone = TransportEvent::Disconnected { peer, reason: LinkError::Replaced };
        tokio::select! {
            _ = shared.events.send(gone) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
    // Removes the link if it is still this one (not replaced), once.
    let was_current = AtomicBool::new(false);
    let unregister = || {
        let mut st = shared.state();
        if st.links.get(&peer).is_some_and(|l| l.generation == generation) {
            st.links.remove(&peer);
            if let Some(f) = st.friends.by_key.get_mut(&key) {
                f.link_down();
            }
            // Nobody redials a stranger: it is forgotten with its link.
            st.strangers.by_key.remove(&key);
            // Our dialer (idle while a link was up) may dial again.
            if let Some(wake) = st.dialers.get(&peer) {
                wake.notify_one();
            }
            was_current.store(true, Ordering::Relaxed);
        }
    };
    let connected = async {
        let up = if stranger {
            TransportEvent::StrangerConnected { peer, outbound }
        } else {
            TransportEvent::Connected { peer }
        };
        if shared.events.send(up).await.is_err() {
            return LinkError::Shutdown;
        }
        let on_record = |m| shared.receive_record(&key, m);
        let events = shared.events.clone();
        let limits = &shared.limits;
        udp_link::run_io(io, peer, queues, events, timers, shutdown.clone(), &unregister, &on_record, limits).await
    };
    let reason = connected.await;
    unregister();
    let current = was_current.load(Ordering::Relaxed);
    tracing::debug!(?peer, %reason, "link closed");
    if current && !matches!(reason, LinkError::Shutdown) {
        tokio::select! {
            _ = shared.events.send(TransportEvent::Disconnected { peer, reason }) => {}
            _ = shutdown.wait_for(|s| *s) => {}
        }
    }
}
