"""Throttling failed authentication per client, and rate-limiting the log lines it causes.

Nothing here knows about tokens or HTTP: a "client" is any string key, normally
``client_key(request.remote)``. Both classes keep a bounded number of clients (least recently
seen dropped first), so that no number of distinct addresses can grow memory without limit,
and take an injectable clock so that tests move time instead of sleeping.

The one throttle of the exporter: the admin API uses it for its tokens
(exporter/admin/routes.py) and the listener for basic auth (exporter/web/webconfig.py), with
the same defaults: 10 failures in a sliding minute, then a block of a minute that doubles on
each further hit, up to 15 minutes.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]


def retry_after(seconds: float) -> str:
    """A Retry-After header value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))


def client_key(remote: str | None) -> str:
    """The throttling key of a peer address: the IPv4 address, or the IPv6 /64.

    An IPv6 host usually owns a whole /64, so keying by full address would give it 2^64
    fresh budgets; an IPv4-mapped IPv6 address counts as its IPv4 address.
    """
    if not remote:
        return "-"
    try:
        address = ipaddress.ip_address(remote.split("%", 1)[0])
    except ValueError:
        return remote[:64]  # a Unix socket path or the like: one key, cut short
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


@dataclass
class _Client:
    failures: deque[float] = field(default_factory=deque)
    strikes: int = 0  # how often the limit was hit; each time the block doubles
    blocked_until: float = 0.0
    last_failure: float = 0.0


class FailureThrottle:
    """At most ``limit`` failures per client in a sliding ``window``; then a block.

    The block lasts ``window`` seconds the first time and doubles each time the client hits
    the limit again (up to ``max_block``); a client without failures for ``max_block``
    seconds starts over. While blocked a client is refused before its credentials are even
    checked: otherwise a guess that happens to be right would still tell the guesser so.
    A success does not clear the record, or a client with one valid read token could reset
    its budget for guessing the others.
    """

    def __init__(
        self,
        limit: int = 10,
        window: float = 60.0,
        max_block: float = 900.0,
        max_clients: int = 4096,
        clock: Clock = time.monotonic,
    ) -> None:
        if limit < 1 or window <= 0 or max_block < window or max_clients < 1:
            raise ValueError("limit >= 1, window > 0, max_block >= window, max_clients >= 1")
        self.limit = limit
        self.window = window
        self.max_block = max_block
        self.max_clients = max_clients
        self.clock = clock
        self._clients: OrderedDict[str, _Client] = OrderedDict()

    def __len__(self) -> int:
        return len(self._clients)

    def blocked(self, client: str) -> float | None:
        """Seconds until ``client`` may try again, or None if it may now."""
        entry = self._clients.get(client)
        if entry is None:
            return None
        wait = entry.blocked_until - self.clock()
        return wait if wait > 0 else None

    def failure(self, client: str) -> float | None:
        """Count a failed attempt; returns the block's length if this one started a block."""
        now = self.clock()
        entry = self._clients.get(client)
        if entry is None:
            entry = _Client()
            self._clients[client] = entry
            while len(self._clients) > self.max_clients:
                self._clients.popitem(last=False)
        else:
            self._clients.move_to_end(client)
        if entry.last_failure and now - entry.last_failure > self.max_block:
            entry.strikes = 0
        entry.last_failure = now
        while entry.failures and entry.failures[0] <= now - self.window:
            entry.failures.popleft()
        entry.failures.append(now)
        if len(entry.failures) < self.limit:
            return None
        entry.failures.clear()
        entry.strikes += 1
        block: float = min(self.window * 2.0 ** min(entry.strikes - 1, 32), self.max_block)
        entry.blocked_until = now + block
        return block


class LogLimiter:
    """At most one log line per key per ``interval``; the next one says how many were not
    written. ``allow(key)`` returns that count (0 or more) when a line may be written, None
    when it must be dropped."""

    def __init__(
        self, interval: float = 60.0, max_keys: int = 4096, clock: Clock = time.monotonic
    ) -> None:
        self.interval = interval
        self.max_keys = max_keys
        self.clock = clock
        self._keys: OrderedDict[str, list[float]] = OrderedDict()  # key -> [logged_at, dropped]

    def __len__(self) -> int:
        return len(self._keys)

    def allow(self, key: str) -> int | None:
        now = self.clock()
        entry = self._keys.get(key)
        if entry is not None:
            self._keys.move_to_end(key)
            if now - entry[0] < self.interval:
                entry[1] += 1
                return None
            dropped = int(entry[1])
            entry[0], entry[1] = now, 0
            return dropped
        self._keys[key] = [now, 0]
        while len(self._keys) > self.max_keys:
            self._keys.popitem(last=False)
        return 0
