"""Values safe for a log line: control characters escaped, structures bounded.

Anything that reaches the admin API's log lines may come from a client (URL-decoded path
segments, JSON bodies) or from a PBX: a CR/LF would forge a second line, an ESC would drive
the terminal of whoever tails the log, a bidi override would make a line read differently
than it is. Every C0 control, DEL, every C1 control, the Unicode line/paragraph separators
and the bidi controls are written as escapes instead.
"""

from __future__ import annotations

import json
from typing import Any

_CONTROLS = (*range(0x20), 0x7F, *range(0x80, 0xA0))
_INVISIBLE = (0x200E, 0x200F, 0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
_INVISIBLE += (0xFEFF,)

# Plain text: \x1b (readable, and what the issue asks for); JSON text: \u001b (still JSON).
_TEXT = str.maketrans(
    {c: f"\\x{c:02x}" for c in _CONTROLS} | {c: f"\\u{c:04x}" for c in _INVISIBLE}
)
_JSON = str.maketrans({c: f"\\u{c:04x}" for c in (*_CONTROLS, *_INVISIBLE)})

MAX_TEXT = 200  # characters of one string value
MAX_ITEMS = 20  # items of one list or object
MAX_DEPTH = 4  # levels of nesting shown
MAX_SUMMARY = 2000  # characters of all strings of one summary together


def escape(value: object, limit: int = MAX_TEXT) -> str:
    """``value`` as one line of printable text, at most ``limit`` characters before escaping."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        text = text[:limit] + "…"
    return text.translate(_TEXT)


def summary(value: Any) -> Any:
    """A copy of a decoded JSON value cut to a bounded size and depth (for an audit line).

    Iterative, never recursive: a body nested 900 deep must not cost 900 stack frames.
    """
    budget = MAX_SUMMARY
    root: list[Any] = [None]
    # (value, depth, container to put the copy into, key or index there)
    stack: list[tuple[Any, int, Any, Any]] = [(value, 0, root, 0)]
    while stack:
        item, depth, parent, key = stack.pop()
        if budget <= 0:
            parent[key] = "…"
            continue
        if isinstance(item, dict | list) and depth >= MAX_DEPTH:
            parent[key] = "…" if item else item.copy()
            continue
        if isinstance(item, dict):
            copy: dict[str, Any] = {}
            for name in list(item)[:MAX_ITEMS]:
                short = str(name)[:64]
                budget -= len(short)
                copy[short] = None
                stack.append((item[name], depth + 1, copy, short))
            if len(item) > MAX_ITEMS:
                copy["…"] = f"{len(item) - MAX_ITEMS} more"
            parent[key] = copy
        elif isinstance(item, list):
            items: list[Any] = [None] * min(len(item), MAX_ITEMS)
            for index, sub in enumerate(item[:MAX_ITEMS]):
                stack.append((sub, depth + 1, items, index))
            if len(item) > MAX_ITEMS:
                items.append(f"… {len(item) - MAX_ITEMS} more")
            parent[key] = items
        elif isinstance(item, str):
            cut = item[: min(MAX_TEXT, max(budget, 1))]
            budget -= len(cut)
            parent[key] = cut + ("…" if len(cut) < len(item) else "")
        else:
            budget -= 8
            parent[key] = item
    return root[0]


def json_field(value: Any) -> str:
    """A structured value as one JSON string for a log field: bounded, control-free, and
    still valid JSON (readable in logfmt and JSON logs alike)."""
    text = json.dumps(summary(value), ensure_ascii=False, sort_keys=True, default=str)
    return text.translate(_JSON)
