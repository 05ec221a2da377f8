"""Immutable snapshots of what the poller last learnt, the only thing /metrics reads.

A poll cycle builds a new SystemSnapshot and swaps it into the SnapshotStore in one
assignment, so a scrape sees either the old cycle or the new one, never half of each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from .pbxware.models import Tenant

T = TypeVar("T")


@dataclass(frozen=True, eq=False)
class ValueKey(Generic[T]):
    """Names one kind of value in a snapshot and carries its type (exporter/features: every
    Poll is one), so that reading it back is typed: ``ts.value(EXTENSIONS)``."""

    key: str


@dataclass(frozen=True)
class ActionStatus:
    """How the requests of one action went in the last cycle that sent any."""

    action: str
    ok: bool
    duration: float
    last_success: float | None
    last_error: str | None = None


_EMPTY: Mapping[Any, Any] = MappingProxyType({})  # shared by every empty field: read-only

# Why a poll cycle ended early (pbxware_poll_cycles_aborted_total): the system stopped
# answering with one of these request failures, or the cycle reached its deadline.
ABORT_REASONS: tuple[str, ...] = ("timeout", "connect", "http", "auth", "decode", "deadline")


@dataclass(frozen=True)
class TenantSnapshot:
    tenant: Tenant
    up: bool
    # Poll key → last good value; absent when never polled or stale. Read with value().
    values: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)

    def value(self, key: ValueKey[T]) -> T | None:
        return self.values.get(key.key)


@dataclass(frozen=True)
class SystemSnapshot:
    system: str
    interval: float
    polled_at: float | None  # end of the last cycle, Unix time
    cycles: int
    up: bool
    cycle_duration: float | None = None
    values: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    tenants: tuple[TenantSnapshot, ...] = ()
    discovered_tenants: bool = True  # False when the config lists the tenant ids
    actions: tuple[ActionStatus, ...] = ()
    requests: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    errors: Mapping[tuple[str, str], int] = field(default_factory=lambda: _EMPTY)
    # Feature name → what its tracker counted across polls (archiving runs).
    tracked: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    aborted: Mapping[str, int] = field(default_factory=lambda: _EMPTY)  # reason → cycles
    warnings: Mapping[str, int] = field(default_factory=lambda: _EMPTY)  # action → answers
    extension_metrics: bool = False
    extension_metrics_limit: int = 0

    def value(self, key: ValueKey[T]) -> T | None:
        return self.values.get(key.key)

    def tracked_value(self, key: ValueKey[T]) -> T | None:
        """What a feature's tracker or runner published, typed by its key."""
        return self.tracked.get(key.key)


class SnapshotStore:
    """The current snapshot of every system, plus a way to wait for the next one.

    Publishing only swaps the snapshot in and tells the renderer (``on_change``): the poll
    never waits for a render. The renderer says which generation /metrics serves
    (``mark_rendered``); readiness goes by that, and tests wait for it with ``settled()``.
    """

    def __init__(self) -> None:
        self._systems: dict[str, SystemSnapshot] = {}
        # The configured systems (readiness, the landing page and /probe go by these).
        self.expected: tuple[str, ...] = ()
        # Config reloads: whether the last one worked, and when one last did.
        self.reload_ok = True
        self.reload_success_at: float | None = None
        # Called with the new generation after every change (the /metrics renderer, which
        # schedules its own work); without one, every generation counts as rendered.
        self.on_change: list[Callable[[int], None]] = []
        self._first: dict[str, int] = {}  # system → generation of its first snapshot
        self._changed = asyncio.Condition()
        self.generation = 0
        self.rendered = 0  # the newest generation /metrics serves

    def get(self, system: str) -> SystemSnapshot | None:
        return self._systems.get(system)

    def all(self) -> list[SystemSnapshot]:
        return list(self._systems.values())

    async def put(self, snapshot: SystemSnapshot) -> None:
        self._systems[snapshot.system] = snapshot
        await self._changed_now()
        self._first.setdefault(snapshot.system, self.generation)

    def ready(self) -> bool:
        """Every configured system's data is on /metrics."""
        return all(
            name in self._first and self._first[name] <= self.rendered for name in self.expected
        )

    async def remove(self, system: str) -> None:
        self._systems.pop(system, None)
        self._first.pop(system, None)
        await self._changed_now()

    async def mark_rendered(self, generation: int) -> None:
        self.rendered = max(self.rendered, generation)
        async with self._changed:
            self._changed.notify_all()

    async def settled(self) -> None:
        """Wait until /metrics serves the newest snapshots."""
        await self.wait_for(lambda s: s.rendered >= s.generation)

    async def _changed_now(self) -> None:
        self.generation += 1
        for hook in self.on_change:
            hook(self.generation)
        if not self.on_change:
            self.rendered = self.generation
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[SnapshotStore], bool]) -> None:
        """Wait until ``predicate(store)`` is true (tests use it instead of sleeping)."""
        async with self._changed:
            await self._changed.wait_for(lambda: predicate(self))
