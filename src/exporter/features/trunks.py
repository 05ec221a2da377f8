"""Trunks and whether each is enabled: ``pbxware.trunk.list`` (it gives no registration
state)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import Metric

from ..pbxware.fields import Entries
from ..pbxware.models import records, text
from ..snapshot import SystemSnapshot
from .base import Feature, Poll, gauge

ACTION = "pbxware.trunk.list"


@dataclass(frozen=True)
class Trunk:
    id: str
    name: str
    provider: str
    enabled: bool


def parse(data: Any) -> Entries:
    trunks: list[Trunk] = []
    problems: list[str] = []
    for key, entry in records(ACTION, data).items():
        if not isinstance(entry, dict):
            problems.append(f"trunk {text(key)[:20]!r} is not an object")
            continue
        trunks.append(
            Trunk(
                id=text(key),
                name=text(entry.get("name")),
                provider=text(entry.get("provider_name")),
                enabled=text(entry.get("status")).lower() in ("enabled", "1"),
            )
        )
    return Entries.of(trunks, problems)


TRUNKS: Poll[Entries] = Poll("trunks", ACTION, "system", parse)


def families(snapshots: Sequence[SystemSnapshot]) -> Iterator[Metric]:
    enabled = gauge(
        "pbxware_trunk_enabled",
        "1 when the trunk is enabled in pbxware.trunk.list (not whether it is registered).",
        ["system", "trunk", "name", "provider"],
    )
    for snap in snapshots:
        for t in snap.value(TRUNKS) or ():
            enabled.add_metric([snap.system, t.id, t.name, t.provider], 1.0 if t.enabled else 0.0)
    yield enabled


FEATURE = Feature("trunks", (TRUNKS,), families)
