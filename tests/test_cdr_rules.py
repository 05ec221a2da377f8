"""rules/pbxware-cdr.rules.yml passes the real promtool: syntax, and its unit tests."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from tests.tools import require_tool

RULES = Path(__file__).resolve().parent.parent / "rules"
METRICS_DOC = Path(__file__).resolve().parent.parent / "docs" / "metrics.md"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_tool("promtool"), *args],
        cwd=RULES,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_promtool_check_rules():
    result = promtool("check", "rules", "pbxware-cdr.rules.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 8 rules found" in result.stdout


def test_promtool_test_rules():
    result = promtool("test", "rules", "pbxware-cdr.rules.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_read_only_documented_cdr_metrics_and_are_all_tested():
    rules = yaml.safe_load((RULES / "pbxware-cdr.rules.yml").read_text())["groups"]
    records = [r["record"] for g in rules for r in g["rules"]]
    documented = set(re.findall(r"^\| `(pbxware_cdr_[a-z_]+)` \|", METRICS_DOC.read_text(), re.M))
    for group in rules:
        for rule in group["rules"]:
            for name in re.findall(r"\b(pbxware_cdr_[a-z_]+)\b", rule["expr"]):
                assert name in documented, name
    tests = (RULES / "pbxware-cdr.rules.test.yml").read_text()
    for record in records:
        assert f"expr: {record}" in tests, f"{record} has no unit test"
