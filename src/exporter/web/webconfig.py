"""``--web.config.file``: TLS and basic auth in the Prometheus exporter-toolkit format.

```yaml
tls_server_config:
  cert_file: server.crt
  key_file: server.key
  client_auth_type: RequireAndVerifyClientCert   # optional
  client_ca_file: ca.crt                         # needed to verify client certificates
basic_auth_users:
  prometheus: $2b$12$...                         # bcrypt hash (htpasswd -nBC 12 "" | tr -d ':\\n')
```

Like the Go exporters, the file is read again when it changes, and so are the certificate,
key and CA files it names: their modification times are checked on every request and every
TLS handshake (a few stat calls). Each reload builds a fresh SSLContext, which every later
handshake gets (SSLContext.sni_callback swaps it in): a CA removed from the file is no
longer trusted, and a certificate renewed in place is served from the next connection on.
A file that no longer parses, that would leave no
users where there were some, or that cannot be read keeps the previous settings: it is
logged and pbxware_exporter_web_config_last_reload_successful drops to 0. Basic auth is
never switched off by a reload, only by a restart.

The file is validated like the main config (exporter/config.py: pydantic models, strict,
unknown keys refused): every problem at once, each with the file and its key path
(``basic_auth_users.prometheus: not a bcrypt hash: …``).

Password checks (docs/security.md, "Listener"): bcrypt runs in its own small pool of
threads, never the default executor that /probe and the renders use; when every bcrypt
thread is busy the answer is 503 at once, not a place in a queue. An unknown user costs the
same bcrypt check (against a dummy hash) as a known one. Failed checks are throttled per
client address (429 with Retry-After) by the admin API's throttle (throttle.py: 10 failures in
a sliding minute, then a block that doubles) and logged once a minute per client, with a count.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import re
import secrets
import ssl
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import bcrypt
import structlog
import yaml
from aiohttp import web
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from pydantic import (
    BeforeValidator,
    Field,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from ..config import ConfigError
from ..validation import StrictModel, problem_lines, rule
from .credentials import basic_credentials
from .throttle import FailureThrottle, LogLimiter, client_key, retry_after

# The Go names, and what Python's ssl module can do of each.
_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_OPTIONAL,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
# Health checks (container HEALTHCHECK, kubelet probes) carry no credentials; the admin
# API has its own tokens.
OPEN_PATHS = ("/-/healthy",)
OPEN_PREFIXES = ("/admin/",)

# Threads for bcrypt checks. A check costs ~0.25 s at cost 12; Prometheus pays it once per
# credentials (verified pairs are remembered), so two threads serve any honest load, and
# an attacker can occupy these two threads only, never the pool that /probe renders in.
BCRYPT_THREADS = 2
# bcrypt uses the first 72 bytes of a password and the library refuses longer ones; Go's
# bcrypt (exporter-toolkit) refuses them too, so they are simply wrong passwords.
MAX_PASSWORD_BYTES = 72
_BCRYPT_HASH = re.compile(r"\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}")


@dataclass(frozen=True)
class TlsSettings:
    cert_file: Path
    key_file: Path
    client_auth: ssl.VerifyMode = ssl.CERT_NONE
    client_ca_file: Path | None = None


@dataclass(frozen=True)
class WebConfig:
    tls: TlsSettings | None = None
    users: dict[str, bytes] = field(default_factory=dict, repr=False)  # user → bcrypt hash


def _file(value: Any, info: ValidationInfo) -> Path:
    """A file named relative to the web config's folder, which must exist."""
    if not isinstance(value, str) or not value:
        raise ValueError("must be a file path")
    assert isinstance(info.context, dict)
    path: Path = info.context["base_dir"] / value
    if not path.is_file():
        raise ValueError(f"{str(path)!r} does not exist")
    return path


def _client_auth(value: Any) -> str:
    if not isinstance(value, str) or value not in _CLIENT_AUTH:
        raise ValueError(f"{value!r} not supported (one of {', '.join(_CLIENT_AUTH)})")
    return str(value)


def _bcrypt_hash(value: Any) -> bytes:
    problem = _hash_problem(value)
    if problem is not None:
        raise ValueError(f"not a bcrypt hash: {problem}")
    return bytes(value, "ascii")  # a valid hash is ASCII


_File = Annotated[Path, PlainValidator(_file)]
# exporter-toolkit (Go) reads a YAML `123:` user as "123"; so do we.
_User = Annotated[str, BeforeValidator(str)]


class _Tls(StrictModel):
    cert_file: _File
    key_file: _File
    client_auth_type: Annotated[str, PlainValidator(_client_auth)] = "NoClientCert"
    client_ca_file: Annotated[Path | None, PlainValidator(_file)] = None

    @model_validator(mode="after")
    def _ca_to_verify(self) -> _Tls:
        # The types that verify a client certificate need the CAs to verify it against.
        verifies = self.client_auth_type in (
            "VerifyClientCertIfGiven",
            "RequireAndVerifyClientCert",
        )
        if verifies and self.client_ca_file is None:
            raise rule("needed to verify client certificates", ".client_ca_file")
        return self


class _WebFile(StrictModel):
    tls_server_config: _Tls | None = None
    basic_auth_users: dict[_User, Annotated[bytes, PlainValidator(_bcrypt_hash)]] = Field(
        default_factory=dict, description="user: bcrypt hash"
    )

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, data: Any) -> Any:
        """``basic_auth_users:`` with nothing under it: no users."""
        if isinstance(data, dict) and data.get("basic_auth_users", {}) is None:
            return {**data, "basic_auth_users": {}}
        return data


def parse_web_config(path: Path) -> WebConfig:
    source = str(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            source, [f"cannot read the file: {getattr(exc, 'strerror', exc)}"]
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(source, [f"invalid YAML: {getattr(exc, 'problem', exc)}"]) from None
    try:
        web = _WebFile.model_validate(data, context={"base_dir": path.resolve().parent})
    except ValidationError as exc:
        raise ConfigError(source, problem_lines(_WebFile, data, exc.errors())) from None
    tls = web.tls_server_config
    return WebConfig(
        tls=TlsSettings(
            tls.cert_file, tls.key_file, _CLIENT_AUTH[tls.client_auth_type], tls.client_ca_file
        )
        if tls is not None
        else None,
        users=dict(web.basic_auth_users),
    )


def _hash_problem(hashed: Any) -> str | None:
    """Why ``hashed`` is not a bcrypt hash the bcrypt library will take, or None.

    Checked at load: a hash that passed and then raised at every login made every login a
    500. (The bcrypt library raises on a bad prefix, cost or alphabet, and silently never
    matches a hash of the wrong length.)"""
    if not isinstance(hashed, str):
        return "must be a string like $2b$12$ followed by 53 characters"
    if not hashed.startswith(("$2a$", "$2b$", "$2y$")):
        return "must start with $2a$, $2b$ or $2y$"
    if len(hashed) != 60:
        return f"must be 60 characters long, not {len(hashed)}"
    match = _BCRYPT_HASH.fullmatch(hashed)
    if match is None:
        return "the cost must be two digits, followed by 53 characters of ./A-Za-z0-9"
    if not 4 <= int(match.group(1)) <= 31:
        return f"the cost must be 04 to 31, not {match.group(1)}"
    return None


@functools.lru_cache(maxsize=8)
def _dummy_hash(cost: int) -> bytes:
    """A hash of a random password at ``cost``, checked for unknown users: they then cost
    what a known user costs, and their answer comes as late."""
    return bcrypt.hashpw(secrets.token_hex(16).encode(), bcrypt.gensalt(cost))


def _dummy_for(users: dict[str, bytes]) -> bytes:
    costs = [int(h[4:6]) for h in users.values()]
    return _dummy_hash(max(costs, default=12))


def _unauthorized() -> web.Response:
    return web.Response(
        status=401,
        text="Unauthorized.\n",
        headers={"WWW-Authenticate": 'Basic realm="pbxware-exporter"'},
    )


def _stamp(paths: tuple[Path, ...]) -> tuple[tuple[int, int, int], ...]:
    """What tells a changed file: modification time, size and inode (a file replaced by a
    rename, as certbot and Kubernetes secrets do, has a new inode)."""
    stamps = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            stamps.append((-1, -1, -1))
        else:
            stamps.append((st.st_mtime_ns, st.st_size, st.st_ino))
    return tuple(stamps)


def _watched(path: Path, config: WebConfig) -> tuple[Path, ...]:
    tls = config.tls
    if tls is None:
        return (path,)
    return (path, tls.cert_file, tls.key_file) + (
        (tls.client_ca_file,) if tls.client_ca_file else ()
    )


def _context(tls: TlsSettings) -> ssl.SSLContext:
    """A new server context from the files: nothing carried over from an earlier one."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls.cert_file, tls.key_file)
    context.verify_mode = tls.client_auth
    if tls.client_ca_file is not None:
        context.load_verify_locations(cafile=str(tls.client_ca_file))
    return context


class WebSecurity:
    """The current web config, re-read when its files change; serves TLS and basic auth."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._log = structlog.get_logger("exporter.web")
        self.config = parse_web_config(path)
        self._files = _watched(path, self.config)
        self._stamp = _stamp(self._files)
        self._dummy = _dummy_for(self.config.users)
        self.reload_ok = True
        self._verified: set[bytes] = set()
        self._bcrypt = ThreadPoolExecutor(BCRYPT_THREADS, thread_name_prefix="bcrypt")
        self._bcrypt_slots = threading.BoundedSemaphore(BCRYPT_THREADS)
        # The admin API's defaults: 10 failures in a sliding minute, then a block that
        # doubles on each further hit (up to 15 minutes).
        self.throttle = FailureThrottle()
        self.log_limiter = LogLimiter()
        # ssl_context is the listener's; every handshake is handed _current (see
        # _on_handshake), a context built from the files by the last good (re)load.
        self.ssl_context: ssl.SSLContext | None = None
        self._current: ssl.SSLContext | None = None
        if self.config.tls is not None:
            self._current = _context(self.config.tls)
            self.ssl_context = _context(self.config.tls)
            self.ssl_context.sni_callback = self._on_handshake
            # TLS 1.3 session tickets are issued under the listener's context: a client
            # could resume a session (skipping certificate verification) after its CA was
            # removed. No tickets: every TLS 1.3 connection is verified in full.
            self.ssl_context.num_tickets = 0

    def _on_handshake(
        self, ssl_object: ssl.SSLObject, server_name: str | None, context: ssl.SSLContext
    ) -> None:
        """Called by OpenSSL for every ClientHello (with or without SNI): pick up changed
        files, then hand the connection the current context. Its certificate and trust
        store apply; the verify mode is the listener's (OpenSSL copies it when the
        connection is made), which is why a change of client_auth_type needs a restart."""
        try:
            self.refresh()
        except Exception:  # an exception here would fail the handshake, not the reload
            self._log.exception("web_config_reload_failed", file=str(self.path))
        if self._current is not None:
            ssl_object.context = self._current

    def refresh(self) -> None:
        """Re-read the files if one changed; keep the old settings if the new ones are bad."""
        stamp = _stamp(self._files)
        if stamp == self._stamp:
            return
        try:
            config = parse_web_config(self.path)
        except ConfigError as exc:
            self._failed(stamp, exc)
            return
        # From now on the files of the new config are the ones to watch: fixing a bad
        # certificate it names is then a change that triggers the next attempt.
        self._files = _watched(self.path, config)
        stamp = _stamp(self._files)
        try:
            if self.config.users and not config.users:
                # An empty or truncated file (an editor saving, a bad deploy) must not open
                # the listener to everyone.
                raise ConfigError(
                    str(self.path),
                    [
                        "basic_auth_users: no users left; a reload never turns basic auth off"
                        " (restart to do that)"
                    ],
                )
            if (config.tls is None) != (self.config.tls is None):
                # A listener cannot switch between HTTP and HTTPS in place.
                raise ConfigError(str(self.path), ["turning TLS on or off needs a restart"])
            current = None
            if config.tls is not None:
                assert self.config.tls is not None
                if config.tls.client_auth != self.config.tls.client_auth:
                    raise ConfigError(
                        str(self.path),
                        ["tls_server_config.client_auth_type: a change needs a restart"],
                    )
                current = _context(config.tls)
            dummy = _dummy_for(config.users)
        except (ConfigError, ssl.SSLError, OSError) as exc:
            self._failed(stamp, exc)
            return
        self._stamp = stamp
        self.config = config
        self._current = current
        self._dummy = dummy
        self.reload_ok = True
        self._verified.clear()
        self._log.info("web_config_reloaded", file=str(self.path), users=len(config.users))

    def _failed(self, stamp: tuple[tuple[int, int, int], ...], exc: Exception) -> None:
        """Keep the running settings; try again only when a file changes again."""
        self._stamp = stamp
        self.reload_ok = False
        self._log.error("web_config_reload_failed", file=str(self.path), error=str(exc))

    def _bcrypt_check(self, password: bytes, hashed: bytes) -> bool:
        """In a bcrypt thread; frees its slot when done."""
        try:
            return bcrypt.checkpw(password, hashed)
        except ValueError:  # hashes are checked at load; never turn a login into a 500
            return False
        finally:
            self._bcrypt_slots.release()

    async def check(self, request: web.Request) -> web.Response | None:
        """None if the request may pass, else the answer that refuses it."""
        users = self.config.users
        if not users:
            return None
        header = request.headers.get("Authorization")
        if header is None:
            return _unauthorized()  # a browser's first request: no failure to count
        client = client_key(request.remote)
        blocked = self.throttle.blocked(client)
        if blocked is not None:
            self._log_failure("basic_auth_failed", client)
            return web.Response(
                status=429,
                text="Too many failed logins.\n",
                headers={"Retry-After": retry_after(blocked)},
            )
        outcome = await self._verify(request, basic_credentials(header))
        if outcome == "ok":
            return None
        if outcome == "busy":
            self._log_failure("basic_auth_busy", client)
            return web.Response(
                status=503, text="Too many logins being checked.\n", headers={"Retry-After": "1"}
            )
        if outcome == "wrong":
            self.throttle.failure(client)
            self._log_failure("basic_auth_failed", client)
        return _unauthorized()  # "gone": nobody reads it

    def _log_failure(self, event: str, client: str) -> None:
        """At most one line per event and client a minute; ``failures`` counts every failure
        since the previous line (this one included): 2,000 guesses make one line a minute."""
        dropped = self.log_limiter.allow(f"{event} {client}")
        if dropped is not None:
            self._log.warning(event, client=client, failures=dropped + 1)

    async def _verify(
        self, request: web.Request, credentials: tuple[str, str] | None
    ) -> Literal["ok", "wrong", "busy", "gone"]:
        if credentials is None:
            return "wrong"
        user, password = credentials
        # bcrypt costs ~0.1-0.3 s by design; remember a verified pair (by digest, never the
        # password itself) so that a scrape every few seconds does not pay it each time.
        key = hashlib.sha256(f"{user}\0{password}".encode()).digest()
        if key in self._verified:
            return "ok"
        secret = password.encode()
        if len(secret) > MAX_PASSWORD_BYTES:
            return "wrong"
        if request.transport is None or request.transport.is_closing():
            return "gone"  # the client has left: drop the work
        if not self._bcrypt_slots.acquire(blocking=False):
            return "busy"
        config = self.config
        known = config.users.get(user)
        loop = asyncio.get_running_loop()
        ok = await loop.run_in_executor(
            self._bcrypt, self._bcrypt_check, secret, known or self._dummy
        )
        if ok and known is not None:
            if self.config is config:  # not a pair of a config replaced meanwhile
                self._verified.add(key)
            return "ok"
        return "wrong"

    @web.middleware
    async def middleware(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        self.refresh()
        path = request.path
        if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
            return await handler(request)
        refusal = await self.check(request)
        if refusal is not None:
            return refusal
        return await handler(request)


class WebConfigCollector:
    """pbxware_exporter_web_config_last_reload_successful (1 without a web config)."""

    def __init__(self, security: WebSecurity | None) -> None:
        self._security = security

    def collect(self) -> Iterator[Metric]:
        ok = GaugeMetricFamily(
            "pbxware_exporter_web_config_last_reload_successful",
            "1 when the last read of --web.config.file (or of its TLS files) succeeded; on"
            " failure the previous TLS and basic auth settings stay in force.",
        )
        ok.add_metric([], 0.0 if self._security and not self._security.reload_ok else 1.0)
        yield ok
