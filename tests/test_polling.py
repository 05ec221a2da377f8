"""The core loop over real loopback HTTP: simulator → client → poller → snapshot → /metrics."""

from __future__ import annotations

import asyncio
from collections import Counter

import aiohttp
import pytest

from exporter.config import Config
from exporter.daemon import Daemon, client_settings
from exporter.pbxware import client as client_module
from exporter.pbxware.client import PbxwareClient
from exporter.web.app import build_app
from tests.conftest import API_KEY, recorded, system_config
from tests.metrics_util import parse_samples, series, value


def usage(text: str) -> float:
    return float(text.strip().rstrip("%")) / 100


async def scrape(client) -> dict:
    resp = await client.get("/metrics")
    assert resp.status == 200
    return parse_samples(await resp.text())


def expected_tenant_series(state, system: str):
    """What /metrics must say about every tenant, computed from the simulator's truth."""
    expected = {}
    # Every tenant has every (status, protocol) pair of its system, 0 where it has none.
    pairs = {(e.status, e.protocol) for t in state.tenants.values() for e in t.extensions.values()}
    for tid, tenant in state.tenants.items():
        counts = Counter((e.status, e.protocol) for e in tenant.extensions.values())
        expected[tid] = {
            "info": {
                "system": system,
                "tenant": tid,
                "name": tenant.name,
                "code": tenant.code,
                "package": tenant.package,
            },
            "extensions": {pair: float(counts[pair]) for pair in pairs},
            "online": float(state.online_count(tid)),
        }
    return expected


@pytest.mark.parametrize("fmt", ["json", "php"])
async def test_metrics_equal_the_simulator_state(simulator, aiohttp_client, fmt):
    url, sim = await simulator(systems=("pbx1",), tenants=4, extensions_per_tenant=15, seed=7)
    sim.tick()
    daemon = Daemon(Config(systems=(system_config(url, format=fmt),)))
    client = await aiohttp_client(recorded(build_app(daemon.store, ["pbx1"])))
    try:
        await daemon.pollers["pbx1"].poll_once()
        samples = await scrape(client)
    finally:
        await daemon.stop()

    state = sim.state("pbx1")
    assert value(samples, "pbxware_up", system="pbx1") == 1
    assert value(samples, "pbxware_tenants", system="pbx1") == len(state.tenants) == 4
    assert value(samples, "pbxware_cpu_usage_ratio", system="pbx1") == pytest.approx(
        usage(state.cpu)
    )
    assert value(samples, "pbxware_memory_usage_ratio", system="pbx1") == pytest.approx(
        usage(state.memory)
    )
    assert value(samples, "pbxware_disk_usage_ratio", system="pbx1") == pytest.approx(
        usage(state.disk)
    )
    for tid, exp in expected_tenant_series(state, "pbx1").items():
        assert value(samples, "pbxware_tenant_up", system="pbx1", tenant=tid) == 1
        assert value(samples, "pbxware_tenant_info", **exp["info"]) == 1
        got = {
            (dict(lbl)["status"], dict(lbl)["protocol"]): v
            for lbl, v in series(samples, "pbxware_extensions", system="pbx1", tenant=tid).items()
        }
        assert got == exp["extensions"]
        assert (
            value(samples, "pbxware_extensions_online", system="pbx1", tenant=tid) == exp["online"]
        )
    # No per-extension series unless asked for.
    assert not series(samples, "pbxware_extension_online")
    assert (
        value(
            samples,
            "pbxware_poll_errors_total",
            system="pbx1",
            action="pbxware.ext.list",
            reason="timeout",
        )
        == 0
    )


async def test_online_counts_follow_the_simulator_between_polls(simulator, aiohttp_client):
    url, sim = await simulator(tenants=3, extensions_per_tenant=30, seed=3)
    daemon = Daemon(Config(systems=(system_config(url),)))
    client = await aiohttp_client(recorded(build_app(daemon.store, ["pbx1"])))
    poller = daemon.pollers["pbx1"]
    seen = []
    try:
        for _ in range(4):
            await poller.poll_once()
            samples = await scrape(client)
            state = sim.state("pbx1")
            got = {
                tid: value(samples, "pbxware_extensions_online", system="pbx1", tenant=tid)
                for tid in state.tenants
            }
            assert got == {tid: float(state.online_count(tid)) for tid in state.tenants}
            seen.append(got)
            sim.tick()
    finally:
        await daemon.stop()
    assert len({tuple(sorted(s.items())) for s in seen}) > 1, "the simulator never changed"


async def test_per_extension_series_are_opt_in_and_capped(simulator, aiohttp_client):
    url, sim = await simulator(tenants=2, extensions_per_tenant=10, seed=5)
    sim.tick()
    daemon = Daemon(
        Config(systems=(system_config(url, extension_metrics=True, extension_metrics_limit=15),))
    )
    client = await aiohttp_client(recorded(build_app(daemon.store, ["pbx1"])))
    try:
        await daemon.pollers["pbx1"].poll_once()
        samples = await scrape(client)
    finally:
        await daemon.stop()
    state = sim.state("pbx1")
    online = series(samples, "pbxware_extension_online", system="pbx1")
    info = series(samples, "pbxware_extension_info", system="pbx1")
    assert len(online) == len(info) == 15
    assert value(samples, "pbxware_extension_series_dropped", system="pbx1") == 5
    for labels, v in online.items():
        lbl = dict(labels)
        ext = next(
            e
            for e in state.tenants[lbl["tenant"]].extensions.values()
            if e.number == lbl["extension"]
        )
        assert v == (1.0 if ext.online else 0.0)


FAULTS = [
    ("down", "connect"),
    ("slow", "timeout"),
    ("http_500", "http"),
    ("html", "decode"),
    ("garbage", "decode"),
    ("truncated", "decode"),
    # A PHP notice before the body is no fault any more (tests/test_failure_truth.py).
    ("error", "api_error"),
    ("wrong_key", "auth"),
]


@pytest.mark.parametrize(("kind", "reason"), FAULTS)
async def test_a_fault_marks_only_its_system_down(simulator, aiohttp_client, kind, reason):
    url, sim = await simulator(systems=("good", "bad"), tenants=2, extensions_per_tenant=5)
    config = Config(
        systems=(
            system_config(f"{url}/good/", name="good", timeout=0.5, interval=5.0),
            system_config(f"{url}/bad/", name="bad", timeout=0.5, interval=5.0),
        )
    )
    daemon = Daemon(config)
    client = await aiohttp_client(recorded(build_app(daemon.store, ["good", "bad"])))
    try:
        for poller in daemon.pollers.values():
            await poller.poll_once()
        sim.set_fault("bad", kind, seconds=2.0)
        sim.tick()
        await asyncio.gather(*(p.poll_once() for p in daemon.pollers.values()))
        samples = await scrape(client)
    finally:
        await daemon.stop()

    state = sim.state("good")
    assert value(samples, "pbxware_up", system="good") == 1
    assert value(samples, "pbxware_up", system="bad") == 0
    for tid in state.tenants:
        assert value(samples, "pbxware_extensions_online", system="good", tenant=tid) == float(
            state.online_count(tid)
        )
        assert value(samples, "pbxware_tenant_up", system="bad", tenant=tid) == 0
    errors = series(samples, "pbxware_poll_errors_total", system="bad")
    by_reason = Counter()
    for labels, v in errors.items():
        by_reason[dict(labels)["reason"]] += v
    assert by_reason[reason] > 0, by_reason
    assert sum(v for r, v in by_reason.items() if r != reason) == 0, by_reason
    assert sum(series(samples, "pbxware_poll_errors_total", system="good").values()) == 0
    # The last good values are kept until stale_after: one miss is not enough to drop them.
    assert value(samples, "pbxware_cpu_usage_ratio", system="bad") is not None


async def test_series_disappear_after_stale_after_and_come_back(simulator, aiohttp_client):
    url, sim = await simulator(tenants=2, extensions_per_tenant=4)
    # ext.list every cycle here: stale_after counts runs of each action.
    system = system_config(url, stale_after=3, extension_list_interval=60.0)
    daemon = Daemon(Config(systems=(system,)))
    client = await aiohttp_client(recorded(build_app(daemon.store, ["pbx1"])))
    poller = daemon.pollers["pbx1"]
    tid = next(iter(sim.state("pbx1").tenants))
    try:
        await poller.poll_once()
        sim.set_fault("pbx1", "error", tenant=tid)
        present = []
        for _ in range(3):
            await poller.poll_once()
            samples = await scrape(client)
            present.append(value(samples, "pbxware_extensions_online", system="pbx1", tenant=tid))
            # The other tenant and the system stay fresh throughout.
            assert value(samples, "pbxware_up", system="pbx1") == 1
            assert value(samples, "pbxware_tenant_up", system="pbx1", tenant=tid) == 0
        assert present[0] is not None and present[1] is not None and present[2] is None
        assert not series(samples, "pbxware_extensions", system="pbx1", tenant=tid)
        sim.clear_faults()
        await poller.poll_once()
        samples = await scrape(client)
        assert value(samples, "pbxware_tenant_up", system="pbx1", tenant=tid) == 1
        assert value(samples, "pbxware_extensions_online", system="pbx1", tenant=tid) is not None
    finally:
        await daemon.stop()


async def test_a_refused_tenant_list_keeps_polling_known_tenants(simulator, aiohttp_client):
    url, sim = await simulator(tenants=2, extensions_per_tenant=4)
    daemon = Daemon(Config(systems=(system_config(url),)))
    client = await aiohttp_client(recorded(build_app(daemon.store, ["pbx1"])))
    try:
        await daemon.pollers["pbx1"].poll_once()
        sim.set_fault("pbx1", "error", action="pbxware.tenant.list")
        await daemon.pollers["pbx1"].poll_once()
        samples = await scrape(client)
    finally:
        await daemon.stop()
    assert value(samples, "pbxware_up", system="pbx1") == 0
    assert len(series(samples, "pbxware_tenant_up", system="pbx1")) == 2
    assert all(v == 1 for v in series(samples, "pbxware_tenant_up", system="pbx1").values())
    assert (
        value(
            samples,
            "pbxware_poll_errors_total",
            system="pbx1",
            action="pbxware.tenant.list",
            reason="api_error",
        )
        == 1
    )


async def test_configured_tenant_list_skips_discovery(simulator, aiohttp_client):
    url, sim = await simulator(tenants=3, extensions_per_tenant=4)
    first = sorted(sim.state("pbx1").tenants)[0]
    daemon = Daemon(Config(systems=(system_config(url, tenants=(first,)),)))
    try:
        snap = await daemon.pollers["pbx1"].poll_once()
    finally:
        await daemon.stop()
    assert [t.tenant.id for t in snap.tenants] == [first]
    assert "pbxware.tenant.list" not in sim.requests("pbx1")


async def test_concurrency_bounds_requests_in_flight(simulator):
    url, sim = await simulator(tenants=12, extensions_per_tenant=2, latency_ms=20)
    daemon = Daemon(Config(systems=(system_config(url, concurrency=3),)))
    try:
        await daemon.pollers["pbx1"].poll_once()
    finally:
        await daemon.stop()
    assert sim.max_in_flight("pbx1") == 3


async def test_the_fan_out_keeps_a_bounded_number_of_tenants_in_progress(simulator, monkeypatch):
    """Issue 18: the fan-out started every tenant at once. At 5,000 tenants that was 35,000
    tasks and futures made in one turn of the event loop: /metrics stalled for 0.5-0.7 s at
    the start of every cycle, and the objects they hold made each garbage collection during
    the cycle slower. Tenants are taken in turn by as many workers as requests may be in
    flight, so the pipe to the PBX stays as full as before."""
    from exporter.poller import SystemPoller

    url, sim = await simulator(tenants=40, extensions_per_tenant=2, latency_ms=5)
    daemon = Daemon(Config(systems=(system_config(url, concurrency=4),)))
    active, most, order = 0, 0, []
    real = SystemPoller._poll_tenant

    async def counted(self, memory, jobs):
        nonlocal active, most
        active += 1
        most = max(most, active)
        order.append(memory.tenant.id)
        try:
            await real(self, memory, jobs)
        finally:
            active -= 1

    monkeypatch.setattr(SystemPoller, "_poll_tenant", counted)
    try:
        snap = await daemon.pollers["pbx1"].poll_once()
    finally:
        await daemon.stop()
    assert snap.up and all(ts.up for ts in snap.tenants) and len(snap.tenants) == 40
    assert sorted(order) == sorted(ts.tenant.id for ts in snap.tenants)  # each tenant once
    assert most == 4, f"{most} tenants in progress at once"
    assert sim.max_in_flight("pbx1") == 4  # and the requests in flight are what they were


async def test_the_next_request_goes_out_before_an_answer_is_decoded(simulator, monkeypatch):
    """The concurrency limit is on requests at the PBX; decoding is the exporter's own time.
    (Answers that arrive together would otherwise hold every next request until all are
    decoded: that cost 5% of a carrier-sized poll cycle.)"""
    url, _sim = await simulator(tenants=1, extensions_per_tenant=1, latency_ms=5)
    client = PbxwareClient(client_settings(system_config(url, concurrency=1)))
    events: list[tuple[str, str]] = []
    real_get, real_decode = aiohttp.ClientSession.get, client_module.decode_body

    def get(self, url, **kwargs):
        events.append(("request", kwargs["params"]["action"]))
        return real_get(self, url, **kwargs)

    def decode(action, body, fmt):
        events.append(("decode", action))
        return real_decode(action, body, fmt)

    monkeypatch.setattr(aiohttp.ClientSession, "get", get)
    monkeypatch.setattr(client_module, "decode_body", decode)
    try:
        await asyncio.gather(
            client.call("pbxware.tenant.list"), client.call("pbxware.dashboard.cpu")
        )
    finally:
        await client.close()
    assert events == [
        ("request", "pbxware.tenant.list"),
        ("request", "pbxware.dashboard.cpu"),
        ("decode", "pbxware.tenant.list"),
        ("decode", "pbxware.dashboard.cpu"),
    ]


async def test_vanished_tenant_disappears_at_once(simulator, aiohttp_client):
    url, sim = await simulator(tenants=3, extensions_per_tenant=4)
    daemon = Daemon(Config(systems=(system_config(url),)))
    client = await aiohttp_client(recorded(build_app(daemon.store, ["pbx1"])))
    gone = sorted(sim.state("pbx1").tenants)[-1]
    try:
        await daemon.pollers["pbx1"].poll_once()
        sim.remove_tenant("pbx1", gone)
        await daemon.pollers["pbx1"].poll_once()
        samples = await scrape(client)
    finally:
        await daemon.stop()
    assert not series(samples, "pbxware_tenant_up", tenant=gone)
    assert not series(samples, "pbxware_tenant_info", tenant=gone)
    assert value(samples, "pbxware_tenants", system="pbx1") == 2


async def test_daemon_polls_on_its_own_and_metrics_answer_during_a_slow_poll(
    simulator, aiohttp_client
):
    url, sim = await simulator(systems=("fast", "slow"), tenants=2, extensions_per_tenant=3)
    sim.set_fault("slow", "slow", seconds=30)
    config = Config(
        systems=(
            system_config(f"{url}/fast/", name="fast", interval=0.2, timeout=0.1),
            system_config(f"{url}/slow/", name="slow", interval=5.0, timeout=4.0),
        )
    )
    daemon = Daemon(config)
    client = await aiohttp_client(recorded(daemon.app()))
    await asyncio.wait_for(
        daemon.store.wait_for(lambda s: s.get("fast") is not None and s.get("fast").cycles >= 3),
        timeout=10,
    )
    # The slow system is still in its first poll, yet /metrics and /-/healthy answer.
    assert daemon.store.get("slow") is None
    samples = await scrape(client)
    assert value(samples, "pbxware_up", system="fast") == 1
    assert value(samples, "pbxware_up", system="slow") is None
    assert (await client.get("/-/ready")).status == 503
    assert (await client.get("/-/healthy")).status == 200
    sim.clear_faults()


async def test_landing_page_and_ready(simulator, aiohttp_client):
    url, sim = await simulator(tenants=1, extensions_per_tenant=2)
    sim.set_fault("pbx1", "wrong_key")
    daemon = Daemon(Config(systems=(system_config(url),)))
    client = await aiohttp_client(recorded(build_app(daemon.store, ["pbx1"])))
    try:
        assert (await client.get("/-/ready")).status == 503
        await daemon.pollers["pbx1"].poll_once()
        assert (await client.get("/-/ready")).status == 200
        page = await (await client.get("/")).text()
    finally:
        await daemon.stop()
    assert "pbx1" in page and "/metrics" in page
    assert "auth" in page and "Invalid API key" in page
    assert API_KEY not in page


def test_the_client_gets_its_own_settings_from_the_system_config():
    """Issue 15: the PBXware client takes ClientSettings, built by the daemon; the key is
    never in its repr."""
    system = system_config(
        "https://pbx.example/", path="/api.php", format="php", verify_tls=False, concurrency=7
    )
    settings = client_settings(system)
    assert settings.endpoint == "https://pbx.example/api.php"
    assert (settings.name, settings.format, settings.verify_tls) == ("pbx1", "php", False)
    assert (settings.timeout, settings.concurrency) == (system.timeout, 7)
    assert settings.api_key == system.api_key and system.api_key not in repr(settings)


async def test_the_extension_list_has_its_own_slower_interval(simulator, aiohttp_client):
    """Issue 18: ext.list, the largest answer, is asked every extension_list_interval (10 x
    interval by default); ext_online every cycle. A new extension shows within it."""
    url, sim = await simulator(tenants=2, extensions_per_tenant=3)
    system = system_config(url, interval=0.2, timeout=0.15, extension_list_interval=1.0)
    assert system_config(url).extension_list_every == 600.0  # the default: 10 x 60 s
    daemon = Daemon(Config(systems=(system,)))
    client = await aiohttp_client(recorded(daemon.app()))
    store = daemon.store
    tid = sorted(sim.state("pbx1").tenants)[0]

    def cycles() -> int:
        snapshot = store.get("pbx1")
        return 0 if snapshot is None else snapshot.cycles

    def listed(samples: dict) -> float:
        return sum(series(samples, "pbxware_extensions", system="pbx1", tenant=tid).values())

    await asyncio.wait_for(store.wait_for(lambda s: cycles() >= 3), 10)
    requests = sim.requests("pbx1")
    # Three cycles or more within well under a second: ext.list once per tenant, the
    # online count every cycle.
    assert requests["pbxware.ext.list"] == 2
    assert requests["pbxware.dashboard.ext_online"] >= 2 * 3
    before = listed(await scrape(client))
    sim.add_extension("pbx1", tid, "2999")
    added = cycles()
    await asyncio.wait_for(
        store.wait_for(lambda s: sim.requests("pbx1")["pbxware.ext.list"] >= 4), 10
    )
    await store.settled()
    assert listed(await scrape(client)) == before + 1
    # Within the extension list interval: counted in cycles of 0.2 s (±5 %), not seconds,
    # so that a busy machine does not make it flaky.
    assert cycles() - added <= 7
