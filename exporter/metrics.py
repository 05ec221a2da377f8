"""The Prometheus collector: turns the current snapshots into metric families.

It only reads the SnapshotStore, so a scrape costs CPU but never waits on a PBX.
"""

from __future__ import annotations

import platform
from collections import Counter
from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from . import __version__
from .families import cached_counter, cached_gauge
from .health_metrics import health_metrics
from .pbxware.errors import REASONS
from .pbxware.models import Extension
from .snapshot import SnapshotStore, SystemSnapshot, TenantSnapshot

_gauge, _counter = cached_gauge, cached_counter


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
        yield from _pbx_metrics(snapshots)
        yield from health_metrics(snapshots)
        yield from _exporter_metrics(snapshots)


class DaemonCollector(Collector):
    """The daemon's own live state: build and config reloads (not from a poll)."""

    def __init__(self, store: SnapshotStore) -> None:
        self._store = store

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        yield _build_info()
        yield from _reload_metrics(self._store)


def _pbx_metrics(snapshots: list[SystemSnapshot]) -> Iterator[Metric]:
    up = _gauge(
        "pbxware_up",
        "1 when the last poll of the system's own actions (tenant list, CPU, memory, disk)"
        " succeeded and the system kept answering through the cycle, else 0.",
        ["system"],
    )
    usage = {
        "cpu": _gauge("pbxware_cpu_usage_ratio", "CPU in use on the PBX, 0-1.", ["system"]),
        "memory": _gauge(
            "pbxware_memory_usage_ratio", "Memory in use on the PBX, 0-1.", ["system"]
        ),
        "disk": _gauge(
            "pbxware_disk_usage_ratio", "Disk space in use on the PBX, 0-1.", ["system"]
        ),
    }
    tenants = _gauge(
        "pbxware_tenants",
        "Tenants (servers) being polled: the last tenant list PBXware answered.",
        ["system"],
    )
    tenant_up = _gauge(
        "pbxware_tenant_up",
        "1 when the last poll of the tenant's extension list and online count succeeded; 0"
        " while it fails or its system is not answering.",
        ["system", "tenant"],
    )
    tenant_info = _gauge(
        "pbxware_tenant_info",
        "Tenant name, 3-digit code and package; the tenant label is PBXware's tenant id.",
        ["system", "tenant", "name", "code", "package"],
    )
    extensions = _gauge(
        "pbxware_extensions",
        "Extensions configured on the tenant, by status and protocol (0 for a pair another"
        " tenant of the system has).",
        ["system", "tenant", "status", "protocol"],
    )
    online = _gauge(
        "pbxware_extensions_online",
        "Extensions online (registered) on the tenant, as PBXware's dashboard counts them.",
        ["system", "tenant"],
    )
    for snap in snapshots:
        system = snap.system
        pairs = _extension_pairs(snap)
        up.add_metric([system], 1.0 if snap.up else 0.0)
        for kind, value in (
            ("cpu", snap.cpu_ratio),
            ("memory", snap.memory_ratio),
            ("disk", snap.disk_ratio),
        ):
            if value is not None:
                usage[kind].add_metric([system], value)
        tenants.add_metric([system], len(snap.tenants))
        for ts in snap.tenants:
            tid = ts.tenant.id
            tenant_up.add_metric([system, tid], 1.0 if ts.up else 0.0)
            tenant_info.add_metric(
                [system, tid, ts.tenant.name, ts.tenant.code, ts.tenant.package], 1.0
            )
            if ts.online_count is not None:
                online.add_metric([system, tid], ts.online_count)
            if ts.extensions is None:
                continue
            counts = Counter((e.status, e.protocol) for e in ts.extensions)
            # Zero is a value: every tenant has the same pairs, so sum by (tenant) keeps one
            # with no extensions instead of dropping it.
            for status, protocol in pairs:
                extensions.add_metric([system, tid, status, protocol], counts[(status, protocol)])
    yield up
    yield from usage.values()
    yield from (tenants, tenant_up, tenant_info, extensions, online)
    yield from _extension_metrics(snapshots)


# The pair a tenant with no extensions is shown with when no tenant of its system has any:
# enabled SIP extensions, PBXware's default kind.
_DEFAULT_PAIR = ("enabled", "sip")


def _extension_pairs(snap: SystemSnapshot) -> list[tuple[str, str]]:
    """The (status, protocol) pairs of pbxware_extensions every tenant of ``snap`` gets."""
    pairs = {(e.status, e.protocol) for ts in snap.tenants for e in ts.extensions or ()}
    return sorted(pairs or {_DEFAULT_PAIR})


def _capped(snap: SystemSnapshot) -> tuple[list[tuple[TenantSnapshot, Extension]], int]:
    """The extensions that get per-extension series, and how many the limit left out."""
    chosen: list[tuple[TenantSnapshot, Extension]] = []
    total = 0
    for ts in snap.tenants:
        for ext in ts.extensions or ():
            total += 1
            if len(chosen) < snap.extension_metrics_limit:
                chosen.append((ts, ext))
    return chosen, total - len(chosen)


# Samples per part of a per-extension family. The renderer encodes one part at a time and
# joins the parts into one family (exporter/web/exposition.py), so at most this many samples
# exist as objects at once instead of 100,000.
PART_SIZE = 5_000


def _parts(
    make: Callable[[], GaugeMetricFamily],
    rows: Iterable[tuple[list[str], float]],
) -> Iterator[Metric]:
    """One family as consecutive parts of at most PART_SIZE samples, each built only when
    the renderer asks for it; an empty family is still yielded once (HELP and TYPE)."""
    part, yielded = make(), False
    for labels, value in rows:
        part.add_metric(labels, value)
        if len(part.samples) >= PART_SIZE:
            yield part
            part, yielded = make(), True
    if part.samples or not yielded:
        yield part


def _extension_metrics(snapshots: list[SystemSnapshot]) -> Iterator[Metric]:
    """The opt-in per-extension families, built part by part while the renderer reads them."""
    opted = [(snap, *_capped(snap)) for snap in snapshots if snap.extension_metrics]
    yield from _parts(
        lambda: _gauge(
            "pbxware_extension_info",
            "Extension id, name, protocol and status (per-extension series, opt-in).",
            ["system", "tenant", "extension", "extension_id", "name", "protocol", "status"],
        ),
        (
            (
                [
                    snap.system,
                    ts.tenant.id,
                    ext.number or ext.id,
                    ext.id,
                    ext.name,
                    ext.protocol,
                    ext.status,
                ],
                1.0,
            )
            for snap, chosen, _ in opted
            for ts, ext in chosen
        ),
    )
    yield from _parts(
        lambda: _gauge(
            "pbxware_extension_online",
            "1 when the extension is online (per-extension series, opt-in).",
            ["system", "tenant", "extension"],
        ),
        (
            (
                [snap.system, ts.tenant.id, ext.number or ext.id],
                1.0 if ext.id in ts.online_ids else 0.0,
            )
            for snap, chosen, _ in opted
            for ts, ext in chosen
            if ts.online_ids is not None
        ),
    )
    dropped = _gauge(
        "pbxware_extension_series_dropped",
        "Extensions left out of the per-extension series by extension_metrics_limit.",
        ["system"],
    )
    for snap, _, left_out in opted:
        dropped.add_metric([snap.system], left_out)
    yield dropped


def _exporter_metrics(snapshots: list[SystemSnapshot]) -> Iterator[Metric]:
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
        for action, count in sorted(snap.warnings.items()):
            warnings.add_metric([snap.system, action], count)
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
