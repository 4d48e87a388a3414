//! Persistent requests (`Persistence=reboot|forever`) and the global queue, shared by every
//! connection of one node.
//!
//! A persistent request belongs to a client by the `Name` it gave in `ClientHello` (two
//! connections with one name share their requests, as in fred), or to the global queue
//! (`Global=true`), which every connection that sent `WatchGlobal` sees. It outlives the
//! connection that started it: its messages go to whichever connections of its owner are
//! open, its status (the `PersistentGet`/`PersistentPut` tag, the last `SimpleProgress`,
//! and once finished the messages that ended it) is kept for `ListPersistentRequests` and
//! `GetRequestStatus`, and it stays until the client sends `RemoveRequest`, so a finished
//! request's identifier stays taken (fred's rule).
//!
//! Delivery never blocks a request: each watching connection has a bounded channel; a
//! connection that falls [`WATCHER_QUEUE`] messages behind is dropped (its sender is
//! removed, so its session sees the channel close) rather than buffering without bound. It
//! can reconnect and list the requests again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use super::message::Message;

/// Messages one watching connection may be behind before it is dropped.
pub const WATCHER_QUEUE: usize = 1024;

/// Persistent requests one node keeps at once (running or finished and not yet removed).
pub const MAX_PERSISTENT: usize = 4096;

/// Who a persistent request belongs to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Owner {
    /// The global queue: seen by every connection that sent `WatchGlobal`.
    Global,
    /// The client that said this `Name` in `ClientHello`.
    Client(String),
}

impl Owner {
    /// Whether messages about this owner's requests carry `Global=true`.
    pub fn is_global(&self) -> bool {
        matches!(self, Owner::Global)
    }
}

/// How long a persistent request lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Persistence {
    /// Until the node stops.
    Reboot,
    /// Across restarts: written to the data directory.
    Forever,
}

impl Persistence {
    /// FCP's word for it (`PersistenceType`).
    pub fn word(self) -> &'static str {
        match self {
            Persistence::Reboot => "reboot",
            Persistence::Forever => "forever",
        }
    }
}

/// A persistent request's name: owner and `Identifier`.
pub type Key = (Owner, String);

/// One persistent request.
#[derive(Debug)]
struct Entry {
    /// `PersistentGet`, `PersistentPut` or `PersistentPutDir` with the request's fields.
    tag: Message,
    persistence: Persistence,
    /// Tells this run from a later request that reuses the key after a removal.
    token: u64,
    /// Stops the running job (none once finished).
    abort: Option<AbortHandle>,
    /// The last `URIGenerated`.
    generated: Option<Message>,
    /// The last `SimpleProgress`.
    progress: Option<Message>,
    /// `ExpectedMIME`/`ExpectedDataLength` once sent (fred lists them too).
    expected: Vec<Message>,
    /// The messages that ended it (`PutSuccessful`, `DataFound`, `GetFailed`, …).
    outcome: Option<Vec<Message>>,
    /// A finished `ReturnType=direct` fetch's `AllData`, kept for `GetRequestStatus`.
    data: Option<Message>,
}

/// A connection that receives persistent requests' messages.
#[derive(Debug)]
struct Watcher {
    client: String,
    global: bool,
    tx: mpsc::Sender<Vec<u8>>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<Key, Entry>,
    watchers: HashMap<u64, Watcher>,
    next_token: u64,
}

/// Why a request could not join the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The owner has a request with that identifier.
    Collision,
    /// [`MAX_PERSISTENT`] requests are kept already.
    Full,
}

/// The node's persistent requests and the connections watching them.
#[derive(Debug, Default)]
pub struct Queue {
    inner: Mutex<Inner>,
}

/// Sets `Global` on a message to the request's queue (jobs write `Global=false`).
fn globalised(mut m: Message, global: bool) -> Message {
    let value = if global { "true" } else { "false" };
    match m.fields.iter_mut().find(|(k, _)| k == "Global") {
        Some((_, v)) => *v = value.to_owned(),
        None => m.fields.push(("Global".to_owned(), value.to_owned())),
    }
    m
}

impl Inner {
    /// Sends `m` to every connection that sees `owner`'s requests; drops the ones that
    /// have fallen too far behind.
    fn deliver(&mut self, owner: &Owner, m: &Message) {
        let bytes = m.encode();
        self.watchers.retain(|_, w| {
            let sees = match owner {
                Owner::Global => w.global,
                Owner::Client(c) => &w.client == c,
            };
            if !sees {
                return true;
            }
            match w.tx.try_send(bytes.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::warn!("an FCP client fell {WATCHER_QUEUE} messages behind; disconnecting it");
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
    }
}

impl Entry {
    /// Everything a listing shows of this request, in fred's order.
    fn messages(&self, include_data: bool) -> Vec<Message> {
        let mut out = vec![self.tag.clone()];
        out.extend(self.generated.iter().cloned());
        out.extend(self.progress.iter().cloned());
        out.extend(self.expected.iter().cloned());
        out.extend(self.outcome.iter().flatten().cloned());
        if include_data {
            out.extend(self.data.iter().cloned());
        }
        out
    }
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves plain data: keep serving.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A connection said hello as `client`: it now receives that client's messages.
    /// Returns the messages of the client's finished requests (fred sends them on
    /// reconnection so a client learns what ended while it was away).
    pub fn watch(&self, conn: u64, client: &str, tx: mpsc::Sender<Vec<u8>>) -> Vec<Message> {
        let mut inner = self.lock();
        inner.watchers.insert(conn, Watcher { client: client.to_owned(), global: false, tx });
        let owner = Owner::Client(client.to_owned());
        finished_messages(&inner, |o| o == &owner)
    }

    /// `WatchGlobal`: turns the global queue on or off for a connection; on, returns the
    /// global queue's finished requests' messages.
    pub fn watch_global(&self, conn: u64, on: bool) -> Vec<Message> {
        let mut inner = self.lock();
        let Some(w) = inner.watchers.get_mut(&conn) else { return Vec::new() };
        let was = std::mem::replace(&mut w.global, on);
        if on && !was {
            finished_messages(&inner, Owner::is_global)
        } else {
            Vec::new()
        }
    }

    /// The connection closed.
    pub fn unwatch(&self, conn: u64) {
        self.lock().watchers.remove(&conn);
    }

    /// Whether a request with this key exists.
    pub fn contains(&self, key: &Key) -> bool {
        self.lock().entries.contains_key(key)
    }

    /// Adds a request (not yet running); returns its token.
    pub fn add(&self, key: Key, tag: Message, persistence: Persistence) -> Result<u64, Refused> {
        let mut inner = self.lock();
        if inner.entries.contains_key(&key) {
            return Err(Refused::Collision);
        }
        if inner.entries.len() >= MAX_PERSISTENT {
            return Err(Refused::Full);
        }
        inner.next_token += 1;
        let token = inner.next_token;
        let tag = globalised(tag, key.0.is_global());
        let entry = Entry {
            tag,
            persistence,
            token,
            abort: None,
            generated: None,
            progress: None,
            expected: Vec::new(),
            outcome: None,
            data: None,
        };
        inner.entries.insert(key, entry);
        Ok(token)
    }

    /// Records the running job of request `key` (run `token`).
    pub fn started(&self, key: &Key, token: u64, abort: AbortHandle) {
        match self.lock().entries.get_mut(key) {
            Some(e) if e.token == token => e.abort = Some(abort),
            // Removed before it started.
            _ => abort.abort(),
        }
    }

    /// A message from a running request: remembered if it is status, sent to watchers.
    pub fn publish(&self, key: &Key, m: Message) {
        let m = globalised(m, key.0.is_global());
        let mut inner = self.lock();
        let Some(e) = inner.entries.get_mut(key) else { return };
        match m.name.as_str() {
            "URIGenerated" => e.generated = Some(m.clone()),
            "SimpleProgress" => e.progress = Some(m.clone()),
            "ExpectedMIME" | "ExpectedDataLength" => {
                e.expected.retain(|x| x.name != m.name);
                e.expected.push(m.clone());
            }
            _ => {}
        }
        inner.deliver(&key.0, &m);
    }

    /// Request `key` (run `token`) ended with `messages`: they are kept for listings and
    /// sent to watchers, except `AllData`, which a persistent client asks for with
    /// `GetRequestStatus` (as in fred). Returns the persistence, or `None` if the request
    /// was removed meanwhile.
    pub fn finish(&self, key: &Key, token: u64, messages: Vec<Message>) -> Option<Persistence> {
        let global = key.0.is_global();
        let mut inner = self.lock();
        let e = inner.entries.get_mut(key).filter(|e| e.token == token)?;
        let (data, rest): (Vec<Message>, Vec<Message>) =
            messages.into_iter().map(|m| globalised(m, global)).partition(|m| m.name == "AllData");
        e.abort = None;
        e.data = data.into_iter().next();
        e.outcome = Some(rest.clone());
        let persistence = e.persistence;
        for m in &rest {
            inner.deliver(&key.0, m);
        }
        Some(persistence)
    }

    /// Restores a finished request read back from the data directory.
    pub fn restore_finished(&self, key: Key, tag: Message, outcome: Vec<Message>) -> Result<(), Refused> {
        let token = self.add(key.clone(), tag, Persistence::Forever)?;
        let mut inner = self.lock();
        if let Some(e) = inner.entries.get_mut(&key).filter(|e| e.token == token) {
            e.outcome = Some(outcome.into_iter().map(|m| globalised(m, key.0.is_global())).collect());
        }
        Ok(())
    }

    /// `RemoveRequest`: stops the request if it runs and forgets it; every watching
    /// connection is told. Returns its persistence, `None` if there was no such request.
    pub fn remove(&self, key: &Key) -> Option<Persistence> {
        let mut inner = self.lock();
        let e = inner.entries.remove(key)?;
        if let Some(a) = e.abort {
            a.abort();
        }
        let removed =
            Message::new("PersistentRequestRemoved").with("Identifier", &key.1).with("Global", key.0.is_global());
        inner.deliver(&key.0, &removed);
        Some(e.persistence)
    }

    /// Drops a request that never started (it could not be saved), without telling anyone.
    pub fn discard(&self, key: &Key) {
        self.lock().entries.remove(key);
    }

    /// `ListPersistentRequests`: the requests of `client`, and the global queue's if
    /// `global`, each as its tag and status messages.
    pub fn list(&self, client: &str, global: bool) -> Vec<Message> {
        let inner = self.lock();
        let mut keys: Vec<&Key> = inner
            .entries
            .keys()
            .filter(|(o, _)| match o {
                Owner::Global => global,
                Owner::Client(c) => c == client,
            })
            .collect();
        keys.sort();
        keys.iter().flat_map(|k| inner.entries[*k].messages(false)).collect()
    }

    /// `GetRequestStatus`: one request's messages, with its `AllData` if it has one; only
    /// the data with `only_data`.
    pub fn status(&self, key: &Key, only_data: bool) -> Option<Vec<Message>> {
        let inner = self.lock();
        let e = inner.entries.get(key)?;
        Some(if only_data { e.data.iter().cloned().collect() } else { e.messages(true) })
    }

    /// Persistent single-file inserts still running (a site whose redirect target is not
    /// there yet waits for them).
    pub fn running_puts(&self) -> usize {
        self.lock().entries.values().filter(|e| e.outcome.is_none() && e.tag.name == "PersistentPut").count()
    }

    /// How many requests are kept.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether no request is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn finished_messages(inner: &Inner, visible: impl Fn(&Owner) -> bool) -> Vec<Message> {
    let mut keys: Vec<&Key> =
        inner.entries.iter().filter(|(k, e)| visible(&k.0) && e.outcome.is_some()).map(|(k, _)| k).collect();
    keys.sort();
    keys.iter().flat_map(|k| inner.entries[*k].messages(false)).collect()
}

/// Where a job's progress messages go: its connection, or the queue.
#[derive(Clone, Debug)]
pub enum Sink {
    /// A `Persistence=connection` request: straight to its connection's writer.
    Connection(mpsc::Sender<Vec<u8>>),
    /// A persistent request: through the queue to whoever watches it.
    Queue(Arc<Queue>, Key),
}

impl Sink {
    /// Sends a message the client needs (`URIGenerated`); waits for room on a connection.
    pub async fn send(&self, m: Message) {
        match self {
            Sink::Connection(tx) => {
                let _ = tx.send(m.encode()).await;
            }
            Sink::Queue(q, key) => q.publish(key, m),
        }
    }

    /// Sends progress if there is room; progress is dropped rather than queued without
    /// bound for a client that does not read.
    pub fn try_send(&self, m: Message) {
        match self {
            Sink::Connection(tx) => {
                let _ = tx.try_send(m.encode());
            }
            Sink::Queue(q, key) => q.publish(key, m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(owner: Owner, id: &str) -> Key {
        (owner, id.to_owned())
    }

    #[tokio::test]
    async fn requests_reach_their_owner_and_global_watchers_only() {
        let q = Queue::default();
        let (a_tx, mut a) = mpsc::channel(16);
        let (b_tx, mut b) = mpsc::channel(16);
        assert!(q.watch(1, "alice", a_tx).is_empty());
        q.watch(2, "bob", b_tx);
        let mine = key(Owner::Client("alice".into()), "r1");
        let global = key(Owner::Global, "g1");
        let t1 = q.add(mine.clone(), Message::new("PersistentPut"), Persistence::Forever).unwrap();
        let t2 = q.add(global.clone(), Message::new("PersistentGet"), Persistence::Reboot).unwrap();
        assert_eq!(q.add(mine.clone(), Message::new("PersistentPut"), Persistence::Forever), Err(Refused::Collision));
        q.publish(&mine, Message::new("SimpleProgress").with("Global", false));
        q.publish(&global, Message::new("SimpleProgress").with("Global", false));
        assert!(a.try_recv().unwrap().starts_with(b"SimpleProgress"));
        assert!(a.try_recv().is_err(), "alice does not watch the global queue");
        assert!(b.try_recv().is_err(), "bob sees neither alice's request nor the global queue");

        // Watching the global queue later shows what finished there meanwhile.
        q.finish(&global, t2, vec![Message::new("DataFound"), Message::new("AllData")]);
        let late = q.watch_global(2, true);
        let names: Vec<&str> = late.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["PersistentGet", "SimpleProgress", "DataFound"], "AllData only on GetRequestStatus");
        assert!(late.iter().all(|m| m.get("Global") == Some("true")));
        let status = q.status(&global, false).unwrap();
        assert_eq!(status.last().unwrap().name, "AllData");
        assert_eq!(q.status(&global, true).unwrap().len(), 1);

        assert_eq!(q.finish(&mine, t1 + 100, vec![Message::new("PutSuccessful")]), None, "a stale run is ignored");
        assert_eq!(q.finish(&mine, t1, vec![Message::new("PutSuccessful")]), Some(Persistence::Forever));
        assert!(a.try_recv().unwrap().starts_with(b"PutSuccessful"));
        assert_eq!(q.list("alice", false).len(), 3, "tag, progress, outcome");
        assert!(q.list("bob", false).is_empty());
        assert_eq!(q.list("bob", true).len(), 3);
        assert!(q.contains(&mine), "a finished request keeps its identifier until removed");
        assert_eq!(q.remove(&mine), Some(Persistence::Forever));
        assert!(a.try_recv().unwrap().starts_with(b"PersistentRequestRemoved"));
        assert_eq!(q.remove(&mine), None);
    }

    #[test]
    fn the_queue_is_bounded() {
        let q = Queue::default();
        for i in 0..MAX_PERSISTENT {
            q.add(key(Owner::Global, &i.to_string()), Message::new("PersistentGet"), Persistence::Reboot).unwrap();
        }
        let more = q.add(key(Owner::Global, "one more"), Message::new("PersistentGet"), Persistence::Reboot);
        assert_eq!(more, Err(Refused::Full));
        q.remove(&key(Owner::Global, "0"));
        assert!(q.add(key(Owner::Global, "one more"), Message::new("PersistentGet"), Persistence::Reboot).is_ok());
    }

    #[tokio::test]
    async fn a_watcher_that_does_not_read_is_dropped_not_buffered() {
        let q = Queue::default();
        let (tx, mut rx) = mpsc::channel(2);
        q.watch(1, "slow", tx);
        let k = key(Owner::Client("slow".into()), "r");
        q.add(k.clone(), Message::new("PersistentPut"), Persistence::Reboot).unwrap();
        for _ in 0..3 {
            q.publish(&k, Message::new("SimpleProgress"));
        }
        // Two queued, the third overflowed: the sender is gone, so the session closes.
        assert!(rx.recv().await.is_some() && rx.recv().await.is_some());
        assert!(rx.recv().await.is_none());
    }
}
