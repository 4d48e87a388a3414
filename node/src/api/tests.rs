//! The API's routes against a map of blocks (`MemoryNetwork`) and a stub node.

use axum::http::Request as HttpRequest;
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::*;
use crate::client::memory_net::MemoryNetwork;

impl ApiBackend for MemoryNetwork {
    fn status(&self) -> NodeSnapshot {
        let peers = vec![backend::PeerSnapshot {
            peer: crate::id::PeerId(0xab),
            location: Some(0.25),
            kind: "stranger".into(),
            found: "path folding".into(),
        }];
        NodeSnapshot { location: 0.5, peers, listen: "127.0.0.1:9".into(), ..NodeSnapshot::default() }
    }
    fn add_friend(&self, noderef: &str) -> Result<FriendAdded, AddFriendError> {
        let noderef: crate::link::NodeRef = noderef.parse()?;
        Ok(FriendAdded { noderef, peer: crate::id::PeerId(1), outcome: AddOutcome::Added })
    }
    fn friends(&self) -> Vec<FriendSnapshot> {
        Vec::new()
    }
    fn remove_friend(&self, friend: &str) -> Result<FriendSnapshot, RemoveFriendError> {
        Err(RemoveFriendError::NotFound(friend.to_owned()))
    }
}

struct Api {
    router: Router,
    _dir: tempfile::TempDir,
}

impl Api {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::with(MemoryNetwork::default(), dir)
    }

    fn with(backend: MemoryNetwork, dir: tempfile::TempDir) -> Self {
        let state = ApiState {
            backend: Arc::new(backend),
            jobs: Arc::new(Jobs::default()),
            token: "secret-token".into(),
            downloads: Downloads::new(dir.path().join("downloads"), b"secret-token"),
            parallel: 4,
        };
        Self { router: router(Arc::new(state)), _dir: dir }
    }

    async fn call(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> (StatusCode, Vec<u8>) {
        let mut req = HttpRequest::builder().method(method).uri(path).header("authorization", "Bearer secret-token");
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
async fn a_site_fetch_returns_the_checked_manifest() {
    let api = Api::new();
    let files = vec![("index.html".to_owned(), b"<p>home</p>".to_vec()), ("a/b.css".to_owned(), b"p{}".to_vec())];
    let bundle = crate::client::site::encode_bundle(&files);
    let (_, job) = api.json("POST", "/v1/insert-site", &[], bundle).await;
    let site = api.wait(&job).await["status"]["uri"].as_str().unwrap().to_owned();
    let fetch = |uri: String, site: bool| serde_json::to_vec(&json!({ "uri": uri, "site": site })).unwrap();
    let (_, job) = api.json("POST", "/v1/fetch", &[], fetch(site.clone(), true)).await;
    assert_eq!(api.wait(&job).await["status"]["mime"], site_transfer::SITE_MIME);
    let id = job["job"].as_u64().unwrap();
    let (_, body) = api.call("GET", &format!("/v1/jobs/{id}/data"), &[], vec![]).await;
    let manifest = crate::client::site::SiteManifest::from_bytes(&body).unwrap();
    assert_eq!(manifest.files.len(), 2);
    // Without the flag, the same URI is the default document.
    let (_, job) = api.json("POST", "/v1/fetch", &[], fetch(site.clone(), false)).await;
    assert_eq!(api.wait(&job).await["status"]["mime"], "text/html");
    // A path inside the site, or a document that is no site, is refused.
    let (s, _) = api.json("POST", "/v1/fetch", &[], fetch(format!("{site}/index.html"), true)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (_, job) = api.json("POST", "/v1/insert", &[], b"plain".to_vec()).await;
    let plain = api.wait(&job).await["status"]["uri"].as_str().unwrap().to_owned();
    let (_, job) = api.json("POST", "/v1/fetch", &[], fetch(plain, true)).await;
    assert_eq!(api.wait(&job).await["status"]["state"], "failed");
}

/// Two files of one site, asked for at once, are two jobs with their own bytes (they
/// were one job, keyed by the site's URI alone, and both got the first file), and
/// the site and its default document likewise.
#[tokio::test]
async fn files_of_one_site_fetched_at_once_each_get_their_own() {
    let api = Api::new();
    let files = vec![("index.html".to_owned(), b"<p>home</p>".to_vec()), ("a/b.css".to_owned(), b"p{}".to_vec())];
    let (_, job) = api.json("POST", "/v1/insert-site", &[], crate::client::site::encode_bundle(&files)).await;
    let site = api.wait(&job).await["status"]["uri"].as_str().unwrap().to_owned();
    let asks = [(format!("{site}/a/b.css"), false), (format!("{site}/index.html"), false), (site.clone(), true)];
    let mut jobs = Vec::new();
    for (uri, site) in &asks {
        let body = serde_json::to_vec(&json!({ "uri": uri, "site": site })).unwrap();
        jobs.push(api.json("POST", "/v1/fetch", &[], body).await.1);
    }
    let ids: std::collections::HashSet<_> = jobs.iter().map(|j| j["job"].as_u64()).collect();
    assert_eq!(ids.len(), 3, "three jobs: {jobs:?}");
    let mut got = Vec::new();
    for job in &jobs {
        api.wait(job).await;
        let id = job["job"].as_u64().unwrap();
        got.push(api.call("GET", &format!("/v1/jobs/{id}/data"), &[], vec![]).await.1);
    }
    assert_eq!((got[0].as_slice(), got[1].as_slice()), (b"p{}".as_slice(), b"<p>home</p>".as_slice()));
    assert_eq!(crate::client::site::SiteManifest::from_bytes(&got[2]).unwrap().files.len(), 2);
}

#[tokio::test]
async fn a_second_fetch_of_a_running_document_joins_it() {
    let backend_stalls = MemoryNetwork { stall_after: Some(0), ..MemoryNetwork::default() };
    let api = Api::with(backend_stalls, tempfile::tempdir().unwrap());
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
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().starts_with("bad node reference: "), "{v}");

    // A well-formed URI of a document nobody inserted: the job fails as not found.
    let (_, job) = api
        .json("POST", "/v1/fetch", &[], serde_json::to_vec(&json!({ "uri": "KSK@nobody-inserted-this" })).unwrap())
        .await;
    let done = api.wait(&job).await;
    assert_eq!(done["status"]["kind"], "not_found", "{done}");
}

/// Fetches `uri` through an API over `backend` and returns the finished job.
async fn fetch_job(backend: MemoryNetwork, uri: &str) -> Value {
    let api = Api::with(backend, tempfile::tempdir().unwrap());
    let (_, job) = api.json("POST", "/v1/fetch", &[], serde_json::to_vec(&json!({ "uri": uri })).unwrap()).await;
    api.wait(&job).await
}

/// A well-formed CHK URI (of a document no backend here holds).
fn some_chk() -> String {
    crate::client::splitfile::encode(b"some document", &InsertOptions::default()).unwrap().top.to_string()
}

#[tokio::test]
async fn a_timed_out_fetch_is_reported_as_timed_out() {
    for uri in [&some_chk(), "KSK@slow-document"] {
        let timed_out = Failure::TimedOut { htl_left: Some(6), peers_tried: 3 };
        let backend = MemoryNetwork { fail_with: Some(timed_out.clone()), ..MemoryNetwork::default() };
        let done = fetch_job(backend, uri).await;
        assert_eq!(done["status"]["kind"], "timed_out", "{done}");
        assert_eq!(done["status"]["htl_left"], 6, "{done}");
        // What a client reads back is the same failure, not a string to compare.
        let status: JobStatus = serde_json::from_value(done["status"].clone()).unwrap();
        assert!(matches!(status, JobStatus::Failed { failure, .. } if failure == timed_out));
    }
}

#[tokio::test]
async fn each_network_failure_keeps_its_kind() {
    for f in [
        Failure::RouteNotFound { htl_left: Some(17), peers_tried: 0 },
        Failure::RetryLater { cause: crate::node::RetryCause::RecentlyFailed },
        Failure::Unavailable,
        Failure::InvalidData,
    ] {
        let backend = MemoryNetwork { fail_with: Some(f.clone()), ..MemoryNetwork::default() };
        let done = fetch_job(backend, &some_chk()).await;
        assert_eq!(done["status"]["kind"], f.kind(), "{done}");
    }
}

#[tokio::test]
async fn a_panicking_fetch_is_internal_not_not_found() {
    // A CHK fetch panics inside the pipeline's block tasks; a KSK fetch inside the job.
    for uri in [&some_chk(), "KSK@buggy"] {
        let backend = MemoryNetwork { panic_on_fetch: true, ..MemoryNetwork::default() };
        let done = fetch_job(backend, uri).await;
        assert_eq!(done["status"]["state"], "failed", "{done}");
        assert_eq!(done["status"]["kind"], "internal", "{uri}: {done}");
    }
}

#[tokio::test]
async fn status_and_peers_are_rendered_from_the_snapshot() {
    let api = Api::new();
    let (_, s) = api.json("GET", "/v1/status", &[], vec![]).await;
    assert_eq!((s["location"].as_f64(), s["peers"].as_u64()), (Some(0.5), Some(1)), "{s}");
    assert_eq!(s["listen"], "127.0.0.1:9");
    assert_eq!(s["store"]["store_capacity"], 0);
    let (_, p) = api.json("GET", "/v1/peers", &[], vec![]).await;
    assert_eq!(
        p,
        json!([{ "peer": "00000000000000ab", "location": 0.25, "kind": "stranger", "found": "path folding" }])
    );
    assert_eq!(s["peers_by_kind"], json!({ "stranger": 1 }));
    assert_eq!(s["peers_by_found"], json!({ "path folding": 1 }));
}

/// Finished jobs go after their TTL with no other job started: the sweep drives it.
#[tokio::test(start_paused = true)]
async fn the_sweep_expires_finished_jobs_without_a_new_job() {
    let jobs = Arc::new(Jobs::default());
    let (_stop, stop) = tokio::sync::watch::channel(false);
    let sweep = spawn_job_expiry(&jobs, stop);
    let id = jobs.create();
    jobs.finish(id, JobStatus::Failed { error: "x".into(), failure: Failure::Internal }, Some(vec![0; 1000]));
    tokio::time::sleep(jobs::JOB_TTL - jobs::SWEEP_INTERVAL).await;
    assert!(jobs.get(id).is_some(), "kept within the TTL");
    tokio::time::sleep(jobs::SWEEP_INTERVAL * 2).await;
    assert_eq!(jobs.get(id), None, "swept after the TTL");
    drop(jobs);
    tokio::time::sleep(jobs::SWEEP_INTERVAL * 2).await;
    assert!(sweep.is_finished(), "the sweep ends with the jobs");
}

/// A job's status carries the retries and, for a USK whose newer edition never
/// answered, `may_be_stale`: the person is told, not handed an old edition as the latest.
#[tokio::test]
async fn retries_and_a_possibly_stale_edition_reach_the_job_status() {
    use crate::client::memory_net::Flaky;
    let timed_out = Failure::TimedOut { htl_left: Some(17), peers_tried: 1 };
    // Every insert request times out once; the job completes, its retries counted.
    let flaky = MemoryNetwork { flaky: Flaky::new(timed_out.clone(), 1, []), ..MemoryNetwork::default() };
    let api = Api::with(flaky, tempfile::tempdir().unwrap());
    let (_, job) = api.json("POST", "/v1/insert", &[], vec![7; 10]).await;
    let done = api.wait(&job).await;
    assert_eq!(done["status"]["state"], "done", "{done}");
    assert_eq!((done["status"]["retries"].as_u64(), done["progress"]["retries"].as_u64()), (Some(1), Some(1)));

    // Editions 1 and 2 published; the probe of 2 never answers.
    let source = Arc::new(MemoryNetwork::default());
    let ins = SskInsertUri::new(
        pamphlet_crypto::SskPrivateKey::from_seed([1; 32]),
        pamphlet_crypto::CryptoKey::from_bytes([2; 32]),
        "news",
        1,
        true,
    );
    for e in 1..=2u64 {
        let opts = InsertOptions::default();
        pipeline::insert_signed(&source, ins.with_edition(e), vec![e as u8], opts, 1, &|_, _| {}).await.unwrap();
    }
    let second = ins.request_uri().with_edition(2).routing_key();
    let net = MemoryNetwork {
        blocks: std::sync::Mutex::new(source.blocks.lock().unwrap().clone()),
        flaky: Flaky::new(timed_out, usize::MAX, [second]),
        ..MemoryNetwork::default()
    };
    let api = Api::with(net, tempfile::tempdir().unwrap());
    let body = serde_json::to_vec(&json!({ "uri": ins.request_uri().to_string() })).unwrap();
    let (_, job) = api.json("POST", "/v1/fetch", &[], body).await;
    let done = api.wait(&job).await;
    let st = &done["status"];
    assert_eq!((st["state"].as_str(), st["edition"].as_u64()), (Some("done"), Some(1)), "{done}");
    assert_eq!(st["may_be_stale"], true, "{done}");
    assert_eq!(st["retries"], 2, "{done}");
}
