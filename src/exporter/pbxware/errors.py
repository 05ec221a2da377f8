"""The one error type the PBXware client raises, with a bounded ``reason``."""

from __future__ import annotations

from typing import Literal

Reason = Literal["timeout", "connect", "http", "auth", "api_error", "decode"]
REASONS: tuple[Reason, ...] = ("timeout", "connect", "http", "auth", "api_error", "decode")

# Reasons that say the system as a whole is not answering the API, not that one request or
# one action failed: no answer, a refused connection, the web server's error page, a key
# that every request is refused with. (An HTML page instead of the API, reason `decode`, is
# marked by the decoder.)
SYSTEMIC_REASONS: frozenset[str] = frozenset({"timeout", "connect", "http", "auth"})


class PbxwareError(Exception):
    """A failed PBXware request.

    ``reason`` is one of REASONS and becomes a metric label. The message is built by us,
    never from an aiohttp exception, because those quote the request URL and with it the
    API key. ``systemic`` is true when the failure says the whole system is not answering
    (the poller's circuit breaker counts these).
    """

    def __init__(
        self, action: str, reason: Reason, message: str, *, systemic: bool | None = None
    ) -> None:
        self.action = action
        self.reason = reason
        self.message = message
        self.systemic = reason in SYSTEMIC_REASONS if systemic is None else systemic
        super().__init__(f"{action}: {reason}: {message}")
