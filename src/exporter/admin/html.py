"""The runbook page: one extension's enhanced services, read-only, as plain HTML.

Every value shown comes from a PBX and may hold anything (a caller ID of ``<script>…`` is a
valid PBXware string), so every piece of text goes through ``html.escape``; the page carries
no script, and its Content-Security-Policy forbids any, as a second line of defence.
"""

from __future__ import annotations

from html import escape
from typing import Any

from .. import __version__

# Sent with the page: no scripts, no external anything; inline style only.
CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{title}</title>
<style>
body{{font-family:sans-serif;margin:1.5em;color:#222}}
table{{border-collapse:collapse;margin:.3em 0 1.2em}}
td,th{{padding:.2em .8em;text-align:left;vertical-align:top;border-bottom:1px solid #ddd}}
.off{{color:#777}} .on{{color:#070;font-weight:bold}} .err{{color:#b00}}
code{{background:#f4f4f4;padding:0 .2em}}
</style></head>
<body>
<h1>Extension {number} <small>{name}</small></h1>
<p>System <code>{system}</code> · tenant <code>{tenant}</code> · PBXware id <code>{ext_id}</code>
· status {status} · read-only view from pbxware-exporter {version}</p>
{sections}
</body></html>
"""


def _value(value: Any) -> str:
    if value is None:
        return '<span class="off">—</span>'
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        if not value:
            return '<span class="off">(none)</span>'
        return ", ".join(_value(v) for v in value)
    if isinstance(value, dict):
        if not value:
            return '<span class="off">(none)</span>'
        rows = "".join(
            f"<tr><th>{escape(str(k))}</th><td>{_value(v)}</td></tr>" for k, v in value.items()
        )
        return f"<table>{rows}</table>"
    text = str(value)
    return escape(text) if text else '<span class="off">(empty)</span>'


def _section(name: str, service: dict[str, Any]) -> str:
    title = escape(str(service.get("title", name)))
    head = f'<h2 id="{escape(name)}">{title} <small><code>{escape(name)}</code></small></h2>'
    if "error" in service:
        return f'{head}<p class="err">{escape(str(service["error"]))}</p>'
    enabled = service.get("enabled")
    if enabled is None:
        state = '<span class="off">unknown</span>'
    else:
        css = "on" if enabled else "off"
        state = f'<span class="{css}">{"on" if enabled else "off"}</span>'
        state += f" (PBXware state <code>{escape(str(service.get('state', '')))}</code>)"
    note = "" if service.get("editable", True) else " · not editable through the API"
    config = service.get("configuration")
    return f"{head}<p>State: {state}{note}</p>{_value(config if config is not None else {})}"


def render_extension(view: dict[str, Any]) -> str:
    """``view`` is the JSON the same URL answers without ``Accept: text/html``."""
    ext = view.get("extension", {})
    services = view.get("services", {})
    sections = "\n".join(_section(name, svc) for name, svc in services.items())
    number = str(ext.get("number", ""))
    return _PAGE.format(
        title=escape(f"Extension {number} – {view.get('system', '')}"),
        number=escape(number),
        name=escape(str(ext.get("name", ""))),
        system=escape(str(view.get("system", ""))),
        tenant=escape(str(view.get("tenant", ""))),
        ext_id=escape(str(ext.get("id", ""))),
        status=escape(str(ext.get("status", ""))),
        version=escape(__version__),
        sections=sections,
    )
