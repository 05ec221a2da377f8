"""Every PBXware feature the exporter polls: one module each, listed once here.

The order is the order of their families on /metrics. Adding a feature is a new module that
defines a ``FEATURE`` (exporter/features/base.py) and one line below; a switchable one also
needs its switch name in the config schema (``OPTIONAL_COLLECTORS`` in exporter/config.py),
which tests/test_features.py checks. Most features are polls of the system's cycle; one with
a schedule of its own (CDRs) has a runner, which the system poller runs beside its cycles.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..config import SystemConfig
from ..pbxware.fields import problems_of
from . import (
    archiving,
    calls,
    cdr,
    core,
    licensing,
    live_calls,
    monitor,
    services,
    sip_registrations,
    trunks,
)
from .base import Feature, Poll, Runner, RunnerContext

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
    cdr.FEATURE,
)


def enabled(system: SystemConfig) -> list[tuple[Feature, float | None]]:
    """The features this system polls, each with its own minimum interval (None: every
    poll): the core always, the others when their ``collectors:`` switch is on."""
    chosen: list[tuple[Feature, float | None]] = []
    for feature in FEATURES:
        if not feature.polls:
            continue  # a feature with a runner (see runners())
        if feature.core:
            chosen.append((feature, None))
            continue
        switch = system.collector(feature.name)
        if switch.enabled:
            chosen.append((feature, switch.interval))
    return chosen


def schedule(system: SystemConfig) -> list[tuple[Poll[Any], float | None]]:
    """Every poll this system runs, with the least time between two runs (None: every
    cycle): its own, or its feature's."""
    return [
        (poll, poll.every(system) if poll.every is not None else interval)
        for feature, interval in enabled(system)
        for poll in feature.polls
    ]


def runners(system: SystemConfig, context: Callable[[str], RunnerContext]) -> dict[str, Runner]:
    """The runners of the features with a schedule of their own that this system has on."""
    made: dict[str, Runner] = {}
    for feature in FEATURES:
        if feature.runner is not None:
            runner = feature.runner(context(feature.name))
            if runner is not None:
                made[feature.name] = runner
    return made


__all__ = ["FEATURES", "Feature", "Poll", "enabled", "problems_of", "runners", "schedule"]
