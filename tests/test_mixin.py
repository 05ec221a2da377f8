"""The monitoring mixin (mixin/): the checked-in rules, dashboards and PrometheusRule are its
output, and its _config really configures them (selector, runbook URL, thresholds)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.test_alert_rules import documented_metrics, selectors_without_job

ROOT = Path(__file__).resolve().parent.parent
GEN = ROOT / "scripts" / "gen-mixin"


def _load_gen() -> Any:
    loader = importlib.machinery.SourceFileLoader("gen_mixin", str(GEN))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


gen = _load_gen()


def _configured(**config: object) -> dict[str, Any]:
    fields = ", ".join(f"{k}: {v!r}" for k, v in config.items())
    mixin: dict[str, Any] = gen.evaluate(
        f"(import 'mixin.libsonnet') + {{_config+:: {{{fields}}}}}"
    )
    return mixin


def _rules(mixin: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for g in gen.rule_groups(mixin) for r in g["rules"]]


def _check(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(root / "scripts" / "gen-mixin"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.tools
def test_checked_in_files_are_the_mixin_output() -> None:
    result = _check(ROOT)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("path", "edit"),
    [
        ("alerts/pbxware.rules.yml", lambda t: t.replace("for: 5m", "for: 6m", 1)),
        (
            "dashboards/pbxware-tenant.json",
            lambda t: t.replace('"editable": false', '"editable": true'),
        ),
        ("mixin/config.libsonnet", lambda t: t.replace("cpuHighRatio: 0.9", "cpuHighRatio: 0.8")),
        ("deploy/kubernetes/prometheusrule.yaml", lambda t: t + "# edited by hand\n"),
    ],
    ids=["rules edited", "dashboard edited", "mixin changed", "prometheusrule edited"],
)
@pytest.mark.tools
def test_check_fails_when_a_file_is_stale(tmp_path: Path, path: str, edit: Any) -> None:
    for part in ("mixin", "scripts", "alerts", "dashboards", "deploy/kubernetes"):
        shutil.copytree(ROOT / part, tmp_path / part)
    assert _check(tmp_path).returncode == 0
    target = tmp_path / path
    changed = edit(target.read_text())
    assert changed != target.read_text()
    target.write_text(changed)
    result = _check(tmp_path)
    assert result.returncode == 1
    assert "out of date" in result.stderr


def test_selector_is_configurable() -> None:
    mixin = _configured(pbxwareSelector='job="pbx-exporter"')
    raw = documented_metrics() | {"up"}
    for rule in _rules(mixin):
        assert 'job="pbxware"' not in rule["expr"], rule.get("alert") or rule.get("record")
        missing = selectors_without_job(
            rule["expr"].replace('job="pbx-exporter"', 'job="pbxware"'), raw
        )
        assert missing == [], rule.get("alert") or rule.get("record")
    text = yaml.safe_dump(mixin["dashboards"])
    assert 'label_values(pbxware_up{job="pbx-exporter"}, job)' in text
    assert 'job="pbxware"' not in text


def test_runbook_url_pattern_is_configurable() -> None:
    mixin = _configured(runbookURLPattern="https://wiki.example/pbx#%s")
    urls = {r["annotations"]["runbook_url"] for r in _rules(mixin) if "alert" in r}
    assert urls and all(u.startswith("https://wiki.example/pbx#pbxware") for u in urls)


@pytest.mark.slow
def test_thresholds_are_configurable() -> None:
    default = {r["alert"]: r for r in _rules(gen.evaluate()) if "alert" in r}
    changed = {r["alert"]: r for r in _rules(_configured(cpuHighRatio=0.75)) if "alert" in r}
    assert "> 0.9" in default["PbxwareCpuHigh"]["expr"]
    assert "> 0.75" in changed["PbxwareCpuHigh"]["expr"]
    assert "75%" in changed["PbxwareCpuHigh"]["annotations"]["description"]
