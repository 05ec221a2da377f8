"""Call metrics from PBXware's CDRs (``pbxware.cdr.download``): a feature with state (each
tenant's cursor, the ids it has seen, the calls still open), polled on its own schedule
(``cdr.interval``) by a runner that the system's poller starts and stops with itself.

window.py (time windows, PBXware dates) → page.py (answer shape) → records.py (columns by
header name, validation, direction/disposition) → seen.py (de-duplication) → calls.py (legs
into calls) → counters.py (counters and snapshots) → poller.py (the runner: per system, per
tenant) → collector.py (metric families).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client.core import Metric

from ...snapshot import SystemSnapshot, ValueKey
from ..base import Feature, RunnerContext
from .collector import cdr_metrics
from .counters import CdrSnapshot, TenantTotals
from .poller import CdrPoller

NAME = "cdr"
# What the runner published last, in SystemSnapshot.tracked.
STATE: ValueKey[CdrSnapshot] = ValueKey(NAME)


def families(snapshots: Sequence[SystemSnapshot]) -> Iterator[Metric]:
    states = [s.tracked_value(STATE) for s in snapshots]
    yield from cdr_metrics([state for state in states if state is not None])


def runner(context: RunnerContext) -> CdrPoller | None:
    """The system's CDR poller, when its ``cdr.enabled`` is on."""
    if not context.system.cdr.enabled:
        return None
    return CdrPoller(
        context.system,
        context.client,
        tenants=context.tenants,
        publish=context.publish,
        clock=context.clock,
        wait_for_tenants=context.wait_for_tenants,
    )


FEATURE = Feature(NAME, (), families, runner=runner)

__all__ = ["FEATURE", "CdrPoller", "CdrSnapshot", "TenantTotals", "families"]
