"""Counting PBXware archiving runs across polls without counting a run twice.

Each poll reads the runs of a two-day window, so most runs are seen several times; a run
is identified by (tenant, time) — by (tenant, the raw date_time) where the time cannot be
read, so that such runs are never merged — and counted once. Ids older than the window are forgotten
so the set stays small.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .pbxware.dashboard import ArchivingRun

_HORIZON = 3 * 86400  # longer than the polled window, so a re-read run is still known


@dataclass(frozen=True)
class ArchivingTotals:
    runs: Mapping[tuple[str, str], int]  # (tenant, status) → runs counted
    last: Mapping[str, ArchivingRun]  # tenant → its latest run


@dataclass
class ArchivingTracker:
    _seen: dict[tuple[str, float | str], float] = field(default_factory=dict)
    _runs: dict[tuple[str, str], int] = field(default_factory=dict)
    _last: dict[str, ArchivingRun] = field(default_factory=dict)

    def update(self, runs: tuple[ArchivingRun, ...], now: float) -> None:
        for run in runs:
            # A run's status may change while it is re-read; the first one seen counts.
            key = run.key  # (tenant, time), or (tenant, raw date_time) if unreadable
            if key in self._seen:
                continue
            self._seen[key] = run.timestamp if run.timestamp is not None else now
            counted = (run.tenant, run.status)
            self._runs[counted] = self._runs.get(counted, 0) + 1
            latest = self._last.get(run.tenant)
            if latest is None or (run.timestamp or 0) >= (latest.timestamp or 0):
                self._last[run.tenant] = run
        self._seen = {k: t for k, t in self._seen.items() if t >= now - _HORIZON}

    def totals(self) -> ArchivingTotals:
        return ArchivingTotals(
            MappingProxyType(dict(self._runs)), MappingProxyType(dict(self._last))
        )
