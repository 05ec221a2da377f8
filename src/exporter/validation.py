"""From pydantic's errors to problem lines: ``systems[1].interval: invalid duration '5x' …``.

One validation library for the config (exporter/config.py), the web config
(exporter/web/webconfig.py) and admin edit bodies (exporter/admin/services.py): pydantic v2
models on ``StrictModel`` (strict, ``extra="forbid"``), every error of a document collected
in one pass. pydantic's own wording ("Input should be a valid integer") is replaced by ours:
the reason says what is expected and what was found, and never quotes a value that could be
a secret (a string's value is shown only by our own checks, which know what they hold).
Problems are listed top to bottom in the document, as the reader fixes them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, NamedTuple, get_args

from pydantic import BaseModel, ConfigDict
from pydantic_core import ErrorDetails, PydanticCustomError


class StrictModel(BaseModel):
    """The base of every schema. Strict: ``"4"`` is no integer, ``yes`` no boolean (a
    schema that takes such on purpose says so with a validator of its own). Frozen. And
    pydantic's own str() of an error never shows the value (it could be a key)."""

    # defer_build: a schema is built on its first use, so a process that never reads a web
    # config or an admin body does not pay for those.
    model_config = ConfigDict(
        strict=True, extra="forbid", frozen=True, hide_input_in_errors=True, defer_build=True
    )
    # What the value must be when it is not a mapping, what an unknown key is called, and
    # what a required key is when it is not there.
    shape: ClassVar[str] = "a mapping"
    unknown: ClassVar[str] = "unknown key"
    missing: ClassVar[str] = "missing"

    def given(self) -> dict[str, Any]:
        """The fields the file set: a system's over those of ``defaults``."""
        return {name: getattr(self, name) for name in self.model_fields_set}


def rule(message: str, key: str = "") -> PydanticCustomError:
    """An error whose reason is ``message`` as written; ``key`` continues the key path
    (``[1]``, ``.pairs``) when the error is raised for the mapping or list that holds it."""
    # The message is data, not a template: braces in a quoted value must stay as they are.
    return PydanticCustomError("rule", "{reason}", {"reason": message, "key": key})


Loc = tuple[int | str, ...]  # a key path as pydantic gives it: ("systems", 1, "interval")

# Our wording for pydantic's error types; {type} is the type of the value found. Only errors
# of fields that hold no secret show the value itself (bool, int and literal fields).
_REASONS = {
    "missing": "missing",
    "int_type": "must be an integer, got {type}",
    "bool_type": "must be true or false, got {input!r}",
    "string_type": "must be a string, got {type}",
    "list_type": "must be a list",
    "too_short": "must be a non-empty list",
    "greater_than_equal": "must be at least {ge}, got {input!r}",
    "literal_error": "must be {expected}, got {input!r}",
}
_NOT_A_MAPPING = ("model_type", "model_attributes_type", "dict_type")


def _unwrap(annotation: Any) -> Any:
    """``X | None`` → ``X``; anything else as it is."""
    args = get_args(annotation)
    return next(a for a in args if a is not type(None)) if type(None) in args else annotation


def _model_at(root: type[BaseModel], loc: Loc) -> type[StrictModel] | None:
    """The model that validates the value at ``loc``: for its shape and its keys."""
    current: Any = root
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            info = current.model_fields.get(part) if isinstance(part, str) else None
            current = info.annotation if info else None
        else:  # an index into list[X] or a key of dict[K, X]
            current = (get_args(current) or (None,))[-1]
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, StrictModel) else None


def _key_path(data: Any, loc: Loc, key: bool = False) -> str:
    """``systems[1].interval``: an index into a list in brackets, a key of a mapping (even a
    number, ``basic_auth_users.7``) after a dot; ``key``: the last part is a key whatever
    its type. A long key is cut short: a problem stays one readable line."""
    path = ""
    for i, part in enumerate(loc):
        is_key = key and i == len(loc) - 1
        in_list = isinstance(data, list) or (not isinstance(data, dict) and isinstance(part, int))
        shown = str(part) if len(str(part)) <= 40 else str(part)[:40] + "…"
        path += f"[{part}]" if in_list and not is_key else f".{shown}"
        data = _child(data, part)
    return path.lstrip(".")


def _child(data: Any, part: int | str) -> Any:
    if isinstance(data, dict):
        return data.get(part)
    if isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
        return data[part]
    return None


class Problem(NamedTuple):
    """One defect: where (``loc`` as pydantic gives it, ``path`` as we print it) and why."""

    loc: Loc
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason


def _problem(root: type[BaseModel], data: Any, error: ErrorDetails) -> Problem:
    loc, kind, ctx = error["loc"], error["type"], error.get("ctx", {})
    parent = _model_at(root, loc[:-1]) if loc else None
    if kind in ("extra_forbidden", "invalid_key"):
        allowed = ", ".join(sorted(parent.model_fields)) if parent else ""
        unknown = parent.unknown if parent else "unknown key"
        return Problem(loc, _key_path(data, loc, key=True), f"{unknown} (allowed: {allowed})")
    if not loc and kind in _NOT_A_MAPPING:
        shape = root.shape if issubclass(root, StrictModel) else "a mapping"
        return Problem(loc, "", f"the file must hold {shape}")
    if kind in _NOT_A_MAPPING:
        model = _model_at(root, loc)
        reason = f"must be {model.shape if model else 'a mapping'}"
    elif kind == "missing" and parent is not None:
        reason = parent.missing
    else:
        reason = _reason(error)
    field = parent.model_fields.get(str(loc[-1])) if parent else None
    if field is not None and field.description:
        reason += f" ({field.description})"
    suffix = ctx.get("key", "") if kind == "rule" else ""  # from rule(): a deeper path
    return Problem(loc, _key_path(data, loc) + suffix, reason)


def _reason(error: ErrorDetails) -> str:
    kind, ctx = error["type"], error.get("ctx", {})
    if kind == "rule":  # ours, from rule()
        return str(ctx["reason"])
    if kind == "value_error":  # a ValueError of one of our checks
        return str(ctx["error"])
    if kind in _REASONS:
        value = error["input"]
        expected = str(ctx.get("expected", "")).replace("'", "")
        facts = {**ctx, "expected": expected, "type": type(value).__name__, "input": value}
        return _REASONS[kind].format(**facts)
    return error["msg"]


def _position(data: Any, loc: Loc) -> tuple[int, ...]:
    """Where ``loc`` is in the file (a missing key after the present ones): problems are
    listed top to bottom, as the reader fixes them."""
    position = []
    for part in loc:
        if isinstance(data, dict):
            keys = list(data)
            position.append(keys.index(part) if part in keys else len(keys))
        elif isinstance(data, list) and isinstance(part, int):
            position.append(part)
        else:
            break
        data = _child(data, part)
    return tuple(position)


def problems(
    root: type[BaseModel],
    data: Any,
    errors: Iterable[ErrorDetails],
    rules: Iterable[Problem] = (),
) -> list[Problem]:
    """pydantic's errors of validating ``data`` with ``root``, and those of rules checked
    apart, top to bottom in the file."""
    found = [_problem(root, data, error) for error in errors]
    found += rules
    found.sort(key=lambda problem: _position(data, problem.loc))
    return found


def problem_lines(
    root: type[BaseModel],
    data: Any,
    errors: Iterable[ErrorDetails],
    rules: Iterable[Problem] = (),
) -> list[str]:
    """One line per problem, ``key.path: reason``, top to bottom in the file."""
    return [str(problem) for problem in problems(root, data, errors, rules)]
