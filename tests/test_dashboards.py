"""Lint of the Grafana dashboards in dashboards/ (no Grafana server here: offline checks).

Structure (uids, ids, panels, grid, datasources, variables, links) is checked in Python; every
panel query, with the Grafana variables substituted, is parsed by the real promtool as a
recording rule (`promtool check rules`), the trick from docs in /work/shared/tooling.md §1.
The rules of grafana/dashboard-linter (a Go tool that cannot be built here) are implemented
below under their own names (test_dashboard_linter_rules), with the exclusions of
dashboards/.lint, the linter's own configuration file.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.test_alert_rules import (
    ALERT_RULES,
    RECORDING_RULES,
    SCRAPE_METRICS,
    known_metric_names,
    metric_names,
)
from tests.tools import require_tool

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD_DIR = ROOT / "dashboards"
METRICS_DOC = ROOT / "docs" / "metrics.md"
EXPECTED = {
    "pbxware-overview.json": "pbxware-overview",
    "pbxware-tenant.json": "pbxware-tenant",
    "pbxware-exporter.json": "pbxware-exporter",
}
DS_REF = {"type": "prometheus", "uid": "${datasource}"}
GRID_COLUMNS = 24

# Values for Grafana variables when a query is checked outside Grafana.
BUILTIN_VARS = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h"}
SAMPLE_VALUES = {"job": "pbxware", "system": "pbx1", "tenant": "2", "datasource": "prometheus"}
_VAR_REF = re.compile(r"\$\{(\w+)(?::[\w]+)?\}|\$(\w+)|\[\[(\w+)\]\]")


# ---------------------------------------------------------------------------- helpers
def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def all_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Panels, including those nested in collapsed rows."""
    out = []
    for panel in dashboard.get("panels", []):
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def targets(dashboard: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(p, t) for p in all_panels(dashboard) for t in p.get("targets", [])]


def variable_names(dashboard: dict[str, Any]) -> set[str]:
    return {v["name"] for v in dashboard.get("templating", {}).get("list", [])}


def variables_used(expr: str) -> set[str]:
    return {next(g for g in m.groups() if g) for m in _VAR_REF.finditer(expr)}


def substitute(expr: str) -> str:
    values = {**BUILTIN_VARS, **SAMPLE_VALUES}

    def repl(match: re.Match[str]) -> str:
        return values[next(g for g in match.groups() if g)]

    return _VAR_REF.sub(repl, expr)


def overlaps(panels: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Pairs of panel titles whose gridPos rectangles intersect."""
    boxes = [(p.get("title", "?"), p["gridPos"]) for p in panels if p.get("type") != "row"]
    found = []
    for i, (title_a, a) in enumerate(boxes):
        for title_b, b in boxes[i + 1 :]:
            if (
                a["x"] < b["x"] + b["w"]
                and b["x"] < a["x"] + a["w"]
                and a["y"] < b["y"] + b["h"]
                and b["y"] < a["y"] + a["h"]
            ):
                found.append((title_a, title_b))
    return found


def rate_problems(expr: str) -> list[str]:
    """rate()/increase()/irate() calls whose range is not [$__rate_interval]."""
    problems = []
    for match in re.finditer(r"\b(rate|irate|increase)\s*\(", expr):
        rest = expr[match.end() :]
        rng = re.search(r"\[([^\]]*)\]", rest)
        if rng is None or rng.group(1).strip() != "$__rate_interval":
            found = rng.group(0) if rng else "no range"
            problems.append(f"{match.group(1)}(... {found})")
    return problems


def datasource_problems(node: Any, path: str = "") -> list[str]:
    """Every "datasource" reference below node that is not the ${datasource} variable."""
    problems = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource" and value not in (DS_REF, "${datasource}", "$datasource"):
                problems.append(f"{path}.datasource = {value!r}")
            problems.extend(datasource_problems(value, f"{path}.{key}"))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            problems.extend(datasource_problems(value, f"{path}[{i}]"))
    return problems


def metrics_without_system_label(doc: str) -> set[str]:
    """Metrics whose labels column in docs/metrics.md has no `system`: the exporter's own
    (build info, config reloads, admin requests), which no system variable can filter."""
    rows = re.findall(r"^\|\s*`([a-z_:][a-z0-9_:]*)`\s*\|[^|]*\|([^|]*)\|", doc, flags=re.MULTILINE)
    assert rows, "no metric tables in docs/metrics.md"
    return {name for name, labels in rows if "system" not in re.findall(r"[a-z_]+", labels)}


def label_values_selector(query: str) -> str:
    """The selector of a label_values(selector, label) or query_result(expr) variable query."""
    match = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", query, flags=re.DOTALL)
    if match is None:
        match = re.fullmatch(r"\s*query_result\((.*)\)\s*", query, flags=re.DOTALL)
    assert match, f"not a label_values(selector, label) or query_result(expr) query: {query!r}"
    return match.group(1)


def grafana_series_text(labels: dict[str, str]) -> str:
    """A series as Grafana shows it to a query_result() variable's regex: the name and the
    labels in the order Prometheus returns them (sorted), values quoted."""
    name = labels.get("__name__", "")
    rest = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    return f"{name}{{{rest}}} 1 1700000000000"


def variable_options(var: dict[str, Any], series: list[dict[str, str]]) -> dict[str, str]:
    """value → text that Grafana offers for a query variable, given the label sets its query
    returns: label_values() gives the label's values; query_result() applies the variable's
    regex (a JavaScript regex: named groups `text` and `value`) to each series' text."""
    query = variable_query(var)
    label = re.fullmatch(r"\s*label_values\(.*,\s*(\w+)\s*\)\s*", query, flags=re.DOTALL)
    if label:
        values = {s[label.group(1)] for s in series if s.get(label.group(1))}
        return {v: v for v in values}
    pattern = re.compile(var["regex"].strip("/").replace("(?<", "(?P<"))
    options = {}
    for labels in series:
        match = pattern.search(grafana_series_text(labels))
        if match and match.group("value"):
            options[match.group("value")] = match.group("text") or match.group("value")
    return options


def variable_query(var: dict[str, Any]) -> str:
    query = var.get("query")
    if isinstance(query, dict):
        query = query.get("query")
    return query or var.get("definition", "")


def promtool_check(exprs: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    promtool = require_tool("promtool")
    rules = {
        "groups": [
            {
                "name": "dashcheck",
                "rules": [{"record": f"dashcheck:q{i}", "expr": e} for i, e in enumerate(exprs)],
            }
        ]
    }
    path = tmp_path / "dashcheck.rules.yml"
    path.write_text(yaml.safe_dump(rules, sort_keys=False))
    return subprocess.run(
        [promtool, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def dashboard_exprs(dashboard: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for _, t in targets(dashboard)]
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            exprs.append(label_values_selector(variable_query(var)))
    return exprs


DASHBOARDS = sorted(DASHBOARD_DIR.glob("*.json"))


@pytest.fixture(params=DASHBOARDS, ids=lambda p: p.name)
def dashboard(request: pytest.FixtureRequest) -> dict[str, Any]:
    return load(request.param)


# ---------------------------------------------------------------------------- the set of files
def test_expected_dashboards_exist() -> None:
    assert {p.name for p in DASHBOARDS} == set(EXPECTED)


def test_uids_are_stable_and_unique() -> None:
    uids = [load(p)["uid"] for p in DASHBOARDS]
    assert len(uids) == len(set(uids)), uids
    assert {p.name: load(p)["uid"] for p in DASHBOARDS} == EXPECTED


@pytest.mark.tools
def test_all_queries_parse_with_promtool(tmp_path: Path) -> None:
    exprs = [substitute(e) for p in DASHBOARDS for e in dashboard_exprs(load(p))]
    result = promtool_check(exprs, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout


@pytest.mark.tools
def test_promtool_check_rejects_a_broken_query(tmp_path: Path) -> None:
    result = promtool_check(['sum by (system (pbxware_up{system=~"pbx1"})'], tmp_path)
    assert result.returncode != 0


# ---------------------------------------------------------------------------- per dashboard
def test_provisioning_fields(dashboard: dict[str, Any]) -> None:
    assert "id" in dashboard and dashboard["id"] is None
    assert dashboard.get("title")
    assert dashboard.get("uid") and re.fullmatch(r"[a-z0-9-]{1,40}", dashboard["uid"])
    assert "pbxware" in dashboard.get("tags", [])
    assert "__inputs" not in dashboard, "provisioned dashboards use ${datasource}, not __inputs"


def test_panel_ids_unique(dashboard: dict[str, Any]) -> None:
    ids = [p.get("id") for p in all_panels(dashboard)]
    assert all(isinstance(i, int) for i in ids), ids
    assert len(ids) == len(set(ids)), ids


def test_panels_have_title_description_unit(dashboard: dict[str, Any]) -> None:
    problems = []
    for panel in all_panels(dashboard):
        if panel.get("type") == "row":
            if not panel.get("title", "").strip():
                problems.append(f"row {panel.get('id')}: no title")
            continue
        title = panel.get("title", "").strip()
        if not title:
            problems.append(f"panel {panel.get('id')}: no title")
        if not panel.get("description", "").strip():
            problems.append(f"{title}: no description")
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
        if not isinstance(unit, str) or not unit:
            problems.append(f"{title}: no fieldConfig.defaults.unit")
        if not panel.get("targets"):
            problems.append(f"{title}: no queries")
    assert problems == []


def test_grid_layout(dashboard: dict[str, Any]) -> None:
    problems = []
    for panel in all_panels(dashboard):
        pos = panel.get("gridPos", {})
        x, y, w, h = (pos.get(k) for k in ("x", "y", "w", "h"))
        if not all(isinstance(v, int) for v in (x, y, w, h)):
            problems.append(f"{panel.get('title')}: gridPos {pos}")
        elif x < 0 or y < 0 or w < 1 or h < 1 or x + w > GRID_COLUMNS:
            problems.append(f"{panel.get('title')}: gridPos {pos} outside the 24 columns")
    assert problems == []
    assert overlaps(all_panels(dashboard)) == []


def test_datasources_use_the_variable(dashboard: dict[str, Any]) -> None:
    variables = dashboard["templating"]["list"]
    ds_vars = [v for v in variables if v["name"] == "datasource"]
    assert len(ds_vars) == 1
    assert ds_vars[0]["type"] == "datasource"
    assert ds_vars[0]["query"] == "prometheus"
    others = [v for v in variables if v["name"] != "datasource"]
    assert datasource_problems(all_panels(dashboard), "panels") == []
    assert datasource_problems(others, "templating") == []
    for panel in all_panels(dashboard):
        if panel.get("type") != "row":
            assert panel.get("datasource") == DS_REF, panel.get("title")


def test_template_variables(dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert {"datasource", "job", "system"} <= set(variables)
    job = variables["job"]
    assert job["type"] == "query"
    assert variable_query(job) == 'label_values(pbxware_up{job="pbxware"}, job)'
    assert '{job=~"$job"}' in label_values_selector(variable_query(variables["system"]))
    system = variables["system"]
    assert system["type"] == "query"
    assert label_values_selector(variable_query(system)).startswith("pbxware_")
    assert variable_query(system).rstrip().endswith("system)")
    names = list(variables)
    assert names.index("datasource") < names.index("job") < names.index("system")
    if dashboard["uid"] != "pbxware-tenant":
        # A tenant picker over a thousand tenants belongs on the tenant dashboard only.
        assert "tenant" not in variables
        return
    # The tenant dashboard: one tenant at a time (never "All": its extension table would be
    # every extension of the system), picked by name, keyed by id.
    tenant = variables["tenant"]
    assert tenant["type"] == "query"
    assert not tenant.get("multi") and not tenant.get("includeAll")
    assert not system.get("multi") and not system.get("includeAll")
    assert "$system" in label_values_selector(variable_query(tenant)), (
        "tenant must depend on system"
    )
    assert variable_query(tenant).startswith("query_result(pbxware_tenant_info{")
    assert names.index("system") < names.index("tenant")
    info = {"__name__": "pbxware_tenant_info", "job": "pbxware", "instance": "e:9865"}
    offered = variable_options(
        tenant,
        [
            {**info, "system": "pbx1", "tenant": "2", "name": "acme.example.com", "code": "344"},
            {**info, "system": "pbx1", "tenant": "10", "name": "Zahnärzte Süd GmbH", "code": "345"},
            {**info, "system": "pbx1", "tenant": "11", "code": "346"},  # no name (tenants: [ids])
        ],
    )
    assert offered == {"2": "acme.example.com", "10": "Zahnärzte Süd GmbH", "11": "11"}


def test_queries_use_rate_interval(dashboard: dict[str, Any]) -> None:
    problems = [
        f"{panel['title']}: {p}"
        for panel, t in targets(dashboard)
        for p in rate_problems(t["expr"])
    ]
    assert problems == []


def test_queries_use_defined_variables(dashboard: dict[str, Any]) -> None:
    defined = variable_names(dashboard) | set(BUILTIN_VARS)
    undefined = {
        f"{panel['title']}: ${name}"
        for panel, t in targets(dashboard)
        for name in variables_used(t["expr"]) - defined
    }
    assert undefined == set()
    assert variable_names(dashboard) <= set(SAMPLE_VALUES), "give new variables a sample value"


def test_queries_use_known_metrics(dashboard: dict[str, Any]) -> None:
    known = known_metric_names()
    unknown = {
        f"{panel['title']}: {name}"
        for panel, t in targets(dashboard)
        for name in metric_names(substitute(t["expr"])) - known
    }
    assert unknown == set(), "not in docs/metrics.md, not a recording rule, not up"


def test_queries_filter_by_system(dashboard: dict[str, Any]) -> None:
    """Panels about PBX systems follow the system variable (series counts and metrics without
    a system label, such as build info, config reloads and admin requests, excepted)."""
    exempt = metrics_without_system_label(METRICS_DOC.read_text()) | SCRAPE_METRICS
    unfiltered = [
        panel["title"]
        for panel, t in targets(dashboard)
        if "$system" not in t["expr"]
        and not metric_names(substitute(t["expr"])) <= exempt
        and "__name__" not in t["expr"]
    ]
    assert unfiltered == []


def selectors_without_job_variable(expr: str) -> list[str]:
    """Selectors of the exporter's series (or recording rules) in expr without job=~"$job"."""
    bad = []
    text = re.sub(
        r'"(?:\\.|[^"\\])*"', lambda m: m.group(0).replace("{", "(").replace("}", ")"), expr
    )
    for match in re.finditer(
        r"(?<![A-Za-z0-9_:])(pbxware[a-z_]*:?[a-z0-9_:]*|up)?\s*(\{[^}]*\})?", text
    ):
        name, matchers = match.group(1), match.group(2)
        if not name and not matchers:
            continue
        if name and re.match(r"\s*\(", text[match.end(1) :]):
            continue  # a function, not a metric
        if 'job=~"$job"' not in (matchers or ""):
            bad.append(match.group(0).strip())
    return bad


def test_queries_filter_by_job(dashboard: dict[str, Any]) -> None:
    """Every selector follows the job variable: two exporter jobs in one Prometheus (a staging
    and a production one) never mix on a panel."""
    problems = {
        f"{panel['title']}: {sel}"
        for panel, t in targets(dashboard)
        for sel in selectors_without_job_variable(t["expr"])
    }
    assert problems == set()


# ---------------------------------------------------------------------------- 1,000 tenants
def selectors_without_metric_name(expr: str) -> list[str]:
    """Selectors that name no metric ({__name__=~"…"} and the like): Prometheus has to look at
    every series of the job to answer them."""
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)
    return re.findall(r"(?<![A-Za-z0-9_:\s])\s*(\{[^}]*\})", " " + text)


def test_no_query_touches_every_series(dashboard: dict[str, Any]) -> None:
    problems = [
        f"{panel['title']}: {sel}"
        for panel, t in targets(dashboard)
        for sel in selectors_without_metric_name(t["expr"])
    ]
    assert problems == []


def test_provisioned_read_only(dashboard: dict[str, Any]) -> None:
    assert dashboard["editable"] is False


def test_data_age_only_for_core_actions() -> None:
    """Data age panels would sit at the CDR/archiving intervals (5m, 15m) in normal
    operation: only the core actions, which run every poll, are shown."""
    core = (
        "pbxware.tenant.list|pbxware.dashboard.cpu|pbxware.dashboard.memory|"
        "pbxware.dashboard.disk_usage|pbxware.ext.list|pbxware.dashboard.ext_online"
    )
    overview = load(DASHBOARD_DIR / "pbxware-overview.json")
    ages = [
        t["expr"]
        for panel, t in targets(overview)
        if panel["title"] == "Data age" and "last_poll_success" in t["expr"]
    ]
    assert len(ages) == 2
    assert all(f'action=~"{core}"' in e for e in ages)


def test_overview_has_a_calls_row_linking_to_tenants() -> None:
    overview = load(DASHBOARD_DIR / "pbxware-overview.json")
    panels = overview["panels"]
    rows = [p for p in panels if p.get("type") == "row"]
    assert [r["title"] for r in rows] == ["Calls"]
    row = rows[0]
    # The row's panels: those below it (in the same row band) up to the next row or the end.
    below = [p for p in panels if p["gridPos"]["y"] > row["gridPos"]["y"] and p is not row]
    first_other = min(
        (p["gridPos"]["y"] for p in below if not p.get("links") and not _row_link(p)),
        default=10**6,
    )
    calls = [p for p in below if p["gridPos"]["y"] < first_other]
    titles = {p["title"] for p in calls}
    assert {
        "Calls per hour",
        "ASR",
        "ACD",
        "Failed calls",
        "Outbound minutes per hour",
        "Active calls",
        "Top 10 tenants by failed calls",
        "Top 10 tenants by failed SIP registrations",
    } <= titles, titles
    for panel in calls:
        links = [link["url"] for link in panel.get("links", [])] + _row_link(panel)
        assert any("/d/pbxware-tenant/" in url for url in links), panel["title"]
    top = next(p for p in calls if p["title"] == "Top 10 tenants by failed calls")
    assert top["targets"][0]["expr"].startswith("topk(10, ")
    assert "pbxware_tenant_info" in top["targets"][0]["expr"], "rows show the tenant's name"


def _row_link(panel: dict[str, Any]) -> list[str]:
    """Data links of a panel's fields (tables link each row to its tenant)."""
    return [
        link["url"] for link in panel.get("fieldConfig", {}).get("defaults", {}).get("links", [])
    ]


def test_every_recording_rule_is_used() -> None:
    """Each recording rule feeds a panel or an alert, directly or through another rule that
    does: no rule costs evaluations for nothing."""
    recorded = {r["record"]: r["expr"] for r in RECORDING_RULES}
    used = set()
    for path in DASHBOARDS:
        used |= {n for _, t in targets(load(path)) for n in metric_names(substitute(t["expr"]))}
    for rule in ALERT_RULES:
        used |= metric_names(rule["expr"])
    frontier = used & set(recorded)
    while frontier:
        name = frontier.pop()
        new = metric_names(recorded[name]) & set(recorded) - used
        used |= new
        frontier |= new
    assert sorted(set(recorded) - used) == []


# ---------------------------------------------------------------------------- dashboard-linter
# The rules of github.com/grafana/dashboard-linter (lint/rule_*.go, the default RuleSet plus
# uneditable-dashboard-rule), by the linter's rule names. target-promql-rule is
# test_all_queries_parse_with_promtool above (the real PromQL parser).
LINT_FILE = DASHBOARD_DIR / ".lint"
LINTER_RULES = (
    "template-datasource-rule",
    "template-job-rule",
    "template-instance-rule",
    "template-label-promql-rule",
    "template-on-time-change-reload",
    "panel-datasource-rule",
    "panel-title-description-rule",
    "panel-units-rule",
    "panel-no-targets-rule",
    "target-rate-interval-rule",
    "target-job-rule",
    "target-instance-rule",
    "target-counter-agg-rule",
    "uneditable-dashboard-rule",
)
# panel-units-rule: the units Grafana knows (the linter's list).
VALID_UNITS = set(
    """none string short percent percentunit humidity dB hex0x hex sci locale pixel accMS2 accFS2
    accG degree radian grad arcmin arcsec areaM2 areaF2 areaMI2 flops mflops gflops tflops pflops
    eflops zflops yflops ppm conppb conngm3 conngNm3 conμgm3 conμgNm3 conmgm3 conmgNm3 congm3
    congNm3 conmgdL conmmolL currencyUSD currencyGBP currencyEUR currencyJPY currencyRUB
    currencyUAH currencyBRL currencyDKK currencyISK currencyNOK currencySEK currencyCZK
    currencyCHF currencyPLN currencyBTC currencymBTC currencyμBTC currencyZAR currencyINR
    currencyKRW currencyIDR currencyPHP currencyVND bytes decbytes bits decbits kbytes deckbytes
    mbytes decmbytes gbytes decgbytes tbytes dectbytes pbytes decpbytes pps binBps Bps binbps bps
    KiBs Kibits KBs Kbits MiBs Mibits MBs Mbits GiBs Gibits GBs Gbits TiBs Tibits TBs Tbits PiBs
    Pibits PBs Pbits dateTimeAsIso dateTimeAsIsoNoDateIfToday dateTimeAsUS
    dateTimeAsUSNoDateIfToday dateTimeAsLocal dateTimeAsLocalNoDateIfToday dateTimeAsSystem
    dateTimeFromNow watt kwatt megwatt gwatt mwatt Wm2 voltamp kvoltamp voltampreact
    kvoltampreact watth watthperkg kwatth kwattm amph kamph mamph joule ev amp kamp mamp volt
    kvolt mvolt dBm ohm kohm Mohm farad µfarad nfarad pfarad ffarad henry mhenry µhenry lumens
    flowgpm flowcms flowcfs flowcfm litreh flowlpm flowmlpm lux forceNm forcekNm forceN forcekN
    Hs KHs MHs GHs THs PHs EHs massmg massg masslb masskg masst lengthmm lengthin lengthft lengthm
    lengthkm lengthmi pressurembar pressurebar pressurekbar pressurepa pressurehpa pressurekpa
    pressurehg pressurepsi radbq radci radgy radrad radsv radmsv radusv radrem radexpckg radr
    radsvh radmsvh radusvh rotrpm rothz rotrads rotdegs celsius fahrenheit kelvin hertz ns µs ms
    s m h d dtdurationms dtdurations dthms dtdhms timeticks clockms clocks cps ops reqps rps wps
    iops cpm opm rpm wpm velocityms velocitykmh velocitymph velocityknot mlitre litre m3 Nm3 dm3
    gallons bool bool_yes_no bool_on_off""".split()  # noqa: SIM905 - the linter's list, as it reads
)


def _template_rule(dashboard: dict[str, Any], name: str) -> list[str]:
    """checkTemplate() of the linter: a multi-select Prometheus query variable on
    $datasource, labelled like its name, with allValue '.+'."""
    var = next((v for v in dashboard["templating"]["list"] if v["name"] == name), None)
    if var is None:
        return [f"is missing the {name} template"]
    problems = []
    if var.get("datasource", {}).get("uid") not in ("$datasource", "${datasource}"):
        problems.append(f"{name} template should use datasource '$datasource'")
    if var.get("type") != "query":
        problems.append(f"{name} template should be a Prometheus query")
    if var.get("label") != name.title():
        problems.append(f"{name} template should be labeled '{name.title()}'")
    if not var.get("multi"):
        problems.append(f"{name} template should be a multi select")
    if var.get("allValue") != ".+":
        problems.append(f"{name} template allValue should be '.+'")
    return problems


def _strip_strings(expr: str) -> str:
    return re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)


def counter_agg_problems(expr: str) -> list[str]:
    """target-counter-agg-rule: a counter (name ending in _total) directly in rate(), irate()
    or increase() with a range."""
    text = _strip_strings(expr)
    problems = []
    for match in re.finditer(
        r"(?<![A-Za-z0-9_:])([a-zA-Z_:][a-zA-Z0-9_:]*_total)(\{[^}]*\})?", text
    ):
        before = text[: match.start()].rstrip()
        after = text[match.end() :].lstrip()
        if not (re.search(r"\b(rate|irate|increase)\s*\($", before) and after.startswith("[")):
            problems.append(match.group(1))
    return problems


def lint_dashboard(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(rule, message) for every violation of the linter's rules."""
    found: list[tuple[str, str]] = []
    variables = dashboard["templating"]["list"]
    ds_vars = [v for v in variables if v.get("type") == "datasource"]
    if not ds_vars:
        found.append(("template-datasource-rule", "no templated data source"))
    for var in ds_vars:
        query = str(var.get("query", ""))
        names = {f"{query.lower()}_datasource"} | ({"datasource"} if len(ds_vars) == 1 else set())
        labels = {f"{query.title()} data source"} | (
            {"Data source"} if len(ds_vars) == 1 else set()
        )
        if var["name"] not in names or var.get("label") not in labels:
            found.append(
                ("template-datasource-rule", f"{var['name']!r} labelled {var.get('label')!r}")
            )
    prometheus = any(v.get("query") == "prometheus" for v in ds_vars)
    if prometheus:
        found += [("template-job-rule", p) for p in _template_rule(dashboard, "job")]
        found += [("template-instance-rule", p) for p in _template_rule(dashboard, "instance")]
    for var in variables:
        if var.get("type") != "query":
            continue
        function = re.match(r"\s*([a-z_]+)\(", variable_query(var))
        if not function or function.group(1) not in (
            "label_names",
            "label_values",
            "metrics",
            "query_result",
        ):
            found.append(("template-label-promql-rule", f"{var['name']}: {variable_query(var)}"))
        if var.get("refresh") != 2:
            found.append(("template-on-time-change-reload", f"{var['name']}: {var.get('refresh')}"))
    if dashboard.get("editable"):
        found.append(("uneditable-dashboard-rule", "is editable"))
    for panel in all_panels(dashboard):
        title, kind = panel.get("title", ""), panel.get("type")
        if kind == "row":
            continue
        if kind in ("singlestat", "graph", "table", "timeseries"):
            uid = (panel.get("datasource") or {}).get("uid")
            if uid not in {f"${v['name']}" for v in ds_vars} | {
                f"${{{v['name']}}}" for v in ds_vars
            }:
                found.append(("panel-datasource-rule", f"{title}: {uid}"))
        if not title.strip() or not panel.get("description", "").strip():
            found.append(("panel-title-description-rule", f"panel {panel.get('id')} {title!r}"))
        if kind in ("stat", "singlestat", "graph", "table", "timeseries", "gauge"):
            unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "")
            if unit not in VALID_UNITS:
                found.append(("panel-units-rule", f"{title}: {unit!r}"))
            if not panel.get("targets"):
                found.append(("panel-no-targets-rule", title))
        for target in panel.get("targets", []):
            expr = target.get("expr", "")
            found += [("target-rate-interval-rule", f"{title}: {p}") for p in rate_problems(expr)]
            found += [
                ("target-job-rule", f"{title}: {p}") for p in selectors_without_job_variable(expr)
            ]
            if 'instance=~"$instance"' not in expr:
                found.append(("target-instance-rule", f"{title}: no instance matcher"))
            found += [
                ("target-counter-agg-rule", f"{title}: {p}") for p in counter_agg_problems(expr)
            ]
    return found


def lint_exclusions() -> dict[str, str]:
    """Rule → reason, from dashboards/.lint (exclusions of a whole rule, with a reason)."""
    config = yaml.safe_load(LINT_FILE.read_text()) or {}
    exclusions = config.get("exclusions") or {}
    for rule, entry in exclusions.items():
        assert rule in LINTER_RULES, f".lint excludes an unknown rule {rule!r}"
        assert (entry or {}).get("reason", "").strip(), f".lint: {rule} needs a reason"
        assert not (entry or {}).get("entries"), "only whole rules are excluded"
    return {rule: entry["reason"] for rule, entry in exclusions.items()}


def test_dashboard_linter_rules(dashboard: dict[str, Any]) -> None:
    excluded = lint_exclusions()
    problems = [(rule, msg) for rule, msg in lint_dashboard(dashboard) if rule not in excluded]
    assert problems == []


def test_dashboard_linter_rules_catch_mistakes() -> None:
    """Each rule fires on a dashboard that breaks it (so an exclusion is not hiding a dead rule)."""
    good = load(DASHBOARD_DIR / "pbxware-overview.json")
    assert {rule for rule, _ in lint_dashboard(good)} <= set(lint_exclusions())
    bad = json.loads(json.dumps(good))
    bad["editable"] = True
    job = next(v for v in bad["templating"]["list"] if v["name"] == "job")
    job["multi"] = False
    job["refresh"] = 1
    panel = next(p for p in bad["panels"] if p.get("type") == "timeseries")
    panel["description"] = ""
    panel["datasource"] = {"type": "prometheus", "uid": "abc"}
    panel["fieldConfig"]["defaults"]["unit"] = "calls"
    panel["targets"][0]["expr"] = (
        'pbxware_poll_errors_total{system=~"$system"} + rate(pbxware_poll_requests_total{job=~"$job"}[5m])'
    )
    stat = next(p for p in bad["panels"] if p.get("type") == "stat")
    stat["targets"] = []
    fired = {rule for rule, _ in lint_dashboard(bad)}
    assert fired == set(LINTER_RULES) - {
        "template-datasource-rule",
        "template-label-promql-rule",
    }
    bad["templating"]["list"][0]["label"] = "DS"
    job["query"] = {"query": "pbxware_up", "refId": "A"}
    fired = {rule for rule, _ in lint_dashboard(bad)}
    assert {"template-datasource-rule", "template-label-promql-rule"} <= fired


def test_links_reach_the_other_dashboards() -> None:
    boards = {load(p)["uid"]: load(p) for p in DASHBOARDS}
    for uid, board in boards.items():
        reachable = set()
        for link in board.get("links", []):
            if link.get("type") == "dashboards":
                tags = set(link.get("tags", []))
                reachable |= {u for u, b in boards.items() if tags <= set(b.get("tags", []))}
            reachable |= set(re.findall(r"/d/([A-Za-z0-9_-]+)", link.get("url", "")))
            assert link.get("keepTime") and link.get("includeVars"), f"{uid}: {link.get('title')}"
        assert set(boards) - {uid} <= reachable, f"{uid} does not link to every other dashboard"


# ---------------------------------------------------------------------------- the checkers fail
def test_checkers_catch_mistakes() -> None:
    a = {"title": "a", "gridPos": {"x": 0, "y": 0, "w": 12, "h": 8}}
    b = {"title": "b", "gridPos": {"x": 6, "y": 4, "w": 12, "h": 8}}
    c = {"title": "c", "gridPos": {"x": 12, "y": 0, "w": 12, "h": 8}}
    assert overlaps([a, b, c]) == [("a", "b"), ("b", "c")]
    assert overlaps([a, c]) == []
    assert rate_problems("rate(x[5m]) + increase(y[$__rate_interval])") == ["rate(... [5m])"]
    assert datasource_problems({"datasource": {"type": "prometheus", "uid": "abc"}}) != []
    assert variables_used('x{system=~"$system", t="${tenant:regex}"}[$__rate_interval]') == {
        "system",
        "tenant",
        "__rate_interval",
    }
    assert substitute('x{system=~"${system}"}[$__rate_interval]') == 'x{system=~"pbx1"}[5m]'
    with pytest.raises(KeyError):
        substitute('x{a=~"$unknown"}')
    assert selectors_without_job_variable(
        'sum(rate(pbxware_up{job=~"$job", system="a"}[5m])) / pbxware:x:y{system="{b}"} + up'
    ) == ['pbxware:x:y{system="(b)"}', "up"]
    assert selectors_without_job_variable('count by (i) ({__name__=~"pbxware_.+"})') == [
        '{__name__=~"pbxware_.+"}'
    ]
    assert selectors_without_metric_name(
        'count by (i) ({job=~"$job", __name__=~"x{y}"}) + up {a="{b}"} + rate({c="d"}[5m])'
    ) == ['{job=~"", __name__=~""}', '{c=""}']
    exempt = metrics_without_system_label(METRICS_DOC.read_text())
    assert {
        "pbxware_exporter_build_info",
        "pbxware_exporter_config_last_reload_successful",
        "pbxware_admin_requests_total",
    } <= exempt
    assert not {"pbxware_up", "pbxware_admin_edits_total", "pbxware_service_up"} & exempt
