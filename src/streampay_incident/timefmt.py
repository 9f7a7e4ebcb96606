"""Times and durations at the edges: RFC 3339 in, aware UTC datetimes inside."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}"
    r"(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})\Z"
)
_DURATION = re.compile(r"([0-9]+)(ms|s|m|h|d)\Z")
_COMPOUND = re.compile(r"(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m(?!s))?(?:([0-9]+)s)?\Z")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
# Largest first: format_duration prints the largest unit that fits and the next one.
_FORMAT_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))

# The instants an input may name. Nothing StreamPay or Stellar records is older than the unix
# epoch, and the upper bound leaves room for adding any duration (at most MAX_DURATION) without
# leaving datetime's range (year 9999): an out-of-range time is an input error, never an overflow.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
MAX_DURATION = timedelta(days=36500)
_RANGE = "out of range (1970-01-01T00:00:00Z to 9000-01-01T00:00:00Z)"


def in_range(moment: datetime) -> datetime:
    """``moment`` when it lies in [:data:`EARLIEST`, :data:`LATEST`), else ``ValueError``."""
    if not EARLIEST <= moment < LATEST:
        raise ValueError(_RANGE)
    return moment


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
        text = f"{head}.{frac[:6].ljust(6, '0')}{rest[len(frac) :]}"
    if text[-1] in "zZ":
        text = text[:-1] + "+00:00"
    try:
        return in_range(datetime.fromisoformat(text).astimezone(UTC))
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise ValueError(_RANGE) from None


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
        if len(text.lstrip("0")) > 12 or int(text) >= LATEST.timestamp():
            raise ValueError(_RANGE)
        return from_unix(int(text))
    return parse_rfc3339(text)


def format_rfc3339(moment: datetime) -> str:
    """``2026-11-27T03:00:00Z`` (UTC, no sub-second part unless present)."""
    text = moment.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")


def parse_duration(text: str) -> timedelta:
    """``90s``, ``10m``, ``1h``, ``2d``, ``500ms``, or what :func:`format_duration`
    prints (``1h05m``, ``34d21h``) -> timedelta, at most :data:`MAX_DURATION`.

    Raises ``ValueError``.
    """
    text = text.strip()
    too_long = f"longer than {MAX_DURATION.days}d"
    m = _DURATION.match(text)
    parts = _COMPOUND.match(text)
    if m is not None:
        number, unit = m.group(1).lstrip("0") or "0", m.group(2)
        if len(number) > 15:  # int() and timedelta() would overflow long before a valid limit
            raise ValueError(too_long)
        seconds = int(number) * _UNITS[unit]
    elif text and parts is not None:
        if any(len(g) > 15 for g in parts.groups() if g):
            raise ValueError(too_long)
        days, hours, minutes, secs = (int(g or 0) for g in parts.groups())
        seconds = ((days * 24 + hours) * 60 + minutes) * 60 + secs
    else:
        raise ValueError("not a duration such as 90s, 10m, 1h or 1h30m")
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(too_long)
    return timedelta(seconds=seconds)


def format_duration(duration: timedelta | float) -> str:
    """A duration for people: its largest unit and the next one, whole seconds.

    ``50m13s``, ``34d21h``, ``1d02h``, ``2h05m``, ``10m`` (a zero second unit is left out),
    ``45s``; under a second ``250ms``; negative durations get a ``-``. Takes a
    timedelta or seconds. What it prints, :func:`parse_duration` reads back
    (to the precision printed).
    """
    seconds = duration.total_seconds() if isinstance(duration, timedelta) else float(duration)
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if 0 < seconds < 1:
        return f"{sign}{int(seconds * 1000)}ms"
    whole = int(seconds)
    for index, (unit, size) in enumerate(_FORMAT_UNITS):
        if whole >= size or unit == "s":
            major, rest = divmod(whole, size)
            text = f"{sign}{major}{unit}"
            if unit != "s":
                minor_unit, minor_size = _FORMAT_UNITS[index + 1]
                minor = rest // minor_size
                if minor:
                    text += f"{minor:02d}{minor_unit}"
            return text
    raise AssertionError("unreachable: the seconds unit always fits")  # pragma: no cover
