//! Behaviour of the durability model on small fixed-seed runs (300 nodes, ten days, small
//! stores under pressure), fast enough for debug builds.
//!
//! Many tests compare a rule on and off against the same baseline (the node's rules, or
//! the rules before, on the small world): each distinct configuration is run once per test
//! binary and its report shared ([`report`]), since a run is a pure function of its
//! configuration (`same_seed_same_report` checks that, with a second, uncached run).

use std::sync::{Arc, Mutex, OnceLock};

use super::*;

fn small(rules: Rules) -> DurabilityConfig {
    DurabilityConfig {
        nodes: 300,
        degree: 40,
        days: 10,
        store_blocks: 32,
        cache_blocks: 32,
        fill_days: 20.0,
        weekly_departures: 0.1,
        fetches_per_day: 60.0,
        swap_rounds: 50,
        daily_swap_rounds: 2,
        seed: 7,
        // Documents up to 1 MiB (mean 0.3 MiB): many of them in small stores.
        max_document_bytes: 1024.0 * 1024.0,
        rules,
        ..DurabilityConfig::default()
    }
}

/// The report of a run of `c`, each distinct configuration run once per test binary (tests
/// run on several threads: one that asks for a run another is doing waits for it).
fn report(c: &DurabilityConfig) -> DurabilityReport {
    type Runs = Vec<(DurabilityConfig, Arc<OnceLock<DurabilityReport>>)>;
    static RUNS: Mutex<Runs> = Mutex::new(Vec::new());
    let cell = {
        let mut runs = RUNS.lock().unwrap_or_else(|e| e.into_inner());
        match runs.iter().find(|(k, _)| k == c) {
            Some((_, cell)) => Arc::clone(cell),
            None => {
                let cell = Arc::new(OnceLock::new());
                runs.push((c.clone(), Arc::clone(&cell)));
                cell
            }
        }
    };
    cell.get_or_init(|| run(c).expect("a valid configuration")).clone()
}

fn docs_at(r: &DurabilityReport, age: u32) -> f64 {
    r.at(age).and_then(|p| p.documents).expect("probed at that age")
}

#[test]
fn same_seed_same_report() {
    let c = small(Rules::pamphlet());
    assert_eq!(report(&c), run(&c).unwrap(), "an uncached run gives the shared report");
}

/// Storage rules change what is kept, never who is online or what is inserted.
#[test]
fn rules_change_storage_not_the_world() {
    let a = report(&small(Rules::pamphlet()));
    let b = report(&small(Rules::hyphanet()));
    assert_eq!((a.documents, a.departures, a.swaps_done), (b.documents, b.departures, b.swaps_done));
    assert_eq!(a.mean_online, b.mean_online);
    assert_eq!(a.fetches, b.fetches);
    assert_ne!(a.blocks, b.blocks, "Hyphanet's redundancy 1.0 makes more blocks of the same documents");
}

/// Under churn and store pressure, without healing, fewer documents survive the older
/// they are.
#[test]
fn survival_falls_with_age_without_healing() {
    let r = report(&small(Rules { heal: false, ..Rules::before() }));
    let (d1, d7) = (docs_at(&r, 1), docs_at(&r, 7));
    assert!(d1 > d7, "age 1: {d1}, age 7: {d7}");
    let online: f64 = r.online_share.iter().sum();
    assert!((online - 1.0).abs() < 1e-9);
    assert!(r.departures > 0 && r.store_evictions > 0, "churn and pressure both happened");
}

/// A mechanism switched off keeps fewer documents than switched on, same seed: a node
/// back online handing its blocks to the peers that answer for them while it is away.
#[test]
fn offers_on_return_keep_more_than_none() {
    let with = |offer_on_return| {
        let c = small(Rules { offer_on_return, ..Rules::before() });
        report(&DurabilityConfig { fill_days: 100.0, ..c })
    };
    let (off, on) = (with(false), with(true));
    assert!(on.offered_blocks > 0 && on.offer_cost_per_day.bytes > 0 && off.offered_blocks == 0);
    assert!(docs_at(&on, 7) > docs_at(&off, 7), "on {} vs off {}", docs_at(&on, 7), docs_at(&off, 7));
}

#[test]
fn bad_parameters_are_refused() {
    let c = DurabilityConfig { days: 0, ..small(Rules::before()) };
    assert_eq!(run(&c).unwrap_err(), DurabilityError::Bad("--days must be at least 1"));
    let c = DurabilityConfig { fill_days: 0.0, ..small(Rules::before()) };
    assert!(run(&c).is_err());
    for offer_depth in [-0.1, 1.5, f64::NAN] {
        let c = small(Rules { offer_depth, ..Rules::pamphlet() });
        assert_eq!(run(&c).unwrap_err(), DurabilityError::Bad("--offer-depth must be between 0 and 1"));
    }
}

/// With `store_once`, an insert is written to one store area at most; without it, to every
/// sink on its path (several).
#[test]
fn store_once_writes_each_block_once() {
    let once = report(&small(Rules { store_once: true, heal: false, ..Rules::before() }));
    let every = report(&small(Rules { heal: false, ..Rules::before() }));
    assert!(once.store_writes_per_block <= 1.0, "{}", once.store_writes_per_block);
    assert!(every.store_writes_per_block > 2.0, "{}", every.store_writes_per_block);
}

/// Keepalive: the pinned documents (a tenth, kept alive daily by their publishers) survive
/// better than the same tenth of the same world without keepalive, the probes and inserts
/// are counted, and the unpinned ones are no better off for it.
#[test]
fn pinned_documents_kept_alive_survive_better() {
    let with = |keepalive_days| {
        let c = small(Rules { keepalive_days, keepalive_share: 0.1, ..Rules::before() });
        report(&DurabilityConfig { fill_days: 100.0, ..c })
    };
    let (off, on) = (with(0), with(1));
    let pinned = |r: &DurabilityReport| {
        let t = r.at(7).unwrap().pinned;
        assert!(t.documents > 0, "some documents are pinned");
        t.documents_ok as f64 / t.documents as f64
    };
    assert_eq!(off.at(7).unwrap().pinned.documents, on.at(7).unwrap().pinned.documents, "the same documents");
    assert!(off.kept_alive_blocks == 0 && off.keepalive_cost_per_day.messages == 0);
    assert!(on.kept_alive_blocks > 0 && on.keepalive_cost_per_day.messages > 0);
    assert!(pinned(&on) > pinned(&off), "kept alive {} vs not {}", pinned(&on), pinned(&off));
}

/// The uptime rule: only nodes that are online most of the time (and that no such peer
/// beats to the key) keep inserts in their store areas, so fewer store copies are written
/// (survival is the docs' tables' business: the rule helps at light load only).
#[test]
fn uptime_rule_writes_fewer_copies() {
    let with = |store_uptime| report(&small(Rules { store_uptime, heal: false, ..Rules::before() }));
    let (off, on) = (with(0.0), with(0.5));
    assert!(
        on.store_writes_per_block < off.store_writes_per_block,
        "on {} vs off {}",
        on.store_writes_per_block,
        off.store_writes_per_block
    );
    assert!(on.store_use < off.store_use, "the rarely online nodes' store areas stay emptier");
}

/// Offers on swap: a node moved by a swap hands its stored blocks to the peers now closest
/// to them, and more documents survive than without.
#[test]
fn offers_on_swap_keep_more_than_none() {
    let with = |offer_on_swap| {
        let c = small(Rules { offer_on_swap, ..Rules::before() });
        report(&DurabilityConfig { fill_days: 100.0, ..c })
    };
    let (off, on) = (with(false), with(true));
    assert!(on.offered_blocks > 0 && on.offer_cost_per_day.bytes > 0 && off.offered_blocks == 0);
    assert!(docs_at(&on, 7) > docs_at(&off, 7), "on {} vs off {}", docs_at(&on, 7), docs_at(&off, 7));
}

/// Offers into room only never push a block out of a full store area; without the budget
/// they do.
#[test]
fn offers_into_room_never_evict() {
    let with = |offer_into_room| {
        let c = small(Rules { offer_on_swap: true, offer_on_return: true, offer_into_room, ..Rules::before() });
        report(&c)
    };
    let (free, budget) = (with(false), with(true));
    assert!(free.offer_evictions > 0, "the small run's stores are under pressure");
    assert!(budget.offered_blocks > 0);
    assert_eq!(budget.offer_evictions, 0);
}

/// Offers on return of top blocks only (`offer_top_only_on_return`) still offer some blocks
/// on return, and fewer than offers of every block.
#[test]
fn offers_on_return_of_top_blocks_only_cost_less() {
    let with = |offer_on_return, offer_top_only_on_return| {
        report(&small(Rules { offer_on_return, offer_top_only_on_return, ..Rules::pamphlet() }))
    };
    let (none, top, all) = (with(false, false), with(true, true), with(true, false));
    let bytes = |r: &DurabilityReport| r.offer_cost_per_day.bytes;
    assert!(bytes(&none) < bytes(&top), "top blocks are offered on return: {} vs {}", bytes(&none), bytes(&top));
    assert!(bytes(&top) < bytes(&all), "only top blocks: {} vs {}", bytes(&top), bytes(&all));
}

/// A full store area hands what it drops to a peer with room: blocks are passed on, and
/// more of them are found a week later than when they are dropped.
#[test]
fn evicted_blocks_passed_on_are_found_more_often() {
    let with = |evict_to_peer| {
        let c = small(Rules { evict_to_peer, heal: false, ..Rules::before() });
        report(&DurabilityConfig { fill_days: 100.0, ..c })
    };
    let (off, on) = (with(false), with(true));
    assert!(on.store_use > off.store_use, "room elsewhere is used");
    let blocks = |r: &DurabilityReport| r.at(7).and_then(|p| p.blocks).unwrap();
    assert!(on.passed_on_blocks > 0 && off.passed_on_blocks == 0);
    assert!(blocks(&on) > blocks(&off), "on {} vs off {}", blocks(&on), blocks(&off));
}

/// A cap on the store copies per insert: no block is written to more store areas than
/// the cap (without healing or offers, which write again), where without it blocks are.
#[test]
fn store_copies_stay_within_the_cap() {
    let with = |max_store_copies| report(&small(Rules { max_store_copies, heal: false, ..Rules::before() }));
    let (free, capped) = (with(0), with(2));
    assert!(capped.store_writes_per_block <= 2.0, "{}", capped.store_writes_per_block);
    assert!(free.store_writes_per_block > 2.0, "{}", free.store_writes_per_block);
}

/// The documents inserted have the size distribution's mean even when an hour's load is
/// smaller than a typical document (a large size waits for the bytes owed; it used to be
/// drawn again, which made the documents of light loads mostly small).
#[test]
fn inserted_documents_keep_the_size_distribution() {
    // 1.2 MiB of documents a day: most hours owe less than a 1 MiB document.
    let c = DurabilityConfig { fill_days: 250.0, days: 20, ..small(Rules::before()) };
    let r = report(&c);
    let mean = r.final_fill * c.total_store_bytes() / r.documents as f64;
    let want = load::mean_size(c.max_document_bytes);
    assert!(r.documents > 50, "{}", r.documents);
    assert!((mean / want - 1.0).abs() < 0.25, "mean {mean} vs {want}");
}

/// Top blocks (which FEC cannot rebuild) stored by more nodes on their insert's path:
/// more documents survive, for few more store writes.
#[test]
fn wider_top_blocks_keep_more_documents() {
    let with = |unprotected_sink_rank| {
        let c = small(Rules { unprotected_sink_rank, heal: false, ..Rules::before() });
        report(&DurabilityConfig { fill_days: 100.0, ..c })
    };
    let (off, on) = (with(0), with(4));
    assert!(docs_at(&on, 7) > docs_at(&off, 7), "on {} vs off {}", docs_at(&on, 7), docs_at(&off, 7));
    assert!(on.store_writes_per_block > off.store_writes_per_block);
}

/// The model's default rules are what the node does (`node::DurabilityConfig`), and the
/// Hyphanet-like reference does neither mechanism.
#[test]
fn the_model_defaults_are_the_nodes() {
    let node = crate::node::DurabilityConfig::default();
    let p = Rules::pamphlet();
    assert_eq!(p.unprotected_sink_rank, node.top_sinks as usize);
    assert!(p.offer_on_swap && node.offers_per_tick > 0);
    assert_eq!(p.offer_limit, node.offers_remembered);
    assert!(p.offer_on_return && node.offers_on_return, "offers on return, as the node");
    assert!(p.offer_to_closer, "by the node's rule: only to a closer peer, kept as a sink");
    assert!(p.key_first_offers, "offers send key lists first, as the node");
    assert_eq!(p.offer_into_room, node.offers_into_room, "offered blocks only into room, as the node");
    assert_eq!(p.steady_backup, node.steady_backup, "steady backups on return, as the node");
    let routing = crate::node::NodeConfig::default();
    assert_eq!(p.fetch_cap, u32::from(routing.not_found_cap), "a fetch searches as the node's");
    let node_second = if routing.second_attempt_window.is_zero() { SecondAttempt::Off } else { SecondAttempt::Key };
    assert_eq!(p.second_attempt, node_second, "a second attempt by the key, as the node's");
    assert!(p.second_attempt_waits, "when on, after the quench, as the node's");
    assert_eq!(routing.strategy, crate::node::RoutingStrategy::Pamphlet, "the node ranks peers by FOAF locations");
    assert_eq!(p.foaf, Foaf::All, "so every route of the model does (inserts, fetches, probes)");
    assert_eq!(
        Rules {
            name: p.name.clone(),
            unprotected_sink_rank: 0,
            offer_on_swap: false,
            offer_on_return: false,
            offer_to_closer: false,
            offer_limit: 0,
            key_first_offers: false,
            steady_backup: 0.0,
            fetch_cap: 0,
            second_attempt: SecondAttempt::Off,
            second_attempt_waits: false,
            foaf: Foaf::Off,
            offer_into_room: false,
            ..p
        },
        Rules { name: p.name.clone(), ..Rules::before() }
    );
    let h = Rules::hyphanet();
    assert!(!h.offer_on_swap && h.unprotected_sink_rank == 0);
    assert_eq!((h.foaf, Rules::before().foaf), (Foaf::Off, Foaf::Off), "the earlier tables' routes, reproducible");
}

/// The node's rule of offers on return (only to a peer closer to the key than the
/// returning node, kept there as a sink; `offers.rs`) is in the model's default rules:
/// switched on, returning nodes offer blocks and the offers cost bytes. (That only closer
/// peers are offered to is the rule's code in `offers.rs`; this checks it runs.)
#[test]
fn node_rule_offers_on_return_offer_blocks_and_cost_bytes() {
    let with = |offer_on_return| {
        let c = small(Rules { offer_on_return, ..Rules::pamphlet() });
        report(&DurabilityConfig { fill_days: 100.0, ..c })
    };
    let (off, on) = (with(false), with(true));
    assert!(on.offered_blocks > off.offered_blocks, "on {} vs off {}", on.offered_blocks, off.offered_blocks);
    assert!(on.offer_cost_per_day.bytes > off.offer_cost_per_day.bytes);
}

/// Every missing block of a lost document is put in exactly one place by the diagnosis
/// (`diagnosis.rs`), the lost documents are those the probes found lost, and the ages at
/// which the gone blocks went add up to the gone blocks.
#[test]
fn loss_causes_account_for_every_missing_block() {
    let r = report(&small(Rules::pamphlet()));
    let mut lost_somewhere = 0;
    for (p, l) in r.survival.iter().zip(&r.loss_causes) {
        assert_eq!(p.age_days, l.age_days);
        assert_eq!(l.documents_lost, p.all.documents - p.all.documents_ok, "age {}", p.age_days);
        assert!(l.top_missing <= l.documents_lost);
        let mut gone = 0;
        for c in [l.top, l.data] {
            let g = c.gone_insert + c.gone_fetch + c.gone_heal + c.gone_offer + c.gone_keepalive + c.gone_departure;
            let off = c.offline_always_on + c.offline_regular + c.offline_occasional;
            let un =
                c.unreached_at_sink + c.unreached_holder_moved + c.unreached_others_closer + c.unreached_cache_only;
            assert_eq!(g + c.never_stored + off + un, c.missing, "age {}: {c:?}", p.age_days);
            assert!(c.gone_from_cache <= g && c.offline_in_store <= off);
            assert!(c.unreached_at_sink_hops_out <= c.unreached_at_sink);
            gone += g;
        }
        assert_eq!(l.gone_age.iter().sum::<u64>(), gone);
        assert!(l.documents_lost == 0 || l.top.missing + l.data.missing > 0, "a lost document misses blocks");
        lost_somewhere += l.documents_lost;
    }
    assert!(lost_somewhere > 0, "the small run loses documents: the test checks something");
    let writes: f64 = r.store_by_class.iter().map(|c| c.writes_per_node_day).sum();
    assert!(writes > 0.0);
    // The diagnosis reads only: a second run of the same configuration gives the same
    // world and the same survival (`same_seed_same_report` runs it again, uncached).
}

/// Fetches (and probes) with fewer hops reach fewer of the blocks that are there.
#[test]
fn fetch_hops_set_how_far_a_fetch_looks() {
    let with = |fetch_htl| report(&small(Rules { fetch_htl, ..Rules::pamphlet() }));
    let (short, long) = (with(3), with(0));
    let blocks = |r: &DurabilityReport| r.at(3).and_then(|p| p.blocks).unwrap();
    assert!(blocks(&short) < blocks(&long), "3 hops {} vs 18 {}", blocks(&short), blocks(&long));
    assert_eq!(short.documents, long.documents, "same world");
}

/// A returning node rarely online hands the blocks it is still the closest to to a steady
/// peer: more blocks are offered and taken than without.
#[test]
fn steady_backups_hand_over_more_blocks() {
    let with = |steady_backup| {
        let c = small(Rules { steady_backup, ..Rules::pamphlet() });
        report(&DurabilityConfig { fill_days: 100.0, ..c })
    };
    let (off, on) = (with(0.0), with(0.5));
    assert!(on.offered_blocks > off.offered_blocks, "on {} vs off {}", on.offered_blocks, off.offered_blocks);
    assert!(on.offer_cost_per_day.bytes > off.offer_cost_per_day.bytes);
}

/// Key-first offers change what the offers cost, never what is kept: the same survival and
/// the same blocks taken, fewer offer bytes.
#[test]
fn key_first_offers_keep_the_same_blocks_for_fewer_bytes() {
    let with = |key_first_offers| {
        let c = small(Rules { key_first_offers, ..Rules::pamphlet() });
        report(&DurabilityConfig { fill_days: 100.0, ..c })
    };
    let (blocks, keys) = (with(false), with(true));
    assert_eq!(blocks.survival, keys.survival);
    assert_eq!(blocks.offered_blocks, keys.offered_blocks);
    assert!(keys.offered_blocks > 0);
    assert!(
        keys.offer_cost_per_day.bytes < blocks.offer_cost_per_day.bytes,
        "{:?} vs {:?}",
        keys.offer_cost_per_day,
        blocks.offer_cost_per_day
    );
}

/// A second attempt for blocks not found finds some of them, for one more request each,
/// and changes nothing else in the world.
#[test]
fn a_second_attempt_finds_blocks_the_first_missed() {
    let with = |second_attempt| report(&small(Rules { second_attempt, ..Rules::pamphlet() }));
    let (off, on) = (with(SecondAttempt::Off), with(SecondAttempt::Next));
    assert_eq!(off.second_attempts, 0);
    assert!(
        on.second_attempts > 0 && on.second_attempts_found > 0,
        "{} / {}",
        on.second_attempts_found,
        on.second_attempts
    );
    assert!(on.fetch_cost_per_day.messages > off.fetch_cost_per_day.messages);
    let blocks = |r: &DurabilityReport| r.at(3).and_then(|p| p.blocks).unwrap();
    assert!(blocks(&on) > blocks(&off), "with {} vs without {}", blocks(&on), blocks(&off));
    assert_eq!((on.documents, on.fetches), (off.documents, off.fetches), "same world");
    // By the key (the node's rule): relays that failed the key detour too.
    let key = with(SecondAttempt::Key);
    assert!(key.second_attempts_found > 0 && blocks(&key) > blocks(&off));
    assert_eq!((key.documents, key.fetches), (off.documents, off.fetches), "same world");
}

#[test]
fn the_quench_cost_is_the_nodes_not_found_cap() {
    assert_eq!(u32::from(crate::node::NodeConfig::default().not_found_cap), route::NOT_FOUND_CAP);
}

/// Fetches that route as the node does after a "not found" (it costs a node at most 4 of
/// its hops, then it tries its next peer) search wider than the model's single route: they
/// find at least as many blocks, for more messages; the world is the same.
#[test]
fn fetches_with_the_nodes_not_found_cap_search_wider() {
    let with = |fetch_cap| report(&small(Rules { fetch_cap, ..Rules::pamphlet() }));
    let (all, cap) = (with(0), with(route::NOT_FOUND_CAP));
    let blocks = |r: &DurabilityReport| r.at(3).and_then(|p| p.blocks).unwrap();
    assert!(blocks(&cap) >= blocks(&all), "cap {} vs all {}", blocks(&cap), blocks(&all));
    assert!(cap.fetch_cost_per_day.messages > all.fetch_cost_per_day.messages);
    assert_eq!((cap.documents, cap.fetches), (all.documents, all.fetches), "same world");
}
