"""Exact money: integer stroops inside, 7-decimal strings at the edges.

1 XLM (or one unit of any Stellar asset) is 10,000,000 stroops. No floats
anywhere: a JSON number is read from its text, never through ``float``.
"""

from __future__ import annotations

import re

STROOPS_PER_UNIT = 10_000_000
MAX_INT64 = 2**63 - 1

_AMOUNT = re.compile(r"(?P<int>[0-9]+)(?:\.(?P<frac>[0-9]{0,7}))?\Z")
_FRAC_TOO_LONG = re.compile(r"[0-9]+\.[0-9]{8,}\Z")


class AmountError(ValueError):
    """A string that is not a positive amount with at most 7 fraction digits."""


def parse_stroops(text: str, *, allow_zero: bool = False) -> int:
    """``"25.5"`` -> ``255000000``. Exact; rejects signs, exponents, > 7 digits, zero.

    The result fits Stellar's int64 amounts.
    """
    m = _AMOUNT.match(text)
    if m is None:
        if _FRAC_TOO_LONG.match(text):
            raise AmountError("more than 7 fraction digits")
        if text.startswith("-"):
            raise AmountError("negative amount")
        if "e" in text.lower():
            raise AmountError("exponent notation is not allowed")
        raise AmountError("not a plain decimal amount")
    if len(m.group("int").lstrip("0")) > 12:  # past int64 anyway; int() of 4,301+ digits raises
        raise AmountError("amount exceeds Stellar's int64 limit")
    frac = (m.group("frac") or "").ljust(7, "0")
    stroops = int(m.group("int")) * STROOPS_PER_UNIT + int(frac)
    if stroops == 0 and not allow_zero:
        raise AmountError("amount must be greater than zero")
    if stroops > MAX_INT64:
        raise AmountError("amount exceeds Stellar's int64 limit")
    return stroops


def format_stroops(stroops: int) -> str:
    """``255000000`` -> ``"25.5000000"``: always 7 fraction digits, as Horizon prints."""
    sign = "-" if stroops < 0 else ""
    whole, frac = divmod(abs(stroops), STROOPS_PER_UNIT)
    return f"{sign}{whole}.{frac:07d}"
