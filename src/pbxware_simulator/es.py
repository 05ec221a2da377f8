"""Enhanced services (``pbxware.ext.es.<service>.*``) of the simulator, per extension.

Six services (caller ID, call filters, DND, call forwarding, BLF list, operation times),
each with ``.configuration``, ``.get`` and ``.set``, and ``.edit`` for all but
``extoperationtimes`` (PBXware has none, so the dispatcher answers it "Invalid action.").

``.edit`` validates the way PBXware's PHP does, on the query strings: the regular
expressions of Bicom's Postman collection where it gives them (reference §3.9), equal sizes
for the list arguments that describe one record per index, and ``{"error": …}`` when
something is off. Only the arguments sent change; PBXware ignores unknown arguments, so
the simulator does too. Values are stored as PBXware would show them in ``.configuration``.

``callerid.configuration`` has the shape of a live sample (docs/pbxware-api.md §3.9):
``callerid``, ``emergency_callerid``, ``default_callerid``, ``default_privacy``, one
``callerid:<trunk>`` per trunk of the system (and ``callerid:<trunk>:privacy`` once a privacy
was set), and ``allowed_callerids`` keyed by id (``{"1": {"callerid", "label",
"short_code"}}``) or ``[]`` when there are none. The encoding of ``callfwd``'s
``destinations``/``timeouts`` strings and all error texts are GUESSES, kept here in one place.
Argument rules are Bicom's (Postman) and no more: empty list entries where its regexes allow
them, no equal-size rule where Bicom states none (BLF lists; caller ID lists need equal
sizes only among those sent, a GUESS about how PHP pairs them).

State is created lazily from the extension's data the first time a service is touched, and
survives ticks. Tests plant values with ``plant()`` (e.g. a hostile caller ID).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .api import ERROR_MISSING, ApiError, Context, Payload
from .state import ExtensionState, SystemState

SERVICES = ("callerid", "callfilters", "dnd", "callfwd", "blflist", "extoperationtimes")
EDITABLE = frozenset(SERVICES) - {"extoperationtimes"}

ERROR_NO_EXTENSION = "Extension not found."  # GUESS
ERROR_INVALID_SERVER = "Invalid server."  # same text as the rest of the simulator
ERROR_INVALID = "Invalid value for {name}."  # GUESS
ERROR_SIZES = "{names} lists must be same size."  # GUESS, after the Postman note
ERROR_ANONYMOUS = "List of callers must start with anonymous."  # GUESS, after the Postman note
ERROR_STATE = "Argument state can have one of these: yes, no or pin."  # after the Postman note

_CALLFWD_CONDITIONS = ("unconditional", "busy", "no answer", "line unavailable")
_CALLFWD_PREFIXES = ("uncond", "busy", "noansw", "unavail")
_FILTER_TYPES = ("call forward number", "no answer", "busy", "voicemail", "not in service")

# Bicom's Postman regexes (JavaScript; `\w` and `\d` are ASCII there, hence re.ASCII).
_A = re.ASCII
_COLON_NUMBERS = re.compile(r"(?::|(?:\+?[\d\s])+)+", _A)
_COLON_LABELS = re.compile(r"(?::|[+\w\s]+(?:\s*<[+\d]+>)?)+", _A)
_COLON_CODES = re.compile(r"(?:\d?(?::\d?)+)|\d", _A)
_COLON_TRUNKS = re.compile(r"(?::|[a-zA-Z0-9_.-]+)+")
_COLON_PRIVACIES = re.compile(r"[0-4]?(?::[0-4]?)*")
_COMMA_DIGITS = re.compile(r"(?:,|\d+)+", _A)
_DIGITS = re.compile(r"\d+", _A)
_FLAG = re.compile(r"0|1")


def _split(value: str, sep: str) -> list[str]:
    # An empty argument clears the list; it does not make a list of one empty item. (So
    # callfilters' [""] lists, which need one entry per caller, are sent as "" and read
    # back as [""]: see _edit_callfilters.)
    return value.split(sep) if value else []


@dataclass
class _Service:
    state: str
    config: dict[str, Any]
    # callfwd keeps what was edited per condition and renders it into `config`.
    extra: dict[str, str] = field(default_factory=dict)


def _defaults(ext: ExtensionState, trunks: list[str]) -> dict[str, _Service]:
    fwd_extra = {f"{p}_{k}": "" for p in _CALLFWD_PREFIXES for k in ("dests", "timeouts")}
    callerid: dict[str, Any] = {
        "callerid": f'"{ext.name}" <{ext.number}>',
        "emergency_callerid": "",
        "default_callerid": "",
        "default_privacy": "",
    }
    callerid.update({f"callerid:{name}": "" for name in trunks})
    callerid["allowed_callerids"] = []  # PHP's json_encode of an empty array
    services = {
        "callerid": _Service("yes", callerid),
        "callfilters": _Service(
            "no",
            {
                "callers": ["anonymous"],
                "dtypes": ["voicemail"],
                "destinations": [ext.number],
                "telemarketer": "0",
            },
        ),
        "dnd": _Service(
            "yes" if ext.dnd else "no",
            {
                "dnd": "2" if ext.dnd else "0",
                "dst": ext.number,
                "dsttype": "voicemail",
                "duration": None,
            },
        ),
        "callfwd": _Service(
            "no",
            {"enabled": "", "destinations": "", "timeouts": "", "play": 0, "cid": 1},
            fwd_extra,
        ),
        "blflist": _Service(
            "no",
            {
                "exts": [],
                "labels": [],
                "functions": [],
                "blfs": [],
                "blf_start": 1,
                "blf_cleanup": 0,
                "cart_only": 0,
            },
        ),
        "extoperationtimes": _Service(
            "no",
            {
                "timeout": "20",
                "dial_opts": "t",
                "sequential": "0",
                "last_dest": "",
                "destinations": [ext.number],
                "ot_time_from": ["08:00"],
                "ot_time_to": ["17:00"],
                "ot_days_array": ["mon,tue,wed,thu,fri"],
            },
        ),
    }
    _render_callfwd(services["callfwd"])
    return services


def _render_callfwd(service: _Service) -> None:
    # GUESS: one group per condition, in the order of _CALLFWD_CONDITIONS, joined by ";".
    extra = service.extra
    service.config["destinations"] = ";".join(extra[f"{p}_dests"] for p in _CALLFWD_PREFIXES)
    service.config["timeouts"] = ";".join(extra[f"{p}_timeouts"] for p in _CALLFWD_PREFIXES)


class _Model(Protocol):
    """What holds a system's current state snapshot (state.SystemModel)."""

    @property
    def state(self) -> SystemState: ...


class EnhancedServices:
    """The enhanced-service state of one simulated system."""

    def __init__(self, model: _Model) -> None:
        self._model = model
        self._data: dict[tuple[str, str], dict[str, _Service]] = {}

    # --- for tests ----------------------------------------------------------------------------

    def configuration(self, tenant: str, ext_id: str, service: str) -> dict[str, Any]:
        return copy.deepcopy(self._services(self._model.state, tenant, ext_id)[service].config)

    def state(self, tenant: str, ext_id: str, service: str) -> str:
        return self._services(self._model.state, tenant, ext_id)[service].state

    def plant(self, tenant: str, ext_id: str, service: str, **values: Any) -> None:
        """Set configuration values as they are, unvalidated (e.g. a hostile caller ID)."""
        self._services(self._model.state, tenant, ext_id)[service].config.update(values)

    def set_state(self, tenant: str, ext_id: str, service: str, state: str) -> None:
        self._services(self._model.state, tenant, ext_id)[service].state = state

    # --- the API ------------------------------------------------------------------------------

    def actions(self) -> dict[str, Callable[[Context], Payload]]:
        """Action name → handler, for the dispatcher (answered fresh, never cached)."""
        out: dict[str, Callable[[Context], Payload]] = {}
        for name in SERVICES:
            out[f"pbxware.ext.es.{name}.configuration"] = self._handler(name, self._read)
            out[f"pbxware.ext.es.{name}.get"] = self._handler(name, self._get)
            out[f"pbxware.ext.es.{name}.set"] = self._handler(name, self._set)
            if name in EDITABLE:
                out[f"pbxware.ext.es.{name}.edit"] = self._handler(name, self._edit)
        return out

    def _handler(
        self, name: str, method: Callable[[str, _Service, Context], Payload]
    ) -> Callable[[Context], Payload]:
        def handle(ctx: Context) -> Payload:
            services = self._lookup(ctx)
            return method(name, services[name], ctx)

        return handle

    def _lookup(self, ctx: Context) -> dict[str, _Service]:
        server = ctx.params.get("server", "").strip()
        if not server:
            raise ApiError(ERROR_MISSING.format(name="server"))
        ext_id = ctx.params.get("id", "").strip()
        if not ext_id:
            raise ApiError(ERROR_MISSING.format(name="id"))
        if not _DIGITS.fullmatch(ext_id):
            raise ApiError(ERROR_INVALID.format(name="id"))
        if server not in ctx.state.tenants and server != "1":
            raise ApiError(ERROR_INVALID_SERVER)
        return self._services(ctx.state, server, ext_id)

    def _services(self, state: SystemState, tenant: str, ext_id: str) -> dict[str, _Service]:
        tstate = state.tenants.get(tenant)
        ext = tstate.extensions.get(ext_id) if tstate is not None else None
        if ext is None:
            raise ApiError(ERROR_NO_EXTENSION)
        key = (tenant, ext_id)
        if key not in self._data:
            trunks = [t.name for t in state.trunks.values()]
            self._data[key] = _defaults(ext, trunks)
        return self._data[key]

    def _read(self, name: str, service: _Service, ctx: Context) -> Payload:
        return copy.deepcopy(service.config)

    def _get(self, name: str, service: _Service, ctx: Context) -> Payload:
        return {"state": service.state}

    def _set(self, name: str, service: _Service, ctx: Context) -> Payload:
        state = ctx.params.get("state", "")
        if state not in ("yes", "no", "pin"):
            raise ApiError(ERROR_STATE)
        service.state = state
        return {"success": "Enhanced service state updated.", "state": state}

    def _edit(self, name: str, service: _Service, ctx: Context) -> Payload:
        return _EDITS[name](service, ctx.params)


# --- .edit per service: validate everything first, then change ---------------------------------


def _check(params: dict[str, str] | Any, name: str, pattern: re.Pattern[str]) -> str | None:
    if name not in params:
        return None
    value = params[name]
    if value and not pattern.fullmatch(value):
        raise ApiError(ERROR_INVALID.format(name=name))
    return value


def _same_size(lists: dict[str, list[str]], names: tuple[str, ...]) -> None:
    """Lists of one group that were sent have equal sizes (those not sent are optional)."""
    given = [n for n in names if n in lists]
    if len({len(lists[n]) for n in given}) > 1:
        raise ApiError(ERROR_SIZES.format(names=", ".join(names)))


_CALLERID_LISTS = {
    "anums": _COLON_NUMBERS,
    "alabels": _COLON_LABELS,
    "acodes": _COLON_CODES,
    "trunks": _COLON_TRUNKS,
    "tcallerids": _COLON_LABELS,
    "tprivacies": _COLON_PRIVACIES,
}
_CALLERID_GROUPS = (("anums", "alabels", "acodes"), ("trunks", "tcallerids", "tprivacies"))


def _callerid_lists(params: Any) -> dict[str, list[str]]:
    """The colon lists sent, checked; a group sent only as empty arguments is empty."""
    lists = {}
    for name, pattern in _CALLERID_LISTS.items():
        value = _check(params, name, pattern)
        if value is not None:
            lists[name] = value.split(":")  # PHP's explode(): "" is one empty entry
    for group in _CALLERID_GROUPS:
        sent = [n for n in group if n in lists]
        if sent and all(lists[n] == [""] for n in sent):
            for n in sent:  # nothing but empty arguments: an empty list
                lists[n] = []
        _same_size(lists, group)
    return lists


def _allowed_callerids(old: Any, lists: dict[str, list[str]]) -> dict[str, dict[str, str]]:
    """allowed_callerids keyed by id: the lists sent, the old entries' other fields kept."""
    before = [old[k] for k in sorted(old, key=int)] if isinstance(old, dict) else []
    sent = [n for n in ("anums", "alabels", "acodes") if n in lists]
    fields = (("anums", "callerid"), ("alabels", "label"), ("acodes", "short_code"))
    entries = {}
    for i in range(len(lists[sent[0]])):
        prior = before[i] if i < len(before) else {}
        entries[str(i + 1)] = {
            key: lists[name][i] if name in lists else prior.get(key, "") for name, key in fields
        }
    return entries


def _edit_callerid(service: _Service, params: Any) -> Payload:
    if "callerid" not in params:
        raise ApiError(ERROR_MISSING.format(name="callerid"))
    lists = _callerid_lists(params)
    config = service.config
    config["callerid"] = params["callerid"]
    if "emergencycid" in params:
        config["emergency_callerid"] = params["emergencycid"]
    if any(n in lists for n in ("anums", "alabels", "acodes")):
        entries = _allowed_callerids(config.get("allowed_callerids") or {}, lists)
        config["allowed_callerids"] = entries or []
    for i, name in enumerate(lists.get("trunks", [])):
        if "tcallerids" in lists:
            config[f"callerid:{name}"] = lists["tcallerids"][i]
        else:
            config.setdefault(f"callerid:{name}", "")
        if "tprivacies" in lists:
            config[f"callerid:{name}:privacy"] = lists["tprivacies"][i]
    return {"success": "Caller ID: saved."}


def _edit_callfilters(service: _Service, params: Any) -> Payload:
    for name in ("callers", "dtypes", "destinations"):
        if name not in params:
            raise ApiError(ERROR_MISSING.format(name=name))
    callers = _split(params["callers"], ",")
    # One entry per caller: an empty argument is one empty entry here, as PHP's explode()
    # makes it (the configuration of an extension without filters shows [""]).
    dtypes = params["dtypes"].split(",")
    destinations = params["destinations"].split(",")
    if not callers or callers[0] != "anonymous":
        raise ApiError(ERROR_ANONYMOUS)
    # Empty entries are allowed: Bicom's own example sends "anonymous," and "0,".
    if any(
        c not in ("anonymous", "") and not re.fullmatch(r"\+?\d+", c, re.ASCII) for c in callers
    ):
        raise ApiError(ERROR_INVALID.format(name="callers"))
    if any(d not in (*_FILTER_TYPES, "") for d in dtypes):
        raise ApiError(ERROR_INVALID.format(name="dtypes"))
    if any(d and not _DIGITS.fullmatch(d) for d in destinations):
        raise ApiError(ERROR_INVALID.format(name="destinations"))
    if not len(callers) == len(dtypes) == len(destinations):
        raise ApiError(ERROR_SIZES.format(names="callers, dtypes, destinations"))
    telemarketer = _check(params, "telemarketer", _FLAG)
    service.config.update(callers=callers, dtypes=dtypes, destinations=destinations)
    if telemarketer is not None:
        service.config["telemarketer"] = telemarketer
    return {"success": "Call Filters & Blocking.", "callfilters": "OK"}


def _edit_dnd(service: _Service, params: Any) -> Payload:
    checks = {
        "dnd": re.compile("0|1|2"),
        "dst": _DIGITS,
        "dsttype": re.compile("voicemail|call forward"),
        "duration": _DIGITS,
    }
    values = {name: _check(params, name, pattern) for name, pattern in checks.items()}
    for name, value in values.items():
        if value is not None:
            service.config[name] = value or (None if name == "duration" else "")
    return {"success": "Do Not Disturb.", "dnd": "OK"}


def _edit_callfwd(service: _Service, params: Any) -> Payload:
    enabled = params.get("enabled")
    if enabled is not None and any(c not in _CALLFWD_CONDITIONS for c in _split(enabled, ",")):
        raise ApiError(ERROR_INVALID.format(name="enabled"))
    lists = {
        f"{p}_{k}": _check(params, f"{p}_{k}", _COMMA_DIGITS)
        for p in _CALLFWD_PREFIXES
        for k in ("dests", "timeouts")
    }
    flags = {name: _check(params, name, _FLAG) for name in ("play", "cid")}
    if enabled is not None:
        service.config["enabled"] = enabled
    service.extra.update({k: v for k, v in lists.items() if v is not None})
    for name, value in flags.items():
        if value is not None:
            service.config[name] = int(value)  # numbers in .configuration (§3.9)
    _render_callfwd(service)
    return {"success": "Call Forwarding.", "callfwd": "OK"}


def _edit_blflist(service: _Service, params: Any) -> Payload:
    lists: dict[str, list[str]] = {}
    for name, pattern in (
        ("exts", _COMMA_DIGITS),
        ("functions", _COMMA_DIGITS),
        # [PM] /^[0-1](,[0-1])+$/ would need two entries; a list of one is taken too.
        ("blfs", re.compile(r"[01](?:,[01])*")),
        ("labels", re.compile(r"[^,]*(?:,[^,]*)*")),
    ):
        value = _check(params, name, pattern)
        if value is not None:
            lists[name] = _split(value, ",")
    # No equal-size rule: Bicom's own example sends 3 exts, 2 labels, 3 blfs, 5 functions.
    scalars = {
        "blf_start": _check(params, "blf_start", _DIGITS),
        "blf_cleanup": _check(params, "blf_cleanup", _FLAG),
        "cart_only": _check(params, "cart_only", _FLAG),
    }
    service.config.update(lists)
    if "blfs" in lists:
        service.config["blfs"] = [int(b) for b in lists["blfs"]]  # numbers, as [SONIQ] saw
    for name, value in scalars.items():
        if value:
            service.config[name] = int(value)
    return {"success": "BLF List.", "blflist": "OK"}


_EDITS: dict[str, Callable[[_Service, Any], Payload]] = {
    "callerid": _edit_callerid,
    "callfilters": _edit_callfilters,
    "dnd": _edit_dnd,
    "callfwd": _edit_callfwd,
    "blflist": _edit_blflist,
}
