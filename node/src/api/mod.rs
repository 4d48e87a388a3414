//! The local client API (feature `net`): HTTP/JSON on a loopback address, guarded by a
//! bearer token kept in the data directory. docs/api.md describes every route.
//!
//! Inserts and fetches run as jobs inside the daemon: a client starts one, polls its
//! progress, and (for fetches) downloads the verified document when it is done. Secrets
//! (insert URIs, keywords) travel in a header or a JSON body, never in the URL, so nothing
//! that logs request lines can record them.

// A driver: serves HTTP on tokio.
#![allow(clippy::disallowed_methods)]

pub mod jobs;

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use pamphlet_crypto::{KskUri, SskInsertUri, Uri};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use self::jobs::{JobId, JobProgress, JobStatus, Jobs};
use crate::client::pipeline::{self, BlockNetwork, FetchOptions, NetError, PipelineError};
use crate::client::splitfile::InsertOptions;

/// Largest document one insert request may upload (the daemon holds it in memory).
pub const MAX_UPLOAD_BYTES: usize = 1 << 30;
/// Header that carries a signed insert key (`SSK@…`/`USK@…` insert URI, or `KSK@word`).
pub const INSERT_KEY_HEADER: &str = "pamphlet-insert-key";

/// What the API needs from the node beyond moving blocks.
pub trait ApiBackend: BlockNetwork {
    /// Node status for `GET /v1/status`.
    fn status(&self) -> Value;
    /// Peers for `GET /v1/peers`.
    fn peers(&self) -> Value;
    /// Adds a friend from its node reference; the message of an error is for the user.
    fn add_friend(&self, noderef: &str) -> Result<Value, String>;
}

/// Everything the handlers share.
pub struct ApiState<B: ApiBackend> {
    /// The node.
    pub backend: Arc<B>,
    /// Running and finished jobs.
    pub jobs: Arc<Jobs>,
    /// The bearer token clients must present.
    pub token: String,
    /// Where interrupted fetches keep their blocks (`DIR/downloads`).
    pub downloads: PathBuf,
    /// Block requests in flight per job.
    pub parallel: usize,
}

/// The router: every route behind the token check.
pub fn router<B: ApiBackend>(state: Arc<ApiState<B>>) -> Router {
    Router::new()
        .route("/v1/status", get(status::<B>))
        .route("/v1/peers", get(peers::<B>))
        .route("/v1/friends", post(add_friend::<B>))
        .route("/v1/insert", post(insert::<B>))
        .route("/v1/fetch", post(fetch::<B>))
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

async fn status<B: ApiBackend>(State(state): State<Arc<ApiState<B>>>) -> Json<Value> {
    Json(state.backend.status())
}

async fn peers<B: ApiBackend>(State(state): State<Arc<ApiState<B>>>) -> Json<Value> {
    Json(state.backend.peers())
}

async fn add_friend<B: ApiBackend>(State(state): State<Arc<ApiState<B>>>, body: String) -> Response {
    match state.backend.add_friend(body.trim()) {
        Ok(v) => Json(v).into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, e),
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

/// Runs a job; if it panics, the job ends as failed instead of running forever.
fn spawn_job(jobs: Arc<Jobs>, id: JobId, job: impl std::future::Future<Output = ()> + Send + 'static) {
    let handle = tokio::spawn(job);
    tokio::spawn(async move {
        if handle.await.is_err() {
            let status = JobStatus::Failed {
                error: "the job failed inside the node (a bug: see the node's log)".into(),
                kind: "internal",
            };
            jobs.finish(id, status, None);
        }
    });
}

fn pipeline_failure(e: &PipelineError) -> JobStatus {
    let kind = match e {
        PipelineError::TopNotFound(NetError::RetryLater) | PipelineError::Insert(NetError::RetryLater) => "retry_later",
        PipelineError::TopNotFound(NetError::RouteNotFound { .. })
        | PipelineError::Insert(NetError::RouteNotFound { .. }) => "no_route",
        PipelineError::TopNotFound(NetError::Unavailable(_)) | PipelineError::Insert(NetError::Unavailable(_)) => {
            "unavailable"
        }
        PipelineError::TopNotFound(_) | PipelineError::NoEdition(_) => "not_found",
        PipelineError::Client(crate::client::ClientError::NotFound { .. }) => "not_found",
        PipelineError::Collision => "collision",
        PipelineError::Client(_) => "bad_input",
        _ => "internal",
    };
    JobStatus::Failed { error: e.to_string(), kind }
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
    let signed: Option<SskInsertUri> = match headers.get(INSERT_KEY_HEADER).map(|v| v.to_str()) {
        None => None,
        Some(Err(_)) => return error(StatusCode::BAD_REQUEST, "the insert key header is not text"),
        Some(Ok(text)) => match Uri::parse(text) {
            Ok(Uri::SskInsert(mut i)) => {
                if let Some(doc) = q.doc {
                    if let Err(e) = pamphlet_crypto::uri::validate_doc_name(&doc) {
                        return error(StatusCode::BAD_REQUEST, format!("bad document name: {e}"));
                    }
                    i.name = doc;
                }
                Some(match q.edition {
                    Some(e) => i.with_edition(e),
                    None => i,
                })
            }
            Ok(Uri::Ksk(k)) => Some(KskUri { keyword: k.keyword }.insert_uri()),
            Ok(Uri::SskRequest(_)) => {
                return error(StatusCode::BAD_REQUEST, "that is a request URI; publishing needs the insert URI")
            }
            Ok(_) => return error(StatusCode::BAD_REQUEST, "the insert key must be an SSK/USK insert URI or KSK@word"),
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("bad insert key: {e}")),
        },
    };
    let id = state.jobs.create();
    let st = Arc::clone(&state);
    let data = body.to_vec();
    let size = data.len() as u64;
    spawn_job(Arc::clone(&state.jobs), id, async move {
        let jobs = Arc::clone(&st.jobs);
        let progress = move |done: usize, total: usize| {
            jobs.progress(id, JobProgress { done: done as u64, total: total as u64, failed: 0 });
        };
        let result = match signed {
            None => pipeline::insert_chk(&st.backend, data, options, st.parallel, &progress)
                .await
                .map(|uri| (uri.to_string(), None)),
            Some(ins) => {
                let edition = ins.updatable.then_some(ins.edition);
                pipeline::insert_signed(&st.backend, ins, data, options, st.parallel, &progress)
                    .await
                    .map(|uri| (uri.to_string(), edition))
            }
        };
        let status = match result {
            Ok((uri, edition)) => {
                JobStatus::Done { uri, size, name: None, mime: None, edition, requests: 0, not_found: 0 }
            }
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
}

async fn fetch<B: ApiBackend>(State(state): State<Arc<ApiState<B>>>, body: Bytes) -> Response {
    // Parsed by hand rather than with the `Json` extractor so that a missing content type is
    // not an error and a malformed body gets a message that says what is expected.
    let body: FetchBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("the body must be JSON {{\"uri\": \"…\"}}: {e}")),
    };
    let uri = match Uri::parse(&body.uri) {
        Ok(u) => u,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("bad URI: {e}")),
    };
    // The resume directory is named by a keyed hash of the URI, so its name reveals
    // nothing to someone without the token; it is deleted when the fetch completes.
    let digest = Sha256::new()
        .chain_update(b"pamphlet/partial/v1")
        .chain_update(state.token.as_bytes())
        .chain_update(uri.to_string().as_bytes())
        .finalize();
    let partial: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    let partial_dir = state.downloads.join(&partial);
    let options = FetchOptions { parallel: state.parallel, partial_dir: Some(partial_dir.clone()) };
    // One job per document at a time: a second request for it joins the first (two jobs
    // would share, and trample, one resume directory).
    let (id, new) = state.jobs.create_keyed(Some(partial));
    if !new {
        return Json(json!({ "job": id })).into_response();
    }
    let st = Arc::clone(&state);
    spawn_job(Arc::clone(&state.jobs), id, async move {
        let jobs = Arc::clone(&st.jobs);
        let progress = move |p: crate::client::splitfile::Progress| {
            let progress = JobProgress {
                done: p.blocks_have as u64,
                total: p.blocks_needed as u64,
                failed: p.blocks_failed as u64,
            };
            jobs.progress(id, progress);
        };
        match pipeline::fetch(&st.backend, &uri, &options, &progress).await {
            Ok(f) => {
                let doc = f.document;
                let status = JobStatus::Done {
                    uri: body.uri,
                    size: doc.data.len() as u64,
                    name: doc.name,
                    mime: doc.mime,
                    edition: f.edition,
                    requests: f.requests as u64,
                    not_found: f.not_found as u64,
                };
                st.jobs.finish(id, status, Some(doc.data));
                // Healing: put back what had to be rebuilt, after the user has the file.
                for block in f.heal {
                    let _ = st.backend.insert(pamphlet_crypto::Block::Chk(block)).await;
                }
            }
            Err(e) => {
                // The document is bad or gone: nothing to resume, so nothing to keep.
                if matches!(e, PipelineError::Client(_)) {
                    let _ = std::fs::remove_dir_all(&partial_dir);
                }
                st.jobs.finish(id, pipeline_failure(&e), None)
            }
        }
    });
    Json(json!({ "job": id })).into_response()
}

async fn job<B: ApiBackend>(State(state): State<Arc<ApiState<B>>>, Path(id): Path<JobId>) -> Response {
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
mod tests {
    use axum::http::Request as HttpRequest;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;
    use crate::client::memory_net::MemoryNetwork;

    impl ApiBackend for MemoryNetwork {
        fn status(&self) -> Value {
            json!({ "blocks": self.blocks.lock().map(|m| m.len()).unwrap_or(0) })
        }
        fn peers(&self) -> Value {
            json!([])
        }
        fn add_friend(&self, noderef: &str) -> Result<Value, String> {
            if noderef.starts_with("pamphlet-noderef") {
                Ok(json!({ "added": true }))
            } else {
                Err("not a node reference".into())
            }
        }
    }

    struct Api {
        router: Router,
        _dir: tempfile::TempDir,
    }

    impl Api {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let state = ApiState {
                backend: Arc::new(MemoryNetwork::default()),
                jobs: Arc::new(Jobs::default()),
                token: "secret-token".into(),
                downloads: dir.path().join("downloads"),
                parallel: 4,
            };
            Self { router: router(Arc::new(state)), _dir: dir }
        }

        async fn call(
            &self,
            method: &str,
            path: &str,
            headers: &[(&str, &str)],
            body: Vec<u8>,
        ) -> (StatusCode, Vec<u8>) {
            let mut req =
                HttpRequest::builder().method(method).uri(path).header("authorization", "Bearer secret-token");
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            let resp = self.router.clone().oneshot(req.body(Body::from(body)).unwrap()).await.unwrap();
            let status = resp.status();
            (status, resp.into_body().collect().await.unwrap().to_bytes().to_vec())
        }

        async fn json(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> (StatusCode, Value) {
            let (s, b) = self.call(method, path, headers, body).await;
            (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
        }

        /// Polls a job until it is no longer running.
        async fn wait(&self, job: &Value) -> Value {
            let id = job["job"].as_u64().unwrap();
            loop {
                let (_, v) = self.json("GET", &format!("/v1/jobs/{id}"), &[], vec![]).await;
                if v["status"]["state"] != "running" {
                    return v;
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
    }

    #[tokio::test]
    async fn token_is_required() {
        let api = Api::new();
        let req = HttpRequest::builder().uri("/v1/status").body(Body::empty()).unwrap();
        assert_eq!(api.router.clone().oneshot(req).await.unwrap().status(), StatusCode::UNAUTHORIZED);
        let req = HttpRequest::builder().uri("/v1/status").header("authorization", "Bearer nope").body(Body::empty());
        assert_eq!(api.router.clone().oneshot(req.unwrap()).await.unwrap().status(), StatusCode::UNAUTHORIZED);
        assert_eq!(api.json("GET", "/v1/status", &[], vec![]).await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn insert_then_fetch() {
        let api = Api::new();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
        let (s, job) = api.json("POST", "/v1/insert?name=a.bin&mime=application/x-test", &[], data.clone()).await;
        assert_eq!(s, StatusCode::OK);
        let done = api.wait(&job).await;
        assert_eq!(done["status"]["state"], "done", "{done}");
        let uri = done["status"]["uri"].as_str().unwrap().to_owned();

        let (_, job) = api.json("POST", "/v1/fetch", &[], serde_json::to_vec(&json!({ "uri": uri })).unwrap()).await;
        let done = api.wait(&job).await;
        assert_eq!(done["status"]["name"], "a.bin");
        assert_eq!(done["status"]["size"], 100_000);
        let id = job["job"].as_u64().unwrap();
        let (s, body) = api.call("GET", &format!("/v1/jobs/{id}/data"), &[], vec![]).await;
        assert_eq!((s, body), (StatusCode::OK, data));
        // Downloaded once; the job is gone.
        assert_eq!(api.call("GET", &format!("/v1/jobs/{id}/data"), &[], vec![]).await.0, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn a_second_fetch_of_a_running_document_joins_it() {
        let api = Api::new();
        let backend_stalls = MemoryNetwork { stall_after: Some(0), ..MemoryNetwork::default() };
        let state = ApiState {
            backend: Arc::new(backend_stalls),
            jobs: Arc::new(Jobs::default()),
            token: "secret-token".into(),
            downloads: api._dir.path().join("d2"),
            parallel: 4,
        };
        let api = Api { router: router(Arc::new(state)), _dir: api._dir };
        let body = serde_json::to_vec(&json!({ "uri": "KSK@same-document" })).unwrap();
        let (_, a) = api.json("POST", "/v1/fetch", &[], body.clone()).await;
        let (_, b) = api.json("POST", "/v1/fetch", &[], body).await;
        assert_eq!(a["job"], b["job"], "one job per document at a time");
        let (_, c) = api.json("POST", "/v1/fetch", &[], br#"{"uri":"KSK@another"}"#.to_vec()).await;
        assert_ne!(a["job"], c["job"]);
    }

    #[tokio::test]
    async fn signed_insert_with_edition() {
        let api = Api::new();
        let insert = pamphlet_crypto::generate_ssk(&mut rand::rngs::OsRng, "index").to_string();
        for e in 1..=2 {
            let (_, job) = api
                .json(
                    "POST",
                    &format!("/v1/insert?doc=blog&edition={e}"),
                    &[(INSERT_KEY_HEADER, &insert)],
                    vec![e as u8; 10],
                )
                .await;
            let done = api.wait(&job).await;
            assert_eq!(done["status"]["edition"], e, "{done}");
        }
        let (_, job) =
            api.json("POST", "/v1/insert?doc=blog&edition=1", &[(INSERT_KEY_HEADER, &insert)], vec![9; 10]).await;
        let done = api.wait(&job).await;
        assert_eq!(done["status"]["kind"], "collision", "{done}");
    }

    #[tokio::test]
    async fn bad_input_is_a_clear_error() {
        let api = Api::new();
        let (s, v) = api.json("POST", "/v1/fetch", &[], br#"{"uri":"CHK@nonsense"}"#.to_vec()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(v["error"].as_str().unwrap().contains("bad URI"), "{v}");
        let (s, v) = api.json("POST", "/v1/insert", &[(INSERT_KEY_HEADER, "SSK@zzz")], vec![1]).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        let (s, _) = api.json("GET", "/v1/jobs/999", &[], vec![]).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, v) = api.json("POST", "/v1/friends", &[], b"garbage".to_vec()).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::BAD_REQUEST, Some("not a node reference")));

        // A well-formed URI of a document nobody inserted: the job fails as not found.
        let (_, job) = api
            .json("POST", "/v1/fetch", &[], serde_json::to_vec(&json!({ "uri": "KSK@nobody-inserted-this" })).unwrap())
            .await;
        let done = api.wait(&job).await;
        assert_eq!(done["status"]["kind"], "not_found", "{done}");
    }
}
