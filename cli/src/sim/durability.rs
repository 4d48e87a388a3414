//! `pamphlet sim --days D`: the long-run durability model (pamphlet-node's
//! `sim::durability`, docs/durability.md). One run prints its survival table (or JSON);
//! `--table` runs the rows docs/durability.md compares (the Hyphanet-like reference,
//! pamphlet's defaults, each mechanism on and off) and prints them as a Markdown table;
//! with `--plot DIR` it also draws `durability-survival.svg` there.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use pamphlet_node::sim::durability::{
    self, DurabilityConfig, DurabilityReport, Eviction, Foaf, Rules, SecondAttempt, STORE_PER_CACHE,
};

use super::plot::{self, Axes, Series};
use super::Args;

/// Blocks of the least recently used end a near-own store looks at (see docs/durability.md).
const NEAR_WINDOW: usize = 32;

/// Parses `lru`, `random` or `near:W`.
pub(crate) fn parse_eviction(s: &str) -> Result<Eviction, String> {
    match s {
        "lru" => Ok(Eviction::Lru),
        "random" => Ok(Eviction::Random),
        _ => match s.strip_prefix("near:").map(str::parse::<usize>) {
            Some(Ok(w)) if w >= 1 => Ok(Eviction::NearOwn(w)),
            _ => Err(format!("unknown store eviction {s:?}: lru, random or near:W (W >= 1)")),
        },
    }
}

/// Parses `off`, `all` or `fetches` (`--foaf`).
pub(crate) fn parse_foaf(s: &str) -> Result<Foaf, String> {
    match s {
        "off" => Ok(Foaf::Off),
        "all" => Ok(Foaf::All),
        "fetches" => Ok(Foaf::Fetches),
        _ => Err(format!("expected off, all or fetches, not {s:?}")),
    }
}

/// Parses `key`, `next`, `avoid` or `off` (`--second-attempt`).
pub(crate) fn parse_second_attempt(s: &str) -> Result<SecondAttempt, String> {
    match s {
        "key" => Ok(SecondAttempt::Key),
        "next" => Ok(SecondAttempt::Next),
        "avoid" => Ok(SecondAttempt::Avoid),
        "off" => Ok(SecondAttempt::Off),
        _ => Err(format!("unknown second attempt {s:?}: key, next, avoid or off")),
    }
}

fn config(args: &Args, days: u32) -> Result<DurabilityConfig> {
    let mut rules = match args.rules.as_str() {
        "hyphanet" => Rules::hyphanet(),
        "before" => Rules::before(),
        _ => Rules::pamphlet(),
    };
    if args.no_heal {
        rules.heal = false;
    }
    rules.sink_rank = args.sinks.unwrap_or(rules.sink_rank);
    if let Some(e) = args.store_eviction {
        rules.store_eviction = e;
    }
    rules.offer_on_return = (rules.offer_on_return || args.offer_on_return) && !args.no_offer_on_return;
    if let Some(rule) = &args.offer_rule {
        rules.offer_to_closer = rule == "closer";
    }
    rules.offer_memory_kept |= args.offer_memory_kept;
    rules.store_once |= args.store_once;
    rules.offer_on_swap |= args.offer_on_swap;
    rules.offer_into_room = args.offer_into_room.unwrap_or(rules.offer_into_room);
    if args.offer_depth != 0.0 {
        rules.offer_depth = args.offer_depth;
    }
    rules.offer_top_only_on_return |= args.offer_top_only_on_return;
    rules.fetch_htl = args.fetch_htl;
    rules.second_attempt = args.second_attempt.unwrap_or(rules.second_attempt);
    rules.second_attempt_waits = args.second_attempt_waits.unwrap_or(rules.second_attempt_waits);
    rules.fetch_cap = args.fetch_cap.unwrap_or(rules.fetch_cap);
    rules.offer_uptime = args.offer_uptime;
    rules.steady_backup = args.steady_backup.unwrap_or(rules.steady_backup);
    rules.foaf = args.foaf.unwrap_or(rules.foaf);
    rules.key_first_offers = args.key_first_offers.unwrap_or(rules.key_first_offers);
    rules.evict_to_peer |= args.evict_to_peer;
    rules.unprotected_sink_rank = args.top_sinks.unwrap_or(rules.unprotected_sink_rank);
    if args.max_store_copies > 0 {
        rules.max_store_copies = args.max_store_copies;
    }
    if args.store_uptime > 0.0 {
        rules.store_uptime = args.store_uptime;
    }
    if let Some(r) = args.redundancy {
        rules.redundancy = r;
    }
    if args.keepalive_days > 0 {
        rules.keepalive_days = args.keepalive_days;
        rules.keepalive_share = args.keepalive_share;
        rules.name = format!(
            "{}, keepalive every {} days of {:.0}% of documents",
            rules.name,
            args.keepalive_days,
            args.keepalive_share * 100.0
        );
    }
    let store = u32::try_from(args.store_blocks.unwrap_or(256)).context("--store-blocks is too large")?;
    Ok(DurabilityConfig {
        nodes: args.nodes,
        degree: args.degree,
        days,
        seed: args.seed,
        store_blocks: store,
        cache_blocks: args.cache_blocks.unwrap_or(store.div_ceil(STORE_PER_CACHE)),
        fill_days: args.fill_days,
        weekly_departures: args.weekly_departures,
        fetches_per_day: args.fetches_per_day,
        never_fetched: args.never_fetched,
        zipf: args.zipf,
        swap_rounds: args.swap_rounds,
        daily_swap_rounds: args.daily_swap_rounds,
        max_document_bytes: DurabilityConfig::default().max_document_bytes,
        rules,
    })
}

fn timed(config: &DurabilityConfig) -> Result<(DurabilityReport, f64)> {
    let started = Instant::now();
    let r = durability::run(config).with_context(|| format!("durability model (seed {})", config.seed))?;
    Ok((r, started.elapsed().as_secs_f64()))
}

fn pct(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{:.1}%", v * 100.0))
}

/// Runs `pamphlet sim --days D …`.
pub(crate) fn run(args: &Args, days: u32) -> Result<()> {
    let base = config(args, days)?;
    if args.table {
        return table(&base, args.plot.as_deref(), args.headline);
    }
    if !args.fill_curve.is_empty() {
        return fill_curve(&base, &args.fill_curve, args.curve_seeds, args.plot.as_deref());
    }
    let (r, wall) = timed(&base)?;
    if args.json {
        let mut v = serde_json::to_value(&r)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("wall_seconds".into(), wall.into());
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("{} (seed {}), {} nodes, {} days, {wall:.1} s wall", r.rules, r.seed, r.nodes, r.days);
    println!(
        "online {:.0} on average (always-on / regular / occasional: {:.2} / {:.2} / {:.2}), {} departures",
        r.mean_online, r.online_share[0], r.online_share[1], r.online_share[2], r.departures
    );
    println!(
        "{} documents, {} blocks ({:.1} store writes each); inserted {:.2} of the total store; store areas {:.0}% full, {} evictions",
        r.documents,
        r.blocks,
        r.store_writes_per_block,
        r.final_fill,
        r.store_use * 100.0,
        r.store_evictions
    );
    println!(
        "bound: at this fill, at most {:.1}% of documents can be retrievable at once (online share {:.3}; docs/durability.md)",
        r.bound_documents * 100.0,
        r.mean_online / r.nodes as f64
    );
    println!(
        "workload fetches {} / {} complete; healed {} blocks; offered {} blocks; passed on {} evicted blocks; kept alive {} blocks",
        r.fetches_ok, r.fetches, r.healed_blocks, r.offered_blocks, r.passed_on_blocks, r.kept_alive_blocks
    );
    if r.second_attempts > 0 {
        println!("second attempts {} for blocks not found, {} found", r.second_attempts, r.second_attempts_found);
    }
    println!(
        "\n{:>5} {:>10} {:>8}  by popularity (documents)                  by fill at insert",
        "age", "documents", "blocks"
    );
    for p in &r.survival {
        let by = |v: &[(String, durability::Tally)]| {
            v.iter()
                .filter(|(_, t)| t.documents > 0)
                .map(|(n, t)| format!("{n} {:.0}%", 100.0 * t.documents_ok as f64 / t.documents as f64))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let pinned = match p.pinned.documents {
            0 => String::new(),
            n => format!("  |  pinned {:.0}%", 100.0 * p.pinned.documents_ok as f64 / n as f64),
        };
        println!(
            "{:>5} {:>10} {:>8}  {}  |  {}{pinned}",
            p.age_days,
            pct(p.documents),
            pct(p.blocks),
            by(&p.by_popularity),
            by(&p.by_fill)
        );
    }
    for l in r.loss_causes.iter().filter(|l| l.documents_lost > 0) {
        let (t, d) = (l.top, l.data);
        let sum = |f: fn(&durability::BlockCauses) -> u64| f(&t) + f(&d);
        let m = sum(|c| c.missing).max(1) as f64;
        let share = |f: fn(&durability::BlockCauses) -> u64| format!("{:.0}%", 100.0 * sum(f) as f64 / m);
        println!(
            "lost at day {}: {} documents ({} without their top block); their missing blocks: gone {} (offers {}, inserts {}), \
             offline {} (only on occasional nodes {}), online but not reached {} (at a sink {}, holder moved {})",
            l.age_days,
            l.documents_lost,
            l.top_missing,
            share(|c| c.gone_insert + c.gone_fetch + c.gone_heal + c.gone_offer + c.gone_keepalive + c.gone_departure),
            share(|c| c.gone_offer),
            share(|c| c.gone_insert),
            share(|c| c.offline_always_on + c.offline_regular + c.offline_occasional),
            share(|c| c.offline_occasional),
            share(|c| c.unreached_at_sink + c.unreached_holder_moved + c.unreached_others_closer + c.unreached_cache_only),
            share(|c| c.unreached_at_sink),
            share(|c| c.unreached_holder_moved),
        );
    }
    for (what, c) in [
        ("inserts", r.insert_cost_per_day),
        ("fetches", r.fetch_cost_per_day),
        ("healing", r.heal_cost_per_day),
        ("offers", r.offer_cost_per_day),
        ("keepalive", r.keepalive_cost_per_day),
    ] {
        println!("{what:<9} {:>12} messages/day {:>10.2} GiB/day", c.messages, c.bytes as f64 / (1u64 << 30) as f64);
    }
    Ok(())
}

/// The world a chart was measured in, for the line under its title.
fn world(base: &DurabilityConfig) -> String {
    format!(
        "{} nodes, degree {}, {} days, store {} + cache {} blocks/node, {}% leave/week",
        base.nodes,
        base.degree,
        base.days,
        base.store_blocks,
        base.cache_blocks,
        base.weekly_departures * 100.0
    )
}

/// Runs every config, as many at once as there are cores (each run is single-threaded
/// and deterministic, so the order they finish in changes nothing), in the configs' order.
fn run_all(configs: &[DurabilityConfig]) -> Result<Vec<DurabilityReport>> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    // A bad value anywhere in the list is refused before minutes of the other runs.
    for c in configs {
        c.check()?;
    }
    let next = AtomicUsize::new(0);
    let done: Vec<Mutex<Option<Result<DurabilityReport, durability::DurabilityError>>>> =
        configs.iter().map(|_| Mutex::new(None)).collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(configs.len());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(c) = configs.get(i) else { break };
                let r = durability::run(c);
                *done[i].lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(r);
            });
        }
    });
    done.into_iter()
        .map(|m| {
            let r = m.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
            r.context("a run did not finish")?.map_err(anyhow::Error::from)
        })
        .collect()
}

/// `pamphlet sim --fill-curve D,D,…`: survival at each age against the fill the load
/// reached, one row per `--fill-days` value (the mean of `seeds` seeds, the seeds' range
/// at the last age), beside the bound at that fill; with `plot_dir`, the chart.
fn fill_curve(base: &DurabilityConfig, fill_days: &[f64], seeds: u64, plot_dir: Option<&Path>) -> Result<()> {
    anyhow::ensure!(seeds >= 1, "--curve-seeds must be at least 1");
    let configs: Vec<DurabilityConfig> = fill_days
        .iter()
        .flat_map(|&f| (0..seeds).map(move |k| DurabilityConfig { fill_days: f, seed: base.seed + k, ..base.clone() }))
        .collect();
    let started = Instant::now();
    let reports = run_all(&configs)?;
    let ages: Vec<u32> = durability::AGES.iter().copied().filter(|&a| a < base.days).collect();
    let last = ages.len().checked_sub(1).context("--days is too short for any probe age")?;
    println!(
        "| --fill-days | fill reached | documents retrievable at {} | day {} by seed | blocks at day {} | bound (documents) | GiB / day |",
        ages.iter().map(|a| format!("day {a}")).collect::<Vec<_>>().join(" / "),
        ages[last],
        ages[last],
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    let mean = |v: &mut dyn Iterator<Item = f64>| {
        let (sum, n) = v.fold((0.0, 0u32), |(s, n), x| (s + x, n + 1));
        sum / f64::from(n.max(1))
    };
    let mut series: Vec<Series> =
        ages.iter().map(|a| Series { name: format!("day {a}"), points: Vec::new() }).collect();
    let mut bound = Series { name: "bound: any placement, online stores only".into(), points: Vec::new() };
    for (f, runs) in fill_days.iter().zip(reports.chunks(seeds as usize)) {
        let fill = mean(&mut runs.iter().map(|r| r.final_fill));
        let at = |i: usize| mean(&mut runs.iter().filter_map(|r| r.survival.get(i).and_then(|p| p.documents)));
        let by_seed: Vec<String> = runs.iter().map(|r| pct(r.survival.get(last).and_then(|p| p.documents))).collect();
        let blocks = mean(&mut runs.iter().filter_map(|r| r.survival.get(last).and_then(|p| p.blocks)));
        let bytes = mean(&mut runs.iter().map(|r| {
            let c = [r.insert_cost_per_day, r.fetch_cost_per_day, r.heal_cost_per_day, r.offer_cost_per_day];
            c.iter().map(|c| c.bytes as f64).sum::<f64>() / (1u64 << 30) as f64
        }));
        let b = mean(&mut runs.iter().map(|r| r.bound_documents));
        println!(
            "| {f} | {fill:.3} | {} | {} | {} | {} | {bytes:.2} |",
            (0..ages.len()).map(|i| pct(Some(at(i)))).collect::<Vec<_>>().join(" / "),
            by_seed.join(" / "),
            pct(Some(blocks)),
            pct(Some(b)),
        );
        for (i, s) in series.iter_mut().enumerate() {
            s.points.push((fill, at(i)));
        }
        bound.points.push((fill, b));
    }
    println!(
        "
{} runs in {:.0} s",
        configs.len(),
        started.elapsed().as_secs_f64()
    );
    if let Some(dir) = plot_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        // Ages from a week on (the younger ones sit at the top, under the rest), the last
        // first (drawn wide, underneath), then the bound, then the younger ones.
        let young = ages.iter().filter(|&&a| a < 7).count().min(ages.len() - 1);
        series.drain(..young);
        series.reverse();
        series.insert(1, bound);
        for s in &mut series {
            s.points.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        let path = dir.join("durability-fill.svg");
        let settings = format!("{}, seeds {}-{}, {}", world(base), base.seed, base.seed + seeds - 1, base.rules.name);
        let right = series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).fold(0.0f64, f64::max);
        let tick = |x: f64| Some(format!("{x:.2}"));
        plot::line_chart(
            &path,
            &Axes {
                title: "Survival vs fill: documents retrievable in full, by age",
                settings: &settings,
                xlabel: "documents inserted / the network's total store area, at the end of the run",
                ylabel: "documents retrievable",
                x: 0.0..(right * 1.05).max(0.01),
                xtick: &tick,
                y: 0.0..1.005,
                dodge: 0.0,
            },
            &series,
        )?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// `pamphlet sim --bound`: the most documents any placement can keep retrievable at one
/// moment, by fill, when a given share of the store area answers (docs/durability.md).
pub(crate) fn bound(args: &Args) -> Result<()> {
    let redundancy = args.redundancy.unwrap_or(Rules::pamphlet().redundancy);
    let u = durability::mean_uptime();
    // Always-on nodes only (13.5% of the population, 96% uptime), and the store plus the
    // cache area of every node (a quarter of the store, as the node's: `STORE_PER_CACHE`).
    let always_on = 0.37 / 0.96 * u * 0.96;
    let with_cache = u * (1.0 + 1.0 / f64::from(STORE_PER_CACHE));
    let columns = [("all nodes' store", u), ("always-on nodes only", always_on), ("store and cache", with_cache)];
    println!(
        "online share of the store area: {u:.3} (all nodes), {always_on:.3} (always-on only); redundancy {redundancy}"
    );
    println!(
        "| fill | {} |",
        columns.iter().map(|(n, u)| format!("{n} ({u:.3}): documents / bytes")).collect::<Vec<_>>().join(" | ")
    );
    println!("|{}", " --- |".repeat(columns.len() + 1));
    for i in 1..=10 {
        let fill = f64::from(i) * 0.05;
        let cells: Vec<String> = columns
            .iter()
            .map(|&(_, u)| {
                let b = durability::retrievable_bound(fill, u, redundancy);
                format!("{} / {}", pct(Some(b.documents)), pct(Some(b.bytes)))
            })
            .collect();
        println!("| {fill:.2} | {} |", cells.join(" | "));
    }
    Ok(())
}

/// The rows of docs/durability.md's table: the reference, pamphlet's defaults (the node's
/// rules), and each mechanism on the rules from before issue 20's mechanisms were built in.
fn rows() -> Vec<(String, Rules)> {
    let p = Rules::before();
    let all =
        Rules { sink_rank: 2, store_eviction: Eviction::NearOwn(NEAR_WINDOW), offer_on_return: true, ..p.clone() };
    vec![
        ("Hyphanet-like reference".into(), Rules::hyphanet()),
        ("pamphlet defaults (top blocks wider, offers on swap and on return)".into(), Rules::pamphlet()),
        ("before (no wider top blocks, no offers)".into(), p.clone()),
        ("healing off".into(), Rules { heal: false, ..p.clone() }),
        ("two sinks per insert".into(), Rules { sink_rank: 2, ..p.clone() }),
        (
            format!("near-own store (window {NEAR_WINDOW})"),
            Rules { store_eviction: Eviction::NearOwn(NEAR_WINDOW), ..p.clone() },
        ),
        ("offers on return".into(), Rules { offer_on_return: true, ..p.clone() }),
        ("offers on swap".into(), Rules { offer_on_swap: true, ..p.clone() }),
        (
            "offers on swap and return, into room only".into(),
            Rules { offer_on_swap: true, offer_on_return: true, offer_into_room: true, ..p.clone() },
        ),
        (
            "evicted blocks passed on, offers on swap".into(),
            Rules { evict_to_peer: true, offer_on_swap: true, ..p.clone() },
        ),
        ("all three mechanisms".into(), all),
        ("one store write per insert (ideal)".into(), Rules { store_once: true, ..p.clone() }),
    ]
    .into_iter()
    .map(|(n, r)| (n.clone(), Rules { name: n, ..r }))
    .collect()
}

fn table(base: &DurabilityConfig, plot_dir: Option<&Path>, headline: bool) -> Result<()> {
    let ages: Vec<u32> = durability::AGES.iter().copied().filter(|&a| a < base.days).collect();
    let head: Vec<String> = ages.iter().map(|a| format!("day {a}")).collect();
    println!(
        "| rules | documents retrievable at {} | blocks at day {} | never-fetched at day {} | messages / day | GiB / day |",
        head.join(" / "),
        ages.last().copied().unwrap_or(0),
        ages.last().copied().unwrap_or(0),
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    let mut series = Vec::new();
    let rows: Vec<(String, Rules)> = rows().into_iter().take(if headline { 2 } else { usize::MAX }).collect();
    let configs: Vec<DurabilityConfig> =
        rows.iter().map(|(_, rules)| DurabilityConfig { rules: rules.clone(), ..base.clone() }).collect();
    let started = Instant::now();
    let reports = run_all(&configs)?;
    for (row, ((name, _), r)) in rows.into_iter().zip(reports).enumerate() {
        let last = r.survival.last();
        let never = last
            .and_then(|p| p.by_popularity.iter().find(|(n, _)| n.starts_with("never")))
            .map(|(_, t)| t.documents_ok as f64 / t.documents.max(1) as f64);
        let costs = [
            r.insert_cost_per_day,
            r.fetch_cost_per_day,
            r.heal_cost_per_day,
            r.offer_cost_per_day,
            r.keepalive_cost_per_day,
        ];
        let messages: u64 = costs.iter().map(|c| c.messages).sum();
        let bytes: u64 = costs.iter().map(|c| c.bytes).sum();
        println!(
            "| {name} | {} | {} | {} | {} (heal {}, offers {}) | {:.1} |",
            r.survival.iter().map(|p| pct(p.documents)).collect::<Vec<_>>().join(" / "),
            pct(last.and_then(|p| p.blocks)),
            pct(never),
            messages,
            r.heal_cost_per_day.messages,
            r.offer_cost_per_day.messages,
            bytes as f64 / (1u64 << 30) as f64,
        );
        // The chart: the reference, the defaults and the rules before issue 20's
        // mechanisms (the first three rows; names matched here once went stale).
        if row < 3 {
            let points = r.survival.iter().filter_map(|p| p.documents.map(|d| (f64::from(p.age_days), d))).collect();
            series.push(Series { name, points });
        }
    }
    println!(
        "\n{} runs in {:.0} s, as many at a time as there are cores",
        configs.len(),
        started.elapsed().as_secs_f64()
    );
    if let Some(dir) = plot_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        // pamphlet's series first: it is drawn wide, underneath.
        series.rotate_left(1);
        let path = dir.join("durability-survival.svg");
        let settings = format!("{}, load fills the store in {} days, seed {}", world(base), base.fill_days, base.seed);
        let ages_f: Vec<f64> = ages.iter().map(|&a| f64::from(a)).collect();
        let tick = |x: f64| ((x - x.round()).abs() < 1e-6).then(|| format!("{x:.0}"));
        plot::line_chart(
            &path,
            &Axes {
                title: "Survival vs age: documents retrievable in full",
                settings: &settings,
                xlabel: "age of the document (days)",
                ylabel: "documents retrievable",
                x: 0.0..(ages_f.last().copied().unwrap_or(1.0) + 1.0),
                xtick: &tick,
                y: plot::success_range(&series),
                dodge: 0.0,
            },
            &series,
        )?;
        println!("\nwrote {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The model's rules as `pamphlet sim ARGS` sets them.
    fn rules_of(args: &[&str]) -> Rules {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            sim: Args,
        }
        let cli = <Cli as clap::Parser>::try_parse_from(std::iter::once("sim").chain(args.iter().copied())).unwrap();
        config(&cli.sim, 45).unwrap().rules
    }

    /// The model splits a node's disk between store and cache areas as the node does.
    #[test]
    fn the_models_split_is_the_nodes() {
        use pamphlet_node::daemon::config::{DEFAULT_CACHE_BYTES, DEFAULT_STORE_BYTES};
        assert_eq!(DEFAULT_STORE_BYTES, u64::from(STORE_PER_CACHE) * DEFAULT_CACHE_BYTES);
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            sim: Args,
        }
        let cli = <Cli as clap::Parser>::try_parse_from(["sim", "--days", "1", "--store-blocks", "400"]).unwrap();
        let c = config(&cli.sim, 1).unwrap();
        assert_eq!((c.store_blocks, c.cache_blocks), (400, 100));
        let d = DurabilityConfig::default();
        assert_eq!(d.store_blocks, STORE_PER_CACHE * d.cache_blocks);
    }

    /// Runs made side by side come back in the order asked, each as it is made alone.
    #[test]
    fn runs_side_by_side_are_the_runs_alone_in_order() {
        let configs = [small(1), small(2), small(3)];
        let together = run_all(&configs).unwrap();
        for (c, r) in configs.iter().zip(&together) {
            assert_eq!(r, &durability::run(c).unwrap(), "seed {}", c.seed);
        }
        assert_ne!(together[0], together[1], "different seeds, different worlds");
    }

    /// The survival-against-fill chart has a line per age from a week on and the bound.
    #[test]
    fn the_fill_curve_draws_each_age_and_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let base = DurabilityConfig { days: 8, ..small(1) };
        fill_curve(&base, &[40.0, 10.0], 2, Some(dir.path())).unwrap();
        let svg = std::fs::read_to_string(dir.path().join("durability-fill.svg")).unwrap();
        for label in ["day 7", "bound: any placement", "seeds 1-2", "store 32 + cache 8"] {
            assert!(svg.contains(label), "{label} missing from the chart");
        }
        assert!(!svg.contains("day 3"), "ages under a week are left out of the chart");
        assert!(fill_curve(&base, &[40.0], 0, None).is_err(), "no seeds is an error, not an empty table");
        let bad = fill_curve(&base, &[40.0, -1.0], 1, None).unwrap_err().to_string();
        assert!(bad.contains("--fill-days must be positive"), "{bad}");
    }

    /// A small world for the tests that run the model.
    fn small(seed: u64) -> DurabilityConfig {
        DurabilityConfig {
            nodes: 120,
            degree: 20,
            days: 2,
            seed,
            store_blocks: 32,
            cache_blocks: 8,
            fill_days: 20.0,
            fetches_per_day: 20.0,
            swap_rounds: 10,
            max_document_bytes: 1024.0 * 1024.0,
            ..DurabilityConfig::default()
        }
    }

    /// The defaults are the node's rules, and each of the session 9 switches can be
    /// turned off again (the rows measured before them are reproducible).
    #[test]
    fn the_nodes_rules_are_the_default_and_each_can_be_switched_off() {
        let d = rules_of(&["--days", "45"]);
        assert!(d.key_first_offers && d.second_attempt_waits && d.fetch_cap == 4 && d.steady_backup == 0.5);
        let off = rules_of(&[
            "--days",
            "45",
            "--key-first-offers",
            "false",
            "--second-attempt-waits",
            "false",
            "--fetch-cap",
            "0",
            "--steady-backup",
            "0",
            "--foaf",
            "off",
        ]);
        assert!(!off.key_first_offers && !off.second_attempt_waits && off.fetch_cap == 0 && off.steady_backup == 0.0);
        assert!(rules_of(&["--days", "45", "--key-first-offers"]).key_first_offers);
        assert!(d.offer_into_room, "offers into room only, as the node since session 12");
        assert!(!rules_of(&["--days", "45", "--offer-into-room", "false"]).offer_into_room);
        assert!(rules_of(&["--days", "45", "--rules", "before", "--offer-into-room"]).offer_into_room);
        assert_eq!((d.foaf, off.foaf), (Foaf::All, Foaf::Off), "FOAF routing as the node's, and off");
        assert_eq!(rules_of(&["--days", "45", "--foaf", "fetches"]).foaf, Foaf::Fetches);
        let before = rules_of(&["--days", "45", "--rules", "before", "--foaf"]);
        assert_eq!(before.foaf, Foaf::All, "--foaf alone: every route, as before session 10");
    }

    #[test]
    fn store_eviction_names_parse_and_bad_ones_say_what_is_accepted() {
        assert_eq!(parse_eviction("lru"), Ok(Eviction::Lru));
        assert_eq!(parse_eviction("random"), Ok(Eviction::Random));
        assert_eq!(parse_eviction("near:32"), Ok(Eviction::NearOwn(32)));
        for bad in ["near:0", "near:x", "fifo", ""] {
            let e = parse_eviction(bad).unwrap_err();
            assert!(e.contains("lru, random or near:W"), "{bad}: {e}");
        }
    }
}
