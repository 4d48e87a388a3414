//! One FCP connection: a reader task that parses messages, a writer task that sends them
//! (and gives up on a client that stops reading), and the session loop between them that
//! answers each message and runs `ClientPut`/`ClientGet` as tasks told apart by
//! `Identifier`.
//!
//! `Persistence=connection` requests live as long as the connection: when it closes, for
//! whatever reason, every such request still running is aborted. An insert aborted
//! halfway has inserted no top block, so no key names half a document. Persistent requests
//! (`reboot`, `forever`, and the global queue) live in the node's [`super::queue::Queue`];
//! the session only watches them: after the hello it receives its client's requests'
//! messages, and after `WatchGlobal` the global queue's.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rand::RngCore;
use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use super::codes::{get, protocol, put};
use super::dda::Dda;
use super::fields::{boolean, required, Reject};
use super::message::{HeaderParser, Limits, Message, ParseError, Step};
use super::persistent::{self, NotStarted};
use super::queue::{Key, Sink, WATCHER_QUEUE};
use super::request::{self as req, Ctx, Refusal};
use crate::api::ApiBackend;

/// pamphlet's FCP build number (`Build` in `NodeHello`); raised when the FCP dialect changes.
pub const BUILD: u32 = 1;

/// Knobs of one connection.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// Parser limits.
    pub limits: Limits,
    /// Requests running at once on one connection.
    pub max_requests: usize,
    /// How long one write may wait for a client that does not read before the connection
    /// is dropped.
    pub write_timeout: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self { limits: Limits::default(), max_requests: 64, write_timeout: Duration::from_secs(60) }
    }
}

/// Messages queued for the writer; beyond this the session waits for the client to read.
const OUT_QUEUE: usize = 32;

/// Reads one line of at most `max` bytes (without the `\n`) into `line`. `Ok(false)` at a
/// clean end of stream before any byte of the line.
async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R, line: &mut Vec<u8>, max: usize) -> Result<bool, ReadError> {
    line.clear();
    loop {
        let buf = r.fill_buf().await.map_err(|_| ReadError::Gone)?;
        if buf.is_empty() {
            return if line.is_empty() { Ok(false) } else { Err(ReadError::Parse(ParseError::Truncated)) };
        }
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i, true),
            None => (buf.len(), false),
        };
        if line.len() + take > max {
            return Err(ReadError::Parse(ParseError::LineTooLong { max: max.saturating_sub(1) }));
        }
        line.extend_from_slice(&buf[..take]);
        r.consume(take + usize::from(done));
        if done {
            return Ok(true);
        }
    }
}

/// Why reading stopped.
#[derive(Debug)]
enum ReadError {
    /// The client sent something that is not FCP.
    Parse(ParseError),
    /// The connection failed.
    Gone,
}

/// Reads one message; `Ok(None)` at a clean end of stream between messages. A payload
/// buffer grows only with bytes that arrive.
async fn read_message<R: AsyncBufRead + Unpin>(r: &mut R, limits: Limits) -> Result<Option<Message>, ReadError> {
    let mut parser = HeaderParser::new(limits);
    let mut line = Vec::new();
    loop {
        // +1: a `\r` before the `\n` is allowed on a line of the maximum length.
        if !read_line(r, &mut line, limits.max_line.saturating_add(1)).await? {
            return if parser.started() { Err(ReadError::Parse(ParseError::Truncated)) } else { Ok(None) };
        }
        match parser.line(&line).map_err(ReadError::Parse)? {
            Step::More => {}
            Step::Done(m) => return Ok(Some(m)),
            Step::Data(mut m, len) => {
                let mut data = Vec::with_capacity(usize::try_from(len.min(64 * 1024)).unwrap_or(0));
                (&mut *r).take(len).read_to_end(&mut data).await.map_err(|_| ReadError::Gone)?;
                if (data.len() as u64) < len {
                    return Err(ReadError::Parse(ParseError::Truncated));
                }
                m.data = Some(data);
                return Ok(Some(m));
            }
        }
    }
}

/// A request running on this connection.
#[derive(Debug)]
struct Running {
    /// Tells this run from a later one that reuses the identifier.
    token: u64,
    abort: AbortHandle,
    /// `PersistentGet` or `PersistentPut`.
    kind: &'static str,
    uri: String,
}

/// What the session loop does next.
enum Flow {
    Continue,
    Close,
}

struct Session<B> {
    ctx: Arc<Ctx<B>>,
    config: SessionConfig,
    out: mpsc::Sender<Vec<u8>>,
    done: mpsc::UnboundedSender<(u64, String, Vec<Message>)>,
    hello: bool,
    connection_id: String,
    running: HashMap<String, Running>,
    next_token: u64,
    dda: Dda,
    /// The `Name` of `ClientHello`: whose persistent requests this connection sees.
    client: String,
    /// This connection in the queue's list of watchers.
    conn: u64,
    /// Where the queue sends persistent requests' messages (taken at the hello).
    watch_tx: Option<mpsc::Sender<Vec<u8>>>,
    /// Whether `WatchGlobal` is on.
    global: bool,
}

/// Numbers connections for the queue.
static NEXT_CONN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Serves one client until it disconnects, breaks the protocol fatally, or stops reading.
pub async fn serve<B, S>(ctx: Arc<Ctx<B>>, config: SessionConfig, stream: S)
where
    B: ApiBackend,
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (rd, mut wr) = tokio::io::split(stream);
    let (in_tx, mut in_rx) = mpsc::channel::<Result<Message, ParseError>>(1);
    let limits = config.limits;
    let reader = tokio::spawn(async move {
        let mut r = BufReader::with_capacity(64 * 1024, rd);
        loop {
            let item = match read_message(&mut r, limits).await {
                Ok(Some(m)) => Ok(m),
                Ok(None) | Err(ReadError::Gone) => return,
                Err(ReadError::Parse(e)) => Err(e),
            };
            let last = item.is_err();
            if in_tx.send(item).await.is_err() || last {
                return;
            }
        }
    });
    let (out, mut out_rx) = mpsc::channel::<Vec<u8>>(OUT_QUEUE);
    let write_timeout = config.write_timeout;
    let mut writer = tokio::spawn(async move {
        while let Some(bytes) = out_rx.recv().await {
            match tokio::time::timeout(write_timeout, wr.write_all(&bytes)).await {
                Ok(Ok(())) => {}
                // A client that does not read for this long is gone as far as we care.
                _ => return,
            }
        }
        let _ = tokio::time::timeout(write_timeout, wr.shutdown()).await;
    });
    let (done, mut done_rx) = mpsc::unbounded_channel();
    let (watch_tx, mut watch_rx) = mpsc::channel::<Vec<u8>>(WATCHER_QUEUE);
    let mut id = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut id);
    let mut s = Session {
        ctx,
        config,
        out,
        done,
        hello: false,
        connection_id: id.iter().map(|b| format!("{b:02x}")).collect(),
        running: HashMap::new(),
        next_token: 0,
        dda: Dda::default(),
        client: String::new(),
        conn: NEXT_CONN.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        watch_tx: Some(watch_tx),
        global: false,
    };
    loop {
        let flow = tokio::select! {
            biased;
            _ = &mut writer => Flow::Close,
            Some((token, id, messages)) = done_rx.recv() => s.finished(token, &id, messages).await,
            // `None`: the queue dropped this connection for falling too far behind.
            bytes = watch_rx.recv(), if s.watch_tx.is_none() => match bytes {
                Some(b) => if s.out.send(b).await.is_ok() { Flow::Continue } else { Flow::Close },
                None => Flow::Close,
            },
            item = in_rx.recv() => match item {
                None => Flow::Close,
                Some(Ok(m)) => s.handle(m).await,
                Some(Err(e)) => {
                    let mut r = Reject::new(protocol::MESSAGE_PARSE_ERROR, e.to_string());
                    r.fatal = true;
                    let _ = s.send(r.to_message()).await;
                    Flow::Close
                }
            },
        };
        if matches!(flow, Flow::Close) {
            break;
        }
    }
    for r in s.running.values() {
        r.abort.abort();
    }
    s.ctx.queue.unwatch(s.conn);
    reader.abort();
    drop(s);
    // Let the writer flush what is queued (a final ProtocolError); it gives up by itself on
    // a client that does not read.
    let _ = writer.await;
}

impl<B: ApiBackend> Session<B> {
    async fn send(&self, m: Message) -> Result<(), ()> {
        // A payload (a fetched document) goes to the writer as it is, not copied behind
        // its header.
        let (head, data) = m.into_wire();
        self.out.send(head).await.map_err(|_| ())?;
        match data {
            Some(d) => self.out.send(d).await.map_err(|_| ()),
            None => Ok(()),
        }
    }

    async fn reply(&self, m: Message) -> Flow {
        match self.send(m).await {
            Ok(()) => Flow::Continue,
            Err(()) => Flow::Close,
        }
    }

    async fn reject(&self, r: Reject) -> Flow {
        let fatal = r.fatal;
        match (self.send(r.to_message()).await, fatal) {
            (Ok(()), false) => Flow::Continue,
            _ => Flow::Close,
        }
    }

    async fn finished(&mut self, token: u64, id: &str, messages: Vec<Message>) -> Flow {
        if self.running.get(id).is_some_and(|r| r.token == token) {
            self.running.remove(id);
        } else {
            // Removed by RemoveRequest: its answer has been given already.
            return Flow::Continue;
        }
        for m in messages {
            if self.send(m).await.is_err() {
                return Flow::Close;
            }
        }
        Flow::Continue
    }

    async fn handle(&mut self, m: Message) -> Flow {
        if !self.hello {
            if m.name != "ClientHello" {
                let mut r = Reject::new(protocol::CLIENT_HELLO_MUST_BE_FIRST, "send ClientHello first");
                r.fatal = true;
                return self.reject(r).await;
            }
            return match required(&m, "Name").and_then(|n| required(&m, "ExpectedVersion").map(|_| n)) {
                Ok(name) => {
                    self.hello = true;
                    self.client = name.to_owned();
                    if let Flow::Close = self.reply(self.node_hello()).await {
                        return Flow::Close;
                    }
                    let Some(tx) = self.watch_tx.take() else { return Flow::Continue };
                    let pending = self.ctx.queue.watch(self.conn, &self.client, tx);
                    self.send_all(pending).await
                }
                Err(r) => self.reject(r).await,
            };
        }
        if m.data.is_some() && m.name != "ClientPut" && m.name != "ClientPutComplexDir" {
            return self
                .reject(Reject::new(protocol::INVALID_MESSAGE, "only ClientPut and ClientPutComplexDir carry Data"))
                .await;
        }
        let result = match m.name.as_str() {
            "ClientHello" => Err(Reject::new(protocol::NO_LATE_CLIENT_HELLOS, "this connection has said hello")),
            "GenerateSSK" => Ok(Some(generate_ssk(m.get("Identifier")))),
            "ClientPut" | "ClientGet" | "ClientPutComplexDir" | "ClientPutDiskDir" => {
                return Box::pin(self.start(m)).await
            }
            "GetNode" => self.node_data(&m).map(Some),
            "ListPeers" => return self.list_peers(&m).await,
            "WatchGlobal" => match boolean(&m, "Enabled", true) {
                Ok(on) => {
                    self.global = on;
                    let pending = self.ctx.queue.watch_global(self.conn, on);
                    return self.send_all(pending).await;
                }
                Err(r) => Err(r),
            },
            "ListPersistentRequests" => return self.list_requests().await,
            "RemoveRequest" | "RemovePersistentRequest" => return self.remove(&m).await,
            "GetRequestStatus" => return self.request_status(&m).await,
            "TestDDARequest" => self.dda.request(&m).await.map(Some),
            "TestDDAResponse" => self.dda.response(&m).await.map(Some),
            "Disconnect" => return Flow::Close,
            other => Err(Reject::new(
                protocol::INVALID_MESSAGE,
                format!("unknown message {} (docs/fcp.md lists what pamphlet supports)", other),
            )),
        };
        match result {
            Ok(Some(reply)) => self.reply(reply).await,
            Ok(None) => Flow::Continue,
            Err(r) => self.reject(r.about(m.get("Identifier"))).await,
        }
    }

    fn node_hello(&self) -> Message {
        let version = env!("CARGO_PKG_VERSION");
        Message::new("NodeHello")
            .with("FCPVersion", "2.0")
            .with("Node", "pamphlet")
            .with("Version", format!("pamphlet,{version},2.0,{BUILD}"))
            .with("Build", BUILD)
            .with("Revision", version)
            .with("ExtBuild", BUILD)
            .with("ExtRevision", version)
            .with("Testnet", false)
            .with("CompressionCodecs", "1 - GZIP(0)")
            .with("ConnectionIdentifier", &self.connection_id)
            .with("NodeLanguage", "ENGLISH")
    }

    /// `ClientPut`/`ClientGet`: checks the identifier and starts the job, on this
    /// connection or in the queue.
    async fn start(&mut self, m: Message) -> Flow {
        let put = m.name != "ClientGet";
        let Some(id) = m.get("Identifier").map(str::to_owned) else {
            return self.reject(Reject::new(protocol::MISSING_FIELD, format!("{} needs an Identifier", m.name))).await;
        };
        let (persistence, global) = match req::persistence(&m) {
            Ok(p) => p,
            Err(r) => return self.reject(r.about(Some(&id))).await,
        };
        let collision = Message::new("IdentifierCollision").with("Identifier", &id).with("Global", global);
        if let Some(persistence) = persistence {
            let key: Key = (persistent::owner(&self.client, global), id);
            if self.ctx.queue.contains(&key) {
                return self.reply(collision).await;
            }
            // The fields only: cloning the message would copy its payload too.
            let request = Message { name: m.name.clone(), fields: m.fields.clone(), data: None };
            let job = match Box::pin(persistent::parse(m, &self.dda, self.config.limits.max_data)).await {
                Ok(j) => j,
                Err(r) => return self.refused(r).await,
            };
            // Boxed: the job's state lives on the heap, not in every session's future.
            return match Box::pin(persistent::start(&self.ctx, key, &request, job, persistence)).await {
                Ok(()) => Flow::Continue,
                Err(NotStarted::Collision) => self.reply(collision).await,
                Err(NotStarted::Refused(m)) => self.reply(m).await,
            };
        }
        if self.running.contains_key(&id) {
            return self.reply(collision).await;
        }
        if self.running.len() >= self.config.max_requests {
            let why = format!("{} requests are running on this connection; wait for one to finish", self.running.len());
            let m = if put {
                Message::new("PutFailed").with("Code", put::REJECTED_OVERLOAD)
            } else {
                Message::new("GetFailed").with("Code", get::REJECTED_OVERLOAD)
            };
            return self.reply(m.with("Identifier", &id).with("ExtraDescription", why).with("Fatal", false)).await;
        }
        let job = match Box::pin(persistent::parse(m, &self.dda, self.config.limits.max_data)).await {
            Ok(j) => j,
            Err(r) => return self.refused(r).await,
        };
        let (kind, uri) = (job.kind(), job.describe());
        self.next_token += 1;
        let token = self.next_token;
        let handle = tokio::spawn(job.run(Arc::clone(&self.ctx), Sink::Connection(self.out.clone())));
        let abort = handle.abort_handle();
        let done = self.done.clone();
        let task_id = id.clone();
        tokio::spawn(async move {
            let messages = match handle.await {
                Ok(m) => m,
                Err(e) if e.is_cancelled() => Vec::new(),
                Err(_) => {
                    let r = Reject::new(
                        protocol::INTERNAL_ERROR,
                        "the request failed inside the node (a bug: see the log)",
                    );
                    vec![r.about(Some(&task_id)).to_message()]
                }
            };
            let _ = done.send((token, task_id, messages));
        });
        self.running.insert(id, Running { token, abort, kind, uri });
        Flow::Continue
    }

    async fn send_all(&self, messages: Vec<Message>) -> Flow {
        for m in messages {
            if self.send(m).await.is_err() {
                return Flow::Close;
            }
        }
        Flow::Continue
    }

    async fn refused(&self, r: Refusal) -> Flow {
        match r {
            Refusal::Protocol(r) => self.reject(r).await,
            Refusal::Failed(m) => self.reply(m).await,
        }
    }

    /// `RemoveRequest`: a request of this connection, else a persistent one (`Global`
    /// says which queue). The queue tells every watching connection, this one included.
    async fn remove(&mut self, m: &Message) -> Flow {
        let id = match required(m, "Identifier") {
            Ok(id) => id.to_owned(),
            Err(r) => return self.reject(r).await,
        };
        let global = match boolean(m, "Global", false) {
            Ok(g) => g,
            Err(r) => return self.reject(r.about(Some(&id))).await,
        };
        if !global {
            if let Some(r) = self.running.remove(&id) {
                r.abort.abort();
                return self
                    .reply(Message::new("PersistentRequestRemoved").with("Identifier", &id).with("Global", false))
                    .await;
            }
        }
        let key: Key = (persistent::owner(&self.client, global), id.clone());
        if persistent::remove(&self.ctx, &key).await {
            // Told through the queue: unless this connection does not watch that queue.
            if global && !self.global {
                return self
                    .reply(Message::new("PersistentRequestRemoved").with("Identifier", &id).with("Global", true))
                    .await;
            }
            return Flow::Continue;
        }
        let r = Reject::new(protocol::NO_SUCH_IDENTIFIER, "no request with that Identifier");
        self.reject(r.about(Some(&id))).await
    }

    async fn list_requests(&self) -> Flow {
        for (id, r) in &self.running {
            let m = Message::new(r.kind)
                .with("Identifier", id)
                .with("URI", &r.uri)
                .with("Global", false)
                .with("PersistenceType", "connection")
                .with("Started", true);
            if self.send(m).await.is_err() {
                return Flow::Close;
            }
        }
        if let Flow::Close = self.send_all(self.ctx.queue.list(&self.client, self.global)).await {
            return Flow::Close;
        }
        self.reply(Message::new("EndListPersistentRequests")).await
    }

    /// `GetRequestStatus`: a persistent request's messages, with the data of a finished
    /// direct fetch (how a persistent client gets its `AllData`, as in fred).
    async fn request_status(&self, m: &Message) -> Flow {
        let checked = required(m, "Identifier")
            .and_then(|id| Ok((id, boolean(m, "Global", false)?, boolean(m, "OnlyData", false)?)));
        let (id, global, only_data) = match checked {
            Ok(c) => c,
            Err(r) => return self.reject(r.about(m.get("Identifier"))).await,
        };
        let key: Key = (persistent::owner(&self.client, global), id.to_owned());
        match self.ctx.queue.status(&key, only_data) {
            Some(messages) => self.send_all(messages).await,
            None => {
                let why = "no persistent request with that Identifier (requests of this connection only end)";
                self.reject(Reject::new(protocol::NO_SUCH_IDENTIFIER, why).about(Some(id))).await
            }
        }
    }

    fn node_data(&self, m: &Message) -> Result<Message, Reject> {
        let version = format!("pamphlet,{},2.0,{BUILD}", env!("CARGO_PKG_VERSION"));
        let mut out = Message::new("NodeData")
            .with_opt("Identifier", m.get("Identifier"))
            .with("myName", "pamphlet")
            .with("opennet", false)
            .with("version", &version)
            .with("lastGoodVersion", &version);
        if boolean(m, "WithVolatile", false)? {
            let status = serde_json::to_value(self.ctx.backend.status()).unwrap_or(Value::Null);
            flatten("volatile", &status, &mut out);
        }
        Ok(out)
    }

    async fn list_peers(&self, m: &Message) -> Flow {
        let id = m.get("Identifier");
        for p in self.ctx.backend.status().peers {
            let identity = format!("{:016x}", p.peer.0);
            let mut peer = Message::new("Peer")
                .with_opt("Identifier", id)
                .with("identity", &identity)
                .with("peer", &identity)
                .with("opennet", false)
                .with("volatile.status", "CONNECTED");
            if let Some(location) = p.location {
                peer = peer.with("location", location);
            }
            if self.send(peer).await.is_err() {
                return Flow::Close;
            }
        }
        self.reply(Message::new("EndListPeers").with_opt("Identifier", id)).await
    }
}

/// `GenerateSSK` → `SSKKeypair`, in fred's form: `SSK@…/`, to which the client appends a
/// document name.
fn generate_ssk(id: Option<&str>) -> Message {
    let insert = pamphlet_crypto::generate_ssk(&mut rand::rngs::OsRng, "x");
    let base = |uri: String| uri.strip_suffix('x').map(str::to_owned).unwrap_or(uri);
    Message::new("SSKKeypair")
        .with_opt("Identifier", id)
        .with("InsertURI", base(insert.to_string()))
        .with("RequestURI", base(insert.request_uri().to_string()))
}

/// Writes a JSON value as `prefix.key.sub=value` fields.
fn flatten(prefix: &str, v: &Value, out: &mut Message) {
    let join = |k: &str| if prefix.is_empty() { k.to_owned() } else { format!("{prefix}.{k}") };
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                flatten(&join(k), v, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten(&join(&i.to_string()), v, out);
            }
        }
        Value::String(s) if !prefix.is_empty() => out.fields.push((prefix.to_owned(), s.clone())),
        Value::Null => {}
        other if !prefix.is_empty() => out.fields.push((prefix.to_owned(), other.to_string())),
        _ => {}
    }
}
