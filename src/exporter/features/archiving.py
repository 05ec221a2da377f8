"""Archiving runs: ``pbxware.archiving.list`` for yesterday and today, each run counted once
across polls.

Each poll reads the runs of a two-day window, so most runs are seen several times; a run is
identified by (tenant, time) — by (tenant, the raw date_time) where the time cannot be read,
so that such runs are never merged — and counted once. Ids older than the window are
forgotten so the set stays small.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from prometheus_client.core import Metric

from ..pbxware.dates import pbxware_date
from ..pbxware.fields import Entries
from ..pbxware.models import records, text
from ..snapshot import SystemSnapshot, ValueKey
from .base import Feature, Poll, counter, gauge

ACTION = "pbxware.archiving.list"


@dataclass(frozen=True)
class ArchivingRun:
    tenant: str
    timestamp: float | None
    status: str  # success | failure | partial | unknown
    raw_time: str = ""  # date_time as sent: tells runs apart when its form is unknown

    @property
    def key(self) -> tuple[str, float | str]:
        """What identifies the run across polls: its tenant and time, or the raw date_time
        when we cannot read it (two unreadable runs must never merge into one)."""
        return (self.tenant, self.timestamp if self.timestamp is not None else self.raw_time)


_RUN_STATUS = {
    "success": "success",
    "failure": "failure",
    "failed": "failure",
    "partial": "partial",
}


def parse(data: Any) -> Entries:
    """archiving.list is a JSON array; an object keyed by id (what json_encode writes for
    keys that are not 0..n-1) and ``[]``, ``{}``, ``""`` for none are read too."""
    runs: list[ArchivingRun] = []
    problems: list[str] = []
    for entry in records(ACTION, data).values():
        if not isinstance(entry, dict):
            problems.append("a run is not an object")
            continue
        runs.append(
            ArchivingRun(
                tenant=text(entry.get("tenant")),
                timestamp=_timestamp(text(entry.get("date_time"))),
                status=_RUN_STATUS.get(text(entry.get("status")).lower(), "unknown"),
                raw_time=text(entry.get("date_time"))[:64],
            )
        )
    return Entries.of(runs, problems)


_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
)}  # fmt: skip
# "Apr-01-2024 02:00:00": PBXware's own mmm-dd-YYYY date form (the one its arguments use),
# English month names whatever the locale.
_MONTH_FIRST = re.compile(r"([A-Za-z]{3})-(\d{1,2})-(\d{4})[ T](\d{1,2}):(\d{2}):(\d{2})")
_ISO_FORMS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")
# The form PBXware writes, "2024-04-01 02:00:00" (or with a T), read without strptime:
# strptime costs ~15 us a call, 180 ms in one turn of the event loop for the 10,000 runs of
# a 5,000-tenant system (scrapes waited for it). Any other spelling strptime takes (single
# digits, more spaces) still goes to strptime.
_ISO = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})[ T]([0-9]{2}):([0-9]{2}):([0-9]{2})")


def _timestamp(value: str) -> float | None:
    """``YYYY-MM-DD HH:MM:SS`` (also with a ``T``), ``Mon-DD-YYYY HH:MM:SS`` or epoch
    seconds; the formatted forms are taken as UTC (a GUESS: PBXware writes its local time).
    None for any other form."""
    if value.isdigit():
        return float(value)
    if (match := _ISO.fullmatch(value)) is not None:
        year, month, day, hour, minute, second = (int(g) for g in match.groups())
    elif (match := _MONTH_FIRST.fullmatch(value)) is not None:
        month = _MONTHS.get(match.group(1).lower()) or 0
        day, year, hour, minute, second = (int(g) for g in match.groups()[1:])
    else:
        return _strptime(value)
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp()
    except ValueError:  # month 0 (not a month name) or 13, day 31 of April, hour 24, ...
        return None


def _strptime(value: str) -> float | None:
    for form in _ISO_FORMS:
        try:
            return datetime.strptime(value, form).replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
    return None


_HORIZON = 3 * 86400  # longer than the polled window, so a re-read run is still known


@dataclass(frozen=True)
class ArchivingTotals:
    runs: Mapping[tuple[str, str], int]  # (tenant, status) → runs counted
    last: Mapping[str, ArchivingRun]  # tenant → its latest run


@dataclass
class ArchivingTracker:
    """The tracker of this feature (exporter/features/base.py)."""

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


def _window(now: float) -> dict[str, str]:
    # Yesterday and today: the nightly run of every tenant falls in it at least once.
    return {"start_date": pbxware_date(now - 86400), "end_date": pbxware_date(now)}


RUNS: Poll[Entries] = Poll("archiving", ACTION, "system", parse, params=_window)


def families(snapshots: Sequence[SystemSnapshot]) -> Iterator[Metric]:
    runs = counter(
        "pbxware_archiving_runs",
        "Archiving runs seen in pbxware.archiving.list, by tenant code and status"
        " (success, failure, partial, unknown).",
        ["system", "tenant", "status"],
    )
    last_ok = gauge(
        "pbxware_archiving_last_run_success",
        "1 when the tenant's latest archiving run succeeded, else 0 (tenant: the tenant code).",
        ["system", "tenant"],
    )
    last_time = gauge(
        "pbxware_archiving_last_run_timestamp_seconds",
        "Unix time of the tenant's latest archiving run (tenant: the tenant code).",
        ["system", "tenant"],
    )
    for snap in snapshots:
        totals = snap.tracked_value(TOTALS)
        if totals is None:
            continue
        for (tenant, status), n in sorted(totals.runs.items()):
            runs.add_metric([snap.system, tenant, status], n)
        for tenant, run in sorted(totals.last.items()):
            last_ok.add_metric([snap.system, tenant], 1.0 if run.status == "success" else 0.0)
            if run.timestamp is not None:
                last_time.add_metric([snap.system, tenant], run.timestamp)
    yield from (runs, last_ok, last_time)


FEATURE = Feature("archiving", (RUNS,), families, tracker=ArchivingTracker)
# What the tracker counted, in SystemSnapshot.tracked.
TOTALS: ValueKey[ArchivingTotals] = ValueKey(FEATURE.name)
