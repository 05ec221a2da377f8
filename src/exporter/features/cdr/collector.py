"""The CDR metric families, read from the CdrSnapshots in the system snapshots (never from a
PBX).

Counter values only grow while the exporter runs: every row is counted once, on the round
that first fetched it, and every call once, when its legs can no longer change
(exporter/features/cdr/calls.py). They start at 0 when the exporter (or the system, on a config
reload that changes it) starts.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence

from prometheus_client.core import HistogramMetricFamily, Metric

from ...families import cached_counter, cached_gauge
from .counters import MOS_BUCKETS, CdrSnapshot
from .records import DIRECTIONS, DISPOSITIONS

_CACHED = " Cached: polled every interval (cdr.interval), not at scrape time."
_counter = functools.partial(cached_counter, note=_CACHED)
_gauge = functools.partial(cached_gauge, note=_CACHED)


def cdr_metrics(snapshots: Sequence[CdrSnapshot]) -> Iterator[Metric]:
    tenant = ["system", "tenant"]
    calls = _counter(
        "pbxware_cdr_calls",
        "Calls (the legs of one Unique ID are one call) by direction (inbound, outbound,"
        " internal, unknown) and disposition (answered if any leg was, else the best of"
        " no_answer, busy, failed, unknown). Counted once the overlap has passed the call's"
        " start.",
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
    cost = _counter(
        "pbxware_cdr_cost",
        "Rating Cost of calls (the sum over their legs), by direction, in the PBX's own currency.",
        ["system", "tenant", "direction"],
    )
    mos = HistogramMetricFamily(
        "pbxware_cdr_call_mos",
        "MOS (1-5) of answered calls whose answered leg carries one." + _CACHED,
        labels=tenant,
    )
    records = _counter("pbxware_cdr_records", "CDR rows (call legs) counted, each once.", tenant)
    recordings = _counter(
        "pbxware_cdr_recordings",
        "CDR rows with a recording (Recording Available, else a Recording Path).",
        tenant,
    )
    pending = _gauge(
        "pbxware_cdr_pending_calls",
        "Calls fetched but not yet counted: held back until their legs can no longer change"
        " (cdr.overlap after their start).",
        tenant,
    )
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
    late = _counter(
        "pbxware_cdr_late_legs",
        "CDR rows that arrived after their call was counted (written later than cdr.overlap"
        " after the call started): counted as rows, not as calls; raise cdr.overlap.",
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
    zone = _gauge(
        "pbxware_cdr_timezone_shift_seconds",
        "How far CDR request windows are moved because the PBX evidently ignores the"
        " timezone argument and reads them in its own zone (0: it honours it).",
        ["system"],
    )
    interval = _gauge(
        "pbxware_cdr_poll_interval_seconds", "Configured CDR poll interval.", ["system"]
    )
    for snap in snapshots:
        system = snap.system
        interval.add_metric([system], snap.interval)
        duplicates.add_metric([system], snap.duplicates)
        late.add_metric([system], snap.late_legs)
        zone.add_metric([system], snap.zone_shift)
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
                cost.add_metric([*labels, direction], t.cost.get(direction, 0.0))
            cumulative, buckets = 0, []
            for bound, count in zip(
                MOS_BUCKETS, t.mos_buckets or [0] * len(MOS_BUCKETS), strict=True
            ):
                cumulative += count
                buckets.append((str(bound), cumulative))
            buckets.append(("+Inf", t.mos_count))
            mos.add_metric(labels, buckets, sum_value=t.mos_sum)
            pending.add_metric(labels, t.pending_calls)
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
        cost,
        mos,
        records,
        recordings,
        pending,
        rejected,
        duplicates,
        late,
        outside,
        last,
        polled_until,
        zone,
        interval,
    )
