"""Entity tags of service configurations, and the If-Match check against lost updates."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .gateway import AdminError


def etag(config: Any) -> str:
    """A strong entity tag of a configuration as read from PBXware."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return '"' + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32] + '"'


def _matches(if_match: str, current: str) -> bool:
    """RFC 9110 If-Match: ``*`` or a list of tags, compared strongly (a weak tag never
    matches). Our tags hold no commas, so splitting on them is exact for ours."""
    for tag in if_match.split(","):
        tag = tag.strip()
        if tag == "*" or tag == current:
            return True
    return False


def check_if_match(if_match: str | None, config: Any) -> None:
    if if_match is None:
        return
    current = etag(config)
    if not _matches(if_match, current):
        raise AdminError(
            412,
            "the configuration has changed since it was read (If-Match does not match its "
            "ETag): read it again, apply your change to what it is now, and send that",
            "precondition_failed",
            headers={"ETag": current},
        )
