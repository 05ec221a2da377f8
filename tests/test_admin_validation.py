"""Every validation rule of the edit routes: 400 naming the field, and nothing sent to the PBX."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.admin.services import MAX_ITEMS, SCHEMAS, ValidationError, validate
from tests.admin_util import (
    admin_env,
    admin_leak_guard,  # noqa: F401 (a fixture, used by name)
    bearer,
)

pytestmark = pytest.mark.usefixtures("admin_leak_guard")


@pytest.fixture
async def env(simulator, aiohttp_client, leak_guard):
    async with admin_env(simulator, aiohttp_client, leak_guard) as e:
        yield e


CID = {"callerid": "Ops <1001>"}
FILTERS = {"callers": ["anonymous"], "dtypes": ["voicemail"], "destinations": ["1002"]}
BLF = {"exts": ["1002"], "labels": ["Desk"], "functions": [1], "blfs": [1]}

# (service, body, the field the answer must name, a fragment of the message)
RULES: list[tuple[str, Any, str | None, str]] = [
    # any service: the body itself
    ("dnd", [], None, "must be a JSON object"),
    ("dnd", "dnd=1", None, "must be a JSON object"),
    ("dnd", 1, None, "must be a JSON object"),
    ("dnd", None, None, "must be a JSON object"),
    ("dnd", {}, None, "empty"),
    ("dnd", {"dnd": 1, "colour": "red"}, "colour", "unknown field"),
    ("callerid", {**CID, "password": "x"}, "password", "unknown field"),
    # caller ID
    ("callerid", {"emergencycid": "112"}, "callerid", "required"),
    ("callerid", {"callerid": 1001}, "callerid", "got number"),
    ("callerid", {"callerid": ["Ops"]}, "callerid", "got array"),
    ("callerid", {"callerid": "Ops\n<1001>"}, "callerid", "control characters"),
    ("callerid", {"callerid": "x" * 129}, "callerid", "at most 128"),
    ("callerid", {**CID, "emergencycid": None}, "emergencycid", "got null"),
    (
        "callerid",
        {**CID, "trunks": "a:b", "tcallerids": "x:y", "tprivacies": "0:1"},
        "trunks",
        "JSON array",
    ),
    (
        "callerid",
        {**CID, "trunks": ["t 1"], "tcallerids": ["X"], "tprivacies": [0]},
        "trunks[0]",
        "trunk name",
    ),
    (
        "callerid",
        {**CID, "trunks": ["t:1"], "tcallerids": ["X"], "tprivacies": [0]},
        "trunks[0]",
        "trunk name",
    ),
    (
        "callerid",
        {**CID, "trunks": ["t1"], "tcallerids": ["X"], "tprivacies": [5]},
        "tprivacies[0]",
        "one of",
    ),
    (
        "callerid",
        {**CID, "trunks": ["t1"], "tcallerids": ["X"], "tprivacies": [-1]},
        "tprivacies[0]",
        "one of",
    ),
    (
        "callerid",
        {**CID, "trunks": ["t1"], "tcallerids": ["X"], "tprivacies": ["anonymous"]},
        "tprivacies[0]",
        "one of",
    ),
    (
        "callerid",
        {**CID, "trunks": ["t1"], "tcallerids": ["X"], "tprivacies": [True]},
        "tprivacies[0]",
        "one of",
    ),
    (
        "callerid",
        {**CID, "trunks": ["t1"], "tcallerids": ["<script>"], "tprivacies": [0]},
        "tcallerids[0]",
        "caller ID",
    ),
    (
        "callerid",
        {**CID, "anums": ["12a"], "alabels": ["A"], "acodes": ["1"]},
        "anums[0]",
        "number",
    ),
    (
        "callerid",
        {**CID, "anums": ["1"], "alabels": ["A:B"], "acodes": ["1"]},
        "alabels[0]",
        "label",
    ),
    (
        "callerid",
        {**CID, "anums": ["1"], "alabels": ["A"], "acodes": ["12"]},
        "acodes[0]",
        "at most 1",
    ),
    (
        "callerid",
        {**CID, "anums": ["1"], "alabels": ["A"], "acodes": ["x"]},
        "acodes[0]",
        "short code",
    ),
    # call filters
    (
        "callfilters",
        {"callers": ["anonymous"], "dtypes": ["voicemail"]},
        "destinations",
        "required",
    ),
    ("callfilters", {**FILTERS, "callers": ["1002"]}, "callers", "start with 'anonymous'"),
    ("callfilters", {**FILTERS, "callers": []}, "callers", "same length"),
    (
        "callfilters",
        {
            **FILTERS,
            "callers": ["anonymous", "bob"],
            "dtypes": ["voicemail", "busy"],
            "destinations": ["1", "2"],
        },
        "callers[1]",
        "caller number",
    ),
    ("callfilters", {**FILTERS, "dtypes": ["forward"]}, "dtypes[0]", "one of"),
    ("callfilters", {**FILTERS, "destinations": ["10a"]}, "destinations[0]", "digits"),
    ("callfilters", {**FILTERS, "destinations": [-3]}, "destinations[0]", "digits"),
    ("callfilters", {**FILTERS, "destinations": ["1002", "1003"]}, "destinations", "same length"),
    ("callfilters", {**FILTERS, "telemarketer": 2}, "telemarketer", "true/false"),
    ("callfilters", {**FILTERS, "telemarketer": "yes"}, "telemarketer", "true/false"),
    # DND
    ("dnd", {"dnd": 3}, "dnd", "one of"),
    ("dnd", {"dnd": "on"}, "dnd", "one of"),
    ("dnd", {"dnd": True}, "dnd", "one of"),
    ("dnd", {"dnd": 1, "dst": "voicemail"}, "dst", "digits"),
    ("dnd", {"dnd": 1, "dst": "1" * 33}, "dst", "at most 32"),
    ("dnd", {"dnd": 1, "dsttype": "email"}, "dsttype", "one of"),
    ("dnd", {"dnd": 1, "duration": 10**13}, "duration", "at most 12"),
    ("dnd", {"dnd": 1, "duration": -1}, "duration", "digits"),
    ("dnd", {"dnd": 1, "duration": 1.5}, "duration", "digits"),
    ("dnd", {"dnd": 1, "duration": "2h"}, "duration", "digits"),
    # call forwarding
    ("callfwd", {"enabled": 5}, "enabled", "JSON array"),
    ("callfwd", {"enabled": "busy,sometimes"}, "enabled[1]", "one of"),
    ("callfwd", {"enabled": ["sometimes"]}, "enabled[0]", "one of"),
    ("callfwd", {"enabled": ["busy", "busy"]}, "enabled[1]", "listed twice"),
    ("callfwd", {"uncond_dests": ["10a"]}, "uncond_dests[0]", "digits"),
    ("callfwd", {"busy_dests": [None]}, "busy_dests[0]", "digits"),
    ("callfwd", {"noansw_timeouts": ["1a"]}, "noansw_timeouts[0]", "digits"),
    ("callfwd", {"unavail_timeouts": [-1]}, "unavail_timeouts[0]", "digits"),
    ("callfwd", {"play": 2}, "play", "true/false"),
    ("callfwd", {"cid": "yes"}, "cid", "true/false"),
    ("callfwd", {"cid": 1.0}, "cid", "true/false"),
    # BLF list
    ("blflist", {**BLF, "exts": ["x"]}, "exts[0]", "digits"),
    ("blflist", {**BLF, "labels": ["a,b"]}, "labels[0]", "label"),
    ("blflist", {**BLF, "labels": ["<b>"]}, "labels[0]", "label"),
    ("blflist", {**BLF, "functions": ["f1"]}, "functions[0]", "digits"),
    ("blflist", {**BLF, "blfs": [2]}, "blfs[0]", "true/false"),
    ("blflist", {"blf_start": 100}, "blf_start", "from 0 to 99"),
    ("blflist", {"blf_cleanup": "maybe"}, "blf_cleanup", "true/false"),
    ("blflist", {"cart_only": [1]}, "cart_only", "true/false"),
    ("blflist", {**BLF, "exts": ["1"] * (MAX_ITEMS + 1)}, "exts", f"at most {MAX_ITEMS}"),
]


@pytest.mark.parametrize(("service", "body", "field", "fragment"), RULES)
async def test_a_broken_edit_is_400_naming_the_field(env, service, body, field, fragment):
    before = env.es(service)
    raw = json.dumps(body).encode()
    status, answer = await env.json("PUT", env.url(service), data=raw)
    assert status == 400, answer
    assert answer["field"] == field
    assert fragment in answer["error"]
    if field is not None:
        assert answer["error"].startswith(f"{field}: ")
    # Validation comes before anything reaches the PBX, dry run or not.
    status, _ = await env.json("PUT", env.url(service, query="dry_run=1"), data=raw)
    assert status == 400
    assert env.es_requests("edit") == 0
    assert env.es(service) == before
    lines = env.log_events()
    assert [(r["result"], r["status"]) for r in lines] == [("invalid", 400)] * 2
    if len(raw) < 1000:  # the audit line shortens long values
        assert lines[0]["requested"] == body


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"dnd": NaN}', "not valid JSON"),
        (b'{"dnd": 1', "not valid JSON"),
        (b"\xff\xfe{}", "not valid JSON"),
        (b"[" * 100_000, "at most"),
        (b"[" * 50_000, "nested too deeply"),
        (b"", "empty"),
        (b"   ", "empty"),
    ],
    ids=["garbage", "nan", "cut", "not-utf8", "too-big", "deep", "empty", "blank"],
)
async def test_a_body_that_is_not_json_is_refused(env, raw, fragment):
    async with env.client.put(
        env.url("dnd"), data=raw, headers={**bearer(), "Content-Type": "application/json"}
    ) as resp:
        assert resp.status in (400, 413)
        assert fragment in (await resp.json())["error"]
    assert env.es_requests("edit") == 0
    (line,) = env.log_events()
    assert line["result"] == "invalid"


@pytest.mark.parametrize(
    "body",
    [{}, {"enabled": "yes"}, {"enabled": 1}, {"enabled": True, "pin": "1234"}, [True], None],
)
async def test_a_state_switch_takes_only_enabled_true_or_false(env, body):
    raw = json.dumps(body).encode()
    status, answer = await env.json("POST", env.url("dnd", state=True), data=raw)
    assert status == 400 and answer["field"] == "enabled"
    assert env.es_requests("set") == 0


async def test_dry_run_takes_only_yes_or_no(env):
    status, answer = await env.json("PUT", env.url("dnd", query="dry_run=maybe"), json={"dnd": 1})
    assert status == 400 and "dry_run" in answer["error"]
    assert env.es_requests("edit") == 0


# --- the schemas themselves -------------------------------------------------------------------


def test_every_editable_service_declares_its_fields_once():
    for name, service in SCHEMAS.items():
        assert service.name == name
        if not service.editable:
            assert not service.fields and service.not_editable_reason
            continue
        assert service.fields
        assert service.required <= service.fields.keys()
        for group in service.parallel:
            assert set(group) <= service.fields.keys()


@pytest.mark.parametrize(
    ("service", "body", "params"),
    [
        (
            "callerid",
            {"callerid": "A", "anums": ["1", "2"], "alabels": ["x", "y"], "acodes": ["", "3"]},
            {"callerid": "A", "anums": "1:2", "alabels": "x:y", "acodes": ":3"},
        ),
        (
            "callfwd",
            {"enabled": ["no answer", "line unavailable"], "noansw_timeouts": [10, "20"]},
            {"enabled": "no answer,line unavailable", "noansw_timeouts": "10,20"},
        ),
        ("callfwd", {"uncond_dests": []}, {"uncond_dests": ""}),
        (
            "blflist",
            {"exts": [1002], "labels": [""], "functions": ["7"], "blfs": [False], "blf_cleanup": 1},
            {"exts": "1002", "labels": "", "functions": "7", "blfs": "0", "blf_cleanup": "1"},
        ),
        (
            "dnd",
            {"dnd": "0", "duration": 24, "dsttype": "voicemail"},
            {"dnd": "0", "duration": "24", "dsttype": "voicemail"},
        ),
    ],
)
def test_lists_and_values_in_pbxware_form(service, body, params):
    assert validate(SCHEMAS[service], body).params == params


def test_extoperationtimes_validation_explains():
    with pytest.raises(ValidationError, match=r"no pbxware\.ext\.es\.extoperationtimes\.edit"):
        validate(SCHEMAS["extoperationtimes"], {"timeout": "1"})


# --- no stricter than Bicom (issue 16 §8) -----------------------------------------------------
# Each body below passes the argument rules of Bicom's Postman collection
# (PBXwareAPI_Doc.postman_collection.json, "Enhanced Services" requests); the admin API must
# accept it and leave the final word to PBXware.

ACCEPTED_BY_BICOM: list[tuple[str, dict[str, Any], dict[str, str]]] = [
    # Bicom's own example: callers=anonymous,&dtypes=not in service,&destinations=0,
    (
        "callfilters",
        {"callers": ["anonymous", ""], "dtypes": ["not in service", ""], "destinations": ["0", ""]},
        {"callers": "anonymous,", "dtypes": "not in service,", "destinations": "0,"},
    ),
    # What a PBX with no filter set answers, PUT back.
    (
        "callfilters",
        {"callers": ["anonymous"], "dtypes": [""], "destinations": [""]},
        {"callers": "anonymous", "dtypes": "", "destinations": ""},
    ),
    # acodes and tprivacies are optional arguments of their own.
    (
        "callerid",
        {"callerid": "A", "anums": ["1", "2"], "alabels": ["x", "y"]},
        {"callerid": "A", "anums": "1:2", "alabels": "x:y"},
    ),
    (
        "callerid",
        {"callerid": "", "trunks": ["t1", "t2"], "tcallerids": ["Sales <1>", ""]},
        {"callerid": "", "trunks": "t1:t2", "tcallerids": "Sales <1>:"},
    ),
    # Empty entries match the list regexes (`:` alternatives).
    (
        "callerid",
        {"callerid": "A", "anums": ["", "+385 1"], "tprivacies": ["", "4"]},
        {"callerid": "A", "anums": ":+385 1", "tprivacies": ":4"},
    ),
    # Bicom's own example: 3 exts, 2 labels, 3 blfs, 5 functions.
    (
        "blflist",
        {
            "exts": ["421", "423", "424"],
            "labels": ["Ext421", ""],
            "blfs": [1, 0, 1],
            "blf_start": 1,
            "blf_cleanup": 0,
            "cart_only": 0,
            "functions": [1, 0, 1, 2, 3],
        },
        {
            "exts": "421,423,424",
            "labels": "Ext421,",
            "blfs": "1,0,1",
            "blf_start": "1",
            "blf_cleanup": "0",
            "cart_only": "0",
            "functions": "1,0,1,2,3",
        },
    ),
    ("blflist", {"blf_start": 0}, {"blf_start": "0"}),  # /^\d{1,2}$/
    # No DND argument is marked required; duration is "numbers only".
    ("dnd", {"dst": "425"}, {"dst": "425"}),
    ("dnd", {"dnd": 2, "duration": 0}, {"dnd": "2", "duration": "0"}),
    ("dnd", {"dnd": "0", "dst": "", "duration": None}, {"dnd": "0"}),  # unset: not sent
    # callfwd: "enabled" as the string .configuration answers; timeouts are digits.
    ("callfwd", {"enabled": "unconditional,busy"}, {"enabled": "unconditional,busy"}),
    ("callfwd", {"uncond_timeouts": [0, 900]}, {"uncond_timeouts": "0,900"}),
]


@pytest.mark.parametrize(("service", "body", "params"), ACCEPTED_BY_BICOM)
def test_what_bicom_accepts_is_accepted(service, body, params):
    assert validate(SCHEMAS[service], body).params == params


STILL_REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("callerid", {"anums": ["1"]}, "callerid"),  # "(Required)"
    ("callerid", {"callerid": "A", "anums": ["12a"]}, "anums[0]"),
    ("callerid", {"callerid": "A", "trunks": ["t 1"]}, "trunks[0]"),
    ("callerid", {"callerid": "A", "acodes": ["12"]}, "acodes[0]"),
    ("callerid", {"callerid": "A", "tprivacies": [5]}, "tprivacies[0]"),
    ("callfilters", {"callers": ["1002"], "dtypes": [""], "destinations": [""]}, "callers"),
    ("callfilters", {"callers": ["anonymous"], "dtypes": ["x"], "destinations": [""]}, "dtypes[0]"),
    ("callfilters", {"callers": ["anonymous"], "dtypes": [""]}, "destinations"),
    (
        "callfilters",
        {"callers": ["anonymous", ""], "dtypes": [""], "destinations": [""]},
        "callers",
    ),
    ("dnd", {"dnd": 3}, "dnd"),
    ("dnd", {"dst": "12a"}, "dst"),
    ("blflist", {"blf_start": 100}, "blf_start"),
    ("blflist", {"labels": ["<b>"]}, "labels[0]"),
    ("blflist", {"exts": ["x"]}, "exts[0]"),
    ("callfwd", {"play": 2}, "play"),
    ("callfwd", {"busy_dests": ["10a"]}, "busy_dests[0]"),
]


@pytest.mark.parametrize(("service", "body", "field"), STILL_REFUSED)
def test_what_bicom_refuses_is_refused(service, body, field):
    with pytest.raises(ValidationError) as info:
        validate(SCHEMAS[service], body)
    assert info.value.field == field


# --- any configuration a GET returns can be PUT back unchanged (issue 16 §8) ---------------------

_NUMBERS = st.from_regex(r"\+?[0-9][0-9 ]{0,8}", fullmatch=True)
_LABELS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 ]{0,10}( <\+?[0-9]{1,6}>)?", fullmatch=True)
_DIGITS = st.from_regex(r"[0-9]{1,6}", fullmatch=True)
_CONDITIONS = ["unconditional", "busy", "no answer", "line unavailable"]
_FILTER_TYPES = ["call forward number", "no answer", "busy", "voicemail", "not in service"]


@st.composite
def callerid_configs(draw: Any, trunks: list[str]) -> dict[str, Any]:
    """callerid.configuration in the shape of the live sample (docs/pbxware-api.md §3.9)."""
    config: dict[str, Any] = {
        "callerid": draw(st.sampled_from(["", '"Ana" <1001>', "Sales <+38515550001>"])),
        "emergency_callerid": draw(st.sampled_from(["", "112", "+38515550000"])),
        "default_callerid": draw(st.sampled_from(["", "02392003515"])),
        "default_privacy": "",
    }
    with_privacy = draw(st.booleans())
    for name in trunks:
        config[f"callerid:{name}"] = draw(st.sampled_from(["", "02392003515", "Sales <1>"]))
        if with_privacy:
            config[f"callerid:{name}:privacy"] = draw(st.sampled_from(["", "0", "4"]))
    entries = draw(
        st.lists(st.tuples(_NUMBERS, _LABELS, st.sampled_from(["", "0", "7"])), max_size=4)
    )
    config["allowed_callerids"] = {
        str(i + 1): {"callerid": n, "label": lbl, "short_code": c}
        for i, (n, lbl, c) in enumerate(entries)
    } or []
    return config


@st.composite
def callfilters_configs(draw: Any) -> dict[str, Any]:
    size = draw(st.integers(0, 3))
    return {
        "callers": ["anonymous", *draw(st.lists(_DIGITS | st.just(""), min_size=size, max_size=size))],
        "dtypes": draw(st.lists(st.sampled_from(["", *_FILTER_TYPES]), min_size=size + 1, max_size=size + 1)),
        "destinations": draw(st.lists(_DIGITS | st.just(""), min_size=size + 1, max_size=size + 1)),
        "telemarketer": draw(st.sampled_from(["0", "1"])),
    }  # fmt: skip


@st.composite
def dnd_configs(draw: Any) -> dict[str, Any]:
    return {
        "dnd": draw(st.sampled_from(["0", "1", "2"])),
        "dst": draw(_DIGITS | st.just("")),
        "dsttype": draw(st.sampled_from(["voicemail", "call forward", ""])),
        "duration": draw(st.none() | _DIGITS),
    }


@st.composite
def blflist_configs(draw: Any) -> dict[str, Any]:
    return {
        "exts": draw(st.lists(_DIGITS, max_size=4)),
        "labels": draw(st.lists(_LABELS, max_size=4)),
        "functions": draw(st.lists(_DIGITS, max_size=5)),
        "blfs": draw(st.lists(st.sampled_from([0, 1]), max_size=4)),
        "blf_start": draw(st.integers(0, 99)),
        "blf_cleanup": draw(st.sampled_from([0, 1])),
        "cart_only": draw(st.sampled_from([0, 1])),
    }


@st.composite
def callfwd_edits(draw: Any) -> dict[str, str]:
    """callfwd's configuration is rendered from what was edited: reach it by an edit."""
    args = {"enabled": ",".join(draw(st.lists(st.sampled_from(_CONDITIONS), unique=True)))}
    for prefix in ("uncond", "busy", "noansw", "unavail"):
        for kind in ("dests", "timeouts"):
            args[f"{prefix}_{kind}"] = ",".join(draw(st.lists(_DIGITS, max_size=3)))
    args["play"], args["cid"] = draw(st.sampled_from(["0", "1"])), draw(st.sampled_from(["0", "1"]))
    return args


def _round_trip_sim() -> tuple[Any, Any, str]:
    from pbxware_simulator import Simulator, SimulatorOptions

    sim = Simulator(SimulatorOptions(api_key="k" * 20, tenants=1, extensions_per_tenant=1))
    ext = next(iter(sim.state("pbx1").tenants["2"].extensions.values()))
    return sim, sim.enhanced_services("pbx1"), ext.id


def _pbxware_edit(sim: Any, es: Any, ext_id: str, service: str, params: dict[str, str]) -> Any:
    from pbxware_simulator.api import Context

    handler = es.actions()[f"pbxware.ext.es.{service}.edit"]
    return handler(Context(sim.state("pbx1"), {"server": "2", "id": ext_id, **params}, False))


def _without_ids(config: dict[str, Any]) -> dict[str, Any]:
    """allowed_callerids ids are PBXware's row ids: an edit may renumber them."""
    allowed = config.get("allowed_callerids")
    if isinstance(allowed, dict):
        return {**config, "allowed_callerids": [allowed[k] for k in sorted(allowed, key=int)]}
    return config


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
@pytest.mark.parametrize("service", [s for s, schema in SCHEMAS.items() if schema.editable])
def test_any_configuration_a_get_returns_can_be_put_back_unchanged(service, data):
    sim, es, ext_id = _round_trip_sim()
    trunks = [t.name for t in sim.state("pbx1").trunks.values()]
    if service == "callfwd":
        _pbxware_edit(sim, es, ext_id, service, data.draw(callfwd_edits()))
    else:
        strategy = {
            "callerid": callerid_configs(trunks),
            "callfilters": callfilters_configs(),
            "dnd": dnd_configs(),
            "blflist": blflist_configs(),
        }[service]
        es.plant("2", ext_id, service, **data.draw(strategy))
    got = es.configuration("2", ext_id, service)  # what a GET answers
    edit = validate(SCHEMAS[service], json.loads(json.dumps(got)))  # the admin API: no 400
    answer = _pbxware_edit(sim, es, ext_id, service, edit.params)  # PBXware: no error
    assert "error" not in answer
    assert _without_ids(es.configuration("2", ext_id, service)) == _without_ids(got)


def test_the_live_callerid_sample_is_put_back_as_edit_arguments():
    # The sample of docs/pbxware-api.md §3.9 (values changed), as PBXware answers it.
    live = {
        "callerid": "",
        "emergency_callerid": "",
        "default_callerid": "02392003515",
        "default_privacy": "",
        "callerid:Gamma": "02392003515",
        "callerid:twilio": "",
        "allowed_callerids": {
            "1": {"callerid": "02032815871", "label": "Sales 1", "short_code": "0"},
            "2": {"callerid": "02032815905", "label": "Sales 2", "short_code": "1"},
        },
    }
    assert validate(SCHEMAS["callerid"], live).params == {
        "callerid": "",
        "emergencycid": "",
        "anums": "02032815871:02032815905",
        "alabels": "Sales 1:Sales 2",
        "acodes": "0:1",
        "trunks": "Gamma:twilio",
        "tcallerids": "02392003515:",
    }
    empty = {**live, "allowed_callerids": []}
    params = validate(SCHEMAS["callerid"], empty).params
    assert (params["anums"], params["alabels"], params["acodes"]) == ("", "", "")
    with pytest.raises(ValidationError) as info:
        validate(SCHEMAS["callerid"], {**live, "allowed_callerids": "none"})
    assert info.value.field == "allowed_callerids"


def test_the_extension_page_shows_the_live_callerid_shape():
    from exporter.admin.html import render_extension

    live = {
        "callerid": "",
        "emergency_callerid": "",
        "default_callerid": "02392003515",
        "callerid:Gamma": "<b>02392003515</b>",
        "allowed_callerids": {"1": {"callerid": "02032815871", "label": "Sales 1", "short_code": "0"}},
    }  # fmt: skip
    view = {
        "system": "pbx1",
        "tenant": "2",
        "extension": {"number": "1001", "name": "Ana", "id": "7", "status": "enabled"},
        "services": {
            "callerid": {"title": "Caller ID", "enabled": True, "state": "yes", "configuration": live},
            "dnd": {"title": "DND", "enabled": False, "state": "no",
                    "configuration": {**live, "allowed_callerids": []}},
        },
    }  # fmt: skip
    page = render_extension(view)
    for text in ("callerid:Gamma", "allowed_callerids", "Sales 1", "02032815871", "(none)"):
        assert text in page
    assert "<b>02392003515" not in page and "&lt;b&gt;02392003515" in page


def test_every_problem_of_a_body_is_named_the_first_one_answers():
    """The 400 names the first problem (in the body's order); the error carries them all."""
    body = {"dnd": 3, "colour": "red", "dst": "x", "duration": -1}
    with pytest.raises(ValidationError) as info:
        validate(SCHEMAS["dnd"], body)
    assert (info.value.field, str(info.value)) == ("dnd", f"dnd: {info.value.message}")
    assert info.value.problems == [
        "dnd: must be one of '0', '1', '2', got '3'",
        "colour: unknown field for dnd (allowed: dnd, dst, dsttype, duration)",
        "dst: must be a string of digits, got 'x'",
        "duration: must be a string of digits, got number",
    ]


def test_a_long_unknown_field_is_named_shortened():
    with pytest.raises(ValidationError) as info:
        validate(SCHEMAS["dnd"], {"x" * 5000: 1})
    assert info.value.field == "x" * 40 + "…"
    assert len(str(info.value)) < 200
