"""Findings about the inputs themselves (not about StreamPay's money).

Pure: the shell reads the input and passes what it found.
"""

from __future__ import annotations

from ..model import Finding, make_finding


def input_empty(source: str, kind: str) -> Finding:
    """``INPUT_EMPTY`` for the input named ``source``, which held no ``kind`` records.

    A report on nothing must not pass: an empty export proves no double payout absent.
    """
    return make_finding(
        "INPUT_EMPTY",
        source,
        f"{source} holds no {kind} records: nothing was triaged, nothing can be concluded",
        {"input": source, "kind": kind, "records": 0},
    )
