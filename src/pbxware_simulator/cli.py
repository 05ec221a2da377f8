"""`pbxware-simulator`: serve simulated PBXware systems until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Sequence

from .app import SimulatorOptions, start_simulator
from .cdr import PROFILES, CdrOptions

API_KEY_ENV = "PBXWARE_SIM_API_KEY"


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def _systems(value: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in value.split(",") if name.strip())
    if not names:
        raise argparse.ArgumentTypeError("expected a comma-separated list of system names")
    return names


def build_parser() -> argparse.ArgumentParser:
    defaults = SimulatorOptions()
    parser = argparse.ArgumentParser(
        prog="pbxware-simulator",
        description="Serve simulated Bicom PBXware systems speaking the v1 HTTP API.",
    )
    parser.add_argument(
        "--listen",
        type=_listen,
        default=("127.0.0.1", 8080),
        metavar="HOST:PORT",
        help="address to listen on (default 127.0.0.1:8080; port 0 picks a free one)",
    )
    parser.add_argument(
        "--systems",
        type=_systems,
        default=defaults.systems,
        help="comma-separated system names (default pbx1)",
    )
    parser.add_argument("--tenants", type=int, default=defaults.tenants, help="tenants per system")
    parser.add_argument("--extensions-per-tenant", type=int, default=defaults.extensions_per_tenant)
    parser.add_argument(
        "--empty-tenants",
        type=int,
        default=defaults.empty_tenants,
        help="how many tenants (the last ones) have no extensions",
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get(API_KEY_ENV, defaults.api_key),
        help=f"API key to accept (default ${API_KEY_ENV}, else {defaults.api_key})",
    )
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=defaults.latency_ms,
        help="delay added to every API request",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument(
        "--churn-interval",
        type=float,
        default=None,
        metavar="SECONDS",
        help="tick automatically every SECONDS (default: never)",
    )
    parser.add_argument(
        "--tick-seconds",
        type=float,
        default=defaults.tick_seconds,
        help="how far each tick moves the simulator clock (default 60; with --churn-interval "
        "equal to it the clock keeps wall time)",
    )
    parser.add_argument(
        "--cdr-calls-per-hour",
        type=float,
        default=defaults.cdr.calls_per_hour,
        help="generated calls per tenant and hour in pbxware.cdr.download (default 30)",
    )
    parser.add_argument(
        "--cdr-profile",
        choices=sorted(PROFILES),
        default=defaults.cdr.profile,
        help="CDR header variant: legacy (10 columns), current (12), extended (14)",
    )
    parser.add_argument(
        "--cdr-ring-groups",
        type=float,
        default=defaults.cdr.ring_groups,
        help="share of inbound/internal calls that ring 2-3 phones, one row per leg (0.25)",
    )
    parser.add_argument(
        "--cdr-pbx-timezone",
        default=None,
        help="ignore the timezone argument of cdr.download and read times in this zone",
    )
    parser.add_argument(
        "--numeric-strings",
        action="store_true",
        help="tenant.list numeric fields as strings (the PDF variant)",
    )
    return parser


async def _serve(options: SimulatorOptions, host: str, port: int) -> None:
    runner, base_url, simulator = await start_simulator(options, host, port)
    try:
        for index, system in enumerate(simulator.systems):
            extra = f"  (also {base_url}/index.php)" if index == 0 else ""
            print(f"{system}: {base_url}/{system}/index.php{extra}", flush=True)
        print(f"control: {base_url}/_sim/state  /_sim/stats  /_sim/faults  /_sim/tick", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    host, port = args.listen
    options = SimulatorOptions(
        systems=args.systems,
        tenants=args.tenants,
        extensions_per_tenant=args.extensions_per_tenant,
        api_key=args.api_key,
        latency_ms=args.latency_ms,
        seed=args.seed,
        churn_interval=args.churn_interval or None,
        numeric_strings=args.numeric_strings,
        empty_tenants=args.empty_tenants,
        tick_seconds=args.tick_seconds,
        cdr=CdrOptions(
            profile=args.cdr_profile,
            calls_per_hour=args.cdr_calls_per_hour,
            ring_groups=args.cdr_ring_groups,
            pbx_timezone=args.cdr_pbx_timezone,
        ),
    )
    try:
        options.validate()
    except ValueError as exc:
        print(f"pbxware-simulator: {exc}", file=sys.stderr)
        return 2
    # The key is deliberately not printed (it may be a real-looking secret from the env).
    asyncio.run(_serve(options, host, port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
