//! `pamphlet sim --plot DIR`: runs a series of simulations and writes three SVG charts
//! drawn with `plotters`: the hops distribution, success against network size (sizes a
//! quarter to four times `--nodes`), and success against the fraction of black holes with
//! and without pamphlet's defence. Each chart names its settings under the title; the y
//! range is fitted to the data so differences of a few points show; series that overlap
//! stay visible through markers and dashes, with pamphlet's drawn last, on top.

use std::path::Path;
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use indicatif::ProgressBar;
use pamphlet_node::sim::{self, Attack, SimConfig};
use plotters::prelude::*;

const W: u32 = 800;
const H: u32 = 500;

/// One named series of (x, y) points.
pub(super) struct Series {
    pub(super) name: String,
    pub(super) points: Vec<(f64, f64)>,
}

/// How each series is drawn, in order: colour, dashed or not, marker. Colour-blind safe
/// (Okabe–Ito), and told apart by line and marker too.
const STYLES: [(RGBColor, bool, Marker); 3] = [
    (RGBColor(0, 114, 178), false, Marker::Circle),
    (RGBColor(213, 94, 0), true, Marker::Triangle),
    (RGBColor(0, 158, 115), true, Marker::Square),
];

#[derive(Clone, Copy)]
enum Marker {
    Circle,
    Triangle,
    Square,
}

/// A chart's frame: the x axis and its labels, the y range.
pub(super) struct Axes<'a> {
    pub(super) title: &'a str,
    /// The settings the data was measured with, shown under the title.
    pub(super) settings: &'a str,
    pub(super) xlabel: &'a str,
    pub(super) ylabel: &'a str,
    pub(super) x: std::ops::Range<f64>,
    /// The label of a tick at x, or None for no tick there.
    pub(super) xtick: &'a dyn Fn(f64) -> Option<String>,
    pub(super) y: std::ops::Range<f64>,
    /// Sideways shift between series, in x units (0: none).
    pub(super) dodge: f64,
}

/// Success rates on a y axis that starts just below the lowest point, at a multiple of 5
/// points, so that differences of a few points are visible (the axis says where it starts).
pub(super) fn success_range(series: &[Series]) -> std::ops::Range<f64> {
    let low = series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).fold(1.0, f64::min);
    let bottom = ((low - 0.03) * 20.0).floor() / 20.0;
    bottom.clamp(0.0, 0.9)..1.005
}

pub(super) fn percent(v: f64) -> String {
    let p = v * 100.0;
    if (p - p.round()).abs() < 0.05 {
        format!("{p:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

fn draw_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("cannot draw the chart: {e:?}")
}

/// Title and settings over the plot area; returns the plot area.
fn titled<'a>(
    root: &DrawingArea<SVGBackend<'a>, plotters::coord::Shift>,
    title: &str,
    settings: &str,
) -> Result<DrawingArea<SVGBackend<'a>, plotters::coord::Shift>> {
    root.fill(&WHITE).map_err(draw_err)?;
    let (top, body) = root.split_vertically(62);
    let centre = |size: f64| {
        ("sans-serif", size).into_font().into_text_style(&top).pos(plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Center,
            plotters::style::text_anchor::VPos::Top,
        ))
    };
    top.draw(&Text::new(title.to_owned(), (W as i32 / 2, 10), centre(22.0))).map_err(draw_err)?;
    top.draw(&Text::new(settings.to_owned(), (W as i32 / 2, 38), centre(13.0).color(&RGBColor(80, 80, 80))))
        .map_err(draw_err)?;
    Ok(body)
}

pub(super) fn line_chart(path: &Path, axes: &Axes<'_>, series: &[Series]) -> Result<()> {
    let root = SVGBackend::new(path, (W, H)).into_drawing_area();
    let body = titled(&root, axes.title, axes.settings)?;
    let mut chart = ChartBuilder::on(&body)
        .margin(12)
        .margin_right(28)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(axes.x.clone(), axes.y.clone())
        .map_err(draw_err)?;
    let xfmt = |v: &f64| (axes.xtick)(*v).unwrap_or_default();
    let yfmt = |v: &f64| percent(*v);
    chart
        .configure_mesh()
        .x_labels(12)
        .y_labels(8)
        .x_label_formatter(&xfmt)
        .y_label_formatter(&yfmt)
        .x_desc(axes.xlabel)
        .y_desc(axes.ylabel)
        .axis_desc_style(("sans-serif", 16))
        .label_style(("sans-serif", 14))
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(225, 225, 225))
        .draw()
        .map_err(draw_err)?;
    // The first series (pamphlet's, or the defended one) is drawn first, wide; the others
    // over it, thinner, dashed and with hollow markers, so that where they coincide all of
    // them still show. On a categorical x axis (`dodge` > 0) each series is also shifted a
    // little sideways.
    let n = series.len() as f64;
    for (k, ser) in series.iter().enumerate() {
        let (colour, dashed, marker) = STYLES[k % STYLES.len()];
        let width = if k == 0 { 5 } else { 2 };
        let style = colour.stroke_width(width);
        let shift = axes.dodge * (k as f64 - (n - 1.0) / 2.0);
        let points: Vec<(f64, f64)> = ser.points.iter().map(|&(x, y)| (x + shift, y)).collect();
        if dashed {
            chart.draw_series(DashedLineSeries::new(points.clone(), 10, 6, style)).map_err(draw_err)?;
        } else {
            chart.draw_series(LineSeries::new(points.clone(), style)).map_err(draw_err)?;
        }
        let size = 6;
        let anno = match marker {
            Marker::Circle => chart
                .draw_series(points.iter().map(|&p| Circle::new(p, size + 1, colour.filled())))
                .map_err(draw_err)?,
            Marker::Triangle => chart
                .draw_series(points.iter().map(|&p| TriangleMarker::new(p, size + 2, colour.stroke_width(2))))
                .map_err(draw_err)?,
            Marker::Square => chart
                .draw_series(points.iter().map(|&(x, y)| {
                    EmptyElement::at((x, y)) + Rectangle::new([(-size, -size), (size, size)], colour.stroke_width(2))
                }))
                .map_err(draw_err)?,
        };
        // A dashed series has a gap in its legend line too.
        let gap = if dashed { WHITE } else { colour };
        anno.label(ser.name.clone()).legend(move |(x, y)| {
            EmptyElement::at((x, y))
                + PathElement::new(vec![(0, 0), (10, 0)], colour.stroke_width(width))
                + PathElement::new(vec![(10, 0), (16, 0)], gap.stroke_width(width))
                + PathElement::new(vec![(16, 0), (26, 0)], colour.stroke_width(width))
        });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .label_font(("sans-serif", 15))
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(160, 160, 160))
        .draw()
        .map_err(draw_err)?;
    root.present().map_err(draw_err)?;
    Ok(())
}

/// A bar per hop count up to `cap`, where the last bar holds every fetch of `cap` hops or
/// more (a few long fetches would otherwise squeeze the bars that matter into a corner).
fn histogram(path: &Path, title: &str, settings: &str, hops: &[u64], cap: u32) -> Result<()> {
    let max = cap;
    let longer = hops.iter().any(|&h| h > u64::from(cap));
    let mut counts = vec![0usize; max as usize + 1];
    for &h in hops {
        counts[(h as usize).min(max as usize)] += 1;
    }
    let total = hops.len().max(1) as f64;
    let top = counts.iter().copied().max().unwrap_or(1) as f64 / total;
    let ytop = ((top * 1.1) * 20.0).ceil() / 20.0;
    let root = SVGBackend::new(path, (W, H)).into_drawing_area();
    let body = titled(&root, title, settings)?;
    let mut chart = ChartBuilder::on(&body)
        .margin(12)
        .margin_right(28)
        .x_label_area_size(48)
        .y_label_area_size(64)
        // A segmented 0..max has one segment per value 0 to max, both included.
        .build_cartesian_2d((0u32..max).into_segmented(), 0f64..ytop)
        .map_err(draw_err)?;
    let yfmt = |v: &f64| percent(*v);
    let xfmt = |v: &SegmentValue<u32>| match v {
        SegmentValue::CenterOf(h) | SegmentValue::Exact(h) if *h == max && longer => format!("{h}+"),
        SegmentValue::CenterOf(h) | SegmentValue::Exact(h) => h.to_string(),
        SegmentValue::Last => String::new(),
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels((max as usize + 1).min(25))
        .y_labels(8)
        .x_label_formatter(&xfmt)
        .y_label_formatter(&yfmt)
        .x_desc("hops (nodes a successful request visited)")
        .y_desc("share of successful fetches")
        .axis_desc_style(("sans-serif", 16))
        .label_style(("sans-serif", 14))
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(225, 225, 225))
        .draw()
        .map_err(draw_err)?;
    chart
        .draw_series(
            Histogram::vertical(&chart)
                .style(STYLES[0].0.filled())
                .margin(3)
                .data(counts.iter().enumerate().map(|(h, &c)| (h as u32, c as f64 / total))),
        )
        .map_err(draw_err)?;
    root.present().map_err(draw_err)?;
    Ok(())
}

/// The median and 95th percentile of `hops`.
fn median_p95(hops: &[u64]) -> (u64, u64) {
    let mut sorted = hops.to_vec();
    sorted.sort_unstable();
    let at = |q: f64| sorted.get(((sorted.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0);
    (at(0.5), at(0.95))
}

/// Runs the series (based on `base`: its seed, degree, swap rounds and request counts) and
/// writes three SVG files into `dir`, showing a progress bar on `bar`. Returns the files
/// written.
pub(crate) fn write_all(base: &SimConfig, dir: &Path, bar: &ProgressBar) -> Result<Vec<String>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let sizes: Vec<usize> =
        [4, 2, 1].iter().map(|d| base.nodes / d).chain([2, 4].iter().map(|m| base.nodes * m)).collect();
    let fractions = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3];
    bar.set_length((1 + 3 * sizes.len() + 2 * fractions.len()) as u64);
    let run = |config: &SimConfig, what: String| -> Result<sim::Report> {
        bar.set_message(what);
        let r = sim::run(config, Instant::now()).with_context(|| format!("simulation failed (seed {})", config.seed));
        bar.inc(1);
        r
    };
    let swaps = match base.swap_rounds {
        0 => "no location swapping".to_owned(),
        n => format!("{n} swap rounds (swap age {})", base.swap_age),
    };
    let settings = |nodes: &str| {
        format!("{nodes}, degree {}, {}, {} fetches, seed {}", base.degree, swaps, base.requests, base.seed)
    };
    let mut written = Vec::new();
    let mut saved = |name: &str| {
        let path = dir.join(name);
        written.push(path.display().to_string());
        path
    };

    let r = run(base, format!("hops: {} nodes", base.nodes))?;
    let (median, p95) = median_p95(&r.hops);
    let longest = r.hops.iter().copied().max().unwrap_or(0);
    let cap = (p95 * 2).max(10).min(longest.max(1)) as u32;
    histogram(
        &saved("sim-hops.svg"),
        &format!("Hops per successful fetch: median {median}, 95th percentile {p95}, longest {longest}"),
        &settings(&format!("{} nodes, {} found", r.nodes, percent(r.success_rate))),
        &r.hops,
        cap,
    )?;

    let mut by_size = Vec::new();
    for strategy in [sim::Strategy::Pamphlet, sim::Strategy::Hyphanet, sim::Strategy::RandomWalk] {
        let mut pts = Vec::new();
        for (i, &n) in sizes.iter().enumerate() {
            let r = run(
                &SimConfig { nodes: n, strategy, ..base.clone() },
                format!("size: {} at {n} nodes", strategy.name()),
            )?;
            pts.push((i as f64, r.success_rate));
        }
        by_size.push(Series { name: strategy.name().into(), points: pts });
    }
    let size_tick = |x: f64| {
        let i = x.round();
        ((x - i).abs() < 1e-6 && i >= 0.0).then(|| sizes.get(i as usize).map(ToString::to_string)).flatten()
    };
    line_chart(
        &saved("sim-success-vs-size.svg"),
        &Axes {
            title: "Success rate against network size",
            settings: &settings("sizes on the x axis"),
            xlabel: "nodes (each step doubles the network)",
            ylabel: "fetches that succeeded",
            x: -0.25..(sizes.len() as f64 - 0.75),
            xtick: &size_tick,
            y: success_range(&by_size),
            dodge: 0.05,
        },
        &by_size,
    )?;

    let mut by_attack = Vec::new();
    for defences in [true, false] {
        let mut pts = Vec::new();
        for &f in &fractions {
            let attack = (f > 0.0).then_some(Attack { kind: sim::AttackKind::Blackhole, fraction: f });
            let name = if defences { "defended" } else { "undefended" };
            let r = run(&SimConfig { attack, defences, ..base.clone() }, format!("black holes: {f} {name}"))?;
            pts.push((f, r.success_rate));
        }
        let name = if defences { "with pamphlet's defence" } else { "without the defence" };
        by_attack.push(Series { name: name.into(), points: pts });
    }
    let fraction_tick = |x: f64| {
        let steps = x / 0.05;
        ((steps - steps.round()).abs() < 1e-6).then(|| percent(x))
    };
    line_chart(
        &saved("sim-success-vs-blackholes.svg"),
        &Axes {
            title: "Success rate against black holes (nodes that drop every request)",
            settings: &settings(&format!("{} nodes", base.nodes)),
            xlabel: "share of nodes that are black holes",
            ylabel: "fetches that succeeded",
            x: -0.01..0.31,
            xtick: &fraction_tick,
            y: success_range(&by_attack),
            dodge: 0.0,
        },
        &by_attack,
    )?;
    Ok(written)
}
