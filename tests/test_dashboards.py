"""Lint of the Grafana dashboards in dashboards/ (no Grafana server here: offline checks).

Structure (uids, ids, panels, grid, datasources, variables, links) is checked in Python; every
panel query, with the Grafana variables substituted, is parsed by the real promtool as a
recording rule (`promtool check rules`), the trick from docs in /work/shared/tooling.md §1.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.test_alert_rules import known_metric_names, metric_names
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
SAMPLE_VALUES = {"system": "pbx1", "tenant": "2", "datasource": "prometheus"}
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
    match = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", query, flags=re.DOTALL)
    assert match, f"not a label_values(selector, label) query: {query!r}"
    return match.group(1)


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
        assert panel.get("datasource") == DS_REF, panel.get("title")


def test_template_variables(dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert {"datasource", "system", "tenant"} <= set(variables)
    system = variables["system"]
    assert system["type"] == "query"
    assert label_values_selector(variable_query(system)).startswith("pbxware_")
    assert variable_query(system).rstrip().endswith("system)")
    tenant = variables["tenant"]
    assert tenant["type"] == "query"
    assert "$system" in label_values_selector(variable_query(tenant)), (
        "tenant must depend on system"
    )
    assert variable_query(tenant).rstrip().endswith("tenant)")
    names = list(variables)
    assert names.index("datasource") < names.index("system") < names.index("tenant")


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
    exempt = metrics_without_system_label(METRICS_DOC.read_text())
    unfiltered = [
        panel["title"]
        for panel, t in targets(dashboard)
        if "$system" not in t["expr"]
        and not metric_names(substitute(t["expr"])) <= exempt
        and "__name__" not in t["expr"]
    ]
    assert unfiltered == []


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
    exempt = metrics_without_system_label(METRICS_DOC.read_text())
    assert {
        "pbxware_exporter_build_info",
        "pbxware_exporter_config_last_reload_successful",
        "pbxware_admin_requests_total",
    } <= exempt
    assert not {"pbxware_up", "pbxware_admin_edits_total", "pbxware_service_up"} & exempt
