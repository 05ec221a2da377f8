"""The record ids already counted, kept only as long as a request can return them again.

Each id is stored with its record's Date/Time. Once the poller has fetched a window, the
next request starts at the window's end minus ``overlap``; records dated before that are
never asked for again, so their ids are forgotten. Memory is therefore bounded by the
records of one request (at most an hour, exporter/features/cdr/window.py) plus the overlap.
"""

from __future__ import annotations


class SeenIds:
    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._oldest: int | None = None

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, key: str) -> bool:
        return key in self._ids

    def add(self, key: str, timestamp: int) -> bool:
        """Remember ``key``; False when it was already known (a duplicate)."""
        if key in self._ids:
            return False
        self._ids[key] = timestamp
        if self._oldest is None or timestamp < self._oldest:
            self._oldest = timestamp
        return True

    def forget_before(self, horizon: int) -> None:
        if self._oldest is None or self._oldest >= horizon:
            return  # nothing to drop: skip the scan
        self._ids = {k: t for k, t in self._ids.items() if t >= horizon}
        self._oldest = min(self._ids.values(), default=None)
