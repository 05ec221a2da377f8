"""/metrics bodies rendered once per snapshot change, not once per scrape.

With per-extension series a system can have 100,000 series; rendering them costs far more
than sending the bytes. So the snapshot families are rendered in a worker thread whenever a
poll publishes a snapshot, and a scrape only appends the few live families (admin counters,
reload status, build info). A scrape never waits on a PBX, and while a new render is being
made, scrapes get the previous one.

prometheus_client's negotiation (choose_encoder) picks the format. Rendering costs about
25 µs per series in the text format and 35 µs in OpenMetrics, so only the formats scraped
in the last ten minutes are rendered ahead (at first: OpenMetrics, which Prometheus asks
for); another one is rendered on its first request and then kept up to date too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

_EOF = b"# EOF\n"
_PROMETHEUS_ACCEPT = "application/openmetrics-text;version=1.0.0"
_KEEP_WARM = 600.0  # seconds a format stays rendered ahead after its last scrape

Encoder = Callable[[CollectorRegistry], bytes]


def _is_openmetrics(content_type: str) -> bool:
    return content_type.startswith("application/openmetrics-text")


class Exposition:
    def __init__(self, cached: CollectorRegistry, live: CollectorRegistry) -> None:
        self._cached = cached
        self._live = live
        self._lock = asyncio.Lock()
        self._wanted = 0  # the newest snapshot generation asked for
        self._generation = -1  # the generation of the bodies in _bodies
        self._bodies: dict[str, bytes] = {}  # content type → cached part
        encoder, content_type = choose_encoder(_PROMETHEUS_ACCEPT)
        # content type → (encoder, last scrape on the monotonic clock)
        self._wanted_formats: dict[str, tuple[Encoder, float]] = {
            content_type: (encoder, time.monotonic())
        }

    async def refresh(self, generation: int) -> None:
        """Render the cached families for ``generation`` (called after every snapshot)."""
        self._wanted = max(self._wanted, generation)
        async with self._lock:
            # A render that started after our change already includes it.
            if self._generation >= self._wanted:
                return
            wanted = self._wanted
            now = time.monotonic()
            encoders = {
                content_type: encoder
                for content_type, (encoder, last) in self._wanted_formats.items()
                if now - last < _KEEP_WARM
            }
            bodies = await asyncio.to_thread(self._render, encoders)
            self._bodies, self._generation = bodies, wanted

    def _render(self, encoders: dict[str, Encoder]) -> dict[str, bytes]:
        bodies = {}
        for content_type, encoder in encoders.items():
            body = encoder(self._cached)
            # The live part follows; OpenMetrics allows only one "# EOF", at the very end.
            bodies[content_type] = (
                body.removesuffix(_EOF) if _is_openmetrics(content_type) else body
            )
        return bodies

    async def body(self, accept: str) -> tuple[bytes, str]:
        if self._generation < 0:
            await self.refresh(self._wanted)
        encoder, content_type = choose_encoder(accept)
        self._wanted_formats[content_type] = (encoder, time.monotonic())
        cached = self._bodies.get(content_type)
        if cached is None:
            generation = self._generation
            (cached,) = (await asyncio.to_thread(self._render, {content_type: encoder})).values()
            if generation == self._generation:
                self._bodies[content_type] = cached
        return cached + encoder(self._live), content_type
