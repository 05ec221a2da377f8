"""Failed logins per client address: a throttle (429 + Retry-After) and a log limiter.

Both keep one small entry per client address, in a dict bounded by MAX_CLIENTS: an
attacker with many addresses makes us forget the oldest ones rather than grow without end.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MAX_CLIENTS = 10_000


@dataclass
class _Bucket:
    tokens: float
    at: float


class FailureThrottle:
    """A token bucket of failures per client: ``burst`` failures at once, then one every
    ``refill_seconds``. A client with an empty bucket is refused before any password check,
    so a guesser gets ``burst`` guesses and then one per ``refill_seconds``."""

    def __init__(
        self,
        burst: int,
        refill_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst = burst
        self.refill_seconds = refill_seconds
        self.clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def _bucket(self, client: str) -> _Bucket | None:
        bucket = self._buckets.get(client)
        if bucket is None:
            return None
        now = self.clock()
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) / self.refill_seconds)
        bucket.at = now
        if bucket.tokens >= self.burst:  # full again: nothing to remember
            del self._buckets[client]
            return None
        return bucket

    def retry_after(self, client: str) -> int | None:
        """None if ``client`` may try; else the seconds until it may (for Retry-After)."""
        bucket = self._bucket(client)
        if bucket is None or bucket.tokens >= 1:
            return None
        return max(1, math.ceil((1 - bucket.tokens) * self.refill_seconds))

    def failed(self, client: str) -> None:
        bucket = self._bucket(client)
        if bucket is None:
            bucket = self._buckets[client] = _Bucket(float(self.burst), self.clock())
            while len(self._buckets) > MAX_CLIENTS:
                self._buckets.popitem(last=False)
        self._buckets.move_to_end(client)
        bucket.tokens = max(0.0, bucket.tokens - 1)


class FailureLog:
    """One log line per client per ``period`` seconds, with the count of failures since the
    previous line: 2,000 guesses make one line a minute, not 2,000. A count still pending
    when the guessing stops is reported with the client's next failure."""

    def __init__(
        self,
        log: Any,
        event: str,
        period: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = log
        self._event = event
        self.period = period
        self.clock = clock
        self._clients: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def failed(self, client: str, **fields: Any) -> None:
        now = self.clock()
        last, pending = self._clients.get(client, (-math.inf, 0))
        pending += 1
        if now - last >= self.period:
            self._log.warning(self._event, client=client, failures=pending, **fields)
            last, pending = now, 0
        self._clients[client] = (last, pending)
        self._clients.move_to_end(client)
        while len(self._clients) > MAX_CLIENTS:
            self._clients.popitem(last=False)
