"""TLS of --web.config.file follows its files (issue 14.4): a fresh SSL context per reload
(a client CA removed from the file is no longer trusted), and the certificate, key and CA
files are watched themselves (a certificate renewed in place is served without the web
config file changing). Real certificates (the openssl CLI), a real listener, real clients."""

from __future__ import annotations

import asyncio
import os
import shutil
import ssl
import time
from pathlib import Path

import pytest
import yaml
from aiohttp import web

from exporter.config import load_config
from exporter.daemon import Daemon
from exporter.web.webconfig import WebSecurity
from tests.conftest import API_KEY, recorded
from tests.test_operations import openssl, write_config


@pytest.fixture(autouse=True)
def key_env(monkeypatch):
    monkeypatch.setenv("PBXWARE_TEST_KEY", API_KEY)


def _key(name: str, d: Path) -> None:
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{name}.key", cwd=d)


def _ca(name: str, d: Path) -> None:
    _key(name, d)
    openssl(
        "req", "-x509", "-new", "-key", f"{name}.key", "-out", f"{name}.crt",
        "-days", "1", "-subj", f"/CN={name}", cwd=d,
    )  # fmt: skip


def _signed(name: str, ca: str, ext: str, d: Path) -> None:
    _key(name, d)
    openssl(
        "req", "-new", "-key", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d
    )
    (d / f"{name}.ext").write_text(ext + "\n")
    openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
        "-CAcreateserial", "-out", f"{name}.crt", "-days", "1", "-extfile", f"{name}.ext",
        cwd=d,
    )  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    """Two client CAs with a client each, and a server certificate issued twice (the
    second one is the "renewal") by a server CA."""
    d = tmp_path_factory.mktemp("pki2")
    for ca in ("server-ca", "ca-one", "ca-two"):
        _ca(ca, d)
    for name in ("server-old", "server-new"):
        _signed(name, "server-ca", "subjectAltName=IP:127.0.0.1", d)
    _signed("client-one", "ca-one", "extendedKeyUsage=clientAuth", d)
    _signed("client-two", "ca-two", "extendedKeyUsage=clientAuth", d)
    return d


def touch_later(path: Path, seconds: int) -> None:
    """A modification time clearly after the last one (file systems with coarse times)."""
    stamp = time.time_ns() + seconds * 10**9
    os.utime(path, ns=(stamp, stamp))


async def serve(tmp_path: Path, simulator, web_config: Path) -> tuple[web.AppRunner, int]:
    url, _ = await simulator(systems=("a",), tenants=1, extensions_per_tenant=1)
    security = WebSecurity(web_config)
    daemon = Daemon(load_config(write_config(tmp_path / "c.yml", url, ["a"])), security=security)
    runner = web.AppRunner(recorded(daemon.app()), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=security.ssl_context)
    await site.start()
    return runner, runner.addresses[0][1]


async def handshake(port: int, pki: Path, client: str | None) -> dict:
    """A TLS connection and one request; the server certificate it saw. Raises on refusal."""
    context = ssl.create_default_context(cafile=str(pki / "server-ca.crt"))
    if client is not None:
        context.load_cert_chain(pki / f"{client}.crt", pki / f"{client}.key")
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, ssl=context), 10
    )
    try:
        peer = writer.get_extra_info("peercert")
        writer.write(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        await writer.drain()
        # With TLS 1.3 a refused client certificate shows up at the first read.
        status = await asyncio.wait_for(reader.readline(), 10)
        if not status.startswith(b"HTTP/1.1 200"):
            raise ConnectionError(status)
        await reader.read()  # to the end: TLS 1.3 tickets would have come by now
        ssl_object = writer.get_extra_info("ssl_object")
        assert ssl_object.version() == "TLSv1.3"
        # No ticket: a session resumed later would skip the (new) client CA check.
        assert ssl_object.session is None or not ssl_object.session.has_ticket
        return peer
    finally:
        writer.close()


async def refused(port: int, pki: Path, client: str) -> bool:
    try:
        await handshake(port, pki, client)
    except (ssl.SSLError, ConnectionError, OSError):
        return True
    return False


def write_web_config(path: Path, pki: Path, ca_file: Path) -> None:
    path.write_text(
        yaml.safe_dump(
            {
                "tls_server_config": {
                    "cert_file": str(path.parent / "server.crt"),
                    "key_file": str(path.parent / "server.key"),
                    "client_auth_type": "RequireAndVerifyClientCert",
                    "client_ca_file": str(ca_file),
                }
            }
        )
    )


async def test_a_client_ca_removed_from_the_config_is_no_longer_trusted(simulator, tmp_path, pki):
    for suffix in ("crt", "key"):
        shutil.copy(pki / f"server-old.{suffix}", tmp_path / f"server.{suffix}")
    both = tmp_path / "both.crt"
    both.write_text((pki / "ca-one.crt").read_text() + (pki / "ca-two.crt").read_text())
    web_config = tmp_path / "web.yml"
    write_web_config(web_config, pki, both)
    runner, port = await serve(tmp_path, simulator, web_config)
    try:
        await handshake(port, pki, "client-one")
        await handshake(port, pki, "client-two")
        assert await refused(port, pki, "client-one") is False
        # The web config now names a file with CA one only: the reload used to add it to
        # the old trust store, so CA two stayed trusted.
        only_one = tmp_path / "one.crt"
        shutil.copy(pki / "ca-one.crt", only_one)
        write_web_config(web_config, pki, only_one)
        touch_later(web_config, 2)
        assert await refused(port, pki, "client-two")
        await handshake(port, pki, "client-one")
        # The CA file itself edited in place (the web config untouched): CA two back...
        only_one.write_text((pki / "ca-one.crt").read_text() + (pki / "ca-two.crt").read_text())
        touch_later(only_one, 3)
        await handshake(port, pki, "client-two")
        # ...and removed again.
        shutil.copy(pki / "ca-one.crt", only_one)
        touch_later(only_one, 4)
        assert await refused(port, pki, "client-two")
        assert await refused(port, pki, None)  # no certificate at all: still required
    finally:
        await runner.cleanup()


async def test_a_certificate_renewed_in_place_is_served(simulator, tmp_path, pki):
    for suffix in ("crt", "key"):
        shutil.copy(pki / f"server-old.{suffix}", tmp_path / f"server.{suffix}")
    web_config = tmp_path / "web.yml"
    write_web_config(web_config, pki, pki / "ca-one.crt")
    runner, port = await serve(tmp_path, simulator, web_config)
    try:
        old = await handshake(port, pki, "client-one")
        assert dict(x[0] for x in old["subject"])["commonName"] == "server-old"
        # certbot-style renewal: new files in place, the web config file untouched.
        for suffix in ("crt", "key"):
            shutil.copy(pki / f"server-new.{suffix}", tmp_path / f"server.{suffix}")
            touch_later(tmp_path / f"server.{suffix}", 2)
        new = await handshake(port, pki, "client-one")
        assert dict(x[0] for x in new["subject"])["commonName"] == "server-new"
    finally:
        await runner.cleanup()
