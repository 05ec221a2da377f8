"""What a feature is: the PBXware action(s) it polls, how each answer is read, and the metric
families it emits from the snapshots.

A feature module defines its ``Poll``s (one per action) and one ``Feature`` that ties them
to a config switch and a ``families`` function; ``exporter/features/__init__.py`` lists the
features in the order their families appear on /metrics. The poller runs every poll of every
enabled feature; the collector asks every feature for its families. Nothing else needs to
know a feature exists.

Values are read back from snapshots by their ``Poll`` object, which carries the value's
type: ``snap.value(CPU)`` is a ``float | None`` to the type checker, not an ``Any`` behind a
string key.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from prometheus_client.core import Metric

from ..config import SystemConfig
from ..families import cached_counter, cached_gauge, cached_row_gauge
from ..snapshot import ActionStatus, SystemSnapshot, ValueKey

if TYPE_CHECKING:
    from ..pbxware import PbxwareClient

T = TypeVar("T")
Scope = Literal["system", "tenant"]


@dataclass(frozen=True, eq=False)
class Poll(ValueKey[T]):
    """One action, polled once per system or once per tenant, and how its answer is read.

    ``key`` names the value in the snapshot (unique); ``core`` polls decide ``pbxware_up`` /
    ``pbxware_tenant_up``. A ``raw`` poll's ``parse`` gets the body and the format instead of
    decoded data (monitor.live_calls is not always JSON). ``params`` computes extra
    arguments from Unix time at request time (date windows).
    """

    action: str
    scope: Scope
    parse: Callable[..., T]
    core: bool = False
    raw: bool = False
    params: Callable[[float], dict[str, str]] | None = None
    # The least time between two runs, from the system's config (None: the feature's
    # schedule, which for the core is every cycle).
    every: Callable[[SystemConfig], float | None] | None = None


class Tracker(Protocol):
    """State a feature keeps across polls (archiving counts runs it has seen once)."""

    def update(self, value: Any, now: float) -> None: ...

    def totals(self) -> Any: ...


Families = Callable[[Sequence[SystemSnapshot]], Iterable[Metric]]


class RunnerState(Protocol):
    """What a runner publishes after each round: kept in the system snapshot
    (``tracked[feature name]``), its requests and errors added to the system's."""

    @property
    def requests(self) -> int: ...

    @property
    def errors(self) -> Mapping[str, int]: ...

    @property
    def status(self) -> ActionStatus | None: ...


class Runner(Protocol):
    """A feature that polls on its own schedule (CDRs: paging, minutes per round)."""

    async def run(self) -> None: ...


@dataclass(frozen=True)
class RunnerContext:
    """What the system poller gives a feature's runner."""

    system: SystemConfig
    client: PbxwareClient
    # The tenant ids to poll now (the core poll's list), None while unknown.
    tenants: Callable[[], Sequence[str] | None]
    publish: Callable[[Any], Awaitable[None]]
    clock: Callable[[], float]
    # Returns once the core poll knows the tenants.
    wait_for_tenants: Callable[[], Awaitable[None]] | None


@dataclass(frozen=True)
class Feature:
    """``name`` is the config switch (``collectors.<name>``) of an optional feature."""

    name: str
    polls: tuple[Poll[Any], ...]
    families: Families
    core: bool = False  # always polled; not switchable
    # Built per system poller; fed every good answer of the feature's first poll, its
    # totals() published in the snapshot (SystemSnapshot.tracked[name]).
    tracker: Callable[[], Tracker] | None = None
    # A feature with its own schedule: the system poller runs what this returns (None: off
    # for this system) beside its cycles, and stops it with itself.
    runner: Callable[[RunnerContext], Runner | None] | None = None


# The features' families say in their HELP that they are cached (exporter/families.py).
gauge = cached_gauge
counter = cached_counter
row_gauge = cached_row_gauge
