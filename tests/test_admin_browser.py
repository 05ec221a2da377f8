"""The runbook page in a real headless browser (Debian's chromium): it renders, read-only,
and a hostile value from the PBX shows as text instead of running; a page of another origin
cannot make the browser edit with the token it holds."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.admin_util import (
    OPS,
    admin_env,
    admin_leak_guard,  # noqa: F401 (a fixture, used by name)
)
from tests.tools import require_tool

# Runs a headless Chromium.
pytestmark = [pytest.mark.usefixtures("admin_leak_guard"), pytest.mark.tools]

# The flags that work on this kind of machine (no sandbox, no GPU, no D-Bus, no network
# services of its own); see the shared tooling notes.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
HOSTILE = "<script>document.title='pwned'</script><img src=x onerror=\"document.title='pwned'\">"


@pytest.fixture
def chromium() -> str:
    return require_tool("chromium")


@pytest.fixture
def profile() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="admin-chromium-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def dump_dom(chromium: str, profile: str, url: str) -> str:
    # Asynchronous on purpose: the page is served by this very event loop.
    proc = await asyncio.create_subprocess_exec(
        chromium,
        *FLAGS,
        f"--user-data-dir={profile}",
        "--dump-dom",
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with asyncio.timeout(90):
            out, _ = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0
    return out.decode("utf-8")


@pytest.mark.slow
async def test_runbook_page_in_chromium(simulator, aiohttp_client, leak_guard, chromium, profile):
    async with admin_env(simulator, aiohttp_client, leak_guard) as env:
        ext = env.ext()
        env.sim.enhanced_services("pbx1").plant("2", ext.id, "callerid", callerid=HOSTILE)
        env.sim.enhanced_services("pbx1").plant("2", ext.id, "blflist", labels=["<b>bold</b>"])
        server = env.client.server
        path = env.url()
        # HTTP Basic from the URL: what a browser does with the token as password.
        dom = await dump_dom(
            chromium, profile, f"http://ops:{OPS}@{server.host}:{server.port}{path}"
        )

    title = re.search(r"<title>(.*?)</title>", dom, re.S)
    assert title is not None and title.group(1) == "Extension 1001 – pbx1"
    assert "pwned" not in title.group(1)
    # The hostile markup is text in the DOM: escaped when serialised, no element made of it.
    assert "&lt;script&gt;document.title='pwned'&lt;/script&gt;" in dom
    assert "<script" not in dom and "<img" not in dom and "<b>" not in dom
    assert "&lt;b&gt;bold&lt;/b&gt;" in dom
    for heading in (
        "Caller ID",
        "Call filters &amp; blocking",
        "Do not disturb",
        "Call forwarding",
        "BLF list",
        "Operation times",
    ):
        assert f">{heading} <small>" in dom, heading
    assert "not editable through the API" in dom  # operation times
    assert "<form" not in dom and "<input" not in dom  # read-only


@pytest.mark.slow
async def test_without_credentials_the_browser_gets_no_data(
    simulator, aiohttp_client, leak_guard, chromium, profile
):
    async with admin_env(simulator, aiohttp_client, leak_guard) as env:
        server = env.client.server
        name = env.ext().name
        dom = await dump_dom(chromium, profile, f"http://{server.host}:{server.port}{env.url()}")
    # A headless browser cannot show the login prompt the Basic challenge asks for.
    assert "Caller ID" not in dom and name not in dom


# --- forged edits from another origin ---------------------------------------------------------


class DevTools:
    """Just enough of the Chrome DevTools Protocol to drive one tab: navigate, evaluate."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._loads: asyncio.Queue[None] = asyncio.Queue()
        self._session: str | None = None
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self._ws:
            data = json.loads(msg.data)
            if "id" in data and data["id"] in self._pending:
                self._pending.pop(data["id"]).set_result(data)
            elif data.get("method") == "Page.loadEventFired":
                self._loads.put_nowait(None)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self._ids)
        message: dict[str, Any] = {"id": ident, "method": method, "params": params}
        if self._session is not None and not method.startswith("Target."):
            message["sessionId"] = self._session
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        await self._ws.send_str(json.dumps(message))
        answer = await asyncio.wait_for(future, 60)
        assert "error" not in answer, answer
        return answer["result"]

    async def open_tab(self) -> None:
        target = await self.send("Target.createTarget", url="about:blank")
        attached = await self.send(
            "Target.attachToTarget", targetId=target["targetId"], flatten=True
        )
        self._session = attached["sessionId"]
        await self.send("Page.enable")

    async def navigate(self, url: str, loads: int = 1) -> None:
        """Open ``url`` and wait for ``loads`` load events (more when the page navigates on)."""
        while not self._loads.empty():
            self._loads.get_nowait()
        await self.send("Page.navigate", url=url)
        for _ in range(loads):
            await asyncio.wait_for(self._loads.get(), 60)

    async def evaluate(self, expression: str) -> Any:
        result = await self.send(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await self._ws.close()


@contextlib.asynccontextmanager
async def devtools(chromium: str, profile: str) -> AsyncIterator[DevTools]:
    proc = await asyncio.create_subprocess_exec(
        chromium,
        *FLAGS,
        f"--user-data-dir={profile}",
        "--remote-debugging-port=0",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    try:
        async with asyncio.timeout(60):
            while True:  # Chromium says where its DevTools socket is, then keeps logging
                line = (await proc.stderr.readline()).decode()
                assert line, "chromium exited before DevTools listened"
                if line.startswith("DevTools listening on "):
                    url = line.split(" on ", 1)[1].strip()
                    break
        drain = asyncio.create_task(proc.stderr.read())
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(url, max_msg_size=0)
            tools = DevTools(ws)
            try:
                await tools.open_tab()
                yield tools
            finally:
                await tools.close()
        drain.cancel()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


# The hostile page: the text/plain trick and an urlencoded form, each submitted as
# soon as the page loads (a top-level navigation, as a real attack page does), and fetch()
# with the browser's credentials, all aimed at the state switch of one extension.
EVIL = """<!doctype html><html><body>
<form id="plain" method="POST" enctype="text/plain" action="{state}">
<input name='{{"enabled": "x' value='y", "enabled": true}}'></form>
<form id="urlenc" method="POST" action="{state}">
<input name='{{"enabled": true}}' value=''></form>
<script>
const form = new URLSearchParams(location.search).get("submit");
if (form) window.onload = () => document.getElementById(form).submit();
async function attack() {{
  const results = [];
  for (const init of [
    {{method: "POST", mode: "no-cors", credentials: "include",
      headers: {{"Content-Type": "text/plain"}}, body: '{{"enabled": true}}'}},
    {{method: "POST", mode: "cors", credentials: "include",
      headers: {{"Content-Type": "application/json"}}, body: '{{"enabled": true}}'}},
    {{method: "PUT", mode: "cors", credentials: "include",
      headers: {{"Content-Type": "application/json"}}, body: '{{"dnd": 2}}'}},
  ]) {{
    const url = init.method === "PUT" ? "{service}" : "{state}";
    try {{ const r = await fetch(url, init); results.push(r.type + ":" + r.status); }}
    catch (e) {{ results.push("blocked"); }}
  }}
  return results;
}}
</script></body></html>"""


@contextlib.asynccontextmanager
async def evil_site(page: str) -> AsyncIterator[int]:
    async def serve(_: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", serve)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


@pytest.mark.slow
async def test_a_page_of_another_origin_cannot_edit_through_the_browser(
    simulator, aiohttp_client, leak_guard, chromium, profile
):
    async with admin_env(simulator, aiohttp_client, leak_guard) as env:
        server = env.client.server
        own = f"http://{server.host}:{server.port}"
        state_before = env.es("dnd")
        page = EVIL.format(state=own + env.url("dnd", state=True), service=own + env.url("dnd"))
        async with devtools(chromium, profile) as tab, evil_site(page) as evil_port:
            # The runbook flow: the token typed once, kept in the browser's Basic-auth cache.
            await tab.navigate(f"http://ops:{OPS}@{server.host}:{server.port}{env.url()}")
            # The same browser on the exporter's own page reads, with the cached token only.
            await tab.navigate(own + env.url())
            text = await tab.evaluate("document.body.innerText")
            assert "Caller ID" in text and env.ext().name in text
            # Another origin: "localhost" is another site than 127.0.0.1, and another port.
            evil = f"http://localhost:{evil_port}/"
            await tab.navigate(evil)
            results = await tab.evaluate("attack()")
            for form in ("plain", "urlenc"):
                # Two loads: the hostile page, then the exporter's answer to its form.
                await tab.navigate(f"{evil}?submit={form}", loads=2)
                answer = await tab.evaluate("document.body.innerText")
                assert "refused" in answer and "cross-site" in answer, answer
        audit = env.log_events()
    assert env.es("dnd") == state_before, "a forged request changed the PBX"
    assert env.es_requests("set") == env.es_requests("edit") == 0
    # The no-cors fetch went out (its answer is opaque to the page); the JSON ones were
    # stopped by the browser's preflight, which the exporter does not grant.
    assert results == ["opaque:0", "blocked", "blocked"], results
    # The forms reached the exporter with the browser's cached token, and were refused as
    # cross-site before anything else was looked at. (Whether the no-cors fetch carries the
    # cached token is the browser's choice; refused it is either way.)
    refused = [(r["token"], r["result"], r["status"]) for r in audit]
    assert refused.count(("ops", "cross_site", 403)) >= 2, refused
    assert set(refused) <= {("ops", "cross_site", 403), ("-", "unauthorized", 401)}, refused
