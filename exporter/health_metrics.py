"""Metric families of the optional health collectors (services, registrations, calls,
licences, trunks, archiving, the live monitor), read from snapshots only."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from .families import cached_counter, cached_gauge
from .pbxware.dashboard import Calls, LicenseInfo, LicenseUsage, MonitorSummary, SipRegistrations
from .snapshot import SystemSnapshot

_gauge = cached_gauge


def health_metrics(snapshots: list[SystemSnapshot]) -> Iterator[Metric]:
    service_up = _gauge(
        "pbxware_service_up",
        "1 when pbxware.dashboard.services reports the PBX service as running.",
        ["system", "service"],
    )
    in_use = _gauge(
        "pbxware_license_in_use",
        "Licensed resources in use (pbxware.dashboard.licensing; tenants: the tenant list).",
        ["system", "resource"],
    )
    limit = _gauge(
        "pbxware_license_limit",
        "Licensed maximum of a resource (pbxware.dashboard.licensing, pbxware.license.info).",
        ["system", "resource"],
    )
    info = _gauge(
        "pbxware_system_info",
        "PBXware edition and version from pbxware.license.info; always 1.",
        ["system", "edition", "version"],
    )
    trunk = _gauge(
        "pbxware_trunk_enabled",
        "1 when the trunk is enabled in pbxware.trunk.list (not whether it is registered).",
        ["system", "trunk", "name", "provider"],
    )
    runs = cached_counter(
        "pbxware_archiving_runs",
        "Archiving runs seen in pbxware.archiving.list, by tenant code and status"
        " (success, failure, partial, unknown).",
        ["system", "tenant", "status"],
    )
    last_ok = _gauge(
        "pbxware_archiving_last_run_success",
        "1 when the tenant's latest archiving run succeeded, else 0 (tenant: the tenant code).",
        ["system", "tenant"],
    )
    last_time = _gauge(
        "pbxware_archiving_last_run_timestamp_seconds",
        "Unix time of the tenant's latest archiving run (tenant: the tenant code).",
        ["system", "tenant"],
    )
    sip = _gauge(
        "pbxware_sip_registrations",
        "SIP registrations of the tenant by state (success, failed, lagged).",
        ["system", "tenant", "state"],
    )
    calls = {
        "active": _gauge(
            "pbxware_calls_active",
            "Calls in progress (dashboard.calls `now`).",
            ["system", "tenant"],
        ),
        "last_hour": _gauge(
            "pbxware_calls_last_hour",
            "Calls in the last hour, as PBXware counts them (dashboard.calls).",
            ["system", "tenant"],
        ),
        "today": _gauge(
            "pbxware_calls_today",
            "Calls since midnight PBX time (dashboard.calls); resets daily.",
            ["system", "tenant"],
        ),
        "answered_today": _gauge(
            "pbxware_calls_answered_today",
            "Answered calls since midnight PBX time (dashboard.calls `answared calls`).",
            ["system", "tenant"],
        ),
    }
    live = _gauge(
        "pbxware_live_calls",
        "Live calls of the tenant in pbxware.monitor.live_calls.",
        ["system", "tenant"],
    )
    monitor = _gauge(
        "pbxware_monitor_extensions",
        "Extensions in pbxware.monitor.list by live status (online, offline, other).",
        ["system", "tenant", "status"],
    )
    dnd = _gauge(
        "pbxware_extensions_dnd", "Extensions with Do Not Disturb on.", ["system", "tenant"]
    )
    on_call = _gauge(
        "pbxware_extensions_on_call", "Extensions on a call right now.", ["system", "tenant"]
    )

    for snap in snapshots:
        system = snap.system
        values = snap.values
        for service, running in sorted(values.get("services", {}).items()):
            service_up.add_metric([system, service], 1.0 if running else 0.0)
        _licences(snap, in_use, limit, info)
        for t in values.get("trunks", ()):
            trunk.add_metric([system, t.id, t.name, t.provider], 1.0 if t.enabled else 0.0)
        if snap.archiving is not None:
            for (tenant, status), n in sorted(snap.archiving.runs.items()):
                runs.add_metric([system, tenant, status], n)
            for tenant, run in sorted(snap.archiving.last.items()):
                last_ok.add_metric([system, tenant], 1.0 if run.status == "success" else 0.0)
                if run.timestamp is not None:
                    last_time.add_metric([system, tenant], run.timestamp)
        for ts in snap.tenants:
            labels = [system, ts.tenant.id]
            reg: SipRegistrations | None = ts.values.get("sip_registrations")
            if reg is not None:
                for state in ("success", "failed", "lagged"):
                    sip.add_metric([*labels, state], getattr(reg, state))
            counts: Calls | None = ts.values.get("calls")
            if counts is not None:
                for field, family in calls.items():
                    family.add_metric(labels, getattr(counts, field))
            if "live_calls" in ts.values:
                live.add_metric(labels, ts.values["live_calls"])
            mon: MonitorSummary | None = ts.values.get("monitor")
            if mon is not None:
                # Zero is a value: every status of the bounded set, so that sum by (tenant)
                # keeps a tenant with no extensions.
                for status in sorted({"online", "offline", "other", *mon.by_status}):
                    monitor.add_metric([*labels, status], mon.by_status.get(status, 0))
                dnd.add_metric(labels, mon.dnd)
                on_call.add_metric(labels, mon.on_call)
    yield from (service_up, in_use, limit, info, trunk, runs, last_ok, last_time, sip)
    yield from calls.values()
    yield from (live, monitor, dnd, on_call)


def _licences(
    snap: SystemSnapshot,
    in_use: GaugeMetricFamily,
    limit: GaugeMetricFamily,
    info: GaugeMetricFamily,
) -> None:
    usage: LicenseUsage | None = snap.values.get("licensing")
    details: LicenseInfo | None = snap.values.get("license_info")
    used = dict(usage.in_use) if usage else {}
    limits = dict(details.limit) if details else {}
    # dashboard.licensing is the live view; it wins where both name a resource.
    limits.update(usage.limit if usage else {})
    if details is not None:
        info.add_metric([snap.system, details.edition, details.version], 1.0)
        if snap.discovered_tenants and "tenants" in limits:
            used.setdefault("tenants", len(snap.tenants))
    for resource, n in sorted(used.items()):
        in_use.add_metric([snap.system, resource], n)
    for resource, n in sorted(limits.items()):
        limit.add_metric([snap.system, resource], n)
