#!/usr/bin/env python3
"""Gateway benchmark: a 20-page freesite with images, read through a gateway of a local
darknet. Loopback only; every node is a real `pamphlet node run`.

    cargo build --release -p pamphlet
    python3 benches/gateway.py [--nodes 16] [--pages 20] [--bin target/release/pamphlet]

The site: `index.html` and `--pages` pages of about 6 KB of text, each linking the
others, using the shared `style.css`, and showing two images of its own (a 24 KB and a
48 KB PNG), 1.5 MB in all. It is inserted with `pamphlet insert --site` at node 0 and read
through the gateway of the node in the middle of the list (`gateway.addr`), once in page
order ("first visit": nothing of the site fetched through that node yet) and once more
("second visit": the blocks are in that node's cache now).

For each page: time to first byte (request sent until the status line and headers are in:
the gateway fetches the manifest and the page, filters it, and answers), and full load
(the page, then every `src`/`href` in the filtered HTML that points into the site, six at
a time like a browser's per-host limit; the gateway sends `Cache-Control: no-store`, so
the stylesheet is fetched for every page as a browser would). Median and p95 over pages.
"""
import argparse, concurrent.futures, http.client, json, os, random, re, statistics, struct, subprocess, sys
import tempfile, time, zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def run(bin_, *args):
    out = subprocess.run([bin_, *args], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"pamphlet {' '.join(args)} failed: {out.stderr}")
    return out.stdout


def png(width, height, rng):
    """A valid PNG of random pixels (incompressible, so its size is what we ask for)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\x00" + rng.randbytes(width * 3) for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 0)) + chunk(b"IEND", b"")


def make_site(root, pages, rng):
    os.makedirs(os.path.join(root, "img"))
    words = "freesites live inside the network and are read through a local gateway that filters them".split()
    names = [f"page{i:02}.html" for i in range(pages)]
    with open(os.path.join(root, "style.css"), "w") as f:
        f.write("body { font-family: Georgia, serif; max-width: 40em; margin: auto; }\n"
                "h1 { color: #224; } img { display: block; margin: 1em 0; } .nav a { margin-right: .5em; }\n")
    nav = "<p class=nav>" + " ".join(f'<a href="{n}">{n[:-5]}</a>' for n in names) + "</p>"
    for i, name in enumerate(["index.html"] + names):
        text = " ".join(rng.choice(words) for _ in range(900))
        imgs = ""
        if name != "index.html":
            for tag, (w, h) in (("a", (80, 100)), ("b", (160, 100))):
                img = f"img/p{i:02}{tag}.png"
                with open(os.path.join(root, img), "wb") as f:
                    f.write(png(w, h, rng))
                imgs += f'<img src="{img}" alt="figure {tag}" width="{w}" height="{h}">'
        with open(os.path.join(root, name), "w") as f:
            f.write(f"<!DOCTYPE html><html><head><title>{name}</title><link rel=stylesheet href=style.css></head>"
                    f"<body><h1>{name}</h1>{nav}{imgs}<p>{text}</p></body></html>")
    return ["index.html"] + names


def get(addr, path):
    """(seconds to first byte, seconds to the last byte, status, body)."""
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=300)
    t0 = time.monotonic()
    conn.request("GET", path)
    resp = conn.getresponse()
    ttfb = time.monotonic() - t0
    body = resp.read()
    total = time.monotonic() - t0
    conn.close()
    return ttfb, total, resp.status, body


def load_page(addr, path, pool):
    """A page and its sub-resources, as a browser would: (ttfb, full load, resources)."""
    t0 = time.monotonic()
    ttfb, _, status, body = get(addr, path)
    if status != 200:
        sys.exit(f"GET {path}: {status} {body[:300]!r}")
    refs = sorted(set(re.findall(rb'(?:src|href)="(/[A-Z]{3}@[^"#?]+)"', body)))
    subs = [r.decode() for r in refs if not r.decode().endswith(".html")]
    for _, _, st, b in pool.map(lambda p: get(addr, p), subs):
        if st != 200:
            sys.exit(f"sub-resource of {path}: {st} {b[:300]!r}")
    return ttfb, time.monotonic() - t0, len(subs)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=16)
    ap.add_argument("--pages", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-cache", action="store_true",
                    help="darknet up --no-cache: nodes keep only the blocks they are closest to, so more of each "
                         "fetch crosses the network")
    ap.add_argument("--bin", default=os.path.join(HERE, "..", "target", "release", "pamphlet"))
    args = ap.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as root:
        d = os.path.join(root, "dn")
        run(args.bin, "darknet", "up", "--nodes", str(args.nodes), "--degree", "4", "--seed", str(args.seed),
            "--store-mib", "32", "--dir", d, *(["--no-cache"] if args.no_cache else []))
        try:
            time.sleep(3)  # links up, a few swaps
            site = os.path.join(root, "site")
            pages = make_site(site, args.pages, rng)
            size = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(site) for f in fs)
            t0 = time.monotonic()
            uri = run(args.bin, "insert", "--site", site, "--dir", os.path.join(d, "node0")).strip().splitlines()[-1]
            insert_s = time.monotonic() - t0
            reader = args.nodes // 2
            with open(os.path.join(d, f"node{reader}", "gateway.addr")) as f:
                addr = f.read().strip()
            # Blocks of the site that the reading node holds before its first visit (a small
            # darknet's inserts leave copies on many nodes).
            before = json.loads(run(args.bin, "node", "status", "--json", "--dir", os.path.join(d, f"node{reader}")))
            result = {"nodes": args.nodes, "no_cache": args.no_cache, "pages": len(pages),
                      "reader_store_blocks_before": before.get("store", {}).get("store_blocks"), "site_bytes": size, "insert_s": round(insert_s, 2),
                      "gateway_node": reader}
            with concurrent.futures.ThreadPoolExecutor(6) as pool:
                for visit in ("first", "second"):
                    ttfbs, loads, subs = [], [], 0
                    for name in pages:
                        ttfb, load, n = load_page(addr, f"/{uri.rstrip('/')}/{name}", pool)
                        ttfbs.append(ttfb)
                        loads.append(load)
                        subs += n
                    result[visit] = {
                        "ttfb_ms_median": round(statistics.median(ttfbs) * 1000, 1),
                        "ttfb_ms_p95": round(pct(ttfbs, 95) * 1000, 1),
                        "load_ms_median": round(statistics.median(loads) * 1000, 1),
                        "load_ms_p95": round(pct(loads, 95) * 1000, 1),
                        "subresources": subs,
                    }
            print(json.dumps(result, indent=1))
        finally:
            run(args.bin, "darknet", "down", "--dir", d)


if __name__ == "__main__":
    main()
