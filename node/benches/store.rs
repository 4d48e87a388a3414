//! Benchmark of the on-disk store against the disk it runs on, in one run.
//!
//! `cargo bench -p pamphlet-node --bench store` (size: `PAMPHLET_BENCH_STORE_MIB`, default
//! 1024). It measures, under a temporary directory that it deletes:
//! - the disk: `dd` sequential write (1 MiB direct writes, one fsync at the end), `dd`
//!   synchronous 32 KiB writes (`oflag=dsync`: one sync per block, the store area's fsync
//!   policy), and `dd` sequential direct read;
//! - creating (preallocating) a store of that size, and filling it with 32 KiB CHK blocks
//!   with the cache-area policy (durable at flush; flushed every 256 puts);
//! - puts with the store-area policy (one `fdatasync` per put), over a sample;
//! - gets of random stored blocks with the page cache hot, then cold (the files' cached
//!   pages dropped with `dd iflag=nocache count=0`);
//! - open time of the full store (hot and cold) and the index's memory per stored block.
//!
//! Block generation (CHK encoding) is done outside the timed sections. A plain `main`
//! (`harness = false`): each figure is one timed pass, printed as a markdown table.

// Tests and benchmarks measure with, or drive nodes by, the real clock.
#![allow(clippy::disallowed_methods)]

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use pamphlet_crypto::{chk, Block, BlockKind, ChkFlags, RoutingKey};
use pamphlet_node::store::disk::{slots_in, DiskStore, DiskStoreConfig, Durability};
use pamphlet_node::store::{Area, BlockStore};
use rand::{Rng, SeedableRng};

const BATCH: u64 = 256;

fn block(i: u64) -> (RoutingKey, Block) {
    let mut data = vec![0u8; 32 * 1024];
    data[..8].copy_from_slice(&i.to_le_bytes());
    let (b, uri) = chk::encode(&data, ChkFlags::default()).unwrap();
    (uri.routing_key, Block::Chk(b))
}

/// Runs `dd` and returns the seconds it reports.
fn dd(args: &[&str]) -> f64 {
    let out = Command::new("dd").args(args).output().expect("dd runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "dd {args:?} failed: {err}");
    // "… bytes (…) copied, 1.23 s, 456 MB/s"
    let line = err.lines().last().unwrap_or_default();
    line.split(" copied, ").nth(1).and_then(|s| s.split(' ').next()).and_then(|s| s.parse().ok()).unwrap_or(f64::NAN)
}

fn drop_cache(path: &Path) {
    let arg = format!("if={}", path.display());
    dd(&[&arg, "iflag=nocache", "count=0", "status=none"]);
}

fn drop_store_cache(dir: &Path) {
    for name in ["store-chk.slots", "store-ssk.slots", "cache-chk.slots", "cache-ssk.slots"] {
        drop_cache(&dir.join(name));
    }
}

/// This thread's time on a CPU and waiting for one (runqueue), in ns (schedstat).
fn sched_ns() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let mut it = s.split_whitespace().map(|v| v.parse().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Child mode: open the store in a fresh process and print its RSS before and after, so
/// the difference is the index (plus what the scan left allocated), not other phases' heap.
fn rss_child(dir: &str) {
    let mut config = DiskStoreConfig::new(0, 0);
    config.read_only = true;
    let before = rss_kib();
    let store = DiskStore::open(dir, config).unwrap();
    let after = rss_kib();
    let mut out = std::io::stdout();
    writeln!(out, "{before} {after} {} {}", store.stats().store_blocks, store.index_heap_bytes()).unwrap();
}

fn main() {
    if let Ok(dir) = std::env::var("PAMPHLET_BENCH_STORE_RSS_CHILD") {
        return rss_child(&dir);
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing special. Only run
    // the (slow, disk-filling) measurement when asked for as a benchmark.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let mib: u64 = std::env::var("PAMPHLET_BENCH_STORE_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(1024);
    let bytes = mib << 20;
    let tmp = tempfile::tempdir().unwrap();
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut row = |name: &str, value: String| {
        let mut out = std::io::stderr();
        writeln!(out, "{name}: {value}").unwrap();
        rows.push((name.to_owned(), value));
    };

    // The disk itself.
    let dd_file = tmp.path().join("dd.bin");
    let of = format!("of={}", dd_file.display());
    let iff = format!("if={}", dd_file.display());
    let count = format!("count={mib}");
    let s = dd(&["if=/dev/zero", &of, "bs=1M", &count, "oflag=direct", "conv=fsync"]);
    let dd_write = mib as f64 / s;
    row("dd write, 1 MiB direct blocks + fsync", format!("{dd_write:.0} MiB/s"));
    drop_cache(&dd_file);
    let s = dd(&[&iff, "of=/dev/null", "bs=1M", "iflag=direct"]);
    let dd_read = mib as f64 / s;
    row("dd read, 1 MiB direct blocks", format!("{dd_read:.0} MiB/s"));
    std::fs::remove_file(&dd_file).unwrap();
    let dsync_count = 2000u64.min(mib * 32);
    let s = dd(&["if=/dev/zero", &of, "bs=32k", &format!("count={dsync_count}"), "oflag=dsync"]);
    let dd_dsync = dsync_count as f64 * 32.0 / 1024.0 / s;
    row(
        "dd write, 32 KiB blocks, oflag=dsync",
        format!("{dd_dsync:.1} MiB/s ({:.0} writes/s)", dsync_count as f64 / s),
    );
    std::fs::remove_file(&dd_file).unwrap();

    // Create (preallocate) and fill.
    let dir = tmp.path().join("store");
    let mut config = DiskStoreConfig::new(bytes, 0);
    config.ssk_percent = 0;
    config.store_durability = Durability::OnFlush;
    let t = Instant::now();
    let mut store = DiskStore::open(&dir, config).unwrap();
    row("create (preallocate) store", format!("{:.2} s for {mib} MiB", t.elapsed().as_secs_f64()));
    let slots = u64::from(slots_in(BlockKind::Chk, bytes));
    let mut timed = Duration::ZERO;
    let (mut cpu_ns, mut wait_ns) = (0u64, 0u64);
    let mut keys = Vec::with_capacity(slots as usize);
    let mut next = 0u64;
    while next < slots {
        let n = BATCH.min(slots - next);
        let batch: Vec<_> = (next..next + n).map(block).collect();
        let (cpu0, wait0) = sched_ns();
        let t = Instant::now();
        for (k, b) in batch {
            store.put(Area::Store, k, b).unwrap();
            keys.push(k);
        }
        store.flush().unwrap();
        timed += t.elapsed();
        let (cpu1, wait1) = sched_ns();
        cpu_ns += cpu1 - cpu0;
        wait_ns += wait1 - wait0;
        next += n;
    }
    let mib_put = slots as f64 * 32.0 / 1024.0;
    row(
        "puts, durable at flush (every 256)",
        format!(
            "{:.0} puts/s = {:.0} MiB/s ({:.0}% of dd write)",
            slots as f64 / timed.as_secs_f64(),
            mib_put / timed.as_secs_f64(),
            100.0 * mib_put / timed.as_secs_f64() / dd_write
        ),
    );
    let per = |ns: u64| ns as f64 / 1000.0 / slots as f64;
    row(
        "  where a put's time goes (same phase)",
        format!(
            "{:.0} µs total = {:.0} µs on CPU + {:.0} µs waiting for a CPU + {:.0} µs blocked (I/O)",
            per(timed.as_nanos() as u64),
            per(cpu_ns),
            per(wait_ns),
            per((timed.as_nanos() as u64).saturating_sub(cpu_ns + wait_ns))
        ),
    );
    drop(store);

    // Synced puts (each evicts the least recently used block).
    let mut config = DiskStoreConfig::new(bytes, 0);
    config.ssk_percent = 0;
    let mut store = DiskStore::open(&dir, config).unwrap();
    let sample = 500u64;
    let batch: Vec<_> = (slots..slots + sample).map(block).collect();
    let t = Instant::now();
    for (k, b) in batch {
        store.put(Area::Store, k, b).unwrap();
    }
    let s = t.elapsed().as_secs_f64();
    let per_s = sample as f64 / s;
    row(
        "puts, fdatasync per put",
        format!(
            "{per_s:.0} puts/s = {:.1} MiB/s ({:.0}% of dd dsync 32 KiB)",
            per_s * 32.0 / 1024.0,
            100.0 * per_s * 32.0 / 1024.0 / dd_dsync
        ),
    );
    // The sample evicted the oldest `sample` keys.
    let live = &keys[sample as usize..];

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let gets = 4000.min(live.len());
    let picks: Vec<RoutingKey> = (0..gets).map(|_| live[rng.gen_range(0..live.len())]).collect();
    for k in &picks {
        store.get(BlockKind::Chk, k).unwrap(); // warm the page cache
    }
    let t = Instant::now();
    for k in &picks {
        store.get(BlockKind::Chk, k).unwrap();
    }
    let s = t.elapsed().as_secs_f64();
    row(
        "gets, hot page cache (random)",
        format!("{:.0} gets/s = {:.0} MiB/s", gets as f64 / s, gets as f64 * 32.0 / 1024.0 / s),
    );
    store.flush().unwrap();
    let cold: Vec<RoutingKey> = (0..1000.min(live.len())).map(|_| live[rng.gen_range(0..live.len())]).collect();
    drop_store_cache(&dir);
    let t = Instant::now();
    for k in &cold {
        store.get(BlockKind::Chk, k).unwrap();
    }
    let s = t.elapsed().as_secs_f64();
    row(
        "gets, cold page cache (random)",
        format!("{:.0} gets/s = {:.0} MiB/s", cold.len() as f64 / s, cold.len() as f64 * 32.0 / 1024.0 / s),
    );
    let blocks = store.stats().store_blocks;
    let estimate = store.index_heap_bytes() as f64 / blocks as f64;
    store.close().unwrap();

    // Open: hot (after an untimed open has brought the headers' pages into the page
    // cache), then cold.
    drop(DiskStore::open(&dir, config).unwrap());
    let t = Instant::now();
    let store = DiskStore::open(&dir, config).unwrap();
    let hot = t.elapsed().as_secs_f64();
    assert_eq!(store.stats().store_blocks, blocks);
    drop(store);
    drop_store_cache(&dir);
    let t = Instant::now();
    let store = DiskStore::open(&dir, config).unwrap();
    let cold = t.elapsed().as_secs_f64();
    drop(store);
    row(&format!("open {mib} MiB store ({blocks} blocks)"), format!("{hot:.3} s hot, {cold:.3} s cold"));
    let child = Command::new(std::env::current_exe().unwrap())
        .env("PAMPHLET_BENCH_STORE_RSS_CHILD", &dir)
        .output()
        .expect("the RSS child runs");
    let text = String::from_utf8_lossy(&child.stdout);
    let f: Vec<f64> = text.split_whitespace().filter_map(|v| v.parse().ok()).collect();
    let rss = if f.len() == 4 { (f[1] - f[0]) * 1024.0 / f[2] } else { f64::NAN };
    row(
        "index memory per stored block",
        format!("{estimate:.0} B (estimate from the structures), {rss:.0} B (RSS growth of a fresh process at open)"),
    );

    let mut out = std::io::stdout();
    writeln!(out, "\n| measurement | result |\n| --- | --- |").unwrap();
    for (name, value) in &rows {
        writeln!(out, "| {name} | {value} |").unwrap();
    }
}
