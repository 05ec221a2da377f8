"""The floor of a poll cycle (issue 18): the exporter's own requests, recorded as its client
sends them and replayed by a bare aiohttp client that reads every body and decodes none.

The request list is never written down here: a ``Recorder`` hooked into the exporter's
client (``PbxwareClient.trace_configs``) records what a cycle asked, and ``replay`` sends
exactly that again, with the client's connection limit and the poller's concurrency and
order. The recorded URLs hold the API key in their query string: nothing here prints them.
"""

from __future__ import annotations

import asyncio
import resource
import time
from dataclasses import dataclass, field
from types import SimpleNamespace

import aiohttp
from yarl import URL

from exporter.config import SystemConfig
from exporter.features import schedule
from exporter.poller import TENANT_LIST


@dataclass(frozen=True)
class Request:
    method: str
    url: URL = field(repr=False)  # holds the API key: never printed

    def __str__(self) -> str:
        return f"{self.method} {action_of(self)}"


def action_of(request: Request) -> str:
    return request.url.query.get("action", "")


class Recorder:
    """Records every request a session with ``config`` starts, in the order they start
    (after the client's semaphore: the order in which they went out)."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.recording = True  # False: requests pass unrecorded (a frozen hook stays put)
        self.config = aiohttp.TraceConfig()
        self.config.on_request_start.append(self._started)

    async def _started(
        self,
        _session: aiohttp.ClientSession,
        _context: SimpleNamespace,
        params: aiohttp.TraceRequestStartParams,
    ) -> None:
        if self.recording:
            self.requests.append(Request(params.method, params.url))

    def take(self) -> list[Request]:
        """The requests recorded since the last take."""
        taken, self.requests = self.requests, []
        return taken


def first_step(system: SystemConfig) -> frozenset[str]:
    """The actions of a cycle's first step (exporter/poller.py): the tenant list and the
    system's core values. The fan-out to the tenants waits for them, so the floor does too."""
    core = (poll.action for poll, _ in schedule(system) if poll.scope == "system" and poll.core)
    return frozenset({TENANT_LIST, *core})


def waves(requests: list[Request], system: SystemConfig) -> list[list[Request]]:
    """The cycle's requests as the poller sends them: its first step, then everything else
    (the optional system jobs and every tenant's requests) at once; each in recorded order."""
    first = first_step(system)

    def in_first(request: Request) -> bool:
        return action_of(request) in first and "server" not in request.url.query

    step = [r for r in requests if in_first(r)]
    rest = [r for r in requests if not in_first(r)]
    return [wave for wave in (step, rest) if wave]


def floor_session(concurrency: int, timeout: float) -> aiohttp.ClientSession:
    """A session built as the exporter's client builds its own (exporter/pbxware/client.py):
    a connector limited to ``concurrency``, the system's timeout, the same User-Agent."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency),
        timeout=aiohttp.ClientTimeout(total=timeout),
        headers={"User-Agent": "pbxware-exporter"},
        raise_for_status=False,
    )


@dataclass(frozen=True)
class FloorRun:
    wall: float  # seconds from the first request out to the last body read
    cpu: float  # CPU seconds of this process meanwhile (user + system)
    requests: int
    body_bytes: int


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def replay(
    session: aiohttp.ClientSession, steps: list[list[Request]], concurrency: int
) -> FloorRun:
    """Send ``steps`` one after the other, the requests of each at once with at most
    ``concurrency`` in flight (a semaphore, as the client's), reading every body whole."""
    semaphore = asyncio.Semaphore(concurrency)

    async def one(request: Request) -> int:
        async with semaphore, session.request(request.method, request.url) as resp:
            body = await resp.read()
            if resp.status != 200:
                # Never the URL: it holds the key.
                raise RuntimeError(f"floor: {request} answered HTTP {resp.status}")
            return len(body)

    cpu0, t0 = _cpu(), time.perf_counter()
    sizes: list[int] = []
    for step in steps:
        sizes.extend(await asyncio.gather(*(one(r) for r in step)))
    return FloorRun(time.perf_counter() - t0, _cpu() - cpu0, len(sizes), sum(sizes))
