//! The async insert and fetch pipelines (feature `net`): the sans-IO splitfile and signed
//! machines of this module, driven over any [`BlockNetwork`] with bounded parallelism.
//!
//! The daemon implements [`BlockNetwork`] over its node; tests implement it over a map.
//! Blocks of an interrupted fetch are kept in a [`PartialDir`] so the next run resumes.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use pamphlet_crypto::{Block, BlockKind, ChkBlock, ChkUri, RoutingKey, SskInsertUri, SskRequestUri, Uri};
use sha2::{Digest, Sha256};
use tokio::task::{JoinError, JoinSet};

use super::retry::Tries;
use super::signed::{self, LatestSearch, SskPayload};
use super::splitfile::{self, Document, Fetch, InsertOptions, Progress};
use super::window::{Window, MAX_WINDOW};

mod partial;
use super::ClientError;
use crate::node::Failure;
pub use partial::PartialDir;

/// What became of an insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InsertOutcome {
    /// The block was stored (or was already present). `displaced`: a sink on its route
    /// could not keep it for good (full store area, or its cache only).
    Stored {
        /// A sink dropped older data for it, or kept it in its cache only.
        displaced: bool,
    },
    /// An SSK slot already holds a different block: the network keeps the first.
    Collision(Block),
}

/// One-block operations on the network. Each call is one request through the local node.
pub trait BlockNetwork: Send + Sync + 'static {
    /// Fetches one block; the node has verified it against `key`.
    fn fetch(&self, kind: BlockKind, key: RoutingKey) -> impl Future<Output = Result<Block, Failure>> + Send;
    /// Inserts one (already verified) block.
    fn insert(&self, block: Block) -> impl Future<Output = Result<InsertOutcome, Failure>> + Send;
    /// Inserts the block a URI names (a document's top block, a signed block): the node
    /// flags the insert so the nodes on its path keep it wider (issue 20,
    /// `node::DurabilityConfig`). A network with no such rule inserts it as any block.
    fn insert_top(&self, block: Block) -> impl Future<Output = Result<InsertOutcome, Failure>> + Send {
        self.insert(block)
    }
}

/// Why a document could not be fetched or inserted. Every variant keeps (or is) a
/// [`Failure`] kind: [`PipelineError::failure`] says which, without a wildcard.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// The content itself is bad or could not be rebuilt.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The first block (the manifest or the signed block) could not be fetched.
    #[error("the document could not be fetched: {0}")]
    Top(Failure),
    /// No edition of an updatable document was found at or after the hint.
    #[error("no edition at or after {0} could be found")]
    NoEdition(u64),
    /// An insert failed.
    #[error("insert failed: {0}")]
    Insert(Failure),
    /// Too many blocks of a segment failed to rebuild it, and not (only) because they were
    /// not found: `cause` is the last other failure (a timeout is not a "not found").
    #[error("{missing} of {of} blocks of a segment could not be fetched ({cause}); too few remain to rebuild it")]
    Blocks {
        /// Blocks of the segment that failed.
        missing: usize,
        /// Blocks the segment has (data and check).
        of: usize,
        /// Why blocks failed, other than not being found.
        cause: Failure,
    },
    /// A task of the pipeline ended abnormally: it panicked (a bug) or was cancelled.
    #[error("a task of the transfer ended abnormally: {0}")]
    Task(Failure),
    /// The signed slot already holds different content.
    #[error("that name and edition already hold different content; publish a new edition")]
    Collision,
    /// The partial-download directory could not be used.
    #[error("cannot use the resume directory {path}: {source}")]
    Partial {
        /// The directory.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

impl PipelineError {
    /// The failure kind this error reaches the person as.
    pub fn failure(&self) -> Failure {
        match self {
            Self::Client(ClientError::NotFound { .. }) => Failure::NotFound { htl: None, peers_tried: None },
            Self::Client(ClientError::BadOption(_)) => Failure::BadInput,
            Self::Client(ClientError::Site(super::site::SiteError::NoSuchFile(_))) => {
                Failure::NotFound { htl: None, peers_tried: None }
            }
            Self::Client(ClientError::Site(_)) => Failure::InvalidData,
            // A block that verified against its routing key but does not decrypt or decode,
            // or a document that does not match its hash: the publisher's (or a forger's)
            // data, or a wrong decryption key in the URI.
            Self::Client(
                ClientError::Block(_) | ClientError::BadManifest(_) | ClientError::HashMismatch | ClientError::Fec(_),
            ) => Failure::InvalidData,
            Self::Top(f) | Self::Insert(f) | Self::Task(f) | Self::Blocks { cause: f, .. } => f.clone(),
            Self::NoEdition(_) => Failure::NotFound { htl: None, peers_tried: None },
            Self::Collision => Failure::Collision,
            Self::Partial { .. } => Failure::Io,
        }
    }
}

/// What a task that did not return means: a panic is a bug (internal), anything else was
/// cancelled. Never "not found".
fn task_failure(e: &JoinError) -> PipelineError {
    if e.is_panic() {
        tracing::error!(error = %e, "a transfer task panicked");
        PipelineError::Task(Failure::Internal)
    } else {
        PipelineError::Task(Failure::Cancelled)
    }
}

/// Knobs of a fetch.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Block requests in flight at once.
    pub parallel: usize,
    /// Where to keep blocks of an interrupted fetch (`None`: no resume).
    pub partial_dir: Option<PathBuf>,
}

impl Default for FetchOptions {
    fn default() -> Self {
        Self { parallel: 8, partial_dir: None }
    }
}

/// A fetched document and what the fetch learned on the way.
#[derive(Debug)]
pub struct Fetched {
    /// The verified document.
    pub document: Document,
    /// The edition fetched, for updatable URIs.
    pub edition: Option<u64>,
    /// Blocks that were missing and were rebuilt: insert them to heal the file.
    pub heal: Vec<ChkBlock>,
    /// Block requests sent to the network.
    pub requests: usize,
    /// Of those, blocks the network could not find (FEC filled in for them).
    pub not_found: usize,
    /// Of the requests, those that asked again for a block (or a USK edition) whose
    /// earlier request timed out or found no route, or was not found once ([`super::retry`]).
    pub retries: usize,
    /// For a USK: some edition above the one fetched stayed unknown (its probes timed out
    /// every time), so a newer edition may exist. The document is the newest *found*.
    pub may_be_stale: bool,
}

/// Fetches whatever `uri` names: a CHK splitfile, an SSK/KSK document, or the latest
/// edition of a USK at or after the one it names.
pub async fn fetch<N: BlockNetwork>(
    net: &Arc<N>,
    uri: &Uri,
    options: &FetchOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Fetched, PipelineError> {
    fetch_probing(net, uri, options, false, progress).await
}

/// [`fetch`]; with `probe_all`, every block of the document is asked for and every one the
/// network lacks is rebuilt into [`Fetched::heal`] ([`Fetch::probing_every_block`]).
pub(super) async fn fetch_probing<N: BlockNetwork>(
    net: &Arc<N>,
    uri: &Uri,
    options: &FetchOptions,
    probe_all: bool,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Fetched, PipelineError> {
    let request = match uri {
        Uri::Chk(chk) => return fetch_chk(net, chk, options, probe_all, progress).await,
        Uri::SskRequest(r) => r.clone(),
        Uri::SskInsert(i) => i.request_uri(),
        Uri::Ksk(k) => k.request_uri(),
        _ => return Err(ClientError::BadOption("unsupported URI kind".into()).into()),
    };
    let signed = resolve_signed(net, &request).await?;
    match signed.payload {
        SskPayload::Inline(data) => Ok(Fetched {
            document: Document { data, name: None, mime: None },
            edition: signed.edition,
            heal: Vec::new(),
            requests: 1 + signed.retries,
            not_found: 0,
            retries: signed.retries,
            may_be_stale: signed.may_be_stale,
        }),
        SskPayload::Redirect { routing_key, key } => {
            let top = SskPayload::redirect_uri(routing_key, key);
            let mut f = fetch_chk(net, &top, options, probe_all, progress).await?;
            f.edition = signed.edition;
            f.requests += 1 + signed.retries;
            f.retries += signed.retries;
            f.may_be_stale = signed.may_be_stale;
            Ok(f)
        }
    }
}

/// A signed block found and decoded, and how sure the search is that it is the latest.
struct Signed {
    /// The edition (USKs).
    edition: Option<u64>,
    payload: SskPayload,
    /// Requests sent again.
    retries: usize,
    /// A newer edition may exist (see [`Fetched::may_be_stale`]).
    may_be_stale: bool,
}

/// Fetches one block, sending a fresh request (which the node routes anew, around the
/// peers that failed it) while the failure is worth it and tries remain.
async fn fetch_retrying<N: BlockNetwork>(
    net: &Arc<N>,
    kind: BlockKind,
    key: RoutingKey,
    tries: &mut Tries,
) -> Result<Block, Failure> {
    loop {
        match net.fetch(kind, key).await {
            Err(e) if tries.retry_fetch(key, &e) => tracing::debug!(error = %e, "fetching a block again"),
            result => return result.map_err(|e| tries.settle(key, e)),
        }
    }
}

/// Fetches the signed block a request URI names (the latest edition for a USK) and
/// decodes its payload.
///
/// A USK edition probe that fails without settling that the edition is absent (it timed
/// out, the key was busy: [`super::retry::settles_absence`]) is "not sure": it is probed
/// again, and an edition still unknown after [`super::retry::BLOCK_TRIES`] probes makes the
/// result `may_be_stale` (or, when no edition was found at all, the error).
async fn resolve_signed<N: BlockNetwork>(net: &Arc<N>, request: &SskRequestUri) -> Result<Signed, PipelineError> {
    if !request.updatable {
        let mut tries = Tries::default();
        return match fetch_retrying(net, BlockKind::Ssk, request.routing_key(), &mut tries).await {
            Ok(Block::Ssk(b)) => Ok(Signed {
                edition: None,
                payload: signed::decode(&b, request)?,
                retries: tries.retries(),
                may_be_stale: false,
            }),
            Ok(Block::Chk(_)) => Err(ClientError::BadManifest("a CHK block answered an SSK request").into()),
            Err(e) => Err(PipelineError::Top(e)),
        };
    }
    let mut search = LatestSearch::new(request);
    // Why a probe was not sure: reported if no edition is found at all.
    let mut cause = None;
    while !search.is_done() {
        let mut set = JoinSet::new();
        for uri in search.next_requests() {
            let net = Arc::clone(net);
            set.spawn(async move { (uri.edition, net.fetch(BlockKind::Ssk, uri.routing_key()).await) });
        }
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok((e, Ok(Block::Ssk(b)))) => search.on_found(e, b)?,
                // The node checks blocks against the key: a bug or a lie, not an absence.
                Ok((e, Ok(Block::Chk(_)))) => {
                    cause = Some(Failure::InvalidData);
                    search.on_unsure(e);
                }
                Ok((e, Err(f))) if super::retry::settles_absence(&f) => search.on_not_found(e),
                Ok((e, Err(f))) => {
                    tracing::debug!(edition = e, error = %f, "an edition probe was not sure");
                    cause = Some(f);
                    search.on_unsure(e);
                }
                Err(join) => return Err(task_failure(&join)),
            }
        }
    }
    let (retries, may_be_stale) = (search.retries(), search.may_be_stale());
    let Some((edition, block)) = search.result() else {
        return Err(cause.map_or(PipelineError::NoEdition(request.edition), PipelineError::Top));
    };
    if may_be_stale {
        tracing::info!(edition, "a newer edition may exist: some probes above it never answered");
    }
    let payload = signed::decode(block, &request.with_edition(edition))?;
    Ok(Signed { edition: Some(edition), payload, retries, may_be_stale })
}

/// Where a long-running client (the daemon) keeps the blocks of interrupted fetches: one
/// resume directory per document under `dir`, named by a keyed hash of the URI so that a
/// directory listing names nothing to someone without the secret.
#[derive(Debug, Clone)]
pub struct Downloads {
    dir: PathBuf,
    secret: Vec<u8>,
}

impl Downloads {
    /// Resume directories go under `dir`; `secret` keys their names (the daemon uses its
    /// API token).
    pub fn new(dir: PathBuf, secret: &[u8]) -> Self {
        Self { dir, secret: secret.to_vec() }
    }

    /// The name of `uri`'s resume directory; also what makes two fetches "the same
    /// document" (they would share, and trample, one directory).
    pub fn key(&self, uri: &Uri) -> String {
        let digest = Sha256::new()
            .chain_update(b"pamphlet/partial/v1")
            .chain_update(&self.secret)
            .chain_update(uri.to_string().as_bytes())
            .finalize();
        digest[..16].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The resume directory of `uri`.
    pub fn dir_of(&self, uri: &Uri) -> PathBuf {
        self.dir.join(self.key(uri))
    }
}

/// Fetches `uri` resuming from, and saving to, its directory in `downloads` (deleted when
/// the fetch completes). When the document itself is bad or gone there is nothing to
/// resume, so its directory is deleted too; when the network failed it is kept for the
/// next attempt.
pub async fn fetch_resumable<N: BlockNetwork>(
    net: &Arc<N>,
    uri: &Uri,
    downloads: &Downloads,
    parallel: usize,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Fetched, PipelineError> {
    let dir = downloads.dir_of(uri);
    let options = FetchOptions { parallel, partial_dir: Some(dir.clone()) };
    let result = fetch(net, uri, &options, progress).await;
    if let Err(PipelineError::Client(_)) = &result {
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(error = %e, "cannot remove a resume directory");
            }
        }
    }
    result
}

/// Heals a document after a fetch that rebuilt `blocks` with FEC: inserts them again so
/// the next fetcher finds them. Best effort; returns how many the network took.
pub async fn heal<N: BlockNetwork>(net: &Arc<N>, blocks: Vec<ChkBlock>) -> usize {
    let mut stored = 0;
    for block in blocks {
        if net.insert(Block::Chk(block)).await.is_ok() {
            stored += 1;
        }
    }
    stored
}

/// Fetches a CHK document (splitfile or single block) with a window of requests in flight
/// that starts at `options.parallel` or [`FIRST_WINDOW`](super::window::FIRST_WINDOW),
/// whichever is more (keepalive's probes, `probe_all`: at `options.parallel`), and follows
/// the path ([`Window`]), resuming from and
/// saving to `options.partial_dir`.
async fn fetch_chk<N: BlockNetwork>(
    net: &Arc<N>,
    top: &ChkUri,
    options: &FetchOptions,
    probe_all: bool,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Fetched, PipelineError> {
    let mut fetch = if probe_all { Fetch::probing_every_block(top.clone()) } else { Fetch::new(top.clone()) };
    let mut partial = None;
    let mut known: HashMap<RoutingKey, ChkBlock> = HashMap::new();
    if let Some(dir) = &options.partial_dir {
        let (p, blocks) = PartialDir::open(dir)?;
        known = blocks.into_iter().map(|b| (b.routing_key(), b)).collect();
        partial = Some(p);
    }
    // A person waits for a fetch: fill the path from the first round trip. Keepalive's
    // probes run in the background and start where their caller says (`keepalive.rs`).
    let mut window =
        if probe_all { Window::new(options.parallel, MAX_WINDOW) } else { Window::for_fetch(options.parallel) };
    // The window's clock: the runtime's, as the latencies' (`timed_fetch`).
    let started = tokio::time::Instant::now();
    let mut requests = 0;
    let mut tries = Tries::default();
    // Why blocks went missing, when it was not simply "not found".
    let mut cause = None;
    let mut in_flight = JoinSet::new();
    let mut asked = std::collections::HashSet::new();
    loop {
        if fetch.document().is_some() {
            break;
        }
        // Serve what earlier runs already fetched without asking the network.
        let mut wanted = fetch.next_requests(window.allowed().saturating_sub(in_flight.len()));
        while let Some(uri) = wanted.pop() {
            if let Some(block) = known.get(&uri.routing_key) {
                fetch.on_block(&uri.routing_key, block)?;
                wanted.extend(fetch.next_requests(window.allowed().saturating_sub(in_flight.len() + wanted.len())));
                continue;
            }
            // One request per key: its answer fills every place the key occurs.
            if !asked.insert(uri.routing_key) {
                continue;
            }
            requests += 1;
            in_flight.spawn(timed_fetch(Arc::clone(net), uri.routing_key));
        }
        if fetch.document().is_some() {
            break;
        }
        let Some(joined) = in_flight.join_next().await else {
            return Err(ClientError::BadManifest("fetch stalled with nothing to request").into());
        };
        let (key, result, latency) = joined.map_err(|e| task_failure(&e))?;
        let result = result.map_err(|e| tries.settle(key, e));
        tracing::trace!(
            latency_ms = latency.as_millis() as u64,
            ok = result.is_ok(),
            in_flight = in_flight.len(),
            window = window.allowed(),
            "block answered"
        );
        match &result {
            Ok(_) => window.on_block(started.elapsed(), latency),
            Err(Failure::TimedOut { .. } | Failure::RetryLater { .. } | Failure::RouteNotFound { .. }) => {
                window.on_overload();
            }
            Err(_) => {}
        }
        match result {
            Ok(Block::Chk(block)) => {
                if let Some(p) = partial.as_mut() {
                    p.save(&block)?;
                }
                fetch.on_block(&key, &block)?;
            }
            // The node checks blocks against the key it asked for: this is a bug or a lie.
            Ok(Block::Ssk(_)) => missing(&mut fetch, &key, &mut cause, Failure::InvalidData)?,
            // A fresh request, routed anew (around the peers that failed this one); FEC
            // fills in only for blocks that failed every try.
            Err(e) if tries.retry_fetch(key, &e) => {
                tracing::debug!(error = %e, "fetching a block again");
                requests += 1;
                in_flight.spawn(timed_fetch(Arc::clone(net), key));
            }
            Err(e) if key == top.routing_key => return Err(PipelineError::Top(e)),
            Err(e) => missing(&mut fetch, &key, &mut cause, e)?,
        }
        progress(Progress { retries: tries.retries(), ..fetch.progress() });
    }
    in_flight.abort_all();
    let heal = fetch.heal().to_vec();
    let not_found = fetch.progress().blocks_failed;
    let document = fetch.into_document().ok_or(ClientError::HashMismatch)?;
    if let Some(p) = partial {
        p.remove()?;
    }
    let retries = tries.retries();
    Ok(Fetched { document, edition: None, heal, requests, not_found, retries, may_be_stale: false })
}

/// Fetches one CHK block; returns how long the network took with it. The runtime's clock,
/// so a test with paused time drives the window (client/window.rs) deterministically.
async fn timed_fetch<N: BlockNetwork>(
    net: Arc<N>,
    key: RoutingKey,
) -> (RoutingKey, Result<Block, Failure>, std::time::Duration) {
    let asked = tokio::time::Instant::now();
    let result = net.fetch(BlockKind::Chk, key).await;
    (key, result, asked.elapsed())
}

/// Records a block that could not be had (FEC may fill in for it); when too few blocks of
/// its segment remain, the error keeps the failure that took them, unless every one was
/// simply not found.
fn missing(
    fetch: &mut Fetch,
    key: &RoutingKey,
    cause: &mut Option<Failure>,
    why: Failure,
) -> Result<(), PipelineError> {
    if !matches!(why, Failure::NotFound { .. }) {
        *cause = Some(why);
    }
    fetch.on_not_found(key).map_err(|e| match (e, cause.clone()) {
        (ClientError::NotFound { missing, of }, Some(cause)) => PipelineError::Blocks { missing, of, cause },
        (e, _) => PipelineError::Client(e),
    })
}

/// How far an insert has come.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InsertProgress {
    /// Blocks stored.
    pub done: usize,
    /// Blocks to store in all (of the current step: the top block is a step of its own).
    pub total: usize,
    /// Requests sent again for blocks whose earlier insert timed out or found no route.
    pub retries: usize,
    /// Blocks a sink could not keep for good (full store area, or cache only).
    pub displaced: usize,
}

/// Inserts blocks with up to `parallel` in flight. A block whose insert timed out or found
/// no route is sent again (the node routes it anew, around the peers that failed it), up
/// to [`super::retry::BLOCK_TRIES`] requests; the job fails only when a block failed every
/// try, with the failure of its last one. Returns how many (distinct) blocks it stored.
/// `top`: the blocks are top blocks, inserted flagged ([`BlockNetwork::insert_top`]).
async fn insert_blocks<N: BlockNetwork>(
    net: &Arc<N>,
    (blocks, top): (Vec<Block>, bool),
    parallel: usize,
    tries: &mut Tries,
    progress: &(dyn Fn(InsertProgress) + Sync),
) -> Result<usize, PipelineError> {
    // Identical shards make identical blocks: insert each once (two concurrent inserts of
    // one key would also be refused by the node as a duplicate).
    let mut seen = std::collections::HashSet::new();
    let blocks: Vec<Block> = blocks.into_iter().filter(|b| seen.insert(b.routing_key())).collect();
    let total = blocks.len();
    let mut done = 0;
    let mut set = JoinSet::new();
    let mut queue = blocks.into_iter();
    let spawn = |set: &mut JoinSet<_>, block: Block| {
        let net = Arc::clone(net);
        set.spawn(async move {
            let result = if top { net.insert_top(block.clone()).await } else { net.insert(block.clone()).await };
            (block, result)
        });
    };
    loop {
        while set.len() < parallel.max(1) {
            let Some(block) = queue.next() else { break };
            spawn(&mut set, block);
        }
        let Some(joined) = set.join_next().await else { return Ok(total) };
        match joined.map_err(|e| task_failure(&e))? {
            (_, Ok(InsertOutcome::Stored { displaced })) => {
                done += 1;
                if displaced {
                    tries.note_displaced();
                }
            }
            // CHKs cannot collide (same key, same content); a collision here is an SSK.
            (_, Ok(InsertOutcome::Collision(_))) => return Err(PipelineError::Collision),
            (block, Err(e)) if tries.retry(block.routing_key(), &e) => {
                tracing::debug!(error = %e, "inserting a block again");
                spawn(&mut set, block);
            }
            (_, Err(e)) => return Err(PipelineError::Insert(e)),
        }
        progress(InsertProgress { done, total, retries: tries.retries(), displaced: tries.displaced() });
    }
}

/// Inserts `data` as a CHK splitfile; returns the URI that fetches it. `progress` hears
/// blocks done and blocks in all ([`insert_chk_tracked`] also reports retries).
pub async fn insert_chk<N: BlockNetwork>(
    net: &Arc<N>,
    data: Vec<u8>,
    options: InsertOptions,
    parallel: usize,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<ChkUri, PipelineError> {
    insert_chk_tracked(net, data, options, parallel, &|p: InsertProgress| progress(p.done, p.total)).await
}

/// [`insert_chk`], reporting its [`InsertProgress`] (retries included).
pub async fn insert_chk_tracked<N: BlockNetwork>(
    net: &Arc<N>,
    data: Vec<u8>,
    options: InsertOptions,
    parallel: usize,
    progress: &(dyn Fn(InsertProgress) + Sync),
) -> Result<ChkUri, PipelineError> {
    // Encoding hashes and encrypts every byte: keep it off the async workers.
    let encoded = tokio::task::spawn_blocking(move || splitfile::encode(&data, &options))
        .await
        .map_err(|e| task_failure(&e))??;
    let top = encoded.top.clone();
    let mut blocks: Vec<Block> = encoded.blocks.into_iter().map(Block::Chk).collect();
    // The top block goes last, so a published URI never names a manifest whose blocks are
    // not yet in the network.
    let top_block = blocks.pop();
    let mut tries = Tries::default();
    let n = insert_blocks(net, (blocks, false), parallel, &mut tries, progress).await?;
    let before = (tries.retries(), tries.displaced());
    // Flagged: the nodes on its path keep it wider (FEC cannot rebuild it; issue 20).
    insert_blocks(net, (top_block.into_iter().collect(), true), 1, &mut tries, &|p| {
        // The top block's own count is not news; its retries and displacements are.
        if (p.retries, p.displaced) != before {
            progress(InsertProgress { done: n, total: n, retries: p.retries, displaced: p.displaced });
        }
    })
    .await?;
    Ok(top)
}

/// Publishes `data` under a signed insert URI (SSK, USK edition, or a KSK's derived key);
/// returns the request URI. A different document already under that name and edition is
/// [`PipelineError::Collision`]; the same document again succeeds.
pub async fn insert_signed<N: BlockNetwork>(
    net: &Arc<N>,
    insert: SskInsertUri,
    data: Vec<u8>,
    options: InsertOptions,
    parallel: usize,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<SskRequestUri, PipelineError> {
    insert_signed_tracked(net, insert, data, options, parallel, &|p: InsertProgress| progress(p.done, p.total)).await
}

/// [`insert_signed`], reporting its [`InsertProgress`] (retries included).
pub async fn insert_signed_tracked<N: BlockNetwork>(
    net: &Arc<N>,
    insert: SskInsertUri,
    data: Vec<u8>,
    options: InsertOptions,
    parallel: usize,
    progress: &(dyn Fn(InsertProgress) + Sync),
) -> Result<SskRequestUri, PipelineError> {
    let signed = tokio::task::spawn_blocking(move || signed::encode(&insert, &data, &options))
        .await
        .map_err(|e| task_failure(&e))??;
    let mut tries = Tries::default();
    let mut n = 0;
    if let Some(e) = signed.splitfile {
        // The redirect's top block, like the signed block, is one FEC cannot rebuild: last
        // and flagged, as in `insert_chk_tracked`.
        let mut blocks: Vec<Block> = e.blocks.into_iter().map(Block::Chk).collect();
        let top_block: Vec<Block> = blocks.pop().into_iter().collect();
        n = insert_blocks(net, (blocks, false), parallel, &mut tries, progress).await?;
        let before = (tries.retries(), tries.displaced());
        let done = n;
        n += insert_blocks(net, (top_block, true), 1, &mut tries, &|p| {
            if (p.retries, p.displaced) != before {
                progress(InsertProgress { done, total: done, retries: p.retries, displaced: p.displaced });
            }
        })
        .await?;
    }
    let block = Block::Ssk(signed.block.clone());
    let outcome = loop {
        match net.insert_top(block.clone()).await {
            Err(e) if tries.retry(block.routing_key(), &e) => {
                tracing::debug!(error = %e, "inserting the signed block again");
                progress(InsertProgress { done: n, total: n, retries: tries.retries(), displaced: tries.displaced() });
            }
            result => break result.map_err(PipelineError::Insert)?,
        }
    };
    match outcome {
        InsertOutcome::Stored { displaced } => {
            if displaced {
                tries.note_displaced();
                progress(InsertProgress { done: n, total: n, retries: tries.retries(), displaced: tries.displaced() });
            }
            Ok(signed.request)
        }
        // The same bytes again (convergent: deterministic signature) is not a conflict.
        InsertOutcome::Collision(Block::Ssk(existing)) if existing == signed.block => Ok(signed.request),
        InsertOutcome::Collision(_) => Err(PipelineError::Collision),
    }
}

#[cfg(test)]
mod tests;
