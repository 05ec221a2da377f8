"""Random paths and bodies at the edit routes: whatever comes in, never a 500."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.admin import SCHEMAS, SERVICES
from tests.admin_util import (
    EDITS,
    OPS,
    TENANT2,
    VIEWER,
    admin_env,
    admin_leak_guard,  # noqa: F401 (a fixture, used by name)
    bearer,
)

pytestmark = pytest.mark.usefixtures("admin_leak_guard")

FIELDS = sorted({name for s in SCHEMAS.values() for name in s.fields})

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=False)
    | st.text(max_size=24)
    | st.sampled_from(["anonymous", "voicemail", "busy", "1002", "0", "1", "2", "trunk-a",
                       "Sales <+3851>", "unconditional", "no answer", "", ":", ","])
)  # fmt: skip
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
# Mostly objects with real field names, so that validation gets deep, not just the first check.
shaped = st.dictionaries(
    st.sampled_from(FIELDS) | st.text(max_size=10),
    scalars | st.lists(scalars, max_size=5),
    max_size=8,
)


def _mutate(seed: dict[str, Any], key: str, value: Any, drop: bool) -> dict[str, Any]:
    body = dict(seed)
    if drop:
        body.pop(key, None)
    else:
        body[key] = value
    return body


# Valid edits, as they are and with one field changed or dropped: these reach the PBX.
near_valid = st.sampled_from([body for body, _ in EDITS.values()]) | st.builds(
    _mutate,
    st.sampled_from([body for body, _ in EDITS.values()]),
    st.sampled_from(FIELDS),
    scalars | st.lists(scalars, max_size=3),
    st.booleans(),
)
bodies = (
    near_valid.map(lambda v: json.dumps(v).encode())
    | st.sampled_from([b'{"enabled": true}', b'{"enabled": false}'])
    | shaped.map(lambda v: json.dumps(v).encode())
    | json_values.map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=64)
    | st.fixed_dictionaries({"enabled": scalars}).map(lambda v: json.dumps(v).encode())
)
segments = st.text(min_size=1, max_size=12).map(lambda s: quote(s, safe=""))
# Two in three paths address a real extension, so that most bodies meet the validation; the
# rest is anything (quoted, so that every segment stays one path segment).
real_paths = st.tuples(
    st.just("pbx1"), st.just("2"), st.just("1001"), st.sampled_from(SERVICES)
) | st.tuples(
    st.sampled_from(["pbx1", "pbx2"]),
    st.sampled_from(["2", "3"]),
    st.sampled_from(["1001", "1002"]),
    st.sampled_from(SERVICES),
)
any_paths = st.tuples(
    st.sampled_from(["pbx1", "pbx2"]) | segments,
    st.sampled_from(["2", "3", "1", "99"]) | segments,
    st.sampled_from(["1001", "1002", "9999"]) | segments,
    st.sampled_from(SERVICES) | segments,
)
paths = real_paths | real_paths | any_paths
queries = st.sampled_from(["", "?dry_run=1", "?dry_run=0", "?dry_run=x"]) | segments.map(
    lambda s: f"?dry_run={s}"
)
tokens = st.sampled_from([OPS] * 8 + [VIEWER, TENANT2])


@pytest.fixture
async def env(simulator, aiohttp_client, leak_guard):
    async with admin_env(simulator, aiohttp_client, leak_guard) as e:
        yield e


@pytest.mark.slow
@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    method=st.sampled_from(["edit"] * 8 + ["PATCH", "DELETE", "PUT", "POST"]),
    where=paths,
    state=st.booleans(),
    query=queries,
    body=bodies,
    token=tokens,
)
async def test_edit_routes_never_answer_500(
    env: Any,
    method: str,
    where: tuple[str, str, str, str],
    state: bool,
    query: str,
    body: bytes,
    token: str,
) -> None:
    system, tenant, ext, service = where
    path = f"/admin/systems/{system}/tenants/{tenant}/extensions/{ext}/services/{service}"
    path += ("/state" if state else "") + query
    if method == "edit":  # mostly the method the route takes
        method = "POST" if state else "PUT"
    headers = {**bearer(token), "Content-Type": "application/json"}
    async with env.client.request(method, path, data=body, headers=headers) as resp:
        assert resp.status != 500
        assert resp.status < 500 or resp.status in (502, 504)
        if resp.status >= 400:
            answer = await resp.json()
            assert isinstance(answer, dict) and isinstance(answer["error"], str)
    assert not env.log_events("admin_internal_error")
