"""CDR polling of one tenant with 100,000 CDRs in one window: time and peak memory.

The simulator runs in its own process and holds exactly --records CDRs of one tenant
(added with Simulator.add_call, a realistic mix of directions and dispositions). Each
scenario is measured in a fresh process of its own, so that peak RSS belongs to it:

- burst: every record inside one 5-minute window: one request window, so the
  de-duplication set holds every id at once (the worst case);
- day: the records spread over 24 hours and fetched by a first poll with cdr.backfill 1d:
  hourly request windows, so only about an hour of ids is held at a time.

With ``--ring-groups X`` that share of the calls ring a group of 2-3 phones: one row per
leg, sharing a Unique ID (the records count rows, so there are fewer calls), and the
poller merges the legs into calls, holding back the calls the overlap has not yet passed.

Each run: one poll_once() timed without tracing (wall, CPU, peak RSS over the baseline),
then a fresh poller under tracemalloc (peak Python heap), then a check that the counters
equal the simulator's ground truth (rows, and calls). Run: python bench/cdr_bench.py
[--ring-groups 0.3]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import resource
import time
import tracemalloc
from pathlib import Path
from typing import Any

from common import KEY, machine, package

from exporter.config import CdrConfig, SystemConfig
from exporter.daemon import client_settings
from exporter.features.cdr import CdrPoller
from exporter.logs import configure_logging
from exporter.pbxware import PbxwareClient
from pbxware_simulator import Simulator, SimulatorOptions, start_simulator
from pbxware_simulator.cdr import MAX_CALL_SECONDS, CdrOptions

END = 1_700_000_000  # the end of the polled window (Unix time)
TENANT = "2"
SCENARIOS = {"burst": 300, "day": 86400}  # name → seconds the records are spread over


def sim_options() -> SimulatorOptions:
    # The simulator clock is past every call's end: all records are written.
    return SimulatorOptions(
        api_key=KEY,
        tenants=1,
        extensions_per_tenant=50,
        start_time=END + MAX_CALL_SECONDS + 60,
        cdr=CdrOptions(profile="extended", calls_per_hour=0, malformed_ratio=0.0),
    )


def add_calls(sim: Simulator, records: int, spread: int, ring_groups: float = 0.0) -> None:
    """``records`` rows: single-leg calls and, a ``ring_groups`` share, ring-group calls."""
    rng = random.Random(f"cdr-bench/{records}/{spread}/{ring_groups}")
    rows = 0
    while rows < records:
        disposition = rng.choices(("answered", "no_answer", "busy", "failed"), (70, 18, 7, 5))[0]
        if rng.random() < ring_groups and records - rows >= 3:
            legs = rng.randint(2, 3)
            if disposition == "answered":
                statuses = ["cancelled"] * legs
                statuses[rng.randrange(legs)] = "answered"
            else:
                statuses = [rng.choice(("no_answer", "busy")) for _ in range(legs)]
            sim.add_ring_group(
                "pbx1",
                TENANT,
                END - spread + 1 + rng.randrange(spread),
                *statuses,
                direction=rng.choice(("inbound", "internal")),
                ring=rng.randint(2, 30),
                talk=rng.randint(1, 600),
            )
            rows += legs
            continue
        rows += 1
        sim.add_call(
            "pbx1",
            TENANT,
            END - spread + 1 + rng.randrange(spread),
            direction=rng.choice(("inbound", "outbound", "internal")),
            disposition=disposition,
            duration=rng.randint(1, 600),
            recorded=disposition == "answered" and rng.random() < 0.3,
        )


def serve_simulator(records: int, spread: int, ring_groups: float, ports: Any) -> None:
    async def main() -> None:
        _runner, url, sim = await start_simulator(sim_options())
        add_calls(sim, records, spread, ring_groups)
        ports.put(url)
        await asyncio.Event().wait()  # until terminated

    asyncio.run(main())


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(
    url: str, records: int, spread: int, page_size: int, ring_groups: float, results: Any
) -> None:
    configure_logging("warning")
    system = SystemConfig(
        name="pbx1",
        url=url,
        api_key=KEY,
        interval=600.0,
        timeout=60.0,
        tenants=(TENANT,),
        cdr=CdrConfig(enabled=True, backfill=float(spread), page_size=page_size),
    )

    async def one_poll(traced: bool) -> tuple[Any, CdrPoller, float, float]:
        client = PbxwareClient(client_settings(system))
        poller = CdrPoller(system, client, tenants=lambda: [TENANT], clock=lambda: END)
        try:
            if traced:
                tracemalloc.start()
            cpu0, t0 = cpu_seconds(), time.perf_counter()
            snapshot = await poller.poll_once()
            wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
        finally:
            await client.close()
        return snapshot, poller, wall, cpu

    async def main() -> dict[str, Any]:
        baseline = rss_mb()
        snapshot, poller, wall, cpu = await one_poll(traced=False)
        peak_rss = peak_rss_mb()
        _, _, seen = poller.tenant_state(TENANT)
        del poller
        await one_poll(traced=True)
        _, heap_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        # The ground truth, computed after every measurement.
        truth = Simulator(sim_options())
        add_calls(truth, records, spread, ring_groups)
        start = END - spread + 1
        expected = truth.cdrs("pbx1", TENANT, start, END)
        # Calls are counted once the overlap has passed their start; the rest wait.
        counted = truth.cdr_calls("pbx1", TENANT, start, END - int(system.cdr.overlap))
        every_call = truth.cdr_calls("pbx1", TENANT, start, END)
        totals = snapshot.tenants[0]
        answered = [c for c in counted if c.disposition == "answered"]
        return {
            "records": totals.records,
            "truth": len(expected),
            "calls": sum(totals.calls.values()),
            "calls_truth": len(counted),
            "pending": totals.pending_calls,
            "equal": totals.records == len(expected)
            and sum(totals.calls.values()) == len(counted)
            and totals.pending_calls == len(every_call) - len(counted)
            and sum(totals.duration.values()) == sum(c.duration for c in answered)
            and totals.recordings == sum(1 for r in expected if r.recording),
            "requests": snapshot.requests,
            "wall": wall,
            "cpu": cpu,
            "baseline_rss": baseline,
            "peak_rss": peak_rss,
            "heap_peak": heap_peak / 2**20,
            "seen_after": seen,
        }

    results.put(asyncio.run(main()))


def run(scenario: str, records: int, page_size: int, ring_groups: float) -> dict[str, Any]:
    spread = SCENARIOS[scenario]
    ctx = multiprocessing.get_context("spawn")
    ports, results = ctx.Queue(), ctx.Queue()
    sim = ctx.Process(
        target=serve_simulator, args=(records, spread, ring_groups, ports), daemon=True
    )
    sim.start()
    try:
        url = ports.get(timeout=300)
        worker = ctx.Process(
            target=measure, args=(url, records, spread, page_size, ring_groups, results)
        )
        worker.start()
        result = results.get(timeout=1800)
        worker.join(60)
    finally:
        sim.terminate()
        sim.join(10)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--scenario", choices=[*SCENARIOS, "all"], default="all")
    parser.add_argument(
        "--ring-groups", type=float, default=0.0, help="share of calls that ring 2-3 phones"
    )
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(package())
    print(
        f"one tenant, {args.records:,} CDRs, page_size {args.page_size}, ring groups"
        f" {args.ring_groups:.0%} of calls, the simulator in its own process"
    )
    for scenario in SCENARIOS if args.scenario == "all" else [args.scenario]:
        r = run(scenario, args.records, args.page_size, args.ring_groups)
        print(
            f"{scenario:>5}: {r['records']:,} records counted (truth {r['truth']:,}), "
            f"{r['calls']:,} calls counted (truth {r['calls_truth']:,}), {r['pending']:,} "
            f"held back; counters equal: {r['equal']}; {r['requests']} requests; "
            f"wall {r['wall']:.2f} s ({r['records'] / r['wall']:,.0f} records/s), "
            f"CPU {r['cpu']:.2f} s; RSS {r['baseline_rss']:.0f} MB before, peak "
            f"{r['peak_rss']:.0f} MB (+{r['peak_rss'] - r['baseline_rss']:.0f} MB); "
            f"Python heap peak {r['heap_peak']:.1f} MB (tracemalloc); "
            f"ids kept after the poll: {r['seen_after']:,}"
        )


if __name__ == "__main__":
    main()
