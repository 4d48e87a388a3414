//! `pamphlet darknet up --wan SPEC`: every node in its own network namespace, joined through
//! a userspace packet relay that delays, rate-limits and drops real IP packets as netem
//! would (this kernel, and CI's, has no netem). docs/darknet.md, "WAN links".
//!
//! Layout: node `i` runs in namespace `<prefix>-<i>` on a TUN device `pwan0` with address
//! 10.77.x.y/16 ([`node_addr`]); `pamphlet darknet wan-relay` (a daemon `up` starts) holds
//! every TUN and moves each packet to its destination's TUN after [`link::Link`] decided
//! when (or whether). The prefix is derived from the darknet directory, so `down` finds
//! every namespace it made even when the command that made them was killed. Nothing is
//! routed off the machine: the namespaces hold only `lo` and their TUN, and the relay
//! writes only into those TUNs.
//!
//! Files in the darknet directory: `wan.json` (the [`Plan`]), `wan-relay.log`,
//! `wan-relay.ready` (written once every TUN is up), `wan-stats.json` (what each link
//! carried, rewritten every second); in each node directory, `netns` (its namespace's
//! name), which makes every `pamphlet … --dir NODE` command talk to the node inside it.

pub(crate) mod graph;
pub(crate) mod link;
pub(crate) mod relay;
pub(crate) mod spec;

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub(crate) use graph::{GraphFile, LinkOverride};
pub(crate) use spec::LinkSpec;

use crate::error::cli_error;

/// The TUN device's name inside every namespace.
pub(crate) const DEVICE: &str = "pwan0";

/// What `up --wan` decided, kept in `DIR/wan.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Plan {
    /// The settings of every link direction without settings of its own.
    pub(crate) spec: LinkSpec,
    /// Links with settings of their own (from the graph file), both directions.
    #[serde(default)]
    pub(crate) links: Vec<LinkOverride>,
    /// Seeds the relay's loss and jitter draws.
    pub(crate) seed: u64,
    /// Namespace of node `i`: `{prefix}-{i}`.
    pub(crate) prefix: String,
    /// How many nodes.
    pub(crate) nodes: usize,
}

/// Node `i`'s address inside its namespace (10.77.0.1, 10.77.0.2, …).
pub(crate) fn node_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 77, (i / 250) as u8, (i % 250 + 1) as u8)
}

/// The namespace prefix of the darknet in `dir`: `pw` and 8 hex digits of a hash of its
/// absolute path (short: namespace names become device and file names).
fn prefix_of(dir: &Path) -> Result<String> {
    let abs = std::fs::canonicalize(dir).with_context(|| format!("cannot resolve {}", dir.display()))?;
    // FNV-1a: stable across builds and versions (std's hasher is not promised to be).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in abs.as_os_str().as_encoded_bytes() {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    Ok(format!("pw{:08x}", h as u32))
}

fn plan_file(dir: &Path) -> PathBuf {
    dir.join("wan.json")
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}

/// Runs `ip ARGS`, failing with what it said.
fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("cannot run `ip` (iproute2), which --wan needs to make network namespaces")?;
    if !out.status.success() {
        bail!("`ip {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

impl Plan {
    /// Decides the WAN layout of a new darknet of `nodes` nodes in `dir` and records it.
    /// Refuses clearly, before anything is made, when not root.
    pub(crate) fn create(
        dir: &Path,
        nodes: usize,
        (spec, links): (LinkSpec, Vec<LinkOverride>),
        seed: u64,
    ) -> Result<Self> {
        if !is_root() {
            return Err(cli_error(
                "usage",
                "--wan puts every node in its own network namespace behind a packet relay, which needs root \
                 (run it as root, e.g. with sudo); without --wan the darknet runs on loopback as any user",
            ));
        }
        if nodes > 250 * 250 {
            bail!("--wan supports at most 62500 nodes");
        }
        let plan = Self { spec, links, seed, prefix: prefix_of(dir)?, nodes };
        std::fs::write(plan_file(dir), serde_json::to_string_pretty(&plan)?)
            .with_context(|| format!("cannot write {}", plan_file(dir).display()))?;
        Ok(plan)
    }

    /// The darknet in `dir`'s plan, if it was made with `--wan`.
    pub(crate) fn load(dir: &Path) -> Result<Option<Self>> {
        match std::fs::read_to_string(plan_file(dir)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", plan_file(dir).display())),
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .with_context(|| format!("{} is damaged", plan_file(dir).display())),
        }
    }

    /// The settings of the link direction from node `from` to node `to`.
    pub(crate) fn spec_for(&self, from: usize, to: usize) -> LinkSpec {
        self.links.iter().find(|l| (l.a, l.b) == (from, to) || (l.b, l.a) == (from, to)).map_or(self.spec, |l| l.spec)
    }

    /// Node `i`'s namespace.
    pub(crate) fn netns(&self, i: usize) -> String {
        format!("{}-{i}", self.prefix)
    }

    /// The command that runs `exe` inside node `i`'s namespace.
    pub(crate) fn command(&self, i: usize, exe: &Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.netns(i)]).arg(exe);
        c
    }

    /// Makes the namespaces and starts the relay (after removing what a killed earlier run
    /// left); returns once every TUN is up. `node_dirs[i]` learns its namespace.
    pub(crate) fn bring_up(&self, dir: &Path, node_dirs: &[&Path]) -> Result<()> {
        if !is_root() {
            return Err(cli_error("usage", "this darknet was made with --wan, which needs root: run it as root"));
        }
        tear_down(dir)?;
        for (i, node_dir) in node_dirs.iter().enumerate() {
            let ns = self.netns(i);
            ip(&["netns", "add", &ns])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            if let Some(cc) = self.spec.cc {
                set_congestion_control(&ns, cc.name())?;
            }
            std::fs::write(node_dir.join("netns"), &ns)?;
        }
        let ready = dir.join("wan-relay.ready");
        let _ = std::fs::remove_file(&ready);
        let log = std::fs::File::create(dir.join("wan-relay.log"))?;
        let exe = std::env::current_exe().context("cannot find the pamphlet binary")?;
        // The relay stands for the network, not for a node: it runs at a real-time
        // priority (`chrt --fifo`, util-linux) so that when the nodes load the machine its
        // readers still stamp packets when they arrive and it delivers them when due (a
        // reader kept waiting would stamp a backlog as one burst). Without chrt it runs
        // as any process, and says so in its log.
        let spawn = |real_time: bool| -> std::io::Result<std::process::Child> {
            let mut c = if real_time {
                let mut c = Command::new("chrt");
                c.args(["--fifo", "20"]).arg(&exe);
                c
            } else {
                Command::new(&exe)
            };
            c.args(["darknet", "wan-relay", "--dir"]).arg(dir).stdin(Stdio::null());
            c.stdout(log.try_clone()?).stderr(log.try_clone()?).spawn()
        };
        // chrt may be missing, or the kernel may refuse (no CAP_SYS_NICE in a container).
        let real_time = Command::new("chrt")
            .args(["--fifo", "20", "true"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !real_time {
            use std::io::Write;
            writeln!(&log, "chrt --fifo unavailable or refused: the relay runs at normal priority")?;
        }
        let mut child = spawn(real_time).context("cannot start the WAN relay")?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ready.exists() {
            if let Some(status) = child.try_wait()? {
                let log = std::fs::read_to_string(dir.join("wan-relay.log")).unwrap_or_default();
                bail!("the WAN relay exited ({status}): {}", log.trim());
            }
            if Instant::now() > deadline {
                bail!("the WAN relay did not come up within 20 s; see {}", dir.join("wan-relay.log").display());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

/// Sets `net.ipv4.tcp_congestion_control` inside namespace `ns` (the setting is per
/// namespace; `/proc/sys/net` shows the namespace of the thread that opens it).
fn set_congestion_control(ns: &str, cc: &str) -> Result<()> {
    std::thread::scope(|s| {
        s.spawn(|| {
            enter(ns)?;
            std::fs::write("/proc/sys/net/ipv4/tcp_congestion_control", cc).with_context(|| {
                format!(
                    "cannot set TCP congestion control {cc} in {ns}: a namespace may use only those the host \
                     lists in net.ipv4.tcp_allowed_congestion_control"
                )
            })
        })
        .join()
        .map_err(|_| anyhow::anyhow!("setting congestion control panicked"))?
    })
}

/// Process ids of the relays serving `dir` (found by their command line, so a killed
/// `up` that recorded nothing is found too).
fn relays_of(dir: &Path) -> Vec<u32> {
    let dir = dir.as_os_str().as_encoded_bytes();
    let Ok(procs) = std::fs::read_dir("/proc") else { return Vec::new() };
    procs
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { return false };
            let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
            args.contains(&&b"wan-relay"[..]) && args.windows(2).any(|w| w[0] == b"--dir" && w[1] == dir)
        })
        .collect()
}

/// Stops the relay of `dir` and deletes every namespace named with its prefix (their TUN
/// devices go with the relay). Safe to run when nothing is there.
pub(crate) fn tear_down(dir: &Path) -> Result<()> {
    for pid in relays_of(dir) {
        let _ = Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while !relays_of(dir).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let prefix = format!("{}-", prefix_of(dir)?);
    let out = Command::new("ip").args(["netns", "list"]).output();
    let list = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        if name.strip_prefix(&prefix).is_some_and(|n| n.parse::<usize>().is_ok()) {
            ip(&["netns", "del", name])?;
        }
    }
    let _ = std::fs::remove_file(dir.join("wan-relay.ready"));
    Ok(())
}

/// Moves the calling thread into network namespace `name` (a thread's sockets are then
/// made there; other threads are not affected).
pub(crate) fn enter(name: &str) -> Result<()> {
    let path = Path::new("/run/netns").join(name);
    let f = File::open(&path).with_context(|| {
        format!("the network namespace {name} is gone (is the darknet up? `pamphlet darknet up --dir …`)")
    })?;
    rustix::thread::move_into_link_name_space(f.as_fd(), Some(rustix::thread::LinkNameSpaceType::Network))
        .with_context(|| format!("cannot enter the network namespace {name} (it needs root)"))
}

/// If the node of `node_dir` runs in a `--wan` namespace, moves the calling thread there so
/// it can reach the node's API (which listens on that namespace's loopback).
pub(crate) fn enter_node_netns(node_dir: &Path) -> Result<()> {
    match std::fs::read_to_string(node_dir.join("netns")) {
        Ok(name) => enter(name.trim()),
        Err(_) => Ok(()),
    }
}

/// A round trip from node `a`'s namespace to node `b`'s address through the relay: a TCP
/// connection attempt to a port nobody listens on (b's kernel answers with a reset, one
/// round trip later). The best of three, as loss may delay one; `None` if none came back.
fn round_trip(plan: &Plan, a: usize, b: usize) -> Option<Duration> {
    enter(&plan.netns(a)).ok()?;
    let to = SocketAddr::from((node_addr(b), 9));
    (0..3)
        .filter_map(|_| {
            let t = Instant::now();
            match TcpStream::connect_timeout(&to, Duration::from_secs(2)) {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Some(t.elapsed()),
                _ => None,
            }
        })
        .min()
}

/// The links' settings, measured round trips and what the relay counted, for `status`.
pub(crate) fn links_status(dir: &Path, edges: &[(usize, usize)]) -> Result<Option<Value>> {
    let Some(plan) = Plan::load(dir)? else { return Ok(None) };
    let stats: Value = std::fs::read_to_string(dir.join("wan-stats.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    let rtts: Vec<Option<Duration>> = std::thread::scope(|s| {
        let plan = &plan;
        let handles: Vec<_> = edges.iter().map(|&(a, b)| s.spawn(move || round_trip(plan, a, b))).collect();
        handles.into_iter().map(|h| h.join().ok().flatten()).collect()
    });
    let counted = |a: usize, b: usize| {
        stats["links"]
            .as_array()
            .and_then(|l| l.iter().find(|x| x["from"] == a && x["to"] == b).cloned())
            .unwrap_or(Value::Null)
    };
    let links: Vec<Value> = edges
        .iter()
        .zip(&rtts)
        .map(|(&(a, b), rtt)| {
            serde_json::json!({
                "a": a, "b": b,
                "settings": plan.spec_for(a, b).to_string(),
                "rtt_ms": rtt.map(|d| d.as_secs_f64() * 1e3),
                "a_to_b": counted(a, b), "b_to_a": counted(b, a),
            })
        })
        .collect();
    Ok(Some(serde_json::json!({ "settings": plan.spec.to_string(), "spec": plan.spec, "links": links })))
}

/// Prints [`links_status`] as a table.
pub(crate) fn print_links(wan: &Value) {
    let base = wan["settings"].as_str().unwrap_or("?");
    println!("WAN links, each direction unless the link says otherwise: {base}");
    println!("link      rtt(ms)  packets a→b  lost  queue-drops  packets b→a  lost  queue-drops  own settings");
    for l in wan["links"].as_array().into_iter().flatten() {
        let n = |v: &Value| v.as_u64().unwrap_or(0);
        let rtt = l["rtt_ms"].as_f64().map_or("-".to_owned(), |r| format!("{r:.1}"));
        let (ab, ba) = (&l["a_to_b"], &l["b_to_a"]);
        let own = l["settings"].as_str().filter(|s| *s != base).unwrap_or("");
        println!(
            "{:>3}-{:<3}  {rtt:>8}  {:>11}  {:>4}  {:>11}  {:>11}  {:>4}  {:>11}  {own}",
            n(&l["a"]),
            n(&l["b"]),
            n(&ab["packets"]),
            n(&ab["lost"]),
            n(&ab["queue_drops"]),
            n(&ba["packets"]),
            n(&ba["lost"]),
            n(&ba["queue_drops"])
        );
    }
}
