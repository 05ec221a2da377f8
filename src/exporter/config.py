"""Loading and validating the YAML config.

Every problem is reported with the file, the key path (``systems[1].interval``) and what is
wrong; all problems of a file are reported together so that one run fixes them all.

Validation is declared with pydantic v2 models (the ``_File`` family below), chosen for the
config, the web config and admin bodies alike (issue 15): strict (no ``"4"`` taken for 4, no
``yes`` for true), ``extra="forbid"`` (a misspelt key is an error, not a silent default), and
every error of the file collected in one pass with its location. The models only validate;
the rest of the code reads the frozen dataclasses below (``Config``, ``SystemConfig``…), built
from a validated file, so callers and tests keep ``dataclasses.replace`` and plain attributes.
pydantic's errors become our problem lines in exporter/validation.py (shared with the web
config and admin bodies): the reason names what is expected and what was found, never a
secret. Rules about which keys go together (``_presence``) are read off the raw mappings, so
that they are reported with the rest even when a field is wrong.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, NamedTuple
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    Field,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    create_model,
    model_validator,
)
from pydantic_core import ErrorDetails

from .validation import Loc, Problem, StrictModel, problem_lines, rule

NAME_RE = re.compile(r"^[a-z0-9_-]+$")
_DURATION_RE = re.compile(
    r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$"
)
_DURATION_UNITS = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)
_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


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


# --- Value checks: each takes the YAML value and returns the converted one, or raises
# ValueError with the reason (pydantic reports it at the value's key path).


def _duration(value: Any) -> float:
    if not isinstance(value, str):
        raise ValueError(f"must be a duration string like 30s, got {type(value).__name__}")
    return parse_duration(value)


def _positive_duration(value: Any) -> float:
    seconds = _duration(value)
    if seconds <= 0:
        raise ValueError("must be greater than 0")
    return seconds


def _name(value: Any) -> str:
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise ValueError(f"must match [a-z0-9_-]+, got {value!r}")
    return value


def _path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"must be a URL path starting with /, got {value!r}")
    return value


def _url(value: str) -> str:
    parts = urlsplit(value)
    # Checked first: a URL with a query may hold the key, and is then never quoted back.
    if parts.query or parts.fragment:
        raise ValueError("must not carry a query string or fragment (the API key goes elsewhere)")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an http:// or https:// URL with a host, got {value!r}")
    return value


def _system_tenants(value: Any) -> tuple[str, ...] | None:
    """``all`` or the server ids to poll; YAML numbers are fine here (PBXware ids)."""
    if value == "all":
        return None
    if not isinstance(value, list) or not value:
        raise ValueError("must be 'all' or a non-empty list of tenant (server) ids")
    ids: list[str] = []
    for i, item in enumerate(value):
        text = str(item) if isinstance(item, int) and not isinstance(item, bool) else item
        if not isinstance(text, str) or not text.isdigit() or int(text) < 1:
            raise ValueError(f"[{i}] must be a positive tenant (server) id, got {item!r}")
        if text in ids:
            raise ValueError(f"[{i}] tenant {text} is listed twice")
        ids.append(text)
    return tuple(ids)


def _timezone(value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (e.g. UTC, Europe/Berlin)") from None
    return value


def _page_size(value: int) -> int:
    if value > 1000:
        raise ValueError(f"PBXware returns at most 1000 rows per page, got {value}")
    return value


def _expand_env(value: str) -> str:
    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ValueError(f"environment variable {name} is not set")
        return os.environ[name]

    return _ENV_RE.sub(substitute, value)


def _api_key(value: str) -> str:
    key = _expand_env(value).strip()
    if not key:
        raise ValueError("is empty")
    return key


def _context(info: ValidationInfo) -> dict[str, Any]:
    """What parse_config passes down: the config's folder and the names of its systems."""
    assert isinstance(info.context, dict)
    return info.context


def _read_secret(value: Any, info: ValidationInfo) -> tuple[Path, str]:
    """The file (relative to the config's folder) and its stripped text."""
    if not isinstance(value, str) or not value:
        raise ValueError("must be a file path")
    path: Path = _context(info)["base_dir"] / value
    try:
        return path, path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        # Only the OS reason: the message must never quote file contents.
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8"
        raise ValueError(f"cannot read {str(path)!r}: {reason}") from None


def _api_key_from_file(value: Any, info: ValidationInfo) -> str:
    path, key = _read_secret(value, info)
    if not key:
        raise ValueError(f"{str(path)!r} is empty")
    return key


class _TokenFile(NamedTuple):
    path: str
    sha256: str


def _token_file(value: Any, info: ValidationInfo) -> _TokenFile:
    path, secret = _read_secret(value, info)
    if len(secret) < 16:
        raise ValueError("the token must be at least 16 characters")
    return _TokenFile(str(path), hashlib.sha256(secret.encode()).hexdigest())


_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def _sha256(value: str) -> str:
    if not _SHA256_RE.match(value.lower()):
        raise ValueError("must be 64 hex digits (sha256sum of the token)")
    return value.lower()


def _scopes(value: Any) -> frozenset[str]:
    if not isinstance(value, list) or not value or not set(value) <= {"read", "edit"}:
        raise ValueError(f"must be a list of read and/or edit, got {value!r}")
    return frozenset(value)


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


def _token_system(value: Any, info: ValidationInfo) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a system name, got {type(value).__name__} {value!r}")
    if value not in _context(info)["systems"]:
        raise ValueError(f"{value!r} is not a configured system")
    return value


def _token_pair(value: Any, info: ValidationInfo) -> tuple[str, str]:
    if not isinstance(value, str) or value.count("/") != 1:
        raise ValueError(f"must be system/tenant like eu1/2, got {value!r}")
    system, tenant = value.split("/")
    return _token_system(system, info), _tenant_id(tenant)


def _distinct(values: list[Any]) -> list[Any]:
    for i, value in enumerate(values):
        if value in values[:i]:
            shown = "/".join(value) if isinstance(value, tuple) else value
            raise rule(f"{shown!r} is listed twice", f"[{i}]")
    return values


Duration = Annotated[float, PlainValidator(_duration)]
PositiveDuration = Annotated[float, PlainValidator(_positive_duration)]
PositiveInt = Annotated[int, Field(ge=1)]
# The restrictions of a token: a non-empty list, each item checked (at its own index), none
# listed twice.
TokenSystems = Annotated[
    list[Annotated[str, PlainValidator(_token_system)]],
    Field(min_length=1),
    AfterValidator(_distinct),
]
TokenTenants = Annotated[
    list[Annotated[str, PlainValidator(_tenant_id)]], Field(min_length=1), AfterValidator(_distinct)
]
TokenPairs = Annotated[
    list[Annotated[tuple[str, str], PlainValidator(_token_pair)]],
    Field(min_length=1),
    AfterValidator(_distinct),
]


# --- The schema (StrictModel: strict, unknown keys refused). The defaults are the
# dataclasses'; what a file left out is told by given().


class _Cdr(StrictModel):
    enabled: bool = CdrConfig.enabled
    interval: PositiveDuration = CdrConfig.interval
    overlap: Duration = CdrConfig.overlap
    backfill: Duration = CdrConfig.backfill
    page_size: Annotated[PositiveInt, AfterValidator(_page_size)] = CdrConfig.page_size
    timezone: Annotated[str, AfterValidator(_timezone)] = CdrConfig.timezone
    timeout: PositiveDuration = CdrConfig.timeout


class _Collector(StrictModel):
    enabled: bool = True
    interval: Annotated[float | None, PlainValidator(_positive_duration)] = None


_Collectors: type[StrictModel] = create_model(  # one optional section per collector name
    "_Collectors",
    __base__=StrictModel,
    **{name: (_Collector, _Collector()) for name in OPTIONAL_COLLECTORS},  # type: ignore[call-overload]
)
_Collectors.unknown = "unknown collector"
_Collectors.shape = f"a mapping of {', '.join(OPTIONAL_COLLECTORS)}"


class _SystemFields(StrictModel):
    """What a system or ``defaults`` may set; ``given()`` says which ones it did."""

    url: Annotated[str, AfterValidator(_url)] = ""  # required: checked by _presence
    api_key: Annotated[str, AfterValidator(_api_key), Field(repr=False)] = ""
    # The key read from the file (relative to the config's folder), not the file's name.
    api_key_file: Annotated[str, PlainValidator(_api_key_from_file), Field(repr=False)] = ""
    path: Annotated[str, AfterValidator(_path)] = SystemConfig.path
    format: Literal["json", "php"] = "json"
    tenants: Annotated[tuple[str, ...] | None, PlainValidator(_system_tenants)] = None
    extension_metrics: bool = SystemConfig.extension_metrics
    extension_metrics_limit: PositiveInt = SystemConfig.extension_metrics_limit
    verify_tls: bool = SystemConfig.verify_tls
    interval: PositiveDuration = SystemConfig.interval
    timeout: PositiveDuration = SystemConfig.timeout
    concurrency: PositiveInt = SystemConfig.concurrency
    stale_after: PositiveInt = SystemConfig.stale_after
    extension_list_interval: Annotated[float | None, PlainValidator(_positive_duration)] = None
    cdr: _Cdr = _Cdr()
    collectors: _Collectors = _Collectors()  # type: ignore[valid-type]


class _System(_SystemFields):
    shape: ClassVar[str] = "a mapping with name, url and api_key"
    name: Annotated[str, PlainValidator(_name)]


class _Token(StrictModel):
    shape: ClassVar[str] = "a mapping with name, sha256 or token_file, and scopes"
    name: Annotated[str, PlainValidator(_name)]
    sha256: Annotated[str, AfterValidator(_sha256), Field(repr=False)] = ""
    token_file: Annotated[_TokenFile | None, PlainValidator(_token_file)] = None
    scopes: Annotated[frozenset[str], PlainValidator(_scopes)] = frozenset({"read"})
    # Unset: no restriction. Not Optional: `tenants:` left empty (null) must not mean "all".
    systems: TokenSystems = Field(default_factory=list)
    tenants: TokenTenants = Field(default_factory=list)
    pairs: TokenPairs = Field(default_factory=list)

    def restriction(self, key: str) -> tuple[Any, ...] | None:
        return tuple(getattr(self, key)) if key in self.model_fields_set else None


class _Admin(StrictModel):
    shape: ClassVar[str] = "a mapping with tokens and rate_limit"
    tokens: list[_Token] = Field(default_factory=list)
    rate_limit: Annotated[PositiveInt, Field(description="requests per minute per token")] = 60


class _File(StrictModel):
    shape: ClassVar[str] = "a mapping with a 'systems' list"
    defaults: _SystemFields = _SystemFields()
    systems: Annotated[
        list[_System], Field(min_length=1, description="at least one PBXware system to poll")
    ]
    admin: _Admin = _Admin()

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, data: Any) -> Any:
        """A section with nothing under it (``admin:``) is left out: the default, or missing.
        (An unknown key stays, whatever its value, to be reported.)"""
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None or k not in cls.model_fields}
        return data


def _mapping(data: Any, key: str) -> dict[Any, Any]:
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, dict) else {}


def _list(data: Any, key: str) -> list[Any]:
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, list) else []


def _presence(data: Any) -> Iterator[Problem]:
    """Rules about which keys go together, read off the raw mappings.

    pydantic runs a model's own rules only once every field of it is valid; these are about
    keys present or absent, so they are checked here and reported with all the rest."""
    defaults = _mapping(data, "defaults")
    if "api_key" in defaults and "api_key_file" in defaults:
        yield Problem(("defaults",), "defaults", "set either api_key or api_key_file, not both")
    names: dict[str, int] = {}
    for i, raw in enumerate(_list(data, "systems")):
        if isinstance(raw, dict):
            yield from _system_presence(i, raw, defaults, names)
    seen: set[str] = set()
    for i, token in enumerate(_list(_mapping(data, "admin"), "tokens")):
        if isinstance(token, dict):
            yield from _token_presence(i, token, seen)


def _system_presence(
    i: int, raw: dict[Any, Any], defaults: dict[Any, Any], names: dict[str, int]
) -> Iterator[Problem]:
    loc: Loc = ("systems", i)
    path = f"systems[{i}]"
    if "url" not in raw and "url" not in defaults:
        yield Problem((*loc, "url"), f"{path}.url", "missing")
    if "api_key" in raw and "api_key_file" in raw:
        yield Problem(loc, path, "set either api_key or api_key_file, not both")
    elif not any(k in raw or k in defaults for k in ("api_key", "api_key_file")):
        yield Problem(loc, path, "missing api_key or api_key_file")
    name = raw.get("name")
    if isinstance(name, str) and NAME_RE.match(name):
        if name in names:
            reason = f"duplicate name {name!r} (also systems[{names[name]}])"
            yield Problem((*loc, "name"), f"{path}.name", reason)
        names.setdefault(name, i)


def _token_presence(i: int, token: dict[Any, Any], seen: set[str]) -> Iterator[Problem]:
    loc, path = ("admin", "tokens", i), f"admin.tokens[{i}]"
    if ("sha256" in token) == ("token_file" in token):
        yield Problem(
            loc, path, "set exactly one of sha256 (hex digest of the token) or token_file"
        )
    if "pairs" in token and ("systems" in token or "tenants" in token):
        reason = "use pairs instead of systems and tenants, not with them"
        yield Problem((*loc, "pairs"), f"{path}.pairs", reason)
    name = token.get("name")
    if isinstance(name, str) and name in seen:
        yield Problem((*loc, "name"), f"{path}.name", f"duplicate token name {name!r}")
    seen.add(str(name))


# --- From a validated file to the dataclasses the rest of the code reads.


def _system(index: int, system: _System, defaults: _SystemFields) -> SystemConfig:
    """One system, its keys over those of ``defaults`` (the API key and its file as a pair)."""
    values = {**defaults.given(), **system.given()}
    own_key = system.model_fields_set & {"api_key", "api_key_file"}
    holder = system if own_key else defaults
    values["api_key"] = holder.api_key or holder.api_key_file
    values.pop("api_key_file", None)
    if "cdr" in values:
        values["cdr"] = CdrConfig(**values["cdr"].given())
    if "collectors" in values:
        chosen = values["collectors"]
        values["collectors"] = {
            name: CollectorConfig(**getattr(chosen, name).given())
            for name in OPTIONAL_COLLECTORS
            if name in chosen.model_fields_set
        }
    config = SystemConfig(**values)
    if config.timeout >= config.interval:
        where = "timeout" if "timeout" in system.model_fields_set else "interval"
        raise _BuildError(
            f"systems[{index}].{where}: timeout ({config.timeout:g}s) must be shorter than"
            f" interval ({config.interval:g}s)"
        )
    return config


class _BuildError(ValueError):
    """A rule across keys that only the merged values can tell."""


def _token(token: _Token) -> AdminToken:
    return AdminToken(
        name=token.name,
        sha256=token.token_file.sha256 if token.token_file else token.sha256,
        scopes=token.scopes,
        systems=token.restriction("systems"),
        tenants=token.restriction("tenants"),
        pairs=token.restriction("pairs"),
        file=token.token_file.path if token.token_file else None,
    )


def parse_config(data: Any, source: str = "<memory>", base_dir: Path | None = None) -> Config:
    """Validate already-parsed YAML data; raises ConfigError naming every problem."""
    context = {
        "base_dir": base_dir or Path.cwd(),
        # What a token's systems may name: every system the file lists.
        "systems": {
            name
            for s in _list(data, "systems")
            if isinstance(s, dict) and isinstance(name := s.get("name"), str)
        },
    }
    errors: list[ErrorDetails] = []
    try:
        file = _File.model_validate(data, context=context)
    except ValidationError as exc:
        errors = exc.errors()
    found = problem_lines(_File, data, errors, _presence(data))
    if found:
        raise ConfigError(source, found)
    problems: list[str] = []
    systems: list[SystemConfig] = []
    for i, system in enumerate(file.systems):
        try:
            systems.append(_system(i, system, file.defaults))
        except _BuildError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError(source, problems)
    admin = AdminConfig(
        tokens=tuple(_token(t) for t in file.admin.tokens), rate_limit=file.admin.rate_limit
    )
    return Config(systems=tuple(systems), source=source, admin=admin)


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
