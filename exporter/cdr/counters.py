"""CDR counters: mutable per tenant while a round runs, frozen into a snapshot after it.

/metrics renders in a worker thread (exporter/web/exposition.py), so it only ever reads the
frozen CdrSnapshot objects, never the counters the poller is changing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ..snapshot import ActionStatus
from .records import DIRECTIONS, DISPOSITIONS, CdrRow


def _calls() -> dict[tuple[str, str], int]:
    # Every combination from the start: a counter that appears at 1 loses its first
    # increase in rate(); these label values are bounded (4 × 5).
    return {(d, s): 0 for d in DIRECTIONS for s in DISPOSITIONS}


def _by_direction() -> dict[str, int]:
    return dict.fromkeys(DIRECTIONS, 0)


@dataclass(frozen=True)
class TenantTotals:
    tenant: str
    calls: Mapping[tuple[str, str], int]  # (direction, disposition) → records
    duration: Mapping[str, int]  # direction → Total Duration of answered calls
    billable: Mapping[str, int]  # direction → Rating Duration (0 without such a column)
    records: int
    recordings: int
    rejected: int
    last_record: int | None  # Date/Time of the newest counted record
    polled_until: int | None  # every record dated up to here was fetched; None: not yet


@dataclass
class TenantCounters:
    calls: dict[tuple[str, str], int] = field(default_factory=_calls)
    duration: dict[str, int] = field(default_factory=_by_direction)
    billable: dict[str, int] = field(default_factory=_by_direction)
    records: int = 0
    recordings: int = 0
    rejected: int = 0
    last_record: int | None = None

    def count(self, row: CdrRow) -> None:
        self.records += 1
        self.calls[(row.direction, row.disposition)] += 1
        if row.recorded:
            self.recordings += 1
        if row.disposition == "answered":
            self.duration[row.direction] += row.duration
            if row.billable is not None:
                self.billable[row.direction] += row.billable
        if self.last_record is None or row.timestamp > self.last_record:
            self.last_record = row.timestamp

    def freeze(self, tenant: str, polled_until: int | None) -> TenantTotals:
        return TenantTotals(
            tenant=tenant,
            calls=MappingProxyType(dict(self.calls)),
            duration=MappingProxyType(dict(self.duration)),
            billable=MappingProxyType(dict(self.billable)),
            records=self.records,
            recordings=self.recordings,
            rejected=self.rejected,
            last_record=self.last_record,
            polled_until=polled_until,
        )


@dataclass(frozen=True)
class CdrSnapshot:
    """One system's CDR state after a round of polling."""

    system: str
    interval: float
    rounds: int
    tenants: tuple[TenantTotals, ...] = ()
    duplicates: int = 0  # rows skipped because their record was already counted
    outside_window: int = 0  # rows dated outside the window they were asked for
    # pbxware.cdr.download requests and failures, merged into pbxware_poll_*_total.
    requests: int = 0
    errors: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    status: ActionStatus | None = None  # the last round, for pbxware_poll_duration_seconds etc.
