//! Session tests: a client speaking FCP over an in-memory pipe to a session backed by a
//! map of blocks (no node). One test per message kind and per error path.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::message::{decode, Limits, Message};
use super::request::Ctx;
use super::session::{serve, SessionConfig};
use crate::client::memory_net::MemoryNetwork;

pub(super) struct Client {
    io: DuplexStream,
    buf: Vec<u8>,
    net: Arc<MemoryNetwork>,
}

impl Client {
    pub(super) fn with(net: MemoryNetwork, config: SessionConfig) -> Self {
        let ctx = Arc::new(Ctx { backend: Arc::new(net), parallel: 4, queue: Arc::default(), store: None });
        Self::on(&ctx, config)
    }

    /// A connection to a node shared with other clients.
    pub(super) fn on(ctx: &Arc<Ctx<MemoryNetwork>>, config: SessionConfig) -> Self {
        let (a, b) = tokio::io::duplex(1 << 16);
        tokio::spawn(serve(Arc::clone(ctx), config, b));
        Self { io: a, buf: Vec::new(), net: Arc::clone(&ctx.backend) }
    }

    /// Connects to a shared node and says hello as `name`.
    pub(super) async fn named(ctx: &Arc<Ctx<MemoryNetwork>>, name: &str) -> Self {
        let mut c = Self::on(ctx, SessionConfig::default());
        c.send(Message::new("ClientHello").with("Name", name).with("ExpectedVersion", "2.0")).await;
        assert_eq!(c.recv().await.name, "NodeHello");
        c
    }

    /// Messages until (and with) the first one named `name`.
    pub(super) async fn until(&mut self, name: &str) -> Vec<Message> {
        let mut seen = Vec::new();
        loop {
            let m = self.recv().await;
            let last = m.name == name;
            seen.push(m);
            if last {
                return seen;
            }
        }
    }

    fn new() -> Self {
        Self::with(MemoryNetwork::default(), SessionConfig::default())
    }

    pub(super) async fn hello() -> Self {
        let mut c = Self::new();
        c.send(Message::new("ClientHello").with("Name", "t").with("ExpectedVersion", "2.0")).await;
        let m = c.recv().await;
        assert_eq!(m.name, "NodeHello");
        c
    }

    pub(super) async fn send(&mut self, m: Message) {
        self.io.write_all(&m.encode()).await.unwrap();
    }

    /// Sends bytes as they are (a message `Message::encode` would not write).
    pub(super) async fn send_raw(&mut self, bytes: &[u8]) {
        self.io.write_all(bytes).await.unwrap();
    }

    /// The next message, or `None` when the node closed the connection.
    async fn try_recv(&mut self) -> Option<Message> {
        loop {
            if let Some((m, n)) = decode(&self.buf, Limits::default()).unwrap() {
                self.buf.drain(..n);
                return Some(m);
            }
            // On the heap: a 64 KiB array in every inlined receive overflows a test's stack.
            let mut chunk = vec![0u8; 65536];
            let n = tokio::time::timeout(Duration::from_secs(10), self.io.read(&mut chunk)).await.unwrap().unwrap();
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    pub(super) async fn recv(&mut self) -> Message {
        self.try_recv().await.expect("a message")
    }

    /// The next message that is not `SimpleProgress`/`URIGenerated`.
    pub(super) async fn outcome(&mut self) -> Message {
        loop {
            let m = self.recv().await;
            if m.name != "SimpleProgress" && m.name != "URIGenerated" {
                return m;
            }
        }
    }

    pub(super) async fn put(&mut self, id: &str, uri: &str, data: &[u8]) -> Message {
        let m = Message { data: Some(data.to_vec()), ..Message::new("ClientPut") }
            .with("Identifier", id)
            .with("URI", uri)
            .with("Verbosity", 1);
        self.send(m).await;
        self.outcome().await
    }

    pub(super) async fn get(&mut self, id: &str, uri: &str) -> (Message, Option<Message>) {
        self.send(Message::new("ClientGet").with("Identifier", id).with("URI", uri).with("Verbosity", 1)).await;
        let first = self.outcome().await;
        if first.name == "DataFound" {
            let all = self.recv().await;
            return (first, Some(all));
        }
        (first, None)
    }
}

#[tokio::test]
async fn hello_must_be_first_and_only_once() {
    let mut c = Client::new();
    c.send(Message::new("GenerateSSK").with("Identifier", "a")).await;
    let e = c.recv().await;
    assert_eq!((e.name.as_str(), e.get("Code"), e.get("Fatal")), ("ProtocolError", Some("1"), Some("true")));
    assert!(c.try_recv().await.is_none(), "closed after a message before the hello");

    let mut c = Client::new();
    c.send(Message::new("ClientHello").with("Name", "t").with("ExpectedVersion", "2.0")).await;
    let h = c.recv().await;
    assert_eq!((h.get("FCPVersion"), h.get("Node"), h.get("Testnet")), (Some("2.0"), Some("pamphlet"), Some("false")));
    assert!(h.get("CompressionCodecs").unwrap().starts_with("1 - GZIP(0)"));
    assert_eq!(h.get("ConnectionIdentifier").unwrap().len(), 32);
    assert!(h.get("Build").unwrap().parse::<u32>().is_ok());
    c.send(Message::new("ClientHello").with("Name", "t").with("ExpectedVersion", "2.0")).await;
    assert_eq!(c.recv().await.get("Code"), Some("2"));
}

#[tokio::test]
async fn generate_ssk_gives_freds_form_and_inserts_round_trip() {
    let mut c = Client::hello().await;
    c.send(Message::new("GenerateSSK").with("Identifier", "k")).await;
    let k = c.recv().await;
    assert_eq!((k.name.as_str(), k.get("Identifier")), ("SSKKeypair", Some("k")));
    let (ins, req) = (k.get("InsertURI").unwrap().to_owned(), k.get("RequestURI").unwrap().to_owned());
    assert!(ins.starts_with("SSK@") && ins.ends_with('/') && req.starts_with("SSK@") && req.ends_with('/'));
    assert_ne!(ins, req);

    let done = c.put("p", &format!("freenet:{ins}doc"), b"signed hello").await;
    assert_eq!((done.name.as_str(), done.get("URI")), ("PutSuccessful", Some(format!("{req}doc").as_str())));
    let (found, all) = c.get("g", &format!("{req}doc")).await;
    assert_eq!(found.get("Metadata.ContentType"), Some("application/octet-stream"));
    assert_eq!(all.unwrap().data.as_deref(), Some(&b"signed hello"[..]));

    // fcpinvertkey: GetCHKOnly on the insert URI gives the request URI and inserts nothing.
    let before = c.net.blocks.lock().unwrap().len();
    let m = Message { data: Some(b"bar".to_vec()), ..Message::new("ClientPut") }
        .with("Identifier", "inv")
        .with("URI", format!("{ins}foo"))
        .with("GetCHKOnly", "true");
    c.send(m).await;
    assert_eq!(c.outcome().await.get("URI"), Some(format!("{req}foo").as_str()));
    assert_eq!(c.net.blocks.lock().unwrap().len(), before, "GetCHKOnly inserts nothing");
}

#[tokio::test]
async fn chk_put_and_get_with_progress_and_mime() {
    let mut c = Client::hello().await;
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let m = Message { data: Some(data.clone()), ..Message::new("ClientPut") }
        .with("Identifier", "p")
        .with("URI", "CHK@")
        .with("Metadata.ContentType", "text/plain")
        .with("TargetFilename", "a.txt")
        .with("Verbosity", 1)
        .with("MaxRetries", -1)
        .with("PriorityClass", 3)
        .with("DontCompress", "True")
        .with("Codecs", "GZIP");
    c.send(m).await;
    let mut saw_progress = false;
    let mut generated = None;
    let done = loop {
        let m = c.recv().await;
        match m.name.as_str() {
            "SimpleProgress" => saw_progress = true,
            "URIGenerated" => generated = m.get("URI").map(str::to_owned),
            _ => break m,
        }
    };
    assert!(saw_progress);
    assert_eq!(done.name, "PutSuccessful");
    let uri = done.get("URI").unwrap().to_owned();
    assert_eq!(generated.as_deref(), Some(uri.as_str()));
    assert!(uri.starts_with("CHK@") && uri.ends_with("/a.txt"), "{uri}");
    let (found, all) = c.get("g", &uri).await;
    assert_eq!(found.get("Metadata.ContentType"), Some("text/plain"));
    assert_eq!(found.get("DataLength"), Some("100000"));
    let all = all.unwrap();
    assert_eq!((all.name.as_str(), all.get("Identifier")), ("AllData", Some("g")));
    assert_eq!(all.data.unwrap(), data);

    // ReturnType=none: DataFound only. MaxSize too small: GetFailed 21.
    c.send(Message::new("ClientGet").with("Identifier", "n").with("URI", &uri).with("ReturnType", "none")).await;
    assert_eq!(c.outcome().await.name, "DataFound");
    c.send(Message::new("ClientGet").with("Identifier", "s").with("URI", &uri).with("MaxSize", 10)).await;
    assert_eq!(c.outcome().await.get("Code"), Some("21"));
}

#[tokio::test]
async fn get_failures_carry_freds_codes() {
    let mut c = Client::hello().await;
    let (f, _) = c.get("a", "KSK@never-inserted").await;
    assert_eq!((f.name.as_str(), f.get("Code"), f.get("Identifier")), ("GetFailed", Some("13"), Some("a")));
    assert_eq!(f.get("ShortCodeDescription"), Some("Data not found"));
    let (f, _) = c.get("b", "CHK@not-a-key").await;
    assert_eq!(f.get("Code"), Some("20"));
    let m = c.put("c", "SSK@garbage/doc", b"x").await;
    assert_eq!((m.name.as_str(), m.get("Code")), ("PutFailed", Some("1")));
}

#[tokio::test]
async fn ksk_and_usk_editions_with_redirect() {
    let mut c = Client::hello().await;
    assert_eq!(c.put("k", "KSK@hello.txt", b"kw").await.get("URI"), Some("KSK@hello.txt"));
    assert_eq!(c.get("kg", "KSK@hello.txt").await.1.unwrap().data.unwrap(), b"kw");

    c.send(Message::new("GenerateSSK").with("Identifier", "k")).await;
    let k = c.recv().await;
    let ins = k.get("InsertURI").unwrap().replacen("SSK@", "USK@", 1);
    let req = k.get("RequestURI").unwrap().replacen("SSK@", "USK@", 1);
    assert_eq!(c.put("u1", &format!("{ins}site/1"), b"one").await.get("URI"), Some(format!("{req}site/1").as_str()));
    assert_eq!(c.get("g1", &format!("{req}site/1")).await.1.unwrap().data.unwrap(), b"one");
    c.put("u2", &format!("{ins}site/2"), b"two").await;
    let (f, _) = c.get("g1", &format!("{req}site/1")).await;
    assert_eq!((f.get("Code"), f.get("RedirectURI")), (Some("27"), Some(format!("{req}site/2").as_str())));
    // The identifier is free again at once: pyfreenet reuses it to follow the redirect.
    assert_eq!(c.get("g1", &format!("{req}site/2")).await.1.unwrap().data.unwrap(), b"two");
    // A different document under a taken USK edition goes to the next free one, as in
    // fred; the same document under it is simply there.
    let moved = c.put("u3", &format!("{ins}site/1"), b"other").await;
    assert_eq!(moved.get("URI"), Some(format!("{req}site/3").as_str()), "{moved:?}");
    assert_eq!(c.get("g3", &format!("{req}site/3")).await.1.unwrap().data.unwrap(), b"other");
    assert_eq!(c.put("u4", &format!("{ins}site/2"), b"two").await.get("URI"), Some(format!("{req}site/2").as_str()));
    // An SSK has no next edition: a different document under its name collides.
    let ssk = k.get("InsertURI").unwrap();
    assert_eq!(c.put("s1", &format!("{ssk}doc"), b"first").await.name, "PutSuccessful");
    assert_eq!(c.put("s2", &format!("{ssk}doc"), b"second").await.get("Code"), Some("9"));
}

#[tokio::test]
async fn identifiers_collide_and_requests_can_be_listed_and_removed() {
    let stalled = MemoryNetwork { stall_after: Some(0), ..MemoryNetwork::default() };
    let mut c = Client::with(stalled, SessionConfig::default());
    c.send(Message::new("ClientHello").with("Name", "t").with("ExpectedVersion", "2.0")).await;
    c.recv().await;
    c.send(Message::new("ClientGet").with("Identifier", "same").with("URI", "KSK@a")).await;
    c.send(Message::new("ClientGet").with("Identifier", "same").with("URI", "KSK@b")).await;
    let m = c.recv().await;
    assert_eq!((m.name.as_str(), m.get("Identifier")), ("IdentifierCollision", Some("same")));
    c.send(Message::new("ListPersistentRequests")).await;
    let m = c.recv().await;
    assert_eq!((m.name.as_str(), m.get("Identifier")), ("PersistentGet", Some("same")));
    assert_eq!(c.recv().await.name, "EndListPersistentRequests");
    c.send(Message::new("RemoveRequest").with("Identifier", "same").with("Global", "false")).await;
    assert_eq!(c.recv().await.name, "PersistentRequestRemoved");
    c.send(Message::new("RemoveRequest").with("Identifier", "same")).await;
    assert_eq!(c.recv().await.get("Code"), Some("15"));
    c.send(Message::new("ListPersistentRequests")).await;
    assert_eq!(c.recv().await.name, "EndListPersistentRequests");
}

#[tokio::test]
async fn unknown_messages_and_bad_fields_keep_the_connection() {
    let mut c = Client::hello().await;
    c.send(Message::new("FCPPluginMessage").with("Identifier", "x")).await;
    let m = c.recv().await;
    assert_eq!((m.get("Code"), m.get("Fatal"), m.get("Identifier")), (Some("7"), Some("false"), Some("x")));
    c.send(Message::new("ClientGet").with("Identifier", "v").with("URI", "KSK@a").with("Verbosity", "lots")).await;
    assert_eq!(c.recv().await.get("Code"), Some("6"));
    c.send(Message::new("ClientGet").with("Identifier", "r").with("URI", "KSK@a").with("ReturnType", "chunked")).await;
    assert_eq!(c.recv().await.get("Code"), Some("8"));
    c.send(Message::new("ClientGet").with("Identifier", "p").with("URI", "KSK@a").with("Persistence", "sometimes"))
        .await;
    assert_eq!(c.recv().await.get("Code"), Some("8"));
    c.send(Message::new("ClientGet").with("URI", "KSK@a")).await;
    assert_eq!(c.recv().await.get("Code"), Some("5"));
    c.send(
        Message::new("ClientPut")
            .with("Identifier", "d")
            .with("URI", "CHK@")
            .with("UploadFrom", "disk")
            .with("Filename", "/etc/passwd"),
    )
    .await;
    assert_eq!(c.recv().await.get("Code"), Some("25"), "disk access needs TestDDA first");
    c.send(Message::new("ClientPut").with("Identifier", "m").with("URI", "CHK@")).await;
    assert_eq!(c.recv().await.get("Code"), Some("5"), "direct without Data");
    c.send(Message::new("WatchGlobal").with("Enabled", "true")).await;
    c.send(Message::new("GetNode").with("Identifier", "n").with("WithVolatile", "true")).await;
    let n = c.recv().await;
    assert_eq!((n.name.as_str(), n.get("volatile.location")), ("NodeData", Some("0.5")));
    c.send(Message::new("ListPeers").with("Identifier", "l")).await;
    let peer = c.recv().await;
    assert_eq!((peer.name.as_str(), peer.get("identity")), ("Peer", Some("00000000000000ab")));
    assert_eq!(c.recv().await.name, "EndListPeers");
    c.send(Message::new("Disconnect")).await;
    assert!(c.try_recv().await.is_none());
}

#[tokio::test]
async fn garbage_and_short_data_close_without_inserting() {
    let mut c = Client::hello().await;
    c.io.write_all(b"\x00\x01\xffgarbage\n").await.unwrap();
    let m = c.recv().await;
    assert_eq!((m.get("Code"), m.get("Fatal")), (Some("3"), Some("true")));
    assert!(c.try_recv().await.is_none());

    let mut c = Client::hello().await;
    c.io.write_all(b"ClientPut\nIdentifier=a\nURI=CHK@\nDataLength=1000\nData\nonly a few bytes").await.unwrap();
    c.io.shutdown().await.unwrap();
    assert_eq!(c.recv().await.get("Code"), Some("3"), "the message ended early");
    assert!(c.try_recv().await.is_none());
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(c.net.blocks.lock().unwrap().is_empty(), "nothing inserted from a short payload");

    let limits = Limits { max_data: 10, ..Limits::default() };
    let mut c = Client::with(MemoryNetwork::default(), SessionConfig { limits, ..SessionConfig::default() });
    c.send(Message::new("ClientHello").with("Name", "t").with("ExpectedVersion", "2.0")).await;
    c.recv().await;
    c.io.write_all(b"ClientPut\nIdentifier=a\nURI=CHK@\nDataLength=11\nData\n").await.unwrap();
    assert_eq!(c.recv().await.get("Code"), Some("3"), "DataLength above the limit is refused before any byte");
}

#[tokio::test]
async fn a_client_that_never_reads_is_dropped() {
    let config = SessionConfig { write_timeout: Duration::from_millis(200), ..SessionConfig::default() };
    let mut c = Client::with(MemoryNetwork::default(), config);
    c.send(Message::new("ClientHello").with("Name", "t").with("ExpectedVersion", "2.0")).await;
    // Ask for far more output than the pipe holds, and never read it.
    let many: Vec<u8> = (0..2000).flat_map(|i| Message::new("GenerateSSK").with("Identifier", i).encode()).collect();
    let wrote = tokio::time::timeout(Duration::from_secs(5), async {
        // The session stops reading once its writer gives up, so this write fails or stalls.
        let _ = c.io.write_all(&many).await;
    })
    .await;
    let _ = wrote;
    tokio::time::sleep(Duration::from_millis(400)).await;
    // Drain: the connection ends (EOF) rather than hanging forever.
    let mut rest = Vec::new();
    let end = tokio::time::timeout(Duration::from_secs(5), c.io.read_to_end(&mut rest)).await;
    assert!(end.is_ok(), "the node closed the connection of a client that did not read");
}

pub(super) fn shared(net: MemoryNetwork, store: Option<super::persist::Store>) -> Arc<Ctx<MemoryNetwork>> {
    Arc::new(Ctx { backend: Arc::new(net), parallel: 4, queue: Arc::default(), store })
}

fn names(ms: &[Message]) -> Vec<&str> {
    ms.iter().map(|m| m.name.as_str()).collect()
}

#[tokio::test]
async fn persistent_requests_outlive_their_connection_and_reach_global_watchers() {
    let ctx = shared(MemoryNetwork::default(), None);
    // A client queues a global insert and leaves at once; the insert goes on.
    let mut a = Client::named(&ctx, "a").await;
    let put = Message { data: Some(b"kept".to_vec()), ..Message::new("ClientPut") }
        .with("Identifier", "p1")
        .with("URI", "KSK@queued")
        .with("Persistence", "reboot")
        .with("Global", "true");
    a.send(put.clone()).await;
    a.send(Message::new("ListPersistentRequests")).await;
    assert_eq!(a.recv().await.name, "EndListPersistentRequests", "a does not watch the global queue");
    drop(a);

    let mut b = Client::named(&ctx, "b").await;
    b.send(Message::new("WatchGlobal").with("Enabled", "true")).await;
    let seen = b.until("PutSuccessful").await;
    let done = seen.last().unwrap();
    assert_eq!(
        (done.get("Identifier"), done.get("Global"), done.get("URI")),
        (Some("p1"), Some("true"), Some("KSK@queued"))
    );
    b.send(Message::new("ListPersistentRequests")).await;
    let listed = b.until("EndListPersistentRequests").await;
    assert_eq!(names(&listed)[0], "PersistentPut");
    assert_eq!(listed[0].get("PersistenceType"), Some("reboot"));
    assert!(names(&listed).contains(&"PutSuccessful"), "{:?}", names(&listed));

    // A finished request keeps its identifier until it is removed.
    b.send(put.clone()).await;
    let m = b.recv().await;
    assert_eq!((m.name.as_str(), m.get("Global")), ("IdentifierCollision", Some("true")));

    // A persistent direct fetch: DataFound, then the data on GetRequestStatus.
    let get = |id: &str| {
        Message::new("ClientGet").with("Identifier", id).with("URI", "KSK@queued").with("Persistence", "forever")
    };
    b.send(get("g1")).await;
    let found = b.until("DataFound").await;
    assert_eq!(found.last().unwrap().get("Global"), Some("false"));
    b.send(Message::new("GetRequestStatus").with("Identifier", "g1")).await;
    let status = b.until("AllData").await;
    assert_eq!(names(&status)[0], "PersistentGet");
    assert_eq!(status.last().unwrap().data.as_deref(), Some(b"kept".as_slice()));
    // A second connection of the same client sees the request; another client does not.
    let mut b2 = Client::named(&ctx, "b").await;
    let pending = b2.until("DataFound").await;
    assert_eq!(pending[0].get("Identifier"), Some("g1"), "finished requests are sent on reconnection");
    let mut c = Client::named(&ctx, "c").await;
    c.send(Message::new("GetRequestStatus").with("Identifier", "g1")).await;
    assert_eq!(c.recv().await.get("Code"), Some("15"));

    // Removal is told to every watching connection, and frees the identifier.
    b.send(Message::new("RemoveRequest").with("Identifier", "p1").with("Global", "true")).await;
    let removed = b.until("PersistentRequestRemoved").await;
    assert_eq!(removed.last().unwrap().get("Global"), Some("true"));
    b2.send(Message::new("RemoveRequest").with("Identifier", "g1")).await;
    assert_eq!(b.until("PersistentRequestRemoved").await.last().unwrap().get("Identifier"), Some("g1"));
    assert_eq!(b2.until("PersistentRequestRemoved").await.last().unwrap().get("Identifier"), Some("g1"));
    assert!(ctx.queue.is_empty());
    // Connection requests cannot be global.
    b.send(Message::new("ClientGet").with("Identifier", "x").with("URI", "KSK@queued").with("Global", "true")).await;
    assert_eq!(b.recv().await.get("Code"), Some("8"));
}

#[tokio::test]
async fn forever_requests_survive_a_restart_and_resume() {
    let dir = tempfile::tempdir().unwrap();
    let store = || Some(super::persist::Store::open(dir.path().join("fcp")).unwrap());
    // First life: the insert finishes (a CHK insert fetches nothing), the fetch hangs
    // (the network stalls every fetch).
    let first = shared(MemoryNetwork { stall_after: Some(0), ..MemoryNetwork::default() }, store());
    let mut a = Client::named(&first, "a").await;
    let put = Message { data: Some(b"survives".to_vec()), ..Message::new("ClientPut") }
        .with("Identifier", "put")
        .with("URI", "CHK@")
        .with("Persistence", "forever");
    a.send(put).await;
    let chk = a.until("PutSuccessful").await.pop().unwrap().get("URI").unwrap().to_owned();
    let get = Message::new("ClientGet").with("Identifier", "get").with("URI", &chk).with("Persistence", "forever");
    a.send(get.with("ReturnType", "direct")).await;
    a.send(Message::new("ListPersistentRequests")).await;
    let listed = a.until("EndListPersistentRequests").await;
    assert!(names(&listed).contains(&"PersistentGet") && !names(&listed).contains(&"DataFound"));
    // A damaged record beside them is skipped, not fatal.
    std::fs::write(dir.path().join("fcp/0123.request"), b"{\"version\":1,").unwrap();

    // Second life, on a network that has the block: the fetch resumes and completes; the
    // finished insert is still listed with its outcome.
    let second = shared(MemoryNetwork::default(), store());
    second.backend.blocks.lock().unwrap().extend(first.backend.blocks.lock().unwrap().clone());
    super::persistent::resume(&second, 1 << 30, Duration::ZERO).await;
    let mut a = Client::named(&second, "a").await;
    let mut seen = Vec::new();
    while !(seen.iter().any(|m: &Message| m.name == "DataFound") && seen.iter().any(|m| m.name == "PutSuccessful")) {
        let m = a.recv().await;
        seen.push(m);
    }
    let put_done = seen.iter().find(|m| m.name == "PutSuccessful").unwrap();
    assert_eq!(put_done.get("URI"), Some(chk.as_str()));
    a.send(Message::new("GetRequestStatus").with("Identifier", "get").with("OnlyData", "true")).await;
    assert_eq!(a.recv().await.data.as_deref(), Some(b"survives".as_slice()));
    // Removing forgets it on disk too: a third life has only the insert.
    a.send(Message::new("RemoveRequest").with("Identifier", "get")).await;
    a.until("PersistentRequestRemoved").await;
    let third = shared(MemoryNetwork::default(), store());
    super::persistent::resume(&third, 1 << 30, Duration::ZERO).await;
    assert_eq!(third.queue.len(), 1);
}

#[tokio::test]
async fn compression_and_expected_type_and_size_when_the_verbosity_asks() {
    let mut c = Client::hello().await;
    let text: Vec<u8> = b"a line of text that repeats\n".repeat(2000);
    let put = |id: &str, data: &[u8], verbosity: u64| {
        Message { data: Some(data.to_vec()), ..Message::new("ClientPut") }
            .with("Identifier", id)
            .with("URI", "CHK@")
            .with("Metadata.ContentType", "text/plain")
            .with("Verbosity", verbosity)
    };
    c.send(put("t", &text, 512)).await;
    let seen = c.until("PutSuccessful").await;
    assert_eq!(names(&seen)[..2], ["StartedCompression", "FinishedCompression"]);
    let f = &seen[1];
    assert_eq!((f.get("Codec"), f.get("OriginalSize")), (Some("0"), Some("56000")));
    let packed: usize = f.get("CompressedSize").unwrap().parse().unwrap();
    assert!(packed < 2000, "{packed}");
    let uri = seen.last().unwrap().get("URI").unwrap().to_owned();
    // Incompressible: codec -1, same size. Not asked, or DontCompress: nothing.
    let mut noise = vec![0u8; 5000];
    {
        use rand::{RngCore, SeedableRng};
        rand_chacha::ChaCha8Rng::seed_from_u64(5).fill_bytes(&mut noise);
    }
    c.send(put("n", &noise, 512)).await;
    let f = c.until("PutSuccessful").await.into_iter().find(|m| m.name == "FinishedCompression").unwrap();
    assert_eq!((f.get("Codec"), f.get("CompressedSize")), (Some("-1"), Some("5000")));
    c.send(put("q", &text, 1)).await;
    assert!(!names(&c.until("PutSuccessful").await).iter().any(|n| n.contains("Compression")));
    c.send(put("d", &text, 512).with("DontCompress", "true")).await;
    assert!(!names(&c.until("PutSuccessful").await).iter().any(|n| n.contains("Compression")));

    // ExpectedMIME (32) and ExpectedDataLength (64) come before DataFound.
    c.send(Message::new("ClientGet").with("Identifier", "g").with("URI", &uri).with("Verbosity", 96)).await;
    let seen = c.until("DataFound").await;
    assert_eq!(names(&seen), ["ExpectedMIME", "ExpectedDataLength", "DataFound"]);
    assert_eq!(seen[0].get("Metadata.ContentType"), Some("text/plain"));
    assert_eq!(seen[1].get("DataLength"), Some("56000"));
    c.recv().await;
    c.send(Message::new("ClientGet").with("Identifier", "h").with("URI", &uri).with("Verbosity", 64)).await;
    assert_eq!(names(&c.until("DataFound").await), ["ExpectedDataLength", "DataFound"]);
    c.recv().await;
    c.send(Message::new("ClientGet").with("Identifier", "i").with("URI", &uri)).await;
    assert_eq!(names(&c.until("DataFound").await), ["DataFound"]);
}
