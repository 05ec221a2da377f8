"""Command line: flags in the style of the Prometheus exporters, then run the daemon."""

from __future__ import annotations

import argparse
import asyncio
import secrets
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog
from aiohttp import web

from . import __version__
from .config import CdrConfig, Config, ConfigError, SystemConfig, load_config, shard_config
from .daemon import Daemon
from .logs import configure_logging, scrubber
from .runtime import tune_process
from .web.guard import HEADER_TIMEOUT, MAX_CONNECTIONS, GuardedRunner
from .web.webconfig import WebSecurity

DEFAULT_LISTEN = ":9865"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="pbxware-exporter", description="Prometheus exporter for Bicom PBXware."
    )
    parser.add_argument(
        "--config.file",
        dest="config_file",
        default="config.yml",
        help="YAML config file (default: %(default)s)",
    )
    parser.add_argument(
        "--config.check",
        dest="config_check",
        action="store_true",
        help="validate the config file, print the result and exit 0 or 1",
    )
    parser.add_argument(
        "--web.listen-address",
        dest="listen",
        default=DEFAULT_LISTEN,
        help="host:port to serve /metrics on (default: %(default)s)",
    )
    parser.add_argument(
        "--log.level",
        dest="log_level",
        default="info",
        choices=["debug", "info", "warning", "error"],
    )
    parser.add_argument(
        "--log.format", dest="log_format", default="logfmt", choices=["logfmt", "json"]
    )
    parser.add_argument(
        "--web.config.file",
        dest="web_config_file",
        default=None,
        help="TLS and basic auth, in the Prometheus exporter-toolkit format",
    )
    parser.add_argument(
        "--web.enable-lifecycle",
        dest="enable_lifecycle",
        action="store_true",
        help="serve POST /-/reload (off: 403, as in Prometheus; SIGHUP always reloads)",
    )
    parser.add_argument(
        "--web.shutdown-timeout",
        dest="shutdown_timeout",
        type=float,
        default=10.0,
        help="seconds that in-flight requests get to finish on SIGTERM (default: %(default)s)",
    )
    parser.add_argument(
        "--web.read-header-timeout",
        dest="header_timeout",
        type=float,
        default=HEADER_TIMEOUT,
        help="seconds a client has to send a request's headers (default: %(default)s)",
    )
    parser.add_argument(
        "--web.max-connections",
        dest="max_connections",
        type=int,
        default=MAX_CONNECTIONS,
        help="most HTTP connections open at once (default: %(default)s)",
    )
    parser.add_argument(
        "--shard.count",
        dest="shard_count",
        type=int,
        default=1,
        help="number of replicas that split the configured systems (default: %(default)s)",
    )
    parser.add_argument(
        "--shard.index",
        dest="shard_index",
        type=int,
        default=0,
        help="this replica's shard, 0..shard.count-1 (default: %(default)s)",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="run against a built-in PBXware simulator; no PBX or config needed",
    )
    parser.add_argument("--version", action="version", version=f"pbxware-exporter {__version__}")
    return parser.parse_args(argv)


def parse_listen(address: str) -> tuple[str | None, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--web.listen-address {address!r}: expected host:port or :port")
    host = host.strip("[]")
    return (host or None), int(port)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.log_level, args.log_format)
    log = structlog.get_logger("exporter")
    try:
        host, port = parse_listen(args.listen)
        if args.shard_count < 1 or not 0 <= args.shard_index < args.shard_count:
            raise ValueError("--shard.index must be in 0..shard.count-1 and shard.count >= 1")
        if not args.header_timeout > 0 or args.max_connections < 1:
            raise ValueError("--web.read-header-timeout and --web.max-connections must be > 0")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    limits = Limits(args.header_timeout, args.max_connections, args.shutdown_timeout)
    if args.demo:
        tune_process()
        return asyncio.run(_run_demo(host, port, limits))

    def load() -> Config:
        config = load_config(args.config_file)
        return shard_config(config, args.shard_index, args.shard_count)

    try:
        config = load()
        security = WebSecurity(Path(args.web_config_file)) if args.web_config_file else None
    except ConfigError as exc:
        print(f"config error:\n{exc}", file=sys.stderr)
        return 1
    if args.config_check:
        print(f"{config.source}: OK ({len(config.systems)} systems)")
        return 0
    log.info(
        "starting",
        version=__version__,
        config=config.source,
        systems=len(config.systems),
        shard=f"{args.shard_index}/{args.shard_count}",
    )
    # Process-wide settings, here and nowhere else: the log scrubber learns every API key
    # (from the daemon, at start and on each reload) and the interpreter is tuned.
    daemon = Daemon(
        config,
        loader=load,
        security=security,
        lifecycle=args.enable_lifecycle,
        on_secrets=scrubber.set_secrets,
    )
    tune_process()
    return asyncio.run(serve(daemon, host, port, limits))


@dataclass(frozen=True)
class Limits:
    header_timeout: float = HEADER_TIMEOUT
    max_connections: int = MAX_CONNECTIONS
    shutdown_timeout: float = 10.0


async def serve(daemon: Daemon, host: str | None, port: int, limits: Limits = Limits()) -> int:
    log = structlog.get_logger("exporter")
    # Slow and idle connections: exporter/web/guard.py.
    runner = GuardedRunner(
        daemon.app(),
        header_timeout=limits.header_timeout,
        max_connections=limits.max_connections,
        access_log=None,
        handle_signals=False,
        shutdown_timeout=limits.shutdown_timeout,
    )
    await runner.setup()
    security = daemon.security
    ssl_context = security.ssl_context if security else None
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
    try:
        await site.start()
    except OSError as exc:
        log.error("listen_failed", address=f"{host}:{port}", error=exc.strerror)
        await runner.cleanup()
        return 1
    scheme = "https" if ssl_context else "http"
    log.info("listening", address=f"{scheme}://{host or '0.0.0.0'}:{port}")
    loop = asyncio.get_running_loop()
    # Keep a reference: a task only weakly held by the loop may be collected mid-reload.
    reloads: set[asyncio.Task[tuple[bool, str]]] = set()

    def on_sighup() -> None:
        task = asyncio.ensure_future(daemon.reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, on_sighup)
    await _wait_for_signal()
    log.info("shutting_down")
    await runner.cleanup()
    log.info("stopped")
    return 0


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _run_demo(host: str | None, port: int, limits: Limits) -> int:
    # The simulator is imported only here: the daemon proper never depends on it.
    from pbxware_simulator import SimulatorOptions, start_simulator
    from pbxware_simulator.cdr import CdrOptions

    key = secrets.token_hex(16)
    scrubber.set_secrets([key])
    options = SimulatorOptions(
        systems=("eu1", "us1"),
        tenants=4,
        extensions_per_tenant=25,
        api_key=key,
        latency_ms=20,
        churn_interval=5.0,
        cdr=CdrOptions(calls_per_hour=600),  # enough calls for the CDR panels within minutes
    )
    sim_runner, sim_url, _ = await start_simulator(options)
    config = Config(
        systems=tuple(
            SystemConfig(
                name=name,
                url=f"{sim_url}/{name}/",
                api_key=key,
                interval=5.0,
                timeout=4.0,
                extension_metrics=True,
                cdr=CdrConfig(enabled=True, interval=15.0),
            )
            for name in options.systems
        ),
        source="<demo>",
    )
    shown = host or "127.0.0.1"
    print(f"PBXware simulator: {sim_url}/ (systems {', '.join(options.systems)})", flush=True)
    print(
        f"Exporter:          http://{shown}:{port}/  metrics: http://{shown}:{port}/metrics",
        flush=True,
    )
    try:
        return await serve(Daemon(config, on_secrets=scrubber.set_secrets), host, port, limits)
    finally:
        await sim_runner.cleanup()
