"""The simulator: options, per-system state, the aiohttp app (API + control routes)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field

from aiohttp import web

from .api import ERROR_INVALID_KEY, Params, Responder, error_body
from .cdr import CdrBook, CdrCall, CdrOptions, CdrRecord
from .es import EnhancedServices
from .faults import Fault, FaultKind, FaultRegistry
from .state import SystemModel, SystemState

CONTROL_PREFIX = "/_sim"
_SYSTEM_NAME = re.compile(r"[a-z0-9_-]+")

# PHP sends its default text/html unless a script sets a header; nothing says the API does
# (reference 7, question 1), so clients must not trust the Content-Type. GUESS.
_API_CONTENT_TYPE = "text/html"

SIMULATED_FAILURE = "Simulated failure."

_HTTP_500_PAGE = b"""<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">
<html><head>
<title>500 Internal Server Error</title>
</head><body>
<h1>Internal Server Error</h1>
<p>The server encountered an internal error or
misconfiguration and was unable to complete
your request.</p>
</body></html>
"""

_LOGIN_PAGE = b"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>PBXware - Login</title></head>
<body>
<form method="post" action="/index.php" id="login">
  <input type="text" name="username" placeholder="E-mail">
  <input type="password" name="password" placeholder="Password">
  <button type="submit">Log in</button>
</form>
</body>
</html>
"""

# html_errors=Off style, as in PHP's CLI and many php.ini files; clients such as [CRATER]
# look for "Notice" in an undecodable body.
_NOTICE = b"\nNotice: Undefined index: server in /opt/pbxware/pw/www/api/index.php on line 214\n"
# html_errors=On, the default of php.ini-development.
_NOTICE_HTML = (
    b"<br />\n<b>Notice</b>:  Undefined index: server in <b>/opt/pbxware/pw/www/api/index.php"
    b"</b> on line <b>214</b><br />\n"
)
# The wording of PBXware's answer to a key that may not use an action is not published;
# this is the text an independent PBXware implementation gave (docs/pbxware-api.md).
_DENIED = "This API key is not allowed to use action {action}."


@dataclass
class SimulatorOptions:
    systems: tuple[str, ...] = ("pbx1",)
    tenants: int = 3  # tenants per system
    extensions_per_tenant: int = 10
    api_key: str = "simulator-key-0000"
    latency_ms: float = 0.0  # added to every API request
    seed: int = 1
    churn_interval: float | None = None  # seconds between automatic ticks; None = off
    numeric_strings: bool = False  # tenant.list numeric fields as strings (the PDF variant)
    empty_tenants: int = 0  # the last N tenants of each system have no extensions
    start_time: float | None = None  # the simulator clock at tick 0 (None: now)
    tick_seconds: float = 60.0  # how far each tick moves the simulator clock
    live_calls_empty_json: bool = False  # "Live Calls: 0" as a JSON string, not bare text
    cdr: CdrOptions = field(default_factory=CdrOptions)  # pbxware.cdr.download: profile, rate

    def validate(self) -> None:
        if not self.systems:
            raise ValueError("at least one system is needed")
        for name in self.systems:
            if not _SYSTEM_NAME.fullmatch(name) or name == CONTROL_PREFIX.strip("/"):
                raise ValueError(f"bad system name {name!r}: use [a-z0-9_-]+ (not _sim)")
        if len(set(self.systems)) != len(self.systems):
            raise ValueError("system names must be unique")
        if self.tenants < 0 or self.extensions_per_tenant < 0:
            raise ValueError("tenants and extensions_per_tenant must be >= 0")
        if not 0 <= self.empty_tenants <= self.tenants:
            raise ValueError("empty_tenants must be between 0 and tenants")
        if self.latency_ms < 0:
            raise ValueError("latency_ms must be >= 0")
        if self.churn_interval is not None and self.churn_interval <= 0:
            raise ValueError("churn_interval must be > 0 (or None for no churn)")
        if not self.api_key:
            raise ValueError("api_key must not be empty")
        if self.tick_seconds <= 0:
            raise ValueError("tick_seconds must be > 0")
        self.cdr.validate()


@dataclass
class _Stats:
    requests: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0
    max_in_flight: int = 0


class Simulator:
    def __init__(self, options: SimulatorOptions) -> None:
        options.validate()
        self.options = options
        self._models = {
            name: SystemModel(
                name,
                seed=options.seed,
                tenants=options.tenants,
                extensions_per_tenant=options.extensions_per_tenant,
                empty_tenants=options.empty_tenants,
                start_time=time.time() if options.start_time is None else options.start_time,
                tick_seconds=options.tick_seconds,
            )
            for name in options.systems
        }
        self._es = {name: EnhancedServices(model) for name, model in self._models.items()}
        self._cdrs = {
            name: CdrBook(name, options.seed, options.cdr, model)
            for name, model in self._models.items()
        }
        self._responders = {
            name: Responder(
                options.api_key,
                options.numeric_strings,
                live_calls_empty_json=options.live_calls_empty_json,
                live={**self._es[name].actions(), **self._cdrs[name].actions()},
            )
            for name in options.systems
        }
        self._faults = FaultRegistry(options.systems)
        self._stats = {name: _Stats() for name in options.systems}
        self._garbage_rng = random.Random(f"{options.seed}/garbage")
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []

    # --- public API -----------------------------------------------------------------------

    @property
    def systems(self) -> tuple[str, ...]:
        return self.options.systems

    def tick(self) -> None:
        """Advance every system: some extensions go on/offline, cpu/memory/disk move."""
        for model in self._models.values():
            model.tick()
        self._notify()

    def now(self, system: str) -> float:
        """The simulator clock of a system (Unix time); each tick moves it tick_seconds."""
        return self._model(system).state.now

    def set_service(self, system: str, service: str, status: str) -> None:
        self._model(system).set_service(service, status)
        self._notify()

    def set_license_info(self, system: str, **values: str) -> None:
        """Override license.info values, e.g. ``Channels="Unlimited"`` (keys with spaces:
        pass a dict with ``**``)."""
        self._model(system).set_license_info(values)
        self._notify()

    def set_trunk_status(self, system: str, trunk_id: str, status: str) -> None:
        self._model(system).set_trunk_status(trunk_id, status)
        self._notify()

    def remove_tenant(self, system: str, tenant_id: str) -> None:
        self._model(system).remove_tenant(tenant_id)
        self._notify()

    def add_extension(self, system: str, tenant_id: str, number: str) -> None:
        self._model(system).add_extension(tenant_id, number)
        self._notify()

    def set_fault(
        self,
        system: str,
        kind: str,
        *,
        tenant: str | None = None,
        action: str | None = None,
        seconds: float = 10.0,
    ) -> None:
        self._faults.set(system, kind, tenant=tenant, action=action, seconds=seconds)

    def clear_faults(self, system: str | None = None) -> None:
        """Remove faults (of one system or all); requests sleeping in `slow` finish now."""
        self._faults.clear(system)

    def faults(self, system: str) -> list[Fault]:
        return self._faults.active(system)

    def state(self, system: str) -> SystemState:
        return self._model(system).state

    def cdrs(
        self, system: str, tenant: str, start: int, end: int, visible_at: float | None = None
    ) -> list[CdrRecord]:
        """Ground truth: the tenant's CDRs dated start..end (Unix seconds, inclusive) that
        pbxware.cdr.download returns once the clock is at ``visible_at`` (default: now)."""
        return self._cdr_book(system).records(tenant, start, end, visible_at)

    def cdr_header(self, system: str) -> tuple[str, ...]:
        """The header pbxware.cdr.download answers with (its profile)."""
        return self._cdr_book(system).header

    def cdr_calls(
        self, system: str, tenant: str, start: int, end: int, visible_at: float | None = None
    ) -> list[CdrCall]:
        """Ground truth in calls (the legs of one Unique ID are one call) that started
        start..end with a leg visible at ``visible_at``; see CdrBook.calls."""
        return self._cdr_book(system).calls(tenant, start, end, visible_at)

    def add_ring_group(
        self, system: str, tenant: str, at: int, *statuses: str, **call: object
    ) -> list[CdrRecord]:
        """Add a ring-group call with one leg per status; see CdrBook.add_ring_group."""
        book = self._cdr_book(system)
        return book.add_ring_group(tenant, at, statuses or ("cancelled", "answered"), **call)  # type: ignore[arg-type]

    def add_call(self, system: str, tenant: str, at: int, **call: object) -> CdrRecord:
        """Add a call that started at ``at``; see CdrBook.add_call for the keywords."""
        return self._cdr_book(system).add_call(tenant, at, **call)  # type: ignore[arg-type]

    def _cdr_book(self, system: str) -> CdrBook:
        self._model(system)  # a KeyError naming the system if unknown
        return self._cdrs[system]

    def enhanced_services(self, system: str) -> EnhancedServices:
        """Per-extension enhanced-service state: tests read it and plant values in it."""
        self._model(system)  # a KeyError naming the system if unknown
        return self._es[system]

    def requests(self, system: str) -> dict[str, int]:
        """API requests received per action (faulted and rejected ones included)."""
        return dict(self._stat(system).requests)

    def max_in_flight(self, system: str) -> int:
        return self._stat(system).max_in_flight

    def reset_stats(self) -> None:
        for stats in self._stats.values():
            stats.requests.clear()
            stats.max_in_flight = stats.in_flight

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Wait until `predicate()` holds; it is re-checked whenever a tick happens or an
        API request arrives or finishes. Lets tests synchronise without guessed sleeps;
        bound it with `asyncio.timeout()`.
        """
        if predicate():
            return
        waiter = (predicate, asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        try:
            await waiter[1]
        finally:
            self._waiters.remove(waiter)

    def app(self) -> web.Application:
        """A fresh aiohttp app over this simulator's state (one app per runner)."""
        app = web.Application()
        for index, system in enumerate(self.systems):
            handler = self._api_handler(system)
            paths = [f"/{system}/index.php", f"/{system}/"]
            if index == 0:
                paths += ["/index.php", "/"]
            for path in paths:
                app.router.add_get(path, handler, allow_head=False)
                app.router.add_post(path, handler)
        app.router.add_get(f"{CONTROL_PREFIX}/state", self._control_state)
        app.router.add_post(f"{CONTROL_PREFIX}/tick", self._control_tick)
        app.router.add_get(f"{CONTROL_PREFIX}/faults", self._control_get_faults)
        app.router.add_post(f"{CONTROL_PREFIX}/faults", self._control_set_fault)
        app.router.add_delete(f"{CONTROL_PREFIX}/faults", self._control_clear_faults)
        app.router.add_get(f"{CONTROL_PREFIX}/stats", self._control_stats)
        app.cleanup_ctx.append(self._churn_ctx)
        app.on_shutdown.append(self._on_shutdown)
        return app

    # --- internals ------------------------------------------------------------------------

    def _model(self, system: str) -> SystemModel:
        try:
            return self._models[system]
        except KeyError:
            raise KeyError(f"unknown system {system!r}") from None

    def _notify(self) -> None:
        for predicate, future in list(self._waiters):
            if future.done():
                continue
            try:
                if predicate():
                    future.set_result(None)
            except Exception as exc:  # the waiter should see its predicate's failure
                future.set_exception(exc)

    def _stat(self, system: str) -> _Stats:
        try:
            return self._stats[system]
        except KeyError:
            raise KeyError(f"unknown system {system!r}") from None

    async def _churn_ctx(self, app: web.Application) -> AsyncIterator[None]:
        interval = self.options.churn_interval
        task = asyncio.create_task(self._churn(interval)) if interval else None
        yield
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _churn(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self.tick()

    async def _on_shutdown(self, app: web.Application) -> None:
        # Sleeping `slow` requests would otherwise hold the runner's graceful shutdown.
        self._faults.release_all()

    def _api_handler(self, system: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handler(request: web.Request) -> web.StreamResponse:
            return await self._serve(request, system)

        return handler

    async def _serve(self, request: web.Request, system: str) -> web.StreamResponse:
        params: dict[str, str] = dict(request.query)
        if request.method == "POST":
            # Like PHP's $_REQUEST (order "GP"): form fields override query arguments.
            form = await request.post()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
        stats = self._stats[system]
        stats.requests[params.get("action", "")] += 1
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        self._notify()
        try:
            if self.options.latency_ms:
                await asyncio.sleep(self.options.latency_ms / 1000)
            return await self._answer(request, system, params)
        finally:
            stats.in_flight -= 1
            self._notify()

    async def _answer(
        self, request: web.Request, system: str, params: Params
    ) -> web.StreamResponse:
        server = params.get("server", "").strip() or None
        fault = self._faults.match(system, server, params.get("action", ""))
        kind = fault.kind if fault else None
        if fault is not None and kind is FaultKind.SLOW:
            await self._faults.sleep(system, fault.seconds)
        if kind is FaultKind.DOWN:
            # Closing the transport before any byte is written: the client sees a
            # disconnect; aiohttp quietly drops the response returned below.
            if request.transport is not None:
                request.transport.close()
            return web.Response()
        if kind is FaultKind.HTTP_500:
            return _html(_HTTP_500_PAGE, status=500, charset="iso-8859-1")
        if kind is FaultKind.HTML:
            return _html(_LOGIN_PAGE)
        if kind is FaultKind.GARBAGE:
            # \xff can start neither JSON, PHP serialize() output nor valid UTF-8.
            return _api_response(b"\xff\xfe\x00" + self._garbage_rng.randbytes(61))
        if kind is FaultKind.ERROR:
            return _api_response(error_body(params, SIMULATED_FAILURE))
        if kind is FaultKind.WRONG_KEY:
            return _api_response(error_body(params, ERROR_INVALID_KEY))
        if kind is FaultKind.DENIED:
            denied = _DENIED.format(action=params.get("action", "")[:80])
            return _api_response(error_body(params, denied))
        body = self._responders[system].answer(self._models[system].state, params)
        if kind is FaultKind.HUGE:
            return await _huge(request, body, int(fault.seconds) if fault else 0)
        if kind is FaultKind.TRUNCATED:
            body = body[: len(body) // 2]
        elif kind is FaultKind.NOTICE:
            body = _NOTICE + body
        elif kind is FaultKind.NOTICE_HTML:
            body = _NOTICE_HTML + body
        return _api_response(body)

    # --- control routes (no API key, and they never echo it) -------------------------------

    def _system_arg(self, request: web.Request) -> str:
        system = request.query.get("system", self.systems[0])
        if system not in self._models:
            raise web.HTTPNotFound(
                text=json.dumps({"error": f"unknown system {system!r}"}),
                content_type="application/json",
            )
        return system

    async def _control_state(self, request: web.Request) -> web.Response:
        return web.json_response(state_to_json(self.state(self._system_arg(request))))

    async def _control_tick(self, request: web.Request) -> web.Response:
        self.tick()
        return web.json_response(
            {"ticks": {name: model.state.tick for name, model in self._models.items()}}
        )

    async def _control_get_faults(self, request: web.Request) -> web.Response:
        system = self._system_arg(request)
        return web.json_response({"faults": [f.to_json() for f in self.faults(system)]})

    async def _control_set_fault(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
            system = body.get("system", self.systems[0])
            tenant, action = body.get("tenant"), body.get("action")
            for name, value in (("tenant", tenant), ("action", action)):
                if value is not None and not isinstance(value, str):
                    raise ValueError(f"{name} must be a string")
            self.set_fault(
                system,
                str(body.get("kind", "")),
                tenant=tenant,
                action=action,
                seconds=body.get("seconds", 10.0),
            )
        except ValueError as exc:  # json.JSONDecodeError is a ValueError too
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"faults": [f.to_json() for f in self.faults(system)]})

    async def _control_clear_faults(self, request: web.Request) -> web.Response:
        system = self._system_arg(request) if "system" in request.query else None
        self.clear_faults(system)
        return web.json_response({"cleared": system or "all"})

    async def _control_stats(self, request: web.Request) -> web.Response:
        system = self._system_arg(request)
        return web.json_response(
            {"requests": self.requests(system), "max_in_flight": self.max_in_flight(system)}
        )


async def _huge(request: web.Request, body: bytes, megabytes: int) -> web.StreamResponse:
    """Whitespace, then the valid body: legal JSON, but far bigger than any real answer.
    Streamed, so the simulator does not hold it in memory."""
    response = web.StreamResponse(headers={"Content-Type": _API_CONTENT_TYPE})
    await response.prepare(request)
    chunk = b" " * (1 << 20)
    try:
        for _ in range(megabytes):
            await response.write(chunk)
        await response.write(body)
        await response.write_eof()
    except ConnectionError:
        pass  # the client gave up reading, as a careful one should
    return response


def _api_response(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type=_API_CONTENT_TYPE, charset="UTF-8")


def _html(body: bytes, *, status: int = 200, charset: str = "UTF-8") -> web.Response:
    return web.Response(body=body, status=status, content_type="text/html", charset=charset)


def state_to_json(state: SystemState) -> dict[str, object]:
    return {
        "system": state.name,
        "tick": state.tick,
        "cpu": state.cpu,
        "memory": state.memory,
        "disk": state.disk,
        "online_count": state.online_count(),
        "tenants": {
            tid: {
                "id": t.id,
                "name": t.name,
                "api_name": t.api_name,
                "code": t.code,
                "package_id": t.package_id,
                "package": t.package,
                "ext_length": t.ext_length,
                "country_id": t.country_id,
                "country_code": t.country_code,
                "online_count": t.online_count(),
                "extensions": {eid: asdict(e) for eid, e in t.extensions.items()},
            }
            for tid, t in state.tenants.items()
        },
    }


async def start_simulator(
    options: SimulatorOptions, host: str = "127.0.0.1", port: int = 0
) -> tuple[web.AppRunner, str, Simulator]:
    """Serve a new simulator on a real socket; returns (runner, base URL, simulator).

    Stop it with `await runner.cleanup()`.
    """
    simulator = Simulator(options)
    # access_log=None: API request URLs carry the apikey.
    runner = web.AppRunner(simulator.app(), access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_port = runner.addresses[0][1]
    url_host = f"[{host}]" if ":" in host else host
    return runner, f"http://{url_host}:{bound_port}", simulator
