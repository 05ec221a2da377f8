"""The one extension point (issue 15): a feature is a module with its polls and families,
listed once in exporter/features/__init__.py."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from prometheus_client.core import Metric

from exporter import features
from exporter.config import OPTIONAL_COLLECTORS, Config
from exporter.daemon import Daemon
from exporter.features.base import Feature, Poll, gauge
from exporter.pbxware.models import parse_usage_ratio
from exporter.snapshot import SystemSnapshot
from exporter.web.app import build_app
from tests.conftest import recorded, system_config
from tests.metrics_util import parse_samples, value


def test_every_optional_feature_has_its_config_switch_and_no_other_switch_exists():
    # Switched under `collectors:`; a feature with a runner has its own section (cdr:).
    optional = [f.name for f in features.FEATURES if not f.core and f.polls]
    assert sorted(optional) == sorted(OPTIONAL_COLLECTORS)
    assert all(f.runner is not None for f in features.FEATURES if not f.polls)


def test_poll_keys_and_actions_are_unique():
    polls = [p for f in features.FEATURES for p in f.polls]
    assert len({p.key for p in polls}) == len(polls)
    assert len({(p.action, p.scope) for p in polls}) == len(polls)


def test_a_switched_off_feature_is_not_polled():
    system = system_config("http://pbx.invalid/", collectors={"monitor": _off()})
    names = [f.name for f, _ in features.enabled(system)]
    assert "monitor" not in names and "core" in names and "calls" in names


def _off() -> Any:
    from exporter.config import CollectorConfig

    return CollectorConfig(enabled=False)


# A feature written in this test only: what "one new module and one line" means.
LOAD: Poll[float] = Poll(
    "test_load",
    "pbxware.dashboard.cpu",
    "system",
    lambda data: parse_usage_ratio("pbxware.dashboard.cpu", data),
)


def _load_families(snapshots: Sequence[SystemSnapshot]) -> Iterator[Metric]:
    family = gauge("pbxware_test_load_ratio", "A feature added by a test.", ["system"])
    for snap in snapshots:
        ratio = snap.value(LOAD)
        if ratio is not None:
            family.add_metric([snap.system], ratio)
    yield family


async def test_a_new_feature_is_one_definition_and_one_line(
    simulator, aiohttp_client, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(
        features,
        "FEATURES",
        (*features.FEATURES, Feature("test_load", (LOAD,), _load_families, core=True)),
    )
    url, sim = await simulator(tenants=1, extensions_per_tenant=2)
    daemon = Daemon(Config(systems=(system_config(url),)))
    client = await aiohttp_client(recorded(build_app(daemon.store, ["pbx1"])))
    try:
        await daemon.pollers["pbx1"].poll_once()
        samples = parse_samples(await (await client.get("/metrics")).text())
    finally:
        await daemon.stop()
    cpu = value(samples, "pbxware_cpu_usage_ratio", system="pbx1")
    assert cpu is not None
    assert value(samples, "pbxware_test_load_ratio", system="pbx1") == cpu
    assert sim.requests("pbx1")["pbxware.dashboard.cpu"] == 2  # the core poll and the new one
