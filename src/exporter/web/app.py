"""The aiohttp application: /metrics, /probe, /, /-/healthy and /-/ready."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CollectorRegistry

from ..metrics import DaemonCollector, families
from ..snapshot import SnapshotStore
from .crosssite import cross_site
from .exposition import Answer, Exposition
from .landing import render_landing
from .webconfig import WebConfigCollector, WebSecurity

if TYPE_CHECKING:
    from ..admin import AdminApi

Reload = Callable[[], Awaitable[tuple[bool, str]]]

STORE: web.AppKey[SnapshotStore] = web.AppKey("store", SnapshotStore)
RELOAD: web.AppKey[Reload] = web.AppKey("reload")
EXPOSITION: web.AppKey[Exposition] = web.AppKey("exposition", Exposition)
LIFECYCLE: web.AppKey[bool] = web.AppKey("lifecycle", bool)


async def healthy(request: web.Request) -> web.Response:
    return web.Response(text="Healthy.\n")


async def ready(request: web.Request) -> web.Response:
    if request.app[STORE].ready():
        return web.Response(text="Ready.\n")
    return web.Response(status=503, text="Not ready: not every system has been polled yet.\n")


# Bytes per write of a /metrics answer: each write waits until the socket took the last one.
_SLICE = 256 * 1024


async def metrics(request: web.Request) -> web.StreamResponse:
    answer = await request.app[EXPOSITION].answer(
        request.headers.get("Accept", ""), request.headers.get("Accept-Encoding", "")
    )
    return await _send(request, answer)


async def probe(request: web.Request) -> web.StreamResponse:
    """One system's cached series, for Prometheus-side multi-target scraping.

    Only configured system names are accepted, never a URL: the exporter must not become a
    proxy to arbitrary hosts. The refusal does not echo the target back. The body is joined
    from the system's families kept by /metrics' renderer: a request renders nothing.
    """
    target = request.query.get("target", "")
    if target not in request.app[STORE].expected:
        return web.Response(
            status=400, text="Unknown target: use the name of a configured system.\n"
        )
    answer = await request.app[EXPOSITION].answer(
        request.headers.get("Accept", ""), request.headers.get("Accept-Encoding", ""), target
    )
    return await _send(request, answer)


async def _send(request: web.Request, answer: Answer) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": answer.content_type})
    if answer.gzip:
        response.headers["Content-Encoding"] = "gzip"
    response.headers["Vary"] = "Accept-Encoding"
    response.content_length = answer.length
    await response.prepare(request)
    for piece in answer.pieces:
        view = memoryview(piece)
        for start in range(0, len(view), _SLICE):
            await response.write(view[start : start + _SLICE])
    await response.write_eof()
    return response


async def reload(request: web.Request) -> web.Response:
    """POST /-/reload: re-read the config file (like SIGHUP), with --web.enable-lifecycle."""
    if not request.app[LIFECYCLE]:
        # Prometheus' status and words: the route exists but is switched off.
        return web.Response(status=403, text="Lifecycle API is not enabled.\n")
    if cross_site(request) is not None:
        return web.Response(status=403, text="Cross-site requests are refused.\n")
    if RELOAD not in request.app:
        return web.Response(status=404, text="Reload is not available without a config file.\n")
    ok, message = await request.app[RELOAD]()
    return web.Response(status=200 if ok else 500, text=message + "\n")


async def landing(request: web.Request) -> web.Response:
    html = render_landing(request.app[STORE])
    return web.Response(text=html, content_type="text/html")


def build_app(
    store: SnapshotStore,
    systems: Sequence[str],
    admin: AdminApi | None = None,
    security: WebSecurity | None = None,
    reloader: Reload | None = None,
    lifecycle: bool = False,
) -> web.Application:
    """``lifecycle``: --web.enable-lifecycle, without which POST /-/reload answers 403."""
    # What polls produce is rendered once per snapshot, system by system (exposition.py);
    # the daemon's live counters are rendered per scrape and appended.
    live = CollectorRegistry(auto_describe=False)
    live.register(DaemonCollector(store))
    live.register(WebConfigCollector(security))
    exposition = Exposition(store, families, live)
    # Rendered apart from the poll: publishing a snapshot only schedules the render.
    store.on_change.append(exposition.changed)
    exposition.on_rendered = store.mark_rendered
    # --web.config.file's basic auth guards everything but /-/healthy and /admin/.
    app = web.Application(middlewares=[security.middleware] if security else [])
    store.expected = tuple(systems)
    app[STORE] = store
    if reloader is not None:
        app[RELOAD] = reloader
    app[LIFECYCLE] = lifecycle
    app[EXPOSITION] = exposition
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/probe", probe)
    app.router.add_get("/", landing)
    app.router.add_get("/-/healthy", healthy)
    app.router.add_get("/-/ready", ready)
    app.router.add_post("/-/reload", reload)
    if admin is not None:
        admin.install(app, live)  # /admin/ routes and its counters
    # The render task ends with the app.
    app.on_cleanup.append(lambda _: exposition.close())
    return app
