"""Basic auth of --web.config.file under attack (issue 14, points 3 and 9): bcrypt in its own
bounded executor, a dummy check for unknown users, failures throttled per client and logged
once a minute, over-long passwords, malformed hashes and reloads that would switch auth off."""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
from pathlib import Path
from unittest import mock

import bcrypt
import pytest
import yaml
from aiohttp.test_utils import make_mocked_request

from exporter.config import ConfigError, load_config
from exporter.daemon import Daemon
from exporter.web import webconfig
from exporter.web.webconfig import WebSecurity
from tests.conftest import recorded
from tests.metrics_util import parse_samples, value
from tests.test_operations import basic, write_config

PASSWORD = "s3cret-pass"


def hashed(password: str, cost: int = 4) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(cost)).decode()


def write_users(path: Path, **users: str) -> None:
    path.write_text(yaml.safe_dump({"basic_auth_users": users}))
    # A distinct modification time for every write: the file is re-read when it changes.
    stamp = time.time_ns() + 10**9 * (1 + getattr(write_users, "n", 0))
    write_users.n = getattr(write_users, "n", 0) + 1  # type: ignore[attr-defined]
    os.utime(path, ns=(stamp, stamp))


@pytest.fixture
def web_config(tmp_path) -> Path:
    path = tmp_path / "web.yml"
    write_users(path, prometheus=hashed(PASSWORD))
    return path


@pytest.fixture(autouse=True)
def key_env(monkeypatch):
    from tests.conftest import API_KEY

    monkeypatch.setenv("PBXWARE_TEST_KEY", API_KEY)


async def secured_client(simulator, aiohttp_client, tmp_path, web_config):
    url, _ = await simulator(systems=("a",), tenants=1, extensions_per_tenant=1)
    security = WebSecurity(web_config)
    daemon = Daemon(load_config(write_config(tmp_path / "c.yml", url, ["a"])), security=security)
    client = await aiohttp_client(recorded(daemon.app()))
    await asyncio.wait_for(daemon.store.wait_for(lambda s: s.ready()), 10)
    return client, security


class Counting:
    """bcrypt.checkpw, counted, and held at a gate when ``hold`` is set."""

    def __init__(self) -> None:
        self.real = bcrypt.checkpw
        self.calls = 0
        self.hold = False
        self.gate = threading.Event()
        self.running = threading.Semaphore(0)

    def __call__(self, password: bytes, hashed_password: bytes) -> bool:
        self.calls += 1
        if self.hold:
            self.running.release()
            self.gate.wait(30)
        return self.real(password, hashed_password)


async def test_an_unknown_user_costs_a_bcrypt_check_like_a_known_one(
    simulator, aiohttp_client, tmp_path, web_config, monkeypatch
):
    """Issue 14.3: unknown users answered at once, the real one after a bcrypt check, so
    usernames could be told apart by timing."""
    client, _ = await secured_client(simulator, aiohttp_client, tmp_path, web_config)
    checker = Counting()
    monkeypatch.setattr(bcrypt, "checkpw", checker)
    assert (await client.get("/metrics", headers=basic("nobody", PASSWORD))).status == 401
    assert checker.calls == 1, "an unknown user must cost one bcrypt check"
    assert (await client.get("/metrics", headers=basic("prometheus", "wrong"))).status == 401
    assert checker.calls == 2


async def test_wrong_logins_neither_queue_nor_delay_probe_and_metrics(
    simulator, aiohttp_client, tmp_path, web_config, monkeypatch
):
    """Issue 14.3: 80 queued wrong logins on the default executor made /probe take 27.7 s.

    Every bcrypt check is held at a gate: the checks that got a thread stay busy until the
    end. Meanwhile /probe and an identity /metrics (both render in threads) must answer, and
    the logins that found no free bcrypt thread get 503 at once instead of queueing."""
    client, _ = await secured_client(simulator, aiohttp_client, tmp_path, web_config)
    good = basic("prometheus", PASSWORD)
    assert (await client.get("/metrics", headers=good)).status == 200  # verified once
    checker = Counting()
    checker.hold = True
    monkeypatch.setattr(bcrypt, "checkpw", checker)
    wrong = [
        asyncio.create_task(client.get("/metrics", headers=basic("prometheus", f"guess{i}")))
        for i in range(80)
    ]
    try:
        # Wait until a check got a thread (polled: the default executor may be the one
        # that is full).
        deadline = time.monotonic() + 10
        while not checker.running.acquire(blocking=False):
            assert time.monotonic() < deadline, "no bcrypt check started"
            await asyncio.sleep(0.01)
        probe = await asyncio.wait_for(
            client.get("/probe", params={"target": "a"}, headers=good), 10
        )
        plain = await asyncio.wait_for(
            client.get("/metrics", headers={**good, "Accept-Encoding": "identity"}), 10
        )
        assert probe.status == 200 and "pbxware_up" in await probe.text()
        assert plain.status == 200 and "pbxware_up" in await plain.text()
        assert not checker.gate.is_set()  # answered while the bcrypt threads are still busy
        # The wrong logins that found no thread were answered already, with 503.
        refused = []
        for task in wrong:
            if task.done():
                refused.append(task.result().status)
        assert len(refused) >= 80 - webconfig.BCRYPT_THREADS
        assert set(refused) == {503}
        assert all(task.result().headers.get("Retry-After") for task in wrong if task.done())
    finally:
        checker.gate.set()
        statuses = [(await task).status for task in wrong]
    assert statuses.count(401) == checker.calls <= webconfig.BCRYPT_THREADS
    assert statuses.count(503) == 80 - statuses.count(401)


async def test_no_bcrypt_work_for_a_client_that_has_gone(web_config, monkeypatch):
    security = WebSecurity(web_config)
    checker = Counting()
    monkeypatch.setattr(bcrypt, "checkpw", checker)
    transport = mock.Mock()
    transport.is_closing.return_value = True
    request = make_mocked_request(
        "GET", "/metrics", headers=basic("prometheus", "wrong"), transport=transport
    )
    refusal = await security.check(request)
    assert refusal is not None and refusal.status == 401
    assert checker.calls == 0


async def test_failed_logins_are_throttled_per_client_and_logged_once_a_minute(
    simulator, aiohttp_client, tmp_path, web_config, leak_guard
):
    """Issue 14.5 (basic-auth side): no throttle, one log line per failure."""
    client, security = await secured_client(simulator, aiohttp_client, tmp_path, web_config)
    now = [1000.0]
    security.throttle.clock = security.log_limiter.clock = lambda: now[0]
    limit = security.throttle.limit
    statuses = []
    for i in range(limit + 5):
        resp = await client.get("/metrics", headers=basic("prometheus", f"guess{i}"))
        statuses.append(resp.status)
    assert statuses[:limit] == [401] * limit
    assert statuses[limit:] == [429] * 5
    # While throttled, even the right password is refused: otherwise a guess would still
    # tell right from wrong (200 or 429), throttle or not.
    resp = await client.get("/metrics", headers=basic("prometheus", PASSWORD))
    assert resp.status == 429
    assert int(resp.headers["Retry-After"]) == security.throttle.window == 60
    lines = [ln for ln in leak_guard.getvalue().splitlines() if "basic_auth_failed" in ln]
    assert len(lines) == 1, lines
    assert "client=127.0.0.1" in lines[0] and "guess" not in lines[0]
    now[0] += 61  # a minute later: the block is over, and a new log line
    assert (await client.get("/metrics", headers=basic("prometheus", PASSWORD))).status == 200
    assert (await client.get("/metrics", headers=basic("prometheus", "again"))).status == 401
    lines = [ln for ln in leak_guard.getvalue().splitlines() if "basic_auth_failed" in ln]
    assert len(lines) == 2, lines
    # Every failure since the first line is counted: the rest of the burst, the throttled
    # ones and this one.
    assert re.search(r"\bfailures=" + str(limit + 6) + r"\b", lines[1])


async def test_basic_auth_uses_the_admin_throttle(web_config, monkeypatch):
    """Issue 15: one throttle for basic auth and the admin API (exporter/web/throttle.py).
    IPv6 clients count per /64, and a block doubles each time the limit is hit again."""
    security = WebSecurity(web_config)
    monkeypatch.setattr(bcrypt, "checkpw", lambda password, hashed: False)
    now = [1000.0]
    security.throttle.clock = security.log_limiter.clock = lambda: now[0]

    async def status(address: str) -> tuple[int, str | None]:
        transport = mock.Mock()
        transport.is_closing.return_value = False
        transport.get_extra_info.return_value = (address, 40000, 0, 0)
        request = make_mocked_request(
            "GET", "/metrics", headers=basic("prometheus", "wrong"), transport=transport
        )
        refusal = await security.check(request)
        assert refusal is not None
        return refusal.status, refusal.headers.get("Retry-After")

    for block in ("60", "120"):
        # Ten addresses of one /64 share one budget: ten failures, then a block.
        for host in range(1, 11):
            assert await status(f"2001:db8:1:2::{host:x}") == (401, None)
        assert await status("2001:db8:1:2::ff") == (429, block)
        assert (await status("2001:db8:1:3::1"))[0] == 401  # another /64 is another client
        now[0] += int(block)


async def test_a_password_over_72_bytes_is_a_401(simulator, aiohttp_client, tmp_path, web_config):
    """Issue 14.9: bcrypt refuses passwords over 72 bytes with an exception: it was a 500."""
    client, _ = await secured_client(simulator, aiohttp_client, tmp_path, web_config)
    for user in ("prometheus", "nobody"):
        resp = await client.get("/metrics", headers=basic(user, PASSWORD + "x" * 80))
        assert resp.status == 401, user


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda h: h[:-1], "60 characters"),
        (lambda h: h + "x", "60 characters"),
        (lambda h: h[:4] + "99" + h[6:], "cost"),
        (lambda h: h[:7] + "!" + h[8:], "characters"),
        (lambda h: "$2x$" + h[4:], "$2b$"),
    ],
)
def test_a_malformed_bcrypt_hash_is_a_load_error(tmp_path, mangle, reason):
    """Issue 14.9: a malformed hash passed validation, then every login was a 500."""
    path = tmp_path / "web.yml"
    path.write_text(yaml.safe_dump({"basic_auth_users": {"prometheus": mangle(hashed("x"))}}))
    with pytest.raises(ConfigError) as info:
        WebSecurity(path)
    text = str(info.value)
    assert str(path) in text and "basic_auth_users.prometheus" in text and reason in text


async def test_a_reload_never_switches_auth_off(
    simulator, aiohttp_client, tmp_path, web_config, leak_guard
):
    """Issue 14.9: truncating the file at run time turned basic auth off (users=0, /metrics
    200 without credentials)."""
    client, _ = await secured_client(simulator, aiohttp_client, tmp_path, web_config)
    good = basic("prometheus", PASSWORD)

    async def reload_ok() -> float | None:
        resp = await client.get("/metrics", headers=good)
        assert resp.status == 200
        samples = parse_samples(await resp.text())
        return value(samples, "pbxware_exporter_web_config_last_reload_successful")

    assert await reload_ok() == 1
    bad_files = {
        "truncated": "",
        "no users": "basic_auth_users: {}\n",
        "cut mid-line": "basic_auth_users:\n  prometheus: '$2b$04$abc",
    }
    for name, text in bad_files.items():
        web_config.write_text(text)
        stamp = time.time_ns() + 10**9 * (len(name) + 10)
        os.utime(web_config, ns=(stamp, stamp))
        assert (await client.get("/metrics")).status == 401, name
        assert await reload_ok() == 0, name
    web_config.unlink()  # unreadable
    assert (await client.get("/metrics")).status == 401
    assert await reload_ok() == 0
    assert leak_guard.getvalue().count("web_config_reload_failed") >= len(bad_files) + 1
    write_users(web_config, grafana=hashed("another"))
    assert (await client.get("/metrics", headers=good)).status == 401
    resp = await client.get("/metrics", headers=basic("grafana", "another"))
    samples = parse_samples(await resp.text())
    assert value(samples, "pbxware_exporter_web_config_last_reload_successful") == 1


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Basic cHJvbWV0aGV1czpwdw==", ("prometheus", "pw")),
        ("basic   cHJvbWV0aGV1czpwdw==  ", ("prometheus", "pw")),
        ("Basic OnRva2Vu", ("", "token")),  # the admin API's form: no user, the token
        ("Basic cHJvbWV0aGV1cw==", None),  # no colon
        ("Basic !!!", None),
        ("Basic /w==", None),  # not UTF-8
        ("Bearer cHJvbWV0aGV1czpwdw==", None),
        ("Basic ", None),
        ("Basic " + "A" * 5000, None),  # longer than any configured pair: not decoded
        (None, None),
    ],
)
def test_one_basic_header_parser(header, expected):
    """Issue 15: the listener's basic auth and the admin API parse Basic the same way."""
    from exporter.admin.auth import extract_token
    from exporter.web.credentials import basic_credentials

    assert basic_credentials(header) == expected
    if header and header.lower().startswith("basic"):
        assert extract_token(header) == (expected[1] if expected and expected[1] else None)


def test_every_problem_of_a_web_config_is_listed_with_its_key_path(tmp_path):
    """One run names every defect, top to bottom, each with the file and its key path."""
    (tmp_path / "server.crt").write_text("x")
    good = hashed("x")
    path = tmp_path / "web.yml"
    path.write_text(
        yaml.safe_dump(
            {
                "tls_server_config": {
                    "cert_file": "server.crt",
                    "key_file": 5,
                    "client_auth_type": "Nope",
                    "client_ca_file": None,
                    "colour": 1,
                },
                "basic_auth_users": {"prometheus": "plain", "grafana": good, 7: 5},
                "tls": {},
            },
            sort_keys=False,
        )
    )
    with pytest.raises(ConfigError) as info:
        webconfig.parse_web_config(path)
    assert info.value.source == str(path)
    assert info.value.problems == [
        "tls_server_config.key_file: must be a file path",
        "tls_server_config.client_auth_type: 'Nope' not supported (one of NoClientCert,"
        " RequestClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert)",
        "tls_server_config.client_ca_file: must be a file path",
        "tls_server_config.colour: unknown key (allowed: cert_file, client_auth_type,"
        " client_ca_file, key_file)",
        "basic_auth_users.prometheus: not a bcrypt hash: must start with $2a$, $2b$ or $2y$",
        "basic_auth_users.7: not a bcrypt hash: must be a string like $2b$12$ followed by 53"
        " characters",
        "tls: unknown key (allowed: basic_auth_users, tls_server_config)",
    ]


def test_a_numeric_user_name_is_a_user_name(tmp_path):
    """YAML reads `123:` as a number; exporter-toolkit (Go) takes it as the user "123"."""
    path = tmp_path / "web.yml"
    path.write_text(f"basic_auth_users:\n  123: '{hashed('x')}'\n")
    assert list(webconfig.parse_web_config(path).users) == ["123"]
