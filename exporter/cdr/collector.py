"""The CDR metric families, read from the CdrSnapshots in the store (never from a PBX).

Counter values only grow while the exporter runs: every record is counted once, on the
round that first fetched it. They start at 0 when the exporter (or the system, on a config
reload that changes it) starts.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from ..families import cached_counter, cached_gauge
from .counters import CdrSnapshot
from .records import DIRECTIONS, DISPOSITIONS
from .store import CdrAwareStore

_CACHED = " Cached: polled every interval (cdr.interval), not at scrape time."
_counter = functools.partial(cached_counter, note=_CACHED)
_gauge = functools.partial(cached_gauge, note=_CACHED)


class CdrCollector(Collector):
    def __init__(self, store: CdrAwareStore, only: str | None = None) -> None:
        self._store = store
        self._only = only  # one system's series (/probe)

    def describe(self) -> list[Metric]:
        return []  # the registry must not call collect() at registration time

    def collect(self) -> Iterator[Metric]:
        snapshots = sorted(self._store.cdr_all(), key=lambda s: s.system)
        if self._only is not None:
            snapshots = [s for s in snapshots if s.system == self._only]
        yield from cdr_metrics(snapshots)


def cdr_metrics(snapshots: list[CdrSnapshot]) -> Iterator[Metric]:
    tenant = ["system", "tenant"]
    calls = _counter(
        "pbxware_cdr_calls",
        "Call records (CDRs) by direction (inbound, outbound, internal, unknown) and"
        " disposition (answered, no_answer, busy, failed, unknown).",
        ["system", "tenant", "direction", "disposition"],
    )
    duration = _counter(
        "pbxware_cdr_call_duration_seconds",
        "Total Duration of answered calls, by direction (ACD: divide by answered calls).",
        ["system", "tenant", "direction"],
    )
    billable = _counter(
        "pbxware_cdr_billable_seconds",
        "Rating Duration of answered calls, by direction (0 when PBXware sends no Rating"
        " Duration column).",
        ["system", "tenant", "direction"],
    )
    records = _counter("pbxware_cdr_records", "CDRs counted, each once.", tenant)
    recordings = _counter("pbxware_cdr_recordings", "CDRs that carry a recording path.", tenant)
    rejected = _counter(
        "pbxware_cdr_rows_rejected",
        "CDR rows that could not be read (bad cells, wrong cell count) and were skipped.",
        tenant,
    )
    duplicates = _counter(
        "pbxware_cdr_duplicate_rows",
        "CDR rows skipped because their record was already counted (the window overlap).",
        ["system"],
    )
    outside = _counter(
        "pbxware_cdr_rows_outside_window",
        "CDR rows dated outside the window they were requested for, not counted (a"
        " cdr.timezone that differs from the PBX's would show here).",
        ["system"],
    )
    last = _gauge(
        "pbxware_cdr_last_record_timestamp_seconds",
        "Date/Time (Unix time) of the newest CDR counted.",
        tenant,
    )
    polled_until = _gauge(
        "pbxware_cdr_polled_until_timestamp_seconds",
        "Every CDR dated up to this Unix time has been fetched (it stops moving while CDR"
        " requests fail).",
        tenant,
    )
    interval = _gauge(
        "pbxware_cdr_poll_interval_seconds", "Configured CDR poll interval.", ["system"]
    )
    for snap in snapshots:
        system = snap.system
        interval.add_metric([system], snap.interval)
        duplicates.add_metric([system], snap.duplicates)
        outside.add_metric([system], snap.outside_window)
        for t in snap.tenants:
            labels = [system, t.tenant]
            for direction in DIRECTIONS:
                for disposition in DISPOSITIONS:
                    calls.add_metric(
                        [*labels, direction, disposition], t.calls[(direction, disposition)]
                    )
                duration.add_metric([*labels, direction], t.duration[direction])
                billable.add_metric([*labels, direction], t.billable[direction])
            records.add_metric(labels, t.records)
            recordings.add_metric(labels, t.recordings)
            rejected.add_metric(labels, t.rejected)
            if t.last_record is not None:
                last.add_metric(labels, t.last_record)
            if t.polled_until is not None:
                polled_until.add_metric(labels, t.polled_until)
    yield from (
        calls,
        duration,
        billable,
        records,
        recordings,
        rejected,
        duplicates,
        outside,
        last,
        polled_until,
        interval,
    )
