"""A scraper in its own process, as Prometheus is.

Without --compare: GETs a /metrics URL without pause (gzip, inflated and checked) until its
stdin closes, then prints each scrape's seconds, one a line.

    python bench/scraper.py http://127.0.0.1:9865/metrics < /dev/null

With --compare N: GETs the first and the second URL in turn, N times each, with the given
Accept-Encoding (a gzip answer is inflated), and prints each pair's seconds, one pair a
line. bench/poll_and_scrape.py times /metrics against a static copy this way: a client in
the server's own process shares its allocator and event loop, and what it measured then
depended on how glibc's malloc recycled the client's 24 MB buffers from one scrape to the
next (see docs/scaling.md).

    python bench/scraper.py --compare 30 --encoding identity URL STATIC_URL
"""

from __future__ import annotations

import argparse
import http.client
import sys
import threading
import time
import urllib.parse
import zlib


def get(conn: http.client.HTTPConnection, path: str, encoding: str) -> bytes:
    conn.request("GET", path, headers={"Accept-Encoding": encoding})
    resp = conn.getresponse()
    body = resp.read()
    if resp.getheader("Content-Encoding") == "gzip":
        body = zlib.decompress(body, wbits=31)
    if resp.status != 200:
        sys.exit(f"bad scrape of {path}: HTTP {resp.status}, {len(body)} bytes")
    return body


def connect(url: str) -> tuple[http.client.HTTPConnection, str]:
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    return http.client.HTTPConnection(host, parts.port, timeout=120), parts.path


def until_stdin_closes(url: str) -> None:
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    conn, path = connect(url)
    times: list[float] = []
    while not stop.is_set():
        start = time.perf_counter()
        body = get(conn, path, "gzip")
        times.append(time.perf_counter() - start)
        if b"pbxware_up" not in body:
            sys.exit(f"bad scrape: {len(body)} bytes without pbxware_up")
    print("\n".join(f"{t:.6f}" for t in times))


def compare(urls: list[str], n: int, encoding: str) -> None:
    conns = [connect(url) for url in urls]
    bodies = [get(conn, path, encoding) for conn, path in conns]  # warm-up, and the check
    if len({len(body) for body in bodies}) != 1:
        sys.exit(f"the URLs answer different sizes: {[len(b) for b in bodies]}")
    for _ in range(n):
        line = []
        for conn, path in conns:
            start = time.perf_counter()
            get(conn, path, encoding)
            line.append(time.perf_counter() - start)
        print(" ".join(f"{t:.6f}" for t in line))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("urls", nargs="+")
    parser.add_argument("--compare", type=int, metavar="N")
    parser.add_argument("--encoding", default="gzip")
    args = parser.parse_args()
    if args.compare:
        compare(args.urls, args.compare, args.encoding)
    else:
        until_stdin_closes(args.urls[0])
