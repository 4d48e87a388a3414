//! `pamphlet sim`: runs the deterministic simulator (pamphlet-node's `sim` module) and
//! prints its report as a table or JSON. The wall-clock figures (simulated requests per
//! second, peak memory) are measured here, outside the simulator, which never reads a
//! clock.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

mod durability;
mod opennet;
mod plot;
use pamphlet_node::sim::{self, Attack, Placement, SimConfig, Topology, TopologyKind};

/// Arguments of `pamphlet sim`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Number of nodes.
    #[arg(long, default_value_t = 1000)]
    nodes: usize,
    /// Mean degree (links per node).
    #[arg(long, default_value_t = 12)]
    degree: usize,
    /// Fetches to measure.
    #[arg(long, default_value_t = 200)]
    requests: usize,
    /// Documents inserted first (default: requests / 4, at least 1).
    #[arg(long)]
    docs: Option<usize>,
    /// Seed: the same seed gives the same result.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Routing strategy: pamphlet, hyphanet, greedy, nbo, randomwalk, flooding, chord or freenet2000.
    #[arg(long, default_value = "pamphlet")]
    strategy: sim::Strategy,
    /// Graph: small-world (darknet: ring + 1/d links), random (opennet-like), or opennet
    /// (every node knows only the seeds; announcement and path folding build the graph:
    /// docs/opennet.md).
    #[arg(long, default_value = "small-world", value_parser = ["small-world", "random", "opennet"])]
    topology: String,
    /// Read the graph from an edge-list file (`a b` per line) instead.
    #[arg(long, value_name = "FILE")]
    edges: Option<PathBuf>,
    /// Starting locations: random (a new darknet) or ideal (node i at i/n).
    #[arg(long, default_value = "random", value_parser = ["random", "ideal"])]
    locations: String,
    /// Rounds of location swapping before measuring.
    #[arg(long, default_value_t = 0)]
    swap_rounds: usize,
    /// How swap rounds run: messages (the real protocol between nodes) or direct (the
    /// same chain run centrally, 30 to 80 times faster; no Pitch Black, no resets).
    #[arg(long, default_value = "messages")]
    swap_mode: sim::SwapMode,
    /// Swap age every node starts with: 0 is a new darknet, which swaps hot at first and
    /// cools over its first 300 swaps (annealing); 300 or more: no annealing.
    #[arg(long, default_value_t = 0)]
    swap_age: u32,
    /// Adversaries as NAME:FRACTION, e.g. blackhole:0.2 or forger:0.1.
    #[arg(long)]
    attack: Option<Attack>,
    /// Probability per fetch that a node leaves and one that left returns.
    #[arg(long, default_value_t = 0.0)]
    churn: f64,
    /// Store and cache size per node, in 32 KiB blocks (forces eviction when small).
    #[arg(long)]
    store_blocks: Option<u64>,
    /// Hops-to-live of requests.
    #[arg(long, default_value_t = 18)]
    htl: u8,
    /// Turn pamphlet's defences off (black-hole caps and insert check, Pitch Black swap
    /// checks), to measure what they buy.
    #[arg(long)]
    no_defence: bool,
    /// Turn one defence off, the others staying on (repeatable): claims, silence,
    /// zero-htl, store-budget, not-found-cap or close-liars.
    #[arg(long, value_name = "DEFENCE")]
    without: Vec<pamphlet_node::sim::config::Defence>,
    /// Extra fetches of never-inserted keys, to measure what a miss costs.
    #[arg(long, default_value_t = 0)]
    absent: usize,
    /// After measuring, stop the attack, run this many more swap rounds and measure again.
    #[arg(long, default_value_t = 0)]
    recovery_rounds: usize,
    /// Probability per swap attempt that a node takes a fresh random location instead.
    #[arg(long, default_value_t = 0.0)]
    reset_probability: f64,
    /// Instead of one run, run the chart series (hops histogram, success vs size, success
    /// vs black-hole fraction) from these settings and write SVG files into DIR.
    #[arg(long, value_name = "DIR")]
    plot: Option<PathBuf>,
    /// Record each fetch and measure two passive attacks on it (HTL originator inference,
    /// request-id traceback). Small runs only: it keeps every message of a fetch.
    #[arg(long)]
    observe: bool,
    /// Cache flushing: insert this many junk documents after the real ones (use with
    /// --store-blocks to make stores small).
    #[arg(long, default_value_t = 0)]
    junk: usize,
    /// Every K swap rounds, record the mean link length and swap counters so far (printed
    /// after the table; `swap_trace` in --json): how fast swapping converges.
    #[arg(long, value_name = "K", default_value_t = 0)]
    trace_every: usize,
    /// Seed nodes (--topology opennet).
    #[arg(long, default_value_t = 5, help_heading = "Opennet")]
    seeds: usize,
    /// Seeds each newcomer connects to (--topology opennet).
    #[arg(long, default_value_t = 2, help_heading = "Opennet")]
    seeds_per_node: usize,
    /// Fetch rounds, one fetch per node each (--topology opennet).
    #[arg(long, default_value_t = 50, help_heading = "Opennet")]
    rounds: usize,
    /// Peer floor of every node (--topology opennet; default: the node's).
    #[arg(long, help_heading = "Opennet")]
    floor: Option<usize>,
    /// Peer ceiling of every node (--topology opennet; default: the node's).
    #[arg(long, help_heading = "Opennet")]
    ceiling: Option<usize>,
    /// Turn the opennet limits off (grace period, replacement rate, announcement rate,
    /// seed cap), to measure what they buy.
    #[arg(long, help_heading = "Opennet")]
    no_limits: bool,
    /// Turn Hyphanet's link-length classes off (--topology opennet): one pool of strangers,
    /// least useful first, and announcing only below the floor; to measure what they buy.
    #[arg(long, help_heading = "Opennet")]
    no_link_classes: bool,
    /// Fraction of the joining nodes that are Sybils surrounding one key (--topology opennet).
    #[arg(long, default_value_t = 0.0, help_heading = "Opennet")]
    sybil: f64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
    /// Run the long-run durability model for this many days instead (docs/durability.md):
    /// a population with Hyphanet's uptimes, daily inserts and fetches, survival by age.
    /// `--nodes`, `--degree`, `--seed`, `--swap-rounds` (before day 0) and
    /// `--store-blocks` (store area per node, default 256) apply.
    #[arg(long, help_heading = "Durability model")]
    days: Option<u32>,
    /// Cache area per node, in blocks (default: a quarter of --store-blocks, the node's
    /// split of its disk; 256 before session 12).
    #[arg(long, help_heading = "Durability model")]
    cache_blocks: Option<u32>,
    /// Days after which the documents inserted equal the network's total store area.
    #[arg(long, default_value_t = 120.0, help_heading = "Durability model")]
    fill_days: f64,
    /// Fraction of the nodes that leave for good each week (replaced by newcomers).
    #[arg(long, default_value_t = 0.05, help_heading = "Durability model")]
    weekly_departures: f64,
    /// Document fetches per day.
    #[arg(long, default_value_t = 500.0, help_heading = "Durability model")]
    fetches_per_day: f64,
    /// Fraction of documents never fetched after their insert.
    #[arg(long, default_value_t = 0.5, help_heading = "Durability model")]
    never_fetched: f64,
    /// Zipf exponent of the other documents' popularity.
    #[arg(long, default_value_t = 1.0, help_heading = "Durability model")]
    zipf: f64,
    /// Direct swap rounds each day among the nodes online.
    #[arg(long, default_value_t = 4, help_heading = "Durability model")]
    daily_swap_rounds: usize,
    /// Storage rules: pamphlet (the node's: top blocks wider, offers on swap and on return),
    /// before (pamphlet without those, the model's defaults until issue 20's second pass) or hyphanet
    /// (the reference).
    #[arg(long, default_value = "pamphlet", value_parser = ["pamphlet", "before", "hyphanet"], help_heading = "Durability model")]
    rules: String,
    /// Turn healing on fetch off.
    #[arg(long, help_heading = "Durability model")]
    no_heal: bool,
    /// Store an insert at every node on its path with fewer than this many online peers
    /// closer to the key (1: sinks only).
    #[arg(long, help_heading = "Durability model")]
    sinks: Option<usize>,
    /// Which block a full store area drops: lru, random (Hyphanet) or near:W (of the W
    /// least recently used, the one farthest from the node's location).
    #[arg(long, value_parser = durability::parse_eviction, help_heading = "Durability model")]
    store_eviction: Option<pamphlet_node::sim::durability::Eviction>,
    /// Only the sink closest to the key among those an insert entered stores it (an ideal:
    /// what fewer store writes per insert buy).
    #[arg(long, help_heading = "Durability model")]
    store_once: bool,
    /// A node back online offers its stored blocks to the peers closest to their keys (on
    /// in the pamphlet rules, as in the node).
    #[arg(long, help_heading = "Durability model")]
    offer_on_return: bool,
    /// No offers on return (the pamphlet rules have them, as the node does).
    #[arg(long, conflicts_with = "offer_on_return", help_heading = "Durability model")]
    no_offer_on_return: bool,
    /// The rule of offers: closer (the node's: only to a peer closer to the key, kept as a
    /// sink; the pamphlet rules' default) or backup (to the closest peer, kept if it would be
    /// a sink with the offering node away; the default of before and hyphanet).
    #[arg(long, value_parser = ["closer", "backup"], help_heading = "Durability model")]
    offer_rule: Option<String>,
    /// With the closer rule: a node's memory of the peer it last offered each block to
    /// survives its returns (default: lost, as a restart loses it).
    #[arg(long, help_heading = "Durability model")]
    offer_memory_kept: bool,
    /// A node moved by a swap hands its stored blocks to the peers now closest to their keys.
    #[arg(long, help_heading = "Durability model")]
    offer_on_swap: bool,
    /// A full store area hands the block it drops to its online peer closest to the
    /// block's key that has room, instead of losing it.
    #[arg(long, help_heading = "Durability model")]
    evict_to_peer: bool,
    /// Blocks FEC cannot rebuild (top blocks) are stored by every node on the insert's path
    /// with fewer than this many online peers closer to the key (0: as other blocks; default:
    /// the rules', 4 for pamphlet as in the node, 0 for before and hyphanet).
    #[arg(long, help_heading = "Durability model")]
    top_sinks: Option<usize>,
    /// At most this many sinks on an insert's path store it (the first ones; 0: all).
    #[arg(long, default_value_t = 0, help_heading = "Durability model")]
    max_store_copies: usize,
    /// Offers hand a block over only while the peer's store area has room; default: the
    /// rules' own (on for `pamphlet` since session 12, as the node; `--offer-into-room
    /// false` for offers that push blocks out, the node's rule before).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", help_heading = "Durability model")]
    offer_into_room: Option<bool>,
    /// Where an offered block enters the peer's store area: 0 as the most recently used (the
    /// node), 1 at the cold end (dropped first unless read), between: that share of the
    /// area's blocks stay ahead of it.
    #[arg(long, default_value_t = 0.0, help_heading = "Durability model")]
    offer_depth: f64,
    /// Offers on return hand over only top blocks (blocks FEC cannot rebuild).
    #[arg(long, help_heading = "Durability model")]
    offer_top_only_on_return: bool,
    /// Hops of the model's fetches and probes (0: 18, as inserts): a diagnosis of the
    /// blocks a fetch does not reach.
    #[arg(long, default_value_t = 0, help_heading = "Durability model")]
    fetch_htl: u32,
    /// After a fetch finds nothing, ask once more through another first hop: `key` (every
    /// node whose hops ran out, originator and relays, skips the peers it sent the failed
    /// attempt to: the node's rule), `next` (only the originator skips its first hops),
    /// `avoid` (the route never enters them; an ideal) or `off`; default: the rules' own
    /// (`key` after the quench for `pamphlet`, as the node; `off` for the others).
    #[arg(long, value_parser = durability::parse_second_attempt, help_heading = "Durability model")]
    second_attempt: Option<pamphlet_node::sim::durability::SecondAttempt>,
    /// The second attempt waits until the relays' quench of the key has ended (`true`, as
    /// the node; `--second-attempt-waits false`: it leaves at once and relays on the failed
    /// path answer it "not found"); default: the rules' own (waits for `pamphlet`).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", help_heading = "Durability model")]
    second_attempt_waits: Option<bool>,
    /// Fetches route as the node does after a "not found": it costs a node at most this
    /// many hops and the node tries its next peer (default: the rules' own, the node's 4
    /// for `pamphlet`, 0 for `before` and `hyphanet`; 0: all its hops, the model's route
    /// until session 9).
    #[arg(long, help_heading = "Durability model")]
    fetch_cap: Option<u32>,
    /// Offers go only to peers whose uptime over the last week is at least this, kept if
    /// no such peer of theirs is closer to the key (0: any peer, as the node).
    #[arg(long, default_value_t = 0.0, help_heading = "Durability model")]
    offer_uptime: f64,
    /// A returning node online less than this share of the time offers the blocks it is
    /// still the closest to to its closest peer online at least this share, as a backup
    /// (default: the rules' own, the node's 0.5 for `pamphlet`; 0: off).
    #[arg(long, help_heading = "Durability model")]
    steady_backup: Option<f64>,
    /// Which routes rank a neighbour by its own or its closest online neighbour's location
    /// (friend-of-a-friend): `all` (`--foaf` alone; the node's), `fetches` (fetches and
    /// probes; inserts by own locations) or `off`; default: the rules' own (`all` for
    /// `pamphlet`, as the node; `off` for the others).
    #[arg(long, num_args = 0..=1, default_missing_value = "all", value_parser = durability::parse_foaf, help_heading = "Durability model")]
    foaf: Option<pamphlet_node::sim::durability::Foaf>,
    /// Offers send keys first and only the blocks the peer lacks and would keep (the
    /// offers' cost; what is kept does not change); default: the rules' own (on for
    /// `pamphlet`, as the node; `--key-first-offers false` for the blocks themselves).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", help_heading = "Durability model")]
    key_first_offers: Option<bool>,
    /// Store an insert only at nodes whose uptime over the last week is at least this and
    /// that no online peer of such uptime beats to the key (0: off).
    #[arg(long, default_value_t = 0.0, help_heading = "Durability model")]
    store_uptime: f64,
    /// Every N days each pinned document's publisher runs keepalive on it (probe every
    /// block, insert again the missing ones: `pamphlet pin`); 0: never.
    #[arg(long, default_value_t = 0, help_heading = "Durability model")]
    keepalive_days: u32,
    /// The share of documents their publishers pin (with --keepalive-days).
    #[arg(long, default_value_t = 1.0, help_heading = "Durability model")]
    keepalive_share: f64,
    /// FEC check blocks per data block (default: the rules').
    #[arg(long, help_heading = "Durability model")]
    redundancy: Option<f64>,
    /// Run the rows of docs/durability.md (reference, defaults, each mechanism) and print
    /// them as a Markdown table; with --plot DIR also draw durability-survival.svg.
    #[arg(long, help_heading = "Durability model")]
    table: bool,
    /// Print the most documents any placement can keep retrievable at once, by fill, when
    /// only online nodes' stores answer (docs/durability.md, "The bound"), and exit.
    #[arg(long, help_heading = "Durability model")]
    pub(crate) bound: bool,
    /// With --table: only the first two rows (the Hyphanet-like reference and pamphlet's
    /// defaults), for large runs.
    #[arg(long, requires = "table", help_heading = "Durability model")]
    headline: bool,
    /// Survival against fill: one run per --fill-days value listed here (comma-separated)
    /// and seed (--curve-seeds from --seed on), two at a time on two cores, printed as a
    /// Markdown table with the bound; with --plot DIR also draw durability-fill.svg.
    #[arg(long, value_delimiter = ',', num_args = 1.., conflicts_with = "table", help_heading = "Durability model")]
    fill_curve: Vec<f64>,
    /// With --fill-curve: seeds per fill.
    #[arg(long, default_value_t = 3, help_heading = "Durability model")]
    curve_seeds: u64,
}

impl Args {
    fn config(&self) -> Result<SimConfig> {
        let topology = match &self.edges {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the edge list {}", path.display()))?;
                TopologyKind::Given(
                    Topology::from_edge_list(&text).with_context(|| format!("bad edge list {}", path.display()))?,
                )
            }
            None if self.topology == "random" => TopologyKind::Random,
            None => TopologyKind::SmallWorld,
        };
        Ok(SimConfig {
            nodes: self.nodes,
            degree: self.degree,
            topology,
            placement: if self.locations == "ideal" { Placement::Ideal } else { Placement::Random },
            requests: self.requests,
            docs: self.docs.unwrap_or(self.requests / 4).max(1),
            seed: self.seed,
            swap_rounds: self.swap_rounds,
            attack: self.attack,
            churn: self.churn,
            store_blocks: self.store_blocks,
            max_htl: self.htl,
            defences: !self.no_defence,
            without: self.without.clone(),
            absent_requests: self.absent,
            recovery_rounds: self.recovery_rounds,
            reset_probability: self.reset_probability,
            strategy: self.strategy,
            observe: self.observe,
            junk_inserts: self.junk,
            trace_every: self.trace_every,
            swap_mode: self.swap_mode,
            swap_age: self.swap_age,
        })
    }
}

/// Peak resident memory of this process, from /proc (Linux); None elsewhere.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Progress on standard error with `template`; hidden when it is not a terminal or the
/// output is JSON.
fn progress(json: bool, template: &str) -> ProgressBar {
    if json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()).progress_chars("=> "),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

/// Runs `pamphlet sim`.
pub(crate) fn run(args: &Args) -> Result<()> {
    if args.bound {
        return durability::bound(args);
    }
    if let Some(days) = args.days {
        return durability::run(args, days);
    }
    if args.topology == "opennet" {
        return opennet::run(args);
    }
    let config = args.config()?;
    if let Some(dir) = &args.plot {
        let bar = progress(args.json, "{msg} [{bar:30}] run {pos}/{len}, {eta} left ({elapsed})");
        let written = plot::write_all(&config, dir, &bar);
        bar.finish_and_clear();
        let written = written?;
        if args.json {
            println!("{}", serde_json::json!({ "written": written }));
        } else {
            for file in written {
                println!("wrote {file}");
            }
        }
        return Ok(());
    }
    let started = Instant::now();
    // The simulator reports nothing until it ends: a spinner says it is working.
    let bar = progress(args.json, "{spinner} simulating {msg} ({elapsed})");
    bar.set_message(format!("{} nodes, {} fetches", config.nodes, config.requests));
    let report = sim::run(&config, started).with_context(|| format!("simulation failed (seed {})", config.seed));
    bar.finish_and_clear();
    let report = report?;
    let wall = started.elapsed().as_secs_f64();
    let rps = report.requests as f64 / wall.max(1e-9);
    let rss = peak_rss_bytes();
    if args.json {
        let mut v = serde_json::to_value(&report)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("wall_seconds".into(), wall.into());
            o.insert("requests_per_second".into(), rps.into());
            o.insert("peak_rss_bytes".into(), rss.into());
            o.insert("bytes_per_node".into(), rss.map(|r| r as f64 / report.nodes.max(1) as f64).into());
            o.insert("attack".into(), args.attack.map(|a| format!("{}:{}", a.kind, a.fraction)).into());
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let rows: Vec<(&str, String)> = vec![
        ("strategy", report.strategy.to_string()),
        ("seed", report.seed.to_string()),
        ("nodes / edges / mean degree", format!("{} / {} / {:.1}", report.nodes, report.edges, report.mean_degree)),
        ("attackers", report.attackers.to_string()),
        ("inserts ok", format!("{} / {}", report.inserts_ok, report.inserts)),
        ("success rate", format!("{:.3} ({} / {})", report.success_rate, report.successes, report.requests)),
        ("invalid blocks accepted", report.invalid_accepted.to_string()),
        ("hops median / p95 / max", format!("{} / {} / {}", report.hops_median, report.hops_p95, report.hops_max)),
        (
            "to the node closest to the key: reached, hops median / p95",
            match (report.closest_reached, report.closest_hops_median, report.closest_hops_p95) {
                (Some(r), Some(m), Some(p)) => format!("{r:.3}, {m} / {p}"),
                (Some(r), _, _) => format!("{r:.3}"),
                _ => "n/a".into(),
            },
        ),
        (
            "absent keys: closest reached, hops median / p95",
            match (report.absent_closest_reached, report.absent_closest_hops_median, report.absent_closest_hops_p95) {
                (Some(r), Some(m), Some(p)) => format!("{r:.3}, {m} / {p}"),
                (Some(r), _, _) => format!("{r:.3}"),
                _ => "n/a".into(),
            },
        ),
        ("messages per request", format!("{:.1}", report.messages_per_request)),
        ("busiest node load / mean", format!("{:.2} / {:.3}", report.busiest_node_load, report.mean_node_load)),
        ("swaps done / attempted", format!("{} / {}", report.swaps_done, report.swaps_attempted)),
        (
            "swaps kept / refused / implausible / timed out",
            format!(
                "{} / {} / {} / {}",
                report.swaps_kept, report.swaps_refused, report.swaps_implausible, report.swaps_timed_out
            ),
        ),
        ("mean link length", format!("{:.4}", report.mean_link_length)),
        ("location KS vs uniform", format!("{:.3}", report.location_ks)),
        (
            "after recovery: success / KS",
            match (report.recovery_success_rate, report.recovery_location_ks) {
                (Some(s), Some(k)) => format!("{s:.3} / {k:.3}"),
                _ => "not run".into(),
            },
        ),
        (
            "max-HTL guess precision",
            report.htl_guess_precision.map_or("not observed".into(), |p| {
                format!("{p:.3} ({} guesses; chance {:.3})", report.htl_guesses, report.htl_guess_chance.unwrap_or(0.0))
            }),
        ),
        ("ids seen on two links", report.ids_on_two_links.to_string()),
        ("messages per miss", format!("{:.1}", report.messages_per_absent_request)),
        ("forged blocks rejected", report.forged_rejected.to_string()),
        ("requests per second (wall)", format!("{rps:.0}")),
        ("peak memory", rss.map_or("n/a".into(), |r| format!("{:.1} MiB", r as f64 / 1048576.0))),
    ];
    for (k, v) in rows {
        println!("{k:<30} {v}");
    }
    if !report.swap_trace.is_empty() {
        println!(
            "\n{:>6} {:>12} {:>10} {:>10} {:>10} {:>10} {:>10}",
            "round", "link length", "attempted", "done", "kept", "refused", "timed out"
        );
        for p in &report.swap_trace {
            let c = p.swaps;
            println!(
                "{:>6} {:>12.4} {:>10} {:>10} {:>10} {:>10} {:>10}",
                p.round, p.mean_link_length, c.attempted, c.done, c.kept, c.refused, c.timed_out
            );
        }
    }
    if !report.request_rounds.is_empty() {
        println!("\n{:>18} {:>8} {:>7}", "requests per node", "success", "hops50");
        for r in &report.request_rounds {
            println!("{:>18.2} {:>8.3} {:>7}", r.requests_per_node, r.success_rate, r.hops_median);
        }
        let routable = report.request_rounds.iter().rposition(|r| r.success_rate < 0.99 || r.hops_median > 6.0);
        let from = match routable {
            None => "round 1".to_string(),
            Some(i) if i + 1 < report.request_rounds.len() => format!("round {}", i + 2),
            Some(_) => "never".to_string(),
        };
        println!("routable (success >= 0.99, median <= 6 hops) from {from}");
    }
    Ok(())
}
