"""Metric families of cached values: what the collectors (core, health, CDR) emit.

Every family of polled values says in its HELP that it is cached, so that nobody reads a
scrape time into it; ``note`` names the interval when it is not the system's.
"""

from __future__ import annotations

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily

CACHED = " Cached: polled every interval, not at scrape time."


def cached_gauge(name: str, doc: str, labels: list[str], note: str = CACHED) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc + note, labels=labels)


def cached_counter(
    name: str, doc: str, labels: list[str], note: str = CACHED
) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc + note, labels=labels)
