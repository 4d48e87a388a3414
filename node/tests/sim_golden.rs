//! Golden reports: the full JSON report of a few small seeded simulator runs is pinned
//! under `tests/golden/`, so a change that alters what the simulator measures (routing,
//! swapping, the workload, an attacker) fails here and must say so by re-blessing.
//!
//! Re-bless after an intended change with `PAMPHLET_BLESS=1 cargo test -p pamphlet-node
//! --features sim --test sim_golden`, and say in the commit message why the figures moved.
//! A refactor must leave every file byte-identical.

// The simulator's virtual clock needs a base instant; only differences from it matter.
#![allow(clippy::disallowed_methods)]

use std::path::PathBuf;
use std::time::Instant;

use pamphlet_node::sim::{run, Attack, Placement, SimConfig, Strategy, SwapMode, TopologyKind};

/// A small network every case starts from: fast in a debug build, big enough to route.
fn base() -> SimConfig {
    SimConfig { nodes: 200, degree: 8, requests: 60, docs: 15, seed: 11, ..SimConfig::default() }
}

fn attack(s: &str) -> Option<Attack> {
    Some(s.parse().expect("attack"))
}

/// Every pinned case: a name (the file) and its configuration.
fn cases() -> Vec<(&'static str, SimConfig)> {
    let ideal = SimConfig { placement: Placement::Ideal, ..base() };
    let settled = SimConfig { swap_rounds: 5, swap_age: 300, ..base() };
    let mut cases = vec![
        ("pamphlet-random-locations", base()),
        ("blackhole-defended", SimConfig { attack: attack("blackhole:0.2"), absent_requests: 10, ..ideal.clone() }),
        (
            "blackhole-undefended",
            SimConfig { attack: attack("blackhole:0.2"), absent_requests: 10, defences: false, ..ideal.clone() },
        ),
        ("forger", SimConfig { attack: attack("forger:0.1"), ..ideal.clone() }),
        ("eclipse", SimConfig { attack: attack("eclipse:0.02"), docs: 1, ..ideal.clone() }),
        (
            "pitchblack-recovery",
            SimConfig {
                attack: attack("pitchblack:0.02"),
                swap_rounds: 8,
                swap_age: 300,
                recovery_rounds: 4,
                reset_probability: 0.01,
                ..base()
            },
        ),
        ("swap-messages", SimConfig { swap_rounds: 20, trace_every: 5, ..base() }),
        ("swap-direct", SimConfig { swap_rounds: 20, trace_every: 5, swap_mode: SwapMode::Direct, ..base() }),
        ("observe", SimConfig { observe: true, ..ideal.clone() }),
        ("cache-flush", SimConfig { store_blocks: Some(4), junk_inserts: 40, ..ideal }),
        ("churn-random-graph", SimConfig { churn: 0.3, topology: TopologyKind::Random, ..base() }),
    ];
    for s in Strategy::ALL {
        cases.push((strategy_case(s), SimConfig { strategy: s, ..settled.clone() }));
    }
    cases
}

fn strategy_case(s: Strategy) -> &'static str {
    match s {
        Strategy::Pamphlet => "strategy-pamphlet",
        Strategy::Hyphanet => "strategy-hyphanet",
        Strategy::Greedy => "strategy-greedy",
        Strategy::NextBestOnce => "strategy-nbo",
        Strategy::RandomWalk => "strategy-randomwalk",
        Strategy::Flooding => "strategy-flooding",
        Strategy::Chord => "strategy-chord",
        Strategy::Freenet2000 => "strategy-freenet2000",
        _ => "strategy-unknown",
    }
}

#[test]
fn reports_match_the_pinned_ones() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let bless = std::env::var_os("PAMPHLET_BLESS").is_some();
    let mut changed = Vec::new();
    for (name, config) in cases() {
        let report = run(&config, Instant::now()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let json = serde_json::to_string_pretty(&report).expect("a report serialises") + "\n";
        let path = dir.join(format!("{name}.json"));
        if bless {
            std::fs::write(&path, &json).expect("write golden file");
            continue;
        }
        let pinned = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{name}: no pinned report at {} ({e}); bless it", path.display()));
        if let Some((was, now)) = pinned.lines().zip(json.lines()).find(|(a, b)| a != b) {
            changed.push(format!("{name}: pinned `{}`, now `{}`", was.trim(), now.trim()));
        } else if pinned != json {
            changed.push(format!("{name}: the report has a different number of lines"));
        }
    }
    assert!(
        changed.is_empty(),
        "simulator reports changed:\n{}\nif intended, re-bless with PAMPHLET_BLESS=1 and say why",
        changed.join("\n")
    );
}
