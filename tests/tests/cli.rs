//! The CLI as a person uses it: `pamphlet node run` processes on 127.0.0.1, and
//! `pamphlet insert` / `pamphlet fetch` against them.

// Tests and benchmarks measure with, or drive nodes by, the real clock.
#![allow(clippy::disallowed_methods)]

use pamphlet_tests::{pamphlet, pamphlet_ok, start_chain, NodeProcess};

fn random_file(dir: &std::path::Path, name: &str, len: usize, seed: u64) -> (std::path::PathBuf, Vec<u8>) {
    use rand::{RngCore, SeedableRng};
    let mut data = vec![0u8; len];
    rand_chacha::ChaCha8Rng::seed_from_u64(seed).fill_bytes(&mut data);
    let path = dir.join(name);
    std::fs::write(&path, &data).unwrap();
    (path, data)
}

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
