"""Time windows of CDR requests and how PBXware wants them written.

PBXware takes a window as ``start``/``end`` dates (``mmm-dd-YYYY``, English month names)
plus ``starttime``/``endtime`` (``hh:mm:ss``), both in the time zone it is told (reference
§3.7). Whether ``starttime``/``endtime`` bound one continuous range or a time of day on
every date is not documented, so every request we send stays inside one local calendar
day, where both readings select the same records. Requests are also at most an hour long,
which bounds the memory of de-duplication (exporter/features/cdr/seen.py) for a huge window.

Windows are whole Unix seconds and inclusive at both ends, like ``23:59:59``; the Date/Time
of a CDR is whole seconds too, so consecutive windows leave no gap.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from ...pbxware.dates import pbxware_date

MAX_CHUNK_SECONDS = 3600


@dataclass(frozen=True)
class Window:
    start: int  # Unix seconds, inclusive
    end: int  # Unix seconds, inclusive

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"window ends ({self.end}) before it starts ({self.start})")

    def __contains__(self, timestamp: int) -> bool:
        return self.start <= timestamp <= self.end


def pbxware_time(timestamp: int, tz: ZoneInfo) -> str:
    moment = datetime.fromtimestamp(timestamp, tz)
    return f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"


def _next_midnight(timestamp: int, tz: ZoneInfo) -> int:
    """The first second of the local day after the one ``timestamp`` falls in."""
    day = datetime.fromtimestamp(timestamp, tz).date() + timedelta(days=1)
    return int(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp())


def chunks(window: Window, tz: ZoneInfo, max_seconds: int = MAX_CHUNK_SECONDS) -> Iterator[Window]:
    """``window`` cut at local midnights and into pieces of at most ``max_seconds``."""
    start = window.start
    while start <= window.end:
        end = min(window.end, start + max_seconds - 1, _next_midnight(start, tz) - 1)
        yield Window(start, end)
        start = end + 1


def request_params(window: Window, tz: ZoneInfo) -> dict[str, str]:
    """The date and time arguments of ``pbxware.cdr.download`` for one window."""
    return {
        "start": pbxware_date(window.start, tz),
        "end": pbxware_date(window.end, tz),
        "starttime": pbxware_time(window.start, tz),
        "endtime": pbxware_time(window.end, tz),
        # Said explicitly so that the PBX does not read the times in its own zone.
        "timezone": tz.key,
    }
