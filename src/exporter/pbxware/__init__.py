"""The PBXware HTTP API: client, decoding and typed answers."""

from .client import ClientSettings, PbxwareClient
from .errors import REASONS, PbxwareError, Reason
from .models import Extension, Tenant

__all__ = [
    "REASONS",
    "ClientSettings",
    "Extension",
    "PbxwareClient",
    "PbxwareError",
    "Reason",
    "Tenant",
]
