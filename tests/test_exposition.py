"""The live /metrics output passes the real `promtool check metrics`, in both formats."""

from __future__ import annotations

import asyncio
import gzip
import subprocess

import aiohttp
import pytest

from exporter.config import Config
from exporter.daemon import Daemon
from exporter.web import exposition, gzipjoin
from exporter.web.app import build_app
from exporter.web.exposition import accepts_gzip
from tests.conftest import recorded, system_config
from tests.metrics_util import parse_samples
from tests.tools import require_tool


@pytest.mark.tools
async def test_promtool_accepts_live_output(simulator, aiohttp_client):
    promtool = require_tool("promtool")
    url, sim = await simulator(systems=("a", "b"), tenants=3, extensions_per_tenant=5)
    sim.set_fault("b", "garbage", tenant=sorted(sim.state("b").tenants)[0])
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
        for poller in daemon.pollers.values():
            await poller.poll_once()
        resp = await client.get("/metrics")
        text = await resp.text()
        om = await client.get(
            "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        )
        om_text = await om.text()
    finally:
        await daemon.stop()
    assert resp.headers["Content-Type"].startswith("text/plain")
    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""
    # The same data is offered as OpenMetrics to a scraper that asks for it.
    assert om.headers["Content-Type"].startswith("application/openmetrics-text")
    assert om_text.rstrip().endswith("# EOF")
    names = {name for name, _ in parse_samples(text)}
    assert {"pbxware_up", "pbxware_extension_online", "pbxware_poll_errors_total"} <= names


async def test_every_family_has_help_that_says_values_are_cached(simulator, aiohttp_client):
    url, _ = await simulator(tenants=1, extensions_per_tenant=2)
    daemon = Daemon(Config(systems=(system_config(url, extension_metrics=True),)))
    client = await aiohttp_client(recorded(build_app(daemon.store, ["pbx1"])))
    try:
        await daemon.pollers["pbx1"].poll_once()
        text = await (await client.get("/metrics")).text()
    finally:
        await daemon.stop()
    helps = [line for line in text.splitlines() if line.startswith("# HELP pbxware_")]
    assert len(helps) >= 15
    for line in helps:
        # The exporter's own state (build, reloads, admin API) is live, not polled.
        if not line.startswith(("# HELP pbxware_exporter_", "# HELP pbxware_admin_")):
            assert "Cached: polled every interval" in line, line


@pytest.mark.tools
async def test_a_family_built_in_parts_is_one_family_in_both_formats(
    simulator, aiohttp_client, monkeypatch
):
    """Per-extension families are built in parts of PART_SIZE samples (to bound memory) and
    joined by the renderer: every format, /metrics and /probe, shows each family once, with
    every sample, exactly as prometheus_client renders the same family unsplit."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.openmetrics.exposition import generate_latest as om_latest
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    import exporter.features.core
    from exporter.metrics import SnapshotCollector

    promtool = require_tool("promtool")
    monkeypatch.setattr(exporter.features.core, "PART_SIZE", 7)  # 3 tenants x 10: parts of 7
    url, _ = await simulator(tenants=3, extensions_per_tenant=10)
    daemon = Daemon(Config(systems=(system_config(url, extension_metrics=True),)))
    client = await aiohttp_client(recorded(build_app(daemon.store, ["pbx1"])))
    om_accept = {"Accept": "application/openmetrics-text; version=1.0.0"}
    try:
        await daemon.pollers["pbx1"].poll_once()
        bodies = {
            "text": await (await client.get("/metrics")).text(),
            "openmetrics": await (await client.get("/metrics", headers=om_accept)).text(),
            "probe": await (await client.get("/probe?target=pbx1")).text(),
            "probe openmetrics": await (
                await client.get("/probe?target=pbx1", headers=om_accept)
            ).text(),
        }
        # The reference: prometheus_client rendering the families in one piece each.
        monkeypatch.setattr(exporter.features.core, "PART_SIZE", 10**9)
        whole = CollectorRegistry(auto_describe=False)
        whole.register(SnapshotCollector(daemon.store))
        reference = {"text": generate_latest(whole), "openmetrics": om_latest(whole)}
    finally:
        await daemon.stop()
    for name, text in bodies.items():
        helps = [ln for ln in text.splitlines() if ln.startswith("# HELP pbxware_extension_")]
        assert len(helps) == len(set(helps)) == 3, (name, helps)
        online = [ln for ln in text.splitlines() if ln.startswith("pbxware_extension_online{")]
        assert len(online) == 30, name
        if "openmetrics" in name:
            # promtool check metrics lints the Prometheus text format only; the OpenMetrics
            # parser of prometheus_client is strict (one HELP per family, # EOF last).
            families = list(text_string_to_metric_families(text))
            assert len({f.name for f in families}) == len(families), name
        else:
            result = subprocess.run(
                [promtool, "check", "metrics"],
                input=text,
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            assert result.returncode == 0, (name, result.stderr)
    for fmt in ("text", "openmetrics"):
        ref = reference[fmt].decode()
        start = ref.index("# HELP pbxware_extension_info")
        end = ref.index("# HELP pbxware_extension_series_dropped")
        assert ref[start:end] in bodies[fmt], fmt


@pytest.mark.parametrize(
    ("header", "gzip"),
    [
        ("gzip", True),
        ("gzip, deflate", True),
        ("deflate, GZIP;q=0.5", True),
        ("*", True),
        ("gzip;q=0", False),
        ("gzip;q=0.0", False),
        ("gzip;q=x", False),
        ("deflate, br", False),
        ("identity", False),
        ("", False),
    ],
)
def test_accept_encoding(header, gzip):
    assert accepts_gzip(header) is gzip


async def test_gzip_and_plain_answers_carry_the_same_body(simulator, aiohttp_client, monkeypatch):
    """The families are stored as gzip parts per system and family (chunks flushed every
    CHUNK bytes of text); a gzip scrape gets them joined and finished with the live
    families, a plain scrape gets them inflated. Both are the same exposition, with a right
    Content-Length."""
    monkeypatch.setattr(gzipjoin, "CHUNK", 2048)  # many chunks even for a small body
    url, _ = await simulator(tenants=3, extensions_per_tenant=10)
    daemon = Daemon(Config(systems=(system_config(url, extension_metrics=True),)))
    client = await aiohttp_client(recorded(build_app(daemon.store, ["pbx1"])))
    answers = {}
    try:
        await daemon.pollers["pbx1"].poll_once()
        async with aiohttp.ClientSession(auto_decompress=False) as raw:
            for fmt, accept in (("text", ""), ("openmetrics", "application/openmetrics-text")):
                for coding in ("gzip", "identity", "gzip;q=0"):
                    headers = {"Accept": accept, "Accept-Encoding": coding}
                    async with raw.get(client.make_url("/metrics"), headers=headers) as resp:
                        assert resp.status == 200
                        body = await resp.read()
                        assert int(resp.headers["Content-Length"]) == len(body)
                        gzipped = resp.headers.get("Content-Encoding") == "gzip"
                        assert gzipped is (coding == "gzip"), (fmt, coding)
                        assert resp.headers["Vary"] == "Accept-Encoding"
                        answers[fmt, coding] = gzip.decompress(body) if gzipped else body
    finally:
        await daemon.stop()
    for fmt in ("text", "openmetrics"):
        plain = answers[fmt, "identity"]
        assert answers[fmt, "gzip"] == plain == answers[fmt, "gzip;q=0"], fmt
        assert plain.count(b"pbxware_extension_online{") == 30
        assert plain.count(b"# HELP pbxware_exporter_build_info") == 1  # the live part
    assert answers["openmetrics", "identity"].endswith(b"# EOF\n")
    assert answers["openmetrics", "identity"].count(b"# EOF") == 1


# The formats /metrics and /probe answer in (exposition.FORMATS): a fixed set, whatever
# the scraper asks for.
KNOWN_CONTENT_TYPES = {
    "text/plain; version=0.0.4; charset=utf-8",
    "text/plain; version=1.0.0; charset=utf-8; escaping=underscores",
    "application/openmetrics-text; version=1.0.0; charset=utf-8",
}


async def test_any_number_of_accept_variants_renders_a_fixed_set_of_formats(
    simulator, aiohttp_client
):
    """Issue 14.2: the version= of an Accept header was copied into the content type, which
    keyed the rendered bodies, so every variant was rendered (and re-rendered after each
    poll) on its own."""
    from exporter.web.app import EXPOSITION

    url, _ = await simulator(tenants=1, extensions_per_tenant=2)
    daemon = Daemon(Config(systems=(system_config(url),)))
    app = build_app(daemon.store, ["pbx1"])
    client = await aiohttp_client(recorded(app))
    try:
        await daemon.pollers["pbx1"].poll_once()
        for n in range(40):
            for kind in ("application/openmetrics-text", "text/plain"):
                resp = await client.get("/metrics", headers={"Accept": f"{kind}; version=1.0.{n}"})
                assert resp.status == 200
                assert resp.headers["Content-Type"] in KNOWN_CONTENT_TYPES
                assert f"1.0.{n}" not in resp.headers["Content-Type"] or n == 0
        await daemon.pollers["pbx1"].poll_once()  # renders every format kept warm again
        await client.get("/metrics")
        exposition = app[EXPOSITION]
        assert len(exposition._wanted_formats) <= len(KNOWN_CONTENT_TYPES)
        assert len(exposition._bodies) <= len(KNOWN_CONTENT_TYPES)
    finally:
        await daemon.stop()


@pytest.mark.parametrize(
    "accept",
    [
        "application/openmetrics-text; version=1.x",
        "application/openmetrics-text; version=",
        "application/openmetrics-text; version=1.0.0.0.0; escaping=nonsense",
        "text/plain; version=1.x",
        "text/plain; version=banana; q=0.9",
        "application/openmetrics-text; q=abc, text/plain; q=",
        ";;;,,,=;version",
        "*/*",
        "application/json",
        "application/openmetrics-text; version=" + "9" * 5000,
    ],
)
async def test_a_malformed_accept_header_gets_a_valid_format(simulator, aiohttp_client, accept):
    """Issue 14.2: `version=1.x` answered 500 with a traceback on /metrics and /probe."""
    url, _ = await simulator(tenants=1, extensions_per_tenant=1)
    daemon = Daemon(Config(systems=(system_config(url),)))
    client = await aiohttp_client(recorded(build_app(daemon.store, ["pbx1"])))
    try:
        await daemon.pollers["pbx1"].poll_once()
        for path in ("/metrics", "/probe?target=pbx1"):
            resp = await client.get(path, headers={"Accept": accept})
            body = await resp.text()
            assert resp.status == 200, (path, body[:500])
            content_type = resp.headers["Content-Type"]
            assert content_type in KNOWN_CONTENT_TYPES, (path, content_type)
            if content_type.startswith("application/openmetrics-text"):
                assert body.endswith("# EOF\n")
            assert "pbxware_up" in body
    finally:
        await daemon.stop()


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        ("", "text/plain; version=0.0.4"),
        ("text/plain", "text/plain; version=0.0.4"),
        ("text/plain;version=1.0.0;escaping=allow-utf-8", "text/plain; version=1.0.0"),
        ("application/openmetrics-text", "application/openmetrics-text; version=1.0.0"),
        ("application/openmetrics-text;version=0.0.1", "application/openmetrics-text"),
        # What Prometheus 3 sends by default: the highest q wins.
        (
            "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
            "application/openmetrics-text;version=0.0.1;q=0.4,"
            "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,"
            "text/plain;version=0.0.4;q=0.2,*/*;q=0.1",
            "application/openmetrics-text; version=1.0.0",
        ),
        ("text/plain;q=0.9, application/openmetrics-text;q=0.1", "text/plain; version=0.0.4"),
        ("application/openmetrics-text;q=0, text/plain", "text/plain; version=0.0.4"),
    ],
)
def test_negotiation_maps_accept_headers_onto_the_fixed_formats(accept, chosen):
    fmt = exposition.negotiate(accept)
    assert fmt.content_type.startswith(chosen)
    assert fmt.content_type in KNOWN_CONTENT_TYPES


async def test_a_poll_does_not_wait_for_the_render(simulator, aiohttp_client, monkeypatch):
    """Issue 15/18: publishing a snapshot schedules its render; the poll cycle goes on."""
    import threading

    from exporter.web.exposition import Exposition

    release = threading.Event()
    real = Exposition._render

    def held_render(self, snapshots, formats):
        assert release.wait(30), "the render was never released"
        return real(self, snapshots, formats)

    monkeypatch.setattr(Exposition, "_render", held_render)
    url, _ = await simulator(tenants=2, extensions_per_tenant=3)
    daemon = Daemon(Config(systems=(system_config(url),)))
    app = build_app(daemon.store, ["pbx1"])
    client = await aiohttp_client(app)  # not recorded(): its scrapes would wait for renders
    try:
        # The render of this poll is held, yet the poll returns.
        snapshot = await asyncio.wait_for(daemon.pollers["pbx1"].poll_once(), 10)
        assert snapshot.up
        assert daemon.store.rendered < daemon.store.generation
        assert (await client.get("/-/ready")).status == 503  # not on /metrics yet
        release.set()
        await asyncio.wait_for(daemon.store.settled(), 30)
        assert (await client.get("/-/ready")).status == 200
    finally:
        release.set()
        await daemon.stop()


def test_a_plain_scrape_inflates_the_text_once_per_render():
    """The inflated text is kept with its render: later scrapes without gzip take it as it
    is (no inflate, no trip to a worker thread)."""
    from prometheus_client import CollectorRegistry, Gauge

    registry = CollectorRegistry()
    Gauge("g", "doc", registry=registry).set(1)
    rendered = exposition.encode(exposition.TEXT_0_0_4, registry)
    assert not rendered.inflated
    text = rendered.text
    assert rendered.inflated and rendered.text is text
    assert text == exposition.TEXT_0_0_4.encoder(registry)
