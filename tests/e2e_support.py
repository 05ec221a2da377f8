"""Plumbing for tests/test_e2e.py: subprocesses on loopback ports, an HTTP client that keeps
every answer it read (for the API key and admin token leak checks), Prometheus' HTTP API, an
Alertmanager webhook receiver, and waiting on a condition with a deadline.

Synchronous on purpose: the servers under test are separate processes, and the module-scoped
fixtures of the e2e test would otherwise need a module-scoped event loop.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any, TypeVar

T = TypeVar("T")

POLL_SECONDS = 0.2


def free_port() -> int:
    """A free loopback port: bind port 0, read it back, release it for the process."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def poll_until(
    condition: Callable[[], T | None],
    timeout: float,
    check: Callable[[], None] | None = None,
) -> T | None:
    """The first truthy value of condition(), or None at the deadline.

    OSError (connection refused while a server starts, HTTP timeouts) counts as "not yet".
    ``check`` runs each round and may raise, e.g. when a process under test has died.
    """
    deadline = time.monotonic() + timeout
    while True:
        if check is not None:
            check()
        try:
            value = condition()
        except OSError:
            value = None
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(POLL_SECONDS)


def wait_until(
    condition: Callable[[], T | None],
    timeout: float,
    what: str,
    diagnostics: Callable[[], str] | None = None,
    check: Callable[[], None] | None = None,
) -> T:
    value = poll_until(condition, timeout, check)
    if value is None:
        detail = diagnostics() if diagnostics is not None else ""
        raise AssertionError(f"timed out after {timeout:g} s waiting for {what}\n{detail}")
    return value


# ---------------------------------------------------------------------------- processes
class Process:
    """A subprocess whose stdout and stderr go to files <log_dir>/<name>.{stdout,stderr}."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_dir: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.stdout_path = log_dir / f"{name}.stdout"
        self.stderr_path = log_dir / f"{name}.stderr"
        self._files: list[IO[bytes]] = [self.stdout_path.open("wb"), self.stderr_path.open("wb")]
        try:
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=self._files[0],
                stderr=self._files[1],
                env=dict(env) if env is not None else None,
                cwd=cwd,
            )
        except BaseException:
            self._close_files()
            raise

    @property
    def log_paths(self) -> tuple[Path, Path]:
        return self.stdout_path, self.stderr_path

    def tail(self, lines: int = 25) -> str:
        parts = []
        for path in self.log_paths:
            text = path.read_text(errors="replace") if path.exists() else ""
            last = "\n".join(text.splitlines()[-lines:])
            parts.append(f"--- {path.name} (last {lines} lines)\n{last}")
        return "\n".join(parts)

    def check_alive(self) -> None:
        code = self.popen.poll()
        if code is not None:
            raise AssertionError(f"{self.name} exited with code {code}\n{self.tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        try:
            if self.popen.poll() is None:
                self.popen.terminate()
                try:
                    self.popen.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self.popen.kill()
                    self.popen.wait(timeout=timeout)
        finally:
            self._close_files()

    def _close_files(self) -> None:
        for file in self._files:
            file.close()


# ---------------------------------------------------------------------------- HTTP
class Http:
    """urllib with a memory: ``answers`` holds every (url, status, body) read through it."""

    def __init__(self) -> None:
        self.answers: list[tuple[str, int, bytes]] = []
        self._lock = threading.Lock()

    def request(
        self,
        method: str,
        url: str,
        body: Any = None,
        timeout: float = 5.0,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, bytes]:
        data = None if body is None else json.dumps(body).encode()
        sent = {} if data is None else {"Content-Type": "application/json"}
        sent.update(headers or {})
        req = urllib.request.Request(url, data=data, method=method, headers=sent)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                status, payload = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            with exc:
                status, payload = exc.code, exc.read()
        with self._lock:
            self.answers.append((url, status, payload))
        return status, payload

    def get(
        self, url: str, timeout: float = 5.0, headers: Mapping[str, str] | None = None
    ) -> tuple[int, bytes]:
        return self.request("GET", url, timeout=timeout, headers=headers)

    def status(self, url: str) -> int:
        return self.get(url)[0]

    def json(self, method: str, url: str, body: Any = None) -> Any:
        status, payload = self.request(method, url, body)
        if status != 200:
            raise AssertionError(f"{method} {url}: HTTP {status}: {payload[:500]!r}")
        return json.loads(payload)


class PrometheusApi:
    def __init__(self, http: Http, base_url: str) -> None:
        self.http = http
        self.base_url = base_url

    def _call(self, path: str, params: Mapping[str, str]) -> Any:
        url = f"{self.base_url}{path}?{urllib.parse.urlencode(params)}"
        status, payload = self.http.get(url)
        answer = json.loads(payload) if payload else {}
        if status != 200 or answer.get("status") != "success":
            raise PromQueryError(f"HTTP {status}: {answer.get('error', payload[:300])}")
        return answer["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query at now: the result vector (a list of {metric, value})."""
        data = self._call("/api/v1/query", {"query": expr})
        result: list[dict[str, Any]] = data["result"] if data["resultType"] == "vector" else []
        return result

    def query_range(self, expr: str, seconds: float, step: float = 1.0) -> list[dict[str, Any]]:
        """Range query over the last ``seconds``, as a Grafana time series panel sends it."""
        end = time.time()
        params = {
            "query": expr,
            "start": f"{end - seconds:.3f}",
            "end": f"{end:.3f}",
            "step": f"{step:g}",
        }
        result: list[dict[str, Any]] = self._call("/api/v1/query_range", params)["result"]
        return result

    def alerts(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = self._call("/api/v1/alerts", {})["alerts"]
        return alerts


class PromQueryError(AssertionError):
    """Prometheus refused a query (bad PromQL, many-to-many matching …)."""


# ---------------------------------------------------------------------------- webhook
class WebhookReceiver:
    """Alertmanager's webhook target: a thread in the test process recording every POST body."""

    def __init__(self) -> None:
        self._bodies: list[bytes] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver._bodies.append(body)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/alerts"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()

    def raw(self) -> list[bytes]:
        with self._lock:
            return list(self._bodies)

    def payloads(self) -> list[dict[str, Any]]:
        return [json.loads(body) for body in self.raw()]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
