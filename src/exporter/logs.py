"""structlog setup: one line per event, logfmt or JSON, secrets scrubbed from every value."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog

REDACTED = "<redacted>"

# Any apikey parameter, known key or not (an old key after a reload, a key cut off by a
# length limit), with its name as sent or percent-encoded: its value goes up to the next
# delimiter of a URL, a form, a quoted string or an HTML attribute.
_APIKEY_PARAM = re.compile(r"(apikey(?:=|%(?:25)*3d))[^&\s'\"<>#;,)\]]+", re.IGNORECASE)
# Credentials of an Authorization header quoted back (admin tokens, basic auth).
_AUTHORIZATION = re.compile(r"\b(bearer|basic)(\s+)[A-Za-z0-9._~+/-]{8,}=*", re.IGNORECASE)
# A message cut to a length can end in the first characters of a key: at least this many
# of them at the end of a text (before closing quotes) are redacted too.
_MIN_PREFIX = 4


def _hex(number: int, width: int = 2) -> str:
    """A number as hex digits of either case: 2F -> 2[fF]."""
    return "".join(f"[{d}{d.lower()}]" if d.isalpha() else d for d in f"{number:0{width}X}")


def _forms(char: str) -> str:
    """A regex for one character of a secret in every form a URL, a form, JSON, HTML or a
    Python repr can carry it: literal; percent-encoded (either case, also double-encoded);
    `+` for a space (and a space for a `+` that a server decoded as a form); HTML character
    references; JSON and repr escapes."""
    code = ord(char)
    forms = {re.escape(char)}
    forms.add("".join(f"%(?:25)*{_hex(b)}" for b in char.encode()))
    if char == " ":
        forms |= {r"\+", "&nbsp;"}
    if char == "+":
        forms.add(" ")
    # HTML references, the "&" of which may itself be escaped again (&amp;amp;, &#38;lt;).
    amp = "&(?:amp;|#0*38;|#[xX]0*26;)*"
    forms.add(f"{amp}#0*{code};")
    forms.add(f"{amp}#[xX]0*{_hex(code, 1)};")
    named = {"&": "", "<": "lt;", ">": "gt;", '"': "quot;", "'": "apos;"}
    if char in named:
        forms.add(amp + named[char])
    if code <= 0xFFFF:
        forms.add(rf"\\[uU]{_hex(code, 4)}")
    if code < 0x100:
        forms.add(rf"\\x{_hex(code)}")
    # Any form may come backslash-escaped: JSON's \/ and \", repr's \' and \\.
    return r"\\?(?:" + "|".join(sorted(forms, key=len, reverse=True)) + ")"


class Redactor:
    """Replaces given secrets in any encoding (see _forms), any apikey parameter, and
    Authorization credentials with REDACTED."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so that a secret containing another is replaced whole.
        ordered = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._whole: re.Pattern[str] | None = None
        self._cut: re.Pattern[str] | None = None
        if ordered:
            chars = [[_forms(c) for c in secret] for secret in ordered]
            self._whole = re.compile("|".join("".join(c) for c in chars))
            cuts = []
            for forms in chars:
                if len(forms) <= _MIN_PREFIX:
                    continue  # a short secret is matched whole or not at all
                tail = ""
                for form in reversed(forms[_MIN_PREFIX:-1]):
                    tail = f"(?:{form}{tail})?"
                cuts.append("".join(forms[:_MIN_PREFIX]) + tail)
            if cuts:
                self._cut = re.compile("(?:" + "|".join(cuts) + r")(?=[\"')\]\s]*$)")

    def __call__(self, text: str) -> str:
        if self._whole is not None:
            text = self._whole.sub(REDACTED, text)
        if self._cut is not None:
            text = self._cut.sub(REDACTED, text)
        text = _APIKEY_PARAM.sub(rf"\1{REDACTED}", text)
        return _AUTHORIZATION.sub(rf"\1\2{REDACTED}", text)


class SecretScrubber:
    """A structlog processor that replaces every known secret in every rendered value.

    Our own code never logs a key; this catches what a library might (an exception text
    quoting a URL, say). It runs after exceptions are formatted, so tracebacks are covered.
    """

    def __init__(self) -> None:
        self._redact = Redactor()

    def set_secrets(self, secrets: Iterable[str]) -> None:
        self._redact = Redactor(secrets)

    def scrub(self, text: str) -> str:
        return self._redact(text)

    def __call__(
        self, logger: Any, method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
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
