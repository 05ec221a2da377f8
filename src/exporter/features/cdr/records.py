"""Reading CDR rows: columns by header name, validation, direction and disposition.

The columns of ``pbxware.cdr.download`` differ between PBXware versions (10, 12 or 14
columns; no ``Tenant`` column on single-tenant systems, reference §3.7), so every column
is found by its name in the page's ``header``, never by position; unknown columns are
ignored.

Nothing read here may reach a label or a log line: From, To and the recording path are
personal data. Errors therefore name the column and the problem, never the value.

Rows and calls (issue 16): PBXware's CDRs come from Asterisk, where every leg of a ring-group,
queue or forwarded call is its own row and the legs share the caller's ``Unique ID``. A row is
identified by its own row id (the ``ID`` column) where the header has one, else by a digest
of its whole content; ``Unique ID``, where the header has it, says which call the row is a
leg of (exporter/features/cdr/calls.py merges the legs).

Direction is a GUESS (PBXware documents no vocabulary for it): ``Location Type`` decides
when it literally names a direction (Incoming, Outgoing, Internal, …); otherwise the
parties do: PBXware writes an extension party as ``"Name (2001)"``, so extension → extension
is internal, extension → other is outbound, other → extension is inbound, and anything else
is unknown. Values such as "Local", "National" or "Mobile" describe where a number is, not
who called whom, so they leave the decision to the parties.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

DIRECTIONS = ("inbound", "outbound", "internal", "unknown")
DISPOSITIONS = ("answered", "no_answer", "busy", "failed", "unknown")
# The disposition of a call none of whose legs was answered is the best of its legs', in
# this order: a caller who heard any phone ring and nobody answer was not answered, even if
# another phone of the group was busy; busy only when no phone rang; failed only when every
# leg failed; unknown last. (Answered beats everything.)
DISPOSITION_RANK = {d: i for i, d in enumerate(DISPOSITIONS)}

# A record id longer than this is not an id; refusing it keeps the dedup memory bounded.
MAX_ID_LENGTH = 128
# Longer than any real call (a stuck channel included); beyond it a cell is garbage.
MAX_DURATION = 31 * 86400

_STATUS = {
    "answered": "answered",
    "answer": "answered",
    "no answer": "no_answer",
    "noanswer": "no_answer",
    "unanswered": "no_answer",
    "not answered": "no_answer",
    "missed": "no_answer",
    # The caller hung up (or another leg answered) while this leg rang: Asterisk's CANCEL
    # dial status. Seen by third-party importers besides the documented values [SONIQ-CDR];
    # for the caller it is a call nobody answered.
    "cancelled": "no_answer",
    "canceled": "no_answer",
    "busy": "busy",
    "failed": "failed",
    "fail": "failed",
    "congestion": "failed",
    "chanunavail": "failed",
}

_LOCATION = {
    "incoming": "inbound",
    "inbound": "inbound",
    "in": "inbound",
    "outgoing": "outbound",
    "outbound": "outbound",
    "out": "outbound",
    "internal": "internal",
    "extension": "internal",
    "local extension": "internal",
}

# "Phil (2001)": a name, then the extension number in parentheses (reference §3.7).
_EXTENSION_PARTY = re.compile(r"\(\s*\d+\s*\)\s*$")
_SEPARATORS = re.compile(r"[\s_-]+")
_CLOCK = re.compile(r"^(?:(\d+):)?([0-5]?\d):([0-5]\d)$")
_TRUE = frozenset({"true", "yes", "1", "y"})
# MOS is a mean opinion score from 1 (bad) to 5 (excellent); PBXware writes 0 or nothing
# for a leg without a measurement ([SONIQ-CDR] treats 0 as none).
MOS_MIN, MOS_MAX = 1.0, 5.0


def _name(text: str) -> str:
    """Header names and vocabulary compared case- and spacing-insensitively."""
    return _SEPARATORS.sub(" ", text).strip().lower()


class HeaderError(ValueError):
    """A header the rows cannot be read with (a required column is missing)."""


class RowError(ValueError):
    """A row that cannot be counted; the message names the problem, never a value."""


@dataclass(frozen=True)
class Columns:
    """Where each column we use sits in this page's rows."""

    width: int
    time: int
    duration: int
    status: int
    row_id: int | None = None  # ID: the row's own id (PBXware's AcctId)
    call_id: int | None = None  # Unique ID: the call the row is a leg of
    caller: int | None = None
    callee: int | None = None
    billable: int | None = None
    recording: int | None = None  # Recording Path
    recording_available: int | None = None  # Recording Available: preferred over the path
    location: int | None = None
    cost: int | None = None  # Rating Cost
    mos: int | None = None  # MOS

    @property
    def needed(self) -> int:
        """A row needs at least this many cells: the header's own width (a shorter row
        may have lost any cell, so its positions cannot be trusted)."""
        return self.width


def map_header(header: Sequence[Any]) -> Columns:
    positions: dict[str, int] = {}
    for index, name in enumerate(header):
        if not isinstance(name, str):
            raise HeaderError(f"header column {index} is not a name")
        positions.setdefault(_name(name), index)  # the first of two equal names wins

    def find(name: str) -> int | None:
        return positions.get(name)

    missing = [n for n in ("Date/Time", "Total Duration", "Status") if find(_name(n)) is None]
    if missing:
        raise HeaderError(f"header lacks {', '.join(missing)}")
    return Columns(
        width=len(header),
        time=positions["date/time"],
        duration=positions["total duration"],
        status=positions["status"],
        row_id=find("id"),
        call_id=find("unique id"),
        caller=find("from"),
        callee=find("to"),
        billable=find("rating duration"),
        recording=find("recording path"),
        recording_available=find("recording available"),
        location=find("location type"),
        cost=find("rating cost"),
        mos=find("mos"),
    )


@dataclass(frozen=True, slots=True)
class CdrRow:
    """What we count of one record; From/To/paths are reduced to booleans and classes."""

    key: str  # the row: its ID, else a digest of its cells
    call: str | None  # its Unique ID; None: the row is a call of its own
    timestamp: int
    direction: str
    disposition: str
    duration: int
    billable: int | None  # None when the header has no Rating Duration
    recorded: bool
    cost: float | None = None  # Rating Cost; None when absent or not a number >= 0
    mos: float | None = None  # MOS; None when absent, 0 or not a score
    status: str | None = None  # the Status text, only when it maps to "unknown"


def _text(row: Sequence[Any], index: int | None, column: str) -> str:
    if index is None:
        return ""
    value = row[index]
    # Cells are strings in every known answer; numbers and null are tolerated as such.
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise RowError(f"{column} is not a text cell")
    return str(value).strip()


def _soft_text(row: Sequence[Any], index: int | None) -> str:
    """An optional cell (cost, MOS): a cell of the wrong type counts as empty rather than
    losing the whole row."""
    try:
        return _text(row, index, "")
    except RowError:
        return ""


def _seconds(text: str, column: str) -> int:
    """Whole seconds from ``"65"``, ``"65.0"`` or ``"0:01:05"``; empty means 0."""
    if not text:
        return 0
    clock = _CLOCK.match(text)
    if clock:
        hours, minutes, seconds = clock.groups()
        value = int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds)
    else:
        try:
            number = float(text)
        except ValueError:
            raise RowError(f"{column} is not a number of seconds") from None
        if number != number or number < 0:  # NaN or negative
            raise RowError(f"{column} is negative or not a number")
        value = int(number)
    if value > MAX_DURATION:
        raise RowError(f"{column} is longer than {MAX_DURATION} seconds")
    return value


def _timestamp(text: str) -> int:
    if not text.isdigit():
        # PBXware sends Unix seconds; a formatted date would need a time zone we don't know.
        raise RowError("Date/Time is not Unix seconds")
    return int(text)


def row_time(row: Any, cols: Columns) -> int | None:
    """The row's Date/Time if it can be read at all, else None."""
    if not isinstance(row, list) or cols.time >= len(row):
        return None
    try:
        return _timestamp(_text(row, cols.time, "Date/Time"))
    except RowError:
        return None


def disposition(status: str) -> str:
    return _STATUS.get(_name(status), "unknown")


def is_extension(party: str) -> bool:
    return bool(_EXTENSION_PARTY.search(party))


def direction(location: str, caller: str, callee: str) -> str:
    explicit = _LOCATION.get(_name(location))
    if explicit is not None:
        return explicit
    from_ext, to_ext = is_extension(caller), is_extension(callee)
    if from_ext and to_ext:
        return "internal"
    if from_ext:
        return "outbound"
    if to_ext:
        return "inbound"
    return "unknown"


def _number(text: str) -> float | None:
    """A decimal such as ``"0.02"``; None for an empty, non-numeric or infinite cell."""
    try:
        value = float(text.replace(",", ".")) if text else None
    except ValueError:
        return None
    if value is None or value != value or value in (float("inf"), float("-inf")):
        return None
    return value


def _cost(text: str) -> float | None:
    value = _number(text)
    # A counter cannot go down: a negative cost (a refund?) is not added.
    return value if value is not None and value >= 0 else None


def _mos(text: str) -> float | None:
    value = _number(text)
    return value if value is not None and MOS_MIN <= value <= MOS_MAX else None


def _recorded(row: Sequence[Any], cols: Columns) -> bool:
    if cols.recording_available is not None:
        # "True"/"False" [INTEG, SONIQ-CDR]; the path may be filled for a recording
        # that is gone, so the flag wins where the header has it.
        return _name(_text(row, cols.recording_available, "Recording Available")) in _TRUE
    return bool(_text(row, cols.recording, "Recording Path"))


def row_key(row: Any, cols: Columns) -> str:
    """How a row is recognised when a later request returns it again: its ID where the
    header has one and the cell holds a usable id, else a digest of the whole row (never
    the row itself: memory and personal data)."""
    if isinstance(row, list) and cols.row_id is not None and cols.row_id < len(row):
        value = row[cols.row_id]
        if isinstance(value, int | str) and not isinstance(value, bool):
            text = str(value).strip()
            if 0 < len(text) <= MAX_ID_LENGTH:
                return "\x00" + text
    text = json.dumps(row, sort_keys=True, default=str, ensure_ascii=True)
    return "\x00#" + hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def read_row(row: Any, cols: Columns) -> CdrRow:
    if not isinstance(row, list):
        raise RowError("row is not a list of cells")
    # Extra trailing cells are fine (a newer PBXware may add columns after the header we
    # know of); fewer than the header names are not.
    if len(row) < cols.needed:
        raise RowError(f"row has {len(row)} cells, the header {cols.width}")
    call = _text(row, cols.call_id, "Unique ID") or None
    if call is not None and len(call) > MAX_ID_LENGTH:
        raise RowError(f"Unique ID is longer than {MAX_ID_LENGTH} characters")
    status = _text(row, cols.status, "Status")
    kind = disposition(status)
    timestamp = _timestamp(_text(row, cols.time, "Date/Time"))
    duration = _seconds(_text(row, cols.duration, "Total Duration"), "Total Duration")
    billable = (
        None
        if cols.billable is None
        else _seconds(_text(row, cols.billable, "Rating Duration"), "Rating Duration")
    )
    caller = _text(row, cols.caller, "From")
    callee = _text(row, cols.callee, "To")
    return CdrRow(
        key=row_key(row, cols),
        call=call,
        timestamp=timestamp,
        direction=direction(_text(row, cols.location, "Location Type"), caller, callee),
        disposition=kind,
        duration=duration,
        billable=billable,
        recorded=_recorded(row, cols),
        cost=None if cols.cost is None else _cost(_soft_text(row, cols.cost)),
        mos=None if cols.mos is None else _mos(_soft_text(row, cols.mos)),
        status=status if kind == "unknown" else None,
    )
