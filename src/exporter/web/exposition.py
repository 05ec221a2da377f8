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

Memory: each family is formatted on its own and only its gzip bytes are kept, never the
text of the whole registry as strings; a collector may yield one big family as several
consecutive parts of the same name (exporter/metrics.py does for the per-extension
families), whose repeated HELP/TYPE lines are left out.

The rendered families are kept gzip-compressed (level 1, about a tenth of the text): one gzip
stream, flushed but not finished, plus the compressor's state. A scrape that accepts gzip
(Prometheus always does) gets the stored chunks and a tail that a copy of that state makes
from the live families, which finishes the stream: one valid gzip member, without
compressing the big part again. For scrapers without gzip the text is inflated once per
render, when the first of them asks, and kept until the next render. A scrape
is written out piece by piece, so a slow scraper holds a piece in the socket buffer, not a
copy of the body.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from functools import cached_property, partial

import structlog
from prometheus_client import CollectorRegistry
from prometheus_client import exposition as text_format
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import exposition as openmetrics

from .textformat import Formatter, families

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


# Bytes of text compressed between two flushes: each flush ends a stored chunk. Fewer, bigger
# chunks cost fewer writes per scrape; smaller ones less memory while inflating for a scraper
# without gzip.
_CHUNK = 1 << 20
_LEVEL = 1  # gzip level: the render already costs seconds; level 1 is ~10x on this text
_GZIP = 16 + zlib.MAX_WBITS  # wbits for a gzip header and trailer


@dataclass(frozen=True)
class Rendered:
    """One format's cached families, as an unfinished gzip stream."""

    chunks: tuple[bytes, ...]  # gzip data, sync-flushed: everything so far can be inflated
    deflate: zlib._Compress  # the stream's state after the chunks (copied, never used itself)

    def gzip(self, live: bytes) -> tuple[bytes, ...]:
        """The whole body gzipped: the chunks and a tail with ``live`` that ends the stream."""
        tail = self.deflate.copy()
        return (*self.chunks, tail.compress(live) + tail.flush())

    @property
    def inflated(self) -> bool:
        """Whether ``text`` is there already: a scrape then takes it without a thread."""
        return "text" in self.__dict__

    @cached_property
    def text(self) -> bytes:
        """The families as text: inflated when a scraper without gzip first asks, then kept
        as long as these families are the current ones."""
        inflate = zlib.decompressobj(_GZIP)
        return b"".join(map(inflate.decompress, self.chunks))


def encode(fmt: Format, registry: CollectorRegistry) -> Rendered:
    """``fmt.encoder(registry)`` without # EOF, written family by family by the formatter
    and gzipped as Rendered (see the module docstring)."""
    deflate = zlib.compressobj(_LEVEL, zlib.DEFLATED, _GZIP)
    chunks: list[bytes] = []
    pending: list[bytes] = []
    since_flush = 0
    for family in families(formatter(fmt), registry.collect()):
        text = family.encode()
        pending.append(deflate.compress(text))
        since_flush += len(text)
        if since_flush >= _CHUNK:
            pending.append(deflate.flush(zlib.Z_SYNC_FLUSH))
            chunks.append(b"".join(pending))
            pending, since_flush = [], 0
    pending.append(deflate.flush(zlib.Z_SYNC_FLUSH))
    chunks.append(b"".join(pending))
    return Rendered(tuple(chunks), deflate)


def complete(fmt: Format, registry: CollectorRegistry) -> bytes:
    """A whole body of ``registry``, as ``fmt.encoder(registry)`` would give it."""
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
    def __init__(self, cached: CollectorRegistry, live: CollectorRegistry) -> None:
        # The GIL switch interval and the GC thresholds that keep scrapes fast during a
        # render are the process's, set once by the entry point (exporter/runtime.py).
        self._cached = cached
        self._live = live
        self._lock = asyncio.Lock()
        self._wanted = 0  # the newest snapshot generation asked for
        self._generation = -1  # the generation of the bodies in _bodies
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
            if self._generation >= self._wanted:
                return
            wanted = self._wanted
            now = time.monotonic()
            formats = [
                fmt for fmt, last in self._wanted_formats.values() if now - last < _KEEP_WARM
            ]
            bodies = await asyncio.to_thread(self._render, formats)
            self._bodies, self._generation = bodies, wanted

    def _render(self, formats: list[Format]) -> dict[str, Rendered]:
        # The live part follows; OpenMetrics allows only one "# EOF", at the very end.
        return {fmt.name: encode(fmt, self._cached) for fmt in formats}

    async def answer(self, accept: str, accept_encoding: str) -> Answer:
        """The body for a scrape with these Accept and Accept-Encoding headers."""
        if self._generation < 0:
            await self.refresh(self._wanted)
        fmt = negotiate(accept)
        self._wanted_formats[fmt.name] = (fmt, time.monotonic())
        cached = self._bodies.get(fmt.name)
        if cached is None:
            generation = self._generation
            (cached,) = (await asyncio.to_thread(self._render, [fmt])).values()
            if generation == self._generation:
                self._bodies[fmt.name] = cached
        live = fmt.encoder(self._live)
        if accepts_gzip(accept_encoding):
            pieces = cached.gzip(live)
            return Answer(fmt.content_type, True, sum(map(len, pieces)), iter(pieces))
        text = cached.text if cached.inflated else await asyncio.to_thread(lambda: cached.text)
        return Answer(fmt.content_type, False, len(text) + len(live), iter((text, live)))
