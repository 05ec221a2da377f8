"""The daemon's CDR pollers: one per system with ``cdr.enabled``, started and stopped with
the system's core poller (exporter/daemon.py calls in here)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence

from ..config import SystemConfig
from ..pbxware import PbxwareClient
from .collector import CdrCollector
from .poller import CdrPoller
from .store import CdrAwareStore


class CdrPollers:
    def __init__(self, store: CdrAwareStore, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.pollers: dict[str, CdrPoller] = {}
        self._clock = clock
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def add(
        self,
        system: SystemConfig,
        client: PbxwareClient,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """A poller for ``system`` if its CDR polling is on (replacing an older one);
        ``clock`` (Unix time) decides its windows, tests pass the simulator's."""
        self.pollers.pop(system.name, None)
        if not system.cdr.enabled:
            return
        self.pollers[system.name] = CdrPoller(
            system,
            client,
            tenants=self._tenant_ids(system),
            publish=self.store.put_cdr,
            clock=clock or self._clock,
            wait_for_tenants=self._first_snapshot(system),
        )

    def forget(self, name: str) -> None:
        self.pollers.pop(name, None)

    def start(self, name: str) -> None:
        poller = self.pollers.get(name)
        if poller is not None and name not in self._tasks:
            self._tasks[name] = asyncio.create_task(poller.run(), name=f"cdr-{name}")

    async def stop(self, name: str) -> None:
        task = self._tasks.pop(name, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def collector(self, only: str | None = None) -> CdrCollector:
        """The CDR families of every system, or of ``only`` (for /probe)."""
        return CdrCollector(self.store, only)

    def _tenant_ids(self, system: SystemConfig) -> Callable[[], Sequence[str] | None]:
        """The configured tenant ids, or those of the core poller's last snapshot: the
        tenant list is read once, by the core poller."""
        if system.tenants is not None:
            configured = list(system.tenants)
            return lambda: configured

        def discovered() -> Sequence[str] | None:
            snapshot = self.store.get(system.name)
            return None if snapshot is None else [t.tenant.id for t in snapshot.tenants]

        return discovered

    def _first_snapshot(self, system: SystemConfig) -> Callable[[], Awaitable[None]] | None:
        """Discovered tenants are known once the core poller stored its first snapshot."""
        if system.tenants is not None:
            return None
        name = system.name
        return lambda: self.store.wait_for(lambda s: s.get(name) is not None)
