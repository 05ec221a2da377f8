"""CDRs of the simulator: ``pbxware.cdr.download`` and the ground truth behind it.

Calls are a pure function of (seed, system, tenant, minute): each minute of each tenant
with enabled extensions has a deterministic handful of calls (``calls_per_hour`` on
average) between its extensions and outside numbers, so any window can be answered without
storing history, and the same seed always gives the same CDRs. Tests add their own calls
at chosen times with ``add_call()`` and ``add_ring_group()``.

Calls and legs: a share (``ring_groups``) of inbound and internal calls ring a group of 2–3
extensions. As in Asterisk, every leg is its own row with its own row id (``ID``), and the
legs share the caller's ``Unique ID``; one leg is answered (the others ring until then and
are ``Cancelled``) or none is (each leg ``No Answer`` or ``Busy``, at least one rang). The
ground truth (``calls()``) counts calls: answered if a leg was, else no_answer if a leg
rang, else busy, else failed; duration and billable time of the answered leg. Where the
header has no ``Unique ID`` nobody can tell legs apart from calls, so there every row is a
call in the ground truth too.

A record becomes visible when the call ends (Date/Time is the call's start, PBXware
writes the CDR at its end; all legs of a call at once), measured on the simulator clock
(``SystemState.now``, moved by ticks); so records appear "late" and straddle poll windows,
as on a real PBX.

The answer follows reference §3.7: ``{"success", "next_page", "limit", "records", "header",
"csv"}``, ``header`` null and ``csv`` [] when empty, every cell a string, Date/Time in Unix
seconds, extension parties as ``"Name (1001)"``. Header profiles: ``legacy`` (10 columns),
``current`` (12), ``extended`` (+ Unique ID and MOS, placed so that positions differ from
``current``); ``tenant_column=False`` drops ``Tenant`` as single-tenant systems do. A few
rows (``malformed_ratio``) are deliberately broken.

GUESSES: the Status, Location Type and Rating Cost values, the Tenant cell (the tenant
code), ``records`` (rows on this page), ``limit`` above 1000 clamped to 1000, the time zone
(UTC unless ``timezone`` says otherwise), the error texts, and that starttime/endtime bound
one continuous range from ``start`` + ``starttime`` to ``end`` + ``endtime``. The filters
``ext``, ``extdst``, ``trunk``, ``trunkdst``, ``status`` and ``cdrtype`` are ignored.
"""

from __future__ import annotations

import random
import re
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .api import ApiError, Context, Params, Payload, _date, _server
from .state import SystemModel, SystemState, TenantState

ACTION = "pbxware.cdr.download"
DEFAULT_LIMIT = 16  # CONFIRMED (reference §3.7)
MAX_LIMIT = 1000  # CONFIRMED

ERROR_BAD_TIME = "Invalid time format. Use hh:mm:ss."  # GUESS
ERROR_BAD_TIMEZONE = "Invalid timezone."  # GUESS
ERROR_BAD_NUMBER = "Invalid value for {name}."  # GUESS
SUCCESS = "CDR download"  # GUESS

# Longest ring and talk times: a CDR is visible at most this long after its Date/Time, so an
# exporter overlap at least this long never misses one.
MAX_RING = 45
MAX_TALK = 900
MAX_CALL_SECONDS = MAX_RING + MAX_TALK

LEGACY = (
    "Tenant", "From", "To", "Date/Time", "Total Duration", "Rating Duration", "Rating Cost",
    "Status", "ID", "Recording Path",
)  # fmt: skip
CURRENT = (*LEGACY, "Recording Available", "Location Type")
EXTENDED = (
    "Tenant", "From", "To", "Date/Time", "Total Duration", "Rating Duration", "Rating Cost",
    "Status", "ID", "Unique ID", "Recording Path", "Recording Available", "Location Type", "MOS",
)  # fmt: skip
# The ID column holds the row's own id (PBXware's AcctId) in every profile; Unique ID, where
# the header has it, the call's (issue 16).
PROFILES = {"legacy": LEGACY, "current": CURRENT, "extended": EXTENDED}

_STATUS_CURRENT = {
    "answered": "Answered", "no_answer": "Unanswered", "busy": "Busy", "failed": "Failed",
}  # fmt: skip
_STATUS = {
    "legacy": {**_STATUS_CURRENT, "no_answer": "No Answer"},
    "current": _STATUS_CURRENT,
    # "Not Answered" and "Cancelled" are what third-party importers see [SONIQ-CDR].
    "extended": {**_STATUS_CURRENT, "no_answer": "Not Answered"},
}
CANCELLED = "Cancelled"  # a leg that rang until another leg answered

DIRECTIONS = ("inbound", "outbound", "internal", "unknown")
DISPOSITIONS = ("answered", "no_answer", "busy", "failed")
MALFORMED = ("short_row", "bad_duration", "bad_cell", "bad_time")
_OUTBOUND_LOCATIONS = ("Local", "National", "International", "Mobile")
_RECORDINGS = "/opt/pbxware/pw/var/spool/asterisk/monitor"  # GUESS, after [BICOM-DIAG]
_TIME = re.compile(r"(\d{2}):(\d{2}):(\d{2})")


@dataclass(frozen=True)
class CdrOptions:
    profile: str = "current"  # legacy | current | extended
    tenant_column: bool = True  # False: no Tenant column, as on single-tenant systems
    calls_per_hour: float = 30.0  # generated calls per tenant (with extensions), on average
    malformed_ratio: float = 0.01  # share of generated rows that are broken
    ring_groups: float = 0.25  # share of inbound and internal calls that ring 2-3 phones
    # A PBX that ignores the `timezone` argument and reads dates and times in this zone
    # (no client in the evidence sends `timezone`, so whether PBXware honours it is unknown).
    pbx_timezone: str | None = None

    def validate(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"cdr profile must be one of {', '.join(PROFILES)}")
        if not self.calls_per_hour >= 0:
            raise ValueError("calls_per_hour must be >= 0")
        if not 0 <= self.malformed_ratio <= 1:
            raise ValueError("malformed_ratio must be between 0 and 1")
        if not 0 <= self.ring_groups <= 1:
            raise ValueError("ring_groups must be between 0 and 1")
        if self.pbx_timezone is not None:
            try:
                ZoneInfo(self.pbx_timezone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown pbx_timezone {self.pbx_timezone!r}") from None


@dataclass(frozen=True, slots=True)
class CdrCall:
    """The ground truth of one call, however many legs (rows) it has."""

    tenant: str
    uid: str  # Unique ID of its legs
    timestamp: int  # its earliest leg's Date/Time
    direction: str
    disposition: str  # answered, no_answer, busy, failed
    duration: int  # Total Duration of the answered leg; 0 unanswered
    billable: int  # talk time of the answered leg
    cost: float  # sum of the legs' Rating Cost
    mos: float | None  # MOS of the answered leg
    legs: int


@dataclass(frozen=True, slots=True)
class CdrRecord:
    """One row (a call, or one leg of it) as the simulator knows it: the cells it renders
    and the truth behind them."""

    tenant: str
    uid: str  # Asterisk-style "<epoch>.<n>": the Unique ID column, shared by the call's legs
    row_id: str  # the ID column: the row's own id
    timestamp: int  # Date/Time: when the call started
    caller: str  # From
    callee: str  # To
    direction: str  # truth: inbound, outbound, internal, unknown
    disposition: str  # truth: answered, no_answer, busy, failed
    duration: int  # Total Duration: ring + talk
    billable: int  # Rating Duration: talk time of answered calls
    cost: str
    recording: str  # Recording Path; "" without a recording
    location: str  # Location Type
    mos: str
    malformed: str | None = None  # the defect its row carries (then it is no countable call)
    written: int | None = None  # when PBXware writes it; None: at the end of its own leg
    cancelled: bool = False  # rang until another leg answered: Status "Cancelled"
    legs: int = 1  # how many rows its call has

    @property
    def written_at(self) -> int:
        """When PBXware writes the record: at the end of the call (all legs at once)."""
        return self.timestamp + self.duration if self.written is None else self.written

    def as_call(self) -> CdrCall:
        """The row as a call of its own."""
        answered = self.disposition == "answered"
        return CdrCall(
            tenant=self.tenant,
            uid=self.uid,
            timestamp=self.timestamp,
            direction=self.direction,
            disposition=self.disposition,
            duration=self.duration if answered else 0,
            billable=self.billable if answered else 0,
            cost=float(self.cost or 0),
            mos=float(self.mos) if answered and self.mos else None,
            legs=1,
        )


_ORDER = ("answered", "no_answer", "busy", "failed")


def _call_of(legs: list[CdrRecord]) -> CdrCall:
    """The truth of a call from its legs (the simulator made them, so it knows)."""
    disposition = min((leg.disposition for leg in legs), key=_ORDER.index)
    answered = [leg for leg in legs if leg.disposition == "answered"]
    first = min(legs, key=lambda leg: (leg.timestamp, leg.row_id))
    won = max(answered, key=lambda leg: leg.duration) if answered else None
    return CdrCall(
        tenant=first.tenant,
        uid=first.uid,
        timestamp=first.timestamp,
        direction=first.direction,
        disposition=disposition,
        duration=won.duration if won else 0,
        billable=won.billable if won else 0,
        cost=sum(float(leg.cost or 0) for leg in legs),
        mos=float(won.mos) if won is not None and won.mos else None,
        legs=len(legs),
    )


def _party(name: str, number: str) -> str:
    return f"{name} ({number})"


def _outside_number(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return f"0{rng.randrange(10**8, 10**9)}"
    return f"+1{rng.randrange(10**9, 10**10)}"


class CdrBook:
    """The CDRs of one system."""

    def __init__(self, name: str, seed: int, options: CdrOptions, model: SystemModel) -> None:
        options.validate()
        self.name = name
        self.options = options
        self._seed = seed
        self._model = model
        self._header = PROFILES[options.profile]
        if not options.tenant_column:
            self._header = tuple(c for c in self._header if c != "Tenant")
        self._added: dict[tuple[str, int], list[CdrRecord]] = {}
        self._added_count = 0
        self._written_apart: set[tuple[str, int]] = set()  # minutes with legs written late
        # Generated minutes, most recently used last; bounded so that memory stays flat.
        self._minutes: OrderedDict[tuple[str, int], list[CdrRecord]] = OrderedDict()
        self._parties: dict[str, list[str]] = {}

    @property
    def header(self) -> tuple[str, ...]:
        return self._header

    def actions(self) -> dict[str, Callable[[Context], Payload]]:
        return {ACTION: self.download}

    # --- ground truth and test calls -------------------------------------------------------

    def records(
        self, tenant: str, start: int, end: int, visible_at: float | None = None
    ) -> list[CdrRecord]:
        """The CDRs of ``tenant`` dated ``start``..``end`` (inclusive) that PBXware has
        written by ``visible_at`` (default: the simulator clock now), in answer order."""
        state = self._model.state
        now = int(state.now if visible_at is None else visible_at)
        if tenant not in state.tenants:
            raise KeyError(f"unknown tenant {tenant!r}")
        out: list[CdrRecord] = []
        for minute in range(start // 60, end // 60 + 1):
            out.extend(self._visible(state, tenant, minute, start, end, now))
        return out

    def calls(
        self, tenant: str, start: int, end: int, visible_at: float | None = None
    ) -> list[CdrCall]:
        """The ground truth: the calls of ``tenant`` that started ``start``..``end`` with a
        leg written by ``visible_at``, broken rows left out. Where the header has no
        ``Unique ID`` every row is a call (nobody can tell legs apart there)."""
        good = [r for r in self.records(tenant, start, end, visible_at) if r.malformed is None]
        if "Unique ID" not in self._header:
            calls = [r.as_call() for r in good]
        else:
            legs: dict[str, list[CdrRecord]] = {}
            for record in good:
                legs.setdefault(record.uid, []).append(record)
            calls = [_call_of(group) for group in legs.values()]
        if "MOS" not in self._header:  # what the exporter cannot see is not in the truth
            calls = [replace(c, mos=None) for c in calls]
        return calls

    def add_ring_group(
        self,
        tenant: str,
        at: int,
        statuses: tuple[str, ...] = ("cancelled", "answered"),
        *,
        direction: str = "inbound",
        ring: int = 5,
        talk: int = 60,
        written: tuple[int, ...] | None = None,
    ) -> list[CdrRecord]:
        """A call that rings ``len(statuses)`` phones at ``at``: one leg per status
        (answered, cancelled, no_answer, busy, failed). Each leg is written at the end of
        the call unless ``written`` gives its own time (a PBX that writes legs apart)."""
        state = self._model.state
        if tenant not in state.tenants:
            raise KeyError(f"unknown tenant {tenant!r}")
        parties = self._tenant_parties(state.tenants[tenant]) or ["Reception (100)"]
        number = self._added_count
        self._added_count += 1
        rng = random.Random(f"{self._seed}/{self.name}/{tenant}/added/{number}")
        legs = self._legs(
            rng, tenant, parties, at, f"{at}.{tenant}1{number:05d}", f"9{number:07d}",
            direction, statuses, ring, talk,
        )  # fmt: skip
        minute = at // 60
        if written is not None:
            legs = [replace(leg, written=w) for leg, w in zip(legs, written, strict=True)]
            self._written_apart.add((tenant, minute))
        self._added.setdefault((tenant, minute), []).extend(legs)
        self._minutes.pop((tenant, minute), None)
        return legs

    def add_call(
        self,
        tenant: str,
        at: int,
        *,
        direction: str = "inbound",
        disposition: str = "answered",
        duration: int = 60,
        billable: int | None = None,
        recorded: bool = False,
        malformed: str | None = None,
    ) -> CdrRecord:
        """A call of ``tenant`` that started at ``at`` and lasted ``duration`` seconds."""
        if direction not in DIRECTIONS or disposition not in DISPOSITIONS:
            raise ValueError(f"unknown direction {direction!r} or disposition {disposition!r}")
        if malformed is not None and malformed not in MALFORMED:
            raise ValueError(f"malformed must be one of {', '.join(MALFORMED)}")
        state = self._model.state
        if tenant not in state.tenants:
            raise KeyError(f"unknown tenant {tenant!r}")
        parties = self._tenant_parties(state.tenants[tenant]) or ["Reception (100)"]
        rng = random.Random(f"{self._seed}/{self.name}/{tenant}/added/{self._added_count}")
        talk = duration if disposition == "answered" else 0
        record = self._record(
            rng,
            tenant,
            parties,
            at,
            uid=f"{at}.{tenant}1{self._added_count:05d}",
            row_id=f"9{self._added_count:07d}0",
            direction=direction,
            disposition=disposition,
            ring=0,
            talk=talk,
            total=duration,
        )
        record = replace(
            record,
            billable=talk if billable is None else billable,
            recording=f"{_RECORDINGS}/{tenant}/{record.uid}.wav" if recorded else "",
            malformed=malformed,
        )
        self._added_count += 1
        minute = at // 60
        # Kept unsorted: _minute() sorts them in with the generated calls.
        self._added.setdefault((tenant, minute), []).append(record)
        self._minutes.pop((tenant, minute), None)
        return record

    # --- the action ------------------------------------------------------------------------

    def download(self, ctx: Context) -> Payload:
        params = ctx.params
        start_day, end_day = _date(ctx, "start"), _date(ctx, "end")
        start_time = _time(params.get("starttime") or "00:00:00")
        end_time = _time(params.get("endtime") or "23:59:59")
        try:
            tz = ZoneInfo(params.get("timezone") or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            raise ApiError(ERROR_BAD_TIMEZONE) from None
        if self.options.pbx_timezone is not None:
            tz = ZoneInfo(self.options.pbx_timezone)  # checked, then ignored
        page = _number(params, "page", 1)
        limit = min(_number(params, "limit", DEFAULT_LIMIT), MAX_LIMIT)
        lo = int(datetime.combine(start_day, start_time, tz).timestamp())
        hi = int(datetime.combine(end_day, end_time, tz).timestamp())
        server = _server(ctx, required=False)
        if server is None:
            tenants = sorted(ctx.state.tenants, key=int)
        else:
            tenants = [] if server not in ctx.state.tenants else [server]
        now = int(ctx.state.now)
        rows, more = self._page(ctx.state, tenants, lo, hi, now, (page - 1) * limit, limit)
        return {
            "success": SUCCESS,
            "next_page": more,
            "limit": limit,
            "records": len(rows),
            "header": list(self._header) if rows else None,
            "csv": [self._row(ctx.state, r) for r in rows],
        }

    def _page(
        self,
        state: SystemState,
        tenants: list[str],
        lo: int,
        hi: int,
        now: int,
        skip: int,
        limit: int,
    ) -> tuple[list[CdrRecord], bool]:
        """Rows skip..skip+limit of the answer, and whether more follow."""
        rows: list[CdrRecord] = []
        for tenant, minute in _segments(tenants, lo, hi):
            records = self._visible(state, tenant, minute, lo, hi, now)
            if not records:
                continue
            if len(rows) == limit:
                return rows, True
            if skip >= len(records):
                skip -= len(records)
                continue
            taken = records[skip : skip + limit - len(rows)]
            rows.extend(taken)
            if skip + len(taken) < len(records):
                return rows, True
            skip = 0
        return rows, False

    # --- generation ------------------------------------------------------------------------

    def _visible(
        self, state: SystemState, tenant: str, minute: int, lo: int, hi: int, now: int
    ) -> list[CdrRecord]:
        records = self._minute(state, tenant, minute)
        first, last = minute * 60, minute * 60 + 59
        whole = (tenant, minute) not in self._written_apart
        if whole and lo <= first and last <= hi and last + MAX_CALL_SECONDS <= now:
            return records  # the whole minute is in range and written: no filtering
        return [r for r in records if lo <= r.timestamp <= hi and r.written_at <= now]

    def _minute(self, state: SystemState, tenant: str, minute: int) -> list[CdrRecord]:
        key = (tenant, minute)
        cached = self._minutes.get(key)
        if cached is not None:
            self._minutes.move_to_end(key)
            return cached
        records = self._generate(state.tenants[tenant], minute)
        added = self._added.get(key)
        if added:
            records = sorted([*records, *added], key=lambda r: (r.timestamp, r.row_id))
        self._minutes[key] = records
        if len(self._minutes) > 4096:
            self._minutes.popitem(last=False)
        return records

    def _tenant_parties(self, tenant: TenantState) -> list[str]:
        parties = self._parties.get(tenant.id)
        if parties is None:
            parties = [
                _party(e.name, e.number)
                for e in tenant.extensions.values()
                if e.status == "enabled"
            ]
            self._parties[tenant.id] = parties
        return parties

    def _generate(self, tenant: TenantState, minute: int) -> list[CdrRecord]:
        parties = self._tenant_parties(tenant)
        rate = self.options.calls_per_hour / 60
        if not parties or rate <= 0:
            return []
        rng = random.Random(f"{self._seed}/{self.name}/{tenant.id}/cdr/{minute}")
        # Mean `rate`: floor(x + U) has mean x for U uniform on [0, 1).
        count = int(rate * rng.uniform(0.5, 1.5) + rng.random())
        records = []
        for i in range(count):
            at = minute * 60 + int(rng.random() * 60)
            roll = rng.random()
            direction = (
                "inbound" if roll < 0.4 else "outbound" if roll < 0.8 else "internal"
                if roll < 0.98 else "unknown"
            )  # fmt: skip
            roll = rng.random()
            disposition = (
                "answered" if roll < 0.7 else "no_answer" if roll < 0.88 else "busy"
                if roll < 0.95 else "failed"
            )  # fmt: skip
            uid, row_id = f"{at}.{tenant.id}0{i:05d}", f"{minute}{i:04d}"
            if direction in ("inbound", "internal") and rng.random() < self.options.ring_groups:
                records.extend(self._ring_group(rng, tenant.id, parties, at, uid, row_id,
                                                direction, disposition))  # fmt: skip
                continue
            if disposition == "answered":
                ring, talk = rng.randint(2, 30), min(MAX_TALK, int(rng.expovariate(1 / 120)) + 1)
            elif disposition == "no_answer":
                ring, talk = rng.randint(15, MAX_RING), 0
            elif disposition == "busy":
                ring, talk = rng.randint(0, 5), 0
            else:
                ring, talk = 0, 0
            record = self._record(
                rng,
                tenant.id,
                parties,
                at,
                uid=uid,
                row_id=f"{row_id}0",
                direction=direction,
                disposition=disposition,
                ring=ring,
                talk=talk,
                total=ring + talk,
            )
            if rng.random() < self.options.malformed_ratio:
                record = replace(record, malformed=MALFORMED[rng.randrange(len(MALFORMED))])
            records.append(record)
        records.sort(key=lambda r: (r.timestamp, r.row_id))
        return records

    def _ring_group(
        self,
        rng: random.Random,
        tenant: str,
        parties: list[str],
        at: int,
        uid: str,
        row_id: str,
        direction: str,
        disposition: str,
    ) -> list[CdrRecord]:
        """The 2-3 legs of a generated ring-group call with the given outcome."""
        count = rng.randint(2, 3)
        if disposition == "answered":
            statuses = ["cancelled"] * count
            statuses[rng.randrange(count)] = "answered"
            ring = rng.randint(2, 30)
            talk = min(MAX_TALK, int(rng.expovariate(1 / 120)) + 1)
        elif disposition == "no_answer":
            # Some phones may be busy; at least one rang (the caller heard it ring).
            statuses = ["busy" if rng.random() < 0.3 else "no_answer" for _ in range(count)]
            statuses[rng.randrange(count)] = "no_answer"
            ring, talk = rng.randint(15, MAX_RING), 0
        else:
            statuses = [disposition] * count
            ring, talk = (rng.randint(0, 5) if disposition == "busy" else 0), 0
        return self._legs(
            rng, tenant, parties, at, uid, row_id, direction, tuple(statuses), ring, talk
        )

    def _legs(
        self,
        rng: random.Random,
        tenant: str,
        parties: list[str],
        at: int,
        uid: str,
        row_id: str,
        direction: str,
        statuses: tuple[str, ...],
        ring: int,
        talk: int,
    ) -> list[CdrRecord]:
        """One row per leg, all dated ``at`` with the caller's ``uid`` and written when
        the call ends."""
        if direction not in ("inbound", "internal"):
            raise ValueError("a ring group is called from outside or from an extension")
        caller = _outside_number(rng) if direction == "inbound" else parties[0]
        end = at + ring + talk
        legs = []
        for n, status in enumerate(statuses):
            if status not in (*DISPOSITIONS, "cancelled"):
                raise ValueError(f"unknown leg status {status!r}")
            answered = status == "answered"
            total = ring + talk if answered else (ring if status != "failed" else 0)
            leg = self._record(
                rng, tenant, parties, at, uid=uid, row_id=f"{row_id}{n + 1}",
                direction=direction,
                disposition="no_answer" if status == "cancelled" else status,
                ring=ring, talk=talk if answered else 0, total=total,
            )  # fmt: skip
            legs.append(replace(
                leg, caller=caller, written=end, cancelled=status == "cancelled",
                legs=len(statuses),
            ))  # fmt: skip
        return legs

    def _record(
        self,
        rng: random.Random,
        tenant: str,
        parties: list[str],
        at: int,
        *,
        uid: str,
        row_id: str,
        direction: str,
        disposition: str,
        ring: int,
        talk: int,
        total: int,
    ) -> CdrRecord:
        extension = parties[rng.randrange(len(parties))]
        other = parties[rng.randrange(len(parties))]
        outside = _outside_number(rng)
        caller, callee, location = {
            "inbound": (outside, extension, "Incoming"),
            "outbound": (extension, outside, _OUTBOUND_LOCATIONS[rng.randrange(4)]),
            "internal": (extension, other, "Internal"),
            "unknown": (outside, _outside_number(rng), ""),
        }[direction]
        answered = disposition == "answered"
        recorded = answered and rng.random() < 0.3
        cost = f"{talk / 60 * 0.02:.2f}" if answered and direction == "outbound" else "0.00"
        return CdrRecord(
            tenant=tenant,
            uid=uid,
            row_id=row_id,
            timestamp=at,
            caller=caller,
            callee=callee,
            direction=direction,
            disposition=disposition,
            duration=total,
            billable=talk if answered else 0,
            cost=cost,
            recording=f"{_RECORDINGS}/{tenant}/{uid}.wav" if recorded else "",
            location=location,
            mos=f"{rng.uniform(2.0, 4.6):.2f}" if answered else "",
        )

    # --- rendering -------------------------------------------------------------------------

    def _row(self, state: SystemState, record: CdrRecord) -> list[object]:
        tenant = state.tenants.get(record.tenant)
        cells: dict[str, object] = {
            "Tenant": tenant.code if tenant else "",
            "From": record.caller,
            "To": record.callee,
            "Date/Time": str(record.timestamp),
            "Total Duration": str(record.duration),
            "Rating Duration": str(record.billable),
            "Rating Cost": record.cost,
            "Status": (
                CANCELLED if record.cancelled else _STATUS[self.options.profile][record.disposition]
            ),
            "ID": record.row_id,
            "Unique ID": record.uid,
            "Recording Path": record.recording,
            "Recording Available": "True" if record.recording else "False",
            "Location Type": record.location,
            "MOS": record.mos,
        }
        if record.malformed == "bad_duration":
            cells["Total Duration"] = "n/a"
        elif record.malformed == "bad_cell":
            cells["From"] = {"name": "?", "number": None}
        elif record.malformed == "bad_time":
            cells["Date/Time"] = "yesterday"
        row = [cells[name] for name in self._header]
        if record.malformed == "short_row":
            row.pop()
        return row


def _segments(tenants: list[str], lo: int, hi: int) -> Iterator[tuple[str, int]]:
    for tenant in tenants:
        for minute in range(lo // 60, hi // 60 + 1):
            yield tenant, minute


def _time(text: str) -> time:
    match = _TIME.fullmatch(text)
    if match is None:
        raise ApiError(ERROR_BAD_TIME)
    hours, minutes, seconds = (int(g) for g in match.groups())
    if hours > 23 or minutes > 59 or seconds > 59:
        raise ApiError(ERROR_BAD_TIME)
    return time(hours, minutes, seconds)


def _number(params: Params, name: str, default: int) -> int:
    text = params.get(name, "")
    if not text:
        return default
    if not text.isdigit() or int(text) < 1:
        raise ApiError(ERROR_BAD_NUMBER.format(name=name))
    return int(text)
