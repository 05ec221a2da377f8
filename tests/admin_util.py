"""Shared pieces of the admin API tests: tokens, an environment, log reading, a leak guard.

The environment is the real thing over loopback HTTP: two simulated PBXware systems, the
daemon's clients and snapshot store, and the exporter's aiohttp app with the admin component
installed (and the conftest response recorder in front of it).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import io
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from exporter.config import AdminConfig, AdminToken, Config
from exporter.daemon import Daemon
from exporter.logs import configure_logging
from exporter.web.app import build_app
from pbxware_simulator import Simulator
from tests import conftest
from tests.conftest import recorded, system_config

# Distinctive, so that a hit in a log line or a response can only be a leak.
OPS = "adm-LEAKCHECK-ops-5d2f8a1c9e4b7063"  # read + edit, everywhere
VIEWER = "adm-LEAKCHECK-view-0b6e3d9f2a7c4158"  # read only
TENANT2 = "adm-LEAKCHECK-t2-8c1f5e0a3d6b9247"  # read + edit, tenant 2 only
PBX2 = "adm-LEAKCHECK-sys-4a9d2c7e1f0b6385"  # read + edit, system pbx2 only
SECRETS = (OPS, VIEWER, TENANT2, PBX2)

SYSTEMS = ("pbx1", "pbx2")


def _token(name: str, secret: str, scopes: set[str], **restrict: Any) -> AdminToken:
    digest = hashlib.sha256(secret.encode()).hexdigest()
    return AdminToken(name=name, sha256=digest, scopes=frozenset(scopes), **restrict)


TOKENS = (
    _token("ops", OPS, {"read", "edit"}),
    _token("viewer", VIEWER, {"read"}),
    _token("tenant2", TENANT2, {"read", "edit"}, tenants=("2",)),
    _token("pbx2-only", PBX2, {"read", "edit"}, systems=("pbx2",)),
)


# One valid edit per editable service, and what the read-back must then show.
EDITS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "callerid": (
        {
            "callerid": '"Ops Desk" <1001>',
            "emergencycid": "+38515550000",
            "anums": ["+385 1 555 0001", "0800123"],
            "alabels": ["Head office <+38515550001>", "Free line"],
            "acodes": ["1", ""],
            "trunks": ["trunk-a", "trunk.b"],
            "tcallerids": ["Sales <+38515550002>", "Support"],
            "tprivacies": [0, "4"],
        },
        # Read back in the shape PBXware answers callerid.configuration (issue 16 §9).
        {
            "callerid": '"Ops Desk" <1001>',
            "emergency_callerid": "+38515550000",
            "allowed_callerids": {
                "1": {
                    "callerid": "+385 1 555 0001",
                    "label": "Head office <+38515550001>",
                    "short_code": "1",
                },
                "2": {"callerid": "0800123", "label": "Free line", "short_code": ""},
            },
            "callerid:trunk-a": "Sales <+38515550002>",
            "callerid:trunk-a:privacy": "0",
            "callerid:trunk.b": "Support",
            "callerid:trunk.b:privacy": "4",
        },
    ),
    "callfilters": (
        {
            "callers": ["anonymous", "+38591000111"],
            "dtypes": ["voicemail", "call forward number"],
            "destinations": ["1002", 1003],
            "telemarketer": True,
        },
        {
            "callers": ["anonymous", "+38591000111"],
            "dtypes": ["voicemail", "call forward number"],
            "destinations": ["1002", "1003"],
            "telemarketer": "1",
        },
    ),
    "dnd": (
        {"dnd": 1, "dst": "1002", "dsttype": "call forward", "duration": "2"},
        {"dnd": "1", "dst": "1002", "dsttype": "call forward", "duration": "2"},
    ),
    "callfwd": (
        {
            "enabled": ["unconditional", "busy"],
            "uncond_dests": ["1002", "1003"],
            "uncond_timeouts": [15],
            "busy_dests": ["1004"],
            "busy_timeouts": ["20"],
            "play": True,
            "cid": 0,
        },
        {"enabled": "unconditional,busy", "play": 1, "cid": 0},
    ),
    "blflist": (
        {
            "exts": ["1002", "1003"],
            "labels": ["Reception", "Ana B."],
            "functions": [1, 2],
            "blfs": [1, 0],
            "blf_start": 3,
            "blf_cleanup": True,
            "cart_only": False,
        },
        {
            "exts": ["1002", "1003"],
            "labels": ["Reception", "Ana B."],
            "functions": ["1", "2"],
            "blfs": [1, 0],
            "blf_start": 3,
            "blf_cleanup": 1,
            "cart_only": 0,
        },
    ),
}


def bearer(secret: str = OPS) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def basic(secret: str = OPS, user: str = "whoever") -> dict[str, str]:
    raw = base64.b64encode(f"{user}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


class FakeClock:
    """The rate limiter's clock: tests move time instead of sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class AdminEnv:
    client: Any  # aiohttp TestClient
    sim: Simulator
    daemon: Daemon
    clock: FakeClock
    sink: io.StringIO

    def ext(self, system: str = "pbx1", tenant: str = "2", index: int = 0) -> Any:
        """The simulator's truth for an extension of a tenant (ExtensionState)."""
        return list(self.sim.state(system).tenants[tenant].extensions.values())[index]

    def url(
        self,
        service: str | None = None,
        *,
        system: str = "pbx1",
        tenant: str = "2",
        ext: str | None = None,
        state: bool = False,
        query: str = "",
    ) -> str:
        number = ext if ext is not None else self.ext(system, tenant).number
        path = f"/admin/systems/{system}/tenants/{tenant}/extensions/{number}"
        if service is not None:
            path += f"/services/{service}"
        if state:
            path += "/state"
        return path + (f"?{query}" if query else "")

    def es(self, service: str, system: str = "pbx1", tenant: str = "2", index: int = 0):
        """(configuration, state) the simulator holds for the extension's service."""
        ext = self.ext(system, tenant, index)
        store = self.sim.enhanced_services(system)
        return store.configuration(tenant, ext.id, service), store.state(tenant, ext.id, service)

    def es_requests(self, method: str, system: str = "pbx1") -> int:
        """How many pbxware.ext.es.*.<method> requests the simulator received."""
        return sum(
            n
            for action, n in self.sim.requests(system).items()
            if action.startswith("pbxware.ext.es.") and action.endswith("." + method)
        )

    def log_events(self, event: str = "admin_edit") -> list[dict[str, Any]]:
        out = []
        for line in self.sink.getvalue().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("event") == event:
                for key in ("changes", "requested"):
                    if isinstance(record.get(key), str):
                        record[key] = json.loads(record[key])
                out.append(record)
        return out

    async def wait_for_log(self, event: str, deadline_s: float = 10.0) -> list[dict[str, Any]]:
        """The lines of ``event`` once there is one: polled, with a deadline, for what the
        server logs after the client stopped waiting for it."""
        deadline = time.monotonic() + deadline_s
        while not (found := self.log_events(event)):
            assert time.monotonic() < deadline, f"no {event} line before the deadline"
            await asyncio.sleep(0.02)
        return found

    async def json(self, method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
        kwargs.setdefault("headers", bearer())
        if "data" in kwargs and "Content-Type" not in kwargs["headers"]:
            # Raw bytes are sent as what an edit must be (a test of other types says so).
            kwargs["headers"] = {**kwargs["headers"], "Content-Type": "application/json"}
        async with self.client.request(method, url, **kwargs) as resp:
            body = await resp.read()
            try:
                return resp.status, json.loads(body)
            except ValueError:
                return resp.status, body.decode("utf-8", "replace")


@contextlib.asynccontextmanager
async def admin_env(
    simulator: Callable[..., Awaitable[tuple[str, Simulator]]],
    aiohttp_client: Callable[..., Awaitable[Any]],
    sink: io.StringIO,
    *,
    tokens: tuple[AdminToken, ...] = TOKENS,
    rate_limit: int = 100_000,
    poll: bool = True,
    timeout: float = 2.0,
    fmt: str = "json",
) -> AsyncIterator[AdminEnv]:
    url, sim = await simulator(systems=SYSTEMS, tenants=2, extensions_per_tenant=4, seed=11)
    systems = tuple(
        system_config(f"{url}/{name}/", name=name, timeout=timeout, format=fmt) for name in SYSTEMS
    )
    daemon = Daemon(
        Config(systems=systems, admin=AdminConfig(tokens=tokens, rate_limit=rate_limit))
    )
    clock = FakeClock()
    daemon.admin.use_clock(clock)
    # JSON lines into the leak guard's own sink: the guard still reads every line, and the
    # audit line's fields can be read back exactly.
    configure_logging("debug", "json", stream=sink)
    client = await aiohttp_client(recorded(build_app(daemon.store, SYSTEMS, admin=daemon.admin)))
    try:
        if poll:
            for poller in daemon.pollers.values():
                await poller.poll_once()
        yield AdminEnv(client=client, sim=sim, daemon=daemon, clock=clock, sink=sink)
    finally:
        await daemon.stop()


@pytest.fixture
def admin_leak_guard(leak_guard: io.StringIO, caplog: pytest.LogCaptureFixture):
    """Like conftest's leak guard, for the admin tokens (and their Basic form)."""
    yield
    logs = leak_guard.getvalue() + caplog.text
    bodies = list(conftest._RESPONSES)
    for secret in SECRETS:
        encoded = base64.b64encode(f"whoever:{secret}".encode()).decode()
        for needle in (secret, encoded):
            assert needle not in logs, "an admin token leaked into a log line"
            for body in bodies:
                assert needle.encode() not in body, "an admin token leaked into a response"
