"""The landing page: which systems are polled, how the last poll went, and where /metrics is."""

from __future__ import annotations

import time
from html import escape

from .. import __version__
from ..snapshot import SnapshotStore

_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>pbxware-exporter</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:.2em .8em;text-align:left}}
.bad{{color:#b00}}</style></head>
<body><h1>pbxware-exporter {version}</h1>
<p><a href="/metrics">Metrics</a> · <a href="/-/healthy">/-/healthy</a> ·
<a href="/-/ready">/-/ready</a></p>
<table><tr><th>System</th><th>Up</th><th>Tenants</th><th>Last poll</th><th>Last error</th></tr>
{rows}</table></body></html>
"""


def render_landing(store: SnapshotStore) -> str:
    rows = []
    now = time.time()
    for name in store.expected:
        snap = store.get(name)
        if snap is None:
            rows.append(f"<tr><td>{escape(name)}</td><td colspan=4>not polled yet</td></tr>")
            continue
        age = f"{now - snap.polled_at:.0f}s ago" if snap.polled_at else "never"
        # PbxwareError messages are redacted by the client: no form of the key (encoded,
        # escaped or cut off) survives, even when the PBX quotes our request URL back.
        errors = [f"{a.action}: {a.last_error}" for a in snap.actions if a.last_error]
        error = escape(errors[0]) if errors else ""
        state = "yes" if snap.up else '<span class="bad">no</span>'
        rows.append(
            f"<tr><td>{escape(name)}</td><td>{state}</td><td>{len(snap.tenants)}</td>"
            f"<td>{age}</td><td>{error}</td></tr>"
        )
    return _PAGE.format(version=escape(__version__), rows="\n".join(rows))
