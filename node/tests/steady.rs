//! Steady backups on return in the node (issue 20; `node/durability/steady.rs`,
//! `uptime.rs`, `history.rs`), on the `sim::network` harness: a node rarely online, back,
//! hands the blocks it is still the closest to to the peer it observed online most of the
//! time, not to one that was there briefly, and a node usually online does not.

// Tests drive the harness with the real clock as the base of virtual time.
#![allow(clippy::disallowed_methods)]

mod common;

use std::time::{Duration, Instant};

use common::offers::insert_at_sink;
use common::routing::{chk_block, key_loc, SEEDS};
use common::seeds;
use pamphlet_crypto::{Block, RoutingKey};
use pamphlet_node::id::PeerId;
use pamphlet_node::location::Location;
use pamphlet_node::node::{
    DurabilityConfig, NodeConfig, PeerUptime, Session, UptimeFileError, UptimeHistory, MAX_PEERS, MAX_UPTIME_FILE,
};
use pamphlet_node::sim::network::Network;
use pamphlet_node::store::memory::MemoryStore;
use pamphlet_node::store::{Area, BlockStore};
use pamphlet_node::wire::codec::encode;
use pamphlet_node::wire::message::Message;

/// The returning node, the inserter, a peer always there, and one there only briefly.
const NODE: usize = 0;
const INSERTER: usize = 1;
const STEADY: usize = 2;
const BRIEF: usize = 3;

/// How long a peer must be observed before it can count as steady, in these tests.
const OBSERVED: Duration = Duration::from_secs(3600);

/// Node 0 at 0.5 with the steady peer (0.8) connected for two hours (and, with `flaps`,
/// the brief peer (0.4) in that many one-minute visits before them); then the brief peer
/// and the inserter (0.2) for `brief`; then node 1 inserts `n` blocks whose keys lie in 0.46–0.5,
/// which node 0 is the closest to (the brief peer is the next closest). Nodes 2 and 3 cache
/// nothing and have no other peer: each is a sink for these keys without node 0.
fn setup(seed: u64, steady_backup: f64, brief: Duration, flaps: u32, n: usize) -> (Network, Blocks) {
    let mut net = Network::new(seed, Instant::now());
    for (i, x) in [0.5, 0.2, 0.8, 0.4].into_iter().enumerate() {
        let mut config = net.config(i, Location::from_f64(x));
        config.durability = DurabilityConfig { steady_backup, steady_observed: OBSERVED, ..config.durability };
        config.cache_passing = i == NODE || i == INSERTER;
        net.add_node_with(config, MemoryStore::default());
    }
    net.connect(NODE, STEADY);
    for _ in 0..flaps {
        net.connect(NODE, BRIEF);
        net.run_for(Duration::from_secs(60));
        net.disconnect(NODE, BRIEF);
        net.run_for(Duration::from_secs(60));
    }
    net.run_for(Duration::from_secs(2 * 3600));
    net.connect(NODE, BRIEF);
    net.connect(INSERTER, NODE);
    net.run_for(brief);
    let blocks = insert_at_sink(&mut net, seed, INSERTER, NODE, 0.46..0.5, n);
    (net, blocks)
}

type Blocks = Vec<(RoutingKey, Block)>;

/// The blocks node `i` holds in its store area.
fn held(net: &Network, i: usize, blocks: &Blocks) -> usize {
    blocks.iter().filter(|(k, b)| net.node(i).store().area_of(b.kind(), k) == Some(Area::Store)).count()
}

/// Node 0 is away for twice the threshold, then its three friends connect again.
fn away_and_back(net: &mut Network) {
    for friend in [INSERTER, STEADY, BRIEF] {
        net.disconnect(NODE, friend);
    }
    net.run_for(DurabilityConfig::default().away * 2);
    for friend in [INSERTER, STEADY, BRIEF] {
        net.connect(NODE, friend);
    }
    net.run_for(Duration::from_secs(60));
}

/// Node 0, online a sixth of the time, back: the steady peer keeps every block node 0 is
/// still the closest to; the brief peer, closer to the keys, gets none. Without the rule
/// (`steady_backup` 0) the steady peer gets none either.
#[test]
fn an_occasional_node_backs_up_to_the_steady_peer_not_the_brief_one() {
    for seed in seeds(SEEDS) {
        for (u, want) in [(0.5, 12), (0.0, 0)] {
            let (mut net, blocks) = setup(seed, u, Duration::from_secs(600), 0, 12);
            net.node_mut(NODE).set_own_uptime(Some(0.16));
            let now = net.now();
            let steady = net.node(NODE).peer_uptime(now, PeerId(STEADY as u64)).unwrap();
            let brief = net.node(NODE).peer_uptime(now, PeerId(BRIEF as u64)).unwrap();
            assert!(steady > 0.9 && brief < 0.2, "seed {seed}: observed {steady} and {brief}");
            away_and_back(&mut net);
            let stats = net.node(NODE).stats();
            assert_eq!(held(&net, STEADY, &blocks), want, "seed {seed}, U {u}: {stats:?}");
            assert_eq!(held(&net, BRIEF, &blocks), 0, "seed {seed}, U {u}: the brief peer is not steady");
            assert_eq!(held(&net, NODE, &blocks), blocks.len(), "seed {seed}: node 0 keeps its copies");
            assert_eq!(stats.steady_backups_queued, want as u64, "seed {seed}, U {u}");
            assert_eq!(net.node(STEADY).stats().steady_backups_kept, want as u64, "seed {seed}, U {u}");
            assert_eq!(stats.offers_sent, want as u64, "seed {seed}, U {u}: only the wanted blocks travel");
        }
    }
}

/// Encoded bytes and count of the messages between node 0 and node `peer` in the
/// transcript, and how many of them were inserts.
fn traffic(net: &Network, peer: usize) -> (usize, usize, usize) {
    let between = |s: &&pamphlet_node::sim::network::Sent| (s.from.min(s.to), s.from.max(s.to)) == (NODE, peer);
    let sent: Vec<_> = net.transcript().iter().filter(between).collect();
    let inserts = sent.iter().filter(|s| matches!(s.msg, Message::InsertRequest { .. })).count();
    (sent.iter().map(|s| encode(&s.msg).unwrap().len()).sum(), sent.len(), inserts)
}

/// What a backup costs on the link: one key list and its answer, then each wanted block
/// as one insert and its answer (and the link's location updates). With the steady peer
/// already holding half the blocks, only the other half travel.
#[test]
fn a_steady_backup_sends_only_the_blocks_the_peer_lacks() {
    for seed in seeds(SEEDS) {
        for held_before in [0, 6] {
            let (mut net, blocks) = setup(seed, 0.5, Duration::from_secs(600), 0, 12);
            for (_, b) in blocks.iter().take(held_before) {
                let (k, b) = (b.routing_key(), b.clone());
                net.node_mut(STEADY).store_mut().put(Area::Store, k, b).unwrap();
            }
            net.node_mut(NODE).set_own_uptime(Some(0.16));
            net.clear_transcript();
            away_and_back(&mut net);
            let (bytes, messages, inserts) = traffic(&net, STEADY);
            // docs/durability.md gives the bytes, printed by hand once per seed; only bounded
            // here (the location updates vary by a few bytes with the seed).
            assert_eq!((inserts, messages), (12 - held_before, 30 - 2 * held_before), "seed {seed}: {bytes} bytes");
            assert_eq!(held(&net, STEADY, &blocks), 12, "seed {seed}");
            let per_block =
                encode(&Message::InsertRequest { id: u64::MAX, htl: 1, block: blocks[0].1.clone(), top: false })
                    .unwrap()
                    .len();
            assert!(bytes < (12 - held_before + 1) * per_block, "seed {seed}: {bytes} bytes");
        }
    }
}

/// A node online most of the time, or one that does not know its share, makes no backups.
#[test]
fn a_steady_node_makes_no_backups() {
    for seed in seeds(SEEDS) {
        for own in [Some(0.9), Some(0.5), None] {
            let (mut net, blocks) = setup(seed, 0.5, Duration::from_secs(600), 0, 12);
            net.node_mut(NODE).set_own_uptime(own);
            away_and_back(&mut net);
            assert_eq!(held(&net, STEADY, &blocks), 0, "seed {seed}, own {own:?}");
            assert_eq!(net.node(NODE).stats().steady_backups_queued, 0, "seed {seed}, own {own:?}");
            assert_eq!(net.node(NODE).stats().offers_sent, 0, "seed {seed}, own {own:?}");
        }
    }
}

/// A peer does not become steady by being there briefly, however often: the brief peer
/// connected for the last 20 minutes only, or in 60 one-minute visits over two hours,
/// counts what node 0 saw. With the steady peer gone as well, nothing is backed up.
#[test]
fn a_brief_or_flapping_peer_is_not_steady() {
    for seed in seeds(SEEDS) {
        for (brief, flaps) in [(Duration::from_secs(1200), 0), (Duration::from_secs(60), 60)] {
            let (mut net, blocks) = setup(seed, 0.5, brief, flaps, 12);
            net.node_mut(NODE).set_own_uptime(Some(0.16));
            let share = net.node(NODE).peer_uptime(net.now(), PeerId(BRIEF as u64)).unwrap();
            assert!(share < 0.5, "seed {seed}, {flaps} flaps: observed {share}");
            for friend in [INSERTER, STEADY, BRIEF] {
                net.disconnect(NODE, friend);
            }
            net.run_for(DurabilityConfig::default().away * 2);
            net.connect(NODE, INSERTER);
            net.connect(NODE, BRIEF);
            net.run_for(Duration::from_secs(60));
            assert_eq!(held(&net, BRIEF, &blocks), 0, "seed {seed}, {flaps} flaps");
            assert_eq!(net.node(NODE).stats().steady_backups_queued, 0, "seed {seed}, {flaps} flaps");
        }
    }
}

/// The steady peer's own sink test decides: with another peer of its own closer to the
/// keys (node 4 at 0.47), it wants none of them.
#[test]
fn the_steady_peers_sink_test_decides() {
    for seed in seeds(SEEDS) {
        let (mut net, blocks) = setup(seed, 0.5, Duration::from_secs(600), 0, 12);
        let mut config = net.config(4, Location::from_f64(0.47));
        config.cache_passing = false;
        let other = net.add_node_with(config, MemoryStore::default());
        net.connect(STEADY, other);
        net.node_mut(NODE).set_own_uptime(Some(0.16));
        away_and_back(&mut net);
        let stats = net.node(NODE).stats();
        assert_eq!(stats.steady_backup_keys_offered, 12, "seed {seed}: offered: {stats:?}");
        assert_eq!(held(&net, STEADY, &blocks), 0, "seed {seed}: not a sink without node 0");
        assert_eq!(stats.offers_sent, 0, "seed {seed}: no block travels");
    }
}

/// Restarts node 0 on the same store with its sealed keys and, if `counters`, the peers'
/// counters it saved; it knows it is rarely online (from the driver's history).
fn restart(net: &mut Network, keys: &[u8], counters: Option<&[PeerUptime]>) {
    for friend in [INSERTER, STEADY, BRIEF] {
        net.disconnect(NODE, friend);
    }
    net.run_for(Duration::from_secs(3600));
    let store = std::mem::take(net.node_mut(NODE).store_mut());
    let config = NodeConfig { seed: pamphlet_node::node::NodeSecret::new([9; 32]), ..net.node(NODE).config().clone() };
    net.replace_node(NODE, config, store);
    net.node_mut(NODE).load_remembered_keys(keys).unwrap();
    if let Some(c) = counters {
        net.node_mut(NODE).load_peer_uptimes(c);
    }
    net.node_mut(NODE).set_own_uptime(Some(0.16));
    for friend in [INSERTER, STEADY, BRIEF] {
        net.connect(NODE, friend);
    }
    net.run_for(Duration::from_secs(60));
}

/// A restarted node (the usual returning node) knows its peers from the counters the
/// driver saved: it backs up to the steady peer. Without them it has seen every peer for a
/// minute only, none is steady, and nothing is backed up.
#[test]
fn a_restarted_node_knows_its_peers_from_the_saved_counters() {
    for seed in seeds(SEEDS) {
        for load in [true, false] {
            let (mut net, blocks) = setup(seed, 0.5, Duration::from_secs(600), 0, 12);
            let keys = net.node_mut(NODE).remembered_keys_sealed();
            let counters = net.node(NODE).peer_uptimes(net.now());
            assert_eq!(counters.len(), 3, "seed {seed}");
            restart(&mut net, &keys, load.then_some(&counters[..]));
            let want = if load { blocks.len() } else { 0 };
            assert_eq!(held(&net, STEADY, &blocks), want, "seed {seed}, counters loaded: {load}");
            assert_eq!(held(&net, BRIEF, &blocks), 0, "seed {seed}");
        }
    }
}

/// Counters from a file that make no sense are clamped: no share above 1, none from a
/// peer never connected that is not in the file.
#[test]
fn loaded_counters_are_clamped() {
    let mut net = Network::new(1, Instant::now());
    net.add_node(0.5);
    let peers = [
        PeerUptime { peer: PeerId(7), known: 10, connected: u64::MAX },
        PeerUptime { peer: PeerId(8), known: u64::MAX, connected: u64::MAX },
    ];
    net.node_mut(0).load_peer_uptimes(&peers);
    let now = net.now();
    for p in [7, 8] {
        let share = net.node(0).peer_uptime(now, PeerId(p)).unwrap();
        assert!((0.0..=1.0).contains(&share), "peer {p}: {share}");
    }
    assert!((net.node(0).peer_uptime(now, PeerId(7)).unwrap() - 10.0 / 21_600.0).abs() < 1e-9, "10 s over 6 h");
    assert_eq!(net.node(0).peer_uptime(now, PeerId(9)), None);
    net.node_mut(0).set_own_uptime(Some(f64::NAN));
    assert_eq!(net.node(0).own_uptime(), None, "a share that is no number is unknown");
    net.node_mut(0).set_own_uptime(Some(7.0));
    assert_eq!(net.node(0).own_uptime(), Some(1.0));
}

/// The uptime file: every kind of bad input is refused whole with its own error.
#[test]
fn a_bad_uptime_file_is_refused_with_its_error() {
    let good = UptimeHistory {
        sessions: vec![Session { start: 100, end: 200 }],
        peers: vec![PeerUptime { peer: PeerId(5), known: 50, connected: 20 }],
    };
    assert_eq!(UptimeHistory::decode(&good.encode()).as_ref(), Ok(&good));
    let huge = vec![b'\n'; MAX_UPTIME_FILE as usize + 1];
    let many: String = std::iter::once("pamphlet-uptime 1\n".to_string())
        .chain((0..=MAX_PEERS).map(|i| format!("p {i:016x} 1 1\n")))
        .collect();
    let line = |why| UptimeFileError::Line { line: 2, why };
    let cases: Vec<(&[u8], UptimeFileError)> = vec![
        (&huge, UptimeFileError::TooLarge { bytes: MAX_UPTIME_FILE + 1 }),
        (b"", UptimeFileError::Header),
        (b"pamphlet-uptime 2\n", UptimeFileError::Header),
        (&[0xff, 0x00], UptimeFileError::Header),
        (b"pamphlet-uptime 1\ns 200 100\n", line("a session ends before it starts")),
        (b"pamphlet-uptime 1\ns 1 x\n", line("a number does not parse")),
        (b"pamphlet-uptime 1\ns -1 2\n", line("a number does not parse")),
        (b"pamphlet-uptime 1\np zz 1 1\n", line("a peer id is not hex")),
        (b"pamphlet-uptime 1\np 05 1 2\n", line("a peer connected longer than known")),
        (b"pamphlet-uptime 1\nq 1 2\n", line("unknown record")),
        (b"pamphlet-uptime 1\ns 1 2 3\n", line("unknown record")),
        (many.as_bytes(), UptimeFileError::TooMany),
    ];
    for (bytes, want) in cases {
        assert_eq!(UptimeHistory::decode(bytes), Err(want.clone()), "{want}");
    }
}

/// Only a friend's backups are taken: a peer offering keys it is itself closer to (a
/// steady backup's keys) gets them wanted when it is a friend, and none when it is an
/// opennet stranger (who would otherwise choose keys near itself for this node's store
/// area). Both nodes run in hybrid mode; the keys lie in 0.46–0.5, the offerer at 0.5,
/// the receiver at 0.8 with no other peer.
#[test]
fn only_a_friends_backup_keys_are_wanted() {
    use pamphlet_crypto::BlockKind;
    use pamphlet_node::routing::opennet::{Found, Mode, OpennetConfig};
    for stranger in [false, true] {
        let mut net = Network::new(1, Instant::now());
        for (i, x) in [0.5, 0.8].into_iter().enumerate() {
            let opennet = OpennetConfig {
                mode: Mode::Hybrid,
                reference: Network::reference(i),
                upkeep_interval: None,
                ..OpennetConfig::default()
            };
            let config = NodeConfig { opennet, ..net.config(i, Location::from_f64(x)) };
            net.add_node_with(config, MemoryStore::default());
        }
        if stranger {
            assert!(net.open_link(0, 1, Found::Announcement));
        } else {
            net.connect(0, 1);
        }
        net.run();
        let keys: Vec<_> = (0..)
            .map(chk_block)
            .filter(|(k, _)| (0.46..0.5).contains(&key_loc(k)))
            .take(8)
            .map(|(k, _)| (BlockKind::Chk, k))
            .collect();
        net.clear_transcript();
        net.inject(0, 1, Message::OfferKeys { id: 7, keys });
        net.run();
        let wanted: usize = net
            .transcript()
            .iter()
            .filter_map(|s| match &s.msg {
                Message::WantKeys { id: 7, wanted } if s.from == 1 => Some(wanted.len()),
                _ => None,
            })
            .sum();
        assert_eq!(wanted, if stranger { 0 } else { 8 }, "stranger: {stranger}");
    }
}
