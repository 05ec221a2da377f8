"""The aiohttp application: /metrics, /, /-/healthy and /-/ready."""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler

from ..metrics import SnapshotCollector
from ..snapshot import SnapshotStore
from .landing import render_landing

STORE: web.AppKey[SnapshotStore] = web.AppKey("store", SnapshotStore)
SYSTEMS: web.AppKey[tuple[str, ...]] = web.AppKey("systems", tuple)


def is_ready(store: SnapshotStore, systems: Sequence[str]) -> bool:
    return all(store.get(name) is not None for name in systems)


async def healthy(request: web.Request) -> web.Response:
    return web.Response(text="Healthy.\n")


async def ready(request: web.Request) -> web.Response:
    if is_ready(request.app[STORE], request.app[SYSTEMS]):
        return web.Response(text="Ready.\n")
    return web.Response(status=503, text="Not ready: not every system has been polled yet.\n")


async def landing(request: web.Request) -> web.Response:
    html = render_landing(request.app[STORE], request.app[SYSTEMS])
    return web.Response(text=html, content_type="text/html")


def build_app(store: SnapshotStore, systems: Sequence[str]) -> web.Application:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(store))
    app = web.Application()
    app[STORE] = store
    app[SYSTEMS] = tuple(systems)
    app.router.add_get("/metrics", make_aiohttp_handler(registry))
    app.router.add_get("/", landing)
    app.router.add_get("/-/healthy", healthy)
    app.router.add_get("/-/ready", ready)
    return app
