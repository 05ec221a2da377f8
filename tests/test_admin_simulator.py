"""The simulator's enhanced services: per-extension state, PBXware's validation and answers."""

from __future__ import annotations

import json
from typing import Any

import phpserialize
import pytest

from pbxware_simulator import Simulator, SimulatorOptions
from pbxware_simulator.es import SERVICES

KEY = "test-key-0123456789"


@pytest.fixture
def sim() -> Simulator:
    return Simulator(SimulatorOptions(api_key=KEY, tenants=2, extensions_per_tenant=3))


@pytest.fixture
async def client(sim, aiohttp_client):
    return await aiohttp_client(sim.app())


@pytest.fixture
def ext(sim):
    return next(iter(sim.state("pbx1").tenants["2"].extensions.values()))


async def es(client, ext, service: str, method: str, **params: str) -> Any:
    query = {"apikey": KEY, "action": f"pbxware.ext.es.{service}.{method}", "server": "2"}
    query["id"] = ext.id
    query.update(params)
    async with client.get("/index.php", params=query) as resp:
        assert resp.status == 200
        return json.loads(await resp.read())


@pytest.mark.parametrize("service", SERVICES)
async def test_configuration_get_and_set(client, ext, service):
    config = await es(client, ext, service, "configuration")
    assert isinstance(config, dict) and config
    assert (await es(client, ext, service, "get"))["state"] in ("yes", "no")
    answer = await es(client, ext, service, "set", state="yes")
    assert isinstance(answer["success"], str) and answer["state"] == "yes"
    assert await es(client, ext, service, "get") == {"state": "yes"}
    assert await es(client, ext, service, "set", state="maybe") == {
        "error": "Argument state can have one of these: yes, no or pin."
    }


async def test_the_reference_shapes(client, ext):
    callerid = await es(client, ext, "callerid", "configuration")
    assert callerid["callerid"] == f'"{ext.name}" <{ext.number}>'
    filters = await es(client, ext, "callfilters", "configuration")
    assert all(isinstance(filters[k], list) for k in ("callers", "dtypes", "destinations"))
    dnd = await es(client, ext, "dnd", "configuration")
    assert isinstance(dnd["dnd"], str) and dnd["duration"] is None
    fwd = await es(client, ext, "callfwd", "configuration")
    assert isinstance(fwd["enabled"], str) and isinstance(fwd["play"], int)
    blf = await es(client, ext, "blflist", "configuration")
    assert isinstance(blf["blf_start"], int) and isinstance(blf["exts"], list)
    times = await es(client, ext, "extoperationtimes", "configuration")
    assert {"timeout", "dial_opts", "sequential", "last_dest"} <= times.keys()


@pytest.mark.parametrize(
    ("service", "params", "success"),
    [
        ("callerid", {"callerid": "Desk <1001>"}, None),
        (
            "callfilters",
            {"callers": "anonymous,123", "dtypes": "busy,voicemail", "destinations": "0,1002"},
            {"success": "Call Filters & Blocking.", "callfilters": "OK"},
        ),
        (
            "dnd",
            {"dnd": "2", "dst": "425", "dsttype": "voicemail", "duration": "1"},
            {"success": "Do Not Disturb.", "dnd": "OK"},
        ),
        (
            "callfwd",
            {
                "enabled": "unconditional,busy,no answer",
                "uncond_dests": "422,423,424",
                "uncond_timeouts": "15",
                "play": "0",
                "cid": "1",
            },
            {"success": "Call Forwarding.", "callfwd": "OK"},
        ),
        (
            "blflist",
            {"exts": "1002,1003", "labels": "A,B", "functions": "1,1", "blfs": "1,0"},
            {"success": "BLF List.", "blflist": "OK"},
        ),
    ],
)
async def test_edit_answers_and_keeps_the_change(client, sim, ext, service, params, success):
    answer = await es(client, ext, service, "edit", **params)
    if success is None:
        assert "Caller ID: " in answer["success"]
    else:
        assert answer == success
    sim.tick()  # edits survive ticks
    config = await es(client, ext, service, "configuration")
    assert config == sim.enhanced_services("pbx1").configuration("2", ext.id, service)


async def test_only_the_arguments_sent_change(client, ext):
    before = await es(client, ext, "dnd", "configuration")
    await es(client, ext, "dnd", "edit", dsttype="call forward", unknown="ignored")
    after = await es(client, ext, "dnd", "configuration")
    assert after == {**before, "dsttype": "call forward"}


@pytest.mark.parametrize(
    ("service", "params", "error"),
    [
        ("callerid", {"emergencycid": "1"}, "Missing required parameter: callerid"),
        ("callerid", {"callerid": "A", "tprivacies": "7"}, "Invalid value for tprivacies."),
        ("callerid", {"callerid": "A", "trunks": "a b"}, "Invalid value for trunks."),
        (
            "callerid",
            {"callerid": "A", "trunks": "a:b", "tcallerids": "X", "tprivacies": "0:1"},
            "trunks, tcallerids, tprivacies lists must be same size.",
        ),
        (
            "callerid",
            {"callerid": "A", "anums": "1:2", "alabels": "A"},  # acodes may be left out
            "anums, alabels, acodes lists must be same size.",
        ),
        (
            "callfilters",
            {"callers": "anonymous", "dtypes": "busy"},
            "Missing required parameter: destinations",
        ),
        (
            "callfilters",
            {"callers": "123", "dtypes": "busy", "destinations": "0"},
            "List of callers must start with anonymous.",
        ),
        (
            "callfilters",
            {"callers": "anonymous,1", "dtypes": "busy", "destinations": "0,1"},
            "callers, dtypes, destinations lists must be same size.",
        ),
        (
            "callfilters",
            {"callers": "anonymous", "dtypes": "later", "destinations": "0"},
            "Invalid value for dtypes.",
        ),
        ("dnd", {"dnd": "3"}, "Invalid value for dnd."),
        ("dnd", {"dsttype": "email"}, "Invalid value for dsttype."),
        ("callfwd", {"enabled": "sometimes"}, "Invalid value for enabled."),
        ("callfwd", {"busy_dests": "12a"}, "Invalid value for busy_dests."),
        ("blflist", {"blfs": "2"}, "Invalid value for blfs."),
    ],
)
async def test_edit_refuses_what_pbxware_refuses(client, sim, ext, service, params, error):
    before = sim.enhanced_services("pbx1").configuration("2", ext.id, service)
    assert await es(client, ext, service, "edit", **params) == {"error": error}
    assert sim.enhanced_services("pbx1").configuration("2", ext.id, service) == before


async def test_edit_takes_what_bicom_accepts(client, sim, ext):
    # Bicom's own examples (Postman): lists of different sizes for BLF, trailing empty
    # entries for call filters; acodes left out of the caller ID lists.
    for service, params in (
        ("blflist", {"exts": "421,423,424", "labels": "Ext421,", "blfs": "1,0,1",
                     "functions": "1,0,1,2,3"}),
        ("callfilters", {"callers": "anonymous,", "dtypes": "not in service,",
                         "destinations": "0,"}),
        ("callerid", {"callerid": "A", "anums": "1:2", "alabels": "x:y"}),
    ):  # fmt: skip
        assert "error" not in await es(client, ext, service, "edit", **params)
    config = sim.enhanced_services("pbx1").configuration("2", ext.id, "callerid")
    assert config["allowed_callerids"] == {
        "1": {"callerid": "1", "label": "x", "short_code": ""},
        "2": {"callerid": "2", "label": "y", "short_code": ""},
    }


async def test_extoperationtimes_has_no_edit(client, ext):
    answer = await es(client, ext, "extoperationtimes", "edit", timeout="30")
    assert answer == {"error": "Invalid action."}


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"id": "99999"}, "Extension not found."),
        ({"id": "abc"}, "Invalid value for id."),
        ({"id": ""}, "Missing required parameter: id"),
        ({"server": ""}, "Missing required parameter: server"),
        ({"server": "77"}, "Invalid server."),
        ({"server": "1"}, "Extension not found."),
        ({"server": "3"}, "Extension not found."),  # the id belongs to tenant 2
    ],
)
async def test_unknown_extension_or_tenant(client, ext, params, error):
    assert await es(client, ext, "dnd", "configuration", **params) == {"error": error}


async def test_planted_values_are_served_as_they_are(client, sim, ext):
    hostile = "<script>alert(1)</script>"
    sim.enhanced_services("pbx1").plant("2", ext.id, "callerid", callerid=hostile)
    assert (await es(client, ext, "callerid", "configuration"))["callerid"] == hostile


async def test_php_format(client, ext):
    query = {
        "apikey": KEY,
        "action": "pbxware.ext.es.blflist.configuration",
        "server": "2",
        "id": ext.id,
        "apiformat": "php",
    }
    async with client.get("/index.php", params=query) as resp:
        data = phpserialize.loads(await resp.read(), decode_strings=True)
    assert data["blf_start"] == 1


async def test_es_answers_are_never_cached_across_edits(client, ext):
    first = await es(client, ext, "dnd", "configuration")
    await es(client, ext, "dnd", "edit", dnd="1")
    second = await es(client, ext, "dnd", "configuration")
    assert first["dnd"] != second["dnd"] == "1"


async def test_a_wrong_key_is_refused(client, ext):
    query = {"apikey": "nope-0123456789", "action": "pbxware.ext.es.dnd.get", "server": "2"}
    async with client.get("/index.php", params={**query, "id": ext.id}) as resp:
        assert json.loads(await resp.read()) == {"error": "Invalid API key."}
