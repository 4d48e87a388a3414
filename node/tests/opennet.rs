//! Opennet on the `sim::network::Network` harness (feature `sim`, issue 19): announcement,
//! path folding, the limits and their adversaries, hybrid nodes keeping their friends.

// The harness's virtual clock needs a base instant; only differences from it matter.
#![allow(clippy::disallowed_methods)]

mod common;

use std::time::{Duration, Instant};

use common::routing::{chk_block, key_loc};
use common::seeds;
use pamphlet_crypto::BlockKind;
use pamphlet_node::id::PeerId;
use pamphlet_node::location::Location;
use pamphlet_node::node::OpennetStats;
use pamphlet_node::routing::opennet::{Found, Mode, OpennetConfig, PeerKind, Refusal};
use pamphlet_node::sim::network::Network;
use pamphlet_node::sim::opennet::{self, OpennetSimConfig};
use pamphlet_node::store::{Area, BlockStore, MemoryStore};
use pamphlet_node::wire::Message;
use pamphlet_node::{Event, Node, NodeConfig};

/// Adds an opennet node at `loc`, its reference its index; `f` adjusts its opennet config.
fn node(net: &mut Network, loc: f64, f: impl FnOnce(&mut OpennetConfig)) -> usize {
    let i = net.len();
    let mut o = OpennetConfig {
        mode: Mode::Opennet,
        reference: Network::reference(i),
        upkeep_interval: None,
        fold_take: 0.0,
        ..OpennetConfig::default()
    };
    f(&mut o);
    let config = NodeConfig { opennet: o, ..net.config(i, Location::from_f64(loc)) };
    net.add_node_with(config, MemoryStore::default())
}

fn linked(net: &Network, a: usize, b: usize) -> bool {
    net.node(a).peer(PeerId(b as u64)).is_some() && net.node(b).peer(PeerId(a as u64)).is_some()
}

/// A line of opennet nodes at `locs`, linked in order (as if by announcement).
fn line(net: &mut Network, locs: &[f64], f: impl Fn(usize, &mut OpennetConfig)) -> Vec<usize> {
    let ids: Vec<usize> = locs.iter().enumerate().map(|(k, &l)| node(net, l, |o| f(k, o))).collect();
    for w in ids.windows(2) {
        assert!(net.open_link(w[0], w[1], Found::Announcement));
    }
    net.run();
    ids
}

#[test]
fn path_folding_connects_the_requester_to_the_data_source() {
    for seed in seeds(&[1, 2, 3]) {
        let (key, block) = chk_block(1);
        let kl = key_loc(&key);
        let mut net = Network::new(seed, Instant::now());
        let locs: Vec<f64> = (0..4).map(|i| (kl + 0.4 - 0.1 * i as f64).rem_euclid(1.0)).collect();
        let ids = line(&mut net, &locs, |_, _| {});
        net.node_mut(ids[3]).store_mut().put(Area::Store, key, block.clone()).unwrap();
        assert!(!linked(&net, ids[0], ids[3]));
        let op = net.fetch(ids[0], BlockKind::Chk, key);
        net.run();
        assert!(
            net.events(ids[0]).iter().any(|e| matches!(e, Event::FetchSucceeded { op: o, .. } if *o == op)),
            "seed {seed}"
        );
        assert!(linked(&net, ids[0], ids[3]), "seed {seed}: the requester folded to the data source");
        assert_eq!(net.node(ids[0]).peer_kind(PeerId(ids[3] as u64)), (PeerKind::Stranger, Some(Found::PathFold)));
        assert_eq!(net.node(ids[3]).peer_kind(PeerId(ids[0] as u64)), (PeerKind::Stranger, Some(Found::Inbound)));
        assert_eq!(net.node(ids[3]).opennet_stats().fold_offers, 1, "seed {seed}");
    }
}

#[test]
fn a_relay_that_takes_the_offer_puts_its_own_reference_in_its_place() {
    let (key, block) = chk_block(2);
    let kl = key_loc(&key);
    let mut net = Network::new(7, Instant::now());
    let locs: Vec<f64> = (0..5).map(|i| (kl + 0.4 - 0.09 * i as f64).rem_euclid(1.0)).collect();
    // Node 2 takes every offer it relays.
    let ids = line(&mut net, &locs, |k, o| o.fold_take = if k == 2 { 1.0 } else { 0.0 });
    net.node_mut(ids[4]).store_mut().put(Area::Store, key, block).unwrap();
    net.fetch(ids[0], BlockKind::Chk, key);
    net.run();
    assert!(linked(&net, ids[2], ids[4]), "the relay connected to the data source");
    assert!(linked(&net, ids[0], ids[2]), "the requester connected to the relay");
    assert!(!linked(&net, ids[0], ids[4]), "the requester never saw the source's reference");
}

#[test]
fn announcement_brings_peers_near_the_newcomer_and_the_seed_lets_it_go() {
    for seed in seeds(&[1, 2, 3]) {
        let mut net = Network::new(seed, Instant::now());
        let s = node(&mut net, 0.0, |o| o.seed_node = true);
        // A ring of 60 nodes already in the network, each linked to its 4 nearest.
        let n = 60;
        let ring: Vec<usize> = (0..n).map(|k| node(&mut net, (k as f64 + 0.5) / n as f64, |_| {})).collect();
        for k in 0..n {
            for d in 1..=2 {
                net.open_link(ring[k], ring[(k + d) % n], Found::Announcement);
            }
        }
        for &r in ring.iter().step_by(6) {
            net.open_link(s, r, Found::Announcement);
        }
        net.run();
        let x = node(&mut net, 0.503, |o| o.floor = 4);
        assert!(net.open_link(x, s, Found::Seed));
        let now = net.now();
        net.node_mut(x).opennet_upkeep(now);
        net.flush(x);
        net.run();
        let peers: Vec<usize> = net.node(x).peer_ids().iter().map(|p| p.0 as usize).filter(|&p| p != s).collect();
        assert!(peers.len() >= 4, "seed {seed}: the newcomer got {} peers", peers.len());
        let near = Location::from_f64(0.503);
        for p in &peers {
            assert!(
                net.node(*p).location().distance_f64(near) < 0.06,
                "seed {seed}: peer {p} is far from the newcomer"
            );
        }
        // The newcomer advertises fewer peers than the seed's floor (8): the seed holds it
        // while it announces again, ten `seed_hold`s at most
        // (`a_seed_holds_a_newcomer_whose_peers_are_all_fellow_newcomers` for the rule).
        net.run_for(OpennetConfig::default().seed_hold * 10);
        let now = net.now();
        net.node_mut(s).opennet_upkeep(now);
        net.flush(s);
        net.run();
        assert!(!linked(&net, x, s), "seed {seed}: the seed let the newcomer go");
        assert!(net.node(s).opennet_stats().bootstrap_dropped >= 1);
        assert!(net.node(x).peer_ids().len() >= 4, "seed {seed}: the newcomer keeps its own peers");
    }
}

fn opennet_node(ceiling: usize, limits: bool, mode: Mode) -> Node {
    let opennet = OpennetConfig {
        mode,
        ceiling,
        limits,
        upkeep_interval: None,
        reference: Network::reference(0),
        ..OpennetConfig::default()
    };
    Node::new(NodeConfig { opennet, ..NodeConfig::seeded(9) }, MemoryStore::default())
}

/// The adversary of the limits: a stranger (or many Sybils) whose references keep coming
/// back by path folding, to push out a node's peers. With the limits, no peer goes before
/// it had its grace period and the node saw enough successes; without them every offer
/// replaces one.
#[test]
fn the_limits_stop_strangers_from_churning_a_nodes_peers() {
    for limits in [true, false] {
        let t = Instant::now();
        let mut n = opennet_node(3, limits, Mode::Opennet);
        for p in 1..=3 {
            n.admit_stranger(t, PeerId(p), Location(p << 40), Found::Announcement).unwrap();
        }
        let mut taken = 0;
        for k in 0..20u64 {
            let at = t + Duration::from_secs(k);
            taken += usize::from(n.admit_stranger(at, PeerId(100 + k), Location(k << 50), Found::PathFold).is_ok());
        }
        let originals = (1..=3).filter(|&p| n.peer(PeerId(p)).is_some()).count();
        if limits {
            assert_eq!((taken, originals), (0, 3), "with the limits nobody is pushed out");
        } else {
            assert_eq!((taken, originals), (20, 0), "without them every offer replaces a peer");
        }
        while let Some(a) = n.poll_link_action() {
            assert!(matches!(a, pamphlet_node::node::LinkAction::Drop { .. }));
        }
    }
}

#[test]
fn hybrid_nodes_never_drop_friends_for_strangers() {
    for limits in [true, false] {
        let t = Instant::now() + Duration::from_secs(3600);
        let mut n = opennet_node(3, limits, Mode::Hybrid);
        for p in 1..=3 {
            n.add_peer(t, PeerId(p), Location(p << 40));
        }
        assert_eq!(n.admit_stranger(t, PeerId(9), Location(9 << 40), Found::PathFold), Err(Refusal::Full));
        n.opennet_upkeep(t);
        assert!((1..=3).all(|p| n.peer(PeerId(p)).is_some()), "limits {limits}: friends stay");
        assert_eq!(n.peer_kind(PeerId(1)), (PeerKind::Friend, None));
    }
}

#[test]
fn darknet_takes_no_strangers_and_ignores_opennet_messages() {
    let t = Instant::now();
    let mut n = opennet_node(3, true, Mode::Darknet);
    assert_eq!(n.admit_stranger(t, PeerId(1), Location(1), Found::Inbound), Err(Refusal::Darknet));
    n.add_peer(t, PeerId(2), Location(2 << 40));
    while n.poll_transmit().is_some() {}
    let reference = Network::reference(5);
    n.handle_message(t, PeerId(2), Message::Announce { id: 1, htl: 5, location: Location(7), reference });
    assert!(n.poll_transmit().is_none(), "a darknet node answers no announcement");
    assert_eq!(n.opennet_stats(), OpennetStats { refused: 1, ..OpennetStats::default() });
}

#[test]
fn opennet_locations_are_fixed() {
    let t = Instant::now();
    let mut n = opennet_node(3, true, Mode::Opennet);
    n.admit_stranger(t, PeerId(1), Location(1 << 40), Found::Announcement).unwrap();
    while n.poll_transmit().is_some() {}
    assert!(!n.start_swap(t));
    n.handle_message(t, PeerId(1), Message::SwapRequest { id: 4, htl: 3, commitment: [0; 32] });
    assert_eq!(n.poll_transmit(), Some((PeerId(1), Message::SwapRejected { id: 4 })));
}

/// The adversary of the announcement rate limit: a peer that floods announcements. Past the
/// bucket's depth each is answered AnnounceDone at once, neither offered to nor relayed.
#[test]
fn announcements_past_the_rate_are_refused() {
    let t = Instant::now();
    let mut n = opennet_node(30, true, Mode::Opennet);
    n.admit_stranger(t, PeerId(1), Location(1 << 40), Found::Inbound).unwrap();
    n.admit_stranger(t, PeerId(2), Location(2 << 40), Found::Inbound).unwrap();
    while n.poll_transmit().is_some() {}
    for id in 0..100u64 {
        let reference = Network::reference(1000 + id as usize);
        n.handle_message(t, PeerId(1), Message::Announce { id, htl: 5, location: Location(id << 48), reference });
    }
    let burst = OpennetConfig::default().announce_burst as u64;
    let s = n.opennet_stats();
    assert_eq!((s.announces_handled, s.announces_refused), (burst, 100 - burst));
}

#[test]
fn a_seed_holds_no_more_newcomers_than_its_cap() {
    let t = Instant::now();
    let opennet = OpennetConfig {
        mode: Mode::Opennet,
        seed_node: true,
        seed_cap: 3,
        upkeep_interval: None,
        ..OpennetConfig::default()
    };
    let mut s = Node::new(NodeConfig { opennet, ..NodeConfig::seeded(3) }, MemoryStore::default());
    for p in 1..=3 {
        s.admit_stranger(t, PeerId(p), Location(p << 40), Found::Inbound).unwrap();
    }
    assert_eq!(s.admit_stranger(t, PeerId(4), Location(4 << 40), Found::Inbound), Err(Refusal::SeedFull));
}

/// Under churn a seed must stay a door into the network: it lets its newest newcomers go
/// first and keeps its longest-held strangers. (It used to go by peer id, which kept the
/// latest newcomers: the seeds and their newcomers drifted into a network of their own, and
/// 10% churn per round at 3,000 nodes fell to 0.79-0.86; docs/benchmarks.md.)
fn seed_with_newcomers(floor: usize, newcomers: u64, t: Instant) -> Node {
    let opennet = OpennetConfig {
        mode: Mode::Opennet,
        seed_node: true,
        floor,
        upkeep_interval: None,
        ..OpennetConfig::default()
    };
    let config = NodeConfig { opennet, check_claims: false, ..NodeConfig::seeded(3) };
    let mut s = Node::new(config, MemoryStore::default());
    // Peer ids grow as the newcomers arrive (as a driver numbers its links).
    for k in 0..newcomers {
        let at = t + Duration::from_secs(k);
        s.admit_stranger(at, PeerId(k + 1), Location((k + 1) << 40), Found::Inbound).unwrap();
    }
    s
}

/// The location the seed of [`seed_with_newcomers`] knows newcomer `k` at.
fn newcomer_at(k: u64) -> Location {
    Location(k << 40)
}

#[test]
fn a_seed_keeps_its_oldest_strangers_and_lets_the_newest_go() {
    let t = Instant::now();
    let mut s = seed_with_newcomers(2, 5, t);
    // None of them advertises a peer: after `seed_hold` they go (to come back to a seed
    // and announce again), the newest first, down to the two anchors.
    let hold = OpennetConfig::default().seed_hold;
    s.opennet_upkeep(t + Duration::from_secs(3) + hold);
    let kept: Vec<u64> = s.peer_ids().iter().map(|p| p.0).collect();
    assert_eq!(kept, vec![1, 2, 5], "newcomer 5 was held less than seed_hold");
    s.opennet_upkeep(t + Duration::from_secs(4) + hold);
    let kept: Vec<u64> = s.peer_ids().iter().map(|p| p.0).collect();
    assert_eq!(kept, vec![1, 2], "the two oldest stay");
}

/// Newcomers arriving together find each other through the seed; one whose peers are all
/// fellow newcomers the seed holds stays held (announcing again through it), one linked
/// outside goes. Letting a newcomer go once it had `floor` peers of any kind split 40
/// real processes started at once into islands that never met (`tests/tests/opennet.rs`).
#[test]
fn a_seed_holds_a_newcomer_whose_peers_are_all_fellow_newcomers() {
    let t = Instant::now();
    let mut s = seed_with_newcomers(2, 8, t);
    let now = t + Duration::from_secs(9);
    // Newcomer 7: four peers, every one a newcomer the seed holds past its two anchors.
    let fellows: Vec<Location> = [3, 4, 5, 6].map(newcomer_at).to_vec();
    s.handle_message(now, PeerId(7), Message::LocationUpdate { location: newcomer_at(7), neighbours: fellows });
    // Newcomer 8: four peers, one of them a node the seed does not hold.
    let mixed = vec![newcomer_at(3), newcomer_at(4), newcomer_at(5), Location(0xdead << 40)];
    s.handle_message(now, PeerId(8), Message::LocationUpdate { location: newcomer_at(8), neighbours: mixed });
    s.opennet_upkeep(now);
    let kept: Vec<u64> = s.peer_ids().iter().map(|p| p.0).collect();
    assert_eq!(kept, vec![1, 2, 3, 4, 5, 6, 7], "newcomer 8 goes, 7 stays");
    // Past `seed_hold` too: its peers are all fellows, and it has its floor of them.
    s.opennet_upkeep(now + OpennetConfig::default().seed_hold);
    assert!(s.peer_ids().contains(&PeerId(7)), "a newcomer among fellows only is held past seed_hold");
    // An anchor counts as outside: linked to newcomer 1, newcomer 7 goes too.
    let with_anchor = vec![newcomer_at(1), newcomer_at(4), newcomer_at(5), newcomer_at(6)];
    s.handle_message(now, PeerId(7), Message::LocationUpdate { location: newcomer_at(7), neighbours: with_anchor });
    s.opennet_upkeep(now);
    assert!(!s.peer_ids().contains(&PeerId(7)));
}

/// A newcomer still held by a seed whose every peer is a fellow newcomer of that seed
/// (each lists the seed among its neighbours) announces through it at every interval,
/// although it has its floor of peers: the seed lets it go only once it links outside its
/// nursery. Once one peer is from outside, it stops.
#[test]
fn a_newcomer_among_fellows_only_announces_again_at_its_floor() {
    let t = Instant::now();
    let opennet = OpennetConfig {
        mode: Mode::Opennet,
        upkeep_interval: None,
        reference: Network::reference(0),
        ..OpennetConfig::default()
    };
    let mut n = Node::new(NodeConfig { opennet, check_claims: false, ..NodeConfig::seeded(9) }, MemoryStore::default());
    let seed_at = Location(1 << 60);
    n.admit_stranger(t, PeerId(100), seed_at, Found::Seed).unwrap();
    // Its floor of peers, all short links (so it is not short of those either), each a
    // fellow: it lists the seed among its neighbours.
    let here = n.location().0;
    let floor = OpennetConfig::default().floor as u64;
    for k in 1..=floor {
        let at = Location(here.wrapping_add(k << 40));
        n.admit_stranger(t, PeerId(k), at, Found::Announcement).unwrap();
        n.handle_message(t, PeerId(k), Message::LocationUpdate { location: at, neighbours: vec![seed_at] });
    }
    let every = OpennetConfig::default().announce_interval;
    n.opennet_upkeep(t);
    n.opennet_upkeep(t + every);
    assert_eq!(n.opennet_stats().announces_started, 2, "among fellows only: announces each interval");
    // One peer from outside the seed's nursery: no more announcements at its floor.
    let at = Location(here.wrapping_add(1 << 40));
    n.handle_message(t, PeerId(1), Message::LocationUpdate { location: at, neighbours: vec![Location(3 << 60)] });
    n.opennet_upkeep(t + every * 2);
    assert_eq!(n.opennet_stats().announces_started, 2);
}

/// Back at a seed after asking for one, a node announces through it at once: a seed may
/// let it go again before its announcement interval is up (on real processes a node whose
/// peers kept dropping it asked for the seeds 28 times and never announced).
#[test]
fn a_node_that_asked_for_the_seeds_announces_as_soon_as_one_takes_it() {
    let t = Instant::now();
    let mut n = opennet_node(20, true, Mode::Opennet);
    n.admit_stranger(t, PeerId(1), Location(1 << 40), Found::Announcement).unwrap();
    n.opennet_upkeep(t);
    assert_eq!(n.poll_link_action(), Some(pamphlet_node::node::LinkAction::NeedSeeds));
    let later = t + Duration::from_millis(10);
    n.admit_stranger(later, PeerId(2), Location(2 << 40), Found::Seed).unwrap();
    assert_eq!(n.opennet_stats().announces_started, 1);
    let sent: Vec<_> = std::iter::from_fn(|| n.poll_transmit()).collect();
    assert!(sent.iter().any(|(p, m)| *p == PeerId(2) && matches!(m, Message::Announce { .. })));
}

/// A stranger that keeps lying loses its link, and cannot come back before its suspension
/// ends, whichever way its link comes up again: dialling in, or brought back by an
/// announcement or a path-folding offer.
#[test]
fn a_stranger_suspended_for_its_lies_is_not_admitted_again_until_its_time_is_up() {
    use pamphlet_node::node::{LinkAction, FIRST_SUSPENSION};
    let t = Instant::now();
    let mut n = opennet_node(20, true, Mode::Opennet);
    let liar = PeerId(7);
    n.admit_stranger(t, liar, Location(7 << 40), Found::Inbound).unwrap();
    for i in 0..8u32 {
        let (_, block) = chk_block(3000 + i);
        n.handle_message(t, liar, Message::InsertRequest { id: u64::from(i), htl: 0, block, top: false });
    }
    let actions: Vec<_> = std::iter::from_fn(|| n.poll_link_action()).collect();
    assert!(actions.iter().any(|a| matches!(a, LinkAction::Suspend { peer, .. } if *peer == liar)), "{actions:?}");
    n.remove_peer(t, liar); // the driver closed the link
    for found in [Found::Inbound, Found::Announcement, Found::PathFold, Found::Reconnect] {
        assert_eq!(
            n.admit_stranger(t + Duration::from_secs(1), liar, Location(7 << 40), found),
            Err(Refusal::Suspended)
        );
    }
    let after = t + FIRST_SUSPENSION + Duration::from_secs(1);
    assert_eq!(n.admit_stranger(after, liar, Location(7 << 40), Found::Inbound), Ok(()));
}

/// The whole bootstrap on a small network: every node reaches its floor, the seeds stay
/// under their cap, and fetches get shorter as path folding shapes the graph.
#[test]
fn a_small_opennet_bootstraps_from_seeds_and_becomes_routable() {
    let cfg = OpennetSimConfig { nodes: 150, seeds: 3, rounds: 6, docs: 30, ..OpennetSimConfig::default() };
    let r = opennet::run(&cfg, Instant::now()).expect("the run completes");
    assert_eq!(r.bootstrap_components, 1, "one network: {r:#?}");
    assert!(r.bootstrap_below_floor <= cfg.nodes / 50, "{r:#?}");
    assert!(r.seed_max_strangers <= OpennetConfig::default().seed_cap, "{r:#?}");
    assert_eq!(r.inserts_ok, r.inserts);
    let last = r.rounds.last().unwrap();
    assert!(last.success_rate >= 0.95, "{r:#?}");
    assert!(r.rounds.iter().map(|x| x.admitted).sum::<u64>() > 0, "path folding made links: {r:#?}");
}

/// Churn spread over the rounds (a tenth of the nodes replaced per round, each newcomer
/// joining through the seeds): the network stays one and routable, and the seeds under
/// their cap.
#[test]
fn a_small_opennet_holds_under_churn() {
    let cfg = OpennetSimConfig { nodes: 150, seeds: 3, rounds: 4, docs: 30, churn: 0.1, ..OpennetSimConfig::default() };
    let r = opennet::run(&cfg, Instant::now()).expect("the run completes");
    for round in &r.rounds {
        assert!(round.success_rate >= 0.95, "{r:#?}");
        assert!(round.mean_degree >= cfg.floor as f64, "{r:#?}");
    }
}
