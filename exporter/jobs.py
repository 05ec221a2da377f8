"""What the poller asks each PBXware system, and how each answer is read.

A job is one action polled either once per system or once per tenant. Core jobs decide
``pbxware_up`` / ``pbxware_tenant_up`` and always run; the others are the switchable
``collectors`` of the config, so a scoped API key that is refused one of them only marks
that action as failing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from .config import OPTIONAL_COLLECTORS, SystemConfig
from .pbxware import dashboard as dash
from .pbxware.dates import pbxware_date
from .pbxware.models import parse_count, parse_extensions, parse_usage_ratio

Scope = Literal["system", "tenant"]

EXT_ONLINE = "pbxware.dashboard.ext_online"


@dataclass(frozen=True)
class Job:
    key: str  # the snapshot key, and the collector name for optional jobs
    action: str
    scope: Scope
    parse: Callable[..., Any]  # (data) -> value, or (body, format) -> value when raw
    core: bool = False
    # The parser gets the raw body and the format (monitor.live_calls is not always JSON).
    raw: bool = False
    # Extra arguments computed at request time from Unix time (date windows).
    params: Callable[[float], dict[str, str]] | None = None


def _archiving_window(now: float) -> dict[str, str]:
    # Yesterday and today: the nightly run of every tenant falls in it at least once.
    return {"start_date": pbxware_date(now - 86400), "end_date": pbxware_date(now)}


def _usage(action: str) -> Callable[[Any], float]:
    return lambda data: parse_usage_ratio(action, data)


CORE_JOBS = (
    Job("cpu", "pbxware.dashboard.cpu", "system", _usage("pbxware.dashboard.cpu"), core=True),
    Job(
        "memory",
        "pbxware.dashboard.memory",
        "system",
        _usage("pbxware.dashboard.memory"),
        core=True,
    ),
    Job(
        "disk",
        "pbxware.dashboard.disk_usage",
        "system",
        _usage("pbxware.dashboard.disk_usage"),
        core=True,
    ),
    Job("extensions", "pbxware.ext.list", "tenant", parse_extensions, core=True),
    Job("online", EXT_ONLINE, "tenant", lambda d: parse_count(EXT_ONLINE, d), core=True),
)

OPTIONAL_JOBS = (
    Job("services", dash.SERVICES, "system", dash.parse_services),
    Job("licensing", dash.LICENSING, "system", dash.parse_licensing),
    Job("license_info", dash.LICENSE_INFO, "system", dash.parse_license_info),
    Job("trunks", dash.TRUNKS, "system", dash.parse_trunks),
    Job("archiving", dash.ARCHIVING, "system", dash.parse_archiving, params=_archiving_window),
    Job("monitor", dash.MONITOR, "tenant", dash.parse_monitor),
    Job("sip_registrations", dash.SIP_REGISTRATIONS, "tenant", dash.parse_sip_registrations),
    Job("calls", dash.CALLS, "tenant", dash.parse_calls),
    Job("live_calls", dash.LIVE_CALLS, "tenant", dash.parse_live_calls, raw=True),
)

# license.info belongs to the `licensing` switch: both feed the licence metrics.
_SWITCH = {"license_info": "licensing"}
assert {_SWITCH.get(j.key, j.key) for j in OPTIONAL_JOBS} == set(OPTIONAL_COLLECTORS)


def jobs_for(system: SystemConfig) -> list[tuple[Job, float | None]]:
    """The jobs this system runs, each with its own minimum interval (None: every poll)."""
    chosen: list[tuple[Job, float | None]] = [(job, None) for job in CORE_JOBS]
    for job in OPTIONAL_JOBS:
        switch = system.collector(_SWITCH.get(job.key, job.key))
        if switch.enabled:
            chosen.append((job, switch.interval))
    return chosen
