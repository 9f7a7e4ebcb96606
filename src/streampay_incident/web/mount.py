"""Routes that mount the incident app without revealing where it is mounted.

Starlette's router answers a request for the bare mount point
(``/internal/incident``) with a ``307`` redirect to ``/internal/incident/``:
a stranger learns that something lives there. :func:`incident_routes` adds
an exact route for the bare prefix, so every path under it, the prefix
itself included, reaches the app's authentication first and fails with the
same ``404``. The ``serve`` sidecar also answers every other path with that
``404`` (:func:`sidecar_router`).
"""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute, Mount, Route, Router

from .gate import ASGIApp, Receive, Scope, Send, not_found

MOUNT_PATH = "/internal/incident"


def incident_routes(app: ASGIApp, prefix: str = MOUNT_PATH) -> list[BaseRoute]:
    """Routes for a host's router: ``app`` at ``prefix`` and below it, no redirect."""
    return [Route(prefix, endpoint=app), Mount(prefix, app=app)]


async def not_found_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The app's one ``404`` for anything outside the mount (a websocket is closed)."""
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    await not_found()(scope, receive, send)


def sidecar_router(app: ASGIApp, prefix: str = MOUNT_PATH) -> Any:
    """A router serving only ``app`` at ``prefix``: every other path gets the app's ``404``."""
    return Router(
        routes=incident_routes(app, prefix), redirect_slashes=False, default=not_found_app
    )
