//! The gateway's HTTP server (axum): keys in the path, filtered documents out.
//!
//! Routes (docs/gateway.md): `/` the home page; `/CHK@…`, `/SSK@…`, `/KSK@…`,
//! `/USK@…/name/N/path` a document or a file of a site; `/external?url=…` the warning page
//! for outside links; `POST /open` (the home page's box) redirects to a key; `POST
//! /publish` and `/publish/<id>` publish a file or a folder from the home page.
//!
//! Every response, refusals included, carries [`SECURITY_HEADERS`]. Requests whose `Host`
//! is not the gateway's own address are refused (DNS rebinding); requests other than
//! GET/HEAD need an `Origin` equal to the gateway's and the per-session form token. No
//! CORS header is ever sent.

// A driver: serves HTTP on tokio.
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Multipart, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri as HttpUri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use pamphlet_crypto::{SskRequestUri, Uri};
use percent_encoding::percent_decode_str;
use subtle::ConstantTimeEq;

use super::bookmarks::Bookmarks;
use super::editions::Editions;
use super::filter::{self, Verdict, EXTERNAL_LINK_PARAM, EXTERNAL_LINK_PATH};
use super::headers::SECURITY_HEADERS;
use super::progress::{Download, Downloads, PROGRESS_AFTER};
use super::publish::{self, Publications, Upload};
use crate::client::pipeline::{self, BlockNetwork, FetchOptions};
use crate::client::site_transfer;
use crate::client::splitfile::InsertOptions;

/// What the home page shows about the node: (location, connected peers).
pub type StatusFn = Box<dyn Fn() -> (f64, usize) + Send + Sync>;

/// The node's peers by kind and by how they were found, as the home page words them
/// (e.g. `seed 2, stranger 6; found by announcement 4, seeds file 2, …`).
pub type PeerKindsFn = Box<dyn Fn() -> String + Send + Sync>;

/// Everything the gateway's handlers share.
pub struct GatewayState<N: BlockNetwork> {
    /// The node.
    pub net: Arc<N>,
    /// `Host` values this gateway answers to (`127.0.0.1:8888`, `localhost:8888`).
    pub hosts: Vec<String>,
    /// The per-session form token (random at each start) that POSTs must carry.
    pub form_token: String,
    /// Block requests in flight per fetch.
    pub parallel: usize,
    /// The node's status for the home page.
    pub status: StatusFn,
    /// Fetches in the background, for progress pages.
    pub downloads: Downloads,
    /// Bookmarked sites (in memory unless [`GatewayState::with_bookmarks`] names a file).
    pub bookmarks: Bookmarks,
    /// The newest edition seen of each site, for the "newer edition" note.
    pub editions: Editions,
    /// Files and sites published from the home page.
    pub publications: Publications,
    /// The peers by kind, for the home page (`None`: not shown).
    pub peer_kinds: Option<PeerKindsFn>,
}

impl<N: BlockNetwork> GatewayState<N> {
    /// The state of a gateway listening on `addr`, with a fresh form token.
    pub fn new(net: Arc<N>, addr: SocketAddr, parallel: usize, status: StatusFn) -> Self {
        let port = addr.port();
        let mut hosts = vec![addr.to_string(), format!("localhost:{port}")];
        if addr.ip().is_loopback() && addr.is_ipv4() {
            hosts.push(format!("127.0.0.1:{port}"));
        }
        let mut token = [0u8; 24];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut token);
        let form_token = token.iter().map(|b| format!("{b:02x}")).collect();
        Self {
            net,
            hosts,
            form_token,
            parallel,
            status,
            downloads: Downloads::default(),
            bookmarks: Bookmarks::default(),
            editions: Editions::default(),
            publications: Publications::default(),
            peer_kinds: None,
        }
    }

    /// Shows the node's peers by kind (friend, stranger, seed) and how each was found on
    /// the home page.
    #[must_use]
    pub fn with_peer_kinds(mut self, kinds: PeerKindsFn) -> Self {
        self.peer_kinds = Some(kinds);
        self
    }

    /// Keeps the bookmarks in `path` (the daemon's `DIR/bookmarks.json`).
    #[must_use]
    pub fn with_bookmarks(mut self, path: std::path::PathBuf) -> Self {
        self.bookmarks = Bookmarks::load(path);
        self
    }
}

/// The router: every route behind the Host/Origin guard, every response with the headers.
pub fn router<N: BlockNetwork>(state: Arc<GatewayState<N>>) -> Router {
    Router::new()
        .route("/", get(home::<N>))
        .route(EXTERNAL_LINK_PATH, get(external))
        .route("/open", post(open::<N>))
        .route("/bookmarks", post(bookmark::<N>))
        .route("/bookmarks/remove", post(unbookmark::<N>))
        .route(
            "/publish",
            // The form's few fields and multipart framing, on top of the files.
            post(publish_upload::<N>).layer(DefaultBodyLimit::max(publish::MAX_PUBLISH_BYTES + (64 << 10))),
        )
        .route("/publish/{id}", get(publication::<N>))
        .fallback(document::<N>)
        .layer(middleware::from_fn_with_state(Arc::clone(&state), guard::<N>))
        .with_state(state)
}

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".into(),
            '<' => "&lt;".into(),
            '>' => "&gt;".into(),
            '"' => "&quot;".into(),
            '\'' => "&#39;".into(),
            c => c.to_string(),
        })
        .collect()
}

/// A gateway page (no script, no outside resource).
fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{}</title></head><body><h1>{}</h1>{body}\
         <p><a href=\"/\">pamphlet gateway</a></p></body></html>",
        esc(title),
        esc(title)
    );
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

fn refuse(why: &str) -> Response {
    page(StatusCode::FORBIDDEN, "Refused", &format!("<p>{}</p>", esc(why)))
}

/// Host check (DNS rebinding), Origin check for anything but GET/HEAD; then the security
/// headers on whatever the answer is.
async fn guard<N: BlockNetwork>(State(st): State<Arc<GatewayState<N>>>, req: Request, next: Next) -> Response {
    let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let mut resp = if !st.hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
        refuse("this gateway answers only to its own address (the Host header names another)")
    } else if req.method() != Method::GET && req.method() != Method::HEAD {
        let origin = req.headers().get(header::ORIGIN).and_then(|h| h.to_str().ok()).unwrap_or("");
        if origin.eq_ignore_ascii_case(&format!("http://{host}")) {
            next.run(req).await
        } else {
            refuse("a request that changes something must come from the gateway's own pages")
        }
    } else {
        next.run(req).await
    };
    let headers = resp.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(*name, HeaderValue::from_static(value));
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

async fn home<N: BlockNetwork>(State(st): State<Arc<GatewayState<N>>>) -> Response {
    let (location, peers) = (st.status)();
    let kinds = st.peer_kinds.as_ref().map(|k| k()).filter(|k| !k.is_empty());
    let kinds = kinds.map(|k| format!(" ({})", esc(&k))).unwrap_or_default();
    let token = esc(&st.form_token);
    let mut marks = String::new();
    for b in st.bookmarks.list() {
        let Ok(Uri::SskRequest(site)) = Uri::parse(&b.site) else { continue };
        let newest = site.with_edition(b.newest);
        let news = if b.newest > b.seen {
            format!(" <strong>new edition {} (you last opened {})</strong>", b.newest, b.seen)
        } else {
            format!(" edition {}", b.newest)
        };
        marks.push_str(&format!(
            "<li><a href=\"/{}/\">{}</a>{news} <form method=\"post\" action=\"/bookmarks/remove\" \
             style=\"display:inline\"><input type=\"hidden\" name=\"token\" value=\"{token}\">\
             <input type=\"hidden\" name=\"key\" value=\"{}\"><button>Remove</button></form></li>",
            esc(&newest.to_string()),
            esc(&b.title),
            esc(&b.site)
        ));
    }
    let marks = if marks.is_empty() { "<p>No bookmarks yet.</p>".to_owned() } else { format!("<ul>{marks}</ul>") };
    let max = publish::MAX_PUBLISH_BYTES >> 20;
    let body = format!(
        "<p>Node location {location:.4}, {peers} connected peer(s){kinds}.</p>\
         <form method=\"post\" action=\"/open\"><input type=\"hidden\" name=\"token\" value=\"{token}\">\
         <label>Key: <input name=\"key\" size=\"80\"></label> <button>Open</button></form>\
         <h2>Publish</h2>\
         <form method=\"post\" action=\"/publish\" enctype=\"multipart/form-data\">\
         <input type=\"hidden\" name=\"token\" value=\"{token}\"><input type=\"hidden\" name=\"kind\" value=\"file\">\
         <label>A file: <input type=\"file\" name=\"file\" required></label> <button>Publish the file</button></form>\
         <form method=\"post\" action=\"/publish\" enctype=\"multipart/form-data\">\
         <input type=\"hidden\" name=\"token\" value=\"{token}\"><input type=\"hidden\" name=\"kind\" value=\"site\">\
         <label>A folder, as a site: <input type=\"file\" name=\"file\" webkitdirectory multiple required></label> \
         <button>Publish the site</button></form>\
         <p>Up to {max} MiB from here; anything can be published with <code>pamphlet insert</code>. \
         Everyone who learns the address can fetch what you publish, and nobody can take it back.</p>\
         <h2>Bookmarks</h2>{marks}\
         <form method=\"post\" action=\"/bookmarks\"><input type=\"hidden\" name=\"token\" value=\"{token}\">\
         <label>USK: <input name=\"key\" size=\"60\"></label> <label>Title: <input name=\"title\"></label> \
         <button>Bookmark</button></form>"
    );
    page(StatusCode::OK, "pamphlet", &body)
}

/// `POST /publish`: the home page's upload (publish.rs); inserted in the background, and
/// `303` to its progress page.
async fn publish_upload<N: BlockNetwork>(State(st): State<Arc<GatewayState<N>>>, form: Multipart) -> Response {
    let upload = match publish::read_upload(form, &st.form_token).await {
        Ok(u) => u,
        Err(e @ publish::UploadError::Token) => return refuse(&e.to_string()),
        Err(e) => return page(StatusCode::BAD_REQUEST, "Not published", &format!("<p>{}</p>", esc(&e.to_string()))),
    };
    let Some((id, job)) = st.publications.start(upload.describe()) else {
        return page(StatusCode::SERVICE_UNAVAILABLE, "Busy", "<p>Too many publications at once; try again soon.</p>");
    };
    let (net, parallel) = (Arc::clone(&st.net), st.parallel);
    tokio::spawn(async move {
        let progress = |p: pipeline::InsertProgress| job.progress(p.done, p.total);
        let outcome = match upload {
            Upload::File { name, data } => {
                let mime = crate::client::site::guess_mime(&name, &data);
                let options = InsertOptions { name: Some(name), mime: Some(mime), ..InsertOptions::default() };
                pipeline::insert_chk_tracked(&net, data, options, parallel, &progress).await.map(|u| u.to_string())
            }
            Upload::Site(files) => site_transfer::insert_site_tracked(&net, files, None, None, parallel, &progress)
                .await
                .map(|s| format!("{}/", s.uri)),
        };
        job.finish(outcome.map_err(|e| e.to_string()));
    });
    redirect(StatusCode::SEE_OTHER, &format!("/publish/{id}"))
}

/// `GET /publish/<id>`: a publication's progress (reloading itself), then its address.
async fn publication<N: BlockNetwork>(State(st): State<Arc<GatewayState<N>>>, Path(id): Path<String>) -> Response {
    let Some(job) = st.publications.get(&id) else {
        return page(
            StatusCode::NOT_FOUND,
            "No such publication",
            "<p>It finished over an hour ago, or never was.</p>",
        );
    };
    match job.outcome() {
        Some(Ok(uri)) => page(
            StatusCode::OK,
            "Published",
            &format!(
                "<p>{} is in the network. Its address (give it to whoever should read it):</p>\
                 <p><code>{}</code></p><p><a href=\"/{}\">Open it</a></p>",
                esc(&job.what),
                esc(&uri),
                esc(&uri)
            ),
        ),
        Some(Err(e)) => page(
            StatusCode::OK,
            "Not published",
            &format!("<p>{} could not be published: {}</p>", esc(&job.what), esc(&e)),
        ),
        None => {
            let (done, total) = job.blocks();
            let blocks = if total > 0 {
                format!("<p><progress max=\"{total}\" value=\"{done}\"></progress> {done} of {total} blocks</p>")
            } else {
                "<p>Encoding…</p>".to_owned()
            };
            let html = format!(
                "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"1\">\
                 <title>Publishing…</title></head><body><h1>Publishing…</h1><p>{}</p>{blocks}<p>{} s so far. \
                 This page reloads itself and shows the address when it is done.</p>\
                 <p><a href=\"/\">pamphlet gateway</a></p></body></html>",
                esc(&job.what),
                job.elapsed().as_secs()
            );
            (StatusCode::OK, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
        }
    }
}

/// Checks a form's token (the Origin was checked by the guard).
fn token_ok<N: BlockNetwork>(st: &GatewayState<N>, body: &[u8]) -> bool {
    let token = form_field(body, "token").unwrap_or_default();
    bool::from(token.as_bytes().ct_eq(st.form_token.as_bytes()))
}

/// `POST /bookmarks`: `key` (a USK), `title`.
async fn bookmark<N: BlockNetwork>(State(st): State<Arc<GatewayState<N>>>, body: Bytes) -> Response {
    if !token_ok(&st, &body) {
        return refuse("the form token is missing or stale; reload the gateway's home page");
    }
    let key = form_field(&body, "key").unwrap_or_default();
    let title = form_field(&body, "title").unwrap_or_default();
    let added = pamphlet_crypto::uri::split_site_path(&key)
        .map_err(|e| e.to_string())
        .and_then(|(uri, _)| st.bookmarks.add(&uri, &title).map_err(|e| e.to_string()));
    match added {
        Ok(()) => redirect(StatusCode::SEE_OTHER, "/"),
        Err(e) => page(StatusCode::BAD_REQUEST, "Not bookmarked", &format!("<p>{}</p>", esc(&e))),
    }
}

/// `POST /bookmarks/remove`: `key`.
async fn unbookmark<N: BlockNetwork>(State(st): State<Arc<GatewayState<N>>>, body: Bytes) -> Response {
    if !token_ok(&st, &body) {
        return refuse("the form token is missing or stale; reload the gateway's home page");
    }
    let key = form_field(&body, "key").unwrap_or_default();
    let removed =
        Uri::parse(&key).map_err(|e| e.to_string()).and_then(|u| st.bookmarks.remove(&u).map_err(|e| e.to_string()));
    match removed {
        Ok(()) => redirect(StatusCode::SEE_OTHER, "/"),
        Err(e) => page(StatusCode::BAD_REQUEST, "Not removed", &format!("<p>{}</p>", esc(&e))),
    }
}

/// Decodes an `application/x-www-form-urlencoded` field.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    let body = std::str::from_utf8(body).ok()?;
    body.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| percent_decode_str(&v.replace('+', " ")).decode_utf8_lossy().into_owned())
    })
}

async fn open<N: BlockNetwork>(State(st): State<Arc<GatewayState<N>>>, body: Bytes) -> Response {
    let token = form_field(&body, "token").unwrap_or_default();
    if !bool::from(token.as_bytes().ct_eq(st.form_token.as_bytes())) {
        return refuse("the form token is missing or stale; reload the gateway's home page");
    }
    let key = form_field(&body, "key").unwrap_or_default();
    match pamphlet_crypto::uri::split_site_path(&key) {
        Ok((uri, path)) => {
            let target = format!("/{uri}{}", path.map(|p| format!("/{p}")).unwrap_or_default());
            redirect(StatusCode::SEE_OTHER, &target)
        }
        Err(e) => page(StatusCode::BAD_REQUEST, "Not a key", &format!("<p>{}</p>", esc(&e.to_string()))),
    }
}

async fn external(uri: HttpUri) -> Response {
    let address = uri
        .query()
        .unwrap_or("")
        .split('&')
        .find_map(|p| p.strip_prefix(EXTERNAL_LINK_PARAM).and_then(|r| r.strip_prefix('=')))
        .map(|v| percent_decode_str(v).decode_utf8_lossy().into_owned())
        .unwrap_or_default();
    let body = format!(
        "<p>This page links to an address outside pamphlet:</p><p><code>{}</code></p>\
         <p>Opening it would leave pamphlet: the site there learns your address. The gateway does \
         not follow it; copy it into another browser only if you accept that.</p>",
        esc(&address)
    );
    page(StatusCode::OK, "A link outside pamphlet", &body)
}

fn redirect(code: StatusCode, to: &str) -> Response {
    match HeaderValue::from_str(to) {
        Ok(v) => (code, [(header::LOCATION, v)]).into_response(),
        Err(_) => page(StatusCode::BAD_REQUEST, "Bad address", ""),
    }
}

/// Percent-decodes each segment on its own: `%2F` never becomes a separator.
fn decode_path(path: &str) -> Option<String> {
    let segments: Option<Vec<String>> = path
        .split('/')
        .map(|s| {
            let d = percent_decode_str(s).decode_utf8().ok()?;
            (!d.contains('/')).then(|| d.into_owned())
        })
        .collect();
    segments.map(|s| s.join("/"))
}

/// Whether a request is a navigation (a person waiting on a page, who can be shown a
/// progress page) rather than a sub-resource (an image, a stylesheet). Browsers say so in
/// `Sec-Fetch-Dest`; without it, an `Accept` that asks for HTML.
fn is_navigation(headers: &HeaderMap) -> bool {
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match value("sec-fetch-dest") {
        Some(dest) => dest.eq_ignore_ascii_case("document"),
        None => value("accept").is_some_and(|a| a.contains("text/html")),
    }
}

/// The progress page: what is being fetched, how far, and a reload every second (no
/// script).
fn progress_page(download: &Download) -> Response {
    let (have, needed, failed) = download.blocks();
    let blocks = if needed > 0 {
        format!("<p><progress max=\"{needed}\" value=\"{have}\"></progress> {have} of {needed} blocks{}</p>", {
            if failed > 0 {
                format!(", {failed} not found so far (error correction may fill them in)")
            } else {
                String::new()
            }
        })
    } else {
        "<p>Looking for the document…</p>".to_owned()
    };
    let html = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"1\">\
         <title>Fetching…</title></head><body><h1>Fetching…</h1>{blocks}<p>{} s so far. This page \
         reloads itself and shows the document when it is here.</p><p><a href=\"/\">pamphlet gateway</a></p>\
         </body></html>",
        download.elapsed().as_secs()
    );
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

/// `/CHK@…`, `/SSK@…`, `/KSK@…`, `/USK@…/name/N/path`: fetched in the background
/// ([`Downloads`]); a navigation still waiting after [`PROGRESS_AFTER`] gets the progress
/// page, which reloads until the document is here.
async fn document<N: BlockNetwork>(
    State(st): State<Arc<GatewayState<N>>>,
    uri: HttpUri,
    headers: HeaderMap,
) -> Response {
    let address = uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
    let wait = is_navigation(&headers).then_some(PROGRESS_AFTER);
    // A second request for the same address can take the response first; then fetch again
    // (from the node's cache by now).
    for _ in 0..2 {
        let state = Arc::clone(&st);
        let target = uri.clone();
        let Some(download) = st.downloads.get_or_start(&address, move |d| fetch_document(state, target, d)) else {
            return page(StatusCode::SERVICE_UNAVAILABLE, "Busy", "<p>Too many fetches at once; try again soon.</p>");
        };
        if !download.wait(wait).await {
            return progress_page(&download);
        }
        if let Some(response) = st.downloads.take(&address, &download) {
            return response;
        }
    }
    page(StatusCode::SERVICE_UNAVAILABLE, "Busy", "<p>Another request took this document; reload.</p>")
}

/// Fetches, resolves and filters one address: the response to send.
async fn fetch_document<N: BlockNetwork>(st: Arc<GatewayState<N>>, uri: HttpUri, download: Arc<Download>) -> Response {
    let raw = uri.path();
    let text = raw.strip_prefix('/').unwrap_or(raw);
    if !["CHK@", "SSK@", "USK@", "KSK@"].iter().any(|k| text.starts_with(k)) {
        return page(StatusCode::NOT_FOUND, "Not found", "<p>Open a key from the home page.</p>");
    }
    let bad = |e: String| page(StatusCode::BAD_REQUEST, "Not a key", &format!("<p>{}</p>", esc(&e)));
    let (key, path) = match pamphlet_crypto::uri::split_site_path(text) {
        Ok(k) => k,
        Err(e) => return bad(e.to_string()),
    };
    let decoded = match path.as_deref().map(decode_path) {
        Some(None) => return bad("the path has an encoded slash or is not UTF-8".into()),
        Some(Some(p)) => Some(p),
        None => None,
    };
    let options = FetchOptions { parallel: st.parallel, partial_dir: None };
    let fail = |e: pipeline::PipelineError| {
        page(StatusCode::NOT_FOUND, "Could not fetch", &format!("<p>{}</p>", esc(&e.to_string())))
    };
    let progress = |p| download.progress(p);
    let fetched = match pipeline::fetch(&st.net, &key, &options, &progress).await {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    // A USK shows its newest edition at or after the one asked for, under that edition's address.
    if let (Uri::SskRequest(r), Some(found)) = (&key, fetched.edition) {
        // Opened when served at the edition asked for; otherwise the redirect opens it.
        st.bookmarks.saw(r, found, found == r.edition);
        st.editions.learn(r, found);
        if r.updatable && found != r.edition {
            let rest = path.as_deref().map(|p| format!("/{p}")).unwrap_or_default();
            return redirect(StatusCode::FOUND, &format!("/{}{rest}", r.with_edition(found)));
        }
    }
    let located =
        match site_transfer::resolve_with_progress(&st.net, fetched, decoded.as_deref(), &options, &progress).await {
            Ok(l) => l,
            Err(e) => return fail(e),
        };
    if located.in_site && path.is_none() {
        // Relative links of the site resolve against a directory.
        return redirect(StatusCode::MOVED_PERMANENTLY, &format!("{raw}/"));
    }
    let data = located.document.data;
    if uri.query().is_some_and(|q| q.split('&').any(|p| p == "download=1")) {
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/octet-stream"), (header::CONTENT_DISPOSITION, "attachment")],
            Body::from(data),
        )
            .into_response();
    }
    let mime = located.document.mime.unwrap_or_else(|| "application/octet-stream".into());
    // The filter is CPU work bounded by the page's size (docs/gateway.md, "Deep nesting"),
    // up to seconds for the largest page it accepts: off the async workers, so one page
    // cannot stall every other request.
    let location = raw.to_owned();
    // Playlists get absolute URLs on the address the gateway is bound to (always one of
    // the `Host` values the guard accepts), never on whatever `Host` the request named.
    let origin = st.hosts.first().map(|h| format!("http://{h}")).unwrap_or_default();
    let filtered = tokio::task::spawn_blocking(move || filter::filter_at(&data, &mime, &location, &origin)).await;
    let Ok(filtered) = filtered else {
        return page(StatusCode::INTERNAL_SERVER_ERROR, "Filter failed", "<p>The content filter stopped.</p>");
    };
    // A page of an edition older than one the gateway has seen says so (editions.rs).
    let newer = match &key {
        Uri::SskRequest(r) if r.updatable => {
            st.editions.newer_than(r).max(st.bookmarks.newest(r).filter(|&n| n > r.edition)).map(|n| (r, n))
        }
        _ => None,
    };
    match filtered {
        Ok(Verdict::Serve { body, mime }) => {
            let body = match newer {
                Some((r, newest)) if mime.starts_with("text/html") => {
                    let rest = path.as_deref().map(|p| format!("/{p}")).unwrap_or_else(|| "/".to_owned());
                    with_note(&String::from_utf8_lossy(&body), r, newest, &rest).into_bytes()
                }
                _ => body,
            };
            match HeaderValue::from_str(&mime) {
                Ok(m) => (StatusCode::OK, [(header::CONTENT_TYPE, m)], Body::from(body)).into_response(),
                Err(_) => page(StatusCode::UNPROCESSABLE_ENTITY, "Refused", "<p>bad type</p>"),
            }
        }
        Ok(Verdict::DownloadOnly { mime }) => page(
            StatusCode::OK,
            "Download only",
            &format!(
                "<p>This file is of type <code>{}</code>, which the gateway cannot check. Opened \
                 outside the browser, it could contact the internet and reveal who you are.</p>\
                 <p><a href=\"{}?download=1\">Download it anyway</a></p>",
                esc(&mime),
                esc(raw)
            ),
        ),
        Err(e) => page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Refused by the content filter",
            &format!("<p>{}</p>", esc(&e.to_string())),
        ),
    }
}

/// Puts the note about edition `newest` of `uri`'s site at the top of a filtered page's
/// body (or at the start, for a page without one). `rest` is the path inside the site,
/// so the link opens the same page in the newer edition.
fn with_note(page: &str, uri: &SskRequestUri, newest: u64, rest: &str) -> String {
    let href = format!("/{}{rest}", uri.with_edition(newest));
    let note = format!(
        "<p style=\"border:1px solid #b80;padding:.5em\">This is edition {} of this site; edition {newest} \
         exists. <a href=\"{}\">Open edition {newest}</a></p>",
        uri.edition,
        esc(&href)
    );
    match page.find("<body").and_then(|i| page[i..].find('>').map(|j| i + j + 1)) {
        Some(at) => format!("{}{note}{}", &page[..at], &page[at..]),
        None => format!("{note}{page}"),
    }
}

#[cfg(test)]
mod tests;
