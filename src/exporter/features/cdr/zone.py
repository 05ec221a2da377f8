"""Noticing a PBX that ignores the ``timezone`` argument of ``pbxware.cdr.download``.

No client in the evidence sends ``timezone`` (docs/pbxware-api.md §3.7), so whether every
PBXware honours it is unknown. One that does not reads our dates and times in its own zone
and answers the rows of a window shifted by the difference of the two zones' offsets: every
row lands outside the window we asked for, and the call counters would silently stay at 0.

The shift shows in the rows themselves: if we asked for ``[s, e]`` and the PBX answered the
rows of ``[s - r, e - r]``, every row dated ``t`` satisfies ``s - t <= r <= e - t``, so
``r`` lies in ``[s - min(t), e - max(t)]``. Zone offsets are whole hours or half hours, so
only multiples of 30 minutes (up to ±14 h, the widest offsets there are) count. Each request
with rows outside its window narrows the candidates; once two requests agree on exactly one,
the poller asks for ``[s + r, e + r]`` written in its own zone, which the PBX reads as
``[s, e]`` in its zone. Rows that were outside before that are not counted (a request only
re-reads the overlap), so at most the first rounds' calls older than the overlap are lost.
A PBX that starts honouring ``timezone`` later is noticed the same way (the shift moves back).
"""

from __future__ import annotations

import math

from .window import Window

STEP = 1800  # offsets are whole or half hours
MAX_OFFSET = 26 * 3600  # the widest difference of two UTC offsets (-12 h … +14 h)
AGREEING_REQUESTS = 2


class ZoneGuess:
    """The shift (seconds) to add to our windows so that the PBX answers the ones we mean."""

    def __init__(self) -> None:
        self.shift = 0
        self._candidates: set[int] | None = None
        self._evidence = 0

    def observe(self, window: Window, oldest: int, newest: int) -> int | None:
        """One request for ``window`` (as meant, before the shift) returned rows dated
        ``oldest``..``newest``; returns the new shift when it changes, else None."""
        if window.start <= oldest and newest <= window.end:
            return None  # all inside: nothing to learn
        low, high = window.start - oldest, window.end - newest
        found = {
            step * STEP
            for step in range(math.ceil(low / STEP), math.floor(high / STEP) + 1)
            if step != 0 and abs(step * STEP) <= MAX_OFFSET
        }
        self._candidates = found if self._candidates is None else self._candidates & found
        if not self._candidates:
            # Stray rows, or requests that disagree: no zone explains them.
            self._candidates, self._evidence = None, 0
            return None
        self._evidence += 1
        if self._evidence < AGREEING_REQUESTS or len(self._candidates) != 1:
            return None
        (residual,) = self._candidates
        self._candidates, self._evidence = None, 0
        self.shift += residual
        return self.shift
