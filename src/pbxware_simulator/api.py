"""The PBXware v1 action dispatcher and the json/php response encodings.

Error texts other than "Invalid API key." are guesses (reference 6); they live here as
constants so they are easy to change once a real box tells us better.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date

import phpserialize

from . import health
from .state import MASTER_TENANT_ID, PACKAGES, ROUTES, SystemState, TenantState

ERROR_INVALID_KEY = "Invalid API key."  # CONFIRMED (reference 1.3)
ERROR_INVALID_ACTION = "Invalid action."  # GUESS
ERROR_INVALID_SERVER = "Invalid server."  # GUESS
ERROR_INVALID_FORMAT = "Invalid API format."  # GUESS
ERROR_MISSING = "Missing required parameter: {name}"  # GUESS

FORMATS = ("json", "php")

Params = Mapping[str, str]
Payload = object


class ApiError(Exception):
    """An application error: HTTP 200 with {"error": message} (reference 1.7, 1.8)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def error_payload(message: str) -> dict[str, str]:
    return {"error": message}


# --- encoding ---------------------------------------------------------------------------

# PHP turns a string array key into an integer key when it is a canonical decimal integer
# ("12", "-3", "0"; not "012", "+1" or "1.0") that fits in a PHP int.
_PHP_INT_KEY = re.compile(r"-?[1-9][0-9]*|0")
_PHP_INT_MAX = 2**63 - 1


def _php_key(key: object) -> object:
    if isinstance(key, str) and _PHP_INT_KEY.fullmatch(key):
        value = int(key)
        if -_PHP_INT_MAX - 1 <= value <= _PHP_INT_MAX:
            return value
    return key


def to_php(value: object) -> object:
    """Convert JSON-shaped data to what PHP's arrays would hold before serialize()."""
    if isinstance(value, Mapping):
        return {_php_key(k): to_php(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return {i: to_php(v) for i, v in enumerate(value)}
    return value


def encode(payload: Payload, fmt: str) -> bytes:
    if isinstance(payload, bytes):  # a non-JSON answer (monitor.live_calls with no calls)
        return payload
    if fmt == "php":
        encoded: bytes = phpserialize.dumps(to_php(payload), charset="utf-8")
        return encoded
    # PHP's json_encode is compact, escapes non-ASCII as \uXXXX and escapes "/" as "\/";
    # "/" can only occur inside strings in JSON text, so replacing it is safe.
    text = json.dumps(payload, ensure_ascii=True, separators=(",", ":"))
    return text.replace("/", "\\/").encode("ascii")


# --- actions ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    state: SystemState
    params: Params
    numeric_strings: bool
    live_calls_empty_json: bool = False


def _server(ctx: Context, *, required: bool) -> str | None:
    """The `server` argument: a tenant id, "1" for the master tenant, or None if absent."""
    server = ctx.params.get("server", "").strip()
    if not server:
        if required:
            raise ApiError(ERROR_MISSING.format(name="server"))
        return None
    if server != MASTER_TENANT_ID and server not in ctx.state.tenants:
        raise ApiError(ERROR_INVALID_SERVER)
    return server


def _tenants(ctx: Context, server: str | None) -> list[TenantState]:
    if server is None:
        return list(ctx.state.tenants.values())
    if server == MASTER_TENANT_ID:
        return []
    return [ctx.state.tenants[server]]


def _keyed(items: dict[str, object]) -> Payload:
    # PHP's json_encode of an empty array is `[]`, never `{}` (reference 1.6).
    return items if items else []


def tenant_list(ctx: Context) -> Payload:
    def num(value: int) -> int | str:
        return str(value) if ctx.numeric_strings else value

    return _keyed(
        {
            t.id: {
                "name": t.api_name,
                "tenantcode": t.code,
                "package_id": num(t.package_id),
                "package": t.package,
                "ext_length": num(t.ext_length),
                "country_id": num(t.country_id),
                "country_code": num(t.country_code),
            }
            for t in ctx.state.tenants.values()
        }
    )


def ext_list(ctx: Context) -> Payload:
    server = _server(ctx, required=True)
    return _keyed(
        {
            e.id: {
                "name": e.name,
                "email": e.email,
                "protocol": e.protocol,
                "ext": e.number,
                "location": e.location,
                "ua_id": e.ua_id,
                "ua_name": e.ua_name,
                "ua_fullname": e.ua_fullname,
                "status": e.status,
                "macaddress": e.macaddress,
                "sn": e.sn,
                "linenum": e.linenum,
                "user_location": e.user_location,
                "department": e.department,
            }
            for t in _tenants(ctx, server)
            for e in t.extensions.values()
        }
    )


def monitor_list(ctx: Context) -> Payload:
    server = _server(ctx, required=False)
    # Offline extensions carry "" for dnd/on_call: the reference allows ""|true|false and
    # "no presence information" is the likeliest meaning of "".
    return _keyed(
        {
            e.id: {
                "name": e.name,
                "ext": e.number,
                "ip": e.ip if e.online else "",
                "status": "online" if e.online else "offline",
                "ua": e.user_agent if e.online else "",
                "dnd": e.dnd if e.online else "",
                "on_call": e.on_call if e.online else "",
            }
            for t in _tenants(ctx, server)
            for e in t.extensions.values()
        }
    )


def ext_online(ctx: Context) -> Payload:
    server = _server(ctx, required=False)
    return {"type": "Extensions Online", "count": ctx.state.online_count(server)}


def cpu(ctx: Context) -> Payload:
    return {"inuse": ctx.state.cpu}


def memory(ctx: Context) -> Payload:
    return {"inuse": ctx.state.memory}


def disk_usage(ctx: Context) -> Payload:
    return {"inuse": ctx.state.disk}


def package_list(ctx: Context) -> Payload:
    return {str(pid): name for pid, name in PACKAGES.items()}


def route_list(ctx: Context) -> Payload:
    return {str(rid): [code, name] for rid, (code, name) in ROUTES.items()}


def services(ctx: Context) -> Payload:
    return dict(ctx.state.services)


def sip_registrations(ctx: Context) -> Payload:
    server = _server(ctx, required=False)
    if server is None:
        reg = health.system_sip(ctx.state)
    elif server == MASTER_TENANT_ID:
        reg = health.SipState(0, 0, 0)
    else:
        reg = health.sip(ctx.state, server)
    return {
        "SIP Registrations": {"success": reg.success, "failed": reg.failed, "lagged": reg.lagged}
    }


def calls(ctx: Context) -> Payload:
    server = _server(ctx, required=False)
    if server is None:
        c = health.system_calls(ctx.state)
    elif server == MASTER_TENANT_ID:
        c = health.CallsState(0, 0, 0, 0)
    else:
        c = health.calls(ctx.state, server)
    # Sic: PBXware's key is "answared calls" (reference 3.6).
    return {"now": c.now, "last hour": c.last_hour, "today": c.today, "answared calls": c.answered}


def licensing(ctx: Context) -> Payload:
    return {
        k: {"inuse": used, "max": most} for k, (used, most) in health.licensing(ctx.state).items()
    }


def license_info(ctx: Context) -> Payload:
    return {**health.LICENSE_INFO, **ctx.state.license_info}


def live_calls(ctx: Context) -> Payload:
    server = _server(ctx, required=True)
    found = {} if server == MASTER_TENANT_ID else health.live_calls(ctx.state, server or "")
    if found:
        return found
    # With no calls PBXware answers with this text (reference 3.10); bare text by default.
    return "Live Calls: 0" if ctx.live_calls_empty_json else b"Live Calls: 0"


def trunk_list(ctx: Context) -> Payload:
    return _keyed(
        {
            t.id: {
                "name": t.name,
                "protocol": t.protocol,
                "provider_id": t.provider_id,
                "provider_name": t.provider_name,
                "status": t.status,
            }
            for t in ctx.state.trunks.values()
        }
    )


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
ERROR_BAD_DATE = "Invalid date format. Use mmm-dd-YYYY."  # GUESS


def _date(ctx: Context, name: str) -> date:
    text = ctx.params.get(name, "")
    match = re.fullmatch(r"([A-Z][a-z]{2})-(\d{2})-(\d{4})", text)
    if not text:
        raise ApiError(ERROR_MISSING.format(name=name))
    if match is None or match.group(1) not in _MONTHS:
        raise ApiError(ERROR_BAD_DATE)
    try:
        return date(int(match.group(3)), _MONTHS.index(match.group(1)) + 1, int(match.group(2)))
    except ValueError:
        raise ApiError(ERROR_BAD_DATE) from None


def archiving_list(ctx: Context) -> Payload:
    try:
        start, end = _date(ctx, "start_date"), _date(ctx, "end_date")
    except ApiError as exc:
        # archiving.list wraps its error in a list (reference 1.7).
        return [error_payload(exc.message)]
    return ctx.state.archiving_runs(start, end)


ACTIONS: dict[str, Callable[[Context], Payload]] = {
    "pbxware.tenant.list": tenant_list,
    "pbxware.ext.list": ext_list,
    "pbxware.monitor.list": monitor_list,
    "pbxware.dashboard.ext_online": ext_online,
    "pbxware.dashboard.cpu": cpu,
    "pbxware.dashboard.memory": memory,
    "pbxware.dashboard.disk_usage": disk_usage,
    "pbxware.package.list": package_list,
    "pbxware.route.list": route_list,
    "pbxware.dashboard.services": services,
    "pbxware.dashboard.sip_registrations": sip_registrations,
    "pbxware.dashboard.calls": calls,
    "pbxware.dashboard.licensing": licensing,
    "pbxware.license.info": license_info,
    "pbxware.monitor.live_calls": live_calls,
    "pbxware.trunk.list": trunk_list,
    "pbxware.archiving.list": archiving_list,
}


# --- request handling -------------------------------------------------------------------


@dataclass
class Responder:
    """Answers API requests for one system, caching encoded bodies per state snapshot.

    Every action is a pure function of (state, action, server, format), so a body can be
    reused until the next tick replaces the state; that keeps ext.list for 100,000
    extensions cheap to poll repeatedly.
    """

    api_key: str
    numeric_strings: bool = False
    live_calls_empty_json: bool = False
    # Actions whose answers depend on more than the state snapshot (enhanced services, which
    # edits change): answered fresh every time, never from the cache.
    live: Mapping[str, Callable[[Context], Payload]] = field(default_factory=dict)
    _cache: dict[tuple[str, ...], bytes] = field(default_factory=dict)
    _cached_for: SystemState | None = None

    def answer(self, state: SystemState, params: Params) -> bytes:
        if params.get("apikey") != self.api_key:
            return error_body(params, ERROR_INVALID_KEY)
        fmt = requested_format(params)
        if fmt not in FORMATS:
            return error_body(params, ERROR_INVALID_FORMAT)
        action = params.get("action", "")
        live = self.live.get(action)
        if live is not None:
            try:
                return encode(
                    live(Context(state, params, self.numeric_strings, self.live_calls_empty_json)),
                    fmt,
                )
            except ApiError as exc:
                return error_body(params, exc.message)
        handler = ACTIONS.get(action)
        if handler is None:
            return error_body(params, ERROR_INVALID_ACTION)
        if self._cached_for is not state:
            self._cache.clear()
            self._cached_for = state
        # The arguments an answer depends on: the tenant, and archiving.list's date range.
        key = (
            action,
            params.get("server", ""),
            fmt,
            params.get("start_date", ""),
            params.get("end_date", ""),
        )
        body = self._cache.get(key)
        if body is None:
            try:
                payload = handler(
                    Context(state, params, self.numeric_strings, self.live_calls_empty_json)
                )
            except ApiError as exc:
                return error_body(params, exc.message)
            body = encode(payload, fmt)
            self._cache[key] = body
        return body


def requested_format(params: Params) -> str:
    return params.get("apiformat") or "json"


def error_body(params: Params, message: str) -> bytes:
    """{"error": message} in the requested format, or JSON when that format is unknown."""
    fmt = requested_format(params)
    return encode(error_payload(message), fmt if fmt in FORMATS else "json")
