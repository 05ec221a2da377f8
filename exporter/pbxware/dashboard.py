"""Typed views of PBXware's health answers: services, registrations, calls, licences,
trunks, archiving and the live monitor (reference §3.6, §3.10, §3.11).

Shapes the reference leaves open are read leniently (numbers or numeric strings, missing
optional keys) and a shape that cannot be read raises PbxwareError(reason="decode").
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .decode import decode_body
from .errors import PbxwareError
from .models import ONLINE_STATES, records, text

SERVICES = "pbxware.dashboard.services"
SIP_REGISTRATIONS = "pbxware.dashboard.sip_registrations"
CALLS = "pbxware.dashboard.calls"
LICENSING = "pbxware.dashboard.licensing"
LICENSE_INFO = "pbxware.license.info"
MONITOR = "pbxware.monitor.list"
LIVE_CALLS = "pbxware.monitor.live_calls"
TRUNKS = "pbxware.trunk.list"
ARCHIVING = "pbxware.archiving.list"

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
_EMPTY_LIVE_CALLS = re.compile(rb"Live Calls:\s*0")


def _number(action: str, value: Any, what: str) -> int:
    try:
        number = int(float(text(value)))
    except ValueError:
        raise PbxwareError(action, "decode", f"{what} is not a number") from None
    if number < 0:
        raise PbxwareError(action, "decode", f"{what} is negative")
    return number


def _object(action: str, data: Any) -> Mapping[str, Any]:
    if not isinstance(data, dict):
        raise PbxwareError(action, "decode", f"expected an object, got {type(data).__name__}")
    return data


def parse_services(data: Any) -> dict[str, bool]:
    """Service name → running; PBXware reports a healthy service as "running"."""
    return {
        text(name): text(status).lower() == "running"
        for name, status in records(SERVICES, data).items()
    }


@dataclass(frozen=True)
class SipRegistrations:
    success: int
    failed: int
    lagged: int


def parse_sip_registrations(data: Any) -> SipRegistrations:
    inner = _object(SIP_REGISTRATIONS, _object(SIP_REGISTRATIONS, data).get("SIP Registrations"))
    counts = {
        k: _number(SIP_REGISTRATIONS, inner.get(k, 0), k) for k in ("success", "failed", "lagged")
    }
    return SipRegistrations(**counts)


@dataclass(frozen=True)
class Calls:
    active: int
    last_hour: int
    today: int
    answered_today: int


def parse_calls(data: Any) -> Calls:
    obj = _object(CALLS, data)
    return Calls(
        active=_number(CALLS, obj.get("now"), "now"),
        last_hour=_number(CALLS, obj.get("last hour", 0), "last hour"),
        today=_number(CALLS, obj.get("today", 0), "today"),
        # Sic: PBXware spells the key "answared calls"; accept the fixed spelling too.
        answered_today=_number(
            CALLS, obj.get("answared calls", obj.get("answered calls", 0)), "answared calls"
        ),
    )


@dataclass(frozen=True)
class LicenseUsage:
    in_use: dict[str, int]
    limit: dict[str, int]


def parse_licensing(data: Any) -> LicenseUsage:
    in_use: dict[str, int] = {}
    limit: dict[str, int] = {}
    for key, resource in _LICENSING_RESOURCES.items():
        entry = _object(LICENSING, data).get(key)
        if entry is None:
            continue
        entry = _object(LICENSING, entry)
        in_use[resource] = _number(LICENSING, entry.get("inuse"), f"{key}.inuse")
        limit[resource] = _number(LICENSING, entry.get("max"), f"{key}.max")
    return LicenseUsage(in_use=in_use, limit=limit)


@dataclass(frozen=True)
class LicenseInfo:
    edition: str
    version: str
    limit: dict[str, int]


def parse_license_info(data: Any) -> LicenseInfo:
    obj = _object(LICENSE_INFO, data)
    limits = {}
    for key, resource in _LICENSE_LIMITS.items():
        if key in obj:
            limits[resource] = _number(LICENSE_INFO, obj[key], key)
    return LicenseInfo(
        edition=text(obj.get("Edition")), version=text(obj.get("Version")), limit=limits
    )


@dataclass(frozen=True)
class Trunk:
    id: str
    name: str
    provider: str
    enabled: bool


def parse_trunks(data: Any) -> tuple[Trunk, ...]:
    trunks = []
    for key, value in records(TRUNKS, data).items():
        entry = _object(TRUNKS, value)
        trunks.append(
            Trunk(
                id=text(key),
                name=text(entry.get("name")),
                provider=text(entry.get("provider_name")),
                enabled=text(entry.get("status")).lower() in ("enabled", "1"),
            )
        )
    return tuple(trunks)


@dataclass(frozen=True)
class MonitorSummary:
    """Per-tenant view of pbxware.monitor.list."""

    by_status: dict[str, int]
    dnd: int
    on_call: int
    online_ids: frozenset[str]


def parse_monitor(data: Any) -> MonitorSummary:
    by_status: Counter[str] = Counter()
    dnd = on_call = 0
    online: set[str] = set()
    for key, value in records(MONITOR, data).items():
        entry = _object(MONITOR, value)
        status = text(entry.get("status")).lower() or "unknown"
        # The status vocabulary is not documented; keep label values bounded.
        by_status[status if status in ("online", "offline") else _bucket(status)] += 1
        if status in ONLINE_STATES:
            online.add(text(key))
        dnd += entry.get("dnd") is True
        on_call += entry.get("on_call") is True
    return MonitorSummary(dict(by_status), dnd, on_call, frozenset(online))


def _bucket(status: str) -> str:
    return "online" if status in ONLINE_STATES else "other"


def parse_live_calls(body: bytes, fmt: str) -> int:
    """Active calls from the raw body: a map of calls, or a text saying "Live Calls: 0"."""
    # With no calls PBXware answers with this text rather than an empty list (reference
    # §3.10); whether bare or JSON-quoted is unknown, so look for the text itself. An empty
    # body is no calls too (PHP printing nothing for an empty list).
    if _EMPTY_LIVE_CALLS.search(body[:200]) or not body.strip():
        return 0
    data = decode_body(LIVE_CALLS, body, fmt)
    return sum(isinstance(call, dict) for call in records(LIVE_CALLS, data).values())


@dataclass(frozen=True)
class ArchivingRun:
    tenant: str
    timestamp: float | None
    status: str  # success | failure | partial | unknown


_RUN_STATUS = {
    "success": "success",
    "failure": "failure",
    "failed": "failure",
    "partial": "partial",
}


def parse_archiving(data: Any) -> tuple[ArchivingRun, ...]:
    """archiving.list is a JSON array; an object keyed by id (what json_encode writes for
    keys that are not 0..n-1) and ``[]``, ``{}``, ``""`` for none are read too."""
    runs = []
    for entry in records(ARCHIVING, data).values():
        entry = _object(ARCHIVING, entry)
        runs.append(
            ArchivingRun(
                tenant=text(entry.get("tenant")),
                timestamp=_timestamp(text(entry.get("date_time"))),
                status=_RUN_STATUS.get(text(entry.get("status")).lower(), "unknown"),
            )
        )
    return tuple(runs)


def _timestamp(value: str) -> float | None:
    """``YYYY-MM-DD HH:MM:SS`` (a GUESS, taken as UTC) or epoch seconds; None if neither."""
    if value.isdigit():
        return float(value)
    try:
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None
