"""HTTP client for one PBXware system: one aiohttp session, bounded concurrency, typed errors."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import structlog

from ..logs import Redactor
from .decode import decode_body, strip_php_diagnostics
from .errors import PbxwareError

# A PBXware answer we poll is at most a few MB (1,000 extensions ≈ 400 kB); a bigger body is
# a misbehaving server and must not exhaust our memory.
MAX_BODY_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class ClientSettings:
    """What the client needs of a system, and nothing else: the daemon builds it from the
    system's config (daemon.client_settings), so the client does not depend on the config."""

    name: str
    endpoint: str  # the full URL of the API script, e.g. https://pbx.example/index.php
    # repr=False: the key must never reach a log line through a dataclass repr.
    api_key: str = field(repr=False)
    format: str = "json"  # apiformat: json or php
    verify_tls: bool = True
    timeout: float = 10.0  # seconds per request
    concurrency: int = 4  # requests in flight at once


class PbxwareClient:
    """Sends ``action`` requests to one system; every failure is a PbxwareError."""

    def __init__(
        self,
        system: ClientSettings,
        max_body: int = MAX_BODY_BYTES,
        trace_configs: Sequence[aiohttp.TraceConfig] = (),
    ) -> None:
        """``trace_configs`` are aiohttp's request hooks, for the sessions this client builds
        (bench/poll_and_scrape.py records the requests of a cycle with one to replay them;
        the URLs they see hold the API key)."""
        self._system = system
        self._max_body = max_body
        self.trace_configs = list(trace_configs)
        self._redact = Redactor([system.api_key])
        self._semaphore = asyncio.Semaphore(system.concurrency)
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        # Answers that came with leading PHP diagnostics, per action (the poller publishes
        # them as pbxware_response_warnings_total), and the actions whose last answer had
        # them (logged once when that starts, not once per tenant per cycle).
        self.warnings: dict[str, int] = {}
        self._warning_now: set[str] = set()
        self._log = structlog.get_logger("exporter.pbxware").bind(system=system.name)

    def _get_session(self, action: str) -> aiohttp.ClientSession:
        if self._closed:
            # After close() nothing may open a new session that nobody would close.
            raise PbxwareError(action, "connect", "client closed")
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._system.concurrency,
                ssl=self._system.verify_tls,  # True: aiohttp's default verification
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self._system.timeout),
                headers={"User-Agent": "pbxware-exporter"},
                # PBXware answers errors with 200; the status is checked by hand below.
                raise_for_status=False,
                trace_configs=self.trace_configs or None,
            )
        return self._session

    async def close(self) -> None:
        self._closed = True
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def call(
        self,
        action: str,
        params: Mapping[str, str] | None = None,
        *,
        raw: bool = False,
        request_timeout: float | None = None,
    ) -> Any:
        """GET one action and return its decoded body (``raw``: the body bytes, for answers
        that are not always JSON, like monitor.live_calls). ``request_timeout`` replaces the
        system's for this request (CDR pages have their own, ``cdr.timeout``)."""
        query = {"apikey": self._system.api_key, "action": action, "apiformat": self._system.format}
        query.update(params or {})
        try:
            async with self._semaphore:
                body = await self._request(action, query, request_timeout)
            # The limit is on requests in flight at the PBX; decoding is our own time. Yield
            # once so that the request waiting for this slot goes out before this answer is
            # decoded: otherwise answers that arrive together (they do, with a steady
            # latency) hold every next request until all of them are decoded.
            await asyncio.sleep(0)
            body = self._without_diagnostics(action, body)
            return body if raw else decode_body(action, body, self._system.format)
        except PbxwareError as exc:
            raise self._redacted(exc) from None

    def _without_diagnostics(self, action: str, body: bytes) -> bytes:
        """The body after any leading PHP Notice/Warning lines, which are counted."""
        stripped, first = strip_php_diagnostics(body)
        if first is None:
            self._warning_now.discard(action)
            return body
        self.warnings[action] = self.warnings.get(action, 0) + 1
        if action not in self._warning_now:
            self._warning_now.add(action)
            self._log.warning(
                "response_warning",
                action=action,
                diagnostic=self._redact(first),
                hint="PHP prints diagnostics into API answers (display_errors on); the body"
                " after them is used",
            )
        return stripped

    async def _request(
        self, action: str, query: dict[str, str], request_timeout: float | None = None
    ) -> bytes:
        session = self._get_session(action)
        limit = self._system.timeout if request_timeout is None else request_timeout
        url = self._system.endpoint
        # Without an override the session's own timeout applies.
        request = (
            session.get(url, params=query)
            if request_timeout is None
            else session.get(url, params=query, timeout=aiohttp.ClientTimeout(total=limit))
        )
        try:
            async with request as resp:
                if resp.status >= 400:
                    raise PbxwareError(action, "http", f"HTTP {resp.status} {resp.reason or ''}")
                body = await self._read(action, resp)
        except TimeoutError:
            raise PbxwareError(action, "timeout", f"no answer within {limit:g}s") from None
        except aiohttp.ClientResponseError as exc:
            raise PbxwareError(action, "http", f"HTTP {exc.status}") from None
        except aiohttp.ClientPayloadError:
            raise PbxwareError(action, "decode", "response body broken off") from None
        except (aiohttp.ClientConnectionError, OSError) as exc:
            # str(exc) of these names host and port only, but the class name is enough.
            raise PbxwareError(action, "connect", type(exc).__name__) from None
        except aiohttp.ClientError as exc:
            raise PbxwareError(action, "http", type(exc).__name__) from None
        return body

    async def _read(self, action: str, resp: aiohttp.ClientResponse) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(256 * 1024):
            size += len(chunk)
            if size > self._max_body:
                raise PbxwareError(action, "decode", f"body larger than {self._max_body} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def _redacted(self, exc: PbxwareError) -> PbxwareError:
        # PBXware's error text, a proxy's error page or a reason phrase can quote the URL we
        # sent, percent-encoded, JSON- or HTML-escaped, cut off: this message goes to the
        # landing page, the admin API's 502 and the debug log (exporter.logs.Redactor).
        message = self._redact(exc.message)
        if message != exc.message:
            return PbxwareError(exc.action, exc.reason, message)
        return exc
