"""Every validation rule of the edit routes: 400 naming the field, and nothing sent to the PBX."""

from __future__ import annotations

import json
from typing import Any

import pytest

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
    ("callerid", {**CID, "trunks": ["t1"], "tcallerids": ["X"]}, "tprivacies", "required together"),
    ("callerid", {**CID, "trunks": ["t1"]}, "tcallerids", "required together"),
    (
        "callerid",
        {**CID, "trunks": ["t1", "t2"], "tcallerids": ["X"], "tprivacies": [0]},
        "trunks",
        "same length",
    ),
    (
        "callerid",
        {**CID, "trunks": ["t1"], "tcallerids": ["X"], "tprivacies": [0, 1]},
        "tprivacies",
        "same length",
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
    ("callerid", {**CID, "anums": ["1"], "alabels": ["A"], "acodes": []}, "acodes", "same length"),
    ("callerid", {**CID, "anums": ["1"], "alabels": ["A"]}, "acodes", "required together"),
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
    ("dnd", {"dst": "1002"}, "dnd", "required"),
    ("dnd", {"dnd": 3}, "dnd", "one of"),
    ("dnd", {"dnd": "on"}, "dnd", "one of"),
    ("dnd", {"dnd": True}, "dnd", "one of"),
    ("dnd", {"dnd": 1, "dst": "voicemail"}, "dst", "digits"),
    ("dnd", {"dnd": 1, "dst": ""}, "dst", "digits"),
    ("dnd", {"dnd": 1, "dst": "1" * 33}, "dst", "at most 32"),
    ("dnd", {"dnd": 1, "dsttype": "email"}, "dsttype", "one of"),
    ("dnd", {"dnd": 1, "duration": 0}, "duration", "from 1 to 8760"),
    ("dnd", {"dnd": 1, "duration": 8761}, "duration", "from 1 to 8760"),
    ("dnd", {"dnd": 1, "duration": 1.5}, "duration", "integer"),
    ("dnd", {"dnd": 1, "duration": "2h"}, "duration", "integer"),
    # call forwarding
    ("callfwd", {"enabled": "busy"}, "enabled", "JSON array"),
    ("callfwd", {"enabled": ["sometimes"]}, "enabled[0]", "one of"),
    ("callfwd", {"enabled": ["busy", "busy"]}, "enabled[1]", "listed twice"),
    ("callfwd", {"uncond_dests": ["10a"]}, "uncond_dests[0]", "digits"),
    ("callfwd", {"busy_dests": [None]}, "busy_dests[0]", "digits"),
    ("callfwd", {"noansw_timeouts": [0]}, "noansw_timeouts[0]", "from 1 to 600"),
    ("callfwd", {"unavail_timeouts": [601]}, "unavail_timeouts[0]", "from 1 to 600"),
    ("callfwd", {"play": 2}, "play", "true/false"),
    ("callfwd", {"cid": "yes"}, "cid", "true/false"),
    ("callfwd", {"cid": 1.0}, "cid", "true/false"),
    # BLF list
    ("blflist", {"exts": ["1002"]}, "labels", "required together"),
    ("blflist", {**BLF, "labels": ["Desk", "Door"]}, "labels", "same length"),
    ("blflist", {**BLF, "exts": ["x"]}, "exts[0]", "digits"),
    ("blflist", {**BLF, "labels": ["a,b"]}, "labels[0]", "label"),
    ("blflist", {**BLF, "labels": ["<b>"]}, "labels[0]", "label"),
    ("blflist", {**BLF, "functions": [100]}, "functions[0]", "from 0 to 99"),
    ("blflist", {**BLF, "blfs": [2]}, "blfs[0]", "true/false"),
    ("blflist", {"blf_start": 0}, "blf_start", "from 1 to 999"),
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
