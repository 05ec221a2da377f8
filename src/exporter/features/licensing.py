"""Licences: resources in use and their limits (``pbxware.dashboard.licensing``), the limits
only licence details give, and the edition and version (``pbxware.license.info``)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric

from ..pbxware.fields import field, limit, obj
from ..pbxware.models import text
from ..snapshot import SystemSnapshot
from .base import Feature, Poll, gauge

LICENSING = "pbxware.dashboard.licensing"
LICENSE_INFO = "pbxware.license.info"

# dashboard.licensing keys → our `resource` label values.
_LICENSING_RESOURCES = {
    "ext": "extensions",
    "ivr": "ivrs",
    "queue": "queues",
    "conference": "conferences",
}
# license.info limits that dashboard.licensing does not give.
_LICENSE_LIMITS = {
    "Channels": "channels",
    "DIDs": "dids",
    "Tenants": "tenants",
    "VOIP Trunks": "voip_trunks",
    "PSTN Trunks": "pstn_trunks",
    "Extensions": "extensions",
}


@dataclass(frozen=True)
class LicenseUsage:
    in_use: dict[str, int]
    limit: dict[str, float]  # +Inf: unlimited
    problems: tuple[str, ...] = ()


def parse_usage(data: Any) -> LicenseUsage:
    answer = obj(LICENSING, data)
    in_use: dict[str, int] = {}
    limits: dict[str, float] = {}
    problems: list[str] = []
    for key, resource in _LICENSING_RESOURCES.items():
        entry = answer.get(key)
        if entry is None:
            continue
        if not isinstance(entry, dict):
            problems.append(f"{key} is not an object")
            continue
        used = field(LICENSING, entry.get("inuse"), f"{key}.inuse", problems)
        most = limit(LICENSING, entry.get("max"), f"{key}.max", problems)
        if used is not None:
            in_use[resource] = used
        if most is not None:
            limits[resource] = most
    return LicenseUsage(in_use=in_use, limit=limits, problems=tuple(problems))


@dataclass(frozen=True)
class LicenseInfo:
    edition: str
    version: str
    limit: dict[str, float]  # +Inf: unlimited
    problems: tuple[str, ...] = ()


def parse_info(data: Any) -> LicenseInfo:
    answer = obj(LICENSE_INFO, data)
    limits: dict[str, float] = {}
    problems: list[str] = []
    for key, resource in _LICENSE_LIMITS.items():
        if key in answer:
            value = limit(LICENSE_INFO, answer[key], key, problems)
            if value is not None:
                limits[resource] = value
    return LicenseInfo(
        edition=text(answer.get("Edition")),
        version=text(answer.get("Version")),
        limit=limits,
        problems=tuple(problems),
    )


USAGE: Poll[LicenseUsage] = Poll("licensing", LICENSING, "system", parse_usage)
INFO: Poll[LicenseInfo] = Poll("license_info", LICENSE_INFO, "system", parse_info)


def families(snapshots: Sequence[SystemSnapshot]) -> Iterator[Metric]:
    in_use = gauge(
        "pbxware_license_in_use",
        "Licensed resources in use (pbxware.dashboard.licensing; tenants: the tenant list).",
        ["system", "resource"],
    )
    most = gauge(
        "pbxware_license_limit",
        "Licensed maximum of a resource (pbxware.dashboard.licensing, pbxware.license.info).",
        ["system", "resource"],
    )
    info = gauge(
        "pbxware_system_info",
        "PBXware edition and version from pbxware.license.info; always 1.",
        ["system", "edition", "version"],
    )
    for snap in snapshots:
        _licences(snap, in_use, most, info)
    yield from (in_use, most, info)


def _licences(
    snap: SystemSnapshot,
    in_use: GaugeMetricFamily,
    most: GaugeMetricFamily,
    info: GaugeMetricFamily,
) -> None:
    usage = snap.value(USAGE)
    details = snap.value(INFO)
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
    for resource, top in sorted(limits.items()):
        most.add_metric([snap.system, resource], top)


FEATURE = Feature("licensing", (USAGE, INFO), families)
