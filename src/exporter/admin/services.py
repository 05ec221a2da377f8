r"""The enhanced services the admin API exposes, each declared once as a schema.

A schema names the fields PBXware's ``pbxware.ext.es.<service>.edit`` takes, what each may
hold, and the rules between fields (docs/pbxware-api.md §3.9). ``validate()`` checks a JSON
body against it and turns it into the exact query arguments PBXware expects: JSON arrays
become PBXware's ``a:b:c`` (caller ID) or ``a,b,c`` (everything else) lists, numbers and
booleans become the strings PBXware's PHP compares against. Nothing that fails here is ever
sent to a PBX.

The check is a pydantic model built from the schema (``_body_model``, on the
``StrictModel`` of exporter/validation.py, as the config and the web config): unknown fields
refused, every problem found in one pass with its key path (``enabled[1]``); the answer
names the first. The field
types themselves stay as lenient as Bicom (a digit string or a JSON number, ``true`` or 1),
so each is a plain validator of ours rather than a strict pydantic type.

No stricter than Bicom (issue 16): the rules are those of Bicom's Postman collection
(bicomsystems/PBXware-API-Documentation, PBXwareAPI_Doc.postman_collection.json, the
"Enhanced Services" requests), argument by argument, each cited below as [PM <argument>].
An argument Bicom gives no rule for takes what its description says ("numbers only", a list
of named values); only rules Bicom states between arguments are checked (call filters: equal
sizes, callers start with "anonymous"). Empty list entries are allowed wherever Bicom's list
regex allows them (``(,|\d+)+`` matches ``"1,,2"``). Two rules of our own stay, both about
safety rather than meaning: no control characters in any text, and bounded sizes. Whatever
passes here PBXware may still refuse: its ``{"error": …}`` is the final word (502 with its
text, exporter/admin/gateway.py).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar

import pydantic
from pydantic import AfterValidator, BeforeValidator, PlainValidator, create_model

from ..validation import StrictModel, problems, rule

# The six services of the issue, in the order the runbook page shows them.
SERVICES: tuple[str, ...] = (
    "callerid",
    "callfilters",
    "dnd",
    "callfwd",
    "blflist",
    "extoperationtimes",
)

# Longest list we accept; PBXware documents none, but a BLF list of a few hundred keys is
# already more than any phone has. Bounds the work one request can cause.
MAX_ITEMS = 200
MAX_TEXT = 128


class ValidationError(ValueError):
    """A body the admin API refuses with 400; ``field`` is the offending key (or None) of
    the first problem, ``problems`` every problem of the body (``field: reason`` lines)."""

    def __init__(self, field: str | None, message: str, problems: list[str] | None = None) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)
        self.problems = problems if problems is not None else [str(self)]


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _show(text: str) -> str:
    """A value quoted back in an error message, cut short: errors stay one readable line."""
    return repr(text if len(text) <= 40 else text[:40] + "…")


def _number(value: float) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "…"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _printable(text: str) -> bool:
    # Control characters (newlines included) have no place in a caller ID or label, and a
    # NUL or newline reaching PBXware's PHP/Asterisk config is asking for trouble.
    return all(ch.isprintable() for ch in text)


# --- field types ---------------------------------------------------------------------------


class FieldType:
    """Checks one JSON value and returns it in PBXware's string form; ``check`` raises
    ValueError with the reason (the body's model puts the key path in front)."""

    description = "a value"

    def check(self, value: Any) -> str:
        raise NotImplementedError

    def annotation(self) -> Any:
        """The pydantic type of a field of this type."""
        return Annotated[str, PlainValidator(self.check)]


@dataclass(frozen=True)
class Text(FieldType):
    """A string; ``pattern`` (full match) narrows it further."""

    pattern: re.Pattern[str] | None = None
    max_length: int = MAX_TEXT
    allow_empty: bool = True
    description: str = "a string"

    def check(self, value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"must be {self.description}, got {_kind(value)}")
        if not value and not self.allow_empty:
            raise ValueError("must not be empty")
        if len(value) > self.max_length:
            raise ValueError(f"must be at most {self.max_length} characters")
        if not _printable(value):
            raise ValueError("must not contain control characters")
        if self.pattern is not None and value and not self.pattern.fullmatch(value):
            raise ValueError(f"must be {self.description}, got {_show(value)}")
        return value


@dataclass(frozen=True)
class Digits(FieldType):
    """A string of decimal digits (an extension, a destination); a JSON integer ≥ 0 too.
    ``allow_empty``: an empty entry, where Bicom's list regex allows one."""

    max_length: int = 32
    description: str = "a string of digits"
    allow_empty: bool = False

    def check(self, value: Any) -> str:
        if _is_int(value) and value >= 0:
            value = str(value)
        if not isinstance(value, str):
            raise ValueError(f"must be {self.description}, got {_kind(value)}")
        if not value and self.allow_empty:
            return value
        if not value or not value.isascii() or not value.isdigit():
            raise ValueError(f"must be {self.description}, got {_show(value)}")
        if len(value) > self.max_length:
            raise ValueError(f"must be at most {self.max_length} digits")
        return value


@dataclass(frozen=True)
class IntRange(FieldType):
    """A whole number in [low, high]: a JSON integer or a string of digits."""

    low: int
    high: int

    @property
    def description(self) -> str:  # type: ignore[override]
        return f"an integer from {self.low} to {self.high}"

    def check(self, value: Any) -> str:
        if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 12:
            value = int(value)
        if not _is_int(value):
            raise ValueError(f"must be {self.description}, got {_kind(value)}")
        if not self.low <= value <= self.high:
            raise ValueError(f"must be {self.description}, got {_number(value)}")
        return str(value)


@dataclass(frozen=True)
class Choice(FieldType):
    """One of a fixed set of strings; integers are accepted for numeric choices.
    ``allow_empty``: an empty entry too (a list entry Bicom's regex lets be empty)."""

    values: tuple[str, ...]
    allow_empty: bool = False

    @property
    def description(self) -> str:  # type: ignore[override]
        return "one of " + ", ".join(repr(v) for v in self.values)

    def check(self, value: Any) -> str:
        if _is_int(value):
            value = str(value)
        if value == "" and self.allow_empty:
            return ""
        if not isinstance(value, str) or value not in self.values:
            shown = _show(value) if isinstance(value, str) else _kind(value)
            raise ValueError(f"must be {self.description}, got {shown}")
        return value


@dataclass(frozen=True)
class Flag(FieldType):
    """PBXware's 1/0 switches: true/false, 1/0 or "1"/"0"."""

    description: str = "true/false or 1/0"

    def check(self, value: Any) -> str:
        if isinstance(value, bool):
            return "1" if value else "0"
        if value in (0, 1, "0", "1") and not isinstance(value, float):
            return str(value)
        if isinstance(value, str):
            shown = _show(value)
        else:
            shown = _number(value) if isinstance(value, int | float) else _kind(value)
        raise ValueError(f"must be {self.description}, got {shown}")


@dataclass(frozen=True)
class ListOf(FieldType):
    """A JSON array of ``item``s, sent joined with ``separator``."""

    item: FieldType
    separator: str
    unique: bool = False
    min_items: int = 0

    @property
    def description(self) -> str:  # type: ignore[override]
        return f"an array of {self.item.description}"

    def _array(self, value: Any) -> Any:
        if not isinstance(value, list):
            raise ValueError(f"must be a JSON array, got {_kind(value)}")
        if len(value) > MAX_ITEMS:
            raise ValueError(f"must have at most {MAX_ITEMS} items")
        if len(value) < self.min_items:
            raise ValueError(f"must have at least {self.min_items} item(s)")
        return value

    def _item(self, value: Any) -> str:
        text = self.item.check(value)
        if self.separator in text:
            # We join the list ourselves; an item holding the separator would split into
            # two on PBXware's side.
            raise ValueError(f"must not contain {self.separator!r}")
        return text

    def _distinct(self, items: list[str]) -> list[str]:
        for index, text in enumerate(items):
            if self.unique and text in items[:index]:
                raise rule(f"{_show(text)} is listed twice", f"[{index}]")
        return items

    def check(self, value: Any) -> str:
        raise NotImplementedError("a list is validated item by item: see annotation()")

    def annotation(self) -> Any:
        """A JSON array checked whole (type, size), then item by item (each error at its
        index, ``enabled[1]``), then for repeats."""
        return Annotated[
            list[Annotated[str, PlainValidator(self._item)]],
            BeforeValidator(self._array),
            AfterValidator(self._distinct),
        ]


# --- schemas ---------------------------------------------------------------------------------

Rule = Callable[[Mapping[str, Any]], None]


@dataclass(frozen=True)
class ServiceSchema:
    name: str
    title: str
    fields: Mapping[str, FieldType] = field(default_factory=dict)
    required: frozenset[str] = frozenset()
    # Lists that describe one record per index: sent together, of equal length.
    parallel: tuple[tuple[str, ...], ...] = ()
    # Further rules over the converted values (lists as lists of strings).
    rules: tuple[Rule, ...] = ()
    # False: PBXware has no .edit action for the service (it can still be read and switched).
    editable: bool = True
    not_editable_reason: str = ""
    # Keys .configuration answers that .edit does not take: accepted so that what a GET
    # returns can be PUT back, and not sent.
    read_only: frozenset[str] = frozenset()
    # Fields whose value may be "" or null, meaning unset: then not sent at all.
    omit_when_unset: frozenset[str] = frozenset()
    # List fields .configuration answers as one comma-joined string.
    comma_strings: frozenset[str] = frozenset()

    def action(self, method: str) -> str:
        return f"pbxware.ext.es.{self.name}.{method}"


# Item patterns: Bicom's list regexes ([PM …], JavaScript, where \w and \d are ASCII) with the
# separator alternative taken out, so one entry. `\s` is narrowed to a space: every text is
# refused control characters anyway (ours, for safety).
# [PM anums] /^(:|(([\+]?[\d\s])+))+$/
_ALLOWED_NUMBER = re.compile(r"(?:\+?[\d ])+", re.ASCII)
# [PM alabels], [PM tcallerids], [PM blflist labels] /^(:|([\+\w\s]+(\s*<[\+\d]+>)?))+$/
_CALLER_LABEL = re.compile(r"[+\w ]+(?: *<[+\d]+>)?", re.ASCII)
# BLF labels: Bicom's label pattern, or (our older GUESS, kept: looser is allowed) names with
# a few signs such as "Ana B." — PBXware has the final word on those.
_BLF_LABEL = re.compile(r"[+\w ]+(?: *<[+\d]+>)?|[\w .@+-]*", re.ASCII)
# [PM trunks] /^(:|[a-zA-Z0-9_.-]+)+$/
_TRUNK_NAME = re.compile(r"[a-zA-Z0-9_.-]+")
# [PM acodes] /^(([\d]?(:([\d])?)+)|[\d])$/: one digit or nothing per entry
_SHORT_CODE = re.compile(r"\d?", re.ASCII)
# [PM callers] "List of caller numbers … must start with anonymous": no regex given.
_CALLER = re.compile(r"anonymous|\+?\d{1,32}", re.ASCII)

# [PM tprivacies] 0 anonymous, 1 anonymous_id, 2 anonymous_number, 3 anonymous_number_id,
# 4 none; empty: the trunk's default (a live configuration shows "" privacies).
_PRIVACY = Choice(("0", "1", "2", "3", "4"), allow_empty=True)
_CALLFWD_CONDITIONS = ("unconditional", "busy", "no answer", "line unavailable")
_FILTER_TYPES = ("call forward number", "no answer", "busy", "voicemail", "not in service")


def _callers_start_with_anonymous(values: Mapping[str, Any]) -> None:
    callers = values.get("callers")
    if callers is not None and (not callers or callers[0] != "anonymous"):
        raise ValidationError(
            "callers", "must start with 'anonymous' (the entry for anonymous callers)"
        )


def _colon(item: FieldType) -> ListOf:
    return ListOf(item, ":")


def _comma(item: FieldType, **kwargs: Any) -> ListOf:
    return ListOf(item, ",", **kwargs)


SCHEMAS: dict[str, ServiceSchema] = {
    "callerid": ServiceSchema(
        name="callerid",
        title="Caller ID",
        fields={
            "callerid": Text(description="a caller ID such as '\"Ana\" <1001>'"),  # [PM] no rule
            "emergencycid": Text(description="an emergency caller ID"),
            "anums": _colon(Text(_ALLOWED_NUMBER, 32, True, "a number (digits, '+', spaces)")),
            "alabels": _colon(Text(_CALLER_LABEL, 64, True, "a label like 'Sales <+3851>'")),
            "acodes": _colon(Text(_SHORT_CODE, 1, True, "a one-digit short code or ''")),
            "trunks": _colon(Text(_TRUNK_NAME, 64, True, "a trunk name ([a-zA-Z0-9_.-])")),
            "tcallerids": _colon(Text(_CALLER_LABEL, 64, True, "a caller ID like 'Sales <1>'")),
            "tprivacies": _colon(_PRIVACY),
        },
        # [PM callerid] "(Required)"; the lists are optional, each on its own ([PM] states
        # no rule between them: acodes and tprivacies need not come with their group).
        required=frozenset({"callerid"}),
    ),
    "callfilters": ServiceSchema(
        name="callfilters",
        title="Call filters & blocking",
        fields={
            "callers": _comma(
                Text(_CALLER, 33, True, "'anonymous', a caller number or ''")
            ),  # [PM callers]
            # [PM dtypes] "call forward number|no answer|busy|voicemail|not in service"
            "dtypes": _comma(Choice(_FILTER_TYPES, allow_empty=True)),
            # [PM destinations] "(numbers only)"; Bicom's own example ends with an empty one
            "destinations": _comma(Digits(allow_empty=True)),
            "telemarketer": Flag(),  # [PM telemarketer] 1 or 0
        },
        # [PM callers/dtypes/destinations] "(Required)", "must be same size"
        required=frozenset({"callers", "dtypes", "destinations"}),
        parallel=(("callers", "dtypes", "destinations"),),
        rules=(_callers_start_with_anonymous,),
    ),
    "dnd": ServiceSchema(
        name="dnd",
        title="Do not disturb",
        fields={
            "dnd": Choice(("0", "1", "2")),  # [PM dnd] /^(0|1|2)$/
            "dst": Digits(),  # [PM dst] /^\d+$/
            "dsttype": Choice(("voicemail", "call forward")),  # [PM dsttype]
            "duration": Digits(12),  # [PM duration] "Duration in hours (numbers only)"
        },
        # [PM] marks no DND argument required. An empty dst or a null duration (what
        # .configuration shows when unset) is not sent at all.
        omit_when_unset=frozenset({"dst", "dsttype", "duration"}),
    ),
    "callfwd": ServiceSchema(
        name="callfwd",
        title="Call forwarding",
        fields={
            # [PM enabled] "unconditional|busy|no answer|line unavailable"
            "enabled": _comma(Choice(_CALLFWD_CONDITIONS), unique=True),
            # [PM *_dests], [PM *_timeouts] /^(,|\d+)+$/
            "uncond_dests": _comma(Digits(allow_empty=True)),
            "busy_dests": _comma(Digits(allow_empty=True)),
            "noansw_dests": _comma(Digits(allow_empty=True)),
            "unavail_dests": _comma(Digits(allow_empty=True)),
            "uncond_timeouts": _comma(Digits(allow_empty=True)),
            "busy_timeouts": _comma(Digits(allow_empty=True)),
            "noansw_timeouts": _comma(Digits(allow_empty=True)),
            "unavail_timeouts": _comma(Digits(allow_empty=True)),
            "play": Flag(),  # [PM play] /^(0|1)$/
            "cid": Flag(),  # [PM cid] /^(0|1)$/
        },
        # Bicom's own example sends 3 destinations with 1 timeout: no equal-length rule.
        # .configuration answers `destinations` and `timeouts` as one string each, in a form
        # no source shows; they are read-only here (accepted, not sent).
        read_only=frozenset({"destinations", "timeouts"}),
        comma_strings=frozenset({"enabled"}),  # [PM] .configuration: `enabled` is a string
    ),
    "blflist": ServiceSchema(
        name="blflist",
        title="BLF list",
        fields={
            "exts": _comma(Digits(allow_empty=True)),  # [PM exts] /^(,|\d+)+$/
            # [PM labels] /^(,|([\+\w\s]+(\s*<[\+\d]+>)?))+$/
            "labels": _comma(Text(_BLF_LABEL, 64, True, "a label like 'Desk <1002>'")),
            "functions": _comma(Digits(allow_empty=True)),  # [PM functions] no rule; numbers
            "blfs": _comma(Flag()),  # [PM blfs] /^[0-1](,[0-1])+$/
            "blf_start": IntRange(0, 99),  # [PM blf_start] /^\d{1,2}$/
            "blf_cleanup": Flag(),  # [PM blf_cleanup] /^[0-1]$/
            "cart_only": Flag(),  # [PM cart_only] /^[0-1]$/
        },
        # Bicom's own example sends 3 exts, 2 labels, 3 blfs and 5 functions: no
        # equal-length rule (the action's note about "mobiles, labels and suspends" belongs
        # to another service).
    ),
    "extoperationtimes": ServiceSchema(
        name="extoperationtimes",
        title="Operation times",
        editable=False,
        not_editable_reason=(
            "PBXware has no pbxware.ext.es.extoperationtimes.edit action: operation times "
            "can be read and switched on or off (POST …/state), not edited"
        ),
    ),
}


@dataclass(frozen=True)
class EditRequest:
    """A validated edit: the PBXware arguments, and the checked values for the audit log."""

    service: ServiceSchema
    params: dict[str, str]
    values: dict[str, Any]


def schema(service: str) -> ServiceSchema | None:
    return SCHEMAS.get(service)


class _Body(StrictModel):
    shape: ClassVar[str] = "a JSON object"


def _body_model(service: ServiceSchema) -> type[StrictModel]:
    """The pydantic model of an edit body: the service's fields, each optional unless
    required, nothing else."""
    fields: dict[str, Any] = {
        key: (ftype.annotation(), ... if key in service.required else None)
        for key, ftype in service.fields.items()
    }
    model: type[StrictModel] = create_model(f"_{service.name}_edit", __base__=_Body, **fields)
    model.unknown = f"unknown field for {service.name}"
    model.missing = f"is required for {service.name}"
    return model


_MODELS = {name: _body_model(s) for name, s in SCHEMAS.items() if s.editable}


def _edit_body(service: ServiceSchema, body: Any) -> dict[str, Any]:
    """The body as .edit arguments, unset ones left out; or why there is none."""
    if not service.editable:
        raise ValidationError(None, service.not_editable_reason)
    if not isinstance(body, dict):
        raise ValidationError(None, f"the body must be a JSON object, got {_kind(body)}")
    if not body:
        raise ValidationError(None, "the body is empty: name at least one field to change")
    return {
        key: value
        for key, value in _as_edit(service, body).items()
        if not (key in service.omit_when_unset and value in ("", None))  # unset: not sent
    }


def validate(service: ServiceSchema, body: Any) -> EditRequest:
    """Check a decoded JSON body; raises ValidationError naming the field (every problem of
    the body in its ``problems``)."""
    body = _edit_body(service, body)
    model = _MODELS[service.name] if SCHEMAS.get(service.name) is service else None
    model = model or _body_model(service)  # a schema of a test
    try:
        checked = model.model_validate(body)
    except pydantic.ValidationError as exc:
        found = problems(model, body, exc.errors())
        raise ValidationError(found[0].path, found[0].reason, [str(p) for p in found]) from None
    values = {key: getattr(checked, key) for key in service.fields if key in body}
    params = {
        key: ftype.separator.join(value) if isinstance(ftype, ListOf) else value
        for key, ftype in service.fields.items()
        if (value := values.get(key)) is not None
    }
    for group in service.parallel:
        _check_parallel(group, values)
    for check in service.rules:
        check(values)
    return EditRequest(service=service, params=params, values=values)


def _as_edit(service: ServiceSchema, body: dict[str, Any]) -> dict[str, Any]:
    """The body with what .configuration answers turned into .edit arguments: read-only
    keys dropped, comma-joined strings split (so a GET's answer can be PUT back)."""
    out = {k: v for k, v in body.items() if k not in service.read_only}
    for key in service.comma_strings:
        value = out.get(key)
        if isinstance(value, str):
            out[key] = value.split(",") if value else []
    if service.name == "callerid":
        out = callerid_as_edit(out)
    return out


def callerid_as_edit(body: dict[str, Any]) -> dict[str, Any]:
    """callerid.configuration as PBXware answers it (a live sample: ``callerid``,
    ``emergency_callerid``, ``default_callerid``, ``default_privacy``, ``callerid:<trunk>``,
    ``callerid:<trunk>:privacy``, ``allowed_callerids`` keyed by id or ``[]``) as .edit
    arguments. Bodies in .edit's own terms pass through unchanged."""
    out: dict[str, Any] = {}
    trunks: list[str] = []
    tcallerids: list[Any] = []
    privacies: dict[str, Any] = {}
    for key, value in body.items():
        if key in ("default_callerid", "default_privacy"):
            continue  # the tenant's defaults: shown, not set per extension
        if key == "emergency_callerid":
            out.setdefault("emergencycid", value)
        elif key == "allowed_callerids":
            out.update(_allowed_callerids(value))
        elif key.startswith("callerid:") and key.endswith(":privacy") and key.count(":") >= 2:
            privacies[key[len("callerid:") : -len(":privacy")]] = value
        elif key.startswith("callerid:"):
            trunks.append(key[len("callerid:") :])
            tcallerids.append(value)
        else:
            out[key] = value
    if trunks:
        out["trunks"], out["tcallerids"] = trunks, tcallerids
        if privacies:
            out["tprivacies"] = [privacies.get(t, "") for t in trunks]
    return out


def _allowed_callerids(value: Any) -> dict[str, Any]:
    """``{"1": {"callerid", "label", "short_code"}, …}`` (or ``[]``, or a list) as the
    parallel anums/alabels/acodes lists, in id order."""
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (0, int(k)) if str(k).isdigit() else (1, str(k)))
        entries = [value[k] for k in keys]
    elif isinstance(value, list):
        entries = value
    else:
        raise ValidationError(
            "allowed_callerids", f"must be an object keyed by id, got {_kind(value)}"
        )
    if not entries:
        return {"anums": [], "alabels": [], "acodes": []}
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ValidationError(f"allowed_callerids[{index}]", "must be an object")
    return {
        "anums": [e.get("callerid", "") for e in entries],
        "alabels": [e.get("label", "") for e in entries],
        "acodes": [e.get("short_code", "") for e in entries],
    }


def _check_parallel(group: Sequence[str], values: Mapping[str, Any]) -> None:
    given = [name for name in group if name in values]
    if not given:
        return
    names = ", ".join(group)
    for name in group:
        if name not in values:
            raise ValueError(f"is required together with {', '.join(given)}")
    lengths = {name: len(values[name]) for name in group}
    if len(set(lengths.values())) > 1:
        # Name the odd one out: the first list whose length differs from the most common.
        counts = Counter(lengths.values())
        usual = max(counts, key=lambda n: (counts[n], -list(lengths.values()).index(n)))
        odd = next(name for name in group if lengths[name] != usual)
        shown = ", ".join(f"{n}={lengths[n]}" for n in group)
        raise ValidationError(odd, f"{names} must have the same length (got {shown})")
