"""Reading an edit's JSON body: bounded in size and depth, no duplicate keys.

Every way a body can be wrong is an ``AdminError`` (400, 413, or 499 when the client went
away while sending it); nothing here raises anything else, whatever the bytes.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from .gateway import AdminError

MAX_BODY = 64 * 1024
# Deeper JSON than this is no edit of ours (the deepest valid body is 2 levels).
MAX_DEPTH = 32
# nginx's "client closed request": the status the audit and the metrics give such a request.
CLIENT_GONE = 499


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json keeps the last of two equal keys; a forged text/plain form relies on exactly that
    # ({"enabled": "x=y", "enabled": true}), and no honest client sends one.
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise _DuplicateKey(key)
        obj[key] = value
    return obj


def _too_deep(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


async def read_json(request: web.Request) -> Any:
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise AdminError(413, f"the body must be at most {MAX_BODY} bytes", "invalid") from None
    except (ConnectionError, asyncio.IncompleteReadError):
        # The client went away before sending its whole body (aiohttp's own
        # ClientConnectionResetError is a ConnectionResetError).
        raise AdminError(CLIENT_GONE, "the client went away", "client_gone") from None
    if len(raw) > MAX_BODY:
        raise AdminError(413, f"the body must be at most {MAX_BODY} bytes", "invalid")
    if not raw.strip():
        raise AdminError(400, "the body is empty: send a JSON object", "invalid")

    def no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    nested = f"the body is nested too deeply (at most {MAX_DEPTH} levels)"
    try:
        body = json.loads(
            raw.decode("utf-8"), parse_constant=no_constants, object_pairs_hook=_no_duplicates
        )
    except _DuplicateKey as exc:
        key = exc.key if len(exc.key) <= 64 else exc.key[:64] + "…"
        raise AdminError(400, f"duplicate key {key!r} in the JSON body", "invalid") from None
    except RecursionError:
        raise AdminError(400, nested, "invalid") from None
    except ValueError:  # JSONDecodeError and UnicodeDecodeError included
        raise AdminError(400, "the body is not valid JSON (UTF-8)", "invalid") from None
    if _too_deep(body, MAX_DEPTH):
        raise AdminError(400, nested, "invalid")
    return body
