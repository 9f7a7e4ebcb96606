from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streampay_incident.amounts import MAX_INT64, AmountError, format_stroops, parse_stroops
from streampay_incident.timefmt import (
    format_duration,
    format_rfc3339,
    parse_duration,
    parse_rfc3339,
    parse_unix_or_rfc3339,
)


@pytest.mark.parametrize(
    ("text", "stroops"),
    [
        ("25", 250_000_000),
        ("25.0000000", 250_000_000),
        ("0.0000001", 1),
        ("1.5", 15_000_000),
        ("007.10", 71_000_000),
        ("922337203685.4775807", MAX_INT64),
    ],
)
def test_parse_stroops_exact(text: str, stroops: int) -> None:
    assert parse_stroops(text) == stroops


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("0", "greater than zero"),
        ("0.0000000", "greater than zero"),
        ("-1", "negative"),
        ("1e5", "exponent"),
        ("1.00000001", "7 fraction"),
        ("abc", "plain decimal"),
        ("", "plain"),
        (" 1", "plain"),
        ("1.", None),
        ("922337203685.4775808", "int64"),
        ("+1", "plain"),
    ],
)
def test_parse_stroops_rejects(text: str, reason: str | None) -> None:
    if reason is None:  # "1." is a decimal with an empty fraction: accepted as 1
        assert parse_stroops(text) == 10_000_000
        return
    with pytest.raises(AmountError, match=reason):
        parse_stroops(text)


def test_zero_allowed_when_asked() -> None:
    assert parse_stroops("0", allow_zero=True) == 0


@given(st.integers(min_value=1, max_value=MAX_INT64))
def test_amount_round_trip(stroops: int) -> None:
    assert parse_stroops(format_stroops(stroops)) == stroops


def test_format_negative() -> None:
    assert format_stroops(-15_000_000) == "-1.5000000"


def test_rfc3339() -> None:
    assert parse_rfc3339("2026-11-27T03:00:00Z") == datetime(2026, 11, 27, 3, tzinfo=UTC)
    assert parse_rfc3339("2026-11-27T04:00:00+01:00") == datetime(2026, 11, 27, 3, tzinfo=UTC)
    nanos = parse_rfc3339("2026-11-27T03:00:00.123456789Z")
    assert nanos.microsecond == 123456
    assert parse_rfc3339("2026-11-27T03:00:00.5z").microsecond == 500000
    for bad in ("2026-11-27T03:00:00", "2026-11-27", "yesterday", "2026-13-27T03:00:00Z"):
        with pytest.raises(ValueError):
            parse_rfc3339(bad)
    assert format_rfc3339(datetime(2026, 11, 27, 3, tzinfo=UTC)) == "2026-11-27T03:00:00Z"
    assert parse_unix_or_rfc3339("0") == datetime(1970, 1, 1, tzinfo=UTC)
    assert parse_unix_or_rfc3339("2026-11-27T03:00:00Z").year == 2026


def test_durations() -> None:
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("10m") == timedelta(minutes=10)
    assert parse_duration("1h") == timedelta(hours=1)
    assert parse_duration("2d") == timedelta(days=2)
    assert parse_duration("500ms") == timedelta(milliseconds=500)
    assert parse_duration("1h30m") == timedelta(hours=1, minutes=30)
    assert parse_duration("34d21h") == timedelta(days=34, hours=21)
    for bad in ("10", "m", "-5m", "1.5h", "10 minutes", "", "1m1h", "5ms3s"):
        with pytest.raises(ValueError):
            parse_duration(bad)


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (timedelta(seconds=3013265), "34d21h"),  # the raw seconds issue 11 quotes
        (timedelta(seconds=3013), "50m13s"),
        (timedelta(minutes=10), "10m"),
        (timedelta(hours=2, minutes=5, seconds=59), "2h05m"),
        (timedelta(days=1, hours=2), "1d02h"),
        (timedelta(days=3), "3d"),
        (65, "1m05s"),
        (30.0, "30s"),
        (0, "0s"),
        (0.25, "250ms"),
        (timedelta(seconds=-65), "-1m05s"),
    ],
)
def test_format_duration(duration: timedelta | float, text: str) -> None:
    assert format_duration(duration) == text


@given(st.integers(min_value=1, max_value=10**8))
def test_a_formatted_duration_reads_back_to_its_two_units(seconds: int) -> None:
    text = format_duration(seconds)
    back = parse_duration(text).total_seconds()
    # Two units are printed: what is dropped is less than one of the smaller unit.
    smaller = {"d": 3600, "h": 60, "m": 1, "s": 1}[next(c for c in text if c.isalpha())]
    assert back <= seconds < back + smaller


@pytest.mark.parametrize("text", ["1d" + "9" * 16 + "h", "40000d", "36500d1h", "9" * 16 + "h30m"])
def test_compound_durations_are_bounded_too(text: str) -> None:
    from streampay_incident.timefmt import parse_duration

    with pytest.raises(ValueError, match="longer than 36500d"):
        parse_duration(text)
