"""Every form a secret can take in a URL, a form, a JSON or HTML page, an error message:
built here independently of exporter.logs, to check its redaction against."""

from __future__ import annotations

import html
import json
import re
from urllib.parse import quote, quote_plus, urlencode

import yarl


def _lower_hex(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), text)


def encodings(secret: str) -> set[str]:
    """The secret as sent in a query string (yarl, like aiohttp), percent-encoded with upper-
    and lowercase hex, with `+` for space, form-encoded, double-encoded, JSON-escaped (PHP
    escapes `/`), repr'd, and each of these HTML-escaped."""
    sent = yarl.URL("http://pbx/").with_query({"apikey": secret}).raw_query_string
    forms = {
        secret,
        sent.split("=", 1)[1],
        quote(secret, safe=""),
        quote(secret),  # "/" left alone
        quote_plus(secret),
        urlencode({"k": secret}).split("=", 1)[1],
        quote(quote(secret, safe=""), safe=""),
        json.dumps(secret)[1:-1].replace("/", "\\/"),
        json.dumps(secret, ensure_ascii=True)[1:-1],
        repr(secret)[1:-1],
    }
    forms |= {_lower_hex(f) for f in forms}
    forms |= {html.escape(f) for f in forms} | {html.escape(f, quote=False) for f in forms}
    forms |= {f.replace("&", "&#38;") for f in forms}
    return forms


def leaks(text: str, secret: str) -> list[str]:
    """The forms of ``secret`` found in ``text``."""
    return sorted(f for f in encodings(secret) if f in text)
