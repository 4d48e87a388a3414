//! Throughput of the gateway's content filter, in bytes of input per second.
//!
//! `cargo bench -p pamphlet-node --bench filter`. Three inputs:
//! - `html/fixture-1MiB`: the hostile fixture index page (tests/fixtures/freesite/)
//!   repeated until the page is 1 MiB, a worst case full of things to remove and rewrite;
//! - `html/article-1MiB`: a generated 1 MiB page of ordinary content (headings,
//!   paragraphs, relative and key links, images, a table, inline styles);
//! - `css/stylesheet-256KiB`: the fixture stylesheet repeated to 256 KiB;
//! - `html/nested-40000`: 40,000 nested `<div>`s (240 KB), refused by the depth limit
//!   (`shape::MAX_DEPTH`); without the limit it took 41 s in a debug build;
//! - `html/deep-505-1MiB`: close to the worst case the limit allows: 505 nested `<div>`s around
//!   1 MiB of paragraphs with formatting elements, so that every scope check the tree
//!   builder makes walks the whole stack of open elements.
//!
//! criterion reports throughput in bytes of input per second (MiB/s or GiB/s).

// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use pamphlet_node::gateway::filter::{filter, FilterError, Verdict};

const FIXTURE_INDEX: &str = include_str!("../../tests/fixtures/freesite/index.html");
const FIXTURE_CSS: &str = include_str!("../../tests/fixtures/freesite/style.css");
const LOCATION: &str = "/CHK@AAAA,BBBB,AQEA/index.html";

fn repeated(piece: &str, size: usize) -> String {
    let mut out = String::with_capacity(size + piece.len());
    while out.len() < size {
        out.push_str(piece);
    }
    out
}

fn article(size: usize) -> String {
    let mut out = String::from(
        "<!DOCTYPE html><html><head><title>An article</title>\
        <link rel=stylesheet href=style.css><style>p { margin: 0 0 1em } .c { color: #345 }</style></head><body>",
    );
    let mut i = 0;
    while out.len() < size {
        out.push_str(&format!(
            "<h2 id=\"s{i}\">Section {i}</h2><p class=\"c\">Freesites are web sites that live inside the network; \
             this paragraph links <a href=\"page{i}.html\">a page</a>, <a href=\"/CHK@AAAA,BBBB,AQEA/doc{i}.html\">a key</a> \
             and <a href=\"#s{i}\">itself</a>, with <em>emphasis</em> and <code>code</code>.</p>\
             <p style=\"text-align: justify\"><img src=\"img/{i}.png\" alt=\"figure {i}\" width=\"64\" height=\"48\"> \
             Caption text for figure {i}.</p><table><tr><td>{i}</td><td>cell</td></tr></table>"
        ));
        i += 1;
    }
    out.push_str("</body></html>");
    out
}

fn nested(levels: usize) -> String {
    format!("{}<p>deep</p>{}", "<div>".repeat(levels), "</div>".repeat(levels))
}

fn deep_and_wide(levels: usize, size: usize) -> String {
    let mut out = "<div>".repeat(levels);
    while out.len() < size {
        out.push_str("<p><b>bold</b> and <i>italic</i> and <a href=\"page.html\">a link</a></p>");
    }
    out
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("filter");
    let inputs = [
        ("html", "fixture-1MiB", "text/html", repeated(FIXTURE_INDEX, 1 << 20)),
        ("html", "article-1MiB", "text/html", article(1 << 20)),
        ("css", "stylesheet-256KiB", "text/css", repeated(FIXTURE_CSS, 256 << 10)),
        ("html", "nested-40000", "text/html", nested(40_000)),
        ("html", "deep-505-1MiB", "text/html", deep_and_wide(505, 1 << 20)),
    ];
    for (kind, name, mime, input) in &inputs {
        // A filter that refuses its input would make a meaningless figure, except where
        // the refusal is what is measured.
        let result = filter(input.as_bytes(), mime, LOCATION);
        if *name == "nested-40000" {
            assert!(matches!(result, Err(FilterError::TooDeep { .. })), "{result:?}");
        } else {
            assert!(matches!(result, Ok(Verdict::Serve { .. })), "{name}: {result:?}");
        }
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.sample_size(10);
        group.bench_with_input(BenchmarkId::new(*kind, *name), input, |b, input| {
            b.iter(|| filter(input.as_bytes(), mime, LOCATION))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
