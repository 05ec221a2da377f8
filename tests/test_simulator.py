"""The PBXware API simulator speaks the API as docs/pbxware-api reference describes it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import phpserialize
import pytest
from aiohttp.test_utils import TestClient

from pbxware_simulator import Simulator, SimulatorOptions, start_simulator
from pbxware_simulator.api import encode
from pbxware_simulator.cli import build_parser

KEY = "test-key-0123456789"
ROOT = Path(__file__).resolve().parent.parent

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


def make_sim(**overrides: Any) -> Simulator:
    # A fixed clock: two simulators built a moment apart must hold equal states.
    options: dict[str, Any] = {"systems": ("pbx1", "pbx2"), "api_key": KEY, "start_time": 1.7e9}
    options.update(overrides)
    return Simulator(SimulatorOptions(**options))


@pytest.fixture
def sim() -> Simulator:
    return make_sim()


@pytest.fixture
async def client(sim: Simulator, aiohttp_client: ClientFactory) -> TestClient[Any, Any]:
    return await aiohttp_client(sim.app())


async def call(
    client: TestClient[Any, Any], path: str = "/index.php", **params: str
) -> tuple[int, bytes]:
    params.setdefault("apikey", KEY)
    async with client.get(path, params=params) as resp:
        return resp.status, await resp.read()


async def call_json(client: TestClient[Any, Any], path: str = "/index.php", **params: str) -> Any:
    status, body = await call(client, path, **params)
    assert status == 200
    return json.loads(body)


def php_shaped(value: Any) -> Any:
    """What PHP's arrays make of JSON data: digit-string keys become ints, lists become maps."""
    if isinstance(value, dict):
        return {
            (int(k) if k.isdigit() and (k == "0" or k[0] != "0") else k): php_shaped(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return {i: php_shaped(v) for i, v in enumerate(value)}
    return value


# --- protocol ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "server"),
    [
        ("pbxware.tenant.list", None),
        ("pbxware.ext.list", "2"),
        ("pbxware.monitor.list", "3"),
        ("pbxware.dashboard.ext_online", "2"),
        ("pbxware.dashboard.ext_online", None),
        ("pbxware.dashboard.cpu", None),
        ("pbxware.dashboard.memory", None),
        ("pbxware.dashboard.disk_usage", None),
        ("pbxware.package.list", None),
        ("pbxware.route.list", None),
    ],
)
async def test_json_and_php_formats_carry_the_same_data(
    client: TestClient[Any, Any], action: str, server: str | None
) -> None:
    args = {"action": action} | ({"server": server} if server else {})
    default = await call_json(client, **args)
    explicit = await call_json(client, apiformat="json", **args)
    status, php_body = await call(client, apiformat="php", **args)
    assert status == 200
    assert default == explicit
    assert default  # every action here has data in the default setup
    assert phpserialize.loads(php_body, decode_strings=True) == php_shaped(default)


async def test_php_error_payload_is_serialized_too(client: TestClient[Any, Any]) -> None:
    status, body = await call(client, apikey="nope", apiformat="php", action="pbxware.ext.list")
    assert status == 200
    assert phpserialize.loads(body, decode_strings=True) == {"error": "Invalid API key."}


def test_json_escapes_slashes_and_non_ascii_like_php() -> None:
    assert encode({"ua": "UA/6.4", "name": "Željko"}, "json") == (
        b'{"ua":"UA\\/6.4","name":"\\u017deljko"}'
    )


@pytest.mark.parametrize("apikey", [None, "", "wrong-key-123", KEY + "x"])
async def test_wrong_or_missing_key_is_an_error_with_http_200(
    client: TestClient[Any, Any], apikey: str | None
) -> None:
    params = {"action": "pbxware.tenant.list"}
    if apikey is not None:
        params["apikey"] = apikey
    async with client.get("/index.php", params=params) as resp:
        assert resp.status == 200
        assert json.loads(await resp.read()) == {"error": "Invalid API key."}


@pytest.mark.parametrize("action", ["pbxware.queue.list", "", "tenant.list"])
async def test_unknown_action(client: TestClient[Any, Any], action: str) -> None:
    assert await call_json(client, action=action) == {"error": "Invalid action."}


async def test_unknown_apiformat(client: TestClient[Any, Any]) -> None:
    body = await call_json(client, action="pbxware.tenant.list", apiformat="xml")
    assert body == {"error": "Invalid API format."}


async def test_ext_list_needs_a_known_server(client: TestClient[Any, Any]) -> None:
    missing = {"error": "Missing required parameter: server"}
    assert await call_json(client, action="pbxware.ext.list") == missing
    assert await call_json(client, action="pbxware.ext.list", server="") == missing
    for bad in ("999", "100", "abc"):  # "100" is a tenant *code*, not an id
        body = await call_json(client, action="pbxware.ext.list", server=bad)
        assert body == {"error": "Invalid server."}
    # The master tenant is valid but owns no extensions here.
    assert await call_json(client, action="pbxware.ext.list", server="1") == []


@pytest.mark.parametrize("path", ["/", "/index.php", "/pbx1/", "/pbx1/index.php"])
async def test_first_system_is_served_on_every_path(
    sim: Simulator, client: TestClient[Any, Any], path: str
) -> None:
    body = await call_json(client, path, action="pbxware.tenant.list")
    assert set(body) == set(sim.state("pbx1").tenants)
    assert sim.requests("pbx1") == {"pbxware.tenant.list": 1}
    assert sim.requests("pbx2") == {}


async def test_each_system_has_its_own_data(sim: Simulator, client: TestClient[Any, Any]) -> None:
    one = await call_json(client, "/pbx1/index.php", action="pbxware.ext.list", server="2")
    two = await call_json(client, "/pbx2/", action="pbxware.ext.list", server="2")
    assert one != two
    assert set(two) == set(sim.state("pbx2").tenants["2"].extensions)
    assert sim.requests("pbx2") == {"pbxware.ext.list": 1}


async def test_post_merges_form_fields_over_query_args(client: TestClient[Any, Any]) -> None:
    form = {"apikey": KEY, "server": "3"}
    async with client.post(
        "/index.php", params={"action": "pbxware.ext.list", "server": "2"}, data=form
    ) as resp:
        via_post = json.loads(await resp.read())
    assert via_post == await call_json(client, action="pbxware.ext.list", server="3")


# --- data ---------------------------------------------------------------------------------


async def test_tenant_list_matches_state(sim: Simulator, client: TestClient[Any, Any]) -> None:
    body = await call_json(client, action="pbxware.tenant.list")
    state = sim.state("pbx1")
    assert list(body) == ["2", "3", "4"]
    assert [t["tenantcode"] for t in body.values()] == ["100", "101", "102"]
    for tid, entry in body.items():
        tenant = state.tenants[tid]
        assert entry["name"].strip() == tenant.name
        assert entry["name"] == tenant.api_name
        assert entry["tenantcode"] == tenant.code
        assert entry["package"] == tenant.package
        for name in ("package_id", "ext_length", "country_id", "country_code"):
            assert type(entry[name]) is int
        assert entry["package_id"] == tenant.package_id
    # Real names sometimes carry stray whitespace; the simulator reproduces that.
    assert any(entry["name"] != entry["name"].strip() for entry in body.values())
    packages = await call_json(client, action="pbxware.package.list")
    assert all(packages[str(t["package_id"])] == t["package"] for t in body.values())


async def test_numeric_strings_variant(aiohttp_client: ClientFactory) -> None:
    client = await aiohttp_client(make_sim(numeric_strings=True).app())
    body = await call_json(client, action="pbxware.tenant.list")
    for entry in body.values():
        for name in ("package_id", "ext_length", "country_id", "country_code"):
            assert isinstance(entry[name], str)
            assert entry[name].isdigit()


async def test_ext_list_matches_state(sim: Simulator, client: TestClient[Any, Any]) -> None:
    state = sim.state("pbx1")
    seen_ids: set[str] = set()
    for tid, tenant in state.tenants.items():
        body = await call_json(client, action="pbxware.ext.list", server=tid)
        assert set(body) == set(tenant.extensions)
        assert not seen_ids & set(body), "extension ids must be unique per system"
        seen_ids |= set(body)
        for eid, entry in body.items():
            ext = tenant.extensions[eid]
            assert all(isinstance(v, str) for v in entry.values())
            assert (entry["ext"], entry["name"], entry["email"]) == (
                ext.number,
                ext.name,
                ext.email,
            )
            assert (entry["protocol"], entry["status"]) == (ext.protocol, ext.status)
        numbers = [entry["ext"] for entry in body.values()]
        assert numbers == [str(1001 + i) for i in range(10)]


async def test_empty_tenant_and_empty_system_give_empty_arrays(
    aiohttp_client: ClientFactory,
) -> None:
    sim = make_sim(tenants=2, empty_tenants=1)
    client = await aiohttp_client(sim.app())
    assert await call_json(client, action="pbxware.ext.list", server="3") == []
    assert await call_json(client, action="pbxware.monitor.list", server="3") == []
    assert await call_json(client, action="pbxware.ext.list", server="2") != []
    online = await call_json(client, action="pbxware.dashboard.ext_online", server="3")
    assert online == {"type": "Extensions Online", "count": 0}

    empty = await aiohttp_client(make_sim(tenants=0).app())
    assert await call_json(empty, action="pbxware.tenant.list") == []


async def test_online_counts_and_monitor_list_agree_with_state(
    sim: Simulator, client: TestClient[Any, Any]
) -> None:
    for _ in range(3):
        state = sim.state("pbx1")
        total = await call_json(client, action="pbxware.dashboard.ext_online")
        assert total == {"type": "Extensions Online", "count": state.online_count()}
        for tid, tenant in state.tenants.items():
            online = await call_json(client, action="pbxware.dashboard.ext_online", server=tid)
            assert online["count"] == state.online_count(tid)
            monitor = await call_json(client, action="pbxware.monitor.list", server=tid)
            shown_online = {eid for eid, m in monitor.items() if m["status"] == "online"}
            truly_online = {eid for eid, e in tenant.extensions.items() if e.online}
            assert shown_online == truly_online
            assert len(shown_online) == state.online_count(tid)
            for eid, entry in monitor.items():
                assert entry["ext"] == tenant.extensions[eid].number
                assert entry["status"] in ("online", "offline")
                assert entry["dnd"] in ("", True, False)
                assert entry["on_call"] in ("", True, False)
        sim.tick()


async def test_dashboard_load_formats_match_state(
    sim: Simulator, client: TestClient[Any, Any]
) -> None:
    state = sim.state("pbx1")
    cpu = await call_json(client, action="pbxware.dashboard.cpu")
    memory = await call_json(client, action="pbxware.dashboard.memory")
    disk = await call_json(client, action="pbxware.dashboard.disk_usage")
    assert (cpu, memory, disk) == (
        {"inuse": state.cpu},
        {"inuse": state.memory},
        {"inuse": state.disk},
    )
    # The three formats the reference cannot rule out: "37", "42.5", "61%".
    assert state.cpu.isdigit()
    assert "." in state.memory and not state.memory.endswith("%")
    assert state.disk.endswith("%") and state.disk[:-1].isdigit()


def test_mostly_sip_some_iax_some_disabled_never_online_when_disabled() -> None:
    sim = make_sim(tenants=20, extensions_per_tenant=50)
    for _ in range(5):
        exts = sim.state("pbx1").extensions()
        protocols = [e.protocol for e in exts]
        assert 0 < protocols.count("iax") < protocols.count("sip")
        disabled = [e for e in exts if e.status == "disabled"]
        assert 0.03 < len(disabled) / len(exts) < 0.2
        assert not any(e.online for e in disabled)
        assert {e.status for e in exts} == {"enabled", "disabled"}
        sim.tick()


def test_same_seed_same_data_other_seed_other_data() -> None:
    a, b, c = make_sim(seed=7), make_sim(seed=7), make_sim(seed=8)
    assert a.state("pbx1") == b.state("pbx1")
    assert a.state("pbx1") != c.state("pbx1")
    assert a.state("pbx1").tenants != a.state("pbx2").tenants
    for _ in range(3):
        a.tick()
        b.tick()
    assert a.state("pbx1") == b.state("pbx1")


def test_tick_moves_presence_and_load_without_touching_old_snapshots() -> None:
    sim = make_sim()
    before = sim.state("pbx1")
    online_before = {e.id for e in before.extensions() if e.online}
    sim.tick()
    after = sim.state("pbx1")
    assert after.tick == before.tick + 1
    assert {e.id for e in after.extensions() if e.online} != online_before
    assert after.cpu != before.cpu
    assert after.memory != before.memory
    assert after.disk != before.disk
    # The old snapshot is a stable truth.
    assert {e.id for e in before.extensions() if e.online} == online_before
    assert [e.id for e in after.extensions()] == [e.id for e in before.extensions()]


@pytest.mark.slow
def test_large_system_builds_and_serves_quickly() -> None:
    started = time.perf_counter()
    sim = Simulator(SimulatorOptions(tenants=1000, extensions_per_tenant=100, api_key=KEY))
    state = sim.state("pbx1")
    assert time.perf_counter() - started < 15  # ~2 s on a laptop; generous for slow CI
    codes = [t.code for t in state.tenants.values()]
    assert len(set(codes)) == 1000 and all(len(c) == 3 for c in codes)
    assert len({e.id for e in state.extensions()}) == 100_000
    responder = sim._responders["pbx1"]
    params = {"apikey": KEY, "action": "pbxware.ext.list", "server": "500"}
    first = responder.answer(state, params)
    assert len(json.loads(first)) == 100
    assert responder.answer(state, params) is first  # served from the per-tick cache
    sim.tick()
    assert responder.answer(sim.state("pbx1"), params) is not first


# --- faults -------------------------------------------------------------------------------

HIT = {"path": "/pbx1/index.php", "action": "pbxware.ext.list", "server": "2"}
MISSES = [
    {"path": "/pbx1/index.php", "action": "pbxware.ext.list", "server": "3"},  # other tenant
    {"path": "/pbx1/index.php", "action": "pbxware.monitor.list", "server": "2"},  # other action
    {"path": "/pbx2/index.php", "action": "pbxware.ext.list", "server": "2"},  # other system
    {"path": "/pbx1/index.php", "action": "pbxware.tenant.list"},  # no server at all
]


async def fetch(client: TestClient[Any, Any], request: dict[str, str]) -> tuple[int, bytes]:
    args = dict(request)
    path = args.pop("path")
    return await call(client, path, **args)


async def assert_symptom(
    client: TestClient[Any, Any], kind: str, request: dict[str, str], normal: bytes
) -> None:
    args = dict(request)
    path = args.pop("path")
    args["apikey"] = KEY
    if kind == "down":
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await call(client, path, **args)
        return
    if kind == "slow":
        with pytest.raises(asyncio.TimeoutError):
            await client.get(path, params=args, timeout=aiohttp.ClientTimeout(total=0.2))
        return
    async with client.get(path, params=args) as resp:
        status, body = resp.status, await resp.read()
        content_type = resp.headers["Content-Type"]
    if kind == "http_500":
        assert status == 500
        assert content_type.startswith("text/html")
        assert b"Internal Server Error" in body
        return
    assert status == 200
    if kind in ("html", "garbage", "truncated", "notice"):
        with pytest.raises(ValueError):  # UnicodeDecodeError and JSONDecodeError alike
            json.loads(body)
    if kind == "html":
        assert b"<form" in body and b"password" in body
    elif kind == "garbage":
        assert body != normal and len(body) > 0
    elif kind == "error":
        assert json.loads(body) == {"error": "Simulated failure."}
    elif kind == "wrong_key":
        assert json.loads(body) == {"error": "Invalid API key."}
    elif kind == "truncated":
        assert body == normal[: len(normal) // 2]
    elif kind == "notice":
        assert body.endswith(normal)
        assert body.lstrip().startswith(b"Notice: Undefined index")
    else:
        raise AssertionError(f"no symptom check for {kind}")


FAULT_KINDS = [
    "down",
    "slow",
    "http_500",
    "html",
    "garbage",
    "error",
    "wrong_key",
    "truncated",
    "notice",
]


@pytest.mark.parametrize("kind", FAULT_KINDS)
async def test_fault_hits_only_its_scope_and_clears(
    sim: Simulator, client: TestClient[Any, Any], kind: str
) -> None:
    normal_hit = await fetch(client, HIT)
    normal_misses = [await fetch(client, miss) for miss in MISSES]

    sim.set_fault("pbx1", kind, tenant="2", action="pbxware.ext.list", seconds=5)
    await assert_symptom(client, kind, HIT, normal_hit[1])
    for miss, normal in zip(MISSES, normal_misses, strict=True):
        assert await fetch(client, miss) == normal

    sim.clear_faults("pbx1")
    assert await fetch(client, HIT) == normal_hit


async def test_system_wide_fault_and_most_specific_wins(
    sim: Simulator, client: TestClient[Any, Any]
) -> None:
    sim.set_fault("pbx1", "error")
    sim.set_fault("pbx1", "wrong_key", tenant="3")
    assert await call_json(client, action="pbxware.dashboard.cpu") == {
        "error": "Simulated failure."
    }
    assert await call_json(client, action="pbxware.ext.list", server="2") == {
        "error": "Simulated failure."
    }
    assert await call_json(client, action="pbxware.ext.list", server="3") == {
        "error": "Invalid API key."
    }
    assert "inuse" in await call_json(client, "/pbx2/", action="pbxware.dashboard.cpu")
    # A new fault for the same scope replaces the old one.
    sim.set_fault("pbx1", "notice")
    status, body = await call(client, action="pbxware.dashboard.cpu")
    assert status == 200 and b"Notice" in body
    sim.clear_faults()
    assert "inuse" in await call_json(client, action="pbxware.dashboard.cpu")


async def test_slow_fault_answers_normally_after_its_delay(
    sim: Simulator, client: TestClient[Any, Any]
) -> None:
    normal = await call(client, action="pbxware.dashboard.memory")
    sim.set_fault("pbx1", "slow", action="pbxware.dashboard.memory", seconds=0.3)
    started = time.perf_counter()
    assert await call(client, action="pbxware.dashboard.memory") == normal
    assert time.perf_counter() - started >= 0.3


def test_unknown_fault_kind_or_system_is_rejected(sim: Simulator) -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        sim.set_fault("pbx1", "meltdown")
    with pytest.raises(ValueError, match="unknown system"):
        sim.set_fault("pbx9", "down")
    with pytest.raises(ValueError):
        sim.set_fault("pbx1", "slow", seconds=-1)


# --- concurrency, latency, stats -----------------------------------------------------------


async def wait_until(sim: Simulator, condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        await sim.wait_until(condition)


async def test_max_in_flight_counts_concurrent_requests(
    sim: Simulator, client: TestClient[Any, Any]
) -> None:
    await call(client, action="pbxware.dashboard.cpu")
    await call(client, action="pbxware.dashboard.cpu")
    assert sim.max_in_flight("pbx1") == 1

    sim.set_fault("pbx1", "slow", seconds=60)
    tasks = [
        asyncio.create_task(call(client, action="pbxware.ext.list", server="2")) for _ in range(5)
    ]
    await wait_until(sim, lambda: sim.requests("pbx1").get("pbxware.ext.list", 0) == 5)
    assert sim.max_in_flight("pbx1") == 5
    assert sim.max_in_flight("pbx2") == 0
    sim.clear_faults("pbx1")  # releases the sleeping requests at once
    results = await asyncio.wait_for(asyncio.gather(*tasks), timeout=5)
    assert all(status == 200 and body.startswith(b'{"') for status, body in results)

    sim.reset_stats()
    assert sim.requests("pbx1") == {}
    assert sim.max_in_flight("pbx1") == 0


async def test_latency_is_added_to_every_request(aiohttp_client: ClientFactory) -> None:
    client = await aiohttp_client(make_sim(latency_ms=150).app())
    started = time.perf_counter()
    await call_json(client, action="pbxware.dashboard.cpu")
    assert time.perf_counter() - started >= 0.15


async def test_churn_ticks_automatically(aiohttp_client: ClientFactory) -> None:
    sim = make_sim(churn_interval=0.01)
    await aiohttp_client(sim.app())
    await wait_until(sim, lambda: sim.state("pbx1").tick >= 2)


# --- control routes -------------------------------------------------------------------------


async def test_control_routes(sim: Simulator, client: TestClient[Any, Any]) -> None:
    bodies: list[bytes] = []

    async def control(method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        async with client.request(method, path, **kwargs) as resp:
            raw = await resp.read()
            bodies.append(raw)
            return resp.status, json.loads(raw)

    status, state = await control("GET", "/_sim/state", params={"system": "pbx2"})
    truth = sim.state("pbx2")
    assert status == 200
    assert state["cpu"] == truth.cpu and state["tick"] == 0
    assert state["online_count"] == truth.online_count()
    assert set(state["tenants"]) == set(truth.tenants)
    tenant = state["tenants"]["2"]
    assert tenant["online_count"] == truth.online_count("2")
    assert tenant["extensions"]["1"]["number"] == truth.tenants["2"].extensions["1"].number

    assert (await control("POST", "/_sim/tick"))[1] == {"ticks": {"pbx1": 1, "pbx2": 1}}
    assert sim.state("pbx1").tick == 1

    fault = {"system": "pbx2", "kind": "error", "tenant": "2", "action": "pbxware.ext.list"}
    status, body = await control("POST", "/_sim/faults", json=fault)
    assert status == 200 and body["faults"][0]["kind"] == "error"
    assert await call_json(client, "/pbx2/", action="pbxware.ext.list", server="2") == {
        "error": "Simulated failure."
    }
    assert (await control("POST", "/_sim/faults", json={"system": "pbx2", "kind": "x"}))[0] == 400
    assert (await control("POST", "/_sim/faults", json={"system": "nope", "kind": "down"}))[
        0
    ] == 400
    assert (await control("POST", "/_sim/faults", data=b"not json"))[0] == 400
    status, _ = await control("DELETE", "/_sim/faults", params={"system": "pbx2"})
    assert status == 200 and sim.faults("pbx2") == []
    assert "1001" in str(await call_json(client, "/pbx2/", action="pbxware.ext.list", server="2"))

    status, stats = await control("GET", "/_sim/stats", params={"system": "pbx2"})
    assert stats == {"requests": {"pbxware.ext.list": 2}, "max_in_flight": 1}
    assert (await control("GET", "/_sim/state", params={"system": "nope"}))[0] == 404
    assert not any(KEY.encode() in raw for raw in bodies), "control routes must not echo the key"


# --- real socket and CLI ----------------------------------------------------------------------


async def test_start_simulator_serves_on_a_real_socket() -> None:
    runner, base_url, sim = await start_simulator(SimulatorOptions(api_key=KEY))
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"{base_url}/index.php", params={"apikey": KEY, "action": "pbxware.tenant.list"}
            ) as resp,
        ):
            body = json.loads(await resp.read())
        assert set(body) == set(sim.state("pbx1").tenants)
    finally:
        await runner.cleanup()


def test_cli_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PBXWARE_SIM_API_KEY", "from-the-environment")
    args = build_parser().parse_args(
        ["--listen", "0.0.0.0:9000", "--systems", "a,b", "--churn-interval", "10"]
    )
    assert args.listen == ("0.0.0.0", 9000)
    assert args.systems == ("a", "b")
    assert args.api_key == "from-the-environment"
    assert args.churn_interval == 10.0
    assert build_parser().parse_args(["--api-key", "k" * 12]).api_key == "k" * 12


@pytest.mark.tools
def test_cli_serves_until_terminated() -> None:
    env = {**os.environ, "PBXWARE_SIM_API_KEY": KEY}
    command = [sys.executable, "-m", "pbxware_simulator", "--listen", "127.0.0.1:0"]
    with subprocess.Popen(
        [*command, "--tenants", "2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        try:
            first_line = proc.stdout.readline()
            assert first_line.startswith("pbx1: http://127.0.0.1:"), first_line
            url = first_line.split()[1] + f"?apikey={KEY}&action=pbxware.tenant.list"
            with urllib.request.urlopen(url, timeout=5) as resp:
                assert list(json.loads(resp.read())) == ["2", "3"]
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
            assert KEY not in first_line + proc.stdout.read() + proc.stderr.read()
        finally:
            if proc.poll() is None:
                proc.kill()
