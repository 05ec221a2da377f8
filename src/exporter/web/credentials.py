"""Reading an ``Authorization: Basic`` header: one parser for the listener's basic auth
(webconfig.py) and the admin API's tokens sent as a Basic password (admin/auth.py)."""

from __future__ import annotations

import base64
import binascii

# Longer headers are not credentials anyone configured: refused unread.
MAX_HEADER = 4096


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """``(user, password)`` of a well-formed Basic header (RFC 7617, UTF-8), else None."""
    if not header or len(header) > MAX_HEADER:
        return None
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None
