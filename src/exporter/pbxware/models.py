"""Typed views of the PBXware answers the poller uses.

The parsers accept every variant the API reference records: lists as objects keyed by id or
as JSON arrays (PHP's ``json_encode`` writes an array with keys ``0..n-1`` as one), and
``[]``, ``{}`` or ``""`` when empty, numbers as numbers or strings, percentages as
``"37"``, ``"37.5"`` or ``"37%"``. A shape they cannot read raises PbxwareError(reason="decode").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

from .errors import PbxwareError

ONLINE_STATES = frozenset({"online", "registered", "ok", "reachable", "1", "true"})


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str
    code: str
    package: str


class Extension(NamedTuple):
    # A NamedTuple rather than a frozen dataclass: a carrier system has 100,000 of these,
    # built every poll, and a tuple is several times cheaper to create.
    id: str
    number: str
    name: str
    protocol: str
    status: str


def records(action: str, data: Any) -> Mapping[str, Any]:
    """A list action's answer as id → entry. PHP's json_encode writes an array keyed
    ``0..n-1`` as a JSON array (the ids are then those indexes) and an empty one as ``[]``;
    ``{}`` and ``""`` also mean nothing (issue 16 §5)."""
    if isinstance(data, dict):
        return data
    if isinstance(data, list):
        return {str(index): entry for index, entry in enumerate(data)}
    if isinstance(data, str) and not data.strip():
        return {}
    raise PbxwareError(action, "decode", f"expected an object keyed by id, got {_kind(data)}")


def _kind(value: Any) -> str:
    return type(value).__name__


def text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _entry(action: str, key: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise PbxwareError(action, "decode", f"entry {key[:20]!r} is {_kind(value)}, not an object")
    return value


def parse_tenants(data: Any) -> list[Tenant]:
    action = "pbxware.tenant.list"
    tenants = []
    for key, value in records(action, data).items():
        entry = _entry(action, key, value)
        tenants.append(
            Tenant(
                id=text(key),
                name=text(entry.get("name")),
                code=text(entry.get("tenantcode")),
                package=text(entry.get("package")),
            )
        )
    return tenants


_STATUS = {"1": "enabled", "0": "disabled", "2": "suspended"}


@lru_cache(maxsize=256)  # bounded: the values come from the PBX
def normalise_status(value: str) -> str:
    """ext.list's status is "enabled"/"disabled" on most systems, "1"/"0" on some."""
    status = value.strip().lower()
    return _STATUS.get(status, status or "unknown")


@lru_cache(maxsize=256)  # bounded: the values come from the PBX
def _protocol(value: str) -> str:
    return value.strip().lower() or "unknown"


def _field(entry: Mapping[str, Any], key: str) -> str:
    value = entry.get(key)
    # Nearly always a string already (the reference: DB fields are strings).
    return value.strip() if type(value) is str else text(value)


def parse_extensions(data: Any) -> tuple[Extension, ...]:
    action = "pbxware.ext.list"
    extensions = []
    for key, value in records(action, data).items():
        entry = value if type(value) is dict else _entry(action, key, value)
        extensions.append(
            Extension(
                key if type(key) is str else text(key),
                _field(entry, "ext"),
                _field(entry, "name"),
                _protocol(_field(entry, "protocol")),
                normalise_status(_field(entry, "status")),
            )
        )
    return tuple(extensions)


def parse_count(action: str, data: Any, key: str = "count") -> int:
    if not isinstance(data, dict) or key not in data:
        raise PbxwareError(action, "decode", f"no {key!r} in the answer")
    try:
        count = int(text(data[key]))
    except ValueError:
        raise PbxwareError(action, "decode", f"{key!r} is not a whole number") from None
    if count < 0:
        raise PbxwareError(action, "decode", f"{key!r} is negative")
    return count


def parse_usage_ratio(action: str, data: Any) -> float:
    """``{"inuse": "37"}`` (or ``"37.5"``, ``"37%"``) as a 0–1 ratio."""
    if not isinstance(data, dict) or "inuse" not in data:
        raise PbxwareError(action, "decode", "no 'inuse' in the answer")
    inuse = text(data["inuse"]).rstrip("%").strip()
    try:
        percent = float(inuse)
    except ValueError:
        raise PbxwareError(action, "decode", "'inuse' is not a percentage") from None
    if not 0.0 <= percent <= 100.0:
        raise PbxwareError(action, "decode", "'inuse' is outside 0-100")
    return percent / 100.0
