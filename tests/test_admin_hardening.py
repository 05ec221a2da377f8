"""The admin API's defences of issue 14: forged edits, guessing, logs, upstream errors,
restrictions and lost updates. docs/security.md ("Admin API") maps each to its test."""

from __future__ import annotations

import asyncio
import io
import json
import re
from typing import Any

import pytest
from aiohttp import web

from exporter.admin import AdminApi
from exporter.config import AdminConfig
from exporter.logs import configure_logging
from exporter.pbxware import PbxwareError
from exporter.snapshot import SnapshotStore
from exporter.web.app import build_app
from tests.admin_util import (
    EDITS,
    OPS,
    SYSTEMS,
    TOKENS,
    VIEWER,
    _token,
    admin_env,
    admin_leak_guard,  # noqa: F401 (a fixture, used by name)
    bearer,
)
from tests.conftest import API_KEY, recorded, system_config

pytestmark = pytest.mark.usefixtures("admin_leak_guard")

# Every C0 control, DEL and every C1 control.
CONTROLS = [chr(c) for c in range(0x20)] + [chr(0x7F)] + [chr(c) for c in range(0x80, 0xA0)]


@pytest.fixture
async def env(simulator, aiohttp_client, leak_guard):
    async with admin_env(simulator, aiohttp_client, leak_guard) as e:
        yield e


def _origin(env: Any) -> str:
    server = env.client.server
    return f"http://{server.host}:{server.port}"


# --- 1. forged edits ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
)
async def test_an_edit_must_be_sent_as_json(env, content_type):
    before = env.es("dnd")
    headers = bearer()
    if content_type is not None:
        headers["Content-Type"] = content_type
    for method, url, body in (
        ("POST", env.url("dnd", state=True), b'{"enabled": true}'),
        ("PUT", env.url("dnd"), b'{"dnd": 2}'),
    ):
        async with env.client.request(method, url, data=body, headers=headers) as resp:
            assert resp.status == 415, (method, content_type)
            assert "application/json" in (await resp.json())["error"]
    assert env.es("dnd") == before
    assert env.es_requests("edit") == env.es_requests("set") == 0
    assert [(r["result"], r["status"]) for r in env.log_events()] == [("invalid", 415)] * 2


async def test_the_issue_forgery_changes_nothing(env):
    """The exact request a cross-site <form enctype="text/plain"> made (issue 14, #1)."""
    before = env.es("dnd")
    headers = {
        **bearer(),
        "Content-Type": "text/plain",
        "Origin": "https://evil.example",
        "Sec-Fetch-Site": "cross-site",
    }
    body = b'{"enabled": "x=y", "enabled": true}'
    async with env.client.post(env.url("dnd", state=True), data=body, headers=headers) as resp:
        assert resp.status == 403
    assert env.es("dnd") == before and env.es_requests("set") == 0
    (line,) = env.log_events()
    assert (line["token"], line["result"], line["status"]) == ("ops", "cross_site", 403)


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://127.0.0.1:1"},  # same host, another port: another origin
        {"Origin": "https://127.0.0.1"},
    ],
    ids=["cross-site", "same-site", "evil-origin", "null-origin", "other-port", "other-scheme"],
)
async def test_cross_origin_edits_are_403(env, headers):
    before = env.es("dnd")
    for method, url, body in (
        ("POST", env.url("dnd", state=True), {"enabled": True}),
        ("PUT", env.url("dnd"), {"dnd": 2}),
    ):
        status, answer = await env.json(method, url, json=body, headers={**bearer(), **headers})
        assert status == 403, (method, answer)
        assert "cross-site" in answer["error"] or "origin" in answer["error"]
    assert env.es("dnd") == before
    assert env.es_requests("edit") == env.es_requests("set") == 0


async def test_same_origin_edits_and_cross_site_reads_work(env):
    own = {"Origin": _origin(env), "Sec-Fetch-Site": "same-origin"}
    status, _ = await env.json(
        "POST", env.url("dnd", state=True), json={"enabled": True}, headers={**bearer(), **own}
    )
    assert status == 200 and env.es("dnd")[1] == "yes"
    # Sec-Fetch-Site "none": typed into the address bar; no header at all: curl and scripts.
    for extra in ({"Sec-Fetch-Site": "none"}, {}):
        status, _ = await env.json(
            "PUT", env.url("dnd"), json={"dnd": 1}, headers={**bearer(), **extra}
        )
        assert status == 200
    # A runbook link clicked in Alertmanager or Grafana is a cross-site navigation: reads work.
    cross = {"Sec-Fetch-Site": "cross-site", "Origin": "https://alerts.example"}
    status, _ = await env.json("GET", env.url(), headers={**bearer(), **cross})
    assert status == 200


@pytest.mark.parametrize(
    ("method", "service", "state", "raw"),
    [
        ("POST", "dnd", True, b'{"enabled": false, "enabled": true}'),
        ("PUT", "dnd", False, b'{"dnd": 1, "dnd": 2}'),
        ("PUT", "callerid", False, b'{"callerid": "a", "x": {"k": 1, "k": 2}}'),
    ],
)
async def test_duplicate_json_keys_are_400(env, method, service, state, raw):
    before = env.es(service)
    headers = {**bearer(), "Content-Type": "application/json"}
    async with env.client.request(
        method, env.url(service, state=state), data=raw, headers=headers
    ) as resp:
        assert resp.status == 400
        assert "duplicate key" in (await resp.json())["error"]
    assert env.es(service) == before
    assert env.es_requests("edit") == env.es_requests("set") == 0


# --- 5. guessing tokens --------------------------------------------------------------------------


async def test_failed_logins_are_throttled_per_client(env):
    wrong = bearer("a-wrong-guess-0123456789abcdef")
    for _ in range(10):
        status, _ = await env.json("GET", env.url("dnd"), headers=wrong)
        assert status == 401
    async with env.client.get(env.url("dnd"), headers=wrong) as resp:
        assert resp.status == 429
        assert resp.headers["Retry-After"] == "60"
    # Blocked means blocked: even the right token is not checked (that would be an oracle).
    async with env.client.get(env.url("dnd"), headers=bearer()) as resp:
        assert resp.status == 429 and int(resp.headers["Retry-After"]) <= 60
    status, _ = await env.json("PUT", env.url("dnd"), json={"dnd": 2})
    assert status == 429 and env.es_requests("edit") == 0
    env.clock.now += 60
    status, _ = await env.json("GET", env.url("dnd"))
    assert status == 200
    # Hitting the limit again blocks twice as long.
    for _ in range(10):
        await env.json("GET", env.url("dnd"), headers=wrong)
    async with env.client.get(env.url("dnd"), headers=wrong) as resp:
        assert resp.status == 429 and resp.headers["Retry-After"] == "120"


async def test_failed_login_lines_are_rate_limited_with_a_count(env):
    wrong = bearer("a-wrong-guess-0123456789abcdef")
    for _ in range(200):
        await env.json("PUT", env.url("dnd"), json={"dnd": 2}, headers=wrong)
    failed = env.log_events("admin_auth_failed")
    assert len(failed) == 1 and failed[0]["client"] == "127.0.0.1"
    throttled = env.log_events("admin_auth_throttled")
    assert len(throttled) == 1 and throttled[0]["retry_after"] == 60
    # The unauthenticated edits' audit lines are limited the same way (all are counted).
    assert len(env.log_events()) == 1
    env.clock.now += 61
    await env.json("PUT", env.url("dnd"), json={"dnd": 2}, headers=wrong)
    failed = env.log_events("admin_auth_failed")
    assert len(failed) == 2 and failed[1]["suppressed"] == 9  # 10 checked, 1 logged
    audit = env.log_events()
    assert len(audit) == 2 and audit[1]["suppressed"] == 199
    assert "a-wrong-guess" not in env.sink.getvalue()


# --- 6. a reload keeps the limits' state ------------------------------------------------------------


async def test_a_reload_keeps_rate_limit_and_throttle_state(simulator, aiohttp_client, leak_guard):
    async with admin_env(simulator, aiohttp_client, leak_guard, rate_limit=2) as env:
        for _ in range(2):
            status, _ = await env.json("GET", env.url("dnd"))
            assert status == 200
        for _ in range(10):
            await env.json("GET", env.url("dnd"), headers=bearer("wrong-guess-0123456789abcdef"))
        systems = list(env.daemon.admin.systems.values())
        env.clock.now += 60  # the block is over; the token's bucket would refill too…
        env.daemon.admin.update(AdminConfig(tokens=TOKENS, rate_limit=2), systems)
        status, _ = await env.json("GET", env.url("dnd"))
        assert status == 200  # …so use it up again
        status, _ = await env.json("GET", env.url("dnd"))
        assert status == 200
        env.daemon.admin.update(AdminConfig(tokens=TOKENS, rate_limit=2), systems)
        status, _ = await env.json("GET", env.url("dnd"))
        assert status == 429  # the reload did not refill the bucket
        # The failure record survived too: ten more failures block for twice as long.
        for _ in range(10):
            await env.json("GET", env.url("dnd"), headers=bearer("wrong-guess-0123456789abcdef"))
        async with env.client.get(env.url("dnd"), headers=bearer(VIEWER)) as resp:
            assert resp.status == 429 and resp.headers["Retry-After"] == "120"
        # A token removed by a reload loses its bucket (memory stays bounded by the config).
        env.daemon.admin.update(AdminConfig(tokens=TOKENS[1:], rate_limit=2), systems)
        assert "ops" not in env.daemon.admin.limiter.names()


# --- 7. logs ----------------------------------------------------------------------------------------


def _no_controls(text: str) -> bool:
    return not any(ch in text for ch in CONTROLS)


async def test_control_characters_are_escaped_in_audit_lines(simulator, aiohttp_client, leak_guard):
    async with admin_env(simulator, aiohttp_client, leak_guard) as env:
        sink = io.StringIO()
        configure_logging("debug", "logfmt", stream=sink)
        evil = "".join(f"%{ord(c):02x}" for c in CONTROLS if ord(c) < 0x80)
        evil += "%c2%85%c2%9b%e2%80%a8"  # NEL, CSI (C1), LINE SEPARATOR
        path = f"/admin/systems/pbx1{evil}/tenants/2{evil}/extensions/1001{evil}/services/dnd{evil}"
        for headers in (bearer(), {}):  # authenticated, and refused before authentication
            async with env.client.put(path, json={"dnd": 2}, headers=headers) as resp:
                assert resp.status in (401, 403, 404)
        body = {"callerid": "a\x1b[31mred\r\nforged=line\x00\x7f\x85\u2028"}
        async with env.client.put(env.url("callerid"), json=body, headers=bearer()) as resp:
            assert resp.status == 400
        text = sink.getvalue()
    lines = text.splitlines()
    audit = [ln for ln in lines if "event=admin_edit" in ln]
    assert len(audit) == 3
    assert text.count("\n") == len(lines)  # one line per event, no stray line breaks
    assert all(_no_controls(ln) and "\u2028" not in ln for ln in lines)
    assert "\\x1b" in audit[0] and "\\x00" in audit[0] and "\\x85" in audit[0]
    assert "\\u2028" in audit[0]
    # The body is a JSON string in the line: its controls are JSON escapes (\u001b).
    assert "forged=line" in audit[2] and "u001b[31mred" in audit[2]
    assert not any(ln.startswith("forged=") for ln in lines)


@pytest.mark.parametrize("shape", ["list", "object"])
async def test_a_deeply_nested_body_is_a_clean_400_and_still_audited(env, shape):
    depth = 900
    raw = {
        "list": b"[" * depth + b"]" * depth,
        "object": b'{"a":' * depth + b"1" + b"}" * depth,
    }[shape]
    headers = {**bearer(), "Content-Type": "application/json"}
    for url in (env.url("dnd"), env.url("dnd", state=True)):
        method = "POST" if url.endswith("/state") else "PUT"
        async with env.client.request(method, url, data=raw, headers=headers) as resp:
            assert resp.status == 400
            assert "nested" in (await resp.json())["error"]
    lines = env.log_events()
    assert [(r["result"], r["status"]) for r in lines] == [("invalid", 400)] * 2
    assert all(len(json.dumps(r)) < 4000 for r in lines)
    assert "Traceback" not in env.sink.getvalue()
    assert not env.log_events("admin_internal_error")


async def test_a_huge_refused_body_gives_a_short_audit_line(env):
    body = {"callerid": [[["x" * 100] * 20] * 20] * 1, "k" * 500: "y" * 5000}  # wide, not deep
    async with env.client.put(env.url("callerid"), json=body, headers=bearer()) as resp:
        assert resp.status == 400
    (line,) = env.log_events()
    assert len(json.dumps(line)) < 4000


async def test_logging_cannot_turn_an_answer_into_a_500(env, monkeypatch):
    import exporter.admin.audit as audit

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a broken log pipeline")

    monkeypatch.setattr(audit, "_json", broken)
    status, _ = await env.json("POST", env.url("dnd", state=True), json={"enabled": True})
    assert status == 200 and env.es("dnd")[1] == "yes"
    status, _ = await env.json("PUT", env.url("dnd"), json={"dnd": 9})
    assert status == 400
    # What could be written still is: the minimal audit line.
    lines = env.log_events()
    assert [(r["result"], r["status"]) for r in lines] == [("ok", 200), ("invalid", 400)]


@pytest.mark.parametrize("cancellation", [False, True], ids=["as-served", "test-server"])
async def test_a_client_that_goes_away_mid_request_is_one_line(env, cancellation):
    """The daemon's runner does not cancel handlers (aiohttp's default): the body read fails.
    aiohttp's test server cancels them: the handler sees CancelledError. One line either way."""
    runner = web.AppRunner(
        recorded(build_app(env.daemon.store, SYSTEMS, admin=env.daemon.admin)),
        handler_cancellation=cancellation,
        access_log=None,
    )
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        host, port = runner.addresses[0][:2]
        _, writer = await asyncio.open_connection(host, port)
        head = (
            f"PUT {env.url('dnd')} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {OPS}\r\nContent-Type: application/json\r\n"
            "Content-Length: 1000\r\n\r\n"
        )
        writer.write(head.encode() + b'{"dnd": ')
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        (line,) = await env.wait_for_log("admin_client_gone")
    finally:
        await runner.cleanup()
    assert line["client"] == "127.0.0.1" and line["method"] == "PUT"
    assert line["how"] == ("cancelled" if cancellation else "disconnected")
    assert "Traceback" not in env.sink.getvalue()
    assert not env.log_events("admin_internal_error")
    (audit,) = env.log_events()
    assert (audit["result"], audit["status"]) == ("client_gone", 499)
    assert env.es_requests("edit") == 0


# --- 8. upstream errors ------------------------------------------------------------------------------


async def test_a_502_does_not_show_pbxwares_text(env):
    env.sim.set_fault("pbx1", "error", action="pbxware.ext.es.dnd.edit")
    status, body = await env.json("PUT", env.url("dnd"), json={"dnd": 2})
    assert status == 502 and body["reason"] == "api_error"
    assert "Simulated failure." not in json.dumps(body)
    assert "pbxware_error" not in body
    # The operator finds PBXware's words in the log.
    (line,) = env.log_events("admin_upstream_error")
    assert "Simulated failure." in line["error"]


class _QuotingClient:
    """A PBX behind a proxy whose error page quotes the request URL, key percent-encoded."""

    QUOTED = "GET /index.php?apikey=sk%2DLEAKCHECK%2D9c41f07d2be8a356&action=x"

    async def call(self, action: str, params: Any = None) -> Any:
        if action == "pbxware.ext.list":
            return {"7": {"ext": "1001", "name": "x", "status": "enabled", "protocol": "sip"}}
        reason = "decode" if action.endswith(".configuration") else "api_error"
        raise PbxwareError(action, reason, f"body is not json (starts {self.QUOTED!r})")


async def test_an_upstream_page_quoting_the_key_never_reaches_the_client(
    aiohttp_client, leak_guard
):
    configure_logging("debug", "json", stream=leak_guard)
    system = system_config("http://127.0.0.1:9", name="pbx1")
    store = SnapshotStore()
    admin = AdminApi(AdminConfig(tokens=TOKENS), [system], {"pbx1": _QuotingClient()}, store)
    client = await aiohttp_client(recorded(build_app(store, ["pbx1"], admin=admin)))
    base = "/admin/systems/pbx1/tenants/2/extensions/1001"
    for method, url, body in (
        ("GET", base, None),
        ("GET", base + "/services/dnd", None),
        ("GET", base + "/services/dnd/state", None),
        ("POST", base + "/services/dnd/state", {"enabled": True}),
    ):
        async with client.request(method, url, json=body, headers=bearer()) as resp:
            assert resp.status == 502
            text = await resp.text()
        assert "apikey" not in text and "LEAKCHECK" not in text and "%2D" not in text
        assert json.loads(text)["reason"] in ("decode", "api_error")
    assert API_KEY not in leak_guard.getvalue()


@pytest.mark.parametrize("route", ["edit", "state"])
async def test_an_edit_that_timed_out_may_have_gone_through(
    simulator, aiohttp_client, leak_guard, route
):
    async with admin_env(simulator, aiohttp_client, leak_guard, timeout=0.3) as env:
        if route == "edit":
            method, url, body = "PUT", env.url("dnd"), {"dnd": 2}
            action = "pbxware.ext.es.dnd.edit"
        else:
            method, url, body = "POST", env.url("dnd", state=True), {"enabled": True}
            action = "pbxware.ext.es.dnd.set"
        env.sim.set_fault("pbx1", "slow", action=action, seconds=30)
        status, answer = await env.json(method, url, json=body)
        assert status == 504
        assert answer["edited"] == "unknown"
        assert "may have gone through" in answer["error"].lower() and "read" in answer["error"]
        (line,) = env.log_events()
        assert (line["result"], line["status"]) == ("unknown", 504)
        env.sim.clear_faults()  # the PBX finishes the request after all


# --- 10. token restrictions ------------------------------------------------------------------------


async def test_pairs_restrict_to_exact_system_tenant_pairs(simulator, aiohttp_client, leak_guard):
    secret = "adm-LEAKCHECK-pairs-7e3b1a9c5d2f8046"
    token = _token("pairs", secret, {"read", "edit"}, pairs=(("pbx1", "2"), ("pbx2", "3")))
    async with admin_env(simulator, aiohttp_client, leak_guard, tokens=(*TOKENS, token)) as env:
        for system, tenant, want in (
            ("pbx1", "2", 200),
            ("pbx2", "3", 200),
            ("pbx1", "3", 403),  # both the system and the tenant are listed, not together
            ("pbx2", "2", 403),
        ):
            status, body = await env.json(
                "GET", env.url("dnd", system=system, tenant=tenant), headers=bearer(secret)
            )
            assert status == want, (system, tenant, body)
            if want == 403:
                assert f"{system}/{tenant}" in body["error"]


# --- 12. lost updates ------------------------------------------------------------------------------


async def test_etag_and_if_match(env):
    async with env.client.get(env.url("dnd"), headers=bearer()) as resp:
        etag = resp.headers["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    async with env.client.get(env.url("dnd"), headers=bearer()) as resp:
        assert resp.headers["ETag"] == etag  # the same configuration, the same tag
    async with env.client.head(env.url("dnd"), headers=bearer()) as resp:
        assert resp.status == 200 and resp.headers["ETag"] == etag  # curl -I (README)
    # Someone else edits in between: our If-Match is stale.
    status, _ = await env.json("PUT", env.url("dnd"), json={"dnd": 2, "dst": "1009"})
    assert status == 200
    before = env.es("dnd")
    edits = env.es_requests("edit")
    async with env.client.put(
        env.url("dnd"), json={"dnd": 0}, headers={**bearer(), "If-Match": etag}
    ) as resp:
        assert resp.status == 412
        answer = await resp.json()
        current = resp.headers["ETag"]
    assert "changed since" in answer["error"]
    assert env.es("dnd") == before and env.es_requests("edit") == edits
    assert env.log_events()[-1]["result"] == "precondition_failed"
    # With the current tag it goes through, and the answer carries the new one.
    async with env.client.put(
        env.url("dnd"), json={"dnd": 0}, headers={**bearer(), "If-Match": current}
    ) as resp:
        assert resp.status == 200
        assert resp.headers["ETag"] not in (current, etag)
    assert env.es("dnd")[0]["dnd"] == "0"
    for tag, want in ((f"W/{current}", 412), ('"nope", *', 200), ("*", 200)):
        async with env.client.put(
            env.url("dnd"), json={"dnd": 1}, headers={**bearer(), "If-Match": tag}
        ) as resp:
            assert resp.status == want, tag


async def test_etag_is_on_the_dry_run_check_too(env):
    status, _ = await env.json(
        "PUT",
        env.url("dnd", query="dry_run=1"),
        json={"dnd": 2},
        headers={**bearer(), "If-Match": '"0123456789abcdef0123456789abcdef"'},
    )
    assert status == 412


async def test_edits_without_if_match_still_work(env):
    for service, (body, _) in EDITS.items():
        status, _ = await env.json("PUT", env.url(service), json=body)
        assert status == 200, service
