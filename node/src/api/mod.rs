//! The local client API (feature `net`): HTTP/JSON on a loopback address, guarded by a
//! bearer token kept in the data directory. docs/api.md describes every route.
//!
//! Inserts and fetches run as jobs inside the daemon: a client starts one, polls its
//! progress, and (for fetches) downloads the verified document when it is done. Secrets
//! (insert URIs, keywords) travel in a header or a JSON body, never in the URL, so nothing
//! that logs request lines can record them.

// A driver: serves HTTP on tokio.
#![allow(clippy::disallowed_methods)]

pub mod backend;
pub mod jobs;
mod keepalive;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use pamphlet_crypto::{KskUri, SskInsertUri, Uri};
use serde::Deserialize;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

pub use self::backend::{
    AddFriendError, AddOutcome, ApiBackend, FriendAdded, FriendSnapshot, NodeSnapshot, RemoveFriendError,
};
pub use self::jobs::spawn_job_expiry;
use self::jobs::{JobId, JobProgress, JobStatus, Jobs};
use crate::client::pipeline::{self, Downloads, PipelineError};
use crate::client::site_transfer;
use crate::client::splitfile::InsertOptions;
use crate::node::Failure;

/// Largest document one insert request may upload (the daemon holds it in memory).
pub const MAX_UPLOAD_BYTES: usize = 1 << 30;
/// Header that carries a signed insert key (`SSK@…`/`USK@…` insert URI, or `KSK@word`).
pub const INSERT_KEY_HEADER: &str = "pamphlet-insert-key";

/// Everything the handlers share.
pub struct ApiState<B: ApiBackend> {
    /// The node.
    pub backend: Arc<B>,
    /// Running and finished jobs.
    pub jobs: Arc<Jobs>,
    /// The bearer token clients must present.
    pub token: String,
    /// Where interrupted fetches keep their blocks (`DIR/downloads`).
    pub downloads: Downloads,
    /// Block requests in flight per job.
    pub parallel: usize,
}

/// The router: every route behind the token check.
pub fn router<B: ApiBackend>(state: Arc<ApiState<B>>) -> Router {
    Router::new()
        .route("/v1/status", get(status::<B>))
        .route("/v1/peers", get(peers::<B>))
        .route("/v1/friends", post(add_friend::<B>).get(friends::<B>))
        .route("/v1/friends/{friend}", delete(remove_friend::<B>))
        .route("/v1/insert", post(insert::<B>))
        .route("/v1/insert-site", post(insert_site::<B>))
        .route("/v1/fetch", post(fetch::<B>))
        .route("/v1/keepalive", post(keepalive::keepalive::<B>))
        .route("/v1/jobs/{id}", get(job::<B>))
        .route("/v1/jobs/{id}/data", get(job_data::<B>))
        .layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES))
        .route_layer(middleware::from_fn_with_state(Arc::clone(&state), auth::<B>))
        .with_state(state)
}

fn error(code: StatusCode, message: impl Into<String>) -> Response {
    (code, Json(json!({ "error": message.into() }))).into_response()
}

async fn auth<B: ApiBackend>(State(state): State<Arc<ApiState<B>>>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if bool::from(given.as_bytes().ct_eq(state.token.as_bytes())) {
        next.run(req).await
    } else {
        error(StatusCode::UNAUTHORIZED, "missing or wrong API token (see DIR/api.token)")
    }
}

fn peer_hex(p: crate::id::PeerId) -> String {
    format!("{:016x}", p.0)
}

/// `GET /v1/status`: the snapshot with the peers as a count (docs/api.md).
fn render_status(s: &NodeSnapshot) -> Value {
    let c = &s.counters;
    json!({
        "location": s.location,
        "peers": s.peers.len(),
        "peers_by_kind": peers_by(s, |p| &p.kind),
        "peers_by_found": peers_by(s, |p| &p.found),
        "udp_links": s.udp_links,
        "listen": s.listen,
        "noderef": s.noderef,
        "in_flight": s.in_flight,
        "requests_received": c.requests_received,
        "inserts_received": c.inserts_received,
        "found_locally": c.found_locally,
        "forwarded": c.forwarded,
        "local_fetches": c.local_fetches,
        "swaps_attempted": c.swaps_attempted,
        "swaps_done": c.swaps_done,
        "durability": {
            "top_wide_stores": c.top_wide_stores,
            "top_flags_over_budget": c.top_flags_over_budget,
            "offers_queued": c.offers_queued,
            "offers_sent": c.offers_sent,
            "returns": c.returns,
            "return_offers_queued": c.return_offers_queued,
            "keys_loaded": c.keys_loaded,
            "steady_backups_queued": c.steady_backups_queued,
            "steady_backups_kept": c.steady_backups_kept,
            "offered_keys_no_room": c.offered_keys_no_room,
            "own_uptime": s.own_uptime,
        },
        "store": s.store,
        "opennet": s.opennet,
    })
}

/// Peers counted by one of their labels (kind: friend, stranger, seed; or how found).
fn peers_by(s: &NodeSnapshot, label: impl Fn(&backend::PeerSnapshot) -> &String) -> Value {
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for p in &s.peers {
        *counts.entry(label(p).as_str()).or_default() += 1;
    }
    json!(counts)
}

/// `GET /v1/peers`: each peer with its location, its kind and how it was found.
fn render_peers(s: &NodeSnapshot) -> Value {
    s.peers
        .iter()
        .map(|p| json!({ "peer": peer_hex(p.peer), "location": p.location, "kind": p.kind, "found": p.found }))
        .collect()
}

async fn status<B: ApiBackend>(State(state): State<Arc<ApiState<B>>>) -> Json<Value> {
    Json(render_status(&state.backend.status()))
}

async fn peers<B: ApiBackend>(State(state): State<Arc<ApiState<B>>>) -> Json<Value> {
    Json(render_peers(&state.backend.status()))
}

async fn add_friend<B: ApiBackend>(State(state): State<Arc<ApiState<B>>>, body: String) -> Response {
    match state.backend.add_friend(body.trim()) {
        Ok(f) => Json(json!({ "added": f.noderef.to_string(), "peer": peer_hex(f.peer), "outcome": f.outcome }))
            .into_response(),
        Err(e) if e.is_caller_error() => error(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `GET /v1/friends`: every friend with its addresses and link state.
async fn friends<B: ApiBackend>(State(state): State<Arc<ApiState<B>>>) -> Json<Value> {
    Json(json!(state.backend.friends()))
}

/// `DELETE /v1/friends/{friend}`: forget a friend (by peer id, key or reference).
async fn remove_friend<B: ApiBackend>(State(state): State<Arc<ApiState<B>>>, Path(friend): Path<String>) -> Response {
    match state.backend.remove_friend(&friend) {
        Ok(f) => Json(json!({ "removed": f })).into_response(),
        Err(e @ RemoveFriendError::NotFound(_)) => error(StatusCode::NOT_FOUND, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Query parameters of `POST /v1/insert` (none of them secret).
#[derive(Debug, Deserialize)]
struct InsertQuery {
    /// File name recorded in the manifest.
    name: Option<String>,
    /// MIME type recorded in the manifest.
    mime: Option<String>,
    /// Check blocks per data block.
    redundancy: Option<f64>,
    /// Document name inside an SSK subspace (overrides the insert URI's).
    doc: Option<String>,
    /// Edition to publish (makes the URI a USK).
    edition: Option<u64>,
    /// `false` stores the document as it is (default: compress when it pays).
    compress: Option<bool>,
}

/// Runs a job; if it panics (or is cancelled), the job ends as failed, `internal` (or
/// `cancelled`), instead of running forever.
fn spawn_job(jobs: Arc<Jobs>, id: JobId, job: impl std::future::Future<Output = ()> + Send + 'static) {
    let handle = tokio::spawn(job);
    tokio::spawn(async move {
        if let Err(e) = handle.await {
            let status = if e.is_panic() {
                tracing::error!(job = id, error = %e, "a job panicked");
                JobStatus::Failed {
                    error: "the job failed inside the node (a bug: see the node's log)".into(),
                    failure: Failure::Internal,
                }
            } else {
                JobStatus::Failed { error: "the job was cancelled".into(), failure: Failure::Cancelled }
            };
            jobs.finish(id, status, None);
        }
    });
}

fn pipeline_failure(e: &PipelineError) -> JobStatus {
    JobStatus::Failed { error: e.to_string(), failure: e.failure() }
}

/// The signed target of an insert: the insert key header (SSK/USK insert URI or KSK),
/// with `doc` and `edition` applied; `None` for a CHK insert. The error is the response.
// The error is the HTTP answer, built once per bad request: its size does not matter.
#[allow(clippy::result_large_err)]
fn signed_target(
    headers: &HeaderMap,
    doc: Option<String>,
    edition: Option<u64>,
) -> Result<Option<SskInsertUri>, Response> {
    Ok(match headers.get(INSERT_KEY_HEADER).map(|v| v.to_str()) {
        None => None,
        Some(Err(_)) => return Err(error(StatusCode::BAD_REQUEST, "the insert key header is not text")),
        Some(Ok(text)) => match Uri::parse(text) {
            Ok(Uri::SskInsert(mut i)) => {
                if let Some(doc) = doc {
                    if let Err(e) = pamphlet_crypto::uri::validate_doc_name(&doc) {
                        return Err(error(StatusCode::BAD_REQUEST, format!("bad document name: {e}")));
                    }
                    i.name = doc;
                }
                Some(match edition {
                    Some(e) if e > pamphlet_crypto::uri::MAX_EDITION => {
                        let message = format!("edition {e} is too large: a fetch could never find it");
                        return Err(error(StatusCode::BAD_REQUEST, message));
                    }
                    Some(e) => i.with_edition(e),
                    None => i,
                })
            }
            Ok(Uri::Ksk(k)) => Some(KskUri { keyword: k.keyword }.insert_uri()),
            Ok(Uri::SskRequest(_)) => {
                return Err(error(StatusCode::BAD_REQUEST, "that is a request URI; publishing needs the insert URI"))
            }
            Ok(_) => {
                return Err(error(StatusCode::BAD_REQUEST, "the insert key must be an SSK/USK insert URI or KSK@word"))
            }
            Err(e) => return Err(error(StatusCode::BAD_REQUEST, format!("bad insert key: {e}"))),
        },
    })
}

async fn insert<B: ApiBackend>(
    State(state): State<Arc<ApiState<B>>>,
    Query(q): Query<InsertQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let options = InsertOptions {
        name: q.name,
        mime: q.mime,
        redundancy: q.redundancy.unwrap_or(crate::client::fec::DEFAULT_REDUNDANCY),
        compress: q.compress.unwrap_or(true),
    };
    let signed = match signed_target(&headers, q.doc, q.edition) {
        Ok(t) => t,
        Err(e) => return e,
    };
    let id = state.jobs.create();
    let st = Arc::clone(&state);
    let data = body.to_vec();
    let size = data.len() as u64;
    spawn_job(Arc::clone(&state.jobs), id, async move {
        let jobs = Arc::clone(&st.jobs);
        let retries = Arc::new(AtomicU64::new(0));
        let displaced = Arc::new(AtomicU64::new(0));
        let (seen, seen_displaced) = (Arc::clone(&retries), Arc::clone(&displaced));
        let progress = move |p: pipeline::InsertProgress| {
            seen.store(p.retries as u64, Ordering::Relaxed);
            seen_displaced.store(p.displaced as u64, Ordering::Relaxed);
            let progress =
                JobProgress { done: p.done as u64, total: p.total as u64, failed: 0, retries: p.retries as u64 };
            jobs.progress(id, progress);
        };
        let result = match signed {
            None => pipeline::insert_chk_tracked(&st.backend, data, options, st.parallel, &progress)
                .await
                .map(|uri| (uri.to_string(), None)),
            Some(ins) => {
                let edition = ins.updatable.then_some(ins.edition);
                pipeline::insert_signed_tracked(&st.backend, ins, data, options, st.parallel, &progress)
                    .await
                    .map(|uri| (uri.to_string(), edition))
            }
        };
        let status = match result {
            Ok((uri, edition)) => JobStatus::Done {
                uri,
                size,
                name: None,
                mime: None,
                edition,
                requests: 0,
                not_found: 0,
                retries: retries.load(Ordering::Relaxed),
                may_be_stale: false,
                displaced: displaced.load(Ordering::Relaxed),
            },
            Err(e) => pipeline_failure(&e),
        };
        st.jobs.finish(id, status, None);
    });
    Json(json!({ "job": id })).into_response()
}

/// Query parameters of `POST /v1/insert-site` (none of them secret).
#[derive(Debug, Deserialize)]
struct SiteQuery {
    /// Document name inside an SSK subspace (overrides the insert URI's).
    doc: Option<String>,
    /// Edition to publish (makes the URI a USK).
    edition: Option<u64>,
}

/// `POST /v1/insert-site`: the body is a site bundle (`client::site::encode_bundle`); the
/// optional insert key header publishes it as an SSK or a USK edition. For a USK edition
/// above 0, files unchanged since the newest earlier edition keep their keys. The job's
/// `requests` counts the blocks inserted.
async fn insert_site<B: ApiBackend>(
    State(state): State<Arc<ApiState<B>>>,
    Query(q): Query<SiteQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = match signed_target(&headers, q.doc, q.edition) {
        Ok(t) => t,
        Err(e) => return e,
    };
    let files = match crate::client::site::decode_bundle(&body) {
        Ok(f) => f,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let id = state.jobs.create();
    let st = Arc::clone(&state);
    let size = body.len() as u64;
    spawn_job(Arc::clone(&state.jobs), id, async move {
        let previous = match &target {
            Some(ins) if ins.updatable && ins.edition > 0 => {
                let earlier = Uri::SskRequest(ins.request_uri().with_edition(ins.edition - 1));
                site_transfer::fetch_manifest(&st.backend, &earlier).await
            }
            _ => None,
        };
        let edition = target.as_ref().and_then(|t| t.updatable.then_some(t.edition));
        let result = site_transfer::insert_site(&st.backend, files, target, previous.as_ref(), st.parallel).await;
        let status = match result {
            Ok(done) => JobStatus::Done {
                uri: done.uri.to_string(),
                size,
                name: None,
                mime: Some(site_transfer::SITE_MIME.into()),
                edition,
                requests: done.blocks_inserted as u64,
                not_found: 0,
                retries: done.retries as u64,
                may_be_stale: false,
                displaced: done.displaced as u64,
            },
            Err(e) => pipeline_failure(&e),
        };
        st.jobs.finish(id, status, None);
    });
    Json(json!({ "job": id })).into_response()
}

/// Body of `POST /v1/fetch`.
#[derive(Debug, Deserialize)]
struct FetchBody {
    /// The URI to fetch.
    uri: String,
    /// Return the site manifest itself rather than the file the URI names
    /// (`pamphlet fetch --site` mirrors a site from it); refused when the URI names no
    /// site or names a file inside one.
    #[serde(default)]
    site: bool,
}

async fn fetch<B: ApiBackend>(State(state): State<Arc<ApiState<B>>>, body: Bytes) -> Response {
    // Parsed by hand rather than with the `Json` extractor so that a missing content type is
    // not an error and a malformed body gets a message that says what is expected.
    let body: FetchBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("the body must be JSON {{\"uri\": \"…\"}}: {e}")),
    };
    // A path after the key names a file inside a site (`CHK@…/about/team.html`).
    let (uri, path) = match pamphlet_crypto::uri::split_site_path(&body.uri) {
        Ok(u) => u,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("bad URI: {e}")),
    };
    if body.site && path.as_deref().is_some_and(|p| !p.is_empty()) {
        return error(StatusCode::BAD_REQUEST, "\"site\": true takes the site's own URI, without a path");
    }
    // The same request again joins the running job; another file of the same site is
    // another job, which waits for the document's lock (one resume directory each).
    let doc = state.downloads.key(&uri);
    let (id, new) = state.jobs.create_keyed(Some(format!("{doc} {} {}", body.site, path.as_deref().unwrap_or(""))));
    if !new {
        return Json(json!({ "job": id })).into_response();
    }
    let st = Arc::clone(&state);
    spawn_job(Arc::clone(&state.jobs), id, async move {
        let progress = st.jobs.fetch_progress(id);
        let lock = st.jobs.document_lock(&doc);
        let top = {
            let _held = lock.lock().await;
            pipeline::fetch_resumable(&st.backend, &uri, &st.downloads, st.parallel, &progress).await
        };
        let fetched = match top {
            Ok(mut f) => {
                let heal = std::mem::take(&mut f.heal);
                let (retries, may_be_stale) = (f.retries as u64, f.may_be_stale);
                let options = pipeline::FetchOptions { parallel: st.parallel, partial_dir: None };
                if body.site {
                    site_transfer::manifest_of(f).map(|l| (l, heal, retries, may_be_stale))
                } else {
                    site_transfer::resolve(&st.backend, f, path.as_deref(), &options)
                        .await
                        .map(|l| (l, heal, retries, may_be_stale))
                }
            }
            Err(e) => Err(e),
        };
        match fetched {
            Ok((f, heal, retries, may_be_stale)) => {
                let doc = f.document;
                let status = JobStatus::Done {
                    uri: body.uri,
                    size: doc.data.len() as u64,
                    name: doc.name,
                    mime: doc.mime,
                    edition: f.edition,
                    requests: f.requests as u64,
                    not_found: f.not_found as u64,
                    retries,
                    may_be_stale,
                    displaced: 0,
                };
                st.jobs.finish(id, status, Some(doc.data));
                // After the user has the file.
                pipeline::heal(&st.backend, heal).await;
            }
            Err(e) => st.jobs.finish(id, pipeline_failure(&e), None),
        }
    });
    Json(json!({ "job": id })).into_response()
}

/// Query parameters of `GET /v1/jobs/N`.
#[derive(Debug, Deserialize)]
struct JobQuery {
    /// Answer only when the job ends, or after this many milliseconds (at most
    /// [`MAX_JOB_WAIT`]), whichever comes first: a long poll.
    wait_ms: Option<u64>,
}

/// The longest a `GET /v1/jobs/N?wait_ms=…` holds its answer.
const MAX_JOB_WAIT: Duration = Duration::from_secs(30);

async fn job<B: ApiBackend>(
    State(state): State<Arc<ApiState<B>>>,
    Path(id): Path<JobId>,
    Query(q): Query<JobQuery>,
) -> Response {
    if let Some(ms) = q.wait_ms {
        state.jobs.wait_end(id, Duration::from_millis(ms).min(MAX_JOB_WAIT)).await;
    }
    match state.jobs.get(id) {
        Some((progress, status)) => Json(json!({ "job": id, "progress": progress, "status": status })).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no job {id}")),
    }
}

async fn job_data<B: ApiBackend>(State(state): State<Arc<ApiState<B>>>, Path(id): Path<JobId>) -> Response {
    match state.jobs.take_data(id) {
        Some(data) => {
            (StatusCode::OK, [(header::CONTENT_TYPE, "application/octet-stream")], Body::from(data)).into_response()
        }
        None => {
            error(StatusCode::NOT_FOUND, format!("job {id} has no document to download (not done, failed, or taken)"))
        }
    }
}

#[cfg(test)]
mod tests;
