"""Decoding PBXware bodies: both formats, the in-band errors and every documented quirk."""

from __future__ import annotations

import json

import phpserialize
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.features.monitor import parse as parse_monitor
from exporter.pbxware import PbxwareError, phpdecode
from exporter.pbxware.decode import decode_body, decode_php
from exporter.pbxware.models import (
    normalise_status,
    parse_count,
    parse_extensions,
    parse_tenants,
    parse_usage_ratio,
)
from tests.tools import missing

TENANTS = {
    "2": {
        "name": " t1.dot.com ",
        "tenantcode": "344",
        "package_id": 1,
        "package": "Package 1",
        "ext_length": 3,
        "country_id": 869,
        "country_code": 1,
    },
    "7": {
        "name": "t2",
        "tenantcode": "345",
        "package_id": "2",
        "package": "Package 2",
        "ext_length": "3",
        "country_id": "869",
        "country_code": "1",
    },
}


def php_like(value):
    """What PHP's serialize() produces: digit-string keys become integer keys."""
    if isinstance(value, dict):
        return {
            int(k) if isinstance(k, str) and k.isdigit() else k: php_like(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [php_like(v) for v in value]
    return value


@pytest.mark.parametrize("fmt", ["json", "php"])
def test_both_formats_decode_to_the_same_shapes(fmt):
    body = json.dumps(TENANTS).encode() if fmt == "json" else phpserialize.dumps(php_like(TENANTS))
    data = decode_body("pbxware.tenant.list", body, fmt)
    assert data == TENANTS
    tenants = parse_tenants(data)
    assert [(t.id, t.name, t.code, t.package) for t in tenants] == [
        ("2", "t1.dot.com", "344", "Package 1"),
        ("7", "t2", "345", "Package 2"),
    ]


def test_php_lists_and_empty_arrays_match_json_encode():
    body = phpserialize.dumps({"a": ["x", "y"], "b": [], "c": {1: "p", 3: "q"}})
    assert decode_body("x", body, "php") == {"a": ["x", "y"], "b": [], "c": {"1": "p", "3": "q"}}
    assert decode_body("x", phpserialize.dumps([]), "php") == []


@pytest.mark.parametrize(
    ("body", "fmt", "reason"),
    [
        (b'{"error": "Invalid API key."}', "json", "auth"),
        (b'{"error": "Invalid action."}', "json", "api_error"),
        (b'[{"error": "No archive"}]', "json", "api_error"),
        (phpserialize.dumps({"error": "Invalid API key."}), "php", "auth"),
        (b"<html><body>Login</body></html>", "json", "decode"),
        (b"", "json", "decode"),
        (b'{"2": {"name": "x"', "json", "decode"),
        (b'Notice: Undefined index: x in /var/www/api.php\n{"a": 1}', "json", "decode"),
        (b"\xff\xfe\x00garbage", "json", "decode"),
        (b'{"a": 1}', "php", "decode"),
        (b"i:1;junk", "php", "decode"),
        (b'a:1:{s:1:"a";s:5:"abc"', "php", "decode"),
        (b'O:8:"stdClass":0:{}', "php", "decode"),
    ],
)
def test_bad_bodies_become_typed_errors(body, fmt, reason):
    with pytest.raises(PbxwareError) as info:
        decode_body("pbxware.ext.list", body, fmt)
    assert info.value.reason == reason
    assert info.value.action == "pbxware.ext.list"


def test_empty_list_is_an_empty_mapping():
    assert parse_tenants([]) == []
    assert parse_extensions([]) == ()
    assert parse_monitor([]).online_ids == frozenset()


def test_extensions_parse_strings_and_status_variants():
    data = {
        "1": {"name": "User 530", "protocol": "SIP", "ext": "530", "status": "enabled"},
        "2": {"name": "B", "protocol": "iax", "ext": 531, "status": "0"},
        "3": {"name": "C", "protocol": "", "ext": "532"},
    }
    exts = parse_extensions(data)
    assert [(e.id, e.number, e.protocol, e.status) for e in exts] == [
        ("1", "530", "sip", "enabled"),
        ("2", "531", "iax", "disabled"),
        ("3", "532", "unknown", "unknown"),
    ]
    assert normalise_status("2") == "suspended"


@pytest.mark.parametrize(
    ("inuse", "ratio"), [("37", 0.37), ("42.5", 0.425), ("61%", 0.61), (" 5 % ", 0.05), (100, 1.0)]
)
def test_usage_percentages(inuse, ratio):
    assert parse_usage_ratio("pbxware.dashboard.cpu", {"inuse": inuse}) == pytest.approx(ratio)


@pytest.mark.parametrize(
    "data", [{"inuse": "high"}, {"inuse": "101"}, {"inuse": "nan"}, {}, [], {"inuse": "-1"}]
)
def test_bad_usage_is_a_decode_error(data):
    with pytest.raises(PbxwareError) as info:
        parse_usage_ratio("pbxware.dashboard.cpu", data)
    assert info.value.reason == "decode"


def test_counts():
    assert parse_count("a", {"type": "Extensions Online", "count": "42"}) == 42
    assert parse_count("a", {"count": 7}) == 7
    for bad in ({"count": "x"}, {"count": -1}, {"type": "Extensions Online"}, []):
        with pytest.raises(PbxwareError):
            parse_count("a", bad)


def test_wrong_shapes_are_decode_errors():
    for parse, data in (
        (parse_tenants, "x"),
        (parse_extensions, {"1": "not an object"}),
        (parse_extensions, [1, 2]),
    ):
        with pytest.raises(PbxwareError) as info:
            parse(data)
        assert info.value.reason == "decode"


def test_monitor_list_online_states():
    data = {"1": {"status": "online"}, "2": {"status": "offline"}, "3": {"status": "Registered"}}
    assert parse_monitor(data).online_ids == frozenset({"1", "3"})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(["json", "php"]))
def test_arbitrary_bytes_never_escape_as_anything_but_pbxware_error(body, fmt):
    try:
        decode_body("x", body, fmt)
    except PbxwareError as exc:
        assert exc.reason in {"decode", "auth", "api_error"}


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(json_values)
def test_parsers_survive_any_json_shape(value):
    for parse in (
        parse_tenants,
        parse_extensions,
        parse_monitor,
        lambda v: parse_usage_ratio("a", v),
        lambda v: parse_count("a", v),
    ):
        try:
            parse(value)
        except PbxwareError as exc:
            assert exc.reason == "decode"


def test_deeply_nested_json_is_a_decode_error():
    body = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(PbxwareError) as info:
        decode_body("x", body, "json")
    assert info.value.reason == "decode"


def reference_php_decode(body: bytes):
    """phpserialize (the reference implementation) plus json_encode's shapes."""

    def shape(value):
        if isinstance(value, dict):
            if not value:
                return []
            if list(value) == list(range(len(value))):
                return [shape(v) for v in value.values()]
            return {str(k): shape(v) for k, v in value.items()}
        return value

    return shape(phpserialize.loads(body, decode_strings=True))


php_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**62), 2**62)
    | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=5) | st.integers(0, 50), inner, max_size=4)
    ),
    max_leaves=30,
)


def c_decoder():
    """The C accelerator; scripts/bootstrap builds it (needs gcc and Python's headers)."""
    if phpdecode.c_loads is None:
        missing(
            f"the installed exporter ({phpdecode.__file__}) has no C decoder: it was built"
            " without gcc or Python's headers; install them and reinstall (scripts/test does)"
        )
    return phpdecode.c_loads


@pytest.fixture(params=["c", "python"])
def php_loads(request):
    return c_decoder() if request.param == "c" else phpdecode.pure_loads


def test_the_daemon_decodes_php_with_the_c_decoder_when_it_is_built(monkeypatch):
    calls = []
    real = c_decoder()
    monkeypatch.setattr(phpdecode, "c_loads", lambda body: calls.append(body) or real(body))
    assert decode_php(b'a:1:{i:0;s:1:"x";}') == ["x"]
    assert calls == [b'a:1:{i:0;s:1:"x";}']
    with pytest.raises(ValueError, match=r"not PHP serialize.*trailing data"):
        phpdecode.loads(b"i:1;x")


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(php_values)
def test_php_decoders_agree_with_phpserialize(value):
    body = phpserialize.dumps(value)
    expected = reference_php_decode(body)
    assert phpdecode.pure_loads(body) == expected
    assert c_decoder()(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        b'a:2:{i:0;s:1:"a";}',
        b'a:1:{i:0;s:1:"a";i:1;s:1:"b";}',
        b's:3:"ab";',
        b"b:2;",
        b"d:x;",
        b"a:-1:{}",
        b'a:1:{d:1.5;s:1:"a";}',
        b"i:1",
        b"N",
        b"",
        b's:1:"\xff";',
        b"a:99999999999999999:{}",
        b"a:1000000:{i:0;N;}",
        b's:99999999999:"a";',
        b"a:1:{a:0:{}i:1;}",
        b"i:1;i:2;",
    ],
)
def test_php_decoders_refuse_malformed_input(php_loads, body):
    with pytest.raises(ValueError):
        php_loads(body)


def test_fast_php_decoder_refuses_malformed_input_as_a_decode_error():
    with pytest.raises(PbxwareError) as info:
        decode_body("x", b'a:1:{i:0;s:1:"a";i:1;s:1:"b";}', "php")
    assert info.value.reason == "decode"


@pytest.mark.parametrize("depth", [200, 100_000])
def test_deeply_nested_php_is_a_decode_error_or_decoded_never_a_crash(depth):
    body = b"a:1:{i:0;" * depth + b"N;" + b"}" * depth
    try:
        value = decode_body("x", body, "php")
    except PbxwareError as exc:
        assert exc.reason == "decode" and depth > 200
    else:
        for _ in range(depth):
            (value,) = value
        assert value is None


def test_php_decoders_keep_big_integers_and_php_floats():
    body = b"a:3:{i:0;i:123456789012345678901234567890;i:1;d:-INF;i:2;d:1.0E+25;}"
    for loads in (c_decoder(), phpdecode.pure_loads):
        assert loads(body) == [123456789012345678901234567890, float("-inf"), 1.0e25]


def mutations(body: bytes):
    """Single-byte edits, cuts and duplications of a valid body: mostly invalid, all hostile."""
    return st.one_of(
        st.tuples(st.integers(0, len(body) - 1), st.binary(min_size=1, max_size=3)).map(
            lambda e: body[: e[0]] + e[1] + body[e[0] + 1 :]
        ),
        st.integers(0, len(body)).map(lambda i: body[:i]),
        st.tuples(st.integers(0, len(body)), st.integers(0, len(body))).map(
            lambda e: body[: e[0]] + body[e[1] :]
        ),
    )


@pytest.mark.slow
@settings(max_examples=500, deadline=None)
@given(st.data())
def test_c_decoder_on_hostile_input_refuses_or_agrees_with_python(data):
    """The C decoder never crashes; what it accepts, the Python decoder reads the same way."""
    value = data.draw(php_values)
    body = data.draw(mutations(phpserialize.dumps(value)))
    try:
        decoded = c_decoder()(body)
    except ValueError:
        return
    assert phpdecode.pure_loads(body) == decoded
