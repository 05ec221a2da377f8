"""Simulated health answers: services, SIP registrations, calls, licences, trunks, live
calls and archiving runs (reference §3.6, §3.10, §3.11).

Everything here is derived from a SystemState (its extensions, tick, clock and seed) by pure
functions, so the answers stay consistent with ext.list and monitor.list: SIP registrations
that succeeded are the online SIP extensions, live calls are the extensions on a call, and
system figures are the sums of the tenants'.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .state import SystemState

# Service names are a GUESS (the reference lists none).
SERVICES = ("asterisk", "mysql", "httpd", "php-fpm", "redis", "glocom-proxy")
_PROVIDERS = (("20", "Generic SIP", "sip"), ("21", "Telekom", "sip"), ("9", "DAHDI", "dahdi"))
LICENSE_INFO = {
    "Edition": "Multi-Tenant",
    "Version": "8.1 (a35a9165)",
    "Channels": "512",
    "DIDs": "9999",
    "Extensions": "1999",
    "Tenants": "999",
    "VOIP Trunks": "20",
    "PSTN Trunks": "20",
}
ARCHIVING_HOUR = 3  # each tenant archives nightly at 03:00 (simulator clock, UTC)


@dataclass(frozen=True)
class TrunkState:
    id: str
    name: str
    protocol: str
    provider_id: str
    provider_name: str
    status: str  # enabled | disabled


@dataclass(frozen=True)
class CallsState:
    now: int
    last_hour: int
    today: int
    answered: int


@dataclass(frozen=True)
class SipState:
    success: int
    failed: int
    lagged: int


def _h(*parts: object) -> int:
    """A stable small hash (unlike hash(), the same in every process)."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big")


def initial_trunks(seed: int, system: str) -> dict[str, TrunkState]:
    rng = random.Random(f"{seed}/{system}/trunks")
    trunks = {}
    count = rng.randint(3, 6)
    for index in range(count):
        provider_id, provider, protocol = rng.choice(_PROVIDERS)
        tid = str(10 + index)
        trunks[tid] = TrunkState(
            id=tid,
            name=f"{provider.lower().replace(' ', '-')}-{index + 1}",
            protocol=protocol,
            provider_id=provider_id,
            provider_name=provider,
            # One disabled trunk, as on most real systems (a spare or an old carrier).
            status="disabled" if index == count - 1 else "enabled",
        )
    return trunks


def initial_services() -> dict[str, str]:
    return dict.fromkeys(SERVICES, "running")


def calls(state: SystemState, tenant_id: str) -> CallsState:
    tenant = state.tenants[tenant_id]
    active = sum(e.on_call for e in tenant.extensions.values())
    salt = _h(state.seed, state.name, tenant_id, state.tick)
    last_hour = active + len(tenant.extensions) // 2 + salt % 11
    today = last_hour * 4 + salt % 37
    return CallsState(now=active, last_hour=last_hour, today=today, answered=today * 3 // 4)


def system_calls(state: SystemState) -> CallsState:
    parts = [calls(state, tid) for tid in state.tenants]
    return CallsState(
        *(sum(getattr(p, f) for p in parts) for f in ("now", "last_hour", "today", "answered"))
    )


def sip(state: SystemState, tenant_id: str) -> SipState:
    exts = state.tenants[tenant_id].extensions.values()
    salt = _h(state.seed, state.name, tenant_id, state.tick, "sip")
    success = sum(e.online and e.protocol == "sip" for e in exts)
    return SipState(success=success, failed=salt % 3, lagged=(salt >> 4) % 2)


def system_sip(state: SystemState) -> SipState:
    parts = [sip(state, tid) for tid in state.tenants]
    return SipState(*(sum(getattr(p, f) for p in parts) for f in ("success", "failed", "lagged")))


def live_calls(state: SystemState, tenant_id: str) -> dict[str, dict[str, object]]:
    """One live call per extension on a call: as many as calls(...).now."""
    out: dict[str, dict[str, object]] = {}
    for ext in state.tenants[tenant_id].extensions.values():
        if not ext.on_call:
            continue
        duration = _h(state.seed, ext.id, state.tick, "call") % 600
        started = int(state.now) - duration
        out[f"{started}.{ext.id}"] = {
            "from": f"{ext.name} ({ext.number})",
            "to": f"0{_h(ext.id, state.tick) % 10**9:09d}",
            "timestamp": started,
            "duration": duration,
        }
    return out


def licensing(state: SystemState) -> dict[str, tuple[int, int]]:
    extensions = sum(len(t.extensions) for t in state.tenants.values())
    salt = _h(state.seed, state.name, "licensing")
    return {
        "ext": (extensions, int(LICENSE_INFO["Extensions"])),
        "ivr": (salt % 20, 50),
        "queue": ((salt >> 5) % 10, 20),
        "conference": ((salt >> 9) % 5, 10),
    }


def archiving_runs(state: SystemState, start: date, end: date) -> list[dict[str, object]]:
    """What archiving.list returns for the days start..end (inclusive), all tenants."""
    runs: list[dict[str, object]] = []
    day = start
    while day <= end:
        at = datetime(day.year, day.month, day.day, ARCHIVING_HOUR, tzinfo=UTC)
        if at.timestamp() <= state.now:
            for tenant in state.tenants.values():
                runs.append(_run(state.seed, tenant.code, at))
        day += timedelta(days=1)
    return runs


def _run(seed: int, code: str, at: datetime) -> dict[str, object]:
    roll = _h(seed, code, at.date().isoformat(), "archive") % 10
    status = "FAILED" if roll == 0 else "PARTIAL" if roll == 1 else "SUCCESS"
    failed = 0 if status == "SUCCESS" else 1 + roll
    return {
        "tenant": code,
        "date_time": at.strftime("%Y-%m-%d %H:%M:%S"),
        "status": status,
        "recording": {"success": 20 + roll, "failed": failed},
        "fax": {"success": roll % 3},
        "voicemail": {"success": 5 + roll},
    }
