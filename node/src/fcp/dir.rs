//! `ClientPutComplexDir` and `ClientPutDiskDir`: a site (freesite) published the way
//! `pamphlet insert --site` publishes one, through `client::site_transfer::insert_site`
//! (small files inside the site manifest, larger ones as CHKs of their own; for a USK
//! edition above 0 the files unchanged since the previous edition keep their keys).
//!
//! What the client sends becomes a list of (path, bytes):
//! - `Files.N.UploadFrom=direct`: `Files.N.DataLength` bytes of the payload, in N order;
//! - `Files.N.UploadFrom=disk`: `Files.N.Filename`, in a directory this connection passed
//!   `TestDDA` for reading;
//! - `Files.N.UploadFrom=redirect`: `Files.N.TargetURI` is fetched and its bytes become the
//!   file (pamphlet's manifest records each file's hash, so it needs the bytes; a CHK
//!   already in the network is not sent again when unchanged);
//! - `ClientPutDiskDir`: every regular file under `Filename` (a granted directory); hidden
//!   files only with `IncludeHiddenFiles=true`; symbolic links are not followed (they could
//!   lead outside the granted directory).
//!
//! MIME types are pamphlet's guess from name and content (as for `insert --site`; the
//! gateway's filter depends on it); `Files.N.Metadata.ContentType` is checked and ignored.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use pamphlet_crypto::uri::split_site_path;
use pamphlet_crypto::{SskInsertUri, Uri};

use super::codes::{self, failure, protocol, Direction};
use super::dda::Dda;
use super::fields::{boolean, required, Reject};
use super::message::Message;
use super::persist::StoredMessage;
use super::queue::Sink;
use super::request::{common, millis_now, put_failed, strip_prefix, Ctx, Refusal, EDITION_TRIES};
use crate::api::ApiBackend;
use crate::client::pipeline::{self, FetchOptions};
use crate::client::site::{self, DEFAULT_DOCUMENT, MAX_FILES};
use crate::client::site_transfer;

/// How long a site whose redirect target is not found yet waits for this node's running
/// persistent inserts (freesitemgr queues the files' inserts, then the site, at once).
const REDIRECT_WAIT: Duration = Duration::from_secs(600);

/// A file of a site, by where its bytes are.
#[derive(Debug, Clone)]
enum Body {
    /// Bytes in hand.
    Bytes(Vec<u8>),
    /// Bytes to fetch: the URI as the client wrote it, the key, the path inside a site.
    Redirect(String, Box<Uri>, Option<String>),
}

/// A parsed `ClientPutComplexDir` or `ClientPutDiskDir`.
#[derive(Debug)]
pub struct DirJob {
    id: String,
    /// `None`: the site is a CHK.
    target: Option<Box<SskInsertUri>>,
    files: Vec<(String, Body)>,
}

fn invalid(id: &str, why: impl Into<String>) -> Refusal {
    Refusal::Protocol(Reject::new(protocol::INVALID_FIELD, why).about(Some(id)))
}

/// The site's key: `CHK@`, an SSK/USK insert URI, or a KSK.
fn target(id: &str, text: &str) -> Result<Option<Box<SskInsertUri>>, Refusal> {
    if text.eq_ignore_ascii_case("CHK@") || text.eq_ignore_ascii_case("CHK@/") {
        return Ok(None);
    }
    let fail = |why: &str| Refusal::Failed(put_failed(id, codes::put::INVALID_URI, why, true));
    match Uri::parse(text) {
        Ok(Uri::SskInsert(insert)) => Ok(Some(Box::new(insert))),
        Ok(Uri::Ksk(k)) => Ok(Some(Box::new(k.insert_uri()))),
        Ok(Uri::SskRequest(_)) => Err(fail("that is a request URI; publishing needs the insert URI")),
        Ok(_) => Err(fail("a site goes to CHK@, an SSK or USK insert URI, or a KSK")),
        Err(e) => Err(fail(&e.to_string())),
    }
}

/// The fields both messages share: identifier, key, default document.
fn head(m: &Message) -> Result<(String, Option<Box<SskInsertUri>>), Refusal> {
    let id = required(m, "Identifier")?.to_owned();
    let about = |r: Reject| r.about(Some(&id));
    common(m).map_err(about)?;
    if let Some(d) = m.get("DefaultName").filter(|d| !d.is_empty() && *d != DEFAULT_DOCUMENT) {
        let why = format!("DefaultName {d:?}: a pamphlet site's default document is always {DEFAULT_DOCUMENT}");
        return Err(Reject::new(protocol::NOT_SUPPORTED, why).about(Some(&id)).into());
    }
    let target = target(&id, strip_prefix(required(m, "URI").map_err(about)?))?;
    Ok((id, target))
}

/// Reads a `ClientPutComplexDir` (disk files are read now).
pub async fn parse_complex(m: Message, dda: &Dda, max_data: u64) -> Result<DirJob, Refusal> {
    let (id, target) = head(&m)?;
    let payload = m.data.as_deref().unwrap_or_default();
    let mut at = 0usize;
    let mut total = 0u64;
    let mut files = Vec::new();
    for i in 0.. {
        let field = |k: &str| m.get(&format!("Files.{i}.{k}"));
        let Some(name) = field("Name") else { break };
        if i >= MAX_FILES {
            return Err(invalid(&id, format!("a site has at most {MAX_FILES} files")));
        }
        site::check_path(name).map_err(|e| invalid(&id, format!("Files.{i}.Name: {e}")))?;
        let from = field("UploadFrom").unwrap_or("direct").to_ascii_lowercase();
        let body = match from.as_str() {
            "direct" => {
                let len = field("DataLength").and_then(super::message::parse_u64);
                let len = len.and_then(|l| usize::try_from(l).ok()).ok_or_else(|| {
                    Refusal::Protocol(
                        Reject::new(
                            protocol::MISSING_FIELD,
                            format!("Files.{i}.DataLength is missing or not a number"),
                        )
                        .about(Some(&id)),
                    )
                })?;
                let end = at.checked_add(len).filter(|e| *e <= payload.len());
                let Some(end) = end else {
                    return Err(invalid(&id, "the payload is shorter than the files' DataLength"));
                };
                let bytes = payload[at..end].to_vec();
                at = end;
                Body::Bytes(bytes)
            }
            "disk" => {
                let file = field("Filename")
                    .ok_or_else(|| Reject::new(protocol::MISSING_FIELD, format!("Files.{i}.Filename is missing")))
                    .map_err(|r| r.about(Some(&id)))?;
                let path = dda.check(file, false).await.map_err(|r| r.about(Some(&id)))?;
                Body::Bytes(read_file(&id, &path, max_data.saturating_sub(total)).await?)
            }
            "redirect" => {
                let uri = field("TargetURI")
                    .ok_or_else(|| Reject::new(protocol::MISSING_FIELD, format!("Files.{i}.TargetURI is missing")))
                    .map_err(|r| r.about(Some(&id)))?;
                let text = strip_prefix(uri);
                let (key, path) =
                    split_site_path(text).map_err(|e| invalid(&id, format!("Files.{i}.TargetURI: {e}")))?;
                Body::Redirect(text.to_owned(), Box::new(key), path)
            }
            _ => return Err(invalid(&id, format!("Files.{i}.UploadFrom must be direct, disk or redirect"))),
        };
        if let Body::Bytes(b) = &body {
            total += b.len() as u64;
            if total > max_data {
                return Err(invalid(&id, format!("the site is larger than the {max_data} bytes this node accepts")));
            }
        }
        files.push((name.to_owned(), body));
    }
    if at != payload.len() {
        return Err(invalid(&id, "the payload is longer than the files' DataLength add up to"));
    }
    if files.is_empty() {
        return Err(Reject::new(protocol::MISSING_FIELD, "a site needs Files.0.Name").about(Some(&id)).into());
    }
    unique(&id, files.iter().map(|(n, _)| n.as_str()))?;
    Ok(DirJob { id, target, files })
}

/// No name twice, and no file that is also another file's directory.
fn unique<'a>(id: &str, names: impl Iterator<Item = &'a str> + Clone) -> Result<(), Refusal> {
    let mut seen = std::collections::HashSet::new();
    for n in names.clone() {
        if !seen.insert(n) {
            return Err(invalid(id, format!("{n:?} is given twice")));
        }
    }
    for n in names {
        let mut prefix = n;
        while let Some((dir, _)) = prefix.rsplit_once('/') {
            if seen.contains(dir) {
                return Err(invalid(id, format!("{dir:?} is both a file and a directory")));
            }
            prefix = dir;
        }
    }
    Ok(())
}

async fn read_file(id: &str, path: &Path, room: u64) -> Result<Vec<u8>, Refusal> {
    let meta = tokio::fs::symlink_metadata(path).await.ok().filter(std::fs::Metadata::is_file);
    let Some(meta) = meta else {
        return Err(Reject::new(protocol::FILE_NOT_FOUND, format!("{} is not a readable file", path.display()))
            .about(Some(id))
            .into());
    };
    if meta.len() > room {
        return Err(invalid(id, "the site is larger than this node accepts"));
    }
    tokio::fs::read(path).await.map_err(|e| {
        Reject::new(protocol::FILE_NOT_FOUND, format!("cannot read {}: {e}", path.display())).about(Some(id)).into()
    })
}

/// Reads a `ClientPutDiskDir`: the directory's files, now.
pub async fn parse_disk(m: Message, dda: &Dda, max_data: u64) -> Result<DirJob, Refusal> {
    let (id, target) = head(&m)?;
    let about = |r: Reject| r.about(Some(&id));
    let dir = required(&m, "Filename").map_err(about)?;
    let root = dda.check_dir(dir).await.map_err(about)?;
    let hidden = boolean(&m, "IncludeHiddenFiles", false).map_err(about)?
        || boolean(&m, "includeHiddenFiles", false).map_err(about)?;
    let unreadable_ok = boolean(&m, "AllowUnreadableFiles", false).map_err(about)?;
    let walk = tokio::task::spawn_blocking(move || walk(&root, hidden, unreadable_ok, max_data)).await;
    let files = match walk {
        Ok(Ok(files)) => files,
        Ok(Err(why)) => return Err(invalid(&id, why)),
        Err(_) => return Err(invalid(&id, "reading the directory failed")),
    };
    if files.is_empty() {
        return Err(invalid(&id, "the directory holds no file to publish"));
    }
    Ok(DirJob { id, target, files: files.into_iter().map(|(p, b)| (p, Body::Bytes(b))).collect() })
}

/// Every regular file under `root` as (relative path, bytes), sorted; links are skipped.
fn walk(root: &Path, hidden: bool, unreadable_ok: bool, max_data: u64) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out = Vec::new();
    let mut total = 0u64;
    let mut stack: Vec<(PathBuf, String)> = vec![(root.to_owned(), String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && !hidden {
                continue;
            }
            let rel = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
            let Ok(kind) = entry.file_type() else { continue };
            if kind.is_dir() {
                stack.push((entry.path(), rel));
            } else if kind.is_file() {
                site::check_path(&rel).map_err(|e| e.to_string())?;
                match std::fs::read(entry.path()) {
                    Ok(bytes) => {
                        total += bytes.len() as u64;
                        if total > max_data || out.len() >= MAX_FILES {
                            return Err(format!(
                                "the directory holds more than this node accepts ({max_data} bytes, {MAX_FILES} files)"
                            ));
                        }
                        out.push((rel, bytes));
                    }
                    Err(_) if unreadable_ok => {}
                    Err(e) => {
                        return Err(format!("cannot read {rel}: {e} (AllowUnreadableFiles=true skips such files)"))
                    }
                }
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

impl DirJob {
    /// Its URI for listings: the site's request URI, or `CHK@`.
    pub fn describe(&self) -> String {
        match &self.target {
            None => "CHK@".to_owned(),
            Some(t) => shown(t),
        }
    }

    /// The request as a `forever` record keeps it: a `ClientPutComplexDir` whose files are
    /// all direct (disk files as read now) or redirects, and the payload.
    pub fn stored(&self, request: &Message) -> (StoredMessage, Vec<u8>) {
        let mut fields: Vec<(String, String)> = request
            .fields
            .iter()
            .filter(|(k, _)| !k.starts_with("Files.") && k != "Filename" && k != "DataLength")
            .cloned()
            .collect();
        let mut data = Vec::new();
        for (i, (name, body)) in self.files.iter().enumerate() {
            fields.push((format!("Files.{i}.Name"), name.clone()));
            match body {
                Body::Bytes(b) => {
                    fields.push((format!("Files.{i}.UploadFrom"), "direct".into()));
                    fields.push((format!("Files.{i}.DataLength"), b.len().to_string()));
                    data.extend_from_slice(b);
                }
                Body::Redirect(text, ..) => {
                    fields.push((format!("Files.{i}.UploadFrom"), "redirect".into()));
                    fields.push((format!("Files.{i}.TargetURI"), text.clone()));
                }
            }
        }
        (StoredMessage { name: "ClientPutComplexDir".into(), fields }, data)
    }

    /// Bytes the job holds.
    pub fn size(&self) -> usize {
        self.files.iter().map(|(_, b)| if let Body::Bytes(b) = b { b.len() } else { 0 }).sum()
    }

    /// Publishes the site; returns the messages that end it.
    pub async fn run<B: ApiBackend>(self, ctx: Arc<Ctx<B>>, out: Sink) -> Vec<Message> {
        let Self { id, mut target, files } = self;
        let started = millis_now();
        let mut bytes = Vec::with_capacity(files.len());
        for (path, body) in files {
            let data = match body {
                Body::Bytes(b) => b,
                Body::Redirect(_, uri, inner) => match fetch_redirect(&ctx, &uri, inner.as_deref()).await {
                    Ok(b) => b,
                    Err(e) => {
                        let f = failure(&e, Direction::Put);
                        let why = format!("{path}: its TargetURI could not be fetched: {}", f.extra);
                        return vec![put_failed(&id, f.code, &why, f.fatal)];
                    }
                },
            };
            bytes.push((path, data));
        }
        let previous = match target.as_deref_mut() {
            Some(ins) if ins.updatable => next_free_edition(&ctx, ins).await,
            _ => None,
        };
        if let Some(t) = &target {
            let generated = Message::new("URIGenerated").with("Identifier", &id).with("URI", shown(t));
            out.send(generated.with("Global", false)).await;
        }
        let chk = target.is_none();
        let mut attempts = 0;
        let result = loop {
            let attempt = target.as_deref().cloned();
            let r =
                site_transfer::insert_site(&ctx.backend, bytes.clone(), attempt, previous.as_ref(), ctx.parallel).await;
            match (r, target.as_deref_mut()) {
                // Someone published that edition meanwhile: the next one, as fred does.
                (Err(pipeline::PipelineError::Collision), Some(ins)) if ins.updatable && attempts < EDITION_TRIES => {
                    attempts += 1;
                    *ins = ins.with_edition(ins.edition.saturating_add(1));
                }
                (r, _) => break r,
            }
        };
        match result {
            Ok(done) => {
                let uri = done.uri.to_string();
                let success = Message::new("PutSuccessful")
                    .with("Identifier", &id)
                    .with("URI", &uri)
                    .with("Global", false)
                    .with("StartupTime", started)
                    .with("CompletionTime", millis_now());
                let generated =
                    Message::new("URIGenerated").with("Identifier", &id).with("URI", &uri).with("Global", false);
                if chk {
                    vec![generated, success]
                } else {
                    vec![success]
                }
            }
            Err(e) => {
                let f = failure(&e, Direction::Put);
                vec![put_failed(&id, f.code, &f.extra, f.fatal)]
            }
        }
    }
}

/// fred inserts a USK site at the first free edition from the one asked (freesitemgr asks
/// for its last edition again and reads the new one from `PutSuccessful`): finds the
/// newest edition from `ins.edition` on, moves `ins` past it, and returns that edition's
/// manifest so unchanged files keep their keys. With no edition found, `ins` stays and the
/// previous edition's manifest (if any) is used, as `insert --site` does.
async fn next_free_edition<B: ApiBackend>(ctx: &Arc<Ctx<B>>, ins: &mut SskInsertUri) -> Option<site::SiteManifest> {
    let probe = Uri::SskRequest(ins.request_uri().with_edition(ins.edition));
    let options = FetchOptions { parallel: ctx.parallel, partial_dir: None };
    match pipeline::fetch(&ctx.backend, &probe, &options, &|_| {}).await {
        Ok(f) => {
            let found = f.edition.unwrap_or(ins.edition);
            *ins = ins.with_edition(found.saturating_add(1));
            site::SiteManifest::from_bytes(&f.document.data).ok()
        }
        Err(_) if ins.edition > 0 => {
            let earlier = Uri::SskRequest(ins.request_uri().with_edition(ins.edition - 1));
            site_transfer::fetch_manifest(&ctx.backend, &earlier).await
        }
        Err(_) => None,
    }
}

fn shown(t: &SskInsertUri) -> String {
    t.request_uri().to_string()
}

/// A redirect target's bytes. If it is not found and this node is still running
/// persistent inserts (the file's own insert, queued just before the site), waits for
/// them and asks once more.
async fn fetch_redirect<B: ApiBackend>(
    ctx: &Arc<Ctx<B>>,
    uri: &Uri,
    path: Option<&str>,
) -> Result<Vec<u8>, pipeline::PipelineError> {
    let once = || async {
        let options = FetchOptions { parallel: ctx.parallel, partial_dir: None };
        let mut fetched = pipeline::fetch(&ctx.backend, uri, &options, &|_| {}).await?;
        let heal = std::mem::take(&mut fetched.heal);
        let located = site_transfer::resolve(&ctx.backend, fetched, path, &options).await?;
        pipeline::heal(&ctx.backend, heal).await;
        Ok::<_, pipeline::PipelineError>(located.document.data)
    };
    match once().await {
        Ok(b) => Ok(b),
        Err(e) if ctx.queue.running_puts() > 0 => {
            let deadline = tokio::time::Instant::now() + REDIRECT_WAIT;
            while ctx.queue.running_puts() > 0 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            tracing::debug!(error = %e, "a redirect target is not there yet; waiting for this node's inserts");
            once().await
        }
        Err(e) => Err(e),
    }
}
