"""CDR counters: mutable per tenant while a round runs, frozen into a snapshot after it.

/metrics renders in a worker thread (exporter/web/exposition.py), so it only ever reads the
frozen CdrSnapshot objects, never the counters the poller is changing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ...snapshot import ActionStatus
from .calls import Call
from .records import DIRECTIONS, DISPOSITIONS, CdrRow

# Upper bounds of pbxware_cdr_call_mos (issue 17 alerts on them): 1 bad … 5 excellent; 4.3
# is about the best narrow-band (G.711) calls reach, 3.5 where users start to complain.
MOS_BUCKETS = (1.0, 2.0, 2.5, 3.0, 3.5, 4.0, 4.3, 5.0)


def _calls() -> dict[tuple[str, str], int]:
    # Every combination from the start: a counter that appears at 1 loses its first
    # increase in rate(); these label values are bounded (4 × 5).
    return {(d, s): 0 for d in DIRECTIONS for s in DISPOSITIONS}


def _by_direction() -> dict[str, int]:
    return dict.fromkeys(DIRECTIONS, 0)


def _cost_by_direction() -> dict[str, float]:
    return dict.fromkeys(DIRECTIONS, 0.0)


def _mos_buckets() -> list[int]:
    return [0] * len(MOS_BUCKETS)


@dataclass(frozen=True)
class TenantTotals:
    tenant: str
    calls: Mapping[tuple[str, str], int]  # (direction, disposition) → calls
    duration: Mapping[str, int]  # direction → Total Duration of answered calls
    billable: Mapping[str, int]  # direction → Rating Duration (0 without such a column)
    records: int  # rows
    recordings: int
    rejected: int
    last_record: int | None  # Date/Time of the newest counted record
    polled_until: int | None  # every record dated up to here was fetched; None: not yet
    cost: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    mos_buckets: tuple[int, ...] = ()  # calls per MOS_BUCKETS bound, not cumulative
    mos_sum: float = 0.0
    mos_count: int = 0
    pending_calls: int = 0  # calls held back until their legs can no longer change


@dataclass
class TenantCounters:
    calls: dict[tuple[str, str], int] = field(default_factory=_calls)
    duration: dict[str, int] = field(default_factory=_by_direction)
    billable: dict[str, int] = field(default_factory=_by_direction)
    cost: dict[str, float] = field(default_factory=_cost_by_direction)
    mos_buckets: list[int] = field(default_factory=_mos_buckets)
    mos_sum: float = 0.0
    mos_count: int = 0
    records: int = 0
    recordings: int = 0
    rejected: int = 0
    last_record: int | None = None

    def count_row(self, row: CdrRow) -> None:
        """A new row (a leg or a whole call): the row counters."""
        self.records += 1
        if row.recorded:
            self.recordings += 1
        if self.last_record is None or row.timestamp > self.last_record:
            self.last_record = row.timestamp

    def count_call(self, call: Call) -> None:
        """A call whose legs can no longer change: the call counters."""
        self.calls[(call.direction, call.disposition)] += 1
        if call.disposition == "answered":
            self.duration[call.direction] += call.duration
            if call.billable is not None:
                self.billable[call.direction] += call.billable
        if call.cost is not None:
            self.cost[call.direction] += call.cost
        if call.mos is not None:
            for index, bound in enumerate(MOS_BUCKETS):
                if call.mos <= bound:
                    self.mos_buckets[index] += 1
                    break
            self.mos_sum += call.mos
            self.mos_count += 1

    def count(self, row: CdrRow) -> None:
        """A row that is a whole call by itself."""
        self.count_row(row)
        self.count_call(Call.of(row))

    def freeze(self, tenant: str, polled_until: int | None, pending: int = 0) -> TenantTotals:
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
            cost=MappingProxyType(dict(self.cost)),
            mos_buckets=tuple(self.mos_buckets),
            mos_sum=self.mos_sum,
            mos_count=self.mos_count,
            pending_calls=pending,
        )


@dataclass(frozen=True)
class CdrSnapshot:
    """One system's CDR state after a round of polling."""

    system: str
    interval: float
    rounds: int
    tenants: tuple[TenantTotals, ...] = ()
    duplicates: int = 0  # rows skipped because their record was already counted
    late_legs: int = 0  # legs that arrived after their call was counted
    zone_shift: int = 0  # seconds our windows are moved by for a PBX ignoring `timezone`
    outside_window: int = 0  # rows dated outside the window they were asked for
    # pbxware.cdr.download requests and failures, merged into pbxware_poll_*_total.
    requests: int = 0
    errors: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    status: ActionStatus | None = None  # the last round, for pbxware_poll_duration_seconds etc.
