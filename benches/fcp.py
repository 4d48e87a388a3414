#!/usr/bin/env python3
"""FCP against pamphlet's own CLI: the same document inserted at one node of a small local
darknet and fetched at another, through three interfaces, in rotating order:

- cli:  `pamphlet insert FILE` at node 0, `pamphlet fetch URI -o OUT` at node 2 (the JSON API);
- py:   pyfreenet3's `fcpput -P PORT CHK@ FILE` / `fcpget -P PORT URI OUT` (FCP, unchanged tools);
- raw:  this script speaking FCP on a socket (ClientHello, ClientPut with Data, PutSuccessful;
        ClientGet, DataFound, AllData), which leaves out the Python tools' own start-up and
        their 0.1 s message polling, so it shows what the protocol itself costs.

Each run inserts a fresh random file (so no run is served by an earlier one's blocks);
times are wall clock around the whole command (process start included for cli and py).

    cargo build -p pamphlet                      # or --release, then --bin target/release/pamphlet
    python3 benches/fcp.py [--bin target/debug/pamphlet] [--venv target/venv/pyfreenet3-0.7.0]
                           [--mib 5] [--rounds 5]
"""
import argparse, os, socket, statistics, subprocess, sys, tempfile, time


def run(cmd, **kw):
    out = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed: {out.stderr}")
    return out.stdout


class Fcp:
    """A minimal FCP client: enough for one put and one get."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.buf = bytearray()  # grows in place: a 5 MiB AllData is not copied once per chunk
        self.send("ClientHello", {"Name": f"bench-{os.getpid()}-{time.monotonic_ns()}", "ExpectedVersion": "2.0"})
        assert self.recv()[0] == "NodeHello"

    def send(self, name, fields, data=None):
        lines = [name] + [f"{k}={v}" for k, v in fields.items()]
        if data is None:
            self.s.sendall(("\n".join(lines) + "\nEndMessage\n").encode())
        else:
            self.s.sendall(("\n".join(lines) + f"\nDataLength={len(data)}\nData\n").encode() + data)

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.s.recv(1 << 16)
            if not chunk:
                sys.exit("the node closed the FCP connection")
            self.buf += chunk
        at = self.buf.index(b"\n")
        line = self.buf[:at].decode()
        del self.buf[: at + 1]
        return line

    def recv(self):
        name = self.line()
        while not name:
            name = self.line()
        fields = {}
        while True:
            line = self.line()
            if line == "EndMessage":
                return name, fields, None
            if line == "Data":
                n = int(fields["DataLength"])
                while len(self.buf) < n:
                    chunk = self.s.recv(1 << 20)
                    if not chunk:
                        sys.exit("the node closed the FCP connection inside Data")
                    self.buf += chunk
                data = bytes(self.buf[:n])
                del self.buf[:n]
                return name, fields, data
            k, _, v = line.partition("=")
            fields[k] = v

    def until(self, *names):
        while True:
            m = self.recv()
            if m[0] in names:
                return m

    def close(self):
        self.s.close()


def raw_put(port, path):
    c = Fcp(port)
    c.send("ClientPut", {"Identifier": "p", "URI": "CHK@", "UploadFrom": "direct"}, open(path, "rb").read())
    name, fields, _ = c.until("PutSuccessful", "PutFailed", "ProtocolError")
    c.close()
    if name != "PutSuccessful":
        sys.exit(f"raw put: {name} {fields}")
    return fields["URI"]


def raw_get(port, uri, out):
    c = Fcp(port)
    c.send("ClientGet", {"Identifier": "g", "URI": uri, "ReturnType": "direct"})
    name, fields, _ = c.until("DataFound", "GetFailed", "ProtocolError")
    if name != "DataFound":
        sys.exit(f"raw get: {name} {fields}")
    _, _, data = c.until("AllData")
    c.close()
    open(out, "wb").write(data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/debug/pamphlet")
    ap.add_argument("--venv", default="target/venv/pyfreenet3-0.7.0")
    ap.add_argument("--mib", type=float, default=5)
    ap.add_argument("--rounds", type=int, default=6, help="a multiple of 3 puts each way first, second and last equally often")
    a = ap.parse_args()
    pam, py = os.path.abspath(a.bin), os.path.join(os.path.abspath(a.venv), "bin")
    size = int(a.mib * 1024 * 1024)
    with tempfile.TemporaryDirectory() as root:
        dn = os.path.join(root, "dn")
        run([pam, "darknet", "up", "--nodes", "3", "--degree", "2", "--seed", "1", "--store-mib", "256", "--dir", dn])
        try:
            n0, n2 = os.path.join(dn, "node0"), os.path.join(dn, "node2")
            p0 = int(open(os.path.join(n0, "fcp.addr")).read().strip().rsplit(":", 1)[1])
            p2 = int(open(os.path.join(n2, "fcp.addr")).read().strip().rsplit(":", 1)[1])

            def cli(f, o):
                uri = run([pam, "insert", f, "--dir", n0]).strip().splitlines()[-1]
                t = time.monotonic()
                run([pam, "fetch", uri, "-o", o, "--dir", n2])
                return uri, t

            def pyf(f, o):
                uri = run([os.path.join(py, "fcpput"), "-P", str(p0), "CHK@", f]).strip().splitlines()[-1]
                t = time.monotonic()
                run([os.path.join(py, "fcpget"), "-P", str(p2), uri, o])
                return uri, t

            def raw(f, o):
                uri = raw_put(p0, f)
                t = time.monotonic()
                raw_get(p2, uri, o)
                return uri, t

            ways = [("cli", cli), ("py", pyf), ("raw", raw)]
            times = {w: {"insert": [], "fetch": []} for w, _ in ways}
            for r in range(a.rounds):
                order = ways[r % 3:] + ways[: r % 3]
                for name, f in order:
                    src, dst = os.path.join(root, "in.bin"), os.path.join(root, f"out-{name}.bin")
                    data = os.urandom(size)
                    open(src, "wb").write(data)
                    if os.path.exists(dst):
                        os.remove(dst)
                    t0 = time.monotonic()
                    _, t1 = f(src, dst)
                    t2 = time.monotonic()
                    if open(dst, "rb").read() != data:
                        sys.exit(f"{name}: the fetched document differs")
                    times[name]["insert"].append(t1 - t0)
                    times[name]["fetch"].append(t2 - t1)
                    print(f"round {r + 1} {name}: insert {t1 - t0:.2f} s, fetch {t2 - t1:.2f} s", flush=True)
        finally:
            run([pam, "darknet", "down", "--dir", dn])
    print(f"\n{a.mib:g} MiB, {a.rounds} rounds, load average {os.getloadavg()[0]:.1f} at the end")
    print("| | insert median (min–max) | fetch median (min–max) | insert+fetch median | vs cli |")
    print("|---|---|---|---|---|")
    base = statistics.median([i + f for i, f in zip(times["cli"]["insert"], times["cli"]["fetch"])])
    for name, _ in ways:
        ins, fet = times[name]["insert"], times[name]["fetch"]
        tot = statistics.median([i + f for i, f in zip(ins, fet)])
        print(f"| {name} | {statistics.median(ins):.2f} s ({min(ins):.2f}–{max(ins):.2f}) "
              f"| {statistics.median(fet):.2f} s ({min(fet):.2f}–{max(fet):.2f}) | {tot:.2f} s | {100 * (tot / base - 1):+.0f}% |")


if __name__ == "__main__":
    main()
