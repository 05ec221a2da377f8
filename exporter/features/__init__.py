"""Every PBXware feature the exporter polls: one module each, listed once here.

The order is the order of their families on /metrics. Adding a feature is a new module that
defines a ``FEATURE`` (exporter/features/base.py) and one line below; an optional one also
needs its switch name in the config schema (``OPTIONAL_COLLECTORS`` in exporter/config.py),
which tests/test_features.py checks.
"""

from __future__ import annotations

from ..config import SystemConfig
from ..pbxware.fields import problems_of
from . import (
    archiving,
    calls,
    core,
    licensing,
    live_calls,
    monitor,
    services,
    sip_registrations,
    trunks,
)
from .base import Feature, Poll

FEATURES: tuple[Feature, ...] = (
    core.FEATURE,
    services.FEATURE,
    licensing.FEATURE,
    trunks.FEATURE,
    archiving.FEATURE,
    sip_registrations.FEATURE,
    calls.FEATURE,
    live_calls.FEATURE,
    monitor.FEATURE,
)


def enabled(system: SystemConfig) -> list[tuple[Feature, float | None]]:
    """The features this system polls, each with its own minimum interval (None: every
    poll): the core always, the others when their ``collectors:`` switch is on."""
    chosen: list[tuple[Feature, float | None]] = []
    for feature in FEATURES:
        if feature.core:
            chosen.append((feature, None))
            continue
        switch = system.collector(feature.name)
        if switch.enabled:
            chosen.append((feature, switch.interval))
    return chosen


__all__ = ["FEATURES", "Feature", "Poll", "enabled", "problems_of"]
