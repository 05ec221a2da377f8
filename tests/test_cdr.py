"""CDR call metrics over real loopback HTTP: simulator → client → CDR poller → /metrics.

The simulator clock (moved by ticks of ``tick_seconds``) is the only time these tests know:
the CDR poller reads it, so windows move without sleeping.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.registry import Collector

from exporter.config import CdrConfig, Config, SystemConfig
from exporter.daemon import Daemon
from exporter.features.cdr import CdrPoller, CdrSnapshot
from exporter.features.cdr.collector import cdr_metrics
from exporter.features.cdr.records import DIRECTIONS, DISPOSITIONS
from exporter.pbxware import PbxwareClient, PbxwareError
from exporter.web.app import build_app
from pbxware_simulator import Simulator
from pbxware_simulator.cdr import MAX_CALL_SECONDS, CdrCall, CdrOptions, CdrRecord
from tests.conftest import recorded, system_config
from tests.metrics_util import Samples, parse_samples, series, value
from tests.tools import require_tool

ACTION = "pbxware.cdr.download"
SYSTEM = "pbx1"
T0 = 1_700_000_000  # 2023-11-14 22:13:20 UTC: later windows cross midnight
INTERVAL = 300
# At least the simulator's longest call: a record is written when its call ends, so a
# shorter overlap would legitimately miss long calls and the ground truth would not hold.
OVERLAP = ((MAX_CALL_SECONDS // 60) + 1) * 60


def cdr_config(**overrides: Any) -> CdrConfig:
    return replace(CdrConfig(enabled=True, interval=INTERVAL, overlap=OVERLAP), **overrides)


@dataclass
class Rig:
    """A simulator, a daemon polling it with the simulator clock, and its /metrics."""

    sim: Simulator
    daemon: Daemon
    http: Any

    @property
    def poller(self) -> CdrPoller:
        runner = self.daemon.pollers[SYSTEM].runners["cdr"]
        assert isinstance(runner, CdrPoller)
        return runner

    async def poll(self) -> CdrSnapshot:
        return await self.poller.poll_once()

    async def advance_and_poll(self, ticks: int = 1) -> CdrSnapshot:
        for _ in range(ticks):
            self.sim.tick()
        return await self.poll()

    async def scrape(self) -> Samples:
        resp = await self.http.get("/metrics")
        assert resp.status == 200
        return parse_samples(await resp.text())

    def now(self) -> int:
        return int(self.sim.now(SYSTEM))


async def rig(
    simulator: Any,
    aiohttp_client: Any,
    *,
    calls: CdrOptions | None = None,
    sim_tenants: int = 3,
    **system: Any,
) -> Rig:
    """``calls``: the simulator's CDR options; ``system``: SystemConfig fields."""
    url, sim = await simulator(
        tenants=sim_tenants,
        extensions_per_tenant=6,
        seed=11,
        start_time=T0,
        tick_seconds=INTERVAL,
        cdr=calls or CdrOptions(calls_per_hour=240, malformed_ratio=0.0),
    )
    system.setdefault("cdr", cdr_config())
    config = system_config(url, **system)
    daemon = Daemon(Config(systems=(config,)), clock=lambda: sim.now(SYSTEM))
    app = build_app(daemon.store, [SYSTEM])
    http = await aiohttp_client(recorded(app))
    await daemon.pollers[SYSTEM].poll_once()  # the core poll: tenants, and the merged counters
    return Rig(sim, daemon, http)


@pytest.fixture
async def rigs():
    made: list[Rig] = []
    yield made
    for r in made:
        await r.daemon.stop()


def expected(rows: list[CdrRecord], calls: list[CdrCall]) -> dict[str, Any]:
    """What the counters of one tenant must say: rows for the row counters, calls (the
    simulator's ground truth) for the call counters."""
    good = [r for r in rows if r.malformed is None]
    answered = [c for c in calls if c.disposition == "answered"]
    scored = [c.mos for c in calls if c.mos is not None]
    return {
        "calls": Counter((c.direction, c.disposition) for c in calls),
        "duration": Counter(
            {d: sum(c.duration for c in answered if c.direction == d) for d in DIRECTIONS}
        ),
        "billable": Counter(
            {d: sum(c.billable for c in answered if c.direction == d) for d in DIRECTIONS}
        ),
        "cost": {d: sum(c.cost for c in calls if c.direction == d) for d in DIRECTIONS},
        "mos": (len(scored), sum(scored), sum(1 for m in scored if m <= 3.5)),
        "records": len(good),
        "recordings": sum(1 for r in good if r.recording),
        "rejected": sum(1 for r in rows if r.malformed is not None),
        "last": max((r.timestamp for r in good), default=None),
    }


def assert_tenant(
    samples: Samples,
    tenant: str,
    truth: tuple[list[CdrRecord], list[CdrCall]],
    billable: bool = True,
) -> None:
    want = expected(*truth)
    labels = {"system": SYSTEM, "tenant": tenant}
    for d in DIRECTIONS:
        for s in DISPOSITIONS:
            got = value(samples, "pbxware_cdr_calls_total", **labels, direction=d, disposition=s)
            assert got == want["calls"][(d, s)], (tenant, d, s)
        got = value(samples, "pbxware_cdr_call_duration_seconds_total", **labels, direction=d)
        assert got == want["duration"][d], (tenant, d)
        got = value(samples, "pbxware_cdr_billable_seconds_total", **labels, direction=d)
        assert got == (want["billable"][d] if billable else None), (tenant, d)
        got = value(samples, "pbxware_cdr_cost_total", **labels, direction=d)
        assert got == pytest.approx(want["cost"][d]), (tenant, d)
    count, total, low = want["mos"]
    assert value(samples, "pbxware_cdr_call_mos_count", **labels) == count
    assert value(samples, "pbxware_cdr_call_mos_sum", **labels) == pytest.approx(total)
    assert value(samples, "pbxware_cdr_call_mos_bucket", **labels, le="3.5") == low
    assert value(samples, "pbxware_cdr_records_total", **labels) == want["records"]
    assert value(samples, "pbxware_cdr_recordings_total", **labels) == want["recordings"]
    assert value(samples, "pbxware_cdr_rows_rejected_total", **labels) == want["rejected"]
    assert value(samples, "pbxware_cdr_last_record_timestamp_seconds", **labels) == want["last"]


def truth(
    sim: Simulator, tenant: str, start: int, now: int, overlap: int = OVERLAP
) -> tuple[list[CdrRecord], list[CdrCall]]:
    """The rows up to ``now`` and the calls the counters must hold after a round at
    ``now``: with a Unique ID column, calls are held back until the overlap has passed
    their start; without one every row is a call, counted at once."""
    held = "Unique ID" in sim.cdr_header(SYSTEM)
    rows = sim.cdrs(SYSTEM, tenant, start, now)
    calls = sim.cdr_calls(SYSTEM, tenant, start, now - overlap if held else now)
    return rows, calls


class _Snapshots(Collector):
    def __init__(self, snapshot: CdrSnapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Any]:
        yield from cdr_metrics([self.snapshot])


def render(snapshot: CdrSnapshot) -> Samples:
    """A snapshot as /metrics would show it (for pollers driven without a daemon)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshots(snapshot))
    return parse_samples(generate_latest(registry).decode())


PROFILES = [
    pytest.param("current", True, "json", id="current-json"),
    pytest.param("legacy", True, "json", id="legacy-10-columns"),
    pytest.param("extended", True, "json", id="extended-unique-id"),
    pytest.param("extended", True, "php", id="extended-php"),
    pytest.param("current", False, "json", id="no-tenant-column"),
]


@pytest.mark.parametrize(("profile", "tenant_column", "fmt"), PROFILES)
async def test_counters_equal_the_ground_truth_after_overlapping_windows(
    simulator, aiohttp_client, rigs, profile, tenant_column, fmt
):
    options = CdrOptions(
        profile=profile, tenant_column=tenant_column, calls_per_hour=240, malformed_ratio=0.02
    )
    r = await rig(simulator, aiohttp_client, calls=options, format=fmt)
    rigs.append(r)
    await r.poll()  # the origin: the exporter starts now and fetches no history
    for _ in range(6):
        snapshot = await r.advance_and_poll()
    samples = await r.scrape()
    state = r.sim.state(SYSTEM)
    assert len(state.tenants) == 3
    for tenant in state.tenants:
        rows, calls = truth(r.sim, tenant, T0, r.now())
        assert len(calls) > 40  # enough calls for the comparison to mean something
        if profile == "extended":
            assert len(calls) < len(rows)  # ring groups: legs are not calls
        assert_tenant(samples, tenant, (rows, calls))
        assert (
            value(
                samples, "pbxware_cdr_polled_until_timestamp_seconds", system=SYSTEM, tenant=tenant
            )
            == r.now()
        )
    # The windows overlapped (OVERLAP > INTERVAL): records came back and counted once.
    assert snapshot.duplicates > 0
    assert value(samples, "pbxware_cdr_duplicate_rows_total", system=SYSTEM) == snapshot.duplicates
    # The requests count in the core's families, one family each.
    requests = value(samples, "pbxware_poll_requests_total", system=SYSTEM, action=ACTION)
    assert requests == snapshot.requests == r.sim.requests(SYSTEM)[ACTION]
    # Rounds with bad rows count decode errors; nothing else failed.
    errors = series(samples, "pbxware_poll_errors_total", system=SYSTEM, action=ACTION)
    assert len(errors) == 6
    by_reason = {dict(lbl)["reason"]: v for lbl, v in errors.items()}
    assert 0 < by_reason.pop("decode") <= requests and set(by_reason.values()) == {0}
    assert value(samples, "pbxware_cdr_rows_outside_window_total", system=SYSTEM) == 0
    assert value(samples, "pbxware_cdr_poll_interval_seconds", system=SYSTEM) == INTERVAL


async def test_a_record_returned_by_two_windows_counts_once(simulator, aiohttp_client, rigs):
    r = await rig(
        simulator,
        aiohttp_client,
        calls=CdrOptions(calls_per_hour=0),
        tenants=("2",),
        cdr=cdr_config(overlap=120),
    )
    rigs.append(r)
    await r.poll()
    call = r.sim.add_call(SYSTEM, "2", T0 + 250, duration=30, recorded=True)
    first = await r.advance_and_poll()  # window T0 .. T0+300
    second = await r.advance_and_poll()  # window T0+181 .. T0+600: the call again
    assert call.timestamp >= T0 + 300 + 1 - 120
    assert (first.duplicates, second.duplicates) == (0, 1)
    samples = await r.scrape()
    assert_tenant(samples, "2", truth(r.sim, "2", T0, r.now()))
    assert [c.uid for c in r.sim.cdr_calls(SYSTEM, "2", T0, r.now())] == [call.uid]
    assert value(samples, "pbxware_cdr_records_total", system=SYSTEM, tenant="2") == 1
    assert value(samples, "pbxware_cdr_duplicate_rows_total", system=SYSTEM) == 1


@pytest.mark.parametrize(
    ("kind", "reason"), [("error", "api_error"), ("truncated", "decode"), ("http_500", "http")]
)
async def test_a_failed_window_is_fetched_again_without_loss(
    simulator, aiohttp_client, rigs, kind, reason
):
    r = await rig(simulator, aiohttp_client, sim_tenants=2)
    rigs.append(r)
    await r.poll()
    await r.advance_and_poll()
    polled_until = (await r.scrape())[
        (
            "pbxware_cdr_polled_until_timestamp_seconds",
            frozenset({("system", SYSTEM), ("tenant", "2")}),
        )
    ]
    r.sim.set_fault(SYSTEM, kind, tenant="2", action=ACTION)
    failed = await r.advance_and_poll(2)
    assert failed.status is not None and not failed.status.ok
    samples = await r.scrape()
    assert (
        value(samples, "pbxware_poll_errors_total", system=SYSTEM, action=ACTION, reason=reason)
        == 1
    )
    # The failing tenant's watermark stands still; the other tenant went on.
    assert (
        value(samples, "pbxware_cdr_polled_until_timestamp_seconds", system=SYSTEM, tenant="2")
        == polled_until
    )
    assert (
        value(samples, "pbxware_cdr_polled_until_timestamp_seconds", system=SYSTEM, tenant="3")
        == r.now()
    )
    r.sim.clear_faults()
    recovered = await r.advance_and_poll()
    assert recovered.status is not None and recovered.status.ok
    samples = await r.scrape()
    for tenant in ("2", "3"):
        assert_tenant(samples, tenant, truth(r.sim, tenant, T0, r.now()))


class FlakyClient(PbxwareClient):
    """Times out once on the given page of pbxware.cdr.download, the first time it is asked."""

    def __init__(self, system: SystemConfig, page: str) -> None:
        super().__init__(system)
        self.page = page
        self.failed = False
        self.pages: list[str] = []

    async def call(
        self,
        action: str,
        params: Any = None,
        *,
        raw: bool = False,
        request_timeout: float | None = None,
    ) -> Any:
        if action == ACTION:
            self.pages.append(params["page"])
            if params["page"] == self.page and not self.failed:
                self.failed = True
                raise PbxwareError(action, "timeout", "no answer within 2s")
        return await super().call(action, params, raw=raw, request_timeout=request_timeout)


async def test_a_failure_in_the_middle_of_the_pages_loses_and_doubles_nothing(simulator):
    url, sim = await simulator(
        tenants=1,
        extensions_per_tenant=5,
        start_time=T0,
        tick_seconds=INTERVAL,
        cdr=CdrOptions(calls_per_hour=600, malformed_ratio=0.05),
    )
    system = system_config(url, tenants=("2",), cdr=cdr_config(page_size=7))
    client = FlakyClient(system, page="3")
    poller = CdrPoller(system, client, tenants=lambda: ["2"], clock=lambda: sim.now(SYSTEM))
    try:
        await poller.poll_once()
        sim.tick()
        broken = await poller.poll_once()
        assert client.pages == ["1", "1", "2", "3"]  # pages 1 and 2 were counted, then it failed
        assert broken.errors["timeout"] == 1 and broken.tenants[0].records > 0
        assert broken.tenants[0].polled_until == T0  # not moved: the window is asked again
        sim.tick()
        snapshot = await poller.poll_once()
    finally:
        await client.close()
    # The good rows of the two pages counted before the failure came again, and were skipped.
    assert snapshot.duplicates >= 10
    samples = render(snapshot)
    assert_tenant(samples, "2", truth(sim, "2", T0, int(sim.now(SYSTEM))))


async def test_malformed_rows_are_rejected_once_and_counted(simulator, aiohttp_client, rigs):
    r = await rig(
        simulator,
        aiohttp_client,
        calls=CdrOptions(profile="extended", calls_per_hour=120, malformed_ratio=0.2),
        tenants=("2",),
    )
    rigs.append(r)
    await r.poll()
    planted = [
        r.sim.add_call(SYSTEM, "2", T0 + 10 + i, malformed=kind)
        for i, kind in enumerate(("short_row", "bad_duration", "bad_cell", "bad_time"))
    ]
    for _ in range(4):
        snapshot = await r.advance_and_poll()
    rows, calls = truth(r.sim, "2", T0, r.now())
    assert {p.row_id for p in planted} <= {t.row_id for t in rows}
    bad = [t for t in rows if t.malformed]
    assert len({t.malformed for t in bad}) == 4 and len(bad) > 5
    samples = await r.scrape()
    assert_tenant(samples, "2", (rows, calls))  # the good rows all count, the bad ones once
    assert snapshot.tenants[0].rejected == len(bad)
    decode = value(
        samples, "pbxware_poll_errors_total", system=SYSTEM, action=ACTION, reason="decode"
    )
    assert 0 < decode <= snapshot.requests


async def test_a_restart_counts_from_zero_and_fetches_no_history(simulator, aiohttp_client, rigs):
    first = await rig(simulator, aiohttp_client)
    rigs.append(first)
    await first.poll()
    await first.advance_and_poll(3)
    history = first.sim.cdrs(SYSTEM, "2", T0, first.now())
    assert (
        history
        and (await first.scrape())[
            ("pbxware_cdr_records_total", frozenset({("system", SYSTEM), ("tenant", "2")}))
        ]
        > 0
    )
    await first.daemon.stop()
    first.sim.tick()

    # A new daemon against the same PBX: its counters start at 0 and stay there for the
    # calls before it started, although pbxware.cdr.download still has them.
    url = first.daemon.config.systems[0].url
    restarted_at = int(first.sim.now(SYSTEM))
    for backfill, since in ((0, restarted_at), (3600, restarted_at - 3600)):
        config = system_config(url, cdr=cdr_config(backfill=float(backfill)))
        daemon = Daemon(Config(systems=(config,)), clock=lambda: first.sim.now(SYSTEM))
        http = await aiohttp_client(recorded(build_app(daemon.store, [SYSTEM])))
        again = Rig(first.sim, daemon, http)
        rigs.append(again)
        await daemon.pollers[SYSTEM].poll_once()
        before = await again.scrape()
        assert not series(before, "pbxware_cdr_records_total")  # nothing polled yet
        await again.poll()
        samples = await again.scrape()
        for tenant in first.sim.state(SYSTEM).tenants:
            expected_now = truth(first.sim, tenant, since, restarted_at)
            assert_tenant(samples, tenant, expected_now)
            if backfill == 0:
                assert (
                    value(samples, "pbxware_cdr_records_total", system=SYSTEM, tenant=tenant) == 0
                )
            else:
                assert len(expected_now[1]) > 0
        assert value(samples, "pbxware_poll_requests_total", system=SYSTEM, action=ACTION) > 0


async def test_tenants_follow_the_core_tenant_list(simulator, aiohttp_client, rigs):
    r = await rig(simulator, aiohttp_client)
    rigs.append(r)
    await r.poll()
    await r.advance_and_poll()
    assert {t.tenant for t in r.poller.last.tenants} == {"2", "3", "4"}
    r.sim.remove_tenant(SYSTEM, "3")
    await r.daemon.pollers[SYSTEM].poll_once()
    await r.advance_and_poll()
    assert {t.tenant for t in r.poller.last.tenants} == {"2", "4"}
    assert not series(await r.scrape(), "pbxware_cdr_records_total", tenant="3")


async def test_nothing_of_a_record_reaches_logs_labels_or_the_landing_page(
    simulator, aiohttp_client, rigs, leak_guard
):
    r = await rig(
        simulator,
        aiohttp_client,
        calls=CdrOptions(profile="extended", calls_per_hour=240, malformed_ratio=0.1),
    )
    rigs.append(r)
    await r.poll()
    r.sim.set_fault(SYSTEM, "garbage", tenant="3", action=ACTION)
    await r.advance_and_poll(2)
    r.sim.clear_faults()
    await r.advance_and_poll()
    metrics = await (await r.http.get("/metrics")).text()
    landing = await (await r.http.get("/")).text()
    logs = leak_guard.getvalue()
    assert "cdr_row_rejected" in logs and "cdr_poll_failed" in logs  # debug lines were written
    private = set()
    for tenant in r.sim.state(SYSTEM).tenants:
        for record in r.sim.cdrs(SYSTEM, tenant, T0, r.now()):
            private |= {record.caller, record.callee}
            if record.recording:
                private.add(record.recording)
    assert len(private) > 50
    for text in private:
        for where, body in (("log", logs), ("metrics", metrics), ("landing page", landing)):
            assert text not in body, f"a CDR value leaked into the {where}"


async def test_the_daemon_runs_and_stops_cdr_polling(simulator, aiohttp_client):
    url, sim = await simulator(
        tenants=2, extensions_per_tenant=3, cdr=CdrOptions(calls_per_hour=60)
    )
    config = Config(
        systems=(
            system_config(f"{url}/pbx1/", cdr=cdr_config(interval=3600.0)),
            system_config(f"{url}/pbx1/", name="nocdr"),
        )
    )
    daemon = Daemon(config)
    assert {name for name, p in daemon.pollers.items() if "cdr" in p.runners} == {SYSTEM}
    http = await aiohttp_client(recorded(daemon.app()))
    try:
        async with asyncio.timeout(10):
            await daemon.store.wait_for(lambda s: "cdr" in getattr(s.get(SYSTEM), "tracked", {}))
        assert sim.requests(SYSTEM)[ACTION] >= 2  # one per tenant, after the tenant list
        text = await (await http.get("/metrics")).text()
    finally:
        await daemon.stop()
    assert all(t.done() for t in asyncio.all_tasks() if t.get_name().startswith("cdr-"))
    samples = parse_samples(text)
    assert value(samples, "pbxware_poll_requests_total", system=SYSTEM, action=ACTION) >= 2
    assert value(samples, "pbxware_poll_requests_total", system="nocdr", action=ACTION) is None
    assert len(series(samples, "pbxware_cdr_calls_total", system=SYSTEM)) == 2 * 20
    assert text.count("# TYPE pbxware_poll_requests_total counter") == 1


async def test_a_reload_that_removes_the_system_removes_its_cdr_series(simulator, aiohttp_client):
    url, _ = await simulator(tenants=1, extensions_per_tenant=3)
    keep = system_config(url, name="keep")
    gone = system_config(url, name="gone", tenants=("2",), cdr=cdr_config())
    configs = [Config(systems=(keep, gone)), Config(systems=(keep,))]
    daemon = Daemon(configs[0], loader=lambda: configs[1])
    try:
        gone_poller = daemon.pollers["gone"]
        await gone_poller.poll_once()
        await gone_poller.runners["cdr"].poll_once()  # type: ignore[attr-defined]
        snapshot = daemon.store.get("gone")
        assert snapshot is not None and "cdr" in snapshot.tracked
        ok, _ = await daemon.reload()
        assert ok and daemon.store.get("gone") is None and "gone" not in daemon.pollers
    finally:
        await daemon.stop()


@pytest.mark.tools
async def test_promtool_accepts_the_exposition_with_cdr_metrics(simulator, aiohttp_client, rigs):
    promtool = require_tool("promtool")
    r = await rig(simulator, aiohttp_client, calls=CdrOptions(malformed_ratio=0.05))
    rigs.append(r)
    await r.poll()
    await r.advance_and_poll(2)
    text = await (await r.http.get("/metrics")).text()
    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0 and result.stdout == result.stderr == "", result.stderr
    families = re.findall(r"^# TYPE (\S+) ", text, re.M)
    assert len(families) == len(set(families)), "a family is exposed twice"
    assert "pbxware_cdr_calls_total" in text and "pbxware_cdr_poll_interval_seconds" in text
    om = await r.http.get(
        "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    om_text = await om.text()
    assert om_text.count("# EOF") == 1 and "# TYPE pbxware_cdr_calls counter" in om_text


@pytest.mark.parametrize("page_size", [1, 2, 7, 1000])
async def test_ring_group_calls_equal_the_ground_truth_at_every_page_size(
    simulator, aiohttp_client, rigs, page_size
):
    options = CdrOptions(
        profile="extended", calls_per_hour=90, malformed_ratio=0.0, ring_groups=0.6
    )
    r = await rig(
        simulator,
        aiohttp_client,
        calls=options,
        tenants=("2",),
        cdr=cdr_config(page_size=page_size),
    )
    rigs.append(r)
    await r.poll()
    previous: Samples | None = None
    for _ in range(6):
        await r.advance_and_poll()
        samples = await r.scrape()
        assert_tenant(samples, "2", truth(r.sim, "2", T0, r.now()))
        if previous is not None:  # counters never go down
            for key, old in previous.items():
                if key[0].endswith("_total") and key in samples:
                    assert samples[key] >= old, key
        previous = samples
    rows, calls = truth(r.sim, "2", T0, r.now())
    assert sum(1 for c in calls if c.legs > 1) > 5 and len(rows) > len(calls)
    pending = value(samples, "pbxware_cdr_pending_calls", system=SYSTEM, tenant="2")
    assert pending == len(r.sim.cdr_calls(SYSTEM, "2", T0, r.now())) - len(calls) > 0


async def test_docs_list_exactly_the_cdr_families(simulator, aiohttp_client, rigs):
    """docs/metrics.md's CDR table equals what a CDR poller exposes (the general doc test
    runs without CDR polling)."""
    doc = (Path(__file__).parent.parent / "docs" / "metrics.md").read_text()
    documented = dict(
        re.findall(r"^\| `(pbxware_cdr_[a-z_]+)` \| (gauge|counter|histogram) \|", doc, re.M)
    )
    r = await rig(simulator, aiohttp_client, calls=CdrOptions(profile="extended"))
    rigs.append(r)
    await r.poll()
    await r.advance_and_poll()
    text = await (await r.http.get("/metrics")).text()
    live = dict(re.findall(r"^# TYPE (pbxware_cdr_[a-z_]+) (gauge|counter|histogram)$", text, re.M))
    assert live == documented
    assert "pbxware_cdr_cost_total" in live and live["pbxware_cdr_call_mos"] == "histogram"
    buckets = re.findall(r'^pbxware_cdr_call_mos_bucket\{.*le="([^"]+)".*tenant="2"', text, re.M)
    assert buckets == ["1.0", "2.0", "2.5", "3.0", "3.5", "4.0", "4.3", "5.0", "+Inf"]


async def test_cdr_pages_get_their_own_timeout(simulator, aiohttp_client, rigs):
    # The poll timeout (0.3 s) is far shorter than a slow CDR page (0.6 s); cdr.timeout is not.
    r = await rig(
        simulator,
        aiohttp_client,
        tenants=("2",),
        timeout=0.3,
        cdr=cdr_config(timeout=5.0),
    )
    rigs.append(r)
    await r.poll()
    r.sim.set_fault(SYSTEM, "slow", action=ACTION, seconds=0.6)
    snapshot = await r.advance_and_poll()
    r.sim.clear_faults()
    assert snapshot.status is not None and snapshot.status.ok, snapshot.status
    assert dict(snapshot.errors) == {}
    assert_tenant(await r.scrape(), "2", truth(r.sim, "2", T0, r.now()))


async def test_a_cdr_page_slower_than_cdr_timeout_is_a_timeout(simulator, aiohttp_client, rigs):
    r = await rig(simulator, aiohttp_client, tenants=("2",), cdr=cdr_config(timeout=0.3))
    rigs.append(r)
    await r.poll()
    r.sim.set_fault(SYSTEM, "slow", action=ACTION, seconds=5)
    snapshot = await r.advance_and_poll()
    r.sim.clear_faults()
    assert snapshot.errors["timeout"] == 1


async def test_a_pbx_that_ignores_timezone_is_noticed_and_calls_keep_counting(
    simulator, aiohttp_client, rigs, leak_guard
):
    # The PBX reads every date and time in its own zone (Zagreb, UTC+1 in November) whatever
    # `timezone` says; the exporter asks in UTC. Without adapting, every row lands an hour
    # outside its window and the counters stay at 0.
    options = CdrOptions(
        profile="extended", calls_per_hour=240, malformed_ratio=0.0, pbx_timezone="Europe/Zagreb"
    )
    r = await rig(simulator, aiohttp_client, calls=options, tenants=("2",))
    rigs.append(r)
    await r.poll()
    for _ in range(8):
        snapshot = await r.advance_and_poll()
    samples = await r.scrape()
    assert value(samples, "pbxware_cdr_timezone_shift_seconds", system=SYSTEM) == 3600
    assert snapshot.outside_window > 0  # how it was noticed
    lines = [x for x in leak_guard.getvalue().splitlines() if "cdr_timezone_ignored" in x]
    assert len(lines) == 1 and "+01:00" in lines[0], lines
    # From the first window asked in the PBX's zone on, the counters equal the ground truth.
    since = r.poller.zone_adapted_from
    assert since is not None and since < r.now() - 4 * INTERVAL
    assert_tenant(samples, "2", truth(r.sim, "2", since, r.now()))
    assert len(truth(r.sim, "2", since, r.now())[1]) > 10
