"""Structured log events: one event name, then ``key=value`` fields, on the stdlib logger.

Every event the tool and the service emit goes through :func:`log_event`, so
on-call can grep or LogQL for ``event=<name>``. Never pass a secret, a seed or
a full request body as a field.
"""

from __future__ import annotations

import json
import logging
from typing import Any

logger = logging.getLogger("streampay_incident")


def _value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if text == "" or any(c in text for c in ' ="'):
        return json.dumps(text)
    return text


def format_event(event: str, **fields: Any) -> str:
    """``event=auth_failed reason=BAD_SIGNATURE service=ops-cli``: logfmt, stable field order."""
    parts = [f"event={event}"] + [f"{k}={_value(v)}" for k, v in fields.items() if v is not None]
    return " ".join(parts)


def log_event(event: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """Emit one structured event on the ``streampay_incident`` logger."""
    logger.log(level, format_event(event, **fields), extra={"event": event, "fields": fields})
