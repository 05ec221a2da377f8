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

Like the Go exporters, the file is read again when it changes: the middleware checks its
modification time on every request, and a changed certificate is loaded into the same
SSLContext, which new TLS handshakes then use. A file that no longer parses keeps the
previous settings and is logged.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import os
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import structlog
import yaml
from aiohttp import web

from ..config import ConfigError

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


def _file(value: Any, key: str, base: Path, problems: list[str]) -> Path | None:
    if not isinstance(value, str) or not value:
        problems.append(f"{key}: must be a file path")
        return None
    path = base / value
    if not path.is_file():
        problems.append(f"{key}: {str(path)!r} does not exist")
        return None
    return path


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
    problems: list[str] = []
    if not isinstance(data, dict):
        raise ConfigError(source, ["must be a mapping"])
    for key in data:
        if key not in ("tls_server_config", "basic_auth_users"):
            problems.append(f"{key}: unknown key (allowed: basic_auth_users, tls_server_config)")
    base = path.resolve().parent
    tls = None
    raw_tls = data.get("tls_server_config")
    if raw_tls is not None:
        if not isinstance(raw_tls, dict):
            problems.append("tls_server_config: must be a mapping")
        else:
            tls = _tls(raw_tls, base, problems)
    users: dict[str, bytes] = {}
    raw_users = data.get("basic_auth_users") or {}
    if not isinstance(raw_users, dict):
        problems.append("basic_auth_users: must be a mapping of user: bcrypt hash")
        raw_users = {}
    for user, hashed in raw_users.items():
        if not isinstance(hashed, str) or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            problems.append(f"basic_auth_users.{user}: must be a bcrypt hash ($2b$...)")
            continue
        users[str(user)] = hashed.encode()
    if problems:
        raise ConfigError(source, problems)
    return WebConfig(tls=tls, users=users)


def _tls(raw: dict[str, Any], base: Path, problems: list[str]) -> TlsSettings | None:
    prefix = "tls_server_config"
    allowed = {"cert_file", "key_file", "client_auth_type", "client_ca_file"}
    for key in raw:
        if key not in allowed:
            problems.append(f"{prefix}.{key}: unknown key (allowed: {', '.join(sorted(allowed))})")
    cert = _file(raw.get("cert_file"), f"{prefix}.cert_file", base, problems)
    key = _file(raw.get("key_file"), f"{prefix}.key_file", base, problems)
    auth_type = raw.get("client_auth_type", "NoClientCert")
    if auth_type not in _CLIENT_AUTH:
        problems.append(
            f"{prefix}.client_auth_type: {auth_type!r} not supported"
            f" (one of {', '.join(_CLIENT_AUTH)})"
        )
        return None
    ca = None
    if "client_ca_file" in raw:
        ca = _file(raw["client_ca_file"], f"{prefix}.client_ca_file", base, problems)
    elif _CLIENT_AUTH[auth_type] != ssl.CERT_NONE and auth_type != "RequestClientCert":
        problems.append(f"{prefix}.client_ca_file: needed to verify client certificates")
    if cert is None or key is None:
        return None
    return TlsSettings(cert, key, _CLIENT_AUTH[auth_type], ca)


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or len(header) > 4096:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


class WebSecurity:
    """The current web config, re-read when its file changes; serves TLS and basic auth."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._log = structlog.get_logger("exporter.web")
        self._stamp = self._mtime()
        self.config = parse_web_config(path)
        self._verified: set[bytes] = set()
        self.ssl_context: ssl.SSLContext | None = None
        if self.config.tls is not None:
            self.ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._apply_tls(self.config.tls)

    def _mtime(self) -> float:
        try:
            return os.stat(self.path).st_mtime_ns
        except OSError:
            return -1

    def refresh(self) -> None:
        """Re-read the file if it changed; keep the old settings if the new ones are bad."""
        stamp = self._mtime()
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            config = parse_web_config(self.path)
            if config.tls is not None and self.ssl_context is not None:
                self._apply_tls(config.tls)
            elif (config.tls is None) != (self.ssl_context is None):
                # A listener cannot switch between HTTP and HTTPS in place.
                raise ConfigError(str(self.path), ["turning TLS on or off needs a restart"])
        except (ConfigError, ssl.SSLError, OSError) as exc:
            self._log.error("web_config_reload_failed", file=str(self.path), error=str(exc))
            return
        self.config = config
        self._verified.clear()
        self._log.info("web_config_reloaded", file=str(self.path), users=len(config.users))

    def _apply_tls(self, tls: TlsSettings) -> None:
        context = self.ssl_context
        assert context is not None
        context.load_cert_chain(tls.cert_file, tls.key_file)
        context.verify_mode = tls.client_auth
        if tls.client_ca_file is not None:
            context.load_verify_locations(cafile=str(tls.client_ca_file))

    async def allowed(self, header: str | None) -> bool:
        users = self.config.users
        if not users:
            return True
        credentials = _basic_credentials(header)
        if credentials is None or credentials[0] not in users:
            return False
        user, password = credentials
        # bcrypt costs ~0.1-0.3 s by design; remember a verified pair (by digest, never
        # the password itself) so that a scrape every few seconds does not pay it each time.
        key = hashlib.sha256(f"{user}\0{password}".encode()).digest()
        if key in self._verified:
            return True
        # In a thread: a wrong password must not stall every other request meanwhile.
        if await asyncio.to_thread(bcrypt.checkpw, password.encode(), users[user]):
            self._verified.add(key)
            return True
        return False

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
        if not await self.allowed(request.headers.get("Authorization")):
            return web.Response(
                status=401,
                text="Unauthorized.\n",
                headers={"WWW-Authenticate": 'Basic realm="pbxware-exporter"'},
            )
        return await handler(request)
