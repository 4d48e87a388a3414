//! Integration tests for pamphlet live in `tests/`: each file starts real `pamphlet`
//! processes on 127.0.0.1 and checks what a user would see.
//!
//! This library holds the helpers they share: finding the binary, running it, and a
//! [`NodeProcess`] that is killed when dropped, so a failing test leaves nothing behind.

#![forbid(unsafe_code)]
// Tests drive real processes with real time.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The `pamphlet` binary built by this workspace (`target/<profile>/pamphlet`).
///
/// `cargo test --workspace` builds it because the `pamphlet` package has integration tests
/// of its own; tests here find it next to their own executable.
///
/// # Panics
/// If the binary has not been built; the message says how to build it.
pub fn pamphlet_bin() -> PathBuf {
    let mut dir = std::env::current_exe().expect("path of the running test");
    dir.pop(); // the test executable
    if dir.ends_with("deps") {
        dir.pop();
    }
    let bin = dir.join(format!("pamphlet{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.exists(), "{} not found: run `cargo build -p pamphlet` first", bin.display());
    bin
}

/// Runs `pamphlet ARGS` to completion.
pub fn pamphlet(args: &[&str]) -> Output {
    Command::new(pamphlet_bin()).args(args).stdin(Stdio::null()).output().expect("run pamphlet")
}

/// Runs `pamphlet ARGS`, asserting success; returns stdout.
///
/// # Panics
/// If the command fails (with its stderr in the message).
pub fn pamphlet_ok(args: &[&str]) -> String {
    let out = pamphlet(args);
    assert!(out.status.success(), "pamphlet {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Writes `len` pseudo-random bytes (from `seed`) to `dir/name`; returns the path and
/// the bytes, to compare a fetched copy with.
///
/// # Panics
/// If the file cannot be written.
pub fn random_file(dir: &Path, name: &str, len: usize, seed: u64) -> (PathBuf, Vec<u8>) {
    use rand::{RngCore, SeedableRng};
    let mut data = vec![0u8; len];
    rand_chacha::ChaCha8Rng::seed_from_u64(seed).fill_bytes(&mut data);
    let path = dir.join(name);
    std::fs::write(&path, &data).expect("write the test file");
    (path, data)
}

/// `GET path` from the HTTP API of the node whose directory is `dir` (its `api.addr` and
/// `api.token` files), parsed as JSON.
///
/// # Panics
/// If the node does not answer 200 with JSON.
pub fn api_get(dir: &Path, path: &str) -> serde_json::Value {
    use std::io::{Read, Write};
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).expect("the node's API files").trim().to_owned();
    let (addr, token) = (read("api.addr"), read("api.token"));
    let mut s = std::net::TcpStream::connect(&addr).expect("connect to the node API");
    s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n")
        .expect("send the request");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read the answer");
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(head.starts_with("HTTP/1.1 200"), "GET {path}: {head}");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

/// Runs `pamphlet darknet down --dir DIR` when dropped: a test's darknet is stopped (its
/// processes, and the namespaces of `--wan`) even when the test fails.
pub struct DarknetDown(pub String);

impl Drop for DarknetDown {
    fn drop(&mut self) {
        let _ = pamphlet(&["darknet", "down", "--dir", &self.0]);
    }
}

/// `pamphlet darknet up ARGS --dir DIR` in the setup turn (its nodes pick their ports);
/// the guard it returns takes the darknet down when dropped. The guard exists before `up`
/// runs, so the processes of an `up` that fails part way are stopped too.
///
/// # Panics
/// If `up` fails.
pub fn darknet_up(dir: &Path, args: &[&str]) -> DarknetDown {
    let down = DarknetDown(dir.to_str().expect("utf-8 path").to_owned());
    let _turn = setup_turn();
    pamphlet_ok(&[&["darknet", "up"], args, &["--dir", &down.0]].concat());
    down
}

/// Node setup takes turns within one test binary: `node init` picks a free port that
/// `node run` binds later, and another test's process could take it in between.
static SETUP: Mutex<()> = Mutex::new(());

/// Holds the setup turn.
pub fn setup_turn() -> MutexGuard<'static, ()> {
    SETUP.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A `pamphlet node run` process, killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct NodeProcess {
    /// The data directory.
    pub dir: PathBuf,
    child: Option<Child>,
}

impl NodeProcess {
    /// Starts `pamphlet node run --dir DIR` and waits until its API answers.
    ///
    /// # Panics
    /// If it does not come up within 20 s.
    pub fn start(dir: &Path) -> Self {
        let mut node = Self::spawn(dir);
        node.wait_started(Duration::from_secs(20));
        node
    }

    /// Starts a node process in each of `dirs` at once, then waits until every API answers:
    /// on a loaded machine, starting a hundred nodes one after the other (each waiting for
    /// the last) took over a minute.
    ///
    /// # Panics
    /// If one does not come up within 20 s plus 0.2 s per node.
    pub fn start_all(dirs: &[PathBuf]) -> Vec<Self> {
        let mut nodes: Vec<Self> = dirs.iter().map(|d| Self::spawn(d)).collect();
        let limit = Duration::from_secs(20) + Duration::from_millis(200) * nodes.len() as u32;
        for node in &mut nodes {
            node.wait_started(limit);
        }
        nodes
    }

    /// Spawns the process, its stderr to DIR/node.stderr (so a node that does not come
    /// up says why).
    fn spawn(dir: &Path) -> Self {
        let _ = std::fs::remove_file(dir.join("api.addr"));
        let stderr = std::fs::File::create(dir.join("node.stderr")).expect("create node.stderr");
        let child = Command::new(pamphlet_bin())
            .args(["node", "run", "--dir"])
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn pamphlet node run");
        Self { dir: dir.to_owned(), child: Some(child) }
    }

    /// Waits until the node wrote its API address; panics with its stderr if it exited or
    /// `limit` passed.
    fn wait_started(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.dir.join("api.addr").exists() {
            let exited = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() >= deadline {
                let said = std::fs::read_to_string(self.dir.join("node.stderr")).unwrap_or_default();
                panic!("node in {} did not start ({exited:?}): {said}", self.dir.display());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The `--dir` argument for this node.
    pub fn dir_str(&self) -> &str {
        self.dir.to_str().expect("utf-8 path")
    }

    /// Peers connected now (from `pamphlet node status --json`).
    pub fn peers(&self) -> u64 {
        let out = pamphlet(&["node", "status", "--json", "--dir", self.dir_str()]);
        serde_json::from_slice::<serde_json::Value>(&out.stdout).ok().and_then(|v| v["peers"].as_u64()).unwrap_or(0)
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the process at once (no clean shutdown).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the process with SIGTERM and waits for a clean exit; returns whether it exited 0.
    pub fn stop(&mut self) -> bool {
        let Some(mut c) = self.child.take() else { return false };
        let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
        c.wait().map(|s| s.success()).unwrap_or(false)
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Initialises `n` data directories under `root` wired as a line (0 - 1 - … - n-1),
/// starts a node on each, and waits until every link is up.
///
/// # Panics
/// If the links do not come up within 20 s.
pub fn start_chain(root: &Path, n: usize) -> Vec<NodeProcess> {
    let _turn = setup_turn();
    let dirs: Vec<PathBuf> = (0..n).map(|i| root.join(format!("node{i}"))).collect();
    let mut refs = Vec::new();
    for d in &dirs {
        let d = d.to_str().expect("utf-8 path");
        pamphlet_ok(&["node", "init", "--dir", d]);
        // Every node its own free gateway port: 8888, the default, is one port for all of
        // them (and for other tests running at the same time).
        let config = Path::new(d).join("config.toml");
        let text = std::fs::read_to_string(&config).expect("config.toml");
        let text = text.replace("gateway_listen = \"127.0.0.1:8888\"", "gateway_listen = \"127.0.0.1:0\"");
        std::fs::write(&config, text).expect("write config.toml");
        refs.push(pamphlet_ok(&["node", "noderef", "--dir", d]).trim().to_owned());
    }
    for i in 0..n.saturating_sub(1) {
        let (a, b) = (dirs[i].to_str().expect("utf-8"), dirs[i + 1].to_str().expect("utf-8"));
        pamphlet_ok(&["node", "add-friend", "--dir", a, &refs[i + 1]]);
        pamphlet_ok(&["node", "add-friend", "--dir", b, &refs[i]]);
    }
    let nodes: Vec<NodeProcess> = dirs.iter().map(|d| NodeProcess::start(d)).collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let up = nodes.iter().enumerate().all(|(i, p)| p.peers() == if i == 0 || i == n - 1 { 1 } else { 2 });
        if up {
            std::thread::sleep(Duration::from_millis(100));
            return nodes;
        }
        assert!(Instant::now() < deadline, "links did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
}
