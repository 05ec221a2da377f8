"""How fast a sick PBX shows as sick, and a healed one as healthy (issue 13).

1,000 tenants x 100 extensions on the simulator (its own process), polled with the default
timeout (10 s) and concurrency (4). For a hung PBX (requests never answered), a refusing
one (connections closed) and one answering an HTML page, the fault is switched on in the
middle of a cycle's per-tenant requests (the worst moment: before, the snapshot waited for
every remaining request to fail), then off again. Prints, per fault:

- detection: from the first failed request to the snapshot with pbxware_up 0 (target:
  <= interval + timeout), and from the fault being switched on;
- the duration of that cycle (target: <= interval + timeout);
- recovery: from the fault being switched off to pbxware_up 1 (target: <= interval).

A snapshot counts as seen once /metrics serves it, i.e. after its render.

Run: python bench/detect.py [--interval 60] [--tenants 1000] [--extensions 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import urllib.request
from typing import Any

from aiohttp import web
from common import KEY, machine, package, simulator

from exporter.config import Config, SystemConfig
from exporter.daemon import Daemon
from exporter.logs import configure_logging
from exporter.pbxware import PbxwareError
from exporter.pbxware.client import PbxwareClient

FAULTS = {"hung": "slow", "refusing": "down", "html": "html"}


def control(url: str, method: str, body: dict[str, Any] | None = None) -> None:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{url}/_sim/faults", data=data, method=method)
    request.add_header("Content-Type", "application/json")
    urllib.request.urlopen(request, timeout=10).read()


class Probe:
    """Wraps the client: switches the fault on mid fan-out and notes the first failure."""

    def __init__(self, url: str, tenants: int) -> None:
        self.url, self.tenants = url, tenants
        self.kind: str | None = None
        self.armed_at_call = 0
        self.tenant_calls = 0
        self.fault_on: float | None = None
        self.first_failure: float | None = None
        real_call, real_request = PbxwareClient.call, PbxwareClient._request

        async def request(client: PbxwareClient, action: str, *args: Any) -> bytes:
            # Counted when the request is sent (inside the concurrency slot), not when the
            # poller queues it: all of a cycle's requests are queued at its start.
            # ext_online: the per-tenant action asked every cycle (ext.list is slower).
            if action == "pbxware.dashboard.ext_online":
                self.tenant_calls += 1
                if self.kind is not None and self.tenant_calls == self.armed_at_call:
                    await asyncio.to_thread(
                        control, self.url, "POST", {"kind": self.kind, "seconds": 3600}
                    )
                    self.fault_on = time.monotonic()
            return await real_request(client, action, *args)

        async def call(client: PbxwareClient, *args: Any, **kw: Any) -> Any:
            try:
                return await real_call(client, *args, **kw)
            except PbxwareError:
                if self.fault_on is not None and self.first_failure is None:
                    self.first_failure = time.monotonic()
                raise

        PbxwareClient.call = call  # type: ignore[method-assign]
        PbxwareClient._request = request  # type: ignore[method-assign]

    def arm(self, kind: str) -> None:
        """Switch ``kind`` on at the middle of the next cycle's per-tenant requests (called
        between two cycles)."""
        self.kind = kind
        self.fault_on = self.first_failure = None
        self.armed_at_call = self.tenant_calls + self.tenants // 2


def full_cycle_after(store: Any) -> Any:
    """A predicate: a whole cycle has ended after the current one."""
    cycles = store.get("bench").cycles
    return lambda s: s.get("bench").cycles > cycles + 1


async def run(interval: float, tenants: int, extensions: int) -> None:
    configure_logging("error")
    print(f"machine: {machine()}")
    print(package())
    print(
        f"size: {tenants} tenants x {extensions} extensions; interval {interval:g} s, "
        "timeout 10 s (default), concurrency 4 (default)"
    )
    with simulator("--tenants", str(tenants), "--extensions-per-tenant", str(extensions)) as url:
        system = SystemConfig(name="bench", url=url, api_key=KEY, interval=interval)
        timeout = system.timeout
        probe = Probe(url, tenants)
        daemon = Daemon(Config(systems=(system,)))
        store = daemon.store
        # The whole app: a snapshot counts as seen when /metrics serves it (after its render).
        runner = web.AppRunner(daemon.app(), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        try:

            def up(value: bool) -> bool:
                snap = store.get("bench")
                return snap is not None and snap.up is value

            await asyncio.wait_for(store.wait_for(lambda s: up(True)), interval * 3)
            for name, kind in FAULTS.items():
                probe.arm(kind)
                await asyncio.wait_for(store.wait_for(lambda s: up(False)), interval * 4)
                detected = time.monotonic()
                snap = store.get("bench")
                assert snap is not None and probe.fault_on and probe.first_failure
                cycle = snap.cycle_duration or 0.0
                after_first = detected - probe.first_failure
                met = "met" if after_first <= interval + timeout else "MISSED"
                print(
                    f"{name:9s} detection {after_first:6.2f} s after the first failed request"
                    f" ({detected - probe.fault_on:6.2f} s after the fault; target <="
                    f" {interval + timeout:g} s: {met});"
                    f" that cycle ran {cycle:.2f} s"
                )
                await asyncio.to_thread(control, url, "DELETE")
                healed = time.monotonic()
                await asyncio.wait_for(store.wait_for(lambda s: up(True)), interval * 3)
                recovery = time.monotonic() - healed
                print(
                    f"{name:9s} recovery  {recovery:6.2f} s after the fault was cleared"
                    f" (target <= {interval:g} s: {'met' if recovery <= interval else 'MISSED'})"
                )
                # Let a full healthy cycle finish before the next fault.
                await asyncio.wait_for(store.wait_for(full_cycle_after(store)), interval * 3)
        finally:
            await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--interval", type=float, default=60.0)
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--extensions", type=int, default=100)
    args = parser.parse_args()
    asyncio.run(run(args.interval, args.tenants, args.extensions))


if __name__ == "__main__":
    main()
