"""The PBXware HTTP API: client, decoding and typed answers."""

from .client import PbxwareClient
from .errors import REASONS, PbxwareError, Reason
from .models import Extension, Tenant

__all__ = ["REASONS", "Extension", "PbxwareClient", "PbxwareError", "Reason", "Tenant"]
