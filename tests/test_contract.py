"""Contract tests: every parser of the exporter on the answers in tests/fixtures/pbxware/.

Each fixture is one PBXware answer reconstructed from public evidence (SOURCES.md there
names the source of each). Every test runs on the JSON body and on the PHP serialize() body
the same data gives with ``apiformat=php``, through the exporter's own decoder.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from exporter import features as feat
from exporter.admin.services import SCHEMAS, validate
from exporter.features.cdr.calls import CallBook
from exporter.features.cdr.page import parse_page
from exporter.features.cdr.records import read_row
from exporter.pbxware.decode import decode_body
from exporter.pbxware.models import parse_count, parse_extensions, parse_tenants, parse_usage_ratio
from pbxware_simulator.api import encode

FIXTURES = Path(__file__).parent / "fixtures" / "pbxware"
FORMATS = ["json", "php"]


def answer(name: str, fmt: str) -> Any:
    """The fixture as the exporter decodes it from a body in ``fmt``."""
    action = name.split("/")[0]
    payload = json.loads((FIXTURES / name).read_text())
    return decode_body(action, encode(payload, fmt), fmt)


def _cdr(data: Any) -> list[Any]:
    page = parse_page(data, 1000)
    if page.columns is None:
        return []
    return [read_row(row, page.columns) for row in page.rows]


def _calls(data: Any) -> list[Any]:
    book, calls = CallBook(), []
    for row in _cdr(data):
        call = book.add(row)
        if call is not None:
            calls.append(call)
    return calls + book.close_before(2**40, 0)


# fixture → (parser, check of what it read)
CHECKS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], bool]]] = {
    "pbxware.tenant.list/pm-numbers.json": (
        parse_tenants, lambda t: [(x.id, x.code, x.name) for x in t] == [("2", "344", "t1.dot.com")],
    ),
    "pbxware.tenant.list/pdf-strings.json": (
        parse_tenants, lambda t: [x.name for x in t] == ["t1.dot.com", "t2.dot.com"],
    ),
    "pbxware.tenant.list/empty.json": (parse_tenants, lambda t: t == []),
    "pbxware.ext.list/sd-v1.json": (
        parse_extensions, lambda e: [(x.id, x.number, x.status) for x in e] == [("1", "530", "enabled")],
    ),
    "pbxware.ext.list/status-digits.json": (
        parse_extensions, lambda e: [x.status for x in e] == ["enabled", "disabled"],
    ),
    "pbxware.ext.list/array.json": (parse_extensions, lambda e: [x.id for x in e] == ["0"]),
    "pbxware.ext.list/empty.json": (parse_extensions, lambda e: e == ()),
    "pbxware.dashboard.ext_online/pm.json": (
        lambda d: parse_count("pbxware.dashboard.ext_online", d), lambda n: n == 42,
    ),
    "pbxware.dashboard.ext_online/string-count.json": (
        lambda d: parse_count("pbxware.dashboard.ext_online", d), lambda n: n == 42,
    ),
    "pbxware.dashboard.cpu/pm.json": (
        lambda d: parse_usage_ratio("pbxware.dashboard.cpu", d), lambda r: r == 0.37,
    ),
    "pbxware.dashboard.memory/percent.json": (
        lambda d: parse_usage_ratio("pbxware.dashboard.memory", d), lambda r: r == 0.375,
    ),
    "pbxware.dashboard.disk_usage/pm.json": (
        lambda d: parse_usage_ratio("pbxware.dashboard.disk_usage", d), lambda r: r == 0.34,
    ),
    "pbxware.dashboard.services/pm.json": (
        feat.services.parse, lambda s: s == {"asterisk": True, "mysql": True, "httpd": False},
    ),
    "pbxware.dashboard.services/empty.json": (feat.services.parse, lambda s: s == {}),
    "pbxware.dashboard.sip_registrations/pm.json": (
        feat.sip_registrations.parse, lambda r: (r.success, r.failed, r.lagged) == (40, 1, 0),
    ),
    "pbxware.dashboard.calls/pm.json": (
        feat.calls.parse, lambda c: (c.active, c.last_hour, c.today, c.answered_today) == (3, 57, 412, 350),
    ),
    "pbxware.dashboard.licensing/pm.json": (
        feat.licensing.parse_usage,
        lambda u: u.in_use["extensions"] == 120 and u.limit["conferences"] == 10 and not u.problems,
    ),
    "pbxware.license.info/sd-v1.json": (
        feat.licensing.parse_info,
        lambda i: i.edition == "Multi-Tenant" and i.limit["channels"] == 512 and len(i.limit) == 6,
    ),
    "pbxware.license.info/unlimited.json": (
        feat.licensing.parse_info,
        lambda i: i.limit["channels"] == float("inf") and "dids" not in i.limit and len(i.problems) == 1,
    ),
    "pbxware.trunk.list/sd-v1.json": (
        feat.trunks.parse, lambda t: [(x.id, x.enabled) for x in t] == [("10", True), ("11", False)],
    ),
    "pbxware.trunk.list/empty.json": (feat.trunks.parse, lambda t: tuple(t) == ()),
    "pbxware.monitor.list/pm.json": (
        feat.monitor.parse,
        lambda m: m.by_status == {"online": 1, "offline": 1} and (m.dnd, m.on_call) == (0, 1),
    ),
    "pbxware.monitor.list/array.json": (feat.monitor.parse, lambda m: m.dnd == 1),
    "pbxware.archiving.list/pm.json": (
        feat.archiving.parse,
        lambda r: [x.status for x in r] == ["success", "failure"]
        and r[0].timestamp == r[1].timestamp == 1711936800,
    ),
    "pbxware.archiving.list/empty.json": (feat.archiving.parse, lambda r: tuple(r) == ()),
    "pbxware.cdr.download/pm-12-columns.json": (
        _cdr,
        lambda rows: [(r.disposition, r.recorded, r.direction) for r in rows]
        == [("answered", True, "outbound"), ("no_answer", False, "inbound")],
    ),
    "pbxware.cdr.download/pm-2402-10-columns.json": (
        _cdr, lambda rows: rows[0].recorded is False and rows[0].duration == 65,
    ),
    "pbxware.cdr.download/ring-group-legs.json": (
        _calls,
        lambda calls: [(c.disposition, c.legs, c.duration, c.billable, c.mos) for c in calls]
        == [("answered", 3, 95, 87, 4.12)],
    ),
    "pbxware.cdr.download/no-tenant-column.json": (_cdr, lambda rows: rows[0].cost == 0.02),
    "pbxware.cdr.download/empty.json": (_cdr, lambda rows: rows == []),
}  # fmt: skip

ES_CONFIGURATIONS = sorted(
    str(p.relative_to(FIXTURES)) for p in FIXTURES.glob("pbxware.ext.es.*/*.json")
)


def test_every_fixture_is_checked_and_named_in_sources():
    files = {str(p.relative_to(FIXTURES)) for p in FIXTURES.glob("*/*") if p.is_file()}
    sources = (FIXTURES / "SOURCES.md").read_text()
    assert files == set(CHECKS) | set(ES_CONFIGURATIONS) | {
        "pbxware.monitor.live_calls/pm.json",
        "pbxware.monitor.live_calls/array.json",
        "pbxware.monitor.live_calls/no-calls.txt",
    }
    for name in files:
        assert f"`{name}`" in sources, f"{name} is not in SOURCES.md"


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", sorted(CHECKS))
def test_parsers_read_the_fixture(name, fmt):
    parse, check = CHECKS[name]
    assert check(parse(answer(name, fmt)))


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    ("name", "calls"),
    [("pm.json", 1), ("array.json", 2), ("no-calls.txt", 0)],
)
def test_live_calls_bodies(name, fmt, calls):
    path = FIXTURES / "pbxware.monitor.live_calls" / name
    body = path.read_bytes() if name.endswith(".txt") else encode(json.loads(path.read_text()), fmt)
    assert feat.live_calls.parse(body, fmt) == calls


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", ES_CONFIGURATIONS)
def test_every_enhanced_service_configuration_can_be_put_back(name, fmt):
    service = name.split("/")[0].split(".")[3]
    edit = validate(SCHEMAS[service], answer(name, fmt))
    assert edit.params  # something PBXware's .edit takes
