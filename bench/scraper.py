"""A scraper in its own process, as Prometheus is: GETs a /metrics URL without pause (gzip,
inflated and checked) until its stdin closes, then prints each scrape's seconds, one a line.

    python bench/scraper.py http://127.0.0.1:9865/metrics < /dev/null
"""

from __future__ import annotations

import http.client
import sys
import threading
import time
import urllib.parse
import zlib


def main(url: str) -> None:
    parts = urllib.parse.urlsplit(url)
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=120)
    times: list[float] = []
    while not stop.is_set():
        start = time.perf_counter()
        conn.request("GET", parts.path, headers={"Accept-Encoding": "gzip"})
        resp = conn.getresponse()
        body = resp.read()
        if resp.getheader("Content-Encoding") == "gzip":
            body = zlib.decompress(body, wbits=31)
        times.append(time.perf_counter() - start)
        if resp.status != 200 or b"pbxware_up" not in body:
            sys.exit(f"bad scrape: HTTP {resp.status}, {len(body)} bytes")
    print("\n".join(f"{t:.6f}" for t in times))


if __name__ == "__main__":
    main(sys.argv[1])
