//! The WAN test darknet (`pamphlet darknet up --wan …`): six nodes in a line, each in its own
//! network namespace, every packet between them delayed 20 ms and dropped at 1% by the
//! userspace relay; a 2 MiB document inserted at one end comes back byte-identical at the
//! other, and `darknet down` leaves no namespace, relay or node behind.
//!
//! Not root: skipped with the reason printed (and fails under CI, `CI=true`, which runs as
//! root).

// Tests drive nodes by the real clock, and report what they skipped on stderr.
#![allow(clippy::disallowed_methods, clippy::print_stderr)]

use std::process::Command;

use pamphlet_tests::{pamphlet, pamphlet_ok, DarknetDown};
use serde_json::Value;

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

fn namespaces() -> String {
    Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// Live processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> usize {
    let Ok(procs) = std::fs::read_dir("/proc") else { return 0 };
    procs
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle) && !c.is_empty())
        })
        .count()
}

#[test]
fn two_mib_cross_a_lossy_delayed_line_of_six_namespaces() {
    if !is_root() {
        let why = "--wan makes network namespaces, which needs root";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}: CI runs as root");
        eprintln!("SKIPPED: {why} (run as root to test WAN links)");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("wan");
    let d = dir.to_str().unwrap().to_owned();
    let graph = root.path().join("line.txt");
    // One link with settings of its own (the graph file's third field), over --wan's.
    std::fs::write(&graph, "0 1\n1 2\n2 3 delay=60ms\n3 4\n4 5\n").unwrap();
    let up = pamphlet(&[
        "darknet",
        "up",
        "--dir",
        &d,
        "--graph",
        graph.to_str().unwrap(),
        "--seed",
        "3",
        "--store-mib",
        "8",
        "--no-cache",
        "--wan",
        "delay=20ms,loss=1%",
    ]);
    let down = DarknetDown(d.clone());
    assert!(up.status.success(), "darknet up --wan failed: {}", String::from_utf8_lossy(&up.stderr));
    let prefix = std::fs::read_to_string(dir.join("node0/netns")).unwrap();
    let prefix = prefix.trim().trim_end_matches("-0").to_owned();
    assert_eq!(namespaces().matches(&format!("{prefix}-")).count(), 6, "{}", namespaces());

    // Status measures every link's round trip through the relay: 2 × 20 ms at least.
    let status: Value = serde_json::from_str(&pamphlet_ok(&["darknet", "status", "--json", "--dir", &d])).unwrap();
    let links = status["wan"]["links"].as_array().unwrap();
    assert_eq!(links.len(), 5);
    for l in links {
        let rtt = l["rtt_ms"].as_f64().unwrap_or_else(|| panic!("no round trip measured on {l}"));
        let own = (l["a"].as_u64(), l["b"].as_u64()) == (Some(2), Some(3));
        let (delay, settings) =
            if own { (60.0, "delay=60ms jitter=0ms loss=1%") } else { (20.0, "delay=20ms jitter=0ms loss=1%") };
        assert!(rtt >= 2.0 * delay, "a round trip of {rtt} ms cannot have crossed two {delay} ms delays: {l}");
        assert!(l["settings"].as_str().unwrap().starts_with(settings), "{l}");
    }

    // 2 MiB in at one end, out at the other: four relays between, 1% of packets lost on each.
    let data: Vec<u8> = (0..2u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let file = root.path().join("doc.bin");
    std::fs::write(&file, &data).unwrap();
    let out = pamphlet_ok(&["insert", file.to_str().unwrap(), "--dir", &format!("{d}/node0")]);
    let uri = out.lines().last().unwrap().to_owned();
    let got = root.path().join("got.bin");
    pamphlet_ok(&["fetch", &uri, "-o", got.to_str().unwrap(), "--dir", &format!("{d}/node5")]);
    assert!(std::fs::read(&got).unwrap() == data, "the fetched document differs from the inserted one");

    // The relay saw loss on the links (real packets were dropped).
    let stats: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("wan-stats.json")).unwrap()).unwrap();
    let lost: u64 = stats["links"].as_array().unwrap().iter().map(|l| l["lost"].as_u64().unwrap()).sum();
    assert!(lost > 0, "no packet was dropped: {stats}");

    // Down removes every namespace, the relay and the nodes.
    drop(down);
    assert!(!namespaces().contains(&prefix), "namespaces left behind: {}", namespaces());
    assert_eq!(processes_mentioning(&d), 0, "processes of the darknet left running");
}
