"""Structured log events: one line per event whatever a client put in a field."""

from __future__ import annotations

import logging

import pytest
from stellar_sdk import Keypair

from streampay_incident.logevents import MAX_VALUE_CHARS, format_event, log_event

# Built at run time: no secret-seed-shaped string is committed.
SEED = Keypair.from_raw_ed25519_seed(bytes(range(32))).secret


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("plain-value_1.2:3/x", "plain-value_1.2:3/x"),
        ("two words", '"two words"'),
        ("", '""'),
        ('a"b', r'"a\"b"'),
        ("a=b", '"a=b"'),
        ("a\\b", r'"a\\b"'),
        ("line\nevent=forged", r'"line\nevent=forged"'),
        ("\x1b[31mred\x00", r'"\u001b[31mred\u0000"'),
        ("caf\xe9", r'"caf\u00e9"'),
        (f"key {SEED}", '"key <secret seed redacted>"'),
        (3, "3"),
        (1.5, "1.5"),
        (["a", 1], '"[\\"a\\", 1]"'),
    ],
)
def test_values_are_bare_only_when_safe(value, written):
    assert format_event("e", field=value) == f"event=e field={written}"


def test_none_fields_are_left_out():
    assert format_event("e", a=None, b="x") == "event=e b=x"


def test_long_values_are_cut_with_their_length():
    line = format_event("e", key_id="k" * 8000)
    assert line == f'event=e key_id="{"k" * MAX_VALUE_CHARS}...(8000 chars)"'


def test_the_record_carries_the_bounded_fields(caplog):
    caplog.set_level(logging.INFO, logger="streampay_incident")
    log_event("e", key_id="k" * 300, seed=SEED, count=2)
    (record,) = caplog.records
    assert record.fields == {  # type: ignore[attr-defined]
        "key_id": "k" * MAX_VALUE_CHARS + "...(300 chars)",
        "seed": "<secret seed redacted>",
        "count": 2,
    }
    assert record.getMessage().count("(300 chars)") == 1
