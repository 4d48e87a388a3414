//! Tests of the client pipelines (`pipeline.rs`), on in-memory networks.

use std::sync::Mutex;

use pamphlet_crypto::{CryptoKey, KskUri, SskPrivateKey, CHK_PAYLOAD_LEN};

use super::*;
use crate::client::memory_net::MemoryNetwork as MapNetwork;

/// Seeded random bytes (incompressible, no repeated shards).
fn data(len: usize) -> Vec<u8> {
    use rand::{RngCore, SeedableRng};
    let mut v = vec![0u8; len];
    rand_chacha::ChaCha8Rng::seed_from_u64(len as u64).fill_bytes(&mut v);
    v
}

async fn insert(net: &Arc<MapNetwork>, d: &[u8]) -> ChkUri {
    insert_chk(net, d.to_vec(), InsertOptions::default(), 4, &|_, _| {}).await.unwrap()
}

#[tokio::test]
async fn chk_round_trips() {
    let net = Arc::new(MapNetwork::default());
    for len in [0, 1, CHK_PAYLOAD_LEN, CHK_PAYLOAD_LEN + 1, 40 * CHK_PAYLOAD_LEN + 3] {
        let d = data(len);
        let uri = insert(&net, &d).await;
        let got = fetch(&net, &Uri::Chk(uri), &FetchOptions::default(), &|_| {}).await.unwrap();
        assert_eq!(got.document.data, d, "len {len}");
        assert!(got.heal.is_empty());
    }
}

#[tokio::test]
async fn missing_top_is_not_found() {
    let net = Arc::new(MapNetwork::default());
    let uri = insert(&net, &data(10)).await;
    net.blocks.lock().unwrap().clear();
    let err = fetch(&net, &Uri::Chk(uri), &FetchOptions::default(), &|_| {}).await.unwrap_err();
    assert!(matches!(err, PipelineError::Top(Failure::NotFound { .. })), "{err}");
}

#[tokio::test]
async fn blocks_that_time_out_are_not_reported_as_not_found() {
    let timed_out = Failure::TimedOut { htl_left: Some(2), peers_tried: 1 };
    let net = Arc::new(MapNetwork { fail_with: Some(timed_out.clone()), ..MapNetwork::default() });
    let uri = insert(&net, &data(8 * CHK_PAYLOAD_LEN)).await;
    // 8 data + 4 check blocks in one segment: losing 5 is more than FEC covers.
    {
        let mut map = net.blocks.lock().unwrap();
        let lost: Vec<RoutingKey> = map.keys().copied().filter(|k| *k != uri.routing_key).take(5).collect();
        for k in &lost {
            map.remove(k);
        }
    }
    let err = fetch(&net, &Uri::Chk(uri), &FetchOptions::default(), &|_| {}).await.unwrap_err();
    assert!(matches!(err, PipelineError::Blocks { missing: 5, of: 12, .. }), "{err}");
    assert_eq!(err.failure(), timed_out);

    // No edition of a USK answers in time: timed out, not "no edition".
    let ins = SskInsertUri::new(SskPrivateKey::from_seed([3; 32]), CryptoKey::from_bytes([4; 32]), "n", 1, true);
    let err = fetch(&net, &Uri::SskRequest(ins.request_uri()), &FetchOptions::default(), &|_| {}).await;
    assert_eq!(err.unwrap_err().failure(), timed_out);
}

#[tokio::test]
async fn fec_fills_in_and_heal_lists_the_lost_blocks() {
    let net = Arc::new(MapNetwork::default());
    let d = data(8 * CHK_PAYLOAD_LEN);
    let uri = insert(&net, &d).await;
    // 8 data + 4 check blocks + top. Remove 4 non-top blocks: exactly what FEC covers.
    let lost: Vec<RoutingKey> = {
        let mut map = net.blocks.lock().unwrap();
        // Chosen in key order, not the map's (random) order: four check blocks alone, one
        // draw in 495, leave nothing to heal, and the test failed that way once.
        let mut keys: Vec<RoutingKey> = map.keys().copied().filter(|k| *k != uri.routing_key).collect();
        keys.sort_by_key(|k| *k.as_bytes());
        keys.truncate(4);
        for k in &keys {
            map.remove(k);
        }
        keys
    };
    let got = fetch(&net, &Uri::Chk(uri.clone()), &FetchOptions::default(), &|_| {}).await.unwrap();
    assert_eq!(got.document.data, d);
    // Healing puts the lost data blocks back; afterwards a fetch finds every block.
    for b in &got.heal {
        net.insert(Block::Chk(b.clone())).await.unwrap();
    }
    let healed: Vec<RoutingKey> = got.heal.iter().map(ChkBlock::routing_key).collect();
    assert!(!healed.is_empty() && healed.iter().all(|k| lost.contains(k)));
}

#[tokio::test]
async fn interrupted_fetch_resumes() {
    let source = Arc::new(MapNetwork::default());
    let d = data(30 * CHK_PAYLOAD_LEN);
    let uri = Uri::Chk(insert(&source, &d).await);
    let blocks = source.blocks.lock().unwrap().clone();
    let dir = tempfile::tempdir().unwrap();
    let options = FetchOptions { parallel: 4, partial_dir: Some(dir.path().join("partial")) };

    // First run: the network stalls after 12 blocks; the fetch is abandoned.
    let stalling =
        Arc::new(MapNetwork { blocks: Mutex::new(blocks.clone()), stall_after: Some(12), ..MapNetwork::default() });
    let first =
        tokio::time::timeout(std::time::Duration::from_millis(300), fetch(&stalling, &uri, &options, &|_| {})).await;
    assert!(first.is_err(), "the first run must not finish");

    // Second run: the 12 blocks come from the resume directory.
    let net = Arc::new(MapNetwork { blocks: Mutex::new(blocks), ..MapNetwork::default() });
    let got = fetch(&net, &uri, &options, &|_| {}).await.unwrap();
    assert_eq!(got.document.data, d);
    assert_eq!(got.requests, 30 + 1 - 12, "only blocks the first run lacked are requested");
    assert!(!dir.path().join("partial").exists(), "the resume directory is removed when done");
}

#[tokio::test]
async fn usk_editions_and_latest() {
    let net = Arc::new(MapNetwork::default());
    let ins = SskInsertUri::new(SskPrivateKey::from_seed([1; 32]), CryptoKey::from_bytes([2; 32]), "news", 1, true);
    for e in 1..=3u64 {
        let body = if e == 3 { data(5000) } else { format!("edition {e}").into_bytes() };
        insert_signed(&net, ins.with_edition(e), body, InsertOptions::default(), 4, &|_, _| {}).await.unwrap();
    }
    let got = fetch(&net, &Uri::SskRequest(ins.request_uri()), &FetchOptions::default(), &|_| {}).await.unwrap();
    assert_eq!(got.edition, Some(3));
    assert_eq!(got.document.data, data(5000), "edition 3 is a redirect to a splitfile");

    // A different document under a taken edition is refused; the same one is fine.
    let again =
        insert_signed(&net, ins.with_edition(2), b"edition 2".to_vec(), InsertOptions::default(), 1, &|_, _| {});
    assert!(again.await.is_ok());
    let other = insert_signed(&net, ins.with_edition(2), b"forged".to_vec(), InsertOptions::default(), 1, &|_, _| {});
    assert!(matches!(other.await, Err(PipelineError::Collision)));
}

#[tokio::test]
async fn ksk_insert_and_fetch() {
    let net = Arc::new(MapNetwork::default());
    let ksk = KskUri { keyword: "freedom.txt".into() };
    insert_signed(&net, ksk.insert_uri(), b"hello".to_vec(), InsertOptions::default(), 1, &|_, _| {}).await.unwrap();
    let got = fetch(&net, &Uri::Ksk(ksk), &FetchOptions::default(), &|_| {}).await.unwrap();
    assert_eq!(got.document.data, b"hello");
}

/// A map network that records which inserts came flagged as top blocks.
#[derive(Default)]
struct Flags {
    net: MapNetwork,
    top: Mutex<Vec<RoutingKey>>,
}

impl BlockNetwork for Flags {
    fn fetch(&self, kind: BlockKind, key: RoutingKey) -> impl Future<Output = Result<Block, Failure>> + Send {
        self.net.fetch(kind, key)
    }

    fn insert(&self, block: Block) -> impl Future<Output = Result<InsertOutcome, Failure>> + Send {
        self.net.insert(block)
    }

    fn insert_top(&self, block: Block) -> impl Future<Output = Result<InsertOutcome, Failure>> + Send {
        self.top.lock().unwrap().push(block.routing_key());
        self.net.insert(block)
    }
}

/// The client flags exactly the blocks a URI names (issue 20, wider top blocks): a CHK
/// document's top block; a signed document's block and, behind a redirect, its top block.
#[tokio::test]
async fn only_the_blocks_a_uri_names_are_flagged_top() {
    let net = Arc::new(Flags::default());
    let uri = insert_chk(&net, data(100_000), InsertOptions::default(), 4, &|_, _| {}).await.unwrap();
    assert_eq!(*net.top.lock().unwrap(), vec![uri.routing_key]);
    assert!(net.net.inserts.load(std::sync::atomic::Ordering::SeqCst) > 3, "the other blocks go unflagged");

    let net = Arc::new(Flags::default());
    let ins = SskInsertUri::new(SskPrivateKey::from_seed([3; 32]), CryptoKey::from_bytes([4; 32]), "site", 1, true);
    let request = insert_signed(&net, ins.clone(), data(5000), InsertOptions::default(), 4, &|_, _| {}).await.unwrap();
    let flagged = net.top.lock().unwrap().clone();
    assert_eq!(flagged.len(), 2, "the redirect's top block, then the signed block");
    assert_eq!(flagged[1], request.routing_key());
    let got = fetch(&net, &Uri::SskRequest(request), &FetchOptions::default(), &|_| {}).await.unwrap();
    assert_eq!(got.document.data, data(5000));
}

/// A fetch's first batch fills [`super::super::window::FIRST_WINDOW`]; keepalive's probes
/// (`probe_all`) run in the background and start at their caller's `parallel` instead, so
/// a keepalive of a big document does not take 32 requests' worth of the node at once.
/// The network answers the top block and then never again, so what was asked is the first
/// batch.
#[tokio::test]
async fn a_fetch_starts_at_the_first_window_and_keepalive_probes_at_parallel() {
    use crate::client::window::FIRST_WINDOW;
    let d = data(60 * CHK_PAYLOAD_LEN);
    for probe_all in [false, true] {
        let setup = Arc::new(MapNetwork::default());
        let uri = insert(&setup, &d).await;
        let blocks = std::mem::take(&mut *setup.blocks.lock().unwrap());
        let net = Arc::new(MapNetwork { stall_after: Some(1), ..MapNetwork::default() });
        *net.blocks.lock().unwrap() = blocks;
        let options = FetchOptions { parallel: 4, ..FetchOptions::default() };
        let uri = Uri::Chk(uri);
        let run = fetch_probing(&net, &uri, &options, probe_all, &|_| {});
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(200), run).await.is_err(),
            "the stalled fetch ended"
        );
        let asked = net.fetches.load(std::sync::atomic::Ordering::SeqCst) - 1;
        if probe_all {
            // The top block's answer may grow the window by one (slow start).
            assert!((4..=5).contains(&asked), "keepalive's probes started with {asked} requests, not 4");
        } else {
            assert!(asked >= FIRST_WINDOW, "a fetch started with {asked} requests, not {FIRST_WINDOW}");
        }
    }
}
