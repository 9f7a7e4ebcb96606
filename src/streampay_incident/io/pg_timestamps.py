"""Timestamps as PostgreSQL prints them, read as aware UTC datetimes.

StreamPay's ``settlement_outbox`` keeps every time as ``timestamp without
time zone`` holding UTC; psql prints it as ``2026-11-26 23:00:00``,
``row_to_json`` as ``2026-11-26T23:00:00.123456``, and a ``timestamptz``
comes with the session's offset (``+00``, ``+05:30``, ``+05:53:28``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# What PostgreSQL prints for timestamp / timestamptz (DateStyle ISO) and what
# row_to_json prints (ISO 8601 with a T): offsets as +00, +05:30 or +05:53:28
# (a historical local mean time), 0 to 6 fraction digits (9 accepted, cut to 6).
_PG_TIME = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt ]"
    r"(?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.(?P<frac>[0-9]{1,9}))?"
    r"(?P<offset>[Zz]|[+-][0-9]{2}(?::?[0-9]{2}){0,2})?\Z"
)
_OFFSET = re.compile(r"([+-])([0-9]{2}):?([0-9]{2})?:?([0-9]{2})?\Z")


def parse_source_timezone(text: str) -> tzinfo:
    """``UTC``, an offset (``+05:30``, ``-08``) or an IANA zone name; ``ValueError`` otherwise."""
    name = text.strip()
    if name.upper() in ("UTC", "Z", "GMT", "ETC/UTC"):
        return UTC
    offset = _OFFSET.match(name)
    if offset is not None:
        return timezone(_offset_delta(offset))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{text!r} is not a time zone: give UTC, an offset such as +05:30, "
            "or a zone name such as Europe/Berlin"
        ) from None


def _offset_delta(match: re.Match[str]) -> timedelta:
    sign = -1 if match.group(1) == "-" else 1
    hours, minutes, seconds = (int(match.group(i) or 0) for i in (2, 3, 4))
    return sign * timedelta(hours=hours, minutes=minutes, seconds=seconds)


def parse_pg_timestamp(text: str, *, source_timezone: tzinfo = UTC) -> datetime:
    """Any timestamp PostgreSQL prints, as an aware UTC datetime.

    ``2026-11-26 23:00:00``, ``2026-11-26T23:00:00.123456``, ``...+00``,
    ``...+05:30``, ``...Z``: a time without an offset is in ``source_timezone``
    (StreamPay writes UTC). ``infinity`` and BC dates are refused
    (``ValueError``): no settlement happened there.
    """
    match = _PG_TIME.match(text.strip())
    if match is None:
        raise ValueError(
            "not a timestamp (expected e.g. 2026-11-26 23:00:00, 2026-11-26T23:00:00.123456 "
            "or 2026-11-26 23:00:00+00)"
        )
    frac = (match.group("frac") or "")[:6].ljust(6, "0")
    try:
        naive = datetime.fromisoformat(f"{match.group('date')}T{match.group('time')}.{frac}")
    except ValueError as exc:
        raise ValueError(f"not a valid date/time ({exc})") from None
    offset_text = match.group("offset")
    if offset_text is None:
        zone = source_timezone
    elif offset_text in "Zz":
        zone = UTC
    else:
        offset = _OFFSET.match(offset_text)
        assert offset is not None  # the timestamp pattern only lets offsets through
        zone = timezone(_offset_delta(offset))
    if zone is UTC:  # StreamPay's own: nothing to convert
        return naive.replace(tzinfo=UTC)
    try:
        return naive.replace(tzinfo=zone).astimezone(UTC)
    except OverflowError:
        raise ValueError("out of range once converted to UTC") from None
