"""Render only what changed (issue 18): 3 systems of 333 tenants x 100 extensions.

The simulator (its own process, no latency) serves three systems; each is polled once with
every collector and the per-extension series on. Then, with /metrics' renderer
(exporter/web/exposition.py) and the daemon's GC tuning:

- one full render: every system's families built, formatted and compressed, then joined
  (a renderer with nothing kept, as after a start);
- a round: each system publishes a new snapshot in turn (the same values in a new object,
  what a poll that changed nothing publishes; a poll that changed values costs the same)
  and /metrics is rendered after each: three renders, each re-rendering one system;
- before: a round as it was, every render building and formatting every system.

CPU seconds (process time, the worker thread's included), median of --rounds rounds; the
ratio round / full render is printed (target <= 1.2; before it was the number of systems).
The bodies are checked to be the same bytes as a render of every system at once.

Run: python bench/render_changes.py [--systems 3] [--tenants 333] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import statistics
import time
from collections.abc import Awaitable

from common import bench_system, machine, package, simulator
from prometheus_client import CollectorRegistry

from exporter.config import Config
from exporter.daemon import Daemon
from exporter.logs import configure_logging
from exporter.metrics import SnapshotCollector, families
from exporter.web.exposition import OPENMETRICS_1_0_0, Exposition, encode


async def polled(systems: int, tenants: int, extensions: int) -> Daemon:
    names = [f"pbx{i}" for i in range(1, systems + 1)]
    with simulator(
        "--systems", ",".join(names),
        "--tenants", str(tenants),
        "--extensions-per-tenant", str(extensions),
    ) as url:  # fmt: skip
        config = Config(systems=tuple(bench_system(f"{url}/{name}/", name) for name in names))
        daemon = Daemon(config)
        for name in names:
            await daemon.pollers[name].poll_once()
        await daemon.stop()
    return daemon


async def cpu(work: Awaitable[object]) -> float:
    start = time.process_time()
    await work
    return time.process_time() - start


async def measure(daemon: Daemon, rounds: int) -> dict[str, list[float]]:
    store = daemon.store
    whole = CollectorRegistry(auto_describe=False)
    whole.register(SnapshotCollector(store))
    figures: dict[str, list[float]] = {"full": [], "round": [], "before": []}
    for _ in range(rounds):
        fresh = Exposition(store, families, CollectorRegistry())
        figures["full"].append(await cpu(fresh.refresh(store.generation)))
        kept = fresh
        spent = 0.0
        for snap in sorted(store.all(), key=lambda s: s.system):
            await store.put(dataclasses.replace(snap))
            spent += await cpu(kept.refresh(store.generation))
        figures["round"].append(spent)
        answer = await kept.answer(OPENMETRICS_1_0_0.content_type, "identity")
        body = b"".join(answer.pieces)
        assert body.startswith(encode(OPENMETRICS_1_0_0, whole).text), "the bodies differ"
        spent = 0.0
        for _snap in store.all():
            spent += await cpu(asyncio.to_thread(encode, OPENMETRICS_1_0_0, whole))
        figures["before"].append(spent)
    return figures


def main(systems: int, tenants: int, extensions: int, rounds: int) -> None:
    configure_logging("warning")
    print(f"machine: {machine()}")
    print(package())
    daemon = asyncio.run(polled(systems, tenants, extensions))
    gc.collect()
    gc.freeze()  # the snapshots are old data: only what a render allocates is collected
    gc.set_threshold(50_000, *gc.get_threshold()[1:])
    series = sum(len(m.samples) for m in SnapshotCollector(daemon.store).collect())
    print(
        f"snapshots: {systems} systems x {tenants} tenants x {extensions} extensions, "
        f"{series} series"
    )
    figures = asyncio.run(measure(daemon, rounds))
    print(f"CPU seconds (OpenMetrics), median of {rounds} rounds (range):")
    labels = {
        "full": "one full render (every system, nothing kept)",
        "round": f"a round: {systems} systems publish in turn, {systems} renders",
        "before": f"a round before: {systems} renders of every system",
    }
    for key, label in labels.items():
        values = figures[key]
        print(f"  {label}: {statistics.median(values):.2f} s ({min(values):.2f}-{max(values):.2f})")
    full = statistics.median(figures["full"])
    print(
        f"ratio round / full render: {statistics.median(figures['round']) / full:.2f} "
        f"(target <= 1.2); before: {statistics.median(figures['before']) / full:.2f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--systems", type=int, default=3)
    parser.add_argument("--tenants", type=int, default=333, help="per system")
    parser.add_argument("--extensions", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    main(args.systems, args.tenants, args.extensions, args.rounds)
