"""The admin API's audit trail and its two metrics.

Every edit, and every refused edit, is exactly one structured log line ``admin_edit`` with
the token name (never the token), the client address, what was addressed, the fields with
their before/after values, and the result. The counters live in the daemon's own registry
(the one /metrics serves), never in prometheus_client's global default registry.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter

from .logsafe import escape, json_field
from .services import SERVICES

# Bounded label values: whatever a client puts in the path, the series stay few.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
RESULTS = (
    "ok",  # edited and read back
    "dry_run",  # validated, not sent
    "invalid",  # 400: the body failed validation
    "unauthorized",  # 401
    "forbidden",  # 403: scope, system or tenant restriction
    "not_found",  # 404: unknown system, tenant, extension or service
    "not_editable",  # 405: extoperationtimes has no .edit
    "rate_limited",  # 429
    "upstream_error",  # 502: PBXware refused or answered garbage
    "unavailable",  # 504: PBX down or too slow
    "readback_failed",  # PBXware accepted the edit, reading it back failed
    "cross_site",  # 403: Sec-Fetch-Site or Origin says another site sent it (forgery)
    "precondition_failed",  # 412: If-Match does not match the configuration read
    "unknown",  # the edit was sent, no clear answer came: it may have gone through
    "client_gone",  # the client went away before the edit was sent
    "internal_error",  # 500: a bug (logged as admin_internal_error)
)


class AdminMetrics:
    def __init__(self, systems: tuple[str, ...]) -> None:
        self.set_systems(systems)
        self.requests = Counter(
            "pbxware_admin_requests",
            "Admin API requests by route template, method and HTTP status code.",
            ["route", "method", "code"],
            registry=None,
        )
        self.edits = Counter(
            "pbxware_admin_edits",
            "Admin API edits (service edits and state switches) by result, refused ones too.",
            ["system", "service", "result"],
            registry=None,
        )

    def set_systems(self, systems: tuple[str, ...]) -> None:
        """The system label values allowed (anything else counts as "unknown")."""
        self._systems = frozenset(systems)

    def register(self, registry: CollectorRegistry) -> None:
        registry.register(self.requests)
        registry.register(self.edits)

    def request(self, route: str, method: str, code: int) -> None:
        method = method if method in METHODS else "OTHER"
        self.requests.labels(route=route, method=method, code=str(code)).inc()

    def edit(self, system: str, service: str, result: str) -> None:
        self.edits.labels(
            system=system if system in self._systems else "unknown",
            service=service if service in SERVICES else "unknown",
            result=result if result in RESULTS else "other",
        ).inc()


def _json(value: Any) -> str:
    # One JSON string per structured value: readable in logfmt and JSON logs alike, and the
    # secret scrubber (which str()s non-scalars) leaves it intact.
    return json_field(value)


def diff(before: Any, after: Any) -> dict[str, dict[str, Any]]:
    """The top-level keys of two configurations whose values differ."""
    old = before if isinstance(before, dict) else {}
    new = after if isinstance(after, dict) else {}
    return {
        key: {"before": old.get(key), "after": new.get(key)}
        for key in sorted(set(old) | set(new), key=str)
        if old.get(key) != new.get(key)
    }


@dataclass
class AuditRecord:
    """One edit attempt; ``emit`` writes it, whatever its outcome."""

    client: str
    system: str
    tenant: str
    extension: str
    service: str
    action: str  # "edit" (PUT …/services/{service}) or "state" (POST …/state)
    token: str | None = None
    dry_run: bool = False
    # Until the handler says otherwise: a bug that escapes it must not be audited as "ok".
    result: str = "internal_error"
    status: int = 500
    # What was asked: the PBXware arguments of a valid edit, or the raw body of a refused one.
    request: Any = None
    # Field -> {"before": …, "after": …}: the configuration read before the edit against the
    # one read back after it (for a state switch: PBXware's state before and after).
    changes: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: str | None = None

    # Lines of this kind left out before this one (unauthenticated refusals are written at
    # most once per client per minute; see routes.AdminApi._refused_edit).
    suppressed: int | None = None

    def emit(self, metrics: AdminMetrics, write: bool = True) -> None:
        """Count the edit, and write its line unless ``write`` is False. Never raises:
        whatever goes wrong in logging, the client still gets its answer."""
        with contextlib.suppress(Exception):  # a metric must not fail the request
            metrics.edit(self.system, self.service, self.result)
        if not write:
            return
        log = structlog.get_logger("exporter.admin.audit")
        level = "info" if self.result in ("ok", "dry_run") else "warning"
        try:
            event: dict[str, Any] = self._head()
            event["requested"] = _json(self.request)
            event["changes"] = _json(self.changes)
            if self.error:
                event["error"] = escape(self.error)
            getattr(log, level)("admin_edit", **event)
        except Exception:
            # The bare facts, without the values that could not be rendered.
            with contextlib.suppress(Exception):
                getattr(log, level)("admin_edit", **self._head(), log_error="values not logged")

    def _head(self) -> dict[str, Any]:
        head: dict[str, Any] = {
            "token": escape(self.token or "-"),
            "client": escape(self.client, 64),
            "system": escape(self.system, 64),
            "tenant": escape(self.tenant, 64),
            "extension": escape(self.extension, 64),
            "service": escape(self.service, 64),
            "action": self.action,
            "dry_run": self.dry_run,
            "result": self.result,
            "status": self.status,
        }
        if self.suppressed:
            head["suppressed"] = self.suppressed
        return head
