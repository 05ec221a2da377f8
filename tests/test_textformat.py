"""The direct formatter (exporter/web/textformat.py) writes what prometheus_client writes.

Byte for byte, in every format /metrics serves: on the exporter's real families (a seeded
simulator, per-extension series, every health collector and CDR on) and on generated
families with nasty names, label values and values. Speed is measured by bench/render.py.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.samples import Exemplar, Sample

import exporter.features.core
from exporter.config import CdrConfig, Config
from exporter.daemon import Daemon
from exporter.families import RowGaugeFamily
from exporter.metrics import SnapshotCollector
from exporter.web import exposition
from exporter.web.exposition import FORMATS, complete, formatter
from exporter.web.textformat import families, without_header
from pbxware_simulator.cdr import MAX_CALL_SECONDS, CdrOptions
from tests.conftest import system_config


class Families:
    """A registry of fixed families."""

    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return iter(self.metrics)


def by_prometheus_client(fmt: exposition.Format, metrics: list[Metric]) -> bytes:
    """What the renderer wrote before the formatter: prometheus_client's encoder per family
    (part), a further part of a family without its leading # lines."""
    out, previous = [], None
    for metric in metrics:
        text = fmt.encoder(Families([metric])).removesuffix(b"# EOF\n").decode()  # type: ignore[arg-type]
        out.append(without_header(text) if metric.name == previous else text)
        previous = metric.name
    return "".join(out).encode() + (b"# EOF\n" if fmt.openmetrics else b"")


T0 = 1_700_000_000
CDR_INTERVAL = 300


async def real_families(simulator) -> list[Metric]:
    """The cached families of a polled system: core, health, per-extension and CDR."""
    url, sim = await simulator(
        tenants=4,
        extensions_per_tenant=12,
        seed=7,
        start_time=T0,
        tick_seconds=CDR_INTERVAL,
        cdr=CdrOptions(calls_per_hour=240, malformed_ratio=0.0),
    )
    overlap = ((MAX_CALL_SECONDS // 60) + 1) * 60
    config = system_config(
        url,
        extension_metrics=True,
        cdr=CdrConfig(enabled=True, interval=CDR_INTERVAL, overlap=overlap),
    )
    daemon = Daemon(Config(systems=(config,)), clock=lambda: sim.now("pbx1"))
    cdr = daemon.pollers["pbx1"].runners["cdr"]
    try:
        await daemon.pollers["pbx1"].poll_once()
        await cdr.poll_once()  # type: ignore[attr-defined]
        for _ in range(3):
            sim.tick()
            await cdr.poll_once()  # type: ignore[attr-defined]
        await daemon.pollers["pbx1"].poll_once()
        # Every family /metrics renders, the CDR ones included (features/cdr).
        return list(SnapshotCollector(daemon.store).collect())
    finally:
        await daemon.stop()


@pytest.mark.parametrize("part_size", [10**9, 7])
async def test_real_families_are_byte_identical_in_every_format(simulator, monkeypatch, part_size):
    """Unsplit families and families in parts of 7 samples (as the per-extension ones
    come at scale): the same bytes as prometheus_client, every family formatted directly but
    the histograms (the CDR MOS), which go to prometheus_client; the per-extension families
    from their rows."""
    monkeypatch.setattr(exporter.features.core, "PART_SIZE", part_size)
    metrics = await real_families(simulator)
    names = {m.name for m in metrics}
    # Core, per-extension, health (system and per-tenant collectors) and CDR families.
    assert {
        "pbxware_up",
        "pbxware_extension_online",
        "pbxware_service_up",
        "pbxware_trunk_enabled",
        "pbxware_monitor_extensions",
        "pbxware_live_calls",
        "pbxware_cdr_calls",
    } <= names
    assert any(m.type == "counter" for m in metrics)
    assert sum(len(m.samples) for m in metrics) > 300
    # The per-extension families are row families (48 series each), in parts of 7 or whole.
    row_parts = [m for m in metrics if isinstance(m, RowGaugeFamily)]
    assert {m.name for m in row_parts} == {"pbxware_extension_info", "pbxware_extension_online"}
    assert len(row_parts) == (2 if part_size > 48 else 14)
    for fmt in FORMATS:
        ours = formatter(fmt)
        body = "".join(families(ours, iter(metrics))).encode()
        body += b"# EOF\n" if fmt.openmetrics else b""
        assert body == by_prometheus_client(fmt, metrics), fmt.name
        assert complete(fmt, Families(metrics)) == body, fmt.name
        histograms = sum(m.type == "histogram" for m in metrics)
        assert ours.fallback == histograms, fmt.name
        assert ours.direct == len(metrics) - histograms, fmt.name
        assert ours.rows == len(row_parts), fmt.name
        if part_size > 10**6:  # one part per family: the whole registry in one call
            assert body == fmt.encoder(Families(metrics)), fmt.name  # type: ignore[arg-type]


# Generated families. Label values and documentation get the characters that need escaping.
NASTY = st.lists(
    st.one_of(
        st.sampled_from(["\\", '"', "\n", "%", "%(x)s", "{", "}", ",", "=", "é", "😀", "\x00"]),
        st.characters(blacklist_categories=("Cs",)),
    ),
    max_size=6,
).map("".join)
NAME = st.one_of(
    st.from_regex(r"[a-zA-Z_:][a-zA-Z0-9_:]{0,10}", fullmatch=True),
    st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=6),
)
LABEL = st.one_of(
    st.sampled_from(["system", "tenant", "a", "b", "le", "__reserved", "x1"]),
    st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,6}", fullmatch=True),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=4),  # "", "a-b", "é", "%"
)
VALUE = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**70), 2**70),
    st.booleans(),
    st.sampled_from([0, 0.0, -0.0, 1, 1.0, 1e22, 123456789.0, 1e-7]),
)
SUFFIXES = ["", "_total", "_created", "_gsum", "_gcount", "_bucket", "_count", "_sum", "_x"]


@st.composite
def family(draw: st.DrawFn, name: str) -> Metric:
    kind = draw(
        st.sampled_from(
            ["counter", "gauge", "unknown", "gauge", "counter", "histogram", "summary", "info"]
        )
    )
    unit = draw(st.sampled_from(["", "", "seconds"]))
    metric = Metric(name, draw(NASTY), kind, unit)
    keys = draw(st.lists(LABEL, max_size=3, unique=True))
    for _ in range(draw(st.integers(0, 6))):
        if draw(st.integers(0, 4)) == 0:  # now and then a sample of another label set
            keys = draw(st.lists(LABEL, max_size=3, unique=True))
        labels = {k: draw(NASTY) for k in keys}
        sample_name = metric.name + draw(st.sampled_from(SUFFIXES))
        timestamp = draw(st.one_of(st.none(), st.none(), st.none(), st.floats(0, 2e9)))
        metric.add_sample(sample_name, labels, draw(VALUE), timestamp)
    return metric


@st.composite
def registries(draw: st.DrawFn) -> list[Metric]:
    names = draw(st.lists(NAME, max_size=5, unique=True))
    metrics = [draw(family(name)) for name in names]
    # Family names must differ from one to the next, else they are parts of one family.
    return [m for i, m in enumerate(metrics) if i == 0 or m.name != metrics[i - 1].name]


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(registries())
def test_generated_families_are_byte_identical_in_every_format(metrics):
    for fmt in FORMATS:
        try:
            expected = fmt.encoder(Families(metrics))  # type: ignore[arg-type]
        except Exception as exc:  # what prometheus_client refuses, we refuse too
            with pytest.raises(type(exc)):
                complete(fmt, Families(metrics))
            continue
        assert complete(fmt, Families(metrics)) == expected, fmt.name


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(registries(), st.integers(1, 4))
def test_generated_families_in_parts_are_byte_identical(metrics, size):
    """A family split into parts of ``size`` samples (consecutive, same name): as the
    renderer wrote it with prometheus_client, header once, split families kept."""
    parts = []
    for metric in metrics:
        for start in range(0, max(len(metric.samples), 1), size):
            part = Metric(metric.name, metric.documentation, metric.type)
            part.unit = metric.unit
            part.samples = metric.samples[start : start + size]
            parts.append(part)
    for fmt in FORMATS:
        try:
            expected = by_prometheus_client(fmt, parts)
        except Exception as exc:
            with pytest.raises(type(exc)):
                complete(fmt, Families(parts))
            continue
        assert complete(fmt, Families(parts)) == expected, fmt.name


def gauge(name: str, *samples: tuple[dict[str, str], float]) -> Metric:
    metric = Metric(name, "doc", "gauge")
    for labels, value in samples:
        metric.add_sample(name, labels, value)
    return metric


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_label_values_are_escaped_only_where_needed(fmt):
    clean = gauge("g", ({"a": "x", "b": "y"}, 1), ({"b": "z", "a": "w"}, -0.0))
    nasty = gauge("n", ({"a": 'q"uote'}, 1), ({"a": "back\\slash"}, 2), ({"a": "new\nline"}, 3))
    ours = formatter(fmt)
    text = "".join(families(ours, iter([clean, nasty])))
    assert 'g{a="x",b="y"} 1.0\ng{a="w",b="z"} -0.0\n' in text
    assert 'n{a="q\\"uote"} 1.0\nn{a="back\\\\slash"} 2.0\nn{a="new\\nline"} 3.0\n' in text
    assert ours.direct == 2 and ours.fallback == 0


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_histograms_summaries_info_and_exemplars_go_to_prometheus_client(fmt):
    histogram = Metric("h", "doc", "histogram")
    histogram.add_sample("h_bucket", {"le": "+Inf"}, 1)
    histogram.add_sample("h_count", {}, 1)
    histogram.add_sample("h_sum", {}, 0.5)
    info = Metric("i", "doc", "info")
    info.add_sample("i_info", {"v": "1"}, 1)
    exemplar = Metric("c", "doc", "counter")
    exemplar.add_sample("c_total", {}, 1, exemplar=Exemplar({"trace": "t"}, 1.0))
    stamped = gauge("t")
    stamped.add_sample("t", {}, 1, timestamp=1.5)
    metrics = [histogram, info, exemplar, stamped, gauge("g", ({}, 1))]
    ours = formatter(fmt)
    try:
        expected = fmt.encoder(Families(metrics))  # type: ignore[arg-type]
    except ValueError:  # the text format refuses no exemplar; OpenMetrics writes them
        pytest.fail("prometheus_client refused the families")
    body = "".join(families(ours, iter(metrics))).encode()
    assert body + (b"# EOF\n" if fmt.openmetrics else b"") == expected
    assert (ours.direct, ours.fallback) == (1, 4)


def test_negative_zero_and_nan_are_not_mixed_up_by_the_value_cache():
    metric = gauge(
        "g", ({"a": "1"}, 0.0), ({"a": "2"}, -0.0), ({"a": "3"}, 0), ({"a": "4"}, math.nan)
    )
    for fmt in FORMATS:
        assert complete(fmt, Families([metric])) == fmt.encoder(Families([metric]))  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_samples_prometheus_client_would_refuse_are_refused_alike(fmt):
    bad = Metric("g", "doc", "gauge")
    bad.add_sample("g", {"a": "x"}, "not a number")
    with pytest.raises(ValueError):
        fmt.encoder(Families([bad]))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        complete(fmt, Families([bad]))
    no_labels = Metric("g", "doc", "gauge")
    no_labels.add_sample("g", None, 1)  # type: ignore[arg-type]
    assert complete(fmt, Families([no_labels])) == fmt.encoder(Families([no_labels]))  # type: ignore[arg-type]


# Row families (exporter.families.RowGaugeFamily): the per-extension families keep their
# series as tuples of label values; the formatter writes the rows without making samples.


def gauge_of(name: str, doc: str, keys: list[str], rows: list) -> GaugeMetricFamily:
    """The same family built the usual way: a labels dict and a Sample per series."""
    gauge = GaugeMetricFamily(name, doc, labels=keys)
    for values, value in rows:
        gauge.add_metric(values, value)
    return gauge


def in_parts(rows: list[tuple[tuple[str, ...], float]], size: int) -> list[list]:
    """``rows`` in consecutive parts of at most ``size``; no rows: one empty part."""
    return [rows[start : start + size] for start in range(0, max(len(rows), 1), size)]


KEYS = st.lists(LABEL, max_size=4)  # duplicate label names too: dict(zip(...)) keeps the last


@st.composite
def row_family(draw: st.DrawFn, name: str, size: int) -> list[tuple[Metric, Metric]]:
    """One family in parts of ``size``, each part as a row family and as the gauge family
    add_metric builds from the same rows; now and then a row shorter or longer than the
    label names (zip's labels: fewer, or the extra values dropped)."""
    keys = draw(KEYS)
    doc = draw(NASTY)
    rows = []
    for _ in range(draw(st.integers(0, 8))):
        width = len(keys) + (
            draw(st.integers(-len(keys), 1)) if draw(st.integers(0, 5)) == 0 else 0
        )
        rows.append((tuple(draw(NASTY) for _ in range(width)), draw(VALUE)))
    return [
        (RowGaugeFamily(name, doc, keys, part), gauge_of(name, doc, keys, part))
        for part in in_parts(rows, size)
    ]


@st.composite
def row_registries(draw: st.DrawFn) -> list[tuple[Metric, Metric]]:
    """Row families (in parts) among ordinary ones, names differing from one to the next:
    (as the collectors yield it, as add_metric builds it)."""
    size = draw(st.integers(1, 4))
    metrics: list[tuple[Metric, Metric]] = []
    for name in draw(st.lists(NAME, max_size=5, unique=True)):
        if draw(st.booleans()):
            metrics.extend(draw(row_family(name, size)))
        else:
            metric = draw(family(name))
            metrics.append((metric, metric))
    return metrics


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_a_row_family_holds_the_samples_a_gauge_family_holds(data):
    [(rows, gauge)] = data.draw(row_family("g", 10**9))
    assert len(rows.rows) == len(gauge.samples)
    assert rows.samples == gauge.samples
    assert [s.labels for s in rows.samples] == [s.labels for s in gauge.samples]
    assert rows == gauge  # Metric.__eq__: name, documentation, type, unit, samples


def test_a_row_family_takes_samples_only_as_rows():
    family = RowGaugeFamily("g", "doc", ["a", "b"], [(("0", "0"), 0.0)])
    assert family.rows == [(("0", "0"), 0.0)]
    family.add_metric(["1", "2"], 1.0)
    family.add_sample("g", {"b": "4", "a": "3"}, 2.0)
    assert family.rows[1:] == [(("1", "2"), 1.0), (("3", "4"), 2.0)]
    assert family.samples[2] == Sample("g", {"a": "3", "b": "4"}, 2.0)
    family.add_metric(["5", "6"], 3.0)  # a row added after a read is a sample too
    assert [s.value for s in family.samples] == [0.0, 1.0, 2.0, 3.0]
    family.samples = [Sample("g", {"a": "7", "b": "8"}, 4.0)]
    assert family.rows == [(("7", "8"), 4.0)]
    for bad in (
        Sample("g_x", {"a": "1", "b": "2"}, 1.0),  # another name
        Sample("g", {"a": "1"}, 1.0),  # other labels
        Sample("g", {"a": "1", "b": "2"}, 1.0, timestamp=1.0),
    ):
        with pytest.raises(ValueError):
            family.add_sample(*bad)
    with pytest.raises(ValueError):
        family.add_metric(["1", "2"], 1.0, timestamp=1.0)


@pytest.mark.slow
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(row_registries())
def test_generated_row_families_are_byte_identical_in_every_format(pairs):
    """Row families in parts, among ordinary families: the same bytes as prometheus_client
    writes for the same families built with add_metric (and for the row families, from
    their samples); each row part written from its rows."""
    metrics = [ours for ours, _ in pairs]
    gauges = [gauge for _, gauge in pairs]
    for fmt in FORMATS:
        try:
            expected = by_prometheus_client(fmt, gauges)
        except Exception as exc:  # what prometheus_client refuses, we refuse too
            with pytest.raises(type(exc)):
                complete(fmt, Families(metrics))
            continue
        assert by_prometheus_client(fmt, metrics) == expected, fmt.name
        ours = formatter(fmt)
        body = "".join(families(ours, iter(metrics))).encode()
        assert body + (b"# EOF\n" if fmt.openmetrics else b"") == expected, fmt.name
        # A part with a row shorter than its label names is written from its samples.
        whole = [
            m
            for m in metrics
            if isinstance(m, RowGaugeFamily)
            and all(len(v) >= len(m.label_names) for v, _ in m.rows)
        ]
        assert ours.rows == len(whole), fmt.name


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_row_label_values_are_escaped_only_where_needed_in_every_part(fmt):
    """A row family in three consecutive parts: a clean one, one with a backslash, a quote
    and a newline, one with non-ASCII values; then a family of rows with no labels."""
    keys = ["tenant", "name", "extension"]  # not sorted: the lines are
    parts = [
        [(("1", "Ann", "100"), 1.0), (("1", "Bob", "101"), 0.0)],
        [(("2", 'q"uote', "200"), 1.0), (("2", "back\\slash", "201"), -0.0)],
        [(("2", "new\nline", "202"), 1), (("3", "Zoë 😀", "300"), 1e22)],
    ]
    metrics: list[Metric] = [RowGaugeFamily("x", "doc", keys, part) for part in parts]
    metrics.append(RowGaugeFamily("y", "doc", [], [((), 2.0)]))
    gauges = [gauge_of("x", "doc", keys, part) for part in parts]
    gauges.append(gauge_of("y", "doc", [], [((), 2.0)]))
    ours = formatter(fmt)
    body = "".join(families(ours, iter(metrics))).encode()
    expected = by_prometheus_client(fmt, gauges)
    assert body + (b"# EOF\n" if fmt.openmetrics else b"") == expected
    text = body.decode()
    assert text.count("# HELP x ") == 1
    assert 'x{extension="100",name="Ann",tenant="1"} 1.0\n' in text
    assert 'x{extension="200",name="q\\"uote",tenant="2"} 1.0\n' in text
    assert 'x{extension="201",name="back\\\\slash",tenant="2"} -0.0\n' in text
    assert 'x{extension="202",name="new\\nline",tenant="2"} 1.0\n' in text
    assert 'x{extension="300",name="Zoë 😀",tenant="3"} 1e+22\n' in text
    assert "\ny 2.0\n" in text
    assert (ours.rows, ours.direct, ours.fallback) == (4, 4, 0)
