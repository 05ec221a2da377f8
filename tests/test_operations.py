"""Operations: reload (HTTP and SIGHUP), graceful SIGTERM, TLS and basic auth from
--web.config.file, sharding and /probe."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import bcrypt
import pytest
import yaml
from aiohttp import web

from exporter.config import load_config, shard_config, shard_of
from exporter.daemon import Daemon
from exporter.web.webconfig import WebSecurity
from tests.conftest import API_KEY, recorded
from tests.metrics_util import parse_samples, series, value


def write_config(path: Path, url: str, systems: list[str], **extra: object) -> Path:
    doc = {
        "defaults": {"interval": "1m", "timeout": "5s", **extra},
        "systems": [
            {"name": name, "url": f"{url}/{name}/", "api_key": "${PBXWARE_TEST_KEY}"}
            for name in systems
        ],
    }
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture(autouse=True)
def key_env(monkeypatch):
    monkeypatch.setenv("PBXWARE_TEST_KEY", API_KEY)


async def metrics(client) -> dict:
    return parse_samples(await (await client.get("/metrics")).text())


async def test_reload_over_http_adds_removes_and_keeps_unchanged_systems(
    simulator, aiohttp_client, tmp_path
):
    url, _ = await simulator(systems=("a", "b", "c"), tenants=1, extensions_per_tenant=2)
    path = write_config(tmp_path / "config.yml", url, ["a", "b"])
    daemon = Daemon(load_config(path), loader=lambda: load_config(path), lifecycle=True)
    client = await aiohttp_client(recorded(daemon.app()))
    await asyncio.wait_for(daemon.store.wait_for(lambda s: s.ready()), 10)
    kept_poller = daemon.pollers["a"]
    kept_snapshot = daemon.store.get("a")

    write_config(path, url, ["a", "c"])
    resp = await client.post("/-/reload")
    assert resp.status == 200, await resp.text()
    assert "1 added, 1 removed, 0 changed" in await resp.text()
    await asyncio.wait_for(daemon.store.wait_for(lambda s: s.get("c") is not None), 10)
    samples = await metrics(client)
    assert value(samples, "pbxware_up", system="c") == 1
    assert value(samples, "pbxware_up", system="b") is None
    assert daemon.pollers["a"] is kept_poller and daemon.store.get("a") is kept_snapshot
    assert value(samples, "pbxware_exporter_config_last_reload_successful") == 1

    (tmp_path / "config.yml").write_text("systems: [{name: a, url: 'ftp://x'}]\n")
    resp = await client.post("/-/reload")
    text = await resp.text()
    assert resp.status == 500 and "systems[0].url" in text and "keeping the running config" in text
    samples = await metrics(client)
    assert value(samples, "pbxware_exporter_config_last_reload_successful") == 0
    assert value(samples, "pbxware_up", system="c") == 1
    assert sorted(daemon.pollers) == ["a", "c"]


async def test_http_reload_is_off_without_the_lifecycle_flag(simulator, aiohttp_client, tmp_path):
    """Issue 14.6: /-/reload was always on (and unauthenticated without a web config).
    As in Prometheus, it answers 403 "Lifecycle API is not enabled" without
    --web.enable-lifecycle; SIGHUP still reloads (test_sighup_reloads_...)."""
    url, _ = await simulator(systems=("a", "b"), tenants=1, extensions_per_tenant=1)
    path = write_config(tmp_path / "config.yml", url, ["a"])
    daemon = Daemon(load_config(path), loader=lambda: load_config(path))
    client = await aiohttp_client(recorded(daemon.app()))
    write_config(path, url, ["a", "b"])
    resp = await client.post("/-/reload")
    assert resp.status == 403 and "not enabled" in await resp.text()
    assert sorted(daemon.pollers) == ["a"]
    ok, _ = await daemon.reload()  # what SIGHUP calls
    assert ok and sorted(daemon.pollers) == ["a", "b"]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 200),  # curl, a script: no browser headers
        ({"Sec-Fetch-Site": "same-origin"}, 200),
        ({"Sec-Fetch-Site": "none"}, 200),  # typed into the address bar
        ({"Origin": "{own}"}, 200),
        ({"Sec-Fetch-Site": "cross-site"}, 403),
        ({"Sec-Fetch-Site": "same-site"}, 403),
        ({"Origin": "https://evil.example"}, 403),
        ({"Origin": "null"}, 403),  # a sandboxed frame or a data: page
        ({"Origin": "{own}", "Sec-Fetch-Site": "cross-site"}, 403),
        ({"Origin": "{own}.evil.example"}, 403),
        # One origin check with the admin API (issue 15): a default port written out is
        # the same origin, and a host differs by more than its case.
        ({"Host": "exporter.example", "Origin": "http://exporter.example:80"}, 200),
        ({"Host": "exporter.example", "Origin": "HTTP://Exporter.Example"}, 200),
        ({"Host": "exporter.example:8080", "Origin": "http://exporter.example"}, 403),
    ],
)
async def test_http_reload_refuses_cross_site_requests(
    simulator, aiohttp_client, tmp_path, headers, status
):
    url, _ = await simulator(systems=("a",), tenants=1, extensions_per_tenant=1)
    path = write_config(tmp_path / "config.yml", url, ["a"])
    reloads = []

    def loader():
        reloads.append(1)
        return load_config(path)

    daemon = Daemon(load_config(path), loader=loader, lifecycle=True)
    client = await aiohttp_client(recorded(daemon.app()))
    own = str(client.make_url("/")).rstrip("/")
    sent = {k: v.replace("{own}", own) for k, v in headers.items()}
    assert (await client.get("/-/reload")).status == 405  # POST only
    resp = await client.post("/-/reload", headers=sent)
    assert resp.status == status, await resp.text()
    assert len(reloads) == (1 if status == 200 else 0)


async def test_a_changed_system_restarts_alone(simulator, aiohttp_client, tmp_path):
    url, _ = await simulator(systems=("a", "b"), tenants=1, extensions_per_tenant=2)
    path = write_config(tmp_path / "config.yml", url, ["a", "b"])
    daemon = Daemon(load_config(path), loader=lambda: load_config(path))
    await aiohttp_client(recorded(daemon.app()))
    await asyncio.wait_for(daemon.store.wait_for(lambda s: s.ready()), 10)
    a, b = daemon.pollers["a"], daemon.pollers["b"]
    doc = yaml.safe_load(path.read_text())
    doc["systems"][1]["concurrency"] = 2
    path.write_text(yaml.safe_dump(doc))
    ok, message = await daemon.reload()
    assert ok and "0 added, 0 removed, 1 changed" in message
    assert daemon.pollers["a"] is a and daemon.pollers["b"] is not b
    assert daemon.pollers["b"].system.concurrency == 2


def exporter_process(config: Path, port: int, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PBXWARE_TEST_KEY": API_KEY}
    with log.open("wb") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "exporter",
                "--config.file",
                str(config),
                "--web.listen-address",
                f"127.0.0.1:{port}",
                *extra,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def wait_until(check, deadline_s: float = 20.0) -> None:
    """Poll a condition the process under test makes true, with a deadline."""
    deadline = time.monotonic() + deadline_s
    while not await check():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        await asyncio.sleep(0.1)


@pytest.mark.slow
@pytest.mark.tools
async def test_sighup_reloads_and_sigterm_exits_cleanly_during_a_poll(simulator, tmp_path):
    url, sim = await simulator(systems=("a", "b"), tenants=1, extensions_per_tenant=2)
    path = write_config(tmp_path / "config.yml", url, ["a"])
    port = free_port()
    log = tmp_path / "exporter.log"
    proc = exporter_process(path, port, log, "--web.shutdown-timeout", "5")
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:

            async def up(system: str) -> bool:
                try:
                    async with http.get(f"{base}/metrics") as resp:
                        samples = parse_samples(await resp.text())
                except aiohttp.ClientError:
                    return False
                return value(samples, "pbxware_up", system=system) == 1

            await wait_until(lambda: up("a"))
            # The next poll of the new system hangs in the PBX while we stop the daemon.
            sim.set_fault("b", "slow", seconds=60)
            write_config(path, url, ["a", "b"])
            proc.send_signal(signal.SIGHUP)
            await asyncio.wait_for(sim.wait_until(lambda: sim.requests("b")), 20)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = await asyncio.to_thread(proc.wait, 15)
        elapsed = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sim.clear_faults()
    text = log.read_text()
    assert rc == 0, text
    assert elapsed < 5, f"took {elapsed:.1f}s"
    assert "config_reloaded" in text and "stopped" in text
    assert API_KEY not in text


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, made here."""
    d = tmp_path_factory.mktemp("pki")
    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "1",
        "-subj",
        "/CN=test-ca",
        cwd=d,
    )
    for name, ext in (
        ("server", "subjectAltName=IP:127.0.0.1"),
        ("client", "extendedKeyUsage=clientAuth"),
    ):
        openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            "-subj",
            f"/CN={name}",
            cwd=d,
        )
        (d / f"{name}.ext").write_text(ext + "\n")
        openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            f"{name}.crt",
            "-days",
            "1",
            "-extfile",
            f"{name}.ext",
            cwd=d,
        )
    return d


async def serve_secure(daemon: Daemon, security: WebSecurity) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(recorded(daemon.app()), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=security.ssl_context)
    await site.start()
    return runner, runner.addresses[0][1]


@pytest.mark.tools
async def test_tls_with_client_certificates(simulator, tmp_path, pki):
    url, _ = await simulator(systems=("a",), tenants=1, extensions_per_tenant=1)
    web_config = tmp_path / "web.yml"
    web_config.write_text(
        yaml.safe_dump(
            {
                "tls_server_config": {
                    "cert_file": str(pki / "server.crt"),
                    "key_file": str(pki / "server.key"),
                    "client_auth_type": "RequireAndVerifyClientCert",
                    "client_ca_file": str(pki / "ca.crt"),
                }
            }
        )
    )
    security = WebSecurity(web_config)
    path = write_config(tmp_path / "config.yml", url, ["a"])
    daemon = Daemon(load_config(path), security=security)
    runner, port = await serve_secure(daemon, security)
    trusting = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    with_cert = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    with_cert.load_cert_chain(pki / "client.crt", pki / "client.key")
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"https://127.0.0.1:{port}/-/healthy", ssl=with_cert) as resp:
                assert resp.status == 200
            with pytest.raises(aiohttp.ClientError):
                async with http.get(f"https://127.0.0.1:{port}/-/healthy", ssl=trusting) as resp:
                    await resp.read()
            with pytest.raises(aiohttp.ClientError):
                async with http.get(f"http://127.0.0.1:{port}/-/healthy") as resp:
                    await resp.read()
    finally:
        await runner.cleanup()


async def test_basic_auth_accepts_the_bcrypt_user_and_follows_file_changes(
    simulator, aiohttp_client, tmp_path
):
    url, _ = await simulator(systems=("a",), tenants=1, extensions_per_tenant=1)
    web_config = tmp_path / "web.yml"

    def users(**passwords: str) -> None:
        hashed = {
            u: bcrypt.hashpw(p.encode(), bcrypt.gensalt(4)).decode() for u, p in passwords.items()
        }
        web_config.write_text(yaml.safe_dump({"basic_auth_users": hashed}))

    users(prometheus="s3cret-pass")
    security = WebSecurity(web_config)
    daemon = Daemon(load_config(write_config(tmp_path / "c.yml", url, ["a"])), security=security)
    client = await aiohttp_client(recorded(daemon.app()))
    good = basic("prometheus", "s3cret-pass")
    assert (await client.get("/metrics")).status == 401
    assert (await client.get("/metrics", headers=basic("prometheus", "nope"))).status == 401
    assert (await client.get("/metrics", headers=basic("other", "s3cret-pass"))).status == 401
    assert (await client.get("/metrics", headers=good)).status == 200
    assert (await client.get("/", headers=good)).status == 200
    assert (await client.get("/")).status == 401
    assert (await client.get("/-/healthy")).status == 200
    # A changed file applies to the next request, like the Go exporters.
    users(grafana="another-pass")
    os.utime(web_config, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert (await client.get("/metrics", headers=good)).status == 401
    assert (await client.get("/metrics", headers=basic("grafana", "another-pass"))).status == 200
    # A broken file keeps the last good settings.
    web_config.write_text("basic_auth_users: {grafana: not-a-hash}\n")
    os.utime(web_config, ns=(time.time_ns(), time.time_ns() + 2 * 10**9))
    assert (await client.get("/metrics", headers=basic("grafana", "another-pass"))).status == 200


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        ({"tls_server_config": {"cert_file": "missing.crt", "key_file": "k"}}, "does not exist"),
        ({"basic_auth_users": {"u": "plain"}}, "bcrypt hash"),
        ({"tls": {}}, "unknown key"),
    ],
)
def test_bad_web_config_is_refused(tmp_path, doc, problem):
    from exporter.config import ConfigError

    path = tmp_path / "web.yml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError, match=problem):
        WebSecurity(path)


def test_shards_cover_every_system_exactly_once(tmp_path):
    names = [f"pbx{i}" for i in range(60)]
    path = write_config(tmp_path / "config.yml", "http://127.0.0.1:1", names)
    config = load_config(path)
    parts = [[s.name for s in shard_config(config, i, 3).systems] for i in range(3)]
    assert sorted(n for part in parts for n in part) == sorted(names)
    assert all(parts), "every shard should get some of 60 systems"
    # Stable: the same name maps to the same shard in another process and version.
    assert (
        shard_of("pbx1", 3)
        == int.from_bytes(__import__("hashlib").sha256(b"pbx1").digest()[:8], "big") % 3
    )
    with pytest.raises(ValueError):
        shard_config(config, 3, 3)


async def test_probe_serves_one_system_and_refuses_unknown_targets(
    simulator, aiohttp_client, tmp_path
):
    url, _ = await simulator(systems=("a", "b"), tenants=1, extensions_per_tenant=1)
    daemon = Daemon(load_config(write_config(tmp_path / "c.yml", url, ["a", "b"])))
    client = await aiohttp_client(recorded(daemon.app()))
    await asyncio.wait_for(daemon.store.wait_for(lambda s: s.ready()), 10)
    resp = await client.get("/probe", params={"target": "a"})
    samples = parse_samples(await resp.text())
    assert resp.status == 200
    assert value(samples, "pbxware_up", system="a") == 1
    assert not series(samples, "pbxware_up", system="b")
    hostile = f"http://evil.example/?apikey={API_KEY}"
    resp = await client.get("/probe", params={"target": hostile})
    text = await resp.text()
    assert resp.status == 400 and "evil" not in text and API_KEY not in text
