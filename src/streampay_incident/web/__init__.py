"""Read-only internal incident endpoints: a mountable ASGI app behind streampay-hmac-v1.

Needs the ``web`` extra (starlette, uvicorn, prometheus-client)::

    from streampay_incident.web import WebConfig, create_app
    app.mount("/internal/incident", create_app(WebConfig.from_env(os.environ)))

Importing ``streampay_incident`` never imports this package.
"""

from __future__ import annotations

from .app import create_app
from .config import WebConfig, WebConfigError

__all__ = ["WebConfig", "WebConfigError", "create_app"]
