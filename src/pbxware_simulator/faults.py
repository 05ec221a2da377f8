"""Fault registry: which requests of which system should misbehave, and how."""

from __future__ import annotations

import asyncio
import contextlib
import math
from dataclasses import dataclass
from enum import StrEnum


class FaultKind(StrEnum):
    DOWN = "down"  # connection closed without any HTTP response
    SLOW = "slow"  # answer normally after `seconds`
    HTTP_500 = "http_500"  # web server error page
    HTML = "html"  # HTTP 200 with the web UI login page
    GARBAGE = "garbage"  # HTTP 200 with random non-JSON bytes
    ERROR = "error"  # HTTP 200 {"error": "Simulated failure."}
    WRONG_KEY = "wrong_key"  # exactly like a wrong API key
    DENIED = "denied"  # a working key that may not use this action
    TRUNCATED = "truncated"  # HTTP 200, the valid body cut in half
    NOTICE = "notice"  # a PHP notice line before the valid body
    NOTICE_HTML = "notice_html"  # the same with PHP's html_errors on (<br /><b>Notice</b>:)
    HUGE = "huge"  # HTTP 200 with a body of `seconds` x 1 MB of padding before the JSON


def parse_kind(kind: str) -> FaultKind:
    try:
        return FaultKind(kind)
    except ValueError:
        known = ", ".join(k.value for k in FaultKind)
        raise ValueError(f"unknown fault kind {kind!r}; known kinds: {known}") from None


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    tenant: str | None = None  # only requests with this `server=`
    action: str | None = None  # only this action
    seconds: float = 10.0  # how long `slow` waits

    def matches(self, tenant: str | None, action: str) -> bool:
        if self.tenant is not None and self.tenant != tenant:
            return False
        return self.action is None or self.action == action

    @property
    def specificity(self) -> int:
        return (self.tenant is not None) + (self.action is not None)

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind.value,
            "tenant": self.tenant,
            "action": self.action,
            "seconds": self.seconds,
        }


class FaultRegistry:
    """Faults per system, at most one per scope (tenant, action).

    Setting a fault for a scope that already has one replaces it. When several match a
    request, the most specific wins (tenant+action over tenant or action over system-wide).
    """

    def __init__(self, systems: tuple[str, ...]) -> None:
        self._faults: dict[str, dict[tuple[str | None, str | None], Fault]] = {
            system: {} for system in systems
        }
        # Requests sleeping in a `slow` fault wait on this; clearing faults or shutting
        # down sets it so they finish now instead of holding a runner's shutdown.
        self._release: dict[str, asyncio.Event] = {}

    def _system(self, system: str) -> dict[tuple[str | None, str | None], Fault]:
        try:
            return self._faults[system]
        except KeyError:
            raise ValueError(f"unknown system {system!r}") from None

    def set(
        self,
        system: str,
        kind: str,
        *,
        tenant: str | None = None,
        action: str | None = None,
        seconds: float = 10.0,
    ) -> Fault:
        faults = self._system(system)
        if not (isinstance(seconds, int | float) and math.isfinite(seconds) and seconds >= 0):
            raise ValueError(f"seconds must be a finite number >= 0, got {seconds!r}")
        fault = Fault(parse_kind(kind), tenant=tenant, action=action, seconds=float(seconds))
        faults[(tenant, action)] = fault
        return fault

    def clear(self, system: str | None = None) -> None:
        systems = list(self._faults) if system is None else [system]
        for name in systems:
            self._system(name).clear()
            self._wake(name)

    def release_all(self) -> None:
        for name in self._faults:
            self._wake(name)

    def _wake(self, system: str) -> None:
        event = self._release.pop(system, None)
        if event is not None:
            event.set()

    def active(self, system: str) -> list[Fault]:
        return list(self._system(system).values())

    def match(self, system: str, tenant: str | None, action: str) -> Fault | None:
        best: Fault | None = None
        for fault in self._system(system).values():
            if fault.matches(tenant, action) and (
                best is None or fault.specificity > best.specificity
            ):
                best = fault
        return best

    async def sleep(self, system: str, seconds: float) -> None:
        """Sleep for a `slow` fault; returns early when the system's faults are cleared."""
        # A fresh event per wake-up keeps each one bound to the loop that waits on it.
        event = self._release.setdefault(system, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout=seconds)
