"""The admin API's side of PBXware: find an extension, read, edit and switch its services.

Every failure becomes an ``AdminError`` carrying the HTTP status the client gets:
PBXware's own ``{"error": …}``, a refused key or an answer that cannot be read → 502, a PBX
that is down or too slow → 504, an extension that does not exist → 404.

What the PBX (or a proxy in front of it) said is never shown to the client: an error page can
quote the request URL, and with it the API key in some encoding. The client gets the reason
class (``api_error``, ``auth``, ``http``, ``decode``, ``timeout``, ``connect``); the text goes
to the log line ``admin_upstream_error``, control characters escaped, where the secret
scrubber sees it.

An edit or switch whose request went out but got no clear answer (timeout, a connection
broken after connecting, an error page or garbage instead of PBXware's answer) may have been
applied: it is reported as ``unknown``, never as failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from ..features.core import EXTENSIONS
from ..pbxware import PbxwareError
from ..pbxware.models import Extension, parse_extensions
from ..snapshot import SnapshotStore
from .logsafe import escape
from .services import ServiceSchema

# Connection failures that mean the request never left: nothing can have been applied.
_NOT_SENT = frozenset(
    {
        "client closed",
        "ClientConnectorError",
        "ClientConnectorCertificateError",
        "ClientConnectorSSLError",
        "ClientConnectorDNSError",
        "ConnectionRefusedError",
    }
)


class Caller(Protocol):
    """What the admin API needs of a PbxwareClient."""

    async def call(self, action: str, params: Mapping[str, str] | None = None) -> Any: ...


@dataclass
class AdminError(Exception):
    """A request the admin API answers with ``status`` and a JSON ``{"error": message}``."""

    status: int
    message: str
    result: str  # the audit/metric result for edits
    extra: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {"error": self.message, **self.extra}


_LOG = structlog.get_logger("exporter.admin")
_SEE_LOG = "PBXware's answer is in the exporter's log (admin_upstream_error)"


def upstream(system: str, exc: PbxwareError) -> AdminError:
    """The answer for a failed PBXware request: the reason class, never what the PBX said."""
    with contextlib.suppress(Exception):  # logging must not change the answer
        _LOG.warning(
            "admin_upstream_error",
            system=escape(system, 64),
            action=escape(exc.action, 64),
            reason=exc.reason,
            error=escape(exc.message),
        )
    extra: dict[str, Any] = {"system": system, "action": exc.action, "reason": exc.reason}
    if exc.reason in ("timeout", "connect"):
        what = "did not answer in time" if exc.reason == "timeout" else "could not be reached"
        return AdminError(504, f"PBX {system} {what} ({exc.reason})", "unavailable", extra)
    if exc.reason == "api_error":
        message = f"PBXware {system} refused {exc.action} (api_error); {_SEE_LOG}"
        return AdminError(502, message, "upstream_error", extra)
    if exc.reason == "auth":
        return AdminError(
            502,
            f"PBXware {system} refused the exporter's API key (check the system's api_key)",
            "upstream_error",
            extra,
        )
    message = f"PBX {system} answered {exc.action} badly ({exc.reason}); {_SEE_LOG}"
    return AdminError(502, message, "upstream_error", extra)


def maybe_applied(exc: PbxwareError) -> bool:
    """Whether a failed edit request may still have been carried out by PBXware."""
    if exc.reason in ("api_error", "auth"):
        return False  # PBXware answered, and said no
    return not (exc.reason == "connect" and exc.message in _NOT_SENT)


def _unknown(error: AdminError, what: str) -> AdminError:
    return AdminError(
        error.status,
        f"{error.message}. The {what} was sent and MAY have gone through: read the service "
        "back (GET) before trying again",
        "unknown",
        {**error.extra, "edited": "unknown"},
    )


def _config_object(action: str, data: Any) -> dict[str, Any]:
    # ES configurations are flat objects (§1.6); PHP's json_encode of an empty one is [].
    if isinstance(data, list) and not data:
        return {}
    if not isinstance(data, dict):
        raise PbxwareError(action, "decode", f"expected an object, got {type(data).__name__}")
    return data


def _state(action: str, data: Any) -> str:
    if not isinstance(data, dict) or not isinstance(data.get("state"), str):
        raise PbxwareError(action, "decode", "no 'state' string in the answer")
    return str(data["state"])


def is_on(state: str) -> bool:
    # .get answers yes, no, or pin (on, behind the user's PIN) (§3.9).
    return state.strip().lower() not in ("no", "0", "")


@dataclass(frozen=True)
class Target:
    system: str
    tenant: str
    extension: Extension


class Gateway:
    """Talks to the PBXware systems through the daemon's clients."""

    def __init__(self, clients: Mapping[str, Caller], store: SnapshotStore) -> None:
        self._clients = clients
        self._store = store
        # One edit at a time per extension: read-before, edit and read-back of two
        # concurrent edits must not interleave, or the audit line would lie.
        self._locks: weakref.WeakValueDictionary[tuple[str, str, str], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    def lock(self, target: Target) -> asyncio.Lock:
        key = (target.system, target.tenant, target.extension.id)
        lock = self._locks.get(key)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[key] = lock
        return lock

    async def _call(
        self, system: str, action: str, params: Mapping[str, str], what: str | None = None
    ) -> Any:
        """``what`` names a request that changes something ("edit", "switch")."""
        try:
            return await self._clients[system].call(action, params)
        except PbxwareError as exc:
            error = upstream(system, exc)
            if what is not None and maybe_applied(exc):
                error = _unknown(error, what)
            raise error from None

    async def resolve(self, system: str, tenant: str, number: str) -> Target:
        """The extension with this number, from the last snapshot or else pbxware.ext.list."""
        snapshot = self._store.get(system)
        known_tenant = None
        if snapshot is not None:
            for tsnap in snapshot.tenants:
                if tsnap.tenant.id == tenant:
                    known_tenant = tsnap
                    break
        listed = None if known_tenant is None else known_tenant.value(EXTENSIONS)
        if listed is not None:
            for ext in listed:
                if ext.number == number:
                    return Target(system, tenant, ext)
        # Not in the snapshot (not polled yet, stale, or created since): ask the PBX.
        action = "pbxware.ext.list"
        try:
            data = await self._clients[system].call(action, {"server": tenant})
            extensions = parse_extensions(data)
        except PbxwareError as exc:
            if exc.reason == "api_error" and snapshot is not None and known_tenant is None:
                raise AdminError(
                    404, f"unknown tenant {tenant!r} on system {system!r}", "not_found"
                ) from None
            raise upstream(system, exc) from None
        for ext in extensions:
            if ext.number == number:
                return Target(system, tenant, ext)
        raise AdminError(
            404,
            f"no extension {number!r} in tenant {tenant!r} of system {system!r}",
            "not_found",
        )

    def _args(self, target: Target, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        return {"server": target.tenant, "id": target.extension.id, **(extra or {})}

    async def configuration(self, target: Target, service: ServiceSchema) -> dict[str, Any]:
        action = service.action("configuration")
        data = await self._call(target.system, action, self._args(target))
        try:
            return _config_object(action, data)
        except PbxwareError as exc:
            raise upstream(target.system, exc) from None

    async def edit(self, target: Target, service: ServiceSchema, params: Mapping[str, str]) -> Any:
        args = self._args(target, params)
        return await self._call(target.system, service.action("edit"), args, "edit")

    async def get_state(self, target: Target, service: ServiceSchema) -> str:
        action = service.action("get")
        data = await self._call(target.system, action, self._args(target))
        try:
            return _state(action, data)
        except PbxwareError as exc:
            raise upstream(target.system, exc) from None

    async def set_state(self, target: Target, service: ServiceSchema, on: bool) -> Any:
        args = self._args(target, {"state": "yes" if on else "no"})
        return await self._call(target.system, service.action("set"), args, "switch")

    def request_preview(
        self, fmt: str, action: str, target: Target, params: Mapping[str, str]
    ) -> dict[str, Any]:
        """The request a dry run would have sent, exactly as the client builds it, key hidden."""
        query = {"apikey": "<redacted>", "action": action, "apiformat": fmt}
        query.update(self._args(target, params))
        return {"method": "GET", "action": action, "params": query}
