"""Polls one PBXware system on its schedule and publishes a SystemSnapshot per cycle.

A cycle reads the tenant list, runs the due system jobs (CPU, memory, disk, services, …)
and, per tenant, the due tenant jobs (extensions, online count, …); see exporter/jobs.py.
Each value is held on its own: a failed request keeps the last good value for
``stale_after`` runs of that job, then drops it, so one broken action never blanks others.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Generic, TypeVar

import structlog

from .archiving import ArchivingTracker
from .config import SystemConfig
from .jobs import Job, jobs_for
from .pbxware import PbxwareClient, PbxwareError
from .pbxware.models import Tenant, parse_tenants
from .snapshot import ActionStatus, SnapshotStore, SystemSnapshot, TenantSnapshot

T = TypeVar("T")

TENANT_LIST = "pbxware.tenant.list"
_HINTS = {
    "api_error": "PBXware refused the action; the API key may not be allowed to use it"
    " (PBXware: Admin Settings > API Keys)",
    "auth": "PBXware rejected the API key: wrong, suspended after inactivity, or this host"
    " is not in the key's IP allow-list",
}


@dataclass
class Held(Generic[T]):
    """The last good value of one target and how many runs it has missed since."""

    value: T | None = None
    misses: int = 0

    def succeed(self, value: T) -> None:
        # An unchanged value keeps the object the published snapshot already holds: the old
        # and the new snapshot then share it instead of holding 100,000 extensions twice
        # while a poll runs.
        if value != self.value:
            self.value = value
        self.misses = 0

    def fail(self, stale_after: int) -> None:
        self.misses += 1
        if self.misses >= stale_after:
            self.value = None


@dataclass
class _TenantMemory:
    tenant: Tenant
    held: dict[str, Held[Any]] = field(default_factory=dict)
    up: bool = True


@dataclass
class _ActionCycle:
    """What the requests of one action did during the current cycle."""

    ok: bool = True
    duration: float = 0.0
    reason: str | None = None
    error: str | None = None
    failed_tenants: list[str] = field(default_factory=list)


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
        self._jobs = jobs_for(system)
        self._last_run: dict[str, float] = {}
        self._held: dict[str, Held[Any]] = {}
        self._tenant_list: Held[list[Tenant]] = Held()
        self._tenants: dict[str, _TenantMemory] = {}
        self._archiving = ArchivingTracker()
        self._requests: dict[str, int] = {}
        self._errors: dict[tuple[str, str], int] = {}
        self._last_success: dict[str, float] = {}
        self._status: dict[str, ActionStatus] = {}
        self._failing: dict[str, str] = {}  # action → reason, while it fails
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

    def _due_jobs(self, started: float) -> list[Job]:
        due = []
        for job, interval in self._jobs:
            last = self._last_run.get(job.key)
            # A little slack, so that jitter does not push a job to the cycle after.
            if interval is None or last is None or started - last >= interval * 0.95:
                self._last_run[job.key] = started
                due.append(job)
        return due

    async def poll_once(self) -> SystemSnapshot:
        started = time.monotonic()
        self._cycle = {}
        due = self._due_jobs(started)
        system_jobs = [j for j in due if j.scope == "system"]
        tenant_jobs = [j for j in due if j.scope == "tenant"]

        system_tasks = [asyncio.ensure_future(self._run_job(j, None)) for j in system_jobs]
        try:
            return await self._cycle_rest(started, system_jobs, tenant_jobs, system_tasks)
        finally:
            # Cancelled mid-cycle (shutdown, reload): no request may outlive the poller.
            for task in system_tasks:
                task.cancel()

    async def _cycle_rest(
        self,
        started: float,
        system_jobs: list[Job],
        tenant_jobs: list[Job],
        system_tasks: list[asyncio.Future[Any]],
    ) -> SystemSnapshot:
        tenants = await self._current_tenants()
        own_ok = tenants is not None
        if tenants is None:
            tenants = self._tenant_list.value or []

        known = {t.id for t in tenants}
        for gone in set(self._tenants) - known:
            del self._tenants[gone]
        for tenant in tenants:
            memory = self._tenants.setdefault(tenant.id, _TenantMemory(tenant))
            memory.tenant = tenant
        await asyncio.gather(
            *(self._poll_tenant(self._tenants[t.id], tenant_jobs) for t in tenants)
        )

        now = self._clock()
        for job, outcome in zip(system_jobs, await asyncio.gather(*system_tasks), strict=True):
            held = self._held.setdefault(job.key, Held())
            if isinstance(outcome, PbxwareError):
                held.fail(self.system.stale_after)
                own_ok = own_ok and not job.core
                continue
            held.succeed(outcome)
            if job.key == "archiving":
                self._archiving.update(outcome, now)

        self._cycles += 1
        self._log_action_changes()
        snapshot = self._snapshot(
            own_ok, [self._tenants[t.id] for t in tenants], now, time.monotonic() - started
        )
        await self._store.put(snapshot)
        return snapshot

    async def _current_tenants(self) -> list[Tenant] | None:
        """The tenants to poll this cycle; None when the tenant list could not be read."""
        if self.system.tenants is not None:
            return [Tenant(id=t, name="", code="", package="") for t in self.system.tenants]
        outcome = await self._call(TENANT_LIST, None, parse_tenants, None)
        if isinstance(outcome, PbxwareError):
            self._tenant_list.fail(self.system.stale_after)
            return None
        self._tenant_list.succeed(outcome)
        return outcome

    async def _poll_tenant(self, memory: _TenantMemory, jobs: list[Job]) -> None:
        outcomes = await asyncio.gather(*(self._run_job(j, memory.tenant.id) for j in jobs))
        up = True
        for job, outcome in zip(jobs, outcomes, strict=True):
            held = memory.held.setdefault(job.key, Held())
            if isinstance(outcome, PbxwareError):
                held.fail(self.system.stale_after)
                up = up and not job.core
            else:
                held.succeed(outcome)
        memory.up = up

    async def _run_job(self, job: Job, tenant: str | None) -> Any:
        params = {"server": tenant} if tenant is not None else {}
        if job.params is not None:
            params.update(job.params(self._clock()))
        if job.raw:
            fmt = self.system.format
            return await self._call(
                job.action, params, lambda body: job.parse(body, fmt), tenant, raw=True
            )
        return await self._call(job.action, params, job.parse, tenant)

    async def _call(
        self,
        action: str,
        params: dict[str, str] | None,
        parse: Callable[[Any], Any],
        tenant: str | None,
        raw: bool = False,
    ) -> Any:
        """One request; returns the parsed value, or the PbxwareError it failed with."""
        started = time.monotonic()
        self._requests[action] = self._requests.get(action, 0) + 1
        cycle = self._cycle.setdefault(action, _ActionCycle())
        try:
            return parse(await self._client.call(action, params, raw=raw))
        except PbxwareError as exc:
            cycle.ok, cycle.reason, cycle.error = False, exc.reason, f"{exc.reason}: {exc.message}"
            if tenant is not None:
                cycle.failed_tenants.append(tenant)
            key = (exc.action, exc.reason)
            self._errors[key] = self._errors.get(key, 0) + 1
            self._log.debug(
                "request_failed", tenant=tenant, action=action, reason=exc.reason, error=exc.message
            )
            return exc
        finally:
            cycle.duration = max(cycle.duration, time.monotonic() - started)

    def _log_action_changes(self) -> None:
        """One line when an action starts failing (or fails differently) and when it recovers,
        not one per tenant per cycle of a long outage."""
        for action, cycle in self._cycle.items():
            if cycle.ok:
                if self._failing.pop(action, None) is not None:
                    self._log.info("poll_recovered", action=action)
                continue
            reason = cycle.reason or "unknown"
            if self._failing.get(action) == reason:
                continue
            self._failing[action] = reason
            tenants = cycle.failed_tenants
            self._log.warning(
                "poll_failed",
                action=action,
                reason=reason,
                error=cycle.error,
                # The first failing tenant and how many failed, rather than a line each.
                tenant=tenants[0] if tenants else None,
                failed_tenants=len(tenants) if tenants else None,
                hint=_HINTS.get(reason),
            )

    def _snapshot(
        self, own_ok: bool, tenants: list[_TenantMemory], now: float, duration: float
    ) -> SystemSnapshot:
        for action, cycle in self._cycle.items():
            if cycle.ok:
                self._last_success[action] = now
            # Kept across cycles: an action with a longer interval is not run every cycle.
            self._status[action] = ActionStatus(
                action=action,
                ok=cycle.ok,
                duration=cycle.duration,
                last_success=self._last_success.get(action),
                last_error=cycle.error,
            )
        return SystemSnapshot(
            system=self.system.name,
            interval=self.system.interval,
            polled_at=now,
            cycles=self._cycles,
            up=own_ok,
            cycle_duration=duration,
            values=_current(self._held),
            tenants=tuple(
                TenantSnapshot(tenant=m.tenant, up=m.up, values=_current(m.held)) for m in tenants
            ),
            discovered_tenants=self.system.tenants is None,
            actions=tuple(self._status[a] for a in sorted(self._status)),
            requests=MappingProxyType(dict(self._requests)),
            errors=MappingProxyType(dict(self._errors)),
            archiving=self._archiving.totals() if "archiving" in self._held else None,
            extension_metrics=self.system.extension_metrics,
            extension_metrics_limit=self.system.extension_metrics_limit,
        )


def _current(held: dict[str, Held[Any]]) -> MappingProxyType[str, Any]:
    return MappingProxyType({k: h.value for k, h in held.items() if h.value is not None})
