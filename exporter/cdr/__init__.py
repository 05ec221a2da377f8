"""Call metrics from PBXware's CDRs (``pbxware.cdr.download``).

window.py (time windows, PBXware dates) → page.py (answer shape) → records.py (columns by
header name, validation, direction/disposition) → seen.py (de-duplication) →
counters.py (counters and snapshots) → poller.py (per system, per tenant) → store.py
(snapshots, merged request/error counts) → collector.py (metric families); service.py
wires the pollers into the daemon.
"""

from .collector import CdrCollector
from .counters import CdrSnapshot, TenantTotals
from .poller import CdrPoller
from .service import CdrPollers
from .store import CdrAwareStore

__all__ = [
    "CdrAwareStore",
    "CdrCollector",
    "CdrPoller",
    "CdrPollers",
    "CdrSnapshot",
    "TenantTotals",
]
