"""Poll-cycle, scrape, memory and CPU figures at carrier scale (issue 8).

1,000 tenants x 100 extensions on the simulator (its own process) with 20 ms latency per
request; the exporter polls it with concurrency 16 and per-extension series on, then
/metrics is timed against aiohttp serving the same bytes as a static response, idle and
while a poll runs, by a scraper in its own process (bench/scraper.py), as Prometheus is.
Then the peak RSS of the daemon alone: the exporter as its own process (`python -m
exporter`, as operators run it), polling the same simulator (interval 20 s, or tenants / 50 s
when longer) for three cycles while a scraper reads /metrics without pause; VmHWM from
/proc. (The in-process figure above also counts this script's static server and its copy of
the body.)
The floor (issue 18): after each measured cycle, a bare aiohttp client (bench/floor.py) sends
the requests that cycle sent, recorded through the exporter's client, with the same
connection limit, concurrency and order, reading every body and decoding none. Exporter
cycles and floor runs alternate (--rounds of each) so both see the same machine; the
simulator's CPU during each says whether the simulator, not the client, set the pace.
Prints every figure; run: python bench/poll_and_scrape.py
"""

from __future__ import annotations

import argparse
import asyncio
import math
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web
from common import (
    KEY,
    bench_system,
    free_port,
    machine,
    package,
    process_cpu_seconds,
    simulator_process,
)
from floor import FloorRun, Recorder, Request, floor_session, replay, waves

from exporter.config import Config, SystemConfig
from exporter.daemon import Daemon
from exporter.logs import configure_logging
from exporter.poller import SystemPoller
from exporter.runtime import tune_process
from exporter.snapshot import SnapshotStore

# The simulator at or above this share of a core during a floor run sets the floor's pace.
SATURATED = 0.9


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def compare(urls: list[str], n: int, encoding: str) -> list[tuple[float, ...]]:
    """Wall seconds of n GETs of each URL in turn (body read, inflated when gzipped), timed
    by bench/scraper.py in its own process: a client in this process would share the
    daemon's event loop and allocator and measure itself (see docs/scaling.md)."""
    scraper = str(Path(__file__).with_name("scraper.py"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, scraper, "--compare", str(n), "--encoding", encoding, *urls,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await proc.communicate()
    assert proc.returncode == 0, "the scraper saw a bad answer"
    return [tuple(map(float, line.split())) for line in out.decode().splitlines()]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)]


async def main(
    tenants: int, extensions: int, latency_ms: float, concurrency: int, scrapes: int, rounds: int
) -> None:
    configure_logging("warning")
    tune_process()  # what the daemon's entry point does: the figures are the daemon's
    print(f"machine: {machine()}")
    print(package())
    print(
        f"size: {tenants} tenants x {extensions} extensions, latency {latency_ms:g} ms, "
        f"concurrency {concurrency}"
    )
    with simulator_process(
        "--tenants",
        str(tenants),
        "--extensions-per-tenant",
        str(extensions),
        "--latency-ms",
        str(latency_ms),
    ) as (url, sim_pid):
        system = bench_system(url, concurrency=concurrency)
        daemon = Daemon(Config(systems=(system,)))
        # Records the requests of each cycle for the floor to replay (before the first one:
        # the hook applies to the sessions the client builds from then on).
        recorder = Recorder()
        daemon.clients["bench"].trace_configs.append(recorder.config)
        runner = web.AppRunner(daemon.app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        # The app's startup started the daemon's own poll loop; the benchmark drives the
        # cycles itself, and a second cycle running alongside would double every figure.
        await daemon.stop_polling()
        poller = daemon.pollers["bench"]
        # Cycle 1 warms the simulator's response cache; cycle 2 is measured.
        await poller.poll_once()
        # The render runs apart from the poll: wait for it, so that the measured cycle's
        # CPU holds its own render and none of the one before.
        await daemon.store.settled()
        recorder.take()
        first = await exporter_cycle(poller, daemon.store, recorder, sim_pid)
        requests, cycle, wall, cpu = first.requests, first.cycle, first.wall, first.cpu
        limit = math.ceil(requests / concurrency) * latency_ms / 1000
        print(
            f"poll cycle: {requests} requests in {cycle:.2f} s; limit ceil(requests/"
            f"{concurrency}) x {latency_ms:g} ms = {limit:.2f} s; ratio {cycle / limit:.2f} "
            f"(target <= 1.2)"
        )
        print(
            f"exposition render after the cycle (OpenMetrics, in a worker thread): "
            f"{wall - cycle:.2f} s"
        )
        print(f"cpu per poll cycle (requests, parsing, snapshot and render): {cpu:.2f} s")
        print(
            f"event loop during the cycle (a 2 ms timer, {len(first.stalls)} ticks): late p50 "
            f"{statistics.median(first.stalls) * 1000:.1f} ms, p99 "
            f"{pct(first.stalls, 99) * 1000:.1f} ms, max {max(first.stalls) * 1000:.0f} ms "
            "(a scrape arriving then waits that long before it is read)"
        )
        await floor_rounds(
            poller, daemon.store, recorder, system, sim_pid, first, rounds, latency_ms
        )
        recorder.recording = False  # the cycles below are not replayed

        async with aiohttp.ClientSession() as session:
            metrics_url = f"http://127.0.0.1:{port}/metrics"
            body = await (await session.get(metrics_url, headers={"Accept-Encoding": ""})).read()
            async with aiohttp.ClientSession(auto_decompress=False) as raw:
                gzipped = await (await raw.get(metrics_url)).read()
            series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
            # The same bytes as static responses: the text, and the gzip the scrape sends.
            static = web.Application()
            static.router.add_get(
                "/static", lambda _: web.Response(body=body, content_type="text/plain")
            )
            static.router.add_get(
                "/static.gz",
                lambda _: web.Response(
                    body=gzipped,
                    content_type="text/plain",
                    headers={"Content-Encoding": "gzip"},
                ),
            )
            static_runner = web.AppRunner(static, access_log=None)
            await static_runner.setup()
            static_site = web.TCPSite(static_runner, "127.0.0.1", 0)
            await static_site.start()
            static_url = f"http://127.0.0.1:{static_runner.addresses[0][1]}/static"
            print(
                f"scrape: {series} series, {len(body) / 1e6:.1f} MB of text, "
                f"{len(gzipped) / 1e6:.1f} MB gzipped"
            )
            for encoding, static_path in (("gzip", ".gz"), ("identity", "")):
                # Interleaved, so both see the same machine state.
                pairs = await compare([metrics_url, static_url + static_path], scrapes, encoding)
                p50_m = statistics.median(m for m, _ in pairs)
                p50_s = statistics.median(s for _, s in pairs)
                print(
                    f"  Accept-Encoding {encoding}: /metrics p50 {p50_m * 1000:.1f} ms, the same"
                    f" bytes static p50 {p50_s * 1000:.1f} ms, ratio {p50_m / p50_s:.2f}"
                    " (target <= 1.5)"
                )
            # Scraped from another process, as Prometheus does: a scraper in this one would
            # share the daemon's event loop and GIL and measure itself.
            scraper = await asyncio.create_subprocess_exec(
                sys.executable, str(Path(__file__).with_name("scraper.py")), metrics_url,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
            await poller.poll_once()
            out, _ = await scraper.communicate(b"")
            assert scraper.returncode == 0, "the scraper saw a bad answer"
            during = [float(line) for line in out.split()]
            print(
                f"scrape during a poll and its render (scraper in its own process): "
                f"{len(during)} scrapes, p50 {statistics.median(during) * 1000:.1f} ms, "
                f"p99 {pct(during, 99) * 1000:.1f} ms, max {max(during) * 1000:.1f} ms"
            )
            await static_runner.cleanup()
        await runner.cleanup()
        print(f"peak RSS of this benchmark process (daemon in-process): {peak_rss_mb():.0f} MB")
        await daemon_alone(url, tenants, concurrency)


@dataclass(frozen=True)
class Cycle:
    """One measured exporter cycle."""

    requests: int
    cycle: float  # the poller's own cycle duration (the render runs after it)
    wall: float  # to the end of its render
    poll_cpu: float  # CPU seconds of this process to the end of the cycle
    cpu: float  # ... and to the end of its render
    sim_cpu: float  # CPU seconds of the simulator during the cycle
    recorded: list[Request]  # what it sent, for the floor
    stalls: list[float]  # how late each 2 ms tick of the event loop came during the cycle


async def ticks(late: list[float], stop: asyncio.Event, period: float = 0.002) -> None:
    """How late the event loop runs a 2 ms timer, again and again until ``stop``: the time
    a scrape arriving then waits before the loop even reads it."""
    while not stop.is_set():
        start = time.perf_counter()
        await asyncio.sleep(period)
        late.append(time.perf_counter() - start - period)


async def exporter_cycle(
    poller: SystemPoller, store: SnapshotStore, recorder: Recorder, sim_pid: int
) -> Cycle:
    """One cycle, from a settled store (the previous render done) to the end of its own
    render, and the requests it sent (recorded through its client's trace hook)."""
    previous = store.get(poller.system.name)
    before = sum(previous.requests.values()) if previous is not None else 0
    recorder.take()
    late: list[float] = []
    stop = asyncio.Event()
    ticker = asyncio.create_task(ticks(late, stop))
    sim0, cpu0, t0 = process_cpu_seconds(sim_pid), cpu_seconds(), time.perf_counter()
    snap = await poller.poll_once()
    poll_cpu, sim = cpu_seconds() - cpu0, process_cpu_seconds(sim_pid) - sim0
    stop.set()
    await ticker
    await store.settled()
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    recorded = recorder.take()
    requests = sum(snap.requests.values()) - before
    assert len(recorded) == requests, "the recorder missed requests of the cycle"
    return Cycle(requests, snap.cycle_duration or 0.0, wall, poll_cpu, cpu, sim, recorded, late)


async def floor_rounds(
    poller: SystemPoller,
    store: SnapshotStore,
    recorder: Recorder,
    system: SystemConfig,
    sim_pid: int,
    first: Cycle,
    rounds: int,
    latency_ms: float,
) -> None:
    """Exporter cycle, floor, exporter cycle, floor, ...: each floor run replays the
    requests of the cycle just before it; the first cycle is the one measured above."""
    concurrency = system.concurrency
    print(
        f"floor: a bare aiohttp client (one session, connector limit {concurrency}, "
        f"{concurrency} in flight, the cycle's own requests in its order, bodies read and "
        f"not decoded), alternated with exporter cycles, {rounds} of each:"
    )
    pairs: list[tuple[Cycle, FloorRun, float]] = []
    async with floor_session(concurrency, system.timeout) as session:
        for i in range(rounds):
            cycle = first if i == 0 else await exporter_cycle(poller, store, recorder, sim_pid)
            sim0 = process_cpu_seconds(sim_pid)
            run = await replay(session, waves(cycle.recorded, system), concurrency)
            sim = process_cpu_seconds(sim_pid) - sim0
            assert run.requests == cycle.requests
            pairs.append((cycle, run, sim))
            limit = math.ceil(cycle.requests / concurrency) * latency_ms / 1000
            print(
                f"  round {i + 1}: exporter cycle {cycle.cycle:.2f} s (CPU {cycle.poll_cpu:.2f} s,"
                f" {cycle.cpu:.2f} s with the render; simulator {cycle.sim_cpu / cycle.cycle:.0%}"
                f" of a core); floor {run.wall:.2f} s (CPU {run.cpu:.2f} s; simulator "
                f"{sim / run.wall:.0%} of a core; {run.requests} requests, "
                f"{run.body_bytes / 1e6:.0f} MB read); exporter / floor "
                f"{cycle.cycle / run.wall:.3f}; floor / limit {run.wall / limit:.2f}"
            )
    floor_wall = statistics.median(run.wall for _, run, _ in pairs)
    floor_cpu = statistics.median(run.cpu for _, run, _ in pairs)
    cycle_wall = statistics.median(cycle.cycle for cycle, _, _ in pairs)
    ratio = statistics.median(cycle.cycle / run.wall for cycle, run, _ in pairs)
    sim_share = statistics.median(sim / run.wall for _, run, sim in pairs)
    requests = pairs[0][0].requests
    limit = math.ceil(requests / concurrency) * latency_ms / 1000
    print(
        f"floor wall: median {floor_wall:.2f} s; floor CPU (this process): median "
        f"{floor_cpu:.2f} s; limit ceil({requests}/{concurrency}) x {latency_ms:g} ms = "
        f"{limit:.2f} s; floor / limit {floor_wall / limit:.2f}"
    )
    print(
        f"exporter cycle: median {cycle_wall:.2f} s; exporter / floor: median {ratio:.3f} "
        f"(the exporter adds {ratio - 1:+.1%} to the floor); exporter / limit "
        f"{cycle_wall / limit:.2f}"
    )
    verdict = (
        "saturated: the floor is the simulator's limit, not the client's"
        if sim_share >= SATURATED
        else "it keeps up (below one core): the floor is the latency and the client's"
    )
    print(f"simulator during the floor: median {sim_share:.0%} of a core, {verdict}")


def vm_kb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        line = next(ln for ln in status if ln.startswith(field + ":"))
    return int(line.split()[1])


async def daemon_alone(url: str, tenants: int, concurrency: int, cycles: int = 3) -> None:
    # Long enough for a whole cycle (about 9 ms a tenant at 20 ms latency and concurrency 16):
    # a shorter one would cut cycles at their deadline.
    interval = max(20, tenants // 50)
    config = (
        f"systems:\n  - name: bench\n    url: {url}\n    api_key: {KEY}\n"
        f"    interval: {interval}s\n    timeout: 15s\n    concurrency: {concurrency}\n"
        # Every cycle asks for the extension lists (they are how cycles are counted here).
        f"    extension_list_interval: {interval}s\n"
        "    extension_metrics: true\n    extension_metrics_limit: 10000000\n"
    )
    port = free_port()
    with tempfile.NamedTemporaryFile("w", suffix=".yml") as file:
        file.write(config)
        file.flush()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-P", "-m", "exporter", "--config.file", file.name,
            "--web.listen-address", f"127.0.0.1:{port}", "--log.level", "warning",
        )  # fmt: skip
        scrapes, done = 0, 0.0
        start = time.perf_counter()
        try:
            async with aiohttp.ClientSession() as session:
                while done < cycles:
                    assert proc.returncode is None, "the exporter exited"
                    assert time.perf_counter() - start < 600, "no poll cycles within 600 s"
                    try:
                        async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
                            body = await resp.read()
                    except aiohttp.ClientConnectionError:
                        await asyncio.sleep(0.2)  # not listening yet
                        continue
                    scrapes += 1
                    for line in body.splitlines():
                        if line.startswith(
                            b'pbxware_poll_requests_total{action="pbxware.ext.list"'
                        ):
                            done = float(line.split()[-1]) / tenants
            hwm, rss = vm_kb(proc.pid, "VmHWM"), vm_kb(proc.pid, "VmRSS")
        finally:
            proc.terminate()
            await proc.wait()
    # The targets: 150 MB at 1,000 tenants x 100 extensions, 600 MB at 5,000.
    target = {1000: " (target <= 150)", 5000: " (target <= 600)"}.get(tenants, "")
    print(
        f"peak RSS of the daemon alone (own process, {cycles} poll cycles, "
        f"{scrapes} scrapes meanwhile): {hwm / 1024:.0f} MB{target}; "
        f"RSS at the end {rss / 1024:.0f} MB"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--extensions", type=int, default=100)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--scrapes", type=int, default=30)
    parser.add_argument(
        "--rounds", type=int, default=2, help="exporter cycles and floor runs, alternated"
    )
    args = parser.parse_args()
    asyncio.run(
        main(
            args.tenants,
            args.extensions,
            args.latency_ms,
            args.concurrency,
            args.scrapes,
            args.rounds,
        )
    )
