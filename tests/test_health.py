"""The optional health collectors (services, registrations, calls, licences, trunks,
archiving, live monitor) against the simulator's ground truth, over real loopback HTTP."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import pytest

from exporter import features as feat
from exporter.config import CollectorConfig, Config
from exporter.daemon import Daemon
from exporter.logs import configure_logging
from exporter.pbxware import PbxwareError
from exporter.pbxware.models import parse_extensions, parse_tenants
from exporter.web.app import build_app
from pbxware_simulator import health
from tests.conftest import recorded, system_config
from tests.metrics_util import parse_samples, series, value

LICENSING_RESOURCES = {
    "ext": "extensions",
    "ivr": "ivrs",
    "queue": "queues",
    "conference": "conferences",
}


async def poll_and_scrape(daemon: Daemon, client, cycles: int = 1) -> dict:
    for _ in range(cycles):
        for poller in daemon.pollers.values():
            await poller.poll_once()
    resp = await client.get("/metrics")
    assert resp.status == 200
    return parse_samples(await resp.text())


@pytest.fixture
async def polled(simulator, aiohttp_client):
    """Start a simulator and an exporter over it; returns (sim, daemon, client)."""
    daemons: list[Daemon] = []

    async def start(fmt: str = "json", **system: object):
        url, sim = await simulator(tenants=3, extensions_per_tenant=12, seed=11)
        sim.tick()
        daemon = Daemon(Config(systems=(system_config(url, format=fmt, **system),)))
        daemons.append(daemon)
        client = await aiohttp_client(recorded(build_app(daemon.store, ["pbx1"])))
        return sim, daemon, client

    yield start
    for daemon in daemons:
        await daemon.stop()


@pytest.mark.parametrize("fmt", ["json", "php"])
async def test_health_metrics_equal_the_simulator_state(polled, fmt):
    sim, daemon, client = await polled(fmt)
    samples = await poll_and_scrape(daemon, client)
    state = sim.state("pbx1")

    assert {
        dict(lbl)["service"]: v for lbl, v in series(samples, "pbxware_service_up").items()
    } == {name: (1.0 if status == "running" else 0.0) for name, status in state.services.items()}
    for key, resource in LICENSING_RESOURCES.items():
        used, maximum = health.licensing(state)[key]
        assert value(samples, "pbxware_license_in_use", system="pbx1", resource=resource) == used
        assert value(samples, "pbxware_license_limit", system="pbx1", resource=resource) == maximum
    info = health.LICENSE_INFO
    assert value(samples, "pbxware_license_limit", system="pbx1", resource="channels") == int(
        info["Channels"]
    )
    assert value(samples, "pbxware_license_in_use", system="pbx1", resource="tenants") == len(
        state.tenants
    )
    assert (
        value(
            samples,
            "pbxware_system_info",
            system="pbx1",
            edition=info["Edition"],
            version=info["Version"],
        )
        == 1
    )
    trunks = series(samples, "pbxware_trunk_enabled", system="pbx1")
    assert {dict(lbl)["trunk"]: v for lbl, v in trunks.items()} == {
        tid: (1.0 if t.status == "enabled" else 0.0) for tid, t in state.trunks.items()
    }
    for tid, tenant in state.tenants.items():
        t = {"system": "pbx1", "tenant": tid}
        reg, calls = health.sip(state, tid), health.calls(state, tid)
        for s in ("success", "failed", "lagged"):
            assert value(samples, "pbxware_sip_registrations", **t, state=s) == getattr(reg, s)
        assert value(samples, "pbxware_calls_active", **t) == calls.now
        assert value(samples, "pbxware_calls_last_hour", **t) == calls.last_hour
        assert value(samples, "pbxware_calls_today", **t) == calls.today
        assert value(samples, "pbxware_calls_answered_today", **t) == calls.answered
        assert value(samples, "pbxware_live_calls", **t) == len(health.live_calls(state, tid))
        exts = tenant.extensions.values()
        online = sum(e.online for e in exts)
        assert value(samples, "pbxware_monitor_extensions", **t, status="online") == online
        assert (
            value(samples, "pbxware_monitor_extensions", **t, status="offline")
            == len(exts) - online
        )
        assert value(samples, "pbxware_extensions_dnd", **t) == sum(
            e.online and e.dnd for e in exts
        )
        assert value(samples, "pbxware_extensions_on_call", **t) == sum(e.on_call for e in exts)


async def test_archiving_runs_are_counted_once_across_polls(polled):
    sim, daemon, client = await polled()
    samples = await poll_and_scrape(daemon, client, cycles=3)
    now = datetime.fromtimestamp(sim.now("pbx1"), UTC).date()
    runs = sim.state("pbx1").archiving_runs(now.fromordinal(now.toordinal() - 1), now)
    expected = Counter(
        (
            r["tenant"],
            {"SUCCESS": "success", "FAILED": "failure", "PARTIAL": "partial"}[r["status"]],
        )
        for r in runs
    )
    got = {
        (dict(lbl)["tenant"], dict(lbl)["status"]): v
        for lbl, v in series(samples, "pbxware_archiving_runs_total", system="pbx1").items()
    }
    assert got == {k: float(n) for k, n in expected.items()}
    latest: dict[str, dict] = {}
    for run in runs:
        if run["tenant"] not in latest or run["date_time"] > latest[run["tenant"]]["date_time"]:
            latest[run["tenant"]] = run
    for code, run in latest.items():
        assert value(samples, "pbxware_archiving_last_run_success", system="pbx1", tenant=code) == (
            1.0 if run["status"] == "SUCCESS" else 0.0
        )


async def test_a_stopped_service_and_a_disabled_trunk_show(polled):
    sim, daemon, client = await polled()
    service = sorted(sim.state("pbx1").services)[0]
    trunk = sorted(sim.state("pbx1").trunks)[0]
    sim.set_service("pbx1", service, "stopped")
    sim.set_trunk_status("pbx1", trunk, "disabled")
    samples = await poll_and_scrape(daemon, client)
    assert value(samples, "pbxware_service_up", system="pbx1", service=service) == 0
    assert [v for lbl, v in series(samples, "pbxware_trunk_enabled", trunk=trunk).items()] == [0.0]


@pytest.mark.parametrize("fmt", ["json", "php"])
async def test_a_refused_action_leaves_the_other_series_intact(polled, leak_guard, fmt):
    configure_logging("info", "json", stream=leak_guard)
    sim, daemon, client = await polled(fmt)
    sim.set_fault("pbx1", "error", action="pbxware.dashboard.services")
    samples = await poll_and_scrape(daemon, client, cycles=3)
    assert not series(samples, "pbxware_service_up")
    assert value(samples, "pbxware_up", system="pbx1") == 1
    assert series(samples, "pbxware_trunk_enabled") and series(samples, "pbxware_calls_active")
    assert all(v == 1 for v in series(samples, "pbxware_tenant_up").values())
    assert (
        value(
            samples,
            "pbxware_poll_errors_total",
            system="pbx1",
            action="pbxware.dashboard.services",
            reason="api_error",
        )
        == 3
    )
    other_errors = {
        lbl: v
        for lbl, v in series(samples, "pbxware_poll_errors_total").items()
        if dict(lbl)["action"] != "pbxware.dashboard.services" and v
    }
    assert not other_errors
    events = [
        json.loads(line) for line in leak_guard.getvalue().splitlines() if line.startswith("{")
    ]
    refused = [e for e in events if e["event"] == "poll_failed"]
    assert len(refused) == 1, refused
    assert refused[0]["action"] == "pbxware.dashboard.services"
    assert "may not be allowed" in refused[0]["hint"]


async def test_collectors_can_be_switched_off_and_slowed_down(polled):
    collectors = {
        "services": CollectorConfig(enabled=False),
        "trunks": CollectorConfig(interval=3600.0),
    }
    sim, daemon, client = await polled(collectors=collectors)
    samples = await poll_and_scrape(daemon, client, cycles=3)
    requests = sim.requests("pbx1")
    assert "pbxware.dashboard.services" not in requests
    assert requests["pbxware.trunk.list"] == 1
    assert requests["pbxware.dashboard.cpu"] == 3
    assert not series(samples, "pbxware_service_up")
    # A job that is not due keeps its series and its status between its runs.
    assert series(samples, "pbxware_trunk_enabled")
    assert (
        value(samples, "pbxware_poll_duration_seconds", system="pbx1", action="pbxware.trunk.list")
        is not None
    )


@pytest.mark.parametrize("json_form", [False, True])
async def test_no_live_calls_answer_reads_as_zero(simulator, aiohttp_client, json_form):
    url, sim = await simulator(
        tenants=2, extensions_per_tenant=3, empty_tenants=1, live_calls_empty_json=json_form
    )
    daemon = Daemon(Config(systems=(system_config(url),)))
    client = await aiohttp_client(recorded(build_app(daemon.store, ["pbx1"])))
    try:
        samples = await poll_and_scrape(daemon, client)
    finally:
        await daemon.stop()
    state = sim.state("pbx1")
    idle = [tid for tid in state.tenants if not health.live_calls(state, tid)]
    assert idle, "the simulator should have a tenant without calls at this size"
    for tid in idle:
        assert value(samples, "pbxware_live_calls", system="pbx1", tenant=tid) == 0
    assert (
        sum(
            series(
                samples, "pbxware_poll_errors_total", action="pbxware.monitor.live_calls"
            ).values()
        )
        == 0
    )


# --- list shapes (issue 16 §5) -----------------------------------------------------------------
# PHP's json_encode writes an array whose keys are 0..n-1 as a JSON array and any other as an
# object keyed by id, and an empty one as []; some releases answer {} or "" for nothing. Each
# list parser reads all of them.

TENANT = {"name": "t1.example", "tenantcode": "344", "package_id": 1, "package": "P1",
          "ext_length": 3, "country_id": 869, "country_code": 1}  # fmt: skip
EXTENSION = {"name": "User 530", "email": "", "protocol": "sip", "ext": "530",
             "location": "local", "ua_id": "50", "status": "enabled"}  # fmt: skip
MONITOR = {"name": "Ana", "ext": "1001", "ip": "10.0.0.5", "status": "online", "ua": "x",
           "dnd": True, "on_call": False}  # fmt: skip
TRUNK = {"name": "sip-1", "protocol": "sip", "provider_id": "20",
         "provider_name": "Generic SIP", "status": "enabled"}  # fmt: skip
CALL = {"from": "1001", "to": "0123", "timestamp": 1711965600}
RUN = {"tenant": "344", "date_time": "2024-04-01 02:00:00", "status": "SUCCESS",
       "recording": {"success": 3, "failed": 0}}  # fmt: skip
EMPTIES = [[], {}, ""]


def shapes(entry: dict[str, Any], first_id: str = "7") -> list[Any]:
    """The same two entries keyed by id, and as a JSON array (keys 0 and 1)."""
    second = {**entry, "name": "second"}
    return [{first_id: entry, "9": second}, [entry, second]]


@pytest.mark.parametrize("data", shapes(TENANT))
def test_tenant_list(data):
    tenants = parse_tenants(data)
    assert [t.name for t in tenants] == ["t1.example", "second"]
    assert [t.id for t in tenants] in (["7", "9"], ["0", "1"])


@pytest.mark.parametrize("data", shapes(EXTENSION))
def test_ext_list(data):
    assert [e.name for e in parse_extensions(data)] == ["User 530", "second"]


@pytest.mark.parametrize("data", shapes(MONITOR))
def test_monitor_list(data):
    summary = feat.monitor.parse(data)
    assert summary.by_status == {"online": 2} and summary.dnd == 2


@pytest.mark.parametrize("data", shapes(TRUNK))
def test_trunk_list(data):
    assert [t.name for t in feat.trunks.parse(data)] == ["sip-1", "second"]


@pytest.mark.parametrize("data", shapes(CALL))
def test_live_calls(data):
    assert feat.live_calls.parse(json.dumps(data).encode(), "json") == 2


@pytest.mark.parametrize("data", [[RUN, RUN], {"3": RUN, "8": RUN}])
def test_archiving_list(data):
    assert len(feat.archiving.parse(data)) == 2


def test_services_as_an_object_or_an_array():
    assert feat.services.parse({"asterisk": "running", "mysql": "stopped"}) == {
        "asterisk": True,
        "mysql": False,
    }
    assert feat.services.parse(["running", "running"]) == {"0": True, "1": True}


@pytest.mark.parametrize("empty", EMPTIES)
def test_every_list_reads_empty_forms_as_empty(empty):
    assert parse_tenants(empty) == []
    assert parse_extensions(empty) == ()
    assert feat.monitor.parse(empty).by_status == {}
    assert feat.trunks.parse(empty) == ()
    assert feat.archiving.parse(empty) == ()
    assert feat.services.parse(empty) == {}
    assert feat.live_calls.parse(json.dumps(empty).encode(), "json") == 0


def test_live_calls_reads_an_empty_body_as_no_calls():
    assert feat.live_calls.parse(b"", "json") == 0
    assert feat.live_calls.parse(b"  \n", "json") == 0


@pytest.mark.parametrize("bad", [None, 5, "text", True])
def test_other_shapes_are_still_decode_errors(bad):
    for parse in (parse_tenants, parse_extensions, feat.monitor.parse, feat.trunks.parse):
        with pytest.raises(PbxwareError) as info:
            parse(bad)
        assert info.value.reason == "decode"


# --- field by field (issue 16 §6) ----------------------------------------------------------------


def test_license_info_keeps_the_good_fields_and_reads_unlimited_as_infinity():
    info = feat.licensing.parse_info(
        {
            "Edition": "Multi-Tenant",
            "Version": "8.1",
            "Channels": "Unlimited",
            "DIDs": "N/A",
            "Extensions": "1999",
            "Tenants": "999",
        }
    )
    assert info.edition == "Multi-Tenant" and info.version == "8.1"
    assert info.limit == {"channels": float("inf"), "extensions": 1999, "tenants": 999}
    assert info.problems == ("DIDs is not a number",)
    assert feat.problems_of(info) == info.problems


def test_licensing_keeps_the_good_resources():
    usage = feat.licensing.parse_usage(
        {
            "ext": {"inuse": 120, "max": "unlimited"},
            "ivr": {"inuse": "x", "max": 50},
            "queue": "broken",
            "conference": {"inuse": 1, "max": 10},
        }
    )
    assert usage.in_use == {"extensions": 120, "conferences": 1}
    assert usage.limit == {"extensions": float("inf"), "ivrs": 50, "conferences": 10}
    assert len(usage.problems) == 2


def test_calls_and_registrations_keep_the_good_fields():
    calls = feat.calls.parse({"now": 3, "last hour": "n/a", "today": 412, "answared calls": 350})
    assert (calls.active, calls.last_hour, calls.today, calls.answered_today) == (3, None, 412, 350)
    assert calls.problems == ("last hour is not a number",)
    reg = feat.sip_registrations.parse({"SIP Registrations": {"success": 40, "failed": "?"}})
    assert (reg.success, reg.failed, reg.lagged) == (40, None, 0)
    assert len(reg.problems) == 1


def test_lists_keep_the_good_entries():
    trunks = feat.trunks.parse({"1": {"name": "a", "status": "enabled"}, "2": "garbage"})
    assert [t.name for t in trunks] == ["a"] and len(feat.problems_of(trunks)) == 1
    monitor = feat.monitor.parse({"1": {"status": "online"}, "2": 7})
    assert monitor.by_status == {"online": 1} and len(monitor.problems) == 1
    runs = feat.archiving.parse([{"tenant": "1", "status": "SUCCESS"}, "oops"])
    assert len(runs) == 1 and len(feat.problems_of(runs)) == 1
    assert feat.problems_of(feat.trunks.parse({})) == ()


async def test_a_bad_field_leaves_the_others_in_the_metrics(simulator, aiohttp_client):
    url, sim = await simulator(tenants=2, extensions_per_tenant=3)
    sim.tick()
    sim.set_license_info("pbx1", Channels="Unlimited", DIDs="N/A")
    daemon = Daemon(Config(systems=(system_config(url),)))
    client = await aiohttp_client(recorded(build_app(daemon.store, ["pbx1"])))
    try:
        samples = await poll_and_scrape(daemon, client)
    finally:
        await daemon.stop()
    limits = series(samples, "pbxware_license_limit", system="pbx1")
    by_resource = {dict(k)["resource"]: v for k, v in limits.items()}
    assert by_resource["channels"] == float("inf") and "dids" not in by_resource
    assert by_resource["tenants"] > 0  # the good fields of the same answer are there
    assert len(series(samples, "pbxware_system_info", system="pbx1")) == 1
    # The unreadable field counts once per answer as a decode error of its action, and
    # the action itself is not failing.
    decode = value(
        samples,
        "pbxware_poll_errors_total",
        system="pbx1",
        action="pbxware.license.info",
        reason="decode",
    )
    assert decode == 1
    assert value(samples, "pbxware_up", system="pbx1") == 1


async def test_an_unreadable_calls_field_is_no_series_the_others_stay(simulator, aiohttp_client):
    url, sim = await simulator(tenants=1, extensions_per_tenant=3)
    sim.tick()
    daemon = Daemon(Config(systems=(system_config(url),)))
    client = await aiohttp_client(recorded(build_app(daemon.store, ["pbx1"])))
    try:
        await poll_and_scrape(daemon, client)
        snap = daemon.store.get("pbx1")
    finally:
        await daemon.stop()
    assert snap is not None
    ts = snap.tenants[0]
    values = {
        **ts.values,
        "calls": feat.calls.parse({"now": 2, "last hour": "?", "today": 5}),
        "sip_registrations": feat.sip_registrations.parse(
            {"SIP Registrations": {"success": 3, "failed": "x", "lagged": 0}}
        ),
    }
    changed = replace(snap, tenants=(replace(ts, values=MappingProxyType(values)),))
    samples: dict = {}
    families = (f for feature in feat.FEATURES[1:] for f in feature.families([changed]))
    for family in families:
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    tenant = ts.tenant.id
    assert value(samples, "pbxware_calls_active", system="pbx1", tenant=tenant) == 2
    assert not series(samples, "pbxware_calls_last_hour", system="pbx1", tenant=tenant)
    regs = series(samples, "pbxware_sip_registrations", system="pbx1", tenant=tenant)
    assert sorted(dict(k)["state"] for k in regs) == ["lagged", "success"]


# --- archiving date_time (issue 16 §7) ---------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    ["2024-04-01 02:00:00", "Apr-01-2024 02:00:00", "1711936800", "2024-04-01T02:00:00"],
)
def test_archiving_date_time_forms(raw):
    (run,) = feat.archiving.parse([{"tenant": "344", "date_time": raw, "status": "SUCCESS"}])
    assert run.timestamp == datetime(2024, 4, 1, 2, 0, tzinfo=UTC).timestamp()


def test_archiving_runs_with_an_unknown_date_form_are_kept_apart():
    from exporter.features.archiving import ArchivingTracker

    forms = ["01.04.2024 02:00", "02.04.2024 02:00", "01.04.2024 02:00"]
    runs = feat.archiving.parse(
        [{"tenant": "344", "date_time": f, "status": "SUCCESS"} for f in forms]
    )
    assert [r.timestamp for r in runs] == [None, None, None]
    tracker = ArchivingTracker()
    tracker.update(runs, now=1_711_936_800)
    tracker.update(runs, now=1_711_936_900)  # read again: nothing new
    assert tracker.totals().runs == {("344", "success"): 2}  # two runs, not merged into one
