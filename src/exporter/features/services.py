"""PBX services (Asterisk, MySQL, …) and whether each runs: ``pbxware.dashboard.services``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client.core import Metric

from ..pbxware.models import records, text
from ..snapshot import SystemSnapshot
from .base import Feature, Poll, gauge

ACTION = "pbxware.dashboard.services"


def parse(data: Any) -> dict[str, bool]:
    """Service name → running; PBXware reports a healthy service as "running"."""
    return {
        text(name): text(status).lower() == "running"
        for name, status in records(ACTION, data).items()
    }


SERVICES: Poll[dict[str, bool]] = Poll("services", ACTION, "system", parse)


def families(snapshots: Sequence[SystemSnapshot]) -> Iterator[Metric]:
    up = gauge(
        "pbxware_service_up",
        "1 when pbxware.dashboard.services reports the PBX service as running.",
        ["system", "service"],
    )
    for snap in snapshots:
        for service, running in sorted((snap.value(SERVICES) or {}).items()):
            up.add_metric([snap.system, service], 1.0 if running else 0.0)
    yield up


FEATURE = Feature("services", (SERVICES,), families)
