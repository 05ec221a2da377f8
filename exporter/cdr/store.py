"""A SnapshotStore that also holds each system's CDR snapshot.

The CDR poller's requests and failures must appear in ``pbxware_poll_requests_total`` and
``pbxware_poll_errors_total{action="pbxware.cdr.download"}``. Those families come from the
core collector, and a second collector emitting the same family names would make the
exposition invalid. So instead of emitting them, the CDR counts are merged into the
system's snapshot as /metrics reads it: ``get()`` and ``all()`` return the core snapshot with
the CDR action added to ``requests``, ``errors`` and ``actions``. The snapshots the core
poller stored are never changed, and the core collector needs no change.

``put_cdr()`` publishes like ``put()`` does, so the cached /metrics body is rendered again.
"""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

from ..pbxware.errors import REASONS
from ..snapshot import SnapshotStore, SystemSnapshot
from .counters import CdrSnapshot
from .page import ACTION


class CdrAwareStore(SnapshotStore):
    def __init__(self) -> None:
        super().__init__()
        self._cdr: dict[str, CdrSnapshot] = {}

    def cdr(self, system: str) -> CdrSnapshot | None:
        return self._cdr.get(system)

    def cdr_all(self) -> list[CdrSnapshot]:
        # list() of a dict view is one C call: safe from the /metrics render thread.
        return list(self._cdr.values())

    async def put_cdr(self, snapshot: CdrSnapshot) -> None:
        self._cdr[snapshot.system] = snapshot
        await self._changed_now()

    async def remove(self, system: str) -> None:
        self._cdr.pop(system, None)
        await super().remove(system)

    def get(self, system: str) -> SystemSnapshot | None:
        snapshot = super().get(system)
        return None if snapshot is None else with_cdr(snapshot, self._cdr.get(system))

    def all(self) -> list[SystemSnapshot]:
        return [with_cdr(s, self._cdr.get(s.system)) for s in super().all()]


def with_cdr(snapshot: SystemSnapshot, cdr: CdrSnapshot | None) -> SystemSnapshot:
    """``snapshot`` with the CDR action's request and error counts and status added."""
    if cdr is None:
        return snapshot
    requests = dict(snapshot.requests)
    requests[ACTION] = requests.get(ACTION, 0) + cdr.requests
    errors = dict(snapshot.errors)
    for reason in REASONS:
        if cdr.errors.get(reason):
            errors[(ACTION, reason)] = errors.get((ACTION, reason), 0) + cdr.errors[reason]
    actions = snapshot.actions
    if cdr.status is not None:
        others = tuple(a for a in actions if a.action != ACTION)
        actions = tuple(sorted((*others, cdr.status), key=lambda a: a.action))
    return replace(
        snapshot,
        requests=MappingProxyType(requests),
        errors=MappingProxyType(errors),
        actions=actions,
    )
