"""The admin API: enhanced services of one extension, read and edited over HTTP.

See README "Admin API". ``AdminApi`` is the component the daemon builds and the web app
installs; everything else is internal.
"""

from .routes import AdminApi
from .services import SCHEMAS, SERVICES

__all__ = ["SCHEMAS", "SERVICES", "AdminApi"]
