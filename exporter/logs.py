"""structlog setup: one line per event, logfmt or JSON, secrets scrubbed from every value."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog

REDACTED = "<redacted>"


class SecretScrubber:
    """A structlog processor that replaces every known secret in every rendered value.

    Our own code never logs a key; this catches what a library might (an exception text
    quoting a URL, say). It runs after exceptions are formatted, so tracebacks are covered.
    """

    def __init__(self) -> None:
        self._secrets: tuple[str, ...] = ()

    def set_secrets(self, secrets: Iterable[str]) -> None:
        # Longest first, so that a secret containing another is replaced whole.
        self._secrets = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def __call__(
        self, logger: Any, method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        if self._secrets:
            for key, value in event.items():
                text = value if isinstance(value, str) else None
                if text is None and not isinstance(value, int | float | bool | type(None)):
                    text = str(value)
                if text is not None:
                    event[key] = self.scrub(text)
        return event


scrubber = SecretScrubber()


def drop_none(
    logger: Any, method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Optional fields are passed as None; leaving them out keeps lines short."""
    for key in [k for k, v in event.items() if v is None]:
        del event[key]
    return event


def configure_logging(
    level: str = "info", fmt: str = "logfmt", stream: TextIO | None = None
) -> None:
    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.processors.LogfmtRenderer(
            key_order=["ts", "level", "event", "system", "tenant"], drop_missing=True
        )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
            structlog.processors.format_exc_info,
            drop_none,
            scrubber,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.WriteLoggerFactory(file=stream or sys.stderr),
        cache_logger_on_first_use=False,
    )
