#!/usr/bin/env python3
"""WAN darknet benchmark: a document fetched across 4 hops of slow, lossy links.

    cargo build --release -p pamphlet
    (or PAMPHLET_BIN=/path/to/pamphlet to measure another build)
    sudo python3 benches/wan.py --wan delay=40ms,rate=20mbit [--mib 10] [--parallel 16] [--runs 1] [--transport udp]

Six nodes in a line (0-1-2-3-4-5), each in its own network namespace behind the userspace
relay of `darknet up --wan` (docs/darknet.md). The documents (fresh random bytes) are
inserted at node 0 while the link 1-2 is cut (its two friend entries and its edge taken
out, the darknet restarted), so every block ends at node 1 and nowhere else; then the link
is restored and node 5 fetches: every block crosses the 4 links 5-4-3-2-1 and back.

Printed per run: the fetch's wall time (the `pamphlet fetch` command: process start, API,
routing, FEC decode, writing the file) and goodput; the wall time of fetching a one-block
document (20 KiB) over the same path, the latency before a fetch's first block is in (the
pipeline hands nothing out before the document is decoded, so a person's first byte is
the whole fetch); what the relay counted (packets lost and dropped by full queues), in all
and per directed link; and the blocks each node offered to its friends during the fetch
(offers after swaps, `offers_per_second`), which share the links with the fetch.
`--config KEY=VALUE` sets a config.toml field of every node (e.g. offers_per_second=0).

    RUST_LOG=warn,pamphlet_node::client::pipeline=trace,pamphlet_node::transport::udp=trace sudo -E python3 benches/wan.py ... --keep-logs DIR

keeps every node's log in DIR; node 5's then traces each block answered (latency, requests
in flight, the fetch window), and every node each UDP link's state every 100 ms (congestion
mode, window, bandwidth, RTT, frames queued, datagrams sent and lost): docs/benchmarks.md,
"Where the time went" and "Session 11".
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time

BIN = os.environ.get("PAMPHLET_BIN") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release", "pamphlet")


def run(*args):
    out = subprocess.run([BIN, *args], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"pamphlet {' '.join(args)} failed: {out.stderr}")
    return out.stdout


def set_config(node_dir, key, value):
    path = os.path.join(node_dir, "config.toml")
    lines = open(path).read().splitlines()
    found = any(l.split("=")[0].strip() == key for l in lines)
    lines = [f"{key} = {value}" if l.split("=")[0].strip() == key else l for l in lines]
    # A key the file does not name yet is added (the node refuses one it does not know).
    open(path, "w").write("\n".join(lines + ([] if found else [f"{key} = {value}"])) + "\n")


def relay_counts(d):
    try:
        links = json.load(open(os.path.join(d, "wan-stats.json")))["links"]
    except (OSError, ValueError):
        return {}
    total = {k: sum(l[k] for l in links) for k in ("packets", "lost", "queue_drops")}
    total["per_link"] = {f"{l['from']}>{l['to']}": [l["lost"], l["queue_drops"]] for l in links}
    return total


def key_value(text):
    """`--config KEY=VALUE`, refused at once when it is not that shape."""
    key, eq, value = text.partition("=")
    if not eq or not key.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key.strip(), value.strip()


def offers_sent(d):
    """Blocks each node has offered since it started (offers on swap and on return)."""
    sent = []
    for i in range(6):
        out = subprocess.run([BIN, "node", "status", "--json", "--dir", os.path.join(d, f"node{i}")], capture_output=True, text=True)
        try:
            sent.append(json.loads(out.stdout)["durability"]["offers_sent"])
        except (ValueError, KeyError):
            sent.append(None)
    return sent


def timed_fetch(uri, out, node_dir):
    t = time.monotonic()
    run("fetch", uri, "-o", out, "--dir", node_dir)
    return time.monotonic() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wan", required=True, help="the --wan settings of every link")
    ap.add_argument("--mib", type=float, default=10)
    ap.add_argument("--parallel", type=int, default=16, help="blocks in flight of node 5's fetch")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--small", type=int, default=5, help="one-block fetches (time to first block)")
    ap.add_argument("--transport", choices=["tcp", "udp"], help="the links' transport (darknet up --transport; its default when absent)")
    ap.add_argument("--config", action="append", default=[], metavar="KEY=VALUE", type=key_value,
                    help="a config.toml setting for every node (repeatable), e.g. offers_per_second=0")
    ap.add_argument("--keep-logs", help="copy every node's node.log here before cleaning up (set RUST_LOG to fill them)")
    a = ap.parse_args()
    root = tempfile.mkdtemp(prefix="pamphlet-wan-")
    d = os.path.join(root, "dn")
    graph = os.path.join(root, "line.txt")
    open(graph, "w").write("".join(f"{i} {i + 1}\n" for i in range(5)))
    store = max(64, int(a.mib * 2 * (a.runs + 1)) + 16)
    try:
        transport = ["--transport", a.transport] if a.transport else []
        run("darknet", "up", "--graph", graph, "--seed", "1", "--store-mib", str(store), "--dir", d, "--wan", a.wan, *transport)
        run("darknet", "down", "--dir", d)
        set_config(os.path.join(d, "node5"), "parallel", a.parallel)
        for key, value in a.config:
            for i in range(6):
                set_config(os.path.join(d, f"node{i}"), key, value)
        layout_path, saved = os.path.join(d, "darknet.json"), {}
        for node, other in ((1, 3), (2, 2)):  # node 1 forgets 10.77.0.3 (node 2), node 2 forgets node 1
            path = os.path.join(d, f"node{node}", "friends")
            saved[path] = open(path).read()
            open(path, "w").write("".join(l for l in saved[path].splitlines(True) if f":10.77.0.{other}:" not in l))
        saved[layout_path] = open(layout_path).read()
        layout = json.loads(saved[layout_path])
        layout["edges"] = [e for e in layout["edges"] if sorted(e) != [1, 2]]
        open(layout_path, "w").write(json.dumps(layout))
        run("darknet", "up", "--dir", d)
        src, dst = os.path.join(d, "node0"), os.path.join(d, "node5")
        small, docs = [], []
        for i in range(a.small):
            f = os.path.join(root, f"small{i}")
            open(f, "wb").write(os.urandom(20 * 1024))
            small.append(run("insert", f, "--dir", src).strip().splitlines()[-1])
        for r in range(a.runs):
            f = os.path.join(root, f"doc{r}")
            open(f, "wb").write(os.urandom(int(a.mib * 1024 * 1024)))
            docs.append((f, run("insert", f, "--dir", src).strip().splitlines()[-1]))
        run("darknet", "down", "--dir", d)
        for path, text in saved.items():
            open(path, "w").write(text)
        run("darknet", "up", "--dir", d)
        small_s = [timed_fetch(uri, os.path.join(root, "small.got"), dst) for uri in small]
        for f, uri in docs:
            time.sleep(1.1)  # the relay's counts are rewritten every second
            before, offered = relay_counts(d), offers_sent(d)
            secs = timed_fetch(uri, f + ".got", dst)
            offered = [None if was is None or now is None else now - was for was, now in zip(offered, offers_sent(d))]
            assert open(f + ".got", "rb").read() == open(f, "rb").read(), "fetched bytes differ"
            time.sleep(1.1)
            after = relay_counts(d)
            delta = {k: after.get(k, 0) - before.get(k, 0) for k in after if k != "per_link"}
            delta["lost_and_queue_drops_by_link"] = {
                k: [v[0] - before.get("per_link", {}).get(k, [0, 0])[0], v[1] - before.get("per_link", {}).get(k, [0, 0])[1]]
                for k, v in after.get("per_link", {}).items()
                if v != before.get("per_link", {}).get(k, [0, 0])
            }
            print(json.dumps({
                "wan": a.wan, "mib": a.mib, "parallel": a.parallel, "fetch_s": round(secs, 2),
                "goodput_mbit": round(a.mib * 8 * 1.048576 / secs, 2),
                "one_block_fetch_s_median": round(statistics.median(small_s), 3) if small_s else None,
                "one_block_fetch_s": [round(x, 3) for x in small_s], "relay_during_fetch": delta,
                "offers_sent_during_fetch": offered,
            }), flush=True)
    finally:
        subprocess.run([BIN, "darknet", "down", "--dir", d], capture_output=True)
        if a.keep_logs:
            os.makedirs(a.keep_logs, exist_ok=True)
            for i in range(6):
                src_log = os.path.join(d, f"node{i}", "node.log")
                if os.path.exists(src_log):
                    subprocess.run(["cp", src_log, os.path.join(a.keep_logs, f"node{i}.log")])
        subprocess.run(["rm", "-rf", root])


if __name__ == "__main__":
    main()
