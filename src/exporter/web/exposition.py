"""/metrics bodies rendered once per snapshot change, not once per scrape.

With per-extension series a system can have 100,000 series; rendering them costs far more
than sending the bytes. So the snapshot families are rendered in a worker thread whenever a
poll publishes a snapshot, and a scrape only appends the few live families (admin counters,
reload status, build info). A scrape never waits on a PBX, and while a new render is being
made, scrapes get the previous one. The render runs in a task of its own (``changed()``),
apart from the poll: a poll cycle never waits for it, and snapshots published during a
render are rendered together by the next one. The store learns which generation /metrics
serves (readiness waits for a system's first).

The answer comes in one of a fixed set of formats (FORMATS, see negotiate()): whatever the
Accept header says, it maps onto one of them, so a scraper cannot make us render (and keep
rendering after each poll) one body per variant of its header. The cached families are
written by a direct formatter (exporter/web/textformat.py: the same bytes as
prometheus_client's encoders at a fraction of their cost, see docs/scaling.md), and only in
the formats scraped in the last ten minutes (at first: OpenMetrics, which Prometheus asks
for); another one is rendered on its first request and then kept up to date too.

Only what changed is rendered again: the families are rendered system by system, and a
system's are kept with a (weak) reference to the snapshot they came from. A poll of one
system renders that system's families; the others' are taken as they are, and the body is
joined family by family: its HELP/TYPE once, then each system's samples of it (the order a
render of all systems at once gives, tests/test_render_changes.py). With 3 systems a round
of polls costs about one full render, not three (bench/render_changes.py).

Memory: each family is formatted on its own and only its gzip bytes are kept, never the
text of the whole registry as strings; a collector may yield one big family as several
consecutive parts of the same name (exporter/features/core.py does for the per-extension
families), whose repeated HELP/TYPE lines are left out.

The rendered families are kept gzip-compressed (level 1, about a tenth of the text), each
system's samples of each family as a part that can go anywhere in a stream
(exporter/web/gzipjoin.py). A scrape that accepts gzip (Prometheus always does) gets the
parts joined into one gzip stream and a tail made from the live families, which finishes
it: one valid gzip member, without compressing the big part again. For scrapers without
gzip the text is inflated once per render, when the first of them asks, and kept until the
next render. A scrape is written out piece by piece, so a slow scraper holds a piece in the
socket buffer, not a copy of the body.
"""

from __future__ import annotations

import asyncio
import time
import weakref
import zlib
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, partial

import structlog
from prometheus_client import CollectorRegistry
from prometheus_client import exposition as text_format
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import exposition as openmetrics

from ..snapshot import SnapshotStore, SystemSnapshot
from .gzipjoin import GZIP_WBITS, Joined, Part, PartWriter, join
from .textformat import Formatter, without_header

_EOF = b"# EOF\n"
_KEEP_WARM = 600.0  # seconds a format stays rendered ahead after its last scrape

Encoder = Callable[[CollectorRegistry], bytes]


@dataclass(frozen=True)
class Format:
    """One exposition format we answer in; ``name`` keys the rendered bodies."""

    name: str
    content_type: str
    encoder: Encoder

    @property
    def openmetrics(self) -> bool:
        return self.content_type.startswith("application/openmetrics-text")


# Every metric name we export is a legacy (underscore) name, so the escaping schemes of the
# newer formats change nothing in the body; each format is rendered with "underscores".
TEXT_0_0_4 = Format("text-0.0.4", text_format.CONTENT_TYPE_PLAIN_0_0_4, text_format.generate_latest)
TEXT_1_0_0 = Format(
    "text-1.0.0",
    f"{text_format.CONTENT_TYPE_LATEST}; escaping={openmetrics.UNDERSCORES}",
    partial(text_format.generate_latest, escaping=openmetrics.UNDERSCORES),
)
OPENMETRICS_1_0_0 = Format(
    "openmetrics-1.0.0",
    openmetrics.CONTENT_TYPE_LATEST,
    partial(openmetrics.generate_latest, escaping=openmetrics.UNDERSCORES, version="1.0.0"),
)
FORMATS = (TEXT_0_0_4, TEXT_1_0_0, OPENMETRICS_1_0_0)


def _media_range(item: str) -> tuple[str, dict[str, str]]:
    kind, *raw_params = item.split(";")
    params = {}
    for param in raw_params:
        key, _, value = param.partition("=")
        params[key.strip().lower()] = value.strip().strip('"')
    return kind.strip().lower(), params


def _quality(params: dict[str, str]) -> float:
    """The q of a media range: 1 if absent; 0 (ignored) if it is not a number in [0, 1]."""
    raw = params.get("q")
    if raw is None:
        return 1.0
    try:
        q = float(raw)
    except ValueError:
        return 0.0
    return q if 0.0 <= q <= 1.0 else 0.0


def negotiate(accept: str) -> Format:
    """The format for an Accept header: always one of FORMATS, never an error.

    The media range with the highest q that we can serve wins (the first on a tie), as
    Prometheus lists its preferences with q values. Any OpenMetrics range gets OpenMetrics
    1.0.0, whatever its version says (0.0.1 is the same text for our families); text/plain
    gets 1.0.0 only when it asks for exactly that, else 0.0.4, the format every scraper
    reads. Nothing of the header is copied into the answer.
    """
    best, best_q = TEXT_0_0_4, 0.0
    for item in accept.split(","):
        kind, params = _media_range(item)
        if kind == "application/openmetrics-text":
            fmt = OPENMETRICS_1_0_0
        elif kind == "text/plain":
            fmt = TEXT_1_0_0 if params.get("version") == "1.0.0" else TEXT_0_0_4
        else:
            continue  # */* and anything else: the default, text 0.0.4
        q = _quality(params)
        if q > best_q:
            best, best_q = fmt, q
    return best


class _One:
    """A registry of one family, the form prometheus_client's encoders take."""

    def __init__(self, metric: Metric) -> None:
        self._metric = metric

    def collect(self) -> Iterator[Metric]:
        yield self._metric


def _by_prometheus_client(fmt: Format, metric: Metric) -> str:
    """One family as prometheus_client's encoder writes it (without # EOF): the reference,
    and what the formatter hands the families it does not format itself."""
    return fmt.encoder(_One(metric)).decode().removesuffix(_EOF.decode())  # type: ignore[arg-type]


def formatter(fmt: Format) -> Formatter:
    """A formatter of the cached families in ``fmt`` (exporter/web/textformat.py)."""
    return Formatter(fmt.openmetrics, partial(_by_prometheus_client, fmt))


Families = Callable[[Sequence[SystemSnapshot]], Iterable[Metric]]


@dataclass(frozen=True)
class _Family:
    """One family of one system in one format: its HELP/TYPE lines and its samples."""

    name: str
    header: str
    samples: Part


# Format.name → a system's families in the order its collectors yield them.
_Formats = Mapping[str, tuple[_Family, ...]]


@dataclass(frozen=True)
class _System:
    """A system's families as last rendered, in each format kept warm, and the snapshot
    they were rendered from: a weak reference, so that an old snapshot is freed when the
    store lets it go, not one render later (at 5,000 tenants it is hundreds of MB). No
    snapshot: the families of no system, every family's HELP and TYPE (the body's order of
    families, and the whole body while no system has a snapshot)."""

    snapshot: weakref.ref[SystemSnapshot] | None
    formats: _Formats

    def of(self, snapshot: SystemSnapshot | None) -> bool:
        """Whether these families were rendered from ``snapshot``."""
        if self.snapshot is None:
            return snapshot is None
        return self.snapshot() is snapshot


def render_families(metrics: Iterable[Metric], formats: Sequence[Format]) -> _Formats:
    """Each family of ``metrics`` in each format, its samples compressed apart from the
    others (exporter/web/gzipjoin.py), in one pass over the collectors."""
    writers = [(fmt.name, formatter(fmt), PartWriter()) for fmt in formats]
    done: dict[str, list[_Family]] = {name: [] for name, _, _ in writers}
    headers: dict[str, str] = {}
    previous: str | None = None

    def close() -> None:
        for name, _, writer in writers:
            done[name].append(_Family(previous or "", headers[name], writer.part()))

    for metric in metrics:
        continued = metric.name == previous
        if previous is not None and not continued:
            close()
        for name, fmt, writer in writers:
            text = fmt.family(metric, continued)
            if not continued:
                samples = without_header(text)
                headers[name] = text[: len(text) - len(samples)]
                text = samples
            writer.write(text.encode())
        previous = metric.name
    if previous is not None:
        close()
    return {name: tuple(families) for name, families in done.items()}


@dataclass(frozen=True)
class Rendered:
    """One format's cached families, as a gzip stream without its end."""

    joined: Joined

    def gzip(self, live: bytes) -> tuple[bytes, ...]:
        """The whole body gzipped: the chunks and a tail with ``live`` that ends the stream."""
        return (*self.joined.chunks, self.joined.finish(live))

    @property
    def inflated(self) -> bool:
        """Whether ``text`` is there already: a scrape then takes it without a thread."""
        return "text" in self.__dict__

    @cached_property
    def text(self) -> bytes:
        """The families as text: inflated when a scraper without gzip first asks, then kept
        as long as these families are the current ones."""
        inflate = zlib.decompressobj(GZIP_WBITS)
        return b"".join(map(inflate.decompress, self.joined.chunks))


def _join(fmt: Format, systems: Sequence[_System]) -> Rendered:
    """The body of ``fmt``: family by family, its header once and then every system's
    samples of it. The families come in the order the first system (the one of no
    system) yields them: the collectors yield every family whatever the snapshot holds, so
    every system yields the same ones in the same order, and the body is the one a render
    of all systems at once would give (tests/test_render_changes.py). Not so for samples
    the text format moves into a family of their own after the others (``_created``,
    ``_gsum``, ``_gcount``: each system's would come with its own header); none of our
    families has them."""
    by_name: dict[str, list[_Family]] = {}
    for system in systems:
        for family in system.formats[fmt.name]:
            by_name.setdefault(family.name, []).append(family)
    headers = PartWriter()
    parts: list[Part] = []
    for families in by_name.values():
        headers.write(families[0].header.encode())
        parts.append(headers.part())
        parts.extend(family.samples for family in families)
    return Rendered(join(parts))


def encode(fmt: Format, registry: CollectorRegistry) -> Rendered:
    """``fmt.encoder(registry)`` without # EOF, written family by family by the formatter
    and gzipped as Rendered (see the module docstring)."""
    return _join(fmt, [_System(None, render_families(registry.collect(), [fmt]))])


def complete(fmt: Format, registry: CollectorRegistry) -> bytes:
    """A whole body of ``registry``, as ``fmt.encoder(registry)`` would give it (what the
    tests compare with prometheus_client's)."""
    return encode(fmt, registry).text + (_EOF if fmt.openmetrics else b"")


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header allows gzip (a q of 0 refuses it)."""
    for item in accept_encoding.split(","):
        coding, _, params = item.partition(";")
        if coding.strip().lower() in ("gzip", "x-gzip", "*"):
            q = params.strip().lower().removeprefix("q=")
            try:
                return not params.strip() or float(q) > 0
            except ValueError:
                return False
    return False


@dataclass(frozen=True)
class Answer:
    """A /metrics response: its headers and its body, piece by piece."""

    content_type: str
    gzip: bool
    length: int
    pieces: Iterator[bytes]


class Exposition:
    def __init__(self, store: SnapshotStore, families: Families, live: CollectorRegistry) -> None:
        # The GIL switch interval and the GC thresholds that keep scrapes fast during a
        # render are the process's, set once by the entry point (exporter/runtime.py).
        self._store = store
        self._families = families  # of the given snapshots (exporter/metrics.py)
        self._live = live
        self._lock = asyncio.Lock()
        self._wanted = 0  # the newest snapshot generation asked for
        self._generation = -1  # the generation of the bodies in _bodies
        self._none = _System(None, {})  # the families of no system
        self._systems: dict[str, _System] = {}  # system → its families as last rendered
        self._bodies: dict[str, Rendered] = {}  # Format.name → cached families
        # Format.name → (format, last scrape on the monotonic clock); at most len(FORMATS).
        self._wanted_formats: dict[str, tuple[Format, float]] = {
            OPENMETRICS_1_0_0.name: (OPENMETRICS_1_0_0, time.monotonic())
        }
        self._rendering: asyncio.Task[None] | None = None
        # Told the generation /metrics serves after each render (the store's readiness).
        self.on_rendered: Callable[[int], Awaitable[None]] | None = None
        self._log = structlog.get_logger("exporter.exposition")

    def changed(self, generation: int) -> None:
        """A snapshot changed (the store calls this): render it apart from the poll, in a
        task of its own; changes that arrive during a render are rendered together next."""
        self._wanted = max(self._wanted, generation)
        if self._rendering is None or self._rendering.done():
            self._rendering = asyncio.get_running_loop().create_task(
                self._render_newest(), name="render-metrics"
            )

    async def _render_newest(self) -> None:
        while self._generation < self._wanted:
            try:
                await self.refresh(self._wanted)
            except Exception:
                # A bug in one render must not stop the next ones; scrapes keep the last.
                self._log.exception("render_failed")
                return
            if self.on_rendered is not None:
                await self.on_rendered(self._generation)

    async def close(self) -> None:
        if self._rendering is not None:
            self._rendering.cancel()
            await asyncio.gather(self._rendering, return_exceptions=True)

    async def refresh(self, generation: int) -> None:
        """Render the cached families for ``generation``."""
        self._wanted = max(self._wanted, generation)
        async with self._lock:
            # A render that started after our change already includes it.
            if self._generation < self._wanted:
                await self._render_now()

    async def _render_now(self) -> None:
        """Render the store's snapshots in the formats kept warm (with the lock held)."""
        # What this render holds: the snapshots as they are now. A change published while
        # it runs is newer than ``generation`` and gets the next render.
        generation = max(self._store.generation, self._wanted)
        snapshots = self._store.all()
        now = time.monotonic()
        formats = [fmt for fmt, last in self._wanted_formats.values() if now - last < _KEEP_WARM]
        self._none, self._systems, self._bodies = await asyncio.to_thread(
            self._render, snapshots, formats
        )
        self._generation = max(self._generation, generation)

    def _render(
        self, snapshots: list[SystemSnapshot], formats: list[Format]
    ) -> tuple[_System, dict[str, _System], dict[str, Rendered]]:
        """In a worker thread: the families of each system whose snapshot changed since the
        last render (and of each format not kept until now), then each format's body joined
        from every system's families. A poll of one system renders that system only."""
        none = self._rendered(self._none, formats)
        systems = {
            snap.system: self._rendered(self._systems.get(snap.system), formats, snap)
            for snap in sorted(snapshots, key=lambda s: s.system)
        }
        everything = [none, *systems.values()]
        # The live part follows; OpenMetrics allows only one "# EOF", at the very end.
        return none, systems, {fmt.name: _join(fmt, everything) for fmt in formats}

    def _rendered(
        self,
        last: _System | None,
        formats: list[Format],
        snapshot: SystemSnapshot | None = None,
    ) -> _System:
        """A system's families in ``formats``: kept from ``last`` when its snapshot is the
        same, the rest rendered; formats no longer kept warm are dropped."""
        kept = last.formats if last is not None and last.of(snapshot) else {}
        missing = [fmt for fmt in formats if fmt.name not in kept]
        snapshots = [] if snapshot is None else [snapshot]
        fresh = render_families(self._families(snapshots), missing) if missing else {}
        return _System(
            None if snapshot is None else weakref.ref(snapshot),
            {fmt.name: kept[fmt.name] if fmt.name in kept else fresh[fmt.name] for fmt in formats},
        )

    async def answer(self, accept: str, accept_encoding: str, system: str | None = None) -> Answer:
        """The body for a scrape with these Accept and Accept-Encoding headers: every
        system's families and the live ones (/metrics), or ``system``'s alone (/probe),
        joined from the families kept: a scrape renders nothing."""
        if self._generation < 0:
            await self.refresh(self._wanted)
        fmt = negotiate(accept)
        self._wanted_formats[fmt.name] = (fmt, time.monotonic())
        if fmt.name not in self._bodies:
            # Its first scrape: rendered now (the other formats' families are kept), and
            # from now on after each change.
            async with self._lock:
                if fmt.name not in self._bodies:
                    await self._render_now()
        if system is None:
            cached, live = self._bodies[fmt.name], fmt.encoder(self._live)
        else:
            kept = self._systems.get(system)
            cached = _join(fmt, [self._none] if kept is None else [self._none, kept])
            live = _EOF if fmt.openmetrics else b""
        if accepts_gzip(accept_encoding):
            pieces = cached.gzip(live)
            return Answer(fmt.content_type, True, sum(map(len, pieces)), iter(pieces))
        text = cached.text if cached.inflated else await asyncio.to_thread(lambda: cached.text)
        return Answer(fmt.content_type, False, len(text) + len(live), iter((text, live)))
