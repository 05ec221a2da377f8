"""SIP registrations of a tenant by state: ``pbxware.dashboard.sip_registrations``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import Metric

from ..pbxware.fields import field, obj
from ..snapshot import SystemSnapshot
from .base import Feature, Poll, gauge

ACTION = "pbxware.dashboard.sip_registrations"


@dataclass(frozen=True)
class SipRegistrations:
    success: int | None  # None: the field could not be read (no series)
    failed: int | None
    lagged: int | None
    problems: tuple[str, ...] = ()


def parse(data: Any) -> SipRegistrations:
    inner = obj(ACTION, obj(ACTION, data).get("SIP Registrations"))
    problems: list[str] = []
    counts = {
        k: field(ACTION, inner.get(k, 0), k, problems) for k in ("success", "failed", "lagged")
    }
    return SipRegistrations(**counts, problems=tuple(problems))


REGISTRATIONS: Poll[SipRegistrations] = Poll("sip_registrations", ACTION, "tenant", parse)


def families(snapshots: Sequence[SystemSnapshot]) -> Iterator[Metric]:
    sip = gauge(
        "pbxware_sip_registrations",
        "SIP registrations of the tenant by state (success, failed, lagged).",
        ["system", "tenant", "state"],
    )
    for snap in snapshots:
        for ts in snap.tenants:
            reg = ts.value(REGISTRATIONS)
            if reg is None:
                continue
            for state in ("success", "failed", "lagged"):
                n = getattr(reg, state)
                if n is not None:  # None: the PBX sent a value we could not read
                    sip.add_metric([snap.system, ts.tenant.id, state], n)
    yield sip


FEATURE = Feature("sip_registrations", (REGISTRATIONS,), families)
