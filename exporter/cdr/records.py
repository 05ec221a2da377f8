"""Reading CDR rows: columns by header name, validation, direction and disposition.

The columns of ``pbxware.cdr.download`` differ between PBXware versions (10, 12 or 14
columns; no ``Tenant`` column on single-tenant systems, reference §3.7), so every column
is found by its name in the page's ``header``, never by position; unknown columns are
ignored.

Nothing read here may reach a label or a log line: From, To and the recording path are
personal data. Errors therefore name the column and the problem, never the value.

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
    key: int  # Unique ID where the header has it, else ID
    key_name: str
    caller: int | None = None
    callee: int | None = None
    billable: int | None = None
    recording: int | None = None
    location: int | None = None


def map_header(header: Sequence[Any]) -> Columns:
    positions: dict[str, int] = {}
    for index, name in enumerate(header):
        if not isinstance(name, str):
            raise HeaderError(f"header column {index} is not a name")
        positions.setdefault(_name(name), index)  # the first of two equal names wins

    def find(name: str) -> int | None:
        return positions.get(name)

    missing = [n for n in ("Date/Time", "Total Duration", "Status") if find(_name(n)) is None]
    key_name = "Unique ID" if find("unique id") is not None else "ID"
    if find(_name(key_name)) is None:
        missing.append("ID or Unique ID")
    if missing:
        raise HeaderError(f"header lacks {', '.join(missing)}")
    return Columns(
        width=len(header),
        time=positions["date/time"],
        duration=positions["total duration"],
        status=positions["status"],
        key=positions[_name(key_name)],
        key_name=key_name,
        caller=find("from"),
        callee=find("to"),
        billable=find("rating duration"),
        recording=find("recording path"),
        location=find("location type"),
    )


@dataclass(frozen=True, slots=True)
class CdrRow:
    """What we count of one record; From/To/paths are reduced to booleans and classes."""

    key: str
    timestamp: int
    direction: str
    disposition: str
    duration: int
    billable: int | None  # None when the header has no Rating Duration
    recorded: bool


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


def read_row(row: Any, cols: Columns) -> CdrRow:
    if not isinstance(row, list):
        raise RowError("row is not a list of cells")
    if len(row) != cols.width:
        raise RowError(f"row has {len(row)} cells, the header {cols.width}")
    key = _text(row, cols.key, cols.key_name)
    if not key:
        raise RowError(f"{cols.key_name} is empty")
    if len(key) > MAX_ID_LENGTH:
        raise RowError(f"{cols.key_name} is longer than {MAX_ID_LENGTH} characters")
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
        key=key,
        timestamp=timestamp,
        direction=direction(_text(row, cols.location, "Location Type"), caller, callee),
        disposition=disposition(_text(row, cols.status, "Status")),
        duration=duration,
        billable=billable,
        recorded=bool(_text(row, cols.recording, "Recording Path")),
    )


def rejected_key(row: Any, cols: Columns) -> str:
    """How a bad row is recognised when the overlap returns it again: its record id if it
    has a usable one, else a digest of the whole row (never the row itself: memory and
    personal data)."""
    if isinstance(row, list) and cols.key < len(row):
        value = row[cols.key]
        if isinstance(value, str) and 0 < len(value.strip()) <= MAX_ID_LENGTH:
            return "\x00" + value.strip()
    text = json.dumps(row, sort_keys=True, default=str, ensure_ascii=True)
    return "\x00#" + hashlib.blake2b(text.encode(), digest_size=12).hexdigest()
