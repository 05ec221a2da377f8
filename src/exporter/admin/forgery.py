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

from aiohttp import web

from ..web.crosssite import cross_site
from .gateway import AdminError


def forged(request: web.Request) -> AdminError | None:
    """Why an edit request must be refused as (possibly) forged, or None."""
    why = cross_site(request)  # the same check as POST /-/reload's
    if why is not None:
        return AdminError(
            403, f"refused: {why}; cross-site and same-site requests may not edit", "cross_site"
        )
    if request.content_type != "application/json":
        return AdminError(
            415,
            "an edit takes a JSON body: send it with 'Content-Type: application/json'",
            "invalid",
        )
    return None
