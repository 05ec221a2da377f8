"""Calls from legs: rows that share a ``Unique ID`` are the legs of one call.

PBXware's CDRs come from Asterisk: each leg of a ring-group, queue or forwarded call is its
own row, and the legs share the calling channel's ``Unique ID`` (issue 16; docs/pbxware-api.md
§3.7). One call is counted per ``Unique ID``:

- disposition: ``answered`` if any leg was answered, else the best of its legs in the order
  of records.DISPOSITIONS (no_answer > busy > failed > unknown);
- direction: that of its earliest leg (by Date/Time, then row key) whose direction is known;
  the first leg is the caller's, later legs (queue → agent) look internal;
- duration and billable seconds: those of the answered leg (the longest, if a transfer
  answered several); an unanswered call adds none;
- cost: the sum of its legs' Rating Cost (a forwarded leg to a mobile costs on its own);
- MOS: that of the answered leg, if it carries a score.

Legs of one call can come on different pages or in different windows, so a call is held back
until its legs can no longer change: until the next request's start (the last window's end
plus one, minus ``overlap``) has passed the call's earliest leg. The poller already assumes a
record is written within ``overlap`` of its Date/Time (a later one is missed); under the same
assumption every leg of such a call has been fetched by then. A call is therefore counted
one ``overlap`` plus up to one ``interval`` after it started, and never changes afterwards:
counters never go down.

A leg that still arrives after its call was counted (written later than the overlap allows)
counts as a row but not as a call again; the call's id is remembered one more overlap for
that. A row without a ``Unique ID`` (or on a page whose header has none) is a call of its own
and is counted at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from .records import DISPOSITION_RANK, CdrRow
from .seen import SeenIds


@dataclass(frozen=True, slots=True)
class Call:
    direction: str
    disposition: str
    duration: int  # Total Duration of the answered leg; 0 for an unanswered call
    billable: int | None  # Rating Duration of the answered leg; None without the column
    cost: float | None  # sum of the legs' Rating Cost; None when no leg carried one
    mos: float | None  # MOS of the answered leg
    legs: int
    timestamp: int  # Date/Time of the earliest leg

    @classmethod
    def of(cls, row: CdrRow) -> Call:
        return _Open(row).close()


class _Open:
    """A call whose legs may still change, reduced to the few numbers the counters need
    (a burst can hold every call of a window open at once: no row is kept)."""

    __slots__ = (
        "best",
        "cost",
        "first",
        "last",
        "lead_direction",
        "lead_key",
        "lead_time",
        "legs",
        "won_billable",
        "won_duration",
        "won_key",
        "won_mos",
    )  # fmt: skip

    def __init__(self, row: CdrRow) -> None:
        self.first = self.last = row.timestamp
        self.legs = 0
        # The earliest leg (Date/Time, then row key) with a known direction.
        self.lead_time: int | None = None
        self.lead_key = ""
        self.lead_direction = "unknown"
        self.best = "unknown"
        # The answered leg (the longest, if several): its key, figures and MOS.
        self.won_key: str | None = None
        self.won_duration = 0
        self.won_billable: int | None = None
        self.won_mos: float | None = None
        self.cost: float | None = None
        self.add(row)

    def add(self, row: CdrRow) -> None:
        self.legs += 1
        if row.timestamp < self.first:
            self.first = row.timestamp
        if row.timestamp > self.last:
            self.last = row.timestamp
        if row.direction != "unknown" and (
            self.lead_time is None or (row.timestamp, row.key) < (self.lead_time, self.lead_key)
        ):
            self.lead_time, self.lead_key, self.lead_direction = (
                row.timestamp,
                row.key,
                row.direction,
            )
        if DISPOSITION_RANK[row.disposition] < DISPOSITION_RANK[self.best]:
            self.best = row.disposition
        if row.disposition == "answered" and (
            self.won_key is None or (row.duration, row.key) > (self.won_duration, self.won_key)
        ):
            self.won_key, self.won_duration = row.key, row.duration
            self.won_billable, self.won_mos = row.billable, row.mos
        if row.cost is not None:
            self.cost = row.cost if self.cost is None else self.cost + row.cost

    def close(self) -> Call:
        answered = self.won_key is not None
        return Call(
            direction=self.lead_direction,
            disposition=self.best,
            duration=self.won_duration if answered else 0,
            billable=self.won_billable if answered else None,
            cost=self.cost,
            mos=self.won_mos if answered else None,
            legs=self.legs,
            timestamp=self.first,
        )


LATE = "late"  # CallBook.add: the leg of a call that was counted already


class CallBook:
    """The calls of one tenant that are still open, and the ids of those recently closed."""

    def __init__(self) -> None:
        self._open: dict[str, _Open] = {}
        self._closed = SeenIds()
        self._oldest: int | None = None  # earliest leg of any open call: skips needless scans

    def __len__(self) -> int:
        return len(self._open)

    def add(self, row: CdrRow) -> Call | str | None:
        """Take a new row: the Call it is by itself (no Unique ID), LATE for a leg of a call
        already counted, or None while its call stays open."""
        if row.call is None:
            return Call.of(row)
        if row.call in self._closed:
            return LATE
        call = self._open.get(row.call)
        if call is None:
            self._open[row.call] = _Open(row)
        else:
            call.add(row)
        if self._oldest is None or row.timestamp < self._oldest:
            self._oldest = row.timestamp
        return None

    def close_before(self, horizon: int, overlap: int) -> list[Call]:
        """Close every call whose earliest leg is dated before ``horizon`` (no request will
        return rows dated before it again), in the order their first legs arrived."""
        closed: list[Call] = []
        if self._oldest is None or self._oldest >= horizon:
            self._closed.forget_before(horizon)
            return closed
        done = [uid for uid, call in self._open.items() if call.first < horizon]
        for uid in done:
            call = self._open.pop(uid)
            closed.append(call.close())
            self._closed.add(uid, call.last + overlap)
        self._oldest = min((c.first for c in self._open.values()), default=None)
        self._closed.forget_before(horizon)
        return closed
