"""Times and durations at the edges: RFC 3339 in, aware UTC datetimes inside."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}"
    r"(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})\Z"
)
_DURATION = re.compile(r"([0-9]+)(ms|s|m|h|d)\Z")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rfc3339(text: str) -> datetime:
    """An RFC 3339 timestamp with an offset, as an aware UTC datetime.

    Raises ``ValueError`` for anything else (a naive time is ambiguous in an incident).
    """
    if not _RFC3339.match(text):
        raise ValueError("not an RFC 3339 timestamp with offset (e.g. 2026-11-27T03:00:00Z)")
    # fromisoformat accepts up to 6 fraction digits; trim nanoseconds that some exporters print.
    head, dot, rest = text.partition(".")
    if dot:
        digits = re.match(r"[0-9]+", rest)
        assert digits is not None
        frac = digits.group(0)
        text = f"{head}.{frac[:6].ljust(6, '0')}{rest[len(frac):]}"
    if text[-1] in "zZ":
        text = text[:-1] + "+00:00"
    return datetime.fromisoformat(text).astimezone(UTC)


def from_unix(seconds: int) -> datetime:
    """Unix seconds as an aware UTC datetime; ``ValueError`` when out of range.

    The one place unix times become datetimes (exports, Horizon, RPC, envelopes).
    """
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"unix time {seconds} is out of range") from None


def parse_unix_or_rfc3339(text: str) -> datetime:
    """Unix seconds (a decimal integer) or RFC 3339."""
    if text.isdigit():
        return from_unix(int(text))
    return parse_rfc3339(text)


def format_rfc3339(moment: datetime) -> str:
    """``2026-11-27T03:00:00Z`` (UTC, no sub-second part unless present)."""
    text = moment.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")


def parse_duration(text: str) -> timedelta:
    """``90s``, ``10m``, ``1h``, ``2d``, ``500ms`` -> timedelta. Raises ``ValueError``."""
    m = _DURATION.match(text.strip())
    if m is None:
        raise ValueError("not a duration such as 90s, 10m or 1h")
    return timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])
