"""Turning a PBXware response body into Python data, the same shapes for JSON and PHP.

PBXware answers errors with HTTP 200 and ``{"error": ...}``, empty lists as ``[]``, and on
installs with PHP's ``display_errors`` on it prints ``Notice:``/``Warning:`` lines before the
body. Those leading diagnostics are cut off (``strip_php_diagnostics``; the client counts
them); everything else that is not a clean document of the requested format is a ``decode``
error, and an ``error`` key is an ``auth`` or ``api_error`` (``classify_error``).
"""

from __future__ import annotations

import json
import re
from typing import Any

from . import phpdecode
from .errors import PbxwareError, Reason

_PREVIEW = 60

# --- PBXware's in-band error texts (docs/pbxware-api.md, "Error texts") ----------------------
#
# `auth` must mean "the key itself is refused" (wrong, suspended, this host not in its IP
# list), because its hint sends the on-call engineer to the key. A key that works but may
# not use one action is `api_error` with the permissions hint. The only text Bicom publishes
# is "Invalid API key." (Postman collection); the others are the situations the Admin
# Settings > API Keys page describes, matched loosely because their wording is not published.
_ACTION_REFUSED = re.compile(
    r"(not\s+(allowed|permitted|authori[sz]ed)|no\s+(permission|access)|permission\s+denied"
    r"|access\s+denied|forbidden)"
    r".{0,80}?(\baction\b|\bmethod\b|pbxware\.[a-z_.]+)"
    r"|(\baction\b|pbxware\.[a-z_.]+).{0,80}?"
    r"(not\s+(allowed|permitted|authori[sz]ed)|denied|forbidden)",
    re.IGNORECASE | re.DOTALL,
)
_KEY_REFUSED = re.compile(
    r"(invalid|wrong|unknown|bad|missing|no|expired|suspended|inactive|disabled|revoked)"
    r"\s+api\s*key"
    r"|api\s*key.{0,60}?(invalid|not\s+valid|suspended|expired|inactive|not\s+active"
    r"|disabled|revoked|not\s+found|does\s+not\s+exist|unknown|required|missing)"
    r"|\bip\b.{0,60}?(not\s+allowed|denied|forbidden|restricted|not\s+permitted)"
    r"|(not\s+allowed|denied|forbidden|not\s+permitted).{0,60}?\b(ip|host|address)\b",
    re.IGNORECASE | re.DOTALL,
)


def classify_error(text: str) -> Reason:
    """``auth`` when PBXware refused the key itself, else ``api_error``."""
    if _ACTION_REFUSED.search(text):
        return "api_error"
    if _KEY_REFUSED.search(text):
        return "auth"
    return "api_error"


# --- PHP diagnostics before the body ---------------------------------------------------------
#
# PHP prints them as "\nNotice: msg in /file.php on line 12\n" (html_errors off), as
# "<br />\n<b>Notice</b>:  msg in <b>/file.php</b> on line <b>12</b><br />\n" (html_errors on,
# the default of php.ini-development) or with a "PHP " prefix (error_log to stderr merged).
_DIAGNOSTIC = re.compile(
    rb"[ \t\r\n]*(?:<br\s*/?>[ \t\r\n]*)?(?:<b>)?(?:PHP )?"
    rb"(?:Notice|Warning|Deprecated|Strict Standards)(?:</b>)?:[^\n]*(?:\n|\Z)"
)
_TAGS = re.compile(r"<[^>]{0,20}>")
_FIRST_BYTES = (b"\n", b"\r", b" ", b"\t", b"<", b"N", b"W", b"D", b"S", b"P")


def strip_php_diagnostics(body: bytes) -> tuple[bytes, str | None]:
    """``body`` without leading PHP diagnostics, and the first of them as printable text
    (None when there were none). Only the start is looked at: a clean 40 MB answer costs
    one comparison."""
    if not body.startswith(_FIRST_BYTES):
        return body, None
    first: str | None = None
    pos = 0
    while match := _DIAGNOSTIC.match(body, pos):
        if first is None:
            first = _printable(_TAGS.sub("", match.group().decode("utf-8", "replace")))
        pos = match.end()
    if first is None:
        return body, None
    return body[pos:], first


def _printable(text: str, limit: int = 160) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return re.sub(r"[^\x20-\x7e]", "?", text)[:limit]


def _preview(body: bytes) -> str:
    """A short printable prefix of an undecodable body, for the error message."""
    text = body[:_PREVIEW].decode("utf-8", "replace")
    return re.sub(r"[^\x20-\x7e]", "?", text)


def looks_like_html(body: bytes) -> bool:
    """An HTML page (a login page, a proxy's error page) instead of the API's answer."""
    head = body[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<body"))


def decode_php(body: bytes) -> Any:
    """PHP serialize() output in the shapes json_encode would have produced."""
    return phpdecode.loads(body)


def decode_body(action: str, body: bytes, fmt: str) -> Any:
    """Decode and check for PBXware's in-band error; raises PbxwareError."""
    try:
        data = decode_php(body) if fmt == "php" else json.loads(body)
    except (ValueError, TypeError, RecursionError, EOFError, UnicodeDecodeError):
        if looks_like_html(body):
            # Not the API at all: the whole system is answering with a web page.
            raise PbxwareError(
                action, "decode", f"an HTML page, not the API ({len(body)} bytes)", systemic=True
            ) from None
        what = "only PHP diagnostics" if not body.strip() else f"not {fmt}"
        raise PbxwareError(
            action, "decode", f"body is {what} ({len(body)} bytes, starts {_preview(body)!r})"
        ) from None
    error = _error_text(data)
    if error is not None:
        reason = classify_error(error)
        raise PbxwareError(action, reason, f"PBXware said {error[:200]!r}")
    return data


def _error_text(data: Any) -> str | None:
    # archiving.list wraps its error in a list: [{"error": "..."}] (reference §1.7).
    if isinstance(data, list) and data and isinstance(data[0], dict):
        data = data[0]
    if isinstance(data, dict) and "error" in data:
        return str(data["error"])
    return None
