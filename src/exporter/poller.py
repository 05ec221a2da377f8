"""Polls one PBXware system on its schedule and publishes a SystemSnapshot per cycle.

A cycle first asks the system itself (the tenant list, CPU, memory, disk), then fans out
to every tenant's due polls (extensions, online count, …; see exporter/features/), while the
due optional system jobs (services, licences, …) run beside it. Each value is held on its
own: a failed request keeps the last good value for ``stale_after`` runs of that job, then
drops it, so one broken action never blanks others. The tenant list is the exception: the
last good one stays in use until a successful answer replaces it, so a failing
``tenant.list`` never makes tenants vanish.

The bad day is bounded (docs: README "When a PBX fails"). A circuit breaker ends the cycle
as soon as the system as a whole stops answering: when every request of the first step
failed that way, or ``concurrency`` requests in a row did (time-outs, refused or reset
connections, HTTP errors, a refused key, an HTML page instead of the API). The snapshot is
then published at once with ``pbxware_up`` 0 and every tenant down, and while the system
stays down only the first step is repeated, every ``interval / 2``. A cycle also never runs
past ``interval``: what has not answered by then is cancelled. Both count in
``pbxware_poll_cycles_aborted_total``. When ``pbxware_up`` changes after the first step, a
snapshot is published before the fan-out, so recovery shows without waiting for every
tenant.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Generic, TypeVar

import structlog

from .config import SystemConfig
from .features import enabled, runners, schedule
from .features.base import Poll, Runner, RunnerContext, RunnerState, Tracker
from .pbxware import PbxwareClient, PbxwareError
from .pbxware.fields import problems_of
from .pbxware.models import Tenant, parse_tenants
from .snapshot import ABORT_REASONS, ActionStatus, SnapshotStore, SystemSnapshot, TenantSnapshot

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
    up: bool = False  # not until a poll of the tenant succeeded
    polled_at: float = 0.0  # monotonic end of its last complete poll (0: never)


class _Breaker:
    """Decides, within one cycle, that the system as a whole has stopped answering."""

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self.reason: str | None = None  # set when tripped
        self.tripped = asyncio.Event()
        self._run = 0
        self._run_reason = ""

    def record(self, error: PbxwareError | None) -> None:
        if error is None or not error.systemic:
            # Any answer from the API (even an error about one action) means it is there.
            self._run = 0
            return
        self._run += 1
        self._run_reason = error.reason
        if self._run >= self.threshold:
            self.trip(error.reason)

    def trip(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
            self.tripped.set()


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
        # Every poll of every enabled feature, with its own minimum interval (None: every
        # cycle); the state of features that keep some across polls (archiving runs).
        self._jobs = schedule(system)
        self._trackers: dict[str, tuple[str, Tracker]] = {
            feature.polls[0].key: (feature.name, feature.tracker())
            for feature, _ in enabled(system)
            if feature.tracker is not None
        }
        self._last_run: dict[str, float] = {}
        self._held: dict[str, Held[Any]] = {}
        # The last tenant list PBXware answered; kept while tenant.list fails.
        self._tenant_list: list[Tenant] | None = None
        self._tenants: dict[str, _TenantMemory] = {}
        self._requests: dict[str, int] = {}
        self._errors: dict[tuple[str, str], int] = {}
        self._last_success: dict[str, float] = {}
        self._status: dict[str, ActionStatus] = {}
        self._failing: dict[str, str] = {}  # action → reason, while it fails
        self._partial: dict[str, tuple[str, ...]] = {}  # action → fields it could not read
        self._cycles = 0
        self._cycle: dict[str, _ActionCycle] = {}
        self._breaker = _Breaker(max(2, system.concurrency))
        self._aborted: dict[str, int] = {}
        self._last_abort: str | None = None  # reason of the last cycle's abort, if any
        self._published_up: bool | None = None
        self._early: asyncio.Task[None] | None = None
        # Features polled on their own schedule (CDRs), run beside the cycles by run(); what
        # each published last goes into every snapshot of the system.
        self._first_cycle = asyncio.Event()
        self.runners: dict[str, Runner] = runners(
            system,
            lambda name: RunnerContext(
                system=system,
                client=client,
                tenants=self._tenant_ids,
                publish=lambda state: self._publish_runner(name, state),
                clock=clock,
                wait_for_tenants=self._wait_first_cycle,
            ),
        )
        self._runner_states: dict[str, RunnerState] = {}
        self._last: SystemSnapshot | None = None  # the last cycle's, before runner states

    @property
    def down(self) -> bool:
        """Whether the last cycle found the system not answering (the breaker tripped)."""
        return self._last_abort is not None and self._last_abort != "deadline"

    async def run(self) -> None:
        """Poll forever: cycles every ``interval`` (±5 % jitter), never overlapping, and the
        features with a schedule of their own beside them; cancelling this stops them all."""
        tasks = [
            asyncio.create_task(runner.run(), name=f"{name}-{self.system.name}")
            for name, runner in self.runners.items()
        ]
        try:
            await self._cycles_forever()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _cycles_forever(self) -> None:
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
            # A system that is down is asked again sooner (the first step only, four cheap
            # requests), so that its recovery shows within one interval.
            period = interval / 2 if self.down else interval
            delay = period * self._rng.uniform(0.95, 1.05) - (time.monotonic() - started)
            await asyncio.sleep(max(0.0, delay))

    def _due_jobs(self, started: float) -> list[Poll[Any]]:
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
        self._breaker = _Breaker(max(2, self.system.concurrency))
        due = self._due_jobs(started)
        core_jobs = [j for j in due if j.scope == "system" and j.core]
        other_jobs = [j for j in due if j.scope == "system" and not j.core]
        tenant_jobs = [j for j in due if j.scope == "tenant"]

        # The optional system jobs start after the first step (they would take its slots).
        other_tasks: list[asyncio.Future[Any]] = []
        try:
            return await self._cycle_rest(started, core_jobs, other_jobs, tenant_jobs, other_tasks)
        finally:
            # Cancelled mid-cycle (shutdown, reload) or aborted: no request may outlive it,
            # and no early snapshot may land after the system was removed from the store.
            for task in other_tasks:
                task.cancel()
            if self._early is not None and not self._early.done():
                self._early.cancel()

    async def _cycle_rest(
        self,
        started: float,
        core_jobs: list[Poll[Any]],
        other_jobs: list[Poll[Any]],
        tenant_jobs: list[Poll[Any]],
        other_tasks: list[asyncio.Future[Any]],
    ) -> SystemSnapshot:
        deadline = started + self.system.interval
        own_ok, tenants = await self._first_step(core_jobs)
        self._remember(tenants)
        memories = [self._tenants[t.id] for t in tenants]

        if self._breaker.reason is None:
            other_tasks.extend(asyncio.ensure_future(self._run_job(j, None)) for j in other_jobs)
            if self._published_up is not None and own_ok != self._published_up:
                # pbxware_up changes: say so now, not after every tenant was asked.
                now = self._clock()
                self._publish_early(own_ok, memories, now, time.monotonic() - started)
            await self._fan_out(memories, tenant_jobs, deadline)

        outcomes = await self._finish_system_jobs(other_jobs, other_tasks, deadline)
        now = self._clock()
        self._settle_system_jobs(other_jobs, outcomes, now)

        abort = self._abort_reason(memories, tenant_jobs, started, deadline)
        self._age_unpolled(memories, started, down=abort not in (None, "deadline"))
        own_ok = own_ok and abort in (None, "deadline")
        self._note_abort(abort, memories, started)

        self._cycles += 1
        self._log_action_changes()
        snapshot = self._snapshot(own_ok, memories, now, time.monotonic() - started)
        self._published_up = own_ok
        if self._early is not None:
            # The early snapshot must not land after this one.
            await self._early
            self._early = None
        self._last = snapshot
        snapshot = self._with_runner_states(snapshot)
        await self._store.put(snapshot)
        self._first_cycle.set()
        return snapshot

    async def _wait_first_cycle(self) -> None:
        await self._first_cycle.wait()

    def _tenant_ids(self) -> list[str] | None:
        """The tenants a runner polls: the configured ones, or the tenant list in use."""
        if self.system.tenants is not None:
            return list(self.system.tenants)
        return None if self._tenant_list is None else [t.id for t in self._tenant_list]

    async def _publish_runner(self, name: str, state: RunnerState) -> None:
        self._runner_states[name] = state
        if self._last is not None:
            await self._store.put(self._with_runner_states(self._last))

    def _with_runner_states(self, snapshot: SystemSnapshot) -> SystemSnapshot:
        """``snapshot`` with what each runner published last: its state in ``tracked`` and
        its requests, errors and status added to the system's (one set of counters)."""
        if not self._runner_states:
            return snapshot
        requests = dict(snapshot.requests)
        errors = dict(snapshot.errors)
        actions = {a.action: a for a in snapshot.actions}
        for state in self._runner_states.values():
            if state.status is None:
                continue
            action = state.status.action
            actions[action] = state.status
            requests[action] = requests.get(action, 0) + state.requests
            for reason, count in state.errors.items():
                if count:
                    errors[(action, reason)] = errors.get((action, reason), 0) + count
        return replace(
            snapshot,
            requests=MappingProxyType(requests),
            errors=MappingProxyType(errors),
            actions=tuple(actions[a] for a in sorted(actions)),
            tracked=MappingProxyType({**snapshot.tracked, **self._runner_states}),
        )

    async def _first_step(self, core_jobs: list[Poll[Any]]) -> tuple[bool, list[Tenant]]:
        """The system itself: its tenant list and core values. Returns whether all of it
        answered, and the tenants to poll (on failure the last good list: tenants are never
        forgotten because a request failed). Trips the breaker when every request failed
        the way a system that is not answering fails."""
        listed, *core = await asyncio.gather(
            self._current_tenants(), *(self._run_job(j, None) for j in core_jobs)
        )
        failures = [o for o in (listed, *core) if isinstance(o, PbxwareError)]
        sent = len(core_jobs) + (self.system.tenants is None)
        if failures and len(failures) == sent and all(f.systemic for f in failures):
            self._breaker.trip(failures[0].reason)
        self._settle_system_jobs(core_jobs, core, self._clock())
        tenants = listed if isinstance(listed, list) else self._tenant_list or []
        return not failures, tenants

    def _abort_reason(
        self,
        memories: list[_TenantMemory],
        tenant_jobs: list[Poll[Any]],
        started: float,
        deadline: float,
    ) -> str | None:
        """Why this cycle ended early: the breaker's reason, "deadline", or None."""
        if self._breaker.reason is not None:
            return self._breaker.reason
        if time.monotonic() >= deadline and tenant_jobs:
            return "deadline" if any(m.polled_at < started for m in memories) else None
        return None

    def _age_unpolled(self, memories: list[_TenantMemory], started: float, down: bool) -> None:
        for memory in memories:
            if down:
                # The system is not answering now, whatever the tenant said earlier.
                memory.up = False
            if memory.polled_at < started:
                # Not polled this cycle: its values age toward stale_after like failed ones.
                for held in memory.held.values():
                    held.fail(self.system.stale_after)

    def _remember(self, tenants: list[Tenant]) -> None:
        """Keep one memory per tenant of the list in use; forget tenants that left it."""
        known = {t.id for t in tenants}
        for gone in set(self._tenants) - known:
            del self._tenants[gone]
        for tenant in tenants:
            memory = self._tenants.setdefault(tenant.id, _TenantMemory(tenant))
            memory.tenant = tenant

    async def _fan_out(
        self, memories: list[_TenantMemory], jobs: list[Poll[Any]], deadline: float
    ) -> None:
        """Poll every tenant until done, the breaker trips or the deadline passes."""
        if not jobs or not memories:
            return
        # Tenants a cut-short cycle did not reach go first, so none is starved.
        order = iter(sorted(memories, key=lambda m: m.polled_at))

        async def worker() -> None:
            for memory in order:  # shared: each tenant is taken by one worker
                await self._poll_tenant(memory, jobs)

        # As many tenants in progress as requests may be in flight: each has several jobs
        # queued at the client's semaphore, so the PBX gets as many requests as before.
        # Starting every tenant at once made 35,000 tasks in one turn of the event loop at
        # 5,000 tenants (scrapes waited 0.5-0.7 s), held for the whole cycle.
        workers = min(len(memories), max(1, self.system.concurrency))
        fan_out = asyncio.gather(*(worker() for _ in range(workers)))
        try:
            await self._until_done_or_tripped(fan_out, deadline)
        finally:
            if not fan_out.done():
                fan_out.cancel()
                # Let the cancelled requests unwind (they release their connections).
                await asyncio.gather(fan_out, return_exceptions=True)
            elif not fan_out.cancelled() and fan_out.exception() is not None:
                raise fan_out.exception()  # type: ignore[misc]

    async def _until_done_or_tripped(self, work: asyncio.Future[Any], deadline: float) -> None:
        """Wait for ``work`` until it is done, the breaker trips or the deadline passes."""
        tripped = asyncio.ensure_future(self._breaker.tripped.wait())
        waiting: set[asyncio.Future[Any]] = {work, tripped}
        try:
            await asyncio.wait(
                waiting,
                timeout=max(0.0, deadline - time.monotonic()),
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            tripped.cancel()

    async def _finish_system_jobs(
        self, jobs: list[Poll[Any]], tasks: list[asyncio.Future[Any]], deadline: float
    ) -> list[Any]:
        """The optional system jobs' outcomes; None for one the breaker or deadline cut."""
        if not tasks:  # the first step found the system down: they were never started
            return [None] * len(jobs)
        pending = [t for t in tasks if not t.done()]
        if pending and self._breaker.reason is None:
            together = asyncio.gather(*pending, return_exceptions=True)
            await self._until_done_or_tripped(together, deadline)
        outcomes = []
        for task in tasks:
            if task.done() and not task.cancelled():
                outcomes.append(task.result())
            else:
                task.cancel()
                outcomes.append(None)
        return outcomes

    def _settle_system_jobs(self, jobs: list[Poll[Any]], outcomes: list[Any], now: float) -> None:
        for job, outcome in zip(jobs, outcomes, strict=True):
            held = self._held.setdefault(job.key, Held())
            if outcome is None or isinstance(outcome, PbxwareError):
                held.fail(self.system.stale_after)
                continue
            held.succeed(outcome)
            tracked = self._trackers.get(job.key)
            if tracked is not None:
                tracked[1].update(outcome, now)

    def _note_abort(
        self, reason: str | None, memories: list[_TenantMemory], started: float
    ) -> None:
        if reason is not None:
            self._aborted[reason] = self._aborted.get(reason, 0) + 1
            if reason != self._last_abort:
                self._log.warning(
                    "poll_cycle_aborted",
                    reason=reason,
                    tenants_not_polled=sum(1 for m in memories if m.polled_at < started),
                    hint="the system stopped answering; polling only its core status until it"
                    " answers again"
                    if reason != "deadline"
                    else "the cycle did not finish within the interval: raise concurrency or"
                    " the interval, or shard the tenants",
                )
        elif self._last_abort is not None:
            self._log.info("poll_cycle_complete_again", after=self._last_abort)
        self._last_abort = reason

    def _publish_early(
        self, own_ok: bool, memories: list[_TenantMemory], now: float, duration: float
    ) -> None:
        snapshot = self._snapshot(own_ok, memories, now, duration, statuses=False)
        self._published_up = own_ok
        # In the background: the render after a publish must not hold up the fan-out.
        self._early = asyncio.ensure_future(self._store.put(snapshot))

    async def _current_tenants(self) -> list[Tenant] | PbxwareError:
        """The tenants to poll this cycle, or the error the tenant list failed with."""
        if self.system.tenants is not None:
            return [Tenant(id=t, name="", code="", package="") for t in self.system.tenants]
        outcome: list[Tenant] | PbxwareError = await self._call(
            TENANT_LIST, None, parse_tenants, None
        )
        if isinstance(outcome, PbxwareError):
            return outcome
        if outcome != self._tenant_list:
            self._tenant_list = outcome
        return outcome

    async def _poll_tenant(self, memory: _TenantMemory, jobs: list[Poll[Any]]) -> None:
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
        memory.polled_at = time.monotonic()

    async def _run_job(self, job: Poll[Any], tenant: str | None) -> Any:
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
            value = parse(await self._client.call(action, params, raw=raw))
            self._breaker.record(None)
            self._note_problems(action, problems_of(value))
            return value
        except PbxwareError as exc:
            self._breaker.record(exc)
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

    def _note_problems(self, action: str, problems: tuple[str, ...]) -> None:
        """An answer used field by field with some fields unreadable: one ``decode`` error
        per such answer, logged when the set of unreadable fields changes."""
        if not problems:
            self._partial.pop(action, None)
            return
        key = (action, "decode")
        self._errors[key] = self._errors.get(key, 0) + 1
        if self._partial.get(action) != problems:
            self._partial[action] = problems
            self._log.warning(
                "poll_fields_unreadable",
                action=action,
                problems=list(problems[:5]),
                hint="the readable fields are used; the others have no series",
            )

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
        self,
        own_ok: bool,
        tenants: list[_TenantMemory],
        now: float,
        duration: float,
        statuses: bool = True,
    ) -> SystemSnapshot:
        """``statuses``: the cycle is over, so its per-action results are final."""
        for action, cycle in self._cycle.items() if statuses else ():
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
            tracked=MappingProxyType(
                {
                    name: tracker.totals()
                    for key, (name, tracker) in self._trackers.items()
                    if key in self._held
                }
            ),
            aborted=MappingProxyType({r: self._aborted.get(r, 0) for r in ABORT_REASONS}),
            warnings=MappingProxyType(dict(self._client.warnings)),
            extension_metrics=self.system.extension_metrics,
            extension_metrics_limit=self.system.extension_metrics_limit,
        )


def _current(held: dict[str, Held[Any]]) -> MappingProxyType[str, Any]:
    return MappingProxyType({k: h.value for k, h in held.items() if h.value is not None})
