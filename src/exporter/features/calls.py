"""PBXware's own call counts of a tenant: ``pbxware.dashboard.calls``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import Metric

from ..pbxware.errors import PbxwareError
from ..pbxware.fields import field, obj
from ..snapshot import SystemSnapshot
from .base import Feature, Poll, gauge

ACTION = "pbxware.dashboard.calls"


@dataclass(frozen=True)
class Calls:
    active: int | None  # None: the field could not be read (no series)
    last_hour: int | None
    today: int | None
    answered_today: int | None
    problems: tuple[str, ...] = ()


def parse(data: Any) -> Calls:
    answer = obj(ACTION, data)
    if "now" not in answer:
        raise PbxwareError(ACTION, "decode", "no 'now' in the answer")
    problems: list[str] = []
    return Calls(
        active=field(ACTION, answer.get("now"), "now", problems),
        last_hour=field(ACTION, answer.get("last hour", 0), "last hour", problems),
        today=field(ACTION, answer.get("today", 0), "today", problems),
        # Sic: PBXware spells the key "answared calls"; accept the fixed spelling too.
        answered_today=field(
            ACTION,
            answer.get("answared calls", answer.get("answered calls", 0)),
            "answared calls",
            problems,
        ),
        problems=tuple(problems),
    )


CALLS: Poll[Calls] = Poll("calls", ACTION, "tenant", parse)


def families(snapshots: Sequence[SystemSnapshot]) -> Iterator[Metric]:
    by_field = {
        "active": gauge(
            "pbxware_calls_active",
            "Calls in progress (dashboard.calls `now`).",
            ["system", "tenant"],
        ),
        "last_hour": gauge(
            "pbxware_calls_last_hour",
            "Calls in the last hour, as PBXware counts them (dashboard.calls).",
            ["system", "tenant"],
        ),
        "today": gauge(
            "pbxware_calls_today",
            "Calls since midnight PBX time (dashboard.calls); resets daily.",
            ["system", "tenant"],
        ),
        "answered_today": gauge(
            "pbxware_calls_answered_today",
            "Answered calls since midnight PBX time (dashboard.calls `answared calls`).",
            ["system", "tenant"],
        ),
    }
    for snap in snapshots:
        for ts in snap.tenants:
            counts = ts.value(CALLS)
            if counts is None:
                continue
            for name, family in by_field.items():
                n = getattr(counts, name)
                if n is not None:  # None: the PBX sent a value we could not read
                    family.add_metric([snap.system, ts.tenant.id], n)
    yield from by_field.values()


FEATURE = Feature("calls", (CALLS,), families)
