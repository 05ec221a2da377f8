"""Loading and validating the YAML config.

Every problem is reported with the file, the key path (``systems[1].interval``) and what is
wrong; all problems of a file are reported together so that one run fixes them all.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import yaml

T = TypeVar("T")

NAME_RE = re.compile(r"^[a-z0-9_-]+$")
_DURATION_RE = re.compile(
    r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$"
)
_DURATION_UNITS = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)
_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class FieldError(ValueError):
    """A problem inside a nested value; ``subpath`` continues the key path (``.enabled``)."""

    def __init__(self, subpath: str, message: str) -> None:
        self.subpath = subpath
        super().__init__(message)


class ConfigError(Exception):
    """A config file that cannot be used; ``problems`` holds one line per defect."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source}: {p}" for p in problems))


@dataclass(frozen=True)
class CdrConfig:
    """CDR polling of one system (``pbxware.cdr.download``), off unless enabled."""

    enabled: bool = False
    interval: float = 300.0
    # Re-ask for this much before the last window's end: PBXware writes a CDR when the call
    # ends, so a record can appear late; the dedup by record id absorbs the overlap.
    overlap: float = 120.0
    backfill: float = 0.0  # history fetched at start; 0 = none
    page_size: int = 1000  # rows per page, PBXware's maximum
    timezone: str = "UTC"
    # Per CDR page request, apart from the system's poll `timeout`: a 1,000-row page is slow
    # to build, and clients written against live systems allow 60 s (docs/pbxware-api.md §3.7).
    timeout: float = 60.0


# The optional health actions of a system, each switchable and with its own interval
# (each is a feature of exporter/features/, which tests/test_features.py checks).
OPTIONAL_COLLECTORS = (
    "services",
    "sip_registrations",
    "calls",
    "licensing",
    "monitor",
    "live_calls",
    "trunks",
    "archiving",
)


@dataclass(frozen=True)
class CollectorConfig:
    enabled: bool = True
    # None: every poll. Otherwise the action runs on the first poll at least this long
    # after its previous run, so the effective interval is a multiple of the system's.
    interval: float | None = None


@dataclass(frozen=True)
class AdminToken:
    name: str
    sha256: str = field(repr=False)  # hex digest of the token; the token itself is never kept
    scopes: frozenset[str] = frozenset({"read"})
    systems: tuple[str, ...] | None = None  # None = every system
    tenants: tuple[str, ...] | None = None  # None = every tenant
    # Exact (system, tenant) pairs; None = no pair restriction (systems × tenants apply).
    pairs: tuple[tuple[str, str], ...] | None = None
    file: str | None = None  # the token_file it was read from (for the permission warning)


@dataclass(frozen=True)
class AdminConfig:
    tokens: tuple[AdminToken, ...] = ()
    rate_limit: int = 60  # requests per minute per token


@dataclass(frozen=True)
class SystemConfig:
    name: str
    url: str
    # repr=False: the key must never reach a log line through a dataclass repr.
    api_key: str = field(repr=False)
    path: str = "/index.php"
    format: str = "json"
    tenants: tuple[str, ...] | None = None  # None = discover with pbxware.tenant.list
    extension_metrics: bool = False
    extension_metrics_limit: int = 10_000
    verify_tls: bool = True
    interval: float = 60.0
    timeout: float = 10.0
    concurrency: int = 4
    stale_after: int = 3
    # pbxware.ext.list, the largest answer, changes rarely: it is asked at most this often
    # (None: 10 × interval); monitor.list and ext_online keep the online state fresh.
    extension_list_interval: float | None = None
    cdr: CdrConfig = CdrConfig()
    collectors: Mapping[str, CollectorConfig] = field(default_factory=dict)

    def collector(self, name: str) -> CollectorConfig:
        return self.collectors.get(name, CollectorConfig())

    @property
    def extension_list_every(self) -> float:
        if self.extension_list_interval is not None:
            return self.extension_list_interval
        return 10 * self.interval

    @property
    def endpoint(self) -> str:
        return self.url.rstrip("/") + "/" + self.path.lstrip("/")


@dataclass(frozen=True)
class Config:
    systems: tuple[SystemConfig, ...]
    source: str = "<memory>"
    admin: AdminConfig = AdminConfig()

    def secrets(self) -> list[str]:
        return [s.api_key for s in self.systems]


def shard_of(system: str, count: int) -> int:
    """The shard (0..count-1) a system belongs to; stable across processes and versions."""
    digest = hashlib.sha256(system.encode()).digest()
    return int.from_bytes(digest[:8], "big") % count


def shard_config(config: Config, index: int, count: int) -> Config:
    """The part of the config that replica ``index`` of ``count`` polls."""
    if not 0 <= index < count:
        raise ValueError(f"--shard.index must be in 0..{count - 1}, got {index}")
    mine = tuple(s for s in config.systems if shard_of(s.name, count) == index)
    return replace(config, systems=mine)


def parse_duration(text: str) -> float:
    """Prometheus-style duration (``90s``, ``1m30s``, ``500ms``) in seconds."""
    match = _DURATION_RE.match(text)
    if not text or not match:
        raise ValueError(f"invalid duration {text!r} (expected e.g. 500ms, 30s, 1m30s, 1h)")
    return sum(int(v) * unit for v, unit in zip(match.groups(), _DURATION_UNITS, strict=True) if v)


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys silently; a config typo must not vanish."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return dict(loader.construct_pairs(node))


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(f"{path}: {message}" if path else message)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive_duration(value: Any) -> float:
    if not isinstance(value, str):
        raise ValueError(f"must be a duration string like 30s, got {type(value).__name__}")
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError("must be greater than 0")
    return seconds


def _positive_int(value: Any) -> int:
    if not _is_int(value):
        raise ValueError(f"must be an integer, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"must be at least 1, got {value}")
    return int(value)


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {value!r}")
    return value


def _fmt(value: Any) -> str:
    if value not in ("json", "php"):
        raise ValueError(f"must be json or php, got {value!r}")
    return str(value)


def _path(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith("/"):
        raise ValueError(f"must be a URL path starting with /, got {value!r}")
    return value


def _url(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {type(value).__name__}")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an http:// or https:// URL with a host, got {value!r}")
    if parts.query or parts.fragment:
        raise ValueError("must not carry a query string or fragment (the API key goes elsewhere)")
    return value


def _tenants(value: Any) -> tuple[str, ...] | None:
    if value == "all":
        return None
    if not isinstance(value, list) or not value:
        raise ValueError("must be 'all' or a non-empty list of tenant (server) ids")
    ids: list[str] = []
    for i, item in enumerate(value):
        text = str(item) if _is_int(item) else item
        if not isinstance(text, str) or not text.isdigit() or int(text) < 1:
            raise ValueError(f"[{i}] must be a positive tenant (server) id, got {item!r}")
        if text in ids:
            raise ValueError(f"[{i}] tenant {text} is listed twice")
        ids.append(text)
    return tuple(ids)


def _nonnegative_duration(value: Any) -> float:
    if not isinstance(value, str):
        raise ValueError(f"must be a duration string like 30s, got {type(value).__name__}")
    return parse_duration(value)


def _timezone(value: Any) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"unknown time zone {value!r} (e.g. UTC, Europe/Berlin)") from None
    return str(value)


def _page_size(value: Any) -> int:
    size = _positive_int(value)
    if size > 1000:
        raise ValueError(f"PBXware returns at most 1000 rows per page, got {size}")
    return size


def _section(value: Any, fields: Mapping[str, Callable[[Any], Any]], cls: Callable[..., T]) -> T:
    """A nested mapping whose problems carry their own key path."""
    if not isinstance(value, dict):
        raise ValueError("must be a mapping")
    out = {}
    for key, item in value.items():
        if key not in fields:
            raise FieldError(f".{key}", f"unknown key (allowed: {', '.join(sorted(fields))})")
        try:
            out[key] = fields[key](item)
        except FieldError as exc:
            raise FieldError(f".{key}{exc.subpath}", str(exc)) from None
        except ValueError as exc:
            raise FieldError(f".{key}", str(exc)) from None
    return cls(**out)


_CDR_FIELDS: dict[str, Callable[[Any], Any]] = {
    "enabled": _boolean,
    "interval": _positive_duration,
    "overlap": _nonnegative_duration,
    "backfill": _nonnegative_duration,
    "page_size": _page_size,
    "timezone": _timezone,
    "timeout": _positive_duration,
}


def _cdr(value: Any) -> CdrConfig:
    return _section(value, _CDR_FIELDS, CdrConfig)


_COLLECTOR_FIELDS: dict[str, Callable[[Any], Any]] = {
    "enabled": _boolean,
    "interval": _positive_duration,
}


def _collectors(value: Any) -> dict[str, CollectorConfig]:
    if not isinstance(value, dict):
        raise ValueError(f"must be a mapping of {', '.join(OPTIONAL_COLLECTORS)}")
    out = {}
    for name, item in value.items():
        if name not in OPTIONAL_COLLECTORS:
            raise FieldError(
                f".{name}", f"unknown collector (known: {', '.join(OPTIONAL_COLLECTORS)})"
            )
        try:
            out[name] = _section(item, _COLLECTOR_FIELDS, CollectorConfig)
        except FieldError as exc:
            raise FieldError(f".{name}{exc.subpath}", str(exc)) from None
        except ValueError as exc:
            raise FieldError(f".{name}", str(exc)) from None
    return out


# Keys a system (or `defaults`) may set, and how each value is checked and converted.
_FIELDS: dict[str, Callable[[Any], Any]] = {
    "url": _url,
    "path": _path,
    "format": _fmt,
    "tenants": _tenants,
    "extension_metrics": _boolean,
    "extension_metrics_limit": _positive_int,
    "verify_tls": _boolean,
    "interval": _positive_duration,
    "timeout": _positive_duration,
    "concurrency": _positive_int,
    "stale_after": _positive_int,
    "extension_list_interval": _positive_duration,
    "cdr": _cdr,
    "collectors": _collectors,
}
_KEY_FIELDS = ("api_key", "api_key_file")
_SYSTEM_KEYS = {"name", *_FIELDS, *_KEY_FIELDS}
_TOP_KEYS = {"defaults", "systems", "admin"}


def _expand_env(value: str) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ValueError(f"environment variable {name} is not set")
        return os.environ[name]

    return _ENV_RE.sub(replace, value)


def _api_key(raw: Mapping[str, Any], path: str, base_dir: Path, problems: _Problems) -> str:
    has_key, has_file = "api_key" in raw, "api_key_file" in raw
    if has_key and has_file:
        problems.add(path, "set either api_key or api_key_file, not both")
        return ""
    if not has_key and not has_file:
        problems.add(path, "missing api_key or api_key_file")
        return ""
    if has_key:
        value = raw["api_key"]
        if not isinstance(value, str):
            problems.add(f"{path}.api_key", "must be a string")
            return ""
        try:
            key = _expand_env(value).strip()
        except ValueError as exc:
            problems.add(f"{path}.api_key", str(exc))
            return ""
        if not key:
            problems.add(f"{path}.api_key", "is empty")
        return key
    file_value = raw["api_key_file"]
    if not isinstance(file_value, str) or not file_value:
        problems.add(f"{path}.api_key_file", "must be a file path")
        return ""
    key_path = base_dir / file_value
    try:
        key = key_path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        # Only the OS reason: the message must never quote file contents.
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8"
        problems.add(f"{path}.api_key_file", f"cannot read {str(key_path)!r}: {reason}")
        return ""
    if not key:
        problems.add(f"{path}.api_key_file", f"{str(key_path)!r} is empty")
    return key


def _check_fields(
    raw: Mapping[str, Any], path: str, problems: _Problems, out: dict[str, Any]
) -> None:
    for key, check in _FIELDS.items():
        if key not in raw:
            continue
        try:
            out[key] = check(raw[key])
        except FieldError as exc:
            problems.add(f"{path}.{key}{exc.subpath}", str(exc))
        except ValueError as exc:
            problems.add(f"{path}.{key}", str(exc))


def _unknown_keys(
    raw: Mapping[str, Any], allowed: set[str], path: str, problems: _Problems
) -> None:
    for key in raw:
        if key not in allowed:
            hint = ", ".join(sorted(allowed))
            problems.add(f"{path}.{key}" if path else str(key), f"unknown key (allowed: {hint})")


def parse_config(data: Any, source: str = "<memory>", base_dir: Path | None = None) -> Config:
    """Validate already-parsed YAML data; raises ConfigError naming every problem."""
    base_dir = base_dir or Path.cwd()
    problems = _Problems()
    if not isinstance(data, dict):
        raise ConfigError(source, ["the file must hold a mapping with a 'systems' list"])
    _unknown_keys(data, _TOP_KEYS, "", problems)

    defaults: dict[str, Any] = {}
    raw_defaults = data.get("defaults", {})
    if raw_defaults is None:
        raw_defaults = {}
    if not isinstance(raw_defaults, dict):
        problems.add("defaults", "must be a mapping")
        raw_defaults = {}
    _unknown_keys(raw_defaults, _SYSTEM_KEYS - {"name"}, "defaults", problems)
    _check_fields(raw_defaults, "defaults", problems, defaults)

    raw_systems = data.get("systems")
    systems: list[SystemConfig] = []
    if raw_systems is None:
        problems.add("systems", "missing: list at least one PBXware system")
        raw_systems = []
    elif not isinstance(raw_systems, list) or not raw_systems:
        problems.add("systems", "must be a non-empty list of systems")
        raw_systems = []

    names: dict[str, int] = {}
    for i, raw in enumerate(raw_systems):
        path = f"systems[{i}]"
        if not isinstance(raw, dict):
            problems.add(path, "must be a mapping with name, url and api_key")
            continue
        _unknown_keys(raw, _SYSTEM_KEYS, path, problems)
        name = raw.get("name")
        if name is None:
            problems.add(f"{path}.name", "missing")
        elif not isinstance(name, str) or not NAME_RE.match(name):
            problems.add(f"{path}.name", f"must match [a-z0-9_-]+, got {name!r}")
        elif name in names:
            problems.add(f"{path}.name", f"duplicate name {name!r} (also systems[{names[name]}])")
        else:
            names[name] = i
        values = dict(defaults)
        _check_fields(raw, path, problems, values)
        merged_keys = {k: raw[k] for k in _KEY_FIELDS if k in raw} or {
            k: raw_defaults[k] for k in _KEY_FIELDS if k in raw_defaults
        }
        key_path = path if any(k in raw for k in _KEY_FIELDS) or not merged_keys else "defaults"
        api_key = _api_key(merged_keys, key_path, base_dir, problems)
        if "url" not in values:
            if "url" not in raw and "url" not in raw_defaults:
                problems.add(f"{path}.url", "missing")
            continue
        interval = values.get("interval", SystemConfig.interval)
        timeout = values.get("timeout", SystemConfig.timeout)
        if timeout >= interval:
            where = f"{path}.timeout" if "timeout" in raw else f"{path}.interval"
            problems.add(
                where, f"timeout ({timeout:g}s) must be shorter than interval ({interval:g}s)"
            )
        if isinstance(name, str):
            systems.append(SystemConfig(name=name, api_key=api_key, **values))

    admin = _admin(data.get("admin"), base_dir, set(names), problems)
    if problems.items:
        raise ConfigError(source, problems.items)
    return Config(systems=tuple(systems), source=source, admin=admin)


_TOKEN_KEYS = {"name", "sha256", "token_file", "scopes", "systems", "tenants", "pairs"}
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def _admin(raw: Any, base_dir: Path, systems: set[str], problems: _Problems) -> AdminConfig:
    if raw is None:
        return AdminConfig()
    if not isinstance(raw, dict):
        problems.add("admin", "must be a mapping with tokens and rate_limit")
        return AdminConfig()
    _unknown_keys(raw, {"tokens", "rate_limit"}, "admin", problems)
    rate_limit = AdminConfig.rate_limit
    if "rate_limit" in raw:
        try:
            rate_limit = _positive_int(raw["rate_limit"])
        except ValueError as exc:
            problems.add("admin.rate_limit", f"{exc} (requests per minute per token)")
    raw_tokens = raw.get("tokens", [])
    if not isinstance(raw_tokens, list):
        problems.add("admin.tokens", "must be a list")
        raw_tokens = []
    tokens: list[AdminToken] = []
    seen: set[str] = set()
    for i, item in enumerate(raw_tokens):
        path = f"admin.tokens[{i}]"
        token = _admin_token(item, path, base_dir, systems, problems)
        if token is None:
            continue
        if token.name in seen:
            problems.add(f"{path}.name", f"duplicate token name {token.name!r}")
        seen.add(token.name)
        tokens.append(token)
    return AdminConfig(tokens=tuple(tokens), rate_limit=rate_limit)


def _admin_token(
    item: Any, path: str, base_dir: Path, systems: set[str], problems: _Problems
) -> AdminToken | None:
    if not isinstance(item, dict):
        problems.add(path, "must be a mapping with name, sha256 or token_file, and scopes")
        return None
    before = len(problems.items)
    _unknown_keys(item, _TOKEN_KEYS, path, problems)
    name = item.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        problems.add(f"{path}.name", f"must match [a-z0-9_-]+, got {name!r}")
    digest = ""
    file: str | None = None
    if ("sha256" in item) == ("token_file" in item):
        problems.add(path, "set exactly one of sha256 (hex digest of the token) or token_file")
    elif "sha256" in item:
        digest = str(item["sha256"]).lower()
        if not _SHA256_RE.match(digest):
            problems.add(f"{path}.sha256", "must be 64 hex digits (sha256sum of the token)")
    else:
        token_path = base_dir / str(item["token_file"])
        file = str(token_path)
        try:
            secret = token_path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8"
            problems.add(f"{path}.token_file", f"cannot read {item['token_file']!r}: {reason}")
            secret = ""
        else:
            if len(secret) < 16:
                problems.add(f"{path}.token_file", "the token must be at least 16 characters")
        digest = hashlib.sha256(secret.encode()).hexdigest()
    scopes = item.get("scopes", ["read"])
    if not isinstance(scopes, list) or not scopes or not set(scopes) <= {"read", "edit"}:
        problems.add(f"{path}.scopes", f"must be a list of read and/or edit, got {scopes!r}")
        scopes = ["read"]
    systems_ = _restriction(item, "systems", path, problems, lambda v: _token_system(v, systems))
    tenants = _restriction(item, "tenants", path, problems, _tenant_id)
    pairs = _restriction(item, "pairs", path, problems, lambda v: _token_pair(v, systems))
    if pairs is not None and (systems_ is not None or tenants is not None):
        problems.add(f"{path}.pairs", "use pairs instead of systems and tenants, not with them")
    if len(problems.items) > before:
        return None
    return AdminToken(
        name=str(name),
        sha256=digest,
        scopes=frozenset(scopes),
        systems=systems_,
        tenants=tenants,
        pairs=pairs,
        file=file,
    )


def _restriction(
    item: Mapping[str, Any],
    key: str,
    path: str,
    problems: _Problems,
    check: Callable[[Any], T],
) -> tuple[T, ...] | None:
    """A token's list of systems, tenants or pairs, each item checked; None when not set."""
    if key not in item:
        return None
    values = item[key]
    if not isinstance(values, list) or not values:
        problems.add(f"{path}.{key}", "must be a non-empty list")
        return None
    out: list[T] = []
    for i, value in enumerate(values):
        try:
            checked = check(value)
        except ValueError as exc:
            problems.add(f"{path}.{key}[{i}]", str(exc))
            continue
        if checked in out:
            problems.add(f"{path}.{key}[{i}]", f"{value!r} is listed twice")
            continue
        out.append(checked)
    return tuple(out)


_TENANT_ID_RE = re.compile(r"^[0-9]{1,10}$")


def _tenant_id(value: Any) -> str:
    """A tenant id of a token restriction: a quoted string of digits, as PBXware prints it.

    A YAML number is refused rather than converted: unquoted, ``010`` is the octal 8 and
    ``0x10`` is 16, so converting would quietly grant another tenant."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f'must be a quoted tenant id like "2", got {type(value).__name__}')
    if isinstance(value, int):
        raise ValueError(
            f"must be a quoted tenant id (a string of digits), got the number {value}: write "
            f'it in quotes ("{value}") after checking it is meant (unquoted, YAML reads 010 as '
            "8 and 0x10 as 16)"
        )
    if not _TENANT_ID_RE.match(value):
        raise ValueError(f"must be a tenant id of digits 0-9 only, got {value!r}")
    if value.startswith("0"):
        raise ValueError(f"a tenant id has no leading zero, got {value!r}")
    return value


def _token_system(value: Any, systems: set[str]) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a system name, got {type(value).__name__} {value!r}")
    if value not in systems:
        raise ValueError(f"{value!r} is not a configured system")
    return value


def _token_pair(value: Any, systems: set[str]) -> tuple[str, str]:
    if not isinstance(value, str) or value.count("/") != 1:
        raise ValueError(f"must be system/tenant like eu1/2, got {value!r}")
    system, tenant = value.split("/")
    return _token_system(system, systems), _tenant_id(tenant)


def load_config(path: str | os.PathLike[str]) -> Config:
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8"
        raise ConfigError(source, [f"cannot read the file: {reason}"]) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, [f"{where}invalid YAML: {problem}"]) from None
    return parse_config(data, source=source, base_dir=Path(path).resolve().parent)
