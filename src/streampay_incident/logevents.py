"""Structured log events: one event name, then ``key=value`` fields, on the stdlib logger.

Every event the tool and the service emit goes through :func:`log_event`, so
on-call can grep or LogQL for ``event=<name>``. Never pass a secret, a seed or
a full request body as a field; as a safety net, values are cut to 200
characters, control characters escaped and anything shaped like a secret seed
redacted, so a client's header cannot forge or flood a log line.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from .io.rows import SEED_PATTERN

logger = logging.getLogger("streampay_incident")


# A value is written bare only when it is printable ASCII without space, '"', '=' or '\\';
# anything else is JSON-quoted, so a control character or a newline cannot forge a line.
_BARE = re.compile(r"[!#-<>-\[\]-~]+")
MAX_VALUE_CHARS = 200
SEED_REDACTED = "<secret seed redacted>"


def bounded(text: str) -> str:
    """``text`` with secret seeds redacted, cut to :data:`MAX_VALUE_CHARS` with its length noted."""
    text = SEED_PATTERN.sub(SEED_REDACTED, text)
    if len(text) > MAX_VALUE_CHARS:
        return f"{text[:MAX_VALUE_CHARS]}...({len(text)} chars)"
    return text


def _value(value: Any) -> str:
    text = bounded(value if isinstance(value, str) else json.dumps(value, default=str))
    return text if _BARE.fullmatch(text) else json.dumps(text)


def format_event(event: str, **fields: Any) -> str:
    """``event=auth_failed reason=BAD_SIGNATURE service=ops-cli``: logfmt, stable field order."""
    parts = [f"event={event}"] + [f"{k}={_value(v)}" for k, v in fields.items() if v is not None]
    return " ".join(parts)


def log_event(event: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """Emit one structured event on the ``streampay_incident`` logger."""
    safe = {k: bounded(v) if isinstance(v, str) else v for k, v in fields.items()}
    logger.log(level, format_event(event, **fields), extra={"event": event, "fields": safe})
