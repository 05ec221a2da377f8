"""The CDR poller of one system: per tenant, fetch the CDRs since the last poll and count
each record once.

Every ``cdr.interval`` a round walks the tenants one after another (so CDR paging uses at
most one of the system's ``concurrency`` request slots) and asks each for the window from
its watermark minus ``overlap`` up to now, in requests of at most an hour inside one local
day (exporter/features/cdr/window.py), page by page. Per tenant:

- ``origin``: records dated before it are history and never counted. It is the time of the
  first round minus ``cdr.backfill``, so a (re)start counts from 0 and fetches no history
  unless asked; a tenant that appears later starts one interval plus the overlap before it
  was first seen.
- ``watermark``: every record dated up to it has been fetched. It moves only when all pages
  of a request succeeded, so a failed request is asked again next round, whole. Rows of the
  failed request's earlier pages were already counted, and their ids are still remembered,
  so the retry skips them: nothing is lost and nothing is counted twice.
- ``seen``: ids of counted (and rejected) rows whose Date/Time a later request can still
  cover (exporter/features/cdr/seen.py).
- ``calls``: calls whose legs can still change, held back until the overlap has passed
  their start (exporter/features/cdr/calls.py); rows count at once, calls when they close.

Records written later than ``overlap`` after their Date/Time (calls longer than the
overlap, which PBXware writes when they end) are missed: raise ``overlap`` to cover your
longest calls.

Failures count in the same request/error counters as the core poller's (the system poller
merges them into the system snapshot). A page with rows we cannot read counts one ``decode``
error and only those rows are skipped. Nothing of a record is logged, at any level.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from zoneinfo import ZoneInfo

import structlog

from ...config import SystemConfig
from ...pbxware import PbxwareClient, PbxwareError
from ...snapshot import ActionStatus
from .calls import LATE, Call, CallBook
from .counters import CdrSnapshot, TenantCounters
from .page import ACTION, Page, parse_page
from .records import RowError, read_row, row_key, row_time
from .seen import SeenIds
from .window import Window, chunks, request_params
from .zone import ZoneGuess

# A safety stop for a server that never says next_page=false: 10 million rows per hour.
MAX_PAGES = 10_000
# Unknown Status values are logged once each; beyond this many the rest are not (a server
# writing garbage must not fill memory or the log).
MAX_UNKNOWN_STATUSES = 64
_WORD = re.compile(r"[A-Za-z][A-Za-z _/-]{0,39}")

Publish = Callable[[CdrSnapshot], Awaitable[None]]
TenantIds = Callable[[], Sequence[str] | None]


@dataclass
class _Tenant:
    id: str
    origin: int
    watermark: int  # records dated up to here were fetched; origin - 1 before the first
    counters: TenantCounters = field(default_factory=TenantCounters)
    seen: SeenIds = field(default_factory=SeenIds)
    calls: CallBook = field(default_factory=CallBook)
    fetched: bool = False  # at least one window was fetched completely


@dataclass
class _Failure:
    tenant: str
    reason: str


async def _nothing() -> None:
    return None


class CdrPoller:
    def __init__(
        self,
        system: SystemConfig,
        client: PbxwareClient,
        tenants: TenantIds,
        publish: Publish | None = None,
        clock: Callable[[], float] = time.time,
        wait_for_tenants: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """``tenants`` returns the tenant ids to poll now, or None while unknown (an empty
        list is treated as unknown too: a failed tenant list must not drop counters).
        ``clock`` gives Unix time; tests drive it."""
        self.system = system
        self.config = system.cdr
        self._client = client
        self._tenant_ids = tenants
        self._publish = publish
        self._clock = clock
        self._wait_for_tenants = wait_for_tenants or _nothing
        self._tz = ZoneInfo(self.config.timezone)
        self._log = structlog.get_logger("exporter.cdr").bind(system=system.name)
        self._origin: int | None = None
        self._had_tenants = False
        self._tenants: dict[str, _Tenant] = {}
        self._rounds = 0
        self._requests = 0
        self._errors: dict[str, int] = {}
        self._duplicates = 0
        self._late_legs = 0
        self._unknown_statuses: set[str] = set()
        self._outside = 0
        self._zone = ZoneGuess()
        # The first request start after the shift last changed (tests and the benchmark).
        self.zone_adapted_from: int | None = None
        self._last_success: float | None = None
        self._failing: str | None = None  # the reason, while rounds fail
        self.last: CdrSnapshot | None = None

    async def run(self) -> None:
        """Poll every ``cdr.interval``, never overlapping a round; first once the tenants
        are known."""
        await self._wait_for_tenants()
        while True:
            started = time.monotonic()
            try:
                await self.poll_once()
            except Exception:
                # A bug in one round must not end CDR polling for good.
                self._log.exception("cdr_poll_crashed")
            await asyncio.sleep(max(0.0, self.config.interval - (time.monotonic() - started)))

    async def poll_once(self) -> CdrSnapshot:
        started = time.monotonic()
        now = int(self._clock())
        if self._origin is None:
            self._origin = now - int(self.config.backfill)
        self._sync_tenants(now)
        failures: list[_Failure] = []
        for tenant in list(self._tenants.values()):
            reason = await self._poll_tenant(tenant, now)
            if reason is not None:
                failures.append(_Failure(tenant.id, reason))
        self._rounds += 1
        self._log_round(failures)
        snapshot = self._snapshot(failures, time.monotonic() - started)
        self.last = snapshot
        if self._publish is not None:
            await self._publish(snapshot)
        return snapshot

    def _sync_tenants(self, now: int) -> None:
        ids = self._tenant_ids()
        if not ids:
            return
        assert self._origin is not None
        for gone in set(self._tenants) - set(ids):
            del self._tenants[gone]
        # A tenant that shows up later is most likely new: it starts a little before it
        # was first seen rather than at the origin (which may be months back).
        late = now - int(self.config.interval + self.config.overlap)
        origin = max(self._origin, late) if self._had_tenants else self._origin
        for tid in ids:
            if tid not in self._tenants:
                self._tenants[tid] = _Tenant(tid, origin=origin, watermark=origin - 1)
        self._had_tenants = True

    async def _poll_tenant(self, tenant: _Tenant, now: int) -> str | None:
        """Fetch the tenant's window; the failure reason, or None when all of it came."""
        start = max(tenant.origin, tenant.watermark + 1 - int(self.config.overlap))
        if now < start:
            return None  # the clock went back; nothing new to ask for
        shift = self._zone.shift
        # Cut at the midnights of the windows as the PBX will read them.
        for asked in chunks(Window(start + shift, now + shift), self._tz):
            chunk = Window(asked.start - shift, asked.end - shift)
            reason = await self._fetch(tenant, chunk, asked)
            if reason is not None:
                return reason
            tenant.watermark = chunk.end
            tenant.fetched = True
            # No later request returns rows dated before the next one's start.
            horizon = chunk.end + 1 - int(self.config.overlap)
            tenant.seen.forget_before(horizon)
            for call in tenant.calls.close_before(horizon, int(self.config.overlap)):
                tenant.counters.count_call(call)
            if self._zone.shift != shift:
                # The rest of this window, and the other tenants, in the PBX's zone.
                self.zone_adapted_from = max(tenant.origin, horizon)
                return None
        return None

    async def _fetch(self, tenant: _Tenant, chunk: Window, asked: Window) -> str | None:
        """Fetch ``chunk`` by asking for ``asked`` (``chunk`` moved by the zone shift)."""
        params = request_params(asked, self._tz)
        dated: list[int] = []  # oldest and newest Date/Time of the rows, for the zone guess
        params["server"] = tenant.id
        params["limit"] = str(self.config.page_size)
        for number in range(1, MAX_PAGES + 1):
            params["page"] = str(number)
            self._requests += 1
            try:
                data = await self._client.call(ACTION, params, request_timeout=self.config.timeout)
            except PbxwareError as exc:
                # The client's decode message quotes the start of the body, which may hold
                # CDR data: it is left out, at every level.
                message = None if exc.reason == "decode" else exc.message
                return self._failed(tenant, number, exc.reason, message)
            try:
                page = parse_page(data, self.config.page_size)
            except PbxwareError as exc:
                return self._failed(tenant, number, exc.reason, exc.message)  # names no values
            if self._count(tenant, page, chunk, number, dated):
                self._errors["decode"] = self._errors.get("decode", 0) + 1
            if not page.next_page:
                if dated:
                    self._observe_zone(chunk, dated[0], dated[1])
                return None
            if not page.rows:
                return self._failed(tenant, number, "decode", "next_page on an empty page")
        return self._failed(tenant, MAX_PAGES, "decode", f"more than {MAX_PAGES} pages")

    def _failed(self, tenant: _Tenant, page: int, reason: str, message: str | None) -> str:
        self._errors[reason] = self._errors.get(reason, 0) + 1
        self._log.debug(
            "cdr_request_failed", tenant=tenant.id, page=page, reason=reason, error=message
        )
        return reason

    def _count(
        self, tenant: _Tenant, page: Page, chunk: Window, number: int, dated: list[int]
    ) -> int:
        """Count the page's new records; returns how many rows were newly rejected.
        ``dated`` keeps [oldest, newest] Date/Time of the rows seen in the request."""
        cols = page.columns
        if cols is None:
            return 0
        counters, seen = tenant.counters, tenant.seen
        rejected = 0
        for index, raw in enumerate(page.rows):
            timestamp = row_time(raw, cols)
            if timestamp is not None:
                if not dated:
                    dated.extend((timestamp, timestamp))
                elif timestamp < dated[0]:
                    dated[0] = timestamp
                elif timestamp > dated[1]:
                    dated[1] = timestamp
            if timestamp is not None and timestamp not in chunk:
                # Not what we asked for (a server reading the window in another zone, say):
                # counting it could count it twice, as its id may be forgotten already.
                self._outside += 1
                continue
            try:
                row = read_row(raw, cols)
            except RowError as exc:
                # A bad row returned again by the overlap is rejected once.
                # Without a readable Date/Time the row may be dated anywhere in the chunk:
                # remembered until no request can cover the chunk's end again.
                if seen.add(row_key(raw, cols), chunk.end if timestamp is None else timestamp):
                    counters.rejected += 1
                    rejected += 1
                    self._log.debug(
                        "cdr_row_rejected",
                        tenant=tenant.id,
                        page=number,
                        row=index,
                        problem=str(exc),
                    )
                continue
            if not seen.add(row.key, row.timestamp):
                self._duplicates += 1
                continue
            counters.count_row(row)
            if row.status is not None:
                self._unknown_status(row.status)
            call = tenant.calls.add(row)
            if isinstance(call, Call):
                counters.count_call(call)
            elif call == LATE:
                self._late_legs += 1
        return rejected

    def _observe_zone(self, chunk: Window, oldest: int, newest: int) -> None:
        shift = self._zone.observe(chunk, oldest, newest)
        if shift is None:
            return
        # Once per change: the zone the PBX evidently reads our dates and times in.
        ours = datetime.fromtimestamp(chunk.end, self._tz).utcoffset() or timedelta(0)
        offset = int(ours.total_seconds()) + shift
        sign = "-" if offset < 0 else "+"
        hours, minutes = divmod(abs(offset) // 60, 60)
        self._log.warning(
            "cdr_timezone_ignored",
            configured=self.config.timezone,
            pbx_utc_offset=f"{sign}{hours:02d}:{minutes:02d}",
            shift_seconds=shift,
            hint="PBXware reads CDR dates in its own zone; set cdr.timezone to it",
        )

    def _unknown_status(self, status: str) -> None:
        """Log each Status value we cannot classify once (it counts as ``unknown``). Only
        a word is quoted: a cell full of digits could be a phone number."""
        if status in self._unknown_statuses or len(self._unknown_statuses) >= MAX_UNKNOWN_STATUSES:
            return
        self._unknown_statuses.add(status)
        shown = status if _WORD.fullmatch(status) else f"<not a word, {len(status)} characters>"
        self._log.warning("cdr_status_unknown", status=shown, counted_as="unknown")

    def _log_round(self, failures: list[_Failure]) -> None:
        """One line when CDR polling starts failing (or fails differently), one when it
        recovers; not one per tenant per round."""
        if not failures:
            if self._failing is not None:
                self._failing = None
                self._log.info("cdr_poll_recovered", action=ACTION)
            return
        reason = failures[0].reason
        if self._failing == reason:
            return
        self._failing = reason
        self._log.warning(
            "cdr_poll_failed",
            action=ACTION,
            reason=reason,
            tenant=failures[0].tenant,
            failed_tenants=len(failures),
        )

    def _snapshot(self, failures: list[_Failure], duration: float) -> CdrSnapshot:
        now = self._clock()
        if not failures:
            self._last_success = now
        error = None
        if failures:
            first = failures[0]
            # Only the reason: the landing page shows this, and a message could quote data.
            error = f"{first.reason} (tenant {first.tenant}; {len(failures)} failed)"
        return CdrSnapshot(
            system=self.system.name,
            interval=self.config.interval,
            rounds=self._rounds,
            tenants=tuple(
                t.counters.freeze(t.id, t.watermark if t.fetched else None, len(t.calls))
                for t in sorted(self._tenants.values(), key=lambda t: _tenant_order(t.id))
            ),
            duplicates=self._duplicates,
            late_legs=self._late_legs,
            zone_shift=self._zone.shift,
            outside_window=self._outside,
            requests=self._requests,
            errors=MappingProxyType(dict(self._errors)),
            status=ActionStatus(
                action=ACTION,
                ok=not failures,
                duration=duration,
                last_success=self._last_success,
                last_error=error,
            ),
        )

    def tenant_state(self, tenant: str) -> tuple[int, int, int]:
        """(origin, watermark, remembered ids) of a tenant, for tests and the benchmark."""
        t = self._tenants[tenant]
        return t.origin, t.watermark, len(t.seen)


def _tenant_order(tenant: str) -> tuple[int, str]:
    return (int(tenant), tenant) if tenant.isdigit() else (1 << 62, tenant)
