//! Running persistent requests: a job joins the [`Queue`], a `forever` one is written to
//! the data directory first ([`Store`]), and at start-up [`resume`] reads them back and
//! starts again those that had not finished.
//!
//! A resumed request starts from the beginning: inserting a block twice costs a little
//! traffic and changes nothing (keys are content- or signature-bound), and a fetch
//! re-asks only for what the network lost, so there is no partial state to trust.

use std::path::Path;
use std::sync::Arc;

use super::codes::protocol;
use super::dda::Dda;
use super::dir::{self, DirJob};
use super::fields::Reject;
use super::message::Message;
use super::persist::{self, Record, StoredMessage};
use super::queue::{Key, Owner, Persistence, Refused, Sink};
use super::request::{parse_get, parse_put, Ctx, GetJob, PutJob, Refusal};
use crate::api::ApiBackend;

/// A request ready to run.
#[derive(Debug)]
pub enum Job {
    /// `ClientPut`.
    Put(PutJob),
    /// `ClientGet` (boxed: its URI is large, and jobs are moved around).
    Get(Box<GetJob>),
    /// `ClientPutComplexDir` or `ClientPutDiskDir`.
    Dir(DirJob),
}

impl Job {
    /// `PersistentPut` or `PersistentGet`: how listings name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Job::Put(_) => "PersistentPut",
            Job::Get(_) => "PersistentGet",
            Job::Dir(_) => "PersistentPutDir",
        }
    }

    /// Its URI, for listings.
    pub fn describe(&self) -> String {
        match self {
            Job::Put(j) => j.describe(),
            Job::Get(j) => j.describe(),
            Job::Dir(j) => j.describe(),
        }
    }

    /// The request as a `forever` record keeps it, and its payload. A disk upload is
    /// stored as the bytes read now: the file may change or vanish, and the client's disk
    /// grant ends with its connection.
    fn stored(&self, request: &Message) -> (StoredMessage, Option<Vec<u8>>) {
        match self {
            Job::Put(j) => {
                let mut stored = StoredMessage::from(request);
                stored.fields.retain(|(k, _)| k != "UploadFrom" && k != "Filename" && k != "DataLength");
                stored.fields.push(("UploadFrom".to_owned(), "direct".to_owned()));
                (stored, Some(j.data().to_vec()))
            }
            Job::Get(_) => (StoredMessage::from(request), None),
            Job::Dir(j) => {
                let (stored, data) = j.stored(request);
                (stored, Some(data))
            }
        }
    }

    /// Runs it; returns the messages that end it. The pipelines' futures are large (in
    /// debug builds, past a 2 MiB test thread's stack when moved around): boxed, the
    /// task moves only a pointer.
    pub async fn run<B: ApiBackend>(self, ctx: Arc<Ctx<B>>, out: Sink) -> Vec<Message> {
        match self {
            Job::Put(j) => Box::pin(j.run(ctx, out)).await,
            Job::Get(j) => Box::pin(j.run(ctx, out)).await,
            Job::Dir(j) => Box::pin(j.run(ctx, out)).await,
        }
    }
}

/// Reads a request message into a job.
pub async fn parse(m: Message, dda: &Dda, max_data: u64) -> Result<Job, Refusal> {
    match m.name.as_str() {
        "ClientPut" => parse_put(m, dda, max_data).await.map(Job::Put),
        "ClientPutComplexDir" => dir::parse_complex(m, dda, max_data).await.map(Job::Dir),
        "ClientPutDiskDir" => dir::parse_disk(m, dda, max_data).await.map(Job::Dir),
        _ => parse_get(&m, dda).await.map(|j| Job::Get(Box::new(j))),
    }
}

/// The `PersistentGet`/`PersistentPut` message listings show: fred's fields, from the
/// request as the client sent it.
pub fn tag(request: &Message, job: &Job, persistence: Persistence, global: bool) -> Message {
    let data_len = match job {
        Job::Put(j) => Some(j.data().len()),
        Job::Dir(j) => Some(j.size()),
        Job::Get(_) => None,
    };
    tag_of(request, job.kind(), &job.describe(), data_len, persistence, global)
}

/// [`tag`] from its parts (a finished request read back from disk has no job).
fn tag_of(
    request: &Message,
    kind: &str,
    uri: &str,
    data_len: Option<usize>,
    persistence: Persistence,
    global: bool,
) -> Message {
    let mut m = Message::new(kind)
        .with_opt("Identifier", request.get("Identifier"))
        .with("URI", uri)
        .with("Verbosity", request.get("Verbosity").unwrap_or("0"))
        .with("PriorityClass", request.get("PriorityClass").unwrap_or("2"))
        .with("MaxRetries", request.get("MaxRetries").unwrap_or("0"))
        .with("PersistenceType", persistence.word())
        .with("Global", global)
        .with("Started", true)
        .with("RealTime", request.get("RealTimeFlag").unwrap_or("false"));
    let copied: &[&str] = if kind == "PersistentGet" {
        &["ReturnType", "Filename", "MaxSize"]
    } else {
        &["UploadFrom", "TargetFilename", "Metadata.ContentType", "DontCompress"]
    };
    for k in copied {
        m = m.with_opt(k, request.get(k));
    }
    m.with_opt("DataLength", data_len)
}

/// The tag of a finished request read back from disk: its URI is the one it reported
/// (a put's request URI; never the insert URI it was sent).
fn finished_tag(request: &Message, outcome: &[Message], global: bool) -> Message {
    let get = request.name == "ClientGet";
    let reported = outcome.iter().find_map(|m| m.get("URI"));
    let uri = match (get, reported) {
        (_, Some(u)) => u.to_owned(),
        (true, None) => request.get("URI").unwrap_or_default().to_owned(),
        (false, None) => {
            request.get("URI").and_then(|u| u.split_once('@')).map(|(k, _)| format!("{k}@")).unwrap_or_default()
        }
    };
    let kind = if get { "PersistentGet" } else { "PersistentPut" };
    tag_of(request, kind, &uri, None, Persistence::Forever, global)
}

/// Why a persistent request did not start.
#[derive(Debug)]
pub enum NotStarted {
    /// The owner already has that identifier.
    Collision,
    /// Tell the client this.
    Refused(Message),
}

/// Starts a persistent request: joins the queue, is written to disk if `forever`, runs.
pub async fn start<B: ApiBackend>(
    ctx: &Arc<Ctx<B>>,
    key: Key,
    request: &Message,
    job: Job,
    persistence: Persistence,
) -> Result<(), NotStarted> {
    let tag = tag(request, &job, persistence, key.0.is_global());
    let token = match ctx.queue.add(key.clone(), tag, persistence) {
        Ok(t) => t,
        Err(Refused::Collision) => return Err(NotStarted::Collision),
        Err(Refused::Full) => {
            let why = format!("the node keeps {} persistent requests; remove finished ones", ctx.queue.len());
            return Err(NotStarted::Refused(
                Reject::new(protocol::INTERNAL_ERROR, why).about(Some(&key.1)).to_message(),
            ));
        }
    };
    if let (Persistence::Forever, Some(store)) = (persistence, &ctx.store) {
        let (stored, data) = job.stored(request);
        let record = persist::record(&key, stored, data.as_deref());
        let store = store.clone();
        let saved = tokio::task::spawn_blocking(move || store.save(&record, data.as_deref())).await;
        if !matches!(saved, Ok(Ok(()))) {
            ctx.queue.discard(&key);
            let why = "the node could not write the request to its data directory (see its log)";
            tracing::warn!(?saved, "cannot save a persistent FCP request");
            return Err(NotStarted::Refused(
                Reject::new(protocol::INTERNAL_ERROR, why).about(Some(&key.1)).to_message(),
            ));
        }
    }
    spawn(ctx, key, token, job);
    Ok(())
}

/// Runs a queued job and records how it ended.
fn spawn<B: ApiBackend>(ctx: &Arc<Ctx<B>>, key: Key, token: u64, job: Job) {
    let queue = Arc::clone(&ctx.queue);
    let store = ctx.store.clone();
    let handle = tokio::spawn(job.run(Arc::clone(ctx), Sink::Queue(Arc::clone(&queue), key.clone())));
    queue.started(&key, token, handle.abort_handle());
    tokio::spawn(async move {
        let messages = match handle.await {
            Ok(m) => m,
            // Removed by the client, or the node is stopping (a forever request resumes).
            Err(e) if e.is_cancelled() => return,
            Err(_) => {
                let r =
                    Reject::new(protocol::INTERNAL_ERROR, "the request failed inside the node (a bug: see the log)");
                vec![r.about(Some(&key.1)).to_message()]
            }
        };
        // A fetched document is not written to disk: a finished direct fetch is run
        // again after a restart rather than stored twice.
        let keep = !messages.iter().any(|m| m.name == "AllData");
        if queue.finish(&key, token, messages.clone()) == Some(Persistence::Forever) && keep {
            if let Some(store) = store {
                let still = Arc::clone(&queue);
                let k = key.clone();
                let done =
                    tokio::task::spawn_blocking(move || store.finish(&k, &messages, || still.contains(&k))).await;
                if !matches!(done, Ok(Ok(()))) {
                    tracing::warn!(?done, "cannot record how a persistent FCP request ended");
                }
            }
        }
    });
}

/// Reads the forever requests of the data directory back into the queue and starts the
/// unfinished ones once the node has a peer (or `wait_for_peers` has passed): a node that
/// has just started has no links yet, and a request started at once would fail with
/// "route not found" though its friends are seconds away. Listings show the requests
/// meanwhile. Damaged records are logged and skipped ([`persist::Store::load`]).
pub async fn resume<B: ApiBackend>(ctx: &Arc<Ctx<B>>, max_data: u64, wait_for_peers: std::time::Duration) {
    let Some(store) = ctx.store.clone() else { return };
    let loaded = match tokio::task::spawn_blocking(move || store.load()).await {
        Ok(l) => l,
        Err(_) => return,
    };
    let mut waiting = Vec::new();
    for (record, data) in loaded {
        let Record { owner, identifier, request, outcome, .. } = record;
        let key: Key = (owner, identifier);
        let mut m = Message::from(request);
        if let Some(done) = outcome {
            let done: Vec<Message> = done.into_iter().map(Message::from).collect();
            let tag = finished_tag(&m, &done, key.0.is_global());
            let _ = ctx.queue.restore_finished(key, tag, done);
            continue;
        }
        m.data = data;
        let tag_request = Message { name: m.name.clone(), fields: m.fields.clone(), data: None };
        let dda = resume_grants(&m).await;
        let job = match parse(m, &dda, max_data).await {
            Ok(j) => j,
            Err(e) => {
                tracing::warn!(id = %key.1, ?e, "a persistent FCP request can no longer be read; skipping it");
                continue;
            }
        };
        let tag = tag(&tag_request, &job, Persistence::Forever, key.0.is_global());
        if let Ok(token) = ctx.queue.add(key.clone(), tag, Persistence::Forever) {
            waiting.push((key, token, job));
        }
    }
    if waiting.is_empty() {
        return;
    }
    let ctx = Arc::clone(ctx);
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + wait_for_peers;
        while ctx.backend.status().peers.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        tracing::info!(resumed = waiting.len(), "resuming persistent FCP requests");
        for (key, token, job) in waiting {
            spawn(&ctx, key, token, job);
        }
    });
}

/// A resumed fetch to disk may write where its client was allowed to when it asked.
async fn resume_grants(m: &Message) -> Dda {
    let mut dda = Dda::default();
    if m.name == "ClientGet" && m.get("ReturnType").is_some_and(|r| r.eq_ignore_ascii_case("disk")) {
        if let Some(parent) = m.get("Filename").and_then(|f| Path::new(f).parent()) {
            if let Ok(dir) = tokio::fs::canonicalize(parent).await {
                dda.grant(dir, false, true);
            }
        }
    }
    dda
}

/// `RemoveRequest` of a persistent request: forgets it, on disk too.
pub async fn remove<B: ApiBackend>(ctx: &Arc<Ctx<B>>, key: &Key) -> bool {
    match ctx.queue.remove(key) {
        None => false,
        Some(Persistence::Reboot) => true,
        Some(Persistence::Forever) => {
            if let Some(store) = ctx.store.clone() {
                let k = key.clone();
                let _ = tokio::task::spawn_blocking(move || store.remove(&k)).await;
            }
            true
        }
    }
}

/// The owner of a request from `client` with the `Global` flag.
pub fn owner(client: &str, global: bool) -> Owner {
    if global {
        Owner::Global
    } else {
        Owner::Client(client.to_owned())
    }
}
