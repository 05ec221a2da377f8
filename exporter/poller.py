"""Polls one PBXware system on its schedule and publishes a SystemSnapshot per cycle.

A cycle asks for the system's own state (tenant list, CPU, memory, disk) and, per tenant,
its extensions and online count. Each value is held separately: a failed request keeps
the last good value for ``stale_after`` cycles, then drops it, so one broken action never
blanks the others.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Generic, TypeVar

import structlog

from .config import SystemConfig
from .pbxware import PbxwareClient, PbxwareError
from .pbxware.models import (
    Extension,
    Tenant,
    parse_count,
    parse_extensions,
    parse_online_extensions,
    parse_tenants,
    parse_usage_ratio,
)
from .snapshot import ActionStatus, SnapshotStore, SystemSnapshot, TenantSnapshot

T = TypeVar("T")

TENANT_LIST = "pbxware.tenant.list"
EXT_LIST = "pbxware.ext.list"
EXT_ONLINE = "pbxware.dashboard.ext_online"
MONITOR_LIST = "pbxware.monitor.list"
CPU = "pbxware.dashboard.cpu"
MEMORY = "pbxware.dashboard.memory"
DISK = "pbxware.dashboard.disk_usage"
USAGE_ACTIONS = (CPU, MEMORY, DISK)


@dataclass
class Held(Generic[T]):
    """The last good value of one target and how many polls it has missed since."""

    value: T | None = None
    misses: int = 0

    def succeed(self, value: T) -> None:
        self.value, self.misses = value, 0

    def fail(self, stale_after: int) -> None:
        self.misses += 1
        if self.misses >= stale_after:
            self.value = None


@dataclass
class _TenantMemory:
    tenant: Tenant
    extensions: Held[tuple[Extension, ...]] = field(default_factory=Held)
    online_count: Held[int] = field(default_factory=Held)
    online_ids: Held[frozenset[str]] = field(default_factory=Held)
    failing: bool = False


@dataclass
class _ActionCycle:
    """What the requests of one action did during the current cycle."""

    ok: bool = True
    duration: float = 0.0
    error: str | None = None


@dataclass(frozen=True)
class _Outcome(Generic[T]):
    value: T | None
    error: PbxwareError | None


class SystemPoller:
    def __init__(
        self,
        system: SystemConfig,
        client: PbxwareClient,
        store: SnapshotStore,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.system = system
        self._client = client
        self._store = store
        self._clock = clock
        self._log = structlog.get_logger("exporter.poller").bind(system=system.name)
        self._rng = random.Random()
        self._usage: dict[str, Held[float]] = {a: Held() for a in USAGE_ACTIONS}
        self._tenant_list: Held[list[Tenant]] = Held()
        self._tenants: dict[str, _TenantMemory] = {}
        self._requests: dict[str, int] = {}
        self._errors: dict[tuple[str, str], int] = {}
        self._last_success: dict[str, float] = {}
        self._failing: set[tuple[str, str]] = set()
        self._cycles = 0
        self._cycle: dict[str, _ActionCycle] = {}

    async def run(self) -> None:
        """Poll forever: start every ``interval`` (±5 % jitter), never overlapping a cycle."""
        interval = self.system.interval
        # Spread the first polls of many systems a little without delaying readiness much.
        await asyncio.sleep(self._rng.uniform(0, min(1.0, interval * 0.1)))
        while True:
            started = time.monotonic()
            try:
                await self.poll_once()
            except Exception:
                # A bug in one cycle must not end the system's polling for good.
                self._log.exception("poll_cycle_crashed")
            delay = interval * self._rng.uniform(0.95, 1.05) - (time.monotonic() - started)
            await asyncio.sleep(max(0.0, delay))

    async def poll_once(self) -> SystemSnapshot:
        started = time.monotonic()
        self._cycle = {}
        stale_after = self.system.stale_after

        usage_tasks = {
            action: asyncio.ensure_future(
                self._call(action, parse=lambda d, a=action: parse_usage_ratio(a, d))
            )
            for action in USAGE_ACTIONS
        }
        own_ok = True
        tenants = await self._current_tenants()
        if tenants is None:
            own_ok = False
            tenants = self._tenant_list.value or []

        known = {t.id: t for t in tenants}
        for gone in set(self._tenants) - set(known):
            del self._tenants[gone]
        for tenant in tenants:
            memory = self._tenants.setdefault(tenant.id, _TenantMemory(tenant))
            memory.tenant = tenant
        await asyncio.gather(*(self._poll_tenant(self._tenants[t.id]) for t in tenants))

        for action, task in usage_tasks.items():
            outcome = await task
            if outcome.error is None:
                self._usage[action].succeed(outcome.value)
            else:
                self._usage[action].fail(stale_after)
                own_ok = False

        now = self._clock()
        self._cycles += 1
        snapshot = self._snapshot(
            own_ok, [self._tenants[t.id] for t in tenants], now, time.monotonic() - started
        )
        await self._store.put(snapshot)
        return snapshot

    async def _current_tenants(self) -> list[Tenant] | None:
        """The tenants to poll this cycle; None when the tenant list could not be read."""
        if self.system.tenants is not None:
            return [Tenant(id=t, name="", code="", package="") for t in self.system.tenants]
        outcome = await self._call(TENANT_LIST, parse=parse_tenants)
        if outcome.error is not None or outcome.value is None:
            self._tenant_list.fail(self.system.stale_after)
            return None
        self._tenant_list.succeed(outcome.value)
        return outcome.value

    async def _poll_tenant(self, memory: _TenantMemory) -> None:
        server = {"server": memory.tenant.id}
        tenant_id = memory.tenant.id
        stale_after = self.system.stale_after
        calls: list[Awaitable[_Outcome[Any]]] = [
            self._call(EXT_LIST, server, parse_extensions, tenant_id),
            self._call(EXT_ONLINE, server, lambda d: parse_count(EXT_ONLINE, d), tenant_id),
        ]
        if self.system.extension_metrics:
            calls.append(self._call(MONITOR_LIST, server, parse_online_extensions, tenant_id))
        outcomes = await asyncio.gather(*calls)
        targets: list[Held[Any]] = [memory.extensions, memory.online_count, memory.online_ids]
        ok = True
        for held, outcome in zip(targets, outcomes, strict=False):
            if outcome.error is None:
                held.succeed(outcome.value)
            else:
                held.fail(stale_after)
                ok = False
        if not self.system.extension_metrics:
            memory.online_ids.value = None
        memory.failing = not ok

    async def _call(
        self,
        action: str,
        params: dict[str, str] | None = None,
        parse: Callable[[Any], T] | None = None,
        tenant: str | None = None,
    ) -> _Outcome[Any]:
        started = time.monotonic()
        self._requests[action] = self._requests.get(action, 0) + 1
        cycle = self._cycle.setdefault(action, _ActionCycle())
        try:
            data = await self._client.call(action, params)
            value = parse(data) if parse else data
        except PbxwareError as exc:
            cycle.ok, cycle.error = False, f"{exc.reason}: {exc.message}"
            self._record_failure(exc, tenant)
            return _Outcome(None, exc)
        finally:
            cycle.duration = max(cycle.duration, time.monotonic() - started)
        self._record_success(action, tenant)
        return _Outcome(value, None)

    def _record_failure(self, exc: PbxwareError, tenant: str | None) -> None:
        key = (exc.action, exc.reason)
        self._errors[key] = self._errors.get(key, 0) + 1
        target = (exc.action, tenant or "")
        log = self._log.bind(tenant=tenant) if tenant else self._log
        # Log when a target starts failing, not on every cycle of a long outage.
        if target not in self._failing:
            self._failing.add(target)
            log.warning("poll_failed", action=exc.action, reason=exc.reason, error=exc.message)
        else:
            log.debug("poll_failed", action=exc.action, reason=exc.reason, error=exc.message)

    def _record_success(self, action: str, tenant: str | None) -> None:
        target = (action, tenant or "")
        if target in self._failing:
            self._failing.discard(target)
            log = self._log.bind(tenant=tenant) if tenant else self._log
            log.info("poll_recovered", action=action)

    def _snapshot(
        self, own_ok: bool, tenants: list[_TenantMemory], now: float, duration: float
    ) -> SystemSnapshot:
        actions = []
        for action, cycle in sorted(self._cycle.items()):
            if cycle.ok:
                self._last_success[action] = now
            actions.append(
                ActionStatus(
                    action=action,
                    ok=cycle.ok,
                    duration=cycle.duration,
                    last_success=self._last_success.get(action),
                    last_error=cycle.error,
                )
            )
        return SystemSnapshot(
            system=self.system.name,
            interval=self.system.interval,
            polled_at=now,
            cycles=self._cycles,
            up=own_ok,
            cycle_duration=duration,
            cpu_ratio=self._usage[CPU].value,
            memory_ratio=self._usage[MEMORY].value,
            disk_ratio=self._usage[DISK].value,
            tenants=tuple(
                TenantSnapshot(
                    tenant=m.tenant,
                    up=not m.failing,
                    extensions=m.extensions.value,
                    online_count=m.online_count.value,
                    online_ids=m.online_ids.value,
                )
                for m in tenants
            ),
            actions=tuple(actions),
            requests=MappingProxyType(dict(self._requests)),
            errors=MappingProxyType(dict(self._errors)),
            extension_metrics=self.system.extension_metrics,
            extension_metrics_limit=self.system.extension_metrics_limit,
        )
