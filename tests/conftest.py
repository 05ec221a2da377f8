"""Shared fixtures.

Every test runs under a leak guard: all log output (structlog and the standard library) and
every response body the exporter's app sends are captured, and the test fails if the API
key shows up in any of them. The secret scrubber of exporter.logs is left empty here, so
the guard checks the code itself rather than the scrubber (which has its own test).
"""

from __future__ import annotations

import io
import logging
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import NoReturn

import pytest
from aiohttp import web

from exporter.config import SystemConfig
from exporter.logs import configure_logging, scrubber
from exporter.runtime import tune_process
from exporter.web.app import STORE
from pbxware_simulator import Simulator, SimulatorOptions, start_simulator

# Distinctive, so that a hit in a log or a response can only be a leak.
API_KEY = "sk-LEAKCHECK-9c41f07d2be8a356"

_RESPONSES: list[bytes] = []
# The routes that answer from the store's snapshots (the admin API reads the PBX itself).
_RENDERED = frozenset({"/metrics", "/probe", "/", "/-/ready"})


@web.middleware
async def record_responses(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    if request.path in _RENDERED and STORE in request.app:
        # /metrics is rendered apart from the poll (exporter/web/exposition.py): a test that
        # polled and then scrapes wants that poll's render, as a scraper a moment later gets.
        await request.app[STORE].settled()
    response = await handler(request)
    if isinstance(response, web.Response) and response.body is not None:
        body = response.body
        _RESPONSES.append(body if isinstance(body, bytes) else str(body).encode())
    _RESPONSES.append(str(dict(response.headers)).encode())
    return response


def recorded(app: web.Application) -> web.Application:
    """Put the leak guard's recorder in front of an exporter app."""
    app.middlewares.insert(0, record_responses)
    return app


@pytest.fixture(scope="session", autouse=True)
def daemon_process_settings() -> None:
    """The test session is an entry point too: it tunes the interpreter once, as
    pbxware-exporter does, so that in-process daemons run under the daemon's settings
    (building an app no longer does it; tests/test_process_setup.py)."""
    tune_process()


@pytest.fixture(autouse=True)
def leak_guard(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    sink = io.StringIO()
    scrubber.set_secrets([])
    configure_logging("debug", "logfmt", stream=sink)
    _RESPONSES.clear()
    yield sink
    logs = sink.getvalue() + caplog.text
    assert API_KEY not in logs, "the API key leaked into a log line"
    for body in _RESPONSES:
        assert API_KEY.encode() not in body, "the API key leaked into an HTTP response"


@pytest.fixture(autouse=True)
def processes_only_with_the_tools_marker(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A test that starts a process (a tool, the exporter, the simulator) must be marked
    ``tools``: the fast loop (-m "not slow and not tools") then starts none."""
    if request.node.get_closest_marker("tools") is not None:
        return

    def refused(args: object, *rest: object, **kw: object) -> NoReturn:
        pytest.fail(f"{request.node.nodeid} starts {args!r}: mark it @pytest.mark.tools")

    monkeypatch.setattr(subprocess, "Popen", refused)


@pytest.fixture
async def simulator() -> AsyncIterator[Callable[..., Awaitable[tuple[str, Simulator]]]]:
    """Start simulators on real loopback sockets: ``url, sim = await simulator(tenants=3)``."""
    runners: list[web.AppRunner] = []

    async def start(**options: object) -> tuple[str, Simulator]:
        opts = SimulatorOptions(api_key=API_KEY, **options)  # type: ignore[arg-type]
        runner, url, sim = await start_simulator(opts)
        runners.append(runner)
        return url, sim

    yield start
    for runner in runners:
        await runner.cleanup()


def system_config(url: str, name: str = "pbx1", **overrides: object) -> SystemConfig:
    base = SystemConfig(name=name, url=url, api_key=API_KEY, interval=60.0, timeout=2.0)
    return replace(base, **overrides)  # type: ignore[arg-type]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite tests/golden/metrics.txt from this run (tests/test_golden.py); review the diff",
    )
