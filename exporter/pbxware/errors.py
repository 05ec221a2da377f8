"""The one error type the PBXware client raises, with a bounded ``reason``."""

from __future__ import annotations

from typing import Literal

Reason = Literal["timeout", "connect", "http", "auth", "api_error", "decode"]
REASONS: tuple[Reason, ...] = ("timeout", "connect", "http", "auth", "api_error", "decode")


class PbxwareError(Exception):
    """A failed PBXware request.

    ``reason`` is one of REASONS and becomes a metric label. The message is built by us,
    never from an aiohttp exception, because those quote the request URL and with it the
    API key.
    """

    def __init__(self, action: str, reason: Reason, message: str) -> None:
        self.action = action
        self.reason = reason
        self.message = message
        super().__init__(f"{action}: {reason}: {message}")
