"""Wires config → clients → pollers → snapshot store → HTTP app, and runs their lifecycle."""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from aiohttp import web

from .config import Config
from .pbxware import PbxwareClient
from .poller import SystemPoller
from .snapshot import SnapshotStore
from .web.app import build_app


class Daemon:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.store = SnapshotStore()
        self.clients = {s.name: PbxwareClient(s) for s in config.systems}
        self.pollers = {
            s.name: SystemPoller(s, self.clients[s.name], self.store) for s in config.systems
        }
        self._tasks: list[asyncio.Task[None]] = []
        self._log = structlog.get_logger("exporter.daemon")

    def app(self) -> web.Application:
        """The HTTP app; polling starts and stops with it."""
        app = build_app(self.store, [s.name for s in self.config.systems])
        app.on_startup.append(lambda _: self.start())
        app.on_cleanup.append(lambda _: self.stop())
        return app

    async def start(self) -> None:
        for name, poller in self.pollers.items():
            self._tasks.append(asyncio.create_task(poller.run(), name=f"poll-{name}"))
        self._log.info("polling_started", systems=len(self.pollers))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await asyncio.gather(*(client.close() for client in self.clients.values()))
        self._log.info("polling_stopped")
