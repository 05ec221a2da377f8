"""The live /metrics output passes the real `promtool check metrics`, in both formats."""

from __future__ import annotations

import subprocess

from exporter.config import Config
from exporter.daemon import Daemon
from exporter.web.app import build_app
from tests.conftest import recorded, system_config
from tests.metrics_util import parse_samples
from tests.tools import require_tool


async def test_promtool_accepts_live_output(simulator, aiohttp_client):
    promtool = require_tool("promtool")
    url, sim = await simulator(systems=("a", "b"), tenants=3, extensions_per_tenant=5)
    sim.set_fault("b", "garbage", tenant=sorted(sim.state("b").tenants)[0])
    daemon = Daemon(
        Config(
            systems=(
                system_config(f"{url}/a/", name="a", extension_metrics=True),
                system_config(f"{url}/b/", name="b"),
            )
        )
    )
    client = await aiohttp_client(recorded(build_app(daemon.store, ["a", "b"])))
    try:
        for poller in daemon.pollers.values():
            await poller.poll_once()
        resp = await client.get("/metrics")
        text = await resp.text()
        om = await client.get(
            "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        )
        om_text = await om.text()
    finally:
        await daemon.stop()
    assert resp.headers["Content-Type"].startswith("text/plain")
    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""
    # The same data is offered as OpenMetrics to a scraper that asks for it.
    assert om.headers["Content-Type"].startswith("application/openmetrics-text")
    assert om_text.rstrip().endswith("# EOF")
    names = {name for name, _ in parse_samples(text)}
    assert {"pbxware_up", "pbxware_extension_online", "pbxware_poll_errors_total"} <= names


async def test_every_family_has_help_that_says_values_are_cached(simulator, aiohttp_client):
    url, _ = await simulator(tenants=1, extensions_per_tenant=2)
    daemon = Daemon(Config(systems=(system_config(url, extension_metrics=True),)))
    client = await aiohttp_client(recorded(build_app(daemon.store, ["pbx1"])))
    try:
        await daemon.pollers["pbx1"].poll_once()
        text = await (await client.get("/metrics")).text()
    finally:
        await daemon.stop()
    helps = [line for line in text.splitlines() if line.startswith("# HELP pbxware_")]
    assert len(helps) >= 15
    for line in helps:
        # The exporter's own state (build, reloads, admin API) is live, not polled.
        if not line.startswith(("# HELP pbxware_exporter_", "# HELP pbxware_admin_")):
            assert "Cached: polled every interval" in line, line
