//! Behaviour of the durability model on small fixed-seed runs (300 nodes, ten days, small
//! stores under pressure), fast enough for debug builds.

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
        rules,
        ..DurabilityConfig::default()
    }
}

fn docs_at(r: &DurabilityReport, age: u32) -> f64 {
    r.at(age).and_then(|p| p.documents).expect("probed at that age")
}

#[test]
fn same_seed_same_report() {
    let c = small(Rules::pamphlet());
    assert_eq!(run(&c).unwrap(), run(&c).unwrap());
}

/// Storage rules change what is kept, never who is online or what is inserted.
#[test]
fn rules_change_storage_not_the_world() {
    let a = run(&small(Rules::pamphlet())).unwrap();
    let b = run(&small(Rules::hyphanet())).unwrap();
    assert_eq!((a.documents, a.departures, a.swaps_done), (b.documents, b.departures, b.swaps_done));
    assert_eq!(a.mean_online, b.mean_online);
    assert_eq!(a.fetches, b.fetches);
    assert_ne!(a.blocks, b.blocks, "Hyphanet's redundancy 1.0 makes more blocks of the same documents");
}

/// Under churn and store pressure, without healing, fewer documents survive the older
/// they are.
#[test]
fn survival_falls_with_age_without_healing() {
    let r = run(&small(Rules { heal: false, ..Rules::pamphlet() })).unwrap();
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
        let c = small(Rules { offer_on_return, ..Rules::pamphlet() });
        run(&DurabilityConfig { fill_days: 100.0, ..c }).unwrap()
    };
    let (off, on) = (with(false), with(true));
    assert!(on.offered_blocks > 0 && on.offer_cost_per_day.bytes > 0 && off.offered_blocks == 0);
    assert!(docs_at(&on, 7) > docs_at(&off, 7), "on {} vs off {}", docs_at(&on, 7), docs_at(&off, 7));
}

#[test]
fn bad_parameters_are_refused() {
    let c = DurabilityConfig { days: 0, ..small(Rules::pamphlet()) };
    assert_eq!(run(&c).unwrap_err(), DurabilityError::Bad("--days must be at least 1"));
    let c = DurabilityConfig { fill_days: 0.0, ..small(Rules::pamphlet()) };
    assert!(run(&c).is_err());
}

/// With `store_once`, an insert is written to one store area at most; without it, to every
/// sink on its path (several).
#[test]
fn store_once_writes_each_block_once() {
    let once = run(&small(Rules { store_once: true, heal: false, ..Rules::pamphlet() })).unwrap();
    let every = run(&small(Rules { heal: false, ..Rules::pamphlet() })).unwrap();
    assert!(once.store_writes_per_block <= 1.0, "{}", once.store_writes_per_block);
    assert!(every.store_writes_per_block > 2.0, "{}", every.store_writes_per_block);
}

/// Keepalive: the pinned documents (a tenth, kept alive daily by their publishers) survive
/// better than the same tenth of the same world without keepalive, the probes and inserts
/// are counted, and the unpinned ones are no better off for it.
#[test]
fn pinned_documents_kept_alive_survive_better() {
    let with = |keepalive_days| {
        let c = small(Rules { keepalive_days, keepalive_share: 0.1, ..Rules::pamphlet() });
        run(&DurabilityConfig { fill_days: 100.0, ..c }).unwrap()
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
