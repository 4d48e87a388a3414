//! `pamphlet sim --plot DIR`: runs a series of simulations and writes hand-made SVG charts
//! (no plotting dependency): the hops distribution, success against network size, and
//! success against the fraction of black holes with and without pamphlet's defence.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use pamphlet_node::sim::{self, Attack, SimConfig};

const W: f64 = 640.0;
const H: f64 = 400.0;
const PAD: f64 = 60.0;

/// One named series of (x, y) points.
struct Series {
    name: String,
    points: Vec<(f64, f64)>,
}

const COLOURS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];

fn frame(title: &str, xlabel: &str, ylabel: &str) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="20" text-anchor="middle" font-size="14">{title}</text>
<text x="{}" y="{}" text-anchor="middle">{xlabel}</text>
<text x="15" y="{}" text-anchor="middle" transform="rotate(-90 15 {})">{ylabel}</text>
<line x1="{PAD}" y1="{}" x2="{}" y2="{}" stroke="black"/>
<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{}" stroke="black"/>
"#,
        W / 2.0,
        W / 2.0,
        H - 10.0,
        H / 2.0,
        H / 2.0,
        H - PAD,
        W - PAD,
        H - PAD,
        H - PAD
    );
    s
}

fn axes(s: &mut String, xmin: f64, xmax: f64, ymin: f64, ymax: f64, xlog: bool) {
    for i in 0..=4 {
        let f = i as f64 / 4.0;
        let y = H - PAD - f * (H - 2.0 * PAD);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{:.2}</text>"#,
            PAD - 5.0,
            y + 4.0,
            ymin + f * (ymax - ymin)
        );
        let x = PAD + f * (W - 2.0 * PAD);
        let v = if xlog { (xmin.ln() + f * (xmax.ln() - xmin.ln())).exp() } else { xmin + f * (xmax - xmin) };
        let _ = writeln!(s, r#"<text x="{x}" y="{}" text-anchor="middle">{v:.2}</text>"#, H - PAD + 15.0);
    }
}

fn line_chart(title: &str, xlabel: &str, ylabel: &str, series: &[Series], xlog: bool, ymax: f64) -> String {
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let xmin = xs.clone().fold(f64::INFINITY, f64::min);
    let xmax = xs.fold(f64::NEG_INFINITY, f64::max);
    let tx = |x: f64| {
        let f = if xlog { (x.ln() - xmin.ln()) / (xmax.ln() - xmin.ln()) } else { (x - xmin) / (xmax - xmin) };
        PAD + f.clamp(0.0, 1.0) * (W - 2.0 * PAD)
    };
    let ty = |y: f64| H - PAD - (y / ymax).clamp(0.0, 1.0) * (H - 2.0 * PAD);
    let mut s = frame(title, xlabel, ylabel);
    axes(&mut s, xmin, xmax, 0.0, ymax, xlog);
    for (k, ser) in series.iter().enumerate() {
        let c = COLOURS[k % COLOURS.len()];
        let pts: Vec<String> = ser.points.iter().map(|&(x, y)| format!("{:.1},{:.1}", tx(x), ty(y))).collect();
        let _ = writeln!(s, r#"<polyline fill="none" stroke="{c}" stroke-width="2" points="{}"/>"#, pts.join(" "));
        for &(x, y) in &ser.points {
            let _ = writeln!(s, r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{c}"/>"#, tx(x), ty(y));
        }
        // The legend runs in one row above the plot: inside it, it sat on the lines that
        // reach 1.0 (success charts), which is where the data is.
        let _ =
            writeln!(s, r#"<text x="{}" y="{}" fill="{c}">{}</text>"#, PAD + 130.0 * k as f64, PAD - 14.0, ser.name);
    }
    s.push_str("</svg>\n");
    s
}

fn histogram(title: &str, hops: &[u64]) -> String {
    let max = hops.iter().copied().max().unwrap_or(0) as usize;
    let mut counts = vec![0usize; max + 1];
    for &h in hops {
        counts[h as usize] += 1;
    }
    let total = hops.len().max(1) as f64;
    let top = counts.iter().copied().max().unwrap_or(1).max(1) as f64 / total;
    let mut s = frame(title, "hops (DataRequests per successful fetch)", "share of fetches");
    axes(&mut s, 0.0, max as f64, 0.0, top, false);
    let bw = (W - 2.0 * PAD) / (max as f64 + 1.0);
    for (h, &c) in counts.iter().enumerate() {
        let hgt = c as f64 / total / top * (H - 2.0 * PAD);
        let _ = writeln!(
            s,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#1f77b4"/>"##,
            PAD + h as f64 * bw,
            H - PAD - hgt,
            (bw - 1.0).max(1.0),
            hgt
        );
    }
    s.push_str("</svg>\n");
    s
}

fn run(config: &SimConfig) -> Result<sim::Report> {
    sim::run(config, Instant::now()).with_context(|| format!("simulation failed (seed {})", config.seed))
}

/// Runs the series (based on `base`: its seed, degree, swap rounds and request counts) and
/// writes three SVG files into `dir`. Returns the files written.
pub(crate) fn write_all(base: &SimConfig, dir: &Path) -> Result<Vec<String>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut written = Vec::new();
    let mut save = |name: &str, svg: String| -> Result<()> {
        let path = dir.join(name);
        std::fs::write(&path, svg).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path.display().to_string());
        Ok(())
    };

    let r = run(base)?;
    save(
        "sim-hops.svg",
        histogram(
            &format!(
                "Hops, {} nodes, degree {}, {} swap rounds (seed {})",
                r.nodes, base.degree, base.swap_rounds, base.seed
            ),
            &r.hops,
        ),
    )?;

    let sizes = [250usize, 500, 1000, 2000, 4000];
    let mut by_size = Vec::new();
    for strategy in [sim::Strategy::Pamphlet, sim::Strategy::Hyphanet, sim::Strategy::RandomWalk] {
        let mut pts = Vec::new();
        for &n in &sizes {
            let r = run(&SimConfig { nodes: n, strategy, ..base.clone() })?;
            pts.push((n as f64, r.success_rate));
        }
        by_size.push(Series { name: strategy.name().into(), points: pts });
    }
    save(
        "sim-success-vs-size.svg",
        line_chart("Success vs network size", "nodes", "success rate", &by_size, true, 1.0),
    )?;

    let fractions = [0.0, 0.05, 0.1, 0.2, 0.3];
    let mut by_attack = Vec::new();
    for defences in [true, false] {
        let mut pts = Vec::new();
        for &f in &fractions {
            let attack = (f > 0.0).then_some(Attack { kind: sim::AttackKind::Blackhole, fraction: f });
            let r = run(&SimConfig { attack, defences, ..base.clone() })?;
            pts.push((f, r.success_rate));
        }
        let name = if defences { "with defence" } else { "no defence" };
        by_attack.push(Series { name: name.into(), points: pts });
    }
    save(
        "sim-success-vs-blackholes.svg",
        line_chart("Success vs black-hole fraction", "fraction of black holes", "success rate", &by_attack, false, 1.0),
    )?;
    Ok(written)
}
