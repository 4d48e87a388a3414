//! `pamphlet sim --topology opennet`: the opennet simulation (pamphlet-node's
//! `sim::opennet`, docs/opennet.md). Prints one row per round (success, hops, degree, link
//! length, connections made) and the bootstrap figures, or JSON.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use pamphlet_node::sim::opennet::{self, OpennetSimConfig};

use super::Args;

fn config(args: &Args) -> Result<OpennetSimConfig> {
    anyhow::ensure!((0.0..1.0).contains(&args.churn), "--churn is a fraction of the nodes per round, in [0, 1)");
    anyhow::ensure!((0.0..0.5).contains(&args.sybil), "--sybil is a fraction of the nodes, in [0, 0.5)");
    anyhow::ensure!(args.seeds >= 1 && args.seeds_per_node >= 1, "--seeds and --seeds-per-node must be at least 1");
    let d = OpennetSimConfig::default();
    Ok(OpennetSimConfig {
        nodes: args.nodes,
        seeds: args.seeds,
        seeds_per_node: args.seeds_per_node,
        rounds: args.rounds,
        docs: args.docs.unwrap_or(args.nodes / 5).max(1),
        churn: args.churn,
        seed: args.seed,
        floor: args.floor.unwrap_or(d.floor),
        ceiling: args.ceiling.unwrap_or(d.ceiling),
        limits: !args.no_limits,
        link_classes: !args.no_link_classes,
        sybil: args.sybil,
        join_gap: Duration::from_millis(500),
        max_htl: args.htl,
    })
}

/// Runs `pamphlet sim --topology opennet …`.
pub(crate) fn run(args: &Args) -> Result<()> {
    let config = config(args)?;
    let started = Instant::now();
    let report =
        opennet::run(&config, started).with_context(|| format!("opennet simulation (seed {})", config.seed))?;
    let wall = started.elapsed().as_secs_f64();
    if args.json {
        let mut v = serde_json::to_value(&report)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("wall_seconds".into(), wall.into());
            o.insert("peak_rss_bytes".into(), super::peak_rss_bytes().into());
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("nodes / seeds / attackers        {} / {} / {}", report.nodes, report.seeds, report.attackers);
    println!("after joining: mean degree       {:.1}", report.bootstrap_mean_degree);
    println!("after joining: below the floor   {}", report.bootstrap_below_floor);
    println!("most newcomers at one seed       {}", report.seed_max_strangers);
    println!("announcements / join msgs/node   {} / {:.0}", report.announcements, report.join_messages_per_node);
    println!("inserts ok                       {} / {}", report.inserts_ok, report.inserts);
    println!(
        "\n{:>5} {:>8} {:>8} {:>6} {:>6} {:>7} {:>8} {:>6} {:>9} {:>8} {:>5} {:>5}",
        "round",
        "fetches",
        "success",
        "hops50",
        "hops95",
        "degree",
        "link len",
        "short",
        "admitted",
        "replaced",
        "lost",
        "parts"
    );
    for r in &report.rounds {
        println!(
            "{:>5} {:>8} {:>8.3} {:>6} {:>6} {:>7.1} {:>8.4} {:>6.1} {:>9} {:>8} {:>5} {:>5}",
            r.round,
            r.requests,
            r.success_rate,
            r.hops_median,
            r.hops_p95,
            r.mean_degree,
            r.mean_link_length,
            r.mean_short_links,
            r.admitted,
            r.replaced,
            r.failed_lost,
            r.components
        );
    }
    println!(
        "\nroutable (success >= 0.99, median <= 6 hops) from round {}",
        report.routable_after.map_or("never".into(), |r| r.to_string())
    );
    if let (Some(share), Some(t)) = (report.sybil_peer_share, report.target_success) {
        println!("Sybil share of the peers near the key  {share:.3}");
        println!("fetches of the key that succeeded      {t:.3}");
    }
    println!("virtual time {:.0} s, wall {wall:.1} s", report.virtual_seconds);
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: super::Args,
    }

    fn config(line: &str) -> anyhow::Result<super::OpennetSimConfig> {
        let cli = Cli::try_parse_from(std::iter::once("sim").chain(line.split_whitespace()))?;
        super::config(&cli.args)
    }

    #[test]
    fn opennet_options_parse_and_bad_fractions_say_what_is_accepted() {
        let c = config("--topology opennet --nodes 500 --seeds 3 --rounds 7 --churn 0.1 --no-limits").unwrap();
        assert_eq!((c.nodes, c.seeds, c.rounds, c.churn, c.limits, c.docs), (500, 3, 7, 0.1, false, 100));
        let e = config("--topology opennet --churn 1.5").unwrap_err().to_string();
        assert!(e.contains("--churn is a fraction"), "{e}");
        let e = config("--topology opennet --sybil 0.7").unwrap_err().to_string();
        assert!(e.contains("--sybil is a fraction"), "{e}");
        let e = config("--topology opennet --seeds 0").unwrap_err().to_string();
        assert!(e.contains("--seeds"), "{e}");
    }
}
