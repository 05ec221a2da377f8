"""Slow and idle connections: a deadline for request headers and a cap on open connections.

aiohttp has a keep-alive timeout (``keepalive_timeout``), which since 3.10 also runs from
the moment a connection is made, but no timeout for reading a request's headers: a client
that sends one header line every few seconds keeps its connection, its file descriptor
and its buffers for as long as the keep-alive allows (an hour by default), and aiohttp
has no limit on connections. 2,000 such clients held 2,021 descriptors for 100 s.

So every connection goes through a small protocol wrapper (GuardedRunner installs it; it
forwards every call to aiohttp's own RequestHandler):

- Header deadline: from the moment a connection is made, and from the first byte of each
  later request, a client has ``header_timeout`` seconds to deliver the request's complete
  headers (the moment our middleware sees the request). Otherwise the connection is closed.
  The deadline does not run while a request is being handled (a slow admin edit, a big
  /metrics body being written), nor for a kept-alive connection that sends nothing (the
  keep-alive timeout governs those).
- Cap: at most ``max_connections`` connections are open. A new one over the cap closes the
  oldest connection that is not in the middle of a request (waiting for headers or idle
  between requests); if every connection is busy, the new one is closed instead. A flood
  of slow connections thus pushes out its own kind, and a scrape, which sends its headers
  at once, still gets through.

Not covered: a TLS handshake happens before a connection reaches this wrapper; asyncio
bounds it (60 s, ``ssl_handshake_timeout``, which aiohttp's TCPSite does not expose), and
such connections do not count against the cap (docs/security.md, "Listener").
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web
from aiohttp.web_protocol import RequestHandler

HEADER_TIMEOUT = 10.0  # seconds for a request's headers (Go: http.Server.ReadHeaderTimeout)
MAX_CONNECTIONS = 512  # Prometheus' --web.max-connections default
KEEPALIVE_TIMEOUT = 75.0  # idle seconds between requests (aiohttp 3.14's default: 3,630)
LOG_PERIOD = 60.0  # seconds between two connections_closed lines


class _Connection(asyncio.Protocol):
    """Wraps one aiohttp RequestHandler; tracks whether a request is in flight."""

    def __init__(self, guard: ConnectionGuard, inner: RequestHandler) -> None:
        self._guard = guard
        self.inner = inner
        self.busy = 0  # requests of this connection being handled
        self._deadline: asyncio.TimerHandle | None = None
        self._closed = False

    # asyncio.Protocol, forwarded to aiohttp

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.inner.connection_made(transport)
        if self._guard.opened(self):
            self._start_deadline()

    def data_received(self, data: bytes) -> None:
        if self.busy == 0 and self._deadline is None:
            self._start_deadline()  # the first bytes of a new request
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        inner: asyncio.Protocol = self.inner  # aiohttp's returns None; the protocol allows True
        return inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._stop_deadline()
        self._guard.closed(self)
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    # the guard

    def _start_deadline(self) -> None:
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(self._guard.header_timeout, self._header_timeout)

    def _stop_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _header_timeout(self) -> None:
        self._deadline = None
        if self.busy == 0 and not self._closed:
            self._guard.count("header_timeout")
            self.close()

    def request_started(self) -> None:
        self._stop_deadline()
        self.busy += 1

    def request_finished(self) -> None:
        self.busy -= 1

    def close(self) -> None:
        self._stop_deadline()
        if not self._closed:
            self._closed = True
            self.inner.force_close()  # closes the transport: connection_lost follows


class ConnectionGuard:
    """The protocol factory that asyncio's server calls once per accepted connection: it
    wraps what aiohttp's ``web.Server`` makes. Other attributes are the server's."""

    def __init__(self, server: web.Server, header_timeout: float, max_connections: int) -> None:
        self._server = server
        self.header_timeout = header_timeout
        self.max_connections = max_connections
        self._open: dict[_Connection, None] = {}  # oldest first
        self._by_handler: dict[RequestHandler, _Connection] = {}
        self.peak = 0  # most connections open at once, after the cap was applied
        self.closed_by_guard: dict[str, int] = {"header_timeout": 0, "evicted": 0, "refused": 0}
        self._log = structlog.get_logger("exporter.web")
        self._logged_at = -LOG_PERIOD

    def __call__(self) -> _Connection:
        return _Connection(self, self._server())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)

    def count(self, reason: str) -> None:
        self.closed_by_guard[reason] += 1
        # At most one line a minute, with the totals so far: a flood makes few lines.
        now = time.monotonic()
        if now - self._logged_at >= LOG_PERIOD:
            self._logged_at = now
            self._log.warning("connections_closed", open=len(self._open), **self.closed_by_guard)

    def opened(self, conn: _Connection) -> bool:
        """Admit ``conn``; False if it was closed at once (over the cap, all others busy)."""
        self._open[conn] = None
        self._by_handler[conn.inner] = conn
        if len(self._open) > self.max_connections:
            victim = next((c for c in self._open if c.busy == 0 and c is not conn), conn)
            self.count("evicted" if victim is not conn else "refused")
            del self._open[victim]  # now, not at connection_lost: the count stays exact
            victim.close()
        self.peak = max(self.peak, len(self._open))
        return conn in self._open

    def closed(self, conn: _Connection) -> None:
        self._open.pop(conn, None)
        self._by_handler.pop(conn.inner, None)

    @property
    def open_connections(self) -> int:
        return len(self._open)

    @web.middleware
    async def middleware(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        """Marks the request's connection busy: its headers are complete."""
        conn = self._by_handler.get(request.protocol)
        if conn is None:  # a server not made by GuardedRunner (tests' TestServer)
            return await handler(request)
        conn.request_started()
        try:
            return await handler(request)
        finally:
            conn.request_finished()


class GuardedRunner(web.AppRunner):
    """web.AppRunner whose connections go through a ConnectionGuard (see the module)."""

    def __init__(
        self,
        app: web.Application,
        *,
        header_timeout: float = HEADER_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("keepalive_timeout", KEEPALIVE_TIMEOUT)
        super().__init__(app, **kwargs)
        self._header_timeout = header_timeout
        self._max_connections = max_connections
        self.guard: ConnectionGuard | None = None
        # First, so that the deadline stops before authentication (a bcrypt check) starts.
        app.middlewares.insert(0, self._middleware)

    @web.middleware
    async def _middleware(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        if self.guard is None:
            return await handler(request)
        return await self.guard.middleware(request, handler)

    async def _make_server(self) -> web.Server:
        # BaseRunner's hook for making the protocol factory that sites listen with.
        server = await super()._make_server()
        self.guard = ConnectionGuard(server, self._header_timeout, self._max_connections)
        return self.guard  # type: ignore[return-value]
