"""The core of every system: CPU, memory and disk, and per tenant the extension list and the
online count. These decide ``pbxware_up`` and ``pbxware_tenant_up`` and are always polled;
this feature also emits the status families (up, tenants, tenant info) and the opt-in
per-extension series (which need the monitor feature's online ids)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from typing import Any

from prometheus_client.core import Metric

from ..families import Row, RowGaugeFamily
from ..pbxware.models import Extension, parse_count, parse_extensions, parse_usage_ratio
from ..snapshot import SystemSnapshot, TenantSnapshot
from .base import Feature, Poll, gauge, row_gauge
from .monitor import MONITOR

EXT_ONLINE = "pbxware.dashboard.ext_online"


def _usage(action: str) -> Callable[[Any], float]:
    return lambda data: parse_usage_ratio(action, data)


CPU: Poll[float] = Poll(
    "cpu", "pbxware.dashboard.cpu", "system", _usage("pbxware.dashboard.cpu"), core=True
)
MEMORY: Poll[float] = Poll(
    "memory", "pbxware.dashboard.memory", "system", _usage("pbxware.dashboard.memory"), core=True
)
DISK: Poll[float] = Poll(
    "disk",
    "pbxware.dashboard.disk_usage",
    "system",
    _usage("pbxware.dashboard.disk_usage"),
    core=True,
)
# The largest answer and the one that changes least: every extension_list_interval
# (default 10 × interval); the online state comes from ext_online and monitor.list.
EXTENSIONS: Poll[tuple[Extension, ...]] = Poll(
    "extensions",
    "pbxware.ext.list",
    "tenant",
    parse_extensions,
    core=True,
    every=lambda system: (
        None if system.extension_list_every <= system.interval else system.extension_list_every
    ),
)
ONLINE: Poll[int] = Poll(
    "online", EXT_ONLINE, "tenant", lambda d: parse_count(EXT_ONLINE, d), core=True
)


def _online_ids(ts: TenantSnapshot) -> frozenset[str] | None:
    monitor = ts.value(MONITOR)
    return None if monitor is None else monitor.online_ids


def families(snapshots: Sequence[SystemSnapshot]) -> Iterator[Metric]:
    up = gauge(
        "pbxware_up",
        "1 when the last poll of the system's own actions (tenant list, CPU, memory, disk)"
        " succeeded and the system kept answering through the cycle, else 0.",
        ["system"],
    )
    usage = {
        "cpu": gauge("pbxware_cpu_usage_ratio", "CPU in use on the PBX, 0-1.", ["system"]),
        "memory": gauge("pbxware_memory_usage_ratio", "Memory in use on the PBX, 0-1.", ["system"]),
        "disk": gauge("pbxware_disk_usage_ratio", "Disk space in use on the PBX, 0-1.", ["system"]),
    }
    tenants = gauge(
        "pbxware_tenants",
        "Tenants (servers) being polled: the last tenant list PBXware answered.",
        ["system"],
    )
    tenant_up = gauge(
        "pbxware_tenant_up",
        "1 when the last poll of the tenant's extension list and online count succeeded; 0"
        " while it fails or its system is not answering.",
        ["system", "tenant"],
    )
    tenant_info = gauge(
        "pbxware_tenant_info",
        "Tenant name, 3-digit code and package; the tenant label is PBXware's tenant id.",
        ["system", "tenant", "name", "code", "package"],
    )
    extensions = gauge(
        "pbxware_extensions",
        "Extensions configured on the tenant, by status and protocol (0 for a pair another"
        " tenant of the system has).",
        ["system", "tenant", "status", "protocol"],
    )
    online = gauge(
        "pbxware_extensions_online",
        "Extensions online (registered) on the tenant, as PBXware's dashboard counts them.",
        ["system", "tenant"],
    )
    for snap in snapshots:
        system = snap.system
        # One pass over each tenant's extensions: the counts, and from them the pairs.
        counted = {
            ts.tenant.id: Counter((e.status, e.protocol) for e in listed)
            for ts in snap.tenants
            if (listed := ts.value(EXTENSIONS)) is not None
        }
        pairs = _extension_pairs(counted.values())
        up.add_metric([system], 1.0 if snap.up else 0.0)
        for kind, poll in (("cpu", CPU), ("memory", MEMORY), ("disk", DISK)):
            ratio = snap.value(poll)
            if ratio is not None:
                usage[kind].add_metric([system], ratio)
        tenants.add_metric([system], len(snap.tenants))
        for ts in snap.tenants:
            tid = ts.tenant.id
            tenant_up.add_metric([system, tid], 1.0 if ts.up else 0.0)
            tenant_info.add_metric(
                [system, tid, ts.tenant.name, ts.tenant.code, ts.tenant.package], 1.0
            )
            online_count = ts.value(ONLINE)
            if online_count is not None:
                online.add_metric([system, tid], online_count)
            counts = counted.get(tid)
            if counts is None:
                continue
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


def _extension_pairs(counts: Iterable[Counter[tuple[str, str]]]) -> list[tuple[str, str]]:
    """The (status, protocol) pairs of pbxware_extensions every tenant of a system gets:
    those any of its tenants has."""
    pairs = {pair for tenant in counts for pair in tenant}
    return sorted(pairs or {_DEFAULT_PAIR})


def _capped(snap: SystemSnapshot) -> tuple[list[tuple[TenantSnapshot, Sequence[Extension]]], int]:
    """The extensions that get per-extension series, tenant by tenant, and how many the
    limit left out."""
    chosen: list[tuple[TenantSnapshot, Sequence[Extension]]] = []
    room, total = snap.extension_metrics_limit, 0
    for ts in snap.tenants:
        listed = ts.value(EXTENSIONS) or ()
        total += len(listed)
        if room > 0 and listed:
            chosen.append((ts, listed[:room] if len(listed) > room else listed))
            room -= len(chosen[-1][1])
    return chosen, total - (snap.extension_metrics_limit - room)


# Series per part of a per-extension family. The renderer encodes one part at a time and
# joins the parts into one family (exporter/web/exposition.py), so at most this many rows
# exist as objects at once instead of 100,000.
PART_SIZE = 5_000


def _parts(make: Callable[[list[Row]], RowGaugeFamily], rows: Iterable[Row]) -> Iterator[Metric]:
    """One family as consecutive parts of at most PART_SIZE rows, each built only when the
    renderer asks for it; an empty family is still yielded once (HELP and TYPE)."""
    rows, first = iter(rows), True
    while True:
        part = list(islice(rows, PART_SIZE))
        if part or first:
            yield make(part)
        if len(part) < PART_SIZE:
            return
        first = False


def _extension_metrics(snapshots: Sequence[SystemSnapshot]) -> Iterator[Metric]:
    """The opt-in per-extension families, built part by part while the renderer reads them:
    row families (exporter/families.py), a tuple of label values per series."""
    opted = [(snap, *_capped(snap)) for snap in snapshots if snap.extension_metrics]
    yield from _parts(
        lambda rows: row_gauge(
            "pbxware_extension_info",
            "Extension id, name, protocol and status (per-extension series, opt-in).",
            ["system", "tenant", "extension", "extension_id", "name", "protocol", "status"],
            rows,
        ),
        (
            ((system, tid, ext.number or ext.id, ext.id, ext.name, ext.protocol, ext.status), 1.0)
            for snap, chosen, _ in opted
            for system in (snap.system,)
            for ts, exts in chosen
            for tid in (ts.tenant.id,)
            for ext in exts
        ),
    )
    yield from _parts(
        lambda rows: row_gauge(
            "pbxware_extension_online",
            "1 when the extension is online (per-extension series, opt-in).",
            ["system", "tenant", "extension"],
            rows,
        ),
        (
            ((system, tid, ext.number or ext.id), 1.0 if ext.id in online else 0.0)
            for snap, chosen, _ in opted
            for system in (snap.system,)
            for ts, exts in chosen
            if (online := _online_ids(ts)) is not None
            for tid in (ts.tenant.id,)
            for ext in exts
        ),
    )
    dropped = gauge(
        "pbxware_extension_series_dropped",
        "Extensions left out of the per-extension series by extension_metrics_limit.",
        ["system"],
    )
    for snap, _, left_out in opted:
        dropped.add_metric([snap.system], left_out)
    yield dropped


FEATURE = Feature("core", (CPU, MEMORY, DISK, EXTENSIONS, ONLINE), families, core=True)
