"""Typed views of PBXware's health answers: services, registrations, calls, licences,
trunks, archiving and the live monitor (reference §3.6, §3.10, §3.11).

Shapes the reference leaves open are read leniently (numbers or numeric strings, missing
optional keys) and a shape that cannot be read raises PbxwareError(reason="decode").

Field by field, not all or nothing (issue 16 §6): an answer whose overall shape is right but
one field (or one entry of a list) cannot be read keeps the others; the bad ones are left
out and named in the result's ``problems`` (``problems_of()``), for the core poller to count
as one ``decode`` error of the action (exporter/poller.py, where that count belongs, does not
read them yet). A limit written as a word meaning "no limit"
(``Unlimited``) is ``+Inf``, not a problem: a ratio against it is 0.
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
_UNLIMITED = frozenset({"unlimited", "infinite", "inf", "∞", "no limit"})


class Entries(tuple):  # type: ignore[type-arg]
    """The readable entries of a list answer, with the problems of those left out."""

    problems: tuple[str, ...] = ()

    @classmethod
    def of(cls, items: list[Any], problems: list[str]) -> Entries:
        made = cls(items)
        made.problems = tuple(problems)
        return made


def problems_of(value: Any) -> tuple[str, ...]:
    """What a parsed answer left out (empty when every field was read)."""
    return tuple(getattr(value, "problems", ()))


def _field(action: str, value: Any, what: str, problems: list[str]) -> int | None:
    """One number of an answer; None (and a problem noted) when it cannot be read."""
    try:
        return _number(action, value, what)
    except PbxwareError:
        problems.append(f"{what} is not a number")
        return None


def _limit(action: str, value: Any, what: str, problems: list[str]) -> float | None:
    if text(value).lower() in _UNLIMITED:
        return float("inf")
    return _field(action, value, what, problems)


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
    success: int | None  # None: the field could not be read (no series)
    failed: int | None
    lagged: int | None
    problems: tuple[str, ...] = ()


def parse_sip_registrations(data: Any) -> SipRegistrations:
    inner = _object(SIP_REGISTRATIONS, _object(SIP_REGISTRATIONS, data).get("SIP Registrations"))
    problems: list[str] = []
    counts = {
        k: _field(SIP_REGISTRATIONS, inner.get(k, 0), k, problems)
        for k in ("success", "failed", "lagged")
    }
    return SipRegistrations(**counts, problems=tuple(problems))


@dataclass(frozen=True)
class Calls:
    active: int | None  # None: the field could not be read (no series)
    last_hour: int | None
    today: int | None
    answered_today: int | None
    problems: tuple[str, ...] = ()


def parse_calls(data: Any) -> Calls:
    obj = _object(CALLS, data)
    if "now" not in obj:
        raise PbxwareError(CALLS, "decode", "no 'now' in the answer")
    problems: list[str] = []
    return Calls(
        active=_field(CALLS, obj.get("now"), "now", problems),
        last_hour=_field(CALLS, obj.get("last hour", 0), "last hour", problems),
        today=_field(CALLS, obj.get("today", 0), "today", problems),
        # Sic: PBXware spells the key "answared calls"; accept the fixed spelling too.
        answered_today=_field(
            CALLS,
            obj.get("answared calls", obj.get("answered calls", 0)),
            "answared calls",
            problems,
        ),
        problems=tuple(problems),
    )


@dataclass(frozen=True)
class LicenseUsage:
    in_use: dict[str, int]
    limit: dict[str, float]  # +Inf: unlimited
    problems: tuple[str, ...] = ()


def parse_licensing(data: Any) -> LicenseUsage:
    obj = _object(LICENSING, data)
    in_use: dict[str, int] = {}
    limit: dict[str, float] = {}
    problems: list[str] = []
    for key, resource in _LICENSING_RESOURCES.items():
        entry = obj.get(key)
        if entry is None:
            continue
        if not isinstance(entry, dict):
            problems.append(f"{key} is not an object")
            continue
        used = _field(LICENSING, entry.get("inuse"), f"{key}.inuse", problems)
        most = _limit(LICENSING, entry.get("max"), f"{key}.max", problems)
        if used is not None:
            in_use[resource] = used
        if most is not None:
            limit[resource] = most
    return LicenseUsage(in_use=in_use, limit=limit, problems=tuple(problems))


@dataclass(frozen=True)
class LicenseInfo:
    edition: str
    version: str
    limit: dict[str, float]  # +Inf: unlimited
    problems: tuple[str, ...] = ()


def parse_license_info(data: Any) -> LicenseInfo:
    obj = _object(LICENSE_INFO, data)
    limits: dict[str, float] = {}
    problems: list[str] = []
    for key, resource in _LICENSE_LIMITS.items():
        if key in obj:
            value = _limit(LICENSE_INFO, obj[key], key, problems)
            if value is not None:
                limits[resource] = value
    return LicenseInfo(
        edition=text(obj.get("Edition")),
        version=text(obj.get("Version")),
        limit=limits,
        problems=tuple(problems),
    )


@dataclass(frozen=True)
class Trunk:
    id: str
    name: str
    provider: str
    enabled: bool


def parse_trunks(data: Any) -> Entries:
    trunks: list[Trunk] = []
    problems: list[str] = []
    for key, entry in records(TRUNKS, data).items():
        if not isinstance(entry, dict):
            problems.append(f"trunk {text(key)[:20]!r} is not an object")
            continue
        trunks.append(
            Trunk(
                id=text(key),
                name=text(entry.get("name")),
                provider=text(entry.get("provider_name")),
                enabled=text(entry.get("status")).lower() in ("enabled", "1"),
            )
        )
    return Entries.of(trunks, problems)


@dataclass(frozen=True)
class MonitorSummary:
    """Per-tenant view of pbxware.monitor.list."""

    by_status: dict[str, int]
    dnd: int
    on_call: int
    online_ids: frozenset[str]
    problems: tuple[str, ...] = ()


def parse_monitor(data: Any) -> MonitorSummary:
    by_status: Counter[str] = Counter()
    dnd = on_call = 0
    online: set[str] = set()
    problems: list[str] = []
    for key, entry in records(MONITOR, data).items():
        if not isinstance(entry, dict):
            problems.append(f"extension {text(key)[:20]!r} is not an object")
            continue
        status = text(entry.get("status")).lower() or "unknown"
        # The status vocabulary is not documented; keep label values bounded.
        by_status[status if status in ("online", "offline") else _bucket(status)] += 1
        if status in ONLINE_STATES:
            online.add(text(key))
        dnd += entry.get("dnd") is True
        on_call += entry.get("on_call") is True
    return MonitorSummary(dict(by_status), dnd, on_call, frozenset(online), tuple(problems))


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
    raw_time: str = ""  # date_time as sent: tells runs apart when its form is unknown

    @property
    def key(self) -> tuple[str, float | str]:
        """What identifies the run across polls: its tenant and time, or the raw date_time
        when we cannot read it (two unreadable runs must never merge into one)."""
        return (self.tenant, self.timestamp if self.timestamp is not None else self.raw_time)


_RUN_STATUS = {
    "success": "success",
    "failure": "failure",
    "failed": "failure",
    "partial": "partial",
}


def parse_archiving(data: Any) -> tuple[ArchivingRun, ...]:
    """archiving.list is a JSON array; an object keyed by id (what json_encode writes for
    keys that are not 0..n-1) and ``[]``, ``{}``, ``""`` for none are read too."""
    runs: list[ArchivingRun] = []
    problems: list[str] = []
    for entry in records(ARCHIVING, data).values():
        if not isinstance(entry, dict):
            problems.append("a run is not an object")
            continue
        runs.append(
            ArchivingRun(
                tenant=text(entry.get("tenant")),
                timestamp=_timestamp(text(entry.get("date_time"))),
                status=_RUN_STATUS.get(text(entry.get("status")).lower(), "unknown"),
                raw_time=text(entry.get("date_time"))[:64],
            )
        )
    return Entries.of(runs, problems)


_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
)}  # fmt: skip
# "Apr-01-2024 02:00:00": PBXware's own mmm-dd-YYYY date form (the one its arguments use),
# English month names whatever the locale.
_MONTH_FIRST = re.compile(r"([A-Za-z]{3})-(\d{1,2})-(\d{4})[ T](\d{1,2}):(\d{2}):(\d{2})")
_ISO_FORMS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")


def _timestamp(value: str) -> float | None:
    """``YYYY-MM-DD HH:MM:SS`` (also with a ``T``), ``Mon-DD-YYYY HH:MM:SS`` or epoch
    seconds; the formatted forms are taken as UTC (a GUESS: PBXware writes its local time).
    None for any other form."""
    if value.isdigit():
        return float(value)
    match = _MONTH_FIRST.fullmatch(value)
    if match is not None:
        month = _MONTHS.get(match.group(1).lower())
        if month is None:
            return None
        day, year, hour, minute, second = (int(g) for g in match.groups()[1:])
        try:
            return datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp()
        except ValueError:
            return None
    for form in _ISO_FORMS:
        try:
            return datetime.strptime(value, form).replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
    return None
