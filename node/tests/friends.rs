//! Friends on 127.0.0.1: signed address records over real links (a newer one replaces a
//! friend's addresses, stale and forged ones are refused and counted), what `node friends`
//! reports about a friend that has not added us, removing a friend, and a friend that
//! moved to another port and restarted being found again without a new reference.

// Tests drive nodes by the real clock.
#![allow(clippy::disallowed_methods)]

use std::path::Path;
use std::time::{Duration, Instant};

use pamphlet_node::api::ApiBackend;
use pamphlet_node::daemon::{self, datadir, own_ref, Daemon};
use pamphlet_node::link::{AddressRecord, NodeRef, PeerAddr, StaticKeypair};
use pamphlet_node::transport::{FriendInfo, Transport, TransportConfig, TransportHandle};

const WAIT: Duration = Duration::from_secs(20);

fn config(keypair: StaticKeypair) -> TransportConfig {
    let mut c = TransportConfig::new("127.0.0.1:0".parse().unwrap(), keypair);
    c.handshake_timeout = Duration::from_millis(800);
    c.backoff_initial = Duration::from_millis(20);
    c.backoff_max = Duration::from_millis(200);
    c
}

async fn until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn friend(t: &TransportHandle) -> FriendInfo {
    t.friends().into_iter().next().expect("one friend")
}

/// Two transports that are each other's friends, linked; their event receivers are
/// drained in the background.
async fn linked() -> (TransportHandle, TransportHandle, StaticKeypair) {
    let kb = StaticKeypair::generate().unwrap();
    let kb_copy = StaticKeypair::from_secret(*kb.expose_secret()).unwrap();
    let (ha, ea) = Transport::start(config(StaticKeypair::generate().unwrap())).await.unwrap();
    let (hb, eb) = Transport::start(config(kb)).await.unwrap();
    for mut events in [ea, eb] {
        tokio::spawn(async move { while events.recv().await.is_some() {} });
    }
    ha.add_friend(hb.node_ref()).unwrap();
    hb.add_friend(ha.node_ref()).unwrap();
    until("linked", || ha.connected_peers().len() == 1 && hb.connected_peers().len() == 1).await;
    (ha, hb, kb_copy)
}

fn signed(kp: &StaticKeypair, addr: &str, seq: u64) -> NodeRef {
    NodeRef::signed(kp, vec![addr.parse().unwrap()], seq).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_signed_record_replaces_a_friends_addresses_and_others_are_refused() {
    let (ha, hb, kb) = linked().await;
    // B signs a record (sequence 5) and sends it to its connected friend A.
    hb.set_own_ref(signed(&kb, "10.231.0.5:4000", 5));
    until("A took B's record", || friend(&ha).noderef.record().seq() == 5).await;
    assert_eq!(friend(&ha).noderef.addresses()[0].to_string(), "10.231.0.5:4000");
    assert_eq!(friend(&ha).records_accepted, 1);

    // A stale one (sequence 4) is refused and counted; the addresses stay.
    hb.set_own_ref(signed(&kb, "10.231.0.4:4000", 4));
    until("A refused the stale record", || friend(&ha).records_refused == 1).await;
    // Equal sequence, other addresses: refused too.
    hb.set_own_ref(signed(&kb, "10.231.0.6:4000", 5));
    until("A refused the equal sequence", || friend(&ha).records_refused == 2).await;
    // Signed by someone else, claimed for B's key, with a higher sequence: refused.
    let other = StaticKeypair::generate().unwrap();
    let forged = signed(&other, "10.231.0.66:4000", 99).record().clone();
    hb.set_own_ref(NodeRef::from_record(*kb.public(), forged));
    until("A refused the forged record", || friend(&ha).records_refused == 3).await;
    assert_eq!(friend(&ha).noderef.record().seq(), 5, "nothing refused changed the addresses");
    assert_eq!(friend(&ha).noderef.addresses()[0].to_string(), "10.231.0.5:4000");
    // The same record again (as every new link re-sends it) is neither news nor refused.
    hb.set_own_ref(signed(&kb, "10.231.0.5:4000", 5));
    hb.set_own_ref(signed(&kb, "10.231.0.7:4000", 6));
    until("A took sequence 6", || friend(&ha).noderef.record().seq() == 6).await;
    assert_eq!(friend(&ha).records_refused, 3);
    ha.shutdown().await;
    hb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_is_verified_against_the_senders_key_even_from_a_friend() {
    // The record says who signed it only through the link it arrives on: a record B
    // relays from C (validly signed by C) is not B's.
    let (ha, hb, _) = linked().await;
    let c = StaticKeypair::generate().unwrap();
    let cs = signed(&c, "10.231.0.9:4000", 7);
    hb.set_own_ref(NodeRef::from_record(hb.public_key(), cs.record().clone()));
    until("A refused C's record on B's link", || friend(&ha).records_refused == 1).await;
    let again = AddressRecord::sign(&c, vec!["10.231.0.9:4000".parse().unwrap()], 7).unwrap();
    assert_eq!(&again, cs.record());
    ha.shutdown().await;
    hb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_friend_that_has_not_added_us_is_reported_so_and_can_be_removed() {
    let (ha, mut ea) = Transport::start(config(StaticKeypair::generate().unwrap())).await.unwrap();
    let (hb, _eb) = Transport::start(config(StaticKeypair::generate().unwrap())).await.unwrap();
    tokio::spawn(async move { while ea.recv().await.is_some() {} });
    // A adds B; B never adds A, so B's node stays silent to A's handshakes.
    ha.add_friend(hb.node_ref()).unwrap();
    until("A's dial failed", || friend(&ha).last_error.is_some()).await;
    let f = friend(&ha);
    assert_eq!(f.connected_since, None);
    assert_eq!(f.last_seen, None, "never connected");
    let error = f.last_error.unwrap();
    assert_eq!(error.kind(), "unanswered", "{error}");
    assert!(error.to_string().contains("they have not added you"), "{error}");

    // A dial to a port nobody listens on says so instead.
    let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let nobody = StaticKeypair::generate().unwrap();
    ha.add_friend(NodeRef::v1(gone, *nobody.public())).unwrap();
    until("the second dial failed", || ha.friends().iter().all(|f| f.last_error.is_some())).await;
    let f = ha.friends().into_iter().find(|f| f.noderef.key == *nobody.public()).unwrap();
    assert_eq!(f.last_error.unwrap().kind(), "refused");

    assert!(ha.remove_friend(&hb.public_key()).is_some());
    assert!(ha.remove_friend(&hb.public_key()).is_none(), "removed once");
    assert_eq!(ha.friends().len(), 1);
    ha.shutdown().await;
    hb.shutdown().await;
}

/// Tests in this file start daemons in parallel; `init` picks a free port and `start` binds
/// it later, so setups take turns.
static SETUP: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn free_loopback() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

fn own(dir: &Path) -> NodeRef {
    let config = daemon::init(dir, None).unwrap();
    own_ref::own_noderef(dir, &config, config.listen).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_friend_that_moved_and_restarted_is_found_again_without_a_new_reference() {
    let root = tempfile::tempdir().unwrap();
    let (da, db) = (root.path().join("a"), root.path().join("b"));
    let turn = SETUP.lock().await;
    let (ra, rb) = (own(&da), own(&db));
    datadir::append_friend(&da.join("friends"), &rb).unwrap();
    datadir::append_friend(&db.join("friends"), &ra).unwrap();
    let a = Daemon::start(&da).await.unwrap();
    let b = Daemon::start(&db).await.unwrap();
    drop(turn);
    let connected = |d: &Daemon| d.handle().friends().first().is_some_and(|f| f.state == "connected");
    until("A and B linked", || connected(&a) && connected(&b)).await;

    // B moves: another port, advertised; it restarts. A still has B's old address.
    b.shutdown().await.unwrap();
    let mut config = daemon::config::Config::load(&db.join("config.toml")).unwrap();
    let moved = free_loopback();
    config.listen = moved;
    config.advertise = vec![PeerAddr::Ip(moved)];
    config.save(&db.join("config.toml")).unwrap();
    let b = Daemon::start(&db).await.unwrap();
    assert!(b.noderef().record().seq() > rb.record().seq(), "a new advertise raises the sequence");

    // B dials A (whose address did not change) and sends its new record over the link.
    until("A learned B's new address", || {
        a.handle().friends().first().is_some_and(|f| f.addresses == vec![moved.to_string()] && f.state == "connected")
    })
    .await;
    // The friends file is written by a hook after the link took the record: wait for it.
    let wanted = vec![b.noderef()];
    until("A persisted B's signed record", || datadir::load_friends(&da.join("friends")).is_ok_and(|s| s == wanted))
        .await;
    let b_key = b.noderef().key;
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();

    // A clean stop remembers when B was last seen, so after a restart B is "connecting",
    // not "never connected", until the link is back.
    let seen = datadir::load_seen(&da.join("friends.seen")).unwrap();
    assert!(seen.contains_key(&b_key), "{seen:?}");
    let a = Daemon::start(&da).await.unwrap();
    let f = a.handle().friends().remove(0);
    assert_eq!(f.last_seen, seen.get(&b_key).copied());
    assert_ne!(f.state, "never connected");
    a.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dialler_tries_each_address_in_turn_and_resolves_names() {
    let ka = StaticKeypair::generate().unwrap();
    let kb = StaticKeypair::generate().unwrap();
    let kb_copy = StaticKeypair::from_secret(*kb.expose_secret()).unwrap();
    let (ha, mut ea) = Transport::start(config(ka)).await.unwrap();
    let (hb, mut eb) = Transport::start(config(kb)).await.unwrap();
    tokio::spawn(async move { while ea.recv().await.is_some() {} });
    tokio::spawn(async move { while eb.recv().await.is_some() {} });
    // B knows A at a dead port, so only A's dial can bring the link up.
    hb.add_friend(NodeRef::v1(free_loopback(), ha.public_key())).unwrap();
    // A knows B at a dead port first, then by name: the name must be tried and resolved.
    let port = hb.local_addr().port();
    let addresses = vec![PeerAddr::Ip(free_loopback()), format!("localhost:{port}").parse().unwrap()];
    ha.add_friend(NodeRef::signed(&kb_copy, addresses, 1).unwrap()).unwrap();
    until("A linked through B's second address", || ha.connected_peers().len() == 1).await;
    ha.shutdown().await;
    hb.shutdown().await;
}
