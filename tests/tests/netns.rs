//! Hosts that are really separate: two nodes in two network namespaces joined by a veth
//! pair, each with its own address inside namespaces these tests create (nothing outside
//! this machine is ever addressed). The namespaces (and the veth pair in them) and the
//! node processes are removed by drop guards, so on every exit path, a panic included.
//!
//! Not root: a test is skipped with the reason printed (and fails under CI, `CI=true`,
//! which runs as root). As root, a namespace that cannot be made (no iproute2) fails it.

// Tests and benchmarks measure with, or drive nodes by, the real clock.
#![allow(clippy::disallowed_methods)]
// Tests report what they measured or skipped on stderr.
#![allow(clippy::print_stderr)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pamphlet_tests::{pamphlet, pamphlet_bin, pamphlet_ok};

/// The namespaces and veth pair, deleted on drop.
struct Namespaces {
    names: [String; 2],
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

fn ip(args: &[&str]) -> bool {
    Command::new("ip").args(args).stderr(Stdio::null()).status().map(|s| s.success()).unwrap_or(false)
}

/// Runs `pamphlet ARGS` inside namespace `ns`.
fn in_ns(ns: &str, args: &[&str]) -> std::process::Output {
    Command::new("ip").args(["netns", "exec", ns]).arg(pamphlet_bin()).args(args).output().unwrap()
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Two namespaces joined by a veth pair, `addrs[i]`/24 on the device in namespace `i`;
/// `None` (skip, reason printed) where namespaces cannot be made outside CI.
fn namespace_pair(kind: &str, addrs: [&str; 2]) -> Option<(Namespaces, [String; 2])> {
    let tag = std::process::id();
    let names = [format!("pamphlet-{kind}a-{tag}"), format!("pamphlet-{kind}b-{tag}")];
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    if !root {
        let why = "network namespaces need root";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}: CI runs as root");
        eprintln!("SKIPPED: {why} (run as root to test two hosts)");
        return None;
    }
    // As root, a failure is a broken setup (no iproute2?), not a reason to pass.
    assert!(ip(&["netns", "add", &names[0]]), "cannot create a network namespace as root: is iproute2 installed?");
    let ns = Namespaces { names: names.clone() };
    assert!(ip(&["netns", "add", &names[1]]));
    let devs = [format!("p{kind}a{tag}"), format!("p{kind}b{tag}")];
    let devs = devs.map(|d| d[..d.len().min(15)].to_owned());
    assert!(ip(&["link", "add", &devs[0], "type", "veth", "peer", "name", &devs[1]]));
    for i in 0..2 {
        let (n, dev, addr) = (&names[i], &devs[i], addrs[i]);
        assert!(ip(&["link", "set", dev, "netns", n]));
        assert!(ip(&["-n", n, "addr", "add", &format!("{addr}/24"), "dev", dev]));
        assert!(ip(&["-n", n, "link", "set", dev, "up"]));
        assert!(ip(&["-n", n, "link", "set", "lo", "up"]));
    }
    Some((ns, devs))
}

/// `pamphlet node run --dir DIR` inside namespace `ns`, killed when dropped.
fn run_in(ns: &str, dir: &str) -> Killed {
    Killed(
        Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(pamphlet_bin())
            .args(["node", "run", "--dir", dir])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

#[test]
fn insert_and_fetch_across_network_namespaces() {
    // Addresses exist only inside the two namespaces created here.
    let (addr_a, addr_b) = ("10.213.7.1", "10.213.7.2");
    let Some((ns, _)) = namespace_pair("v", [addr_a, addr_b]) else { return };
    let names = ns.names.clone();
    let root = tempfile::tempdir().unwrap();
    let (da, db) = (root.path().join("a"), root.path().join("b"));
    let (sa, sb) = (da.to_str().unwrap(), db.to_str().unwrap());
    pamphlet_ok(&["node", "init", "--listen", &format!("{addr_a}:7411"), "--dir", sa]);
    pamphlet_ok(&["node", "init", "--listen", &format!("{addr_b}:7411"), "--dir", sb]);
    let ra = pamphlet_ok(&["node", "noderef", "--dir", sa]);
    let rb = pamphlet_ok(&["node", "noderef", "--dir", sb]);
    assert!(ra.contains(addr_a) && rb.contains(addr_b));
    pamphlet_ok(&["node", "add-friend", "--dir", sa, rb.trim()]);
    pamphlet_ok(&["node", "add-friend", "--dir", sb, ra.trim()]);

    let _a = run_in(&names[0], sa);
    let _b = run_in(&names[1], sb);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = in_ns(&names[1], &["node", "status", "--json", "--dir", sb]);
        let peers = serde_json::from_slice::<serde_json::Value>(&s.stdout).ok().and_then(|v| v["peers"].as_u64());
        if peers == Some(1) {
            break;
        }
        assert!(Instant::now() < deadline, "the nodes in the two namespaces did not connect");
        std::thread::sleep(Duration::from_millis(100));
    }

    let file = root.path().join("doc.txt");
    std::fs::write(&file, "published from another host").unwrap();
    let out = in_ns(&names[0], &["insert", file.to_str().unwrap(), "--dir", sa]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let uri = String::from_utf8(out.stdout).unwrap().lines().last().unwrap().to_owned();
    let target = root.path().join("got.txt");
    let out = in_ns(&names[1], &["fetch", &uri, "-o", target.to_str().unwrap(), "--dir", sb]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "published from another host");
}

/// What `pamphlet node friends --json` run in namespace `ns` says of the one friend.
fn friend_in(ns: &str, dir: &str) -> serde_json::Value {
    let out = in_ns(ns, &["node", "friends", "--json", "--dir", dir]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    list.get(0).cloned().unwrap_or_default()
}

/// Waits until the friend `node friends` shows in `ns` satisfies `ok`.
fn wait_friend(ns: &str, dir: &str, what: &str, ok: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let f = friend_in(ns, dir);
        if ok(&f) {
            return f;
        }
        assert!(Instant::now() < deadline, "{what}: never happened; last seen {f}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Stops a node with SIGTERM (a clean shutdown saves its state) and waits for it.
fn stop(mut node: Killed) {
    let pid = node.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while node.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "node {pid} did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Issue 15: two people on two machines befriend each other with references built from
/// `advertise` (both listen on 0.0.0.0); then B's machine gets a new address, B changes
/// `advertise` and restarts, and the link comes back without anyone exchanging a new
/// reference: B dials A (whose address did not change) and its signed address record
/// tells A where B is now, which A keeps in its friends file.
#[test]
fn friends_on_two_hosts_find_each_other_again_after_one_moves() {
    let (addr_a, addr_b, moved_b) = ("10.231.15.1", "10.231.15.2", "10.231.15.3");
    let Some((ns, devs)) = namespace_pair("m", [addr_a, addr_b]) else { return };
    let names = ns.names.clone();
    let root = tempfile::tempdir().unwrap();
    let (da, db) = (root.path().join("a"), root.path().join("b"));
    let (sa, sb) = (da.to_str().unwrap(), db.to_str().unwrap());
    let (adv_a, adv_b, adv_moved) = (format!("{addr_a}:7411"), format!("{addr_b}:7411"), format!("{moved_b}:7411"));
    for (dir, adv) in [(sa, &adv_a), (sb, &adv_b)] {
        pamphlet_ok(&["node", "init", "--listen", "0.0.0.0:7411", "--advertise", adv, "--dir", dir]);
    }
    let refs: Vec<String> = [sa, sb]
        .iter()
        .map(|dir| {
            let out = pamphlet(&["node", "noderef", "--dir", dir]);
            assert!(out.status.success());
            let warnings = String::from_utf8_lossy(&out.stderr);
            assert!(!warnings.contains("warning"), "an advertised private address needs no warning: {warnings}");
            String::from_utf8(out.stdout).unwrap().trim().to_owned()
        })
        .collect();
    assert!(refs[0].starts_with(&format!("pamphlet-noderef:v2:{adv_a}:")), "{}", refs[0]);
    assert!(refs[1].starts_with(&format!("pamphlet-noderef:v2:{adv_b}:")), "{}", refs[1]);
    assert!(!refs.iter().any(|r| r.contains("0.0.0.0")), "the listen address is not handed out");
    pamphlet_ok(&["node", "add-friend", "--dir", sa, &refs[1]]);
    pamphlet_ok(&["node", "add-friend", "--dir", sb, &refs[0]]);

    let _a = run_in(&names[0], sa);
    let b = run_in(&names[1], sb);
    wait_friend(&names[0], sa, "A connected to B", |f| f["state"] == "connected");

    // B's machine moves to another address; the old one is gone. B advertises the new one.
    stop(b);
    assert!(ip(&["-n", &names[1], "addr", "del", &format!("{addr_b}/24"), "dev", &devs[1]]));
    assert!(ip(&["-n", &names[1], "addr", "add", &format!("{moved_b}/24"), "dev", &devs[1]]));
    let config = std::fs::read_to_string(db.join("config.toml")).unwrap();
    assert!(config.contains(&adv_b), "{config}");
    std::fs::write(db.join("config.toml"), config.replace(&adv_b, &adv_moved)).unwrap();
    let stale = friend_in(&names[0], sa);
    assert_eq!(stale["addresses"], serde_json::json!([adv_b]), "A still knows only the old address");
    let _b = run_in(&names[1], sb);

    // No reference exchanged by hand: the link is back and A learned B's new address.
    let f = wait_friend(&names[0], sa, "A reconnected to B at its new address", |f| {
        f["state"] == "connected" && f["addresses"] == serde_json::json!([adv_moved])
    });
    assert!(f["seq"].as_u64() > stale["seq"].as_u64(), "B's record after the move: {f}, before: {stale}");
    let saved = std::fs::read_to_string(da.join("friends")).unwrap();
    assert!(saved.contains(&adv_moved) && !saved.contains(&adv_b), "A persisted the new address: {saved}");
    let from_b = wait_friend(&names[1], sb, "B connected to A", |f| f["state"] == "connected");
    assert_eq!(from_b["addresses"], serde_json::json!([adv_a]));
}
