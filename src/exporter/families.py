"""Metric families of cached values: what the collectors (core, health, CDR) emit.

Every family of polled values says in its HELP that it is cached, so that nobody reads a
scrape time into it; ``note`` names the interval when it is not the system's.

The big per-extension families (100,000 series a system) are RowGaugeFamily: their series
are kept as rows (a tuple of label values, a value) instead of a labels dict and a Sample
each, and the direct formatter (exporter/web/textformat.py) writes the rows as they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.samples import Exemplar, NativeHistogram, Sample, Timestamp

CACHED = " Cached: polled every interval, not at scrape time."

# A series of a RowGaugeFamily: its label values in the family's label-name order, its value.
Row = tuple[tuple[str, ...], float]


def cached_gauge(name: str, doc: str, labels: list[str], note: str = CACHED) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc + note, labels=labels)


def cached_counter(
    name: str, doc: str, labels: list[str], note: str = CACHED
) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc + note, labels=labels)


def cached_row_gauge(
    name: str, doc: str, labels: list[str], rows: Iterable[Row] = (), note: str = CACHED
) -> RowGaugeFamily:
    return RowGaugeFamily(name, doc + note, labels, rows)


class RowGaugeFamily(GaugeMetricFamily):
    """A gauge family that keeps its series as rows: ``(label values, value)``.

    GaugeMetricFamily.add_metric makes a labels dict (``dict(zip(...))``) and a Sample per
    series, and a formatter reads them back: at 200,000 series that was most of a render
    (docs/scaling.md). Here a series is one tuple of its label values in the order of the
    family's label names, as add_metric takes them; ``rows`` (append only) is what the
    direct formatter writes. ``samples`` is still there for every other reader
    (prometheus_client's encoders, a test): built from the rows on first read, the very
    samples GaugeMetricFamily would hold (zip's labels: a short row has fewer), and kept
    until a row is added. Samples a gauge family cannot hold as a row (another name, a
    timestamp, an exemplar, labels other than the family's) are refused with ValueError.
    """

    rows: list[Row]
    _samples: list[Sample] | None

    def __init__(
        self, name: str, documentation: str, labels: Sequence[str], rows: Iterable[Row] = ()
    ) -> None:
        super().__init__(name, documentation, labels=labels)  # sets samples (and rows) empty
        self.rows = list(rows)

    @property
    def label_names(self) -> tuple[str, ...]:
        return self._labelnames

    @property
    def samples(self) -> list[Sample]:
        # Rows are only ever appended: a list of another length is out of date.
        if self._samples is None or len(self._samples) != len(self.rows):
            name, keys = self.name, self._labelnames
            self._samples = [
                Sample(name, dict(zip(keys, v, strict=False)), x) for v, x in self.rows
            ]
        return self._samples

    @samples.setter
    def samples(self, samples: list[Sample]) -> None:
        # Metric.__init__ sets an empty list; anything else must be rows.
        self.rows, self._samples = [], None
        for sample in samples:
            self.add_sample(*sample)

    def add_metric(
        self,
        labels: Sequence[str],
        value: float,
        timestamp: Timestamp | float | None = None,
    ) -> None:
        if timestamp is not None:
            raise ValueError(f"{self.name}: a row family holds no timestamps")
        self.rows.append((tuple(labels), value))

    def add_sample(
        self,
        name: str,
        labels: dict[str, str],
        value: float,
        timestamp: Timestamp | float | None = None,
        exemplar: Exemplar | None = None,
        native_histogram: NativeHistogram | None = None,
    ) -> None:
        keys = self._labelnames
        if (
            name != self.name
            or timestamp is not None
            or exemplar is not None
            or native_histogram is not None
            or not isinstance(labels, dict)
            or labels.keys() != set(keys)
        ):
            raise ValueError(f"{self.name}: not a row of this family: {name} {labels!r}")
        self.add_metric([labels[key] for key in keys], value)
