"""Logs: one structlog line per event, system/tenant bound, secrets scrubbed."""

from __future__ import annotations

import io
import json

import pytest
import structlog

from exporter.config import Config
from exporter.daemon import Daemon
from exporter.logs import configure_logging, scrubber
from tests.conftest import API_KEY, system_config


def test_scrubber_replaces_secrets_in_every_value_and_traceback():
    stream = io.StringIO()
    configure_logging("debug", "json", stream=stream)
    scrubber.set_secrets(["topsecret-123"])
    try:
        log = structlog.get_logger("t")
        log.info("event", url="http://pbx/?apikey=topsecret-123", n=3)
        try:
            raise RuntimeError("boom topsecret-123")
        except RuntimeError:
            log.exception("crash")
    finally:
        scrubber.set_secrets([])
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["url"] == "http://pbx/?apikey=<redacted>" and first["n"] == 3
    assert "topsecret" not in second["exception"] and "RuntimeError" in second["exception"]


def test_logfmt_keeps_a_traceback_on_one_line():
    stream = io.StringIO()
    configure_logging("info", "logfmt", stream=stream)
    try:
        raise ValueError("line one\nline two")
    except ValueError:
        structlog.get_logger("t").exception("crash", system="pbx1")
    out = stream.getvalue()
    assert out.count("\n") == 1, out
    assert "event=crash" in out and "system=pbx1" in out


async def test_poll_failures_are_logged_once_with_system_and_tenant(simulator, leak_guard):
    url, sim = await simulator(tenants=2, extensions_per_tenant=2)
    tid = sorted(sim.state("pbx1").tenants)[0]
    sim.set_fault("pbx1", "error", tenant=tid, action="pbxware.ext.list")
    configure_logging("info", "json", stream=leak_guard)
    # ext.list every cycle (extension_list_interval = interval): it fails, then recovers.
    daemon = Daemon(Config(systems=(system_config(url, extension_list_interval=60.0),)))
    try:
        for _ in range(3):
            await daemon.pollers["pbx1"].poll_once()
        sim.clear_faults()
        await daemon.pollers["pbx1"].poll_once()
    finally:
        await daemon.stop()
    events = [
        json.loads(line) for line in leak_guard.getvalue().splitlines() if line.startswith("{")
    ]
    failed = [e for e in events if e["event"] == "poll_failed"]
    recovered = [e for e in events if e["event"] == "poll_recovered"]
    assert len(failed) == 1, failed
    assert failed[0]["system"] == "pbx1" and failed[0]["tenant"] == tid
    assert failed[0]["reason"] == "api_error" and failed[0]["level"] == "warning"
    assert failed[0]["action"] == "pbxware.ext.list"
    assert failed[0]["failed_tenants"] == 1
    assert [e["action"] for e in recovered] == ["pbxware.ext.list"]
    assert all(e["system"] == "pbx1" for e in recovered)
    assert API_KEY not in leak_guard.getvalue()


# Characters that percent-encode, HTML-escape and JSON-escape; a space and a non-ASCII one.
ODD_KEYS = ("k3y/+=&%", "pä ss+wörd&<1>'\"\\")


@pytest.mark.parametrize("key", ODD_KEYS)
def test_the_scrubber_redacts_every_encoding_of_a_secret(key):
    """Issue 14.8: redaction knew only the literal key, so a percent-encoded one leaked."""
    from exporter.logs import SecretScrubber
    from tests.redaction_util import encodings, leaks

    scrubber = SecretScrubber()
    scrubber.set_secrets([key])
    for form in sorted(encodings(key)):
        text = f"GET /index.php?action=x&apikey={form}&apiformat=json said the PBX: {form}."
        scrubbed = scrubber.scrub(text)
        assert leaks(scrubbed, key) == [], (form, scrubbed)
        assert "action=x" in scrubbed and "apiformat=json" in scrubbed, scrubbed
        assert scrubbed.count("<redacted>") >= 1


def test_the_scrubber_redacts_a_cut_off_key_and_any_apikey_parameter():
    from exporter.logs import SecretScrubber

    scrubber = SecretScrubber()
    scrubber.set_secrets(["k3y/+=&%-0123456789abcdef"])
    # Error texts are cut to a length: the end of the message can hold part of the key.
    assert "k3y%2F%2B" not in scrubber.scrub("PBXware said 'bad request ?apikey=k3y%2F%2B'")
    assert "k3y/+=&" not in scrubber.scrub("PBXware said 'invalid key k3y/+=&'")
    # A key we do not know (an old one, after a reload) still goes with its parameter name.
    assert scrubber.scrub("GET /?action=a&apikey=0ld-k3y%2F&x=1") == (
        "GET /?action=a&apikey=<redacted>&x=1"
    )
    assert "0ld" not in scrubber.scrub("GET /?APIKEY%3D0ld-k3y")
    # Tokens in Authorization headers quoted back.
    assert "tok-abcdef123456" not in scrubber.scrub("Authorization: Bearer tok-abcdef123456")
    assert "dXNlcjpwYXNzd29yZA" not in scrubber.scrub(
        "'Authorization': 'Basic dXNlcjpwYXNzd29yZA=='"
    )
    # Ordinary text is left alone.
    assert scrubber.scrub("poll_failed action=pbxware.ext.list") == (
        "poll_failed action=pbxware.ext.list"
    )
