"""Refusing forged edits: what a browser sends on another site's behalf never edits.

A browser that once opened a runbook link holds the token in its Basic-auth cache and sends
it with any request to the exporter, also one a hostile page makes it send. Such a page can
send, without a CORS preflight, only a "simple" request: a form (``text/plain``,
``application/x-www-form-urlencoded``, ``multipart/form-data``) or a ``fetch`` with one of
those types. So an edit must

- carry ``Content-Type: application/json`` (415 otherwise): a page can only send that type
  after a preflight, which the exporter never answers with CORS headers;
- not say it comes from another site: ``Sec-Fetch-Site: cross-site`` or ``same-site``
  (another port or subdomain of the same site), or an ``Origin`` other than the exporter's
  own (scheme, host and port of the request), are refused with 403.

Scripts (curl, Python) send neither ``Origin`` nor ``Sec-Fetch-Site``, and keep working.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from .gateway import AdminError

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


def forged(request: web.Request) -> AdminError | None:
    """Why an edit request must be refused as (possibly) forged, or None."""
    site = request.headers.get("Sec-Fetch-Site", "").strip().lower()
    if site in ("cross-site", "same-site"):
        return AdminError(
            403,
            f"refused: a browser sent this edit for another site (Sec-Fetch-Site: {site}); "
            "cross-site and same-site requests may not edit",
            "cross_site",
        )
    origin = request.headers.get("Origin")
    if origin is not None:
        theirs = _origin(origin)
        if theirs is None or theirs != own_origin(request):
            return AdminError(
                403,
                "refused: the request's Origin is not this exporter's own origin "
                "(cross-site requests may not edit)",
                "cross_site",
            )
    if request.content_type != "application/json":
        return AdminError(
            415,
            "an edit takes a JSON body: send it with 'Content-Type: application/json'",
            "invalid",
        )
    return None
