"""Who may call the admin API: token check, rate limit, scope and system/tenant restrictions.

Tokens are configured as SHA-256 digests (``admin.tokens[].sha256`` or ``token_file``); the
presented token is hashed and compared with every configured digest in constant time, so
neither the token nor which digest matched can be learnt from timing. Two ways to present it:

- ``Authorization: Bearer <token>`` for scripts and curl;
- HTTP Basic with the token as the **password** and any username, so that a runbook link
  opens in a browser, which asks once. The username is ignored (use the token's name for
  your own bookkeeping); the token alone identifies the caller.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..config import AdminToken
from ..web.credentials import MAX_HEADER, basic_credentials

REALM = "pbxware-exporter admin"
READ = "read"
EDIT = "edit"


def extract_token(header: str | None) -> str | None:
    """The token of a Bearer or Basic Authorization header, or None."""
    if not header or len(header) > MAX_HEADER:
        return None
    scheme, _, rest = header.strip().partition(" ")
    rest = rest.strip()
    if not rest:
        return None
    if scheme.lower() == "bearer":
        return rest
    if scheme.lower() == "basic":
        credentials = basic_credentials(header)
        return credentials[1] if credentials and credentials[1] else None
    return None


class TokenTable:
    """The configured tokens, looked up by the SHA-256 of a presented secret."""

    def __init__(self, tokens: Iterable[AdminToken]) -> None:
        self._tokens = tuple(tokens)

    def __len__(self) -> int:
        return len(self._tokens)

    def authenticate(self, header: str | None) -> AdminToken | None:
        secret = extract_token(header)
        if secret is None:
            return None
        digest = hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()
        found: AdminToken | None = None
        # Every digest is compared, also after a match: the time taken does not depend on
        # which token (if any) the secret belongs to.
        for token in self._tokens:
            if hmac.compare_digest(digest, token.sha256) and found is None:
                found = token
        return found


class RateLimiter:
    """A token bucket per admin token: ``per_minute`` requests, refilled continuously.

    A burst of up to ``per_minute`` requests is allowed; after that one request per
    ``60 / per_minute`` seconds. ``clock`` is injectable so tests need no sleeps.
    """

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # name -> (tokens, at)

    def acquire(self, name: str) -> float | None:
        """Take one request for ``name``: None if allowed, else seconds until it would be."""
        now = self.clock()
        capacity = float(self.per_minute)
        rate = capacity / 60.0
        tokens, at = self._buckets.get(name, (capacity, now))
        tokens = min(capacity, tokens + max(0.0, now - at) * rate)
        if tokens >= 1.0:
            self._buckets[name] = (tokens - 1.0, now)
            return None
        self._buckets[name] = (tokens, now)
        return (1.0 - tokens) / rate

    def names(self) -> frozenset[str]:
        return frozenset(self._buckets)

    def update(self, per_minute: int, names: Iterable[str]) -> None:
        """A config reload: the new rate, the buckets of tokens that still exist kept as they
        are (a reload must not hand out a fresh burst), those of removed tokens dropped."""
        keep = set(names)
        self.per_minute = per_minute
        self._buckets = {
            name: (min(tokens, float(per_minute)), at)
            for name, (tokens, at) in self._buckets.items()
            if name in keep
        }


@dataclass(frozen=True)
class Denied:
    """Why a token may not do something (the 403 message)."""

    message: str


def authorize(token: AdminToken, scope: str, system: str, tenant: str | None) -> Denied | None:
    """None if ``token`` may use ``scope`` on this system and tenant."""
    if scope not in token.scopes:
        return Denied(f"token {token.name!r} lacks the {scope!r} scope")
    if token.systems is not None and system not in token.systems:
        return Denied(f"token {token.name!r} may not use system {system[:64]!r}")
    if tenant is not None and token.tenants is not None and tenant not in token.tenants:
        return Denied(f"token {token.name!r} may not use tenant {tenant[:64]!r}")
    if token.pairs is not None:
        # Exact system/tenant pairs: eu1/2 and us1/5 do not grant eu1/5.
        if tenant is None:
            allowed = any(s == system for s, _ in token.pairs)
        else:
            allowed = (system, tenant) in token.pairs
        if not allowed:
            where = f"{system[:64]}/{tenant[:64]}" if tenant is not None else system[:64]
            return Denied(f"token {token.name!r} may not use {where!r} (not one of its pairs)")
    return None
