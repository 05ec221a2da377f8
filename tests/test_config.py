"""Config loading: good files load, every kind of broken file is refused with its key path."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from exporter.config import ConfigError, load_config, parse_config, parse_duration

GOOD = """
defaults:
  interval: 30s
  timeout: 5s
  concurrency: 8
systems:
  - name: eu1
    url: https://pbx-eu1.example.com/
    api_key: "${TEST_EU1_KEY}"
    tenants: all
  - name: us1
    url: http://10.0.0.2
    api_key_file: key.txt
    format: php
    tenants: [2, "3"]
    extension_metrics: true
    verify_tls: false
    interval: 1m30s
    stale_after: 5
"""


def write(tmp_path: Path, text: str, name: str = "config.yml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_good_config_loads_with_defaults_and_overrides(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_EU1_KEY", "from-env-0123456789")
    (tmp_path / "key.txt").write_text("from-file-0123456789\n")
    config = load_config(write(tmp_path, GOOD))
    eu1, us1 = config.systems
    assert (eu1.name, eu1.api_key, eu1.interval, eu1.timeout, eu1.concurrency) == (
        "eu1",
        "from-env-0123456789",
        30.0,
        5.0,
        8,
    )
    assert eu1.tenants is None and eu1.format == "json" and eu1.verify_tls is True
    assert eu1.endpoint == "https://pbx-eu1.example.com/index.php"
    assert us1.api_key == "from-file-0123456789"
    assert us1.tenants == ("2", "3") and us1.format == "php" and us1.interval == 90.0
    assert us1.stale_after == 5 and us1.extension_metrics and not us1.verify_tls
    assert "from-env" not in repr(eu1)


@pytest.mark.parametrize(
    ("text", "path", "problem"),
    [
        ("defaults: {}\n", "systems", "missing"),
        ("systems: []\n", "systems", "non-empty"),
        (
            "sytems: []\nsystems: [{name: a, url: 'http://x', api_key: k}]\n",
            "sytems",
            "unknown key",
        ),
        (
            "systems:\n- {name: a, url: 'http://x', api_key: k, intervall: 5s}\n",
            "systems[0].intervall",
            "unknown key",
        ),
        ("systems:\n- {url: 'http://x', api_key: k}\n", "systems[0].name", "missing"),
        (
            "systems:\n- {name: 'EU 1', url: 'http://x', api_key: k}\n",
            "systems[0].name",
            "[a-z0-9_-]+",
        ),
        (
            "systems:\n- {name: a, url: 'http://x', api_key: k}\n- {name: a, url: 'http://y', api_key: k}\n",
            "systems[1].name",
            "duplicate",
        ),
        ("systems:\n- {name: a, api_key: k}\n", "systems[0].url", "missing"),
        ("systems:\n- {name: a, url: 'ftp://x', api_key: k}\n", "systems[0].url", "http://"),
        (
            "systems:\n- {name: a, url: 'http://x/?apikey=secret', api_key: k}\n",
            "systems[0].url",
            "query string",
        ),
        (
            "systems:\n- {name: a, url: 'http://x', api_key: k, api_key_file: f}\n",
            "systems[0]",
            "not both",
        ),
        ("systems:\n- {name: a, url: 'http://x'}\n", "systems[0]", "missing api_key"),
        (
            "systems:\n- {name: a, url: 'http://x', api_key_file: nope.txt}\n",
            "systems[0].api_key_file",
            "cannot read",
        ),
        (
            "systems:\n- {name: a, url: 'http://x', api_key_file: empty.txt}\n",
            "systems[0].api_key_file",
            "is empty",
        ),
        (
            "systems:\n- {name: a, url: 'http://x', api_key: '${NOT_SET_ANYWHERE_42}'}\n",
            "systems[0].api_key",
            "NOT_SET_ANYWHERE_42 is not set",
        ),
        (
            "systems:\n- {name: a, url: 'http://x', api_key: k}\n- {name: b, url: 'http://x', api_key: k, interval: 5x}\n",
            "systems[1].interval",
            "invalid duration",
        ),
        (
            "systems:\n- {name: a, url: 'http://x', api_key: k, interval: 60}\n",
            "systems[0].interval",
            "duration string",
        ),
        (
            "systems:\n- {name: a, url: 'http://x', api_key: k, interval: 10s, timeout: 10s}\n",
            "systems[0].timeout",
            "shorter than interval",
        ),
        (
            "systems:\n- {name: a, url: 'http://x', api_key: k, concurrency: 0}\n",
            "systems[0].concurrency",
            "at least 1",
        ),
        (
            "systems:\n- {name: a, url: 'http://x', api_key: k, concurrency: '4'}\n",
            "systems[0].concurrency",
            "integer",
        ),
        (
            "systems:\n- {name: a, url: 'http://x', api_key: k, format: xml}\n",
            "systems[0].format",
            "json or php",
        ),
        (
            "systems:\n- {name: a, url: 'http://x', api_key: k, tenants: some}\n",
            "systems[0].tenants",
            "'all' or",
        ),
        (
            "systems:\n- {name: a, url: 'http://x', api_key: k, tenants: [2, 0]}\n",
            "systems[0].tenants",
            "[1] must be a positive",
        ),
        (
            "systems:\n- {name: a, url: 'http://x', api_key: k, tenants: [2, '2']}\n",
            "systems[0].tenants",
            "listed twice",
        ),
        (
            "systems:\n- {name: a, url: 'http://x', api_key: k, verify_tls: 'no'}\n",
            "systems[0].verify_tls",
            "true or false",
        ),
        (
            "defaults: {timeout: 1s, colour: red}\nsystems:\n- {name: a, url: 'http://x', api_key: k}\n",
            "defaults.colour",
            "unknown key",
        ),
        (
            "systems:\n- name: a\n  name: b\n  url: 'http://x'\n  api_key: k\n",
            "line 3",
            "duplicate key",
        ),
        ("systems: [\n", "line", "invalid YAML"),
        (
            "systems:\n- {name: a, url: 'http://x', api_key: k}\n- just-a-string\n",
            "systems[1]",
            "mapping",
        ),
        (
            "systems:\n- {name: a, url: 'http://x', api_key: k, extension_metrics_limit: -1}\n",
            "systems[0].extension_metrics_limit",
            "at least 1",
        ),
        (
            "systems:\n- {name: a, url: 'http://x', api_key: k, path: index.php}\n",
            "systems[0].path",
            "starting with /",
        ),
        ("- just\n- a list\n", "", "mapping"),
        (
            "systems:\n- {name: a, url: 'http://x', api_key: k, cdr: {enabled: 'yes'}}\n",
            "systems[0].cdr.enabled",
            "true or false",
        ),
        (
            "systems:\n- {name: a, url: 'http://x', api_key: k, cdr: {page_size: 5000}}\n",
            "systems[0].cdr.page_size",
            "at most 1000",
        ),
        (
            "systems:\n- {name: a, url: 'http://x', api_key: k, cdr: {timezone: Mars/Base}}\n",
            "systems[0].cdr.timezone",
            "unknown time zone",
        ),
        (
            "systems:\n- {name: a, url: 'http://x', api_key: k, cdr: {intervall: 5m}}\n",
            "systems[0].cdr.intervall",
            "unknown key",
        ),
        (
            "systems:\n- {name: a, url: 'http://x', api_key: k}\nadmin: {tokens: [{name: ops, sha256: abc}]}\n",
            "admin.tokens[0].sha256",
            "64 hex",
        ),
        (
            "systems:\n- {name: a, url: 'http://x', api_key: k}\nadmin: {tokens: [{name: ops, sha256: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', scopes: [write]}]}\n",
            "admin.tokens[0].scopes",
            "read and/or edit",
        ),
        (
            "systems:\n- {name: a, url: 'http://x', api_key: k}\nadmin: {tokens: [{name: ops, sha256: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', systems: [zz]}]}\n",
            "admin.tokens[0].systems",
            "not a configured system",
        ),
        (
            "systems:\n- {name: a, url: 'http://x', api_key: k}\nadmin: {rate_limit: 0}\n",
            "admin.rate_limit",
            "at least 1",
        ),
        (
            "systems:\n- {name: a, url: 'http://x', api_key: k}\nadmin: {tokens: [{name: ops}]}\n",
            "admin.tokens[0]",
            "exactly one of",
        ),
    ],
)
def test_broken_config_is_refused_with_key_path(tmp_path, text, path, problem):
    (tmp_path / "empty.txt").write_text("\n")
    config_file = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(config_file)
    message = str(info.value)
    assert str(config_file) in message
    matching = [line for line in message.splitlines() if path in line and problem in line]
    assert matching, message


def test_all_problems_of_a_file_are_reported_together(tmp_path):
    text = "systems:\n- {name: a, url: 'ftp://x', api_key: k, interval: 5x, concurrency: 0}\n"
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert len(info.value.problems) == 3, info.value.problems


def test_unreadable_key_file_does_not_quote_its_contents(tmp_path):
    secret_file = tmp_path / "key.bin"
    secret_file.write_bytes(b"\xffsecret-bytes-123")
    text = "systems:\n- {name: a, url: 'http://x', api_key_file: key.bin}\n"
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert "secret-bytes" not in str(info.value)
    assert "systems[0].api_key_file" in str(info.value)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_config(tmp_path / "absent.yml")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("30s", 30), ("1m30s", 90), ("2h", 7200), ("1d", 86400), ("1m", 60)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "5x", "1.5s", "s", "-1s", "1s1m"])
def test_bad_durations(text):
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def run_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exporter", "--config.check", "--config.file", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.tools
def test_config_check_flag_exit_codes(tmp_path):
    good = write(
        tmp_path, "systems:\n- {name: a, url: 'http://x', api_key: k0123456789}\n", "good.yml"
    )
    bad = write(
        tmp_path, "systems:\n- {name: a, url: 'http://x', api_key: k, interval: 5x}\n", "bad.yml"
    )
    ok, broken = run_check(good), run_check(bad)
    assert ok.returncode == 0, ok.stderr
    assert "OK" in ok.stdout
    assert broken.returncode == 1
    assert "systems[0].interval" in broken.stderr and str(bad) in broken.stderr


def test_cdr_and_admin_sections(tmp_path):
    (tmp_path / "token").write_text("a-long-admin-token-0123456789\n")
    text = (
        "systems:\n- {name: a, url: 'http://x', api_key: k, cdr: {enabled: true, interval: 1m}}\n"
        "admin:\n  rate_limit: 30\n  tokens:\n"
        "  - {name: oncall, token_file: token, scopes: [read, edit], systems: [a], tenants: ['2']}\n"
    )
    config = load_config(write(tmp_path, text))
    cdr = config.systems[0].cdr
    assert (cdr.enabled, cdr.interval, cdr.overlap, cdr.backfill, cdr.page_size) == (
        True,
        60.0,
        120.0,
        0.0,
        1000,
    )
    (token,) = config.admin.tokens
    assert token.sha256 == hashlib.sha256(b"a-long-admin-token-0123456789").hexdigest()
    assert token.scopes == {"read", "edit"} and token.systems == ("a",) and token.tenants == ("2",)
    assert config.admin.rate_limit == 30
    assert "a-long-admin-token" not in repr(config)


def test_the_example_config_is_valid(tmp_path, monkeypatch):
    """config.example.yml is documentation; it must also load (with its secrets supplied)."""
    example = (Path(__file__).parent.parent / "config.example.yml").read_text()
    key_file = tmp_path / "eu1"
    key_file.write_text("example-key-0123456789\n")
    monkeypatch.setenv("US1_API_KEY", "example-key-9876543210")
    config = load_config(write(tmp_path, example.replace("/run/secrets/eu1", str(key_file))))
    assert [s.name for s in config.systems] == ["eu1", "us1"]
    assert config.systems[0].collector("services").enabled
    assert config.systems[0].collector("archiving").interval == 900.0


def _problems(data: object) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data, source="c.yml")
    return info.value.problems


def test_every_problem_inside_a_section_is_reported_not_just_the_first():
    system = {"name": "a", "url": "http://x", "api_key": "k0123456789"}
    system["collectors"] = {"servces": {}, "calls": {"enabled": 1, "interval": "0s"}}
    system["cdr"] = {"page_size": 0, "timezone": 5}
    problems = _problems({"systems": [system]})
    assert problems == [
        "systems[0].collectors.servces: unknown collector (allowed: archiving, calls, licensing,"
        " live_calls, monitor, services, sip_registrations, trunks)",
        "systems[0].collectors.calls.enabled: must be true or false, got 1",
        "systems[0].collectors.calls.interval: must be greater than 0",
        "systems[0].cdr.page_size: must be at least 1, got 0",
        "systems[0].cdr.timezone: must be a string, got int",
    ]


def test_problems_are_listed_in_the_order_of_the_file():
    problems = _problems(
        {
            "admin": {"rate_limit": "5"},
            "systems": [{"api_key": 5, "name": "A", "url": "ftp://x"}, "x"],
            "defaults": {"colour": 1},
        }
    )
    assert [p.split(":")[0] for p in problems] == [
        "admin.rate_limit",
        "systems[0].api_key",
        "systems[0].name",
        "systems[0].url",
        "systems[1]",
        "defaults.colour",
    ]


@pytest.mark.parametrize("key", ["systems", "tenants", "pairs"])
def test_an_empty_token_restriction_is_refused_not_read_as_everything(key):
    data = {
        "systems": [{"name": "a", "url": "http://x", "api_key": "k0123456789"}],
        "admin": {"tokens": [{"name": "ops", "sha256": "a" * 64, key: None}]},
    }
    assert _problems(data) == [f"admin.tokens[0].{key}: must be a list"]


@pytest.mark.parametrize("key", [123456789012345, {"k": "s3cr3t-in-a-map"}, ["s3cr3t-in-a-list"]])
def test_a_malformed_api_key_is_not_quoted(key):
    data = {"systems": [{"name": "a", "url": "http://x", "api_key": key}]}
    (problem,) = _problems(data)
    assert problem.startswith("systems[0].api_key: must be a string, got ")
    assert "s3cr3t" not in problem and "123456789012345" not in problem


def test_an_unknown_section_left_empty_is_still_unknown():
    data = {"sytems": None, "systems": [{"name": "a", "url": "http://x", "api_key": "k"}]}
    assert _problems(data) == ["sytems: unknown key (allowed: admin, defaults, systems)"]
    # Known sections left empty: the default, or missing.
    assert _problems({"defaults": None, "admin": None, "systems": None}) == [
        "systems: missing (at least one PBXware system to poll)"
    ]


def test_a_url_with_a_key_in_its_query_is_refused_without_quoting_it():
    """Whatever else is wrong with it, a URL carrying the key is not quoted back."""
    data = {"systems": [{"name": "a", "url": "ftp://x/index.php?apikey=s3cr3t", "api_key": "k"}]}
    (problem,) = _problems(data)
    assert problem.startswith("systems[0].url: must not carry a query string")
    assert "s3cr3t" not in problem
