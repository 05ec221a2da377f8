"""Wires config → clients → pollers → snapshot store → HTTP app, and runs their lifecycle:
start, reload (systems added, removed or changed restart alone) and graceful stop."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import fields

import structlog
from aiohttp import web

from .admin import AdminApi
from .config import Config, ConfigError, SystemConfig
from .pbxware import ClientSettings, PbxwareClient
from .poller import SystemPoller
from .snapshot import SnapshotStore
from .web.app import build_app
from .web.webconfig import WebSecurity


def client_settings(system: SystemConfig) -> ClientSettings:
    """The PBXware client's share of a system's config: its attributes of the same names
    (``endpoint`` is a property of SystemConfig)."""
    return ClientSettings(**{f.name: getattr(system, f.name) for f in fields(ClientSettings)})


class Daemon:
    def __init__(
        self,
        config: Config,
        loader: Callable[[], Config] | None = None,
        security: WebSecurity | None = None,
        lifecycle: bool = False,
        clock: Callable[[], float] = time.time,
        on_secrets: Callable[[list[str]], None] | None = None,
    ) -> None:
        """``loader`` reads the config again for a reload; without one, reload is refused.
        ``lifecycle`` (--web.enable-lifecycle) opens POST /-/reload; SIGHUP works regardless.
        ``clock`` (Unix time) is the pollers' (tests pass the simulator's). ``on_secrets`` is
        told the API keys now and after every reload (the entry point passes the log
        scrubber's setter)."""
        self.config = config
        self._on_secrets = on_secrets or (lambda secrets: None)
        self._on_secrets(config.secrets())
        self.lifecycle = lifecycle
        self._loader = loader
        self.security = security
        self._clock = clock
        self.store = SnapshotStore()
        self.clients: dict[str, PbxwareClient] = {}
        self.pollers: dict[str, SystemPoller] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._running = False
        self._reload_lock = asyncio.Lock()
        self._log = structlog.get_logger("exporter.daemon")
        for system in config.systems:
            self._add(system)
        self.admin = AdminApi(config.admin, config.systems, self.clients, self.store)
        # As in Prometheus: the config loaded at start counts as the first good reload.
        self.store.reload_success_at = time.time()

    def app(self) -> web.Application:
        """The HTTP app; polling starts with it, and stops before in-flight requests end."""
        app = build_app(
            self.store,
            [s.name for s in self.config.systems],
            admin=self.admin,
            security=self.security,
            reloader=self.reload if self._loader else None,
            lifecycle=self.lifecycle,
        )
        app.on_startup.append(lambda _: self.start())
        # Polls stop first (on_shutdown); the PBX sessions close last (on_cleanup), after
        # aiohttp has let in-flight admin edits finish.
        app.on_shutdown.append(lambda _: self.stop_polling())
        app.on_cleanup.append(lambda _: self.stop())
        return app

    def _add(self, system: SystemConfig) -> None:
        self.clients[system.name] = PbxwareClient(client_settings(system))
        self.pollers[system.name] = SystemPoller(
            system, self.clients[system.name], self.store, clock=self._clock
        )

    def _start_poller(self, name: str) -> None:
        # One task per system: its cycles and its features' runners (CDRs) stop together.
        self._tasks[name] = asyncio.create_task(self.pollers[name].run(), name=f"poll-{name}")

    async def _stop_poller(self, name: str) -> None:
        task = self._tasks.pop(name, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def start(self) -> None:
        self._running = True
        for name in self.pollers:
            self._start_poller(name)
        self._log.info("polling_started", systems=len(self.pollers))
        self.admin.log_status()

    async def stop_polling(self) -> None:
        self._running = False
        await asyncio.gather(*(self._stop_poller(name) for name in list(self._tasks)))

    async def stop(self) -> None:
        await self.stop_polling()
        await asyncio.gather(*(client.close() for client in self.clients.values()))
        self._log.info("polling_stopped")

    async def reload(self) -> tuple[bool, str]:
        """Read the config again; on any error keep the running config and say why."""
        if self._loader is None:
            return False, "no config file to reload"
        async with self._reload_lock:
            try:
                new = self._loader()
            except ConfigError as exc:
                self.store.reload_ok = False
                self._log.error("config_reload_failed", problems=exc.problems, file=exc.source)
                return False, f"config reload failed, keeping the running config:\n{exc}"
            old = {s.name: s for s in self.config.systems}
            fresh = {s.name: s for s in new.systems}
            removed = sorted(old.keys() - fresh.keys())
            added = sorted(fresh.keys() - old.keys())
            changed = sorted(n for n in old.keys() & fresh.keys() if old[n] != fresh[n])
            for name in (*removed, *changed):
                await self._stop_poller(name)
                await self.clients.pop(name).close()
                del self.pollers[name]
            for name in removed:
                await self.store.remove(name)
            self._on_secrets(new.secrets())
            for name in (*added, *changed):
                self._add(fresh[name])
                if self._running:
                    self._start_poller(name)
            self.config = new
            self.store.expected = tuple(fresh)
            self.admin.update(new.admin, new.systems)
            self.store.reload_ok = True
            self.store.reload_success_at = time.time()
            self._log.info("config_reloaded", added=added, removed=removed, changed=changed)
            return True, (
                f"config reloaded: {len(added)} added, {len(removed)} removed,"
                f" {len(changed)} changed"
            )
