"""The shape of one ``pbxware.cdr.download`` answer (reference §3.7).

``{"success": str, "next_page": bool, "limit": int, "records": int, "header": [names] or
null, "csv": [[cells], …]}``: despite its name ``csv`` is a JSON array of rows. A shape we
cannot page through is a ``decode`` error of the whole request; single bad rows are not
(exporter/features/cdr/records.py rejects them one by one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...pbxware import PbxwareError
from .records import Columns, HeaderError, map_header

ACTION = "pbxware.cdr.download"


@dataclass(frozen=True)
class Page:
    columns: Columns | None  # None: no data ("header": null)
    rows: list[Any]
    next_page: bool


def _flag(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", ""):
        return value.strip().lower() in ("true", "1")
    return None


def parse_page(data: Any, limit: int) -> Page:
    if not isinstance(data, dict):
        raise PbxwareError(ACTION, "decode", f"expected an object, got {type(data).__name__}")
    rows = data.get("csv", [])
    if rows is None:
        rows = []
    if not isinstance(rows, list):
        raise PbxwareError(ACTION, "decode", "'csv' is not a list of rows")
    header = data.get("header")
    if header is None:
        if rows:
            raise PbxwareError(ACTION, "decode", "rows without a header")
        columns = None
    elif not isinstance(header, list):
        raise PbxwareError(ACTION, "decode", "'header' is not a list of column names")
    else:
        try:
            columns = map_header(header)
        except HeaderError as exc:
            raise PbxwareError(ACTION, "decode", str(exc)) from None
    if "next_page" in data:
        next_page = _flag(data["next_page"])
        if next_page is None:
            raise PbxwareError(ACTION, "decode", "'next_page' is not a boolean")
    else:
        # Not in any known answer; a full page then probably has a successor.
        next_page = len(rows) >= limit
    return Page(columns=columns, rows=rows, next_page=next_page)
