"""Live calls of a tenant: ``pbxware.monitor.live_calls``, whose answer is not always JSON."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from prometheus_client.core import Metric

from ..pbxware.decode import decode_body
from ..pbxware.models import records
from ..snapshot import SystemSnapshot
from .base import Feature, Poll, gauge

ACTION = "pbxware.monitor.live_calls"
_EMPTY_LIVE_CALLS = re.compile(rb"Live Calls:\s*0")


def parse(body: bytes, fmt: str) -> int:
    """Active calls from the raw body: a map of calls, or a text saying "Live Calls: 0"."""
    # With no calls PBXware answers with this text rather than an empty list (reference
    # §3.10); whether bare or JSON-quoted is unknown, so look for the text itself. An empty
    # body is no calls too (PHP printing nothing for an empty list).
    if _EMPTY_LIVE_CALLS.search(body[:200]) or not body.strip():
        return 0
    data = decode_body(ACTION, body, fmt)
    return sum(isinstance(call, dict) for call in records(ACTION, data).values())


LIVE_CALLS: Poll[int] = Poll("live_calls", ACTION, "tenant", parse, raw=True)


def families(snapshots: Sequence[SystemSnapshot]) -> Iterator[Metric]:
    live = gauge(
        "pbxware_live_calls",
        "Live calls of the tenant in pbxware.monitor.live_calls.",
        ["system", "tenant"],
    )
    for snap in snapshots:
        for ts in snap.tenants:
            n = ts.value(LIVE_CALLS)
            if n is not None:
                live.add_metric([snap.system, ts.tenant.id], n)
    yield live


FEATURE = Feature("live_calls", (LIVE_CALLS,), families)
