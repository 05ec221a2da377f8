"""The admin section of the config: token restrictions that mean what they say, and the
warning about token files others can read."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.admin import AdminApi
from exporter.admin.auth import authorize
from exporter.config import ConfigError, load_config, parse_config
from exporter.logs import configure_logging
from exporter.snapshot import SnapshotStore

SYSTEMS = "systems:\n- {name: eu1, url: 'http://x', api_key: k}\n- {name: us1, url: 'http://y', api_key: k}\n"
DIGEST = "a" * 64


def _load(tmp_path: Path, token: str) -> object:
    path = tmp_path / "config.yml"
    path.write_text(
        SYSTEMS + "admin:\n  tokens:\n  - {name: ops, sha256: '" + DIGEST + "', " + token + "}\n"
    )
    return load_config(path)


def _problems(tmp_path: Path, token: str) -> str:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, token)
    message = str(info.value)
    assert str(tmp_path / "config.yml") in message  # every problem names the file
    return message


@pytest.mark.parametrize(
    ("tenants", "path", "reason"),
    [
        ("[010]", "admin.tokens[0].tenants[0]", "quoted"),  # YAML 1.1: octal 8
        ("[2]", "admin.tokens[0].tenants[0]", "quoted"),
        ("[0x10]", "admin.tokens[0].tenants[0]", "quoted"),
        ('["2", "abc"]', "admin.tokens[0].tenants[1]", "digits"),
        ('[" 2"]', "admin.tokens[0].tenants[0]", "digits"),
        ('["010"]', "admin.tokens[0].tenants[0]", "leading zero"),
        ('["0"]', "admin.tokens[0].tenants[0]", "leading zero"),
        ('["2", "2"]', "admin.tokens[0].tenants[1]", "twice"),
        ('["٣"]', "admin.tokens[0].tenants[0]", "digits"),  # a digit, but not 0-9
        ("[]", "admin.tokens[0].tenants", "non-empty"),
        ('"2"', "admin.tokens[0].tenants", "list"),
    ],
)
def test_tenant_ids_must_be_quoted_digit_strings(tmp_path, tenants, path, reason):
    message = _problems(tmp_path, f"tenants: {tenants}")
    assert any(path in line and reason in line for line in message.splitlines()), message


def test_the_octal_trap_is_explained(tmp_path):
    message = _problems(tmp_path, "tenants: [010]")
    assert "got the number 8" in message and '"010"' not in message


def test_quoted_tenant_ids_load(tmp_path):
    (token,) = _load(tmp_path, 'tenants: ["2", "10"]').admin.tokens
    assert token.tenants == ("2", "10")


@pytest.mark.parametrize(
    ("systems", "reason"),
    [("[zz]", "not a configured system"), ("[1]", "system name"), ('[eu1, "eu1"]', "twice")],
)
def test_system_restrictions(tmp_path, systems, reason):
    message = _problems(tmp_path, f"systems: {systems}")
    assert any("admin.tokens[0].systems" in ln and reason in ln for ln in message.splitlines())


def test_pairs_load_as_exact_pairs(tmp_path):
    (token,) = _load(tmp_path, "pairs: [eu1/2, us1/5]").admin.tokens
    assert token.pairs == (("eu1", "2"), ("us1", "5"))
    assert authorize(token, "read", "eu1", "2") is None
    assert authorize(token, "read", "us1", "5") is None
    # Not a cross product: each system only with its own tenants.
    assert authorize(token, "read", "eu1", "5") is not None
    assert authorize(token, "read", "us1", "2") is not None


@pytest.mark.parametrize(
    ("pairs", "path", "reason"),
    [
        ("[eu1]", "admin.tokens[0].pairs[0]", "system/tenant"),
        ("[eu1/2/3]", "admin.tokens[0].pairs[0]", "system/tenant"),
        ("[zz/2]", "admin.tokens[0].pairs[0]", "not a configured system"),
        ("[eu1/x]", "admin.tokens[0].pairs[0]", "digits"),
        ("[eu1/02]", "admin.tokens[0].pairs[0]", "leading zero"),
        ("[eu1/2, eu1/2]", "admin.tokens[0].pairs[1]", "twice"),
        ("[7]", "admin.tokens[0].pairs[0]", "system/tenant"),
        ("[]", "admin.tokens[0].pairs", "non-empty"),
    ],
)
def test_broken_pairs_are_refused(tmp_path, pairs, path, reason):
    message = _problems(tmp_path, f"pairs: {pairs}")
    assert any(path in line and reason in line for line in message.splitlines()), message


def test_pairs_do_not_mix_with_systems_or_tenants(tmp_path):
    message = _problems(tmp_path, 'pairs: [eu1/2], tenants: ["2"]')
    assert "admin.tokens[0].pairs" in message and "instead of" in message


@pytest.mark.parametrize(("mode", "warned"), [(0o600, False), (0o640, True), (0o604, True)])
def test_a_token_file_others_can_read_is_warned_about(tmp_path, mode, warned):
    secret = tmp_path / "oncall.token"
    secret.write_text("adm-LEAKCHECK-file-1b2c3d4e5f60718293\n")
    secret.chmod(mode)
    path = tmp_path / "config.yml"
    path.write_text(SYSTEMS + "admin:\n  tokens:\n  - {name: oncall, token_file: oncall.token}\n")
    config = load_config(path)
    assert config.admin.tokens[0].file == str(secret)
    sink = io.StringIO()
    configure_logging("info", "json", stream=sink)
    AdminApi(config.admin, config.systems, {}, SnapshotStore()).log_status()
    lines = [json.loads(ln) for ln in sink.getvalue().splitlines()]
    found = [ln for ln in lines if ln["event"] == "admin_token_file_readable"]
    if warned:
        (line,) = found
        assert line["token"] == "oncall" and line["file"] == str(secret)
        assert line["mode"] == f"{mode:04o}" and "chmod 600" in line["hint"]
        assert line["level"] == "warning"
    else:
        assert not found
    assert "adm-LEAKCHECK" not in sink.getvalue()


_items = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
_restrictions = st.dictionaries(
    st.sampled_from(["systems", "tenants", "pairs"]),
    _items | st.lists(_items | st.lists(_items, max_size=2), max_size=4),
    max_size=3,
)


@settings(max_examples=200, deadline=None)
@given(restrictions=_restrictions)
def test_any_restriction_gives_a_token_or_a_config_error(restrictions):
    data = {
        "systems": [{"name": "eu1", "url": "http://x", "api_key": "k"}],
        "admin": {"tokens": [{"name": "ops", "sha256": DIGEST, **restrictions}]},
    }
    try:
        config = parse_config(data, source="fuzz.yml")
    except ConfigError as exc:
        assert all(p.startswith("admin.tokens[0]") for p in exc.problems), exc.problems
        return
    (token,) = config.admin.tokens
    for tenant in token.tenants or ():
        assert tenant.isascii() and tenant.isdigit() and not tenant.startswith("0")
    for system, tenant in token.pairs or ():
        assert system == "eu1" and tenant.isascii() and tenant.isdigit()
