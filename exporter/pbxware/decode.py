"""Turning a PBXware response body into Python data, the same shapes for JSON and PHP.

PBXware answers errors with HTTP 200 and ``{"error": ...}``, empty lists as ``[]`` and can
leak PHP notices into the body; everything that is not a clean document of the requested
format is a ``decode`` error, and an ``error`` key is an ``auth`` or ``api_error``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from . import phpdecode
from .errors import PbxwareError

# PBXware's wording for a bad, suspended or IP-restricted key (reference §1.3).
_AUTH_RE = re.compile(r"api\s*key", re.IGNORECASE)
_PREVIEW = 60


def _preview(body: bytes) -> str:
    """A short printable prefix of an undecodable body, for the error message."""
    text = body[:_PREVIEW].decode("utf-8", "replace")
    return re.sub(r"[^\x20-\x7e]", "?", text)


def decode_php(body: bytes) -> Any:
    """PHP serialize() output in the shapes json_encode would have produced."""
    return phpdecode.loads(body)


def decode_body(action: str, body: bytes, fmt: str) -> Any:
    """Decode and check for PBXware's in-band error; raises PbxwareError."""
    try:
        data = decode_php(body) if fmt == "php" else json.loads(body)
    except (ValueError, TypeError, RecursionError, EOFError, UnicodeDecodeError):
        raise PbxwareError(
            action, "decode", f"body is not {fmt} ({len(body)} bytes, starts {_preview(body)!r})"
        ) from None
    error = _error_text(data)
    if error is not None:
        reason = "auth" if _AUTH_RE.search(error) else "api_error"
        raise PbxwareError(action, reason, f"PBXware said {error[:200]!r}")
    return data


def _error_text(data: Any) -> str | None:
    # archiving.list wraps its error in a list: [{"error": "..."}] (reference §1.7).
    if isinstance(data, list) and data and isinstance(data[0], dict):
        data = data[0]
    if isinstance(data, dict) and "error" in data:
        return str(data["error"])
    return None
