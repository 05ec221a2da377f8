"""Checks of alerts/pbxware.rules.yml (generated from mixin/), its promtool unit tests, runbooks
and example configs.

Runs the real promtool/amtool (tests.tools.require_tool) and lints the rules in Python:
naming, severities, annotations, runbook anchors, the job selector, metric names against
docs/metrics.md, and that every alert has a firing and a non-firing unit test case.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.tools import require_tool

ROOT = Path(__file__).resolve().parent.parent
ALERTS_DIR = ROOT / "alerts"
RULES_FILE = ALERTS_DIR / "pbxware.rules.yml"
RULES_TEST_FILE = ALERTS_DIR / "pbxware.rules.test.yml"
# The alerts that compare with last week need a week of series: their own file with a coarser
# evaluation interval (see its header).
RULES_WEEK_TEST_FILE = ALERTS_DIR / "pbxware.rules.week.test.yml"
RULES_TEST_FILES = (RULES_TEST_FILE, RULES_WEEK_TEST_FILE)
RUNBOOKS_FILE = ALERTS_DIR / "runbooks.md"
ALERTS_README = ALERTS_DIR / "README.md"
METRICS_DOC = ROOT / "docs" / "metrics.md"
PROMETHEUS_EXAMPLE = ROOT / "prometheus.example.yml"
ALERTMANAGER_EXAMPLE = ROOT / "alertmanager.example.yml"

RUNBOOK_BASE = "https://github.com/pbxware-exporter/pbxware-exporter/blob/main/alerts/runbooks.md#"
JOB_SELECTOR = 'job="pbxware"'
SEVERITIES = {"warning", "critical"}

# ---------------------------------------------------------------------------- PromQL helpers
# A small lexer, enough to find the metric names in our own expressions (not a full parser;
# promtool checks the syntax).

_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_OFFSET = re.compile(r"\boffset\s+-?[0-9a-zA-Z]+")
_IDENT = re.compile(r"(?<![0-9A-Za-z_.:])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?")
_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
    "and",
    "or",
    "unless",
    "inf",
    "nan",
    "atan2",
}


def metric_names(expr: str) -> set[str]:
    """Metric names used as vector selectors in a PromQL expression."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = _OFFSET.sub(" ", text)
    names = set()
    for match in _IDENT.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


# Series that exist only when the PBX's CDRs carry the column they come from (MOS: the
# "extended" header profile). The e2e stack's simulator writes the current 12-column header,
# so the panels of these may be empty there; promtool tests feed them as input series.
COLUMN_DEPENDENT_METRICS = {
    "pbxware_cdr_call_mos_bucket",
    "pbxware_cdr_call_mos_sum",
    "pbxware_cdr_call_mos_count",
}


def documented_metrics() -> set[str]:
    """Metric names in the tables of docs/metrics.md (first column, in backticks); a
    histogram's name stands for its _bucket, _sum and _count series."""
    text = METRICS_DOC.read_text()
    rows = re.findall(r"^\|\s*`([a-z_:][a-z0-9_:]*)`\s*\|\s*([a-z]*)", text, flags=re.MULTILINE)
    names = {name for name, _ in rows}
    for name, kind in rows:
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return names


def load_rules(path: Path = RULES_FILE) -> list[dict[str, Any]]:
    doc = yaml.safe_load(path.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def recording_rule_names(path: Path = RULES_FILE) -> set[str]:
    return {rule["record"] for rule in load_rules(path) if "record" in rule}


# Series Prometheus itself records per scrape target (job, instance; no system label).
SCRAPE_METRICS = {
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
}


def known_metric_names() -> set[str]:
    """What an expression may select: documented metrics, our recording rules, and the series
    Prometheus records per target (`up`, `scrape_*`)."""
    return documented_metrics() | recording_rule_names() | SCRAPE_METRICS


def selectors_without_job(expr: str, raw_metrics: set[str]) -> list[str]:
    """Selectors of raw (scraped) metrics in expr that do not carry the job selector."""
    bad = []
    for name in sorted(metric_names(expr) & raw_metrics):
        pattern = re.compile(
            rf"(?<![A-Za-z0-9_:]){re.escape(name)}(?![A-Za-z0-9_:])(\s*\{{[^}}]*\}})?"
        )
        for match in pattern.finditer(expr):
            matchers = match.group(1) or ""
            if JOB_SELECTOR not in matchers.replace(" ", ""):
                bad.append(match.group(0).strip())
    return bad


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub generates for the headings of a markdown document."""
    anchors: set[str] = set()
    seen: Counter[str] = Counter()
    in_code = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
            continue
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if in_code or not match:
            continue
        slug = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower()).replace(" ", "-")
        anchors.add(slug if not seen[slug] else f"{slug}-{seen[slug]}")
        seen[slug] += 1
    return anchors


def missing_test_cases(
    rules: list[dict[str, Any]], test_doc: dict[str, Any]
) -> list[tuple[str, str, str]]:
    """(alertname, severity, "firing"|"non-firing") for every rule lacking such a unit test.

    A case fires for a rule when an alert_rule_test of that alertname expects an alert with the
    rule's severity; it is non-firing for the rule when it expects none with that severity.
    """
    firing: set[tuple[str, str]] = set()
    quiet: set[tuple[str, str]] = set()
    wanted = {(r["alert"], r.get("labels", {}).get("severity", "")) for r in rules if "alert" in r}
    for test in test_doc.get("tests") or []:
        for case in test.get("alert_rule_test") or []:
            expected = {
                (a.get("exp_labels") or {}).get("severity") for a in case.get("exp_alerts") or []
            }
            for name, severity in wanted:
                if case.get("alertname") != name:
                    continue
                (firing if severity in expected else quiet).add((name, severity))
    missing = []
    for name, severity in sorted(wanted):
        if (name, severity) not in firing:
            missing.append((name, severity, "firing"))
        if (name, severity) not in quiet:
            missing.append((name, severity, "non-firing"))
    return missing


def run(cmd: list[str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


# ---------------------------------------------------------------------------- fixtures
ALERT_RULES = [rule for rule in load_rules() if "alert" in rule]
RECORDING_RULES = [rule for rule in load_rules() if "record" in rule]


def _rule_id(rule: dict[str, Any]) -> str:
    if "alert" in rule:
        return f"{rule['alert']}-{rule.get('labels', {}).get('severity', '?')}"
    return rule["record"]


# ---------------------------------------------------------------------------- promtool/amtool
@pytest.mark.tools
def test_promtool_check_rules() -> None:
    promtool = require_tool("promtool")
    result = run([promtool, "check", "rules", str(RULES_FILE)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.slow
@pytest.mark.tools
@pytest.mark.parametrize("path", RULES_TEST_FILES, ids=lambda p: p.name)
def test_promtool_unit_tests_pass(path: Path) -> None:
    promtool = require_tool("promtool")
    result = run([promtool, "test", "rules", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


@pytest.mark.tools
def test_promtool_unit_tests_can_fail(tmp_path: Path) -> None:
    """The unit tests compare annotations exactly: a changed expectation is caught.

    Only the test group holding the changed expectation is run (the whole file runs in the
    test above; its long archiving case alone takes seconds)."""
    promtool = require_tool("promtool")
    shutil.copy(RULES_FILE, tmp_path / RULES_FILE.name)
    original = yaml.safe_load(RULES_TEST_FILE.read_text())
    broken = yaml.safe_load(
        RULES_TEST_FILE.read_text().replace(
            "50% of the pbxware.ext.list requests", "51% of the pbxware.ext.list requests"
        )
    )
    changed = [t for t, o in zip(broken["tests"], original["tests"], strict=True) if t != o]
    assert [t["name"] for t in changed] == ["poll errors high"]
    broken["tests"] = changed
    (tmp_path / RULES_TEST_FILE.name).write_text(yaml.safe_dump(broken, sort_keys=False))
    result = run([promtool, "test", "rules", str(tmp_path / RULES_TEST_FILE.name)])
    assert result.returncode != 0
    assert "PbxwarePollErrorsHigh" in result.stdout + result.stderr


@pytest.mark.tools
def test_prometheus_example_config() -> None:
    promtool = require_tool("promtool")
    result = run([promtool, "check", "config", str(PROMETHEUS_EXAMPLE)])
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load(PROMETHEUS_EXAMPLE.read_text())
    assert config["rule_files"] == ["alerts/pbxware.rules.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert "pbxware" in jobs
    targets = [t for sc in jobs["pbxware"]["static_configs"] for t in sc["targets"]]
    assert targets == ["127.0.0.1:9865"]
    am_targets = [
        t
        for am in config["alerting"]["alertmanagers"]
        for sc in am["static_configs"]
        for t in sc["targets"]
    ]
    assert am_targets == ["127.0.0.1:9093"]


@pytest.mark.tools
def test_alertmanager_example_config() -> None:
    amtool = require_tool("amtool")
    result = run([amtool, "check-config", str(ALERTMANAGER_EXAMPLE)])
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load(ALERTMANAGER_EXAMPLE.read_text())
    webhooks = [w for r in config["receivers"] for w in r.get("webhook_configs", [])]
    assert webhooks, "the example has no webhook receiver"


def test_inhibit_rules_name_existing_alerts() -> None:
    config = yaml.safe_load(ALERTMANAGER_EXAMPLE.read_text())
    names = {rule["alert"] for rule in ALERT_RULES}
    text = " ".join(
        m
        for rule in config.get("inhibit_rules", [])
        for key in ("source_matchers", "target_matchers")
        for m in rule.get(key, [])
    )
    used = set(re.findall(r"Pbxware[A-Za-z]+", text))
    assert used <= names, f"inhibit rules name unknown alerts: {sorted(used - names)}"


# ---------------------------------------------------------------------------- alert lint
def test_there_are_alerts_for_the_required_conditions() -> None:
    names = {rule["alert"] for rule in ALERT_RULES}
    required = {
        "PbxwareExporterDown",
        "PbxwareSystemDown",
        "PbxwarePollsStale",
        "PbxwarePollErrorsHigh",
        "PbxwareTenantDown",
        "PbxwareCpuHigh",
        "PbxwareMemoryHigh",
        "PbxwareDiskFillingUp",
        "PbxwareExtensionsOnlineDropped",
        "PbxwareAllExtensionsOffline",
        # health collectors
        "PbxwareServiceDown",
        "PbxwareSipRegistrationsFailing",
        "PbxwareLicenseNearlyExhausted",
        "PbxwareCallsNearChannelLimit",
        "PbxwareTrunkDisabled",
        "PbxwareArchivingFailed",
        "PbxwareArchivingRunsFailed",
        # monitoring gaps
        "PbxwareExporterAbsent",
        "PbxwareSystemMissing",
    }
    assert required <= names, sorted(required - names)
    # What customers feel pages (critical); call quality and the answer ratio are warnings.
    severity = {r["alert"]: r["labels"]["severity"] for r in ALERT_RULES}
    for name in (
        "PbxwareCallsFailing",
        "PbxwareCallsStopped",
        "PbxwareOutboundCallsUnusual",
        "PbxwareCallsAtChannelLimit",
        "PbxwareExporterAbsent",
        "PbxwareSystemMissing",
    ):
        assert severity.get(name) == "critical", name
    assert severity.get("PbxwareCallQualityLow") == "warning"
    assert severity.get("PbxwareCallAnswerRatioLow") == "warning"
    rules = {r["alert"]: r["expr"] for r in ALERT_RULES}
    assert 'absent(up{job="pbxware"})' in rules["PbxwareExporterAbsent"]
    # Against the tenant's own last week, per direction; not a fixed ratio of all directions.
    assert "offset 1w" in rules["PbxwareCallAnswerRatioLow"]
    assert "direction" in rules["PbxwareCallAnswerRatioLow"]
    assert "offset 1w" in rules["PbxwareOutboundCallsUnusual"]
    assert "pbxware_cdr_cost_total" in rules["PbxwareOutboundCallsUnusual"]
    assert "histogram_quantile(0.5, " in rules["PbxwareCallQualityLow"]
    disk = [r for r in ALERT_RULES if r["alert"] == "PbxwareDiskFillingUp"]
    assert {r["labels"]["severity"] for r in disk} == SEVERITIES
    assert all("predict_linear(pbxware_disk_usage_ratio" in r["expr"] for r in disk)
    # Asterisk and the database are critical, every other service a warning: the two rules
    # split the services with the same regex, once =~ and once !~.
    services = {
        r["labels"]["severity"]: r["expr"]
        for r in ALERT_RULES
        if r["alert"] == "PbxwareServiceDown"
    }
    assert set(services) == SEVERITIES
    critical = re.search(r'service=~"([^"]+)"', services["critical"])
    warning = re.search(r'service!~"([^"]+)"', services["warning"])
    assert critical and warning and critical.group(1) == warning.group(1)
    assert {"asterisk", "mysql"} <= set(critical.group(1).split("|"))
    # A licence or channel limit of 0 gives no ratio (no division by zero, no +Inf).
    recorded = {r["record"]: r["expr"] for r in RECORDING_RULES}
    assert "(pbxware_license_limit{" in recorded["pbxware:license_usage:ratio"]
    assert recorded["pbxware:license_usage:ratio"].rstrip().endswith("> 0)")
    assert 'resource="channels"} > 0)' in recorded["pbxware_system:calls_per_channel:ratio"]


@pytest.mark.parametrize("rule", ALERT_RULES, ids=_rule_id)
def test_alert_lint(rule: dict[str, Any]) -> None:
    anchors = github_anchors(RUNBOOKS_FILE.read_text())
    name = rule["alert"]
    labels = rule.get("labels") or {}
    annotations = rule.get("annotations") or {}
    assert name.startswith("Pbxware"), name
    assert re.fullmatch(r"Pbxware[A-Z][A-Za-z]+", name), name
    assert labels.get("severity") in SEVERITIES, labels
    summary = annotations.get("summary", "")
    assert summary.strip(), "summary is empty"
    assert "{{" not in summary, f"summary must be static: {summary!r}"
    assert "{{" in annotations.get("description", ""), "description must be templated"
    url = annotations.get("runbook_url", "")
    assert url.startswith(RUNBOOK_BASE), url
    anchor = url[len(RUNBOOK_BASE) :]
    assert anchor == name.lower(), f"runbook anchor {anchor!r} should be the alert's own section"
    assert anchor in anchors, f"no heading for #{anchor} in {RUNBOOKS_FILE.name}"


def test_alert_rules_are_unique() -> None:
    keys = Counter(_rule_id(rule) for rule in ALERT_RULES)
    assert [k for k, n in keys.items() if n > 1] == []


def test_every_alert_has_firing_and_non_firing_case() -> None:
    docs = [yaml.safe_load(path.read_text()) for path in RULES_TEST_FILES]
    assert all(doc["rule_files"] == [RULES_FILE.name] for doc in docs)
    merged = {"tests": [test for doc in docs for test in doc["tests"]]}
    assert missing_test_cases(ALERT_RULES, merged) == []


def test_missing_test_cases_detects_gaps() -> None:
    rules = [
        {"alert": "PbxwareA", "labels": {"severity": "warning"}},
        {"alert": "PbxwareB", "labels": {"severity": "warning"}},
        {"alert": "PbxwareB", "labels": {"severity": "critical"}},
    ]
    doc = {
        "tests": [
            {
                "alert_rule_test": [
                    {"alertname": "PbxwareA", "exp_alerts": []},
                    {
                        "alertname": "PbxwareB",
                        "exp_alerts": [{"exp_labels": {"severity": "warning"}}],
                    },
                ]
            }
        ]
    }
    assert missing_test_cases(rules, doc) == [
        ("PbxwareA", "warning", "firing"),
        ("PbxwareB", "critical", "firing"),
        ("PbxwareB", "warning", "non-firing"),
    ]


# ---------------------------------------------------------------------------- rule expressions
@pytest.mark.parametrize("rule", load_rules(), ids=_rule_id)
def test_rule_uses_known_metrics(rule: dict[str, Any]) -> None:
    unknown = metric_names(rule["expr"]) - known_metric_names()
    assert not unknown, f"not in docs/metrics.md nor a recording rule: {sorted(unknown)}"


@pytest.mark.parametrize("rule", load_rules(), ids=_rule_id)
def test_rule_selects_the_job(rule: dict[str, Any]) -> None:
    raw = documented_metrics() | {"up"}
    assert selectors_without_job(rule["expr"], raw) == []


def test_only_one_job_value_in_rules() -> None:
    values = set()
    for rule in load_rules():
        values |= set(re.findall(r"job\s*=~?\s*\"([^\"]*)\"", rule["expr"]))
    assert values == {"pbxware"}


def test_expression_helpers_catch_mistakes() -> None:
    expr = (
        'sum by (system) (rate(pbxware_poll_errors_total{job="pbxware"}[5m]))'
        " / on (system) group_left () pbxware_bogus_metric offset 5m"
        ' or label_replace(up, "x", "pbxware_in_string", "", "")'
    )
    assert metric_names(expr) == {"pbxware_poll_errors_total", "pbxware_bogus_metric", "up"}
    assert "pbxware_bogus_metric" not in known_metric_names()
    assert selectors_without_job(expr, {"pbxware_poll_errors_total", "up"}) == ["up"]


def test_recording_rule_names() -> None:
    names = [rule["record"] for rule in RECORDING_RULES]
    assert names, "no recording rules"
    assert len(names) == len(set(names))
    for name in names:
        assert re.fullmatch(r"pbxware(_tenant|_system)?:[a-z0-9_]+:[a-z0-9_]+", name), name
        # the exporter-health dashboard counts {__name__=~"pbxware_[a-z0-9_]+"}: not us
        assert not re.fullmatch(r"pbxware_[a-z0-9_]+", name), name
    assert "pbxware:extensions_online:ratio" in names
    assert "pbxware:poll_errors:rate5m" in names
    assert "pbxware_tenant:cdr_asr:ratio_rate1h" in names


# ---------------------------------------------------------------------------- runbooks
def _sections(markdown: str) -> dict[str, str]:
    parts = re.split(r"^## (.+)$", markdown, flags=re.MULTILINE)
    return {title.strip(): body for title, body in zip(parts[1::2], parts[2::2], strict=True)}


@pytest.mark.parametrize("name", sorted({r["alert"] for r in ALERT_RULES}))
def test_runbook_section(name: str) -> None:
    section = _sections(RUNBOOKS_FILE.read_text()).get(name)
    assert section is not None, f"alerts/runbooks.md has no '## {name}' section"
    assert "**What it means.**" in section
    assert "**Confirm.**" in section
    assert "```promql" in section, "a runbook section needs the PromQL that confirms it"
    assert re.search(r"\*\*What to do", section)


def test_runbooks_have_no_orphan_alert_sections() -> None:
    alert_sections = {t for t in _sections(RUNBOOKS_FILE.read_text()) if t.startswith("Pbxware")}
    assert alert_sections == {r["alert"] for r in ALERT_RULES}


def test_runbook_links_resolve() -> None:
    anchors = {
        "": github_anchors(RUNBOOKS_FILE.read_text()),
        "README.md": github_anchors(ALERTS_README.read_text()),
    }
    links = re.findall(r"\]\(((?:README\.md)?)#([^)]+)\)", RUNBOOKS_FILE.read_text())
    assert links
    broken = [f"{doc}#{anchor}" for doc, anchor in links if anchor not in anchors[doc]]
    assert broken == []


def test_runbook_promql_uses_known_metrics() -> None:
    blocks = re.findall(r"```promql\n(.*?)```", RUNBOOKS_FILE.read_text(), flags=re.DOTALL)
    assert blocks
    unknown = set().union(*(metric_names(b) for b in blocks)) - known_metric_names()
    assert not unknown, sorted(unknown)


# ---------------------------------------------------------------------------- admin API links
README = ROOT / "README.md"
EXPORTER_PLACEHOLDER = "https://pbxware-exporter.example:9865"
ADMIN_SECTION = "looking-at-an-extension-with-the-admin-api"
# Runbooks of alerts about a tenant (or its extensions) that must show the admin API.
TENANT_ALERTS = {
    "PbxwareTenantDown",
    "PbxwareExtensionsOnlineDropped",
    "PbxwareAllExtensionsOffline",
    "PbxwareSipRegistrationsFailing",
}


def admin_route_patterns(readme: str) -> list[re.Pattern[str]]:
    """The routes of README "Admin API" as regexes over a path: {system}, {tenant} and {ext}
    stand for one path segment, {service} for one of the services of its table."""
    section = readme.split("\n## Admin API\n", 1)[1].split("\n## ", 1)[0]
    base = re.search(r"under `(/admin/systems/[^`]+)`", section)
    assert base, "README Admin API: no base path in the routes table"
    suffixes = {""} | set(re.findall(r"^\| `(?:GET|PUT|POST) (/[^`]+)`", section, re.MULTILINE))
    services = set(re.findall(r"^\| `([a-z]+)` \|", section, re.MULTILINE))
    assert {"dnd", "callfwd", "extoperationtimes"} <= services, services
    patterns = []
    for suffix in sorted(suffixes):
        template = re.escape(base.group(1) + suffix)
        template = template.replace(
            re.escape("{service}"), "(?:" + "|".join(sorted(services)) + ")"
        )
        template = re.sub(r"\\\{[a-z]+\\\}", "[^/]+", template)
        patterns.append(re.compile(template))
    return patterns


def admin_paths(markdown: str) -> list[str]:
    """Admin API paths in a document: full ones, and "$A/…" ones of the curl examples, where
    A is the extension's path; query strings left off."""
    base = "/admin/systems/SYSTEM/tenants/TENANT/extensions/EXT"
    paths = re.findall(r"(/admin/systems/[^\s\"'`)?]+)", markdown)
    paths += [base + rest for rest in re.findall(r"\$A(/[^\s\"'`)?]*)", markdown)]
    return paths


def test_runbook_admin_urls_are_readme_routes() -> None:
    runbooks = RUNBOOKS_FILE.read_text()
    patterns = admin_route_patterns(README.read_text())
    paths = admin_paths(runbooks)
    assert len(paths) > 10
    unknown = sorted({p for p in paths if not any(pat.fullmatch(p) for pat in patterns)})
    assert unknown == [], "admin API paths that README 'Admin API' does not list"
    # Every full URL uses the EXPORTER placeholder, and the runbooks say it is one.
    hosts = set(re.findall(r"(https?://[^/\s\"'`]+)/admin/", runbooks))
    assert hosts == {EXPORTER_PLACEHOLDER}
    assert re.search(r"`EXPORTER`[^\n]*placeholder", runbooks)
    # PBXware has no edit for operation times: the runbooks never PUT it.
    assert not re.search(r"-X PUT \S*extoperationtimes", runbooks)
    # Bearer for JSON, Basic (the token as password) for the browser page.
    assert "Authorization: Bearer $T" in runbooks and '-u "oncall:$T"' in runbooks


def test_tenant_runbooks_show_the_admin_api() -> None:
    sections = _sections(RUNBOOKS_FILE.read_text())
    assert ADMIN_SECTION in github_anchors(RUNBOOKS_FILE.read_text())
    for name in sorted(TENANT_ALERTS):
        section = sections[name]
        assert f"(#{ADMIN_SECTION})" in section, name
        assert (
            f"{EXPORTER_PLACEHOLDER}/admin/systems/SYSTEM/tenants/TENANT/extensions/" in section
        ), name


def test_admin_helpers_catch_mistakes() -> None:
    patterns = admin_route_patterns(README.read_text())
    good = "/admin/systems/eu1/tenants/2/extensions/1001/services/dnd/state"
    assert any(p.fullmatch(good) for p in patterns)
    for bad in (
        "/admin/systems/eu1/tenants/2/extensions/1001/services/voicemail",
        "/admin/systems/eu1/tenants/2/extension/1001",
        "/admin/systems/eu1/extensions/1001",
    ):
        assert not any(p.fullmatch(bad) for p in patterns), bad
    assert admin_paths(
        'curl "$A/services/dnd?dry_run=1" x /admin/systems/a/tenants/b/extensions/c`'
    ) == [
        "/admin/systems/a/tenants/b/extensions/c",
        "/admin/systems/SYSTEM/tenants/TENANT/extensions/EXT/services/dnd",
    ]


@pytest.mark.tools
def test_runbook_promql_parses(tmp_path: Path) -> None:
    """Every ```promql block of the runbooks is valid PromQL (promtool parses it as a rule)."""
    promtool = require_tool("promtool")
    blocks = re.findall(r"```promql\n(.*?)```", RUNBOOKS_FILE.read_text(), flags=re.DOTALL)
    rules = [{"record": f"runbook:q{i}", "expr": b} for i, b in enumerate(blocks)]
    path = tmp_path / "runbook.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "runbook", "rules": rules}]}))
    result = run([promtool, "check", "rules", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(blocks)} rules found" in result.stdout


def test_github_anchors() -> None:
    doc = "# Title\n## PbxwareDiskFillingUp\n```\n## not a heading\n```\n## Poll error reasons\n## Title\n"
    assert github_anchors(doc) == {"title", "pbxwarediskfillingup", "poll-error-reasons", "title-1"}


# ---------------------------------------------------------------------------- inhibition
# alertmanager.example.yml on a real Alertmanager: the example's route and inhibit_rules
# verbatim, only the webhook URL (a receiver in this process) and the waits shortened.
# (alertname, system, tenant or "") → inhibited?
INHIBITION_CASES: list[tuple[dict[str, str], bool]] = [
    # pbx1 is down: the system alert and nothing else of pbx1
    ({"alertname": "PbxwareSystemDown", "system": "pbx1", "severity": "critical"}, False),
    ({"alertname": "PbxwarePollsStale", "system": "pbx1", "action": "pbxware.ext.list"}, True),
    (
        {
            "alertname": "PbxwarePollErrorsHigh",
            "system": "pbx1",
            "action": "pbxware.ext.list",
            "reason": "connect",
        },
        True,
    ),
    ({"alertname": "PbxwareTenantDown", "system": "pbx1", "tenant": "2"}, True),
    ({"alertname": "PbxwareCdrPollsStale", "system": "pbx1", "tenant": "2"}, True),
    ({"alertname": "PbxwareCdrPollsStale", "system": "pbx1", "tenant": "3"}, True),
    ({"alertname": "PbxwareArchivingFailed", "system": "pbx1", "tenant": "344"}, True),
    (
        {
            "alertname": "PbxwareCallsStopped",
            "system": "pbx1",
            "tenant": "2",
            "severity": "critical",
        },
        True,
    ),
    # pbx2: Asterisk down silences its tenants' call and phone alerts, not the rest
    (
        {
            "alertname": "PbxwareServiceDown",
            "system": "pbx2",
            "service": "asterisk",
            "severity": "critical",
        },
        False,
    ),
    (
        {
            "alertname": "PbxwareCallsFailing",
            "system": "pbx2",
            "tenant": "2",
            "direction": "outbound",
            "severity": "critical",
        },
        True,
    ),
    ({"alertname": "PbxwareAllExtensionsOffline", "system": "pbx2", "tenant": "2"}, True),
    ({"alertname": "PbxwareSipRegistrationsFailing", "system": "pbx2", "tenant": "3"}, True),
    ({"alertname": "PbxwareArchivingFailed", "system": "pbx2", "tenant": "344"}, False),
    ({"alertname": "PbxwareTrunkDisabled", "system": "pbx2", "trunk": "10"}, False),
    ({"alertname": "PbxwareServiceDown", "system": "pbx2", "service": "httpd"}, False),
    # pbx3: a tenant down silences its extensions' alerts, not another tenant's, not its calls
    ({"alertname": "PbxwareTenantDown", "system": "pbx3", "tenant": "5"}, False),
    ({"alertname": "PbxwareAllExtensionsOffline", "system": "pbx3", "tenant": "5"}, True),
    ({"alertname": "PbxwareExtensionsOnlineDropped", "system": "pbx3", "tenant": "5"}, True),
    ({"alertname": "PbxwareAllExtensionsOffline", "system": "pbx3", "tenant": "6"}, False),
    (
        {
            "alertname": "PbxwareCallsFailing",
            "system": "pbx3",
            "tenant": "5",
            "direction": "inbound",
            "severity": "critical",
        },
        False,
    ),
    # pbx4: the channel limit reached silences "near the limit"
    ({"alertname": "PbxwareCallsAtChannelLimit", "system": "pbx4", "severity": "critical"}, False),
    ({"alertname": "PbxwareCallsNearChannelLimit", "system": "pbx4"}, True),
]
SOURCES = {
    "PbxwareSystemDown",
    "PbxwareServiceDown",
    "PbxwareTenantDown",
    "PbxwareCallsAtChannelLimit",
}


def _case_labels(labels: dict[str, str]) -> dict[str, str]:
    return {"severity": "warning", "job": "pbxware", "instance": "exp:9865", **labels}


def _key(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in labels.items()))


@pytest.fixture
def alertmanager(tmp_path: Path) -> Any:
    from tests.e2e_support import Http, Process, WebhookReceiver, free_port, wait_until

    binary = require_tool("prometheus-alertmanager")
    webhook = WebhookReceiver()
    config = yaml.safe_load(ALERTMANAGER_EXAMPLE.read_text())
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = webhook.url
    config["route"].update(group_wait="1s", group_interval="1s")
    (tmp_path / "am.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    process = Process(
        "alertmanager",
        [
            binary,
            f"--config.file={tmp_path / 'am.yml'}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        tmp_path,
    )
    http = Http()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: http.status(f"{url}/-/ready") == 200,
            30,
            "Alertmanager /-/ready",
            diagnostics=process.tail,
            check=process.check_alive,
        )
        yield http, url, webhook, process
    finally:
        process.stop()
        webhook.stop()


@pytest.mark.tools
def test_example_inhibitions_on_a_real_alertmanager(alertmanager: Any) -> None:
    """During a system outage the webhook gets the system alert and nothing else of that
    system; Asterisk down silences its tenants' call and phone alerts; a tenant down its
    extensions' alerts; the channel limit reached the "near" warning. The inhibited alerts
    are in Alertmanager, marked suppressed by the source, and never reach the webhook."""
    from tests.e2e_support import wait_until

    http, url, webhook, process = alertmanager
    cases = [(_case_labels(labels), inhibited) for labels, inhibited in INHIBITION_CASES]
    sources = [labels for labels, _ in cases if labels["alertname"] in SOURCES and not _]
    targets = [labels for labels, _ in cases if labels not in sources]

    def post(alerts: list[dict[str, str]]) -> None:
        body = [
            {
                "labels": labels,
                "annotations": {"summary": "test"},
                "startsAt": "2020-01-01T00:00:00Z",
            }
            for labels in alerts
        ]
        status, answer = http.request("POST", f"{url}/api/v2/alerts", body)
        assert status == 200, answer

    def in_alertmanager() -> dict[tuple[tuple[str, str], ...], dict[str, Any]]:
        got = http.json("GET", f"{url}/api/v2/alerts")
        return {_key(a["labels"]): a for a in got}

    # The explaining alerts first, so that they fire before any alert they silence.
    post(sources)
    wait_until(
        lambda: all(_key(s) in in_alertmanager() for s in sources),
        30,
        "the source alerts in Alertmanager",
        check=process.check_alive,
    )
    post(targets)

    expected_inhibited = {_key(labels) for labels, inhibited in cases if inhibited}
    expected_sent = {_key(labels) for labels, inhibited in cases if not inhibited}

    def delivered() -> set[tuple[tuple[str, str], ...]]:
        return {
            _key(alert["labels"]) for payload in webhook.payloads() for alert in payload["alerts"]
        }

    def settled() -> bool:
        alerts = in_alertmanager()
        suppressed = {k for k, a in alerts.items() if a["status"]["inhibitedBy"]}
        return suppressed == expected_inhibited and expected_sent <= delivered()

    wait_until(
        settled,
        30,
        "every case delivered or suppressed",
        diagnostics=lambda: json.dumps(
            {
                "delivered": sorted(map(str, delivered())),
                "suppressed": sorted(
                    str(k) for k, a in in_alertmanager().items() if a["status"]["inhibitedBy"]
                ),
            },
            indent=1,
        ),
        check=process.check_alive,
    )
    # The sources keep firing (no endsAt), so a suppressed alert can never be sent later.
    assert delivered() == expected_sent
    by_system: dict[str, set[str]] = {}
    for key in delivered():
        labels = dict(key)
        by_system.setdefault(labels["system"], set()).add(labels["alertname"])
    assert by_system["pbx1"] == {"PbxwareSystemDown"}
