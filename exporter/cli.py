"""Command line: flags in the style of the Prometheus exporters, then run the daemon."""

from __future__ import annotations

import argparse
import asyncio
import secrets
import signal
import sys
from collections.abc import Sequence

import structlog
from aiohttp import web

from . import __version__
from .config import Config, ConfigError, SystemConfig, load_config
from .daemon import Daemon
from .logs import configure_logging, scrubber

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
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.demo:
        return asyncio.run(_run_demo(host, port))
    try:
        config = load_config(args.config_file)
    except ConfigError as exc:
        print(f"config error:\n{exc}", file=sys.stderr)
        return 1
    if args.config_check:
        print(f"{config.source}: OK ({len(config.systems)} systems)")
        return 0
    log.info("starting", version=__version__, config=config.source, systems=len(config.systems))
    return asyncio.run(serve(config, host, port))


async def serve(config: Config, host: str | None, port: int) -> int:
    scrubber.set_secrets(config.secrets())
    daemon = Daemon(config)
    runner = web.AppRunner(daemon.app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        structlog.get_logger("exporter").error(
            "listen_failed", address=f"{host}:{port}", error=exc.strerror
        )
        await runner.cleanup()
        return 1
    structlog.get_logger("exporter").info("listening", address=f"{host or '0.0.0.0'}:{port}")
    await _wait_for_signal()
    structlog.get_logger("exporter").info("shutting_down")
    await runner.cleanup()
    return 0


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _run_demo(host: str | None, port: int) -> int:
    # The simulator is imported only here: the daemon proper never depends on it.
    from .simulator import SimulatorOptions, start_simulator

    key = secrets.token_hex(16)
    scrubber.set_secrets([key])
    options = SimulatorOptions(
        systems=("eu1", "us1"),
        tenants=4,
        extensions_per_tenant=25,
        api_key=key,
        latency_ms=20,
        churn_interval=5.0,
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
        return await serve(config, host, port)
    finally:
        await sim_runner.cleanup()
