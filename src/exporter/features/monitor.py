"""The live monitor of a tenant's extensions: status, DND, on a call
(``pbxware.monitor.list``); it also says which extensions are online, for the per-extension
series (exporter/features/core.py)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import Metric

from ..pbxware.models import ONLINE_STATES, records, text
from ..snapshot import SystemSnapshot
from .base import Feature, Poll, gauge

ACTION = "pbxware.monitor.list"


@dataclass(frozen=True)
class MonitorSummary:
    """Per-tenant view of pbxware.monitor.list."""

    by_status: dict[str, int]
    dnd: int
    on_call: int
    online_ids: frozenset[str]
    problems: tuple[str, ...] = ()


def parse(data: Any) -> MonitorSummary:
    by_status: Counter[str] = Counter()
    dnd = on_call = 0
    online: set[str] = set()
    problems: list[str] = []
    for key, entry in records(ACTION, data).items():
        if not isinstance(entry, dict):
            problems.append(f"extension {text(key)[:20]!r} is not an object")
            continue
        status = text(entry.get("status")).lower() or "unknown"
        # The status vocabulary is not documented; keep label values bounded.
        by_status[status if status in ("online", "offline") else _bucket(status)] += 1
        if status in ONLINE_STATES:
            online.add(text(key))
        dnd += entry.get("dnd") is True
        on_call += entry.get("on_call") is True
    return MonitorSummary(dict(by_status), dnd, on_call, frozenset(online), tuple(problems))


def _bucket(status: str) -> str:
    return "online" if status in ONLINE_STATES else "other"


MONITOR: Poll[MonitorSummary] = Poll("monitor", ACTION, "tenant", parse)


def families(snapshots: Sequence[SystemSnapshot]) -> Iterator[Metric]:
    monitor = gauge(
        "pbxware_monitor_extensions",
        "Extensions in pbxware.monitor.list by live status (online, offline, other).",
        ["system", "tenant", "status"],
    )
    dnd = gauge(
        "pbxware_extensions_dnd", "Extensions with Do Not Disturb on.", ["system", "tenant"]
    )
    on_call = gauge(
        "pbxware_extensions_on_call", "Extensions on a call right now.", ["system", "tenant"]
    )
    for snap in snapshots:
        for ts in snap.tenants:
            mon = ts.value(MONITOR)
            if mon is None:
                continue
            labels = [snap.system, ts.tenant.id]
            # Zero is a value: every status of the bounded set, so that sum by (tenant)
            # keeps a tenant with no extensions.
            for status in sorted({"online", "offline", "other", *mon.by_status}):
                monitor.add_metric([*labels, status], mon.by_status.get(status, 0))
            dnd.add_metric(labels, mon.dnd)
            on_call.add_metric(labels, mon.on_call)
    yield from (monitor, dnd, on_call)


FEATURE = Feature("monitor", (MONITOR,), families)
