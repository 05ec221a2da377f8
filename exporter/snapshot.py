"""Immutable snapshots of what the poller last learnt, the only thing /metrics reads.

A poll cycle builds a new SystemSnapshot and swaps it into the SnapshotStore in one
assignment, so a scrape sees either the old cycle or the new one, never half of each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .pbxware.models import Extension, Tenant


@dataclass(frozen=True)
class ActionStatus:
    """How the requests of one action went in the last cycle that sent any."""

    action: str
    ok: bool
    duration: float
    last_success: float | None
    last_error: str | None = None


@dataclass(frozen=True)
class TenantSnapshot:
    tenant: Tenant
    up: bool
    # None: never polled successfully, or stale (missed `stale_after` polls).
    extensions: tuple[Extension, ...] | None = None
    online_count: int | None = None
    online_ids: frozenset[str] | None = None


@dataclass(frozen=True)
class SystemSnapshot:
    system: str
    interval: float
    polled_at: float | None  # end of the last cycle, Unix time
    cycles: int
    up: bool
    cycle_duration: float | None = None
    cpu_ratio: float | None = None
    memory_ratio: float | None = None
    disk_ratio: float | None = None
    tenants: tuple[TenantSnapshot, ...] = ()
    actions: tuple[ActionStatus, ...] = ()
    requests: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    errors: Mapping[tuple[str, str], int] = field(default_factory=lambda: MappingProxyType({}))
    extension_metrics: bool = False
    extension_metrics_limit: int = 0


class SnapshotStore:
    """The current snapshot of every system, plus a way to wait for the next one."""

    def __init__(self) -> None:
        self._systems: dict[str, SystemSnapshot] = {}
        self._changed = asyncio.Condition()
        self.generation = 0

    def get(self, system: str) -> SystemSnapshot | None:
        return self._systems.get(system)

    def all(self) -> list[SystemSnapshot]:
        return list(self._systems.values())

    async def put(self, snapshot: SystemSnapshot) -> None:
        self._systems[snapshot.system] = snapshot
        async with self._changed:
            self.generation += 1
            self._changed.notify_all()

    def remove(self, system: str) -> None:
        self._systems.pop(system, None)
        self.generation += 1

    async def wait_for(self, predicate: Callable[[SnapshotStore], bool]) -> None:
        """Wait until ``predicate(store)`` is true (tests use it instead of sleeping)."""
        async with self._changed:
            await self._changed.wait_for(lambda: predicate(self))
