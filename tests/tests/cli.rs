//! The CLI as a person uses it: `pamphlet node run` processes on 127.0.0.1, and
//! `pamphlet insert` / `pamphlet fetch` against them.

// Tests and benchmarks measure with, or drive nodes by, the real clock.
#![allow(clippy::disallowed_methods)]

use pamphlet_tests::{pamphlet, pamphlet_ok, random_file, start_chain, NodeProcess};

#[test]
fn insert_at_one_end_fetch_at_the_other() {
    let root = tempfile::tempdir().unwrap();
    let nodes = start_chain(root.path(), 3);
    let (file, data) = random_file(root.path(), "report.bin", 300_000, 1);
    let out = pamphlet_ok(&["insert", file.to_str().unwrap(), "--filename", "report.bin", "--dir", nodes[0].dir_str()]);
    let uri = out.lines().last().unwrap().trim().to_owned();
    assert!(uri.starts_with("CHK@"), "the last line of stdout is the URI: {out}");

    let target = root.path().join("fetched.bin");
    let out = pamphlet_ok(&["fetch", &uri, "-o", target.to_str().unwrap(), "--json", "--dir", nodes[2].dir_str()]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["size"], 300_000);
    assert_eq!(v["name"], "report.bin");
    assert!(std::fs::read(&target).unwrap() == data, "fetched file differs");
}

#[test]
fn signed_and_keyword_inserts() {
    let root = tempfile::tempdir().unwrap();
    let nodes = start_chain(root.path(), 2);
    let keys: serde_json::Value = serde_json::from_str(&pamphlet_ok(&["keygen", "--json"])).unwrap();
    let insert = keys["insert_uri"].as_str().unwrap();
    let file = root.path().join("a.txt");
    let mut last = String::new();
    for e in 1..=3 {
        std::fs::write(&file, format!("edition {e}")).unwrap();
        let edition = e.to_string();
        let out = pamphlet_ok(&[
            "insert",
            file.to_str().unwrap(),
            "--ssk",
            insert,
            "--name",
            "blog",
            "--edition",
            &edition,
            "--dir",
            nodes[0].dir_str(),
        ]);
        last = out.lines().last().unwrap().to_owned();
    }
    assert!(last.starts_with("USK@") && last.ends_with("/blog/3"), "{last}");
    // Ask for edition 1: the latest, 3, comes back.
    let first = last.replace("/blog/3", "/blog/1");
    let target = root.path().join("latest.txt");
    let out = pamphlet_ok(&["fetch", &first, "-o", target.to_str().unwrap(), "--dir", nodes[1].dir_str()]);
    assert!(out.contains("edition 3"), "{out}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "edition 3");

    pamphlet_ok(&["insert", file.to_str().unwrap(), "--ksk", "pamphlet-test-word", "--dir", nodes[0].dir_str()]);
    let target = target.to_str().unwrap();
    let out = pamphlet_ok(&["fetch", "KSK@pamphlet-test-word", "-o", target, "--dir", nodes[1].dir_str()]);
    assert!(out.starts_with("wrote 9 bytes"), "{out}");
}

#[test]
fn errors_say_what_is_wrong() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("never-started");
    let d = dir.to_str().unwrap();
    let out_path = root.path().join("x").to_str().unwrap().to_owned();

    let secret_typo = pamphlet(&["fetch", "KSK@my secret\u{7}", "-o", &out_path, "--dir", d]);
    assert!(!String::from_utf8_lossy(&secret_typo.stderr).contains("my secret"), "errors must not echo secrets");

    let bad = pamphlet(&["fetch", "CHK@abc,def,AQEA", "-o", &out_path, "--dir", d]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("routing key"), "a malformed URI names the bad part: {err}");

    let garbled = pamphlet(&["fetch", "XYZ@whatever", "-o", &out_path, "--dir", d]);
    assert!(String::from_utf8_lossy(&garbled.stderr).contains("unknown key type"));

    let no_node = pamphlet(&["fetch", "KSK@word", "-o", &out_path, "--dir", d]);
    let err = String::from_utf8_lossy(&no_node.stderr);
    assert!(err.contains("no running node") && err.contains("pamphlet node run"), "{err}");

    let missing = pamphlet(&["insert", "/nonexistent/file.txt", "--dir", d]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/file.txt"));

    let nodes = start_chain(root.path(), 2);
    let unwritable = pamphlet(&["fetch", "KSK@word", "-o", "/nonexistent-dir/out", "--dir", nodes[0].dir_str()]);
    assert!(String::from_utf8_lossy(&unwritable.stderr).contains("/nonexistent-dir/out"));

    let not_found = pamphlet(&["fetch", "KSK@nobody-inserted-this", "-o", &out_path, "--dir", nodes[1].dir_str()]);
    let err = String::from_utf8_lossy(&not_found.stderr);
    assert!(err.contains("could not be found"), "{err}");
    // Two nodes: the request runs out of hops (3, not found) or, more likely, of nodes to
    // visit while hops remain (4, no route); never a generic failure (docs/api.md).
    assert!(matches!(not_found.status.code(), Some(3 | 4)), "{:?}: {err}", not_found.status);
    assert!(!std::path::Path::new(&out_path).exists(), "a failed fetch leaves no output file");
    assert_eq!(no_node.status.code(), Some(1), "not a failed job: the generic status");
}

/// A node without friends: the fetch fails as "no route" with its own message and exit
/// status, rather than as "not found".
#[test]
fn a_node_without_friends_says_so() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("alone");
    let d = dir.to_str().unwrap();
    let _turn = pamphlet_tests::setup_turn();
    pamphlet_ok(&["node", "init", "--dir", d]);
    let _node = NodeProcess::start(&dir);
    drop(_turn);
    let out = root.path().join("out");
    let alone = pamphlet(&["fetch", "KSK@anything", "-o", out.to_str().unwrap(), "--dir", d]);
    let err = String::from_utf8_lossy(&alone.stderr);
    assert_eq!(alone.status.code(), Some(4), "no_route: {err}");
    assert!(err.contains("no connected friend") && err.contains("pamphlet node add-friend"), "{err}");
}

#[test]
fn clean_shutdown_and_restart_keep_identity() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("n");
    let d = dir.to_str().unwrap();
    let _turn = pamphlet_tests::setup_turn();
    pamphlet_ok(&["node", "init", "--dir", d]);
    let before = pamphlet_ok(&["node", "noderef", "--dir", d]);
    let mut node = NodeProcess::start(&dir);
    let second = pamphlet(&["node", "run", "--dir", d]);
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("already running"), "a second node on one DIR is refused: {err}");
    assert!(node.stop(), "SIGTERM gives a clean exit");
    assert!(!dir.join("api.addr").exists(), "a clean exit removes api.addr");
    let _again = NodeProcess::start(&dir);
    assert_eq!(pamphlet_ok(&["node", "noderef", "--dir", d]), before, "restart keeps the identity");
}

/// `node init` fixes a listen port outside the kernel's ephemeral range, so an outgoing
/// connection (another node's, a browser's) cannot take it before `node run` binds it or
/// at a later restart. CI once saw a node of keepalive's chain "not start" with nothing
/// said; a port from the ephemeral range, taken by a neighbour test's dial, fits that.
#[test]
fn node_init_picks_a_port_outside_the_ephemeral_range() {
    let root = tempfile::tempdir().unwrap();
    for i in 0..8 {
        let dir = root.path().join(format!("n{i}"));
        pamphlet_ok(&["node", "init", "--dir", dir.to_str().unwrap()]);
        let config = std::fs::read_to_string(dir.join("config.toml")).unwrap();
        let listen = config.lines().find_map(|l| l.strip_prefix("listen = \"")).expect("a listen line");
        let port: u16 = listen.trim_end_matches('"').rsplit(':').next().unwrap().parse().unwrap();
        assert!((20_000..32_000).contains(&port), "{listen}");
    }
}

/// A fetch whose node is killed (SIGKILL) halfway resumes after the restart: the blocks
/// already fetched come from `DIR/downloads`, not the network.
#[test]
fn fetch_killed_halfway_resumes() {
    let root = tempfile::tempdir().unwrap();
    let mut nodes = start_chain(root.path(), 2);
    let (file, data) = random_file(root.path(), "big.bin", 12 * 1024 * 1024, 7);
    let out = pamphlet_ok(&["insert", file.to_str().unwrap(), "--dir", nodes[0].dir_str()]);
    let uri = out.lines().last().unwrap().trim().to_owned();
    let target = root.path().join("big.out");

    let downloads = nodes[1].dir.join("downloads");
    let mut fetch = std::process::Command::new(pamphlet_tests::pamphlet_bin())
        .args(["fetch", &uri, "-o", target.to_str().unwrap(), "--dir", nodes[1].dir_str()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill the fetching node once some blocks are in, long before all 577 are.
    let count = || -> usize {
        std::fs::read_dir(&downloads)
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| {
                        // Complete block files only: a `.tmp` is a write the kill cut short.
                        let files = std::fs::read_dir(e.path()).map(|f| f.filter_map(Result::ok).collect::<Vec<_>>());
                        files.map(|f| f.iter().filter(|f| f.path().extension().is_none()).count()).unwrap_or(0)
                    })
                    .sum()
            })
            .unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while count() < 40 {
        assert!(std::time::Instant::now() < deadline, "the fetch never started");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    nodes[1].kill();
    let kept = count();
    assert!(!fetch.wait().unwrap().success(), "the CLI reports the lost node");
    assert!(!target.exists(), "no partial output file");

    let _turn = pamphlet_tests::setup_turn();
    let restarted = NodeProcess::start(&nodes[1].dir);
    while restarted.peers() < 1 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    drop(_turn);
    let out = pamphlet_ok(&["fetch", &uri, "-o", target.to_str().unwrap(), "--json", "--dir", restarted.dir_str()]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert!(std::fs::read(&target).unwrap() == data, "resumed fetch is byte-identical");
    let requests = v["requests"].as_u64().unwrap() as usize;
    let not_found = v["not_found"].as_u64().unwrap() as usize;
    // 12 MiB = 384 data blocks; their manifest (576 block references) needs 2 blocks of
    // its own under the top: 387 blocks in all. The kept ones were not asked for again
    // (each block the network failed to deliver costs one more request for a check block).
    assert!(requests <= 387 - kept + not_found, "{requests} requests ({not_found} not found) after {kept} kept");
    assert!(count() == 0, "the resume directory is removed when the fetch completes");
}

/// Inserts `data` named `name` at the first node of a fresh two-node chain; returns the
/// chain and the URI.
fn chain_with_document(root: &std::path::Path, name: &str, data_len: usize) -> (Vec<NodeProcess>, String, Vec<u8>) {
    let nodes = start_chain(root, 2);
    let (file, data) = random_file(root, "source.bin", data_len, 3);
    let out = pamphlet_ok(&["insert", file.to_str().unwrap(), "--filename", name, "--dir", nodes[0].dir_str()]);
    (nodes, out.lines().last().unwrap().trim().to_owned(), data)
}

fn fetch_in(cwd: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(pamphlet_tests::pamphlet_bin())
        .args(args)
        .current_dir(cwd)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

/// `fetch -o` replaces only regular files, whole: `-` is standard output, a FIFO is written
/// in place, a symlink to a regular file keeps being a symlink, and without -o the
/// publisher's (sanitised) file name is used, never overwriting without --force.
#[test]
fn fetch_never_destroys_what_it_did_not_create() {
    use std::os::unix::fs::FileTypeExt;
    let root = tempfile::tempdir().unwrap();
    let (nodes, uri, data) = chain_with_document(root.path(), "../../report.bin", 50_000);
    let d = nodes[1].dir_str();

    // `-o -`: the document on standard output, the summary on standard error.
    let out = pamphlet(&["fetch", &uri, "-o", "-", "--dir", d]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout == data, "standard output holds the document");

    // A FIFO is written in place and stays a FIFO.
    let fifo = root.path().join("fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    let out = pamphlet(&["fetch", &uri, "-o", fifo.to_str().unwrap(), "--dir", d]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(reader.join().unwrap() == data, "the reader of the FIFO got the document");
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo(), "the FIFO is still a FIFO");

    // A symlink to a regular file: the target gets the document, the link stays a link.
    let target = root.path().join("target.bin");
    std::fs::write(&target, b"old").unwrap();
    let link = root.path().join("link.bin");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    pamphlet_ok(&["fetch", &uri, "-o", link.to_str().unwrap(), "--dir", d]);
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link is kept");
    assert!(std::fs::read(&target).unwrap() == data, "its target holds the document");

    // A symlink to nothing is refused and left alone.
    let dangling = root.path().join("dangling");
    std::os::unix::fs::symlink(root.path().join("nowhere"), &dangling).unwrap();
    let out = pamphlet(&["fetch", &uri, "-o", dangling.to_str().unwrap(), "--dir", d]);
    assert!(!out.status.success());
    assert!(std::fs::symlink_metadata(&dangling).unwrap().file_type().is_symlink());

    // No -o: the publisher's name, stripped of its path, in the current directory.
    let cwd = root.path().join("cwd");
    std::fs::create_dir(&cwd).unwrap();
    let out = fetch_in(&cwd, &["fetch", &uri, "--dir", d]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let written: Vec<_> = std::fs::read_dir(&cwd).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(written.len(), 1, "one file, inside the current directory: {written:?}");
    let name = written[0].to_str().unwrap().to_owned();
    assert!(name.ends_with("report.bin") && !name.starts_with('.'), "{name}");
    assert!(std::fs::read(cwd.join(&name)).unwrap() == data);
    // Again: refused without --force (JSON error with its kind), replaced with it.
    std::fs::write(cwd.join(&name), b"mine").unwrap();
    let out = fetch_in(&cwd, &["fetch", &uri, "--json", "--dir", d]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["kind"], "exists", "{v}");
    assert_eq!(std::fs::read(cwd.join(&name)).unwrap(), b"mine", "not overwritten");
    let out = fetch_in(&cwd, &["fetch", &uri, "--force", "--dir", d]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::read(cwd.join(&name)).unwrap() == data);
    assert!(!root.path().join("report.bin").exists() && !root.path().parent().unwrap().join("report.bin").exists());
}

/// Errors carry a stable kind with --json, on standard output; a Hyphanet `freenet:`
/// prefix is accepted; a URI error names only the key type; RUST_BACKTRACE does not turn
/// a user error into a backtrace; the last edition is refused.
#[test]
fn errors_as_json_and_uris_as_people_paste_them() {
    let root = tempfile::tempdir().unwrap();
    let never = root.path().join("never-started");
    let never = never.to_str().unwrap();
    let out_path = root.path().join("out");
    let out_path = out_path.to_str().unwrap();

    let kind = |args: &[&str]| -> (serde_json::Value, Option<i32>) {
        let out = pamphlet(args);
        let v = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {:?} {:?}", out.stdout, String::from_utf8_lossy(&out.stderr)));
        (v, out.status.code())
    };
    let (v, code) = kind(&["fetch", "KSK@word", "-o", out_path, "--json", "--dir", never]);
    assert_eq!((v["kind"].as_str(), code), (Some("no_node"), Some(1)), "{v}");
    assert!(v["error"].as_str().unwrap().contains("no running node"), "{v}");
    let (v, _) = kind(&["fetch", "CHK@abc,def,AQEA", "-o", out_path, "--json", "--dir", never]);
    assert_eq!(v["kind"], "bad_uri", "{v}");

    let out = std::process::Command::new(pamphlet_tests::pamphlet_bin())
        .args(["fetch", "freenet:@x", "-o", out_path, "--dir", never])
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("freenet:@") && err.contains("bad URI"), "{err}");
    assert!(!err.contains("Stack backtrace") && !err.contains("backtrace"), "{err}");

    let keys: serde_json::Value = serde_json::from_str(&pamphlet_ok(&["keygen", "--json"])).unwrap();
    let request = keys["request_uri"].as_str().unwrap().replace("SSK@", "USK@").replace("/index", "/index/");
    let last = format!("{request}{}", u64::MAX);
    let (v, _) = kind(&["fetch", &last, "-o", out_path, "--json", "--dir", never]);
    assert_eq!(v["kind"], "bad_uri", "{v}");
    assert!(v["error"].as_str().unwrap().contains("too large"), "{v}");
    let file = root.path().join("a.txt");
    std::fs::write(&file, "x").unwrap();
    let insert = keys["insert_uri"].as_str().unwrap();
    let max = u64::MAX.to_string();
    let (v, _) =
        kind(&["insert", file.to_str().unwrap(), "--ssk", insert, "--edition", &max, "--json", "--dir", never]);
    assert_eq!(v["kind"], "usage", "{v}");

    // With nodes: a KSK insert prints KSK@word, a freenet: URI fetches, and a failed job
    // reports its kind and exit status in JSON.
    let nodes = start_chain(root.path(), 2);
    let out = pamphlet_ok(&["insert", file.to_str().unwrap(), "--ksk", "pasted-word", "--dir", nodes[0].dir_str()]);
    assert_eq!(out.trim(), "KSK@pasted-word");
    let out = pamphlet_ok(&["fetch", "freenet:KSK@pasted-word", "-o", out_path, "--dir", nodes[1].dir_str()]);
    assert!(out.starts_with("wrote 1 bytes"), "{out}");
    let (v, code) = kind(&["fetch", "KSK@nobody-has-this", "-o", out_path, "--json", "--dir", nodes[1].dir_str()]);
    assert!(matches!(v["kind"].as_str(), Some("not_found" | "no_route")), "{v}");
    assert!(matches!(code, Some(3 | 4)), "{code:?}");
    // A KSK collision speaks of the keyword, not of editions.
    std::fs::write(&file, "y").unwrap();
    let out = pamphlet(&["insert", file.to_str().unwrap(), "--ksk", "pasted-word", "--dir", nodes[0].dir_str()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "{err}");
    assert!(err.contains("keyword") && !err.contains("edition"), "{err}");
}

/// `darknet up` never builds in, or deletes, a directory it did not make.
#[test]
fn darknet_up_refuses_a_foreign_directory() {
    let root = tempfile::tempdir().unwrap();
    let node = root.path().join("my-node");
    pamphlet_ok(&["node", "init", "--dir", node.to_str().unwrap()]);
    std::fs::create_dir_all(node.join("node0")).unwrap();
    std::fs::write(node.join("node0/precious"), "keep me").unwrap();
    let out = pamphlet(&["darknet", "up", "--nodes", "2", "--json", "--dir", node.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["kind"], "exists", "{v}");
    assert!(v["error"].as_str().unwrap().contains("--dir"), "says how to go on: {v}");
    assert_eq!(std::fs::read_to_string(node.join("node0/precious")).unwrap(), "keep me");
    assert!(node.join("identity.key").exists() && !node.join("darknet.json").exists());
}

/// A store that holds more than a lowered `store_bytes` fits: the node refuses to start
/// and says how many blocks would go, and keeps them all.
#[test]
fn lowering_store_bytes_is_refused_without_shrink_store() {
    use pamphlet_node::store::disk::{DiskStore, DiskStoreConfig};
    use pamphlet_node::store::{Area, BlockStore};
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("n");
    let d = dir.to_str().unwrap();
    pamphlet_ok(&["node", "init", "--dir", d]);
    let config_path = dir.join("config.toml");
    let config = std::fs::read_to_string(&config_path).unwrap();
    let set_store = |bytes: u64| {
        let text: String = config
            .lines()
            .map(|l| if l.starts_with("store_bytes") { format!("store_bytes = {bytes}\n") } else { format!("{l}\n") })
            .collect();
        std::fs::write(&config_path, text).unwrap();
    };
    let held = {
        let mut store = DiskStore::open(dir.join("store"), DiskStoreConfig::new(4 << 20, 1 << 20)).unwrap();
        for i in 0..100u32 {
            let (block, uri) =
                pamphlet_crypto::chk::encode(&i.to_le_bytes(), pamphlet_crypto::ChkFlags::default()).unwrap();
            store.put(Area::Store, uri.routing_key, pamphlet_crypto::Block::Chk(block)).unwrap();
        }
        store.stats().store_blocks
    };
    set_store(1 << 20);
    let out = pamphlet(&["node", "run", "--dir", d]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("would be dropped") && err.contains("--shrink-store"), "{err}");
    set_store(4 << 20);
    let store = DiskStore::open(dir.join("store"), DiskStoreConfig::new(4 << 20, 1 << 20)).unwrap();
    assert_eq!(store.stats().store_blocks, held, "nothing was dropped");
}

/// A node that stops answering (SIGSTOP) makes the CLI fail with its own kind after the
/// time-out, instead of hanging; Ctrl-C meanwhile removes the part file.
#[test]
fn a_silent_node_makes_the_cli_fail_after_a_time_out() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("n");
    let d = dir.to_str().unwrap();
    let _turn = pamphlet_tests::setup_turn();
    pamphlet_ok(&["node", "init", "--dir", d]);
    let node = NodeProcess::start(&dir);
    drop(_turn);
    let pid = node.pid().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-STOP", &pid]).status().unwrap().success());
    let started = std::time::Instant::now();
    let out = std::process::Command::new(pamphlet_tests::pamphlet_bin())
        .args(["fetch", "KSK@anything", "-o", root.path().join("out").to_str().unwrap(), "--json", "--dir", d])
        .env("PAMPHLET_NODE_TIMEOUT", "2")
        .output()
        .unwrap();
    // Ctrl-C while waiting for it: the part file goes, and the person learns that the job
    // goes on in the node.
    let target = root.path().join("wanted.bin");
    let part = root.path().join(".wanted.bin.pamphlet-part");
    let fetch = std::process::Command::new(pamphlet_tests::pamphlet_bin())
        .args(["fetch", "KSK@anything", "-o", target.to_str().unwrap(), "--dir", d])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !part.exists() {
        assert!(std::time::Instant::now() < deadline, "no part file");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let fetch_pid = fetch.id().to_string();
    assert!(std::process::Command::new("kill").args(["-INT", &fetch_pid]).status().unwrap().success());
    let interrupted = fetch.wait_with_output().unwrap();
    let _ = std::process::Command::new("kill").args(["-CONT", &pid]).status();
    let err = String::from_utf8_lossy(&interrupted.stderr);
    assert_eq!(interrupted.status.code(), Some(130), "{err}");
    assert!(err.contains("goes on in the node") && err.contains("again"), "{err}");
    assert!(!part.exists() && !target.exists(), "the part file is removed");
    assert!(started.elapsed() < std::time::Duration::from_secs(25), "{:?}", started.elapsed());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["kind"], "node_timeout", "{v}");
    assert!(v["error"].as_str().unwrap().contains("did not answer for 2 s"), "{v}");
}

/// `darknet down` then `darknet up` on the same directory brings the same nodes back with
/// their keys, friends and stores.
#[test]
fn a_stopped_darknet_comes_back_with_its_data() {
    let root = tempfile::tempdir().unwrap();
    let dn = root.path().join("dn");
    let d = dn.to_str().unwrap();
    let _down = pamphlet_tests::DarknetDown(d.to_owned());
    let _turn = pamphlet_tests::setup_turn();
    let up: serde_json::Value =
        serde_json::from_str(&pamphlet_ok(&["darknet", "up", "--nodes", "3", "--htl", "4", "--json", "--dir", d]))
            .unwrap();
    assert_eq!(up["restarted"], false, "{up}");
    let node0 = dn.join("node0");
    let node2 = dn.join("node2");
    let key_before = pamphlet_ok(&["node", "noderef", "--dir", node0.to_str().unwrap()]);
    let (file, data) = random_file(root.path(), "doc.bin", 40_000, 5);
    let uri = pamphlet_ok(&["insert", file.to_str().unwrap(), "--dir", node0.to_str().unwrap()]);
    let uri = uri.lines().last().unwrap().trim().to_owned();
    pamphlet_ok(&["darknet", "down", "--dir", d]);
    let again: serde_json::Value =
        serde_json::from_str(&pamphlet_ok(&["darknet", "up", "--json", "--dir", d])).unwrap();
    assert_eq!(again["restarted"], true, "{again}");
    drop(_turn);
    assert_eq!(pamphlet_ok(&["node", "noderef", "--dir", node0.to_str().unwrap()]), key_before);
    let out = root.path().join("back.bin");
    pamphlet_ok(&["fetch", &uri, "-o", out.to_str().unwrap(), "--dir", node2.to_str().unwrap()]);
    assert!(std::fs::read(&out).unwrap() == data, "the stores kept the document");
}

/// `--dir` says what it means for each command, and is absent where it would be ignored.
#[test]
fn dir_help_is_per_command() {
    let help = |args: &[&str]| pamphlet_ok(args);
    assert!(help(&["fetch", "--help"]).contains("node that fetches"));
    assert!(help(&["node", "status", "--help"]).contains("node's data directory"));
    assert!(help(&["darknet", "up", "--help"]).contains("darknet's directory"));
    for ignored in ["keygen", "demo", "sim"] {
        assert!(!help(&[ignored, "--help"]).contains("--dir"), "{ignored} ignores --dir");
        assert_eq!(pamphlet(&[ignored, "--dir", "/tmp"]).status.code(), Some(2), "{ignored} refuses --dir");
    }
    // The old place, before the command, still works.
    let out = pamphlet(&["--dir", "/nonexistent-pamphlet-dir", "node", "status"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent-pamphlet-dir"));
}

/// Friend management as a person meets it: a one-sided add says the friend must add you
/// back, your own reference is refused, `node noderef` warns of an address nobody else can
/// dial, and `node friends` / `node remove-friend` work on a stopped node and a running one.
#[test]
fn friends_are_added_listed_and_removed_with_clear_messages() {
    let root = tempfile::tempdir().unwrap();
    let (da, db) = (root.path().join("a"), root.path().join("b"));
    let (a, b) = (da.to_str().unwrap(), db.to_str().unwrap());
    let _turn = pamphlet_tests::setup_turn();
    pamphlet_ok(&["node", "init", "--dir", a]);
    // Listening everywhere without `advertise`: the reference would carry 0.0.0.0.
    pamphlet_ok(&["node", "init", "--listen", "0.0.0.0:0", "--dir", b]);
    let ra = pamphlet_ok(&["node", "noderef", "--dir", a]);
    assert!(ra.starts_with("pamphlet-noderef:v2:127.0.0.1:"), "{ra}");
    let out = pamphlet(&["node", "noderef", "--dir", b]);
    let warn = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && warn.contains("0.0.0.0") && warn.contains("advertise"), "{warn}");
    let rb = String::from_utf8(out.stdout).unwrap();

    let own = pamphlet(&["node", "add-friend", "--dir", a, ra.trim()]);
    let err = String::from_utf8_lossy(&own.stderr);
    assert!(!own.status.success() && err.contains("own reference"), "{err}");

    let added = pamphlet_ok(&["node", "add-friend", "--dir", a, rb.trim()]);
    assert!(added.contains("They must add you too") && added.contains("pamphlet node noderef"), "{added}");
    let again = pamphlet_ok(&["node", "add-friend", "--dir", a, rb.trim()]);
    assert!(again.contains("already a friend"), "{again}");
    let list = pamphlet_ok(&["node", "friends", "--json", "--dir", a]);
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list[0]["state"], "node not running");
    let key = list[0]["key"].as_str().unwrap().to_owned();

    // Running: the list comes from the node, with why B does not answer (B is not running:
    // its port refuses, or nothing answers).
    let mut node = NodeProcess::start(&da);
    let listed = pamphlet_ok(&["node", "friends", "--dir", a]);
    assert!(listed.contains(&key[..8]) && listed.contains("never connected"), "{listed}");
    let removed = pamphlet_ok(&["node", "remove-friend", "--dir", a, &key[..10]]);
    assert!(removed.contains("removed friend"), "{removed}");
    let list = pamphlet_ok(&["node", "friends", "--json", "--dir", a]);
    assert_eq!(list.trim(), "[]");
    let missing = pamphlet(&["node", "remove-friend", "--dir", a, &key[..10]]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no friend"));
    assert!(node.stop());
    assert!(!std::fs::read_to_string(da.join("friends")).unwrap().contains(&key), "removal persisted");
}

/// `pamphlet pin` without a node running: bad URIs and paths inside a site are refused
/// with `bad_uri` (never echoing the text, which may be an insert URI), an insert URI is
/// pinned as its request URI, and a directory that is no node's says so.
#[test]
fn pins_are_kept_as_request_uris_and_bad_ones_refused() {
    let root = tempfile::tempdir().unwrap();
    let node = root.path().join("node");
    let node = node.to_str().unwrap();
    pamphlet_ok(&["node", "init", "--dir", node]);
    let json = |args: &[&str]| -> serde_json::Value {
        let out = pamphlet(args);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
    };
    let keys: serde_json::Value = serde_json::from_str(&pamphlet_ok(&["keygen", "--json"])).unwrap();
    let insert = keys["insert_uri"].as_str().unwrap();
    let v = json(&["pin", "CHK@nonsense", "--json", "--dir", node]);
    assert_eq!(v["kind"], "bad_uri", "{v}");
    let v = json(&["pin", &format!("{}/index.html", keys["request_uri"].as_str().unwrap()), "--json", "--dir", node]);
    assert_eq!(v["kind"], "bad_uri", "{v}");
    let v = json(&["pin", insert, "--json", "--dir", node]);
    assert_eq!(v["changed"], true, "{v}");
    let list = json(&["pin", "--json", "--dir", node]);
    assert_eq!(list["pins"][0].as_str(), keys["request_uri"].as_str(), "the request URI, not the secret: {list}");
    assert!(!std::fs::read_to_string(root.path().join("node/pins")).unwrap().contains(insert));
    let elsewhere = root.path().join("nothing");
    let v = json(&["pin", "--json", "--dir", elsewhere.to_str().unwrap()]);
    assert_eq!(v["kind"], "no_node", "{v}");
}

/// Issue 15: a small darknet whose stores cannot hold a document used to report the insert
/// as a plain success. Nodes 1 and 2 get 1 MiB store areas (32 blocks); a 3 MB document
/// (about 100 blocks) is inserted at node 0: the sinks on the way keep what they cannot
/// hold only in their caches (the per-peer budget) or by dropping older blocks, say so in
/// their `InsertReply`, and the insert reports how many blocks that happened to, in JSON and
/// in words.
#[test]
fn an_insert_into_full_stores_says_the_document_may_not_last() {
    let root = tempfile::tempdir().unwrap();
    let mut nodes = start_chain(root.path(), 3);
    for (i, node) in nodes.iter_mut().enumerate().skip(1) {
        assert!(node.stop(), "node {i} stops cleanly");
        let config = root.path().join(format!("node{i}")).join("config.toml");
        let text: String = std::fs::read_to_string(&config)
            .unwrap()
            .lines()
            .map(|l| if l.starts_with("store_bytes") { "store_bytes = 1048576\n".to_owned() } else { format!("{l}\n") })
            .collect();
        std::fs::write(&config, text).unwrap();
        *node = NodeProcess::start(&root.path().join(format!("node{i}")));
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while nodes[1].peers() < 2 || nodes[0].peers() < 1 || nodes[2].peers() < 1 {
        assert!(std::time::Instant::now() < deadline, "links did not come back");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (file, _) = random_file(root.path(), "big.bin", 3_000_000, 7);
    let out = pamphlet_ok(&["insert", file.to_str().unwrap(), "--json", "--dir", nodes[0].dir_str()]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let displaced = v["displaced"].as_u64().unwrap_or(0);
    assert!(displaced > 0, "the insert must say that sinks could not keep blocks: {v}");
    // In words, too (a second insert of other bytes: the stores are still full).
    let (file, _) = random_file(root.path(), "big2.bin", 3_000_000, 8);
    let out = pamphlet(&["insert", file.to_str().unwrap(), "--dir", nodes[0].dir_str()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("may not stay") && err.contains("stores are full"), "{err}");
}
