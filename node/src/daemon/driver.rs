//! The tokio driver of the sans-IO [`Node`]: one task owns the node and feeds it transport
//! events, client commands and timer wake-ups; after every input it drains the node's
//! transmits to the transport and its events to the clients waiting on them.
//!
//! Messages to a peer whose link queue is full are dropped rather than buffered: the node
//! already treats a silent peer as a timeout (and backs it off), so dropping under overload
//! costs a retry elsewhere instead of unbounded memory.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use pamphlet_crypto::{Block, BlockKind, RoutingKey};
use tokio::sync::{mpsc, oneshot, watch};

use crate::api::backend::{Counters, NodeSnapshot, PeerSnapshot};
use crate::client::pipeline::{BlockNetwork, InsertOutcome};
use crate::location::Location;
use crate::node::{Event, Failure, Node, OpId};
use crate::routing::opennet::Found;
use crate::store::BlockStore;
use crate::transport::{SendError, TransportEvent, TransportHandle};

use super::opennet::OpennetLinks;

/// How often the opennet peers file is refreshed (when the strangers changed).
const OPENNET_SAVE_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// How often the status snapshot is refreshed while the node is busy.
const SNAPSHOT_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// A request from a client to the node task.
#[derive(Debug)]
enum Command {
    Fetch {
        kind: BlockKind,
        key: RoutingKey,
        reply: oneshot::Sender<Result<Block, Failure>>,
    },
    /// `top`: the block a URI names, inserted flagged (`Node::start_insert_top`).
    Insert {
        block: Block,
        top: bool,
        reply: oneshot::Sender<Result<InsertOutcome, Failure>>,
    },
}

/// What the node thread keeps on disk besides the store, saved periodically and at stop.
#[derive(Default)]
pub struct Kept {
    /// The opennet links and their peers file (opennet and hybrid modes).
    pub opennet: Option<OpennetLinks>,
    /// `DIR/offers.keys` (offers on return on; `offer_keys.rs`).
    pub keys_file: Option<std::path::PathBuf>,
    /// `DIR/uptime`: this node's runs and its peers' uptimes (steady backups; `uptime.rs`).
    pub uptime: Option<super::uptime::UptimeFile>,
}

/// The handle clients use to move blocks ([`BlockNetwork`]) and read the node task's
/// latest [`NodeSnapshot`].
#[derive(Debug, Clone)]
pub struct NodeHandle {
    commands: mpsc::Sender<Command>,
    snapshot: Arc<Mutex<NodeSnapshot>>,
}

impl NodeHandle {
    /// The node's status as of the last refresh (at most `SNAPSHOT_EVERY` old).
    pub fn snapshot(&self) -> NodeSnapshot {
        self.snapshot.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl NodeHandle {
    fn insert_flagged(&self, block: Block, top: bool) -> impl Future<Output = Result<InsertOutcome, Failure>> + Send {
        let commands = self.commands.clone();
        async move {
            let (reply, rx) = oneshot::channel();
            commands.send(Command::Insert { block, top, reply }).await.map_err(|_| Failure::Unavailable)?;
            rx.await.map_err(|_| Failure::Unavailable)?
        }
    }
}

impl BlockNetwork for NodeHandle {
    fn fetch(&self, kind: BlockKind, key: RoutingKey) -> impl Future<Output = Result<Block, Failure>> + Send {
        let commands = self.commands.clone();
        async move {
            let (reply, rx) = oneshot::channel();
            commands.send(Command::Fetch { kind, key, reply }).await.map_err(|_| Failure::Unavailable)?;
            rx.await.map_err(|_| Failure::Unavailable)?
        }
    }

    fn insert(&self, block: Block) -> impl Future<Output = Result<InsertOutcome, Failure>> + Send {
        self.insert_flagged(block, false)
    }

    fn insert_top(&self, block: Block) -> impl Future<Output = Result<InsertOutcome, Failure>> + Send {
        self.insert_flagged(block, true)
    }
}

/// Waiting clients by operation.
#[derive(Debug, Default)]
struct Pending {
    fetches: HashMap<OpId, oneshot::Sender<Result<Block, Failure>>>,
    inserts: HashMap<OpId, oneshot::Sender<Result<InsertOutcome, Failure>>>,
}

impl Pending {
    fn deliver(&mut self, event: Event) {
        match event {
            Event::FetchSucceeded { op, block, .. } => {
                if let Some(r) = self.fetches.remove(&op) {
                    let _ = r.send(Ok(block));
                }
            }
            Event::FetchFailed { op, reason, peers_tried } => {
                if let Some(r) = self.fetches.remove(&op) {
                    let _ = r.send(Err(Failure::from_reason(reason, peers_tried)));
                }
            }
            Event::InsertSucceeded { op, displaced, .. } => {
                if let Some(r) = self.inserts.remove(&op) {
                    let _ = r.send(Ok(InsertOutcome::Stored { displaced }));
                }
            }
            Event::InsertCollision { op, existing } => {
                if let Some(r) = self.inserts.remove(&op) {
                    let _ = r.send(Ok(InsertOutcome::Collision(existing)));
                }
            }
            Event::InsertFailed { op, reason, peers_tried } => {
                if let Some(r) = self.inserts.remove(&op) {
                    let _ = r.send(Err(Failure::from_reason(reason, peers_tried)));
                }
            }
        }
    }
}

fn snapshot<S: BlockStore>(node: &Node<S>, transport: &TransportHandle) -> NodeSnapshot {
    let stats = node.stats();
    let store = node.store().stats();
    let peers = node
        .peer_ids()
        .into_iter()
        .map(|peer| {
            let (kind, found) = node.peer_kind(peer);
            PeerSnapshot {
                peer,
                location: node.peer(peer).map(|e| e.location.as_f64()),
                kind: kind.name().into(),
                found: found.map_or("friends file", Found::name).into(),
            }
        })
        .collect();
    NodeSnapshot {
        location: node.location().as_f64(),
        peers,
        listen: transport.local_addr().to_string(),
        noderef: transport.node_ref().to_string(),
        udp_links: transport.stats().udp_links,
        own_uptime: node.own_uptime(),
        in_flight: node.in_flight(),
        counters: Counters {
            requests_received: stats.requests_received,
            inserts_received: stats.inserts_received,
            found_locally: stats.found_locally,
            forwarded: stats.forwarded,
            local_fetches: stats.local_fetches,
            swaps_attempted: stats.swaps_attempted,
            swaps_done: stats.swaps_done,
            top_wide_stores: stats.top_wide_stores,
            top_flags_over_budget: stats.top_flags_over_budget,
            offers_queued: stats.offers_queued,
            offers_sent: stats.offers_sent,
            returns: stats.returns,
            return_offers_queued: stats.return_offers_queued,
            keys_loaded: stats.keys_loaded,
            steady_backups_queued: stats.steady_backups_queued,
            steady_backups_kept: stats.steady_backups_kept,
            offered_keys_no_room: stats.offered_keys_no_room,
        },
        store,
        opennet: opennet_counters(node),
    }
}

/// The node's opennet counters by name (none for a darknet node).
fn opennet_counters<S: BlockStore>(node: &Node<S>) -> std::collections::BTreeMap<String, u64> {
    if !node.config().opennet.mode.strangers() {
        return Default::default();
    }
    let o = node.opennet_stats();
    [
        ("announces_started", o.announces_started),
        ("announces_handled", o.announces_handled),
        ("announces_refused", o.announces_refused),
        ("announce_offers", o.announce_offers),
        ("fold_offers", o.fold_offers),
        ("connects_asked", o.connects_asked),
        ("admitted", o.admitted),
        ("refused", o.refused),
        ("refused_seed_full", o.refused_seed_full),
        ("need_seeds", o.need_seeds),
        ("replaced", o.replaced),
        ("bootstrap_dropped", o.bootstrap_dropped),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The node task, on its own OS thread (see [`spawn`]); [`NodeTask::join`] hands the node
/// back once the task has ended.
pub struct NodeTask<S: BlockStore> {
    done: oneshot::Receiver<Node<S>>,
    thread: std::thread::JoinHandle<()>,
}

impl<S: BlockStore> std::fmt::Debug for NodeTask<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeTask").field("thread", &self.thread.thread().name()).finish_non_exhaustive()
    }
}

impl<S: BlockStore> NodeTask<S> {
    /// Waits for the task to end (after shutdown) and returns the node; `None` if the task
    /// panicked (the panic is in the log; the node and its unflushed writes are lost, as
    /// the store's crash recovery expects).
    pub async fn join(self) -> Option<Node<S>> {
        let node = self.done.await.ok();
        // The thread has nothing left to do once it sent the node (or died): reap it off
        // the async workers.
        let thread = self.thread;
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        node
    }
}

/// Starts the node task. Returns the handle for clients and the task; the task ends when
/// `shutdown` turns true (or every sender is gone), handing back the node so the caller can
/// persist its state and flush its store.
///
/// The task runs on **its own thread** with a single-threaded runtime, not on the daemon's
/// async workers: with a disk store every `handle_message` that stores a block writes and
/// `fdatasync`s a slot, and doing that on a worker stalled every link task scheduled there
/// (node/benches/store_stall.rs measures it). The `Node` stays sans-IO; only its driver
/// moved. Errors only if the OS refuses a thread or a timer.
pub fn spawn<S: BlockStore + Send + 'static>(
    mut node: Node<S>,
    transport: TransportHandle,
    mut events: mpsc::Receiver<TransportEvent>,
    mut shutdown: watch::Receiver<bool>,
    kept: Kept,
) -> std::io::Result<(NodeHandle, NodeTask<S>)> {
    let Kept { mut opennet, keys_file, mut uptime } = kept;
    let (commands, mut command_rx) = mpsc::channel::<Command>(256);
    let shared = Arc::new(Mutex::new(snapshot(&node, &transport)));
    let handle = NodeHandle { commands, snapshot: Arc::clone(&shared) };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build()?;
    let (done_tx, done) = oneshot::channel();
    let task = async move {
        let mut pending = Pending::default();
        let mut last_snapshot = Instant::now();
        // Wakes the loop so the snapshot is never more than one period stale when idle.
        let mut tick = tokio::time::interval(SNAPSHOT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        if let Some(o) = opennet.as_mut() {
            o.start(&node, &transport, Instant::now());
        }
        let mut last_save = Instant::now();
        let (mut keys_saved, mut keys_written) = (Instant::now(), node.remembered_writes());
        let mut alive_saved = Instant::now();
        loop {
            let wake = node.poll_timeout();
            let sleep = async {
                match wake {
                    Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                ev = events.recv() => {
                    let now = Instant::now();
                    match ev {
                        // The peer's real location arrives in the LocationUpdate it sends as
                        // soon as it adds us; until then it is ranked as if it sat at ours.
                        Some(TransportEvent::Connected { peer }) => node.add_peer(now, peer, node.location()),
                        Some(TransportEvent::Disconnected { peer, .. }) => node.remove_peer(now, peer),
                        Some(TransportEvent::Received { peer, message }) => node.handle_message(now, peer, message),
                        Some(TransportEvent::StrangerConnected { peer, .. }) => match opennet.as_mut() {
                            Some(o) => o.on_connected(&mut node, &transport, now, peer),
                            None => transport.drop_stranger(peer),
                        },
                        Some(TransportEvent::StrangerDialFailed { peer }) => {
                            if let Some(o) = opennet.as_mut() {
                                o.on_dial_failed(peer);
                            }
                        }
                        None => break,
                    }
                }
                cmd = command_rx.recv() => {
                    let now = Instant::now();
                    match cmd {
                        Some(Command::Fetch { kind, key, reply }) => {
                            let op = node.start_fetch(now, kind, key);
                            pending.fetches.insert(op, reply);
                        }
                        Some(Command::Insert { block, top, reply }) => {
                            let op = if top { node.start_insert_top(now, block) } else { node.start_insert(now, block) };
                            pending.inserts.insert(op, reply);
                        }
                        None => break,
                    }
                }
                () = sleep => node.handle_timeout(Instant::now()),
                _ = tick.tick() => {}
                _ = shutdown.wait_for(|s| *s) => break,
            }
            while let Some((peer, msg)) = node.poll_transmit() {
                match transport.try_send(peer, &msg) {
                    Ok(()) | Err(SendError::NotConnected(_)) => {}
                    Err(e) => tracing::debug!(peer = ?peer, error = %e, "dropped a message"),
                }
            }
            while let Some(event) = node.poll_event() {
                pending.deliver(event);
            }
            if opennet.is_none() {
                // A darknet node's only link action: suspending a friend that keeps lying.
                while let Some(action) = node.poll_link_action() {
                    if let crate::node::LinkAction::Suspend { peer, until } = action {
                        transport.suspend(peer, until);
                    }
                }
            }
            if let Some(o) = opennet.as_mut() {
                o.carry_out(&mut node, &transport, Instant::now());
                if last_save.elapsed() >= OPENNET_SAVE_EVERY {
                    o.save_peers(&node, &transport);
                    last_save = Instant::now();
                }
            }
            // The remembered keys survive a crash too, up to `SAVE_EVERY` old (offer_keys.rs).
            if let Some(path) = keys_file.as_deref() {
                if keys_saved.elapsed() >= super::offer_keys::SAVE_EVERY && node.remembered_writes() != keys_written {
                    super::offer_keys::save(path, &mut node);
                    (keys_saved, keys_written) = (Instant::now(), node.remembered_writes());
                }
            }
            if let Some(u) = uptime.as_mut() {
                if alive_saved.elapsed() >= super::uptime::ALIVE_EVERY {
                    u.save(&mut node);
                    alive_saved = Instant::now();
                }
            }
            // Status is for people and scripts polling it: refreshing it after every message
            // would cost more than routing the message.
            if last_snapshot.elapsed() >= SNAPSHOT_EVERY {
                *shared.lock().unwrap_or_else(PoisonError::into_inner) = snapshot(&node, &transport);
                last_snapshot = Instant::now();
            }
        }
        if let Some(o) = opennet.as_mut() {
            o.save_peers(&node, &transport);
        }
        if let Some(u) = uptime.as_mut() {
            u.save(&mut node);
        }
        node
    };
    let thread = std::thread::Builder::new().name("pamphlet-node".into()).spawn(move || {
        let _ = done_tx.send(runtime.block_on(task));
    })?;
    Ok((handle, NodeTask { done, thread }))
}

/// The location a fresh node starts at: uniform on the circle.
pub fn random_location(rng: &mut impl rand::RngCore) -> Location {
    Location(rng.next_u64())
}

#[cfg(test)]
mod tests {
    use pamphlet_crypto::{chk, ChkFlags};

    use super::*;
    use crate::node::{FailReason, RetryCause};

    fn block(i: u8) -> Block {
        Block::Chk(chk::encode(&[i; 3], ChkFlags::default()).unwrap().0)
    }

    /// A fetch and an insert waiting on ops 1 and 2; returns their receivers.
    #[allow(clippy::type_complexity)]
    fn waiting(
        pending: &mut Pending,
    ) -> (oneshot::Receiver<Result<Block, Failure>>, oneshot::Receiver<Result<InsertOutcome, Failure>>) {
        let (f, frx) = oneshot::channel();
        let (i, irx) = oneshot::channel();
        pending.fetches.insert(OpId(1), f);
        pending.inserts.insert(OpId(2), i);
        (frx, irx)
    }

    #[test]
    fn every_fetch_failure_reaches_its_client_with_its_own_kind() {
        let cases = [
            (FailReason::DataNotFound { htl: 18 }, Failure::NotFound { htl: Some(18), peers_tried: Some(3) }),
            (FailReason::RouteNotFound { htl_left: 9 }, Failure::RouteNotFound { htl_left: Some(9), peers_tried: 3 }),
            (FailReason::TimedOut { htl_left: 4 }, Failure::TimedOut { htl_left: Some(4), peers_tried: 3 }),
            (FailReason::RecentlyFailed, Failure::RetryLater { cause: RetryCause::RecentlyFailed }),
            (FailReason::KeyBusy, Failure::RetryLater { cause: RetryCause::InProgress }),
            (FailReason::InvalidBlock, Failure::BadInput),
        ];
        let mut seen = Vec::new();
        for (reason, want) in cases {
            let mut pending = Pending::default();
            let (mut fetch, mut insert) = waiting(&mut pending);
            pending.deliver(Event::FetchFailed { op: OpId(1), reason, peers_tried: 3 });
            assert_eq!(fetch.try_recv().unwrap(), Err(want.clone()), "{reason:?}");
            assert!(insert.try_recv().is_err(), "only the waiting fetch hears of it");
            pending.deliver(Event::InsertFailed { op: OpId(2), reason, peers_tried: 3 });
            assert_eq!(insert.try_recv().unwrap(), Err(want.clone()), "{reason:?}");
            assert!(pending.fetches.is_empty() && pending.inserts.is_empty());
            assert!(!seen.contains(&want), "{reason:?} folded into another reason's failure");
            seen.push(want);
        }
    }

    #[test]
    fn successes_and_collisions_reach_their_clients() {
        let mut pending = Pending::default();
        let (mut fetch, mut insert) = waiting(&mut pending);
        pending.deliver(Event::FetchSucceeded { op: OpId(1), block: block(1), peers_tried: 1, local: false });
        assert_eq!(fetch.try_recv().unwrap(), Ok(block(1)));
        pending.deliver(Event::InsertSucceeded {
            op: OpId(2),
            key: block(2).routing_key(),
            peers_tried: 1,
            htl_exhausted: true,
            displaced: true,
        });
        assert_eq!(insert.try_recv().unwrap(), Ok(InsertOutcome::Stored { displaced: true }));

        let (_, mut insert) = waiting(&mut pending);
        pending.deliver(Event::InsertCollision { op: OpId(2), existing: block(3) });
        assert_eq!(insert.try_recv().unwrap(), Ok(InsertOutcome::Collision(block(3))));
    }

    #[test]
    fn events_for_nobody_or_a_gone_client_are_dropped() {
        let mut pending = Pending::default();
        let (fetch, _insert) = waiting(&mut pending);
        // An op nobody waits for (already answered) changes nothing.
        pending.deliver(Event::FetchSucceeded { op: OpId(7), block: block(1), peers_tried: 0, local: true });
        assert_eq!(pending.fetches.len(), 1);
        // A client that gave up: delivering must not panic, and forgets the waiter.
        drop(fetch);
        let reason = FailReason::TimedOut { htl_left: 1 };
        pending.deliver(Event::FetchFailed { op: OpId(1), reason, peers_tried: 1 });
        assert!(pending.fetches.is_empty());
    }
}
