//! Real daemons on 127.0.0.1: transport, node task and client API together, driven
//! through the client pipelines the CLI uses.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use pamphlet_crypto::{KskUri, Uri};
use pamphlet_node::client::pipeline::{self, FetchOptions, PipelineError};
use pamphlet_node::client::splitfile::InsertOptions;
use pamphlet_node::daemon::{self, datadir, Daemon};
use pamphlet_node::link::NodeRef;
use pamphlet_node::Failure;

fn noderef(dir: &Path) -> NodeRef {
    let config = daemon::init(dir, None).unwrap();
    let kp = datadir::load_or_create_keypair(&dir.join("identity.key")).unwrap();
    NodeRef::v1(config.listen, *kp.public())
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
        datadir::append_friend(&dirs[i].join("friends"), &refs[i + 1]).unwrap();
        datadir::append_friend(&dirs[i + 1].join("friends"), &refs[i]).unwrap();
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
            d.handle().status().peers.len() == want
        });
        if ok {
            tokio::time::sleep(Duration::from_millis(100)).await;
            return daemons;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("links did not come up");
}

/// Seeded random bytes: no two 32 KiB shards alike (repeated shards share one block).
fn data(len: usize, seed: u8) -> Vec<u8> {
    use rand::{RngCore, SeedableRng};
    let mut v = vec![0u8; len];
    rand_chacha::ChaCha8Rng::seed_from_u64(u64::from(seed)).fill_bytes(&mut v);
    v
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
    // A small network runs out of routes before it runs out of hops; either way, the
    // culprit is the network, not the document.
    assert!(matches!(err, PipelineError::Top(Failure::NotFound { .. } | Failure::RouteNotFound { .. })), "{err:?}");

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fec_rebuilds_blocks_missing_everywhere_and_healing_puts_them_back() {
    use pamphlet_crypto::Block;
    use pamphlet_node::client::manifest::{Body, Manifest};
    use pamphlet_node::client::pipeline::BlockNetwork;
    use pamphlet_node::client::splitfile;

    let root = tempfile::tempdir().unwrap();
    let nodes = chain(root.path(), 3).await;
    let a = Arc::new(nodes[0].handle().clone());
    let c = Arc::new(nodes[2].handle().clone());

    // Encode 12 blocks of data (one segment: 12 data + 6 check blocks) and insert every
    // block except 6 of that segment: as if they had been deleted from every store.
    let d = data(12 * 32 * 1024 - 100, 9);
    let encoded = splitfile::encode(&d, &InsertOptions::default()).unwrap();
    let top = encoded.top.clone();
    let top_block = encoded.blocks.last().unwrap().clone();
    let manifest = Manifest::from_bytes(&pamphlet_crypto::chk::decode(&top_block, &top).unwrap()).unwrap();
    let Body::Split { segments, .. } = &manifest.body else { panic!("expected a splitfile") };
    let (k, m) = (segments[0].data.len(), segments[0].check.len());
    assert_eq!((k, m), (12, 6));
    let withheld: Vec<[u8; 32]> =
        segments[0].data[..4].iter().chain(&segments[0].check[..2]).map(|r| r.routing_key).collect();
    for b in &encoded.blocks {
        if !withheld.contains(&b.routing_key().0) {
            a.insert(Block::Chk(b.clone())).await.unwrap();
        }
    }

    let got = pipeline::fetch(&c, &Uri::Chk(top), &FetchOptions::default(), &|_| {}).await.unwrap();
    assert!(got.document.data == d, "FEC must rebuild the document");
    let mut healed: Vec<[u8; 32]> = got.heal.iter().map(|b| b.routing_key().0).collect();
    healed.sort();
    let mut expected = withheld.clone();
    expected.sort();
    assert_eq!(healed, expected, "every missing block, data and check, is rebuilt for healing");

    // Healing: insert what was rebuilt; afterwards each of those blocks can be fetched.
    for b in &got.heal {
        c.insert(Block::Chk(b.clone())).await.unwrap();
    }
    for key in &withheld {
        let found = a.fetch(pamphlet_crypto::BlockKind::Chk, pamphlet_crypto::RoutingKey(*key)).await;
        assert!(found.is_ok(), "a healed block must be in the network again");
    }
    for n in nodes {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usk_editions_latest_is_found_across_the_network() {
    let root = tempfile::tempdir().unwrap();
    let nodes = chain(root.path(), 3).await;
    let a = Arc::new(nodes[0].handle().clone());
    let c = Arc::new(nodes[2].handle().clone());
    let insert = pamphlet_crypto::generate_ssk(&mut rand::rngs::OsRng, "site");
    for e in 1..=3u64 {
        let body = format!("edition {e}").into_bytes();
        pipeline::insert_signed(&a, insert.with_edition(e), body, InsertOptions::default(), 4, &|_, _| {})
            .await
            .unwrap();
    }
    let request = insert.request_uri().with_edition(1);
    let got = pipeline::fetch(&c, &Uri::SskRequest(request), &FetchOptions::default(), &|_| {}).await.unwrap();
    assert_eq!(got.edition, Some(3));
    assert_eq!(got.document.data, b"edition 3");
    for n in nodes {
        n.shutdown().await.unwrap();
    }
}

/// Sets `swap_interval_ms` in a node directory's config.toml.
fn set_swap_interval(dir: &Path, ms: u64) {
    let path = dir.join("config.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let text: String = text
        .lines()
        .map(|l| if l.starts_with("swap_interval_ms") { format!("swap_interval_ms = {ms}") } else { l.to_owned() })
        .map(|l| l + "\n")
        .collect();
    std::fs::write(&path, text).unwrap();
}

fn saved_swap_age(dir: &Path) -> u32 {
    datadir::load_or_create_state(&dir.join("state.toml")).unwrap().swap_age
}

/// A node's swap age (swaps it has started; young nodes swap hotter) is saved with its
/// location, so a restarted darknet does not heat up again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swap_age_survives_a_restart() {
    let root = tempfile::tempdir().unwrap();
    let dirs = [root.path().join("node0"), root.path().join("node1")];
    for n in chain(root.path(), 2).await {
        n.shutdown().await.unwrap();
    }
    assert_eq!(saved_swap_age(&dirs[0]), 0, "swapping every 10 s: no swap yet");
    // Swap every 20 ms for a while.
    for d in &dirs {
        set_swap_interval(d, 20);
    }
    let nodes = [Daemon::start(&dirs[0]).await.unwrap(), Daemon::start(&dirs[1]).await.unwrap()];
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for n in nodes {
        n.shutdown().await.unwrap();
    }
    let aged = saved_swap_age(&dirs[0]);
    assert!(aged >= 5, "{aged} swaps started in 1.5 s at one per 20 ms");
    // Restarted with swapping off, the node keeps (and saves again) the age it had.
    set_swap_interval(&dirs[0], 0);
    let node = Daemon::start(&dirs[0]).await.unwrap();
    node.shutdown().await.unwrap();
    assert_eq!(saved_swap_age(&dirs[0]), aged);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_friend_failures_have_their_own_errors() {
    use pamphlet_node::api::{AddFriendError, ApiBackend};
    use pamphlet_node::daemon::DaemonError;

    let root = tempfile::tempdir().unwrap();
    let nodes = chain(root.path(), 2).await;
    let d = &nodes[0];
    let own = d.add_friend(&d.noderef());
    assert!(matches!(own, Err(DaemonError::AddFriend(AddFriendError::IsSelf))), "{own:?}");
    let bad = d.handle().add_friend("pamphlet-noderef:v1:garbage");
    assert!(matches!(bad, Err(AddFriendError::BadReference(_))), "{bad:?}");

    // The friends file cannot be written: the error says so (not "cannot listen").
    let friends = root.path().join("node0").join("friends");
    let _ = std::fs::remove_file(&friends);
    std::fs::create_dir(&friends).unwrap();
    let other = noderef(&root.path().join("other"));
    let unsaved = d.add_friend(&other);
    assert!(matches!(unsaved, Err(DaemonError::AddFriend(AddFriendError::Save(_)))), "{unsaved:?}");
    assert!(unsaved.unwrap_err().to_string().contains("could not be saved"));
    std::fs::remove_dir(&friends).unwrap();
    d.add_friend(&other).unwrap();
    assert_eq!(datadir::load_friends(&friends).unwrap(), vec![other], "remembered for the next start");
    for n in nodes {
        n.shutdown().await.unwrap();
    }
}
