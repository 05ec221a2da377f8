"""The admin API's routes on the daemon's aiohttp app, under ``/admin/``.

```
GET  /admin/systems/{system}/tenants/{tenant}/extensions/{ext}                  all six services
GET  /admin/systems/{system}/tenants/{tenant}/extensions/{ext}/services/{svc}   configuration
PUT  /admin/systems/{system}/tenants/{tenant}/extensions/{ext}/services/{svc}   edit, read back
GET  /admin/…/services/{svc}/state                                              on/off
POST /admin/…/services/{svc}/state   {"enabled": true|false}                    switch, read back
```

``{ext}`` is the extension **number** (what alert labels carry); it is resolved to PBXware's
extension id through the last snapshot of the tenant, else ``pbxware.ext.list``.

Order of checks, so that nothing reaches a PBX unless it may and should: a client address
blocked for failed authentication (429) → authentication (401) → the token's rate limit
(429) → for edits: not cross-site (403) and a JSON body (415) → scope and system/tenant
restrictions (403) → known system, tenant, extension number and service (404) → editable
(405) → body (400) → resolve the extension (404, 502, 504) → ``If-Match`` (412) →
``?dry_run=1`` stops here → read, edit, read back.

docs/security.md ("Admin API") gives the threat model and the test of each defence.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import re
import stat
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import structlog
from aiohttp import web
from aiohttp.typedefs import LooseHeaders
from multidict import CIMultiDict
from prometheus_client import CollectorRegistry

from ..config import AdminConfig, AdminToken, SystemConfig
from ..snapshot import SnapshotStore
from ..web.throttle import FailureThrottle, LogLimiter, client_key, retry_after
from .audit import AdminMetrics, AuditRecord, diff
from .auth import EDIT, READ, REALM, RateLimiter, TokenTable, authorize
from .body import CLIENT_GONE, read_json
from .etag import check_if_match, etag
from .forgery import forged
from .gateway import AdminError, Caller, Gateway, Target, is_on
from .html import CSP, render_extension
from .logsafe import escape
from .services import SERVICES, ServiceSchema, ValidationError, schema, validate

T = TypeVar("T")

PREFIX = "/admin"
BASE = "/systems/{system}/tenants/{tenant}/extensions/{ext}"
# The authenticated token of the request being handled. A context variable rather than a
# request key: the middleware and the handler run in the same task, and string request keys
# warn on recent aiohttp while web.RequestKey does not exist on older ones.
_TOKEN: contextvars.ContextVar[AdminToken | None] = contextvars.ContextVar(
    "pbxware_admin_token", default=None
)
_TENANT_RE = re.compile(r"[0-9]{1,10}")
_EXT_RE = re.compile(r"[0-9]{1,20}")
_EDIT_METHODS = frozenset({"PUT", "POST"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(
    status: int, body: Mapping[str, Any], headers: LooseHeaders | None = None
) -> web.Response:
    return web.json_response(dict(body), status=status, headers=headers)


def _error(exc: AdminError) -> web.Response:
    headers: dict[str, str] = dict(exc.headers)
    if exc.status == 405:
        headers["Allow"] = "GET, HEAD"
    return _json(exc.status, exc.body(), headers)


def _extension_json(target: Target) -> dict[str, str]:
    ext = target.extension
    return {
        "id": ext.id,
        "number": ext.number,
        "name": ext.name,
        "status": ext.status,
        "protocol": ext.protocol,
    }


def _dry_run(request: web.Request) -> bool:
    value = request.query.get("dry_run", "0").strip().lower()
    if value in ("1", "true", "yes"):
        return True
    if value in ("0", "false", "no", ""):
        return False
    raise AdminError(400, "dry_run must be 1 or 0 (true/false)", "invalid")


def _wants_html(request: web.Request) -> bool:
    return "text/html" in request.headers.get("Accept", "").lower()


class _Sent:
    """Whether an edit went out to PBXware (set just before it is sent)."""

    yes = False


async def _read_back(read: Awaitable[T], what: str) -> T:
    """The read after an edit or switch: its failure is a 502 that says the edit was made."""
    try:
        return await read
    except AdminError as exc:
        raise AdminError(
            502,
            f"PBXware accepted the {what}, but reading it back failed: {exc.message}",
            "readback_failed",
            {"edited": True},
        ) from None


class AdminApi:
    """The admin component: ``install()`` adds the routes and the two counters to an app."""

    def __init__(
        self,
        config: AdminConfig,
        systems: Sequence[SystemConfig],
        clients: Mapping[str, Caller],
        store: SnapshotStore,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.tokens = TokenTable(config.tokens)
        self.limiter = RateLimiter(config.rate_limit, clock)
        # Failed authentication per client address, and the log lines it causes. Both
        # outlive config reloads (update() keeps them).
        self.throttle = FailureThrottle(clock=clock)
        self.log_limiter = LogLimiter(clock=clock)
        self.systems = {s.name: s for s in systems}
        self.gateway = Gateway(clients, store)
        self.metrics = AdminMetrics(tuple(self.systems))
        self._log = structlog.get_logger("exporter.admin")

    def use_clock(self, clock: Callable[[], float]) -> None:
        """Tests move time instead of sleeping."""
        self.limiter.clock = self.throttle.clock = self.log_limiter.clock = clock

    @property
    def enabled(self) -> bool:
        # Authentication is never off: without a token there is no admin API at all.
        return len(self.tokens) > 0

    def log_status(self) -> None:
        if self.enabled:
            self._log.info(
                "admin_api_enabled",
                path=f"{PREFIX}/",
                tokens=len(self.tokens),
                rate_limit_per_minute=self.config.rate_limit,
            )
        else:
            self._log.info(
                "admin_api_disabled", reason="no admin.tokens configured; /admin/ answers 404"
            )
        self._check_token_files()

    def _check_token_files(self) -> None:
        """Warn about a token file others may read: the token in it is an edit credential."""
        for token in self.config.tokens:
            if token.file is None:
                continue
            try:
                mode = os.stat(token.file).st_mode
            except OSError:
                continue  # it was read at load; gone now is the next reload's problem
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                self._log.warning(
                    "admin_token_file_readable",
                    token=token.name,
                    file=escape(token.file),
                    mode=f"{stat.S_IMODE(mode):04o}",
                    hint="readable by group or others: chmod 600 it (owner: the exporter's user)",
                )

    def update(self, config: AdminConfig, systems: Sequence[SystemConfig]) -> None:
        """A config reload: new tokens, limits and systems. The clients mapping is the
        daemon's own, so the gateway already sees added and removed systems. The tokens'
        rate-limit buckets and the failed-authentication record are kept: a reload must not
        hand out fresh budgets."""
        self.config = config
        self.tokens = TokenTable(config.tokens)
        self.limiter.update(config.rate_limit, (t.name for t in config.tokens))
        self.systems = {s.name: s for s in systems}
        self.metrics.set_systems(tuple(self.systems))
        self.log_status()

    def install(self, app: web.Application, registry: CollectorRegistry) -> None:
        self.metrics.register(registry)
        # Mounted even without tokens, so that a reload can turn it on; until then every
        # /admin/ URL answers 404 (see _middleware).
        sub = web.Application(middlewares=[self._middleware])
        sub.router.add_get(BASE, self._extension)
        sub.router.add_get(BASE + "/services/{service}", self._get_service)
        sub.router.add_put(BASE + "/services/{service}", self._put_service)
        sub.router.add_get(BASE + "/services/{service}/state", self._get_state)
        sub.router.add_post(BASE + "/services/{service}/state", self._post_state)
        app.add_subapp(PREFIX, sub)

    # --- middleware: metrics, authentication, rate limit, never a traceback -------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not self.enabled:
            raise web.HTTPNotFound()
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        try:
            response = await self._authenticated(request, handler)
        except web.HTTPException as exc:
            # aiohttp's own answers (unknown path, wrong method): same JSON shape as ours.
            headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
            response = _json(exc.status, {"error": exc.reason}, headers)
        except asyncio.CancelledError:
            # The server cancelled the handler: the client went away (or shutdown).
            self._client_gone(request, route, "cancelled")
            self._count(route, request.method, CLIENT_GONE)
            raise
        except Exception:
            with contextlib.suppress(Exception):  # logging must not change the answer
                self._log.exception("admin_internal_error", route=route, method=request.method)
            response = _json(500, {"error": "internal error (logged)"})
        if response.status == CLIENT_GONE:
            self._client_gone(request, route, "disconnected")
        self._count(route, request.method, response.status)
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    def _count(self, route: str, method: str, status: int) -> None:
        with contextlib.suppress(Exception):  # a metric must not fail the request
            self.metrics.request(route, method, status)

    def _client_gone(self, request: web.Request, route: str, how: str) -> None:
        """One line, no traceback: a client closing its connection is not our error."""
        with contextlib.suppress(Exception):
            self._log.info(
                "admin_client_gone",
                client=escape(request.remote or "-", 64),
                method=escape(request.method, 16),
                route=route,
                how=how,
            )

    async def _authenticated(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        client = client_key(request.remote)
        blocked = self.throttle.blocked(client)
        if blocked is not None:
            # Refused before the credentials are looked at: a right guess must not show.
            error = AdminError(
                429,
                "too many failed authentications from this address; try again later",
                "rate_limited",
            )
            self._refused_edit(request, None, error)
            return _json(429, error.body(), {"Retry-After": retry_after(blocked)})
        header = request.headers.get("Authorization")
        token = self.tokens.authenticate(header)
        if token is None:
            if header:
                self._auth_failed(client)
            error = AdminError(
                401,
                "authentication required: send 'Authorization: Bearer <token>', or HTTP "
                "Basic with the token as password",
                "unauthorized",
            )
            self._refused_edit(request, None, error)
            # Basic first: it makes a browser ask for the token (as the password).
            challenges = CIMultiDict(
                [
                    ("WWW-Authenticate", f'Basic realm="{REALM}", charset="UTF-8"'),
                    ("WWW-Authenticate", f'Bearer realm="{REALM}"'),
                ]
            )
            return _json(401, error.body(), challenges)
        wait = self.limiter.acquire(token.name)
        if wait is not None:
            error = AdminError(
                429,
                f"rate limit of {self.config.rate_limit} requests per minute exceeded "
                f"for token {token.name!r}",
                "rate_limited",
            )
            self._refused_edit(request, token, error)
            return _json(429, error.body(), {"Retry-After": retry_after(wait)})
        if request.method in _EDIT_METHODS:
            refused = forged(request)
            if refused is not None:
                self._refused_edit(request, token, refused)
                return _error(refused)
        reset = _TOKEN.set(token)
        try:
            return await handler(request)
        finally:
            _TOKEN.reset(reset)

    def _auth_failed(self, client: str) -> None:
        """Count a failed authentication; its log line at most once a minute per client."""
        block = self.throttle.failure(client)
        with contextlib.suppress(Exception):  # logging must not change the answer
            dropped = self.log_limiter.allow("auth " + client)
            if dropped is not None:
                # Never the header itself: it holds a (wrong, or someone else's) secret.
                self._log.warning(
                    "admin_auth_failed", client=escape(client, 64), suppressed=dropped or None
                )
            if block is not None:
                # Once per block, and a block lasts at least a minute.
                self._log.warning(
                    "admin_auth_throttled",
                    client=escape(client, 64),
                    retry_after=int(block),
                    failures=self.throttle.limit,
                    window_seconds=int(self.throttle.window),
                )

    def _refused_edit(
        self, request: web.Request, token: AdminToken | None, error: AdminError
    ) -> None:
        """The audit line of an edit refused before its handler ran (401, 403, 415, 429).

        Without a token (nobody authenticated) the line is written at most once a minute per
        client, with the count of those left out: guessing must not flood the log. Every
        refusal is counted in pbxware_admin_edits_total all the same."""
        info = request.match_info
        if request.method not in _EDIT_METHODS or "service" not in info:
            return
        resource = info.route.resource
        on_state = resource is not None and resource.canonical.endswith("/state")
        record = self._record(request, "state" if on_state else "edit")
        record.token = token.name if token else None
        record.result, record.status, record.error = error.result, error.status, error.message
        write = True
        if token is None:
            dropped = self.log_limiter.allow("audit " + client_key(request.remote))
            write = dropped is not None
            record.suppressed = dropped or None
        record.emit(self.metrics, write=write)

    # --- common checks -----------------------------------------------------------------------

    def _record(self, request: web.Request, action: str) -> AuditRecord:
        info = request.match_info
        token = _TOKEN.get()
        return AuditRecord(
            client=request.remote or "-",
            system=info.get("system", ""),
            tenant=info.get("tenant", ""),
            extension=info.get("ext", ""),
            service=info.get("service", ""),
            action=action,
            token=token.name if token is not None else None,
        )

    def _check(self, request: web.Request, scope: str) -> tuple[str, str, str]:
        """(system, tenant, number) once the token may use them and they are well formed."""
        info = request.match_info
        system, tenant, number = info["system"], info["tenant"], info["ext"]
        token = _TOKEN.get()
        if token is None:  # unreachable behind the middleware; never fail open
            raise AdminError(401, "authentication required", "unauthorized")
        denied = authorize(token, scope, system, tenant)
        if denied is not None:
            raise AdminError(403, denied.message, "forbidden")
        if system not in self.systems:
            known = ", ".join(sorted(self.systems))
            raise AdminError(404, f"unknown system {system[:64]!r} (known: {known})", "not_found")
        if not _TENANT_RE.fullmatch(tenant):
            raise AdminError(404, "the tenant must be PBXware's numeric tenant id", "not_found")
        if not _EXT_RE.fullmatch(number):
            raise AdminError(404, "the extension must be an extension number", "not_found")
        return system, tenant, number

    def _service(self, request: web.Request) -> ServiceSchema:
        name = request.match_info["service"]
        found = schema(name)
        if found is None:
            known = ", ".join(SERVICES)
            raise AdminError(404, f"unknown service {name[:64]!r} (known: {known})", "not_found")
        return found

    def _head(self, target: Target, service: ServiceSchema | None = None) -> dict[str, Any]:
        head: dict[str, Any] = {
            "system": target.system,
            "tenant": target.tenant,
            "extension": _extension_json(target),
        }
        if service is not None:
            head.update(service=service.name, title=service.title, editable=service.editable)
        return head

    # --- reads -------------------------------------------------------------------------------

    async def _extension(self, request: web.Request) -> web.Response:
        try:
            system, tenant, number = self._check(request, READ)
            target = await self.gateway.resolve(system, tenant, number)
            services = await self._all_services(target)
        except AdminError as exc:
            return _error(exc)
        view = {**self._head(target), "services": services}
        headers = {"Vary": "Accept"}
        if _wants_html(request):
            headers.update(
                {
                    "Content-Security-Policy": CSP,
                    "X-Frame-Options": "DENY",
                    "Referrer-Policy": "no-referrer",
                }
            )
            return web.Response(
                text=render_extension(view), content_type="text/html", headers=headers
            )
        return _json(200, view, headers)

    async def _all_services(self, target: Target) -> dict[str, Any]:
        names = list(SERVICES)
        results = await asyncio.gather(
            *(self._one_service(target, schema(n)) for n in names),  # type: ignore[arg-type]
            return_exceptions=True,
        )
        services: dict[str, Any] = {}
        failures: list[AdminError] = []
        for name, result in zip(names, results, strict=True):
            if isinstance(result, AdminError):
                # A PBX that is down fails the page; PBXware refusing one service (a key
                # without that permission, say) shows as that service's error.
                if result.status != 502:
                    raise result
                failures.append(result)
                found = schema(name)
                services[name] = {
                    "title": found.title if found else name,
                    "error": result.message,
                }
            elif isinstance(result, BaseException):
                raise result
            else:
                services[name] = result
        if len(failures) == len(names):
            raise failures[0]
        return services

    async def _one_service(self, target: Target, service: ServiceSchema) -> dict[str, Any]:
        config, state = await asyncio.gather(
            self.gateway.configuration(target, service), self.gateway.get_state(target, service)
        )
        return {
            "title": service.title,
            "editable": service.editable,
            "enabled": is_on(state),
            "state": state,
            "configuration": config,
        }

    async def _read(
        self,
        request: web.Request,
        read: Callable[[Target, ServiceSchema], Awaitable[T]],
    ) -> tuple[Target, ServiceSchema, T]:
        """The checks of a read, then the read itself."""
        system, tenant, number = self._check(request, READ)
        service = self._service(request)
        target = await self.gateway.resolve(system, tenant, number)
        return target, service, await read(target, service)

    async def _get_service(self, request: web.Request) -> web.Response:
        try:
            target, service, config = await self._read(request, self.gateway.configuration)
        except AdminError as exc:
            return _error(exc)
        # The tag of what was read: send it back as If-Match with a PUT (lost updates).
        return _json(
            200, {**self._head(target, service), "configuration": config}, {"ETag": etag(config)}
        )

    async def _get_state(self, request: web.Request) -> web.Response:
        try:
            target, service, state = await self._read(request, self.gateway.get_state)
        except AdminError as exc:
            return _error(exc)
        return _json(200, {**self._head(target, service), "enabled": is_on(state), "state": state})

    # --- edits -------------------------------------------------------------------------------

    async def _put_service(self, request: web.Request) -> web.Response:
        record = self._record(request, "edit")
        return await self._audited(record, lambda sent: self._edit_service(request, record, sent))

    async def _edit_service(
        self, request: web.Request, record: AuditRecord, sent: _Sent
    ) -> web.Response:
        if_match = request.headers.get("If-Match")
        system, tenant, number = self._check(request, EDIT)
        service = self._service(request)
        if not service.editable:
            raise AdminError(405, service.not_editable_reason, "not_editable")
        record.dry_run = _dry_run(request)
        body = await read_json(request)
        try:
            edit = validate(service, body)
        except ValidationError as exc:
            record.request = body
            raise AdminError(400, str(exc), "invalid", {"field": exc.field}) from None
        record.request = edit.params
        target = await self.gateway.resolve(system, tenant, number)
        if record.dry_run:
            if if_match is not None:
                check_if_match(if_match, await self.gateway.configuration(target, service))
            return self._dry_run_answer(record, target, service, "edit", edit.params)
        async with self.gateway.lock(target):
            before = await self.gateway.configuration(target, service)
            # Checked under the lock against a fresh read: no other edit through this
            # exporter can come between the check and the edit.
            check_if_match(if_match, before)
            sent.yes = True
            await self.gateway.edit(target, service, edit.params)
            after = await _read_back(self.gateway.configuration(target, service), "edit")
        record.changes = diff(before, after)
        record.result, record.status = "ok", 200
        return _json(
            200,
            {**self._head(target, service), "configuration": after, "changed": record.changes},
            {"ETag": etag(after)},
        )

    async def _post_state(self, request: web.Request) -> web.Response:
        record = self._record(request, "state")
        return await self._audited(record, lambda sent: self._switch_state(request, record, sent))

    async def _switch_state(
        self, request: web.Request, record: AuditRecord, sent: _Sent
    ) -> web.Response:
        system, tenant, number = self._check(request, EDIT)
        service = self._service(request)
        record.dry_run = _dry_run(request)
        body = await read_json(request)
        if not isinstance(body, dict) or set(body) != {"enabled"}:
            record.request = body
            raise AdminError(
                400,
                'the body must be {"enabled": true} or {"enabled": false}',
                "invalid",
                {"field": "enabled"},
            )
        if not isinstance(body["enabled"], bool):
            record.request = body
            raise AdminError(400, "enabled must be true or false", "invalid", {"field": "enabled"})
        on: bool = body["enabled"]
        params = {"state": "yes" if on else "no"}
        record.request = params
        target = await self.gateway.resolve(system, tenant, number)
        if record.dry_run:
            return self._dry_run_answer(record, target, service, "set", params)
        async with self.gateway.lock(target):
            before = await self.gateway.get_state(target, service)
            sent.yes = True
            await self.gateway.set_state(target, service, on)
            after = await _read_back(self.gateway.get_state(target, service), "switch")
        record.changes = diff({"state": before}, {"state": after})
        record.result, record.status = "ok", 200
        return _json(200, {**self._head(target, service), "enabled": is_on(after), "state": after})

    def _dry_run_answer(
        self,
        record: AuditRecord,
        target: Target,
        service: ServiceSchema,
        action: str,
        params: dict[str, Any],
    ) -> web.Response:
        """What the edit would send, not sent."""
        record.result, record.status = "dry_run", 200
        preview = self.gateway.request_preview(
            self.systems[target.system].format, service.action(action), target, params
        )
        return _json(200, {**self._head(target, service), "dry_run": True, "request": preview})

    async def _audited(
        self, record: AuditRecord, handle: Callable[[_Sent], Awaitable[web.Response]]
    ) -> web.Response:
        """Run an edit's handler; whatever happens, its audit line is written once.

        A cancelled request was sent to PBXware or not (``sent``): once sent, nobody knows
        whether PBXware applied it ("unknown"); before, the client simply left."""
        sent = _Sent()
        try:
            return await handle(sent)
        except AdminError as exc:
            record.result, record.status, record.error = exc.result, exc.status, exc.message
            return _error(exc)
        except asyncio.CancelledError:
            record.result = "unknown" if sent.yes else "client_gone"
            record.status, record.error = CLIENT_GONE, "the request was cancelled"
            raise
        finally:
            record.emit(self.metrics)
