"""Process-wide tuning for the daemon, set once by the entry point (cli.main) and by the
benches that measure it (bench/poll_and_scrape.py). Nothing else changes these settings: an
app a test builds leaves the interpreter as it found it."""

from __future__ import annotations

import gc
import sys

SWITCH_INTERVAL = 0.001  # seconds
# Allocations between young-generation collections (CPython's default: 700). The older
# generations keep their defaults.
GC_YOUNG_THRESHOLD = 50_000


def tune_process() -> None:
    # The render thread holds the GIL for seconds at 100,000 series; the event loop gets it
    # back only at a switch, every 5 ms by default, and a scrape writing its body needs dozens
    # of turns. 1 ms keeps scrapes during a render close to their usual time.
    sys.setswitchinterval(SWITCH_INTERVAL)
    # A poll and its render allocate millions of short-lived objects; at 700 per young
    # collection that made ten full collections per cycle at 100,000 extensions, each holding
    # the GIL for ~100 ms (every scrape in flight waited). At 50,000 there are none, and
    # cyclic garbage waits for at most 50,000 allocations (a few MB).
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)
