"""Reading PBXware answers field by field (issue 16 §6), shared by the feature parsers.

Shapes the reference leaves open are read leniently (numbers or numeric strings, missing
optional keys); a shape that cannot be read at all raises PbxwareError(reason="decode").
An answer whose overall shape is right but one field (or one entry of a list) cannot be read
keeps the others: the bad ones are left out and named in the result's ``problems``
(``problems_of()``), and the poller counts such an answer as one ``decode`` error of its
action. A limit written as a word meaning "no limit" (``Unlimited``) is ``+Inf``, not a
problem: a ratio against it is 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import PbxwareError
from .models import text

_UNLIMITED = frozenset({"unlimited", "infinite", "inf", "∞", "no limit"})


class Entries(tuple):  # type: ignore[type-arg]
    """The readable entries of a list answer, with the problems of those left out."""

    problems: tuple[str, ...] = ()

    @classmethod
    def of(cls, items: list[Any], problems: list[str]) -> Entries:
        made = cls(items)
        made.problems = tuple(problems)
        return made


def problems_of(value: Any) -> tuple[str, ...]:
    """What a parsed answer left out (empty when every field was read)."""
    return tuple(getattr(value, "problems", ()))


def field(action: str, value: Any, what: str, problems: list[str]) -> int | None:
    """One number of an answer; None (and a problem noted) when it cannot be read."""
    try:
        return number(action, value, what)
    except PbxwareError:
        problems.append(f"{what} is not a number")
        return None


def limit(action: str, value: Any, what: str, problems: list[str]) -> float | None:
    if text(value).lower() in _UNLIMITED:
        return float("inf")
    return field(action, value, what, problems)


def number(action: str, value: Any, what: str) -> int:
    try:
        result = int(float(text(value)))
    except ValueError:
        raise PbxwareError(action, "decode", f"{what} is not a number") from None
    if result < 0:
        raise PbxwareError(action, "decode", f"{what} is negative")
    return result


def obj(action: str, data: Any) -> Mapping[str, Any]:
    if not isinstance(data, dict):
        raise PbxwareError(action, "decode", f"expected an object, got {type(data).__name__}")
    return data
