"""/metrics for a fixed simulator seed and a fixed clock, compared byte for byte with a file
under review (tests/golden/metrics.txt), as prometheus-pve-exporter does with its golden files.

A change to what the exporter exposes (a family, a label, a HELP text, a value, the order) is
then a diff of that file in the same commit. To accept one on purpose:

    scripts/test tests/test_golden.py --update-golden     # or PBXWARE_UPDATE_GOLDEN=1

What it covers: two systems of one simulator, one polled as JSON and one as PHP, every health
collector on (the default), CDR enabled, one core poll and one CDR poll of each, all at the
simulator's clock (T0), so every date window and timestamp the exporter derives from it is fixed.

Normalisation (the only rule; ``normalise`` below): what depends on the machine and not on the
answers is replaced before the comparison --
- the value of every sample of the families in VOLATILE (wall-clock durations of polls, and
  the wall-clock time the config was loaded) becomes ``<volatile>``;
- the ``version`` and ``python_version`` labels of ``pbxware_exporter_build_info`` become
  ``<version>``.
Each family named in VOLATILE must be present, so the list cannot silently outlive a rename.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from exporter.config import CdrConfig, Config
from exporter.daemon import Daemon
from exporter.poller import SystemPoller
from exporter.web.app import build_app
from pbxware_simulator.cdr import CdrOptions
from tests.conftest import recorded, system_config

GOLDEN = Path(__file__).parent / "golden" / "metrics.txt"
T0 = 1_700_000_000  # 2023-11-14 22:13:20 UTC
SEED = 15
SYSTEMS = {"pbx-json": "json", "pbx-php": "php"}
VOLATILE = (
    "pbxware_poll_duration_seconds",
    "pbxware_poll_cycle_duration_seconds",
    "pbxware_exporter_config_last_reload_success_timestamp_seconds",  # the process start
)
_BUILD_LABELS = re.compile(r'((?:python_)?version)="[^"]*"')


def normalise(text: str) -> str:
    """The exposition with its machine-dependent parts replaced (see the module docstring)."""
    lines = []
    for line in text.splitlines(keepends=True):
        if not line.startswith("#"):
            name = re.split(r"[{ ]", line, maxsplit=1)[0]
            if name in VOLATILE:
                line = line.rsplit(" ", 1)[0] + " <volatile>\n"
            elif name == "pbxware_exporter_build_info":
                line = _BUILD_LABELS.sub(r'\1="<version>"', line)
        lines.append(line)
    return "".join(lines)


def update_requested(config: pytest.Config) -> bool:
    return bool(config.getoption("--update-golden")) or os.environ.get("PBXWARE_UPDATE_GOLDEN") in (
        "1",
        "true",
    )


async def scrape(simulator: Any, aiohttp_client: Any) -> str:
    url, sim = await simulator(
        systems=tuple(SYSTEMS),
        tenants=3,
        extensions_per_tenant=4,
        seed=SEED,
        start_time=T0,
        tick_seconds=300,
        cdr=CdrOptions(calls_per_hour=120, malformed_ratio=0.05),
    )
    systems = tuple(
        system_config(
            f"{url}/{name}/",
            name=name,
            format=fmt,
            cdr=CdrConfig(enabled=True, interval=300, backfill=3600),
        )
        for name, fmt in SYSTEMS.items()
    )
    daemon = Daemon(Config(systems=systems))
    for system in systems:
        clock = lambda name=system.name: sim.now(name)  # noqa: E731
        client = daemon.clients[system.name]
        # The poller runs the system's CDR runner too, with the same clock.
        daemon.pollers[system.name] = SystemPoller(system, client, daemon.store, clock=clock)
    app = build_app(daemon.store, list(SYSTEMS))
    http = await aiohttp_client(recorded(app))
    try:
        for name in SYSTEMS:
            await daemon.pollers[name].poll_once()
            await daemon.pollers[name].runners["cdr"].poll_once()  # type: ignore[attr-defined]
        resp = await http.get("/metrics", headers={"Accept-Encoding": "identity"})
        assert resp.status == 200
        return await resp.text()
    finally:
        await daemon.stop()


async def test_metrics_match_the_golden_file(simulator, aiohttp_client, request):
    text = await scrape(simulator, aiohttp_client)
    present = {ln.split(" ")[2] for ln in text.splitlines() if ln.startswith("# TYPE ")}
    assert set(VOLATILE) <= present, set(VOLATILE) - present
    got = normalise(text)
    if update_requested(request.config):
        GOLDEN.write_text(got, encoding="utf-8")
        return
    assert GOLDEN.exists(), f"no {GOLDEN}: run with --update-golden and review the file"
    want = GOLDEN.read_text(encoding="utf-8")
    # Compared as lists of lines: pytest then shows the lines that differ.
    assert got.splitlines() == want.splitlines(), (
        "/metrics changed: review the diff; if intended, rerun with --update-golden"
    )
    assert got == want  # byte for byte (line endings, the final newline)


def test_normalise_replaces_only_volatile_values():
    text = (
        "# HELP pbxware_poll_duration_seconds x\n"
        'pbxware_poll_duration_seconds{system="a",action="b"} 0.0123\n'
        'pbxware_up{system="a"} 1.0\n'
        'pbxware_exporter_build_info{version="0.1.0",python_version="3.11.2"} 1.0\n'
    )
    assert normalise(text) == (
        "# HELP pbxware_poll_duration_seconds x\n"
        'pbxware_poll_duration_seconds{system="a",action="b"} <volatile>\n'
        'pbxware_up{system="a"} 1.0\n'
        'pbxware_exporter_build_info{version="<version>",python_version="<version>"} 1.0\n'
    )
