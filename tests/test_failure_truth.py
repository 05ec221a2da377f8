"""The bad day: a sick PBX shows as sick within one interval, at any scale, and no tenant
vanishes (issue 13). Real loopback HTTP against the simulator throughout."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from exporter.config import Config
from exporter.daemon import Daemon
from exporter.pbxware import PbxwareError
from exporter.pbxware.client import PbxwareClient
from exporter.pbxware.decode import decode_body
from exporter.snapshot import SnapshotStore
from exporter.web.app import build_app
from tests.conftest import recorded, system_config
from tests.metrics_util import parse_samples, series, value

TENANT_LIST = "pbxware.tenant.list"
CORE = {
    TENANT_LIST,
    "pbxware.dashboard.cpu",
    "pbxware.dashboard.memory",
    "pbxware.dashboard.disk_usage",
}


async def scrape(client: Any, path: str = "/metrics") -> dict:
    resp = await client.get(path)
    assert resp.status == 200
    return parse_samples(await resp.text())


class FirstFailure:
    """Notes when the exporter's first failed PBXware request returned (monotonic)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.at: float | None = None
        real = PbxwareClient.call

        async def call(client: PbxwareClient, *args: Any, **kwargs: Any) -> Any:
            try:
                return await real(client, *args, **kwargs)
            except PbxwareError:
                if self.at is None:
                    self.at = time.monotonic()
                raise

        monkeypatch.setattr(PbxwareClient, "call", call)


def up_is(store: SnapshotStore, system: str, up: bool) -> bool:
    snap = store.get(system)
    return snap is not None and snap.up is up


# --- 1. detection within interval + timeout, at any scale -----------------------------------

INTERVAL, TIMEOUT, TENANTS = 4.0, 2.0, 200


@pytest.mark.slow
@pytest.mark.parametrize("when", ["between_cycles", "mid_fan_out"])
async def test_a_hung_pbx_reads_down_within_interval_plus_timeout(
    simulator, aiohttp_client, monkeypatch, when
):
    # 200 tenants, concurrency 4, timeout 2 s: before, the snapshot waited for all 400
    # requests to time out (~200 s).
    url, sim = await simulator(tenants=TENANTS, extensions_per_tenant=2, latency_ms=2)
    # ext.list every cycle, so that every cycle fans out both actions to 200 tenants.
    system = system_config(
        url, interval=INTERVAL, timeout=TIMEOUT, concurrency=4, extension_list_interval=INTERVAL
    )
    daemon = Daemon(Config(systems=(system,)))
    client = await aiohttp_client(recorded(daemon.app()))
    store = daemon.store
    await asyncio.wait_for(store.wait_for(lambda s: up_is(s, "pbx1", True)), 30)
    failure = FirstFailure(monkeypatch)

    if when == "mid_fan_out":
        # Hang the PBX once the next cycle has sent 50 of its per-tenant requests (counted
        # where they are sent, inside the concurrency slot: all are queued at once).
        real = PbxwareClient._request
        sent = {"n": 0}

        async def request(client_: PbxwareClient, action: str, *args: Any) -> Any:
            if action == "pbxware.ext.list":
                sent["n"] += 1
                if sent["n"] == TENANTS + 50:
                    sim.set_fault("pbx1", "slow", seconds=300)
            return await real(client_, action, *args)

        monkeypatch.setattr(PbxwareClient, "_request", request)
    else:
        sim.set_fault("pbx1", "slow", seconds=300)
    try:
        await asyncio.wait_for(
            store.wait_for(lambda s: up_is(s, "pbx1", False)), INTERVAL * 3 + TIMEOUT * 3
        )
        detected = time.monotonic()
        assert failure.at is not None
        assert detected - failure.at <= INTERVAL + TIMEOUT, detected - failure.at
        snap = store.get("pbx1")
        assert snap is not None and snap.cycle_duration is not None
        assert snap.cycle_duration <= INTERVAL + TIMEOUT
        samples = await scrape(client)
        assert value(samples, "pbxware_up", system="pbx1") == 0
        # Every known tenant is down, none vanished, and the count stays.
        tenant_up = series(samples, "pbxware_tenant_up", system="pbx1")
        assert len(tenant_up) == TENANTS and set(tenant_up.values()) == {0.0}
        assert value(samples, "pbxware_tenants", system="pbx1") == TENANTS
        assert (
            value(samples, "pbxware_poll_cycles_aborted_total", system="pbx1", reason="timeout")
            >= 1
        )
        assert (
            value(samples, "pbxware_poll_cycles_aborted_total", system="pbx1", reason="connect")
            == 0
        )

        # Recovery: up again within one interval of the PBX answering.
        sim.clear_faults()
        answered = time.monotonic()
        await asyncio.wait_for(store.wait_for(lambda s: up_is(s, "pbx1", True)), INTERVAL * 3)
        assert time.monotonic() - answered <= INTERVAL
    finally:
        sim.clear_faults()


@pytest.mark.parametrize(
    ("kind", "reason"), [("down", "connect"), ("http_500", "http"), ("html", "decode")]
)
async def test_a_refusing_or_html_pbx_aborts_the_cycle_at_once(simulator, kind, reason):
    url, sim = await simulator(tenants=50, extensions_per_tenant=2)
    daemon = Daemon(Config(systems=(system_config(url, interval=5.0, timeout=1.0),)))
    poller = daemon.pollers["pbx1"]
    try:
        await poller.poll_once()
        sim.set_fault("pbx1", kind)
        sim.reset_stats()
        snap = await poller.poll_once()
        # The first step failed: no fan-out to 50 tenants × 2 actions. (aiohttp retries a
        # request once when a reused connection is closed, so count actions, not requests.)
        assert set(sim.requests("pbx1")) == CORE
        assert snap.up is False
        assert [t.up for t in snap.tenants] == [False] * 50
        assert snap.aborted[reason] == 1
        # While down, only the first step is asked.
        sim.reset_stats()
        await poller.poll_once()
        assert set(sim.requests("pbx1")) == CORE
        sim.clear_faults()
        snap = await poller.poll_once()
        assert snap.up is True and all(t.up for t in snap.tenants)
    finally:
        await daemon.stop()


@pytest.mark.slow
async def test_a_cycle_never_runs_past_its_interval(simulator):
    # A PBX that answers, but so slowly that 40 tenants cannot be polled in one interval: no
    # breaker (every request is answered), the deadline ends the cycle, and the next cycle
    # starts with the tenants the last one did not reach.
    url, sim = await simulator(tenants=40, extensions_per_tenant=2)
    sim.set_fault("pbx1", "slow", action="pbxware.ext.list", seconds=0.5)
    system = system_config(
        url, interval=2.0, timeout=1.5, concurrency=2, extension_list_interval=2.0
    )
    daemon = Daemon(Config(systems=(system,)))
    poller = daemon.pollers["pbx1"]
    try:
        polled: list[set[str]] = []
        for _ in range(2):
            started = time.monotonic()
            snap = await poller.poll_once()
            assert time.monotonic() - started < 2.0 + 1.5
            assert snap.up is True  # the system itself answers
            assert len(snap.tenants) == 40
            polled.append({t.tenant.id for t in snap.tenants if t.up})
        assert snap.aborted["deadline"] == 2
        assert snap.aborted["timeout"] == 0
        first, second = polled
        assert first and second > first, (first, second)
    finally:
        sim.clear_faults()
        await daemon.stop()


# --- 2. the tenant list is never forgotten because a request failed --------------------------


async def test_a_failing_tenant_list_alone_keeps_every_tenant(simulator, aiohttp_client):
    url, sim = await simulator(tenants=3, extensions_per_tenant=4)
    daemon = Daemon(Config(systems=(system_config(url, stale_after=2),)))
    client = await aiohttp_client(recorded(build_app(daemon.store, ["pbx1"])))
    poller = daemon.pollers["pbx1"]
    try:
        await poller.poll_once()
        sim.set_fault("pbx1", "html", action=TENANT_LIST)
        for _ in range(4):  # well past stale_after
            await poller.poll_once()
        samples = await scrape(client)
    finally:
        await daemon.stop()
    assert value(samples, "pbxware_up", system="pbx1") == 0
    assert value(samples, "pbxware_tenants", system="pbx1") == 3
    tenant_up = series(samples, "pbxware_tenant_up", system="pbx1")
    assert len(tenant_up) == 3 and set(tenant_up.values()) == {1.0}
    for tid in sim.state("pbx1").tenants:
        assert value(samples, "pbxware_extensions_online", system="pbx1", tenant=tid) is not None


async def test_a_system_down_for_long_keeps_its_tenants_at_zero(simulator, aiohttp_client):
    url, sim = await simulator(tenants=3, extensions_per_tenant=4)
    daemon = Daemon(Config(systems=(system_config(url, stale_after=2, timeout=0.5),)))
    client = await aiohttp_client(recorded(build_app(daemon.store, ["pbx1"])))
    poller = daemon.pollers["pbx1"]
    try:
        await poller.poll_once()
        sim.set_fault("pbx1", "down")
        for _ in range(4):
            await poller.poll_once()
        samples = await scrape(client)
        assert value(samples, "pbxware_up", system="pbx1") == 0
        assert value(samples, "pbxware_tenants", system="pbx1") == 3
        tenant_up = series(samples, "pbxware_tenant_up", system="pbx1")
        assert len(tenant_up) == 3 and set(tenant_up.values()) == {0.0}
        # Stale values still go after stale_after; the tenants themselves stay.
        assert not series(samples, "pbxware_extensions_online", system="pbx1")
        # A successful tenant list is what removes a tenant.
        sim.clear_faults()
        gone = sorted(sim.state("pbx1").tenants)[-1]
        sim.remove_tenant("pbx1", gone)
        await poller.poll_once()
        samples = await scrape(client)
        assert value(samples, "pbxware_tenants", system="pbx1") == 2
        assert not series(samples, "pbxware_tenant_up", tenant=gone)
    finally:
        await daemon.stop()


# --- 3. a permission refusal is not a bad key ------------------------------------------------

AUTH = [
    "Invalid API key.",
    "invalid api key",
    "Error: Invalid API Key",
    "API key suspended due to inactivity.",
    "This API key is suspended.",
    "API key expired",
    "Your IP address 10.1.2.3 is not allowed to use this API key.",
    "Access from this IP is denied.",
    "Missing API key",
]
API_ERROR = [
    "This API key is not allowed to use action pbxware.tenant.list.",
    "Error: This API key is not allowed to use action pbxware.ext.list",
    "API key not allowed to use action: pbxware.cdr.download",
    "You are not permitted to use this action.",
    "Permission denied for action pbxware.dashboard.services",
    "Action pbxware.license.info is not allowed for this API key.",
    "Simulated failure.",
    "Missing required argument: server",
    "Invalid tenant (server) ID.",
]


def reason_of(text: str, fmt: str = "json") -> str:
    with pytest.raises(PbxwareError) as err:
        decode_body("pbxware.tenant.list", json.dumps({"error": text}).encode(), fmt)
    return err.value.reason


@pytest.mark.parametrize("text", AUTH)
def test_key_refusals_are_auth(text):
    assert reason_of(text) == "auth"


@pytest.mark.parametrize("text", API_ERROR)
def test_other_refusals_are_api_errors(text):
    assert reason_of(text) == "api_error"


@pytest.mark.parametrize("fmt", ["json", "php"])
async def test_a_key_refused_one_action_is_an_api_error_end_to_end(simulator, fmt):
    url, sim = await simulator(tenants=2, extensions_per_tenant=3)
    sim.set_fault("pbx1", "denied", action=TENANT_LIST)
    daemon = Daemon(Config(systems=(system_config(url, format=fmt),)))
    try:
        snap = await daemon.pollers["pbx1"].poll_once()
    finally:
        await daemon.stop()
    assert snap.errors.get((TENANT_LIST, "api_error")) == 1
    assert not snap.errors.get((TENANT_LIST, "auth"))


# --- 4. PHP diagnostics before the body are tolerated and counted ----------------------------

NOTICES = [
    b"\nNotice: Undefined index: server in /opt/pbxware/pw/www/api/index.php on line 214\n",
    b"<br />\n<b>Notice</b>:  Undefined index: server in <b>/opt/pbxware/index.php</b> on line"
    b" <b>214</b><br />\n",
    b"PHP Warning:  date(): It is not safe to rely on the system's timezone settings in"
    b" /opt/x.php on line 3\n",
    b"\nDeprecated: Function create_function() is deprecated in /opt/a.php on line 9\n"
    b"\nStrict Standards: Non-static method x() should not be called statically in /b.php"
    b" on line 2\n",
]


@pytest.mark.parametrize("notice", NOTICES)
@pytest.mark.parametrize(
    ("fmt", "body", "expected"),
    [
        ("json", b'{"count": 3}', {"count": 3}),
        ("php", b'a:1:{s:5:"count";i:3;}', {"count": 3}),
    ],
)
def test_leading_php_diagnostics_are_skipped(notice, fmt, body, expected):
    from exporter.pbxware.decode import strip_php_diagnostics

    stripped, first = strip_php_diagnostics(notice + body)
    assert first is not None and first.split(":")[0].strip() in (
        "Notice",
        "PHP Warning",
        "Deprecated",
    )
    assert decode_body("a", stripped, fmt) == expected


def test_a_clean_body_is_untouched_and_only_diagnostics_is_a_decode_error():
    from exporter.pbxware.decode import strip_php_diagnostics

    assert strip_php_diagnostics(b'{"a": 1}') == (b'{"a": 1}', None)
    stripped, first = strip_php_diagnostics(NOTICES[0])
    assert first is not None
    with pytest.raises(PbxwareError) as err:
        decode_body("a", stripped, "json")
    assert err.value.reason == "decode" and "only PHP diagnostics" in err.value.message
    # A notice after the start, or other text, is still not JSON.
    with pytest.raises(PbxwareError):
        decode_body("a", strip_php_diagnostics(b'{"a": 1}\nNotice: x\n')[0], "json")


@pytest.mark.parametrize("fmt", ["json", "php"])
@pytest.mark.parametrize("kind", ["notice", "notice_html"])
@pytest.mark.parametrize("action", [None, "pbxware.ext.list", "pbxware.dashboard.cpu"])
async def test_a_php_notice_does_not_take_a_healthy_pbx_down(
    simulator, aiohttp_client, leak_guard, fmt, action, kind
):
    url, sim = await simulator(tenants=2, extensions_per_tenant=3)
    sim.set_fault("pbx1", kind, action=action)
    # ext.list every cycle: two answers per cycle with the notice.
    system = system_config(url, format=fmt, extension_list_interval=60.0)
    daemon = Daemon(Config(systems=(system,)))
    client = await aiohttp_client(recorded(build_app(daemon.store, ["pbx1"])))
    try:
        await daemon.pollers["pbx1"].poll_once()
        await daemon.pollers["pbx1"].poll_once()
        samples = await scrape(client)
    finally:
        await daemon.stop()
    assert value(samples, "pbxware_up", system="pbx1") == 1
    assert set(series(samples, "pbxware_tenant_up", system="pbx1").values()) == {1.0}
    assert sum(series(samples, "pbxware_poll_errors_total", system="pbx1").values()) == 0
    warned = series(samples, "pbxware_response_warnings_total", system="pbx1")
    counted = "pbxware.ext.list" if action is None else action
    per_cycle = 2 if counted == "pbxware.ext.list" else 1
    assert (
        value(samples, "pbxware_response_warnings_total", system="pbx1", action=counted)
        == 2 * per_cycle
    ), warned
    # Logged once per action, not per answer.
    lines = [
        line
        for line in leak_guard.getvalue().splitlines()
        if "response_warning" in line and counted in line
    ]
    assert len(lines) == 1, lines
    assert "Undefined index" in lines[0]


# --- 5. zero is a value ----------------------------------------------------------------------


async def test_a_tenant_without_extensions_has_zero_series(simulator, aiohttp_client):
    url, sim = await simulator(tenants=3, extensions_per_tenant=4, empty_tenants=1)
    daemon = Daemon(Config(systems=(system_config(url),)))
    client = await aiohttp_client(recorded(build_app(daemon.store, ["pbx1"])))
    try:
        await daemon.pollers["pbx1"].poll_once()
        samples = await scrape(client)
    finally:
        await daemon.stop()
    state = sim.state("pbx1")
    empty = next(tid for tid, t in state.tenants.items() if not t.extensions)
    full = next(tid for tid, t in state.tenants.items() if t.extensions)
    extensions = series(samples, "pbxware_extensions", system="pbx1", tenant=empty)
    assert extensions and set(extensions.values()) == {0.0}
    # The same (status, protocol) pairs as the other tenants.
    pairs = {
        (dict(lbl)["status"], dict(lbl)["protocol"])
        for lbl in series(samples, "pbxware_extensions", system="pbx1", tenant=full)
    }
    assert {(dict(lbl)["status"], dict(lbl)["protocol"]) for lbl in extensions} == pairs
    monitor = series(samples, "pbxware_monitor_extensions", system="pbx1", tenant=empty)
    assert {dict(lbl)["status"] for lbl in monitor} >= {"online", "offline", "other"}
    assert set(monitor.values()) == {0.0}


# --- 6. /probe serves everything /metrics has for the system ---------------------------------


def families(samples: dict, system: str) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for (name, labels), v in samples.items():
        if ("system", system) in labels:
            out.setdefault(name, {})[labels] = v
    return out


async def test_probe_equals_metrics_filtered_on_the_system(simulator, aiohttp_client):
    from tests.test_cdr import T0, cdr_config

    url, sim = await simulator(
        systems=("eu1", "us1"), tenants=2, extensions_per_tenant=3, start_time=T0
    )
    config = Config(
        systems=(
            system_config(f"{url}/eu1/", name="eu1", cdr=cdr_config()),
            system_config(f"{url}/us1/", name="us1", cdr=cdr_config()),
        )
    )
    daemon = Daemon(config, clock=lambda: sim.now("eu1"))
    client = await aiohttp_client(recorded(daemon_app(daemon)))
    try:
        for name in ("eu1", "us1"):
            await daemon.pollers[name].poll_once()
            await daemon.pollers[name].runners["cdr"].poll_once()  # type: ignore[attr-defined]
        metrics = await scrape(client)
        probe = await scrape(client, "/probe?target=eu1")
    finally:
        await daemon.stop()
    want, got = families(metrics, "eu1"), families(probe, "eu1")
    assert any(name.startswith("pbxware_cdr_") for name in want)
    for name in sorted(want):
        assert got.get(name) == want[name], name
    assert set(got) == set(want)
    # Nothing of the other system.
    assert not families(probe, "us1")


def daemon_app(daemon: Daemon):
    # The daemon's app without starting its background polling: the test polls by hand.
    app = daemon.app()
    app.on_startup.clear()
    return app
