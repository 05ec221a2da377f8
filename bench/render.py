"""Render CPU against its limit (issue 18): the 1,000 tenants x 100 extensions snapshot.

The simulator (its own process, no latency) is polled once with every collector and the
per-extension series on; then, for that snapshot, the CPU seconds of:

- the render: the cached families built by the collectors and written by the direct
  formatter (exporter/web/textformat.py) into the gzip stream the exposition keeps, in
  OpenMetrics (what Prometheus asks for) and in the text format;
- the same with prometheus_client's encoders, family by family (the render before);
- the limit: the families already built, each sample formatted plainly (one f-string,
  its labels joined as they come, the value's repr; nothing checked, escaped or sorted)
  and gzipped at level 1; and the formatter alone on the same built families.

Each is measured --rounds times, interleaved; the medians and the ratio render / limit
(target <= 2) are printed. The render must give the same bytes as prometheus_client (checked
here too). The garbage collector is tuned as the daemon tunes it (young generation at
50,000 allocations) after the snapshot was frozen. CPU seconds (process time) are less
sensitive than wall time to other work on the machine, not insensitive: run it three times.

Run: python bench/render.py [--tenants 1000] [--extensions 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
import zlib
from collections.abc import Callable, Iterator

from common import bench_system, machine, package, simulator
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric

from exporter.config import Config
from exporter.daemon import Daemon
from exporter.logs import configure_logging
from exporter.metrics import SnapshotCollector
from exporter.web.exposition import OPENMETRICS_1_0_0, TEXT_0_0_4, Format, encode, formatter
from exporter.web.textformat import families, without_header


class Built:
    """A registry of families built already."""

    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return iter(self.metrics)


def gzip_level_1() -> zlib._Compress:
    return zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)


def by_prometheus_client(fmt: Format, registry: CollectorRegistry | Built) -> bytes:
    """The render before the formatter: prometheus_client's encoder per family, gzipped."""
    deflate, out, previous = gzip_level_1(), [], None
    for metric in registry.collect():
        text = fmt.encoder(Built([metric])).removesuffix(b"# EOF\n")  # type: ignore[arg-type]
        if metric.name == previous:
            text = without_header(text.decode()).encode()
        previous = metric.name
        out.append(deflate.compress(text))
    out.append(deflate.flush())
    return b"".join(out)


def plain(metrics: list[Metric]) -> tuple[bytes, int]:
    """The limit: the same lines formatted plainly, gzipped at level 1; and the text size."""
    deflate, out, size = gzip_level_1(), [], 0
    for metric in metrics:
        name = metric.name
        lines = [f"# HELP {name} {metric.documentation}\n# TYPE {name} {metric.type}\n"]
        for sample in metric.samples:
            labels = ",".join([f'{k}="{v}"' for k, v in sample.labels.items()])
            lines.append(f"{sample.name}{{{labels}}} {float(sample.value)!r}\n")
        text = "".join(lines).encode()
        size += len(text)
        out.append(deflate.compress(text))
    out.append(deflate.flush())
    return b"".join(out), size


def cpu(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.process_time()
    result = fn()
    return time.process_time() - start, result


def rng(values: list[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f}"


async def snapshot(tenants: int, extensions: int) -> Daemon:
    with simulator("--tenants", str(tenants), "--extensions-per-tenant", str(extensions)) as url:
        system = bench_system(url)
        daemon = Daemon(Config(systems=(system,)))
        await daemon.pollers["bench"].poll_once()
        await daemon.stop()
    return daemon


RENDER = "render, OpenMetrics (build + format + gzip)"
FORMAT_ONLY = "format + gzip only, OpenMetrics (families built)"
OLD = "prometheus_client's render, OpenMetrics (build + encode + gzip)"
LIMIT = "limit: plain formatting + gzip-1 (families built)"


def measure(cached: CollectorRegistry) -> dict[str, float]:
    """One round: every figure once, in this order."""
    built = list(cached.collect())
    # The limit formats samples that exist already: a row family (exporter/families.py)
    # makes its samples on their first read, here, outside the timing.
    for metric in built:
        _ = metric.samples
    return {
        "build the families (collectors)": cpu(lambda: list(cached.collect()))[0],
        RENDER: cpu(lambda: encode(OPENMETRICS_1_0_0, cached))[0],
        "render, text 0.0.4 (build + format + gzip)": cpu(lambda: encode(TEXT_0_0_4, cached))[0],
        FORMAT_ONLY: cpu(lambda: encode(OPENMETRICS_1_0_0, Built(built)))[0],
        OLD: cpu(lambda: by_prometheus_client(OPENMETRICS_1_0_0, cached))[0],
        LIMIT: cpu(lambda: plain(built))[0],
    }


def main(tenants: int, extensions: int, rounds: int) -> None:
    configure_logging("warning")
    print(f"machine: {machine()}")
    print(package())
    daemon = asyncio.run(snapshot(tenants, extensions))
    # The registry /metrics renders after each poll (exporter/web/app.py: build_app).
    cached = CollectorRegistry(auto_describe=False)
    cached.register(SnapshotCollector(daemon.store))
    gc.collect()
    gc.freeze()  # the snapshot is old data: only what a render allocates is collected
    gc.set_threshold(50_000, *gc.get_threshold()[1:])

    built = list(cached.collect())
    series = sum(len(m.samples) for m in built)
    reference = exposition_text(by_prometheus_client(OPENMETRICS_1_0_0, Built(built)))
    for fmt in (OPENMETRICS_1_0_0, TEXT_0_0_4):
        ours = encode(fmt, cached).text
        theirs = exposition_text(by_prometheus_client(fmt, cached))
        assert ours == theirs, f"{fmt.name}: the render differs from prometheus_client's"
    limit_size = plain(built)[1]
    ours = formatter(OPENMETRICS_1_0_0)
    for _ in families(ours, iter(built)):
        pass
    print(
        f"snapshot: {tenants} tenants x {extensions} extensions, {len(built)} family parts, "
        f"{series} series; {len(reference) / 1e6:.1f} MB of OpenMetrics text "
        f"(the limit writes {limit_size / 1e6:.1f} MB), byte-identical to prometheus_client; "
        f"family parts written by the formatter: {ours.direct} ({ours.rows} of them from rows), "
        f"handed to prometheus_client: {ours.fallback}"
    )
    del built, reference
    figures: dict[str, list[float]] = {}
    ratios: list[float] = []
    for _ in range(rounds):
        measured = measure(cached)
        for name, seconds in measured.items():
            figures.setdefault(name, []).append(seconds)
        ratios.append(measured[RENDER] / measured[LIMIT])
    print(f"CPU seconds, median of {rounds} rounds (range):")
    for name, values in figures.items():
        print(f"  {name}: {statistics.median(values):.2f} s ({rng(values)})")
    render, limit = statistics.median(figures[RENDER]), statistics.median(figures[LIMIT])
    only, old = statistics.median(figures[FORMAT_ONLY]), statistics.median(figures[OLD])
    print(
        f"ratio render / limit: {render / limit:.2f} (per round {rng(ratios)}; target <= 2); "
        f"without building the families {only / limit:.2f}; "
        f"prometheus_client's render / limit {old / limit:.2f}"
    )


def exposition_text(gzipped: bytes) -> bytes:
    return zlib.decompress(gzipped, 16 + zlib.MAX_WBITS)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--extensions", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    main(args.tenants, args.extensions, args.rounds)
