//! `pamphlet darknet wan-relay --dir DIR` (hidden; `darknet up --wan` starts it): holds one
//! TUN device per node namespace and carries every IPv4 packet from the TUN it came out of
//! to the TUN of its destination address, at the time [`Link::admit`] says, or drops it.
//!
//! Threads: one reader per TUN (blocking reads, stamped on arrival) feeding one scheduler
//! that owns every link's state and a heap of packets in flight, and writes each to its
//! destination TUN when due. One scheduler keeps the links' state single-threaded; at
//! 100 Mbit/s a link is ~8,500 packets a second, far below what one thread moves.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use rand::SeedableRng;

use super::link::{Link, Verdict};
use super::{enter, node_addr, Plan, DEVICE};

/// A packet read from node `from`'s TUN at `at`.
struct Arrival {
    from: usize,
    at: Instant,
    packet: Vec<u8>,
}

/// A packet in flight: (due, sequence, destination, packet); the heap orders by due time,
/// then by sequence (which is unique, so the packets themselves are never compared).
type InFlight = (u64, u64, usize, Vec<u8>);

/// Opens node `i`'s TUN inside its namespace (on a thread of its own, which enters the
/// namespace; the device stays bound to it afterwards whichever thread uses it).
fn open_tun(plan: &Plan, i: usize) -> Result<tun::Device> {
    let ns = plan.netns(i);
    std::thread::scope(|s| {
        s.spawn(|| {
            enter(&ns)?;
            let mut config = tun::Configuration::default();
            config.tun_name(DEVICE).address(node_addr(i)).netmask((255, 255, 0, 0)).mtu(1500).up();
            tun::create(&config).with_context(|| format!("cannot make the TUN device in {ns}"))
        })
        .join()
        .map_err(|_| anyhow!("opening the TUN of {ns} panicked"))?
    })
}

/// The IPv4 destination of `packet`, if it is an IPv4 packet.
fn destination(packet: &[u8]) -> Option<Ipv4Addr> {
    (packet.len() >= 20 && packet[0] >> 4 == 4).then(|| Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]))
}

/// Runs the relay until killed (`darknet down`).
pub(crate) fn run(dir: &Path) -> Result<()> {
    let plan = Plan::load(dir)?.with_context(|| format!("{} holds no --wan darknet", dir.display()))?;
    let n = plan.nodes;
    let devices: Vec<Arc<tun::Device>> = (0..n).map(|i| open_tun(&plan, i).map(Arc::new)).collect::<Result<_>>()?;
    let by_addr: HashMap<Ipv4Addr, usize> = (0..n).map(|i| (node_addr(i), i)).collect();

    let (tx, rx) = mpsc::channel::<Arrival>();
    for (from, dev) in devices.iter().enumerate() {
        let (dev, tx) = (Arc::clone(dev), tx.clone());
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65_536];
            loop {
                match dev.recv(&mut buf) {
                    Ok(len) => {
                        let arrival = Arrival { from, at: Instant::now(), packet: buf[..len].to_vec() };
                        if tx.send(arrival).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        eprintln!("reading the TUN of node {from}: {e}");
                        return;
                    }
                }
            }
        });
    }
    drop(tx);
    std::fs::write(dir.join("wan-relay.ready"), std::process::id().to_string())?;
    eprintln!(
        "WAN relay up: {n} nodes, every link direction {} ({} links with their own)",
        plan.spec,
        plan.links.len()
    );

    let start = Instant::now();
    let ns_since = |t: Instant| t.saturating_duration_since(start).as_nanos() as u64;
    // Directed links, made as packets first cross them (n² would be large for big darknets).
    let mut links: HashMap<(usize, usize), Link> = HashMap::new();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(plan.seed);
    let mut heap: BinaryHeap<Reverse<InFlight>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut next_stats = Instant::now();
    loop {
        // Deliver everything due.
        let now = ns_since(Instant::now());
        while heap.peek().is_some_and(|Reverse((due, ..))| *due <= now) {
            let Some(Reverse((_, _, to, packet))) = heap.pop() else { break };
            // A full TUN queue (the node is not reading) drops the packet, as a NIC would.
            let _ = devices[to].send(&packet);
        }
        if Instant::now() >= next_stats {
            write_stats(dir, &links);
            next_stats = Instant::now() + Duration::from_secs(1);
        }
        let wait = heap.peek().map_or(Duration::from_secs(1), |Reverse((due, ..))| {
            Duration::from_nanos(due.saturating_sub(ns_since(Instant::now())))
        });
        let arrival = match rx.recv_timeout(wait.min(Duration::from_secs(1))) {
            Ok(a) => a,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => return Err(anyhow!("every TUN reader stopped")),
        };
        // Take every arrival already waiting before sleeping again.
        for a in std::iter::once(arrival).chain(rx.try_iter()) {
            // Only to another node of this darknet; anything else (IPv6 router
            // solicitations, stray addresses) goes nowhere.
            let Some(to) = destination(&a.packet).and_then(|d| by_addr.get(&d).copied()) else { continue };
            if to == a.from {
                continue;
            }
            let link = links.entry((a.from, to)).or_insert_with(|| Link::new(plan.spec_for(a.from, to)));
            if let Verdict::Deliver(due) = link.admit(ns_since(a.at), a.packet.len(), &mut rng) {
                seq += 1;
                heap.push(Reverse((due, seq, to, a.packet)));
            }
        }
    }
}

/// Writes what every link carried to `DIR/wan-stats.json` (via a rename: readers never see
/// half a file).
fn write_stats(dir: &Path, links: &HashMap<(usize, usize), Link>) {
    let list: Vec<serde_json::Value> = links
        .iter()
        .map(|(&(from, to), l)| {
            let mut v = serde_json::to_value(l.stats).unwrap_or_default();
            v["from"] = from.into();
            v["to"] = to.into();
            v
        })
        .collect();
    let tmp = dir.join("wan-stats.json.tmp");
    let body = serde_json::json!({ "links": list }).to_string();
    if std::fs::write(&tmp, body).is_ok() {
        let _ = std::fs::rename(&tmp, dir.join("wan-stats.json"));
    }
}
