"""The README's demo command: a real process, the simulator in-process, real HTTP."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.metrics_util import parse_samples, series, value

# Runs `pbxware-exporter --demo` as a process.
pytestmark = pytest.mark.tools


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except OSError:
        return 0, ""


@pytest.mark.slow
def test_demo_serves_real_looking_metrics_and_stops_on_sigterm(tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_file = tmp_path / "demo.log"
    with (
        log_file.open("w") as stderr,
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "exporter",
                "--demo",
                "--web.listen-address",
                f"127.0.0.1:{port}",
            ],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        ) as proc,
    ):
        run_demo(proc, base)
    logs = log_file.read_text()
    assert "event=listening" in logs and "event=shutting_down" in logs


def run_demo(proc: subprocess.Popen[str], base: str) -> None:
    try:
        assert proc.stdout is not None
        banner = [proc.stdout.readline(), proc.stdout.readline()]
        assert f"{base}/metrics" in banner[1], banner
        # Wait on the daemon's own readiness signal, with a deadline.
        deadline = time.monotonic() + 30
        while get(f"{base}/-/ready")[0] != 200:
            assert proc.poll() is None, "the demo exited early"
            assert time.monotonic() < deadline, "demo never became ready"
            time.sleep(0.1)
        status, text = get(f"{base}/metrics")
        assert status == 200
        samples = parse_samples(text)
        assert value(samples, "pbxware_up", system="eu1") == 1
        assert value(samples, "pbxware_up", system="us1") == 1
        assert len(series(samples, "pbxware_tenant_info", system="eu1")) == 4
        assert series(samples, "pbxware_extension_online", system="us1")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
