"""The runbook page in a real headless browser (Debian's chromium): it renders, read-only,
and a hostile value from the PBX shows as text instead of running."""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from collections.abc import Iterator

import pytest

from tests.admin_util import (
    OPS,
    admin_env,
    admin_leak_guard,  # noqa: F401 (a fixture, used by name)
)
from tests.tools import require_tool

pytestmark = pytest.mark.usefixtures("admin_leak_guard")

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


async def test_without_credentials_the_browser_gets_no_data(
    simulator, aiohttp_client, leak_guard, chromium, profile
):
    async with admin_env(simulator, aiohttp_client, leak_guard) as env:
        server = env.client.server
        name = env.ext().name
        dom = await dump_dom(chromium, profile, f"http://{server.host}:{server.port}{env.url()}")
    # A headless browser cannot show the login prompt the Basic challenge asks for.
    assert "Caller ID" not in dom and name not in dom
