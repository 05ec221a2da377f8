"""The cached families as exposition text, byte for byte what prometheus_client writes.

prometheus_client's encoders check and escape every name of every sample: the sample's
metric name one character at a time (OpenMetrics), each label name with two regular
expressions, each label value with three ``replace`` calls; at 200,000 series that is
seconds per render, 8-11 times the cost of formatting the same bytes plainly. The families
we render have few distinct names and many samples, so this formatter works it the other
way round:

- per family (and per sample name and label-name set in it), the names are escaped once,
  with prometheus_client's own functions, into a line function: a compiled f-string such
  as ``f'''pbxware_up{system="{labels["system"]}"} {value}'''`` (see _line_function);
- per sample, the line function takes the labels dict as it is, and the value's text
  comes from a per-family cache (values repeat: 0, 1, counts);
- label values are escaped only when one holds a backslash, a double quote or a newline:
  the family's text is checked once (no backslash, as many quotes and newlines as the
  line functions write) and, only when it fails, written again escaping each value;
- a row family (exporter.families.RowGaugeFamily: the per-extension families, 200,000
  series at 1,000 tenants) is written from its rows, never from samples: its line function
  takes the tuple of label values and reads each by index, in sorted label-name order
  (``lambda row, value: f'''x{a="{row[1]}",b="{row[0]}"} {value}'''``), so no labels
  dict and no Sample is made for it, here or in the collector (docs/scaling.md). Its
  samples are still there for the rare part that needs them: one with a row shorter than
  its label names is written from them, one prometheus_client must decide on (a value of
  None) goes to its encoder, which reads them.

Label values must be str, as prometheus_client requires (it would fail on another type;
the line functions would print it).

Only counters, gauges and unknown (untyped) families of plain samples are formatted here;
anything else (histograms, summaries, info, stateset, samples with a timestamp, an exemplar
or a native histogram, a value that is None) goes to prometheus_client's encoder, family
by family, so the output stays the same whatever a collector yields. tests/test_textformat.py
checks byte-identity against prometheus_client on the real families and on generated ones,
row families (in parts, with nasty label values) included.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from typing import Any

from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import exposition as om
from prometheus_client.utils import floatToGoString

from ..families import Row, RowGaugeFamily


def _om_sample_name(name: str) -> str:
    # prometheus_client (0.24-0.26) writes an OpenMetrics sample's name with the label-name
    # character set (a ":" becomes "_"), with a private function: the tests compare the
    # output against its encoder, so a change there shows.
    return om._escape(name, om.UNDERSCORES, om._is_legacy_labelname_rune)


# The text format moves these samples into a gauge family of their own after the family's
# other samples (prometheus_client's "OpenMetrics specific sample" handling).
_TEXT_SPLIT_SUFFIXES = ("_created", "_gsum", "_gcount")
_TEXT_TYPES = {"counter": "counter", "gauge": "gauge", "unknown": "untyped"}
_FAST_TYPES = frozenset(_TEXT_TYPES)

_ZERO = "0.0\n"
# A line: (labels, value text) → the sample's line; see _line_function.
_Line = Callable[[dict[str, str], str], str]
# A row's line: (label values, value text) → the line; see _row_line_function.
_RowLine = Callable[[tuple[str, ...], str], str]
# A row family's layout: its line function (None: names that need the escaping path), the
# quotes a line writes, and the (escaped label name, index in the row) pairs, sorted by name.
_RowLayout = tuple[_RowLine | None, int, tuple[tuple[str, int], ...]]
# A sample name's current layout: (its line function, number of labels, quotes it writes).
_Layout = tuple[_Line, int, int]
# What escaped names are made of; anything else could not go into generated source.
_SAFE_NAME = re.compile(r"[A-Za-z0-9_:]*")


class _Unsupported(Exception):
    """This family goes to prometheus_client's encoder."""


class _Escape(Exception):
    """This family takes the escaping path (a label key outside [A-Za-z_][A-Za-z0-9_]*,
    which "%(...)s" could misread, or a text-format sample that moves to a split family)."""


def _escape_value(value: str) -> str:
    # What prometheus_client does to every label value (ALLOWUTF8 escaping).
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _text_doc(doc: str) -> str:
    return doc.replace("\\", r"\\").replace("\n", r"\n")


def _plain_key(key: str) -> bool:
    return key.isascii() and key.isidentifier()


@lru_cache(maxsize=4096)
def _line_function(head: str, pairs: tuple[tuple[str, str], ...]) -> _Line:
    """The line of a sample named ``head`` (escaped) with labels ``pairs`` ((escaped name,
    key), sorted by key), as a compiled f-string: ``lambda labels, value:
    f'''up{system="{labels["system"]}"} {value}'''``.

    Generated source, as dataclasses and namedtuple do it: an f-string with constant keys
    is 2-3x faster than ``"%(system)s" % labels`` (which makes a new key string per label
    per sample) or an itemgetter; this loop runs once per series. Only escaped names
    ([A-Za-z0-9_:]) and keys that are plain identifiers are written into the source.
    """
    if not all(_plain_key(key) for _, key in pairs):
        raise _Escape
    line: _Line = _compiled(head, "labels", tuple((e, f'labels["{k}"]') for e, k in pairs))
    return line


@lru_cache(maxsize=256)
def _row_line_function(head: str, pairs: tuple[tuple[str, int], ...]) -> _RowLine:
    """The line of a row of a family named ``head`` (escaped), with labels ``pairs``
    ((escaped name, index of its value in the row), sorted by label name), as a compiled
    f-string: ``lambda row, value: f'''up{system="{row[0]}"} {value}'''``.

    As _line_function, without the dict: the values are taken from the tuple by index.
    Only escaped names ([A-Za-z0-9_:]) and integers are written into the source."""
    line: _RowLine = _compiled(head, "row", tuple((e, f"row[{i:d}]") for e, i in pairs))
    return line


def _compiled(head: str, argument: str, reads: tuple[tuple[str, str], ...]) -> Any:
    """``lambda <argument>, value: f'''head{name="{<read>}",...} {value}'''`` for ``reads``
    ((escaped label name, the expression that reads its value from the argument)): the
    source both line functions compile. Names that are not escaped names are refused."""
    if not all(_SAFE_NAME.fullmatch(name) for name in (head, *(e for e, _ in reads))):
        raise _Escape
    literal = head
    if reads:
        literal += "{{" + ",".join(f'{escaped}="{{{read}}}"' for escaped, read in reads) + "}}"
    return eval(f"lambda {argument}, value: f'''{literal} {{value}}'''", {"__builtins__": {}})


class _Family:
    """What one family's parts share: escaped names, layouts and value texts."""

    def __init__(self, metric: Metric, openmetrics: bool) -> None:
        self.name = metric.name
        self.type = metric.type
        self.openmetrics = openmetrics
        self.escape = False  # once a part needed the escaping path, the next ones take it
        self.layouts: dict[str, _Layout] = {}
        # Sample value → its text and "\n". Zero is one key for 0, 0.0 and -0.0: a hit on
        # it is checked for the sign.
        self.values: dict[Any, str] = {0: _ZERO}
        self.label_names: dict[str, str] = {}
        self.sample_names: dict[str, str] = {}
        self.row_layouts: dict[tuple[str, ...], _RowLayout] = {}

    def continues(self, metric: Metric) -> bool:
        return metric.name == self.name and metric.type == self.type

    def sample_name(self, name: str) -> str:
        escaped = self.sample_names.get(name)
        if escaped is None:
            if self.openmetrics:
                escaped = _om_sample_name(name)
            else:
                escaped = om.escape_metric_name(name, om.UNDERSCORES)
            self.sample_names[name] = escaped
        return escaped

    def label_name(self, key: str) -> str:
        escaped = self.label_names.get(key)
        if escaped is None:
            escaped = self.label_names[key] = om.escape_label_name(key, om.UNDERSCORES)
        return escaped

    def split_suffix(self, name: str) -> str | None:
        """Text format: the suffix of a sample that prometheus_client moves into a gauge
        family of its own, after the family's other samples."""
        if self.openmetrics:
            return None
        for suffix in _TEXT_SPLIT_SUFFIXES:
            if name == self.name + suffix:
                return suffix
        return None

    def layout(self, name: str, labels: dict[str, str]) -> _Layout:
        keys = sorted(labels)
        if self.split_suffix(name) is not None or not all(map(_plain_key, keys)):
            raise _Escape
        pairs = tuple((self.label_name(key), key) for key in keys)
        layout = (_line_function(self.sample_name(name), pairs), len(keys), 2 * len(keys))
        self.layouts[name] = layout
        return layout

    def row_layout(self, keys: tuple[str, ...]) -> _RowLayout:
        """The layout of the rows of a family with label names ``keys``: each distinct
        name with the index of its value (the last one of a repeated name, as dict(zip())
        keeps it), in sorted order, as prometheus_client writes labels."""
        layout = self.row_layouts.get(keys)
        if layout is None:
            index = {key: i for i, key in enumerate(keys)}
            pairs = tuple((self.label_name(key), index[key]) for key in sorted(index))
            line: _RowLine | None
            try:
                line = _row_line_function(self.sample_name(self.name), pairs)
            except _Escape:
                line = None
            layout = self.row_layouts[keys] = (line, 2 * len(pairs), pairs)
        return layout

    def value(self, value: Any) -> str:
        if value is None:
            raise _Unsupported  # prometheus_client decides what None means
        text: str = floatToGoString(value) + "\n"  # type: ignore[no-untyped-call]
        # A NaN is never found again: not kept.
        if value != 0 and not (isinstance(value, float) and math.isnan(value)):
            self.values[value] = text
        return text


def _header(metric: Metric, openmetrics: bool) -> str:
    if openmetrics:
        name = om.escape_metric_name(metric.name, om.UNDERSCORES)
        unit = f"# UNIT {name} {metric.unit}\n" if metric.unit else ""
        doc = _escape_value(metric.documentation)
        return f"# HELP {name} {doc}\n# TYPE {name} {metric.type}\n{unit}"
    text_name = metric.name + "_total" if metric.type == "counter" else metric.name
    name = om.escape_metric_name(text_name, om.UNDERSCORES)
    doc = _text_doc(metric.documentation)
    return f"# HELP {name} {doc}\n# TYPE {name} {_TEXT_TYPES[metric.type]}\n"


def _split_header(metric: Metric, suffix: str) -> str:
    name = om.escape_metric_name(metric.name + suffix, om.UNDERSCORES)
    return f"# HELP {name} {_text_doc(metric.documentation)}\n# TYPE {name} gauge\n"


def _no_line(labels: dict[str, str], value: str) -> str:
    raise KeyError(value)  # never called: the first sample sets the layout


class Formatter:
    """Formats families in one exposition format (text 0.0.4 / 1.0.0 with "underscores"
    escaping, or OpenMetrics 1.0.0 without its # EOF); one per render."""

    def __init__(self, openmetrics: bool, fallback: Callable[[Metric], str]) -> None:
        self.openmetrics = openmetrics
        self._fallback = fallback  # prometheus_client's encoder for one family
        self._family: _Family | None = None
        # Families (parts) formatted here and by prometheus_client: the bench prints them.
        self.direct = 0
        self.fallback = 0
        self.rows = 0  # of the direct ones, row families written from their rows

    def family(self, metric: Metric, continued: bool) -> str:
        """``metric`` as text; ``continued``: a further part of the previous family, whose
        leading HELP/TYPE/UNIT lines are left out."""
        if metric.type in _FAST_TYPES:
            family = self._family
            if family is None or not continued or not family.continues(metric):
                family = self._family = _Family(metric, self.openmetrics)
            try:
                text = self._format_any(family, metric)
            # Anything odd in a sample (labels that are not a dict, a value float() refuses)
            # is prometheus_client's to write or to refuse, as it would without us.
            except (_Unsupported, TypeError, AttributeError, ValueError):
                pass
            else:
                self.direct += 1
                if not continued:
                    return _header(metric, self.openmetrics) + text
                # As prometheus_client's text of the part without its leading # lines (the
                # header, and a split family's header when the part has no other sample).
                return without_header(text)
        self.fallback += 1
        self._family = None
        text = self._fallback(metric)
        return without_header(text) if continued else text

    def _format_any(self, family: _Family, metric: Metric) -> str:
        if isinstance(metric, RowGaugeFamily):
            try:
                text = self._rows(family, metric)
            except IndexError:
                pass  # a row shorter than the label names: its sample has fewer labels
            else:
                self.rows += 1
                return text
        return self._format(family, metric)

    def _format(self, family: _Family, metric: Metric) -> str:
        """The family's samples (no header)."""
        if not family.escape:
            try:
                lines: list[str] = []
                quotes = self._lines(family, metric, lines)
                body = "".join(lines)
                # Clean iff no label value held a backslash, a quote or a newline.
                if (
                    "\\" not in body
                    and body.count('"') == quotes
                    and body.count("\n") == len(lines)
                ):
                    return body
            except _Escape:
                family.escape = True
        return self._escaped(family, metric)

    @staticmethod
    def _lines(family: _Family, metric: Metric, lines: list[str]) -> int:
        """Append each sample's line, label values as they are; return the quotes written.

        The hot loop of a render (once per series): the layout of the previous sample is
        kept in locals and taken again while the name and the number of labels match (a
        different label set of the same size fails the ``%`` with a KeyError)."""
        values, append = family.values, lines.append
        line: _Line = _no_line
        size, last = -1, None
        # (lines before, quotes per line) at each change of layout: the quotes are counted
        # per segment at the end, not per sample.
        segments: list[tuple[int, int]] = []
        for name, labels, value, timestamp, exemplar, native in metric.samples:
            if timestamp is not None or exemplar is not None or native is not None:
                raise _Unsupported
            text = values.get(value)
            if text is None or (text is _ZERO and math.copysign(1.0, value) < 0):
                text = family.value(value)
            try:
                if name != last or len(labels) != size:
                    raise KeyError(name)
                append(line(labels, text))
            except KeyError:
                layout = family.layouts.get(name)
                if layout is None or len(labels) != layout[1]:
                    layout = family.layout(name, labels)
                try:
                    append(layout[0](labels, text))
                except KeyError:
                    layout = family.layout(name, labels)
                    append(layout[0](labels, text))
                line, size, last = layout[0], layout[1], name
                segments.append((len(lines) - 1, layout[2]))
        ends = [start for start, _ in segments[1:]] + [len(lines)] if segments else []
        return sum(
            (end - start) * quotes for (start, quotes), end in zip(segments, ends, strict=True)
        )

    @staticmethod
    def _rows(family: _Family, metric: RowGaugeFamily) -> str:
        """A row family's lines, written from its rows: no labels dict, no Sample.

        Label values go in as they are and the text is checked as in _format; only when
        one held a backslash, a quote or a newline (or a name cannot go into a line
        function) is the part written again, escaping each value. A row shorter than the
        label names fails with IndexError: its sample has fewer labels (zip), so the part
        is written from its samples."""
        line, quotes, pairs = family.row_layout(metric.label_names)
        rows = metric.rows
        if line is not None:
            values, lines = family.values, list[str]()
            append = lines.append
            for labels, value in rows:
                text = values.get(value)
                if text is None or (text is _ZERO and math.copysign(1.0, value) < 0):
                    text = family.value(value)
                append(line(labels, text))
            body = "".join(lines)
            if (
                "\\" not in body
                and body.count('"') == quotes * len(lines)
                and body.count("\n") == len(lines)
            ):
                return body
        return _escaped_rows(family, rows, pairs)

    @staticmethod
    def _escaped(family: _Family, metric: Metric) -> str:
        """Every sample's line, each label value escaped: what prometheus_client does."""
        lines: list[str] = []
        groups: dict[str, list[str]] = {}
        for name, labels, value, timestamp, exemplar, native in metric.samples:
            if timestamp is not None or exemplar is not None or native is not None:
                raise _Unsupported
            head = family.sample_name(name)
            if labels:
                pairs = ",".join(
                    f'{family.label_name(k)}="{_escape_value(v)}"'
                    for k, v in sorted(labels.items())
                )
                head += "{" + pairs + "}"
            text = family.values.get(value)
            if text is None or (text is _ZERO and math.copysign(1.0, value) < 0):
                text = family.value(value)
            suffix = family.split_suffix(name)
            target = lines if suffix is None else groups.setdefault(suffix, [])
            target.append(head + " " + text)
        for suffix in sorted(groups):
            lines.append(_split_header(metric, suffix))
            lines.extend(groups[suffix])
        return "".join(lines)


def _escaped_rows(family: _Family, rows: list[Row], pairs: tuple[tuple[str, int], ...]) -> str:
    """Every row's line, each label value escaped: what prometheus_client does."""
    head = family.sample_name(family.name)
    lines: list[str] = []
    for labels, value in rows:
        line = head
        if pairs:
            line += (
                "{" + ",".join(f'{name}="{_escape_value(labels[i])}"' for name, i in pairs) + "}"
            )
        text = family.values.get(value)
        if text is None or (text is _ZERO and math.copysign(1.0, value) < 0):
            text = family.value(value)
        lines.append(line + " " + text)
    return "".join(lines)


def without_header(text: str) -> str:
    """A continuation part of a family: its text without the leading HELP/TYPE/UNIT lines."""
    start = 0
    while text.startswith("#", start):
        start = text.index("\n", start) + 1
    return text[start:]


def families(formatter: Formatter, metrics: Iterable[Metric]) -> Iterator[str]:
    """Each family's text in order, a family's further parts without their header."""
    previous = None
    for metric in metrics:
        yield formatter.family(metric, metric.name == previous)
        previous = metric.name
