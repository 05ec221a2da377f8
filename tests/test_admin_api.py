"""The admin API over real loopback HTTP: auth, scopes, reads, edits, state, errors, audit."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from aiohttp import web

from exporter.admin import SERVICES
from exporter.config import AdminConfig, Config
from exporter.daemon import Daemon
from exporter.pbxware import PbxwareError
from exporter.snapshot import SnapshotStore
from exporter.web.app import build_app
from tests import conftest
from tests.admin_util import (
    EDITS,
    OPS,
    PBX2,
    TENANT2,
    TOKENS,
    VIEWER,
    admin_env,
    admin_leak_guard,  # noqa: F401 (a fixture, used by name)
    basic,
    bearer,
)
from tests.conftest import API_KEY, recorded, system_config
from tests.metrics_util import parse_samples, value

pytestmark = pytest.mark.usefixtures("admin_leak_guard")


@pytest.fixture
async def env(simulator, aiohttp_client, leak_guard):
    async with admin_env(simulator, aiohttp_client, leak_guard) as e:
        yield e


# --- enabling and authentication --------------------------------------------------------------


async def test_without_tokens_the_admin_api_is_404_and_the_daemon_says_so(
    simulator, aiohttp_client, leak_guard
):
    url, _ = await simulator(tenants=1, extensions_per_tenant=2)
    daemon = Daemon(Config(systems=(system_config(url),)))
    client = await aiohttp_client(recorded(daemon.app()))  # starts the daemon: logs its state
    for headers in ({}, bearer(OPS), basic(OPS)):
        async with client.get(
            "/admin/systems/pbx1/tenants/2/extensions/1001", headers=headers
        ) as resp:
            assert resp.status == 404
    await client.close()
    assert "admin_api_disabled" in leak_guard.getvalue()
    assert "/admin/ answers 404" in leak_guard.getvalue()


async def test_with_tokens_the_daemon_logs_how_many(simulator, aiohttp_client, leak_guard):
    url, _ = await simulator(tenants=1, extensions_per_tenant=2)
    config = Config(systems=(system_config(url),), admin=AdminConfig(tokens=TOKENS, rate_limit=7))
    client = await aiohttp_client(recorded(Daemon(config).app()))
    await client.close()
    line = next(ln for ln in leak_guard.getvalue().splitlines() if "admin_api_enabled" in ln)
    assert "tokens=4" in line and "rate_limit_per_minute=7" in line


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer not-a-token-at-all-0123456789"},
        {"Authorization": f"Bearer {OPS}x"},
        {"Authorization": f"Token {OPS}"},
        basic("wrong-password-0123456789"),
        {"Authorization": "Basic !!!not-base64!!!"},
        {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
        {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode()},
        {"Authorization": "Bearer " + "x" * 5000},
    ],
    ids=[
        "none",
        "empty-bearer",
        "wrong-bearer",
        "bearer-suffix",
        "other-scheme",
        "wrong-basic",
        "bad-base64",
        "no-colon",
        "not-utf8",
        "huge",
    ],
)
async def test_401_without_valid_credentials(env, headers):
    for method, url, body in (
        ("GET", env.url(), None),
        ("GET", env.url("dnd"), None),
        ("PUT", env.url("dnd"), {"dnd": 1}),
        ("POST", env.url("dnd", state=True), {"enabled": True}),
        ("GET", "/admin/no/such/path", None),
    ):
        async with env.client.request(method, url, json=body, headers=headers) as resp:
            assert resp.status == 401, (method, url)
            challenges = resp.headers.getall("WWW-Authenticate")
            assert any(c.startswith('Basic realm="pbxware-exporter admin"') for c in challenges)
            assert any(c.startswith("Bearer") for c in challenges)
            assert "authentication required" in (await resp.json())["error"]
    assert env.es_requests("edit") == env.es_requests("set") == 0


@pytest.mark.parametrize(
    "headers",
    [bearer(OPS), basic(OPS), basic(OPS, user="ops"), basic(OPS, user="")],
    ids=["bearer", "basic", "basic-token-name", "basic-no-user"],
)
async def test_bearer_and_basic_with_any_username(env, headers):
    status, body = await env.json("GET", env.url("dnd"), headers=headers)
    assert status == 200
    assert body["configuration"] == env.es("dnd")[0]


async def test_a_failed_login_is_logged_without_the_secret(env):
    await env.json("GET", env.url(), headers=bearer("a-wrong-secret-0123456789"))
    failures = env.log_events("admin_auth_failed")
    assert len(failures) == 1 and failures[0]["client"] == "127.0.0.1"
    assert "a-wrong-secret" not in env.sink.getvalue()


# --- scopes and restrictions ---------------------------------------------------------------------


async def test_read_scope_cannot_edit(env):
    before = env.es("dnd")
    status, body = await env.json("PUT", env.url("dnd"), json={"dnd": 2}, headers=bearer(VIEWER))
    assert status == 403 and "'edit' scope" in body["error"]
    status, _ = await env.json(
        "POST", env.url("dnd", state=True), json={"enabled": True}, headers=bearer(VIEWER)
    )
    assert status == 403
    assert env.es("dnd") == before
    assert env.es_requests("edit") == env.es_requests("set") == 0
    status, _ = await env.json("GET", env.url(), headers=bearer(VIEWER))
    assert status == 200
    refused = env.log_events()
    assert [(r["token"], r["result"], r["status"]) for r in refused] == [
        ("viewer", "forbidden", 403),
        ("viewer", "forbidden", 403),
    ]


async def test_tenant_restriction(env):
    other = dict(tenant="3")
    for method, url, body in (
        ("GET", env.url(**other), None),
        ("GET", env.url("callerid", **other), None),
        ("PUT", env.url("dnd", **other), {"dnd": 1}),
        ("POST", env.url("dnd", state=True, **other), {"enabled": True}),
    ):
        status, answer = await env.json(method, url, json=body, headers=bearer(TENANT2))
        assert status == 403 and "tenant '3'" in answer["error"], (method, url)
    status, _ = await env.json("PUT", env.url("dnd"), json={"dnd": 1}, headers=bearer(TENANT2))
    assert status == 200


async def test_system_restriction(env):
    status, answer = await env.json("GET", env.url(system="pbx1"), headers=bearer(PBX2))
    assert status == 403 and "system 'pbx1'" in answer["error"]
    # Refused before looking: an unknown system is 403 too, not a way to probe names.
    status, _ = await env.json("GET", env.url(system="nope", ext="1001"), headers=bearer(PBX2))
    assert status == 403
    status, _ = await env.json("GET", env.url(system="pbx2"), headers=bearer(PBX2))
    assert status == 200


# --- 404 ---------------------------------------------------------------------------------------


async def test_unknown_things_are_404(env):
    cases = [
        env.url(system="nope", ext="1001"),
        env.url(tenant="two", ext="1001"),
        env.url(tenant="99", ext="1001"),  # not a tenant of pbx1 (PBXware: Invalid server.)
        env.url(ext="9999"),
        env.url(ext="10a1"),
        env.url("voicemail"),
        env.url("voicemail", state=True),
        "/admin/systems/pbx1",
        "/admin/",
    ]
    for url in cases:
        status, body = await env.json("GET", url)
        assert status == 404, url
        assert isinstance(body, dict) and body["error"], url
    status, body = await env.json("PUT", env.url(ext="9999", service="dnd"), json={"dnd": 1})
    assert status == 404 and "no extension '9999'" in body["error"]
    assert env.es_requests("edit") == 0


async def test_an_extension_missing_from_the_snapshot_is_looked_up(
    simulator, aiohttp_client, leak_guard
):
    async with admin_env(simulator, aiohttp_client, leak_guard, poll=False) as env:
        status, body = await env.json("GET", env.url("dnd"))
        assert status == 200 and body["extension"]["id"] == env.ext().id
        assert env.sim.requests("pbx1")["pbxware.ext.list"] == 1


async def test_a_polled_extension_needs_no_lookup(env):
    lists = env.sim.requests("pbx1")["pbxware.ext.list"]
    status, _ = await env.json("GET", env.url("dnd"))
    assert status == 200
    assert env.sim.requests("pbx1")["pbxware.ext.list"] == lists


# --- 429 ---------------------------------------------------------------------------------------


async def test_rate_limit_per_token(simulator, aiohttp_client, leak_guard):
    async with admin_env(simulator, aiohttp_client, leak_guard, rate_limit=3) as env:
        for _ in range(3):
            status, _ = await env.json("GET", env.url("dnd"))
            assert status == 200
        async with env.client.get(env.url("dnd"), headers=bearer()) as resp:
            assert resp.status == 429
            assert resp.headers["Retry-After"] == "20"  # 3 a minute: one every 20 s
        status, _ = await env.json("PUT", env.url("dnd"), json={"dnd": 2})
        assert status == 429
        # Another token has its own bucket.
        status, _ = await env.json("GET", env.url("dnd"), headers=bearer(VIEWER))
        assert status == 200
        env.clock.now += 20
        status, _ = await env.json("PUT", env.url("dnd"), json={"dnd": 2})
        assert status == 200
        assert [r["result"] for r in env.log_events()] == ["rate_limited", "ok"]


# --- reads -------------------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
async def test_read_each_service(env, service):
    status, body = await env.json("GET", env.url(service))
    assert status == 200
    config, state = env.es(service)
    ext = env.ext()
    assert body["configuration"] == config
    assert body["service"] == service
    assert body["extension"] == {
        "id": ext.id,
        "number": ext.number,
        "name": ext.name,
        "status": ext.status,
        "protocol": ext.protocol,
    }
    status, body = await env.json("GET", env.url(service, state=True))
    assert status == 200 and body["state"] == state
    assert body["enabled"] == (state != "no")


async def test_the_extension_with_all_six_services(env):
    status, body = await env.json("GET", env.url())
    assert status == 200
    assert list(body["services"]) == list(SERVICES)
    for service, view in body["services"].items():
        config, state = env.es(service)
        assert view["configuration"] == config
        assert view["state"] == state
        assert view["editable"] == (service != "extoperationtimes")


async def test_php_format_systems_work_too(simulator, aiohttp_client, leak_guard):
    async with admin_env(simulator, aiohttp_client, leak_guard, fmt="php") as env:
        status, body = await env.json("PUT", env.url("blflist"), json=EDITS["blflist"][0])
        assert status == 200
        assert body["configuration"] == env.es("blflist")[0]


# --- edits ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("service", list(EDITS))
async def test_edit_then_read_back(env, service):
    body, expected = EDITS[service]
    before, _ = env.es(service)
    status, answer = await env.json("PUT", env.url(service), json=body)
    assert status == 200, answer
    truth, _ = env.es(service)
    assert answer["configuration"] == truth  # what came back is what the PBX now holds
    for key, want in expected.items():
        assert truth[key] == want, key
    assert answer["changed"] == {
        k: {"before": before.get(k), "after": truth.get(k)}
        for k in sorted(set(before) | set(truth))
        if before.get(k) != truth.get(k)
    }
    status, again = await env.json("GET", env.url(service))
    assert status == 200 and again["configuration"] == truth
    assert env.es_requests("edit") == 1


async def test_callfwd_lists_reach_pbxware_joined(env):
    status, _ = await env.json("PUT", env.url("callfwd"), json=EDITS["callfwd"][0])
    assert status == 200
    store = env.sim.enhanced_services("pbx1")
    # The simulator keeps each argument as PBXware received it: comma-joined.
    assert store.configuration("2", env.ext().id, "callfwd")["destinations"].startswith(
        "1002,1003;1004;"
    )


async def test_extoperationtimes_cannot_be_edited(env):
    before = env.es("extoperationtimes")
    async with env.client.put(
        env.url("extoperationtimes"), json={"timeout": "30"}, headers=bearer()
    ) as resp:
        assert resp.status == 405
        assert resp.headers["Allow"] == "GET, HEAD"
        assert "no pbxware.ext.es.extoperationtimes.edit" in (await resp.json())["error"]
    assert env.es("extoperationtimes") == before
    assert env.es_requests("edit") == 0
    # …but it can be switched.
    status, body = await env.json(
        "POST", env.url("extoperationtimes", state=True), json={"enabled": True}
    )
    assert status == 200 and body["enabled"] is True
    (refused, switched) = env.log_events()
    assert refused["result"] == "not_editable" and refused["status"] == 405
    assert switched["result"] == "ok" and switched["action"] == "state"


@pytest.mark.parametrize("service", SERVICES)
async def test_switch_each_service_on_and_off(env, service):
    for on in (True, False, True):
        status, body = await env.json("POST", env.url(service, state=True), json={"enabled": on})
        assert status == 200, body
        assert body["enabled"] is on
        assert env.es(service)[1] == ("yes" if on else "no")
        status, body = await env.json("GET", env.url(service, state=True))
        assert body["state"] == ("yes" if on else "no")


async def test_pin_state_reads_as_enabled(env):
    env.sim.enhanced_services("pbx1").set_state("2", env.ext().id, "callfwd", "pin")
    status, body = await env.json("GET", env.url("callfwd", state=True))
    assert status == 200 and body == {**body, "enabled": True, "state": "pin"}


@pytest.mark.parametrize("service", list(EDITS))
async def test_dry_run_shows_the_request_and_sends_nothing(env, service):
    before = env.es(service)
    status, body = await env.json(
        "PUT", env.url(service, query="dry_run=1"), json=EDITS[service][0]
    )
    assert status == 200 and body["dry_run"] is True
    params = body["request"]["params"]
    assert params["apikey"] == "<redacted>"
    assert params["action"] == f"pbxware.ext.es.{service}.edit"
    assert params["server"] == "2" and params["id"] == env.ext().id
    assert env.es(service) == before
    assert env.es_requests("edit") == 0
    (line,) = env.log_events()
    assert line["result"] == "dry_run" and line["dry_run"] is True


async def test_dry_run_joins_lists_the_pbxware_way(env):
    status, body = await env.json(
        "PUT", env.url("callerid", query="dry_run=true"), json=EDITS["callerid"][0]
    )
    assert status == 200
    params = body["request"]["params"]
    assert params["trunks"] == "trunk-a:trunk.b"  # caller ID: colon lists
    assert params["tprivacies"] == "0:4"
    assert params["acodes"] == "1:"
    _, body = await env.json(
        "PUT", env.url("callfilters", query="dry_run=yes"), json=EDITS["callfilters"][0]
    )
    params = body["request"]["params"]
    assert params["callers"] == "anonymous,+38591000111"  # everything else: comma lists
    assert params["dtypes"] == "voicemail,call forward number"
    assert params["telemarketer"] == "1"


async def test_dry_run_of_a_state_switch(env):
    before = env.es("dnd")
    status, body = await env.json(
        "POST", env.url("dnd", state=True, query="dry_run=1"), json={"enabled": True}
    )
    assert status == 200 and body["request"]["params"]["state"] == "yes"
    assert env.es("dnd") == before and env.es_requests("set") == 0


# --- upstream errors -------------------------------------------------------------------------


async def test_pbxware_error_is_502_with_its_reason_and_the_text_in_the_log(env):
    env.sim.set_fault("pbx1", "error", action="pbxware.ext.es.dnd.edit")
    status, body = await env.json("PUT", env.url("dnd"), json={"dnd": 2})
    assert status == 502
    assert body["reason"] == "api_error" and "refused pbxware.ext.es.dnd.edit" in body["error"]
    assert "Simulated failure." not in json.dumps(body)  # never what the PBX said
    assert "Simulated failure." in env.log_events("admin_upstream_error")[0]["error"]
    (line,) = env.log_events()
    assert line["result"] == "upstream_error" and line["status"] == 502
    env.sim.set_fault("pbx1", "error", action="pbxware.ext.es.dnd.configuration")
    status, body = await env.json("GET", env.url("dnd"))
    assert status == 502 and body["reason"] == "api_error"


@pytest.mark.parametrize(
    ("kind", "fragment"),
    [
        ("wrong_key", "refused the exporter's API key"),
        ("garbage", "answered"),
        ("html", "answered"),
        ("http_500", "answered"),
    ],
)
async def test_bad_answers_are_502(env, kind, fragment):
    env.sim.set_fault("pbx1", kind, action="pbxware.ext.es.callerid.configuration")
    status, body = await env.json("GET", env.url("callerid"))
    assert status == 502 and fragment in body["error"]
    assert API_KEY not in json.dumps(body)


@pytest.mark.parametrize("kind", ["down", pytest.param("slow", marks=pytest.mark.slow)])
async def test_a_pbx_down_or_slow_is_504(simulator, aiohttp_client, leak_guard, kind):
    async with admin_env(simulator, aiohttp_client, leak_guard, timeout=0.3) as env:
        env.sim.set_fault("pbx1", kind, seconds=5.0)
        for method, url, body in (
            ("GET", env.url(), None),
            ("GET", env.url("dnd"), None),
            ("PUT", env.url("dnd"), {"dnd": 2}),
            ("POST", env.url("dnd", state=True), {"enabled": True}),
        ):
            status, answer = await env.json(method, url, json=body)
            assert status == 504, (method, url, answer)
            assert answer["reason"] in ("timeout", "connect")
        env.sim.clear_faults()
        assert [r["result"] for r in env.log_events()] == ["unavailable", "unavailable"]


async def test_one_refused_service_does_not_hide_the_others(env):
    env.sim.set_fault("pbx1", "error", action="pbxware.ext.es.blflist.configuration")
    status, body = await env.json("GET", env.url())
    assert status == 200
    assert "refused pbxware.ext.es.blflist" in body["services"]["blflist"]["error"]
    assert body["services"]["dnd"]["configuration"] == env.es("dnd")[0]


async def test_all_services_refused_is_502(env):
    env.sim.set_fault("pbx1", "error")
    status, body = await env.json("GET", env.url("dnd"))
    assert status == 502 and body["reason"] == "api_error"


class _FlakyClient:
    """A PBX that accepts the edit and then fails the read-back."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def call(self, action: str, params: Any = None) -> Any:
        self.calls.append(action)
        if action == "pbxware.ext.list":
            return {"7": {"ext": "1001", "name": "x", "status": "enabled", "protocol": "sip"}}
        if action.endswith(".edit"):
            return {"success": "Do Not Disturb.", "dnd": "OK"}
        if self.calls.count(action) > 1:
            raise PbxwareError(action, "timeout", "no answer within 2s")
        return {"dnd": "0"}


async def test_a_failed_read_back_says_the_edit_went_through(aiohttp_client, leak_guard):
    from exporter.admin import AdminApi
    from exporter.logs import configure_logging

    configure_logging("debug", "json", stream=leak_guard)
    flaky = _FlakyClient()
    system = system_config("http://127.0.0.1:9", name="pbx1")
    store = SnapshotStore()
    admin = AdminApi(AdminConfig(tokens=TOKENS), [system], {"pbx1": flaky}, store)
    client = await aiohttp_client(recorded(build_app(store, ["pbx1"], admin=admin)))
    async with client.put(
        "/admin/systems/pbx1/tenants/2/extensions/1001/services/dnd",
        json={"dnd": 2},
        headers=bearer(),
    ) as resp:
        assert resp.status == 502
        body = await resp.json()
    assert body["edited"] is True and "reading it back failed" in body["error"]
    assert flaky.calls[-2:] == ["pbxware.ext.es.dnd.edit", "pbxware.ext.es.dnd.configuration"]
    assert '"result": "readback_failed"' in leak_guard.getvalue()


async def test_an_internal_error_is_a_500_without_traceback(env, monkeypatch):
    async def broken(*args: Any) -> Any:
        raise RuntimeError("bug with detail that must not reach the client")

    monkeypatch.setattr(env.daemon.admin.gateway, "resolve", broken)
    status, body = await env.json("GET", env.url("dnd"))
    assert status == 500 and body == {"error": "internal error (logged)"}
    assert env.log_events("admin_internal_error")


# --- audit and metrics -------------------------------------------------------------------------


async def test_every_edit_is_one_audit_line(env):
    before, _ = env.es("dnd")
    status, _ = await env.json("PUT", env.url("dnd"), json={"dnd": 2, "dst": "1003"})
    assert status == 200
    status, _ = await env.json("PUT", env.url("dnd"), json={"dnd": 7})
    assert status == 400
    status, _ = await env.json("PUT", env.url("dnd"), json={"dnd": 1}, headers={})
    assert status == 401
    ok, invalid, unauth = env.log_events()
    ext = env.ext()
    assert ok["level"] == "info"
    assert {k: ok[k] for k in ("token", "client", "system", "tenant", "extension", "service")} == {
        "token": "ops",
        "client": "127.0.0.1",
        "system": "pbx1",
        "tenant": "2",
        "extension": ext.number,
        "service": "dnd",
    }
    assert ok["result"] == "ok" and ok["status"] == 200 and ok["action"] == "edit"
    assert ok["requested"] == {"dnd": "2", "dst": "1003"}
    assert ok["changes"] == {
        "dnd": {"before": before["dnd"], "after": "2"},
        "dst": {"before": before["dst"], "after": "1003"},
    }
    assert invalid["level"] == "warning" and invalid["result"] == "invalid"
    assert invalid["requested"] == {"dnd": 7} and "dnd" in invalid["error"]
    assert unauth["result"] == "unauthorized" and unauth["token"] == "-"


async def test_state_switch_audit_line(env):
    await env.json("POST", env.url("callfilters", state=True), json={"enabled": True})
    (line,) = env.log_events()
    assert line["action"] == "state" and line["service"] == "callfilters"
    assert line["changes"] == {"state": {"before": "no", "after": "yes"}}


async def test_admin_metrics(env):
    await env.json("PUT", env.url("dnd"), json={"dnd": 2})
    await env.json("PUT", env.url("dnd"), json={"dnd": 9})
    await env.json("GET", env.url("callerid"))
    await env.json("GET", env.url("callerid"), headers={})
    await env.json("PUT", env.url("dnd", system="zz-" + "x" * 40, ext="1"), json={"dnd": 1})
    await env.json("PUT", "/admin/systems/pbx1/tenants/2/extensions/1001/services/bogus", json={})
    async with env.client.get("/metrics") as resp:
        samples = parse_samples(await resp.text())
    route = "/admin/systems/{system}/tenants/{tenant}/extensions/{ext}/services/{service}"
    assert (
        value(samples, "pbxware_admin_requests_total", route=route, method="PUT", code="200") == 1
    )
    assert (
        value(samples, "pbxware_admin_requests_total", route=route, method="PUT", code="400") == 1
    )
    assert (
        value(samples, "pbxware_admin_requests_total", route=route, method="GET", code="401") == 1
    )
    edits = "pbxware_admin_edits_total"
    assert value(samples, edits, system="pbx1", service="dnd", result="ok") == 1
    assert value(samples, edits, system="pbx1", service="dnd", result="invalid") == 1
    # Whatever the path says, labels stay bounded.
    assert value(samples, edits, system="unknown", service="dnd", result="not_found") == 1
    assert value(samples, edits, system="pbx1", service="unknown", result="not_found") == 1


async def test_admin_metrics_are_not_in_the_global_registry(env):
    from prometheus_client import REGISTRY

    assert REGISTRY.get_sample_value("pbxware_admin_requests_total") is None
    names = {m.name for m in REGISTRY.collect()}
    assert not any(n.startswith("pbxware_admin") for n in names)


# --- HTML ----------------------------------------------------------------------------------------


async def test_html_view_escapes_what_the_pbx_says(env):
    hostile = "<script>alert(1)</script>"
    env.sim.enhanced_services("pbx1").plant("2", env.ext().id, "callerid", callerid=hostile)
    headers = {**bearer(), "Accept": "text/html,application/xhtml+xml;q=0.9"}
    async with env.client.get(env.url(), headers=headers) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/html"
        assert "script-src" not in resp.headers["Content-Security-Policy"]
        assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
        page = await resp.text()
    assert hostile not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script" not in page
    _, body = await env.json("GET", env.url())  # no Accept: JSON
    assert body["services"]["callerid"]["configuration"]["callerid"] == hostile


async def test_responses_are_recorded_by_the_leak_guard(env):
    await env.json("GET", env.url("dnd"))
    assert any(b'"service": "dnd"' in body for body in conftest._RESPONSES)


async def test_no_secret_in_any_answer_even_on_errors(env):
    env.sim.set_fault("pbx1", "wrong_key")
    for method, url, body in (
        ("GET", env.url(), None),
        ("PUT", env.url("dnd"), {"dnd": 1}),
        ("PUT", env.url("dnd", query="dry_run=1"), {"dnd": 1}),
        ("POST", env.url("dnd", state=True), {"enabled": True}),
    ):
        status, answer = await env.json(method, url, json=body)
        assert status in (200, 502)  # a dry run needs no PBX answer beyond the lookup
        text = json.dumps(answer)
        assert API_KEY not in text and OPS not in text and TENANT2 not in text


def test_route_shape_is_stable():
    # Alert runbooks link here; changing this path breaks them.
    from exporter.admin.routes import BASE, PREFIX

    assert PREFIX + BASE == "/admin/systems/{system}/tenants/{tenant}/extensions/{ext}"


def test_app_without_admin_has_no_admin_routes():
    app = build_app(SnapshotStore(), ["pbx1"])
    assert not any(str(r.canonical).startswith("/admin") for r in app.router.resources())
    assert isinstance(app, web.Application)


@pytest.mark.parametrize("service", SERVICES)
async def test_each_service_refuses_and_maps_failures(env, service):
    body = EDITS[service][0] if service in EDITS else {"timeout": "30"}
    action = f"pbxware.ext.es.{service}"
    # 401 and 403 before anything is sent
    status, _ = await env.json("GET", env.url(service), headers={})
    assert status == 401
    status, _ = await env.json("PUT", env.url(service), json=body, headers=bearer(VIEWER))
    assert status == 403
    status, _ = await env.json("GET", env.url(service, tenant="3"), headers=bearer(TENANT2))
    assert status == 403
    # 404 for an extension that does not exist
    status, _ = await env.json("GET", env.url(service, ext="9999"))
    assert status == 404
    # 502 with the reason, for reads, edits and switches
    for method in ("configuration", "edit", "get", "set"):
        env.sim.set_fault("pbx1", "error", action=f"{action}.{method}")
    status, answer = await env.json("GET", env.url(service))
    assert status == 502 and answer["reason"] == "api_error"
    status, answer = await env.json("GET", env.url(service, state=True))
    assert status == 502 and answer["reason"] == "api_error"
    status, answer = await env.json("POST", env.url(service, state=True), json={"enabled": True})
    assert status == 502
    env.sim.clear_faults()
    if service in EDITS:
        env.sim.set_fault("pbx1", "error", action=f"{action}.edit")
        status, answer = await env.json("PUT", env.url(service), json=body)
        assert status == 502 and answer["reason"] == "api_error"
    # 504 when the PBX is down
    env.sim.clear_faults()
    env.sim.set_fault("pbx1", "down")
    status, _ = await env.json("GET", env.url(service))
    assert status == 504
    status, _ = await env.json("PUT", env.url(service, query="dry_run=1"), json=body)
    assert status == (200 if service in EDITS else 405)  # a dry run sends nothing
    env.sim.clear_faults()
    assert env.es_requests("edit") == (1 if service in EDITS else 0)  # only the faulted one
