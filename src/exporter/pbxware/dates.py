"""PBXware's date arguments: ``mmm-dd-YYYY`` with English month abbreviations."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

# strftime("%b") follows the process locale; PBXware wants English whatever ours is.
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def pbxware_date(timestamp: float, tz: tzinfo = UTC) -> str:
    day = datetime.fromtimestamp(timestamp, tz)
    return f"{_MONTHS[day.month - 1]}-{day.day:02d}-{day.year:04d}"
