#!/usr/bin/env python3
"""Darknet benchmark: how long a local darknet takes to come up and settle, fetch latency,
and memory per node process. Loopback only; every node is a real `pamphlet node run`.

    cargo build --release -p pamphlet
    python3 benches/darknet.py [--sizes 16,50,100] [--fetches 20]

Settling: swapping runs (every node every 500 ms) until the mean ln(link length) has not
improved by more than 0.02 over 3 s. Latency: at N = 50 (after settling), single-block
(32 KiB) and 1 MiB documents are inserted at random nodes and fetched at other random
nodes; median and p95 of the CLI's wall time for `pamphlet fetch` (which includes the
process start and the API round trips). Memory: VmRSS of every node process.
"""
import argparse, json, os, random, statistics, subprocess, sys, tempfile, time

BIN = os.path.join(os.path.dirname(__file__), "..", "target", "release", "pamphlet")


def run(*args):
    out = subprocess.run([BIN, *args], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"pamphlet {' '.join(args)} failed: {out.stderr}")
    return out.stdout


def status(d):
    return json.loads(run("darknet", "status", "--json", "--dir", d))


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def bench(n, fetches, root):
    d = os.path.join(root, f"dn{n}")
    t0 = time.monotonic()
    run("darknet", "up", "--nodes", str(n), "--degree", "4", "--seed", "1", "--store-mib", "8", "--dir", d)
    up = time.monotonic() - t0
    best, last_gain, series = status(d)["mean_log_link_length"], time.monotonic(), []
    while time.monotonic() - last_gain < 3.0 and time.monotonic() - t0 < 120:
        time.sleep(0.5)
        m = status(d)["mean_log_link_length"]
        series.append(m)
        if m < best - 0.02:
            best, last_gain = m, time.monotonic()
    settled = last_gain - t0
    layout = json.load(open(os.path.join(d, "darknet.json")))
    rss = [rss_mib(node["pid"]) for node in layout["nodes"]]
    result = {"nodes": n, "up_s": round(up, 2), "settled_s": round(settled, 2), "mean_log_link": round(best, 3),
              "rss_mib_median": round(statistics.median(rss), 1), "rss_mib_max": round(max(rss), 1)}
    if fetches:
        rng = random.Random(1)
        for label, size in (("32k", 30 * 1024), ("1m", 1 << 20)):
            times = []
            for k in range(fetches):
                a, b = rng.sample(range(n), 2)
                path = os.path.join(root, f"doc-{label}-{k}")
                with open(path, "wb") as f:
                    f.write(os.urandom(size))
                uri = run("--dir", os.path.join(d, f"node{a}"), "insert", path).strip().splitlines()[-1]
                t = time.monotonic()
                run("--dir", os.path.join(d, f"node{b}"), "fetch", uri, "-o", path + ".out")
                times.append((time.monotonic() - t) * 1000)
            result[f"fetch_{label}_ms_median"] = round(statistics.median(times), 1)
            result[f"fetch_{label}_ms_p95"] = round(pct(times, 95), 1)
    run("darknet", "down", "--dir", d)
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="16,50,100")
    ap.add_argument("--fetches", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="pamphlet-bench-") as root:
        for n in [int(x) for x in args.sizes.split(",")]:
            print(json.dumps(bench(n, args.fetches if n == 50 else 0, root)), flush=True)


if __name__ == "__main__":
    main()
