"""The API key never leaves through an upstream error that quotes the request back (issue
14.8): not on the landing page, not in a log line (debug included), in no encoding."""

from __future__ import annotations

import html
import json

import pytest
from aiohttp import web

from exporter.config import Config, SystemConfig
from exporter.daemon import Daemon
from exporter.web.app import build_app
from tests.conftest import recorded
from tests.redaction_util import leaks
from tests.test_logs import ODD_KEYS


def quoting_upstream(mode: str) -> web.Application:
    """A PBX (or a proxy in front of it) whose error pages quote the request."""

    async def handle(request: web.Request) -> web.Response:
        raw = request.raw_path_qs if hasattr(request, "raw_path_qs") else request.raw_path
        decoded = request.query.get("apikey", "")
        if mode == "json-error-raw":  # PBXware-style in-band error, URL as received
            return web.json_response({"error": f"Bad request {raw}"})
        if mode == "json-error-decoded":
            return web.json_response({"error": f"unknown key {decoded}"})
        if mode == "json-error-cut":  # the key where the message is cut (200 characters)
            return web.json_response({"error": "x" * 190 + f"apikey={decoded}"})
        if mode == "php-slashes":  # PHP's json_encode escapes "/"
            text = json.dumps({"error": f"Bad request {raw}"}).replace("/", "\\/")
            return web.Response(text=text, content_type="application/json")
        if mode == "html-200":  # a proxy's error page instead of JSON
            return web.Response(
                text=f"<p>{raw}</p>{html.escape(decoded)}", content_type="text/html"
            )
        if mode == "http-500":  # the reason phrase quotes the request
            return web.Response(status=500, reason=f"Bad {raw}", text=raw)
        raise AssertionError(mode)

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handle)
    return app


@pytest.mark.parametrize("key", ODD_KEYS)
@pytest.mark.parametrize(
    "mode",
    [
        "json-error-raw",
        "json-error-decoded",
        "json-error-cut",
        "php-slashes",
        "html-200",
        "http-500",
    ],
)
async def test_an_upstream_quoting_the_url_leaks_no_form_of_the_key(
    aiohttp_server, aiohttp_client, leak_guard, caplog, key, mode
):
    # The fake upstream's own access log would quote the key: it is not ours.
    server = await aiohttp_server(quoting_upstream(mode), access_log=None)
    system = SystemConfig(
        name="pbx1", url=str(server.make_url("/")), api_key=key, interval=60.0, timeout=2.0
    )
    daemon = Daemon(Config(systems=(system,)))
    client = await aiohttp_client(recorded(build_app(daemon.store, ["pbx1"])))
    try:
        await daemon.pollers["pbx1"].poll_once()
        page = await (await client.get("/")).text()
    finally:
        await daemon.stop()
    assert "&lt;redacted&gt;" in page, page  # the error is shown, redacted
    assert leaks(page, key) == [], page
    logs = leak_guard.getvalue() + caplog.text
    assert "request_failed" in logs  # the debug line with the error text
    assert leaks(logs, key) == [], (leaks(logs, key), logs)
