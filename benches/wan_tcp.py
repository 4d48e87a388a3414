#!/usr/bin/env python3
"""One plain TCP connection across one WAN link of the test darknet: what the link's TCP
alone carries, without pamphlet's frames, windows or hops (docs/wire.md, "TCP or UDP").

    cargo build --release -p pamphlet
    sudo python3 benches/wan_tcp.py --wan delay=40ms,rate=20mbit,loss=0.5% [--mib 10] [--runs 3]

`darknet up --wan` with two nodes (idle but for swaps); a receiver in node 1's namespace
and a sender in node 0's; the time is from connect to the receiver's one-byte reply after
the last byte (so it includes the handshake and one final round trip).
"""
import argparse, json, os, subprocess, sys, tempfile, time

BIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release", "pamphlet")

RECEIVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.77.0.2", 9100)); s.listen(1); print("ready", flush=True)
for _ in range(int(sys.argv[2])):
    c, _ = s.accept(); left = int(sys.argv[1])
    while left > 0:
        b = c.recv(1 << 20)
        if not b: break
        left -= len(b)
    c.sendall(b"k"); c.close()
"""

SENDER = """
import socket, sys, time
n = int(sys.argv[1]); buf = b"x" * (1 << 20)
t = time.monotonic(); c = socket.create_connection(("10.77.0.2", 9100))
left = n
while left > 0:
    k = min(left, len(buf)); c.sendall(buf[:k]); left -= k
c.recv(1); print(time.monotonic() - t)
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wan", required=True)
    ap.add_argument("--mib", type=float, default=10)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    root = tempfile.mkdtemp(prefix="pamphlet-wantcp-")
    d = os.path.join(root, "dn")
    graph = os.path.join(root, "pair.txt")
    open(graph, "w").write("0 1\n")
    n = int(a.mib * 1024 * 1024)
    try:
        out = subprocess.run([BIN, "darknet", "up", "--graph", graph, "--seed", "1", "--store-mib", "4", "--dir", d,
                              "--wan", a.wan], capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(out.stderr)
        ns = [open(os.path.join(d, f"node{i}", "netns")).read().strip() for i in range(2)]
        rx = subprocess.Popen(["ip", "netns", "exec", ns[1], sys.executable, "-c", RECEIVER, str(n), str(a.runs)],
                              stdout=subprocess.PIPE, text=True)
        rx.stdout.readline()
        for _ in range(a.runs):
            out = subprocess.run(["ip", "netns", "exec", ns[0], sys.executable, "-c", SENDER, str(n)],
                                 capture_output=True, text=True, check=True)
            secs = float(out.stdout)
            print(json.dumps({"wan": a.wan, "mib": a.mib, "secs": round(secs, 2),
                              "mbit_s": round(n * 8 / secs / 1e6, 2)}), flush=True)
        rx.wait(timeout=10)
    finally:
        subprocess.run([BIN, "darknet", "down", "--dir", d], capture_output=True)
        subprocess.run(["rm", "-rf", root])


if __name__ == "__main__":
    main()
