"""Process-wide settings are made once, by the entry point (issue 15): the GIL switch interval
and the GC thresholds (exporter/runtime.py), and the secrets of the log scrubber."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator

import pytest

from exporter import cli
from exporter.config import Config, load_config
from exporter.daemon import Daemon
from exporter.logs import scrubber
from exporter.runtime import tune_process
from exporter.snapshot import SnapshotStore
from exporter.web.app import build_app
from tests.conftest import API_KEY, system_config
from tests.test_operations import write_config


@pytest.fixture
def untuned() -> Iterator[tuple[float, tuple[int, int, int]]]:
    """CPython's defaults for the test, whatever ran before; restored after."""
    saved = sys.getswitchinterval(), gc.get_threshold()
    sys.setswitchinterval(0.005)
    gc.set_threshold(700, 10, 10)
    yield sys.getswitchinterval(), gc.get_threshold()
    sys.setswitchinterval(saved[0])
    gc.set_threshold(*saved[1])


def test_building_an_app_leaves_the_process_alone(untuned):
    build_app(SnapshotStore(), ["a"])
    assert (sys.getswitchinterval(), gc.get_threshold()) == untuned


def test_tune_process_sets_the_switch_interval_and_the_young_gc_threshold(untuned):
    tune_process()
    assert sys.getswitchinterval() == pytest.approx(0.001)
    assert gc.get_threshold() == (50_000, 10, 10)  # the older generations keep theirs


def test_the_entry_point_tunes_the_process_and_wires_the_scrubber(tmp_path, monkeypatch):
    path = write_config(tmp_path / "config.yml", "http://127.0.0.1:9", ["a"])
    monkeypatch.setenv("PBXWARE_TEST_KEY", API_KEY)
    tuned: list[int] = []
    served: list[Daemon] = []

    async def serve(daemon: Daemon, *args: object) -> int:
        served.append(daemon)
        return 0

    monkeypatch.setattr(cli, "tune_process", lambda: tuned.append(1))
    monkeypatch.setattr(cli, "serve", serve)
    try:
        assert cli.main(["--config.file", str(path), "--log.level", "error"]) == 0
        assert tuned == [1] and len(served) == 1
        assert API_KEY not in scrubber.scrub(f"error quoting {API_KEY}")
    finally:
        scrubber.set_secrets([])


async def test_the_daemon_hands_new_secrets_over_on_reload(simulator, tmp_path, monkeypatch):
    """The daemon does not write the module's scrubber itself: it tells whoever built it."""
    monkeypatch.setenv("PBXWARE_TEST_KEY", API_KEY)
    url, _ = await simulator(systems=("a",), tenants=1, extensions_per_tenant=1)
    first = Config(systems=(system_config(f"{url}/a/", name="a", api_key="key-one"),))
    path = write_config(tmp_path / "config.yml", url, ["a"])
    told: list[list[str]] = []
    daemon = Daemon(first, loader=lambda: load_config(path), on_secrets=told.append)
    try:
        assert told == [["key-one"]]
        ok, _ = await daemon.reload()
        assert ok and told[-1] == load_config(path).secrets()
    finally:
        await daemon.stop()
