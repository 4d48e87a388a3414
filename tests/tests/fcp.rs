//! FCP against real node processes on 127.0.0.1: raw TCP clients that misbehave, and the
//! reference client, pyfreenet3's installed commands, run unchanged against a darknet.
//!
//! The pyfreenet test needs a virtual environment with pyfreenet3 from PyPI; `.ci/run`
//! makes one and exports its path as `PAMPHLET_PYFREENET_VENV`. Without it the test is
//! skipped (with the reason on stderr), except under `CI=true`, where it fails.

// Tests report what they measured or skipped on stderr, and drive real processes with
// real time.
#![allow(clippy::print_stderr, clippy::disallowed_methods)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use pamphlet_node::fcp::message::{decode, Limits, Message};
use pamphlet_tests::{pamphlet_ok, start_chain};
use serde_json::Value;

fn fcp_addr(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("fcp.addr")).expect("DIR/fcp.addr of a running node").trim().to_owned()
}

/// A raw FCP client over TCP.
struct Raw {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    fn connect(dir: &Path) -> Self {
        let s = TcpStream::connect(fcp_addr(dir)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        Self { s, buf: Vec::new() }
    }

    fn hello(dir: &Path) -> Self {
        let mut r = Self::connect(dir);
        r.send(&Message::new("ClientHello").with("Name", "raw").with("ExpectedVersion", "2.0"));
        assert_eq!(r.recv().unwrap().name, "NodeHello");
        r
    }

    fn send(&mut self, m: &Message) {
        self.s.write_all(&m.encode()).unwrap();
    }

    /// The next message; `None` once the node closed the connection.
    fn recv(&mut self) -> Option<Message> {
        loop {
            if let Some((m, n)) = decode(&self.buf, Limits::default()).unwrap() {
                self.buf.drain(..n);
                return Some(m);
            }
            let mut chunk = [0u8; 65536];
            match self.s.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// The message that ends request `id` (skipping progress).
    fn outcome(&mut self) -> Message {
        loop {
            let m = self.recv().expect("an answer");
            if m.name != "SimpleProgress" && m.name != "URIGenerated" {
                return m;
            }
        }
    }
}

fn store_blocks(dir: &Path) -> u64 {
    let s: Value =
        serde_json::from_str(&pamphlet_ok(&["node", "status", "--json", "--dir", dir.to_str().unwrap()])).unwrap();
    s["store"]["store_blocks"].as_u64().unwrap_or(0) + s["store"]["cache_blocks"].as_u64().unwrap_or(0)
}

fn random(len: usize, seed: u64) -> Vec<u8> {
    use rand::{RngCore, SeedableRng};
    let mut v = vec![0u8; len];
    rand_chacha::ChaCha8Rng::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

#[test]
fn misbehaving_clients_leave_the_node_healthy_and_insert_nothing() {
    let root = tempfile::tempdir().unwrap();
    let nodes = start_chain(root.path(), 2);
    let dir = nodes[0].dir.clone();
    // Before the hello: ProtocolError 1, then the node hangs up.
    let mut c = Raw::connect(&dir);
    c.send(&Message::new("ClientGet").with("Identifier", "a").with("URI", "KSK@x"));
    let e = c.recv().unwrap();
    assert_eq!((e.name.as_str(), e.get("Code")), ("ProtocolError", Some("1")));
    assert!(c.recv().is_none());

    // Binary garbage: ProtocolError 3, fatal.
    let mut c = Raw::hello(&dir);
    c.s.write_all(&random(5000, 1)).unwrap();
    let e = c.recv().unwrap();
    assert_eq!((e.get("Code"), e.get("Fatal")), (Some("3"), Some("true")));
    assert!(c.recv().is_none());

    let before = store_blocks(&dir);
    // A payload shorter than announced, then the client leaves.
    let mut c = Raw::hello(&dir);
    c.s.write_all(b"ClientPut\nIdentifier=short\nURI=CHK@\nDataLength=100000\nData\n").unwrap();
    c.s.write_all(&random(40_000, 2)).unwrap();
    drop(c);
    // A client that leaves in the middle of a large transfer to a signed key.
    let mut c = Raw::hello(&dir);
    c.s.write_all(b"ClientPut\nIdentifier=mid\nURI=KSK@half-inserted\nDataLength=3000000\nData\n").unwrap();
    c.s.write_all(&random(1_000_000, 3)).unwrap();
    drop(c);
    // A client that asks for a lot and never reads an answer.
    let mut deaf = Raw::hello(&dir);
    deaf.s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    for i in 0..3000 {
        if deaf.s.write_all(&Message::new("GenerateSSK").with("Identifier", i).encode()).is_err() {
            break;
        }
    }

    // Meanwhile another client is served, and nothing of the abandoned inserts is there.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(store_blocks(&dir), before, "no block of an insert whose data never fully arrived");
    let mut c = Raw::hello(&dir);
    c.send(&Message::new("ClientGet").with("Identifier", "g").with("URI", "KSK@half-inserted"));
    let f = c.outcome();
    assert_eq!(f.name, "GetFailed", "nothing was published under the key");
    let data = random(70_000, 4);
    c.send(
        &Message { data: Some(data.clone()), ..Message::new("ClientPut") }.with("Identifier", "p").with("URI", "CHK@"),
    );
    let done = c.outcome();
    assert_eq!(done.name, "PutSuccessful", "{:?}", done.get("ExtraDescription"));
    c.send(&Message::new("ClientGet").with("Identifier", "g2").with("URI", done.get("URI").unwrap()));
    assert_eq!(c.outcome().name, "DataFound");
    assert_eq!(c.recv().unwrap().data.unwrap(), data);
    drop(deaf);
}

/// The pyfreenet3 virtual environment, or `None` (skip) outside CI.
fn pyfreenet() -> Option<PathBuf> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    match std::env::var_os("PAMPHLET_PYFREENET_VENV").map(PathBuf::from) {
        Some(v) if v.join("bin/fcpput").exists() => Some(v),
        other => {
            let why = match other {
                Some(v) => format!("{} has no bin/fcpput", v.display()),
                None => "PAMPHLET_PYFREENET_VENV is not set".to_owned(),
            };
            assert!(!ci, "{why}: .ci/run installs pyfreenet3 and exports it");
            eprintln!("skipping the pyfreenet3 test: {why} (run .ci/run, or make a venv with pyfreenet3 and set it)");
            None
        }
    }
}

/// Runs an installed pyfreenet command against the FCP server of `node`.
fn tool(venv: &Path, node: &Path, args: &[&str]) -> Output {
    let port = fcp_addr(node).rsplit(':').next().unwrap().to_owned();
    let out = Command::new(venv.join("bin").join(args[0]))
        .args(["-H", "127.0.0.1", "-P", &port])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    if !out.status.success() {
        eprintln!("{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    out
}

fn tool_ok(venv: &Path, node: &Path, args: &[&str]) -> String {
    let out = tool(venv, node, args);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn pyfreenet_tools_work_unchanged_against_two_nodes() {
    let Some(venv) = pyfreenet() else { return };
    let root = tempfile::tempdir().unwrap();
    let nodes = start_chain(root.path(), 3);
    let (a, b) = (&nodes[0].dir, &nodes[2].dir);
    let path = |s: &str| root.path().join(s).to_str().unwrap().to_owned();

    let keys = tool_ok(&venv, a, &["fcpgenkey"]);
    let (public, private) = keys.split_once('\n').expect("fcpgenkey prints two lines");
    assert!(public.starts_with("SSK@") && public.ends_with('/') && private.starts_with("SSK@"), "{keys}");

    let started = Instant::now();
    let sizes = [0usize, 1, 32 * 1024, 5 * 1024 * 1024];
    for (i, &len) in sizes.iter().enumerate() {
        let data = random(len, 10 + i as u64);
        let file = path(&format!("in{len}.bin"));
        std::fs::write(&file, &data).unwrap();
        let targets = [
            ("CHK@".to_owned(), None),
            (format!("{private}doc{len}"), Some(format!("{public}doc{len}"))),
            (format!("{}site{len}/1", private.replacen("SSK@", "USK@", 1)), None),
        ];
        for (target, expect) in targets {
            let t = Instant::now();
            let uri = tool_ok(&venv, a, &["fcpput", &target, &file]);
            let put = t.elapsed();
            if let Some(e) = expect {
                assert_eq!(uri, e, "an SSK put answers with its request URI");
            }
            let out = path("out.bin");
            let _ = std::fs::remove_file(&out);
            let t = Instant::now();
            tool_ok(&venv, b, &["fcpget", &uri, &out]);
            eprintln!("{len} B as {}: fcpput {put:?}, fcpget {:?}", &target[..3], t.elapsed());
            assert!(std::fs::read(&out).unwrap() == data, "{len} B via {uri} is byte-identical on the other node");
        }
    }
    eprintln!("all puts and gets: {:?}", started.elapsed());

    // A second USK edition: asking for edition 1 is redirected to 2, and pyfreenet follows.
    let usk_priv = private.replacen("SSK@", "USK@", 1);
    let usk_pub = public.replacen("SSK@", "USK@", 1);
    let two = random(5000, 99);
    std::fs::write(path("two.bin"), &two).unwrap();
    let uri = tool_ok(&venv, a, &["fcpput", &format!("{usk_priv}site1/2"), &path("two.bin")]);
    assert_eq!(uri, format!("{usk_pub}site1/2"));
    tool_ok(&venv, b, &["fcpget", &format!("{usk_pub}site1/1"), &path("latest.bin")]);
    assert!(std::fs::read(path("latest.bin")).unwrap() == two, "edition 1 redirects to the newer edition 2");

    // fcpinvertkey, on an SSK and on a USK insert URI.
    assert_eq!(tool_ok(&venv, b, &["fcpinvertkey", &format!("{private}doc")]), format!("{public}doc"));
    assert_eq!(tool_ok(&venv, b, &["fcpinvertkey", &format!("{usk_priv}site/3")]), format!("{usk_pub}site/3"));

    // A key nobody inserted: GetFailed with fred's route-not-found code (14), since the
    // request visits every node of this small darknet before its hops run out.
    let out = tool(&venv, b, &["fcpget", "-v", "KSK@never-inserted-anywhere", &path("none.bin")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("GetFailed;Route not found") || err.contains("GetFailed;Data not found"), "{err}");
    let mut raw = Raw::hello(b);
    raw.send(&Message::new("ClientGet").with("Identifier", "n").with("URI", "KSK@never-inserted-either"));
    let f = raw.outcome();
    assert_eq!((f.name.as_str(), f.get("Code")), ("GetFailed", Some("14")), "{f:?}");
}

/// Waits for the FCP server of a (re)started node.
fn wait_fcp(dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !dir.join("fcp.addr").exists() {
        assert!(Instant::now() < deadline, "no fcp.addr in {}", dir.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_forever_request_survives_a_node_killed_mid_insert_and_completes() {
    let root = tempfile::tempdir().unwrap();
    let mut nodes = start_chain(root.path(), 3);
    let dir = nodes[0].dir.clone();
    let data = random(5 * 1024 * 1024, 77);
    let mut c = Raw::hello(&dir);
    c.send(&Message::new("WatchGlobal").with("Enabled", "true"));
    c.send(
        &Message { data: Some(data.clone()), ..Message::new("ClientPut") }
            .with("Identifier", "big")
            .with("URI", "CHK@")
            .with("Persistence", "forever")
            .with("Global", "true")
            .with("Verbosity", 1),
    );
    // Mid-request: the first progress report, well before the last block.
    let t = Instant::now();
    loop {
        let m = c.recv().unwrap_or_else(|| panic!("progress before the node is killed ({:?})", t.elapsed()));
        assert_ne!(m.name, "PutSuccessful", "the insert finished before the node could be killed");
        if m.name == "SimpleProgress" && m.get("Succeeded") != m.get("Required") {
            break;
        }
    }
    // Killed (SIGKILL: no clean shutdown), then started again.
    nodes[0].kill();
    drop(c);
    let _ = std::fs::remove_file(dir.join("fcp.addr"));
    nodes[0] = pamphlet_tests::NodeProcess::start(&dir);
    wait_fcp(&dir);

    let mut c = Raw::hello(&dir);
    c.send(&Message::new("WatchGlobal").with("Enabled", "true"));
    c.send(&Message::new("ListPersistentRequests"));
    let mut listed = Vec::new();
    let mut uri = None;
    loop {
        let m = c.recv().expect("the listing");
        if m.name == "PutSuccessful" {
            uri = m.get("URI").map(str::to_owned);
        }
        if m.name == "EndListPersistentRequests" {
            break;
        }
        listed.push(m);
    }
    let tag = listed.iter().find(|m| m.name == "PersistentPut").expect("the request is listed after the restart");
    assert_eq!(
        (tag.get("Identifier"), tag.get("Global"), tag.get("PersistenceType")),
        (Some("big"), Some("true"), Some("forever"))
    );
    let started = Instant::now();
    let uri = uri.unwrap_or_else(|| loop {
        let m = c.recv().expect("the resumed insert's outcome");
        match m.name.as_str() {
            "PutSuccessful" => break m.get("URI").unwrap().to_owned(),
            "PutFailed" => panic!("the resumed insert failed: {m:?}"),
            _ => {}
        }
    });
    eprintln!("resumed insert finished {:?} after the listing", started.elapsed());
    // The document is whole on the far node.
    let mut far = Raw::hello(&nodes[2].dir);
    far.send(&Message::new("ClientGet").with("Identifier", "check").with("URI", &uri));
    assert_eq!(far.outcome().name, "DataFound");
    assert!(far.recv().unwrap().data.unwrap() == data, "byte-identical after the restart");
    // Removed, it is gone for good (also from the data directory).
    c.send(&Message::new("RemoveRequest").with("Identifier", "big").with("Global", "true"));
    while c.recv().expect("the removal").name != "PersistentRequestRemoved" {}
    let left: Vec<_> = std::fs::read_dir(dir.join("fcp")).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

/// Runs an installed pyfreenet command that finds its node through `FCP_HOST`/`FCP_PORT`
/// (freesitemgr and fcpputdir take no address options), with `HOME` for its state.
fn site_tool(venv: &Path, node: &Path, home: &Path, args: &[&str], stdin: &str) -> String {
    let port = fcp_addr(node).rsplit(':').next().unwrap().to_owned();
    let path = format!("{}:{}", venv.join("bin").display(), std::env::var("PATH").unwrap_or_default());
    let mut child = Command::new(venv.join("bin").join(args[0]))
        .args(&args[1..])
        .env("HOME", home)
        .env("FCP_HOST", "127.0.0.1")
        .env("FCP_PORT", &port)
        .env("PATH", path)
        .current_dir(home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{args:?}: {text}");
    text
}

/// Fetches `uri` through FCP on `node`, waiting (up to 120 s) for a site still being
/// inserted on another node's global queue.
fn fetch_when_there(node: &Path, uri: &str) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut c = Raw::hello(node);
    loop {
        c.send(&Message::new("ClientGet").with("Identifier", "w").with("URI", uri));
        let m = c.outcome();
        if m.name == "DataFound" {
            return c.recv().unwrap().data.unwrap();
        }
        assert!(Instant::now() < deadline, "{uri} never appeared: {m:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn freesitemgr_and_fcpputdir_publish_sites_unchanged() {
    let Some(venv) = pyfreenet() else { return };
    let root = tempfile::tempdir().unwrap();
    let nodes = start_chain(root.path(), 3);
    let (a, b) = (&nodes[0].dir, &nodes[2].dir);
    let home = root.path().join("home");
    let site = root.path().join("mysite");
    std::fs::create_dir_all(site.join("sub")).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(site.join("index.html"), b"<html><body><a href=\"sub/page.html\">page</a></body></html>").unwrap();
    std::fs::write(site.join("sub/page.html"), b"<p>first</p>").unwrap();
    let big = random(300_000, 5);
    std::fs::write(site.join("big.bin"), &big).unwrap();

    // `add` asks for a name, the directory and a key (empty: a new one), then inserts on
    // the node's global queue, persistent; each `update` checks the queue.
    let dir = site.to_str().unwrap();
    site_tool(&venv, a, &home, &["freesitemgr", "add"], &format!("mysite\n{dir}\n\n"));
    let published = |edition: u64| {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let out = site_tool(&venv, a, &home, &["freesitemgr", "update", "mysite"], "");
            let list = site_tool(&venv, a, &home, &["freesitemgr", "list", "mysite"], "");
            let uri = list.lines().find_map(|l| l.trim().strip_prefix("uri: ")).unwrap().to_owned();
            if out.contains("No update required") && uri.ends_with(&format!("/mysite/{edition}/")) {
                return uri;
            }
            assert!(Instant::now() < deadline, "edition {edition} not published: {out}\n{list}");
            std::thread::sleep(Duration::from_secs(1));
        }
    };
    let uri = published(0);
    assert!(uri.starts_with("USK@"), "{uri}");
    assert_eq!(fetch_when_there(b, &format!("{uri}sub/page.html")), b"<p>first</p>");
    assert!(fetch_when_there(b, &format!("{uri}big.bin")) == big);
    assert!(fetch_when_there(b, &format!("{uri}index.html")).starts_with(b"<html>"));

    // A change: the next `update` inserts edition 1 (freesitemgr asks for edition 0 again;
    // the node moves on to the next free edition, as fred does).
    std::fs::write(site.join("sub/page.html"), b"<p>second</p>").unwrap();
    let uri = published(1);
    assert_eq!(fetch_when_there(b, &format!("{uri}sub/page.html")), b"<p>second</p>");
    assert!(fetch_when_there(b, &format!("{uri}big.bin")) == big);

    // fcpputdir: a directory in one command; it prints the site's URI.
    let other = root.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("index.html"), b"<p>other site</p>").unwrap();
    std::fs::create_dir_all(other.join("notes")).unwrap();
    std::fs::write(other.join("notes/a.txt"), b"plain notes\n").unwrap();
    let out = site_tool(&venv, a, &home, &["fcpputdir", other.to_str().unwrap()], "");
    let uri = out.lines().rev().find(|l| l.starts_with("USK@")).unwrap_or_else(|| panic!("no URI in {out}"));
    assert_eq!(fetch_when_there(b, &format!("{uri}/index.html")), b"<p>other site</p>");
    fcpgetdir_lists_the_site(&venv, b, root.path(), uri.trim_end_matches('/'));
}

/// `fcpgetdir` (a shell script) mirrors a site published by `fcpputdir` through the
/// browser gateway, as with fred: it downloads the site's sitemap (an M3U playlist that
/// `fcpputdir` added, `./index.html` per line), which the gateway's M3U filter serves with
/// absolute URLs on the gateway, makes the directories, then downloads every file.
///
/// In pyfreenet3 0.7.0 that last step cannot work against any node: it runs
/// `xargs -I % wget "%" -O "$(echo "%" | sed …)"`, whose command substitution runs once,
/// before xargs, so `-O` is the whole URL (`http://…`), a path whose directories do not
/// exist. So this checks what fcpgetdir does get right (the sitemap, filtered; the URLs it
/// asks for; the directories), then takes the step it meant to, byte-identical.
fn fcpgetdir_lists_the_site(venv: &Path, node: &Path, root: &Path, uri: &str) {
    let gateway = format!("http://{}", std::fs::read_to_string(node.join("gateway.addr")).unwrap().trim());
    let into = root.join("mirror");
    std::fs::create_dir_all(&into).unwrap();
    let out = Command::new(venv.join("bin/fcpgetdir"))
        .args(["--host", &gateway, uri, into.join("other").to_str().unwrap()])
        .current_dir(&into)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // The key path as the gateway rewrote it, e.g. `USK@…/other/0`.
    let site = uri.split_once('@').map(|(_, rest)| rest).unwrap();
    let wanted = |file: &str| format!("{gateway}/USK@{site}/{file}");
    for file in ["index.html", "notes/a.txt"] {
        assert!(log.contains(&wanted(file)), "fcpgetdir never asked for {file}: {log}");
    }
    // The directories it made from the sitemap: `<name>/<edition>/notes` below `into`.
    let edition_dir = into.join(site.split_once('/').unwrap().1);
    assert!(edition_dir.join("notes").is_dir(), "no directories from the sitemap: {log}");
    // The step fcpgetdir meant to take: every URL to its path below the edition directory.
    let get = |file: &str| {
        let path = edition_dir.join(file);
        let status = Command::new("wget").args(["-q", &wanted(file), "-O"]).arg(&path).status().unwrap();
        assert!(status.success(), "wget {}", wanted(file));
        std::fs::read(path).unwrap()
    };
    assert_eq!(get("notes/a.txt"), b"plain notes\n");
    // Pages are served filtered, with their text.
    assert!(String::from_utf8(get("index.html")).unwrap().contains("other site"));
}
