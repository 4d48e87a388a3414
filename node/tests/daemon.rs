//! Real daemons on 127.0.0.1: transport, node task and client API together, driven
//! through the client pipelines the CLI uses.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use pamphlet_crypto::{KskUri, Uri};
use pamphlet_node::client::pipeline::{self, FetchOptions, PipelineError};
use pamphlet_node::client::splitfile::InsertOptions;
use pamphlet_node::daemon::{self, identity, Daemon};
use pamphlet_node::transport::NodeRef;

fn noderef(dir: &Path) -> NodeRef {
    let config = daemon::init(dir, None).unwrap();
    let kp = identity::load_or_create_keypair(&dir.join("identity.key")).unwrap();
    NodeRef { addr: config.listen, key: *kp.public() }
}

/// Tests in this file run in parallel; `init` picks a free port and `start` binds it later,
/// so setups take turns to keep one test's API socket from taking another's chosen port.
static SETUP: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `n` daemons wired as a line: 0 - 1 - … - n-1.
async fn chain(root: &Path, n: usize) -> Vec<Daemon> {
    let _turn = SETUP.lock().await;
    let dirs: Vec<_> = (0..n).map(|i| root.join(format!("node{i}"))).collect();
    let refs: Vec<_> = dirs.iter().map(|d| noderef(d)).collect();
    for i in 0..n - 1 {
        identity::append_friend(&dirs[i].join("friends"), &refs[i + 1]).unwrap();
        identity::append_friend(&dirs[i + 1].join("friends"), &refs[i]).unwrap();
    }
    let mut daemons = Vec::new();
    for d in &dirs {
        daemons.push(Daemon::start(d).await.unwrap());
    }
    // Wait until every link is up and locations are exchanged.
    for _ in 0..200 {
        let ok = daemons.iter().enumerate().all(|(i, d)| {
            let want = if i == 0 || i == n - 1 { 1 } else { 2 };
            use pamphlet_node::api::ApiBackend;
            d.handle().status()["peers"].as_u64() == Some(want)
        });
        if ok {
            tokio::time::sleep(Duration::from_millis(100)).await;
            return daemons;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("links did not come up");
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 9) as u8).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insert_and_fetch_across_a_chain_of_three() {
    let root = tempfile::tempdir().unwrap();
    let nodes = chain(root.path(), 3).await;
    let a = Arc::new(nodes[0].handle().clone());
    let c = Arc::new(nodes[2].handle().clone());
    for (len, seed) in [(0usize, 1u8), (1, 2), (32 * 1024, 3), (32 * 1024 + 1, 4), (10 * 1024 * 1024, 5)] {
        let d = data(len, seed);
        let uri = pipeline::insert_chk(&a, d.clone(), InsertOptions::default(), 8, &|_, _| {}).await.unwrap();
        let got = pipeline::fetch(&c, &Uri::Chk(uri.clone()), &FetchOptions::default(), &|_| {}).await;
        let got = got.unwrap_or_else(|e| panic!("fetch of {len} bytes at the far end: {e}"));
        assert!(got.document.data == d, "{len} bytes differ");
        // The inserter did not keep its own insert, so this fetch crosses the network too.
        let back = pipeline::fetch(&a, &Uri::Chk(uri), &FetchOptions::default(), &|_| {}).await.unwrap();
        assert!(back.document.data == d);
    }
    for n in nodes {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_documents_fail_cleanly_and_ksk_works() {
    let root = tempfile::tempdir().unwrap();
    let nodes = chain(root.path(), 3).await;
    let a = Arc::new(nodes[0].handle().clone());
    let c = Arc::new(nodes[2].handle().clone());
    let missing = Uri::Ksk(KskUri { keyword: "nobody inserted this".into() });
    let err = pipeline::fetch(&c, &missing, &FetchOptions::default(), &|_| {}).await.unwrap_err();
    assert!(matches!(err, PipelineError::TopNotFound(_)), "{err}");

    let ksk = KskUri { keyword: "hello-pamphlet".into() };
    pipeline::insert_signed(&a, ksk.insert_uri(), b"hi".to_vec(), InsertOptions::default(), 4, &|_, _| {})
        .await
        .unwrap();
    let got = pipeline::fetch(&c, &Uri::Ksk(ksk), &FetchOptions::default(), &|_| {}).await.unwrap();
    assert_eq!(got.document.data, b"hi");
    for n in nodes {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_daemon_on_the_same_directory_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let _turn = SETUP.lock().await;
    let first = Daemon::start(root.path()).await.unwrap();
    let second = Daemon::start(root.path()).await.unwrap_err();
    assert!(second.to_string().contains("already running"), "{second}");
    first.shutdown().await.unwrap();
    // After a clean shutdown the directory can be used again, with the same identity.
    let again = Daemon::start(root.path()).await.unwrap();
    again.shutdown().await.unwrap();
}
