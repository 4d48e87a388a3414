//! `ClientPut` and `ClientGet`: reading a request's fields into a job, and running the
//! job on the same client pipelines the JSON API uses (`pipeline::insert_chk`,
//! `pipeline::insert_signed`, `pipeline::fetch`).
//!
//! A job ends with the messages that finish it (`PutSuccessful`, `GetFailed`, …); the
//! session sends those after it has freed the job's `Identifier`, so a client that reuses
//! an identifier as soon as it sees the answer (pyfreenet does, following a redirect) is
//! never told it collided.

use std::path::PathBuf;
use std::sync::Arc;

use pamphlet_crypto::uri::split_site_path;
use pamphlet_crypto::{Block, SskInsertUri, Uri};

use super::codes::{self, failure, protocol, Direction};
use super::dda::Dda;
use super::fields::{boolean, choice, number, required, signed, Reject};
use super::message::Message;
use super::queue::{Persistence, Sink};
use crate::api::ApiBackend;
use crate::client::pipeline::{self, FetchOptions};
use crate::client::splitfile::{self, InsertOptions, Progress};
use crate::client::{fec, signed as signed_doc, site_transfer};

/// Editions a USK insert moves on after collisions before it gives up.
pub(super) const EDITION_TRIES: u32 = 16;

/// Bit of `Verbosity` that asks for `SimpleProgress`.
const VERBOSITY_SIMPLE_PROGRESS: u64 = 1;
/// `ClientGet`: asks for `ExpectedMIME` (fred's `VERBOSITY_EXPECTED_TYPE`).
const VERBOSITY_EXPECTED_TYPE: u64 = 32;
/// `ClientGet`: asks for `ExpectedDataLength` (fred's `VERBOSITY_EXPECTED_SIZE`).
const VERBOSITY_EXPECTED_SIZE: u64 = 64;
/// `ClientPut`: asks for `StartedCompression`/`FinishedCompression`.
const VERBOSITY_COMPRESSION: u64 = 512;

/// At most one `SimpleProgress` per request this often (and the last one always): a
/// client loop like pyfreenet's handles one incoming message per 0.1 s poll, so a message
/// per block would slow a 5 MiB fetch by tens of seconds.
const PROGRESS_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

/// Decides which progress updates are sent.
#[derive(Debug, Default)]
struct Throttle(std::sync::Mutex<Option<std::time::Instant>>);

impl Throttle {
    fn due(&self, last: bool) -> bool {
        let mut at = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = std::time::Instant::now();
        if last || at.is_none_or(|t| now.duration_since(t) >= PROGRESS_INTERVAL) {
            *at = Some(now);
            true
        } else {
            false
        }
    }
}

/// Where a put goes.
#[derive(Debug)]
enum Target {
    /// `CHK@` (optionally `CHK@/name`).
    Chk,
    /// An SSK/USK insert URI or a KSK's derived one; `shown` is the URI reported back.
    Signed { insert: Box<SskInsertUri>, shown: String },
}

/// A parsed `ClientPut`.
#[derive(Debug)]
pub struct PutJob {
    id: String,
    target: Target,
    data: Vec<u8>,
    options: InsertOptions,
    verbosity: u64,
    chk_only: bool,
}

/// What a `ClientGet` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReturnType {
    Direct,
    None,
    Disk,
}

/// A parsed `ClientGet`.
#[derive(Debug)]
pub struct GetJob {
    id: String,
    uri: Uri,
    /// The path after the key: a file of a site (or a file-name hint).
    path: Option<String>,
    return_type: ReturnType,
    max_size: u64,
    verbosity: u64,
    file: Option<PathBuf>,
}

/// Why a request does not become a job: a `ProtocolError`, or a request-level failure
/// (`PutFailed`/`GetFailed`) decided before any work.
#[derive(Debug)]
pub enum Refusal {
    /// Send this `ProtocolError`.
    Protocol(Reject),
    /// Send this failure message.
    Failed(Message),
}

impl From<Reject> for Refusal {
    fn from(r: Reject) -> Self {
        Refusal::Protocol(r)
    }
}

/// What runs the jobs.
#[derive(Debug)]
pub struct Ctx<B> {
    /// The node.
    pub backend: Arc<B>,
    /// Block requests in flight per job.
    pub parallel: usize,
    /// Persistent requests and the global queue.
    pub queue: Arc<super::queue::Queue>,
    /// Where `forever` requests are kept (none: `forever` lasts until the node stops).
    pub store: Option<super::persist::Store>,
}

/// `Persistence` and `Global`: `None` for `connection`; the global queue needs a
/// persistent request (as fred says).
pub fn persistence(m: &Message) -> Result<(Option<Persistence>, bool), Reject> {
    let word = choice(m, "Persistence", &["connection", "reboot", "forever"], "connection")?.to_ascii_lowercase();
    let persistence = match word.as_str() {
        "reboot" => Some(Persistence::Reboot),
        "forever" => Some(Persistence::Forever),
        _ => None,
    };
    let global = boolean(m, "Global", false)?;
    if global && persistence.is_none() {
        return Err(Reject::new(protocol::INVALID_FIELD, "Global=true needs Persistence=reboot or forever"));
    }
    Ok((persistence, global))
}

/// Checks the fields every request shares: persistence, queue, priority, retries.
pub(super) fn common(m: &Message) -> Result<u64, Reject> {
    persistence(m)?;
    if number(m, "PriorityClass")?.is_some_and(|p| p > 6) {
        return Err(Reject::new(protocol::INVALID_FIELD, "PriorityClass must be 0 (highest) to 6 (lowest)"));
    }
    if signed(m, "MaxRetries")?.is_some_and(|r| r < -1) {
        return Err(Reject::new(protocol::INVALID_FIELD, "MaxRetries must be -1 (forever) or more"));
    }
    boolean(m, "RealTimeFlag", false)?;
    if boolean(m, "LocalRequestOnly", false)? || boolean(m, "DSOnly", false)? {
        return Err(Reject::new(protocol::NOT_SUPPORTED, "requests that stay in the local store are not supported"));
    }
    boolean(m, "IgnoreDS", false)?;
    Ok(number(m, "Verbosity")?.unwrap_or(0))
}

pub(super) fn strip_prefix(uri: &str) -> &str {
    let uri = uri.trim();
    match uri.get(..8) {
        Some(p) if p.eq_ignore_ascii_case("freenet:") => &uri[8..],
        _ => uri,
    }
}

pub(super) fn put_failed(id: &str, code: u32, extra: &str, fatal: bool) -> Message {
    failed("PutFailed", codes::put::description(code), id, code, extra, fatal)
}

fn get_failed(id: &str, code: u32, extra: &str, fatal: bool) -> Message {
    failed("GetFailed", codes::get::description(code), id, code, extra, fatal)
}

/// `PutFailed` / `GetFailed`: the same fields, each direction with its own descriptions.
fn failed(name: &str, (short, long): (&str, &str), id: &str, code: u32, extra: &str, fatal: bool) -> Message {
    Message::new(name)
        .with("Identifier", id)
        .with("Global", false)
        .with("Code", code)
        .with("CodeDescription", long)
        .with("ShortCodeDescription", short)
        .with("ExtraDescription", extra)
        .with("Fatal", fatal)
}

/// Reads a `ClientPut` (and, for `UploadFrom=disk`, the file) into a job.
pub async fn parse_put(m: Message, dda: &Dda, max_data: u64) -> Result<PutJob, Refusal> {
    let id = required(&m, "Identifier")?.to_owned();
    let about = |r: Reject| r.about(Some(&id));
    let uri_text = strip_prefix(required(&m, "URI").map_err(about)?).to_owned();
    let verbosity = common(&m).map_err(about)?;
    let chk_only = boolean(&m, "GetCHKOnly", false).map_err(about)?;
    let compress = !boolean(&m, "DontCompress", false).map_err(about)?;
    let mime = m.get("Metadata.ContentType").map(str::to_owned);
    if let Some(mt) = &mime {
        let ok = mt.split_once('/').is_some_and(|(a, b)| !a.is_empty() && !b.is_empty())
            && mt.len() <= 128
            && !mt.chars().any(|c| c.is_whitespace() && c != ' ');
        if !ok {
            return Err(about(Reject::new(
                protocol::BAD_MIME_TYPE,
                "Metadata.ContentType must look like type/subtype",
            ))
            .into());
        }
    }
    let mut name = m.get("TargetFilename").filter(|n| !n.is_empty()).map(str::to_owned);
    if let Some(n) = &name {
        if pamphlet_crypto::uri::validate_doc_name(n).is_err() {
            return Err(
                about(Reject::new(protocol::INVALID_FIELD, "TargetFilename must be a file name without '/'")).into()
            );
        }
    }
    let target = match Uri::parse(&uri_text) {
        Ok(Uri::SskInsert(insert)) => {
            let shown = insert.request_uri().to_string();
            Target::Signed { insert: Box::new(insert), shown }
        }
        Ok(Uri::Ksk(k)) => Target::Signed { shown: format!("KSK@{}", k.keyword), insert: Box::new(k.insert_uri()) },
        Ok(Uri::SskRequest(_)) => {
            let why = "that is a request URI; inserting needs the insert URI (the one with the private key)";
            return Err(Refusal::Failed(put_failed(&id, codes::put::INVALID_URI, why, true)));
        }
        Ok(_) => {
            let why = "a CHK's key is computed from the content: insert to CHK@";
            return Err(Refusal::Failed(put_failed(&id, codes::put::INVALID_URI, why, true)));
        }
        Err(e) => match uri_text.get(..4).filter(|k| k.eq_ignore_ascii_case("CHK@")).map(|_| &uri_text[4..]) {
            Some("") => Target::Chk,
            Some(rest) if rest.starts_with('/') && pamphlet_crypto::uri::validate_doc_name(&rest[1..]).is_ok() => {
                name = name.or_else(|| Some(rest[1..].to_owned()));
                Target::Chk
            }
            _ => return Err(Refusal::Failed(put_failed(&id, codes::put::INVALID_URI, &e.to_string(), true))),
        },
    };
    let upload =
        choice(&m, "UploadFrom", &["direct", "disk", "redirect"], "direct").map_err(about)?.to_ascii_lowercase();
    let data = match (upload.as_str(), m.data) {
        ("direct", Some(d)) => d,
        ("direct", None) => {
            return Err(
                about(Reject::new(protocol::MISSING_FIELD, "UploadFrom=direct needs DataLength and Data")).into()
            )
        }
        ("disk", None) => {
            let file = dda
                .check(required_owned(&m.fields, "Filename").map_err(about)?.as_str(), false)
                .await
                .map_err(about)?;
            let meta = tokio::fs::metadata(&file).await.ok().filter(std::fs::Metadata::is_file);
            let Some(meta) = meta else {
                return Err(about(Reject::new(protocol::FILE_NOT_FOUND, "Filename is not a readable file")).into());
            };
            if meta.len() > max_data {
                let why = format!("the file is larger than the {max_data} bytes this node accepts");
                return Err(about(Reject::new(protocol::INVALID_FIELD, why)).into());
            }
            tokio::fs::read(&file)
                .await
                .map_err(|e| about(Reject::new(protocol::FILE_NOT_FOUND, format!("cannot read Filename: {e}"))))?
        }
        ("disk", Some(_)) => {
            return Err(about(Reject::new(protocol::INVALID_FIELD, "UploadFrom=disk takes no Data")).into());
        }
        _ => {
            return Err(about(Reject::new(protocol::NOT_SUPPORTED, "UploadFrom=redirect is not supported yet")).into());
        }
    };
    let options = InsertOptions { name, mime, redundancy: fec::DEFAULT_REDUNDANCY, compress };
    Ok(PutJob { id, target, data, options, verbosity, chk_only })
}

fn required_owned(fields: &[(String, String)], key: &str) -> Result<String, Reject> {
    fields
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .ok_or_else(|| Reject::new(protocol::MISSING_FIELD, format!("ClientPut needs the field {key}")))
}

/// Reads a `ClientGet` into a job.
pub async fn parse_get(m: &Message, dda: &Dda) -> Result<GetJob, Refusal> {
    let id = required(m, "Identifier")?.to_owned();
    let about = |r: Reject| r.about(Some(&id));
    let uri_text = strip_prefix(required(m, "URI").map_err(about)?);
    let verbosity = common(m).map_err(about)?;
    let max_size = number(m, "MaxSize").map_err(about)?.unwrap_or(u64::MAX);
    let return_type = match choice(m, "ReturnType", &["direct", "none", "disk"], "direct").map_err(about)? {
        r if r.eq_ignore_ascii_case("none") => ReturnType::None,
        r if r.eq_ignore_ascii_case("disk") => ReturnType::Disk,
        _ => ReturnType::Direct,
    };
    let file = if return_type == ReturnType::Disk {
        let path = dda.check(required(m, "Filename").map_err(about)?, true).await.map_err(about)?;
        if tokio::fs::symlink_metadata(&path).await.is_ok() {
            return Err(about(Reject::new(protocol::DISK_TARGET_EXISTS, "Filename already exists")).into());
        }
        Some(path)
    } else {
        None
    };
    // A path after the key names a file inside a site (`USK@…/site/3/about/team.html`).
    let (uri, path) = split_site_path(uri_text)
        .map_err(|e| Refusal::Failed(get_failed(&id, codes::get::INVALID_URI, &e.to_string(), true)))?;
    Ok(GetJob { id, uri, path, return_type, max_size, verbosity, file })
}

/// `StartedCompression` (sent at once) and `FinishedCompression` with the sizes the
/// insert's own compression gives (the same deterministic `compress::maybe_compress` the
/// pipeline runs: deflate, which FCP calls GZIP, codec 0; -1 when it does not pay). The
/// pipeline compresses inside its encoder, so this runs it once more, only for clients
/// that ask (Verbosity bit 512).
async fn compression_messages(id: &str, data: &[u8], out: &Sink) -> Vec<Message> {
    out.send(Message::new("StartedCompression").with("Identifier", id).with("Codec", "GZIP").with("Global", false))
        .await;
    let copy = data.to_vec();
    let packed = tokio::task::spawn_blocking(move || crate::client::compress::maybe_compress(&copy).map(|p| p.len()))
        .await
        .ok()
        .flatten();
    let (codec, size) = match packed {
        Some(len) => (0, len),
        None => (-1, data.len()),
    };
    vec![Message::new("FinishedCompression")
        .with("Identifier", id)
        .with("Codec", codec)
        .with("OriginalSize", data.len())
        .with("CompressedSize", size)
        .with("Global", false)]
}

pub(super) fn millis_now() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

fn simple_progress(id: &str, succeeded: usize, required: usize, failed: usize) -> Message {
    Message::new("SimpleProgress")
        .with("Identifier", id)
        .with("Global", false)
        .with("Total", required)
        .with("Required", required)
        .with("Failed", failed)
        .with("FatallyFailed", 0)
        .with("Succeeded", succeeded)
        .with("FinalizedTotal", true)
}

impl PutJob {
    /// The request's identifier.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The bytes to insert.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The URI and kind, for `ListPersistentRequests`.
    pub fn describe(&self) -> String {
        match &self.target {
            Target::Chk => "CHK@".to_owned(),
            Target::Signed { shown, .. } => shown.clone(),
        }
    }

    /// Runs the insert; returns the messages that end it. Progress goes to `out` when the
    /// client asked for it and has room for it (progress is dropped, never queued without
    /// bound, for a client that does not read).
    pub async fn run<B: ApiBackend>(self, ctx: Arc<Ctx<B>>, out: Sink) -> Vec<Message> {
        let Self { id, target, data, options, verbosity, chk_only } = self;
        let started = millis_now();
        let generated =
            |uri: &str| Message::new("URIGenerated").with("Identifier", &id).with("URI", uri).with("Global", false);
        let success = |uri: &str| {
            Message::new("PutSuccessful")
                .with("Identifier", &id)
                .with("URI", uri)
                .with("Global", false)
                .with("StartupTime", started)
                .with("CompletionTime", millis_now())
        };
        if let Target::Signed { shown, .. } = &target {
            out.send(generated(shown)).await;
        }
        let throttle = Throttle::default();
        let progress = |done: usize, total: usize| {
            if verbosity & VERBOSITY_SIMPLE_PROGRESS != 0 && throttle.due(done == total) {
                out.try_send(simple_progress(&id, done, total, 0));
            }
        };
        let internal = |e: String| put_failed(&id, codes::put::INTERNAL_ERROR, &e, false);
        if verbosity & VERBOSITY_COMPRESSION != 0 && options.compress {
            for m in compression_messages(&id, &data, &out).await {
                out.send(m).await;
            }
        }
        match (target, chk_only) {
            (Target::Chk, true) => {
                let name = options.name.clone();
                match tokio::task::spawn_blocking(move || splitfile::encode(&data, &options)).await {
                    Ok(Ok(mut e)) => {
                        e.top.name = name;
                        let uri = e.top.to_string();
                        vec![generated(&uri), success(&uri)]
                    }
                    Ok(Err(e)) => vec![internal(e.to_string())],
                    Err(e) => vec![internal(e.to_string())],
                }
            }
            (Target::Signed { insert, shown }, true) => {
                match tokio::task::spawn_blocking(move || signed_doc::encode(&insert, &data, &options)).await {
                    Ok(Ok(_)) => vec![success(&shown)],
                    Ok(Err(e)) => vec![internal(e.to_string())],
                    Err(e) => vec![internal(e.to_string())],
                }
            }
            (Target::Chk, false) => {
                let name = options.name.clone();
                match pipeline::insert_chk(&ctx.backend, data, options, ctx.parallel, &progress).await {
                    Ok(mut top) => {
                        top.name = name;
                        let uri = top.to_string();
                        vec![generated(&uri), success(&uri)]
                    }
                    Err(e) => {
                        let f = failure(&e, Direction::Put);
                        vec![put_failed(&id, f.code, &f.extra, f.fatal)]
                    }
                }
            }
            (Target::Signed { insert, shown }, false) if !insert.updatable => {
                match pipeline::insert_signed(&ctx.backend, *insert, data, options, ctx.parallel, &progress).await {
                    Ok(_) => vec![success(&shown)],
                    Err(e) => {
                        let f = failure(&e, Direction::Put);
                        vec![put_failed(&id, f.code, &f.extra, f.fatal)]
                    }
                }
            }
            // A USK edition that holds other content: the next one, as fred's USK inserter
            // does (at most EDITION_TRIES times); `PutSuccessful` names the edition used.
            (Target::Signed { mut insert, .. }, false) => {
                let mut tries = 0;
                loop {
                    let attempt = pipeline::insert_signed(
                        &ctx.backend,
                        (*insert).clone(),
                        data.clone(),
                        options.clone(),
                        ctx.parallel,
                        &progress,
                    )
                    .await;
                    match attempt {
                        Ok(uri) => break vec![success(&uri.to_string())],
                        Err(pipeline::PipelineError::Collision) if tries < EDITION_TRIES => {
                            tries += 1;
                            *insert = insert.with_edition(insert.edition.saturating_add(1));
                        }
                        Err(e) => {
                            let f = failure(&e, Direction::Put);
                            break vec![put_failed(&id, f.code, &f.extra, f.fatal)];
                        }
                    }
                }
            }
        }
    }
}

impl GetJob {
    /// The request's identifier.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The URI, for `ListPersistentRequests`.
    pub fn describe(&self) -> String {
        match &self.path {
            Some(p) => format!("{}/{p}", self.uri),
            None => self.uri.to_string(),
        }
    }

    /// Runs the fetch; returns the messages that end it.
    pub async fn run<B: ApiBackend>(self, ctx: Arc<Ctx<B>>, out: Sink) -> Vec<Message> {
        let Self { id, uri, path, return_type, max_size, verbosity, file } = self;
        let started = millis_now();
        let requested_edition = match &uri {
            Uri::SskRequest(r) if r.updatable => Some(r.edition),
            Uri::SskInsert(i) if i.updatable => Some(i.edition),
            _ => None,
        };
        let throttle = Throttle::default();
        let progress = |p: Progress| {
            if verbosity & VERBOSITY_SIMPLE_PROGRESS != 0 && throttle.due(p.blocks_have == p.blocks_needed) {
                out.try_send(simple_progress(&id, p.blocks_have, p.blocks_needed, p.blocks_failed));
            }
        };
        let options = FetchOptions { parallel: ctx.parallel, partial_dir: None };
        let mut fetched = match pipeline::fetch(&ctx.backend, &uri, &options, &progress).await {
            Ok(f) => f,
            Err(e) => {
                let f = failure(&e, Direction::Get);
                return vec![get_failed(&id, f.code, &f.extra, f.fatal)];
            }
        };
        // Healing: put back what had to be rebuilt (as the JSON API does).
        if !fetched.heal.is_empty() {
            let backend = Arc::clone(&ctx.backend);
            let heal = std::mem::take(&mut fetched.heal);
            tokio::spawn(async move {
                for block in heal {
                    let _ = backend.insert(Block::Chk(block)).await;
                }
            });
        }
        if let (Some(asked), Some(found)) = (requested_edition, fetched.edition) {
            if asked != found {
                // fred's answer to an older USK edition: fetch the newer URI instead.
                let newer = match &uri {
                    Uri::SskRequest(r) => r.with_edition(found).to_string(),
                    Uri::SskInsert(i) => i.request_uri().with_edition(found).to_string(),
                    _ => String::new(),
                };
                let newer = match &path {
                    Some(p) => format!("{newer}/{p}"),
                    None => newer,
                };
                let why = format!("edition {found} is the latest found");
                return vec![get_failed(&id, codes::get::PERMANENT_REDIRECT, &why, false).with("RedirectURI", newer)];
            }
        }
        // A site: the file the path names (the default document without a path).
        let doc = match site_transfer::resolve(&ctx.backend, fetched, path.as_deref(), &options).await {
            Ok(located) => located.document,
            Err(e) => {
                let f = failure(&e, Direction::Get);
                return vec![get_failed(&id, f.code, &f.extra, f.fatal)];
            }
        };
        let len = doc.data.len() as u64;
        let mime = doc.mime.unwrap_or_else(|| "application/octet-stream".to_owned());
        // fred sends these as soon as the metadata says; pamphlet's pipeline reports them
        // with the document, so they come just before `DataFound` (or `GetFailed` 21).
        if verbosity & VERBOSITY_EXPECTED_TYPE != 0 {
            let m = Message::new("ExpectedMIME").with("Identifier", &id).with("Metadata.ContentType", &mime);
            out.send(m.with("Global", false)).await;
        }
        if verbosity & VERBOSITY_EXPECTED_SIZE != 0 {
            out.send(
                Message::new("ExpectedDataLength")
                    .with("Identifier", &id)
                    .with("DataLength", len)
                    .with("Global", false),
            )
            .await;
        }
        if len > max_size {
            let why = format!("the document has {len} bytes; MaxSize is {max_size}");
            return vec![get_failed(&id, codes::get::TOO_BIG, &why, true).with("ExpectedDataLength", len)];
        }
        let found = Message::new("DataFound")
            .with("Identifier", &id)
            .with("Global", false)
            .with("Metadata.ContentType", &mime)
            .with("DataLength", len)
            .with("StartupTime", started)
            .with("CompletionTime", millis_now());
        match return_type {
            ReturnType::None => vec![found],
            ReturnType::Disk => {
                let Some(path) = file else { return vec![found] };
                let write = async {
                    use tokio::io::AsyncWriteExt;
                    let mut f = tokio::fs::OpenOptions::new().write(true).create_new(true).open(&path).await?;
                    f.write_all(&doc.data).await?;
                    f.sync_all().await
                };
                match write.await {
                    Ok(()) => vec![found],
                    Err(e) => {
                        let r = Reject::new(protocol::COULD_NOT_WRITE_FILE, format!("cannot write Filename: {e}"));
                        vec![r.about(Some(&id)).to_message()]
                    }
                }
            }
            ReturnType::Direct => {
                let all = Message {
                    data: Some(doc.data),
                    ..Message::new("AllData")
                        .with("Identifier", &id)
                        .with("Global", false)
                        .with("StartupTime", started)
                        .with("CompletionTime", millis_now())
                        .with("Metadata.ContentType", &mime)
                };
                vec![found, all]
            }
        }
    }
}
