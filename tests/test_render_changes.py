"""Issue 18: a poll of one system re-renders that system only, and the body /metrics serves
is still, byte for byte, what a render of every system at once gives."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import gzip
import threading
import weakref
import zlib
from collections.abc import Iterable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from exporter import features
from exporter.config import CdrConfig, Config
from exporter.daemon import Daemon
from exporter.features.core import EXTENSIONS
from exporter.metrics import DaemonCollector, SnapshotCollector
from exporter.snapshot import SystemSnapshot
from exporter.web import exposition, gzipjoin
from exporter.web.app import build_app
from exporter.web.webconfig import WebConfigCollector
from tests.conftest import recorded, system_config
from tests.metrics_util import parse_samples, series

SYSTEMS = ("a", "b", "c")


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The systems every feature's families are built for, in call order."""
    calls: list[str] = []

    def watched(feature: features.Feature) -> features.Feature:
        def families(snapshots: Sequence[SystemSnapshot]) -> Iterable[object]:
            calls.extend(s.system for s in snapshots)
            return feature.families(snapshots)

        return dataclasses.replace(feature, families=families)

    monkeypatch.setattr(features, "FEATURES", tuple(map(watched, features.FEATURES)))
    return calls


def whole(daemon: Daemon, fmt: exposition.Format) -> bytes:
    """Every system rendered at once by prometheus_client, then the live families."""
    cached = CollectorRegistry(auto_describe=False)
    cached.register(SnapshotCollector(daemon.store))
    live = CollectorRegistry(auto_describe=False)
    live.register(DaemonCollector(daemon.store))
    live.register(WebConfigCollector(None))
    eof = b"# EOF\n"
    return fmt.encoder(cached).removesuffix(eof) + fmt.encoder(live)


async def test_a_poll_of_one_system_re_renders_that_system_only(simulator, aiohttp_client, seen):
    url, _ = await simulator(systems=SYSTEMS, tenants=3, extensions_per_tenant=4)
    daemon = Daemon(
        Config(
            systems=(
                # Systems that differ in what they emit: per-extension series, CDRs, neither.
                system_config(f"{url}/a/", name="a", extension_metrics=True),
                system_config(f"{url}/b/", name="b", cdr=CdrConfig(enabled=True)),
                system_config(f"{url}/c/", name="c", format="php"),
            )
        )
    )
    client = await aiohttp_client(recorded(build_app(daemon.store, list(SYSTEMS))))
    om = {"Accept": "application/openmetrics-text; version=1.0.0"}
    try:
        for name in SYSTEMS:
            await daemon.pollers[name].poll_once()
        assert (await client.get("/metrics")).status == 200
        assert (await client.get("/metrics", headers=om)).status == 200
        seen.clear()

        await daemon.pollers["b"].poll_once()
        text = await client.get("/metrics", headers={"Accept-Encoding": "identity"})
        body = await text.read()
        assert set(seen) == {"b"}, f"a poll of b rendered the families of {sorted(set(seen))}"
        assert body == whole(daemon, exposition.TEXT_0_0_4)
        # The gzip answer (what Prometheus gets) is one valid gzip stream of the same body.
        raw = await client.get(
            "/metrics", headers={**om, "Accept-Encoding": "gzip"}, auto_decompress=False
        )
        assert raw.headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(await raw.read()) == whole(daemon, exposition.OPENMETRICS_1_0_0)

        # A system that goes (a config reload) takes its series with it, nothing else.
        seen.clear()
        await daemon.store.remove("c")
        body = await (await client.get("/metrics", headers=om)).read()
        assert seen == []
        assert b'system="c"' not in body
        assert body == whole(daemon, exposition.OPENMETRICS_1_0_0)
    finally:
        await daemon.stop()


async def test_the_renderer_does_not_keep_an_old_snapshot_alive(
    simulator, aiohttp_client, monkeypatch
):
    """A system's families are kept with a weak reference to their snapshot: the old
    snapshot (hundreds of MB at 5,000 tenants) goes when the store lets it go, not when the
    render of the new one is done."""
    release = threading.Event()
    real = exposition.Exposition._render

    def held_render(self, snapshots, formats):
        assert release.wait(30), "the render was never released"
        return real(self, snapshots, formats)

    url, _ = await simulator(tenants=2, extensions_per_tenant=3)
    daemon = Daemon(Config(systems=(system_config(url),)))
    client = await aiohttp_client(recorded(build_app(daemon.store, ["pbx1"])))
    try:
        await daemon.pollers["pbx1"].poll_once()
        assert (await client.get("/metrics")).status == 200
        old = weakref.ref(daemon.store.get("pbx1"))
        monkeypatch.setattr(exposition.Exposition, "_render", held_render)
        await daemon.pollers["pbx1"].poll_once()  # its render is held
        assert daemon.store.rendered < daemon.store.generation
        gc.collect()
        assert old() is None, "the renderer holds the snapshot before the last poll"
        release.set()
        body = await (await client.get("/metrics")).read()
        assert b'pbxware_up{system="pbx1"} 1.0' in body
    finally:
        release.set()
        await daemon.stop()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.binary(max_size=300))
def test_crc32_combine_is_zlibs(a, b):
    assert gzipjoin.crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.binary(max_size=3000), max_size=8), st.binary(max_size=200), st.randoms())
def test_parts_joined_in_any_order_are_one_gzip_stream(texts, tail, rnd):
    """Parts written one after the other by one writer, joined in another order, with a
    tail: one gzip member whose text is theirs in that order (gzip checks CRC and size)."""
    writer = gzipjoin.PartWriter()
    parts = []
    for text in texts:
        writer.write(text)
        parts.append(writer.part())
    order = list(range(len(texts)))
    rnd.shuffle(order)
    joined = gzipjoin.join(parts[i] for i in order)
    body = b"".join(joined.chunks) + joined.finish(tail)
    inflate = zlib.decompressobj(gzipjoin.GZIP_WBITS)
    assert inflate.decompress(body) == b"".join(texts[i] for i in order) + tail
    assert inflate.eof and inflate.unused_data == b""  # one member, nothing after it


def test_a_part_longer_than_a_chunk_is_cut_into_chunks(monkeypatch):
    monkeypatch.setattr(gzipjoin, "CHUNK", 100)
    writer = gzipjoin.PartWriter()
    for i in range(50):
        writer.write(b"sample %d 1.0\n" % i)
    part = writer.part()
    assert len(part.chunks) > 5
    joined = gzipjoin.join([part])
    assert gzip.decompress(b"".join(joined.chunks) + joined.finish(b"")).count(b"\n") == 50


async def test_probe_answers_from_the_kept_families(simulator, aiohttp_client, seen):
    """/probe renders nothing per request (at 5,000 tenants a render is seconds of CPU, for
    any caller that can reach /probe): it joins the target's kept families, the same bytes
    as rendering that system alone, in every format and gzipped or not."""
    url, _ = await simulator(systems=("a", "b"), tenants=3, extensions_per_tenant=4)
    daemon = Daemon(
        Config(
            systems=(
                system_config(f"{url}/a/", name="a", extension_metrics=True),
                system_config(f"{url}/b/", name="b"),
            )
        )
    )
    client = await aiohttp_client(recorded(build_app(daemon.store, ["a", "b"])))
    try:
        for name in ("a", "b"):
            await daemon.pollers[name].poll_once()
        # The formats scraped lately are rendered after each poll.
        for fmt in exposition.FORMATS:
            await client.get("/metrics", headers={"Accept": fmt.content_type})
        want = {}
        for name in ("a", "b"):
            alone = CollectorRegistry(auto_describe=False)
            alone.register(SnapshotCollector(daemon.store, only=name))
            for fmt in exposition.FORMATS:
                want[name, fmt.name] = fmt.encoder(alone)
        seen.clear()
        for (name, fmt_name), body in want.items():
            fmt = next(f for f in exposition.FORMATS if f.name == fmt_name)
            for coding in ("identity", "gzip"):
                resp = await client.get(
                    "/probe",
                    params={"target": name},
                    headers={"Accept": fmt.content_type, "Accept-Encoding": coding},
                )
                assert resp.headers["Content-Type"] == fmt.content_type
                assert await resp.read() == body, (name, fmt.name, coding)
        assert seen == [], "a /probe request built families"
    finally:
        await daemon.stop()


async def test_a_snapshot_published_during_a_render_is_rendered_next(
    simulator, aiohttp_client, monkeypatch
):
    """A poll that lands while the render of the one before is running is rendered right
    after it: /metrics must not stay on the older snapshot until some later change."""
    release, started = threading.Event(), threading.Event()
    real = exposition.Exposition._render

    def held_render(self, snapshots, formats):
        started.set()
        assert release.wait(30), "the render was never released"
        return real(self, snapshots, formats)

    url, sim = await simulator(tenants=1, extensions_per_tenant=2)
    system = system_config(url, extension_list_interval=60.0)
    daemon = Daemon(Config(systems=(system,)))
    client = await aiohttp_client(recorded(build_app(daemon.store, ["pbx1"])))
    tenant = sorted(sim.state("pbx1").tenants)[0]
    try:
        await daemon.pollers["pbx1"].poll_once()
        assert (await client.get("/metrics")).status == 200
        monkeypatch.setattr(exposition.Exposition, "_render", held_render)
        await daemon.pollers["pbx1"].poll_once()  # its render starts and is held
        await asyncio.to_thread(started.wait, 10)
        sim.add_extension("pbx1", tenant, "7777")
        newest = await daemon.pollers["pbx1"].poll_once()  # lands during that render
        assert sum(1 for _ in newest.tenants[0].value(EXTENSIONS)) == 3
        release.set()
        text = await (await client.get("/metrics")).text()
        counts = series(parse_samples(text), "pbxware_extensions", system="pbx1", tenant=tenant)
        total = sum(counts.values())
        assert total == 3, "/metrics still serves the snapshot before the last poll"
    finally:
        release.set()
        await daemon.stop()
