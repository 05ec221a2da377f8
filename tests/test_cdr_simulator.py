"""The simulator's pbxware.cdr.download: the real answer format, paging, filters, truth."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pbxware_simulator import Simulator, SimulatorOptions
from pbxware_simulator.cdr import CURRENT, EXTENDED, LEGACY, MAX_CALL_SECONDS, CdrOptions

KEY = "test-key-0123456789"
ACTION = "pbxware.cdr.download"
T0 = 1_700_000_000  # Nov-14-2023 22:13:20 UTC
DAY = {"start": "Nov-14-2023", "end": "Nov-14-2023"}


def make_sim(**cdr: Any) -> Simulator:
    options = CdrOptions(**{"calls_per_hour": 240, "malformed_ratio": 0.0, **cdr})
    return Simulator(
        SimulatorOptions(
            api_key=KEY, start_time=T0, tick_seconds=3600, tenants=2, seed=5, cdr=options
        )
    )


async def download(client: Any, **params: str) -> Any:
    query = {"apikey": KEY, "action": ACTION, **params}
    async with client.get("/index.php", params=query) as resp:
        assert resp.status == 200
        return json.loads(await resp.read())


@pytest.fixture
async def sim_client(aiohttp_client):
    async def make(**cdr: Any) -> tuple[Simulator, Any]:
        sim = make_sim(**cdr)
        return sim, await aiohttp_client(sim.app())

    return make


async def test_the_answer_has_the_documented_shape(sim_client):
    sim, client = await sim_client()
    sim.tick()
    body = await download(client, **DAY, starttime="21:00:00", endtime="22:00:00", server="2")
    assert set(body) == {"success", "next_page", "limit", "records", "header", "csv"}
    assert isinstance(body["success"], str) and body["next_page"] is True
    assert body["limit"] == 16 and body["records"] == len(body["csv"]) == 16  # default limit
    assert body["header"] == list(CURRENT)
    for row in body["csv"]:
        assert len(row) == 12 and all(isinstance(cell, str) for cell in row)
        assert row[3].isdigit() and row[0] == sim.state("pbx1").tenants["2"].code
    parties = [cell for row in body["csv"] for cell in row[1:3]]
    assert any(p.endswith(")") and "(" in p for p in parties)  # "Name (1001)"


async def test_an_empty_window_has_a_null_header(sim_client):
    _, client = await sim_client()
    # The past is full of calls (history is generated for any date); the future is empty.
    body = await download(client, start="Jan-01-2030", end="Jan-01-2030", server="2")
    assert body["header"] is None and body["csv"] == [] and body["next_page"] is False
    master = await download(client, **DAY, server="1")
    assert master["header"] is None


@pytest.mark.parametrize(
    "params",
    [
        {"start": "2023-11-14", "end": "Nov-14-2023"},
        {"start": "nov-14-2023", "end": "Nov-14-2023"},
        {"start": "Nov-14-2023", "end": "Nov-31-2023"},
        {"start": "Nov-14-2023"},
        {**DAY, "starttime": "7:00"},
        {**DAY, "endtime": "24:00:00"},
        {**DAY, "timezone": "Mars/Olympus"},
        {**DAY, "page": "0"},
        {**DAY, "limit": "ten"},
        {**DAY, "server": "999"},
    ],
)
async def test_bad_arguments_are_error_payloads(sim_client, params):
    _, client = await sim_client()
    body = await download(client, **params)
    assert set(body) == {"error"}


async def test_pages_cover_the_window_exactly_once_and_limit_is_capped(sim_client):
    sim, client = await sim_client(calls_per_hour=3000)
    sim.tick()
    window = {**DAY, "starttime": "21:00:00", "endtime": "22:00:00", "server": "2"}
    truth = sim.cdrs("pbx1", "2", T0 - 4400, T0 - 800)
    assert len(truth) > 1000
    ids, page = [], 1
    while True:
        body = await download(client, **window, page=str(page), limit="5000")
        assert body["limit"] == 1000
        ids += [row[8] for row in body["csv"]]
        if not body["next_page"]:
            break
        page += 1
    assert page == -(-len(truth) // 1000)
    assert ids == [r.row_id for r in truth]  # ID is the row's own id
    assert len(set(ids)) == len(ids)
    beyond = await download(client, **window, page=str(page + 1), limit="1000")
    assert beyond["csv"] == [] and beyond["header"] is None and not beyond["next_page"]


async def test_times_and_the_time_zone_bound_the_window(sim_client):
    sim, client = await sim_client()
    sim.tick()
    body = await download(
        client, **DAY, starttime="23:00:00", endtime="23:09:59", timezone="Europe/Zagreb",
        server="3", limit="1000",
    )  # fmt: skip
    stamps = [int(row[3]) for row in body["csv"]]
    # 23:00 in Zagreb is 22:00 UTC.
    assert stamps and min(stamps) >= T0 - 800 and max(stamps) <= T0 - 800 + 599
    assert [r.row_id for r in sim.cdrs("pbx1", "3", T0 - 800, T0 - 201)] == [
        row[8] for row in body["csv"]
    ]


async def test_records_appear_when_the_call_ends(sim_client):
    sim, client = await sim_client(calls_per_hour=0)
    call = sim.add_call("pbx1", "2", T0 - 30, duration=100, disposition="answered")
    window = {**DAY, "starttime": "22:00:00", "endtime": "23:59:59", "server": "2"}
    assert (await download(client, **window))["csv"] == []  # still talking at T0
    assert sim.cdrs("pbx1", "2", T0 - 60, T0) == []
    sim.tick()
    rows = (await download(client, **window))["csv"]
    assert [row[8] for row in rows] == [call.row_id] and rows[0][4] == "100"
    assert sim.cdrs("pbx1", "2", T0 - 60, T0) == [call]
    assert call.written_at == T0 + 70 and MAX_CALL_SECONDS >= 900


@pytest.mark.parametrize(
    ("profile", "tenant_column", "header"),
    [
        ("legacy", True, LEGACY),
        ("current", True, CURRENT),
        ("extended", True, EXTENDED),
        ("current", False, tuple(c for c in CURRENT if c != "Tenant")),
    ],
)
async def test_header_profiles(sim_client, profile, tenant_column, header):
    sim, client = await sim_client(profile=profile, tenant_column=tenant_column)
    sim.tick()
    body = await download(client, **DAY, server="2", limit="1000", starttime="22:00:00")
    assert tuple(body["header"]) == header
    rows = [dict(zip(header, row, strict=True)) for row in body["csv"]]
    statuses = {row["Status"] for row in rows}
    no_answer = {"legacy": "No Answer", "current": "Unanswered", "extended": "Not Answered"}
    assert {"Answered", "Cancelled", no_answer[profile]} <= statuses
    truth = sim.cdrs("pbx1", "2", T0 - 800, T0 + 3600)
    assert [row["ID"] for row in rows] == [r.row_id for r in truth]
    if profile == "extended":
        assert [row["Unique ID"] for row in rows] == [r.uid for r in truth]


async def test_malformed_rows_are_in_the_answer(sim_client):
    sim, client = await sim_client(calls_per_hour=600, malformed_ratio=0.2, profile="extended")
    sim.tick()
    body = await download(client, **DAY, server="2", limit="1000", starttime="22:00:00")
    truth = sim.cdrs("pbx1", "2", T0 - 800, T0 + 3600)
    kinds = {r.malformed for r in truth} - {None}
    assert kinds == {"short_row", "bad_duration", "bad_cell", "bad_time"}
    widths = {len(row) for row in body["csv"]}
    assert widths == {14, 13}
    assert any(isinstance(cell, dict) for row in body["csv"] for cell in row)


def test_the_same_seed_gives_the_same_cdrs():
    a, b = make_sim(), make_sim()
    for sim in (a, b):
        sim.tick()
    assert a.cdrs("pbx1", "2", T0 - 7200, T0) == b.cdrs("pbx1", "2", T0 - 7200, T0)
    other = Simulator(SimulatorOptions(api_key=KEY, start_time=T0, seed=6, tenants=2))
    other.tick()
    assert a.cdrs("pbx1", "2", T0 - 7200, T0) != other.cdrs("pbx1", "2", T0 - 7200, T0)


def test_calls_are_between_the_tenants_own_extensions():
    sim = make_sim()
    sim.tick()
    tenant = sim.state("pbx1").tenants["2"]
    own = {f"{e.name} ({e.number})" for e in tenant.extensions.values() if e.status == "enabled"}
    for record in sim.cdrs("pbx1", "2", T0 - 7200, T0):
        parties = {record.caller, record.callee}
        inside = parties & own
        expected = {"inbound": 1, "outbound": 1, "internal": len(parties), "unknown": 0}
        assert len(inside) == expected[record.direction], record
        assert (record.disposition == "answered") == (record.billable > 0)
        assert record.timestamp + record.duration <= record.written_at <= T0 + 3600
        if record.legs == 1:
            assert record.timestamp + record.duration == record.written_at


def test_ring_group_calls_have_legs_that_share_the_unique_id():
    sim = make_sim(profile="extended", ring_groups=0.5)
    sim.tick()
    rows = sim.cdrs("pbx1", "2", T0 - 7200, T0)
    by_call: dict[str, list] = {}
    for row in rows:
        by_call.setdefault(row.uid, []).append(row)
    groups = [legs for legs in by_call.values() if len(legs) > 1]
    assert len(groups) > 20
    for legs in groups:
        assert 2 <= len(legs) <= 3 and len(legs) == legs[0].legs
        assert len({leg.row_id for leg in legs}) == len(legs)  # each row its own id
        assert (
            len({leg.timestamp for leg in legs}) == 1 and len({leg.written_at for leg in legs}) == 1
        )
        answered = [leg for leg in legs if leg.disposition == "answered"]
        assert len(answered) <= 1
        assert all(leg.cancelled for leg in legs if answered and leg is not answered[0])
    calls = sim.cdr_calls("pbx1", "2", T0 - 7200, T0)
    assert len(calls) == len(by_call) < len(rows)
    dispositions = {c.disposition for c in calls if c.legs > 1}
    assert {"answered", "no_answer"} <= dispositions
    # A ring group nobody answered with a busy phone is still no_answer: one phone rang.
    for legs in groups:
        call = next(c for c in calls if c.uid == legs[0].uid)
        if any(leg.disposition == "answered" for leg in legs):
            assert call.disposition == "answered"
            assert call.duration == max(leg.duration for leg in legs)
        elif any(leg.disposition == "no_answer" for leg in legs):
            assert call.disposition == "no_answer"
    # Without a Unique ID column the truth is the rows: nobody can tell legs from calls.
    current = make_sim(profile="current", ring_groups=0.5)
    current.tick()
    assert len(current.cdr_calls("pbx1", "2", T0 - 7200, T0)) == len(
        current.cdrs("pbx1", "2", T0 - 7200, T0)
    )


def test_added_ring_groups_and_legs_written_apart():
    sim = make_sim(profile="extended", calls_per_hour=0)
    legs = sim.add_ring_group(
        "pbx1", "2", T0 - 100, "no_answer", "answered", written=(T0 - 80, T0 + 200)
    )
    assert [leg.uid for leg in legs] == [legs[0].uid] * 2
    assert [r.row_id for r in sim.cdrs("pbx1", "2", T0 - 200, T0)] == [legs[0].row_id]
    (early,) = sim.cdr_calls("pbx1", "2", T0 - 200, T0)
    assert early.disposition == "no_answer" and early.legs == 1
    sim.tick()
    (late,) = sim.cdr_calls("pbx1", "2", T0 - 200, T0)
    assert late.disposition == "answered" and late.legs == 2 and late.billable == 60


def test_options_are_checked():
    for bad in (
        {"profile": "v9"},
        {"calls_per_hour": -1},
        {"malformed_ratio": 2},
        {"ring_groups": 1.5},
    ):
        with pytest.raises(ValueError):
            make_sim(**bad)
    sim = make_sim()
    with pytest.raises(ValueError):
        sim.add_call("pbx1", "2", T0, direction="sideways")
    with pytest.raises(KeyError):
        sim.cdrs("pbx1", "99", T0, T0)
