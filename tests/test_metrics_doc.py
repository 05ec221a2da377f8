"""docs/metrics.md cannot drift: its metric list equals what a fully-featured run exposes."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from exporter.config import Config
from exporter.daemon import Daemon
from tests.conftest import recorded, system_config

DOC = Path(__file__).parent.parent / "docs" / "metrics.md"


def documented() -> dict[str, str]:
    """Metric name → documented type, from the tables of docs/metrics.md."""
    rows = re.findall(r"^\| `(pbxware_[a-z_]+)` \| (gauge|counter) \|", DOC.read_text(), re.M)
    return dict(rows)


async def test_documented_metrics_equal_the_live_ones(simulator, aiohttp_client):
    url, sim = await simulator(tenants=2, extensions_per_tenant=4)
    sim.tick()
    daemon = Daemon(Config(systems=(system_config(url, extension_metrics=True),)))
    # The daemon's own app: admin and reload families are part of what users scrape.
    client = await aiohttp_client(recorded(daemon.app()))
    await asyncio.wait_for(daemon.store.wait_for(lambda s: s.ready()), 10)
    text = await (await client.get("/metrics")).text()
    live = dict(re.findall(r"^# TYPE (pbxware_[a-z_]+) (gauge|counter)$", text, re.M))
    docs = documented()
    assert len(docs) >= 30
    assert sorted(set(live) - set(docs)) == [], "exposed but not documented"
    assert sorted(set(docs) - set(live)) == [], "documented but not exposed"
    assert live == docs, "types differ"
