use axum::http::Request as HttpRequest;
use http_body_util::BodyExt;
use pamphlet_crypto::{CryptoKey, SskInsertUri, SskPrivateKey};
use tower::ServiceExt;

use super::*;
use crate::client::memory_net::MemoryNetwork;
use crate::client::site_transfer::insert_site;

const HOST: &str = "127.0.0.1:8888";

struct Gw {
    router: Router,
    net: Arc<MemoryNetwork>,
    token: String,
    state: Arc<GatewayState<MemoryNetwork>>,
}

impl Gw {
    fn new() -> Self {
        let net = Arc::new(MemoryNetwork::default());
        let state = GatewayState::new(Arc::clone(&net), HOST.parse().unwrap(), 4, Box::new(|| (0.5, 3)))
            .with_peer_kinds(Box::new(|| "seed 1, stranger 2; found by announcement 2, seeds file 1".into()));
        let token = state.form_token.clone();
        let state = Arc::new(state);
        Self { router: router(Arc::clone(&state)), net, token, state }
    }

    fn bookmarks(&self) -> &crate::gateway::bookmarks::Bookmarks {
        &self.state.bookmarks
    }

    async fn call(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (Response, String) {
        let mut req = HttpRequest::builder().method(method).uri(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = self.router.clone().oneshot(req.body(Body::from(body.to_owned())).unwrap()).await.unwrap();
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (Response::from_parts(parts, Body::empty()), String::from_utf8_lossy(&bytes).into_owned())
    }

    /// `POST /publish` with a multipart body of `fields` (name, file name, bytes), from the
    /// gateway's own origin.
    async fn publish(&self, fields: &[(&str, Option<&str>, &[u8])]) -> (Response, String) {
        const BOUNDARY: &str = "----pamphlet-test-boundary";
        let mut body = Vec::new();
        for (name, file, data) in fields {
            body.extend(format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"").as_bytes());
            if let Some(f) = file {
                body.extend(format!("; filename=\"{f}\"\r\nContent-Type: application/octet-stream").as_bytes());
            }
            body.extend(b"\r\n\r\n");
            body.extend(*data);
            body.extend(b"\r\n");
        }
        body.extend(format!("--{BOUNDARY}--\r\n").as_bytes());
        let req = HttpRequest::builder()
            .method("POST")
            .uri("/publish")
            .header("host", HOST)
            .header("origin", format!("http://{HOST}"))
            .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
            .body(Body::from(body))
            .unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (Response::from_parts(parts, Body::empty()), String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Follows a publication's page until it is done; returns the address it shows.
    async fn published(&self, resp: &Response) -> String {
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        let page = resp.headers()[header::LOCATION].to_str().unwrap().to_owned();
        for _ in 0..500 {
            let (_, body) = self.get(&page).await;
            if let Some(rest) = body.split_once("<code>").map(|(_, r)| r) {
                return rest.split_once("</code>").unwrap().0.replace("&amp;", "&");
            }
            assert!(body.contains("Publishing…"), "{body}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("{page} never finished");
    }

    async fn get(&self, path: &str) -> (Response, String) {
        self.call("GET", path, &[("host", HOST)], "").await
    }
}

fn site(edition_text: &str) -> Vec<(String, Vec<u8>)> {
    let index = format!(
        "<html><head><title>A freesite</title><script>document.title='pwned'</script></head>\
         <body><p onclick=\"steal()\">{edition_text}</p><img src=\"http://evil.example/t.png\">\
         <a href=\"about/team.html\">team</a><a href=\"https://example.org/\">out</a></body></html>"
    );
    vec![
        ("index.html".into(), index.into_bytes()),
        ("about/team.html".into(), b"<p>the team</p><a href=\"../index.html\">home</a>".to_vec()),
        ("notes.pdf".into(), b"%PDF-1.4 not really".to_vec()),
    ]
}

fn assert_security_headers(resp: &Response) {
    for (name, value) in SECURITY_HEADERS {
        assert_eq!(resp.headers().get(*name).and_then(|v| v.to_str().ok()), Some(*value), "{name}");
    }
    assert!(resp.headers().keys().all(|k| !k.as_str().starts_with("access-control-")), "no CORS");
}

#[tokio::test]
async fn a_hostile_page_is_served_filtered_with_the_headers() {
    let gw = Gw::new();
    let uri = insert_site(&gw.net, site("hello"), None, None, 4).await.unwrap().uri.to_string();
    let (resp, _) = gw.get(&format!("/{uri}")).await;
    assert_eq!(resp.status(), StatusCode::MOVED_PERMANENTLY, "a site root gets its slash");
    assert_eq!(resp.headers()[header::LOCATION], format!("/{uri}/"));
    assert_security_headers(&resp);

    let (resp, body) = gw.get(&format!("/{uri}/")).await;
    assert_eq!(resp.status(), StatusCode::OK, "{body}");
    assert!(resp.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
    assert_security_headers(&resp);
    assert!(body.contains("hello") && body.contains("A freesite"), "{body}");
    for gone in ["<script", "pwned", "onclick", "evil.example", "href=\"https://example.org"] {
        assert!(!body.contains(gone), "{gone} in {body}");
    }
    assert!(body.contains(&format!("/{uri}/about/team.html")), "relative links resolve in the site: {body}");
    assert!(body.contains("/external?url="), "{body}");

    let (resp, body) = gw.get(&format!("/{uri}/about/team.html")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(body.contains("the team") && body.contains(&format!("/{uri}/index.html")), "{body}");

    // A type the filter cannot check: a warning page, and the bytes only as an attachment.
    let (resp, body) = gw.get(&format!("/{uri}/notes.pdf")).await;
    assert!(body.contains("Download it anyway") && body.contains("?download=1"), "{body}");
    assert_security_headers(&resp);
    let (resp, body) = gw.get(&format!("/{uri}/notes.pdf?download=1")).await;
    assert_eq!(resp.headers()[header::CONTENT_DISPOSITION], "attachment");
    assert!(body.starts_with("%PDF"));

    let (resp, _) = gw.get(&format!("/{uri}/missing.html")).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_security_headers(&resp);
}

#[tokio::test]
async fn another_host_is_refused() {
    let gw = Gw::new();
    for host in ["evil.example", "evil.example:8888", "127.0.0.1:9999"] {
        let (resp, body) = gw.call("GET", "/", &[("host", host)], "").await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{host}");
        assert!(!body.contains("connected peer"), "nothing about the node leaks");
        assert_security_headers(&resp);
    }
    let (resp, _) = gw.call("GET", "/", &[], "").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN, "no Host at all");
    let (resp, body) = gw.call("GET", "/", &[("host", "localhost:8888")], "").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(body.contains("3 connected peer(s)") && body.contains(&gw.token));
    assert!(body.contains("(seed 1, stranger 2; found by announcement 2, seeds file 1)"), "peers by kind: {body}");
}

#[tokio::test]
async fn posts_need_the_origin_and_the_token() {
    let gw = Gw::new();
    let form = format!("token={}&key=KSK%40hello", gw.token);
    let evil = [("host", HOST), ("origin", "http://evil.example")];
    assert_eq!(gw.call("POST", "/open", &evil, &form).await.0.status(), StatusCode::FORBIDDEN, "cross-origin");
    let none = [("host", HOST)];
    assert_eq!(gw.call("POST", "/open", &none, &form).await.0.status(), StatusCode::FORBIDDEN, "no Origin");
    let ours = [("host", HOST), ("origin", "http://127.0.0.1:8888")];
    let stale = gw.call("POST", "/open", &ours, "token=nope&key=KSK%40hello").await.0;
    assert_eq!(stale.status(), StatusCode::FORBIDDEN, "wrong token");
    let (resp, _) = gw.call("POST", "/open", &ours, &form).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()[header::LOCATION], "/KSK@hello");
    assert_security_headers(&resp);
}

#[tokio::test]
async fn a_usk_redirects_to_its_newest_edition() {
    let gw = Gw::new();
    let ins = SskInsertUri::new(SskPrivateKey::from_seed([9; 32]), CryptoKey::from_bytes([1; 32]), "site", 1, true);
    insert_site(&gw.net, site("first"), Some(ins.clone()), None, 4).await.unwrap();
    insert_site(&gw.net, site("second"), Some(ins.with_edition(2)), None, 4).await.unwrap();
    let old = ins.request_uri().with_edition(1);
    let (resp, _) = gw.get(&format!("/{old}/about/team.html")).await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    let new = ins.request_uri().with_edition(2);
    assert_eq!(resp.headers()[header::LOCATION], format!("/{new}/about/team.html"));
    let (resp, body) = gw.get(&format!("/{new}/")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(body.contains("second"), "{body}");
}

#[tokio::test]
async fn a_page_of_an_older_edition_notes_the_newest_seen() {
    let gw = Gw::new();
    let ins = SskInsertUri::new(SskPrivateKey::from_seed([9; 32]), CryptoKey::from_bytes([1; 32]), "site", 1, true);
    // Editions 1 and a later one, with a gap the USK lookup from 1 does not cross.
    let later = 1 + 2 * crate::client::signed::SEARCH_WINDOW;
    insert_site(&gw.net, site("first"), Some(ins.clone()), None, 4).await.unwrap();
    insert_site(&gw.net, site("later"), Some(ins.with_edition(later)), None, 4).await.unwrap();
    let (old, new) = (ins.request_uri().with_edition(1), ins.request_uri().with_edition(later));
    let (resp, body) = gw.get(&format!("/{old}/")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(body.contains("first") && !body.contains("exists"), "nothing newer known yet: {body}");
    // A link to the later edition is followed: the gateway has now seen it.
    assert!(gw.get(&format!("/{new}/")).await.1.contains("later"));
    let (resp, body) = gw.get(&format!("/{old}/about/team.html")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(body.contains("the team") && body.contains(&format!("edition {later} exists")), "{body}");
    assert!(body.contains(&format!("href=\"/{new}/about/team.html\"")), "{body}");
    // Not on the newest edition itself, nor on other types.
    assert!(!gw.get(&format!("/{new}/")).await.1.contains("exists"));
}

#[tokio::test]
async fn a_file_and_a_folder_are_published_from_the_home_page() {
    let gw = Gw::new();
    let (_, home) = gw.get("/").await;
    assert!(home.contains("action=\"/publish\"") && home.contains("webkitdirectory"), "{home}");
    let token = gw.token.clone();
    let text = b"a leaflet\n".repeat(5000);
    let (resp, _) = gw
        .publish(&[("token", None, token.as_bytes()), ("kind", None, b"file"), ("file", Some("leaflet.txt"), &text)])
        .await;
    let uri = gw.published(&resp).await;
    assert!(uri.starts_with("CHK@"), "{uri}");
    let (resp, body) = gw.get(&format!("/{uri}")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(body.as_bytes(), text.as_slice());

    // A folder: the browser names each file under the folder's own name, which is dropped.
    let (resp, _) = gw
        .publish(&[
            ("token", None, token.as_bytes()),
            ("kind", None, b"site"),
            ("file", Some("www/index.html"), b"<p>home page</p><a href=\"about/team.html\">team</a>"),
            ("file", Some("www/about/team.html"), b"<p>the team</p>"),
        ])
        .await;
    let site = gw.published(&resp).await;
    assert!(site.starts_with("CHK@") && site.ends_with('/'), "{site}");
    assert!(gw.get(&format!("/{site}")).await.1.contains("home page"));
    assert!(gw.get(&format!("/{site}about/team.html")).await.1.contains("the team"));
}

#[tokio::test]
async fn publishing_needs_the_token_first_and_refuses_bad_folders() {
    let gw = Gw::new();
    let file = ("file", Some("x.txt"), b"x".as_slice());
    // No token, a wrong one, or the token after the file: refused before anything is read.
    for fields in [
        vec![("kind", None, b"file".as_slice()), file],
        vec![("token", None, b"0000".as_slice()), ("kind", None, b"file".as_slice()), file],
        vec![("kind", None, b"file".as_slice()), file, ("token", None, gw.token.as_bytes())],
    ] {
        let (resp, body) = gw.publish(&fields).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{body}");
    }
    // A folder with a path that climbs out, and nothing chosen at all.
    let token = gw.token.clone();
    let climbing = ("file", Some("www/../../etc/passwd"), b"x".as_slice());
    let (resp, body) = gw.publish(&[("token", None, token.as_bytes()), ("kind", None, b"site"), climbing]).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{body}");
    let (resp, body) = gw.publish(&[("token", None, token.as_bytes()), ("kind", None, b"file")]).await;
    assert!(resp.status() == StatusCode::BAD_REQUEST && body.contains("no file"), "{body}");
    // Over the size limit: refused, nothing published.
    let big = vec![0u8; publish::MAX_PUBLISH_BYTES + 1];
    let (resp, _) =
        gw.publish(&[("token", None, token.as_bytes()), ("kind", None, b"file"), ("file", Some("big"), &big)]).await;
    assert!(resp.status().is_client_error(), "{}", resp.status());
    assert_eq!(gw.net.inserts.load(std::sync::atomic::Ordering::SeqCst), 0, "nothing was inserted");
    // A page elsewhere cannot post the form at all (the guard's Origin check).
    let (resp, _) = gw.call("POST", "/publish", &[("host", HOST), ("origin", "http://evil.example")], "").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_external_page_shows_and_does_not_follow() {
    let gw = Gw::new();
    let (resp, body) = gw.get("/external?url=http%3A%2F%2Fexample.org%2F%3Ca%3E").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(body.contains("http://example.org/&lt;a&gt;"), "{body}");
    assert!(!body.contains("href=\"http://example.org"), "{body}");
    let (resp, _) = gw.get("/CHK@nonsense").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

/// A network whose every block fetch takes `delay`: a slow route.
struct SlowNet {
    inner: MemoryNetwork,
    delay: std::time::Duration,
}

impl BlockNetwork for SlowNet {
    fn fetch(
        &self,
        kind: pamphlet_crypto::BlockKind,
        key: pamphlet_crypto::RoutingKey,
    ) -> impl std::future::Future<Output = Result<pamphlet_crypto::Block, crate::node::Failure>> + Send {
        let fetch = self.inner.fetch(kind, key);
        let delay = self.delay;
        async move {
            tokio::time::sleep(delay).await;
            fetch.await
        }
    }

    fn insert(
        &self,
        block: pamphlet_crypto::Block,
    ) -> impl std::future::Future<Output = Result<pipeline::InsertOutcome, crate::node::Failure>> + Send {
        self.inner.insert(block)
    }
}

#[tokio::test]
async fn a_slow_page_shows_progress_then_itself_and_a_slow_image_just_waits() {
    let net = Arc::new(SlowNet { inner: MemoryNetwork::default(), delay: std::time::Duration::from_millis(600) });
    let mut files = site("slow");
    // Seven data blocks after the manifest and the file's top block: a fetch starts with
    // 32 requests in flight (`client::window::FIRST_WINDOW`), so three round trips of
    // 0.6 s, well over the second before the progress page (0.3 s each was not).
    // Random bytes, so that compression cannot make it one block.
    let mut noise = vec![0u8; 200_000];
    rand::RngCore::fill_bytes(&mut <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(3), &mut noise);
    let png = [b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x10\x08\x02\0\0\0".as_slice(), &noise].concat();
    files.push(("big.png".into(), png.clone()));
    let uri = insert_site(&net, files, None, None, 4).await.unwrap().uri.to_string();
    let state = Arc::new(GatewayState::new(Arc::clone(&net), HOST.parse().unwrap(), 4, Box::new(|| (0.5, 3))));
    let app = router(Arc::clone(&state));
    let get = |path: String, dest: &'static str| {
        let app = app.clone();
        async move {
            let req = HttpRequest::builder().uri(path).header("host", HOST).header("sec-fetch-dest", dest);
            let resp = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
            let (parts, body) = resp.into_parts();
            (parts, body.collect().await.unwrap().to_bytes())
        }
    };
    let address = format!("/{uri}/big.png");

    // A navigation: the progress page first, reloading itself…
    let (parts, body) = get(address.clone(), "document").await;
    let text = String::from_utf8_lossy(&body);
    assert_eq!(parts.status, StatusCode::OK);
    assert!(text.contains("Fetching") && text.contains("http-equiv=\"refresh\""), "{}", &text[..text.len().min(300)]);
    assert!(!text.contains("<script"), "no script on the gateway's pages");
    assert_eq!(parts.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(state.downloads.len(), 1);
    // …then, on a reload, the image itself.
    let mut reloads = 0;
    let (parts, body) = loop {
        let (parts, body) = get(address.clone(), "document").await;
        if parts.headers[header::CONTENT_TYPE] != "text/html; charset=utf-8" {
            break (parts, body);
        }
        reloads += 1;
        assert!(reloads < 30, "still fetching after 30 reloads");
    };
    assert_eq!(parts.headers[header::CONTENT_TYPE], "image/png");
    assert!(body == png, "the whole image");
    assert!(state.downloads.is_empty(), "a taken download is forgotten");

    // A sub-resource cannot show a page: it waits for the whole file.
    let other = Arc::new(SlowNet { inner: MemoryNetwork::default(), delay: std::time::Duration::from_millis(300) });
    let uri = insert_site(&other, vec![("big.png".into(), png.clone())], None, None, 4).await.unwrap().uri;
    let state = Arc::new(GatewayState::new(other, HOST.parse().unwrap(), 4, Box::new(|| (0.5, 3))));
    let req =
        HttpRequest::builder().uri(format!("/{uri}/big.png")).header("host", HOST).header("sec-fetch-dest", "image");
    let resp = router(state).oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "image/png");
    assert!(resp.into_body().collect().await.unwrap().to_bytes() == png);
}

#[tokio::test]
async fn bookmarks_show_new_editions_and_need_the_form_token() {
    let gw = Gw::new();
    let ins = SskInsertUri::new(SskPrivateKey::from_seed([5; 32]), CryptoKey::from_bytes([6; 32]), "blog", 1, true);
    insert_site(&gw.net, site("first"), Some(ins.clone()), None, 4).await.unwrap();
    let usk = ins.request_uri().with_edition(1).to_string();
    let ours = [("host", HOST), ("origin", "http://127.0.0.1:8888")];
    let form = |token: &str| format!("token={token}&key={}&title=My+blog", usk.replace('@', "%40").replace('/', "%2F"));
    // A page elsewhere cannot bookmark (no Origin of ours), nor a form without the token.
    let evil = [("host", HOST), ("origin", "http://evil.example")];
    assert_eq!(gw.call("POST", "/bookmarks", &evil, &form(&gw.token)).await.0.status(), StatusCode::FORBIDDEN);
    assert_eq!(gw.call("POST", "/bookmarks", &ours, &form("stale")).await.0.status(), StatusCode::FORBIDDEN);
    assert!(gw.get("/").await.1.contains("No bookmarks yet"));
    // A CHK is not followable.
    let chk = insert_site(&gw.net, site("x"), None, None, 4).await.unwrap().uri.to_string();
    let not_usk = format!("token={}&key={}", gw.token, chk.replace('@', "%40"));
    assert_eq!(gw.call("POST", "/bookmarks", &ours, &not_usk).await.0.status(), StatusCode::BAD_REQUEST);

    let (resp, _) = gw.call("POST", "/bookmarks", &ours, &form(&gw.token)).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let (_, home) = gw.get("/").await;
    assert!(home.contains("My blog") && home.contains(&format!("/{usk}/")) && !home.contains("new edition"), "{home}");

    // A new edition appears; the check finds it and the home page says so.
    insert_site(&gw.net, site("second"), Some(ins.with_edition(2)), None, 4).await.unwrap();
    let state_bookmarks = gw.bookmarks();
    crate::gateway::bookmarks::check_editions(&gw.net, state_bookmarks, 4).await;
    let (_, home) = gw.get("/").await;
    let new = ins.request_uri().with_edition(2).to_string();
    assert!(home.contains("new edition 2 (you last opened 1)") && home.contains(&format!("/{new}/")), "{home}");
    // Opening it marks it seen.
    let (resp, body) = gw.get(&format!("/{new}/")).await;
    assert_eq!(resp.status(), StatusCode::OK, "{body}");
    assert!(!gw.get("/").await.1.contains("new edition"));

    let remove = format!("token={}&key={}", gw.token, new.replace('@', "%40").replace('/', "%2F"));
    assert_eq!(gw.call("POST", "/bookmarks/remove", &ours, &remove).await.0.status(), StatusCode::SEE_OTHER);
    assert!(gw.get("/").await.1.contains("No bookmarks yet"));
}

#[test]
fn the_note_goes_inside_the_body_and_links_the_same_page() {
    let page = "<html><head></head><body class=\"x\"><p>old</p></body></html>";
    let out = with_note(page, &usk_at(1), 3, "/about/team.html");
    let body = out.find("<body class=\"x\">").unwrap();
    let note = out.find("edition 3 exists").unwrap();
    assert!(body < note && note < out.find("<p>old</p>").unwrap(), "{out}");
    assert!(out.contains(&format!("href=\"/{}/about/team.html\"", usk_at(3))), "{out}");
}

fn usk_at(edition: u64) -> pamphlet_crypto::SskRequestUri {
    crate::gateway::test_usk(edition)
}
