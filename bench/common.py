"""Shared helpers for the benchmark scripts: a simulator in its own process, free ports, and
what the figures were measured with.

The scripts are run as files (``python bench/render.py``): Python then puts bench/ first on
the import path, not the source tree, so ``exporter`` is the installed package, with the C
PHP decoder that ``pip install`` built. Child processes are started with ``-P`` for the
same reason (``python -m`` would put the working directory first).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from exporter.config import SystemConfig

KEY = "bench-key-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def simulator(*args: str) -> Iterator[str]:
    """Run the simulator in its own process (it must not share our CPU time slice)."""
    with simulator_process(*args) as (url, _pid):
        yield url


@contextmanager
def simulator_process(*args: str) -> Iterator[tuple[str, int]]:
    """``simulator()``, also giving the process id (for ``process_cpu_seconds``)."""
    port = free_port()
    env = {**os.environ, "PBXWARE_SIM_API_KEY": KEY}
    proc = subprocess.Popen(
        [sys.executable, "-P", "-m", "pbxware_simulator", "--listen", f"127.0.0.1:{port}", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{url}/_sim/stats", timeout=2).read()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("simulator did not start") from None
            time.sleep(0.2)
    try:
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(10)


def process_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) another process has used so far, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as stat:
        # Fields 14 and 15 (utime, stime), counted after the command name, which is in
        # parentheses and may hold spaces.
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_system(url: str, name: str = "bench", concurrency: int = 16) -> SystemConfig:
    """A system as the carrier-scale benches poll it: every collector, per-extension series
    without a cap, and intervals long enough that only the cycles a bench starts run. Every
    cycle asks for the extension lists too (the default asks every tenth): the figures are
    those of a full cycle."""
    return SystemConfig(
        name=name,
        url=url,
        api_key=KEY,
        interval=600.0,
        timeout=60.0,
        extension_list_interval=600.0,
        concurrency=concurrency,
        extension_metrics=True,
        extension_metrics_limit=10_000_000,
    )


def machine() -> str:
    import platform

    return f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def package() -> str:
    """Which exporter package the benchmark runs, and which PHP decoder it uses."""
    import exporter
    from exporter.pbxware import phpdecode

    where = Path(exporter.__file__).parent
    if phpdecode.c_loads is None:
        decoder = "Python (the C decoder is not built: pip install with gcc and Python.h)"
    else:
        decoder = f"C ({Path(sys.modules[phpdecode.c_loads.__module__].__file__ or '?').name})"
    return f"exporter {exporter.__version__} from {where}; PHP decoder: {decoder}"
