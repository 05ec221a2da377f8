"""The Prometheus collectors: every feature's families from the current snapshots, then the
poller's own (requests, errors, durations) and the daemon's live state.

They only read the SnapshotStore, so a scrape costs CPU but never waits on a PBX.
"""

from __future__ import annotations

import platform
from collections.abc import Iterator, Sequence

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from . import __version__, features
from .families import cached_counter as _counter
from .families import cached_gauge as _gauge
from .pbxware.errors import REASONS
from .snapshot import SnapshotStore, SystemSnapshot


class SnapshotCollector(Collector):
    def __init__(self, store: SnapshotStore, only: str | None = None) -> None:
        self._store = store
        self._only = only  # one system's series (/probe)

    def describe(self) -> list[Metric]:
        # Empty: the registry must not call collect() at registration time.
        return []

    def collect(self) -> Iterator[Metric]:
        snapshots = sorted(self._store.all(), key=lambda s: s.system)
        if self._only is not None:
            snapshots = [s for s in snapshots if s.system == self._only]
        return families(snapshots)


def families(snapshots: Sequence[SystemSnapshot]) -> Iterator[Metric]:
    """Every family of these snapshots, each yielded whatever they hold (empty when no
    snapshot has samples of it): /metrics renders one system at a time and joins the
    systems family by family (exporter/web/exposition.py)."""
    # The cycle's features, the poller's own families, then the features polled on a
    # schedule of their own (CDRs): the order /metrics has always had.
    for feature in features.FEATURES:
        if feature.polls:
            yield from feature.families(snapshots)
    yield from _exporter_metrics(snapshots)
    for feature in features.FEATURES:
        if not feature.polls:
            yield from feature.families(snapshots)


class DaemonCollector(Collector):
    """The daemon's own live state: build and config reloads (not from a poll)."""

    def __init__(self, store: SnapshotStore) -> None:
        self._store = store

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        yield _build_info()
        yield from _reload_metrics(self._store)


def _exporter_metrics(snapshots: Sequence[SystemSnapshot]) -> Iterator[Metric]:
    interval = _gauge("pbxware_poll_interval_seconds", "Configured poll interval.", ["system"])
    duration = _gauge(
        "pbxware_poll_duration_seconds",
        "Wall time of the action in the last poll cycle (per-tenant actions: the slowest tenant).",
        ["system", "action"],
    )
    cycle = _gauge(
        "pbxware_poll_cycle_duration_seconds",
        "Wall time of the last whole poll cycle of the system.",
        ["system"],
    )
    success = _gauge(
        "pbxware_last_poll_success_timestamp_seconds",
        "Unix time of the end of the last cycle in which every request of the action succeeded.",
        ["system", "action"],
    )
    requests = _counter(
        "pbxware_poll_requests",
        "Requests the exporter sent to the PBXware API.",
        ["system", "action"],
    )
    errors = _counter(
        "pbxware_poll_errors",
        "Failed PBXware API requests, by reason: timeout, connect, http, auth, api_error, decode.",
        ["system", "action", "reason"],
    )
    for snap in snapshots:
        interval.add_metric([snap.system], snap.interval)
        if snap.cycle_duration is not None:
            cycle.add_metric([snap.system], snap.cycle_duration)
        for status in snap.actions:
            duration.add_metric([snap.system, status.action], status.duration)
            if status.last_success is not None:
                success.add_metric([snap.system, status.action], status.last_success)
        for action, count in sorted(snap.requests.items()):
            requests.add_metric([snap.system, action], count)
            # Zero series for every reason, so that rate() and alerts see the first error.
            for reason in REASONS:
                errors.add_metric(
                    [snap.system, action, reason], snap.errors.get((action, reason), 0)
                )
    aborted = _counter(
        "pbxware_poll_cycles_aborted",
        "Poll cycles ended early: the system stopped answering (reason: the failure that"
        " tripped the circuit breaker: timeout, connect, http, auth, decode) or the cycle"
        " reached its deadline of one interval (deadline).",
        ["system", "reason"],
    )
    warnings = _counter(
        "pbxware_response_warnings",
        "PBXware answers that began with PHP diagnostics (Notice:, Warning:, Deprecated:);"
        " the body after them was used.",
        ["system", "action"],
    )
    for snap in snapshots:
        for why, count in snap.aborted.items():
            aborted.add_metric([snap.system, why], count)
        # Zero series for every action asked, like the errors: rate() sees the first one.
        for action in sorted(snap.requests.keys() | snap.warnings.keys()):
            warnings.add_metric([snap.system, action], snap.warnings.get(action, 0))
    yield from (interval, duration, cycle, success, requests, errors, aborted, warnings)


def _build_info() -> Metric:
    build = GaugeMetricFamily(
        "pbxware_exporter_build_info",
        "Version of pbxware-exporter and of the Python running it; always 1.",
        labels=["version", "python_version"],
    )
    build.add_metric([__version__, platform.python_version()], 1.0)
    return build


def _reload_metrics(store: SnapshotStore) -> Iterator[Metric]:
    ok = GaugeMetricFamily(
        "pbxware_exporter_config_last_reload_successful",
        "1 when the last config reload (SIGHUP or POST /-/reload) succeeded; on failure the"
        " previous config keeps running.",
    )
    ok.add_metric([], 1.0 if store.reload_ok else 0.0)
    yield ok
    if store.reload_success_at is not None:
        at = GaugeMetricFamily(
            "pbxware_exporter_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful config load or reload.",
        )
        at.add_metric([], store.reload_success_at)
        yield at
