"""The floor of bench/poll_and_scrape.py: the requests of an exporter cycle, recorded through
the client's trace hook and replayed by a bare client, are the same requests (issue 18).
Its timing is the bench's business; this checks that it measures the right thing."""

from __future__ import annotations

from collections import Counter

import aiohttp

from bench.floor import Recorder, action_of, floor_session, replay, waves
from exporter.config import Config
from exporter.daemon import Daemon
from exporter.pbxware.client import ClientSettings, PbxwareClient
from exporter.poller import TENANT_LIST
from tests.conftest import API_KEY, system_config


async def test_the_client_runs_its_trace_hooks(simulator):
    url, _ = await simulator(systems=("pbx1",), tenants=2, extensions_per_tenant=3)
    seen: list[str] = []

    async def start(_s: object, _c: object, params: aiohttp.TraceRequestStartParams) -> None:
        seen.append(params.url.query["action"])

    hook = aiohttp.TraceConfig()
    hook.on_request_start.append(start)
    settings = ClientSettings(name="pbx1", endpoint=system_config(url).endpoint, api_key=API_KEY)
    client = PbxwareClient(settings, trace_configs=[hook])
    try:
        await client.call("pbxware.dashboard.cpu")
    finally:
        await client.close()
    assert seen == ["pbxware.dashboard.cpu"]


async def test_the_floor_replays_the_cycle_it_recorded(simulator):
    url, sim = await simulator(systems=("pbx1",), tenants=3, extensions_per_tenant=4)
    system = system_config(url, concurrency=4)
    daemon = Daemon(Config(systems=(system,)))
    recorder = Recorder()
    daemon.clients["pbx1"].trace_configs.append(recorder.config)
    try:
        before = Counter(sim.requests("pbx1"))
        snap = await daemon.pollers["pbx1"].poll_once()
        after_cycle = Counter(sim.requests("pbx1"))
        requests = recorder.take()
        assert len(requests) == sum(snap.requests.values())
        assert recorder.take() == []  # taken: the next cycle starts a new list

        steps = waves(requests, system)
        # The first step is what the fan-out waits for: the tenant list and the system's
        # own core values, no tenant's request.
        assert TENANT_LIST in {action_of(r) for r in steps[0]}
        assert all("server" not in r.url.query for r in steps[0])
        assert sorted(map(str, (r.url for w in steps for r in w))) == sorted(
            str(r.url) for r in requests
        )

        async with floor_session(system.concurrency, system.timeout) as session:
            run = await replay(session, steps, system.concurrency)
        after_floor = Counter(sim.requests("pbx1"))
        # The simulator saw, action by action, the cycle's requests once more.
        assert after_floor - after_cycle == after_cycle - before
        assert run.requests == len(requests)
        assert run.wall > 0 and run.body_bytes > 0
    finally:
        await daemon.stop()
