"""Whether a browser sent a request on another site's behalf: one check for every route that
changes something (POST /-/reload here, the admin API's edits in exporter/admin/forgery.py).

Browsers send ``Sec-Fetch-Site`` (all current ones) and ``Origin`` (on every POST); a request
with neither is not from a web page (curl, a script) and passes. ``same-site`` is refused too:
another port or subdomain of the same host is another application. An ``Origin`` is compared
as an origin (scheme, host, port with the scheme's default filled in), not as a string.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        return None  # an Origin is scheme://host[:port] and nothing else
    return parts.scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[parts.scheme]


def own_origin(request: web.Request) -> tuple[str, str, int] | None:
    """The exporter's origin as this request addressed it (its Host header)."""
    return _origin(f"{request.scheme}://{request.host}")


def cross_site(request: web.Request) -> str | None:
    """Why ``request`` counts as sent by a browser for another site, or None."""
    site = request.headers.get("Sec-Fetch-Site", "").strip().lower()
    if site in ("cross-site", "same-site"):
        return f"a browser sent it for another site (Sec-Fetch-Site: {site})"
    origin = request.headers.get("Origin")
    if origin is not None:
        theirs = _origin(origin)
        if theirs is None or theirs != own_origin(request):
            return "its Origin is not this exporter's own origin"
    return None
